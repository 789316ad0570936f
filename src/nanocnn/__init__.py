"""nanocnn: a convolutional neural network library written from scratch in NumPy, every gradient by hand."""
from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, Parameter, ReLU
from .losses import softmax_cross_entropy
from .model import Sequential, load, save
from .optim import SGD, Adam

__version__ = "0.1.0"

__all__ = ["Adam", "Conv2d", "Dropout", "Flatten", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU", "SGD",
           "Sequential", "load", "save", "softmax_cross_entropy"]
