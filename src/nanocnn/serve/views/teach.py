"""The teach view: one SGD step, w -= lr * dL/dw, on this one example with the learner's label, on a private copy
of the model; the probabilities before and after, how far each parameter moved, and the first layer's
filters before, after and their difference. The served model never changes."""

import numpy as np

from ...nn import softmax_cross_entropy
from ...nn.trace import Trace
from .arrays import MAX_LAYER_VALUES, array_json


def teach(trace, label, lr):
    loss = trace.loss_backward(label)
    twin = trace.sgd_step(lr)  # the trace's model is a replica: its weights are the served model's, untouched
    after = Trace(twin, trace.image)
    moved, filters = [], None
    for (name, new), (_, old) in zip(twin.named_parameters(), trace.model.named_parameters()):
        change = new.data.astype(np.float64) - old.data
        norm = float(np.sqrt((old.data.astype(np.float64) ** 2).sum()))
        moved.append({"name": name, "change": float(np.sqrt((change**2).sum())), "norm": norm})
        if filters is None and new.data.ndim == 4 and new.data.size <= MAX_LAYER_VALUES:  # the first conv's kernels
            filters = {
                "name": name,
                "before": array_json(old.data),
                "after": array_json(new.data),
                "difference": array_json(new.data - old.data),
            }
    return {
        "label": label,
        "lr": lr,
        "loss_before": float(loss),
        "loss_after": float(softmax_cross_entropy(after.logits[None], np.array([label]))[0]),
        "before": trace.probabilities.astype(float).tolist(),
        "after": after.probabilities.astype(float).tolist(),
        "prediction_before": trace.prediction,
        "prediction_after": after.prediction,
        "moved": moved,
        "filters": filters,
    }
