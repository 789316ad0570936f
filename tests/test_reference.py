"""The fast layers, forward and every gradient, equal the plain loop versions in reference.py.

The reference itself is checked against finite differences, so the chain is: finite differences
-> reference.py -> fast layers, each on the same sweeps of shapes.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nanocnn as nc
from nanocnn import reference as ref
from conftest import numerical_grad, rel_error
from test_gradients import CONV_EDGE_CASES, conv_configs, pool_configs


def run_conv(cfg, rng, dtype=np.float64):
    N, C, F, H, W, KH, KW, SH, SW, PH, PW = cfg
    layer = nc.Conv2d(C, F, (KH, KW), stride=(SH, SW), padding=(PH, PW), dtype=dtype, rng=rng)
    layer.bias.data[:] = rng.standard_normal(F)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    out = layer(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    return layer, x, out, dout, dx


@pytest.mark.parametrize("cfg", conv_configs(40, seed=3) + CONV_EDGE_CASES)
def test_conv2d_matches_reference(cfg, rng):
    layer, x, out, dout, dx = run_conv(cfg, rng)
    w, b = layer.weight.data, layer.bias.data
    stride, padding = layer.stride, layer.padding
    assert rel_error(out, ref.conv2d_forward(x, w, b, stride, padding)) < 1e-12
    rdx, rdw, rdb = ref.conv2d_backward(x, w, dout, stride, padding)
    assert rel_error(dx, rdx) < 1e-12
    assert rel_error(layer.weight.grad, rdw) < 1e-12
    assert rel_error(layer.bias.grad, rdb) < 1e-12


@settings(max_examples=60, deadline=None, derandomize=True)
@given(N=st.integers(1, 3), C=st.integers(1, 3), F=st.integers(1, 4), H=st.integers(1, 11), W=st.integers(1, 11),
       KH=st.integers(1, 5), KW=st.integers(1, 5), SH=st.integers(1, 4), SW=st.integers(1, 4),
       PH=st.integers(0, 2), PW=st.integers(0, 2), seed=st.integers(0, 2**16))
def test_conv2d_matches_reference_hypothesis(N, C, F, H, W, KH, KW, SH, SW, PH, PW, seed):
    if H + 2 * PH < KH or W + 2 * PW < KW:
        return
    rng = np.random.default_rng(seed)
    layer, x, out, dout, dx = run_conv((N, C, F, H, W, KH, KW, SH, SW, PH, PW), rng)
    rdx, rdw, rdb = ref.conv2d_backward(x, layer.weight.data, dout, layer.stride, layer.padding)
    assert rel_error(out, ref.conv2d_forward(x, layer.weight.data, layer.bias.data, layer.stride, layer.padding)) < 1e-12
    assert max(rel_error(dx, rdx), rel_error(layer.weight.grad, rdw), rel_error(layer.bias.grad, rdb)) < 1e-12


@pytest.mark.parametrize("cfg", conv_configs(8, seed=4) + CONV_EDGE_CASES[:2])
def test_reference_conv2d_against_finite_differences(cfg, rng):
    N, C, F, H, W, KH, KW, SH, SW, PH, PW = cfg
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, KH, KW)), rng.standard_normal(F)
    out = ref.conv2d_forward(x, w, b, (SH, SW), (PH, PW))
    R = rng.standard_normal(out.shape)
    loss = lambda: float((ref.conv2d_forward(x, w, b, (SH, SW), (PH, PW)) * R).sum())
    dx, dw, db = ref.conv2d_backward(x, w, R, (SH, SW), (PH, PW))
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-7
    assert rel_error(dw, numerical_grad(loss, w)) < 1e-7
    assert rel_error(db, numerical_grad(loss, b)) < 1e-7


def run_pool(cfg, x, rng):
    N, C, H, W, KH, KW, SH, SW, PH, PW = cfg
    layer = nc.MaxPool2d((KH, KW), stride=(SH, SW), padding=(PH, PW))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    return layer, out, dout, layer.backward(dout)


@pytest.mark.parametrize("cfg", pool_configs(40, seed=5))
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool2d_matches_reference(cfg, ties, rng):
    N, C, H, W = cfg[:4]
    # With ties (values from {0, 1, 2}) many windows hold several maxima: both must pick the first.
    x = rng.integers(0, 3, (N, C, H, W)).astype(np.float64) if ties else rng.standard_normal((N, C, H, W))
    layer, out, dout, dx = run_pool(cfg, x, rng)
    rout, argmax = ref.maxpool2d_forward(x, layer.kernel_size, layer.stride, layer.padding)
    assert np.array_equal(out, rout)
    rdx = ref.maxpool2d_backward(x, dout, argmax, layer.kernel_size, layer.stride, layer.padding)
    assert rel_error(dx, rdx) < 1e-12           # overlapping windows add in another order: rounding only
    assert np.array_equal(dx != 0, rdx != 0)
    # Every output's gradient lands exactly once: nothing lost, nothing double-counted at ties.
    assert dx.sum() == pytest.approx(dout.sum())


def test_maxpool2d_all_equal_window_routes_to_the_first_element():
    x = np.ones((1, 1, 2, 2))
    layer = nc.MaxPool2d(2)
    layer(x)
    assert np.array_equal(layer.backward(np.array([[[[5.0]]]])), [[[[5.0, 0.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("n, fin, fout", [(1, 3, 2), (6, 10, 4)])
def test_linear_matches_reference(n, fin, fout, rng):
    layer = nc.Linear(fin, fout, dtype=np.float64, rng=rng)
    layer.bias.data[:] = rng.standard_normal(fout)
    x = rng.standard_normal((n, fin))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    rdx, rdw, rdb = ref.linear_backward(x, layer.weight.data, dout)
    assert rel_error(out, ref.linear_forward(x, layer.weight.data, layer.bias.data)) < 1e-12
    assert max(rel_error(dx, rdx), rel_error(layer.weight.grad, rdw), rel_error(layer.bias.grad, rdb)) < 1e-12


def test_softmax_cross_entropy_matches_reference(rng):
    logits, labels = rng.standard_normal((9, 6)) * 5, rng.integers(0, 6, 9)
    loss, grad = nc.softmax_cross_entropy(logits, labels)
    rloss, rgrad = ref.softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(rloss, rel=1e-12) and rel_error(grad, rgrad) < 1e-12
