"""load_dataset: CSV and the app's JSON read exactly, and every kind of bad input refused with
a message naming the file, row and column, through the library and through `npmlp train`."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from npmlp import cli
from npmlp.data import FEATURES, JSON_SECTIONS, TARGET, load_dataset
from npmlp.files import InputError
from npmlp.train import MIN_ROWS

FIXTURES = Path(__file__).parent / "fixtures"
APP_JSON = FIXTURES / "data_app_training.json"


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


def table(n=MIN_ROWS):
    """n rows of two features and a target in [0, 1], as written and as numbers."""
    rows = [[f"{i / n:.3f}", f"{(i * 7 % n) / n:.3f}", f"{(i * 3 % n) / n:.3f}"] for i in range(n)]
    return rows, np.array(rows, dtype=float)


def test_features_are_the_39_app_inputs_in_app_order():
    assert len(FEATURES) == len(set(FEATURES)) == 39
    assert FEATURES[0] == "user_exploration_eagerness" and FEATURES[11] == "user_crowd_tolerance"
    assert FEATURES[12] == "spot_exploration_eagerness" and FEATURES[23] == "spot_crowd_tolerance"
    assert FEATURES[24:34] == (
        "location_proximity", "journey_alignment", "user_receptivity", "opportunity_availability",
        "network_effects", "community_patterns", "vibe_compatibility", "energy_match", "community_match",
        "novelty_match",
    )  # fmt: skip
    assert FEATURES[34:] == (
        "optimal_time_of_day", "optimal_day_of_week", "user_patterns", "opportunity_timing", "timing_alignment"
    )
    assert [FEATURES[i][5:] for i in range(12)] == [FEATURES[12 + i][5:] for i in range(12)]


def test_csv_reads_target_by_name_and_the_other_columns_as_features(tmp_path):
    rows, values = table()
    path = write_csv(tmp_path / "t.csv", ["b", TARGET, "a"], [[r[1], r[2], r[0]] for r in rows])
    data = load_dataset(path)
    assert data.features == ("b", "a") and data.target == TARGET
    assert np.array_equal(data.X, values[:, [1, 0]]) and np.array_equal(data.y, values[:, 2])
    assert data.X.dtype == data.y.dtype == np.float64
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.path == str(path) and data.sidecar is None


def test_csv_listed_features_in_their_order_and_another_target(tmp_path):
    rows, values = table()
    path = write_csv(tmp_path / "t.csv", ["a", "b", "c", "id"], [[*r, f"x{i}"] for i, r in enumerate(rows)])
    data = load_dataset(path, target="b", features=["c", "a"])  # the text column "id" is not read
    assert data.features == ("c", "a") and data.target == "b"
    assert np.array_equal(data.X, values[:, [2, 0]]) and np.array_equal(data.y, values[:, 1])


def test_csv_skips_blank_lines_and_counts_rows_and_lines_apart(tmp_path):
    rows, _ = table()
    text = "a,b,calling_score\n\n" + "\n".join(",".join(r) for r in rows[:3]) + "\n\n1,x,0.5\n"
    (tmp_path / "t.csv").write_text(text)
    with pytest.raises(InputError, match=r"row 4 \(line 7\), column 'b': not a number: 'x'"):
        load_dataset(tmp_path / "t.csv")


def test_constant_feature_is_allowed_with_a_warning(tmp_path, capsys):
    rows, _ = table()
    path = write_csv(tmp_path / "t.csv", ["a", "k", TARGET], [[r[0], "0.5", r[2]] for r in rows])
    data = load_dataset(path)
    assert np.all(data.X[:, 1] == 0.5)
    err = capsys.readouterr().err
    assert "warning" in err and str(path) in err and "k" in err and err.count("\n") == 1


def test_target_outside_unit_interval_is_fine_for_a_linear_head(tmp_path):
    rows, _ = table()
    rows[4][2] = "1.5"
    data = load_dataset(write_csv(tmp_path / "t.csv", ["a", "b", TARGET], rows), unit_target=False)
    assert data.y[4] == 1.5


# --- bad CSV input: (name, file text, what the message must say) ---------------------------

GOOD = table()[0]


def csv_text(rows, header="a,b,calling_score"):
    return "\n".join([header, *(",".join(r) for r in rows)]) + "\n"


def with_cell(i, j, text):
    rows = [list(r) for r in GOOD]
    rows[i][j] = text
    return csv_text(rows)


BAD_CSV = [
    ("empty", "", r"empty file"),
    ("blank lines only", "\n\n", r"empty file"),
    ("header only", "a,b,calling_score\n", r"no data rows \(header only\)"),
    ("no target", csv_text(GOOD, "a,b,score"), r"no target column 'calling_score'"),
    ("text cell", with_cell(16, 1, "abc"), r"row 17 \(line 18\), column 'b': not a number: 'abc'"),
    ("underscore digits", with_cell(4, 0, "1_0"), r"row 5 \(line 6\), column 'a': not a number: '1_0'"),
    ("nan feature", with_cell(2, 0, "nan"), r"row 3 \(line 4\), column 'a': not a finite number: 'nan'"),
    ("inf feature", with_cell(5, 1, "inf"), r"row 6 \(line 7\), column 'b': not a finite number: 'inf'"),
    ("blank feature", with_cell(7, 0, ""), r"row 8 \(line 9\), column 'a': blank"),
    ("nan target", with_cell(1, 2, "NaN"), r"row 2 \(line 3\), column 'calling_score': not a finite number"),
    ("blank target", with_cell(9, 2, " "), r"row 10 \(line 11\), column 'calling_score': blank"),
    ("ragged short", csv_text(GOOD[:4] + [GOOD[4][:2]] + GOOD[5:]), r"row 5 \(line 6\): 2 fields, the header has 3"),
    ("ragged long", csv_text(GOOD[:1] + [GOOD[1] + ["9"]] + GOOD[2:]), r"row 2 \(line 3\): 4 fields"),
    ("duplicate column", csv_text(GOOD, "a,a,calling_score"), r"column 2: duplicate column name 'a' \(also col"),
    ("empty column name", csv_text(GOOD, "a,,calling_score"), r"column 2: empty column name"),
    ("target only", csv_text([[r[2]] for r in GOOD], "calling_score"), r"no feature columns besides the target"),
    ("target above 1", with_cell(3, 2, "1.2"), r"row 4 \(line 5\), column 'calling_score': target 1.2 outside \[0,"),
    ("target below 0", with_cell(0, 2, "-0.1"), r"row 1 \(line 2\), column 'calling_score': target -0.1 outside"),
    ("too few rows", csv_text(GOOD[: MIN_ROWS - 1]), rf"{MIN_ROWS - 1} data rows; .* at least {MIN_ROWS}"),
]


@pytest.mark.parametrize("name, text, message", BAD_CSV, ids=[c[0] for c in BAD_CSV])
def test_bad_csv_is_refused_naming_file_row_and_column(tmp_path, name, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as e:
        load_dataset(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


@pytest.mark.parametrize("name, text, message", BAD_CSV[:6], ids=[c[0] for c in BAD_CSV[:6]])
def test_bad_csv_through_train_exits_2_and_writes_nothing(tmp_path, capsys, name, text, message):
    path, out = tmp_path / "bad.csv", tmp_path / "out"
    path.write_text(text)
    assert cli.main(["train", "--data", str(path), "--out", str(out), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npmlp: error: {path}: ") and re.search(message, err) and err.count("\n") == 1
    assert not out.exists()


def test_missing_file_exits_2(tmp_path, capsys):
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: no such file$"):
        load_dataset(path)
    assert cli.main(["train", "--data", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_listed_feature_must_exist_once(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b", TARGET], GOOD)
    with pytest.raises(InputError, match=r"no feature column 'z'"):
        load_dataset(path, features=["a", "z"])
    with pytest.raises(InputError, match=r"'calling_score' is the target; it cannot also be a feature"):
        load_dataset(path, features=["a", TARGET])
    with pytest.raises(InputError, match=r"listed twice"):
        load_dataset(path, features=["a", "a"])


# --- sidecar -------------------------------------------------------------------------------


def test_generator_sidecar_is_attached_only_when_it_matches_the_csv(tmp_path, capsys):
    out = tmp_path / "h.csv"
    assert cli.main(["data", "hybrid", "--out", str(out), "--samples", "40", "--seed", "3"]) == 0
    data = load_dataset(out)
    assert data.sidecar == json.loads(out.with_suffix(".json").read_text())
    assert data.sidecar["csv_sha256"] == data.sha256 and data.sidecar["noise_floor"] > 0
    out.write_text(out.read_text().replace("0.", "0.0", 1))  # edited after generation
    capsys.readouterr()
    assert load_dataset(out).sidecar is None
    assert "sidecar of another version" in capsys.readouterr().err


def test_unrelated_json_beside_a_csv_is_no_sidecar(tmp_path):
    path = write_csv(tmp_path / "t.csv", ["a", "b", TARGET], GOOD)
    path.with_suffix(".json").write_text('{"noise_floor": 0.1}')
    assert load_dataset(path).sidecar is None
    path.with_suffix(".json").write_text("not json")
    assert load_dataset(path).sidecar is None


# --- the app's JSON ------------------------------------------------------------------------


def app_records():
    return json.loads(APP_JSON.read_text())["training_data"]


def app_row(record):
    """A record's features in app order, read independently of the loader."""
    return [record[section][k] for section, _, keys in JSON_SECTIONS for k in keys]


def test_app_json_maps_every_section_key_to_its_feature():
    data = load_dataset(APP_JSON)
    records = app_records()
    assert data.features == FEATURES and data.target == "outcome_score" and data.sidecar is None
    assert data.X.shape == (len(records), 39)
    assert np.array_equal(data.X, np.array([app_row(r) for r in records]))
    assert np.array_equal(data.y, [r["outcome_score"] for r in records])
    assert data.X[0, FEATURES.index("user_crowd_tolerance")] == records[0]["user_vibe_dimensions"]["crowd_tolerance"]
    assert data.X[0, FEATURES.index("spot_crowd_tolerance")] == records[0]["spot_vibe_dimensions"]["crowd_tolerance"]


def test_app_json_falls_back_to_the_formula_score_and_selects_features(tmp_path):
    records = app_records()
    for r in records:
        del r["outcome_score"]
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"training_data": records}))
    data = load_dataset(path, features=["timing_alignment", "user_energy_preference"])
    assert data.target == "formula_calling_score"
    assert np.array_equal(data.y, [r["formula_calling_score"] for r in records])
    assert np.array_equal(data.X[:, 0], [r["timing_features"]["timing_alignment"] for r in records])
    assert np.array_equal(data.X[:, 1], [r["user_vibe_dimensions"]["energy_preference"] for r in records])
    assert load_dataset(APP_JSON, target="formula_calling_score").target == "formula_calling_score"


def edited(records, i, section, key, value=None, drop=False):
    record = records[i] if section is None else records[i][section]
    if drop:
        del record[key]
    else:
        record[key] = value
    return {"training_data": records}


BAD_JSON = [
    ("missing feature key", lambda r: edited(r, 6, "context_features", "vibe_compatibility", drop=True),
     r"record 7, key 'context_features.vibe_compatibility': missing"),
    ("missing section", lambda r: edited(r, 2, None, "timing_features", drop=True),
     r"record 3: 'timing_features' is missing or not an object"),
    ("text value", lambda r: edited(r, 0, "user_vibe_dimensions", "energy_preference", "high"),
     r"record 1, key 'user_vibe_dimensions.energy_preference': not a number: 'high'"),
    ("null value", lambda r: edited(r, 4, "spot_vibe_dimensions", "novelty_seeking", None),
     r"record 5, key 'spot_vibe_dimensions.novelty_seeking': not a number: None"),
    ("bool value", lambda r: edited(r, 4, "timing_features", "user_patterns", True),
     r"record 5, key 'timing_features.user_patterns': not a number: True"),
    ("nan value", lambda r: edited(r, 8, "context_features", "energy_match", float("nan")),
     r"record 9, key 'context_features.energy_match': not a finite number: nan"),
    ("missing target", lambda r: edited(r, 10, None, "outcome_score", drop=True),
     r"record 11, key 'outcome_score': missing"),
    ("target outside", lambda r: edited(r, 3, None, "outcome_score", 1.25),
     r"record 4, column 'outcome_score': target 1.25 outside \[0, 1\]"),
    ("no target at all", lambda r: [x.pop("outcome_score") + x.pop("formula_calling_score") for x in r] and
     {"training_data": r}, r"record 1: no target \(outcome_score or formula_calling_score\)"),
    ("too few records", lambda r: {"training_data": r[: MIN_ROWS - 1]}, rf"{MIN_ROWS - 1} data rows"),
    ("empty list", lambda r: {"training_data": []}, r"no data rows"),
    ("no training_data", lambda r: {"records": r}, r"expected an object with a 'training_data' list"),
    ("record not an object", lambda r: {"training_data": [*r[:2], [1, 2]]}, r"record 3: not an object"),
]  # fmt: skip


@pytest.mark.parametrize("name, edit, message", BAD_JSON, ids=[c[0] for c in BAD_JSON])
def test_bad_app_json_is_refused_naming_file_record_and_key(tmp_path, name, edit, message):
    path = tmp_path / "app.json"
    path.write_text(json.dumps(edit(app_records())))
    with pytest.raises(InputError, match=message) as e:
        load_dataset(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)


def test_invalid_json_names_line_and_column(tmp_path, capsys):
    path = tmp_path / "app.json"
    path.write_text('{"training_data": [\n  {"a": 1,}\n]}')
    with pytest.raises(InputError, match=r"line 2, column 11: not valid JSON"):
        load_dataset(path)
    assert cli.main(["train", "--data", str(path), "--out", str(tmp_path / "out")]) == 2
    assert f"npmlp: error: {path}: line 2" in capsys.readouterr().err


def test_unknown_feature_for_app_json():
    with pytest.raises(InputError, match=r"unknown feature 'user_mood'"):
        load_dataset(APP_JSON, features=["user_mood"])
