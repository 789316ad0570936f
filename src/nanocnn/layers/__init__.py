"""The layers, one concept per file."""
from .activation import ReLU
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .module import Module, Parameter
from .pool import MaxPool2d

LAYERS = {cls.__name__: cls for cls in (Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout)}

__all__ = ["Conv2d", "Dropout", "Flatten", "LAYERS", "Linear", "MaxPool2d", "Module", "Parameter", "ReLU"]
