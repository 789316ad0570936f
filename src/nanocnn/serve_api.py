"""The JSON API behind `nanocnn serve`: strict request checks, and the views of one input (prediction,
probabilities, what the network sees, feature maps, saliency) computed by nanocnn.explain.

Every view comes from a replica of the model (nanocnn.explain), so any number of requests may run at once
on the one shared model; a semaphore holds the computations to ``threads`` at a time. A drawing goes
through ``nanocnn.images.prepare``, the very function ``nanocnn predict`` applies to image files.
"""

import base64
import re
import secrets
import threading
import time

import numpy as np

from .explain import feature_maps, saliency
from .images import prepare
from .validation import UserError, check_int, shown

MAX_SIDE = 1024  # largest drawing width or height, in pixels
PREDICT_FIELDS = ("width", "height", "pixels")
SAMPLE_QUERIES = {"random": (), "mistake": ("rank",), "test": ("index",)}  # kind -> its other parameters
QUERY = re.compile(r"[a-z]{1,8}=[a-z0-9]{1,9}(&[a-z]{1,8}=[a-z0-9]{1,9}){0,2}")
DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: int() would also take " 7", "+7" and other scripts' digits


class ApiError(Exception):
    """A request the API cannot answer: an HTTP status and a one-line message for the client."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def parse_drawing(request):
    """A decoded JSON request {"width": W, "height": H, "pixels": [W*H numbers 0-255, row by row]}
    -> float32 (H, W) in [0, 1]. Raises UserError naming the field and the value."""
    if not isinstance(request, dict):
        raise UserError(f"the body must be a JSON object with the fields width, height, pixels, got {shown(request)}")
    unknown = sorted(set(request) - set(PREDICT_FIELDS))
    if unknown:
        raise UserError(f"unknown field {shown(unknown[0])}; the fields are width, height, pixels")
    missing = [name for name in PREDICT_FIELDS if name not in request]
    if missing:
        raise UserError(f"missing field {missing[0]!r}; the fields are width, height, pixels")
    W = check_int(request["width"], "width", 1, MAX_SIDE)
    H = check_int(request["height"], "height", 1, MAX_SIDE)
    pixels = request["pixels"]
    if not isinstance(pixels, list) or len(pixels) != W * H:
        got = f"{len(pixels)} values" if isinstance(pixels, list) else shown(pixels)
        raise UserError(f"pixels must be a list of width * height = {W * H} numbers, got {got}")
    for i, v in enumerate(pixels):  # JSON gives int, float, str, bool, None, list or dict; NaN fails 0 <= v
        if type(v) not in (int, float) or not 0 <= v <= 255:
            raise UserError(f"pixels[{i}] must be a finite number >= 0 and <= 255, got {shown(v)}")
    return np.asarray(pixels, dtype=np.float32).reshape(H, W) / 255  # as load_image scales a file's pixels


def parse_sample_query(query, count, mistakes):
    """'kind=random' | 'kind=mistake&rank=N' | 'kind=test&index=N' -> (kind, N or None); UserError otherwise."""
    usage = "the query must be kind=random, kind=mistake&rank=N or kind=test&index=N"
    if not QUERY.fullmatch(query):
        raise UserError(f"{usage}, got {shown(query)}")
    pairs = [pair.split("=") for pair in query.split("&")]
    params = dict(pairs)
    kind = params.get("kind")
    if len(params) != len(pairs) or kind not in SAMPLE_QUERIES or set(params) != {"kind", *SAMPLE_QUERIES[kind]}:
        raise UserError(f"{usage}, got {shown(query)}")
    if kind == "random":
        return kind, None
    name = SAMPLE_QUERIES[kind][0]
    if not DIGITS.fullmatch(params[name]):
        raise UserError(f"{name} must be an integer >= 0, got {shown(params[name])}")
    limit = mistakes if kind == "mistake" else count
    if limit == 0:
        raise ApiError(404, "the model makes no mistakes on these test images")
    return kind, check_int(int(params[name]), name, 0, limit - 1)


def feature_view(name, maps):
    """(name, maps (F, OH, OW)) -> {"name", "shape": [F, OH, OW], "min": [F], "max": [F], "maps": base64}.

    Each map is scaled on its own, min -> 0 and max -> 255 (a constant map is all 0), as uint8 bytes, row
    by row and map after map; "min" and "max" give the values those stand for.
    """
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    scaled = np.where(hi > lo, (maps - lo) / np.where(hi > lo, hi - lo, 1), 0)
    data = np.round(scaled * 255).astype(np.uint8)
    return {
        "name": name,
        "shape": list(maps.shape),
        "min": lo.ravel().tolist(),
        "max": hi.ravel().tolist(),
        "maps": base64.b64encode(data.tobytes()).decode("ascii"),
    }


class Samples:
    """The test split shown by "Random test image" and "Next mistake": images (N, C, H, W), labels (N,), and
    the wrong predictions ranked once, most confident first (as ``nanocnn plot mistakes`` ranks them)."""

    def __init__(self, images, labels, proba, source):
        from .inference import ranked_mistakes

        self.images, self.labels, self.source = images, labels, source
        self.mistakes = ranked_mistakes(labels, proba)
        self.accuracy = float((proba.argmax(axis=1) == labels).mean())


class Api:
    """What the routes answer, as JSON-ready dicts; the model (eval mode) is shared and never changed."""

    def __init__(self, model, meta, name, samples=None, threads=1):
        self.model = model.eval()
        self.input_shape = tuple(meta["input_shape"])
        self.num_classes = int(meta["num_classes"])
        self.name = name
        self.samples = samples
        self.summary = model.summary(self.input_shape)
        self.slots = threading.BoundedSemaphore(threads)  # computations at once; other requests wait

    def info(self):
        """GET /api/info: the model, its input, and the test images on offer (null without any)."""
        s = self.samples
        return {
            "model": self.name,
            "layers": [repr(layer) for layer in self.model.layers],
            "summary": self.summary,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "parameters": int(sum(p.data.size for p in self.model.parameters())),
            "max_side": MAX_SIDE,
            "samples": None
            if s is None
            else {"source": s.source, "count": len(s.labels), "mistakes": len(s.mistakes), "accuracy": s.accuracy},
        }

    def predict(self, request):
        """POST /api/predict: the drawing's views; a blank drawing (no ink once prepared) gets no prediction."""
        pixels = parse_drawing(request)
        return self.views(prepare(pixels, self.input_shape), blank_is_none=True)

    def sample(self, query):
        """GET /api/sample?...: a test image's views, with its label, index and (for mistakes) rank."""
        s = self.samples
        if s is None:
            raise ApiError(404, "no test images: start nanocnn serve with --data PATH (or a model for 1x28x28 MNIST)")
        kind, n = parse_sample_query(query, len(s.labels), len(s.mistakes))
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
        out.update(self.views(s.images[index], blank_is_none=False))
        return out

    def views(self, image, blank_is_none):
        """image : float32 (C, H, W) in [0, 1] -> the JSON views (see the README's API section)."""
        start = time.perf_counter()
        out = {
            "prediction": None,
            "probabilities": None,
            "top": [],
            "blank": not image.any(),
            "input": np.round(image[0], 4).tolist(),
            "features": None,
            "saliency": None,
        }
        if not (out["blank"] and blank_is_none):
            with self.slots:
                maps, proba = feature_maps(self.model, image)  # forward on a replica, eval mode
                k = int(proba.argmax())
                gradient, _ = saliency(self.model, image, target=k)  # (C, H, W): d score_k / d input
            top = np.argsort(-proba, kind="stable")[:3]
            scale = float(np.abs(gradient).max())
            out.update(
                prediction=k,
                probabilities=proba.astype(float).tolist(),
                top=[{"class": int(c), "probability": float(proba[c])} for c in top],
                features=[feature_view(name, m) for name, m in maps],
                saliency={"values": np.round(gradient[0] / (scale or 1), 4).tolist(), "scale": scale},
            )
        out["ms"] = round((time.perf_counter() - start) * 1000, 2)
        return out
