"""Exercises on whole layers and training: a layer's gradients by finite differences (for a layer of the
learner's own, written to the README's contract), batch norm's forward pass, and one step of training."""

import numpy as np

from ..nn import SGD, Conv2d, Flatten, Linear, ReLU, Sequential, reference, softmax_cross_entropy
from .checks import Verdict, call, close, compare, over_cases, right


def numerical(f, x, eps=1e-6):
    """Central differences of the number f() with respect to every entry of x (changed in place, restored)."""
    grad, flat = np.zeros_like(x), x.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        grad.reshape(-1)[i] = (plus - f()) / (2 * eps)
        flat[i] = old
    return grad


def first_difference(got, expected, what):
    position = tuple(int(i) for i in np.unravel_index(np.abs(got - expected).argmax(), got.shape))
    return (
        f"{what} is wrong: at {list(position)} backward gives {got[position]:.6g}, finite differences "
        f"{expected[position]:.6g}"
    )


def check_layer_gradients(layer, input_shape, seed=0, tol=1e-6) -> Verdict:
    """The layer's backward against finite differences of L = sum(layer(x) * R) in float64, for its input
    (N, C, H, W) = ``input_shape`` and every parameter; then that a second backward adds to .grad."""
    params = layer.named_parameters()
    if any(p.data.dtype != np.float64 for _, p in params):
        return Verdict(False, "the check needs float64 parameters: build the layer with dtype=np.float64")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(input_shape)
    layer.train()
    out = call(layer, "the layer", (x,), f"input of shape {tuple(input_shape)}")
    if isinstance(out, Verdict):
        return out
    R = rng.standard_normal(np.shape(out))
    layer.zero_grad()
    layer(x)
    dx = call(layer.backward, "backward", (R.copy(),), f"input of shape {tuple(input_shape)}")
    if isinstance(dx, Verdict):
        return dx
    grads = {name: p.grad.copy() for name, p in params}

    def loss():
        return float((layer(x) * R).sum())

    if np.shape(dx) != x.shape:
        return Verdict(False, f"backward returned shape {np.shape(dx)}: the input gradient has x's shape {x.shape}")
    expected = numerical(loss, x)
    if not close(dx, expected, tol):
        return Verdict(False, first_difference(np.asarray(dx), expected, "the input gradient"))
    for name, p in params:
        expected = numerical(loss, p.data)
        if not close(grads[name], expected, tol):
            if not np.any(grads[name]) and np.any(expected):
                return Verdict(False, f"{name}.grad stayed zero: backward must add the gradient into {name}.grad")
            return Verdict(False, first_difference(grads[name], expected, f"{name}'s gradient"))
    layer(x)
    layer.backward(R.copy())  # a second backward without zero_grad: the gradients add up
    for name, p in params:
        if not close(p.grad, 2 * grads[name], tol):
            return Verdict(
                False, f"backward replaced {name}.grad instead of adding to it (+=): parts of a batch add theirs"
            )
    names = ", ".join(name for name, _ in params) or "no parameters"
    return Verdict(True, f"backward agrees with finite differences for the input and {names}, and adds to .grad")


BN_CASES = [(4, 3, 5, 5), (2, 2, 3, 4), (8, 1, 2, 2), (1, 4, 6, 6)]


def check_batch_norm_forward(batch_norm) -> Verdict:
    """batch_norm(x (N, C, H, W), gamma (C,), beta (C,), eps) -> out: training mode, the batch's own statistics
    per channel over (N, H, W), the variance biased (divided by the count), as BatchNorm2d normalises."""
    what = "per channel over (N, H, W), one example alone too"
    return over_cases(batch_norm_case, batch_norm, BN_CASES, "batch_norm", what)


def batch_norm_case(batch_norm, shape, seed, eps=0.01):
    """None if batch_norm is right on this shape, else the Verdict."""
    rng = np.random.default_rng(seed)
    C = shape[1]
    x = rng.standard_normal(shape) * 3 + 1
    gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
    where = f"x of shape {shape}"
    got = call(batch_norm, "batch_norm", (x.copy(), gamma.copy(), beta.copy(), eps), where)
    if isinstance(got, Verdict):
        return got
    expected = reference.batch_norm_forward(x, gamma, beta, eps)[0]
    g, b = gamma[None, :, None, None], beta[None, :, None, None]

    def normalised(axes, ddof=0, inside=True):
        m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True, ddof=ddof)
        return (x - m) / (np.sqrt(v + eps) if inside else np.sqrt(v) + eps)

    mistakes = [
        (
            "the variance divides by count - 1: batch norm normalises with the biased one",
            lambda: normalised((0, 2, 3), 1) * g + b,
        ),
        (
            "each example has its own statistics: a channel's are over the whole batch (N, H, W)",
            lambda: normalised((2, 3)) * g + b,
        ),
        (
            "the statistics are over the batch at each position: a channel's are over (N, H, W)",
            lambda: normalised((0,)) * g + b,
        ),
        ("the statistics mix the channels: each channel has its own", lambda: normalised((0, 1, 2, 3)) * g + b),
        (
            "eps is added to the standard deviation: it goes inside the square root",
            lambda: normalised((0, 2, 3), 0, False) * g + b,
        ),
        ("gamma and beta are swapped: gamma scales, beta shifts", lambda: normalised((0, 2, 3)) * b + g),
    ]
    return compare(got, expected, mistakes, "batch_norm's output", where, tol=1e-6)


def small_model(seed):
    rng = np.random.default_rng(seed)
    conv = Conv2d(1, 3, 3, dtype=np.float64, rng=rng)
    return Sequential(conv, ReLU(), Flatten(), Linear(3 * 4 * 4, 4, dtype=np.float64, rng=rng))


def reference_step(model, optimizer, images, labels):
    loss, dlogits = softmax_cross_entropy(model(images), labels)
    model.backward(dlogits, input_grad=False)
    optimizer.step()
    optimizer.zero_grad()
    return loss


def check_training_step(training_step) -> Verdict:
    """training_step(model, optimizer, images, labels) -> loss: forward, loss, backward, step, and the gradients
    cleared for the next step; run for 3 steps on a small network beside nanocnn's own step."""
    rng = np.random.default_rng(0)
    batches = [(rng.random((5, 1, 6, 6)), rng.integers(0, 4, 5)) for _ in range(3)]
    theirs, ours, stale = small_model(1), small_model(1), small_model(1)
    start = {k: v.copy() for k, v in theirs.state_dict().items()}
    their_opt, our_opt, stale_opt = (SGD(m.parameters(), lr=0.5) for m in (theirs, ours, stale))
    for step, (images, labels) in enumerate(batches, 1):
        where = f"step {step} of 3, a batch of 5 images"
        loss = call(training_step, "training_step", (theirs, their_opt, images, labels), where)
        if isinstance(loss, Verdict):
            return loss
        expected = reference_step(ours, our_opt, images, labels)
        _, dlogits = softmax_cross_entropy(stale(images), labels)  # the step without zero_grad
        stale.backward(dlogits, input_grad=False)
        stale_opt.step()
        state, wanted, stale_state = theirs.state_dict(), ours.state_dict(), stale.state_dict()
        if all(np.array_equal(state[k], start[k]) for k in state):
            return Verdict(False, f"the weights did not change: call optimizer.step() after backward ({where})")
        if all(close(state[k], stale_state[k]) for k in state) and not all(
            close(wanted[k], stale_state[k]) for k in state
        ):
            return Verdict(
                False,
                f"the previous step's gradients were still in .grad: backward adds to them, so clear them with "
                f"optimizer.zero_grad() after each step ({where})",
            )
        for k in state:
            verdict = compare(state[k], wanted[k], [], f"the weights {k} after the step", where)
            if verdict is not None:
                return verdict
        if not close(np.float64(loss), expected):
            return Verdict(
                False, f"training_step returned {loss!r}, not the batch's mean loss {expected:.6g} ({where})"
            )
    return right("training_step", 3, "the weights after each step and the losses")
