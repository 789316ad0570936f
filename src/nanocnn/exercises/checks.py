"""What every checker shares: the verdict, calling the learner's function safely, and comparing an answer with
the reference and with the typical mistakes, each a function that computes what that mistake gives."""

import numpy as np


class Verdict:
    """A checker's answer: ``ok`` and one sentence. A notebook shows the sentence; ``bool(verdict)`` is ok."""

    def __init__(self, ok: bool, message: str):
        self.ok, self.message = ok, message

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return ("right: " if self.ok else "not yet: ") + self.message

    __str__ = __repr__


def close(a, b, tol=1e-7):
    """Same shape and every value within tol of b's scale (float64 cases: a right answer is off by ~1e-15)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        return False
    return bool(np.abs(a - b).max(initial=0) <= tol * max(1.0, np.abs(b).max(initial=0)))


def call(fn, name, args, where):
    """fn(*args) as an array, or a Verdict saying why there is none (it raised, returned None or not numbers)."""
    try:
        got = fn(*args)
    except Exception as error:  # the learner's code: any error is an answer to report, not to crash on
        return Verdict(False, f"{name} raised {type(error).__name__}: {error} ({where})")
    if got is None:
        return Verdict(False, f"{name} returned None ({where}): did it forget to return its result?")
    return got


def as_array(got, name, where):
    try:
        return np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return Verdict(False, f"{name} returned {type(got).__name__}, not an array of numbers ({where})")


def compare(got, expected, mistakes, what, where, tol=1e-7):
    """None when ``got`` is ``expected``; else a Verdict naming the mistake it matches (``mistakes``: [(sentence,
    function giving that mistake's answer)]), or the wrong shape, or the first wrong value and its position."""
    got = as_array(got, what, where)
    if isinstance(got, Verdict):
        return got
    if close(got, expected, tol):
        return None
    for sentence, mistake in mistakes:
        wrong = mistake()
        if wrong is not None and close(got, wrong, tol) and not close(wrong, expected, tol):
            return Verdict(False, f"{what}: {sentence} ({where})")
    if got.shape != expected.shape:
        return Verdict(False, f"{what} has shape {got.shape}, expected {expected.shape} ({where})")
    if not np.all(np.isfinite(got)):
        position = tuple(int(i) for i in np.argwhere(~np.isfinite(got))[0])
        return Verdict(False, f"{what}{list(position)} is {got[position]}, not a finite number ({where})")
    position = tuple(int(i) for i in np.unravel_index(np.abs(got - expected).argmax(), got.shape))
    return Verdict(False, f"{what}{list(position)} is {got[position]:.6g}, expected {expected[position]:.6g} ({where})")


def right(name, count, what):
    return Verdict(True, f"{name} matches nanocnn's reference on all {count} cases ({what})")


def over_cases(check_case, learner, cases, name, what):
    """The first case's Verdict where ``check_case(learner, case, seed)`` finds something wrong, else "right"."""
    for seed, case in enumerate(cases):
        verdict = check_case(learner, case, seed)
        if verdict is not None:
            return verdict
    return right(name, len(cases), what)
