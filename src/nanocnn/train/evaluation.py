"""A model on a test set: logits and probabilities for many images on threads, loss, accuracy, confusion, mistakes."""

import numpy as np

from ..backend.inference import infer, part_size
from ..nn.losses import log_softmax
from ..parallel import LOCAL


def predict_logits(model, images, threads=None, world=LOCAL):
    """images : (N, C, H, W) -> logits (N, K), in eval mode, the model's inference parts spread over threads.

    threads: None for every usable CPU (at most 8), or a count; the numbers do not depend on it.
    world: in an MPI job (parallel/mpi.py) each process computes its share of the parts, and every
    process gets all the logits. The model is left in the mode it was in.
    """
    size = part_size(model, images.shape[1:], images.dtype)
    mine = world.share(-(-len(images) // size))  # whole parts; in one process: all of them
    was_training = model.training
    model.eval()
    try:
        logits = infer(model, images[mine.start * size : mine.stop * size], threads)  # the same parts
    finally:
        model.train(was_training)
    return world.gather([logits])


def predict_proba(model, images, threads=None):
    """images : (N, C, H, W) -> class probabilities (N, K); rows sum to 1."""
    return np.exp(log_softmax(predict_logits(model, images, threads)))


def evaluate(model, split, threads=None, world=LOCAL):
    """Returns (mean cross-entropy, accuracy, predicted labels (N,)) on a data.Split (world: as for predict_logits).

    The loss is computed from log-softmax of the logits, never as log(p): p can underflow to 0.
    """
    logp = log_softmax(predict_logits(model, split.images, threads, world))
    loss = -logp[np.arange(len(logp)), split.labels].mean(dtype=np.float64)
    predicted = logp.argmax(axis=1)
    return float(loss), float((predicted == split.labels).mean()), predicted


def confusion_matrix(labels, predicted, num_classes):
    """(K, K) counts: row = true class, column = predicted class."""
    return np.bincount(labels * num_classes + predicted, minlength=num_classes**2).reshape(num_classes, num_classes)


def ranked_mistakes(labels, proba):
    """Indices of the wrong predictions (labels (N,), proba (N, K)), the most confident first."""
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    return wrong[np.argsort(-proba[wrong, predicted[wrong]], kind="stable")]
