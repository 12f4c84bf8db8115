"""The registry (register, list, promote, rollback, refusals) and the A/B comparison, through the CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from npmlp.cli import main
from npmlp.config import Config
from npmlp.data import load_dataset
from npmlp.export import export_fit
from npmlp.files import sha256_file
from npmlp.registry import paired_bootstrap_ci, verdict
from npmlp.train import fit

GOOD = Config(hidden=(8,), dropout=0.0, lr=0.01, batch_size=16, epochs=60, patience=10)
POOR = Config(hidden=(8,), dropout=0.0, lr=1e-4, batch_size=16, epochs=1)  # one slow epoch: near its init
MSES = ("train_mse", "val_mse", "test_mse")
BEST, BASELINE, FAILED = "v1_1_lr_0.01", "v1_0_baseline", "v1_1_lr_1.0"


def write_csv(path, n, seed, columns=("f0", "f1", "f2", "f3")):
    """A learnable target in [0, 1] from len(columns) uniform features."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, len(columns)))
    y = np.clip(1 / (1 + np.exp(-2 * (X[:, 0] - X[:, 1] * X[:, 2]))) + 0.02 * rng.standard_normal(n), 0, 1)
    rows = [",".join([*columns, "calling_score"])] + [",".join(f"{v:.6f}" for v in (*x, t)) for x, t in zip(X, y)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Three exported models: well trained, barely trained, and one on other feature names."""
    root = tmp_path_factory.mktemp("models")
    data = load_dataset(write_csv(root / "train.csv", 300, seed=1))
    other = load_dataset(write_csv(root / "other.csv", 300, seed=1, columns=("g0", "g1", "g2", "g3")))
    out = {}
    for name, d, config in (("good", data, GOOD), ("poor", data, POOR), ("other", other, GOOD)):
        result = fit(d.X, d.y, config)
        out[name] = (export_fit(result, d, root / f"{name}.onnx"), result)
    out["data"] = data
    out["train_csv"] = root / "train.csv"
    out["holdout"] = write_csv(root / "holdout.csv", 1500, seed=2)
    return out


def variant(name, exported, result, status="ok"):
    """A results-JSON variant with the fields the registry reads, per the sweep schema."""
    seed = {"seed": 0, "status": status, **{k: result.metrics[k] for k in MSES}}
    stat = lambda v: {"mean": v, "std": 0.0, "ci95": [v, v], "n": 1}
    return {
        "name": name, "status": status, "reason": None if status == "ok" else "non-finite training loss",
        "config": result.config.to_dict(), "best_seed": 0 if status == "ok" else None, "seeds": [seed],
        "model": None if status != "ok" else {**exported, "path": f"{name}.onnx"},
        "summary": {k: stat(result.metrics[k]) for k in MSES},
        "improvement": {"test_mse_diff": 1e-4, "percent": 1.5, "ci95": [5e-5, 1.5e-4], "within_noise": False},
    }


@pytest.fixture
def sweep(tmp_path, models):
    """tmp/sweep/optimization_results.json with the models copied beside it; the registry lives in
    tmp/registry/, so every stored model path has to cross folders."""
    folder = tmp_path / "sweep"
    folder.mkdir()
    (good, good_fit), (poor, poor_fit) = models["good"], models["poor"]
    for name, exported in ((BEST, good), (BASELINE, poor), ("v1_1_parity", good)):
        shutil.copy(exported["path"], folder / f"{name}.onnx")
        shutil.copy(Path(exported["path"]).with_suffix(".json"), folder / f"{name}.json")
    broken = variant("v1_1_parity", good, good_fit)
    broken["model"]["parity"] = {**good["parity"], "onnxruntime": 0.25}
    results = {
        "schema": "npmlp.sweep/1",
        "data": {"sha256": models["data"].sha256},
        "variants": [variant(BASELINE, poor, poor_fit), variant(BEST, good, good_fit),
                     variant(FAILED, None, poor_fit, status="failed"), broken],
        "combined": None,
        "best": {"name": BEST, "by": "val_mse mean"},
    }
    path = folder / "optimization_results.json"
    path.write_text(json.dumps(results))
    return path


def run(*argv):
    return main([str(a) for a in argv])


def registry_at(sweep):
    return sweep.parent.parent / "registry" / "registry.json"


def register(sweep, version, *extra):
    # --version=NAME, so that a name like "-v1" reaches npmlp's check instead of argparse's
    return run("register", "--results", sweep, f"--version={version}", "--registry", registry_at(sweep), *extra)


def registry_cmd(sweep, *argv):
    return run("registry", *argv, "--registry", registry_at(sweep))


def read(sweep):
    return json.loads(registry_at(sweep).read_text())


def statuses(sweep):
    return {v["version"]: v["status"] for v in read(sweep)["versions"]}


def error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("npmlp: error: ") and err.count("\n") == 1, err
    return err


# ---- register ----------------------------------------------------------------------------------


def test_register_takes_the_best_variant_and_records_it(sweep, models):
    assert register(sweep, "v1.1-hybrid") == 0
    (entry,) = read(sweep)["versions"]
    good, good_fit = models["good"]
    assert entry["version"] == "v1.1-hybrid" and entry["variant"] == BEST
    assert entry["status"] == "staging" and entry["parent"] is None
    assert entry["model"]["path"] == "versions/v1.1-hybrid.onnx"  # its own copy, beside the registry
    model_file = registry_at(sweep).parent / entry["model"]["path"]
    assert entry["model"]["sha256"] == sha256_file(model_file) == good["sha256"]
    assert model_file.with_suffix(".json").read_bytes() == (sweep.parent / f"{BEST}.json").read_bytes()
    assert entry["metrics"]["model"] == {"seed": 0, **{k: good_fit.metrics[k] for k in MSES}}
    assert entry["metrics"]["summary"]["test_mse"]["mean"] == good_fit.metrics["test_mse"]
    assert entry["config"] == GOOD.to_dict()  # seed: the exported seed's (0 here)
    assert entry["data_sha256"] == models["data"].sha256
    assert entry["parity"] == good["parity"]
    assert entry["results"] == "../sweep/optimization_results.json"
    assert read(sweep)["events"] == [{"seq": 1, "action": "register", "version": "v1.1-hybrid", "previous": None}]


def test_register_a_named_variant_with_the_active_version_as_parent(sweep):
    assert register(sweep, "v1.0", "--variant", BASELINE) == 0
    assert registry_cmd(sweep, "promote", "v1.0") == 0
    assert register(sweep, "v1.1-hybrid") == 0
    first, second = read(sweep)["versions"]
    assert (first["variant"], second["variant"]) == (BASELINE, BEST)
    assert second["parent"] == "v1.0" and second["status"] == "staging"


def test_list_shows_one_row_per_version(sweep, models, capsys):
    register(sweep, "v1.0", "--variant", BASELINE)
    registry_cmd(sweep, "promote", "v1.0")
    register(sweep, "v1.1-hybrid")
    capsys.readouterr()
    assert registry_cmd(sweep, "list") == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["version", "status", "variant", "test", "MSE", "(model)", "parent"]
    good_test = models["good"][1].metrics["test_mse"]
    assert [r.split() for r in rows] == [
        ["v1.0", "active", BASELINE, f"{models['poor'][1].metrics['test_mse']:.6f}", "-"],
        ["v1.1-hybrid", "staging", BEST, f"{good_test:.6f}", "v1.0"],
    ]


@pytest.mark.parametrize("name", ["v 1", "../v1", "-v1", ".hidden", "v1/2", "v1:2", ""])
def test_register_refuses_an_invalid_version_name(sweep, capsys, name):
    assert register(sweep, name) == 2
    assert "invalid version name" in error_line(capsys)
    assert not registry_at(sweep).exists()


def test_register_refuses_a_taken_version_name(sweep, capsys):
    assert register(sweep, "v1.1") == 0
    before = registry_at(sweep).read_bytes()
    assert register(sweep, "v1.1", "--variant", BASELINE) == 2
    assert "'v1.1' is already registered" in error_line(capsys)
    assert registry_at(sweep).read_bytes() == before


@pytest.mark.parametrize("name, message", [
    (FAILED, f"variant '{FAILED}' failed (non-finite training loss)"),
    ("v1_1_parity", "variant 'v1_1_parity' failed its parity check"),
    ("v1_1_nope", "unknown variant 'v1_1_nope'"),
])
def test_register_refuses_a_failed_or_unknown_variant(sweep, capsys, name, message):
    assert register(sweep, "v1.1", "--variant", name) == 2
    err = error_line(capsys)
    assert message in err and str(sweep) in err
    assert not registry_at(sweep).exists()


def test_register_refuses_a_model_file_that_disagrees_with_the_results(sweep, capsys):
    results = json.loads(sweep.read_text())
    results["variants"][1]["model"]["sha256"] = "0" * 64
    sweep.write_text(json.dumps(results))
    assert register(sweep, "v1.1") == 2
    err = error_line(capsys)
    assert f"{BEST}.onnx: sha256" in err and "differs from 000000000000" in err
    assert not registry_at(sweep).exists()


def test_register_refuses_a_sweep_without_a_best_variant(sweep, capsys):
    sweep.write_text(json.dumps({**json.loads(sweep.read_text()), "best": None}))
    assert register(sweep, "v1.1") == 2
    assert "no best variant" in error_line(capsys)


def test_register_refuses_results_of_another_kind(sweep, capsys):
    sweep.write_text(json.dumps({"schema": "something/1"}))
    assert register(sweep, "v1.1") == 2
    assert "not sweep results" in error_line(capsys)


# ---- promote and rollback ----------------------------------------------------------------------


def test_promote_archives_the_previous_active_and_rollback_restores_it(sweep):
    register(sweep, "v1.0", "--variant", BASELINE)
    register(sweep, "v1.1", "--variant", BEST)
    assert registry_cmd(sweep, "promote", "v1.0") == 0
    assert statuses(sweep) == {"v1.0": "active", "v1.1": "staging"}
    assert registry_cmd(sweep, "promote", "v1.1") == 0
    assert statuses(sweep) == {"v1.0": "archived", "v1.1": "active"}
    assert registry_cmd(sweep, "rollback") == 0
    assert statuses(sweep) == {"v1.0": "active", "v1.1": "rolled_back"}
    events = [(e["seq"], e["action"], e["version"], e["previous"]) for e in read(sweep)["events"]]
    assert events == [
        (1, "register", "v1.0", None), (2, "register", "v1.1", None),
        (3, "promote", "v1.0", None), (4, "promote", "v1.1", "v1.0"), (5, "rollback", "v1.0", "v1.1"),
    ]


def test_rollback_walks_back_one_promote_at_a_time(sweep, capsys):
    for version in ("a", "b", "c"):
        register(sweep, version)
        registry_cmd(sweep, "promote", version)
    assert registry_cmd(sweep, "rollback") == 0
    assert statuses(sweep) == {"a": "archived", "b": "active", "c": "rolled_back"}
    assert registry_cmd(sweep, "rollback") == 0
    assert statuses(sweep) == {"a": "active", "b": "rolled_back", "c": "rolled_back"}
    capsys.readouterr()
    assert registry_cmd(sweep, "rollback") == 2  # a replaced nothing
    assert "nothing to roll back to" in error_line(capsys)
    assert registry_cmd(sweep, "promote", "c") == 0  # a rolled-back version can be promoted again
    assert statuses(sweep) == {"a": "archived", "b": "rolled_back", "c": "active"}
    assert registry_cmd(sweep, "rollback") == 0  # undoes c's latest promote, not its first
    assert statuses(sweep) == {"a": "active", "b": "rolled_back", "c": "rolled_back"}


def test_rollback_and_promote_refuse_when_there_is_nothing_to_do(sweep, capsys):
    register(sweep, "v1.1")
    assert registry_cmd(sweep, "rollback") == 2
    assert "no active version" in error_line(capsys)
    assert registry_cmd(sweep, "promote", "v9") == 2
    assert "no version 'v9' (registered: v1.1)" in error_line(capsys)
    registry_cmd(sweep, "promote", "v1.1")
    capsys.readouterr()
    assert registry_cmd(sweep, "promote", "v1.1") == 2
    assert "already active" in error_line(capsys)


def test_a_new_sweep_overwriting_the_variant_file_does_not_touch_a_registered_version(sweep):
    register(sweep, "v1.1")
    (sweep.parent / f"{BEST}.onnx").write_bytes(b"next sweep")
    assert registry_cmd(sweep, "promote", "v1.1") == 0


def test_promote_refuses_a_model_file_changed_after_registering(sweep, capsys):
    register(sweep, "v1.1")
    with open(registry_at(sweep).parent / "versions" / "v1.1.onnx", "ab") as f:
        f.write(b"\0")
    before = registry_at(sweep).read_bytes()
    assert registry_cmd(sweep, "promote", "v1.1") == 2
    err = error_line(capsys)
    assert "v1.1.onnx: sha256" in err and str(registry_at(sweep)) in err
    assert registry_at(sweep).read_bytes() == before


def test_rollback_refuses_a_model_file_changed_since_it_was_active(sweep, capsys):
    register(sweep, "v1.0", "--variant", BASELINE)
    register(sweep, "v1.1")
    registry_cmd(sweep, "promote", "v1.0")
    registry_cmd(sweep, "promote", "v1.1")
    (registry_at(sweep).parent / "versions" / "v1.0.onnx").unlink()
    assert registry_cmd(sweep, "rollback") == 2
    assert "v1.0.onnx: model file is missing" in error_line(capsys)
    assert statuses(sweep) == {"v1.0": "archived", "v1.1": "active"}


# ---- a corrupt registry ------------------------------------------------------------------------


def two_active(doc):
    for v in doc["versions"]:
        v["status"] = "active"
    return doc


def drop_key(doc):
    del doc["versions"][0]["model"]["sha256"]
    return doc


def drop_test_mse(doc):
    del doc["versions"][1]["metrics"]["model"]["test_mse"]
    return doc


CORRUPTIONS = {
    "truncated": (lambda text, doc: text[: len(text) // 2], "not valid JSON"),
    "a list": (lambda text, doc: "[]", '"schema": "npmlp.registry/1"'),
    "versions not a list": (lambda text, doc: json.dumps({**doc, "versions": {}}), '"versions" must be a list'),
    "missing key": (lambda text, doc: json.dumps(drop_key(doc)), 'versions[0]: missing key "model sha256"'),
    "no test MSE": (lambda text, doc: json.dumps(drop_test_mse(doc)), 'missing key "metrics model test_mse"'),
    "two active": (lambda text, doc: json.dumps(two_active(doc)), "2 active versions (v1.0, v1.1)"),
    "bad status": (lambda text, doc: text.replace('"staging"', '"live"', 1), "unknown status 'live'"),
    "event gap": (lambda text, doc: text.replace('"seq": 2', '"seq": 3'), "events[1]: sequence number 3"),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
@pytest.mark.parametrize("command", [("list",), ("promote", "v1.1"), ("rollback",)])
def test_a_corrupt_registry_is_refused_with_the_file_named(sweep, capsys, corruption, command):
    register(sweep, "v1.0", "--variant", BASELINE)
    register(sweep, "v1.1")
    path = registry_at(sweep)
    corrupt, message = CORRUPTIONS[corruption]
    path.write_text(corrupt(path.read_text(), read(sweep)))
    capsys.readouterr()
    assert registry_cmd(sweep, *command) == 2
    err = error_line(capsys)
    assert err.startswith(f"npmlp: error: {path}: ") and message in err


def test_register_refuses_to_add_to_a_corrupt_registry(sweep, capsys):
    registry_at(sweep).parent.mkdir()
    registry_at(sweep).write_text("{")
    assert register(sweep, "v1.1") == 2
    assert "registry is not valid JSON" in error_line(capsys)
    assert registry_at(sweep).read_text() == "{"


# ---- compare -----------------------------------------------------------------------------------


def compare(models, a, b, *extra):
    return run("compare", models[a][0]["path"], models[b][0]["path"], "--data", models["holdout"], *extra)


def test_compare_names_the_better_model(models, capsys):
    assert compare(models, "good", "poor", "--json") == 0
    r = json.loads(capsys.readouterr().out)
    holdout = load_dataset(models["holdout"])
    for side, name in (("a", "good"), ("b", "poor")):
        exact = np.mean((models[name][1].predict(holdout.X) - holdout.y) ** 2)
        assert r[side]["mse"] == pytest.approx(exact, rel=1e-4)  # float32 graph vs float64 predict
    assert r["diff"] == pytest.approx(r["b"]["mse"] - r["a"]["mse"], rel=1e-9)
    assert 0 < r["ci95"][0] < r["diff"] < r["ci95"][1]
    assert r["verdict"] == "A better" and r["data"]["rows"] == 1500
    assert compare(models, "poor", "good") == 0
    out = capsys.readouterr().out
    assert "verdict: B better" in out and f"MSE {r['a']['mse']:.6f}" in out.splitlines()[1]


def test_compare_a_model_with_itself_finds_no_difference(models, capsys):
    assert compare(models, "good", "good", "--json", "--resamples", "500") == 0
    r = json.loads(capsys.readouterr().out)
    assert r["diff"] == 0.0 and r["ci95"] == [0.0, 0.0] and r["a"]["mse"] == r["b"]["mse"]
    assert r["verdict"] == "no detectable difference"


def test_compare_scores_fewer_rows_than_a_split_needs(models, tmp_path, capsys):
    few = write_csv(tmp_path / "few.csv", 5, seed=3)
    assert run("compare", models["good"][0]["path"], models["poor"][0]["path"], "--data", few, "--json") == 0
    assert json.loads(capsys.readouterr().out)["data"]["rows"] == 5


def test_compare_is_repeatable_and_seeded(models, capsys):
    outputs = []
    for seed in ("0", "0", "1"):
        compare(models, "good", "poor", "--json", "--seed", seed)
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0] == outputs[1]
    assert outputs[0]["ci95"] != outputs[2]["ci95"] and outputs[0]["diff"] == outputs[2]["diff"]


def test_compare_warns_when_the_rows_include_training_rows(models, capsys):
    assert run("compare", models["good"][0]["path"], models["poor"][0]["path"], "--data", models["train_csv"]) == 0
    assert "a model was trained on this file" in capsys.readouterr().err
    compare(models, "good", "poor")
    assert capsys.readouterr().err == ""


def test_compare_refuses_models_with_different_features(models, capsys):
    assert compare(models, "good", "other") == 2
    err = error_line(capsys)
    assert "other.onnx: its feature list differs" in err and "position 1: 'f0' vs 'g0'" in err


def test_paired_bootstrap_ci_matches_the_normal_theory_width():
    # The mean of n iid N(0.3, 1) draws has standard error 1/sqrt(n); the percentile interval
    # should be about +-1.96 of it around the sample mean.
    n = 1500
    d = np.random.default_rng(np.random.SeedSequence(7)).normal(0.3, 1.0, n)
    lo, hi = paired_bootstrap_ci(d, seed=0, resamples=2000)
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(n), rel=0.1)
    assert (lo + hi) / 2 == pytest.approx(d.mean(), abs=0.01)
    assert paired_bootstrap_ci(np.full(50, 0.25), seed=3, resamples=100) == (0.25, 0.25)


@pytest.mark.parametrize("lo, hi, expected", [
    (0.01, 0.02, "A better"), (-0.02, -0.01, "B better"),
    (-0.01, 0.02, "no detectable difference"), (0.0, 0.01, "no detectable difference"),
    (-0.01, 0.0, "no detectable difference"), (0.0, 0.0, "no detectable difference"),
])
def test_verdict_needs_a_ci_that_excludes_zero(lo, hi, expected):
    assert verdict(lo, hi) == expected


def test_register_warns_when_the_gain_is_within_noise(sweep, capsys):
    assert register(sweep, "v1.0") == 0
    assert capsys.readouterr().err == ""
    results = json.loads(sweep.read_text())
    for v in results["variants"]:
        v["improvement"] = {"test_mse_diff": 1e-4, "percent": 1.5, "ci95": [-1e-4, 3e-4], "within_noise": True}
    sweep.write_text(json.dumps(results))
    assert register(sweep, "v1.1") == 0
    assert "within noise" in capsys.readouterr().err
    assert read(sweep)["versions"][1]["status"] == "staging"


def test_compare_on_the_held_out_test_rows_of_the_training_file(models, capsys):
    good, poor = models["good"], models["poor"]
    assert run("compare", good[0]["path"], poor[0]["path"], "--data", models["train_csv"], "--test-rows",
               "--json") == 0
    out = capsys.readouterr()
    r = json.loads(out.out)
    assert "warning" not in out.err and r["data"]["subset"] == "test split"
    assert r["data"]["rows"] == len(good[1].split.test)
    # the same rows and numbers training measured on its test split
    assert r["a"]["mse"] == pytest.approx(good[1].metrics["test_mse"], abs=1e-6)
    assert r["b"]["mse"] == pytest.approx(poor[1].metrics["test_mse"], abs=1e-6)


def test_compare_test_rows_needs_the_models_training_file(models, capsys):
    good = models["good"][0]["path"]
    assert run("compare", good, good, "--data", models["holdout"], "--test-rows") == 2
    assert "--test-rows needs both models trained on this file" in error_line(capsys)


def test_compare_refuses_a_negative_bootstrap_seed(models, capsys):
    good = models["good"][0]["path"]
    with pytest.raises(SystemExit) as e:
        run("compare", good, good, "--data", models["holdout"], "--seed", "-1")
    assert e.value.code == 2 and "expected an int >= 0" in capsys.readouterr().err
