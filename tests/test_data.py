"""Loading data: the bundled MNIST, .npz and IDX files, scaling, and a clear error for every kind of bad input."""

import numpy as np
import pytest

from helpers import random_dataset, write_idx, write_idx_folder, write_npz
from nanocnn import UserError
from nanocnn.data import batches, bundled_path, load_dataset
from nanocnn.data.datasets import read_idx


def test_bundled_mnist_is_there_and_scaled():
    data = load_dataset(limit_train=100, limit_test=50)
    assert bundled_path().endswith("mnist.npz")
    assert data.train.images.shape == (100, 1, 28, 28) and data.test.images.shape == (50, 1, 28, 28)
    assert data.train.images.dtype == np.float32 and data.train.labels.dtype == np.int64
    assert data.train.images.min() == 0 and data.train.images.max() == 1 and data.num_classes == 10
    raw = np.load(bundled_path())["trainimages"][:100]
    assert np.array_equal(data.train.images[:, 0], raw.astype(np.float32) / 255)


def test_npz_and_idx_folders_give_the_same_data(tmp_path, rng):
    arrays = random_dataset(rng)
    a = load_dataset(write_npz(tmp_path / "d.npz", *arrays))
    b = load_dataset(write_idx_folder(tmp_path / "raw", *arrays))
    c = load_dataset(write_idx_folder(tmp_path / "gz", *arrays, gz=True))
    for other in (b, c):
        assert np.array_equal(a.train.images, other.train.images) and np.array_equal(a.test.labels, other.test.labels)
    assert a.input_shape == (1, 12, 10) and a.num_classes == 3


def test_channels_last_and_float_images(tmp_path, rng):
    train_x = rng.random((10, 6, 5, 3)).astype(np.float32)
    test_x = rng.random((4, 6, 5, 3))
    data = load_dataset(write_npz(tmp_path / "c.npz", train_x, np.arange(10) % 4, test_x, np.arange(4)))
    assert data.input_shape == (3, 6, 5) and data.num_classes == 4
    assert np.array_equal(data.train.images, train_x.transpose(0, 3, 1, 2))


def test_labels_given_as_whole_floats_are_accepted(tmp_path, rng):
    x = rng.integers(0, 255, (4, 5, 5)).astype(np.uint8)
    data = load_dataset(write_npz(tmp_path / "f.npz", x, np.array([0.0, 1, 2, 1]), x, np.array([2.0, 1, 0, 0])))
    assert data.train.labels.tolist() == [0, 1, 2, 1]


def test_batches_cover_every_index_once():
    parts = list(batches(10, 4, np.random.default_rng(0)))
    assert [len(p) for p in parts] == [4, 4, 2] and sorted(np.concatenate(parts)) == list(range(10))
    assert np.array_equal(np.concatenate(list(batches(5, 2))), np.arange(5))


def bad_case(name, rng):
    """(arrays to write, expected message part) for one kind of bad data."""
    x, y = rng.integers(0, 255, (6, 5, 5)).astype(np.uint8), np.array([0, 1, 2, 0, 1, 2])
    cases = {
        "count mismatch": ((x, y[:5], x, y), "6 training images but 5 training labels"),
        "negative label": ((x, np.array([0, 1, -1, 0, 1, 2]), x, y), "training labels must be >= 0, got -1"),
        "fractional label": ((x, y + 0.5, x, y), "training labels must be whole numbers, got 0.5"),
        "label out of range": (
            (x, y, x, np.array([0, 1, 2, 3, 0, 1])),
            "test labels has label 3, but there are only 3",
        ),
        "nan pixels": ((np.where(x > 100, np.nan, x / 255), y, x, y), "NaN or infinite pixels"),
        "floats out of range": ((x.astype(np.float32), y, x, y), "training images are floats outside [0, 1] (min"),
        "wrong rank": ((x.reshape(6, 25), y, x, y), "training images must have rank 3 (N, H, W) or 4"),
        "no images": ((x[:0], y[:0], x, y), "training images holds no images"),
        "int images": ((x.astype(np.int64), y, x, y), "must be uint8 or floating point in [0, 1], got dtype int64"),
        "string labels": ((x, y.astype(str), x, y), "training labels must be integers, got dtype <U"),
        "one class": ((x, np.zeros(6, int), x, np.zeros(6, int)), "at least 2 classes"),
        "shape mismatch": ((x, y, x[:, :4], y), "test images have shape (1, 4, 5) but training images (1, 5, 5)"),
    }
    return cases[name]


@pytest.mark.parametrize(
    "name",
    [
        "count mismatch",
        "negative label",
        "fractional label",
        "label out of range",
        "nan pixels",
        "floats out of range",
        "wrong rank",
        "no images",
        "int images",
        "string labels",
        "one class",
        "shape mismatch",
    ],
)
def test_bad_npz_data(name, tmp_path, rng):
    arrays, message = bad_case(name, rng)
    with pytest.raises(UserError) as e:
        load_dataset(write_npz(tmp_path / "bad.npz", *arrays))
    assert message in str(e.value)


def test_missing_corrupt_and_foreign_files(tmp_path, rng):
    with pytest.raises(UserError, match="data not found"):
        load_dataset(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(UserError, match="not a readable .npz archive"):
        load_dataset(tmp_path / "junk.npz")
    good = write_npz(tmp_path / "good.npz", *random_dataset(rng))
    (tmp_path / "cut.npz").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(UserError, match="cut.npz"):
        load_dataset(tmp_path / "cut.npz")
    np.savez(tmp_path / "keys.npz", images=np.zeros(3))
    with pytest.raises(UserError, match=r"lacks the keys \['testimages', 'testlabels', 'trainimages', 'trainlabels'\]"):
        load_dataset(tmp_path / "keys.npz")
    arrays = random_dataset(rng)
    np.savez(
        tmp_path / "pickled.npz",
        trainimages=arrays[0],
        trainlabels=np.array([{"a": 1}] * 40, dtype=object),
        testimages=arrays[2],
        testlabels=arrays[3],
    )
    with pytest.raises(UserError, match="pickled objects; refusing"):
        load_dataset(tmp_path / "pickled.npz")


def test_bad_idx_files(tmp_path, rng):
    write_idx(tmp_path / "ok", np.zeros((2, 3, 3), np.uint8))
    assert read_idx(str(tmp_path / "ok")).shape == (2, 3, 3)
    raw = (tmp_path / "ok").read_bytes()
    (tmp_path / "magic").write_bytes(b"\x01\x02" + raw[2:])
    with pytest.raises(UserError, match="is not an IDX file"):
        read_idx(str(tmp_path / "magic"))
    (tmp_path / "short").write_bytes(raw[:-1])
    with pytest.raises(UserError, match="has 33 bytes, but its header .2, 3, 3. needs 34"):
        read_idx(str(tmp_path / "short"))
    (tmp_path / "header").write_bytes(raw[:9])
    with pytest.raises(UserError, match="truncated inside its header"):
        read_idx(str(tmp_path / "header"))
    folder = write_idx_folder(tmp_path / "partial", *random_dataset(rng))
    (folder / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match="lacks t10k-labels-idx1-ubyte"):
        load_dataset(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(UserError, match="cannot read IDX file"):
        load_dataset(folder)


def test_limits_take_the_first_images(tmp_path, rng):
    arrays = random_dataset(rng)
    data = load_dataset(write_npz(tmp_path / "d.npz", *arrays), limit_train=7, limit_test=3)
    assert np.array_equal(data.train.labels, arrays[1][:7]) and len(data.test.labels) == 3
    for bad in (0, -1):
        with pytest.raises(UserError, match=f"limit-train must be an integer >= 1, got {bad}"):
            load_dataset(tmp_path / "d.npz", limit_train=bad)
