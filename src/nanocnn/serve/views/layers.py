"""The network at a glance: every top-level layer's output for this input, in order, with what the layer is.

An output of (C, H, W) is C maps, a vector (K,) one row of values; a user-written layer shows the same way,
by its class name. Large outputs are cut to their first whole channels (at most MAX_LAYER_VALUES values).
"""

import math

from .arrays import MAX_LAYER_VALUES, array_json


def view(image, trace):
    """-> [{"index", "kind", "description", "shape", "channels", "output"}, ...], one per layer; "channels" is
    how many of the output's channels (axis 0) "output" holds (all, unless the layer's output is too large)."""
    layers = []
    for i, (layer, out) in enumerate(zip(trace.model.layers, trace.outputs)):
        per_channel = math.prod(out.shape[1:]) if out.ndim > 1 else out.size
        channels = out.shape[0] if out.ndim > 1 else 1
        sent = min(channels, MAX_LAYER_VALUES // max(per_channel, 1))
        layers.append(
            {
                "index": i,
                "kind": type(layer).__name__,
                "description": repr(layer),
                "shape": list(out.shape),
                "channels": sent if out.ndim > 1 else int(sent > 0),
                "output": array_json(out[:sent] if out.ndim > 1 else out) if sent else None,
            }
        )
    return layers
