"""The saliency view: the gradient of the predicted class's score (its logit) with respect to every input pixel,
from nanocnn's own backward pass: where more ink would raise the score, and where it would lower it."""

import numpy as np

from .arrays import array_json


def view(image, trace):
    """-> {"class": k, "gradient": array (C, H, W) of d logit_k / d input, "scale": its largest magnitude}."""
    k = trace.prediction
    gradient = trace.backward(trace.onehot(k))  # (C, H, W)
    return {"class": k, "gradient": array_json(gradient), "scale": float(np.abs(gradient).max())}
