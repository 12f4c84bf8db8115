"""Training speed: ms per epoch and achieved GFLOP/s against a one-thread float32 matmul peak.

Trains 39 -> 128 -> 64 -> 1 (dropout 0.2) on 7,000 x 39 rows at batch 32 and 128, one thread.
Targets: at batch 128 at least 50% of the matmul peak; at batch 32 an epoch no more than 2x the
batch-128 epoch. Run through `make bench`, which pins one BLAS thread.
"""

import os
import statistics
import sys
import time

import numpy as np

from npmlp.config import Config
from npmlp.model import MLP
from npmlp.train import Adam, stream

N, D, HIDDEN, EPOCHS = 7000, 39, (128, 64), 7


def matmul_peak(n=1024, repeats=9) -> float:
    """GFLOP/s of an n x n x n float32 matmul: the machine's one-thread ceiling for this work."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def flops_per_epoch(sizes, n) -> float:
    """Matmul FLOPs of one epoch: forward 2*n*fan_in*fan_out per layer, backward twice that
    (weight gradient and input gradient), minus the first layer's input gradient, not needed."""
    per_row = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return n * (3 * per_row - 2 * sizes[0] * sizes[1])


def epoch_times(batch_size: int) -> list[float]:
    """Seconds per training epoch (optimizer steps only, no evaluation), one per epoch."""
    cfg = Config(hidden=HIDDEN, batch_size=batch_size)
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((N, D), dtype=np.float32), rng.random(N, dtype=np.float32)
    model = MLP((D, *HIDDEN, 1)).init(stream(0, "init"))
    opt, drop = Adam(model.theta, model.grad), stream(0, "dropout")
    times = []
    for _ in range(EPOCHS):
        t = time.perf_counter()
        for i in range(0, N, batch_size):
            model.loss_and_grad(X[i : i + batch_size], y[i : i + batch_size], cfg.dropout, drop)
            opt.step()
        times.append(time.perf_counter() - t)
    return times


def main() -> int:
    threads = os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS")
    peak = matmul_peak()
    flops = flops_per_epoch((D, *HIDDEN, 1), N)
    print(f"threads (OPENBLAS, OMP): {threads}; numpy {np.__version__}")
    print(f"float32 matmul peak (1024^3, one thread): {peak:.1f} GFLOP/s")
    median = {}
    for bs in (128, 32):
        median[bs] = statistics.median(epoch_times(bs)[1:])  # first epoch warms caches
        rate = flops / median[bs] / 1e9
        print(f"batch {bs:3d}: {median[bs] * 1e3:7.2f} ms/epoch (median of {EPOCHS - 1}), "
              f"{rate:5.1f} GFLOP/s = {100 * rate / peak:4.1f}% of peak")
    share = flops / median[128] / 1e9 / peak
    ratio = median[32] / median[128]
    print(f"target batch 128 >= 50% of peak: {'PASS' if share >= 0.5 else 'FAIL'} ({100 * share:.1f}%)")
    print(f"target batch 32 epoch <= 2x batch 128 epoch: {'PASS' if ratio <= 2 else 'FAIL'} ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
