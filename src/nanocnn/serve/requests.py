"""What a request to the API may hold, checked strictly: a drawing and the fields beside it (POST bodies), and
the sample and geometry queries (GET).

Every check names the field and the value in a one-line UserError (400); nothing else is accepted.
"""

import re

import numpy as np

from ..validation import UserError, abridged, check_int, check_real
from .views import VIEWS

MAX_SIDE = 1024  # largest drawing width or height, in pixels
DRAWING_FIELDS = ("width", "height", "pixels")
SAMPLE_QUERIES = {"random": (), "mistake": ("rank",), "test": ("index",)}  # kind -> its other parameters
QUERY = re.compile(r"[a-z]{1,8}=[a-z0-9,]{1,40}(&[a-z]{1,8}=[a-z0-9,]{1,40}){0,3}")
DIGITS = re.compile(r"[0-9]{1,9}")  # ASCII only: int() would also take " 7", "+7" and other scripts' digits
MAX_LR = 100.0  # a teaching step's learning rate, at most


def parse_views(views, where="views"):
    """A list of view names (views.VIEWS), each at most once -> a tuple in the order given; None: all views."""
    if views is None:
        return tuple(VIEWS)
    if not isinstance(views, list) or not all(isinstance(v, str) for v in views):
        raise UserError(f"{where} must be a list of view names ({', '.join(VIEWS)}), got {abridged(views)}")
    for v in views:
        if v not in VIEWS:
            raise UserError(f"unknown view {abridged(v)} in {where}; the views are {', '.join(VIEWS)}")
    if len(set(views)) != len(views):
        raise UserError(f"{where} names a view twice: {abridged(views)}")
    return tuple(views)


def parse_drawing(request, optional=("views",)):
    """A decoded JSON request {"width": W, "height": H, "pixels": [W*H numbers 0-255, row by row], ...} whose other
    fields may only be those in ``optional`` -> float32 (H, W) in [0, 1]. Raises UserError naming field and value."""
    fields = ", ".join(DRAWING_FIELDS + tuple(optional))
    if not isinstance(request, dict):
        raise UserError(f"the body must be a JSON object with the fields {fields}, got {abridged(request)}")
    unknown = sorted(set(request) - set(DRAWING_FIELDS) - set(optional))
    if unknown:
        raise UserError(f"unknown field {abridged(unknown[0])}; the fields are {fields}")
    missing = [name for name in DRAWING_FIELDS if name not in request]
    if missing:
        raise UserError(f"missing field {missing[0]!r}; the fields are {fields}")
    W = check_int(request["width"], "width", 1, MAX_SIDE)
    H = check_int(request["height"], "height", 1, MAX_SIDE)
    pixels = request["pixels"]
    if not isinstance(pixels, list) or len(pixels) != W * H:
        got = f"{len(pixels)} values" if isinstance(pixels, list) else abridged(pixels)
        raise UserError(f"pixels must be a list of width * height = {W * H} numbers, got {got}")
    for i, v in enumerate(pixels):  # JSON gives int, float, str, bool, None, list or dict; NaN fails 0 <= v
        if type(v) not in (int, float) or not 0 <= v <= 255:
            raise UserError(f"pixels[{i}] must be a finite number >= 0 and <= 255, got {abridged(v)}")
    return np.asarray(pixels, dtype=np.float32).reshape(H, W) / 255  # as load_image scales a file's pixels


def parse_position(position, shape):
    """A list of len(shape) integers, each within its axis of ``shape`` -> a tuple of ints."""
    axes = "[c, h, w]" if len(shape) == 3 else "[j]" if len(shape) == 1 else f"{len(shape)} indices"
    if not isinstance(position, list) or len(position) != len(shape):
        raise UserError(f"position must be {axes} for an output of shape {list(shape)}, got {abridged(position)}")
    return tuple(check_int(v, f"position[{k}]", 0, size - 1) for k, (v, size) in enumerate(zip(position, shape)))


def parse_label(value, num_classes):
    return check_int(value, "label", 0, num_classes - 1)


def parse_lr(value):
    return check_real(value, "lr", 0, MAX_LR, low_open=True)


def query_params(query, usage):
    """'a=1&b=2' -> {'a': '1', 'b': '2'}; a malformed query or a repeated name is a UserError starting ``usage``."""
    if not QUERY.fullmatch(query):
        raise UserError(f"{usage}, got {abridged(query)}")
    pairs = [pair.split("=") for pair in query.split("&")]
    params = dict(pairs)
    if len(params) != len(pairs):
        raise UserError(f"{usage}, got {abridged(query)}")
    return params


def parse_sample_query(query, count, mistakes):
    """'kind=random' | 'kind=mistake&rank=N' | 'kind=test&index=N', each optionally with '&views=a,b'
    -> (kind, N or None, view names). A rank or index past the end is a UserError; no mistakes at all a
    LookupError (the API answers 404)."""
    usage = "the query must be kind=random, kind=mistake&rank=N or kind=test&index=N, optionally with &views=a,b"
    params = query_params(query, usage)
    kind = params.get("kind")
    if kind not in SAMPLE_QUERIES or set(params) - {"views"} != {"kind", *SAMPLE_QUERIES[kind]}:
        raise UserError(f"{usage}, got {abridged(query)}")
    views = parse_views(params["views"].split(","), "the query's views") if "views" in params else tuple(VIEWS)
    if kind == "random":
        return kind, None, views
    name = SAMPLE_QUERIES[kind][0]
    if not DIGITS.fullmatch(params[name]):
        raise UserError(f"{name} must be an integer >= 0, got {abridged(params[name])}")
    limit = mistakes if kind == "mistake" else count
    if limit == 0:
        raise LookupError("the model makes no mistakes on these test images")
    return kind, check_int(int(params[name]), name, 0, limit - 1), views


GEOMETRY = {"size": (1, 256), "kernel": (1, 64), "stride": (1, 64), "padding": (0, 64)}  # name -> (low, high)


def parse_geometry_query(query):
    """'size=H&kernel=K&stride=S&padding=P', all four, any order -> dict of ints within GEOMETRY's bounds."""
    usage = "the query must be size=H&kernel=K&stride=S&padding=P"
    params = query_params(query, usage)
    if set(params) != set(GEOMETRY):
        raise UserError(f"{usage}, got {abridged(query)}")
    values = {}
    for name, (low, high) in GEOMETRY.items():
        if not DIGITS.fullmatch(params[name]):
            raise UserError(f"{name} must be an integer >= {low} and <= {high}, got {abridged(params[name])}")
        values[name] = check_int(int(params[name]), name, low, high)
    return values
