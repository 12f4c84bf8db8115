"""Training: seeded streams, the 70/15/15 split, standardization, Adam and early stopping.

`fit(X, y, config)` is the whole pipeline for one model: split (split seed only), fit the scaler
on the training rows only, train with early stopping, restore the best weights, and measure
exact MSE over each whole split. It reads no files and writes none.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .config import Config
from .files import InputError
from .model import MLP

STREAMS = ("split", "init", "shuffle", "dropout")


class TrainingDiverged(RuntimeError):
    """The loss became non-finite; no weights are handed on."""


def stream(seed: int, name: str) -> np.random.Generator:
    """A named, independent Generator: the split does not move when the model seed does."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS.index(name),)))


@dataclass(frozen=True)
class Split:
    train: np.ndarray  # row indices
    val: np.ndarray
    test: np.ndarray


MIN_ROWS = 20  # below this a 70/15/15 split leaves val or test too small to mean anything


def split_rows(n: int, seed: int, val_fraction: float = 0.15, test_fraction: float = 0.15) -> Split:
    """Train, val and test row indices from the split seed alone; InputError if a part is empty."""
    if n < MIN_ROWS:
        raise InputError(f"too few rows for a train/val/test split: {n} (need at least {MIN_ROWS})")
    perm = stream(seed, "split").permutation(n)
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    n_train = n - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise InputError(f"splitting {n} rows with val_fraction {val_fraction} and test_fraction "
                         f"{test_fraction} leaves a part empty ({n_train}/{n_val}/{n_test})")
    return Split(perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])


@dataclass(frozen=True)
class Scaler:
    """Standardization fit on the training split only: (x - mean) / scale."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X) -> "Scaler":
        mean, std = X.mean(axis=0), X.std(axis=0)
        # A (near-)constant feature carries no signal; dividing by ~0 would only amplify noise.
        near_constant = std <= 1e-8 * np.maximum(1.0, np.abs(mean))
        return cls(mean, np.where(near_constant, 1.0, std))

    def __call__(self, X) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale


class Adam:
    """PyTorch's Adam (AdamW when weight_decay > 0), in place over the flat vector.

    PyTorch:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
              theta -= lr (m / bc1) / (sqrt(v / bc2) + eps),  bc_i = 1 - b_i^t
    Here the moments are kept divided by (1 - b_i), mu = m / (1 - b1) and nu = v / (1 - b2), and
    the scalars are folded out of the vector work: the same update in 10 vector operations, not 12.
    """

    def __init__(self, theta, grad, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.theta, self.grad = theta, grad
        self.lr, self.beta1, self.beta2, self.eps, self.weight_decay = lr, beta1, beta2, eps, weight_decay
        self.mu, self.nu, self.tmp = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
        self.t = 0

    def step(self):
        g, mu, nu, tmp = self.grad, self.mu, self.nu, self.tmp
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c = np.sqrt((1 - b2) / (1 - b2**self.t))  # sqrt(v / bc2) = c sqrt(nu)
        if self.weight_decay:
            self.theta *= 1 - self.lr * self.weight_decay
        mu *= b1  # mu = b1 mu + g
        mu += g
        nu *= b2  # nu = b2 nu + g^2
        np.multiply(g, g, out=tmp)
        nu += tmp
        np.sqrt(nu, out=tmp)  # theta -= lr (1 - b1) / bc1 / c * mu / (sqrt(nu) + eps / c)
        tmp += self.eps / c
        np.divide(mu, tmp, out=tmp)
        tmp *= self.lr * (1 - b1) / (1 - b1**self.t) / c
        self.theta -= tmp


@dataclass
class Fit:
    """A trained model and everything measured while training it."""

    model: MLP
    scaler: Scaler
    config: Config
    split: Split
    train_mse: list = field(default_factory=list)  # per epoch, exact over the split, no dropout
    val_mse: list = field(default_factory=list)
    best_epoch: int = 0  # 1-based; its weights are the ones kept
    epochs_run: int = 0
    steps: int = 0  # optimizer steps taken
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.split.train) // self.config.batch_size)  # the last partial batch counts

    def predict(self, X_raw) -> np.ndarray:
        """Scores for raw (unscaled) features, in float64."""
        return self.model.predict(self.scaler(X_raw))


def mse(yhat, y) -> float:
    r = np.asarray(yhat, dtype=np.float64) - y
    return float(r @ r) / len(r)


def fit(X, y, config: Config = Config()) -> Fit:
    """Split, scale, train with early stopping, restore the best weights, measure."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    split = split_rows(len(y), config.split_seed, config.val_fraction, config.test_fraction)
    scaler = Scaler.fit(X[split.train])
    Z = scaler(X)
    dtype = np.dtype(config.dtype)
    model = MLP((X.shape[1], *config.hidden, 1), config.sigmoid, dtype).init(stream(config.seed, "init"))
    result = Fit(model, scaler, config, split)
    start = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned about
        _train(result, Z[split.train], y[split.train], Z[split.val], y[split.val])
    result.seconds = time.perf_counter() - start
    result.metrics = {
        name: mse(model.predict(Z[rows]), y[rows])
        for name, rows in (("train_mse", split.train), ("val_mse", split.val), ("test_mse", split.test))
    }
    # What always predicting the training mean scores: a model no better than this learned nothing.
    result.metrics["mean_predictor_val_mse"] = mse(np.full(len(split.val), y[split.train].mean()), y[split.val])
    return result


def check_learned(result: Fit):
    """Raise TrainingDiverged when the best model is no better than predicting the mean: what a
    too-large step size does to a sigmoid head (it saturates, and the loss stays finite)."""
    m = result.metrics
    if not m["val_mse"] < m["mean_predictor_val_mse"]:
        raise TrainingDiverged(
            f"did not learn: best val MSE {m['val_mse']:.6g} is no better than predicting the training "
            f"mean ({m['mean_predictor_val_mse']:.6g}); lr {result.config.lr:g} may be too large "
            f"or {result.epochs_run} epochs too few"
        )


def _train(result: Fit, Z, y, Z_val, y_val):
    """The loop: an epoch over a fresh permutation, then exact train/val MSE (float64, the same
    numbers the final metrics use), then the early-stopping state machine. Leaves the best
    epoch's weights in the model."""
    cfg, model = result.config, result.model
    X, y_steps = Z.astype(model.theta.dtype), y.astype(model.theta.dtype)  # training precision
    opt = Adam(model.theta, model.grad, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay)
    shuffle, dropout = stream(cfg.seed, "shuffle"), stream(cfg.seed, "dropout")
    best_val, best_theta, waited = np.inf, model.theta.copy(), 0
    n, B = len(y), cfg.batch_size
    for epoch in range(1, cfg.epochs + 1):
        perm = shuffle.permutation(n)
        Xs, ys = X[perm], y_steps[perm]  # one gather per epoch; batches are then contiguous views
        for i in range(0, n, B):
            loss = model.loss_and_grad(Xs[i : i + B], ys[i : i + B], cfg.dropout, dropout)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"non-finite training loss at epoch {epoch}, step {opt.t + 1} "
                    f"(lr {cfg.lr:g}); try a smaller learning rate"
                )
            opt.step()
        train_mse, val_mse = mse(model.predict(Z), y), mse(model.predict(Z_val), y_val)
        result.train_mse.append(train_mse)
        result.val_mse.append(val_mse)
        result.epochs_run, result.steps = epoch, opt.t
        if not (np.isfinite(train_mse) and np.isfinite(val_mse)):
            raise TrainingDiverged(f"non-finite MSE after epoch {epoch} (lr {cfg.lr:g}); try a smaller learning rate")
        if val_mse < best_val - cfg.min_delta:
            best_val, result.best_epoch, waited = val_mse, epoch, 0
            best_theta[...] = model.theta
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    model.theta[...] = best_theta
