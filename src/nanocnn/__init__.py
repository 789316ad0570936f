"""nanocnn: a convolutional neural network library written from scratch in NumPy, every gradient by hand."""

from .export import export_onnx, load_safetensors, save_safetensors
from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, Parameter, ReLU, register_layer
from .losses import softmax, softmax_cross_entropy
from .model import Sequential, load, save
from .optim import SGD, Adam
from .validation import UserError

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it from here)

__all__ = [
    "SGD",
    "Adam",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "UserError",
    "export_onnx",
    "load",
    "load_safetensors",
    "register_layer",
    "save",
    "save_safetensors",
    "softmax",
    "softmax_cross_entropy",
]
