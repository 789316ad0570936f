"""The JSON API behind `nanocnn serve`: what each route of routes.py answers, as JSON-ready dicts.

Each request that needs the network makes one ``Trace`` of its input (nanocnn.nn.trace): one replica of the
shared model, one forward pass and, when a requested view needs gradients, one backward pass; every view
reads from it. So any number of requests may run at once on the one eval-mode model, which never changes;
a semaphore holds the computations to ``threads`` at a time. A drawing goes through
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
from .requests import MAX_SIDE, parse_drawing, parse_sample_query
from .views import VIEWS


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

    def __init__(self, model, meta, name, samples=None, threads=1):
        self.model = model.eval()
        self.input_shape = tuple(meta["input_shape"])
        self.num_classes = int(meta["num_classes"])
        self.name = name
        self.samples = samples
        self.summary = model.summary(self.input_shape)
        self.slots = threading.BoundedSemaphore(threads)  # computations at once; other requests wait

    def info(self):
        """GET /api/info: the model, its input, the views on offer, and the test images (null without any)."""
        s = self.samples
        return {
            "model": self.name,
            "layers": [repr(layer) for layer in self.model.layers],
            "summary": self.summary,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "parameters": int(sum(p.data.size for p in self.model.parameters())),
            "max_side": MAX_SIDE,
            "views": list(VIEWS),
            "samples": None
            if s is None
            else {"source": s.source, "count": len(s.labels), "mistakes": len(s.mistakes), "accuracy": s.accuracy},
        }

    def predict(self, request):
        """POST /api/predict: the prediction for a drawing, and the views it asks for (default: all)."""
        pixels, views = parse_drawing(request)
        return self.answer(prepare_image(pixels, self.input_shape), views)

    def sample(self, query):
        """GET /api/sample?...: a test image's answer, with its label, index and (for mistakes) rank."""
        s = self.samples
        if s is None:
            raise ApiError(404, "no test images: start nanocnn serve with --data PATH (or a model for 1x28x28 MNIST)")
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

    def answer(self, image, views):
        """image : float32 (C, H, W) in [0, 1] -> the prediction and the named views of one trace (README's API)."""
        start = time.perf_counter()
        out = {"prediction": None, "probabilities": None, "top": [], "blank": is_blank(image)}
        trace = None
        if not out["blank"]:
            with self.slots:
                trace = Trace(self.model, image, gradients=any(VIEWS[v].gradients for v in views))
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
