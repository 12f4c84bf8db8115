"""The model registry and the offline A/B comparison of two ONNX models.

The registry is one JSON file: the model versions, and an append-only list of events.

    register  a sweep variant's model becomes a new version, status "staging"; its parent is the
              version active at that moment (or null)
    promote   a version becomes "active"; the version active before it becomes "archived"
    rollback  undoes the last promote of the active version: the version that promote archived is
              active again, and the undone one becomes "rolled_back" (still promotable)

Each version keeps a copy of its model in versions/<version>.onnx beside the registry file, so a
later sweep that overwrites the variant's file cannot break a rollback; paths are stored relative
to the registry file's folder. The model file's sha256 is checked at register (against the
results JSON), at promote and at rollback (against the registry), so a changed file never
becomes active. This module trains nothing and deploys nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

import numpy as np

from .data import load_dataset
from .export import PARITY_TOL, predict_onnx, read_metadata
from .files import InputError, atomic_write, dumps_json, read_json, sha256_file, write_json
from .report import SCHEMA as RESULTS_SCHEMA
from .train import split_rows

SCHEMA = "npmlp.registry/1"
DEFAULT_REGISTRY = Path("assets/models/registry.json")
STATUSES = ("staging", "active", "archived", "rolled_back")
ACTIONS = ("register", "promote", "rollback")
# Starts with a letter or digit so a name is never ".", ".." or mistaken for a flag.
VERSION_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

NONE = type(None)
VERSION_KEYS = {"version": str, "variant": str, "status": str, "parent": (str, NONE), "model": dict,
                "config": dict, "metrics": dict, "data_sha256": str, "parity": dict, "results": str}
MODEL_KEYS = {"path": str, "sha256": str}
MODEL_METRICS_KEYS = {"test_mse": (int, float)}  # what `registry list` shows
# "version" is the version registered or made active; "previous" the parent, or the one displaced.
EVENT_KEYS = {"seq": int, "action": str, "version": str, "previous": (str, NONE)}


# ---- reading and checking ----------------------------------------------------------------------


def load(path, missing_ok: bool = False) -> dict:
    """The registry at path, checked; an empty one when missing_ok and there is no file yet."""
    path = Path(path)
    if missing_ok and not path.exists():
        return {"schema": SCHEMA, "versions": [], "events": []}
    registry = read_json(path, "registry")
    problem = registry_problem(registry)
    if problem:
        raise InputError(f"{path}: corrupt registry: {problem}")
    return registry


def registry_problem(registry) -> str | None:
    """What is wrong with a registry's shape and consistency, or None."""
    if not isinstance(registry, dict) or registry.get("schema") != SCHEMA:
        return f'expected a JSON object with "schema": "{SCHEMA}"'
    for key in ("versions", "events"):
        if not isinstance(registry.get(key), list):
            return f'"{key}" must be a list'
    names = []
    for i, v in enumerate(registry["versions"]):
        problem = (entry_problem(v, VERSION_KEYS) or entry_problem(v["model"], MODEL_KEYS, "model ")
                   or entry_problem(v["metrics"].get("model"), MODEL_METRICS_KEYS, "metrics model "))
        if not problem and not VERSION_NAME.fullmatch(v["version"]):
            problem = f"invalid version name {v['version']!r}"
        problem = problem or _version_problem(v, names)
        if problem:
            return f"versions[{i}]: {problem}"
        names.append(v["version"])
    active = [v["version"] for v in registry["versions"] if v["status"] == "active"]
    if len(active) > 1:
        return f"{len(active)} active versions ({', '.join(active)}); at most one may be active"
    for i, e in enumerate(registry["events"]):
        problem = entry_problem(e, EVENT_KEYS) or _event_problem(e, i, names)
        if problem:
            return f"events[{i}]: {problem}"
    return None


def entry_problem(entry, keys: dict, prefix: str = "") -> str | None:
    if not isinstance(entry, dict):
        return f"{prefix}not a JSON object"
    for key, kind in keys.items():
        if key not in entry:
            return f'missing key "{prefix}{key}"'
        if not isinstance(entry[key], kind) or (kind is int and isinstance(entry[key], bool)):
            return f'"{prefix}{key}" has the wrong type'
    return None


def _version_problem(v: dict, earlier: list) -> str | None:
    if v["status"] not in STATUSES:
        return f"unknown status {v['status']!r} (known: {', '.join(STATUSES)})"
    if v["version"] in earlier:
        return f"version {v['version']!r} listed twice"
    if v["parent"] is not None and v["parent"] not in earlier:
        return f"parent {v['parent']!r} is not an earlier version"
    return None


def _event_problem(e: dict, i: int, names: list) -> str | None:
    if e["seq"] != i + 1:
        return f"sequence number {e['seq']} where {i + 1} was expected"
    if e["action"] not in ACTIONS:
        return f"unknown action {e['action']!r} (known: {', '.join(ACTIONS)})"
    for key in ("version", "previous"):
        if e[key] is not None and e[key] not in names:
            return f"unknown version {e[key]!r}"
    return None


def find(registry: dict, version: str, path) -> dict:
    for v in registry["versions"]:
        if v["version"] == version:
            return v
    known = ", ".join(v["version"] for v in registry["versions"]) or "none"
    raise InputError(f"{path}: no version {version!r} (registered: {known})")


def active(registry: dict) -> dict | None:
    return next((v for v in registry["versions"] if v["status"] == "active"), None)


def check_sha256(model_file: Path, expected: str, source) -> str:
    """The file's sha256, or InputError when it is missing or differs from the recorded one."""
    if not model_file.is_file():
        raise InputError(f"{model_file}: model file is missing (recorded in {source})")
    actual = sha256_file(model_file)
    if actual != expected:
        raise InputError(
            f"{model_file}: sha256 {actual[:12]}... differs from {expected[:12]}... recorded in {source}; "
            "the model file changed since it was recorded"
        )
    return actual


def model_file(registry_path, entry: dict) -> Path:
    return Path(registry_path).parent / entry["model"]["path"]


# ---- changing it -------------------------------------------------------------------------------


def log(registry: dict, action: str, version: str, previous: str | None):
    seq = len(registry["events"]) + 1
    registry["events"].append({"seq": seq, "action": action, "version": version, "previous": previous})


def register(registry_path, results_path, version: str, variant: str | None = None) -> dict:
    """Add the results' variant (its "best" by default) as a staging version; returns the entry."""
    registry_path, results_path = Path(registry_path), Path(results_path)
    if not VERSION_NAME.fullmatch(version):
        raise InputError(f"invalid version name {version!r}: use letters, digits and . _ - "
                         "(starting with a letter or digit)")
    registry = load(registry_path, missing_ok=True)
    if any(v["version"] == version for v in registry["versions"]):
        raise InputError(f"{registry_path}: version {version!r} is already registered")
    results = read_json(results_path, "results JSON")
    try:
        entry, onnx_file = version_entry(results, results_path, variant)
    except (KeyError, IndexError, TypeError) as e:
        raise InputError(f"{results_path}: missing or malformed field {e} in the sweep results")
    parent = active(registry)
    entry = {"version": version, "status": "staging", "parent": parent and parent["version"], **entry}
    entry["model"]["path"] = relative_to(keep_copy(onnx_file, registry_path, version), registry_path.parent)
    entry["results"] = relative_to(results_path, registry_path.parent)
    registry["versions"].append(entry)
    log(registry, "register", version, entry["parent"])
    write_json(registry_path, registry)
    return entry


def keep_copy(onnx_file: Path, registry_path: Path, version: str) -> Path:
    """The registry's own copy of a version's model (and sidecar), beside the registry file: the
    next sweep overwrites the variant's file, and a rollback must still find the old model."""
    kept = registry_path.parent / "versions" / f"{version}.onnx"
    atomic_write(kept, onnx_file.read_bytes())
    if onnx_file.with_suffix(".json").is_file():
        atomic_write(kept.with_suffix(".json"), onnx_file.with_suffix(".json").read_bytes())
    return kept


def version_entry(results: dict, results_path: Path, name: str | None) -> tuple[dict, Path]:
    """The registry fields one sweep variant provides, after refusing what must not ship, and
    its model file."""
    if results.get("schema") != RESULTS_SCHEMA:
        raise InputError(f'{results_path}: not sweep results (expected "schema": "{RESULTS_SCHEMA}")')
    name = name or (results["best"] or {}).get("name")
    if name is None:
        raise InputError(f"{results_path}: the sweep has no best variant (every variant failed)")
    variant = find_variant(results, results_path, name)
    refuse_failed(variant, results_path)
    name, model = variant["name"], variant["model"]
    onnx_file = results_path.parent / model["path"]
    sha256 = check_sha256(onnx_file, model["sha256"], results_path)
    seed = next((s for s in variant["seeds"] if s["seed"] == variant["best_seed"]), None)
    if seed is None:
        raise InputError(f"{results_path}: variant {name!r}: no record for its exported seed {variant['best_seed']}")
    return {
        "variant": name,
        "model": {**{k: v for k, v in model.items() if k != "parity"}, "sha256": sha256},
        "parity": model["parity"],
        "config": {**variant["config"], "seed": variant["best_seed"]},  # the exported model's own
        "metrics": {
            "summary": {k: variant["summary"][k] for k in ("val_mse", "test_mse")},
            "model": {k: seed[k] for k in ("seed", "train_mse", "val_mse", "test_mse")},
        },
        "improvement": variant["improvement"],  # over the sweep's baseline; null for the baseline
        "data_sha256": results["data"]["sha256"],
    }, onnx_file


def refuse_failed(variant: dict, results_path: Path):
    name, model = variant["name"], variant["model"]
    if variant["status"] != "ok" or model is None:
        raise InputError(f"{results_path}: variant {name!r} failed ({variant['reason']}); it cannot be registered")
    if not parity_ok(model["parity"]):
        raise InputError(f"{results_path}: variant {name!r} failed its parity check {model['parity']} "
                         f"(tolerance {PARITY_TOL:g}); it cannot be registered")


def parity_ok(parity: dict) -> bool:
    """Every recorded max abs error is a number within the export's tolerance (NaN never is)."""
    return bool(parity) and all(isinstance(e, (int, float)) and e <= PARITY_TOL for e in parity.values())


def find_variant(results: dict, results_path: Path, name: str) -> dict:
    variants = [*results["variants"], *([results["combined"]] if results.get("combined") else [])]
    for v in variants:
        if v["name"] == name:
            return v
    known = ", ".join(v["name"] for v in variants)
    raise InputError(f"{results_path}: unknown variant {name!r} (known: {known})")


def relative_to(path: Path, folder: Path) -> str:
    """path as seen from folder, in forward slashes: the registry's one rule for stored paths."""
    return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()


def promote(registry_path, version: str) -> dict | None:
    """Make version active; returns the entry it archived, if any."""
    registry = load(registry_path)
    entry = find(registry, version, registry_path)
    if entry["status"] == "active":
        raise InputError(f"{registry_path}: version {version!r} is already active")
    check_sha256(model_file(registry_path, entry), entry["model"]["sha256"], registry_path)
    previous = active(registry)
    if previous:
        previous["status"] = "archived"
    entry["status"] = "active"
    log(registry, "promote", version, previous and previous["version"])
    write_json(registry_path, registry)
    return previous


def rollback(registry_path) -> tuple[dict, dict]:
    """Undo the last promote of the active version; returns (reactivated, rolled back)."""
    registry = load(registry_path)
    current = active(registry)
    if current is None:
        raise InputError(f"{registry_path}: no active version to roll back")
    promotes = [e for e in registry["events"] if e["action"] == "promote" and e["version"] == current["version"]]
    if not promotes or promotes[-1]["previous"] is None:
        raise InputError(
            f"{registry_path}: {current['version']!r} replaced no earlier version; nothing to roll back to")
    target = find(registry, promotes[-1]["previous"], registry_path)
    check_sha256(model_file(registry_path, target), target["model"]["sha256"], registry_path)
    current["status"], target["status"] = "rolled_back", "active"
    log(registry, "rollback", target["version"], current["version"])
    write_json(registry_path, registry)
    return target, current


def table(registry: dict) -> str:
    """version, status, variant, the exported model's test MSE, parent: one row per version."""
    rows = [("version", "status", "variant", "test MSE (model)", "parent")]
    for v in registry["versions"]:
        rows.append((v["version"], v["status"], v["variant"], f"{v['metrics']['model']['test_mse']:.6f}",
                     v["parent"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# ---- A/B comparison ----------------------------------------------------------------------------


def paired_bootstrap_ci(d: np.ndarray, seed: int = 0, resamples: int = 2000, level: float = 0.95):
    """Percentile interval of mean(d) over resampled rows. d holds both models' errors per row,
    so one index draw per resample keeps the pair together."""
    n = len(d)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    chunk = max(1, (1 << 22) // n)  # resamples per draw: caps the (chunk, n) index matrix at 32 MB
    means = np.concatenate([
        d[rng.integers(0, n, (min(chunk, resamples - i), n))].mean(axis=1)  # (chunk,)
        for i in range(0, resamples, chunk)
    ])
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def compare(path_a, path_b, data_path, target=None, seed: int = 0, resamples: int = 2000,
            test_rows: bool = False) -> dict:
    """Both models' MSE on the same rows and MSE_B - MSE_A with its paired-bootstrap 95% CI.
    test_rows: only the test split both models held out of the file they were trained on."""
    meta_a, meta_b = read_metadata(path_a), read_metadata(path_b)
    if meta_a["features"] != meta_b["features"]:
        raise InputError(f"{path_b}: its feature list differs from {path_a}'s "
                         f"({first_difference(meta_a['features'], meta_b['features'])})")
    data = load_dataset(data_path, target=target or meta_a["target"], features=meta_a["features"], unit_target=False,
                        min_rows=2)  # scoring only: no split
    X, y = data.X, data.y
    if test_rows:
        rows = held_out(data, meta_a, meta_b)
        X, y = X[rows], y[rows]
    elif data.sha256 in (meta_a.get("data_sha256"), meta_b.get("data_sha256")):
        # Training rows reward memorizing: the comparison leans toward the more overfit model.
        print(f"npmlp: warning: {data_path}: a model was trained on this file; compare on held-out rows "
              "(--test-rows)", file=sys.stderr)
    sq_a = (predict_onnx(path_a, X) - y) ** 2  # (n,)
    sq_b = (predict_onnx(path_b, X) - y) ** 2
    d = sq_b - sq_a
    lo, hi = paired_bootstrap_ci(d, seed, resamples)
    return {
        "a": {"path": str(path_a), "mse": float(sq_a.mean())},
        "b": {"path": str(path_b), "mse": float(sq_b.mean())},
        "data": {"path": str(data_path), "sha256": data.sha256, "rows": len(d), "target": data.target,
                 "subset": "test split" if test_rows else "all rows"},
        "diff": float(d.mean()),
        "ci95": [lo, hi],
        "bootstrap": {"seed": seed, "resamples": resamples},
        "verdict": verdict(lo, hi),
    }


def held_out(data, meta_a: dict, meta_b: dict) -> np.ndarray:
    """The test split's rows, when both models were trained on this very file with the same split."""
    splits = {(m["data_sha256"], m["config"]["split_seed"], m["config"]["val_fraction"], m["config"]["test_fraction"])
              for m in (meta_a, meta_b)}
    if len(splits) > 1 or next(iter(splits))[0] != data.sha256:
        raise InputError(f"{data.path}: --test-rows needs both models trained on this file with the same split")
    _, seed, val, test = next(iter(splits))
    return split_rows(len(data.y), seed, val, test).test


def verdict(lo: float, hi: float) -> str:
    """From the CI of MSE_B - MSE_A: positive means B's errors are larger."""
    return "A better" if lo > 0 else "B better" if hi < 0 else "no detectable difference"


def first_difference(a: list, b: list) -> str:
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} features"
    i = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"position {i + 1}: {a[i]!r} vs {b[i]!r}"


def compare_text(r: dict) -> str:
    lo, hi = r["ci95"]
    return "\n".join([
        f"A  MSE {r['a']['mse']:.6f}  {r['a']['path']}",
        f"B  MSE {r['b']['mse']:.6f}  {r['b']['path']}",
        f"on {r['data']['rows']} rows ({r['data']['subset']}) of {r['data']['path']} (target {r['data']['target']})",
        f"MSE_B - MSE_A = {r['diff']:+.6f}, 95% CI [{lo:+.6f}, {hi:+.6f}] "
        f"(paired bootstrap, {r['bootstrap']['resamples']} resamples, seed {r['bootstrap']['seed']})",
        f"verdict: {r['verdict']}",
    ])


# ---- commands ----------------------------------------------------------------------------------


def non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {text!r}")
    return int(text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def add_commands(sub):
    at = argparse.ArgumentParser(add_help=False)
    at.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY,
                    help=f"registry file (default {DEFAULT_REGISTRY})")

    p = sub.add_parser("register", parents=[at], help="add a sweep variant's model to the registry as a new version")
    p.add_argument("--results", required=True, type=Path, help="the sweep's optimization_results.json")
    p.add_argument("--version", required=True, help="new version name (letters, digits, . _ -)")
    p.add_argument("--variant", default=None, help="variant name (default: the sweep's best)")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("registry", help="list versions, promote one, or roll back")
    reg = p.add_subparsers(metavar="ACTION", required=True)
    reg.add_parser("list", parents=[at], help="one row per version").set_defaults(func=cmd_list)
    q = reg.add_parser("promote", parents=[at], help="make VERSION active (the active one is archived)")
    q.add_argument("version", metavar="VERSION")
    q.set_defaults(func=cmd_promote)
    reg.add_parser("rollback", parents=[at], help="undo the last promote of the active version").set_defaults(
        func=cmd_rollback)

    p = sub.add_parser("compare", help="A/B: both models' MSE on the same rows, with a paired-bootstrap CI")
    p.add_argument("model_a", type=Path, metavar="A.onnx")
    p.add_argument("model_b", type=Path, metavar="B.onnx")
    p.add_argument("--data", required=True, type=Path, help="rows to score: held-out data, not the training file")
    p.add_argument("--target", default=None, help="target column (default: the models' target)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--test-rows", action="store_true",
                   help="score only the test split both models held out of this file (their training data)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_compare)


def cmd_register(args) -> int:
    v = register(args.registry, args.results, args.version, args.variant)
    print(f"registered {v['version']} ({v['variant']}, exported seed's test MSE "
          f"{v['metrics']['model']['test_mse']:.6f}, parent {v['parent'] or '-'}) as {v['status']} in {args.registry}")
    gain = v["improvement"]
    if gain and gain["within_noise"]:
        print(f"npmlp: warning: {v['variant']}'s gain over the baseline ({gain['percent']:+.2f}% test MSE) is "
              "within noise; the report recommends keeping the baseline", file=sys.stderr)
    return 0


def cmd_list(args) -> int:
    print(table(load(args.registry)))
    return 0


def cmd_promote(args) -> int:
    previous = promote(args.registry, args.version)
    print(f"{args.version} is active" + (f"; {previous['version']} archived" if previous else ""))
    return 0


def cmd_rollback(args) -> int:
    target, undone = rollback(args.registry)
    print(f"{target['version']} is active again; {undone['version']} rolled back")
    return 0


def cmd_compare(args) -> int:
    r = compare(args.model_a, args.model_b, args.data, args.target, args.seed, args.resamples, args.test_rows)
    print(dumps_json(r).rstrip("\n") if args.json else compare_text(r))
    return 0
