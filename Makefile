# npmlp: files as targets. `make` alone lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NPMLP := $(VENV)/bin/npmlp
INSTALLED := $(VENV)/.installed

DATA ?= data/hybrid_big_five.csv
GRID ?= grids/v1_1.toml
OUT ?= assets/models/optimized

# One BLAS thread per process: `make -j` runs trainings side by side, the matrices are small,
# and a fixed thread count keeps float results bit-identical from run to run.
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1

.PHONY: help venv test bench data clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(INSTALLED) ## create .venv from pyproject.toml

test: $(INSTALLED) ## run the test suite
	$(PY) -m pytest

bench: $(INSTALLED) ## run the benchmarks in scripts/ (one thread, medians)
	@for s in scripts/bench_*.py; do echo "== $$s"; $(PY) $$s; done

clean: ## remove generated models, reports and data (keeps .venv)
	rm -rf $(OUT) reports data/hybrid_big_five.*
