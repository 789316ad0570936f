"""Shared test helpers: the shape sweeps, finite differences, relative error, small networks and data files."""

import gzip
import struct
from collections import namedtuple

import numpy as np

import nanocnn as nc

ConvCase = namedtuple("ConvCase", "N C F H W KH KW SH SW PH PW")  # one conv layer's input and geometry
PoolCase = namedtuple("PoolCase", "N C H W KH KW SH SW PH PW")  # one max-pool layer's


def conv_sweep(count, seed=1):
    """Seeded conv configurations: batch, channels, square and non-square kernels, stride 1-4 (also larger
    than the kernel), padding 0-2, odd image sizes; every one fits. The same sweep (a prefix of it) feeds the
    finite-difference, reference and PyTorch checks."""
    r = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        N, C, F = (int(v) for v in r.integers(1, 4, size=3))
        KH, KW = (int(v) for v in r.integers(1, 6, size=2))
        SH, SW = (int(v) for v in r.integers(1, 5, size=2))
        PH, PW = (int(v) for v in r.integers(0, 3, size=2))
        H, W = (int(v) for v in r.integers(1, 12, size=2))
        if H + 2 * PH >= KH and W + 2 * PW >= KW:
            cases.append(ConvCase(N, C, F, H, W, KH, KW, SH, SW, PH, PW))
    return cases


CONV_EDGE_CASES = [
    ConvCase(2, 2, 3, 7, 7, 1, 1, 3, 3, 0, 0),  # stride larger than a 1x1 kernel
    ConvCase(1, 1, 2, 9, 5, 2, 3, 3, 1, 0, 2),  # stride 3 > kernel 2, non-square everything
    ConvCase(2, 3, 2, 5, 5, 5, 5, 1, 1, 0, 0),  # kernel as large as the image
    ConvCase(1, 2, 2, 3, 4, 5, 5, 2, 2, 2, 2),  # kernel larger than the image, fits only with padding
]


def pool_sweep(count, seed=2):
    """Seeded max-pool configurations (padding at most half the kernel, as PyTorch allows)."""
    r = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        N, C = (int(v) for v in r.integers(1, 4, size=2))
        KH, KW, SH, SW = (int(v) for v in r.integers(1, 5, size=4))
        PH, PW = int(r.integers(0, KH // 2 + 1)), int(r.integers(0, KW // 2 + 1))
        H, W = (int(v) for v in r.integers(1, 12, size=2))
        if H + 2 * PH >= KH and W + 2 * PW >= KW:
            cases.append(PoolCase(N, C, H, W, KH, KW, SH, SW, PH, PW))
    return cases


POOL_EDGE_CASES = [PoolCase(2, 2, 8, 8, 2, 2, 2, 2, 0, 0), PoolCase(1, 2, 7, 9, 3, 2, 2, 3, 1, 1)]

# Each convolution strategy (convolution.py) on its own cases, with the strategy each must take written out,
# so that a dispatch bug cannot hide: the main sweep reaches kernel rows (stride 1, C > 1) only rarely.
CONV_STRATEGY_CASES = [
    (ConvCase(2, 3, 2, 7, 6, 3, 3, 1, 1, 1, 1), "kernel rows"),
    (ConvCase(3, 2, 4, 8, 5, 5, 5, 1, 1, 2, 2), "kernel rows"),  # the default preset's second conv, small
    (ConvCase(1, 4, 3, 6, 9, 2, 4, 1, 1, 0, 2), "kernel rows"),  # non-square kernel and padding
    (ConvCase(2, 2, 1, 5, 5, 5, 5, 1, 1, 0, 0), "kernel rows"),  # kernel as large as the image
    (ConvCase(1, 3, 2, 2, 3, 4, 2, 1, 1, 1, 0), "kernel rows"),  # kernel larger than the image
    (ConvCase(2, 2, 3, 6, 4, 3, 1, 1, 1, 2, 1), "kernel rows"),  # one kernel column
    (ConvCase(2, 3, 2, 9, 9, 4, 4, 2, 2, 0, 0), "space to depth"),  # the article's second conv, small
    (ConvCase(1, 2, 3, 10, 7, 3, 3, 2, 2, 1, 1), "space to depth"),  # kernel not a multiple of the stride
    (ConvCase(2, 2, 2, 11, 8, 5, 3, 3, 2, 2, 0), "space to depth"),  # different strides and paddings
    (ConvCase(1, 3, 2, 8, 8, 2, 2, 2, 2, 0, 0), "space to depth"),  # stride == kernel
    (ConvCase(2, 2, 2, 7, 9, 1, 4, 1, 3, 0, 1), "space to depth"),  # stride 1 along H only
    (ConvCase(1, 2, 2, 3, 3, 5, 5, 2, 2, 2, 2), "space to depth"),  # input smaller than the kernel
    (ConvCase(2, 1, 3, 9, 8, 3, 3, 1, 1, 1, 1), "im2col"),  # one input channel
    (ConvCase(2, 1, 2, 9, 9, 4, 4, 2, 2, 0, 0), "im2col"),  # one channel, strided
    (ConvCase(2, 3, 2, 6, 6, 1, 1, 1, 1, 0, 0), "im2col"),  # 1x1 kernel
    (ConvCase(2, 2, 2, 9, 9, 2, 2, 3, 3, 1, 0), "im2col"),  # stride larger than the kernel
]

CONV_SWEEP = conv_sweep(200) + CONV_EDGE_CASES  # PyTorch: all; reference: the first 40; finite differences: 25
POOL_SWEEP = pool_sweep(200) + POOL_EDGE_CASES


def conv_layer(case, rng, dtype=np.float64):
    layer = nc.Conv2d(
        case.C, case.F, (case.KH, case.KW), stride=(case.SH, case.SW), padding=(case.PH, case.PW), dtype=dtype, rng=rng
    )
    layer.bias.data[:] = rng.standard_normal(case.F)
    return layer


def pool_layer(case):
    return nc.MaxPool2d((case.KH, case.KW), stride=(case.SH, case.SW), padding=(case.PH, case.PW))


def pool_input(case, rng, ties=False):
    """Distinct values spaced well above a finite-difference step, or (ties) values from {0, 1, 2}."""
    shape = (case.N, case.C, case.H, case.W)
    if ties:
        return rng.integers(0, 3, shape).astype(np.float64)
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.01 + rng.uniform(0, 1e-4)


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

    Returns the worst relative error; raises AssertionError when it is not below tol.
    """
    layer.train()
    R = rng.standard_normal(layer(x).shape)
    loss = lambda: float((layer(x) * R).sum())  # noqa: E731
    layer.zero_grad()
    layer(x)
    dx = layer.backward(R.copy())
    worst = rel_error(dx, numerical_grad(loss, x))
    for _, p in layer.named_parameters():
        worst = max(worst, rel_error(p.grad, numerical_grad(loss, p.data)))
    assert worst < tol, f"{layer!r}: relative error {worst:.2e}"
    return worst


def small_net(rng, dtype=np.float64, dropout=0.0, classes=5):
    """conv-relu-pool-conv(stride 2)-relu-dropout-flatten-linear for (N, 1, 10, 10) inputs."""
    return nc.Sequential(
        nc.Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng),
        nc.ReLU(),
        nc.MaxPool2d(2),
        nc.Conv2d(4, 6, 3, stride=2, dtype=dtype, rng=rng),
        nc.ReLU(),
        nc.Dropout(dropout, rng=rng),
        nc.Flatten(),
        nc.Linear(6 * 2 * 2, classes, dtype=dtype, rng=rng),
    )


def batch(rng, n, dtype=np.float64, classes=5):
    """Images (n, 1, 10, 10) and labels (n,) for small_net."""
    return rng.standard_normal((n, 1, 10, 10)).astype(dtype), rng.integers(0, classes, n)


def write_idx(path, array, type_byte=0x08, gz=False):
    """Write ``array`` as an IDX file: magic (0, 0, type, rank), big-endian uint32 sizes, then the data."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[type_byte]
    raw = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += np.asarray(array, dtype=dtype).tobytes()
    with (gzip.open if gz else open)(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(raw)


def write_idx_folder(folder, train_x, train_y, test_x, test_y, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (
        ("train-images-idx3-ubyte", train_x),
        ("train-labels-idx1-ubyte", train_y),
        ("t10k-images-idx3-ubyte", test_x),
        ("t10k-labels-idx1-ubyte", test_y),
    ):
        write_idx(folder / name, array, gz=gz)
    return folder


def random_dataset(rng, n_train=40, n_test=20, shape=(12, 10), classes=3):
    """uint8 images whose class is written into their brightness, so a model can learn them."""

    def make(n):
        labels = rng.integers(0, classes, n).astype(np.uint8)
        images = rng.integers(0, 60, (n,) + shape).astype(np.uint8)
        images[:, : shape[0] // 2] += (labels * 60).astype(np.uint8).reshape((n,) + (1,) * len(shape))
        return images, labels

    return make(n_train) + make(n_test)


def write_npz(path, train_x, train_y, test_x, test_y, **extra):
    np.savez(path, trainimages=train_x, trainlabels=train_y, testimages=test_x, testlabels=test_y, **extra)
    return path


def train_run(out, *options):
    """Train through the real CLI into the run folder ``out`` (no progress bar); returns ``out``."""
    from nanocnn.cli import main

    assert main(["train", *map(str, options), "--no-progress", "--out", str(out)]) == 0
    return out
