"""What a network sees and why it decides: each conv layer's feature maps, and the saliency of the input.

Both work on a replica of the model (Module.replicate), so the model itself is never switched to
another mode or touched: they are safe to call from many threads at once, as a server does.
"""

import numpy as np

from .layers import Conv2d, ReLU
from .losses import softmax


def feature_maps(model, image):
    """image : (C, H, W) -> (maps, probabilities): maps is a list of (name, array (F, OH, OW)), one per conv
    layer (after its ReLU, if one follows), probabilities (K,). Runs in eval mode."""
    replica = model.replicate().eval()
    x, maps, layers = image[None], [], replica.layers
    for i, layer in enumerate(layers):
        x = layer(x)
        after = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Conv2d) and not isinstance(after, ReLU):
            maps.append((f"layer {i}: {layer!r}", x[0]))
        elif isinstance(layer, ReLU) and i > 0 and isinstance(layers[i - 1], Conv2d):
            maps.append((f"layers {i - 1}-{i}: {layers[i - 1]!r} + ReLU", x[0]))
    return maps, softmax(x)[0]


def saliency(model, image, target=None):
    """The gradient of one class's score (its logit) with respect to the input image, by backpropagation.

    image : (C, H, W) -> (gradient (C, H, W), logits (K,)). target: the class (default: the predicted
    one). Eval-mode behaviour (no Dropout) with gradients enabled, on a replica of the model.
    """
    replica = model.replicate().eval().enable_grad()
    logits = replica(image[None])  # (1, K)
    k = int(logits[0].argmax()) if target is None else int(target)
    dlogits = np.zeros_like(logits)
    dlogits[0, k] = 1
    return replica.backward(dlogits)[0], logits[0]
