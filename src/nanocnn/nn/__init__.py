"""The teaching core: layers with forward and backward side by side, the loss, the optimizers, and the plain
loop versions that specify them. Read in this order:

    module.py      Parameter and Module: the contract every layer keeps
    conv.py        Conv2d                  pool.py      MaxPool2d
    activation.py  ReLU                    linear.py    Linear, Flatten
    dropout.py     Dropout                 sequential.py  Sequential
    batchnorm.py   BatchNorm2d             avgpool.py   AvgPool2d, AdaptiveAvgPool2d
    residual.py    Residual: block(x) + shortcut(x)
    functional.py  the layers' array functions, beside reference.py, their plain-loop specification
    losses.py      softmax cross-entropy    optim.py     SGD, Adam, learning-rate schedules
    init.py        He initialisation        registry.py  rebuilding a saved architecture by name
    trace.py       every layer's input, output and gradient for one example (the page and the plots)

The fast paths these call (``nanocnn.backend``) give the same numbers; the tests hold them to it.
"""

from .activation import ReLU
from .avgpool import AdaptiveAvgPool2d, AvgPool2d
from .batchnorm import BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .losses import log_softmax, softmax, softmax_cross_entropy
from .module import Buffer, Module, Parameter
from .optim import OPTIMIZERS, SCHEDULES, SGD, Adam
from .pool import MaxPool2d
from .registry import LAYERS, from_spec, register_layer
from .residual import Residual
from .sequential import Sequential

__all__ = [
    "LAYERS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SGD",
    "AdaptiveAvgPool2d",
    "Adam",
    "AvgPool2d",
    "BatchNorm2d",
    "Buffer",
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
    "from_spec",
    "log_softmax",
    "register_layer",
    "softmax",
    "softmax_cross_entropy",
]
