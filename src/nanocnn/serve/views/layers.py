"""The network at a glance: every top-level layer's output for this input, in order, with what the layer is, and
last the softmax of the logits (the probabilities).

An output of (C, H, W) is C maps, a vector (K,) one row of values; a user-written layer shows the same way,
by its class name. Large outputs are cut to their first whole channels (at most MAX_LAYER_VALUES values).
"""

import math

from .arrays import MAX_LAYER_VALUES, array_json


def first_channels(out):
    """(channels sent, the array sent) for one output: all of it, or the first whole channels of at most
    MAX_LAYER_VALUES values (none when one channel alone is larger: then the array is None)."""
    if out.ndim < 2:
        return (1, out) if out.size <= MAX_LAYER_VALUES else (0, None)
    sent = min(out.shape[0], MAX_LAYER_VALUES // max(math.prod(out.shape[1:]), 1))
    return sent, (out[:sent] if sent else None)


def view(image, trace):
    """-> [{"index", "kind", "description", "shape", "channels", "output"}, ...], one per layer and one for the
    softmax; "channels" is how many of the output's channels (axis 0) "output" holds (all, unless it is too large)."""
    layers = []
    for i, (layer, out) in enumerate(zip(trace.model.layers, trace.outputs)):
        sent, values = first_channels(out)
        layers.append(
            {
                "index": i,
                "kind": type(layer).__name__,
                "description": layer.short_repr(),
                "shape": list(out.shape),
                "channels": sent,
                "output": array_json(values) if values is not None else None,
            }
        )
    k = len(trace.probabilities)  # and last, the softmax that turns the logits into probabilities
    layers.append(
        {
            "index": len(layers),
            "kind": "Softmax",
            "description": "softmax: the probabilities",
            "shape": [k],
            "channels": 1,
            "output": array_json(trace.probabilities),
        }
    )
    return layers
