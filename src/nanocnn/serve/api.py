"""The JSON API behind `nanocnn serve`: what each route of routes.py answers, as JSON-ready dicts.

Each request that needs the network makes one ``Trace`` of its input (nanocnn.nn.trace): one replica of the
shared model, one forward pass with gradients kept (so every endpoint shows the very same numbers) and, when
a view needs them, one backward pass; every view reads from it. So any number of requests may run at once
on the one eval-mode model, which never changes (a teaching step trains a private copy); a semaphore holds
the computations to ``threads`` at a time. A drawing goes through
``nanocnn.data.prepare_image``, the very function ``nanocnn predict`` applies to image files, and a blank
one (no ink once prepared) gets no prediction, as in ``nanocnn predict``.
"""

import secrets
import threading
import time

import numpy as np

from ..data import is_blank, prepare_image
from ..nn.trace import Trace
from ..train.evaluation import ranked_mistakes
from ..validation import UserError, check_choice, check_int
from .requests import (
    MAX_SIDE,
    parse_drawing,
    parse_geometry_query,
    parse_label,
    parse_lr,
    parse_position,
    parse_sample_query,
    parse_views,
)
from .views import VIEWS
from .views.backward import backward
from .views.explain import explain_value
from .views.explain_gradient import explain_gradient
from .views.geometry import geometry
from .views.teach import teach

TEACH_LR = 0.01  # the default learning rate of a teaching step: one example visibly moves the output (a wrong
# label from about 0 to 0.01-0.99 on a default model), where 0.1 flips every answer outright


class ApiError(Exception):
    """A request the API cannot answer: an HTTP status and a one-line message for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Samples:
    """The test split shown by "Random test image" and "Next mistake": images (N, C, H, W), labels (N,), and
    the wrong predictions ranked once, most confident first (as ``nanocnn plot mistakes`` ranks them)."""

    def __init__(self, images, labels, proba, source):
        self.images, self.labels, self.source = images, labels, source
        self.mistakes = ranked_mistakes(labels, proba)
        self.accuracy = float((proba.argmax(axis=1) == labels).mean())


class Api:
    """What the routes answer; the model (eval mode) is shared and never changed."""

    def __init__(self, model, meta, name, samples=None, threads=1, curves=None):
        self.model = model.eval()
        self.learning_curves = curves  # {"source": "run/metrics.csv", "metrics": {column: [value per epoch]}}
        self.input_shape = tuple(meta["input_shape"])
        self.num_classes = int(meta["num_classes"])
        self.name = name
        self.samples = samples
        self.summary = model.summary(self.input_shape)
        shapes = [self.input_shape]
        for layer in self.model.layers:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        self.shapes = shapes  # the input's and each layer's output shape, for one example
        self.slots = threading.BoundedSemaphore(threads)  # computations at once; other requests wait

    def info(self):
        """GET /api/info: the model, its input, the views on offer, and the test images (null without any)."""
        s = self.samples
        return {
            "model": self.name,
            "layers": [layer.short_repr() for layer in self.model.layers],
            "summary": self.summary,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "parameters": int(sum(p.data.size for p in self.model.parameters())),
            "max_side": MAX_SIDE,
            "views": list(VIEWS),
            "teach_lr": TEACH_LR,
            "samples": None
            if s is None
            else {"source": s.source, "count": len(s.labels), "mistakes": len(s.mistakes), "accuracy": s.accuracy},
        }

    def curves(self):
        """GET /api/curves: the run's learning curves from its metrics.csv, or null when the model has none."""
        return {"curves": self.learning_curves}

    def predict(self, request):
        """POST /api/predict: the prediction for a drawing, and the views it asks for (default: all)."""
        image = prepare_image(parse_drawing(request), self.input_shape)
        return self.answer(image, parse_views(request.get("views")))

    def test_images(self):
        """The test images this server has (``samples``), or a 404 answer saying how to give it some."""
        if self.samples is None:
            raise ApiError(404, "no test images: start nanocnn serve with --data PATH (or a model for 1x28x28 MNIST)")
        return self.samples

    def sample(self, query):
        """GET /api/sample?...: a test image's answer, with its label, index and (for mistakes) rank."""
        s = self.test_images()
        try:
            kind, n, views = parse_sample_query(query, len(s.labels), len(s.mistakes))
        except LookupError as e:
            raise ApiError(404, str(e)) from None
        if kind == "random":
            index = secrets.randbelow(len(s.labels))
        else:
            index = int(s.mistakes[n]) if kind == "mistake" else n
        out = {
            "kind": kind,
            "index": index,
            "label": int(s.labels[index]),
            "rank": n if kind == "mistake" else None,
            "mistakes": len(s.mistakes),
        }
        out.update(self.answer(s.images[index], views))
        return out

    def drawn(self, request, optional):
        """The image a POST body names: a drawing (width, height, pixels), prepared as for /api/predict, or a
        test image by its index ("sample": N, as /api/sample gave it). It must hold ink: a blank one has no
        numbers worth explaining."""
        if isinstance(request, dict) and "sample" in request:
            s = self.test_images()
            extra = sorted(set(request) - {"sample", *optional})
            if extra:
                raise UserError(
                    f"unknown field {extra[0]!r} beside sample; the fields are sample, {', '.join(optional)}"
                )
            image = s.images[check_int(request["sample"], "sample", 0, len(s.labels) - 1)]
        else:
            image = prepare_image(parse_drawing(request, optional), self.input_shape)
        if is_blank(image):
            raise UserError("the drawing is blank (no ink once prepared): there is nothing to explain")
        return image

    def explain(self, request):
        """POST /api/explain: how one number was computed: layer L's output at a position ("what": "value", the
        default; L = len(layers) is the softmax), or the loss's gradient there ("what": "gradient", for
        "label", default the prediction; L = -1 is the input image)."""
        image = self.drawn(request, ("layer", "position", "what", "label"))
        what = check_choice(request.get("what", "value"), "what", ("value", "gradient"))
        n = len(self.model.layers)
        if "layer" not in request or "position" not in request:
            raise UserError("missing field 'layer' or 'position': the number to explain")
        if what == "value":
            layer = check_int(request["layer"], "layer", 0, n)
            shape = self.shapes[layer + 1] if layer < n else (self.num_classes,)
        else:
            layer = check_int(request["layer"], "layer", -1, n - 1)
            shape = self.shapes[layer + 1]
        position = parse_position(request["position"], shape)
        label = parse_label(request["label"], self.num_classes) if "label" in request else None
        if label is not None and what == "value":
            raise UserError('label is for "what": "gradient" only')
        with self.slots:
            trace = Trace(self.model, image)
            if what == "value":
                return explain_value(trace, layer, position)
            label = trace.prediction if label is None else label
            trace.loss_backward(label)
            return explain_gradient(trace, layer, position, label)

    def backward(self, request):
        """POST /api/backward: the loss for "label" (default: the prediction) and every gradient of it."""
        image = self.drawn(request, ("label",))
        label = parse_label(request["label"], self.num_classes) if "label" in request else None
        with self.slots:
            trace = Trace(self.model, image)
            out = backward(trace, trace.prediction if label is None else label)
        return {"prediction": trace.prediction, "probabilities": trace.probabilities.astype(float).tolist(), **out}

    def teach(self, request):
        """POST /api/teach: one SGD step with "label" and "lr" on a private copy; the served model never changes."""
        image = self.drawn(request, ("label", "lr"))
        if "label" not in request:
            raise UserError("missing field 'label': the class to teach")
        label = parse_label(request["label"], self.num_classes)
        lr = parse_lr(request["lr"]) if "lr" in request else TEACH_LR
        with self.slots:
            return teach(Trace(self.model, image), label, lr)

    def geometry(self, query):
        """GET /api/geometry?size=H&kernel=K&stride=S&padding=P: where the windows fall, and how many."""
        return geometry(**parse_geometry_query(query))

    def answer(self, image, views):
        """image : float32 (C, H, W) in [0, 1] -> the prediction and the named views of one trace (README's API)."""
        start = time.perf_counter()
        out = {"prediction": None, "probabilities": None, "top": [], "blank": is_blank(image)}
        trace = None
        if not out["blank"]:
            with self.slots:
                trace = Trace(self.model, image)  # with gradients, as every endpoint: the same numbers everywhere
                out.update({v: VIEWS[v].compute(image, trace) for v in views})
            proba = trace.probabilities
            top = np.argsort(-proba, kind="stable")[:3]
            out.update(
                prediction=trace.prediction,
                probabilities=proba.astype(float).tolist(),
                top=[{"class": int(c), "probability": float(proba[c])} for c in top],
            )
        else:
            out.update({v: VIEWS[v].compute(image, None) if not VIEWS[v].network else None for v in views})
        out["ms"] = round((time.perf_counter() - start) * 1000, 2)
        return out
