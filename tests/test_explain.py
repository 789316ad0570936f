"""Every layer explains its numbers: the terms of one output, and of one cell of its input gradient, add up to
what the layer computed, for every kind, stride above 1, padding and non-square kernels."""

import numpy as np
import pytest

import nanocnn as nc
from helpers import CONV_SWEEP, POOL_SWEEP, conv_layer, pool_input, pool_layer
from nanocnn.nn.trace import Trace


def close(total, value, scale, dtype):
    """total (float64 terms summed) against the layer's own value, to the rounding of its dtype."""
    eps = np.finfo(dtype).eps
    return abs(total - value) <= 8 * eps * (scale + abs(value)) + 1e-300


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CONV_SWEEP[:30] + CONV_SWEEP[-4:], ids=str)
def test_conv_terms_add_up_to_every_output_and_every_input_gradient(case, dtype, rng):
    layer = conv_layer(case, rng, dtype)
    x = rng.standard_normal((1, case.C, case.H, case.W)).astype(dtype)
    out = layer(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    for position in np.ndindex(out.shape[1:]):
        e = layer.explain(x[0], position)
        assert e["window"].shape == (case.C, case.KH, case.KW)
        scale = np.abs(e["window"] * e["weight"]).sum() + abs(e["bias"])
        assert close(e["total"], out[(0,) + position], scale, dtype), position
    for position in np.ndindex(x.shape[1:]):
        e = layer.explain_backward(x[0], dout[0], position)
        assert close(e["total"], dx[(0,) + position], np.abs(e["products"]).sum(), dtype), position


@pytest.mark.parametrize("case", POOL_SWEEP[:30], ids=str)
def test_max_pool_names_the_winner_and_the_windows_that_chose_each_pixel(case, rng):
    layer = pool_layer(case)
    x = pool_input(case, rng, ties=bool(rng.integers(2)))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    for position in np.ndindex(out.shape[1:]):
        e = layer.explain(x[0], position)
        assert e["total"] == out[(0,) + position] == e["window"][e["winner"]]
        assert e["window"][e["winner"]] == e["window"].max() and e["window"].ravel().tolist().index(e["total"]) == (
            e["winner"][0] * case.KW + e["winner"][1]
        )  # the first maximum, in row-major order
    for position in np.ndindex(x.shape[1:]):
        assert abs(layer.explain_backward(x[0], dout[0], position)["total"] - dx[(0,) + position]) < 1e-12


def test_relu_linear_flatten_and_dropout_explain_themselves(rng):
    x = rng.standard_normal((1, 3, 4, 5))
    relu, flatten, dropout = nc.ReLU(), nc.Flatten(), nc.Dropout(0.5, rng=rng).eval().enable_grad()
    linear = nc.Linear(60, 7, dtype=np.float64, rng=rng)
    linear.bias.data[:] = rng.standard_normal(7)
    for layer, given in ((relu, x), (dropout, x), (flatten, x), (linear, x.reshape(1, -1))):
        out = layer(given)
        dout = rng.standard_normal(out.shape)
        dx = layer.backward(dout)
        for position in np.ndindex(out.shape[1:]):
            assert abs(layer.explain(given[0], position)["total"] - out[(0,) + position]) < 1e-12
        for position in np.ndindex(given.shape[1:]):
            assert abs(layer.explain_backward(given[0], dout[0], position)["total"] - dx[(0,) + position]) < 1e-12
    e = linear.explain(x.reshape(-1), (3,))
    assert np.array_equal(e["products"], linear.weight.data[3] * x.reshape(-1)) and e["bias"] == linear.bias.data[3]


@pytest.mark.parametrize("preset", ["default", "seed"])
def test_a_whole_network_explains_every_layer_from_one_trace(preset, rng):
    """The trace's inputs and output gradients are what the layers explain: each total equals the trace."""
    from nanocnn.train.presets import PRESETS

    model = PRESETS[preset].build((1, 28, 28), 10, rng)
    image = rng.random((1, 28, 28), dtype=np.float32)
    trace = Trace(model, image)
    trace.loss_backward(3)
    grads_in = [trace.input_grad] + trace.output_grads[:-1]  # the gradient with respect to each layer's input
    for i, layer in enumerate(trace.model.layers):
        out, x, g = trace.outputs[i], trace.inputs[i], trace.output_grads[i]
        for position in [tuple(int(rng.integers(s)) for s in out.shape) for _ in range(20)]:
            e = layer.explain(x, position)
            assert abs(e["total"] - out[position]) <= 1e-5 * (1 + np.abs(out).max()), (i, position)
        for position in [tuple(int(rng.integers(s)) for s in x.shape) for _ in range(20)]:
            e = layer.explain_backward(x, g, position)
            assert abs(e["total"] - grads_in[i][position]) <= 1e-5 * (1 + np.abs(grads_in[i]).max())
