"""ONNX export: file size against 4 bytes per parameter, export time, onnxruntime latency.

Exports a randomly initialized 39 -> 128 -> 64 -> 1 model (no training: size and speed do not
depend on the weights' values) and scores it in onnxruntime on one thread. Targets: file bytes
<= 4 x parameters + 3 KB; export (checker and parity included) under 0.5 s. Latency is reported,
not targeted. Run through `make bench`, which pins one BLAS thread.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from npmlp.config import Config
from npmlp.data import FEATURES, Dataset
from npmlp.export import export_fit
from npmlp.model import MLP
from npmlp.train import Fit, Scaler, mse, split_rows, stream

N, HIDDEN, OVERHEAD = 7000, (128, 64), 3072


def random_fit() -> tuple[Fit, Dataset]:
    """A Fit as training would hand it over, with init weights: app-like features in [0, 1]."""
    rng = np.random.default_rng(0)
    X, y = rng.random((N, len(FEATURES))), rng.random(N)
    config = Config(hidden=HIDDEN)
    split = split_rows(N, config.split_seed)
    scaler = Scaler.fit(X[split.train])
    model = MLP((len(FEATURES), *HIDDEN, 1)).init(stream(config.seed, "init"))
    metrics = {f"{k}_mse": mse(model.predict(scaler(X[rows])), y[rows]) for k, rows in vars(split).items()}
    fit = Fit(model, scaler, config, split, best_epoch=1, epochs_run=1, metrics=metrics)
    return fit, Dataset(X, y, FEATURES, "calling_score", "random.csv", "0" * 64)


def latency_ms(session, X, runs: int) -> float:
    feed = {"input": X.astype(np.float32)}
    for _ in range(10):  # warm-up
        session.run(["output"], feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(["output"], feed)
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def main() -> int:
    result, data = random_fit()
    n = result.model.n_params
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        seconds = []
        for _ in range(5):
            t = time.perf_counter()
            record = export_fit(result, data, path, fp16=True)
            seconds.append(time.perf_counter() - t)
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        X = np.random.default_rng(1).random((1000, len(FEATURES)))
        one, thousand = latency_ms(session, X[:1], 2000), latency_ms(session, X, 300)
    size, limit = record["bytes"], 4 * n + OVERHEAD
    export_s = statistics.median(seconds[1:])  # the first export pays for imports and warm-up
    print(f"onnxruntime {ort.__version__}; model 39 -> {' -> '.join(map(str, HIDDEN))} -> 1, {n:,} parameters")
    print(f"file: {size:,} bytes = 4 x {n:,} + {size - 4 * n:,} (fp16 file {record['fp16']['bytes']:,} bytes, "
          f"max abs err vs fp32 {record['fp16']['max_abs_err_vs_float32']:.2e})")
    print(f"parity (max abs err vs npmlp float64): " + ", ".join(f"{k} {v:.2e}" for k, v in record["parity"].items()))
    print(f"export incl. checker, parity and fp16: {export_s * 1e3:.0f} ms (median of {len(seconds) - 1}, "
          f"first {seconds[0] * 1e3:.0f} ms)")
    print(f"onnxruntime latency, one thread: 1 row {one * 1e3:.1f} us, 1,000 rows {thousand:.3f} ms "
          f"({thousand * 1e3 / 1000:.2f} us/row)")
    print(f"target bytes <= 4 x params + 3 KB ({limit:,}): {'PASS' if size <= limit else 'FAIL'} ({size:,})")
    print(f"target export < 0.5 s: {'PASS' if export_s < 0.5 else 'FAIL'} ({export_s:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
