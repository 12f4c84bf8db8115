"""ONNX export: a trained Fit as one self-contained graph on RAW features, and the `predict` and
`inspect` commands that read such files back.

    input (batch, d) -> Sub mean -> Div scale -> [Gemm -> Relu] * len(hidden) -> Gemm -> [Sigmoid]
    -> output (batch, 1)

The graph mirrors MLP.predict layer by layer, with the training split's standardization inside,
so an app feeds the features exactly as it has them. Nothing is written until the checker passes
and onnxruntime and the ONNX reference evaluator agree with npmlp's own float64 predictions.
This module does not train, and reads no data file except the CSV that `predict` scores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from . import __version__
from .data import read_features
from .files import InputError, atomic_write, sha256_file, write_json

# Pinned, not onnx's defaults (IR 10+, opset 20+ today): onnxruntime 1.15 in the app loads only
# IR <= 9 and opset <= 19, and some onnxruntime-web/node releases cap the IR version too.
# Every operator used here (Sub, Div, Gemm, Relu, Sigmoid, Cast) exists unchanged in opset 13.
IR_VERSION = 7
OPSET = 13

PARITY_TOL = 1e-5  # max abs error of the float32 graph vs npmlp's float64 predict, raw inputs
PARITY_ROWS = 4096  # random rows within the training range, one large batch
PARITY_SEED = 0  # fixed: the parity rows, hence the recorded figures, repeat exactly

STRING_KEYS = ("npmlp_version", "target", "data_file", "data_sha256", "weights")  # stored bare; others JSON


class ParityError(RuntimeError):
    """The exported graph disagrees with npmlp's predictions; nothing was written."""


# ---- building the graph ----------------------------------------------------------------------


def model_metadata(fit, data, extra: dict | None = None) -> dict:
    """What a model file says about itself: plain JSON values, no paths, no timestamps."""
    cfg = fit.config
    meta = {
        "npmlp_version": __version__,
        "features": list(data.features),
        "target": data.target,
        "config": cfg.to_dict(),
        "data_file": Path(data.path).name,
        "data_sha256": data.sha256,
        "split_seed": cfg.split_seed,
        "seed": cfg.seed,
        **fit.metrics,  # train_mse, val_mse, test_mse, ...
        "best_epoch": fit.best_epoch,
        "epochs_run": fit.epochs_run,
        "n_params": fit.model.n_params,
    }
    if extra:
        meta["extra"] = extra
    return meta


def build_model(fit, metadata: dict, fp16: bool = False) -> onnx.ModelProto:
    """The forward pass of fit.model, node for node, behind the scaler's Sub and Div."""
    mlp, last = fit.model, len(fit.model.W) - 1
    inits = [_f32("mean", fit.scaler.mean), _f32("scale", fit.scaler.scale)]
    nodes = [
        helper.make_node("Sub", ["input", "mean"], ["centered"], name="sub_mean"),
        helper.make_node("Div", ["centered", "scale"], ["standardized"], name="div_scale"),
    ]
    h = "standardized"
    for l, (W, b) in enumerate(zip(mlp.W, mlp.b)):
        z = "output" if l == last and not mlp.sigmoid else f"z{l}"
        params = [_param(f"W{l}", W, fp16, inits, nodes), _param(f"b{l}", b, fp16, inits, nodes)]
        nodes.append(helper.make_node("Gemm", [h, *params], [z], name=f"gemm{l}"))  # (batch, fan_out)
        h = z
        if l < last:
            nodes.append(helper.make_node("Relu", [z], [f"h{l}"], name=f"relu{l}"))
            h = f"h{l}"
    if mlp.sigmoid:
        nodes.append(helper.make_node("Sigmoid", [h], ["output"], name="sigmoid"))
    graph = helper.make_graph(
        nodes,
        "npmlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", mlp.sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])],
        inits,
    )
    model = helper.make_model(graph, producer_name="npmlp", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {k: _encode(k, v) for k, v in metadata.items()})
    return model


def _f32(name: str, a) -> TensorProto:
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _param(name: str, a, fp16: bool, inits: list, nodes: list) -> str:
    """A weight or bias initializer; in fp16 stored as float16 and cast back right after."""
    if not fp16:
        inits.append(_f32(name, a))
        return name
    inits.append(numpy_helper.from_array(np.asarray(a, dtype=np.float16), name))
    nodes.append(helper.make_node("Cast", [name], [f"{name}_f32"], name=f"cast_{name}", to=TensorProto.FLOAT))
    return f"{name}_f32"


def _encode(key: str, value) -> str:
    if key in STRING_KEYS:
        return value
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))


def checked_bytes(model: onnx.ModelProto) -> bytes:
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


# ---- parity ------------------------------------------------------------------------------------


def parity_batches(fit, data) -> dict[str, np.ndarray]:
    """Raw-feature batches the export is checked on: the test split, the edges, one row alone
    and a large batch drawn uniformly within the training split's per-feature range."""
    X_test, X_train = data.X[fit.split.test], data.X[fit.split.train]
    d = X_train.shape[1]
    rng = np.random.default_rng(np.random.SeedSequence(PARITY_SEED))
    return {
        "test": X_test,
        "zeros_ones": np.stack([np.zeros(d), np.ones(d)]),
        "single": X_test[:1],
        "large": rng.uniform(X_train.min(axis=0), X_train.max(axis=0), (PARITY_ROWS, d)),
    }


def _session(blob: bytes, optimize: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1  # small matrices; one thread also keeps the figures repeatable
    so.log_severity_level = 3
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"])


def _runtimes(blob: bytes) -> dict:
    """The runtimes every export is checked in, by the name its figure is recorded under."""
    return {
        "onnxruntime": _session(blob, optimize=False),
        "onnxruntime_optimized": _session(blob),
        "reference": ReferenceEvaluator(onnx.load_from_string(blob)),
    }


def _scores(runtime, X) -> np.ndarray:
    """(n,) float64 scores; an ORT session and the reference evaluator share this run() call."""
    return runtime.run(["output"], {"input": np.asarray(X, dtype=np.float32)})[0][:, 0].astype(np.float64)


def _max_err(runtime, batches: dict, expected: dict) -> float:
    # np.max, not max(): a NaN anywhere must come out as NaN, which never passes a <= check
    return float(np.max([np.abs(_scores(runtime, X) - expected[k]).max() for k, X in batches.items()]))


def check_parity(blob: bytes, fit, batches: dict) -> dict:
    """Max abs error per runtime against fit.predict; ParityError above PARITY_TOL."""
    expected = {k: fit.predict(X) for k, X in batches.items()}
    with np.errstate(over="ignore"):  # the reference Sigmoid's exp(-x) reaches inf: a right 0, not a fault
        errors = {name: _max_err(rt, batches, expected) for name, rt in _runtimes(blob).items()}
    if not all(e <= PARITY_TOL for e in errors.values()):
        figures = ", ".join(f"{k} {v:.3g}" for k, v in errors.items())
        raise ParityError(f"ONNX export disagrees with npmlp: max abs error {figures} (tolerance {PARITY_TOL:g})")
    return errors


def fp16_error(blob16: bytes, blob: bytes, batches: dict) -> float:
    """Max abs difference of the float16-weight graph from the float32 one; finite or ParityError."""
    fp32 = _session(blob)
    err = _max_err(_session(blob16), batches, {k: _scores(fp32, X) for k, X in batches.items()})
    if not np.isfinite(err):
        raise ParityError(f"float16 export gives non-finite scores (max abs error vs float32 {err})")
    return err


# ---- writing -----------------------------------------------------------------------------------


def export_fit(fit, data, path, fp16: bool = False, extra: dict | None = None) -> dict:
    """Build, check, prove parity, then write path (+ .fp16.onnx) and its .json sidecar."""
    path = Path(path)
    meta = model_metadata(fit, data, extra)
    blob = checked_bytes(build_model(fit, meta))
    batches = parity_batches(fit, data)
    parity = check_parity(blob, fit, batches)
    if fp16:
        model16 = build_model(fit, meta, fp16=True)
        err16 = fp16_error(checked_bytes(model16), blob, batches)
        # The metrics above are the float32 model's; the fp16 file says so, with its own error.
        meta16 = {**meta, "weights": "float16", "max_abs_err_vs_float32": err16}
        helper.set_model_props(model16, {k: _encode(k, v) for k, v in meta16.items()})
        blob16 = checked_bytes(model16)
    atomic_write(path, blob)
    graph = load_model(path).graph  # what a runtime will see, not what we meant
    sizes = layer_sizes(graph)
    result = {
        "path": str(path),
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "n_params": gemm_params(graph),  # weights and biases of the written Gemms
        "hidden": [fan_out for _, fan_out in sizes[:-1]],
        "ir_version": IR_VERSION,
        "opset": OPSET,
        "parity": parity,
    }
    if fp16:
        path16 = atomic_write(path.with_suffix(".fp16.onnx"), blob16)
        result["fp16"] = {"path": str(path16), "bytes": path16.stat().st_size, "max_abs_err_vs_float32": err16}
    else:  # an fp16 file from an earlier export would hold other weights
        path.with_suffix(".fp16.onnx").unlink(missing_ok=True)
    write_json(path.with_suffix(".json"), sidecar(meta, result))
    return result


def sidecar(meta: dict, result: dict) -> dict:
    """The metadata plus the export's figures, with file names only (no directories)."""
    side = {**meta, **result, "path": Path(result["path"]).name, "parity_tol": PARITY_TOL}
    if "fp16" in result:
        side["fp16"] = {**result["fp16"], "path": Path(result["fp16"]["path"]).name}
    return side


# ---- reading back ------------------------------------------------------------------------------


def load_model(path) -> onnx.ModelProto:
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read model file: {e.strerror}")
    try:
        model = onnx.load_from_string(blob)
    except Exception:  # protobuf's DecodeError, which onnx does not re-export
        model = None
    if model is None or not model.ir_version or not model.graph.node:
        raise InputError(f"{path}: not an ONNX model")
    return model


def read_metadata(path) -> dict:
    """The metadata an npmlp export stored, decoded back to plain values."""
    return _metadata(load_model(path), path)


def _metadata(model: onnx.ModelProto, path) -> dict:
    props = {p.key: p.value for p in model.metadata_props}
    if "npmlp_version" not in props:
        raise InputError(f"{path}: ONNX model without npmlp metadata (not written by npmlp)")
    try:
        return {k: v if k in STRING_KEYS else json.loads(v) for k, v in props.items()}
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: unreadable npmlp metadata: {e}")


def gemm_layers(graph) -> list[tuple]:
    """(W, b) initializers of each Gemm in graph order, looked up through any Cast; None where
    a Gemm input is not an initializer (a graph npmlp did not write)."""
    inits = {t.name: t for t in graph.initializer}
    cast_from = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Cast"}
    find = lambda name: inits.get(cast_from.get(name, name))
    return [(find(n.input[1]), find(n.input[2]) if len(n.input) > 2 else None)
            for n in graph.node if n.op_type == "Gemm"]


def layer_sizes(graph) -> list[tuple[int, int]]:
    """(fan_in, fan_out) of each Gemm weight, as stored in the graph."""
    return [tuple(W.dims) for W, _ in gemm_layers(graph)]


def gemm_params(graph) -> int:
    """Weights plus biases, counted from the Gemm initializers (not the scaler constants)."""
    return sum(int(np.prod(t.dims)) for W, b in gemm_layers(graph) for t in (W, b))


def predict_onnx(path, X) -> np.ndarray:
    """Scores from the ONNX file via onnxruntime: float32 in, float64 (n,) out."""
    model = load_model(path)
    X = np.asarray(X, dtype=np.float32)
    d = model.graph.input[0].type.tensor_type.shape.dim[1].dim_value
    if X.ndim != 2 or X.shape[1] != d:
        raise InputError(f"{path}: model takes {d} features per row, got array of shape {X.shape}")
    return _scores(_session(model.SerializeToString()), X)


# ---- commands ----------------------------------------------------------------------------------


def add_commands(sub):
    p = sub.add_parser("predict", help="score raw features in a CSV with an exported model")
    p.add_argument("model", type=Path, help="ONNX file written by npmlp")
    p.add_argument("--data", required=True, type=Path, help="CSV whose header names the model's features")
    p.add_argument("--out", type=Path, help="scores CSV to write (default: stdout)")
    p.set_defaults(func=cmd_predict)
    p = sub.add_parser("inspect", help="show an ONNX model's architecture, size and metadata")
    p.add_argument("model", type=Path, help="ONNX file")
    p.set_defaults(func=cmd_inspect)


def cmd_predict(args) -> int:
    features = read_metadata(args.model)["features"]
    scores = predict_onnx(args.model, read_features(args.data, features))
    text = "score\n" + "".join(f"{s!r}\n" for s in scores.tolist())
    if args.out:
        atomic_write(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_inspect(args) -> int:
    model = load_model(args.model)
    print(describe_graph(model, args.model))
    print(describe_metadata(_metadata(model, args.model)))  # InputError (exit 2) if not npmlp's
    return 0


def describe_graph(model: onnx.ModelProto, path) -> str:
    ops = [n.op_type for n in model.graph.node]
    opsets = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    lines = [f"file: {path} ({Path(path).stat().st_size:,} bytes), IR {model.ir_version}, opset {opsets}, "
             f"producer {model.producer_name or '?'} {model.producer_version}".rstrip()]
    layers = gemm_layers(model.graph)
    if not layers or any(W is None or b is None for W, b in layers):
        return "\n".join([*lines, f"architecture: not an npmlp MLP graph (ops: {' '.join(ops)})"])
    sizes = [layers[0][0].dims[0], *(W.dims[1] for W, _ in layers)]
    parts = [" -> ".join(map(str, sizes)), "relu" if "Relu" in ops else "no activation",
             "sigmoid head" if "Sigmoid" in ops else "linear head",
             "normalization inside" if ops[:2] == ["Sub", "Div"] else "no normalization inside"]
    dtype = helper.tensor_dtype_to_np_dtype(layers[0][0].data_type).name
    lines += [f"architecture: {', '.join(parts)}",
              f"parameters: {gemm_params(model.graph):,} (weights + biases, stored as {dtype})"]
    return "\n".join(lines)


def describe_metadata(meta: dict) -> str:
    lines = [
        f"features ({len(meta['features'])}): {', '.join(meta['features'])}",
        f"target: {meta['target']}",
        f"metrics: train MSE {meta['train_mse']:.6g}, val MSE {meta['val_mse']:.6g}, "
        f"test MSE {meta['test_mse']:.6g}, best epoch {meta['best_epoch']} of {meta['epochs_run']}",
        f"data: {meta['data_file']} (sha256 {meta['data_sha256']}), split seed {meta['split_seed']}, "
        f"model seed {meta['seed']}",
        f"config: {json.dumps(meta['config'], sort_keys=True)}",
        f"npmlp: {meta['npmlp_version']}",
    ]
    if "weights" in meta:
        lines.append(f"weights: {meta['weights']}; metrics are the float32 model's, this file's scores differ "
                     f"from them by at most {meta['max_abs_err_vs_float32']:.3g}")
    if "extra" in meta:
        lines.append(f"extra: {json.dumps(meta['extra'], sort_keys=True)}")
    return "\n".join(lines)
