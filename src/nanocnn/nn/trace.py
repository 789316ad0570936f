"""One example through a network, layer by layer, with every number kept: what the page and the plots show.

    trace = Trace(model, image)        # image (C, H, W): forward, every layer's input and output kept
    trace.outputs[i]                   # (C', H', W') or (K,): what top-level layer i computed
    trace.backward(trace.onehot(k))    # d logit_k / d everything: trace.output_grads[i], trace.input_grad
    trace.loss_backward(label)         # the same for the cross-entropy loss of ``label``; returns the loss
    twin = trace.sgd_step(lr)          # a private copy of the model after one SGD step on those gradients

A trace runs on a replica of the model (Module.replicate: the same weights, its own gradients and
caches) in eval mode (Dropout off), so the model itself is never switched to another mode or changed:
any number of traces may run at once on one model, as a server's requests do. With ``gradients=False``
nothing is kept for backward and the numbers are exactly those ``model(x)`` gives in eval mode; with
gradients the layers take their training paths, equal to those up to float rounding.
"""

import numpy as np

from .losses import softmax, softmax_cross_entropy


class Trace:
    """Every top-level layer's input and output for one example, and after ``backward`` their gradients."""

    def __init__(self, model, image, gradients=True):
        self.model = model.replicate().eval().enable_grad(gradients)
        self.image = image
        self.inputs, self.outputs = [], []  # per layer, one example each (no N axis)
        x = image[None]  # (1, C, H, W)
        for layer in self.model.layers:
            self.inputs.append(x[0])
            x = layer(x)
            self.outputs.append(x[0])
        self.logits = x[0]  # (K,)
        self.probabilities = softmax(x)[0]  # (K,)
        self.output_grads = self.input_grad = None

    @property
    def prediction(self) -> int:
        return int(self.logits.argmax())

    def onehot(self, k):
        """The gradient that backpropagates logit k alone: 1 at k, 0 elsewhere, shaped like the logits."""
        g = np.zeros_like(self.logits)
        g[k] = 1
        return g

    def backward(self, dlogits):
        """dlogits (K,): the gradient at the network's output -> dL/dimage (C, H, W). Keeps, per layer, the
        gradient with respect to its output (``output_grads[i]``), and leaves each parameter's in its .grad."""
        if self.output_grads is not None:
            raise RuntimeError("Trace.backward runs once per trace (the layers' caches are used up)")
        # the replica's gradients start at zero (Module.replicate), and this runs once: nothing to clear
        g = dlogits[None]
        grads = [None] * len(self.outputs)
        for i in reversed(range(len(grads))):
            grads[i] = g[0]
            g = self.model.layers[i].backward(g)
        self.output_grads, self.input_grad = grads, g[0]
        return self.input_grad

    def loss_backward(self, label):
        """Backpropagate the softmax cross-entropy of ``label``; returns the loss."""
        loss, dlogits = softmax_cross_entropy(self.logits[None], np.array([label]))
        self.backward(dlogits[0])
        return loss

    def sgd_step(self, lr):
        """A private copy of the model after one step w -= lr * dL/dw with the gradients of ``backward``:
        the model the trace was made from, and its weights, never change."""
        if self.output_grads is None:
            raise RuntimeError("Trace.sgd_step needs the gradients of a backward pass first")
        twin = self.model.clone().eval()
        for p, q in zip(twin.parameters(), self.model.parameters()):
            p.data -= lr * q.grad
        return twin
