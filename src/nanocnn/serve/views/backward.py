"""The backward view: the loss for a label, and the gradient of that loss arriving at every layer's output, at the
input image and at every parameter, all from nanocnn's own backward pass through the request's trace."""

import numpy as np

from .arrays import MAX_LAYER_VALUES, array_json
from .layers import first_channels


def backward(trace, label):
    """-> {"label", "loss", "gradients": per layer dL/dout (as the layers view), "input_gradient", "parameters"}."""
    loss = trace.loss_backward(label)
    gradients = []
    for i, (layer, g) in enumerate(zip(trace.model.layers, trace.output_grads)):
        sent, values = first_channels(g)
        gradients.append(
            {
                "index": i,
                "kind": type(layer).__name__,
                "shape": list(g.shape),
                "channels": sent,
                "gradient": array_json(values) if values is not None else None,
                "scale": float(np.abs(g).max()),
            }
        )
    parameters = []
    for name, p in trace.model.named_parameters():
        parameters.append(
            {
                "name": name,  # '0.weight': layer 0's weight, as in the state_dict
                "shape": list(p.grad.shape),
                "gradient": array_json(p.grad) if p.grad.size <= MAX_LAYER_VALUES else None,
                "norm": float(np.sqrt((p.grad.astype(np.float64) ** 2).sum())),
            }
        )
    return {
        "label": label,
        "loss": float(loss),
        "gradients": gradients,
        "input_gradient": array_json(trace.input_grad),
        "parameters": parameters,
    }
