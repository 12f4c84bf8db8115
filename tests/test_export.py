"""ONNX export against its oracle, npmlp's own float64 predict: graph shape, parity, pinned
versions, self-contained and byte-identical files, metadata, and the predict/inspect commands."""

import csv
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from npmlp import export
from npmlp.cli import main
from npmlp.config import Config
from npmlp.data import load_dataset
from npmlp.files import sha256_file
from npmlp.train import fit

TOL = 1e-5  # the promise to the app: max abs error of any runtime vs npmlp, on raw features
FEATURES = ("spot_energy", "user_calm", "hour", "distance_m", "temp_c", "crowd")
TINY = Config(hidden=(7, 3), epochs=3, batch_size=32)


def write_csv(path, n=300, seed=0, target=True):
    """Raw features on very different scales (a standardization bug cannot hide) and a
    target in (0, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.normal([0.5, 0.0, 12.0, 800.0, 18.0, 40.0], [0.2, 1.0, 5.0, 300.0, 6.0, 15.0], (n, len(FEATURES)))
    y = 1 / (1 + np.exp(-(X[:, 0] * 3 - X[:, 1] + (X[:, 3] - 800) / 300)))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*FEATURES, "calling_score"] if target else FEATURES)
        w.writerows(map(repr, row) for row in (np.column_stack([X, y]) if target else X).tolist())
    return X, y


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "spots.csv"
    write_csv(path)
    return load_dataset(path)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    """One tiny model exported once, shared by the read-only tests."""
    result = fit(data.X, data.y, TINY)
    path = tmp_path_factory.mktemp("model") / "model.onnx"
    return result, path, export.export_fit(result, data, path, extra={"variant": "tiny"})


def ort_scores(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": X.astype(np.float32)})[0]  # (n, 1)


@pytest.mark.parametrize("hidden", [(5,), (7, 3), (8, 6, 4)])
@pytest.mark.parametrize("sigmoid", [True, False])
def test_graph_mirrors_the_config(data, tmp_path, hidden, sigmoid):
    result = fit(data.X, data.y, Config(hidden=hidden, sigmoid=sigmoid, epochs=2))
    record = export.export_fit(result, data, tmp_path / "m.onnx")
    graph = onnx.load(tmp_path / "m.onnx").graph
    ops = ["Sub", "Div"] + ["Gemm", "Relu"] * len(hidden) + ["Gemm"] + (["Sigmoid"] if sigmoid else [])
    assert [n.op_type for n in graph.node] == ops
    assert export.layer_sizes(graph) == list(zip((6, *hidden), (*hidden, 1)))
    assert record["hidden"] == list(hidden)
    assert [n.name for n in graph.node][2:4] == ["gemm0", "relu0"]
    assert [t.name for t in graph.initializer][:4] == ["mean", "scale", "W0", "b0"]
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in graph.initializer)
    (inp,), (out,) = graph.input, graph.output
    assert (inp.name, out.name) == ("input", "output")
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["batch", 6]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["batch", 1]
    assert max(record["parity"].values()) <= TOL


@pytest.mark.parametrize("rows", [1, 4096])
def test_onnxruntime_matches_npmlp_on_raw_features(trained, data, rows):
    result, path, _ = trained
    rng = np.random.default_rng(rows)
    X = rng.uniform(data.X.min(axis=0), data.X.max(axis=0), (rows, data.X.shape[1]))
    got = ort_scores(path, X)
    assert got.shape == (rows, 1) and got.dtype == np.float32
    assert np.abs(got[:, 0] - result.predict(X)).max() <= TOL


def test_versions_are_pinned_in_the_saved_file(trained):
    _, path, record = trained
    model = onnx.load(path)
    assert (export.IR_VERSION, export.OPSET) == (7, 13)
    assert model.ir_version == 7 == record["ir_version"]
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]
    assert (model.producer_name, record["opset"]) == ("npmlp", 13)


def test_one_self_contained_file_about_four_bytes_per_parameter(trained):
    result, path, record = trained
    model = onnx.load(path)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.json", "model.onnx"]
    n = result.model.n_params
    assert record["bytes"] == path.stat().st_size
    assert 4 * n <= record["bytes"] <= 4 * n + 3072
    assert record["n_params"] == n == export.gemm_params(model.graph)
    assert record["sha256"] == sha256_file(path)


def test_same_training_gives_byte_identical_files(data, tmp_path):
    def train(out, seed):
        export.export_fit(fit(data.X, data.y, Config(hidden=(7, 3), epochs=3, seed=seed)), data, out / "model.onnx")
        return (out / "model.onnx").read_bytes(), (out / "model.json").read_bytes()

    first = train(tmp_path / "a", 0)
    assert train(tmp_path / "b", 0) == first
    other = train(tmp_path / "c", 1)
    assert other[0] != first[0] and other[1] != first[1]  # the comparison can fail


def test_metadata_round_trip(trained, data):
    result, path, record = trained
    meta = export.read_metadata(path)
    assert meta["features"] == list(FEATURES)
    assert meta["target"] == "calling_score"
    assert meta["config"] == TINY.to_dict()
    assert (meta["seed"], meta["split_seed"]) == (TINY.seed, TINY.split_seed)
    assert meta["data_sha256"] == data.sha256 and meta["data_file"] == "spots.csv"
    assert {k: meta[k] for k in result.metrics} == result.metrics
    assert (meta["best_epoch"], meta["n_params"]) == (result.best_epoch, result.model.n_params)
    assert meta["extra"] == {"variant": "tiny"}
    side = json.loads(path.with_suffix(".json").read_text())
    assert {k: side[k] for k in meta} == meta
    assert side["parity"] == record["parity"] and side["path"] == "model.onnx"
    assert str(path.parent) not in path.with_suffix(".json").read_text()  # no directories stored


def test_parity_failure_raises_and_writes_nothing(data, tmp_path):
    result = fit(data.X, data.y, TINY)
    exact = result.predict
    result.predict = lambda X: exact(X) + 2 * TOL  # an npmlp the graph no longer matches
    with pytest.raises(export.ParityError, match="tolerance"):
        export.export_fit(result, data, tmp_path / "out" / "model.onnx", fp16=True)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_fp16_file_stores_half_weights_and_records_its_error(data, tmp_path):
    result = fit(data.X, data.y, Config(hidden=(64, 32), epochs=3))  # weights outweigh the overhead
    record = export.export_fit(result, data, tmp_path / "model.onnx", fp16=True)
    half = record["fp16"]
    assert half["path"] == str(tmp_path / "model.fp16.onnx")
    model = onnx.load(half["path"])
    kinds = {t.name: t.data_type for t in model.graph.initializer}
    assert {kinds[f"{p}{l}"] for p in "Wb" for l in range(3)} == {onnx.TensorProto.FLOAT16}
    assert [n.op_type for n in model.graph.node].count("Cast") == 6
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half["bytes"] == (tmp_path / "model.fp16.onnx").stat().st_size <= 2 * result.model.n_params + 3072
    X = data.X[result.split.test]
    err = np.abs(ort_scores(half["path"], X) - ort_scores(tmp_path / "model.onnx", X)).max()
    assert 0 < err <= half["max_abs_err_vs_float32"] < 1e-2
    meta = export.read_metadata(half["path"])
    assert meta["features"] == list(FEATURES) and meta["weights"] == "float16"
    assert meta["max_abs_err_vs_float32"] == half["max_abs_err_vs_float32"]


def test_predict_command_scores_raw_features(trained, tmp_path, capsys):
    result, path, _ = trained
    X, _ = write_csv(tmp_path / "new.csv", n=40, seed=7, target=False)
    assert main(["predict", str(path), "--data", str(tmp_path / "new.csv"), "--out", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["score"] and len(rows) == 41
    assert np.abs(np.array([float(r[0]) for r in rows[1:]]) - result.predict(X)).max() <= TOL
    assert main(["predict", str(path), "--data", str(tmp_path / "new.csv")]) == 0
    assert capsys.readouterr().out.splitlines() == [r[0] for r in rows]


def test_predict_picks_features_by_name_and_ignores_other_columns(trained, tmp_path):
    result, path, _ = trained
    X, _ = write_csv(tmp_path / "new.csv", n=10, seed=3)
    with open(tmp_path / "new.csv") as f:
        rows = list(csv.reader(f))
    with open(tmp_path / "shuffled.csv", "w", newline="") as f:
        csv.writer(f).writerows([["id", *reversed(r)] for r in rows])  # target kept, order reversed
    X_got = export.read_features(tmp_path / "shuffled.csv", list(FEATURES))
    assert np.array_equal(X_got, X)
    assert np.abs(export.predict_onnx(path, X_got) - result.predict(X)).max() <= TOL


def write_text(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", ["predict", "inspect"])
def test_bad_model_files_exit_2(tmp_path, capsys, command):
    data = write_text(tmp_path / "d.csv", ",".join(FEATURES) + "\n" + ",".join(["1"] * 6) + "\n")
    extra = ["--data", data] if command == "predict" else []
    assert main([command, str(tmp_path / "missing.onnx"), *extra]) == 2
    assert "missing.onnx" in capsys.readouterr().err
    assert main([command, write_text(tmp_path / "notes.onnx", "not a model\n"), *extra]) == 2
    assert "notes.onnx: not an ONNX model" in capsys.readouterr().err


def test_foreign_onnx_is_inspected_but_exits_2(trained, tmp_path, capsys):
    _, path, _ = trained
    model = onnx.load(path)
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "bare.onnx")
    assert main(["inspect", str(tmp_path / "bare.onnx")]) == 2
    out, err = capsys.readouterr()
    assert "6 -> 7 -> 3 -> 1" in out and "without npmlp metadata" in err


@pytest.mark.parametrize(
    "header, cell, message",
    [
        (FEATURES[:5], "1", "lacks 1 of the model's 6 feature columns: crowd"),  # wrong count
        (("user_calm", "hour", "distance", "temp_c", "crowd", "calling_score"), "1", "spot_energy, distance_m"),
        (FEATURES, "oops", "row 2 (line 3), column 'crowd': not a number: 'oops'"),
        (FEATURES, "nan", "row 2 (line 3), column 'crowd': not a finite number"),
    ],
)
def test_predict_rejects_bad_data_with_exit_2(trained, tmp_path, capsys, header, cell, message):
    _, path, _ = trained
    lines = [",".join(header), ",".join(["1"] * len(header)), ",".join(["1"] * (len(header) - 1) + [cell])]
    data = write_text(tmp_path / "d.csv", "\n".join(lines) + "\n")
    assert main(["predict", str(path), "--data", data, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("npmlp: error: ") and "d.csv" in err and message in err
    assert not (tmp_path / "s.csv").exists()


def test_inspect_prints_architecture_size_and_metadata(trained, capsys):
    result, path, record = trained
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "6 -> 7 -> 3 -> 1, relu, sigmoid head, normalization inside" in out
    assert f"parameters: {result.model.n_params:,} (weights + biases" in out
    assert f"({record['bytes']:,} bytes), IR 7, opset ai.onnx 13, producer npmlp" in out
    assert ", ".join(FEATURES) in out and "target: calling_score" in out
    assert f"val MSE {result.metrics['val_mse']:.6g}" in out


def test_train_command_end_to_end(tmp_path):
    write_csv(tmp_path / "spots.csv")
    argv = ["train", "--data", str(tmp_path / "spots.csv"), "--out", str(tmp_path / "run"), "--hidden", "8,4",
            "--epochs", "3", "--fp16"]
    assert main(argv) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    onnx_record = metrics["onnx"]
    assert onnx_record["hidden"] == [8, 4] and max(onnx_record["parity"].values()) <= TOL
    assert onnx_record["bytes"] == (tmp_path / "run" / "model.onnx").stat().st_size
    assert (tmp_path / "run" / "model.fp16.onnx").exists()
    assert export.read_metadata(tmp_path / "run" / "model.onnx")["features"] == list(FEATURES)


def test_a_plain_export_removes_an_earlier_fp16_file(data, tmp_path):
    result = fit(data.X, data.y, Config(hidden=(8,), epochs=2))
    export.export_fit(result, data, tmp_path / "model.onnx", fp16=True)
    assert (tmp_path / "model.fp16.onnx").exists()
    export.export_fit(result, data, tmp_path / "model.onnx")
    assert not (tmp_path / "model.fp16.onnx").exists()  # it would hold the earlier weights
