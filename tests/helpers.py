"""Small writers of data files for the tests: IDX files and .npz datasets."""
import gzip
import struct

import numpy as np


def write_idx(path, array, type_byte=0x08, gz=False):
    """Write ``array`` as an IDX file: magic (0, 0, type, rank), big-endian uint32 sizes, then the data."""
    dtype = {0x08: ">u1", 0x0D: ">f4"}[type_byte]
    raw = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw += np.asarray(array, dtype=dtype).tobytes()
    with (gzip.open if gz else open)(str(path) + (".gz" if gz else ""), "wb") as f:
        f.write(raw)


def write_idx_folder(folder, train_x, train_y, test_x, test_y, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in (("train-images-idx3-ubyte", train_x), ("train-labels-idx1-ubyte", train_y),
                        ("t10k-images-idx3-ubyte", test_x), ("t10k-labels-idx1-ubyte", test_y)):
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
