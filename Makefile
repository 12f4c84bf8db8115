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

DEFAULT_DATA := data/hybrid_big_five.csv
DATA ?=
GRID ?= grids/v1_1.toml
DEFAULT_OUT := assets/models/optimized
OUT ?= $(DEFAULT_OUT)

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

# The built-in data set and its sidecar (same stem, .json), rebuilt only when the generator
# changes. Only this path has a rule: a DATA=your.csv is read, never regenerated.
DEFAULT_FILES := $(DEFAULT_DATA) $(DEFAULT_DATA:.csv=.json)
data: $(DEFAULT_FILES) ## build the default hybrid Big Five data set

$(DEFAULT_FILES) &: npmlp/hybrid.py npmlp/data.py npmlp/train.py | $(INSTALLED)
	$(NPMLP) data hybrid --out $(DEFAULT_DATA)

# The sweep as files: OUT/plan/<variant>.json -> OUT/runs/<variant>.json (written last, after
# the model) -> the results JSON -> the report. A plan holds everything its run depends on by
# content (config, seeds, the data's sha256, a fingerprint of the training code) and is rewritten
# only when that changes, so a plan is a run's only prerequisite: an edit retrains what it
# changes, a touch or a checkout retrains nothing. `sweep` plans, then runs a second make that
# reads the plan folder; `make -j2 sweep` trains two variants at once.
# DATA, when given, overrides the grid's data file; only the built-in set is ever generated.
RESULTS := $(OUT)/optimization_results.json
RUNS = $(patsubst $(OUT)/plan/%.json,$(OUT)/runs/%.json,$(wildcard $(OUT)/plan/*.json))
SWEEP_ARGS = --grid $(GRID) $(if $(DATA),--data $(DATA)) --out $(OUT)
SWEEP_DATA = $(if $(filter-out $(DEFAULT_DATA),$(DATA)),,$(DEFAULT_FILES))

.PHONY: sweep combine
sweep: $(SWEEP_DATA) | $(INSTALLED) ## train every grid variant (GRID, DATA, OUT), then results and report
	$(NPMLP) sweep plan $(SWEEP_ARGS)
	$(MAKE) --no-print-directory $(RESULTS) $(REPORT)

combine: sweep ## add a variant with each axis's best value to the results and report
	$(NPMLP) sweep combine $(SWEEP_ARGS)
	$(if $(REPORT),$(MAKE) --no-print-directory $(REPORT))

$(OUT)/runs/%.json: $(OUT)/plan/%.json | $(INSTALLED)
	$(NPMLP) sweep run --plan $< --out $(OUT)

$(RESULTS): $(RUNS) $(GRID) | $(INSTALLED)
	$(NPMLP) sweep collect $(SWEEP_ARGS)

# Registering is an action, not a file to rebuild: the registry keeps its history and refuses
# a version name twice, so `make register VERSION=...` names each new version.
VERSION ?= v1.1-hybrid
REGISTRY ?= assets/models/registry.json
.PHONY: register
register: | $(INSTALLED) ## register the sweep's best model (VERSION=...)
	$(NPMLP) register --results $(RESULTS) --version $(VERSION) --registry $(REGISTRY)

# The report and its figures (reports/figures/) are rendered from the results JSON alone:
# `make report` re-renders it (a second), and never retrains, whatever changed since the sweep.
# The v1.1 report for the default folder; a sweep into another OUT keeps its report there.
REPORT ?= $(if $(filter $(DEFAULT_OUT),$(OUT)),reports/MODEL_VARIATIONS_v1.1.md,$(OUT)/MODEL_VARIATIONS.md)
.PHONY: report
report: | $(INSTALLED) ## render the Markdown report from the results JSON
	$(NPMLP) report --results $(RESULTS) --out $(REPORT)

$(REPORT): $(OUT)/optimization_results.json npmlp/report.py npmlp/svg.py | $(INSTALLED)
	$(NPMLP) report --results $< --out $@

# The app runs onnxruntime 1.15 (IR <= 9, opset <= 19): load every sweep model there and compare.
COMPAT_VENV := .venv-ort115
$(COMPAT_VENV)/.installed:
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install --quiet --disable-pip-version-check 'onnxruntime==1.15.1' 'numpy<2'
	touch $@

.PHONY: compat
compat: $(COMPAT_VENV)/.installed | $(INSTALLED) ## check the sweep's models in onnxruntime 1.15, the app's runtime
	$(PY) scripts/check_runtime.py --python $(COMPAT_VENV)/bin/python $(wildcard $(OUT)/*.onnx)

clean: ## remove generated models, reports and data (keeps .venv)
	rm -rf $(OUT) reports data/hybrid_big_five.*
