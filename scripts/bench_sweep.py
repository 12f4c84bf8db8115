"""Wall time of `make sweep` with -j1 and -j2, each into a fresh temporary output folder (same
grid, same data). The default is the full v1.1 sweep: 15 variants x 3 seeds, several minutes
of both cores per run.

    .venv/bin/python scripts/bench_sweep.py [--grid G] [--data D] [--jobs 1 2]

Per run it prints the wall time and the summed time inside training loops; the difference is
the per-variant overhead (process start, data loading, ONNX export and parity checks) plus,
with -j2, the cores' imperfect overlap.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    done = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", *args], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode:
        sys.exit(f"make {' '.join(args)} failed:\n{done.stderr}")
    return done


def timed_sweep(jobs: int, grid: Path, data: Path) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as out:
        start = time.perf_counter()
        make(f"-j{jobs}", "sweep", f"GRID={grid}", f"DATA={data}", f"OUT={out}", "REPORT=")
        wall = time.perf_counter() - start
        return wall, json.loads((Path(out) / "optimization_results.json").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=Path, default=REPO / "grids" / "v1_1.toml")
    p.add_argument("--data", type=Path, default=REPO / "data" / "hybrid_big_five.csv")
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2], help="make -j values to time (default 1 2)")
    args = p.parse_args(argv)
    grid, data = args.grid.resolve(), args.data.resolve()
    make("data", f"DATA={data}")  # built outside the timing when missing
    walls = {}
    for jobs in args.jobs:
        walls[jobs], results = timed_sweep(jobs, grid, data)
        seeds = [s for v in results["variants"] for s in v["seeds"]]
        training = sum(s["seconds"] for s in seeds)
        print(f"make -j{jobs} sweep: {walls[jobs]:7.1f} s wall, {len(results['variants'])} variants, "
              f"{len(seeds)} seeds, {training:.1f} s in training loops, {results['data']['rows']} rows")  # fmt: skip
    first = args.jobs[0]
    for jobs in args.jobs[1:]:
        print(f"speed-up -j{jobs} over -j{first}: {walls[first] / walls[jobs]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
