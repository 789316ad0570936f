"""The inference plan: an eval-mode Sequential's layers regrouped into fused steps with kept buffers.

``Sequential.forward`` (gradients off) runs every piece of a batch through ``Plan.run``. The plan walks
the layers once and groups known patterns; every other layer (custom layers, a layer whose own
gradients are on, a Dropout in training mode) runs its own ``forward``, unfused. Each fusion is exact:
the plan's outputs equal the layers' eval-mode forwards run one by one, to the bit, on the same piece.

1. **Conv2d block**: a Conv2d followed by any run of ReLU, eval-mode Dropout and at most one MaxPool2d
   computes ``relu(maxpool(conv_without_bias(x)) + bias)``, in place in the block's buffers:
   - the pool runs before the bias: rounding ``y + b`` is monotone in ``y``, so
     ``max_i fl(y_i + b) == fl(max_i y_i + b)`` (padding is -inf on both sides), and the bias is added
     to the pooled array, KH*KW times smaller;
   - ReLU runs after the pool: ``max(max_i z_i, 0) == max_i max(z_i, 0)`` (ReLU is monotone, and a NaN
     propagates through both), on the small array, in place; a second ReLU changes nothing;
   - without a pool the bias is added by the kernel exactly as the layer adds it, then ReLU in place
     instead of into a new array (the same ``np.maximum`` against zeros).
2. **MaxPool2d block**: ReLUs and eval Dropouts around one MaxPool2d: pool, then ReLU in place (as 1).
3. **Dropout in eval mode** is the identity (``Dropout.forward`` returns its input): skipped.
4. **Prepared blocks, kept arrays**: each thread keeps, per block and input shape, the block's arrays
   (the convolution strategy's workspace with its zero borders already written, the conv output, the
   pooled output) and the strategy object (convolution.py) with every view it needs, so a piece costs
   only the copies and products themselves: no allocation, and little Python (which holds the GIL, and
   with it the other threads). Nothing is shared between threads but the plan, read-only once built.

A block runs the same convolution strategy object, the same pooling kernel and the same ufuncs as the
layers do, after the same argument checks; Linear calls its layer's kernel, Flatten is the same
reshape. A result that lives in a kept array is copied before it is returned: the caller owns it.
"""

import math
import threading

import numpy as np

from . import functional
from .convolution import STRATEGIES, workspace_size
from .convolution import strategy as conv_strategy
from .functional import from_chwn, zeros_like
from .layers import Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU
from .validation import check_array, check_fits

KEPT = 8  # prepared blocks per thread and step (input shapes); more replace them all


def signature(layers):
    """What a plan depends on: each layer's identity and modes (its fusion choices, not the input shape)."""
    return tuple((id(layer), layer.training, layer.grad_enabled) for layer in layers)


def _plain(layer, kind):
    """The layer is of this built-in kind and behaves as in eval mode (gradients off)."""
    return type(layer) is kind and not layer.grad_enabled


def _identity(layer):
    return _plain(layer, Dropout) and not layer.training


class Plan:
    """Fused steps for ``layers`` (see the module docstring); ``run(x)`` on one piece (n, ...) -> the output."""

    def __init__(self, layers):
        self.layers = list(layers)  # held, so that no other layer can take one of their ids
        self.steps = []
        self.piece_sizes = {}  # (input shape, dtype) -> Sequential.piece_size
        self._local = threading.local()
        i = 0
        while i < len(layers):
            i = self._group(layers, i)

    def _group(self, layers, i):
        """Append the step that starts at layers[i]; returns the index after it."""
        layer = layers[i]
        if _identity(layer):
            return i + 1
        if _plain(layer, Conv2d) or (_plain(layer, ReLU) or _plain(layer, MaxPool2d)):
            conv = layer if _plain(layer, Conv2d) else None
            j, pool, relu = i + (conv is not None), None, False
            while j < len(layers):
                follower = layers[j]
                if _plain(follower, ReLU):
                    relu = True
                elif _plain(follower, MaxPool2d) and pool is None:
                    pool = follower
                elif not _identity(follower):
                    break
                j += 1
            if conv is not None or pool is not None:
                self.steps.append((self._block, (len(self.steps), conv, pool, relu)))
                return j
        if _plain(layer, Flatten):
            self.steps.append((self._flatten, (layer,)))
        elif _plain(layer, Linear):
            self.steps.append((self._linear, (layer,)))
        else:
            self.steps.append((self._layer, (layer,)))
        return i + 1

    def run(self, x):
        """x : (n, ...) one piece -> the layers' output for it, a fresh array."""
        kept = False  # whether x may live in this thread's kept arrays
        for step, args in self.steps:
            y = step(x, *args)
            if step == self._block:
                kept = True
            elif step == self._linear:
                kept = False
            elif step == self._layer:
                kept = kept and isinstance(y, np.ndarray) and np.may_share_memory(x, y)
            x = y
        return x.copy() if kept else x

    def _kept(self):
        """This thread's kept arrays and prepared blocks: key -> object."""
        kept = getattr(self._local, "kept", None)
        if kept is None:
            kept = self._local.kept = {}
        return kept

    # --- the steps: each takes x (n, ...) and returns the next layer's input ---------------------------

    @staticmethod
    def _layer(x, layer):
        return layer.forward(x)

    @staticmethod
    def _flatten(x, layer):
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            return layer.forward(x)  # the layer raises its own error
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    @staticmethod
    def _linear(x, layer):
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != layer.in_features:
            return layer.forward(x)  # the layer raises its own error
        check_array(x, "Linear", dtype=layer.weight.data.dtype)
        return functional.linear_forward(x, layer.weight.data, None if layer.bias is None else layer.bias.data)

    def _block(self, x, step, conv, pool, relu):
        """relu?(maxpool?(conv?(x))) as one step (fusion 1 or 2): x (n, C, H, W) -> a view of a kept array."""
        if conv is not None:
            check_array(x, "Conv2d", 4, conv.in_channels, conv.weight.data.dtype)
            check_fits("Conv2d", x.shape[2:], conv.kernel_size, conv.padding)
            params = (conv.weight.data, None if conv.bias is None else conv.bias.data)
        else:
            check_array(x, "MaxPool2d", 4)
            params = ()
        key = (step, x.shape, x.dtype) + tuple(map(id, params))
        kept = self._kept()
        block = kept.get(key)
        if block is None:
            if len(kept) >= KEPT * len(self.steps):
                kept.clear()
            block = kept[key] = _Block(x, conv, pool, relu)
        return from_chwn(block(x.transpose(1, 2, 3, 0)))


class _Block:
    """One thread's arrays for one block on inputs of one shape: call it with x4 (C, H, W, n) -> (C', H', W', n)."""

    def __init__(self, x, conv, pool, relu):
        n, dtype = len(x), x.dtype
        self.conv, self.pool, self.relu = None, pool, relu
        shape = x.shape[1:]
        if conv is not None:
            F, (OH, OW) = (
                conv.out_channels,
                functional.output_hw(shape[1:], conv.kernel_size, conv.stride, conv.padding),
            )
            size = workspace_size(x.shape, conv.weight.data.shape, conv.stride, conv.padding, backward=False)
            bias = None if conv.bias is None else conv.bias.data
            strategy = STRATEGIES[conv_strategy(x.shape[1], conv.kernel_size, conv.stride, backward=False)]
            out4 = np.empty((F, OH, OW, n), dtype=dtype)
            self.conv = strategy(
                x.shape,
                conv.weight.data,
                None if pool else bias,
                conv.stride,
                conv.padding,
                np.empty(size, dtype=dtype),
                out4,
            )
            self.late = None if pool is None or bias is None else bias.reshape(-1, 1, 1, 1)  # bias after the pool
            shape = (F, OH, OW)
        if pool is not None:
            check_fits("MaxPool2d", shape[1:], pool.kernel_size, pool.padding)
            self.tiles = functional.tiles(pool.kernel_size, pool.stride, pool.padding)
            if self.tiles:
                (KH, KW), (C, H, W) = pool.kernel_size, shape
                self.pooled = np.empty((C, H // KH, W // KW, n), dtype=dtype)
                self.rows = np.empty((C, H // KH, (W // KW) * KW, n), dtype=dtype)
        self.zeros = None

    def __call__(self, x4):
        a = x4 if self.conv is None else self.conv(x4)
        pool = self.pool
        if pool is not None:
            if self.tiles:
                a = functional.maxpool_tiles_forward(a, pool.kernel_size, out=self.pooled, rows=self.rows)
            else:
                a = functional.maxpool2d_forward(from_chwn(a), pool.kernel_size, pool.stride, pool.padding)[0]
                a = a.transpose(1, 2, 3, 0)  # (C, OH, OW, n) of fresh memory
            if self.conv is not None and self.late is not None:
                np.add(a, self.late, out=a)
        if self.relu:
            if self.zeros is None or self.zeros.shape != a.shape:
                self.zeros = zeros_like(a)
            np.maximum(a, self.zeros, out=a)
        return a
