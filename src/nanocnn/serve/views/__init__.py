"""The views the page shows, one module each, every one read from the request's one trace (nanocnn.nn.trace).

A view is a function ``(image, trace) -> JSON value``: image the prepared input (C, H, W), trace the
network's pass over it (None for a blank drawing, where only views with ``network=False`` answer). The
API runs one trace per request, with a backward pass only when a requested view needs ``gradients``.
Arrays travel as real float32 values (``array_json``), never rescaled or cut to one channel, so the page
can show the numbers themselves (arrays.py). A new view is a module here and one line in ``VIEWS``.
"""

from collections.abc import Callable
from dataclasses import dataclass

from . import input_image, layers, saliency


@dataclass(frozen=True)
class View:
    compute: Callable  # (image (C, H, W), trace or None) -> a JSON value
    network: bool  # needs the network's pass (a blank drawing gets null)
    gradients: bool = False  # needs a backward pass through the trace


VIEWS = {
    "input": View(input_image.view, network=False),
    "saliency": View(saliency.view, network=True, gradients=True),
    "layers": View(layers.view, network=True),
}
