"""Shared test helpers: central finite differences in float64 and a relative error."""
import zlib

import numpy as np
import pytest


def numerical_grad(f, x, eps=1e-6):
    """Central differences of the scalar function f() with respect to every entry of x (modified in place)."""
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


def rel_error(a, b):
    """max |a - b| / max(|a|, |b|, tiny): 0 for equal arrays, about 1 for unrelated ones."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.abs(a).max(initial=0), np.abs(b).max(initial=0), 1e-12)
    return float(np.abs(a - b).max(initial=0) / scale)


def check_layer_gradients(layer, x, rng, tol=1e-7):
    """Compare layer.backward with finite differences of L = sum(layer(x) * R), for x and every parameter.

    Returns the worst relative error (asserted below tol).
    """
    layer.train()
    out = layer(x)
    R = rng.standard_normal(out.shape)
    loss = lambda: float((layer(x) * R).sum())
    layer.zero_grad()
    layer(x)
    dx = layer.backward(R.copy())
    worst = rel_error(dx, numerical_grad(loss, x))
    for name, p in layer.named_parameters():
        worst = max(worst, rel_error(p.grad, numerical_grad(loss, p.data)))
    assert worst < tol, f"{layer!r}: relative error {worst:.2e}"
    return worst


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name, so every test is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))
