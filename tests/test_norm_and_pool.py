"""BatchNorm2d, AvgPool2d, AdaptiveAvgPool2d: the fast functions equal the loops of reference.py, the layers'
backward passes equal finite differences in float64, and the running statistics follow PyTorch's rule."""

import numpy as np
import pytest

import nanocnn as nc
from helpers import POOL_SWEEP, check_layer_gradients, numerical_grad, pool_input, rel_error
from nanocnn.nn import functional as fast
from nanocnn.nn import reference as slow

BN_SHAPES = [(1, 1, 2, 1), (2, 3, 4, 5), (5, 2, 1, 1), (3, 4, 7, 3), (1, 6, 5, 5), (8, 2, 3, 2)]


@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_equals_its_loops_with_the_batch_and_with_fixed_statistics(shape, affine, rng):
    x = rng.standard_normal(shape) * 3 + 1
    C = shape[1]
    gamma, beta = (rng.standard_normal(C), rng.standard_normal(C)) if affine else (None, None)
    dout = rng.standard_normal(shape)
    out, mean, var, cache = fast.batch_norm_forward(x, gamma, beta, 1e-5)
    rout, rmean, rvar = slow.batch_norm_forward(x, gamma, beta, 1e-5)
    assert max(rel_error(out, rout), rel_error(mean, rmean), rel_error(var, rvar)) < 1e-12
    dx, dgamma, dbeta = fast.batch_norm_backward(cache, dout, gamma)
    for a, b in zip((dx, dgamma, dbeta), slow.batch_norm_backward(x, gamma, dout, 1e-5)):
        assert rel_error(a, b) < 1e-10
    fixed_mean, fixed_var = rng.standard_normal(C), rng.random(C) + 0.5
    out, _, _, cache = fast.batch_norm_forward(x, gamma, beta, 1e-5, fixed_mean, fixed_var)
    assert rel_error(out, slow.batch_norm_forward(x, gamma, beta, 1e-5, fixed_mean, fixed_var)[0]) < 1e-12
    dx, dgamma, dbeta = fast.batch_norm_backward(cache, dout, gamma)
    for a, b in zip((dx, dgamma, dbeta), slow.batch_norm_backward(x, gamma, dout, 1e-5, fixed_mean, fixed_var)):
        assert rel_error(a, b) < 1e-12


@pytest.mark.parametrize("shape", BN_SHAPES[1:], ids=str)
def test_batch_norm_gradients_in_training_and_in_eval_mode_against_finite_differences(shape, rng):
    layer = nc.BatchNorm2d(shape[1], dtype=np.float64)
    layer.weight.data[:] = rng.standard_normal(shape[1])
    layer.bias.data[:] = rng.standard_normal(shape[1])
    x = rng.standard_normal(shape) * 2
    check_layer_gradients(layer, x, rng)  # training: through the batch's statistics
    layer.running_mean.data[:] = rng.standard_normal(shape[1])
    layer.running_var.data[:] = rng.random(shape[1]) + 0.3
    layer.eval().enable_grad()  # inference with gradients: the statistics are constants
    R = rng.standard_normal(shape)
    loss = lambda: float((layer(x) * R).sum())  # noqa: E731
    layer.zero_grad()
    layer(x)
    dx = layer.backward(R.copy())
    assert rel_error(dx, numerical_grad(loss, x)) < 1e-7
    for p in layer.parameters():
        assert rel_error(p.grad, numerical_grad(loss, p.data)) < 1e-7


def test_running_statistics_follow_pytorchs_rule_and_eval_uses_them(rng):
    layer = nc.BatchNorm2d(3, momentum=0.2, dtype=np.float64)
    mean, var = np.zeros(3), np.ones(3)
    for step in range(4):
        x = rng.standard_normal((4, 3, 5, 2)) * (step + 1) + step
        layer(x)
        M = 4 * 5 * 2
        batch_mean, batch_var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3)) * M / (M - 1)  # unbiased
        mean, var = 0.8 * mean + 0.2 * batch_mean, 0.8 * var + 0.2 * batch_var
    assert rel_error(layer.running_mean.data, mean) < 1e-12 and rel_error(layer.running_var.data, var) < 1e-12
    assert int(layer.num_batches_tracked.data) == 4
    x = rng.standard_normal((2, 3, 4, 4))
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    assert rel_error(layer.eval()(x), expected) < 1e-12
    assert int(layer.num_batches_tracked.data) == 4  # eval mode changes nothing
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    with pytest.raises(nc.UserError, match="more than one value per channel"):
        layer.train()(np.ones((1, 3, 1, 1)))


@pytest.mark.parametrize("case", POOL_SWEEP[:40], ids=str)
def test_average_pooling_equals_its_loops_and_finite_differences(case, rng):
    x = pool_input(case, rng)
    kernel, stride, padding = (case.KH, case.KW), (case.SH, case.SW), (case.PH, case.PW)
    out = fast.avgpool2d_forward(x, kernel, stride, padding)
    assert rel_error(out, slow.avgpool2d_forward(x, kernel, stride, padding)) < 1e-12
    dout = rng.standard_normal(out.shape)
    dx = fast.avgpool2d_backward(dout, x.shape, kernel, stride, padding)
    assert rel_error(dx, slow.avgpool2d_backward(x, dout, kernel, stride, padding)) < 1e-12
    layer = nc.AvgPool2d(kernel, stride, padding)
    assert layer.output_shape(x.shape[1:]) == out.shape[1:]
    check_layer_gradients(layer, x, rng)


def test_global_average_pooling(rng):
    x = rng.standard_normal((3, 4, 5, 6))
    layer = nc.AdaptiveAvgPool2d(1)
    out = layer(x)
    assert out.shape == (3, 4, 1, 1) and rel_error(out, x.mean(axis=(2, 3), keepdims=True)) < 1e-14
    check_layer_gradients(layer, x, rng)
    with pytest.raises(nc.UserError, match="only output_size 1"):
        nc.AdaptiveAvgPool2d(2)


def test_the_new_layers_in_float32_make_no_float64_arrays(rng):
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    for layer in (nc.BatchNorm2d(3), nc.AvgPool2d(2), nc.AvgPool2d(3, 1, 1), nc.AdaptiveAvgPool2d(1)):
        for mode in (True, False):
            layer.train(mode).enable_grad()
            out = layer(x)
            dx = layer.backward(np.ones_like(out))
            assert out.dtype == dx.dtype == np.float32, layer
            assert all(p.grad.dtype == np.float32 for p in layer.parameters())
