"""How one number of the network was computed, forward: the terms the layer itself names (``Module.explain``),
as JSON the page lays out, every term a number the layers computed in this trace.

The answer always carries the cell's ``value`` (the layer's own output) and the ``total`` of the terms
shown (which equals it to the rounding of float32); what lies between depends on the layer. Large sums
are summarised: the input channels (or inputs) ranked by their contribution, the first ones each shown,
the rest summed in one line, so an answer stays small for any model.
"""

import math

import numpy as np

from .arrays import array_json

SHOWN = 16  # terms shown one by one (channels, inputs, outputs); the rest are summed
MAX_WINDOW = 4096  # a window or kernel slice of more values is sent as its sum only

FORMULAS = {
    "Conv2d": (
        "out[f, oh, ow] = bias[f] + Σ_c Σ_kh Σ_kw weight[f, c, kh, kw] · xpad[c, oh·SH + kh, ow·SW + kw]",
        "docs/math.md: Convolution, Forward",
    ),
    "MaxPool2d": (
        "out[c, oh, ow] = max over the window at (oh·SH − PH, ow·SW − PW); ties go to the first maximum",
        "docs/math.md: Max pooling",
    ),
    "ReLU": ("out = max(0, x)", "docs/math.md: ReLU"),
    "Linear": ("out[k] = bias[k] + Σ_j weight[k, j] · x[j]", "docs/math.md: Linear"),
    "Flatten": ("out[j] = x[c, h, w], j = (c·H + h)·W + w", "docs/math.md: Linear"),
    "Dropout": (
        "out = x at inference (in training: a random mask, scaled by 1 / (1 − p))",
        "docs/math.md: Flatten and Dropout",
    ),
    "Softmax": ("p[k] = exp(z[k] − max z) / Σ_j exp(z[j] − max z)", "docs/math.md: Softmax cross-entropy"),
    "BatchNorm2d": (
        "out = (x − running_mean[c]) / sqrt(running_var[c] + eps) · weight[c] + bias[c]",
        "docs/math.md: Batch normalisation",
    ),
    "AvgPool2d": (
        "out[c, oh, ow] = the mean of the window at (oh·SH − PH, ow·SW − PW), zero padding counted",
        "docs/math.md: Average pooling",
    ),
    "AdaptiveAvgPool2d": ("out[c] = the mean of map c", "docs/math.md: Average pooling"),
    "Residual": ("out = block(x) + shortcut(x)", "docs/math.md: Residual blocks"),
}


def ranked(values):
    """(shown, rest) for a 1-D array of terms: the indices of the SHOWN terms of largest magnitude, largest
    first, and the count and sum of the others (None when there are none)."""
    order = np.argsort(-np.abs(values), kind="stable")
    hidden = order[SHOWN:]
    return [int(k) for k in order[:SHOWN]], (
        {"count": len(hidden), "sum": float(values[hidden].sum())} if len(hidden) else None
    )


def plain(value):
    """A term of an explanation as JSON: arrays as real float32 values, numpy scalars as numbers, tuples as lists."""
    if isinstance(value, np.ndarray):
        return array_json(value)
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def receptive_field(model, shapes, index, rows, cols):
    """The input image's rows and columns [top, bottom] x [left, right] that output rows ``rows`` and columns
    ``cols`` of layer ``index`` depend on, clipped to the image, or None when a layer on the way mixes
    everything (Flatten, Linear). Layers with kernel_size, stride and padding widen the field; layers whose
    output has their input's shape keep it."""
    (top, bottom), (left, right) = rows, cols
    for i in range(index, -1, -1):
        layer = model.layers[i]
        if all(hasattr(layer, name) for name in ("kernel_size", "stride", "padding")):
            (KH, KW), (SH, SW), (PH, PW) = layer.kernel_size, layer.stride, layer.padding
            top, bottom = top * SH - PH, bottom * SH - PH + KH - 1
            left, right = left * SW - PW, right * SW - PW + KW - 1
        elif tuple(shapes[i]) != tuple(shapes[i + 1]):
            return None
    H, W = shapes[0][1:]
    return {"top": max(top, 0), "bottom": min(bottom, H - 1), "left": max(left, 0), "right": min(right, W - 1)}


def conv(layer, e, trace, index, position):
    small = e["window"][0].size <= MAX_WINDOW
    shown, rest = ranked(e["sums"])
    channels = [
        {
            "channel": c,
            "sum": float(e["sums"][c]),
            "window": array_json(e["window"][c]) if small else None,  # zeros where it overhangs the padding
            "weight": array_json(e["weight"][c]) if small else None,
        }
        for c in shown
    ]
    shapes = [trace.image.shape] + [o.shape for o in trace.outputs]
    f, oh, ow = position
    field = receptive_field(trace.model, shapes, index, (oh, oh), (ow, ow))
    return {
        "top": e["top"],
        "left": e["left"],
        "kernel": list(layer.kernel_size),
        "stride": list(layer.stride),
        "padding": list(layer.padding),
        "input_shape": list(trace.inputs[index].shape),
        "channels": channels,
        "rest": rest,
        "bias": e["bias"],
        "receptive_field": field,
    }


def max_pool(layer, e, trace, index, position):
    c, oh, ow = position
    shapes = [trace.image.shape] + [o.shape for o in trace.outputs]
    return {
        "top": e["top"],
        "left": e["left"],
        "kernel": list(layer.kernel_size),
        "stride": list(layer.stride),
        "padding": list(layer.padding),
        "window": array_json(e["window"]),  # -inf where the window hangs over the padding
        "winner": list(e["winner"]),
        "receptive_field": receptive_field(trace.model, shapes, index, (oh, oh), (ow, ow)),
    }


def linear(layer, e, trace, index, position):
    products = e["products"]
    before = trace.inputs[index - 1].shape if index > 0 else None  # the maps the flat input came from
    shape = list(before) if before is not None and len(before) > 1 and math.prod(before) == products.size else None
    shown, rest = ranked(products)
    terms = [
        {
            "index": j,  # in the flat input; "at": where it was on the maps before Flatten
            "at": [int(v) for v in np.unravel_index(j, shape)] if shape else [j],
            "x": float(e["inputs"][j]),
            "weight": float(e["weights"][j]),
            "product": float(products[j]),
        }
        for j in shown
    ]
    return {
        "terms": terms,
        "rest": rest,
        "bias": e["bias"],
        "products": array_json(products.reshape(shape or (-1,))),  # every w·x, laid back onto the maps
        "maps_shape": shape,
    }


def other(layer, e, trace, index, position):
    """Any other layer's terms (ReLU, Flatten, Dropout, a user's own layer): as the layer names them."""
    return {k: plain(v) for k, v in e.items() if k != "total"}


SHOW = {"Conv2d": conv, "MaxPool2d": max_pool, "Linear": linear}


def softmax_terms(trace, k):
    """p[k] from the logits, with the numbers: the shift by the largest logit, each exp, their sum."""
    z = trace.logits.astype(np.float64)
    exps = np.exp(z - z.max())
    return {"logits": z.tolist(), "max": float(z.max()), "exps": exps.tolist(), "sum": float(exps.sum())}, float(
        exps[k] / exps.sum()
    )


def answer(index, kind, position, value, formulas, terms=None, total=None, **named):
    """An /api/explain answer (value or gradient): the number, and, when the layer explains it (``terms`` given),
    its terms, their total and the formula with its section of docs/math.md; ``named``: what else the kind of
    answer names (the layer's description, or the layer the gradient came back through and the label)."""
    explained = terms is not None
    formula, math_section = formulas.get(kind, (None, None)) if explained else (None, None)
    return {
        "layer": index,
        "kind": kind,
        **named,
        "position": list(position),
        "value": value,
        "total": total,
        "explained": explained,
        "terms": terms,
        "formula": formula,
        "math": math_section,
    }


def explain_value(trace, index, position):
    """The answer of /api/explain for output ``position`` of layer ``index`` (len(layers): the softmax)."""
    layers = trace.model.layers
    if index == len(layers):
        terms, total = softmax_terms(trace, position[0])
        value = float(trace.probabilities[position[0]])
        kind, description = "Softmax", "softmax of the logits: the probabilities"
    else:
        layer = layers[index]
        kind, description, value = type(layer).__name__, layer.short_repr(), float(trace.outputs[index][position])
        explain = layer.declared("explain")
        if explain is None:
            return answer(index, kind, position, value, FORMULAS, description=description)
        e = explain(trace.inputs[index], position)
        total = float(e["total"])
        terms = SHOW.get(kind, other)(layer, e, trace, index, position)
    return answer(index, kind, position, value, FORMULAS, terms, total, description=description)
