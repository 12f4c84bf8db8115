"""The hybrid generator: deterministic files, Big Five files scored by hand-checked keys, and a
noise floor that an empirical check confirms."""

import csv
import hashlib
import json
from pathlib import Path
from statistics import mean

import numpy as np
import pytest

from npmlp import cli, hybrid
from npmlp.data import FEATURES, TARGET, load_dataset
from npmlp.files import InputError
from npmlp.train import split_rows

FIXTURES = Path(__file__).parent / "fixtures"
BFI = Path(__file__).parents[2] / "shared/data/bfi.csv"


def run(*args) -> int:
    return cli.main(["data", "hybrid", *map(str, args)])


# --- files ---------------------------------------------------------------------------------


def test_same_arguments_give_byte_identical_files_and_another_seed_does_not(tmp_path):
    a, b, c = (tmp_path / d / "h.csv" for d in "abc")
    assert run("--out", a, "--samples", 200, "--seed", 7) == 0
    assert run("--out", b, "--samples", 200, "--seed", 7) == 0
    assert run("--out", c, "--samples", 200, "--seed", 8) == 0
    for suffix in (".csv", ".json"):
        assert a.with_suffix(suffix).read_bytes() == b.with_suffix(suffix).read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert sorted(p.name for p in a.parent.iterdir()) == ["h.csv", "h.json"]  # no temp files left


def test_csv_and_sidecar_agree_with_the_features_as_written(tmp_path):
    out = tmp_path / "h.csv"
    assert run("--out", out, "--samples", 300, "--seed", 11) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header == [*FEATURES, TARGET]
    data = load_dataset(out)
    X, y, side = data.X, data.y, data.sidecar
    assert 0 <= X.min() and X.max() <= 1 and 0 <= y.min() and y.max() <= 1
    assert (side["seed"], side["samples"], side["rows"], side["profiles"]["source"]) == (11, 300, 300, "builtin")
    # mu from the parsed CSV reproduces the recorded floors exactly: nothing was rounded after.
    mu = hybrid.true_mean(X)
    assert side["noise_floor"] == pytest.approx(hybrid.conditional_variance(mu).mean(), rel=1e-12)
    split = split_rows(300, 42)
    for name, rows in (("train", split.train), ("val", split.val), ("test", split.test)):
        assert side["noise_floor_by_split"]["realized"][name] == pytest.approx(np.mean((y - mu)[rows] ** 2), rel=1e-12)
        assert side["noise_floor_by_split"]["expected"][name] == pytest.approx(
            hybrid.conditional_variance(mu[rows]).mean(), rel=1e-12
        )


def test_derived_features_follow_their_definitions():
    X, _, _ = hybrid.generate(500, 3)
    f = dict(zip(FEATURES, X.T))
    user, spot = X[:, :12], X[:, 12:24]
    half_unit = 5e-7 + 1e-12  # written with 6 decimals
    assert np.abs(f["vibe_compatibility"] - (1 - np.abs(user - spot).mean(axis=1))).max() <= half_unit
    for match, d in (("energy_match", "energy_preference"), ("novelty_match", "novelty_seeking")):
        assert np.abs(f[match] - (1 - np.abs(f[f"user_{d}"] - f[f"spot_{d}"]))).max() <= half_unit
    alignment = 1 - np.abs(f["user_patterns"] - f["opportunity_timing"])
    assert np.abs(f["timing_alignment"] - alignment).max() <= half_unit


def test_generate_computes_mu_from_exactly_what_is_written():
    X, y, mu = hybrid.generate(200, 5)
    rows = hybrid.csv_text(X, y).splitlines()[1:]
    written = np.array([r.split(",") for r in rows], dtype=float)
    assert np.array_equal(written[:, :-1], X) and np.array_equal(written[:, -1], y)
    assert np.array_equal(hybrid.true_mean(written[:, :-1]), mu)


# --- the noise floor -----------------------------------------------------------------------


def test_outcome_at_fixed_features_has_the_stated_mean_and_variance():
    _, _, mu = hybrid.generate(50, 9)
    rng = np.random.default_rng(2024)
    for m in mu[:: 10]:
        draws = hybrid.draw_outcome(np.full(200_000, m), rng)
        var = float(hybrid.conditional_variance(m))
        assert 0 <= draws.min() and draws.max() <= 1
        assert abs(draws.mean() - m) < 5 * np.sqrt(var / len(draws))
        assert draws.var() == pytest.approx(var, rel=0.03)  # sampling sd of the variance ~0.4%


def test_recorded_floor_matches_the_realized_error_of_the_true_mean_on_50k_rows():
    X, y, mu = hybrid.generate(50_000, 123)
    expected = hybrid.conditional_variance(mu).mean()
    residual = y - mu
    # Sampling sd of the realized MSE is about 1% of the floor here; 4% is four of those.
    assert np.mean(residual**2) == pytest.approx(expected, rel=0.04)
    assert abs(residual.mean()) < 5 * np.sqrt(expected / len(y))  # mu is the conditional mean
    # ...in every part of the range, not only on average
    bins = np.digitize(mu, [0.3, 0.5, 0.7, 0.85])
    for b in range(5):
        r = residual[bins == b]
        assert abs(r.mean()) < 5 * r.std() / np.sqrt(len(r))


def test_default_set_is_a_real_nonlinear_regression_problem():
    X, y, mu = hybrid.generate(10_000, 42)
    floor = hybrid.conditional_variance(mu).mean()
    assert 0.002 <= floor <= 0.01 and y.std() > 0.1
    split = split_rows(len(y), 42)
    A = np.hstack([X, np.ones((len(y), 1))])
    w = np.linalg.lstsq(A[split.train], y[split.train], rcond=None)[0]
    linear = np.mean((A[split.test] @ w - y[split.test]) ** 2)
    assert linear > 1.5 * np.mean((mu - y)[split.test] ** 2)


# --- Big Five files: hand-scored rows ------------------------------------------------------


def ipip(answers):
    """Mean of the keyed answers on the 1-5 scale, mapped to [0, 1]."""
    return (mean(answers) - 1) / 4


def sapa(answers):
    return (mean(answers) - 1) / 5


# Keyed by hand from the fixture rows: reverse-keyed items written as 6 - x (IPIP-50) or 7 - x
# (SAPA); missing answers left out. Order O, C, E, A, N.
IPIP50_TSV = [
    [  # file row 1
        ipip([5, 6 - 1, 5, 6 - 1, 4, 6 - 2, 4, 3, 4, 5]),
        ipip([4, 6 - 2, 4, 6 - 2, 3, 6 - 2, 5, 6 - 1, 4, 4]),
        ipip([5, 6 - 1, 4, 6 - 2, 5, 6 - 1, 4, 6 - 2, 4, 6 - 2]),
        ipip([6 - 1, 5, 6 - 1, 5, 6 - 1, 5, 6 - 1, 4, 4, 5]),
        ipip([2, 6 - 4, 2, 6 - 4, 1, 2, 2, 1, 2, 1]),
    ],
    [  # file row 2: EXT1-5 and CSN1, CSN10 are 0 (unanswered); half of EXT is still enough
        ipip([2, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 4, 2, 4]),
        ipip([6 - 3, 3, 6 - 3, 3, 6 - 3, 3, 6 - 3, 3]),
        ipip([6 - 1, 3, 6 - 2, 4, 6 - 2]),
        ipip([6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 4, 2]),
        ipip([3] * 8 + [6 - 3, 6 - 3]),
    ],
    [  # file row 5 (row 3 misses 6 of 10 OPN answers, row 4 is all NULL: both dropped)
        ipip([3] * 10),
        ipip([2, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 2]),
        ipip([1, 6 - 5, 2, 6 - 5, 1, 6 - 4, 2, 6 - 5, 1, 6 - 5]),
        ipip([6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 4, 4]),
        ipip([5, 6 - 1, 5, 6 - 2, 4, 5, 4, 5, 4, 4]),
    ],
]
IPIP50_LETTERS = [
    [
        ipip([4, 6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 4, 4, 4]),
        ipip([4, 6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 4]),
        ipip([4, 6 - 2, 5, 6 - 1, 4, 6 - 2, 5, 6 - 1, 4, 6 - 1]),
        ipip([6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 6 - 2, 4, 4, 4]),
        ipip([2, 6 - 4, 2, 6 - 4, 2, 2, 2, 2, 2, 2]),
    ],
    [  # E3 is 0 (unanswered)
        ipip([5, 6 - 1, 5, 6 - 1, 5, 6 - 1, 5, 5, 5, 5]),
        ipip([2, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 2]),
        ipip([2, 6 - 4, 6 - 4, 2, 6 - 4, 2, 6 - 4, 2, 6 - 4]),
        ipip([6 - 3, 3, 6 - 3, 3, 6 - 3, 3, 6 - 3, 3, 3, 3]),
        ipip([4, 6 - 2, 4, 6 - 2, 4, 4, 4, 4, 4, 4]),
    ],
]
SAPA_CSV = [
    [  # rownames 101
        sapa([3, 7 - 6, 3, 4, 7 - 3]),
        sapa([2, 3, 3, 7 - 4, 7 - 4]),
        sapa([7 - 3, 7 - 3, 3, 4, 4]),
        sapa([7 - 2, 4, 3, 4, 4]),
        sapa([3, 4, 2, 2, 3]),
    ],
    [  # 102: E2 and E5 blank, 3 of 5 answered (103 misses 3 N items: dropped)
        sapa([6, 7 - 1, 6, 6, 7 - 1]),
        sapa([5, 5, 4, 7 - 1, 7 - 2]),
        sapa([7 - 6, 5, 6]),
        sapa([7 - 1, 6, 6, 5, 5]),
        sapa([1, 1, 1, 2, 2]),
    ],
]
TRAIT_SCORES = [  # ids a, b (c lacks conscientiousness: dropped), d; 1-5 scale
    [(3.8 - 1) / 4, (3.2 - 1) / 4, (2.5 - 1) / 4, (4.1 - 1) / 4, (2.9 - 1) / 4],
    [0.0, 1.0, 0.5, 0.5, (4.5 - 1) / 4],
]

FORMATS = [
    ("bigfive_ipip50.tsv", "ipip50", 5, 2, IPIP50_TSV),
    ("bigfive_ipip50_letters.csv", "ipip50-letters", 3, 0, IPIP50_LETTERS),
    ("bigfive_sapa.csv", "sapa25", 4, 1, SAPA_CSV),
    ("bigfive_traits.csv", "trait-scores", 4, 1, TRAIT_SCORES),
]


@pytest.mark.parametrize("name, instrument, read, dropped, rows", FORMATS, ids=[f[1] for f in FORMATS])
def test_big_five_formats_are_scored_as_by_hand(name, instrument, read, dropped, rows):
    profiles = hybrid.read_big_five(FIXTURES / name)
    assert (profiles.instrument, profiles.read, profiles.dropped) == (instrument, read, dropped)
    assert profiles.traits.shape == (read - dropped, 5)
    np.testing.assert_allclose(profiles.traits[: len(rows)], rows, rtol=0, atol=1e-12)


def test_big_five_rows_are_read_the_same_in_chunks(tmp_path, monkeypatch):
    whole = hybrid.read_big_five(FIXTURES / "bigfive_ipip50.tsv")
    monkeypatch.setattr(hybrid, "CHUNK", 2)  # chunk boundaries inside the five rows
    chunked = hybrid.read_big_five(FIXTURES / "bigfive_ipip50.tsv")
    assert np.array_equal(whole.traits, chunked.traits) and whole.dropped == chunked.dropped
    path = tmp_path / "x.tsv"
    path.write_text(fixture_with("bigfive_ipip50.tsv", "\n1\t5\t2", "\n1\t5\t7"))  # row 5
    with pytest.raises(InputError, match=r"row 5 \(line 6\), column 'EXT3'"):
        hybrid.read_big_five(path)


def test_big_five_file_is_recorded_in_the_sidecar(tmp_path):
    path, out = FIXTURES / "bigfive_sapa.csv", tmp_path / "h.csv"
    assert run("--out", out, "--samples", 40, "--big-five", path) == 0
    record = json.loads(out.with_suffix(".json").read_text())["profiles"]
    assert record == {
        "source": "bigfive_sapa.csv",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "format": "sapa25",
        "respondents_read": 4,
        "respondents_used": 3,
        "respondents_dropped": 1,
        "drop_rule": hybrid.DROP_RULE,
        "reused": True,
    }
    assert len(load_dataset(out).y) == 40


def test_few_respondents_are_cycled_in_one_shuffled_order():
    traits = np.arange(35.0).reshape(7, 5)
    rows = hybrid.cycle(traits, 30, seed=1)
    first = rows[:7, 0] // 5
    assert sorted(first) == list(range(7))
    assert np.array_equal(rows[7:14], rows[:7]) and np.array_equal(rows[28:], rows[:2])
    assert not np.array_equal(hybrid.cycle(traits, 30, seed=2), rows)


# --- the real SAPA file --------------------------------------------------------------------


def bfi_rows():
    if not BFI.exists():
        pytest.skip(f"{BFI} not found: the shared data folder is not beside the repository")
    with open(BFI, newline="") as f:
        return list(csv.DictReader(f))


BFI_REVERSED = {"A1", "C4", "C5", "E1", "E2", "O2", "O5"}  # psych's bfi.keys


def hand_score(row):
    """(O, C, E, A, N) from one bfi row, or None when more than half of a trait is blank."""
    scores = []
    for letter in "OCEAN":
        keyed = [7 - int(row[c]) if c in BFI_REVERSED else int(row[c])
                 for c in (f"{letter}{k}" for k in range(1, 6)) if row[c] != ""]  # fmt: skip
        if len(keyed) < 3:
            return None
        scores.append((mean(keyed) - 1) / 5)
    return scores


def test_bfi_usable_respondents_and_their_scores():
    rows = bfi_rows()
    expected = [s for s in map(hand_score, rows) if s is not None]
    profiles = hybrid.read_big_five(BFI)
    assert (profiles.instrument, profiles.read) == ("sapa25", len(rows)) == ("sapa25", 2800)
    assert profiles.dropped == len(rows) - len(expected)
    np.testing.assert_allclose(profiles.traits, expected, rtol=0, atol=1e-12)


def test_builtin_population_figures_are_the_rounded_bfi_statistics():
    items = [f"{letter}{k}" for letter in "OCEAN" for k in range(1, 6)]
    S = 1 + 5 * np.array([hand_score(r) for r in bfi_rows() if all(r[c] != "" for c in items)])  # 1-6 scale
    assert len(S) == 2436
    assert np.abs(S.mean(axis=0) - (1 + 5 * hybrid.POP_MEAN)).max() <= 0.005 + 1e-9
    assert np.abs(S.std(axis=0, ddof=1) - 5 * hybrid.POP_SD).max() <= 0.005 + 1e-9
    assert np.abs(np.corrcoef(S.T) - hybrid.POP_CORR).max() <= 0.005 + 1e-9


# --- bad Big Five files and arguments ------------------------------------------------------


def fixture_with(name, old, new, count=1):
    return (FIXTURES / name).read_text().replace(old, new, count)


def letters_without(column):
    lines = (FIXTURES / "bigfive_ipip50_letters.csv").read_text().splitlines()
    j = lines[0].split(",").index(column)
    return "\n".join(",".join(c for k, c in enumerate(l.split(",")) if k != j) for l in lines) + "\n"


SAPA_HEAD = (FIXTURES / "bigfive_sapa.csv").read_text().splitlines()[0]
BAD_BIG_FIVE = [
    ("partial letters", "x.csv", letters_without("O7"), r"looks like ipip50-letters but lacks column\(s\) O7"),
    ("unknown", "x.csv", "a,b\n1,2\n", r"not a known Big Five file"),
    ("empty", "x.csv", "", r"empty file"),
    ("header only", "x.csv", SAPA_HEAD + "\n", r"no data rows \(header only\)"),
    ("ipip 6", "x.tsv", fixture_with("bigfive_ipip50.tsv", "\n0\t0\t0", "\n0\t0\t6"),
     r"row 2 \(line 3\), column 'EXT3': '6' is not a whole number from 1 to 5 \(ipip50\)"),
    ("sapa half", "x.csv", fixture_with("bigfive_sapa.csv", "102,1,6", "102,1.5,6"),
     r"row 2 \(line 3\), column 'A1': '1.5' is not a whole number from 1 to 6"),
    ("sapa zero", "x.csv", fixture_with("bigfive_sapa.csv", "104,6", "104,0"), r"row 4 \(line 5\), column 'A1': '0'"),
    ("sapa text", "x.csv", fixture_with("bigfive_sapa.csv", "101,2,4,3", "101,2,4,x"),
     r"row 1 \(line 2\), column 'A3': not a number: 'x'"),
    ("traits 0-1", "x.csv", fixture_with("bigfive_traits.csv", "d,2.75", "d,0.75"),
     r"row 4 \(line 5\), column 'openness': '0.75' is not a number from 1 to 5"),
    ("ragged", "x.csv", fixture_with("bigfive_traits.csv", "b,1,5,3,3,4.5", "b,1,5,3,3"),
     r"row 2 \(line 3\): 5 fields, the header has 6"),
    ("all dropped", "x.csv", SAPA_HEAD + "\n1" + "," * 28 + "\n", r"no usable respondent"),
]  # fmt: skip


@pytest.mark.parametrize("name, filename, text, message", BAD_BIG_FIVE, ids=[c[0] for c in BAD_BIG_FIVE])
def test_bad_big_five_file_exits_2_naming_file_row_and_column(tmp_path, capsys, name, filename, text, message):
    path, out = tmp_path / filename, tmp_path / "out" / "h.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as e:
        hybrid.read_big_five(path)
    assert str(e.value).startswith(f"{path}: ") and "\n" not in str(e.value)
    assert run("--out", out, "--big-five", path) == 2
    assert capsys.readouterr().err.startswith(f"npmlp: error: {path}: ")
    assert not out.parent.exists()


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert run("--out", tmp_path / "h.txt") == 2
    assert "--out must name a .csv file" in capsys.readouterr().err
    assert run("--out", tmp_path / "h.csv", "--big-five", tmp_path / "none.csv") == 2
    assert "none.csv: no such file" in capsys.readouterr().err
    for args in (["--samples", "5"], ["--seed", "-1"]):
        with pytest.raises(SystemExit) as e:
            run("--out", tmp_path / "h.csv", *args)
        assert e.value.code == 2
    assert cli.main(["data"]) == 2
    assert not (tmp_path / "h.csv").exists()
