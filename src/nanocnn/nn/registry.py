"""The layer classes ``nanocnn.load`` may rebuild, by name, and how a saved architecture becomes layers again.

A saved model records its architecture as JSON, never as code: a list of ``[class name, spec()]``, one per
layer of the top-level ``Sequential`` (a nested ``Sequential`` as ``["Sequential", [...]]``; a layer that
holds layers, a Residual, names the arguments that are layers in ``nested``, each written the same way).
Loading calls the constructors of registered classes only, so a file can name a layer but never run anything.
"""

from ..validation import UserError
from .module import Module
from .sequential import Sequential

LAYERS = {"Sequential": Sequential}  # class name -> class; the built-in layers register themselves


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


def build(item):
    """One layer from its [class name, arguments] (a nested layer of a Residual, say); None stays None."""
    if item is None:
        return None
    model = from_spec([item])
    return model.layers[0]


def from_spec(spec) -> Sequential:
    """Rebuild a Sequential from its spec, a list of [layer name, constructor arguments] (see the module)."""
    if not isinstance(spec, list):
        raise UserError(f"model spec must be a list of layers, got {type(spec).__name__}")
    layers = []
    for item in spec:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise UserError(f"model spec has a malformed layer entry {str(item)[:80]}")
        name, args = item
        if name == "Sequential":
            layers.append(from_spec(args))
            continue
        if name not in LAYERS:
            raise UserError(
                f"unknown layer type {name!r}: define the class and decorate it with "
                f"@nanocnn.register_layer before loading"
            )
        if not isinstance(args, dict):
            raise UserError(f"model spec has malformed arguments for {name}: {str(args)[:80]}")
        cls = LAYERS[name]
        args = {k: build(v) if k in getattr(cls, "nested", ()) else v for k, v in args.items()}
        try:
            layers.append(cls(**args))
        except TypeError as e:
            raise UserError(f"cannot rebuild layer {name} from {str(args)[:80]}: {e}") from None
        except MemoryError:
            raise UserError(f"layer {name} {str(args)[:80]} needs more memory than this machine has") from None
    return Sequential(*layers)
