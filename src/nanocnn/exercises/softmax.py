"""Exercise: softmax with cross-entropy, ``softmax_cross_entropy(logits, labels) -> (loss, dlogits)``: the mean
over the batch of -log softmax(logits[n])[labels[n]], and its gradient (softmax - onehot) / N."""

import numpy as np

from ..nn import reference, softmax
from .checks import Verdict, as_array, call, compare, over_cases

# (N, classes, spread, offset of the logits): the last two have logits near 1000 and -800, where exp overflows
# to inf and underflows to 0
CASES = [(4, 3, 1.0, 0.0), (1, 10, 3.0, 0.0), (6, 10, 5.0, 0.0), (3, 5, 3.0, 1000.0), (2, 4, 3.0, -800.0)]


def check_softmax_cross_entropy(softmax_cross_entropy) -> Verdict:
    """softmax_cross_entropy(logits (N, K), labels (N,)) -> (loss, dlogits (N, K)), checked on CASES."""
    what = "the loss and its gradient, also for logits near 1000 and -800"
    return over_cases(softmax_case, softmax_cross_entropy, CASES, "softmax_cross_entropy", what)


def softmax_case(softmax_cross_entropy, case, seed):
    """None if softmax_cross_entropy is right on this case, else the Verdict."""
    N, K, spread, offset = case
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((N, K)) * spread + offset
    labels = rng.integers(0, K, N)
    where = f"{N} examples, {K} classes, logits from {logits.min():.4g} to {logits.max():.4g}"
    got = call(softmax_cross_entropy, "softmax_cross_entropy", (logits.copy(), labels.copy()), where)
    if isinstance(got, Verdict):
        return got
    if not (isinstance(got, tuple | list) and len(got) == 2):
        return Verdict(False, f"softmax_cross_entropy should return two things, (loss, dlogits) ({where})")
    got_loss, got_grad = as_array(got[0], "the loss", where), as_array(got[1], "dlogits", where)
    for answer in (got_loss, got_grad):
        if isinstance(answer, Verdict):
            return answer
    if offset and not (np.all(np.isfinite(got_loss)) and np.all(np.isfinite(got_grad))):
        return Verdict(
            False,
            f"overflow: with logits near {offset:.0f}, exp() gives inf or 0 and the answer is not a number; "
            f"subtract each row's maximum from its logits first, which leaves the softmax unchanged ({where})",
        )
    if got_loss.shape != ():
        return Verdict(False, f"the loss should be one number, the batch's mean, not shape {got_loss.shape} ({where})")
    loss, dlogits = reference.softmax_cross_entropy(logits, labels)
    p, onehot = softmax(logits), np.eye(K)[labels]
    verdict = compare(
        got_loss,
        np.asarray(loss),
        [("the loss is summed over the batch, not averaged", lambda: loss * N)],
        "the loss",
        where,
    )
    if verdict is not None:
        return verdict
    mistakes = [
        ("dlogits is not divided by the batch size N (the loss is a mean)", lambda: p - onehot),
        ("dlogits is the softmax alone: subtract 1 at each example's label", lambda: p / N),
        ("dlogits has the wrong sign: it is (softmax - onehot) / N", lambda: (onehot - p) / N),
    ]
    return compare(got_grad, dlogits, mistakes, "dlogits", where)
