"""Exercise: the input gradient of max-pooling, ``maxpool2d_backward(x, dout, kernel, stride) -> dx`` with x
(N, C, H, W), dout (N, C, OH, OW), square windows and no padding. Each window's gradient goes to the one input
cell that was its maximum, the first one in row-major order when several tie (as np.argmax and PyTorch pick)."""

import numpy as np

from ..nn import reference
from .checks import Verdict, call, compare, over_cases

# (N, C, H, W, K, S): ties on every case (small integers), overlapping windows (S < K) and gaps (S > K)
CASES = [
    (2, 2, 6, 6, 2, 2),
    (1, 2, 7, 5, 3, 1),
    (2, 1, 8, 9, 3, 2),
    (2, 3, 7, 7, 2, 3),
    (1, 1, 5, 5, 5, 1),
]


def loop(x, dout, K, S, pick="first", add=True, step=None):
    """Max-pool's input gradient written the ways learners write it: ``pick`` the first, last or every maximum
    of each window, or every cell of it ("window"), or share it out ("average"); ``add`` or overwrite; windows
    ``step`` pixels apart (the stride, or 1 when the stride is ignored)."""
    step = S if step is None else step
    dx = np.zeros_like(x)
    N, C, OH, OW = dout.shape
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    top, left = oh * step, ow * step
                    window = x[n, c, top : top + K, left : left + K]
                    if window.shape != (K, K):
                        return None  # this mistake's windows leave the image
                    mask = np.zeros((K, K), bool)
                    if pick == "first":
                        mask.flat[np.argmax(window)] = True
                    elif pick == "last":
                        mask.flat[window.size - 1 - np.argmax(window.ravel()[::-1])] = True
                    elif pick == "all":
                        mask = window == window.max()
                    else:
                        mask[...] = True
                    share = dout[n, c, oh, ow] / (K * K if pick == "average" else 1)
                    target = dx[n, c, top : top + K, left : left + K]
                    if add:
                        target[mask] += share
                    else:
                        target[mask] = share
    return dx


def check_maxpool2d_backward(maxpool2d_backward) -> Verdict:
    """maxpool2d_backward(x, dout, kernel, stride) -> dx (N, C, H, W), checked on CASES."""
    what = "tied maxima, overlapping windows, strides larger than the kernel"
    return over_cases(pool_case, maxpool2d_backward, CASES, "maxpool2d_backward", what)


def pool_case(maxpool2d_backward, case, seed):
    """None if maxpool2d_backward is right on this case, else the Verdict."""
    N, C, H, W, K, S = case
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, (N, C, H, W)).astype(np.float64)  # small integers: windows with tied maxima
    out, argmax = reference.maxpool2d_forward(x, (K, K), (S, S))
    dout = rng.standard_normal(out.shape)
    where = f"x of shape {(N, C, H, W)}, kernel {K}, stride {S}"
    got = call(maxpool2d_backward, "maxpool2d_backward", (x.copy(), dout.copy(), K, S), where)
    if isinstance(got, Verdict):
        return got
    expected = reference.maxpool2d_backward(x, dout, argmax, (K, K), (S, S))
    mistakes = [
        ("every cell of the window got the gradient, not only its maximum", lambda: loop(x, dout, K, S, "window")),
        (
            "the gradient was shared out over the window: that is average pooling",
            lambda: loop(x, dout, K, S, "average"),
        ),
        ("a tie: every maximum of the window got the gradient, not only the first", lambda: loop(x, dout, K, S, "all")),
        ("a tie: the last maximum got the gradient, not the first (row by row)", lambda: loop(x, dout, K, S, "last")),
        (
            "overlapping windows: a cell's gradient was overwritten instead of added to (+=)",
            lambda: loop(x, dout, K, S, add=False),
        ),
        (
            "the stride is ignored: window (oh, ow) starts at (oh * stride, ow * stride)",
            lambda: loop(x, dout, K, S, step=1),
        ),
    ]
    return compare(got, expected, mistakes, "dx", where)
