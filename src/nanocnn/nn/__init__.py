"""The teaching core: layers with forward and backward side by side, the loss, the optimizers, and the plain
loop versions that specify them. Read in this order:

    module.py      Parameter and Module: the contract every layer keeps
    conv.py        Conv2d                  pool.py      MaxPool2d
    activation.py  ReLU                    linear.py    Linear, Flatten
    dropout.py     Dropout                 sequential.py  Sequential
    functional.py  the layers' array functions, beside reference.py, their plain-loop specification
    losses.py      softmax cross-entropy    optim.py     SGD, Adam, learning-rate schedules
    init.py        He initialisation        registry.py  rebuilding a saved architecture by name
    trace.py       every layer's input, output and gradient for one example (the page and the plots)

The fast paths these call (``nanocnn.backend``) give the same numbers; the tests hold them to it.
"""

from .activation import ReLU
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .losses import log_softmax, softmax, softmax_cross_entropy
from .module import Module, Parameter
from .optim import OPTIMIZERS, SCHEDULES, SGD, Adam
from .pool import MaxPool2d
from .registry import LAYERS, from_spec, register_layer
from .sequential import Sequential

__all__ = [
    "LAYERS",
    "OPTIMIZERS",
    "SCHEDULES",
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
    "from_spec",
    "log_softmax",
    "register_layer",
    "softmax",
    "softmax_cross_entropy",
]
