"""The sweep: grid files and their expansion, the statistics, and a tiny sweep driven through make
(resume after kill -9, a diverging variant, reruns that retrain nothing, combine)."""

import itertools
import json
import math
import os
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from npmlp import cli, sweep
from npmlp.config import Config
from npmlp.data import load_dataset
from npmlp.files import InputError
from npmlp.report import check_results, load_results
from npmlp.train import fit

REPO = Path(__file__).resolve().parents[1]
V1_1 = REPO / "grids" / "v1_1.toml"

# The team's v1.1 sweep: name -> (field, value) changed from the baseline.
TEAM = {
    "v1_1_lr_0.0001": ("lr", 0.0001), "v1_1_lr_0.0005": ("lr", 0.0005), "v1_1_lr_0.002": ("lr", 0.002),
    "v1_1_lr_0.005": ("lr", 0.005), "v1_1_batch_16": ("batch_size", 16), "v1_1_batch_64": ("batch_size", 64),
    "v1_1_batch_128": ("batch_size", 128), "v1_1_arch_wider": ("hidden", (256, 128)),
    "v1_1_arch_deeper": ("hidden", (128, 64, 32)), "v1_1_arch_smaller": ("hidden", (96, 48)),
    "v1_1_arch_wide_deep": ("hidden", (256, 128, 64)), "v1_1_dropout_0.1": ("dropout", 0.1),
    "v1_1_dropout_0.3": ("dropout", 0.3), "v1_1_dropout_0.4": ("dropout", 0.4),
}  # fmt: skip

# Three variants, two seeds, a few epochs on 300 rows: one learns, one diverges, one is wider.
TINY = """
name = "tiny"
seeds = 2
variant_name = "tiny_{axis}_{label}"
[baseline]
hidden = [16]
lr = 0.01
epochs = 4
[axes]
lr = [10.0]
hidden = [[16, 8]]
"""
TINY_NAMES = ["tiny_baseline", "tiny_lr_10.0", "tiny_hidden_16x8"]


def write_grid(folder: Path, text: str, name: str = "g.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


# ---- the grid file -----------------------------------------------------------------------------


def test_v1_1_grid_gives_the_team_variants_in_order():
    grid = sweep.load_grid(V1_1)
    assert [v.name for v in grid.variants] == ["v1_0_baseline", *TEAM]
    assert grid.mode == "one-at-a-time" and grid.seeds == (0, 1, 2) and grid.combined_name == "v1_1_combined"
    base = grid.variants[0].config
    assert (base.lr, base.batch_size, base.hidden, base.dropout, base.epochs, base.patience) == (
        0.001, 32, (128, 64), 0.2, 100, 10)  # fmt: skip
    assert base.split_seed == 42 and base.seed == 0


def test_v1_1_variants_each_change_one_setting():
    grid = sweep.load_grid(V1_1)
    base = grid.variants[0].config
    for v in grid.variants[1:]:
        field, value = TEAM[v.name]
        assert v.axis == field and getattr(v.config, field) == value
        assert replace(v.config, **{field: getattr(base, field)}) == base


def test_one_at_a_time_trains_the_baseline_value_once(tmp_path):
    grid = sweep.load_grid(write_grid(tmp_path, "[axes]\nlr = [0.001, 0.01]\ndropout = [0.3, 0.2]\n"))
    assert [v.name for v in grid.variants] == ["g_baseline", "g_lr_0.01", "g_dropout_0.3"]


@pytest.mark.parametrize("lrs, batches, count", [([0.001, 0.01, 0.1], [32, 64], 6), ([0.01, 0.1], [64], 3)])
def test_cartesian_is_the_product_with_the_baseline_once(tmp_path, lrs, batches, count):
    text = f'mode = "cartesian"\n[axes]\nlr = {lrs}\nbatch_size = {batches}\n'
    grid = sweep.load_grid(write_grid(tmp_path, text))
    points = {(v.config.lr, v.config.batch_size) for v in grid.variants}
    assert len(grid.variants) == len(points) == count
    assert points == set(itertools.product(lrs, batches)) | {(0.001, 32)}
    assert grid.variants[0].config == Config() and len({v.name for v in grid.variants}) == count


@pytest.mark.parametrize(
    "text, key",
    [
        ("[axes]\nlrr = [0.1]\n", "axes.lrr"),
        ("[baseline]\nlearning_rate = 0.1\n", "learning_rate"),
        ("[axes]\nlr = []\n", "axes.lr"),
        ('[axes]\nlr = ["fast"]\n', "axes.lr"),
        ("[axes]\nhidden = 5\n", "axes.hidden"),
        ("[axes]\nhidden = [5]\n", "axes.hidden"),
        ('[axes.hidden]\nvalues = [[8]]\nlabels = ["a", "b"]\n', "axes.hidden.labels"),
        ('mode = "random"\n', "mode"),
        ('seeds = "3"\n', "seeds"),
        ("[axes\nlr = [0.1]\n", "line 1"),
        ('variant_name = "../{point}"\n[axes]\nlr = [0.1]\n', "variant_name"),
        ('baseline_name = ".base"\n', "baseline_name"),
        ('variant_name = "{nope}"\n[axes]\nlr = [0.1]\n', "variant_name"),
        ("colour = 1\n", "colour"),
    ],
)
def test_a_bad_grid_names_file_and_key_and_exits_2(tmp_path, capsys, text, key):
    grid = write_grid(tmp_path, text)
    out = tmp_path / "out"
    assert cli.main(["sweep", "plan", "--grid", str(grid), "--data", "x.csv", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"npmlp: error: {grid}: ") and key in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize("name", ["../x", ".x", "a/b", "", "a b", "x\\y", "~"])
def test_names_that_could_leave_the_output_folder_are_rejected(name):
    with pytest.raises(InputError, match="bad variant name"):
        sweep.check_name(name, "where")


def test_a_plan_with_a_bad_name_is_rejected(tmp_path):
    plan = dict.fromkeys(sweep.PLAN_KEYS) | {"name": "../evil", "config": Config().to_dict(), "seeds": [0]}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    with pytest.raises(InputError, match="bad variant name"):
        sweep.run_plan(path, tmp_path / "out")


def test_plan_rewrites_only_changed_variants_and_drops_removed_ones(tmp_path):
    out = tmp_path / "out"
    grid = write_grid(tmp_path, "[axes]\nlr = [0.01, 0.1]\ndropout = [0.3]\n")
    data = SimpleNamespace(path="d.csv", sha256="0" * 64, target="calling_score")
    sweep.write_plans(sweep.load_grid(grid), data, out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "plan").iterdir()}
    stale = [out / "runs" / "g_lr_0.1.json", *sweep.model_files(out, "calling_score", "g_lr_0.1")]
    for path in [*stale, out / "runs" / "g_lr_0.01.json"]:
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
    grid.write_text("[axes]\nlr = [0.01, 0.05]\ndropout = [0.3]\n")
    assert sweep.write_plans(sweep.load_grid(grid), data, out) == 3  # g_lr_0.01 has a run
    after = {p.name: p.stat().st_mtime_ns for p in (out / "plan").iterdir()}
    kept = ["g_baseline.json", "g_lr_0.01.json", "g_dropout_0.3.json"]
    assert sorted(after) == sorted([*kept, "g_lr_0.05.json"])
    assert [after[k] for k in kept] == [before[k] for k in kept]
    assert json.loads((out / "plan" / "g_lr_0.05.json").read_text())["config"]["lr"] == 0.05
    assert not any(path.exists() for path in stale)  # a variant gone from the grid leaves nothing
    assert (out / "runs" / "g_lr_0.01.json").exists()


# ---- statistics --------------------------------------------------------------------------------


def test_summary_is_mean_sample_std_and_t_interval():
    s = sweep.summarize([1.0, 2.0, 3.0])
    half = 4.303 / math.sqrt(3)  # t(0.975, 2) * std / sqrt(n)
    assert (s["mean"], s["std"], s["n"]) == (2.0, 1.0, 3) and s["ci95"] == pytest.approx([2 - half, 2 + half])
    assert sweep.summarize([0.5]) == {"mean": 0.5, "std": 0.0, "ci95": None, "n": 1}


@pytest.mark.parametrize("df, t", [(1, 12.706), (2, 4.303), (10, 2.228), (30, 2.042), (1e12, 1.96)])
def test_t_quantiles_at_table_points(df, t):
    assert sweep.t975(df) == pytest.approx(t, abs=1e-9)


# Exact t(0.975, df) for fractional and large df (the inverse t CDF, by numeric integration of
# the density); the interpolated table is within 0.5% of them for df >= 2.
@pytest.mark.parametrize("df, exact", [(2.5, 3.5747), (2.94, 3.2195), (4.5, 2.6589), (60, 2.0003), (120, 1.9799)])
def test_t_quantiles_between_table_points(df, exact):
    assert sweep.t975(df) == pytest.approx(exact, rel=0.005)


def test_welch_interval_and_noise_flag():
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 6.0]  # df = (1/3 + 4/3)^2 / ((1/3)^2/2 + (4/3)^2/2) = 50/17
    imp = sweep.improvement(a, b)
    half = sweep.t975(50 / 17) * math.sqrt(1 / 3 + 4 / 3)
    assert imp["test_mse_diff"] == -2.0 and imp["percent"] == -100.0
    assert imp["ci95"] == pytest.approx([-2 - half, -2 + half]) and imp["within_noise"]
    clear = sweep.improvement([1.0, 1.1, 0.9], [0.5, 0.51, 0.49])
    assert clear["ci95"][0] > 0 and not clear["within_noise"]
    one_seed = sweep.improvement([1.0], [0.5])
    assert one_seed == {"test_mse_diff": 0.5, "percent": 50.0, "ci95": None, "within_noise": True}


# ---- settings reach the trained weights ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "hybrid.csv"
    assert cli.main(["data", "hybrid", "--out", str(path), "--samples", "300"]) == 0
    return path


@pytest.fixture(scope="module")
def base_fit(tiny_data):
    data = load_dataset(tiny_data)
    return data, fit(data.X, data.y, Config(hidden=(16,), lr=0.01, epochs=2))


@pytest.mark.parametrize("field, value", [("lr", 0.003), ("batch_size", 64), ("hidden", (16, 8)), ("dropout", 0.4)])
def test_each_axis_changes_the_trained_weights(base_fit, field, value):
    data, a = base_fit
    again = fit(data.X, data.y, a.config)
    b = fit(data.X, data.y, replace(a.config, **{field: value}))
    assert np.array_equal(again.model.theta, a.model.theta)  # so a difference below is the setting's
    assert b.model.theta.shape != a.model.theta.shape or not np.array_equal(b.model.theta, a.model.theta)
    assert b.model.sizes == (39, *b.config.hidden, 1)
    for result in (a, b):
        assert result.steps == result.epochs_run * math.ceil(len(result.split.train) / result.config.batch_size)


# ---- a tiny sweep through make -----------------------------------------------------------------


def make(*goals, **variables) -> list[str]:
    args = [f"{k}={v}" for k, v in variables.items()]
    return ["make", "-C", str(REPO), "--no-print-directory", *goals, *args, "REPORT="]


def make_env() -> dict:
    """Our environment without an enclosing make's flags (`make test` runs this file)."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}


def run_make(*goals, **variables) -> subprocess.CompletedProcess:
    done = subprocess.run(make(*goals, **variables), env=make_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def no_constants(name):
    raise AssertionError(f"{name} in the results JSON")


def read_results(out: Path) -> dict:
    return json.loads((out / sweep.RESULTS).read_text(), parse_constant=no_constants)


def run_mtimes(out: Path) -> dict:
    return {p.stem: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}


def trained(stderr: str) -> set:
    """Variants the progress lines show a seed trained for."""
    return {line[1:].split("]")[0] for line in stderr.splitlines() if "] seed " in line}


@pytest.fixture(scope="module")
def swept(tiny_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    grid, out = write_grid(root, TINY, "tiny.toml"), root / "out"
    done = run_make("sweep", GRID=grid, DATA=tiny_data, OUT=out)
    return grid, out, done.stderr


def test_sweep_writes_plans_runs_models_and_a_valid_results_file(swept):
    grid, out, stderr = swept
    assert trained(stderr) == set(TINY_NAMES)
    assert sorted(p.stem for p in (out / "plan").iterdir()) == sorted(TINY_NAMES)
    assert sorted(run_mtimes(out)) == sorted(TINY_NAMES)
    results = check_results(read_results(out), out)
    assert load_results(out / sweep.RESULTS) == results  # what the report reads
    assert [v["name"] for v in results["variants"]] == TINY_NAMES
    assert results["grid"]["axes"] == {"lr": [10.0], "hidden": [[16, 8]]} and results["grid"]["seeds"] == [0, 1]
    assert results["data"]["split"] == {"seed": 42, "train": 210, "val": 45, "test": 45}
    assert set(results["data"]["noise_floor"]) == {"all", "train", "val", "test"}
    assert 0 < results["linear_baseline"]["test_mse"] < 1
    for v in results["variants"]:
        assert (out / f"calling_score_model_{v['name']}.onnx").exists() == (v["status"] == "ok")


def test_a_diverging_variant_fails_alone_with_its_reason_and_nulls(swept):
    _, out, _ = swept
    variants = {v["name"]: v for v in read_results(out)["variants"]}
    bad = variants.pop("tiny_lr_10.0")
    assert bad["status"] == "failed" and "lr 10" in bad["reason"] and bad["model"] is None
    assert bad["best_seed"] is None and bad["improvement"] is None
    assert all(s is None for s in bad["summary"].values())
    assert all(s["status"] == "failed" and s["val_mse"] is None and s["reason"] for s in bad["seeds"])
    assert all(v["status"] == "ok" and v["reason"] is None for v in variants.values())


def test_settings_are_read_back_from_what_was_trained_and_written(swept):
    _, out, _ = swept
    for v in read_results(out)["variants"]:
        assert v["steps_per_epoch"] == math.ceil(210 / v["config"]["batch_size"])
        if v["status"] != "ok":
            continue
        model = v["model"]
        assert model["hidden"] == v["config"]["hidden"]
        assert model["bytes"] == (out / model["path"]).stat().st_size
        sizes = [39, *v["config"]["hidden"], 1]
        assert model["n_params"] == sum(a * b + b for a, b in zip(sizes, sizes[1:]))
        assert all(s["steps"] == v["steps_per_epoch"] * s["epochs_run"] for s in v["seeds"])
        best = min(v["seeds"], key=lambda s: s["val_mse"])
        assert v["best_seed"] == best["seed"]


def test_best_is_chosen_on_validation_mse_among_ok_variants(swept):
    _, out, _ = swept
    results = read_results(out)
    ok = [v for v in results["variants"] if v["status"] == "ok"]
    best = min(ok, key=lambda v: v["summary"]["val_mse"]["mean"])
    assert results["best"]["name"] == best["name"] and results["best"]["by"] == "val_mse mean"
    # lr 10 failed, so the baseline is best on lr; on hidden the better of the two ok variants
    assert results["axis_best"] == {"lr": "tiny_baseline", "hidden": best["name"]}
    wider = results["variants"][2]["improvement"]
    lo, hi = wider["ci95"]
    assert wider["within_noise"] == (lo <= 0 <= hi)
    base_test = results["variants"][0]["summary"]["test_mse"]["mean"]
    assert wider["test_mse_diff"] == pytest.approx(base_test - results["variants"][2]["summary"]["test_mse"]["mean"])


def test_an_unchanged_rerun_retrains_nothing(swept, tiny_data):
    grid, out, _ = swept
    before = run_mtimes(out)
    done = run_make("sweep", GRID=grid, DATA=tiny_data, OUT=out)
    assert trained(done.stderr) == set() and run_mtimes(out) == before
    up_to_date = subprocess.run(make("-q", str(out / sweep.RESULTS), GRID=grid, DATA=tiny_data, OUT=out),
                                env=make_env(), capture_output=True)  # fmt: skip
    assert up_to_date.returncode == 0


def test_a_touched_but_unchanged_data_file_retrains_nothing(swept, tiny_data):
    grid, out, _ = swept
    before = run_mtimes(out)
    os.utime(tiny_data)  # newer mtime, same bytes: plans are compared by content
    os.utime(grid)
    done = run_make("sweep", GRID=grid, DATA=tiny_data, OUT=out)
    assert trained(done.stderr) == set() and run_mtimes(out) == before


def test_collect_refuses_runs_of_another_plan(swept, tiny_data, tmp_path):
    _, out, _ = swept
    edited = sweep.load_grid(write_grid(tmp_path, TINY.replace("epochs = 4", "epochs = 5"), "tiny.toml"))
    with pytest.raises(InputError, match="trained for another plan"):
        sweep.collect(edited, load_dataset(tiny_data), out)


def strip_timing(x):
    if isinstance(x, dict):
        return {k: strip_timing(v) for k, v in x.items() if k not in ("timing", "seconds")}
    return [strip_timing(v) for v in x] if isinstance(x, list) else x


def test_a_killed_sweep_resumes_and_gives_the_same_results(swept, tiny_data, tmp_path):
    grid, first, _ = swept
    out = tmp_path / "out"
    proc = subprocess.Popen(make("sweep", GRID=grid, DATA=tiny_data, OUT=out), env=make_env(),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while not run_mtimes(out):
        assert proc.poll() is None and time.monotonic() < deadline, "no run file before make ended"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = run_mtimes(out)
    assert 0 < len(finished) < len(TINY_NAMES) and not (out / sweep.RESULTS).exists()
    done = run_make("sweep", GRID=grid, DATA=tiny_data, OUT=out)
    assert trained(done.stderr) == set(TINY_NAMES) - set(finished)
    assert {k: run_mtimes(out)[k] for k in finished} == finished
    assert strip_timing(read_results(out)) == strip_timing(read_results(first))


def test_combine_trains_each_axis_best_value_together(swept, tiny_data, capsys):
    grid, out, _ = swept
    args = ["sweep", "combine", "--grid", str(grid), "--data", str(tiny_data), "--out", str(out)]
    assert cli.main(args) == 0
    assert trained(capsys.readouterr().err) == {"tiny_combined"}
    results = check_results(read_results(out), out)
    load_results(out / sweep.RESULTS)
    combined, by_name = results["combined"], {v["name"]: v for v in results["variants"]}
    assert combined["name"] == "tiny_combined" and combined["status"] == "ok"
    for field, name in results["axis_best"].items():
        assert combined["config"][field] == by_name[name]["config"][field] == combined["value"][field]
    assert (out / combined["model"]["path"]).exists() and combined["improvement"] is not None
    assert cli.main(args) == 0
    assert trained(capsys.readouterr().err) == set()  # already trained: only re-collected
