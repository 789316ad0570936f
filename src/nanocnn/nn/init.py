"""Weight initialisation: He (Kaiming) normal, for layers followed by ReLU."""

import numpy as np


def he_normal(shape, fan_in, rng, dtype):
    """Draw (shape) from N(0, 2 / fan_in): keeps activations' variance steady through ReLU layers (He et al., 2015).

    rng : a np.random.Generator (None: a fresh, unseeded one).
    """
    rng = np.random.default_rng() if rng is None else rng
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
