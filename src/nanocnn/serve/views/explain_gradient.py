"""How one number of the backward pass was computed: the gradient of the loss with respect to one output of a
layer, dL/dout[position], from the layer after it (``Module.explain_backward``), or, for the logits, from
the loss itself (softmax minus one-hot). The sum docs/math.md derives, with this trace's numbers.

``index`` names the layer whose output the gradient is of; -1 is the input image (what the saliency map
shows, for the loss instead of one logit).
"""

import numpy as np

from .explain import answer, plain, ranked

FORMULAS = {
    "loss": ("dL/dz[k] = p[k] − (1 if k is the label else 0)", "docs/math.md: Softmax cross-entropy"),
    "Conv2d": (
        "dx[c, i, j] = Σ_f Σ_oh Σ_ow dout[f, oh, ow] · weight[f, c, i + PH − oh·SH, j + PW − ow·SW]",
        "docs/math.md: Convolution, Input gradient",
    ),
    "MaxPool2d": ("dx[c, i, j] = Σ dout over the windows whose first maximum is (i, j)", "docs/math.md: Max pooling"),
    "ReLU": ("dx = dout where x > 0, else 0", "docs/math.md: ReLU"),
    "Linear": ("dx[j] = Σ_k dout[k] · weight[k, j]", "docs/math.md: Linear"),
    "Flatten": ("dx[c, h, w] = dout[(c·H + h)·W + w]", "docs/math.md: Linear"),
    "Dropout": ("dx = dout at inference", "docs/math.md: Flatten and Dropout"),
    "BatchNorm2d": (
        "dx = dout · weight[c] / sqrt(running_var[c] + eps) at inference",
        "docs/math.md: Batch normalisation",
    ),
    "AvgPool2d": ("dx[c, i, j] = Σ dout / (KH·KW) over the windows that cover (i, j)", "docs/math.md: Average pooling"),
    "AdaptiveAvgPool2d": ("dx[c, h, w] = dout[c] / (H·W)", "docs/math.md: Average pooling"),
    "Residual": ("dx = the block's input gradient + the shortcut's", "docs/math.md: Residual blocks"),
}


def conv(e):
    products = e["products"]  # (F, len(rows), len(cols))
    shown, rest = ranked(products.ravel())
    terms = []
    for k in shown:
        f, a, b = np.unravel_index(k, products.shape)
        terms.append(
            {
                "output": [int(f), int(e["rows"][a]), int(e["cols"][b])],  # (f, oh, ow) whose window covered the pixel
                "grad": float(e["grads"][f, a, b]),
                "weight": float(e["weights"][f, a, b]),
                "product": float(products[f, a, b]),
            }
        )
    return {"terms": terms, "rest": rest, "windows": int(products.size)}


def max_pool(e):
    windows = [
        {"output": list(w), "chose": bool(c), "grad": float(g)} for w, c, g in zip(e["windows"], e["chose"], e["grads"])
    ]
    return {"windows": windows}


def linear(e):
    shown, rest = ranked(e["products"])
    terms = [
        {
            "output": [k],
            "grad": float(e["grads"][k]),
            "weight": float(e["weights"][k]),
            "product": float(e["products"][k]),
        }
        for k in shown
    ]
    return {"terms": terms, "rest": rest}


SHOW = {"Conv2d": conv, "MaxPool2d": max_pool, "Linear": linear}


def explain_gradient(trace, index, position, label):
    """The answer of /api/explain with "what": "gradient" (the trace has run ``loss_backward(label)``)."""
    layers = trace.model.layers
    gradient = ([trace.input_grad] + trace.output_grads)[index + 1]
    value = float(gradient[position])
    if index == len(layers) - 1:  # the logits: straight from the loss
        k, p = position[0], float(trace.probabilities[position[0]])
        kind, by = "loss", "the softmax cross-entropy loss"
        terms, total = {"probability": p, "label": label, "onehot": int(k == label)}, p - (k == label)
    else:
        after = layers[index + 1]
        kind, by = type(after).__name__, after.short_repr()
        explain = after.declared("explain_backward")
        if explain is None:
            return answer(index, kind, position, value, FORMULAS, by=by, label=label)
        e = explain(trace.inputs[index + 1], trace.output_grads[index + 1], position)
        total = float(e["total"])
        terms = SHOW[kind](e) if kind in SHOW else {k: plain(v) for k, v in e.items() if k != "total"}
    return answer(index, kind, position, value, FORMULAS, terms, total, by=by, label=label)
