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

from npmlp.model import MLP
from npmlp.train import Adam, stream

N, D, HIDDEN, DROPOUT, ROUNDS = 7000, 39, (128, 64), 0.2, 15


def matmul_peak(n=1024, repeats=3) -> float:
    """GFLOP/s of an n x n x n float32 matmul, best of a few: the machine's one-thread ceiling."""
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / min(times) / 1e9


def flops_per_epoch(sizes, n) -> float:
    """Matmul FLOPs of one epoch: forward 2*n*fan_in*fan_out per layer, backward twice that
    (weight gradient and input gradient), minus the first layer's input gradient, not needed."""
    per_row = sum(2 * a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return n * (3 * per_row - 2 * sizes[0] * sizes[1])


class Trainer:
    """The training loop's inner work (steps only, no evaluation) on fixed random data."""

    def __init__(self, batch_size: int):
        rng = np.random.default_rng(1)
        self.X, self.y = rng.standard_normal((N, D), dtype=np.float32), rng.random(N, dtype=np.float32)
        self.model = MLP((D, *HIDDEN, 1)).init(stream(0, "init"))
        self.opt, self.drop, self.B = Adam(self.model.theta, self.model.grad), stream(0, "dropout"), batch_size

    def epoch(self) -> float:
        t = time.perf_counter()
        for i in range(0, N, self.B):
            self.model.loss_and_grad(self.X[i : i + self.B], self.y[i : i + self.B], DROPOUT, self.drop)
            self.opt.step()
        return time.perf_counter() - t


def main() -> int:
    threads = os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS")
    flops = flops_per_epoch((D, *HIDDEN, 1), N)
    trainers = {bs: Trainer(bs) for bs in (128, 32)}
    for t in trainers.values():
        t.epoch()  # warm caches and allocator
    # Rounds interleave the peak and both batch sizes, so a noisy neighbour on this shared
    # machine slows all three alike instead of one; the figures are medians over the rounds.
    rounds = [(matmul_peak(), trainers[128].epoch(), trainers[32].epoch()) for _ in range(ROUNDS)]
    peak, e128, e32 = (statistics.median(r[i] for r in rounds) for i in range(3))
    ratio = statistics.median(r[2] / r[1] for r in rounds)
    share = statistics.median(flops / r[1] / 1e9 / r[0] for r in rounds)
    print(f"threads (OPENBLAS, OMP): {threads}; numpy {np.__version__}; {ROUNDS} interleaved rounds, medians")
    print(f"float32 matmul peak (1024^3, one thread): {peak:.1f} GFLOP/s")
    for bs, e in ((128, e128), (32, e32)):
        print(f"batch {bs:3d}: {e * 1e3:7.2f} ms/epoch, {flops / e / 1e9:5.1f} GFLOP/s")
    print(f"target batch 128 >= 50% of peak: {'PASS' if share >= 0.5 else 'FAIL'} ({100 * share:.1f}%)")
    print(f"target batch 32 epoch <= 2x batch 128 epoch: {'PASS' if ratio <= 2 else 'FAIL'} ({ratio:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
