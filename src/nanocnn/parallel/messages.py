"""How the ranks of an MPI job encode their messages: JSON, arrays in numpy's .npy format, never pickle.

mpi4py sends Python objects with pickle by default, and unpickling a message can run code. nanocnn
installs these two functions as mpi4py's serializer (``use_with(MPI)``), so a message from another
process is only ever parsed: JSON values, plus a few tagged objects rebuilt from plain data:

    ndarray     {"__array__": base64 of np.save(array, allow_pickle=False)}   exact, dtype and shape kept
    Config      {"__config__": config.to_dict()}
    Sequential  {"__model__": [spec, state_dict]}  rebuilt by nn.registry.from_spec: registered layers only
    Run         {"__run__": [path, config, checkpoint]}

Python floats travel as their shortest exact repr, so losses and metrics arrive bit-identical. Tuples
arrive as lists. Anything else cannot be sent (TypeError): a bug, caught when it is written.
"""

import base64
import io
import json

import numpy as np

from ..io.checkpoint import Saved
from ..nn import Sequential
from ..nn.registry import from_spec
from ..train.config import Config
from ..train.runs import Run


def encode(obj):
    """json.dumps's ``default``: the tagged form of the objects JSON does not know."""
    if isinstance(obj, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, obj, allow_pickle=False)
        return {"__array__": base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Config):
        return {"__config__": obj.to_dict()}
    if isinstance(obj, Sequential):
        return {"__model__": [obj.spec(), obj.state_dict()]}
    if isinstance(obj, Run):
        return {"__run__": [obj.path, obj.config, obj.checkpoint]}
    raise TypeError(f"nanocnn does not send {type(obj).__name__} between processes")


def decode(tagged):
    """json.loads's ``object_hook``: rebuild a tagged object from its plain data."""
    if "__array__" in tagged:
        return np.load(io.BytesIO(base64.b64decode(tagged["__array__"])), allow_pickle=False)
    if "__config__" in tagged:
        return Config.from_dict(tagged["__config__"])
    if "__model__" in tagged:
        spec, state = tagged["__model__"]
        model = from_spec(spec)
        model.load_state_dict(state)
        return model
    if "__run__" in tagged:
        path, config, checkpoint = tagged["__run__"]
        return Run(path, config, None if checkpoint is None else Saved(*checkpoint))
    return tagged


def dumps(obj, protocol=None):
    return json.dumps(obj, default=encode).encode()


def loads(data):
    return json.loads(bytes(data), object_hook=decode)


def use_with(MPI):
    """Make mpi4py's lowercase methods (bcast, allgather, ...) send with dumps and receive with loads."""
    MPI.pickle.__init__(dumps, loads)
