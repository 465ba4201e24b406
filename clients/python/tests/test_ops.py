"""Losses, normalization, activations and optimizer steps through the client, against the
formulas written out in NumPy (PyTorch's definitions; 1e-12)."""

from __future__ import annotations

import numpy as np

import evald

EPS = 1e-12


def test_mse_loss_and_gradient(client: evald.Client) -> None:
    p, t = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 1.0])
    result = client.loss("mse", p, t, reduction="mean")
    np.testing.assert_allclose(result.loss, np.mean((p - t) ** 2), rtol=0, atol=EPS)
    np.testing.assert_allclose(result.gradient, 2 * (p - t) / len(p), rtol=0, atol=EPS)
    assert result.reduction == "mean"


def test_huber_loss_takes_its_parameter(client: evald.Client) -> None:
    p, t = np.array([0.0, 3.0]), np.array([0.5, 0.0])
    result = client.loss("huber", p, t, reduction="none", delta=1.0)
    diff = np.abs(p - t)
    expected = np.where(diff < 1.0, 0.5 * diff**2, diff - 0.5)
    assert isinstance(result.loss, np.ndarray)
    np.testing.assert_allclose(result.loss, expected, rtol=0, atol=EPS)


def test_sigmoid_activation(client: evald.Client) -> None:
    x = np.array([[-2.0, 0.0, 3.0]])
    result = client.activation("sigmoid", x)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(result.output, s, rtol=0, atol=EPS)
    np.testing.assert_allclose(result.gradient, s * (1 - s), rtol=0, atol=EPS)


def test_layer_norm(client: evald.Client) -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 4.0, 5.0]])
    result = client.normalize("layer", x, eps=1e-5)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    np.testing.assert_allclose(result.output, (x - mean) / np.sqrt(var + 1e-5), rtol=0, atol=EPS)
    np.testing.assert_allclose(result.mean, mean.ravel(), rtol=0, atol=EPS)


def test_sgd_steps_with_momentum_feed_the_state_back(client: evald.Client) -> None:
    params, grads, lr, momentum = np.array([1.0, 2.0]), np.array([0.5, 0.25]), 0.1, 0.9
    first = client.optimizer_step("sgd", params, grads, lr=lr, momentum=momentum)
    second = client.optimizer_step(
        "sgd", first.params, grads, state=first.state, lr=lr, momentum=momentum
    )
    # torch.optim.SGD: buf = g, then buf = momentum * buf + g; p -= lr * buf.
    buf1 = grads
    buf2 = momentum * buf1 + grads
    np.testing.assert_allclose(first.params, params - lr * buf1, rtol=0, atol=EPS)
    np.testing.assert_allclose(second.params, params - lr * buf1 - lr * buf2, rtol=0, atol=EPS)
    assert isinstance(second.state, dict)
    assert second.state["step"] == 2
