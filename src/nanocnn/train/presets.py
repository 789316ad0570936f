"""Named architectures and the hyperparameters they train with.

A preset's ``build(input_shape, num_classes, rng)`` returns a Sequential sized for the data:
input channels from the images, the fully connected layer's width from the conv stack's
output shape, the last layer from the number of classes. Nothing is hard-coded for 28x28.
"""

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from ..nn import AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Residual, Sequential
from ..validation import check_choice
from .config import Config


@dataclass(frozen=True)
class Preset:
    """A named architecture and the run settings it is meant to train with (a Config of defaults)."""

    name: str
    description: str
    build: Callable  # build(input_shape (C, H, W), num_classes, rng) -> Sequential
    defaults: Config


def with_classifier(features, input_shape, num_classes, rng, dtype=np.float32):
    """Append Flatten and a Linear layer whose width is read off the feature stack's output shape."""
    flat = int(np.prod(Sequential(*features).output_shape(tuple(input_shape))))
    return Sequential(*features, Flatten(), Linear(flat, num_classes, dtype=dtype, rng=rng))


def conv_bn(C, F, kernel, rng, stride=1, pool=False):
    """conv (no bias: the batch norm after it would cancel one), [2x2 max-pool], batch norm, ReLU."""
    conv = Conv2d(C, F, kernel, stride=stride, padding=kernel // 2, bias=False, rng=rng)
    return [conv] + ([MaxPool2d(2)] if pool else []) + [BatchNorm2d(F), ReLU()]


def build_default(input_shape, num_classes, rng):
    """A 5x5 stride-2 convolution to 16 channels, then 3x3 convolutions to 32 and 64, each pooled 2x2, every one
    batch-normalised and followed by ReLU; a linear classifier. Pooling comes before batch norm and ReLU, on four
    times fewer values; the stride-2 start keeps the network off 28x28 maps, where elementwise work dominates."""
    C = input_shape[0]
    features = (
        conv_bn(C, 16, 5, rng, stride=2) + conv_bn(16, 32, 3, rng, pool=True) + conv_bn(32, 64, 3, rng, pool=True)
    )
    return with_classifier(features, input_shape, num_classes, rng)


def build_best(input_shape, num_classes, rng):
    """The default's start, widened to 32 channels, a residual block of two 3x3 convolutions, a 3x3 convolution
    to 64 channels pooled, a second residual block, global average pooling and a linear classifier."""
    C = input_shape[0]

    def residual(F):
        conv = Conv2d(F, F, 3, padding=1, bias=False, rng=rng)
        return [Residual(Sequential(*conv_bn(F, F, 3, rng), conv, BatchNorm2d(F))), ReLU()]

    features = conv_bn(C, 32, 5, rng, stride=2) + residual(32) + conv_bn(32, 64, 3, rng, pool=True) + residual(64)
    return Sequential(*features, AdaptiveAvgPool2d(1), Flatten(), Linear(64, num_classes, rng=rng))


def build_classic(input_shape, num_classes, rng):
    """Two 5x5 conv + ReLU + 2x2 max-pool stages (16 and 32 filters), then a linear classifier (0.2's default)."""
    C = input_shape[0]
    features = [
        Conv2d(C, 16, 5, padding=2, rng=rng),
        ReLU(),
        MaxPool2d(2),
        Conv2d(16, 32, 5, padding=2, rng=rng),
        ReLU(),
        MaxPool2d(2),
    ]
    return with_classifier(features, input_shape, num_classes, rng)


def build_seed(input_shape, num_classes, rng=None):
    """The article's network: conv 16 filters 8x8 stride 1, conv 8 filters 4x4 stride 2, linear; no activation.

    Weights are uniform(-0.5, 0.5) drawn in the article's order from np.random.seed(0) (the legacy
    global stream, reproduced by RandomState(0) without touching numpy's global state): first kernel,
    second kernel, then the linear weights and biases. Conv biases start at zero, as in the article.
    ``rng`` is unused: the article's initialisation is fixed.
    """
    C = input_shape[0]
    conv1, conv2 = Conv2d(C, 16, 8), Conv2d(16, 8, 4, stride=2)
    model = with_classifier([conv1, conv2], input_shape, num_classes, None)
    fc = model[-1]
    article = np.random.RandomState(0)
    conv1.weight.data[...] = article.rand(*conv1.weight.shape) - 0.5
    conv2.weight.data[...] = article.rand(*conv2.weight.shape) - 0.5
    fc.weight.data[...] = article.rand(*fc.weight.shape) - 0.5  # article: (classes, filts2, rsh2, rsw2)
    fc.bias.data[...] = article.rand(*fc.bias.shape) - 0.5
    return model


PRESETS = {
    "default": Preset(
        "default",
        "conv 5x5 stride 2, 2x (conv 3x3 + max-pool), each with batch norm and ReLU, linear; Adam, one cycle, 2 epochs",
        build_default,
        Config(epochs=2, batch_size=128, part_size=64, lr=0.03, optimizer="adam", schedule="onecycle"),
    ),
    "best": Preset(
        "best",
        "the default widened, with two residual blocks and global average pooling; augmented data, 10 epochs",
        build_best,
        Config(epochs=10, batch_size=128, part_size=64, lr=0.01, optimizer="adam", schedule="onecycle", augment=True),
    ),
    "classic": Preset(
        "classic",
        "nanocnn 0.2's default: 2x (conv 5x5 + ReLU + max-pool), linear; Adam, cosine decay, 3 epochs",
        build_classic,
        Config(epochs=3, batch_size=64, lr=3e-3, optimizer="adam", schedule="cosine"),
    ),
    "seed": Preset(
        "seed",
        "the article's network and training: batch 1, SGD lr 0.0003, 1,000/1,000 images, in order",
        build_seed,
        Config(epochs=1, batch_size=1, lr=3e-4, optimizer="sgd", shuffle=False, limit_train=1000, limit_test=1000),
    ),
}


def get_preset(name):
    """The preset called ``name``; an unknown name is a UserError listing the presets."""
    return PRESETS[check_choice(name, "preset", PRESETS)]


def resolve(config: Config) -> Config:
    """A copy of ``config`` with every None replaced by its preset's value or the field's fallback (the
    machine's settings, such as threads, stay as given), checked: the settings a run trains with."""
    preset = get_preset(config.preset or "default")
    values = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None and f.metadata["run"]:
            value = getattr(preset.defaults, f.name)
            value = f.metadata["fallback"] if value is None else value
        values[f.name] = value
    values["preset"] = preset.name
    resolved = Config(**values)
    resolved.check()
    return resolved
