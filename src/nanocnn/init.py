"""Weight initialisers: He (Kaiming) normal for layers followed by ReLU, and the article's uniform(-0.5, 0.5)."""
import numpy as np

INITS = ("he", "uniform")


def he_normal(shape, fan_in, rng, dtype):
    """Draw (shape) from N(0, 2 / fan_in): keeps activations' variance steady through ReLU layers (He et al., 2015)."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


def uniform(shape, rng, dtype, low=-0.5, high=0.5):
    """Draw (shape) from uniform(low, high), the article's initialisation."""
    return rng.uniform(low, high, size=shape).astype(dtype)


def init_weight(init, shape, fan_in, rng, dtype, layer):
    """Dispatch on the initialiser's name; unknown names are an error."""
    rng = np.random.default_rng() if rng is None else rng
    if init == "he":
        return he_normal(shape, fan_in, rng, dtype)
    elif init == "uniform":
        return uniform(shape, rng, dtype)
    else:
        raise ValueError(f"{layer}: init must be one of {INITS}, got {init!r}")
