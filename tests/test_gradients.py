"""Every layer's backward and the loss against central finite differences in float64, on the shared sweeps."""

import numpy as np
import pytest

import nanocnn as nc
from helpers import (
    CONV_STRATEGY_CASES,
    CONV_SWEEP,
    POOL_SWEEP,
    check_layer_gradients,
    conv_layer,
    numerical_grad,
    pool_input,
    pool_layer,
    rel_error,
)


@pytest.mark.parametrize("case", CONV_SWEEP[:25] + CONV_SWEEP[-4:], ids=str)
def test_conv2d_gradients(case, rng):
    check_layer_gradients(conv_layer(case, rng), rng.standard_normal((case.N, case.C, case.H, case.W)), rng)


def test_conv2d_without_bias_gradients(rng):
    layer = nc.Conv2d(2, 3, 3, stride=2, padding=1, bias=False, dtype=np.float64, rng=rng)
    assert layer.bias is None and len(layer.parameters()) == 1
    check_layer_gradients(layer, rng.standard_normal((2, 2, 6, 5)), rng)


@pytest.mark.parametrize("case", POOL_SWEEP[:25] + POOL_SWEEP[-2:], ids=str)
def test_maxpool2d_gradients(case, rng):
    # distinct values spaced well above eps, so no finite-difference step changes which entry is the max
    check_layer_gradients(pool_layer(case), pool_input(case, rng), rng)


@pytest.mark.parametrize("shape", [(3, 7), (2, 3, 5, 4), (4, 1)])
def test_relu_gradients(shape, rng):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep clear of the kink at 0
    check_layer_gradients(nc.ReLU(), x, rng)


@pytest.mark.parametrize("n, fin, fout", [(1, 1, 1), (3, 7, 4), (5, 12, 10)])
def test_linear_gradients(n, fin, fout, rng):
    layer = nc.Linear(fin, fout, dtype=np.float64, rng=rng)
    layer.bias.data[:] = rng.standard_normal(fout)
    check_layer_gradients(layer, rng.standard_normal((n, fin)), rng)


def test_flatten_gradients(rng):
    check_layer_gradients(nc.Flatten(), rng.standard_normal((2, 3, 4, 5)), rng)


class ReplayDropout(nc.Dropout):
    """Dropout that draws the same mask at every forward, so finite differences see one fixed function."""

    def forward(self, x):
        self.rng = np.random.default_rng(0)
        return super().forward(x)


def test_dropout_gradients_and_modes(rng):
    layer = ReplayDropout(0.4)
    x = rng.standard_normal((4, 6))
    check_layer_gradients(layer, x, rng)
    out = layer(x)
    kept = out != 0
    assert 0 < (~kept).sum() < x.size and np.allclose(out[kept], x[kept] / 0.6)
    assert np.array_equal(layer.backward(np.ones_like(x)), kept / 0.6)
    layer.eval()
    assert layer(x) is x  # the identity in eval mode
    with pytest.raises(RuntimeError, match="needs a forward pass with gradients enabled"):
        layer.backward(x)  # and nothing kept for backward
    layer.enable_grad()
    layer(x)
    assert layer.backward(x) is x


@pytest.mark.parametrize("n, k, scale", [(1, 2, 1.0), (4, 10, 3.0), (7, 5, 0.1)])
def test_softmax_cross_entropy_gradient(n, k, scale, rng):
    logits = rng.standard_normal((n, k)) * scale
    labels = rng.integers(0, k, size=n)
    loss, dlogits = nc.softmax_cross_entropy(logits, labels)
    numeric = numerical_grad(lambda: nc.softmax_cross_entropy(logits, labels)[0], logits)
    assert rel_error(dlogits, numeric) < 1e-7


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype)
    loss, dlogits = nc.softmax_cross_entropy(logits, np.array([1, 2]))
    assert np.isfinite(loss) and np.isfinite(dlogits).all() and dlogits.dtype == dtype
    assert loss == pytest.approx(2e4 / 2)  # example 0 is off by 2e4, example 1 is right
    assert np.allclose(dlogits, np.array([[1, -1, 0], [0, 0, 0]]) / 2)


def test_softmax_cross_entropy_hand_worked():
    # logits (0, ln 3): softmax = (1/4, 3/4); label 1 -> loss = -ln(3/4); gradient = (1/4, -1/4).
    loss, dlogits = nc.softmax_cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))
    assert np.allclose(dlogits, [[0.25, -0.25]])


class StrideIgnoringConv2d(nc.Conv2d):
    """The article's defect, as a layer: the kernel gradient slides dout over the input without the stride."""

    def backward(self, grad_out, input_grad=True):
        x = self._x
        dx = super().backward(grad_out, input_grad)
        KH, KW = self.kernel_size
        OH, OW = grad_out.shape[2:]
        wrong = np.zeros_like(self.weight.grad)
        for kh in range(KH):
            for kw in range(KW):
                wrong[:, :, kh, kw] = np.einsum("nfhw,nchw->fc", grad_out, x[:, :, kh : kh + OH, kw : kw + OW])
        self.weight.grad[...] = wrong
        return dx

    def forward(self, x):
        self._x = x
        return super().forward(x)


class RowColumnSwappedConv2d(nc.Conv2d):
    """The article's other defect: rows and columns of the kernel gradient swapped."""

    def backward(self, grad_out, input_grad=True):
        before = self.weight.grad.copy()
        dx = super().backward(grad_out, input_grad)
        self.weight.grad[...] = before + (self.weight.grad - before).transpose(0, 1, 3, 2)
        return dx


@pytest.mark.parametrize("broken", [StrideIgnoringConv2d, RowColumnSwappedConv2d])
def test_negative_control_the_real_check_rejects_a_broken_layer(broken, rng):
    """The check has teeth: the same check_layer_gradients that passes every layer fails these."""
    x = rng.standard_normal((2, 2, 9, 9))
    check_layer_gradients(nc.Conv2d(2, 3, 3, stride=2, dtype=np.float64, rng=rng), x, rng)  # the real one passes
    with pytest.raises(AssertionError, match="relative error"):
        check_layer_gradients(broken(2, 3, 3, stride=2, dtype=np.float64, rng=rng), x, rng)


def test_relu_matches_max_with_zero_on_every_memory_layout(rng):
    """ReLU compares against zeros laid out like its input: check odd layouts, reuse and ownership."""
    base = rng.standard_normal((3, 4, 5, 6))
    relu = nc.ReLU()
    for x in (
        base,
        base.transpose(3, 0, 1, 2),
        base[:, ::2],
        base[::-1],
        base[:, :, 1:4],
        base[:0],
        base.astype(np.float32).transpose(1, 2, 3, 0),
        base.transpose(3, 0, 1, 2),
        base[:1],
    ):
        out = relu(x)
        assert out.dtype == x.dtype and np.array_equal(out, np.maximum(x, 0))
        assert np.array_equal(relu.backward(np.ones_like(x)), (x > 0).astype(x.dtype))
        out[...] = 7  # the caller owns the output: nothing is shared
    assert np.array_equal(relu(base), np.maximum(base, 0))


def test_conv_workspace_is_never_handed_out_and_one_backward_uses_one_forward(rng):
    """Conv2d reuses one workspace for its columns and their gradient: outputs and dx stay the caller's own."""
    conv = nc.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    x1, x2 = rng.standard_normal((4, 2, 6, 5)), rng.standard_normal((4, 2, 6, 5))
    g = rng.standard_normal((4, 3, 6, 5))
    ref = nc.Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=rng)
    ref.weight.data[...] = conv.weight.data
    ref(x2)
    dx_expected = ref.backward(g)
    out1 = conv(x1)
    out2 = conv(x2)  # the second forward's columns are the ones kept
    assert not np.shares_memory(out1, out2) and not np.shares_memory(out2, conv._workspace)
    dx = conv.backward(g)
    assert np.allclose(dx, dx_expected, rtol=1e-13) and np.allclose(conv.weight.grad, ref.weight.grad, rtol=1e-13)
    assert not np.shares_memory(dx, conv._workspace)
    with pytest.raises(RuntimeError, match="backward needs a forward pass with gradients enabled first"):
        conv.backward(g)  # the columns were used up by the first backward
    conv(x1)
    conv.eval()(x2)  # an eval forward drops the training cache
    with pytest.raises(RuntimeError, match="backward needs a forward pass with gradients enabled first"):
        conv.backward(g)


@pytest.mark.parametrize(
    "layer",
    [nc.ReLU(), nc.Flatten(), nc.Dropout(0.3), nc.MaxPool2d(2), nc.Linear(3, 2), nc.Conv2d(1, 2, 3)],
    ids=lambda layer: type(layer).__name__,
)
def test_every_layer_refuses_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match="backward needs a forward pass with gradients enabled first"):
        layer.backward(np.zeros((1, 2), np.float32))


@pytest.mark.parametrize("case, strategy", CONV_STRATEGY_CASES, ids=lambda v: str(v))
def test_conv2d_gradients_in_every_strategy(case, strategy, rng):
    layer = conv_layer(case, rng)
    check_layer_gradients(layer, rng.standard_normal((case.N, case.C, case.H, case.W)), rng)
    layer(rng.standard_normal((case.N, case.C, case.H, case.W)))
    assert layer._cache.kind == strategy
