"""The MLP: forward and backward side by side over one flat parameter vector.

    X -> [Linear -> ReLU -> Dropout] * len(hidden) -> Linear -> [Sigmoid] -> yhat

Glossary: X (n, fan_in) inputs, already standardized; W (fan_in, fan_out) and b (fan_out,) one
layer; theta the flat vector all W and b are views into; grad the same layout for the gradient;
p the dropout probability; h a hidden activation after ReLU and dropout.

Loss convention: MSE = mean over rows of (yhat - y)^2, no 1/2. Its output gradient is
2 (yhat - y) / n. This module knows nothing of data files, splits or ONNX.
"""

from __future__ import annotations

import numpy as np


class MLP:
    def __init__(self, sizes: tuple[int, ...], sigmoid: bool = True, dtype=np.float32):
        self.sizes = tuple(int(s) for s in sizes)  # (n_features, *hidden, 1)
        if self.sizes[-1] != 1:
            raise ValueError(f"a regressor has one output: sizes must end with 1, got {self.sizes}")
        self.sigmoid = sigmoid
        shapes = [(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        n_params = sum(a * b + b for a, b in shapes)
        self.theta = np.zeros(n_params, dtype=dtype)
        self.grad = np.zeros_like(self.theta)
        self.W, self.b = _views(self.theta, shapes)
        self.dW, self.db = _views(self.grad, shapes)

    @property
    def n_params(self) -> int:
        """Weights plus biases."""
        return self.theta.size

    def init(self, rng: np.random.Generator) -> "MLP":
        """PyTorch's nn.Linear default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b alike,
        so a config carried over from a PyTorch run starts from the same distribution."""
        for W, b in zip(self.W, self.b):
            bound = 1.0 / np.sqrt(W.shape[0])
            W[...] = rng.uniform(-bound, bound, W.shape)
            b[...] = rng.uniform(-bound, bound, b.shape)
        return self

    def loss_and_grad(self, X, y, p: float = 0.0, rng: np.random.Generator | None = None) -> float:
        """Training step maths: the batch MSE, with its gradient written into self.grad.

        Dropout (inverted: kept units scaled by 1/(1-p)) is applied when p > 0 and rng is given.
        """
        n, last = X.shape[0], len(self.W) - 1
        hs = [X]  # inputs to each layer
        # forward
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            z = hs[-1] @ W  # (n, fan_out)
            z += b
            if l == last:
                break
            np.maximum(z, 0, out=z)  # ReLU
            if p > 0 and rng is not None:
                dropout(z, p, rng)
            hs.append(z)
        yhat = _sigmoid(z) if self.sigmoid else z  # (n, 1)
        r = yhat[:, 0] - y  # (n,)
        loss = float(r @ r) / n
        # backward: dz is dLoss/dz for the current layer's pre-activation
        dz = (2.0 / n) * r[:, None]
        if self.sigmoid:
            dz *= yhat * (1 - yhat)
        for l in range(last, -1, -1):
            h = hs[l]
            np.matmul(h.T, dz, out=self.dW[l])
            dz.sum(axis=0, out=self.db[l])
            if l == 0:
                break
            # dLoss/dh (n, fan_in); the output layer's fan_out is 1, and a k = 1 matmul is an
            # outer product that BLAS does several times slower than a broadcast multiply
            dz = dz * self.W[l].T if l == last else dz @ self.W[l].T
            # h > 0 exactly where ReLU passed and dropout kept the unit
            dz *= h > 0
            if p > 0 and rng is not None:
                dz *= dropout_scale(p)
        return loss

    def predict(self, X) -> np.ndarray:
        """Inference in float64: no dropout, no cache. ONNX parity is checked against this."""
        h = np.asarray(X, dtype=np.float64)
        last = len(self.W) - 1
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            h = h @ W.astype(np.float64) + b.astype(np.float64)
            if l < last:
                h = np.maximum(h, 0)
        return (_sigmoid(h) if self.sigmoid else h)[:, 0]


def dropout(h, p: float, rng: np.random.Generator):
    """Inverted dropout, in place: zero each unit with probability p and scale the kept ones by
    1/(1-p), so the expected activation is unchanged and inference needs no rescaling.

    A unit is kept when a raw 16-bit draw is >= p * 2**16: a quarter of the random bits of
    rng.random, with p resolved to 2**-16 (0.2 drops 13107 of 65536) and the scale taken from
    that same resolved p, so the mean is kept exactly.
    """
    bits = rng.bit_generator.random_raw(-(-h.size // 4)).view(np.uint16)[: h.size]
    h *= (bits >= round(p * 2**16)).reshape(h.shape)
    h *= dropout_scale(p)
    return h


def dropout_scale(p: float) -> float:
    return 1.0 / (1.0 - round(p * 2**16) / 2**16)


def _views(flat: np.ndarray, shapes):
    """Weight and bias views into one flat vector, layer by layer: W0, b0, W1, b1, ..."""
    Ws, bs, at = [], [], 0
    for fan_in, fan_out in shapes:
        Ws.append(flat[at : at + fan_in * fan_out].reshape(fan_in, fan_out))
        at += fan_in * fan_out
        bs.append(flat[at : at + fan_out])
        at += fan_out
    return Ws, bs


def _sigmoid(z):
    # The tanh form never overflows, unlike 1 / (1 + exp(-z)) for very negative z.
    return 0.5 * (1.0 + np.tanh(0.5 * z))
