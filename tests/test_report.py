"""The report: rendered from hand-written results fixtures, checked for numbers, honesty and errors."""

import copy
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from npmlp import report, svg
from npmlp.cli import main
from npmlp.files import InputError

FIXTURES = Path(__file__).parent / "fixtures"
SVG = "{http://www.w3.org/2000/svg}"


def render(tmp_path, name: str, results: dict | None = None) -> str:
    """Render fixture `name` (or `results` written beside it) and return the Markdown."""
    src = FIXTURES / f"results_{name}.json"
    if results is not None:
        src = tmp_path / f"results_{name}.json"
        src.write_text(json.dumps(results))
    out = tmp_path / "reports" / "MODEL_VARIATIONS_v1.1.md"
    assert main(["report", "--results", str(src), "--out", str(out)]) == 0
    return out.read_text()


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"results_{name}.json").read_text())


def section(md: str, heading: str) -> str:
    """The text from a heading line to the next heading of the same or higher level."""
    level = heading.split(" ")[0]
    start = md.index(heading + "\n") if heading + "\n" in md else md.index(heading)
    rest = md[start + len(heading):]
    ends = [m.start() for m in re.finditer(rf"^#{{1,{len(level)}}} ", rest, re.M)]
    return rest[: ends[0]] if ends else rest


def table_names(text: str, column: int = 0) -> list[str]:
    """Variant names (in backticks) in one column of the Markdown table rows in text."""
    rows = [line.strip("|").split(" | ") for line in text.splitlines() if line.startswith("| ")]
    return [m.group(1) for row in rows if (m := re.match(r" ?`([^`]+)`", row[column]))]


def test_small_report_states_the_best_with_its_numbers(tmp_path):
    md = render(tmp_path, "small")
    r = fixture("small")
    best = next(v for v in r["variants"] if v["name"] == r["best"]["name"])
    test = best["summary"]["test_mse"]
    part = section(md, f"## Best variant: `{best['name']}`")
    assert f"{test['mean']:.6f} ± {test['std']:.6f}" in part
    assert f"{r['best']['improvement']['percent']:+.2f}%" in part and "beyond noise" in part
    assert "**v1.1**" in part and f"{best['model']['n_params']:,}" in part
    assert f"{best['model']['bytes'] / 1024:.1f} KB" in part
    assert "beats the baseline beyond noise" in md
    assert f"1. Ship `{best['name']}` as v1.1" in section(md, "## Recommendations")


def test_axis_tables_list_the_baseline_and_every_variant_of_the_axis(tmp_path):
    md = render(tmp_path, "small")
    r = fixture("small")
    for axis, best_name in r["axis_best"].items():
        rows = section(md, f"### {axis}")
        expected = [r["grid"]["baseline"]] + [v["name"] for v in r["variants"] if v["axis"] == axis]
        assert sorted(table_names(rows)) == sorted(expected)
        assert f"`{best_name}` **best**" in rows and rows.count("**best**") == 1


def test_top_five_are_ordered_by_validation_mse(tmp_path):
    md = render(tmp_path, "small")
    ranked = sorted(fixture("small")["variants"], key=lambda v: v["summary"]["val_mse"]["mean"])
    assert table_names(section(md, "## Top 5 by validation MSE"), 1) == [v["name"] for v in ranked[:5]]


def test_insights_are_derived_from_the_numbers(tmp_path):
    md = render(tmp_path, "small")
    part = section(md, "## Insights")
    # lr in the fixture: 0.0005 -> 0.001 (baseline) -> 0.003 improve, 0.01 worse again
    lr = "val MSE falls as lr goes from 0.0005 to 0.003 (0.005610 → 0.004313), then rises to 0.01 (0.004723)"
    assert lr in part
    assert "time per epoch falls as batch_size goes from 16 to 64 (0.38 s → 0.11 s)" in part
    dropout = next(line for line in part.splitlines() if line.startswith("- **dropout**"))
    assert "time" not in dropout  # dropout leaves an epoch's work unchanged: no timing noise reported
    assert "within noise of the baseline: 16, 64" in part
    assert "Still improving at the epoch limit (12): `v1_1_lr_0.0005` (2 of 3 seeds);" in part
    r = fixture("small")
    linear, floor = r["linear_baseline"]["test_mse"], r["data"]["noise_floor"]["test"]
    closed = 100 * (linear - 0.00435) / (linear - floor)
    assert f"The best MLP closes {closed:.2f}% of the gap" in md


@pytest.mark.parametrize(
    "points, expected",
    [
        ([("a", 3.0), ("b", 2.0), ("c", 2.0), ("d", 4.0)],
         "y falls as x goes from a to b (3.000 → 2.000), then stays level to c (2.000), then rises to d (4.000)"),
        ([("a", 1.0), ("b", 1.0004)], "y stays level as x goes from a to b (1.000 → 1.000)"),
    ],
)
def test_trend_follows_the_signs_of_the_steps_as_printed(points, expected):
    assert report.trend(points, "y", "x", lambda v: f"{v:.3f}") == expected


def test_identical_twins_get_no_winner_between_them(tmp_path):
    md = render(tmp_path, "twins")
    twins = "`v1_1_lr_0.003` and `v1_1_lr_0.003_rerun`"
    assert "## Best variant: `v1_1_lr_0.003` = `v1_1_lr_0.003_rerun` (indistinguishable)" in md
    assert f"{twins} are indistinguishable" in md.split("## Best variant")[0]
    assert f"Ship {twins} (identical results: either file) as v1.1" in md
    assert md.count("**tied best**") == 4  # the lr twins, and the baseline with its batch_size 32 copy
    ranks = re.findall(r"^\| (\d+=?) \|", section(md, "## Top 5 by validation MSE"), re.M)
    assert ranks[:2] == ["1=", "1="]


def test_twin_of_a_better_variant_never_wins_outside_the_fixture_either(tmp_path):
    r = fixture("small")
    best = next(v for v in r["variants"] if v["name"] == r["best"]["name"])
    r["variants"].append({**copy.deepcopy(best), "name": "v1_1_lr_0.003_copy"})
    md = render(tmp_path, "copied", r)
    assert "## Best variant: `v1_1_lr_0.003` = `v1_1_lr_0.003_copy` (indistinguishable)" in md
    assert "Ship `v1_1_lr_0.003` as" not in md


def test_baseline_twin_as_best_means_no_variant_beats_the_baseline(tmp_path):
    r = fixture("small")
    base = r["variants"][0]
    r["variants"] = [base, {**copy.deepcopy(base), "name": "v1_1_dropout_0.2", "axis": "dropout", "value": 0.2,
                            "improvement": {"test_mse_diff": 0.0, "percent": 0.0, "ci95": [0.0, 0.0],
                                            "within_noise": True}}]
    r["axis_best"] = {"dropout": base["name"]}
    r["best"] = {"name": "v1_1_dropout_0.2", "by": "val_mse mean", "improvement": r["variants"][1]["improvement"]}
    md = render(tmp_path, "baseline_twin", r)
    assert "**Verdict.** No variant beats the baseline: the baseline has the lowest validation MSE." in md
    assert "1. Keep the baseline `v1_0_baseline`." in md
    assert "Not a candidate for version v1.1: no variant beats the baseline: the baseline has" in md


def test_failed_variant_shows_its_reason_and_no_numbers(tmp_path):
    md = render(tmp_path, "failed")
    row = next(line for line in section(md, "### lr").splitlines() if "`v1_1_lr_0.05`" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2:6] == ["failed", "failed", "failed", "failed"]
    assert cells[6] == "failed: all 3 seeds diverged: training MSE not finite at epoch 2"
    failures = section(md, "## Failed variants")
    assert table_names(failures) == ["v1_1_lr_0.05", "v1_1_batch_size_16"]
    assert "| 1 of 3 | 1 of 3 seeds failed; seed 1: training MSE not finite at epoch 2 |" in failures
    assert "No variant beats the baseline beyond noise" in md
    assert "1. Keep the baseline `v1_0_baseline`." in md
    assert "Not a candidate for version" in section(md, "## Best variant") and "Candidate version" not in md
    assert "No noise floor is known" in md


def test_an_ok_variant_with_a_failed_seed_says_so(tmp_path):
    r = fixture("small")
    v = r["variants"][4]
    v["seeds"][1] = {**v["seeds"][1], "status": "failed", "reason": "diverged at epoch 3", "val_mse": None,
                     "test_mse": None, "history": None}
    md = render(tmp_path, "seed_failed", r)
    assert "| ok (1 of 3 seeds failed) |" in section(md, f"### {v['axis']}")
    assert f"| `{v['name']}` | {v['axis']} = {v['value']} | ok | 1 of 3 | seed 1: diverged at epoch 3 |" in md


def test_nothing_trained_still_reports_the_failures(tmp_path):
    r = fixture("failed")
    for v in r["variants"]:
        v.update(status="failed", reason="data has a constant target", model=None, best_seed=None,
                 improvement=None, summary=dict.fromkeys(v["summary"]))
    r["best"], r["axis_best"] = None, dict.fromkeys(r["axis_best"])
    md = render(tmp_path, "none_trained", r)
    assert "**Verdict.** No variant trained successfully, so there is nothing to ship" in md
    assert len(table_names(section(md, "## Failed variants"))) == len(r["variants"])
    assert "## Best variant" not in md and "## Recommendations" not in md


def test_renders_are_byte_identical(tmp_path):
    render(tmp_path, "small")
    first = {p: p.read_bytes() for p in sorted((tmp_path / "reports").rglob("*")) if p.is_file()}
    render(tmp_path, "small")
    second = {p: p.read_bytes() for p in sorted((tmp_path / "reports").rglob("*")) if p.is_file()}
    assert first == second and len(first) == 5  # the report, 3 curve charts, 1 interval chart


@pytest.mark.parametrize("name", ["small", "failed"])
def test_figures_parse_and_draw_one_mark_per_ok_variant(tmp_path, name):
    md = render(tmp_path, name)
    r = fixture(name)
    links = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.svg)\)", md)
    assert len(links) == len(r["grid"]["axes"]) + 1
    for link in links:
        root = ET.parse(tmp_path / "reports" / link).getroot()
        assert root.find(f"{SVG}rect").get("fill") == "#ffffff"
        axis = re.search(r"_val_curves_(.+)\.svg", link)
        if axis:
            ok = [v for v in r["variants"] if v["axis"] == axis.group(1) and v["status"] == "ok"]
            assert len(root.findall(f"{SVG}polyline")) == len(ok) + 1  # + the baseline
        else:
            assert len(root.findall(f"{SVG}path")) == sum(v["status"] == "ok" for v in r["variants"])


def test_extra_keys_are_tolerated(tmp_path):
    r = fixture("small")
    r["variants"][2]["notes"] = "kept for later"
    r["future_section"] = {"anything": [1, 2]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(r))
    assert report.load_results(path)["variants"][2]["notes"] == "kept for later"


def _break_summary(r):
    del r["variants"][3]["summary"]


def _bad_type(r):
    r["variants"][1]["summary"]["val_mse"]["mean"] = "low"


def _bad_best(r):
    r["best"]["name"] = "v9_nope"


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"schema": "npmlp.sweep/1",\n  "grid": }', "line 2, column 11: malformed JSON"),
        ('{"schema": "npmlp.sweep/0"}', 'schema is "npmlp.sweep/0", expected "npmlp.sweep/1"'),
        ('[1, 2]', "the top level should be a JSON object"),
        (_break_summary, 'missing key "variants[3].summary"'),
        (_bad_type, '"variants[1].summary.val_mse.mean" should be a number, not the string "low"'),
        (_bad_best, '"best.name" names no variant: "v9_nope"'),
    ],
)
def test_bad_results_exit_2_with_one_clear_line(tmp_path, capsys, text, message):
    path = tmp_path / "optimization_results.json"
    if callable(text):
        r = fixture("small")
        text(r)
        text = json.dumps(r)
    path.write_text(text)
    out = tmp_path / "reports" / "r.md"
    assert main(["report", "--results", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npmlp: error: {path}: ") and message in err and err.count("\n") == 1
    assert not out.exists() and not (tmp_path / "reports").exists()


def test_load_results_raises_input_error_for_nan(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"schema": "npmlp.sweep/1", "x": NaN}')
    with pytest.raises(InputError, match=r"r\.json: NaN is not a JSON value"):
        report.load_results(path)


@pytest.mark.parametrize(
    "grid, label", [("v1_1", "v1.1"), ("v2", "v2"), ("v1_10_2", "v1.10.2"), ("spring_grid", "spring_grid")]
)
def test_version_label_comes_from_the_grid_name(grid, label):
    assert report.version_label(grid) == label


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (0.0043, 0.0057, [0.004, 0.0045, 0.005, 0.0055, 0.006]),
        (0.3, 0.3, [0.26, 0.28, 0.3, 0.32, 0.34]),  # a flat line still gets an axis
        (1.0, 97.0, [0, 20, 40, 60, 80, 100]),
    ],
)
def test_linear_ticks_are_round_and_enclose_the_range(lo, hi, expected):
    assert svg.linear_ticks(lo, hi) == expected


@pytest.mark.parametrize(
    "lo, hi, expected",
    [
        (0.0002, 0.9, [0.001, 0.01, 0.1]),  # decades
        (0.004, 0.06, [0.005, 0.01, 0.02, 0.05]),  # 1-2-5
        (0.0041, 0.019, [0.005, 0.006, 0.007, 0.008, 0.009, 0.01]),  # every mantissa
    ],
)
def test_log_ticks_thin_out_as_the_range_grows(lo, hi, expected):
    assert svg.log_ticks(lo, hi) == expected
