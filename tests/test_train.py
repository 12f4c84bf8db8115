"""Training against known answers: early stopping, determinism, splits, scaling, config errors."""

import dataclasses
import json
import math

import numpy as np
import pytest

from npmlp.cli import main
from npmlp.config import Config, ConfigError
from npmlp.files import InputError
from npmlp.train import Scaler, TrainingDiverged, check_learned, fit, mse, split_rows

FAST = Config(hidden=(16, 8), epochs=15, patience=3, batch_size=16)


def learnable(n=400, d=6, seed=0, noise=0.02):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d)) * np.arange(1, d + 1)  # features on different scales
    mean = 1 / (1 + np.exp(-(np.sin(X[:, 0]) + X[:, 1] / 2 * X[:, 2] / 3)))
    return X, np.clip(mean + noise * rng.standard_normal(n), 0, 1)


def test_small_learnable_problem_beats_the_variance_of_y_by_far():
    X, y = learnable(n=1500)
    result = fit(X, y, Config(hidden=(32, 16), dropout=0.0, epochs=200, patience=20, batch_size=32))
    assert result.metrics["val_mse"] < 0.1 * np.var(y[result.split.val])


def test_early_stopping_restores_the_best_epoch():
    X, y = learnable()
    result = fit(X, y, dataclasses.replace(FAST, epochs=60, lr=0.02))
    best = result.val_mse[result.best_epoch - 1]
    assert best == min(result.val_mse)
    assert result.best_epoch < result.epochs_run  # stopped after a stall, weights rolled back
    assert result.epochs_run - result.best_epoch == FAST.patience
    assert result.metrics["val_mse"] == best  # the returned model is the best epoch's
    assert result.metrics["val_mse"] < result.val_mse[-1]


def test_min_delta_counts_small_gains_as_no_improvement():
    X, y = learnable()
    result = fit(X, y, dataclasses.replace(FAST, epochs=40, min_delta=1.0))
    assert result.best_epoch == 1 and result.epochs_run == 1 + FAST.patience


def test_exact_metrics_steps_and_partial_last_batch():
    X, y = learnable(n=103)  # 73 training rows: batches of 16 leave a partial batch of 9
    result = fit(X, y, dataclasses.replace(FAST, epochs=4, patience=10))
    assert len(result.split.train) == 73
    assert result.steps == 4 * math.ceil(73 / 16) == 20
    for name in ("train", "val", "test"):
        rows = getattr(result.split, name)
        assert result.metrics[f"{name}_mse"] == mse(result.predict(X[rows]), y[rows])


def test_two_runs_are_bit_identical_and_leave_the_global_rng_alone():
    X, y = learnable()
    np.random.seed(123)
    state = np.random.get_state()
    a, b = fit(X, y, FAST), fit(X, y, FAST)
    after = np.random.get_state()
    assert a.model.theta.tobytes() == b.model.theta.tobytes()
    assert a.val_mse == b.val_mse
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


@pytest.mark.parametrize("change", [{"seed": 5}, {"lr": 0.01}, {"hidden": (4,)}, {"batch_size": 64}, {"dropout": 0.0}])
def test_split_does_not_move_when_the_model_changes(change):
    X, y = learnable()
    a, b = fit(X, y, FAST), fit(X, y, dataclasses.replace(FAST, **change))
    for name in ("train", "val", "test"):
        assert np.array_equal(getattr(a.split, name), getattr(b.split, name))
    assert a.model.theta.tobytes() != b.model.theta.tobytes() or a.model.n_params != b.model.n_params


def test_split_is_70_15_15_disjoint_and_covers_every_row():
    s = split_rows(10_000, 42)
    assert (len(s.train), len(s.val), len(s.test)) == (7000, 1500, 1500)
    assert np.array_equal(np.sort(np.concatenate([s.train, s.val, s.test])), np.arange(10_000))
    assert not np.array_equal(split_rows(10_000, 43).val, s.val)


@pytest.mark.parametrize("val, test", [(0.001, 0.15), (0.15, 0.001), (0.5, 0.499)])
def test_a_split_leaving_a_part_empty_is_bad_input(val, test):
    with pytest.raises(InputError, match="leaves a part empty"):
        split_rows(100, 42, val, test)


def test_scaler_uses_training_rows_only_and_leaves_constants_unscaled():
    X, y = learnable()
    X[:, 3] = 7.0  # constant feature
    result = fit(X, y, FAST)
    train = X[result.split.train]
    assert np.allclose(result.scaler.mean, train.mean(axis=0))
    assert result.scaler.scale[3] == 1.0
    assert np.allclose(result.scaler.scale[:3], train[:, :3].std(axis=0))
    assert not np.allclose(result.scaler.mean, X.mean(axis=0))
    assert np.all(np.isfinite(result.predict(X)))
    assert np.allclose(Scaler.fit(np.full((5, 2), 1e6)).scale, 1.0)


def test_divergence_is_a_clear_failure_not_nan_weights():
    X, y = learnable()
    with pytest.raises(TrainingDiverged, match="non-finite"):
        fit(X, y * 1e25, dataclasses.replace(FAST, lr=10.0, sigmoid=False))  # squares overflow float32


def test_float64_training_is_available():
    X, y = learnable()
    result = fit(X, y, dataclasses.replace(FAST, dtype="float64", epochs=2))
    assert result.model.theta.dtype == np.float64


@pytest.mark.parametrize(
    "field,value",
    [("lr", 0.0), ("lr", -1.0), ("dropout", 1.0), ("dropout", 0.995), ("batch_size", 0), ("hidden", ()), ("hidden", (64, 0)),
     ("epochs", 2.5), ("patience", 0), ("dtype", "float16"), ("seed", -1), ("sigmoid", "yes"), ("lr", float("nan"))],
)
def test_bad_config_values_are_rejected_with_the_field_named(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        Config(**{field: value})


def test_unknown_config_field_is_named():
    with pytest.raises(ConfigError, match="'learning_rate'"):
        Config.from_dict({"learning_rate": 0.1})


def test_config_round_trips_through_json():
    c = Config(hidden=[64, 32], lr=1)
    assert c.hidden == (64, 32) and c.lr == 1.0 and isinstance(c.lr, float)
    assert Config.from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_train_cli_rejects_bad_flags_with_exit_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "x.csv"), "--out", str(tmp_path), "--lr", "-1"]) == 2
    assert "'lr'" in capsys.readouterr().err


def test_a_saturated_model_is_reported_as_not_learning():
    X, y = learnable()
    result = fit(X, y, dataclasses.replace(FAST, lr=10.0))  # sigmoid saturates: finite but useless
    assert result.metrics["val_mse"] >= result.metrics["mean_predictor_val_mse"]
    with pytest.raises(TrainingDiverged, match="did not learn"):
        check_learned(result)
    check_learned(fit(X, y, FAST))  # a model that learned passes


def test_train_cli_refuses_an_out_that_is_a_file_before_training(tmp_path, capsys):
    X, y = learnable(n=60, d=3)
    data = tmp_path / "d.csv"
    data.write_text("a,b,c,calling_score\n" + "".join(",".join(map(str, [*x, t])) + "\n" for x, t in zip(X, y)))
    (tmp_path / "afile").write_text("keep")
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "afile")]) == 2
    assert "must be a folder" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "keep"


def test_history_and_final_metrics_are_the_same_measurement():
    X, y = learnable()
    result = fit(X, y, FAST)
    assert result.train_mse[result.best_epoch - 1] == result.metrics["train_mse"]
    assert result.val_mse[result.best_epoch - 1] == result.metrics["val_mse"]
