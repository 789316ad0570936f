"""The views the page shows, one module each, every one read from the request's one trace (nanocnn.nn.trace).

``VIEWS`` are the ones /api/predict and /api/sample send (the request's "views" names them); the other
modules answer an endpoint each: explain.py and explain_gradient.py /api/explain, backward.py
/api/backward, teach.py /api/teach, geometry.py /api/geometry.

A view is a function ``(image, trace) -> JSON value``: image the prepared input (C, H, W), trace the
network's pass over it (None for a blank drawing, where only views with ``network=False`` answer). The
API runs one trace per request; a view that needs gradients (saliency) runs its backward pass through it.
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


VIEWS = {
    "input": View(input_image.view, network=False),
    "saliency": View(saliency.view, network=True),
    "layers": View(layers.view, network=True),
}
