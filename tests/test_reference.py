"""The layers' array functions (nn/functional.py, and the backend behind them) equal the plain loop versions
(nn/reference.py), pair by pair.

The reference itself is checked against finite differences, so the chain is: finite differences ->
reference.py -> functional.py -> the layers, each on the same sweeps of shapes.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import nanocnn as nc
from helpers import (
    CONV_STRATEGY_CASES,
    CONV_SWEEP,
    POOL_SWEEP,
    ConvCase,
    PoolCase,
    numerical_grad,
    pool_input,
    rel_error,
)
from nanocnn.backend import conv as convolution
from nanocnn.backend import pool
from nanocnn.nn import functional as fast
from nanocnn.nn import reference as slow


def conv_pair(case, rng, dtype=np.float64, expect=None):
    """(fast results, slow results): out, dx, dweight, dbias. expect: the strategy the kernel must take."""
    x = rng.standard_normal((case.N, case.C, case.H, case.W)).astype(dtype)
    w = rng.standard_normal((case.F, case.C, case.KH, case.KW)).astype(dtype)
    b = rng.standard_normal(case.F).astype(dtype)
    stride, padding = (case.SH, case.SW), (case.PH, case.PW)
    out, cache = fast.conv2d_forward(x, w, b, stride, padding, workspace=np.empty(workspace_size(case), dtype))
    assert expect is None or cache.kind == expect, f"{case} took {cache.kind}, not {expect}"
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = fast.conv2d_backward(cache, dout)
    return (out, dx, dw, db), (slow.conv2d_forward(x, w, b, stride, padding),) + slow.conv2d_backward(
        x, w, dout, stride, padding
    )


def workspace_size(case):
    x_shape, w_shape = (case.N, case.C, case.H, case.W), (case.F, case.C, case.KH, case.KW)
    return convolution.workspace_size(x_shape, w_shape, (case.SH, case.SW), (case.PH, case.PW))


def pool_pair(case, rng, ties=False):
    """(fast, slow): out, dx. Ties (values from {0, 1, 2}) must route to the first maximum in both."""
    x = pool_input(case, rng, ties)
    kernel, stride, padding = (case.KH, case.KW), (case.SH, case.SW), (case.PH, case.PW)
    out, cache = fast.maxpool2d_forward(x, kernel, stride, padding)
    dout = rng.standard_normal(out.shape)
    rout, argmax = slow.maxpool2d_forward(x, kernel, stride, padding)
    return (
        (out, fast.maxpool2d_backward(cache, dout, kernel, stride, padding)),
        (rout, slow.maxpool2d_backward(x, dout, argmax, kernel, stride, padding)),
    )


def linear_pair(n, fin, fout, rng):
    x, w, b = rng.standard_normal((n, fin)), rng.standard_normal((fout, fin)), rng.standard_normal(fout)
    dout = rng.standard_normal((n, fout))
    return (
        (fast.linear_forward(x, w, b),) + fast.linear_backward(x, w, dout),
        (slow.linear_forward(x, w, b),) + slow.linear_backward(x, w, dout),
    )


def loss_pair(n, k, rng):
    logits, labels = rng.standard_normal((n, k)) * 5, rng.integers(0, k, n)
    return nc.softmax_cross_entropy(logits, labels), slow.softmax_cross_entropy(logits, labels)


# The table: every fast kernel beside its loop version, over the shared sweeps.
PAIRS = (
    [("conv2d", lambda rng, c=c: conv_pair(c, rng)) for c in CONV_SWEEP[:40] + CONV_SWEEP[-4:]]
    + [(f"conv2d {s}", lambda rng, c=c, s=s: conv_pair(c, rng, expect=s)) for c, s in CONV_STRATEGY_CASES]
    + [("maxpool2d", lambda rng, c=c: pool_pair(c, rng)) for c in POOL_SWEEP[:40] + POOL_SWEEP[-2:]]
    + [("maxpool2d ties", lambda rng, c=c: pool_pair(c, rng, ties=True)) for c in POOL_SWEEP[:40]]
    + [("linear", lambda rng, s=s: linear_pair(*s, rng)) for s in [(1, 3, 2), (6, 10, 4), (5, 1, 7)]]
    + [("softmax_cross_entropy", lambda rng, s=s: loss_pair(*s, rng)) for s in [(9, 6), (1, 2), (4, 10)]]
)


@pytest.mark.parametrize("name, pair", PAIRS, ids=[f"{name}-{i}" for i, (name, _) in enumerate(PAIRS)])
def test_fast_kernel_equals_its_loop_version(name, pair, rng):
    fast_results, slow_results = pair(rng)
    assert len(fast_results) == len(slow_results)
    for a, b in zip(fast_results, slow_results):
        assert np.shape(a) == np.shape(b)
        # overlapping windows add in another order: rounding only
        assert rel_error(a, b) < 1e-12, name
    if name.startswith("maxpool2d"):
        (_, dx), (_, rdx) = fast_results, slow_results
        assert np.array_equal(dx != 0, rdx != 0)  # the same pixel of each window gets the gradient


def test_the_table_reaches_every_conv_strategy_and_its_cases_take_the_written_one():
    """A dispatch bug cannot hide: the strategies are written beside the cases, not derived from strategy()."""
    cases = [c for c, _ in CONV_STRATEGY_CASES]
    taken = [convolution.strategy(c.C, (c.KH, c.KW), (c.SH, c.SW)) for c in cases]
    assert taken == [s for _, s in CONV_STRATEGY_CASES]
    names = [name for name, _ in PAIRS]
    for s in (convolution.IM2COL, convolution.ROWS, convolution.SPACE_TO_DEPTH):
        assert names.count(f"conv2d {s}") >= 4
    swept = [convolution.strategy(c.C, (c.KH, c.KW), (c.SH, c.SW)) for c in CONV_SWEEP[:40] + CONV_SWEEP[-4:]]
    assert {convolution.IM2COL, convolution.ROWS, convolution.SPACE_TO_DEPTH} <= set(swept)


FORWARD_ONLY_CASES = [c for c in CONV_SWEEP + [c for c, _ in CONV_STRATEGY_CASES] if (c.SH, c.SW) == (1, 1)]


@pytest.mark.parametrize("case", FORWARD_ONLY_CASES, ids=str)
def test_forward_only_convolution_equals_the_loops_and_the_training_forward(case, rng):
    """Inference's forward-only strategy (slabs at stride 1) against reference.py, in float64 and float32;
    it is taken for every kernel larger than 1x1, and needs only the workspace it sizes."""
    stride, padding = (case.SH, case.SW), (case.PH, case.PW)
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-5)):
        x = rng.standard_normal((case.N, case.C, case.H, case.W)).astype(dtype)
        w = rng.standard_normal((case.F, case.C, case.KH, case.KW)).astype(dtype)
        b = rng.standard_normal(case.F).astype(dtype)
        size = convolution.workspace_size(x.shape, w.shape, stride, padding, backward=False)
        workspace = np.full(size + 1, np.nan, dtype)[:size]  # no value of it may leak into the output
        out, cache = fast.conv2d_forward(x, w, b, stride, padding, workspace, backward=False)
        assert cache.kind == (convolution.SLABS if case.KH * case.KW > 1 else convolution.IM2COL)
        assert out.dtype == dtype and rel_error(out, slow.conv2d_forward(x, w, b, stride, padding)) < tolerance
        trained, _ = fast.conv2d_forward(x, w, b, stride, padding)
        assert rel_error(out, trained) < tolerance


@pytest.mark.parametrize(
    "padding, kernel_rows", [((2, 1), [3, 4, 5, 5, 5, 5, 5, 5, 5, 4, 3]), ((5, 0), [0, 1, 1, 1, 1, 1, 0])]
)
def test_slabs_multiply_only_the_kernel_rows_that_meet_the_image(padding, kernel_rows, rng):
    """Each output row's product leaves out the kernel rows that see only zero padding (a row that sees
    nothing else is zeros, with the bias); the numbers are the loops' all the same."""
    H = 11 if padding[0] == 2 else 1
    x = rng.standard_normal((5, 3, H, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 5, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out, cache = fast.conv2d_forward(x, w, b, (1, 1), padding, backward=False)
    assert cache.kind == convolution.SLABS
    per_row = [0 if slabs is None else slabs.shape[1] // (3 * 3) for out, _, slabs in cache.runs for _ in out]
    assert per_row == kernel_rows
    for rows, w_cols, slabs in cache.runs:  # a run's batched product is each of its rows' own product
        for k in range(len(rows)):
            alone = np.zeros_like(rows[k]) if w_cols is None else np.matmul(w_cols, slabs[k])
            assert np.array_equal(rows[k], alone + b[:, None])
    assert rel_error(out, slow.conv2d_forward(x, w, b, (1, 1), padding)) < 1e-5
    with pytest.raises(ValueError, match="without backward"):
        fast.conv2d_backward(cache, np.ones_like(out))


@pytest.mark.parametrize("case, expect", CONV_STRATEGY_CASES, ids=lambda v: str(v))
def test_every_conv_strategy_in_float32(case, expect, rng):
    """The float32 kernels agree with the float64 loops to float32 rounding."""
    fast_results, slow_results = conv_pair(case, rng, np.float32, expect)
    for a, b in zip(fast_results, slow_results):
        assert a.dtype == np.float32 and rel_error(a, b) < 1e-5


@given(
    N=st.integers(1, 3),
    C=st.integers(1, 3),
    F=st.integers(1, 4),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    KH=st.integers(1, 5),
    KW=st.integers(1, 5),
    SH=st.integers(1, 4),
    SW=st.integers(1, 4),
    PH=st.integers(0, 2),
    PW=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_conv2d_equals_its_loop_version_on_generated_shapes(N, C, F, H, W, KH, KW, SH, SW, PH, PW, seed):
    assume(H + 2 * PH >= KH and W + 2 * PW >= KW)  # the kernel fits the padded input
    fast_results, slow_results = conv_pair(ConvCase(N, C, F, H, W, KH, KW, SH, SW, PH, PW), np.random.default_rng(seed))
    assert max(rel_error(a, b) for a, b in zip(fast_results, slow_results)) < 1e-12


@given(
    N=st.integers(1, 3),
    C=st.integers(1, 3),
    H=st.integers(1, 11),
    W=st.integers(1, 11),
    KH=st.integers(1, 4),
    KW=st.integers(1, 4),
    SH=st.integers(1, 4),
    SW=st.integers(1, 4),
    ties=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_maxpool2d_equals_its_loop_version_on_generated_shapes(N, C, H, W, KH, KW, SH, SW, ties, seed):
    rng = np.random.default_rng(seed)
    PH, PW = int(rng.integers(0, KH // 2 + 1)), int(rng.integers(0, KW // 2 + 1))
    assume(H + 2 * PH >= KH and W + 2 * PW >= KW)
    (out, dx), (rout, rdx) = pool_pair(PoolCase(N, C, H, W, KH, KW, SH, SW, PH, PW), rng, ties)
    assert np.array_equal(out, rout) and rel_error(dx, rdx) < 1e-12 and np.array_equal(dx != 0, rdx != 0)


@pytest.mark.parametrize("case", CONV_SWEEP[:8] + CONV_SWEEP[-4:-2], ids=str)
def test_reference_conv2d_against_finite_differences(case, rng):
    x = rng.standard_normal((case.N, case.C, case.H, case.W))
    w, b = rng.standard_normal((case.F, case.C, case.KH, case.KW)), rng.standard_normal(case.F)
    stride, padding = (case.SH, case.SW), (case.PH, case.PW)
    R = rng.standard_normal(slow.conv2d_forward(x, w, b, stride, padding).shape)
    loss = lambda: float((slow.conv2d_forward(x, w, b, stride, padding) * R).sum())  # noqa: E731
    dx, dw, db = slow.conv2d_backward(x, w, R, stride, padding)
    for analytic, wrt in ((dx, x), (dw, w), (db, b)):
        assert rel_error(analytic, numerical_grad(loss, wrt)) < 1e-7


@pytest.mark.parametrize("case", POOL_SWEEP[:8], ids=str)
def test_reference_maxpool2d_against_finite_differences(case, rng):
    x = pool_input(case, rng)
    kernel, stride, padding = (case.KH, case.KW), (case.SH, case.SW), (case.PH, case.PW)
    out, argmax = slow.maxpool2d_forward(x, kernel, stride, padding)
    R = rng.standard_normal(out.shape)
    loss = lambda: float((slow.maxpool2d_forward(x, kernel, stride, padding)[0] * R).sum())  # noqa: E731
    assert rel_error(slow.maxpool2d_backward(x, R, argmax, kernel, stride, padding), numerical_grad(loss, x)) < 1e-7


def test_maxpool2d_all_equal_window_routes_to_the_first_element():
    x = np.ones((1, 1, 2, 2))
    layer = nc.MaxPool2d(2)
    layer(x)
    assert np.array_equal(layer.backward(np.array([[[[5.0]]]])), [[[[5.0, 0.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("case", CONV_SWEEP[:10], ids=str)
def test_the_conv_layer_is_its_kernel(case, rng):
    """Conv2d is check + kernel + cache: its forward and gradients are the kernel's, to the bit."""
    layer = nc.Conv2d(
        case.C, case.F, (case.KH, case.KW), (case.SH, case.SW), (case.PH, case.PW), dtype=np.float64, rng=rng
    )
    x = rng.standard_normal((case.N, case.C, case.H, case.W))
    out = layer(x)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    (rout, rdx, rdw, rdb), _ = conv_pair_with(layer, x, dout)
    assert np.array_equal(out, rout) and np.array_equal(dx, rdx)
    assert np.array_equal(layer.weight.grad, rdw) and np.array_equal(layer.bias.grad, rdb)


def conv_pair_with(layer, x, dout):
    out, cache = fast.conv2d_forward(x, layer.weight.data, layer.bias.data, layer.stride, layer.padding)
    return (out,) + fast.conv2d_backward(cache, dout), None


@pytest.mark.parametrize("case, expect", CONV_STRATEGY_CASES, ids=lambda v: str(v))
def test_the_conv_layer_is_its_kernel_in_every_strategy(case, expect, rng):
    """Training forward and backward through the layer's own workspace equal the kernel's, to the bit."""
    layer = nc.Conv2d(
        case.C, case.F, (case.KH, case.KW), (case.SH, case.SW), (case.PH, case.PW), dtype=np.float64, rng=rng
    )
    x = rng.standard_normal((case.N, case.C, case.H, case.W))
    out = layer(x)
    assert layer._cache.kind == expect
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    (rout, rdx, rdw, rdb), _ = conv_pair_with(layer, x, dout)
    assert np.array_equal(out, rout) and np.array_equal(dx, rdx)
    assert np.array_equal(layer.weight.grad, rdw) and np.array_equal(layer.bias.grad, rdb)


TILE_CASES = [
    PoolCase(3, 2, 8, 8, 2, 2, 2, 2, 0, 0),
    PoolCase(2, 3, 9, 7, 2, 2, 2, 2, 0, 0),  # cropped: the last row and column are in no window
    PoolCase(2, 2, 9, 12, 3, 3, 3, 3, 0, 0),
    PoolCase(1, 2, 8, 9, 2, 3, 2, 3, 0, 0),  # non-square windows
    PoolCase(2, 1, 5, 6, 1, 2, 1, 2, 0, 0),  # one row per window
    PoolCase(2, 2, 7, 5, 3, 1, 3, 1, 0, 0),  # one column per window
    PoolCase(2, 2, 4, 4, 1, 1, 1, 1, 0, 0),  # 1x1: a copy
    PoolCase(1, 1, 4, 8, 4, 4, 4, 4, 0, 0),
]


@pytest.mark.parametrize("case", TILE_CASES, ids=str)
@pytest.mark.parametrize("ties", [False, True])
def test_maxpool2d_tiles_fast_path_equals_the_general_path_to_the_bit(case, ties, rng, monkeypatch):
    """Windows that tile the input (kernel == stride, no padding) take the reshape path; ties to the first max."""
    kernel, stride, padding = (case.KH, case.KW), (case.SH, case.SW), (case.PH, case.PW)
    assert pool.windows_tile(kernel, stride, padding)
    x = pool_input(case, rng, ties)
    if ties:
        x[:, :, : case.KH, : case.KW] = 1.0  # a window of equal values: the first one takes the gradient
    out, cache = fast.maxpool2d_forward(x, kernel, stride, padding)
    dout = rng.standard_normal(out.shape)
    dx = fast.maxpool2d_backward(cache, dout, kernel, stride, padding)
    rout, argmax = slow.maxpool2d_forward(x, kernel, stride, padding)
    assert np.array_equal(out, rout)
    assert np.array_equal(dx, slow.maxpool2d_backward(x, dout, argmax, kernel, stride, padding))
    monkeypatch.setattr(pool, "windows_tile", lambda *args: False)  # the general path, on the same input
    gout, gcache = fast.maxpool2d_forward(x, kernel, stride, padding)
    gdx = fast.maxpool2d_backward(gcache, dout, kernel, stride, padding)
    assert np.array_equal(out, gout) and np.array_equal(dx, gdx)
    assert out.tobytes() == gout.tobytes() and dx.tobytes() == gdx.tobytes()


def test_maxpool2d_tiles_keeps_a_nan_window_without_gradient():
    """As the general path: a window holding NaN pools to NaN and passes no gradient (no offset equals NaN)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 1, 1] = np.nan
    layer = nc.MaxPool2d(2)
    out = layer(x)
    dx = layer.backward(np.ones_like(out))
    assert np.isnan(out[0, 0, 0, 0]) and not dx[0, 0, :2, :2].any() and dx[0, 0, 3, 3] == 1
