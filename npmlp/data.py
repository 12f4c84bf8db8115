"""Data sets in: feature matrix and target from a CSV or from the app's training-data JSON.

`load_dataset(path)` reads one file into a `Dataset` (float64 X and y) or raises `InputError`
with a one-line message naming the file and, where known, the row and column. It neither
splits, scales nor generates data (see train.py and hybrid.py).

Accepted files:
- CSV with a header row: the target column by name (default calling_score); the features are
  all other columns unless listed. Blank lines are skipped; "row R (line L)" counts data rows
  from 1 and physical lines from 1 (the header is line 1).
- The app's JSON (chosen by the .json extension): {"training_data": [record, ...]} where each
  record holds user_vibe_dimensions (12), spot_vibe_dimensions (12), context_features (10),
  timing_features (5) and outcome_score or formula_calling_score. Every feature key must be
  present in every record: a missing one is an error, never a default.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import InputError
from .train import MIN_ROWS

VIBES = (
    "exploration_eagerness", "community_orientation", "authenticity_preference", "social_discovery_style",
    "temporal_flexibility", "location_adventurousness", "curation_tendency", "trust_network_reliance",
    "energy_preference", "novelty_seeking", "value_orientation", "crowd_tolerance",
)  # fmt: skip
CONTEXT = (
    "location_proximity", "journey_alignment", "user_receptivity", "opportunity_availability", "network_effects",
    "community_patterns", "vibe_compatibility", "energy_match", "community_match", "novelty_match",
)  # fmt: skip
TIMING = ("optimal_time_of_day", "optimal_day_of_week", "user_patterns", "opportunity_timing", "timing_alignment")
# The app's JSON: (record key, prefix of the feature name, keys inside), in the app's order.
JSON_SECTIONS = (
    ("user_vibe_dimensions", "user_", VIBES),
    ("spot_vibe_dimensions", "spot_", VIBES),
    ("context_features", "", CONTEXT),
    ("timing_features", "", TIMING),
)
# The model's 39 inputs in the order the app feeds them.
FEATURES = tuple(prefix + key for _, prefix, keys in JSON_SECTIONS for key in keys)
TARGET = "calling_score"
JSON_TARGETS = ("outcome_score", "formula_calling_score")  # observed outcome first, else the formula's

# The generator's sidecar (hybrid.py) carries this in "generator"; load_dataset attaches it.
SIDECAR_KIND = "npmlp hybrid"


@dataclass(frozen=True)
class Dataset:
    X: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) float64
    features: tuple[str, ...]
    target: str
    path: str
    sha256: str  # of the file's bytes
    sidecar: dict | None = None  # the generator's sidecar JSON beside a CSV: has "noise_floor"


def load_dataset(path, target=None, features=None, unit_target=True, min_rows=MIN_ROWS) -> Dataset:
    """Read a CSV or the app's JSON. unit_target: the target must lie in [0, 1] (sigmoid head);
    min_rows: enough for a train/val/test split by default, fewer for scoring only."""
    path = Path(path)
    raw = _read(path)
    sha = hashlib.sha256(raw).hexdigest()
    if path.suffix.lower() == ".json":
        names, target, X, y, where = _from_app_json(path, raw, target, features)
        sidecar = None
    else:
        names, target, X, y, where = _from_csv(path, raw, target or TARGET, features)
        sidecar = _sidecar(path, sha)
    _check(path, names, target, X, y, where, unit_target, min_rows)
    return Dataset(X, y, tuple(names), target, str(path), sha, sidecar)


def _read(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}")
    if not raw.strip():
        raise InputError(f"{path}: empty file")
    return raw


def _check(path, names, target, X, y, where, unit_target, min_rows):
    """What holds for any source: enough rows, a unit target for a sigmoid head, and a warning
    for constant features (allowed: the scaler leaves them at zero)."""
    n = len(y)
    if n < min_rows:
        need = "a train/val/test split needs" if min_rows == MIN_ROWS else "need"
        raise InputError(f"{path}: {n} data rows; {need} at least {min_rows}")
    if unit_target:
        bad = np.flatnonzero((y < 0) | (y > 1))
        if bad.size:
            raise InputError(
                f"{path}: {where(bad[0])}, column {target!r}: target {float(y[bad[0]])!r} outside [0, 1] "
                f"(a sigmoid head needs a target in [0, 1]; train with --no-sigmoid otherwise)"
            )
    constant = [name for name, c in zip(names, X.T) if c.min() == c.max()]
    if constant:
        print(f"npmlp: warning: {path}: constant feature(s) {', '.join(constant)}", file=sys.stderr)


# --- CSV -----------------------------------------------------------------------------------


def read_features(path, features: list[str]) -> np.ndarray:
    """(n, d) float64 from a CSV, columns picked by name; other columns (the target, ids) are
    ignored. Not load_dataset: scoring data has no target and may be a single row."""
    path = Path(path)
    header, cells, lines = _csv_cells(path, _read(path))
    index = _columns(path, header)
    missing = [name for name in features if name not in index]
    if missing:
        raise InputError(f"{path}: header lacks {len(missing)} of the model's {len(features)} "
                         f"feature columns: {', '.join(missing)}")
    return _numbers(path, header, cells, [index[name] for name in features],
                    lambda i: f"row {i + 1} (line {lines[i]})")  # (n, d)


def _from_csv(path, raw, target, features):
    header, cells, lines = _csv_cells(path, raw)
    index = _columns(path, header)
    if target not in index:
        raise InputError(f"{path}: no target column {target!r} (columns: {', '.join(header)})")
    if features is None:
        features = [h for h in header if h != target]
    if not features:
        raise InputError(f"{path}: no feature columns besides the target {target!r}")
    for name in features:
        if name == target:
            raise InputError(f"{path}: {name!r} is the target; it cannot also be a feature")
        if name not in index:
            raise InputError(f"{path}: no feature column {name!r} (columns: {', '.join(header)})")
    if len(set(features)) != len(features):
        raise InputError(f"{path}: a feature is listed twice: {', '.join(features)}")
    cols = [index[name] for name in (*features, target)]

    def where(i):
        return f"row {i + 1} (line {lines[i]})"

    values = _numbers(path, header, cells, cols, where)  # (n, d + 1)
    return list(features), target, values[:, :-1], values[:, -1].copy(), where


def _csv_cells(path, raw):
    """Header and data rows as strings, with each row's physical line; blank lines skipped."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})")
    reader = csv.reader(io.StringIO(text, newline=""))
    cells, lines = [], []
    try:
        header = [h.strip() for h in next(reader)]
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path}: row {len(cells) + 1} (line {reader.line_num}): {len(row)} fields, "
                    f"the header has {len(header)}"
                )
            cells.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise InputError(f"{path}: line {reader.line_num}: {e}")
    if not cells:
        raise InputError(f"{path}: no data rows (header only)")
    return header, cells, lines


def _columns(path, header) -> dict:
    index = {}
    for j, name in enumerate(header):
        if not name:
            raise InputError(f"{path}: column {j + 1}: empty column name")
        if name in index:
            raise InputError(f"{path}: column {j + 1}: duplicate column name {name!r} (also column {index[name] + 1})")
        index[name] = j
    return index


def _numbers(path, header, cells, cols, where) -> np.ndarray:
    """One vectorized conversion; only on failure a scan to name the first bad cell."""
    picked = [[row[j] for j in cols] for row in cells]
    try:
        values = np.array(picked, dtype=np.float64)  # (n, len(cols))
        if np.isfinite(values).all() and not any("_" in text for row in picked for text in row):
            return values
    except ValueError:
        pass
    for i, row in enumerate(picked):
        for text, j in zip(row, cols):
            problem = _cell_problem(text)
            if problem:
                raise InputError(f"{path}: {where(i)}, column {header[j]!r}: {problem}")
    return np.array([[float(text) for text in row] for row in picked])  # spellings only float() reads


def _cell_problem(text: str) -> str | None:
    if not text.strip():
        return "blank"
    if "_" in text:  # float() reads "1_0" as 10
        return f"not a number: {text!r}"
    try:
        v = float(text)
    except ValueError:
        return f"not a number: {text!r}"
    return None if math.isfinite(v) else f"not a finite number: {text!r}"


def _sidecar(path: Path, sha: str) -> dict | None:
    """The generator's sidecar beside the CSV, only when it describes exactly these bytes."""
    side = path.with_suffix(".json")
    try:
        doc = json.loads(side.read_bytes())
    except (OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and doc.get("generator") == SIDECAR_KIND):
        return None
    if doc.get("csv_sha256") != sha:
        print(f"npmlp: warning: {side}: sidecar of another version of {path.name}; ignored", file=sys.stderr)
        return None
    return doc


# --- the app's JSON ------------------------------------------------------------------------


def _from_app_json(path, raw, target, features):
    records = _records(path, raw)
    target = target or next((t for t in JSON_TARGETS if records[0].get(t) is not None), None)
    if target is None:
        raise InputError(f"{path}: record 1: no target ({' or '.join(JSON_TARGETS)})")
    wanted = FEATURES if features is None else tuple(features)
    for name in wanted:
        if name not in FEATURES:
            raise InputError(f"{path}: unknown feature {name!r}: the app's JSON holds only the 39 app features")
    cols = [FEATURES.index(name) for name in wanted]
    X = np.empty((len(records), len(FEATURES)))
    y = np.empty(len(records))
    for i, record in enumerate(records):
        X[i] = _record_features(path, i, record)
        y[i] = _json_number(path, i, target, record.get(target, _MISSING))
    return list(wanted), target, X[:, cols], y, lambda i: f"record {i + 1}"


def _records(path, raw) -> list:
    try:
        doc = json.loads(raw)
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte {e.start})")
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno}, column {e.colno}: not valid JSON: {e.msg}")
    records = doc.get("training_data") if isinstance(doc, dict) else None
    if not isinstance(records, list):
        raise InputError(f"{path}: expected an object with a 'training_data' list of records")
    if not records:
        raise InputError(f"{path}: no data rows ('training_data' is empty)")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise InputError(f"{path}: record {i + 1}: not an object")
    return records


_MISSING = object()


def _record_features(path, i, record) -> list:
    row = []
    for section, _, keys in JSON_SECTIONS:
        values = record.get(section)
        if not isinstance(values, dict):
            raise InputError(f"{path}: record {i + 1}: {section!r} is missing or not an object")
        row += [_json_number(path, i, f"{section}.{k}", values.get(k, _MISSING)) for k in keys]
    return row


def _json_number(path, i, key, v) -> float:
    if v is _MISSING:
        raise InputError(f"{path}: record {i + 1}, key {key!r}: missing")
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{path}: record {i + 1}, key {key!r}: not a number: {v!r}")
    if not math.isfinite(v):
        raise InputError(f"{path}: record {i + 1}, key {key!r}: not a finite number: {v!r}")
    return float(v)
