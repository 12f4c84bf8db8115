"""The hyperparameter sweep: a grid file expanded into variants, one training run per variant,
and the results JSON (schema npmlp.sweep/1) the report is rendered from.

A grid file (TOML):

    name = "v1_1"                        # {name} in variant names (default: the file's stem)
    mode = "one-at-a-time"               # or "cartesian"
    seeds = 3                            # model seeds 0..seeds-1 per variant, all on one split
    data = "data/hybrid_big_five.csv"    # default data file; --data (make DATA=...) overrides
    target = "calling_score"             # target column (default: the data module's)
    baseline_name = "v1_0_baseline"      # default "{name}_baseline"
    variant_name = "v1_1_{axis}_{label}" # default "{name}_{point}"
    combined_name = "v1_1_combined"      # what `sweep combine` trains (default "{name}_combined")

    [baseline]                           # any Config field but seed; the rest keep the defaults
    lr = 0.001                           # split_seed here fixes the split for every variant

    [axes.lr]                            # one table per swept Config field, in sweep order
    values = [0.0001, 0.0005]
    [axes.hidden]
    name = "arch"                        # {axis} in variant names (default: the field)
    values = [[256, 128], [128, 64, 32]]
    labels = ["wider", "deeper"]         # {label}, one per value (default: the value; 256x128)

`lr = [0.0001, 0.0005]` under [axes] is short for a table with only values. Relative paths are
relative to the working directory. Placeholders: {name}; {point}, the "axis_label" pairs of a
variant joined by "_"; and, in one-at-a-time mode, {axis} and {label}. Names may hold letters,
digits and "._-" and may not start with a dot, so no name writes outside the output folder.

Modes. one-at-a-time: the baseline, then each axis value changed alone; a value equal to the
baseline's is not trained twice (the baseline stands for it). cartesian: every combination of
axis values, the one equal to the baseline (if any) named and used as the baseline, else the
baseline as well. A cartesian variant's "axis" is its fields joined by "+" and its "value" a
{field: value} table (with one axis, the field and the bare value, as in one-at-a-time).

Steps, one file each, so `make` redoes only what changed (see the Makefile):
    plan     grid -> OUT/plan/<variant>.json, rewritten only when its content changes
    run      a plan -> every seed trained on the same split; the seed with the lowest val MSE
             exported as OUT/<target>_model_<variant>.onnx (+ .json sidecar); OUT/runs/<variant>.json
             written last, also for a failed variant, so a finished run is never redone
    collect  grid + runs -> OUT/optimization_results.json
    combine  one-at-a-time only: each axis's best value together, trained and added under "combined"

A variant fails, with its reason and null numbers, when any seed diverges or does not beat the
mean predictor, or when its export fails the parity check; the sweep goes on. Variants are chosen
on mean validation MSE only; test MSE is reported, never used to choose.
This module does not define the model, the training loop or the ONNX graph.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import tomllib
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config, ConfigError
from .data import load_dataset
from .export import ParityError, export_fit
from .files import InputError, dumps_json, read_json, sha256_file, write_json
from .report import SCHEMA, check_results
from .train import Scaler, TrainingDiverged, check_learned, fit, mse, split_rows

RESULTS = "optimization_results.json"
MODES = ("one-at-a-time", "cartesian")
GRID_KEYS = ("name", "mode", "seeds", "data", "target", "baseline_name", "variant_name", "combined_name",
             "baseline", "axes")  # fmt: skip
# The package modules a run executes, hashed into every plan: an edit to one retrains.
TRAINING_SOURCES = ("model.py", "train.py", "config.py", "export.py", "data.py", "files.py", "sweep.py")
NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_SEEDS = 100  # far beyond what a sweep needs; a larger number is a typo
SUMMARY_KEYS = ("train_mse", "val_mse", "test_mse", "seconds", "best_epoch", "epochs_run")

# ---- the grid file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    field: str  # the Config field it sweeps
    name: str  # {axis} in variant names
    values: tuple  # as written in the grid
    labels: tuple  # {label} in variant names, one per value


@dataclass(frozen=True)
class Variant:
    name: str
    config: Config  # seed = the first model seed
    axis: str | None  # the field(s) changed from the baseline; None for the baseline
    value: object  # the value as written in the grid


@dataclass(frozen=True)
class Grid:
    path: Path
    name: str
    mode: str
    seeds: tuple[int, ...]
    data: str | None
    target: str | None
    baseline: Config
    combined_name: str
    axes: tuple[Axis, ...]
    variants: tuple[Variant, ...]  # the baseline first


def load_grid(path) -> Grid:
    """Read and expand a grid file; InputError naming the file and the key on any fault."""
    path = Path(path)
    raw = _read_toml(path)
    for key in raw:
        if key not in GRID_KEYS:
            raise InputError(f"{path}: unknown key {key!r} (known: {', '.join(GRID_KEYS)})")
    get = lambda key, kind, default: _typed(path, raw, key, kind, default)
    name, mode, seeds = get("name", str, path.stem), get("mode", str, MODES[0]), get("seeds", int, 3)
    if not NAME.fullmatch(name):
        raise InputError(f"{path}: key name: bad grid name {name!r} (letters, digits and ._- only)")
    if mode not in MODES:
        raise InputError(f"{path}: key mode: unknown mode {mode!r} (known: {', '.join(MODES)})")
    if not 1 <= seeds <= MAX_SEEDS:
        raise InputError(f"{path}: key seeds: need 1 to {MAX_SEEDS} seeds, got {seeds}")
    base = _baseline(path, get("baseline", dict, {}))
    axes = tuple(_axis(path, field, spec, base) for field, spec in get("axes", dict, {}).items())
    names = {"baseline_name": get("baseline_name", str, f"{name}_baseline"),
             "variant_name": get("variant_name", str, "{name}_{point}"),  # a template
             "combined_name": get("combined_name", str, f"{name}_combined")}  # fmt: skip
    variants = _expand(path, name, mode, base, axes, names)
    _check_names(path, variants, names["combined_name"])
    return Grid(path, name, mode, tuple(range(seeds)), get("data", str, None), get("target", str, None),
                base, names["combined_name"], axes, variants)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{path}: cannot read grid file: {e.strerror or e}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not valid TOML: {e}")  # tomllib's message has line and column


def _typed(path, table: dict, key: str, kind: type, default):
    value = table.get(key, default)
    if value is not default and (not isinstance(value, kind) or isinstance(value, bool)):  # True is an int
        raise InputError(f"{path}: key {key}: expected {kind.__name__}, got {value!r}")
    return value


def _baseline(path, table: dict) -> Config:
    if "seed" in table:
        raise InputError(f"{path}: key baseline.seed: model seeds come from the seeds key")
    try:
        return Config.from_dict(table)
    except ConfigError as e:
        raise InputError(f"{path}: key baseline: {e}") from None


def _axis(path, field: str, spec, base: Config) -> Axis:
    key = f"axes.{field}"
    spec = {"values": spec} if isinstance(spec, list) else spec
    if not isinstance(spec, dict) or set(spec) - {"values", "labels", "name"}:
        raise InputError(f"{path}: key {key}: expected a list of values or a table of values, labels, name")
    if field == "seed":
        raise InputError(f"{path}: key {key}: model seeds come from the seeds key")
    values = spec.get("values")
    if not isinstance(values, list) or not values:
        raise InputError(f"{path}: key {key}: expected a non-empty list of values, got {values!r}")
    for value in values:
        try:
            Config.from_dict({field: value}, base)
        except ConfigError as e:
            raise InputError(f"{path}: key {key}: {e}") from None
    labels = spec.get("labels", [_label(v) for v in values])
    if not (isinstance(labels, list) and len(labels) == len(values) and all(isinstance(x, str) for x in labels)):
        raise InputError(f"{path}: key {key}.labels: expected one string per value, got {labels!r}")
    name = _typed(path, spec, "name", str, field)
    return Axis(field, name, tuple(values), tuple(labels))


def _label(value) -> str:
    if isinstance(value, list):
        return "x".join(map(str, value))
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _expand(path, grid_name: str, mode: str, base: Config, axes, names: dict) -> tuple[Variant, ...]:
    """The baseline, then each point of the mode in grid order, minus points equal to the baseline."""
    options = [[(a, v, label) for v, label in zip(a.values, a.labels)] for a in axes]
    if mode == "one-at-a-time":
        points = [[p] for opts in options for p in opts]
    else:
        points = itertools.product(*options)
    variants = [Variant(names["baseline_name"], base, None, None)]
    for point in points:
        config = Config.from_dict({a.field: v for a, v, _ in point}, base)
        if config == base:
            continue
        fields = {"name": grid_name, "point": "_".join(f"{a.name}_{label}" for a, _, label in point)}
        if mode == "one-at-a-time":
            fields |= {"axis": point[0][0].name, "label": point[0][2]}
        name = _format(path, names["variant_name"], fields)
        value = point[0][1] if len(point) == 1 else {a.field: v for a, v, _ in point}
        variants.append(Variant(name, config, "+".join(a.field for a, _, _ in point), value))
    return tuple(variants)


def _format(path, template: str, fields: dict) -> str:
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError):
        known = ", ".join("{" + f + "}" for f in fields)
        raise InputError(f"{path}: key variant_name: {template!r}: placeholders here are {known}") from None


def _check_names(path, variants: tuple[Variant, ...], combined: str):
    keys = ["baseline_name"] + ["variant_name"] * (len(variants) - 1) + ["combined_name"]
    seen = set()
    for key, name in zip(keys, [*(v.name for v in variants), combined]):
        check_name(name, f"{path}: key {key}")
        if name in seen:
            raise InputError(f"{path}: key {key}: two variants named {name!r}")
        seen.add(name)


def check_name(name, where: str):
    """Names become file names: letters, digits and ._- only, no leading dot, no slash."""
    if not (isinstance(name, str) and NAME.fullmatch(name)):
        raise InputError(
            f"{where}: bad variant name {name!r} (letters, digits and ._- only, not starting with a dot)"
        )


# ---- plan --------------------------------------------------------------------------------------


def plan_record(grid: Grid, variant: Variant, data) -> dict:
    """Everything a run depends on, by content: the config and seeds, the data file's sha256 and
    a fingerprint of the training code. A changed plan file means a changed run, and only then."""
    return {"name": variant.name, "axis": variant.axis, "value": variant.value,
            "config": variant.config.to_dict(), "seeds": list(grid.seeds), "data": str(data.path),
            "data_sha256": data.sha256, "code": code_fingerprint(), "target": data.target}  # fmt: skip


def code_fingerprint() -> str:
    """sha256 over the modules a run executes: an edit retrains, a touch or a checkout does not."""
    h = hashlib.sha256(__version__.encode())
    for name in TRAINING_SOURCES:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()


def write_plans(grid: Grid, data, out: Path) -> int:
    """OUT/plan/<variant>.json for each variant, rewritten only when its content changes (its mtime
    then marks a real change for make). A variant gone from the grid loses its plan, run and model
    files. Returns how many variants have no run newer than their plan."""
    plan_dir = out / "plan"
    keep = {v.name for v in grid.variants} | {grid.combined_name}
    for old in plan_dir.glob("*.json"):
        if old.stem not in keep:
            for path in (old, out / "runs" / old.name, *model_files(out, data.target, old.stem)):
                path.unlink(missing_ok=True)
    for v in grid.variants:
        _write_if_changed(plan_dir / f"{v.name}.json", plan_record(grid, v, data))
    return sum(not _up_to_date(out, v.name) for v in grid.variants)


def model_files(out: Path, target: str, name: str) -> list[Path]:
    onnx_path = out / f"{target}_model_{name}.onnx"
    return [onnx_path, onnx_path.with_suffix(".json"), onnx_path.with_suffix(".fp16.onnx")]


def _write_if_changed(path: Path, obj: dict):
    text = dumps_json(obj)
    if not path.exists() or path.read_text() != text:
        write_json(path, obj)


def _up_to_date(out: Path, name: str) -> bool:
    """Whether make would leave OUT/runs/<name>.json alone: its plan is its only prerequisite."""
    run, plan = out / "runs" / f"{name}.json", out / "plan" / f"{name}.json"
    return run.exists() and plan.exists() and run.stat().st_mtime_ns >= plan.stat().st_mtime_ns


# ---- run: one variant --------------------------------------------------------------------------

PLAN_KEYS = {"name", "axis", "value", "config", "seeds", "data", "data_sha256", "code", "target"}


def run_plan(plan_path, out) -> dict:
    """Train every seed of one planned variant, export the best, write OUT/runs/<name>.json last."""
    plan_path, out, started = Path(plan_path), Path(out), _now()
    plan = read_json(plan_path, "sweep plan")
    if not (isinstance(plan, dict) and set(plan) == PLAN_KEYS):
        raise InputError(f"{plan_path}: not a sweep plan (expected keys {', '.join(sorted(PLAN_KEYS))})")
    check_name(plan["name"], str(plan_path))
    config = Config.from_dict(plan["config"])
    data = load_dataset(plan["data"], target=plan["target"], unit_target=config.sigmoid)
    if (data.sha256, code_fingerprint()) != (plan["data_sha256"], plan["code"]):
        raise InputError(f"{plan_path}: the data or the training code changed since planning; "
                         "run `make sweep` again to plan anew")
    clock = time.perf_counter()
    seeds, best = train_seeds(plan["name"], data, config, plan["seeds"])
    run = {"plan": plan, **outcome(plan, data, seeds, best, model_files(out, data.target, plan["name"])[0])}
    run["timing"] = {"started": started, "finished": _now()}
    write_json(out / "runs" / f"{plan['name']}.json", run)
    _say_variant(out, plan, run, time.perf_counter() - clock)
    return run


def train_seeds(name: str, data, config: Config, seeds: list[int]) -> tuple[list[dict], object]:
    """Per-seed records, and the Fit with the lowest val MSE (None if every seed failed)."""
    records, best, clock = [], None, time.perf_counter()
    for i, seed in enumerate(seeds, start=1):
        start = time.perf_counter()
        try:
            result = fit(data.X, data.y, replace(config, seed=seed))
            check_learned(result)  # a saturated sigmoid head diverges with a finite loss
        except TrainingDiverged as e:
            records.append(failed_seed(seed, str(e), time.perf_counter() - start))
        else:
            records.append(seed_record(seed, result))
            if best is None or result.metrics["val_mse"] < best.metrics["val_mse"]:
                best = result
        elapsed = time.perf_counter() - clock
        eta = elapsed / i * (len(seeds) - i)
        _say(f"[{name}] seed {seed} ({i}/{len(seeds)}): {_seed_line(records[-1])}; "
             f"{elapsed:.1f}s so far, ETA {eta:.1f}s")  # fmt: skip
    return records, best


def seed_record(seed: int, result) -> dict:
    metrics = {k: result.metrics[k] for k in ("train_mse", "val_mse", "test_mse")}
    if not all(math.isfinite(v) for v in metrics.values()):
        return failed_seed(seed, f"non-finite MSE after training: {metrics}", result.seconds)
    return {
        "seed": seed, "status": "ok", "reason": None, **metrics,
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "steps": result.steps,
        "seconds": result.seconds, "history": {"train_mse": result.train_mse, "val_mse": result.val_mse},
    }  # fmt: skip


def failed_seed(seed: int, reason: str, seconds: float) -> dict:
    measured = ("train_mse", "val_mse", "test_mse", "best_epoch", "epochs_run", "steps", "history")
    return {"seed": seed, "status": "failed", "reason": reason, **dict.fromkeys(measured), "seconds": seconds}


def outcome(plan: dict, data, seeds: list[dict], best, model_path: Path) -> dict:
    """Status, reason and exported model: a failed variant keeps no model file."""
    config = Config.from_dict(plan["config"])
    n_train = len(split_rows(len(data.y), config.split_seed, config.val_fraction, config.test_fraction).train)
    steps_per_epoch = -(-n_train // config.batch_size)
    reason, model = _training_fault(seeds, steps_per_epoch), None
    if reason is None:
        extra = {"variant": plan["name"], "seeds": plan["seeds"], "best_seed": best.config.seed}
        model, reason = _export(best, data, model_path, extra)
    if reason is not None:
        model = None
        for path in model_files(model_path.parent, data.target, plan["name"]):
            path.unlink(missing_ok=True)
    return {"status": "ok" if reason is None else "failed", "reason": reason, "seeds": seeds, "model": model,
            "best_seed": best.config.seed if model else None, "steps_per_epoch": steps_per_epoch,
            "data_sha256": data.sha256}  # fmt: skip


def _training_fault(seeds: list[dict], steps_per_epoch: int) -> str | None:
    failed = [s for s in seeds if s["status"] != "ok"]
    if failed:
        return f"{len(failed)} of {len(seeds)} seeds failed; seed {failed[0]['seed']}: {failed[0]['reason']}"
    off = [s["seed"] for s in seeds if s["steps"] != steps_per_epoch * s["epochs_run"]]
    if off:
        return f"optimizer steps per epoch are not ceil(n_train / batch_size) = {steps_per_epoch} (seeds {off})"
    return None


def _export(best, data, path: Path, extra: dict) -> tuple[dict | None, str | None]:
    try:
        model = export_fit(best, data, path, extra=extra)
    except ParityError as e:
        return None, f"export failed: {e}"
    model["path"] = path.name  # relative to the results JSON beside it
    if model["hidden"] != list(best.config.hidden):
        return None, f"the written graph has hidden sizes {model['hidden']}, the config {best.config.hidden}"
    return model, None


# ---- progress, on stderr -----------------------------------------------------------------------


def _say(line: str):
    print(line, file=sys.stderr, flush=True)


def _seed_line(s: dict) -> str:
    if s["status"] != "ok":
        return f"FAILED: {s['reason']}"
    return f"val MSE {s['val_mse']:.6f}, best epoch {s['best_epoch']} of {s['epochs_run']}, {s['seconds']:.1f}s"


def _say_variant(out: Path, plan: dict, run: dict, seconds: float):
    plans = list((out / "plan").glob("*.json"))
    done = [p.stem for p in plans if _up_to_date(out, p.stem)]
    if run["status"] == "ok":
        val = statistics.fmean(s["val_mse"] for s in run["seeds"])
        what = f"ok, mean val MSE {val:.6f}, exported seed {run['best_seed']} as {run['model']['path']}"
    else:
        what = f"FAILED: {run['reason']}"
    _say(f"[{plan['name']}] {what} ({seconds:.1f}s); {len(done)} of {len(plans)} variants done"
         f"{_sweep_eta(out, done, len(plans) - len(done))}")


def _sweep_eta(out: Path, done: list[str], left: int) -> str:
    """The mean wall time of the finished variants times the rounds left at make's -j."""
    if not left:
        return ""
    spans = []
    for name in done:
        timing = read_json(out / "runs" / f"{name}.json", "run record")["timing"]
        spans.append((_parse_time(timing["finished"]) - _parse_time(timing["started"])).total_seconds())
    jobs = int((re.findall(r"(?:^|\s)-j(\d+)", os.environ.get("MAKEFLAGS", "")) or ["1"])[-1])
    return f", sweep ETA {statistics.fmean(spans) * math.ceil(left / jobs):.0f}s at -j{jobs}"


# ---- statistics --------------------------------------------------------------------------------

# Student t quantiles t(0.975, df) for df = 1..30 (two-sided 95%).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)  # fmt: skip


def t975(df: float) -> float:
    """t(0.975, df) for a real df (Welch's is fractional): log t linear in 1/df between table
    entries, and between df 30 and the normal's 1.96 beyond. Within 0.5% of the exact quantile
    for df >= 2 (three or more seeds), within 3% for 1 < df < 2."""
    if df <= 1:
        return T975[0]
    lo, hi, t_lo, t_hi = (30, math.inf, T975[-1], 1.96) if df >= 30 else (
        int(df), int(df) + 1, T975[int(df) - 1], T975[int(df)])  # fmt: skip
    w = (1 / lo - 1 / df) / (1 / lo - 1 / hi)
    return math.exp(math.log(t_lo) + w * (math.log(t_hi) - math.log(t_lo)))


def summarize(xs: list) -> dict:
    """Mean, sample std (0 for one value) and the t-interval of the mean (null for one value)."""
    n, mean = len(xs), statistics.fmean(xs)
    std = statistics.stdev(xs) if n > 1 else 0.0
    half = t975(n - 1) * std / math.sqrt(n) if n > 1 else None
    return {"mean": mean, "std": std, "ci95": None if half is None else [mean - half, mean + half], "n": n}


def improvement(base: list, other: list) -> dict:
    """Baseline mean minus variant mean test MSE (positive = better) with Welch's 95% interval;
    within_noise when the interval holds 0 or cannot be formed (a single seed)."""
    diff = statistics.fmean(base) - statistics.fmean(other)
    ci = welch_ci(base, other, diff)
    return {"test_mse_diff": diff, "percent": 100 * diff / statistics.fmean(base), "ci95": ci,
            "within_noise": ci is None or ci[0] <= 0 <= ci[1]}  # fmt: skip


def welch_ci(a: list, b: list, diff: float) -> list | None:
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        return [diff, diff]
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    half = t975(df) * math.sqrt(va + vb)
    return [diff - half, diff + half]


# ---- collect: the results JSON -----------------------------------------------------------------


def collect(grid: Grid, data, out) -> dict:
    """Write OUT/optimization_results.json from the grid's run files."""
    results = build_results(grid, data, Path(out))
    write_json(Path(out) / RESULTS, results)
    _say_results(results, Path(out))
    return results


def build_results(grid: Grid, data, out: Path) -> dict:
    """The results JSON, validated: every grid variant's run, its statistics, the selection."""
    runs = [_load_run(out, v.name, data, plan_record(grid, v, data)) for v in grid.variants]
    variants = [variant_result(run) for run in runs]
    for v in variants[1:]:
        v["improvement"] = _improvement(variants[0], v)
    axis_best = best_per_axis(grid, variants)
    combined = _combined(grid, data, out, variants, axis_best)
    ok = [v for v in [*variants, combined] if v and v["status"] == "ok"]
    best = min(ok, key=lambda v: v["summary"]["val_mse"]["mean"], default=None)
    results = {
        "schema": SCHEMA, "grid": grid_section(grid), "environment": environment(),
        "data": data_section(data, grid.baseline),
        "linear_baseline": linear_baseline(data, grid.baseline),
        "variants": variants, "axis_best": axis_best, "combined": combined, "timing": timing(runs),
        "best": None if best is None else {"name": best["name"], "by": "val_mse mean",
                                           "improvement": best["improvement"]},
    }  # fmt: skip
    return check_results(results, out / RESULTS)


def _say_results(results: dict, out: Path):
    variants, best = results["variants"], results["best"]
    ok = sum(v["status"] == "ok" for v in variants)
    combined = " (and the combined one)" if results["combined"] else ""
    _say(f"results: {ok} of {len(variants)} variants ok{combined}" + (f", best {best['name']}" if best else "")
         + f" -> {out / RESULTS}")  # fmt: skip


def _load_run(out: Path, name: str, data, plan: dict | None) -> dict:
    """A run file, checked against the plan it should have run and the data it should have used."""
    path = out / "runs" / f"{name}.json"
    if not path.exists():
        raise InputError(f"{path}: missing: variant {name} has not been trained (run `make sweep`)")
    run = read_json(path, "run record")
    if plan is not None and run.get("plan") != plan:
        raise InputError(f"{path}: trained for another plan than the grid now gives (run `make sweep`)")
    if run.get("data_sha256") != data.sha256:
        raise InputError(f"{path}: trained on other data than {data.path} (sha256 {data.sha256[:12]}...)")
    return run


def variant_result(run: dict) -> dict:
    plan, ok = run["plan"], run["status"] == "ok"
    return {
        "name": plan["name"], "axis": plan["axis"], "value": plan["value"], "config": plan["config"],
        "status": run["status"], "reason": run["reason"], "model": run["model"], "best_seed": run["best_seed"],
        "steps_per_epoch": run["steps_per_epoch"], "seeds": run["seeds"], "improvement": None,
        "summary": {k: summarize([s[k] for s in run["seeds"]]) if ok else None for k in SUMMARY_KEYS},
    }  # fmt: skip


def _improvement(base: dict, v: dict) -> dict | None:
    if base["status"] != "ok" or v["status"] != "ok":
        return None
    return improvement([s["test_mse"] for s in base["seeds"]], [s["test_mse"] for s in v["seeds"]])


def best_per_axis(grid: Grid, variants: list[dict]) -> dict:
    """Per axis, the lowest mean val MSE among its variants and the baseline (one-at-a-time only)."""
    if grid.mode != "one-at-a-time":
        return {}
    ok = [v for v in variants if v["status"] == "ok"]
    pick = lambda vs: min(vs, key=lambda v: v["summary"]["val_mse"]["mean"])["name"] if vs else None
    return {a.field: pick([v for v in ok if v["axis"] in (None, a.field)]) for a in grid.axes}


def combined_plan(grid: Grid, data, variants: list[dict], axis_best: dict) -> dict:
    """The baseline with each axis's best value; an axis without an ok variant keeps the baseline's."""
    by_name = {v["name"]: v for v in variants}
    values = {field: by_name[name]["config"][field] for field, name in axis_best.items() if name}
    config = Config.from_dict(values, grid.baseline)
    return plan_record(grid, Variant(grid.combined_name, config, None, values), data)


def _combined(grid, data, out: Path, variants, axis_best) -> dict | None:
    """The combined variant when its run matches the current per-axis bests, else None."""
    path = out / "runs" / f"{grid.combined_name}.json"
    if grid.mode != "one-at-a-time" or not path.exists():
        return None
    run = _load_run(out, grid.combined_name, data, None)
    if run["plan"] != combined_plan(grid, data, variants, axis_best):
        _say(f"results: {path} took other best values than the runs now give; `make combine` retrains it")
        return None
    result = variant_result(run)
    result["improvement"] = _improvement(variants[0], result)
    return result


def grid_section(grid: Grid) -> dict:
    return {"name": grid.name, "path": str(grid.path), "sha256": sha256_file(grid.path), "mode": grid.mode,
            "seeds": list(grid.seeds), "baseline": grid.variants[0].name,
            "axes": {a.field: list(a.values) for a in grid.axes}}  # fmt: skip


def data_section(data, config: Config) -> dict:
    split = split_rows(len(data.y), config.split_seed, config.val_fraction, config.test_fraction)
    side = data.sidecar
    return {
        "path": str(data.path), "sha256": data.sha256, "rows": len(data.y), "n_features": len(data.features),
        "features": list(data.features), "target": data.target,
        "split": {"seed": config.split_seed, **{k: len(getattr(split, k)) for k in ("train", "val", "test")}},
        "noise_floor": noise_floor(side, config), "source": side,
    }  # fmt: skip


def noise_floor(side: dict | None, config: Config) -> dict | None:
    """The generator's expected noise floor (mean conditional variance of the target) over all
    rows and per split; null unless the sidecar's split is the one trained on."""
    by_split = (side or {}).get("noise_floor_by_split") or {}
    same_fractions = (config.val_fraction, config.test_fraction) == (Config.val_fraction, Config.test_fraction)
    if not (same_fractions and by_split.get("split_seed") == config.split_seed):
        return None
    return {k: by_split["expected"][k] for k in ("all", "train", "val", "test")}


def linear_baseline(data, config: Config) -> dict:
    """Least squares on the standardized features plus an intercept, fit on the training split."""
    split = split_rows(len(data.y), config.split_seed, config.val_fraction, config.test_fraction)
    A = np.column_stack([Scaler.fit(data.X[split.train])(data.X), np.ones(len(data.y))])  # (n, d + 1)
    coef = np.linalg.lstsq(A[split.train], data.y[split.train], rcond=None)[0]
    return {"val_mse": mse(A[split.val] @ coef, data.y[split.val]),
            "test_mse": mse(A[split.test] @ coef, data.y[split.test])}


def environment() -> dict:
    return {"npmlp": __version__, "numpy": np.__version__, "onnx": metadata.version("onnx"),
            "onnxruntime": metadata.version("onnxruntime"), "python": platform.python_version(),
            "cpu": _cpu_model(), "platform": platform.platform()}  # fmt: skip


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timing(runs: list[dict]) -> dict:
    """From the first run's start to the last run's end (a resumed sweep includes the pause)."""
    started, finished = min(r["timing"]["started"] for r in runs), max(r["timing"]["finished"] for r in runs)
    wall = _parse_time(finished) - _parse_time(started)
    return {"started": started, "finished": finished, "wall_seconds": wall.total_seconds()}


def _now() -> str:
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT)


# ---- combine -----------------------------------------------------------------------------------


def combine(grid: Grid, data, out) -> dict:
    """Train the baseline with each axis's best value (unless already trained), then re-collect."""
    out = Path(out)
    if grid.mode != "one-at-a-time":
        raise InputError(f"{grid.path}: key mode: combine takes each axis's best value, so needs one-at-a-time")
    results = build_results(grid, data, out)
    plan_path = out / "plan" / f"{grid.combined_name}.json"
    _write_if_changed(plan_path, combined_plan(grid, data, results["variants"], results["axis_best"]))
    if not _up_to_date(out, grid.combined_name):
        run_plan(plan_path, out)
    results = build_results(grid, data, out)
    _write_if_changed(out / RESULTS, results)  # unchanged: the report stays up to date
    _say_results(results, out)
    return results


# ---- checking a results JSON -------------------------------------------------------------------

# ---- commands ----------------------------------------------------------------------------------


def add_commands(sub):
    p = sub.add_parser("sweep", help="hyperparameter sweep from a grid file, one step at a time (make sweep)")
    steps = p.add_subparsers(metavar="STEP")
    for name, func, text in (
        ("plan", cmd_plan, "write OUT/plan/<variant>.json for each grid variant (only when changed)"),
        ("collect", cmd_collect, "write OUT/optimization_results.json from the run files"),
        ("combine", cmd_combine, "train each axis's best value together; add it under 'combined'"),
    ):
        s = steps.add_parser(name, help=text)
        s.add_argument("--grid", required=True, type=Path, help="grid file (TOML)")
        s.add_argument("--data", help="data file (default: the grid's data key)")
        s.add_argument("--out", required=True, type=Path, help="output folder")
        s.set_defaults(func=func)
    s = steps.add_parser("run", help="train one planned variant: its model, then OUT/runs/<variant>.json")
    s.add_argument("--plan", required=True, type=Path, help="OUT/plan/<variant>.json")
    s.add_argument("--out", required=True, type=Path, help="output folder")
    s.set_defaults(func=cmd_run)


def _grid_and_data(args) -> tuple:
    """The grid and its data, loaded and checked before anything is written."""
    grid = load_grid(args.grid)
    path = args.data or grid.data
    if not path:
        raise InputError(f"{args.grid}: no data file: set the data key or pass --data")
    return grid, load_dataset(path, target=grid.target, unit_target=grid.baseline.sigmoid)


def cmd_plan(args) -> int:
    grid, data = _grid_and_data(args)
    todo = write_plans(grid, data, args.out)
    _say(f"plan: {grid.name}: {len(grid.variants)} variants, {todo} to train -> {args.out / 'plan'}")
    return 0


def cmd_run(args) -> int:
    run_plan(args.plan, args.out)
    return 0


def cmd_collect(args) -> int:
    collect(*_grid_and_data(args), args.out)
    return 0


def cmd_combine(args) -> int:
    combine(*_grid_and_data(args), args.out)
    return 0
