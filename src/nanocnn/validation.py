"""Checks of the values users give (arguments, settings, arrays, files) and the one error class they raise.

Every rule is written once, here, and reads the same wherever it applies: a layer's ``stride``, the
CLI's ``--batch-size`` and a request to the server all say "must be an integer >= 1, got 0". The
message names the thing (prefixed by its owner, e.g. "Conv2d: "), the rule and the value, on one line.

``UserError`` subclasses ``ValueError``, so ``except ValueError`` keeps working. The CLI turns exactly
this class (and file-system errors) into ``error: <message>`` with exit status 2; any other exception
is a bug in nanocnn and keeps its traceback.
"""

import math
import reprlib
from numbers import Integral, Real

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class UserError(ValueError):
    """Bad input from the user: a value, a setting, a file, data or a request. One line, naming the value."""


def abridged(value, limit=60):
    """A value as it reads in an error message: its repr, long strings and lists abridged (reprlib)."""
    text = reprlib.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(error):
    """An exception as the CLI and the server report it: its message's first line (else its class name)."""
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def reject_constant(name):
    """json.loads's parse_constant: NaN and Infinity are not JSON, and nanocnn does not accept them."""
    raise ValueError(f"{name} is not JSON")


def _owner(owner):
    return f"{owner}: " if owner else ""


def is_int(value):
    """True for Python and numpy integers, never for bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def check_int(value, name, low=None, high=None, owner=None):
    """An integer in [low, high] (either bound may be None); returns it as an int."""
    if not (is_int(value) and (low is None or value >= low) and (high is None or value <= high)):
        rule = " and ".join(
            r for r in (f">= {low}" if low is not None else "", f"<= {high}" if high is not None else "") if r
        )
        raise UserError(f"{_owner(owner)}{name} must be an integer{' ' + rule if rule else ''}, got {abridged(value)}")
    return int(value)


def check_real(value, name, low=None, high=None, low_open=False, high_open=False, owner=None):
    """A finite real number within the bounds (closed unless ``*_open``); returns it as a float."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        rules = []
        if low is not None:
            rules.append(f"{'>' if low_open else '>='} {low}")
        if high is not None:
            rules.append(f"{'<' if high_open else '<='} {high}")
        rule = " and ".join(rules)
        raise UserError(
            f"{_owner(owner)}{name} must be a finite number{' ' + rule if rule else ''}, got {abridged(value)}"
        )
    return float(value)


def check_choice(value, name, choices, owner=None):
    """One of ``choices`` (a collection of allowed values); returns it."""
    if value not in choices:
        raise UserError(f"{_owner(owner)}unknown {name} {value!r}; choose one of {', '.join(map(str, choices))}")
    return value


def check_pair(value, name, low=1, owner=None):
    """An int or an (h, w) pair of ints >= low -> a tuple of two ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if not (len(items) == 2 and all(is_int(v) and v >= low for v in items)):
        raise UserError(f"{_owner(owner)}{name} must be an integer >= {low} or a pair of them, got {abridged(value)}")
    return int(items[0]), int(items[1])


def check_float_dtype(dtype, owner):
    """float32 (training) or float64 (gradient checks); returns the np.dtype."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOAT_DTYPES:
        raise UserError(f"{owner}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def check_array(x, owner, ndim=None, channels=None, dtype=None):
    """A floating ndarray; of rank ``ndim`` (4 means (N, C, H, W)), ``channels`` on axis 1, exactly ``dtype``."""
    if not isinstance(x, np.ndarray):
        raise UserError(f"{owner}: input must be a numpy array, got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        what = "rank 4 (N, C, H, W)" if ndim == 4 else f"rank {ndim}"
        raise UserError(f"{owner}: input must have {what}, got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise UserError(f"{owner}: input must have {channels} channels (axis 1), got shape {x.shape}")
    if x.dtype.kind != "f":  # np.issubdtype(x.dtype, np.floating), without its microseconds per call
        raise UserError(f"{owner}: input must be a floating array, got dtype {x.dtype}")
    if dtype is not None and x.dtype != dtype:
        raise UserError(f"{owner}: input dtype must be {np.dtype(dtype)} like the layer's weights, got {x.dtype}")
    return x


def check_kernel_fits(owner, hw, kernel, padding):
    """The (KH, KW) kernel must fit the (H, W) input once padded."""
    (H, W), (KH, KW), (PH, PW) = hw, kernel, padding
    if H + 2 * PH < KH or W + 2 * PW < KW:
        raise UserError(
            f"{owner}: kernel {KH}x{KW} is larger than the padded input {H + 2 * PH}x{W + 2 * PW} "
            f"(input {H}x{W}, padding {PH}x{PW})"
        )


def check_labels(labels, n, num_classes, owner="softmax_cross_entropy"):
    """n integer labels in [0, num_classes) -> the array."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise UserError(f"{owner}: labels must have shape ({n},), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{owner}: labels must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise UserError(f"{owner}: labels must be in [0, {num_classes}), got {bad}")
    return labels
