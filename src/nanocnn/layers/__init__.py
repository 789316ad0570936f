"""The layers, one concept per file, and the registry that lets ``nanocnn.load`` rebuild them by name."""

from ..validation import UserError
from .activation import ReLU
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Linear
from .module import Module, Parameter  # noqa: F401 (Parameter: re-exported for nanocnn and users)
from .pool import MaxPool2d

LAYERS = {cls.__name__: cls for cls in (Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout)}


def register_layer(cls):
    """Class decorator: let ``nanocnn.load`` rebuild layers of this class from their ``spec()``.

    Loading never runs code from the file: it only calls constructors registered here, by name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Module)):
        raise UserError(f"register_layer: expected a subclass of nanocnn.Module, got {cls!r}")
    known = LAYERS.get(cls.__name__)
    redefined = known is not None and (known.__module__, known.__qualname__) == (cls.__module__, cls.__qualname__)
    if known is not None and known is not cls and not redefined:
        raise UserError(f"register_layer: another layer class is already registered as {cls.__name__!r}")
    LAYERS[cls.__name__] = cls
    return cls
