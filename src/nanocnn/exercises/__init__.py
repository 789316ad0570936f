"""Checkers for the tutorial's exercises (docs/tutorial/): each takes the learner's function, runs it on several
shapes beside nanocnn's loop reference (nn/reference.py), and answers in one sentence: right, or what is wrong
(a wrong shape, a wrong value at a named position, or a typical mistake recognised by name)."""

from .checks import Verdict
from .conv import check_conv2d_backward, check_conv2d_forward, check_output_size
from .layers import check_batch_norm_forward, check_layer_gradients, check_training_step
from .pool import check_maxpool2d_backward
from .softmax import check_softmax_cross_entropy

__all__ = [
    "Verdict",
    "check_batch_norm_forward",
    "check_conv2d_backward",
    "check_conv2d_forward",
    "check_layer_gradients",
    "check_maxpool2d_backward",
    "check_output_size",
    "check_training_step",
    "check_softmax_cross_entropy",
]
