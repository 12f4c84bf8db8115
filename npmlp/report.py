"""The model-variations report: Markdown plus SVG figures, rendered from a sweep's results JSON.

`load_results` checks a results file (schema "npmlp.sweep/1") and `write_report` renders it. Nothing
is trained or measured here: every number is read from the JSON, and every statement (the best,
trends, what is within noise, what to ship) is derived from those numbers. The same JSON gives
byte-identical files. Not a place for statistics: means, intervals and noise flags come from the
sweep; this module only compares and formats them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from . import svg
from .files import InputError, atomic_write

SCHEMA = "npmlp.sweep/1"
DEFAULT_RESULTS = Path("assets/models/optimized/optimization_results.json")
DEFAULT_OUT = Path("reports/MODEL_VARIATIONS_v1.1.md")
DASH = "—"
TOP = 5

# ---- the results file: what the report reads, checked before anything is rendered ----------------


class _Maybe:
    """A spec that also accepts null."""

    def __init__(self, spec):
        self.spec = spec


_STAT = {"mean": "num", "std": "num", "ci95": "pair?", "n": "int"}
_STATS = ("train_mse", "val_mse", "test_mse", "seconds", "best_epoch", "epochs_run")
_IMPROVEMENT = {"test_mse_diff": "num", "percent": "num", "ci95": "pair?", "within_noise": "bool"}
_SEED = {
    "seed": "int", "status": "status", "reason": "str?", "val_mse": "num?", "test_mse": "num?",
    "best_epoch": "int?", "epochs_run": "int?",
    "history": _Maybe({"train_mse": ["num?"], "val_mse": ["num?"]}),
}
_CONFIG = {
    "hidden": ["int"], "dropout": "num", "sigmoid": "bool", "lr": "num", "beta1": "num", "beta2": "num",
    "eps": "num", "weight_decay": "num", "batch_size": "int", "epochs": "int", "patience": "int",
    "min_delta": "num", "dtype": "str",
}
_VARIANT = {
    "name": "str", "axis": "str?", "value": "any", "config": _CONFIG, "status": "status", "reason": "str?",
    "model": _Maybe({"path": "str", "bytes": "int", "sha256": "str", "n_params": "int", "hidden": ["int"]}),
    "best_seed": "int?", "steps_per_epoch": "int", "seeds": [_SEED],
    "summary": _Maybe({k: _Maybe(_STAT) for k in _STATS}), "improvement": _Maybe(_IMPROVEMENT),
}
_RESULTS = {
    "grid": {"name": "str", "path": "str", "sha256": "str", "mode": "str", "seeds": ["int"],
             "baseline": "str", "axes": "dict"},
    "environment": {k: "str" for k in ("npmlp", "numpy", "onnx", "onnxruntime", "python", "cpu", "platform")},
    "data": {"path": "str", "sha256": "str", "rows": "int", "n_features": "int", "target": "str",
             "split": {k: "int" for k in ("seed", "train", "val", "test")},
             "noise_floor": _Maybe({"test": "num"}), "source": "dict?"},
    "linear_baseline": {"val_mse": "num", "test_mse": "num"},
    "variants": [_VARIANT],
    "best": _Maybe({"name": "str", "by": "str", "improvement": _Maybe(_IMPROVEMENT)}),  # null: nothing trained
    "axis_best": "dict",
    "combined": _Maybe(_VARIANT),
    "timing": {"started": "str", "finished": "str", "wall_seconds": "num"},
}
_TYPES = {  # type name -> (test, what the message asks for)
    "num": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "status": (lambda v: v in ("ok", "failed"), '"ok" or "failed"'),
    "pair": (lambda v: isinstance(v, list) and len(v) == 2 and all(_TYPES["num"][0](x) for x in v),
             "a list of two numbers"),
    "any": (lambda v: True, "anything"),
}


class _Bad(Exception):
    """One problem at one place in the results; load_results adds the file name."""


def load_results(path) -> dict:
    """The parsed results file, or InputError naming the file and its first problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the results file ({getattr(e, 'strerror', None) or e})")
    try:
        results = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno}, column {e.colno}: malformed JSON ({e.msg})")
    except _Bad as e:
        raise InputError(f"{path}: {e}")
    return check_results(results, path)


def check_results(results, source) -> dict:
    """What the report relies on, checked: the schema's keys and types, and the names it follows.
    The sweep checks its own output with this before writing it. InputError naming source."""
    try:
        _check_schema(results)
        _check(results, _RESULTS, "")
        _check_names(results)
    except _Bad as e:
        raise InputError(f"{source}: {e}")
    return results


def _no_constant(name: str):
    raise _Bad(f"{name} is not a JSON value (the schema stores null instead)")


def _check_schema(results):
    if not isinstance(results, dict):
        raise _Bad("the top level should be a JSON object")
    if results.get("schema") != SCHEMA:
        raise _Bad(f"schema is {json.dumps(results.get('schema'))}, expected {json.dumps(SCHEMA)}")


def _check(value, spec, where: str):
    """Walk value against spec: required keys, types, and null only where the spec allows it."""
    if isinstance(spec, _Maybe):
        if value is None:
            return
        spec = spec.spec
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise _Bad(f'"{where}" should be an object, not {_kind(value)}')
        for key, sub in spec.items():
            at = f"{where}.{key}" if where else key
            if key not in value:
                raise _Bad(f'missing key "{at}"')
            _check(value[key], sub, at)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise _Bad(f'"{where}" should be a list, not {_kind(value)}')
        for i, item in enumerate(value):
            _check(item, spec[0], f"{where}[{i}]")
    elif not (value is None and spec.endswith("?")):
        ok, need = _TYPES[spec.rstrip("?")]
        if not ok(value):
            raise _Bad(f'"{where}" should be {need}, not {_kind(value)}')


def _kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", str: f"the string {json.dumps(value)}",
            list: "a list", dict: "an object"}[type(value)]


def _check_names(r: dict):
    """The cross references the report follows: names unique and present, ok variants complete."""
    if not r["variants"]:
        raise _Bad('"variants" is empty')
    entries = [(f"variants[{i}]", v) for i, v in enumerate(r["variants"])]
    entries += [("combined", r["combined"])] if r["combined"] else []
    names = set()
    for where, v in entries:
        if v["name"] in names:
            raise _Bad(f'"{where}.name": duplicate variant name {json.dumps(v["name"])}')
        names.add(v["name"])
        if v["status"] == "ok":
            _check_ok(v, where)
    refs = [("grid.baseline", r["grid"]["baseline"])] + ([("best.name", r["best"]["name"])] if r["best"] else [])
    refs += [(f"axis_best.{axis}", name) for axis, name in sorted(r["axis_best"].items()) if name is not None]
    for where, name in refs:
        if name not in names:
            raise _Bad(f'"{where}" names no variant: {json.dumps(name)}')


def _check_ok(v: dict, where: str):
    if v["summary"] is None or any(v["summary"][k] is None for k in _STATS):
        raise _Bad(f'"{where}.summary" is incomplete for a variant with status "ok"')
    if not any(s["seed"] == v["best_seed"] and s["status"] == "ok" for s in v["seeds"]):
        raise _Bad(f'"{where}.best_seed" {v["best_seed"]} is not one of its ok seeds')


# ---- the command ----------------------------------------------------------------------------------


def add_commands(subparsers):
    p = subparsers.add_parser("report", help="render the Markdown report and SVG figures from a sweep's results")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help=f"results JSON (default {DEFAULT_RESULTS})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown file (default {DEFAULT_OUT})")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    written = write_report(args.results, args.out)
    print(f"wrote {args.out} and {len(written) - 1} figures in {args.out.parent / 'figures'}")
    return 0


def write_report(results_path, out_path) -> list[Path]:
    """Render and write the figures, then the report (so it never links a missing figure)."""
    files = render(load_results(results_path), Path(results_path), Path(out_path))
    return [atomic_write(path, text) for path, text in files.items()]


def render(r: dict, results_path: Path, out_path: Path) -> dict[Path, str]:
    """{path: text} for every figure and, last, the report."""
    s = _Sweep(r, results_path, out_path)
    figures = _figures(s)
    if s.best is None:  # nothing to compare: say so, and show what failed and why
        sections = [_header(s), _axis_section(s), _methodology(s), _failures(s), _files(s, figures)]
    else:
        sections = [_header(s), _best_section(s), _axis_section(s), _top_section(s), _insights(s),
                    _reachable(s), _methodology(s), _recommendations(s), _failures(s), _files(s, figures)]
    return {**figures, out_path: "\n\n".join(sections) + "\n"}


class _Sweep:
    """The results with the lookups every section needs."""

    def __init__(self, r: dict, results_path: Path, out_path: Path):
        self.r, self.results_path, self.out_path = r, results_path, out_path
        self.all = r["variants"] + ([r["combined"]] if r["combined"] else [])
        self.by_name = {v["name"]: v for v in self.all}
        self.baseline = self.by_name[r["grid"]["baseline"]]
        self.best = self.by_name[r["best"]["name"]] if r["best"] else None  # None: no variant trained
        self.axes = list(dict.fromkeys(v["axis"] for v in r["variants"] if v["axis"] is not None))
        self.version = version_label(r["grid"]["name"])

    def ok(self) -> list[dict]:
        return [v for v in self.all if v["status"] == "ok"]

    def twins(self, v: dict) -> list[dict]:
        """Other variants whose results match v seed for seed: the same model under another name."""
        key = _fingerprint(v)
        return [w for w in self.all if w is not v and key is not None and _fingerprint(w) == key]

    def axis_rows(self, axis: str) -> list[dict]:
        """The baseline and the axis's variants, in the grid's order of values for that axis."""
        values = self.r["grid"]["axes"].get(axis, [])
        rows = [self.baseline] + [v for v in self.r["variants"] if v["axis"] == axis]
        order = {id(v): _index(values, self.value(v, axis)) for v in rows}
        return sorted(rows, key=lambda v: order[id(v)])  # stable: the baseline before its twin

    def value(self, v: dict, axis: str):
        return v["value"] if v["axis"] == axis else v["config"].get(axis)

    def link(self, relative_to_results: str) -> str:
        """A path stored in the results, as seen from the report's folder."""
        target = os.path.abspath(self.results_path.parent / relative_to_results)
        return Path(os.path.relpath(target, os.path.abspath(self.out_path.parent))).as_posix()


def _fingerprint(v: dict):
    if v["status"] != "ok":
        return None
    return tuple((s["seed"], s["status"], s["val_mse"], s["test_mse"]) for s in v["seeds"])


def _index(values: list, value) -> int:
    return values.index(value) if value in values else -1


def version_label(grid_name: str) -> str:
    """'v1_1' -> 'v1.1'; any other grid name is used as it is."""
    return grid_name.replace("_", ".") if re.fullmatch(r"v\d+(_\d+)*", grid_name) else grid_name


# ---- formatting: fixed, so the same numbers always print the same ---------------------------------


def mse(v) -> str:
    return DASH if v is None else f"{v:.6f}"


def pct(v) -> str:
    return DASH if v is None else f"{v:+.2f}%"


def secs(v) -> str:
    return DASH if v is None else f"{v:.1f} s"


def mean_std(stat, fmt=mse) -> str:
    return "failed" if stat is None else f"{fmt(stat['mean'])} ± {fmt(stat['std'])}"


def value_text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def code(name: str) -> str:
    return f"`{name}`"


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows])


def _stat(v: dict, key: str):
    return v["summary"][key] if v["summary"] else None


def _mean(v: dict, key: str):
    stat = _stat(v, key)
    return None if stat is None else stat["mean"]


def _config_text(config: dict) -> str:
    keys = ("hidden", "dropout", "lr", "batch_size", "weight_decay")
    parts = [f"{k} {value_text(config[k])}" for k in keys]
    return ", ".join(parts + [f"epochs ≤ {config['epochs']}", f"patience {config['patience']}"])


def _changes(s: _Sweep, v: dict) -> str:
    """What differs from the baseline's config ('lr 0.001 → 0.003'), the model seed aside."""
    base = s.baseline["config"]
    diffs = [f"{k} {value_text(base.get(k))} → {value_text(x)}"
             for k, x in sorted(v["config"].items()) if k != "seed" and base.get(k) != x]
    return ", ".join(diffs) or "none"


def _change_label(s: _Sweep, v: dict) -> str:
    if v is s.baseline:
        return "baseline"
    if v["axis"] is not None:
        return f"{v['axis']} = {value_text(v['value'])}"
    return _changes(s, v)


def _relation(v: dict) -> str:
    """How v's test MSE compares with the baseline's: 'better', 'worse', 'within' noise, 'unknown'."""
    imp = v["improvement"]
    if imp is None:
        return "unknown"  # the baseline (or this variant) failed: nothing to compare
    if imp["within_noise"]:
        return "within"
    return "better" if imp["test_mse_diff"] > 0 else "worse"


_NOISE_WORDS = {"better": "better than the baseline beyond noise", "worse": "worse than the baseline beyond noise",
                "within": "within noise of the baseline", "unknown": "not comparable with the baseline"}


def _improvement_cell(s: _Sweep, v: dict) -> str:
    if v is s.baseline:
        return "baseline"
    if v["status"] != "ok" or v["improvement"] is None:
        return "failed" if v["status"] != "ok" else DASH
    noise = "within noise" if v["improvement"]["within_noise"] else "beyond noise"
    return f"{pct(v['improvement']['percent'])} ({noise})"


def _status_cell(v: dict) -> str:
    if v["status"] != "ok":
        return f"failed: {v['reason'] or 'no reason recorded'}"
    failed = sum(seed["status"] != "ok" for seed in v["seeds"])
    return f"ok ({failed} of {len(v['seeds'])} seeds failed)" if failed else "ok"


def _names(vs: list[dict]) -> str:
    names = [code(v["name"]) for v in vs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# ---- sections -------------------------------------------------------------------------------------


def _header(s: _Sweep) -> str:
    r, split = s.r, s.r["data"]["split"]
    finished = r["timing"]["finished"]
    date = finished[:10] if re.match(r"\d{4}-\d{2}-\d{2}", finished) else finished
    rows_total = split["train"] + split["val"] + split["test"]
    shares = "/".join(f"{100 * split[k] / rows_total:.0f}" for k in ("train", "val", "test"))
    seeds = r["grid"]["seeds"]
    statuses = [v["status"] for v in s.all]
    tested = len(r["variants"]) - 1
    rows = [
        ["Sweep finished", f"{date} (wall time {secs(r['timing']['wall_seconds'])})"],
        ["Baseline", f"{code(s.baseline['name'])}: {_config_text(s.baseline['config'])}"],
        ["Method", f"{r['grid']['mode']} over {len(s.axes)} axes ({', '.join(s.axes)}); "
                   f"{len(seeds)} seeds ({', '.join(map(str, seeds))}) per variant; split "
                   f"{split['train']}/{split['val']}/{split['test']} rows ({shares}, seed {split['seed']})"],
        ["Variants tested", f"{tested} besides the baseline" + (", plus the combined config" if r["combined"] else "")],
        ["Status", f"{statuses.count('ok')} ok, {statuses.count('failed')} failed"],
        ["Grid", f"{code(r['grid']['name'])} from {code(r['grid']['path'])}"],
    ]
    title = f"# Model variations report {s.version}"
    return "\n\n".join([title, table(["Sweep", ""], rows), f"**Verdict.** {_verdict(s)[1]}"])


def _verdict(s: _Sweep) -> tuple[bool, str]:
    """(ship the best?, an honest account): a win counts only outside the noise, twins never win."""
    if s.best is None:
        return False, "No variant trained successfully, so there is nothing to ship; see Failed variants."
    group = [s.best] + s.twins(s.best)
    who, plural = _names(group), len(group) > 1
    tie = (f" {who} are indistinguishable (identical results under different names): no winner between them."
           if plural else "")
    imp = s.best["improvement"]
    if s.baseline["status"] != "ok":
        return False, (f"The baseline failed, so no variant can be shown to beat it; the best on validation is {who}, "
                       f"with test MSE {mse(_mean(s.best, 'test_mse'))}. Rerun the baseline first." + tie)
    if s.baseline in group or imp is None:
        return False, "No variant beats the baseline: the baseline has the lowest validation MSE." + tie
    has, is_, beats = ("have", "are", "beat") if plural else ("has", "is", "beats")
    if imp["within_noise"]:
        return False, (f"No variant beats the baseline beyond noise: the best on validation, {who}, {has} "
                       f"{_vs_baseline(s)}, which contains 0." + tie)
    if imp["test_mse_diff"] <= 0:
        return False, (f"No variant beats the baseline: the best on validation, {who}, {is_} worse on test: "
                       f"{_vs_baseline(s)}." + tie)
    return True, f"{who} {beats} the baseline beyond noise: {_vs_baseline(s)}, which excludes 0." + tie


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _vs_baseline(s: _Sweep) -> str:
    imp = s.best["improvement"]
    return (f"test MSE {mse(_mean(s.best, 'test_mse'))} vs {mse(_mean(s.baseline, 'test_mse'))} "
            f"({pct(imp['percent'])}, {ci_text(imp['ci95'])})")


def ci_text(ci) -> str:
    """The improvement's interval; the sweep gives none for a single seed (and calls it noise)."""
    return "no interval: a single seed" if ci is None else f"95% CI of the difference [{mse(ci[0])}, {mse(ci[1])}]"


def _best_section(s: _Sweep) -> str:
    group = [s.best] + s.twins(s.best)
    title = " = ".join(code(v["name"]) for v in group) + (" (indistinguishable)" if len(group) > 1 else "")
    lines = [f"## Best variant: {title}",
             f"Selected by the lowest {s.r['best']['by']}; test MSE is reported, never used to choose. "
             + (f"Candidate version label: **{s.version}** (grid {code(s.r['grid']['name'])})."
                if _verdict(s)[0] else f"Not a candidate for version {s.version}: {_lower_first(_verdict(s)[1])}")]
    if len(group) > 1:
        lines.append("These variants gave identical results seed for seed, so the report names no winner "
                     "between them: either file ships the same behaviour.")
    imp = s.best["improvement"]
    if imp is not None:
        noise = "within noise" if imp["within_noise"] else "beyond noise"
        way = "lower" if imp["test_mse_diff"] >= 0 else "higher"
        lines.append(f"Improvement over the baseline on test MSE: {pct(imp['percent'])} (test MSE {way} by "
                     f"{mse(abs(imp['test_mse_diff']))}; {ci_text(imp['ci95'])}): {noise}.")
    rows = [[label] + [fn(s, v) for v in group] for label, fn in _BEST_ROWS]
    return "\n\n".join(lines + [table(["", *(code(v["name"]) for v in group)], rows)])


def _best_epoch_text(s: _Sweep, v: dict) -> str:
    seed = next(x for x in v["seeds"] if x["seed"] == v["best_seed"])
    stat = _stat(v, "best_epoch")
    return f"{seed['best_epoch']} (exported seed {seed['seed']}); {stat['mean']:.1f} ± {stat['std']:.1f} over seeds"


def _model_text(s: _Sweep, v: dict) -> str:
    m = v["model"]
    return DASH if m is None else f"[{Path(m['path']).name}]({s.link(m['path'])})"


def _kb(model: dict) -> str:
    return f"{model['bytes'] / 1024:.1f} KB"


def _n_seeds(v: dict) -> str:
    return f" ({_stat(v, 'test_mse')['n']} seeds)"


_BEST_ROWS = [  # (label, text for one variant); the best is always an ok variant
    ("Configuration", lambda s, v: _config_text(v["config"])),
    ("Changed from baseline", lambda s, v: _changes(s, v)),
    ("Test MSE", lambda s, v: mean_std(_stat(v, "test_mse")) + _n_seeds(v)),
    ("Validation MSE", lambda s, v: mean_std(_stat(v, "val_mse")) + _n_seeds(v)),
    ("Training time per seed", lambda s, v: mean_std(_stat(v, "seconds"), secs)),
    ("Model size", lambda s, v: DASH if v["model"] is None else f"{_kb(v['model'])} ({v['model']['bytes']:,} bytes)"),
    ("Parameters", lambda s, v: DASH if v["model"] is None else f"{v['model']['n_params']:,}"),
    ("Best epoch", _best_epoch_text),
    ("Model", _model_text),
]


def _axis_section(s: _Sweep) -> str:
    parts = ["## Results by axis",
             "Each table holds the baseline and the variants that change one setting; **best** marks the "
             "lowest validation MSE on the axis (baseline included). Improvement is on test MSE against "
             "the baseline; beyond noise means its 95% interval excludes 0."]
    for axis in s.axes:
        curves = f"![Validation MSE by epoch along {axis}]({_figure_name(s, axis)})"
        parts += [f"### {axis}", _axis_table(s, axis), curves]
    return "\n\n".join(parts)


def _axis_table(s: _Sweep, axis: str) -> str:
    best = s.by_name.get(s.r["axis_best"].get(axis))
    rows = s.axis_rows(axis)
    tied = [v for v in rows if best is not None and (v is best or v in s.twins(best))]
    out = []
    for v in rows:
        mark = (" **tied best**" if len(tied) > 1 else " **best**") if v in tied else ""
        value = value_text(s.value(v, axis)) + (" (baseline)" if v is s.baseline else "")
        out.append([code(v["name"]) + mark, value, mean_std(_stat(v, "test_mse")), mean_std(_stat(v, "val_mse")),
                    _improvement_cell(s, v), mean_std(_stat(v, "seconds"), secs), _status_cell(v)])
    header = ["Variant", axis, "Test MSE", "Val MSE", "Improvement", "Time per seed", "Status"]
    return table(header, out)


def _ranked(s: _Sweep) -> list[dict]:
    return sorted(s.ok(), key=lambda v: _mean(v, "val_mse"))  # stable: grid order breaks ties


def _top_section(s: _Sweep) -> str:
    ranked = _ranked(s)
    rows = []
    for v in ranked[:TOP]:
        val = _mean(v, "val_mse")
        rank = 1 + sum(_mean(w, "val_mse") < val for w in ranked)
        tie = "=" if sum(_mean(w, "val_mse") == val for w in ranked) > 1 else ""
        rows.append([f"{rank}{tie}", code(v["name"]), _change_label(s, v), mse(val),
                     mse(_mean(v, "test_mse")), _improvement_cell(s, v)])
    header = ["Rank", "Variant", "Change", "Val MSE (mean)", "Test MSE (mean)", "Improvement"]
    note = ["`=` marks a tie: equal mean validation MSE."] if any("=" in row[0] for row in rows) else []
    chart = f"![Test MSE per variant with 95% intervals]({_figure_name(s, None)})"
    return "\n\n".join([f"## Top {TOP} by validation MSE", table(header, rows), *note, chart])


# ---- insights: statements derived from the numbers ------------------------------------------------


def _insights(s: _Sweep) -> str:
    bullets = [_axis_insight(s, axis) for axis in s.axes]
    bullets += _twin_insights(s) + [_runner_up(s)] + _epoch_cap(s)
    return "## Insights\n\n" + "\n".join(f"- {b}" for b in bullets if b)


def _axis_points(s: _Sweep, axis: str) -> list[tuple]:
    """[(sort key, value, variant)] for the ok rows of an axis, one per value, ordered along the axis."""
    seen, points = set(), []
    for v in s.axis_rows(axis):
        value = s.value(v, axis)
        key = _order_key(value, s.r["data"]["n_features"])
        if v["status"] == "ok" and key is not None and json.dumps(value) not in seen:
            seen.add(json.dumps(value))
            points.append((key, value, v))
    return sorted(points, key=lambda p: p[0])


def _order_key(value, n_features: int):
    """Numbers by value, hidden widths by parameter count; anything else has no order."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, list) and value and all(isinstance(h, int) for h in value):
        sizes = [n_features, *value, 1]
        return sum((a + 1) * b for a, b in zip(sizes, sizes[1:]))
    return None


def trend(points: list[tuple], what: str, axis: str, fmt) -> str:
    """'val MSE falls as lr goes from 0.0001 to 0.001 (a → b), then rises to 0.01 (c)'.

    points: [(value text, y)] ordered along the axis.
    """
    # Compared as printed, so a change too small to show is not called a rise or a fall.
    signs = [0 if fmt(a[1]) == fmt(b[1]) else (b[1] > a[1]) - (b[1] < a[1]) for a, b in zip(points, points[1:])]
    runs = []  # [sign, index where the run ends]
    for i, sign in enumerate(signs):
        if runs and runs[-1][0] == sign:
            runs[-1][1] = i + 1
        else:
            runs.append([sign, i + 1])
    verb = {1: "rises", -1: "falls", 0: "stays level"}
    (sign, end), rest = runs[0], runs[1:]
    text = (f"{what} {verb[sign]} as {axis} goes from {points[0][0]} to {points[end][0]} "
            f"({fmt(points[0][1])} → {fmt(points[end][1])})")
    return text + "".join(f", then {verb[sg]} to {points[e][0]} ({fmt(points[e][1])})" for sg, e in rest)


def _axis_insight(s: _Sweep, axis: str) -> str:
    points = _axis_points(s, axis)
    parts = []
    if len(points) >= 2:
        parts.append(trend([(value_text(p[1]), _mean(p[2], "val_mse")) for p in points], "val MSE", axis, mse))
        # Cost is per epoch: time per seed mostly says when early stopping struck. Only the axes
        # that change the work of an epoch get a time trend; elsewhere it would be timing noise.
        if axis in ("batch_size", "hidden"):
            parts.append(_epoch_time(points, axis))
    parts.append(_noise_sentence(s, [v for v in s.r["variants"] if v["axis"] == axis]))
    return f"**{axis}**: " + "; ".join(parts) + "."


def _epoch_time(points: list[tuple], axis: str) -> str:
    """Time per epoch, so early stopping at different epochs does not hide the cost of a setting."""
    per_epoch = [(value_text(p[1]), _mean(p[2], "seconds") / _mean(p[2], "epochs_run")) for p in points]
    text = trend(per_epoch, "time per epoch", axis, lambda x: f"{x:.2f} s")
    if axis == "batch_size":
        text += f", with {' → '.join(str(p[2]['steps_per_epoch']) for p in points)} steps per epoch"
    return text


def _noise_sentence(s: _Sweep, variants: list[dict]) -> str:
    groups = {k: [] for k in ("better", "worse", "within", "unknown", "failed")}
    for i, v in enumerate(variants):
        if any(w in variants[:i] for w in s.twins(v)):
            continue  # a twin says nothing new; the twin insight names it
        kind = _relation(v) if v["status"] == "ok" else "failed"
        detail = f" ({pct(v['improvement']['percent'])})" if kind in ("better", "worse") else ""
        groups[kind].append(value_text(v["value"]) + detail)
    words = {**_NOISE_WORDS, "failed": "failed"}
    said = [f"{words[k]}: {', '.join(names)}" for k, names in groups.items() if names]
    return "on test MSE " + "; ".join(said) if said else "no variants"


def _twin_insights(s: _Sweep) -> list[str]:
    out, seen = [], set()
    for v in s.all:
        group = [v] + s.twins(v)
        if len(group) > 1 and v["name"] not in seen:
            seen.update(w["name"] for w in group)
            out.append(f"{_names(group)} gave identical results seed for seed: the same model under different "
                       f"names, so none of them can be preferred over another.")
    return out


def _runner_up(s: _Sweep) -> str:
    """Is the best separated from the next distinct result, judged by the validation intervals?"""
    group = [s.best] + s.twins(s.best)
    rest = [v for v in _ranked(s) if v not in group]
    if not rest or _stat(s.best, "val_mse")["ci95"] is None or _stat(rest[0], "val_mse")["ci95"] is None:
        return ""
    a, b = _stat(s.best, "val_mse")["ci95"], _stat(rest[0], "val_mse")["ci95"]
    overlap = a[0] <= b[1] and b[0] <= a[1]
    how = ("overlap, so the two are not separated beyond noise" if overlap
           else "do not overlap, so the best is ahead beyond noise")
    return (f"The runner-up {code(rest[0]['name'])} has val MSE {mse(_mean(rest[0], 'val_mse'))} against the best's "
            f"{mse(_mean(s.best, 'val_mse'))}; their 95% intervals [{mse(b[0])}, {mse(b[1])}] and "
            f"[{mse(a[0])}, {mse(a[1])}] {how}.")


def _capped(v: dict) -> list[dict]:
    """Ok seeds that stopped at the epoch limit while still improving (best epoch = last epoch)."""
    cap = v["config"]["epochs"]
    return [x for x in v["seeds"] if x["status"] == "ok" and x["epochs_run"] == cap and x["best_epoch"] == cap]


def _epoch_cap(s: _Sweep) -> list[str]:
    capped = [f"{code(v['name'])} ({len(_capped(v))} of {len(v['seeds'])} seeds)" for v in s.ok() if _capped(v)]
    if not capped:
        return []
    limits = sorted({v["config"]["epochs"] for v in s.ok()})
    return [f"Still improving at the epoch limit ({', '.join(map(str, limits))}): {', '.join(capped)}; their MSE "
            f"may fall further with more epochs."]


# ---- reachable error, methodology, recommendations, failures, files --------------------------------


def _reachable(s: _Sweep) -> str:
    floor = s.r["data"]["noise_floor"]
    linear = s.r["linear_baseline"]["test_mse"]
    rows = [("Linear least squares", linear),
            (f"Baseline MLP {code(s.baseline['name'])}", _mean(s.baseline, "test_mse"))]
    if s.best is not s.baseline:
        rows.append((f"Best {code(s.best['name'])}", _mean(s.best, "test_mse")))
    parts = ["## Noise floor and linear baseline"]
    if floor is None:
        parts.append("No noise floor is known for this data (it came without the generator's sidecar), so the "
                     "share of the reachable error cannot be given; the linear model is the reference.")
        below = (lambda x: DASH if x is None else f"{100 * (linear - x) / linear:.2f}%")
        parts.append(table(["Model", "Test MSE", "MSE below the linear model's"],
                           [[name, mse(x), below(x)] for name, x in rows]))
        return "\n\n".join(parts)
    gap = linear - floor["test"]
    closed = (lambda x: DASH if x is None or gap <= 0 else f"{100 * (linear - x) / gap:.2f}%")
    parts.append(f"The noise floor is the irreducible error of the data's own noise: no model can go below it "
                 f"on average. The reachable gap is linear MSE minus the floor ({mse(gap)} on test).")
    table_rows = [["Noise floor (irreducible)", mse(floor["test"]), DASH]]
    parts.append(table(["Model", "Test MSE", "Share of the reachable gap closed"],
                       table_rows + [[name, mse(x), closed(x)] for name, x in rows]))
    best = _mean(s.best, "test_mse")
    parts.append(f"The best MLP closes {closed(best)} of the gap between the linear model and the noise floor; "
                 f"{mse(best - floor['test'])} of test MSE remains above the floor.")
    return "\n\n".join(parts)


def _methodology(s: _Sweep) -> str:
    d, split, c, env = s.r["data"], s.r["data"]["split"], s.baseline["config"], s.r["environment"]
    optimizer = "AdamW (decoupled weight decay)" if c["weight_decay"] > 0 else "Adam"
    head = "sigmoid" if c["sigmoid"] else "linear"
    items = [
        f"**Data**: {code(d['path'])} (sha256 `{d['sha256']}`), {d['rows']:,} rows, {d['n_features']} features, "
        f"target {code(d['target'])}." + _source_text(d["source"]),
        f"**Split**: {split['train']} train / {split['val']} validation / {split['test']} test rows, split seed "
        f"{split['seed']}; the same split for every variant and seed.",
        "**Normalization**: features standardized with the mean and scale of the training split only; the "
        "scaler is part of the ONNX graph, so the app feeds raw features.",
        f"**Model**: MLP with ReLU hidden layers, dropout in training only, {head} output; {c['dtype']} training.",
        f"**Optimizer**: {optimizer}, beta1 {c['beta1']}, beta2 {c['beta2']}, eps {c['eps']}; learning rate "
        f"and batch size as each variant sets them.",
        "**Loss**: mean squared error over rows.",
        f"**Early stopping**: on validation MSE, patience {c['patience']} epochs, min_delta {c['min_delta']}, "
        f"at most {c['epochs']} epochs; the best epoch's weights are restored.",
        f"**Seeds**: model seeds {', '.join(map(str, s.r['grid']['seeds']))} for every variant; mean ± sample "
        "std over the seeds that finished, 95% t-intervals; the improvement is baseline minus variant mean "
        "test MSE with a Welch 95% interval, within noise when that interval contains 0. Each variant "
        "exports the seed with the lowest validation MSE.",
        f"**Environment**: {env['cpu']}, {env['platform']}; Python {env['python']}, npmlp {env['npmlp']}, "
        f"numpy {env['numpy']}, onnx {env['onnx']}, onnxruntime {env['onnxruntime']}.",
        f"**Grid**: {code(s.r['grid']['path'])} (sha256 `{s.r['grid']['sha256']}`), run "
        f"{s.r['timing']['started']} to {s.r['timing']['finished']}.",
    ]
    return "## Methodology\n\n" + "\n".join(f"- {item}" for item in items)


SOURCE_KEYS = ("generator", "generator_version", "seed")  # the rest of the data's sidecar stays in the JSON


def _source_text(source) -> str:
    if not source:
        return ""
    shown = [f"{k} {value_text(source[k])}" for k in SOURCE_KEYS if k in source]
    return f" Source: {', '.join(shown + ['the full sidecar is in the results JSON'])}."


def _recommendations(s: _Sweep) -> str:
    ship, why = _verdict(s)
    group = [s.best] + s.twins(s.best)
    if ship:
        either = " (identical results: either file)" if len(group) > 1 else ""
        first = f"Ship {_names(group)}{either} as {s.version}: {_vs_baseline(s)}, beyond noise."
    else:
        first = f"Keep the baseline {code(s.baseline['name'])}. {why}"
    items = [first, _next_step(s), *_edges(s), *_cap_advice(s), _noise_advice(s), _failed_advice(s)]
    return "## Recommendations\n\n" + "\n".join(f"{i}. {t}" for i, t in enumerate([x for x in items if x], 1))


def _next_step(s: _Sweep) -> str:
    combined = s.r["combined"]
    if combined is not None:
        if combined["status"] != "ok":
            return f"The combined config {code(combined['name'])} failed: {combined['reason']}."
        return (f"The combined config {code(combined['name'])} ({_changes(s, combined)}) reached test MSE "
                f"{mse(_mean(combined, 'test_mse'))} ({pct((combined['improvement'] or {}).get('percent'))}): "
                f"{_NOISE_WORDS[_relation(combined)]}.")
    picks = []
    for axis in s.axes:
        best = s.by_name.get(s.r["axis_best"].get(axis))
        if best is not None and best is not s.baseline and s.baseline not in s.twins(best):
            picks.append(f"{axis} {value_text(best['value'])} ({_NOISE_WORDS[_relation(best)]})")
    if not picks:
        return "Every axis's best is the baseline's own value: a new grid should widen the ranges rather than combine."
    return f"Next to try: the per-axis bests together: {', '.join(picks)}."


def _edges(s: _Sweep) -> list[str]:
    """An axis whose best sits at the end of the tried range may have its optimum beyond it."""
    out = []
    for axis in s.axes:
        best = s.by_name.get(s.r["axis_best"].get(axis))
        points = _axis_points(s, axis)
        if best is None or _relation(best) != "better" or len(points) < 3 or best not in [p[2] for p in points]:
            continue
        end = {id(points[0][2]): "smallest", id(points[-1][2]): "largest"}.get(id(best))
        if end:
            out.append(f"The best {axis}, {value_text(best['value'])}, is the {end} value tried: extend {axis} "
                       f"beyond it before settling.")
    return out


def _cap_advice(s: _Sweep) -> list[str]:
    capped = [v for v in s.ok() if _capped(v)]
    if not capped:
        return []
    return [f"Raise the epoch limit for {_names(capped)}: still improving when training stopped."]


def _noise_advice(s: _Sweep) -> str:
    imp = s.best["improvement"]
    if imp is None or not imp["within_noise"] or imp["ci95"] is None:
        return ""
    half = (imp["ci95"][1] - imp["ci95"][0]) / 2
    return (f"The best's 95% interval against the baseline spans ±{mse(half)} of test MSE with "
            f"{len(s.r['grid']['seeds'])} seeds, wider than its gain; more seeds narrow it (roughly as "
            f"1/sqrt(seeds)) before a difference this small can be acted on.")


def _failed_advice(s: _Sweep) -> str:
    failed = [v for v in s.all if v["status"] != "ok"]
    if not failed:
        return ""
    axes = sorted({v["axis"] for v in failed if v["axis"]})
    them = "it" if len(failed) == 1 else "them"
    where = f": the {', '.join(axes)} results are incomplete without {them}" if axes else ""
    return f"Look into the failure of {_names(failed)} (see Failed variants){where}."


def _failures(s: _Sweep) -> str:
    rows = []
    for v in s.all:
        failed = [x for x in v["seeds"] if x["status"] != "ok"]
        if v["status"] != "ok" or failed:
            reasons = "; ".join(sorted({f"seed {x['seed']}: {x['reason'] or 'no reason'}" for x in failed}))
            reason = v["reason"] if v["status"] != "ok" else reasons
            rows.append([code(v["name"]), _change_label(s, v), v["status"], f"{len(failed)} of {len(v['seeds'])}",
                         reason or "no reason recorded"])
    if not rows:
        return f"## Failed variants\n\nNone: all {len(s.all)} variants trained on every seed."
    return "## Failed variants\n\n" + table(["Variant", "Change", "Status", "Seeds failed", "Reason"], rows)


def _files(s: _Sweep, figures: dict[Path, str]) -> str:
    rows = []
    for v in s.all:
        m = v["model"]
        if m is not None:
            parity = m.get("parity") or {}
            err = max((x for x in parity.values() if isinstance(x, (int, float))), default=None)
            rows.append([code(v["name"]), _model_text(s, v), _kb(m), f"{m['n_params']:,}",
                         f"`{m['sha256'][:12]}`", DASH if err is None else f"{err:.1e}"])
    header = ["Variant", "Model", "Size", "Parameters", "SHA-256 (first 12)", "ONNX parity (max abs error)"]
    figure_links = [f"- Figure: [{p.name}]({p.relative_to(s.out_path.parent).as_posix()})" for p in figures]
    results = f"- Results: [{s.results_path.name}]({s.link(s.results_path.name)})"
    return "\n\n".join(["## Files", table(header, rows), "\n".join([results, *figure_links])])


# ---- figures --------------------------------------------------------------------------------------


def _figure_name(s: _Sweep, axis: str | None) -> str:
    """Relative to the report; axis None names the test MSE chart."""
    what = "test_mse" if axis is None else f"val_curves_{_safe(axis)}"
    return f"figures/{_safe(s.r['grid']['name'])}_{what}.svg"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def _figures(s: _Sweep) -> dict[Path, str]:
    folder = s.out_path.parent
    out = {folder / _figure_name(s, axis): _curve_chart(s, axis) for axis in s.axes}
    out[folder / _figure_name(s, None)] = _interval_figure(s)
    return out


def _curve_chart(s: _Sweep, axis: str) -> str:
    """Validation MSE per epoch of each variant's exported (best) seed, baseline included."""
    series, rows = [], s.axis_rows(axis)
    values = [value_text(s.value(v, axis)) for v in rows]
    for v, value in zip(rows, values):
        # a value trained twice (a baseline copy, a rerun) is told apart by name
        label = value + (" (baseline)" if v is s.baseline else f" ({v['name']})" if values.count(value) > 1 else "")
        seed = next((x for x in v["seeds"] if x["seed"] == v["best_seed"]), None)
        history = seed["history"]["val_mse"] if seed and seed["history"] else []
        series.append(svg.Series(label, tuple(history), seed["best_epoch"] if seed else None, v is s.baseline))
    title = f"Validation MSE by epoch, one line per {axis} value (best seed of each variant)"
    return svg.line_chart(title, series, "epoch", "validation MSE")


def _interval_figure(s: _Sweep) -> str:
    rows = []
    for v in s.all:
        stat = _stat(v, "test_mse")
        kind = "baseline" if v is s.baseline else _relation(v)
        lo, hi = stat["ci95"] if stat and stat["ci95"] else (None, None)
        rows.append(svg.Interval(v["name"], stat and stat["mean"], lo, hi, kind))
    base = _mean(s.baseline, "test_mse")
    lines = [] if base is None else [(base, f"baseline {mse(base)}", svg.BASELINE, "5 3")]
    floor = s.r["data"]["noise_floor"]
    if floor is not None:
        lines.append((floor["test"], f"noise floor {mse(floor['test'])}", svg.NOISE_FLOOR, "2 3"))
    return svg.interval_chart("Test MSE per variant: mean over seeds with its 95% interval", rows, "test MSE", lines)
