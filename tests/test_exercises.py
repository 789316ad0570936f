"""The tutorial's checkers (nanocnn.exercises): each accepts the teachers' solution and rejects the typical
wrong ones, naming the mistake in one sentence."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import nanocnn as nc
from nanocnn import exercises

spec = importlib.util.spec_from_file_location("solutions", Path(__file__).parent.parent / "docs/tutorial/solutions.py")
solutions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(solutions)


def rejected(verdict, *words):
    text = str(verdict)
    assert not verdict and text.startswith("not yet: ") and "\n" not in text, text
    for word in words:
        assert word in text, text
    return text


def test_the_solutions_are_right():
    for check, solution in [
        (exercises.check_output_size, solutions.output_size),
        (exercises.check_conv2d_forward, solutions.conv2d),
        (exercises.check_conv2d_backward, solutions.conv2d_backward),
        (exercises.check_maxpool2d_backward, solutions.maxpool2d_backward),
        (exercises.check_softmax_cross_entropy, solutions.softmax_cross_entropy),
        (exercises.check_training_step, solutions.training_step),
        (exercises.check_batch_norm_forward, solutions.batch_norm),
    ]:
        verdict = check(solution)
        assert verdict and str(verdict).startswith("right: ") and "matches nanocnn's reference" in str(verdict)


def test_output_size_mistakes():
    rejected(exercises.check_output_size(lambda H, K, S, P: (H + 2 * P - K) // S), "forgot the + 1")
    rejected(exercises.check_output_size(lambda H, K, S, P: (H + P - K) // S + 1), "2 * padding")
    rejected(exercises.check_output_size(lambda H, K, S, P: H + 2 * P - K + 1), "ignored the stride")
    rejected(exercises.check_output_size(lambda H, K, S, P: (H + 2 * P - K) / S + 1), "use //")
    rejected(exercises.check_output_size(lambda H, K, S, P: None), "returned None")


def conv_with(stride_used=None, pad=None, flip=False, bias=True, short=False):
    """The solution's conv2d with one mistake: the stride it uses, how it pads, a flipped kernel, no bias."""

    def conv2d(x, weight, b, stride, padding):
        w = weight[:, :, ::-1, ::-1] if flip else weight
        top, bottom = pad(padding) if pad else (padding, padding)
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (top, bottom)))
        out = solutions.conv2d(xp, w, b if bias else np.zeros_like(b), stride_used or stride, 0)
        return out[:, :, :-1, :-1] if short else out

    return conv2d


@pytest.mark.parametrize(
    "wrong, words",
    [
        (conv_with(stride_used=1), "the stride is ignored"),
        (conv_with(pad=lambda p: (p, 0)), "padding on one side only"),
        (conv_with(pad=lambda p: (2 * p, 0)), "padding on one side only"),
        (conv_with(pad=lambda p: (0, 0)), "the padding is ignored"),
        (conv_with(flip=True), "the kernel is flipped"),
        (conv_with(bias=False), "the bias is missing"),
        (conv_with(short=True), "one output row and column short"),
        (lambda x, w, b, s, p: solutions.conv2d(x, w, b, s, p) + 1e-3, "conv2d's output["),
        (lambda x, w, b, s, p: x[0, 0, 0, 99], "raised IndexError"),
    ],
)
def test_conv2d_mistakes(wrong, words):
    rejected(exercises.check_conv2d_forward(wrong), words)


def test_conv2d_backward_mistakes():
    def stride_ignored_in_dweight(x, weight, dout, stride, padding):
        dx, _, db = solutions.conv2d_backward(x, weight, dout, stride, padding)
        return dx, exercises.conv.kernel_gradient_without_stride(x, weight, dout, padding), db

    def no_bias_gradient(x, weight, dout, stride, padding):
        dx, dw, db = solutions.conv2d_backward(x, weight, dout, stride, padding)
        return dx, dw, np.zeros_like(db)

    def flipped_dx(x, weight, dout, stride, padding):
        _, dw, db = solutions.conv2d_backward(x, weight, dout, stride, padding)
        return solutions.conv2d_backward(x, weight[:, :, ::-1, ::-1], dout, stride, padding)[0], dw, db

    def uncropped(x, weight, dout, stride, padding):
        dx, dw, db = solutions.conv2d_backward(x, weight, dout, stride, padding)
        return np.pad(dx, ((0, 0), (0, 0), (padding, padding), (padding, padding))), dw, db

    rejected(exercises.check_conv2d_backward(stride_ignored_in_dweight), "the stride is ignored in the kernel gradient")
    rejected(exercises.check_conv2d_backward(no_bias_gradient), "the bias gradient is zero")
    rejected(exercises.check_conv2d_backward(flipped_dx), "dx: the kernel is flipped")
    rejected(exercises.check_conv2d_backward(uncropped), "padding border was not cropped")
    rejected(exercises.check_conv2d_backward(lambda *a: solutions.conv2d_backward(*a)[:2]), "three arrays")


@pytest.mark.parametrize(
    "pick, add, step, words",
    [
        ("window", True, None, "every cell of the window"),
        ("average", True, None, "average pooling"),
        ("all", True, None, "every maximum"),
        ("last", True, None, "the last maximum"),
        ("first", False, None, "overwritten instead of added"),
        ("first", True, 1, "the stride is ignored"),
    ],
)
def test_maxpool2d_backward_mistakes(pick, add, step, words):
    def wrong(x, dout, kernel, stride):
        return exercises.pool.loop(x, dout, kernel, stride, pick, add, step)

    rejected(exercises.check_maxpool2d_backward(wrong), words)


def test_softmax_cross_entropy_mistakes():
    def naive(logits, labels):  # no shift: exp overflows
        with np.errstate(all="ignore"):
            p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            loss = -np.log(p[np.arange(len(labels)), labels]).mean()
        p[np.arange(len(labels)), labels] -= 1
        return loss, p / len(labels)

    def scaled(loss_factor, grad):
        def wrong(logits, labels):
            loss, dlogits = solutions.softmax_cross_entropy(logits, labels)
            return loss * loss_factor(len(labels)), grad(dlogits, logits, labels)

        return wrong

    rejected(exercises.check_softmax_cross_entropy(naive), "overflow", "subtract each row's maximum")
    rejected(exercises.check_softmax_cross_entropy(scaled(lambda n: n, lambda d, z, y: d)), "summed over the batch")
    rejected(exercises.check_softmax_cross_entropy(scaled(lambda n: 1, lambda d, z, y: d * len(y))), "not divided by")
    rejected(exercises.check_softmax_cross_entropy(scaled(lambda n: 1, lambda d, z, y: -d)), "wrong sign")
    rejected(
        exercises.check_softmax_cross_entropy(scaled(lambda n: 1, lambda d, z, y: d + np.eye(z.shape[1])[y] / len(y))),
        "the softmax alone",
    )


def test_batch_norm_mistakes():
    def wrong(axes=(0, 2, 3), ddof=0, inside=True, swap=False):
        def batch_norm(x, gamma, beta, eps):
            m, v = x.mean(axis=axes, keepdims=True), x.var(axis=axes, keepdims=True, ddof=ddof)
            xhat = (x - m) / (np.sqrt(v + eps) if inside else np.sqrt(v) + eps)
            g, b = (beta, gamma) if swap else (gamma, beta)
            return xhat * g[None, :, None, None] + b[None, :, None, None]

        return batch_norm

    rejected(exercises.check_batch_norm_forward(wrong(ddof=1)), "count - 1")
    rejected(exercises.check_batch_norm_forward(wrong(axes=(2, 3))), "each example has its own statistics")
    rejected(exercises.check_batch_norm_forward(wrong(axes=(0,))), "at each position")
    rejected(exercises.check_batch_norm_forward(wrong(axes=(0, 1, 2, 3))), "mix the channels")
    rejected(exercises.check_batch_norm_forward(wrong(inside=False)), "inside the square root")
    rejected(exercises.check_batch_norm_forward(wrong(swap=True)), "gamma and beta are swapped")


def test_training_step_mistakes():
    def no_step(model, optimizer, images, labels):
        loss, d = nc.softmax_cross_entropy(model(images), labels)
        model.backward(d, input_grad=False)
        return loss

    def no_zero_grad(model, optimizer, images, labels):
        loss, d = nc.softmax_cross_entropy(model(images), labels)
        model.backward(d, input_grad=False)
        optimizer.step()
        return loss

    def no_loss(model, optimizer, images, labels):
        solutions.training_step(model, optimizer, images, labels)
        return 0.0

    rejected(exercises.check_training_step(no_step), "call optimizer.step()")
    rejected(exercises.check_training_step(no_zero_grad), "optimizer.zero_grad()")
    rejected(exercises.check_training_step(no_loss), "not the batch's mean loss")


class Square(nc.Module):
    """out = weight * x ** 2, one weight per channel: a layer written to the README's contract."""

    def __init__(self, channels, mistake=None):
        self.weight = nc.Parameter(np.linspace(0.5, 1.5, channels).reshape(1, channels, 1, 1))
        self.mistake = mistake

    def forward(self, x):
        self.x = x
        return self.weight.data * x**2

    def backward(self, grad_out, input_grad=True):
        grad = (grad_out * self.x**2).sum(axis=(0, 2, 3), keepdims=True)
        if self.mistake == "replace":
            self.weight.grad[...] = grad
        elif self.mistake != "no weight grad":
            self.weight.grad += grad
        factor = 1 if self.mistake == "no factor 2" else 2
        return grad_out * factor * self.weight.data * self.x


def test_layer_gradient_check():
    assert exercises.check_layer_gradients(Square(3), (2, 3, 4, 5))
    rejected(exercises.check_layer_gradients(Square(3, "no factor 2"), (2, 3, 4, 5)), "the input gradient is wrong")
    rejected(exercises.check_layer_gradients(Square(3, "no weight grad"), (2, 3, 4, 5)), "weight.grad stayed zero")
    rejected(exercises.check_layer_gradients(Square(3, "replace"), (2, 3, 4, 5)), "replaced weight.grad")
    layer = Square(3)
    layer.weight = nc.Parameter(layer.weight.data.astype(np.float32))
    rejected(exercises.check_layer_gradients(layer, (2, 3, 4, 5)), "float64")
