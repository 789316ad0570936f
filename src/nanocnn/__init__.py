"""nanocnn: a convolutional neural network library written from scratch in NumPy, every gradient by hand.

The teaching core is ``nanocnn.nn``; its fast paths are ``nanocnn.backend``; training, threads and MPI,
file formats, data and the page are ``train``, ``parallel``, ``io``, ``data`` and ``serve``.
"""

from .io import export_onnx, load, load_safetensors, save, save_safetensors
from .nn import (
    SGD,
    Adam,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    Parameter,
    ReLU,
    Residual,
    Sequential,
    register_layer,
    softmax,
    softmax_cross_entropy,
)
from .validation import UserError
from .version import __version__

__all__ = [
    "SGD",
    "AdaptiveAvgPool2d",
    "Adam",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Residual",
    "Sequential",
    "UserError",
    "__version__",
    "export_onnx",
    "load",
    "load_safetensors",
    "register_layer",
    "save",
    "save_safetensors",
    "softmax",
    "softmax_cross_entropy",
]
