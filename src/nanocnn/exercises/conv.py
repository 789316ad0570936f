"""Exercises on convolution: the output size, the forward pass with stride and padding, and the backward pass.

The learner's functions take ints for stride and padding (the same along rows and columns):
``output_size(size, kernel, stride, padding) -> int``, ``conv2d(x, weight, bias, stride, padding) -> out`` and
``conv2d_backward(x, weight, dout, stride, padding) -> (dx, dweight, dbias)``, with x (N, C, H, W), weight
(F, C, K, K), bias (F,), out and dout (N, F, OH, OW), as in nanocnn.nn.reference.
"""

import numpy as np

from ..nn import reference
from ..nn.functional import conv_output_size, output_hw
from .checks import Verdict, as_array, call, compare, over_cases, right

# (N, C, F, H, W, K, S, P): stride 1 first, so a mistake that only shows with a stride is named as such
CASES = [
    (2, 1, 2, 7, 7, 3, 1, 0),
    (2, 2, 3, 8, 6, 3, 1, 1),
    (2, 2, 3, 8, 6, 3, 2, 1),
    (1, 3, 2, 9, 7, 4, 2, 0),
    (2, 2, 2, 7, 9, 2, 3, 2),
    (1, 1, 1, 5, 6, 5, 1, 2),
    (3, 2, 4, 6, 6, 1, 2, 0),
]


def arrays(case, seed):
    N, C, F, H, W, K, S, P = case
    rng = np.random.default_rng(seed)
    x, weight, bias = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, K, K)), rng.standard_normal(F)
    return x, weight, bias


def describe(case):
    N, C, F, H, W, K, S, P = case
    return f"x of shape {(N, C, H, W)}, {F} filters {K}x{K}, stride {S}, padding {P}"


def padded(x, top, bottom, left, right):
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def forward(x, weight, bias, S, P):
    return reference.conv2d_forward(x, weight, bias, (S, S), (P, P))


def check_output_size(output_size) -> Verdict:
    """output_size(size, kernel, stride, padding) -> the number of window positions along one axis."""
    cases = [
        (H, K, S, P) for H in range(1, 13) for K in range(1, 6) for S in range(1, 5) for P in range(3) if H + 2 * P >= K
    ]
    formulas = [
        ("forgot the + 1: a window fits at position 0 too", lambda H, K, S, P: (H + 2 * P - K) // S),
        ("counted the padding once: it is added on both sides, 2 * padding", lambda H, K, S, P: (H + P - K) // S + 1),
        ("ignored the stride: the window moves stride pixels at a time", lambda H, K, S, P: H + 2 * P - K + 1),
        ("added the kernel size instead of subtracting it", lambda H, K, S, P: (H + 2 * P + K) // S + 1),
    ]
    got = []
    for H, K, S, P in cases:
        value = call(output_size, "output_size", (H, K, S, P), f"size {H}, kernel {K}, stride {S}, padding {P}")
        if isinstance(value, Verdict):
            return value
        if not float(value).is_integer():
            return Verdict(
                False,
                f"output_size({H}, {K}, {S}, {P}) returned {value}, not a whole number: use // (a window either "
                "fits or it does not)",
            )
        got.append(int(value))
    expected = [conv_output_size(*case) for case in cases]
    if got == expected:
        return right("output_size", len(cases), "sizes 1-12, kernels 1-5, strides 1-4, padding 0-2")
    for sentence, formula in formulas:
        if got == [formula(*case) for case in cases]:
            return Verdict(False, f"output_size: {sentence}")
    i = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
    return Verdict(False, f"output_size{cases[i]} returned {got[i]}, expected {expected[i]}")


def check_conv2d_forward(conv2d) -> Verdict:
    """conv2d(x, weight, bias, stride, padding) -> out (N, F, OH, OW), checked on CASES."""
    return over_cases(forward_case, conv2d, CASES, "conv2d", "strides 1-3, padding 0-2, kernels 1-5, non-square images")


def forward_case(conv2d, case, seed):
    """None if conv2d is right on this case, else the Verdict."""
    N, C, F, H, W, K, S, P = case
    x, weight, bias = arrays(case, seed)
    where = describe(case)
    got = call(conv2d, "conv2d", (x.copy(), weight.copy(), bias.copy(), S, P), where)
    if isinstance(got, Verdict):
        return got
    expected = forward(x, weight, bias, S, P)
    OH, OW = expected.shape[2:]
    mistakes = [
        ("the stride is ignored: the window moves one pixel at a time", lambda: forward(x, weight, bias, 1, P)),
        ("the padding is ignored", lambda: forward(x, weight, bias, S, 0)),
        (
            "padding on one side only: pad P rows and columns on every side",
            lambda: forward(padded(x, P, 0, P, 0), weight, bias, S, 0),
        ),
        (
            "padding on one side only: pad P rows and columns on every side",
            lambda: forward(padded(x, 2 * P, 0, 2 * P, 0), weight, bias, S, 0),
        ),
        (
            "the kernel is flipped: a CNN layer slides the kernel as it is (cross-correlation), not turned "
            "by 180 degrees",
            lambda: forward(x, weight[:, :, ::-1, ::-1], bias, S, P),
        ),
        ("rows and columns of the kernel are swapped", lambda: forward(x, weight.swapaxes(2, 3), bias, S, P)),
        ("the bias is missing", lambda: forward(x, weight, np.zeros_like(bias), S, P)),
        (
            f"one output row and column short: there are (H + 2P - K) // S + 1 = {OH} rows, with the + 1",
            lambda: expected[:, :, :-1, :-1],
        ),
    ]
    return compare(got, expected, mistakes, "conv2d's output", where)


def kernel_gradient_without_stride(x, weight, dout, P):
    """The article's defect: weight (kh, kw) paired with the input at (oh + kh, ow + kw), as if the stride were 1."""
    F, C, K, _ = weight.shape
    xp = padded(x, P, P, P, P)
    OH, OW = dout.shape[2:]
    dweight = np.zeros_like(weight)
    for kh in range(K):
        for kw in range(K):
            seen = xp[:, :, kh : kh + OH, kw : kw + OW]
            dweight[:, :, kh, kw] = np.einsum("nfhw,nchw->fc", dout, seen)
    return dweight


def check_conv2d_backward(conv2d_backward) -> Verdict:
    """conv2d_backward(x, weight, dout, stride, padding) -> (dx, dweight, dbias), checked on CASES."""
    what = "dx, dweight and dbias; strides 1-3, padding 0-2"
    return over_cases(backward_case, conv2d_backward, CASES, "conv2d_backward", what)


def backward_case(conv2d_backward, case, seed):
    """None if conv2d_backward is right on this case, else the Verdict."""
    N, C, F, H, W, K, S, P = case
    x, weight, _ = arrays(case, seed)
    where = describe(case)
    dout = np.random.default_rng(100 + seed).standard_normal((N, F) + output_hw((H, W), (K, K), (S, S), (P, P)))
    got = call(conv2d_backward, "conv2d_backward", (x.copy(), weight.copy(), dout.copy(), S, P), where)
    if isinstance(got, Verdict):
        return got
    if not (isinstance(got, tuple | list) and len(got) == 3):
        return Verdict(False, f"conv2d_backward should return three arrays (dx, dweight, dbias) ({where})")
    dx, dweight, dbias = reference.conv2d_backward(x, weight, dout, (S, S), (P, P))
    checks = [
        (
            "dx",
            got[0],
            dx,
            [
                (
                    "the kernel is flipped in the input gradient",
                    lambda: reference.conv2d_backward(x, weight[:, :, ::-1, ::-1], dout, (S, S), (P, P))[0],
                ),
                ("the padding border was not cropped off", lambda: padded(dx, P, P, P, P) if P else None),
            ],
        ),
        (
            "dweight",
            got[1],
            dweight,
            [
                (
                    "the stride is ignored in the kernel gradient (the article's defect): weight (kh, kw) met "
                    "the input at (oh * stride + kh, ow * stride + kw)",
                    lambda: kernel_gradient_without_stride(x, weight, dout, P),
                ),
                ("the kernel gradient is flipped", lambda: dweight[:, :, ::-1, ::-1]),
                ("the kernel gradient is averaged over the batch instead of summed", lambda: dweight / N),
            ],
        ),
        (
            "dbias",
            got[2],
            dbias,
            [
                (
                    "the bias gradient is zero: the bias was added at every output position, so dbias[f] is the "
                    "sum of dout[:, f] (the article's biases never trained)",
                    lambda: np.zeros_like(dbias),
                ),
                ("the bias gradient counts the first example only", lambda: dout[0].sum(axis=(1, 2))),
                ("the bias gradient is a mean, not a sum", lambda: dout.mean(axis=(0, 2, 3))),
            ],
        ),
    ]
    for name, answer, expected, mistakes in checks:
        if isinstance(answer := as_array(answer, name, where), Verdict):
            return answer
        verdict = compare(answer, expected, mistakes, name, where)
        if verdict is not None:
            return verdict
    return None
