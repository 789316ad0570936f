"""Datasets: the bundled MNIST, .npz and IDX loaders, validation, scaling to float32, and batching.

Every image array leaves this module as float32 (N, C, H, W) in [0, 1], scaled in one place
(``to_float``); every label array as int64 (N,) in [0, num_classes).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ..io.files import read_npz
from ..validation import UserError, check_int

NPZ_KEYS = ("trainimages", "trainlabels", "testimages", "testlabels")
IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# IDX type byte -> element dtype (multi-byte types are big-endian).
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


@dataclass
class Split:
    """images : float32 (N, C, H, W) in [0, 1]; labels : int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray


@dataclass
class Dataset:
    train: Split
    test: Split
    num_classes: int
    source: str

    @property
    def input_shape(self):
        """One image's shape (C, H, W)."""
        return self.test.images.shape[1:]


def bundled_path():
    """Path of the full MNIST shipped inside the package."""
    return str(resources.files("nanocnn.data") / "mnist.npz")


def read_idx(path):
    """Read one IDX file (raw or .gz): a magic number (0, 0, type, rank), rank big-endian uint32 sizes, data."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise UserError(f"{path} is not an IDX file (magic bytes {raw[:4].hex() or 'missing'})")
    dtype, rank = IDX_TYPES[raw[2]], raw[3]
    if len(raw) < 4 + 4 * rank:
        raise UserError(f"{path} is truncated inside its header ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=rank, offset=4))
    expected = 4 + 4 * rank + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise UserError(f"{path} has {len(raw)} bytes, but its header {shape} needs {expected}")
    return np.frombuffer(raw, dtype, offset=4 + 4 * rank).reshape(shape)


def find_idx(folder, name):
    for candidate in (name, name + ".gz", name.replace("-idx", ".idx"), name.replace("-idx", ".idx") + ".gz"):
        if os.path.isfile(os.path.join(folder, candidate)):
            return os.path.join(folder, candidate)
    raise UserError(f"IDX folder {folder} lacks {name} (or {name}.gz)")


def read_raw(path):
    """(trainimages, trainlabels, testimages, testlabels) as stored, from an .npz or a folder of IDX files."""
    if os.path.isdir(path):
        return tuple(read_idx(find_idx(path, name)) for name in IDX_FILES)
    if not os.path.exists(path):
        raise UserError(f"data not found: {path}")
    arrays = read_npz(path, "data file", NPZ_KEYS)
    return tuple(arrays[k] for k in NPZ_KEYS)


def to_float(images, name):
    """uint8 (N, H, W) or (N, H, W, C), or floats in [0, 1] -> float32 (N, C, H, W) in [0, 1]."""
    if images.ndim not in (3, 4):
        raise UserError(f"{name} must have rank 3 (N, H, W) or 4 (N, H, W, C), got shape {images.shape}")
    if images.shape[0] == 0 or images.size == 0:
        raise UserError(f"{name} holds no images (shape {images.shape})")
    if images.dtype == np.uint8:
        out = images.astype(np.float32)
        out /= 255
    elif np.issubdtype(images.dtype, np.floating):
        bad = ~np.isfinite(images)
        if bad.any():
            raise UserError(
                f"{name} has {int(bad.sum())} NaN or infinite pixels (first at index "
                f"{np.unravel_index(np.argmax(bad), images.shape)})"
            )
        lo, hi = float(images.min()), float(images.max())
        if lo < 0 or hi > 1:
            raise UserError(f"{name} are floats outside [0, 1] (min {lo}, max {hi}); scale them or store uint8")
        out = images.astype(np.float32)
    else:
        raise UserError(f"{name} must be uint8 or floating point in [0, 1], got dtype {images.dtype}")
    out = out[:, None] if out.ndim == 3 else out.transpose(0, 3, 1, 2)  # (N, C, H, W)
    return np.ascontiguousarray(out)


def to_labels(labels, n, name, num_classes=None):
    """Integer-valued labels (N,) -> int64, checked against the image count and the class count."""
    if labels.ndim != 1:
        raise UserError(f"{name} must have rank 1 (N,), got shape {labels.shape}")
    if labels.shape[0] != n:
        raise UserError(f"{name} has {labels.shape[0]} labels but there are {n} images")
    if np.issubdtype(labels.dtype, np.floating):
        fractional = ~np.isfinite(labels) | (labels != np.round(labels))
        if fractional.any():
            raise UserError(f"{name} must be whole numbers, got {labels[fractional][0]}")
    elif not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{name} must be integers, got dtype {labels.dtype}")
    out = labels.astype(np.int64)
    if out.min() < 0:
        raise UserError(f"{name} must be >= 0, got {out.min()}")
    if num_classes is not None and out.max() >= num_classes:
        raise UserError(
            f"{name} has label {out.max()}, but there are only {num_classes} classes (0..{num_classes - 1})"
        )
    return out


def limited(array, limit, name):
    """The first ``limit`` entries (all of them when limit is None)."""
    if limit is None:
        return array
    return array[: check_int(limit, name, 1)]


def load_dataset(
    path: str | os.PathLike | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    num_classes: int | None = None,
    with_train: bool = True,
) -> Dataset:
    """Load, validate and scale a dataset; path None means the bundled MNIST.

    num_classes is read from the training labels (max + 1) unless given (e.g. by a trained model).
    With with_train=False only the test split is prepared (train is None; num_classes is required).
    Raises UserError naming the problem and the value.
    """
    path = bundled_path() if path is None else os.fspath(path)
    train_x, train_y, test_x, test_y = read_raw(path)
    for name, images, labels in (("training", train_x, train_y), ("test", test_x, test_y)):
        if images.ndim >= 1 and labels.ndim >= 1 and images.shape[0] != labels.shape[0]:
            raise UserError(f"{path}: {images.shape[0]} {name} images but {labels.shape[0]} {name} labels")
    train, classes = None, num_classes
    if with_train:
        train_x, train_y = limited(train_x, limit_train, "limit-train"), limited(train_y, limit_train, "limit-train")
        train = Split(to_float(train_x, "training images"), None)
        train.labels = to_labels(train_y, len(train.images), "training labels", num_classes)
        classes = num_classes or int(train.labels.max()) + 1
        if classes < 2:
            raise UserError(f"training labels must span at least 2 classes, got only class {classes - 1}")
    test_x, test_y = limited(test_x, limit_test, "limit-test"), limited(test_y, limit_test, "limit-test")
    test = Split(to_float(test_x, "test images"), None)
    test.labels = to_labels(test_y, len(test.images), "test labels", classes)
    if train is not None and test.images.shape[1:] != train.images.shape[1:]:
        raise UserError(f"test images have shape {test.images.shape[1:]} but training images {train.images.shape[1:]}")
    return Dataset(train, test, classes, path)


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[np.ndarray]:
    """Index arrays covering range(n) in batches of batch_size (the last may be smaller); shuffled by rng if given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
