"""The MLP against oracles: finite differences, closed-form Adam, dropout's definition."""

import numpy as np
import pytest

from npmlp.model import MLP, dropout, dropout_scale
from npmlp.train import Adam

FD_STEP = 1e-6  # central differences in float64: truncation ~1e-12, rounding ~1e-10
FD_TOL = 1e-6  # relative error allowed between analytic and numeric gradients


def small_problem(n=17, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.uniform(0, 1, n)


@pytest.mark.parametrize("hidden", [(7,), (6, 4), (5, 8, 3)])
@pytest.mark.parametrize("sigmoid", [True, False])
def test_gradient_matches_finite_differences_for_every_parameter(hidden, sigmoid):
    X, y = small_problem()
    model = MLP((X.shape[1], *hidden, 1), sigmoid, np.float64).init(np.random.default_rng(1))
    model.loss_and_grad(X, y)
    analytic = model.grad.copy()
    numeric = np.empty_like(analytic)
    for i in range(model.theta.size):  # every weight and every bias
        old = model.theta[i]
        model.theta[i] = old + FD_STEP
        up = model.loss_and_grad(X, y)
        model.theta[i] = old - FD_STEP
        down = model.loss_and_grad(X, y)
        model.theta[i] = old
        numeric[i] = (up - down) / (2 * FD_STEP)
    err = np.abs(analytic - numeric) / np.maximum(1e-8, np.abs(analytic) + np.abs(numeric))
    assert err.max() < FD_TOL


def test_gradient_with_fixed_dropout_mask_matches_finite_differences():
    # Same seed -> same mask on every call, so the loss is a smooth function of theta.
    X, y = small_problem()
    model = MLP((5, 6, 4, 1), True, np.float64).init(np.random.default_rng(2))
    loss = lambda: model.loss_and_grad(X, y, 0.3, np.random.default_rng(7))
    loss()
    analytic = model.grad.copy()
    for i in range(0, model.theta.size, 3):
        old = model.theta[i]
        model.theta[i] = old + FD_STEP
        up = loss()
        model.theta[i] = old - FD_STEP
        down = loss()
        model.theta[i] = old
        assert (up - down) / (2 * FD_STEP) == pytest.approx(analytic[i], rel=1e-5, abs=1e-9)


def test_loss_is_mean_squared_error_over_rows():
    X, y = small_problem()
    model = MLP((5, 4, 1), True, np.float64).init(np.random.default_rng(3))
    assert model.loss_and_grad(X, y) == pytest.approx(np.mean((model.predict(X) - y) ** 2), rel=1e-12)


def test_weights_and_biases_are_views_into_one_flat_vector():
    model = MLP((39, 128, 64, 1))
    assert model.n_params == 39 * 128 + 128 + 128 * 64 + 64 + 64 + 1 == 13441
    for arr in (*model.W, *model.b):
        assert np.shares_memory(arr, model.theta)
    for arr in (*model.dW, *model.db):
        assert np.shares_memory(arr, model.grad)
    model.theta[:] = np.arange(model.n_params)
    assert model.W[0][0, 1] == 1 and model.b[0][0] == 39 * 128 and model.W[1][0, 0] == 39 * 128 + 128


def test_dropout_is_identity_at_inference_and_zero_dropout_is_no_dropout():
    X, y = small_problem(n=40)
    model = MLP((5, 16, 8, 1), True, np.float64).init(np.random.default_rng(4))
    model.loss_and_grad(X, y)
    plain = model.grad.copy(), model.predict(X)
    loss0 = model.loss_and_grad(X, y, 0.0, np.random.default_rng(5))
    assert np.array_equal(model.grad, plain[0])  # p = 0 with an rng: bit-identical
    assert loss0 == pytest.approx(np.mean((plain[1] - y) ** 2), rel=1e-12)
    model.loss_and_grad(X, y, 0.5, np.random.default_rng(5))  # training with dropout
    assert np.array_equal(model.predict(X), plain[1])  # predict never drops


def test_dropout_keeps_the_mean_activation():
    h = dropout(np.ones((1000, 1000)), 0.3, np.random.default_rng(6))
    assert np.mean(h == 0) == pytest.approx(0.3, abs=0.003)  # 1e6 Bernoulli draws: sd 0.0005
    assert h.mean() == pytest.approx(1.0, abs=0.01)
    assert np.unique(h).tolist() == [0.0, dropout_scale(0.3)]
    assert dropout_scale(0.3) == pytest.approx(1 / 0.7, rel=1e-4)  # p resolved to 2**-16


def test_first_adam_step_matches_closed_form():
    theta = np.zeros(10, np.float64)
    grad = np.full(10, 1e-6)
    Adam(theta, grad, lr=1e-3).step()
    # m_hat = g, v_hat = g^2: step = lr * g / (|g| + eps) = 1e-3 * 1e-6 / (1e-6 + 1e-8)
    assert np.allclose(-theta, 1e-3 * 1e-6 / (1e-6 + 1e-8), rtol=1e-12)
    assert -theta[0] == pytest.approx(9.90e-4, abs=5e-7)


def test_adam_steps_match_hand_computation_with_weight_decay():
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
    grads = [np.array([0.5, -2.0, 1e-3]), np.array([0.1, 1.0, -1e-3]), np.array([-0.3, 0.2, 0.0])]
    theta, g = np.array([1.0, -1.0, 0.5]), np.zeros(3)
    opt = Adam(theta, g, lr, b1, b2, eps, wd)
    ref, m, v = theta.copy(), np.zeros(3), np.zeros(3)
    for t, gt in enumerate(grads, start=1):
        g[...] = gt
        opt.step()
        ref = ref * (1 - lr * wd)  # decoupled decay, then the Adam update
        m = b1 * m + (1 - b1) * gt
        v = b2 * v + (1 - b2) * gt**2
        ref = ref - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        assert np.allclose(theta, ref, rtol=1e-12, atol=1e-15)
