"""Data: datasets (the bundled MNIST, .npz files, IDX folders) as float32 NCHW, batching, and image files or
drawings prepared the way MNIST's digits were."""

from .augment import augment
from .datasets import Dataset, Split, batches, bundled_path, load_dataset
from .images import is_blank, load_image, prepare_image

__all__ = [
    "augment",
    "Dataset",
    "Split",
    "batches",
    "bundled_path",
    "is_blank",
    "load_dataset",
    "load_image",
    "prepare_image",
]
