"""Every layer's backward and the loss against central finite differences in float64."""
import numpy as np
import pytest

import nanocnn as nc
from conftest import check_layer_gradients, numerical_grad, rel_error


def conv_configs(count, seed):
    """Seeded random conv configurations: batch, channels, square and non-square kernels,
    stride 1-3 (also larger than the kernel), padding 0-2, odd image sizes."""
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        N, C, F = r.integers(1, 4), r.integers(1, 4), r.integers(1, 4)
        KH, KW = r.integers(1, 5, size=2)
        SH, SW = r.integers(1, 4, size=2)
        PH, PW = r.integers(0, 3, size=2)
        H, W = r.integers(3, 10, size=2)
        if H + 2 * PH >= KH and W + 2 * PW >= KW:
            configs.append(tuple(int(v) for v in (N, C, F, H, W, KH, KW, SH, SW, PH, PW)))
    return configs


CONV_EDGE_CASES = [
    (2, 2, 3, 7, 7, 1, 1, 3, 3, 0, 0),   # stride larger than a 1x1 kernel
    (1, 1, 2, 9, 5, 2, 3, 3, 1, 0, 2),   # stride 3 > kernel 2, non-square everything
    (2, 3, 2, 5, 5, 5, 5, 1, 1, 0, 0),   # kernel as large as the image
    (1, 2, 2, 3, 4, 5, 5, 2, 2, 2, 2),   # kernel larger than the image, fits only with padding
]


@pytest.mark.parametrize("cfg", conv_configs(25, seed=1) + CONV_EDGE_CASES)
def test_conv2d_gradients(cfg, rng):
    N, C, F, H, W, KH, KW, SH, SW, PH, PW = cfg
    layer = nc.Conv2d(C, F, (KH, KW), stride=(SH, SW), padding=(PH, PW), dtype=np.float64, rng=rng)
    layer.bias.data[:] = rng.standard_normal(F)
    check_layer_gradients(layer, rng.standard_normal((N, C, H, W)), rng)


def test_conv2d_without_bias_gradients(rng):
    layer = nc.Conv2d(2, 3, 3, stride=2, padding=1, bias=False, dtype=np.float64, rng=rng)
    assert layer.bias is None and len(layer.parameters()) == 1
    check_layer_gradients(layer, rng.standard_normal((2, 2, 6, 5)), rng)


def pool_configs(count, seed):
    r = np.random.default_rng(seed)
    configs = []
    while len(configs) < count:
        N, C = r.integers(1, 4, size=2)
        KH, KW = r.integers(1, 4, size=2)
        SH, SW = r.integers(1, 4, size=2)
        PH, PW = r.integers(0, KH // 2 + 1), r.integers(0, KW // 2 + 1)
        H, W = r.integers(3, 10, size=2)
        configs.append(tuple(int(v) for v in (N, C, H, W, KH, KW, SH, SW, PH, PW)))
    return configs


@pytest.mark.parametrize("cfg", pool_configs(25, seed=2) + [(2, 2, 8, 8, 2, 2, 2, 2, 0, 0), (1, 2, 7, 9, 3, 2, 2, 3, 1, 1)])
def test_maxpool2d_gradients(cfg, rng):
    N, C, H, W, KH, KW, SH, SW, PH, PW = cfg
    layer = nc.MaxPool2d((KH, KW), stride=(SH, SW), padding=(PH, PW))
    # Distinct values spaced well above eps, so no finite-difference step changes which entry is the max.
    x = rng.permutation(N * C * H * W).reshape(N, C, H, W) * 0.01 + rng.uniform(0, 1e-4)
    check_layer_gradients(layer, x.astype(np.float64), rng)


@pytest.mark.parametrize("shape", [(3, 7), (2, 3, 5, 4), (4, 1)])
def test_relu_gradients(shape, rng):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5            # keep clear of the kink at 0
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
    assert set(np.unique(layer._mask)) <= {0.0, np.float64(1 / 0.6)}
    assert np.allclose(out, x * layer._mask) and 0 < (layer._mask == 0).sum() < x.size
    layer.eval()
    assert layer(x) is x and layer.backward(x) is x          # identity in eval mode


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
    assert loss == pytest.approx(2e4 / 2)          # example 0 is off by 2e4, example 1 is right
    assert np.allclose(dlogits, np.array([[1, -1, 0], [0, 0, 0]]) / 2)


def test_softmax_cross_entropy_hand_worked():
    # logits (0, ln 3): softmax = (1/4, 3/4); label 1 -> loss = -ln(3/4); gradient = (1/4, -1/4).
    loss, dlogits = nc.softmax_cross_entropy(np.array([[0.0, np.log(3.0)]]), np.array([1]))
    assert loss == pytest.approx(-np.log(0.75))
    assert np.allclose(dlogits, [[0.25, -0.25]])


def stride_ignoring_kernel_gradient(x, dout, kernel):
    """The article's defect: the kernel gradient slides dout over the input without the stride."""
    KH, KW = kernel
    OH, OW = dout.shape[2:]
    dW = np.zeros((dout.shape[1], x.shape[1], KH, KW))
    for kh in range(KH):
        for kw in range(KW):
            seen = x[:, :, kh:kh + OH, kw:kw + OW]
            dW[:, :, kh, kw] = np.einsum("nfhw,nchw->fc", dout, seen)
    return dW


def test_negative_control_a_wrong_gradient_fails_the_check(rng):
    """The check has teeth: the article's stride-ignoring kernel gradient is caught."""
    layer = nc.Conv2d(2, 3, 3, stride=2, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 2, 9, 9))
    R = rng.standard_normal(layer(x).shape)
    numeric = numerical_grad(lambda: float((layer(x) * R).sum()), layer.weight.data)
    wrong = stride_ignoring_kernel_gradient(x, R, (3, 3))
    layer.zero_grad()
    layer(x)
    layer.backward(R)
    assert rel_error(layer.weight.grad, numeric) < 1e-7      # ours passes
    assert rel_error(wrong, numeric) > 0.1                   # the defect fails, far above tolerance
    # Swapping the kernel gradient's rows and columns (the article's other defect) fails too.
    swapped = layer.weight.grad.transpose(0, 1, 3, 2)
    assert rel_error(swapped, numeric) > 0.1


def test_relu_matches_max_with_zero_on_every_memory_layout(rng):
    """ReLU compares against a reused array of zeros laid out like its input: check odd layouts and reuse."""
    base = rng.standard_normal((3, 4, 5, 6))
    relu = nc.ReLU()
    for x in (base, base.transpose(3, 0, 1, 2), base[:, ::2], base[::-1], base[:, :, 1:4], base[:0],
              base.astype(np.float32).transpose(1, 2, 3, 0), base.transpose(3, 0, 1, 2)):
        out = relu(x)
        assert out.dtype == x.dtype and np.array_equal(out, np.maximum(x, 0))
        assert np.array_equal(relu.backward(np.ones_like(x)), (x > 0).astype(x.dtype))
        out[...] = 7                                      # the caller owns the output: nothing is shared
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
    out2 = conv(x2)                                       # the second forward's columns are the ones kept
    assert not np.shares_memory(out1, out2) and not np.shares_memory(out2, conv._workspace)
    dx = conv.backward(g)
    assert np.allclose(dx, dx_expected, rtol=1e-13) and np.allclose(conv.weight.grad, ref.weight.grad, rtol=1e-13)
    assert not np.shares_memory(dx, conv._workspace)
    with pytest.raises(RuntimeError, match="backward needs a forward pass in training mode first"):
        conv.backward(g)                                  # the columns were used up by the first backward
    conv(x1)
    conv.eval()(x2)                                       # an eval forward drops the training cache
    with pytest.raises(RuntimeError, match="backward needs a forward pass in training mode first"):
        conv.backward(g)
