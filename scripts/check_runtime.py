"""Load models in another onnxruntime (the app's 1.15 by default, through `make compat`) and
compare its scores with this environment's onnxruntime, which export already checked against
npmlp's own float64 predictions.

    python scripts/check_runtime.py --python .venv-ort115/bin/python MODEL.onnx [...]

Prints per model: the other runtime's version, the file's IR version and opset, and the max abs
difference on 1,000 seeded rows in [0, 1] (the app's feature range) and on a single row.
Exits 1 when a model fails to load there or differs by more than the export's tolerance.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

from npmlp.export import PARITY_TOL, predict_onnx

# Runs under the other interpreter: only numpy and onnxruntime there.
SCORE = """
import sys, numpy as np, onnxruntime as ort
s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
X = np.load(sys.argv[2])
np.save(sys.argv[3], s.run(None, {"input": X})[0][:, 0].astype(np.float64))
print(ort.__version__)
"""


def check(python: str, model: Path, X: np.ndarray, tmp: Path) -> bool:
    np.save(tmp / "X.npy", X)
    run = subprocess.run([python, "-c", SCORE, str(model), str(tmp / "X.npy"), str(tmp / "y.npy")],
                         capture_output=True, text=True)
    proto = onnx.load(model, load_external_data=False)
    head = f"{model.name}: IR {proto.ir_version}, opset {proto.opset_import[0].version}"
    if run.returncode:
        print(f"{head}: FAILED to run: {run.stderr.strip().splitlines()[-1]}")
        return False
    err = float(np.max(np.abs(np.load(tmp / "y.npy") - predict_onnx(model, X))))
    ok = err <= PARITY_TOL
    print(f"{head}, onnxruntime {run.stdout.strip()}: max abs diff {err:.2e} on {len(X)} row{'s' if len(X) > 1 else ''} "
          f"{'ok' if ok else 'FAIL'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="interpreter with the other onnxruntime")
    parser.add_argument("models", nargs="+", type=Path)
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            d = onnx.load(model).graph.input[0].type.tensor_type.shape.dim[1].dim_value  # n_features
            X = np.random.default_rng(0).random((1000, d), dtype=np.float32)
            ok &= check(args.python, model, X, Path(tmp)) and check(args.python, model, X[:1], Path(tmp))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
