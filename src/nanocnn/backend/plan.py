"""The inference plan: an eval-mode Sequential's layers regrouped into fused steps with per-thread buffers.

``nanocnn.backend.inference`` runs every part of a batch through ``Plan.run``. The plan walks the layers
once and fuses the patterns that layers declare (``Module.fusion``, read only from the class that defines
``forward``); every other layer (custom layers, a layer whose own gradients are on, a Dropout in training
mode, Flatten, Linear) runs its own ``forward``. Each fusion is exact: the plan's outputs equal the
layers' eval-mode forwards run one by one, to the bit, on the same part.

1. **Conv block**: a "conv" layer followed by any run of "relu", eval-mode "dropout" and at most one
   "max_pool" computes ``relu(maxpool(conv_without_bias(x)) + bias)``, in place in the block's buffers:
   - the pool runs before the bias: rounding ``y + b`` is monotone in ``y``, so
     ``max_i fl(y_i + b) == fl(max_i y_i + b)`` (padding is -inf on both sides), and the bias is added
     to the pooled array, KH*KW times smaller;
   - ReLU runs after the pool: ``max(max_i z_i, 0) == max_i max(z_i, 0)`` (ReLU is monotone, and a NaN
     propagates through both), on the small array, in place; a second ReLU changes nothing;
   - without a pool the bias is added by the convolution exactly as the layer adds it, then ReLU in place
     instead of into a new array (the same ``np.maximum`` against zeros).
2. **Pool block**: ReLUs and eval Dropouts around one max-pool: pool, then ReLU in place (as in 1).
3. **Dropout in eval mode** is the identity (``Dropout.forward`` returns its input): skipped.
4. **Prepared blocks**: each thread keeps, per block and input shape, the block's buffers (the convolution
   strategy's workspace with its zero borders already written, the conv output, the pooled output) and the
   strategy object with every view it needs, so a part costs only the copies and products themselves: no
   allocation, and little Python (which holds the GIL, and with it the other threads). Nothing is shared
   between threads but the plan, read-only once built.

A block runs the same convolution strategy, pooling kernel and ufuncs as the layers do, after the same
argument checks. A result that lives in a block's buffers is copied before it is returned: the caller owns it.
"""

import threading

import numpy as np

from ..validation import check_array, check_kernel_fits
from . import conv, pool
from .layout import from_chwn, output_hw, zeros_like

MAX_PREPARED = 8  # prepared blocks per thread and step (input shapes); more replace them all


def signature(layers):
    """What a plan depends on: each layer's identity and modes (its fusion choices, not the input shape)."""
    return tuple((id(layer), layer.training, layer.grad_enabled) for layer in layers)


def fusion(layer):
    """The pattern the plan may fuse this layer into, or None: only a layer that keeps nothing (gradients off)."""
    return None if layer.grad_enabled else layer.declared("fusion")


def passes_through(layer):
    """A Dropout in eval mode: its forward returns its input unchanged."""
    return fusion(layer) == "dropout" and not layer.training


class Plan:
    """Fused steps for ``layers`` (see the module docstring); ``run(x)`` on one part (n, ...) -> the output."""

    def __init__(self, layers):
        self.layers = list(layers)  # held, so that no other layer can take one of their ids
        self.steps = []  # (block index, conv, pool, relu) for a fused block, or a layer run on its own
        self.groups = []  # per step, (the layers it computes, whether it is a fused block): what tests look at
        self.part_sizes = {}  # (input shape, dtype) -> examples per part (backend.inference.part_size)
        self._local = threading.local()
        i = 0
        while i < len(layers):
            i = self._group(layers, i)

    def _group(self, layers, i):
        """Append the step that starts at layers[i]; returns the index after it."""
        layer = layers[i]
        if passes_through(layer):
            return i + 1
        if fusion(layer) in ("conv", "relu", "max_pool"):
            conv_layer = layer if fusion(layer) == "conv" else None
            j, pool_layer, relu = i + (conv_layer is not None), None, False
            while j < len(layers):
                follower = layers[j]
                if fusion(follower) == "relu":
                    relu = True
                elif fusion(follower) == "max_pool" and pool_layer is None:
                    pool_layer = follower
                elif not passes_through(follower):
                    break
                j += 1
            if conv_layer is not None or pool_layer is not None:
                self.steps.append((len(self.steps), conv_layer, pool_layer, relu))
                self.groups.append((tuple(layers[i:j]), True))
                return j
        self.steps.append(layer)
        self.groups.append(((layer,), False))
        return i + 1

    def run(self, x):
        """x : (n, ...) one part -> the layers' output for it, a fresh array."""
        in_buffers = False  # whether x may live in this thread's block buffers
        for step in self.steps:
            if isinstance(step, tuple):
                x, in_buffers = self._block(x, *step), True
            else:
                y = step.forward(x)
                in_buffers = in_buffers and isinstance(y, np.ndarray) and np.may_share_memory(x, y)
                x = y
        return x.copy() if in_buffers else x

    def _block(self, x, index, conv_layer, pool_layer, relu):
        """relu?(maxpool?(conv?(x))) as one step: x (n, C, H, W) -> a view of this thread's buffers."""
        if conv_layer is not None:
            name = type(conv_layer).__name__
            check_array(x, name, 4, conv_layer.in_channels, conv_layer.weight.data.dtype)
            check_kernel_fits(name, x.shape[2:], conv_layer.kernel_size, conv_layer.padding)
            params = (conv_layer.weight.data, None if conv_layer.bias is None else conv_layer.bias.data)
        else:
            check_array(x, type(pool_layer).__name__, 4)
            params = ()
        key = (index, x.shape, x.dtype) + tuple(map(id, params))
        prepared = getattr(self._local, "prepared", None)
        if prepared is None:
            prepared = self._local.prepared = {}
        block = prepared.get(key)
        if block is None:
            if len(prepared) >= MAX_PREPARED * len(self.steps):
                prepared.clear()
            block = prepared[key] = Block(x, conv_layer, pool_layer, relu)
        return from_chwn(block(x.transpose(1, 2, 3, 0)))


class Block:
    """One thread's buffers for one block on inputs of one shape: call it with x4 (C, H, W, n) -> (C', H', W', n)."""

    def __init__(self, x, conv_layer, pool_layer, relu):
        n, dtype = len(x), x.dtype
        self.conv, self.pool, self.relu = None, pool_layer, relu
        shape = x.shape[1:]
        if conv_layer is not None:
            stride, padding = conv_layer.stride, conv_layer.padding
            F, (OH, OW) = conv_layer.out_channels, output_hw(shape[1:], conv_layer.kernel_size, stride, padding)
            size = conv.workspace_size(x.shape, conv_layer.weight.data.shape, stride, padding, backward=False)
            bias = None if conv_layer.bias is None else conv_layer.bias.data
            out4 = np.empty((F, OH, OW, n), dtype=dtype)
            early = None if pool_layer else bias  # with a pool, the bias comes after it
            workspace = np.empty(size, dtype=dtype)
            self.conv = conv.make(x.shape, conv_layer.weight.data, early, stride, padding, workspace, out4, False)
            self.late = None if pool_layer is None or bias is None else bias.reshape(-1, 1, 1, 1)
            shape = (F, OH, OW)
        if pool_layer is not None:
            check_kernel_fits(type(pool_layer).__name__, shape[1:], pool_layer.kernel_size, pool_layer.padding)
            self.tiles = pool.windows_tile(pool_layer.kernel_size, pool_layer.stride, pool_layer.padding)
            if self.tiles:
                (KH, KW), (C, H, W) = pool_layer.kernel_size, shape
                self.pooled = np.empty((C, H // KH, W // KW, n), dtype=dtype)
                self.rows = np.empty((C, H // KH, (W // KW) * KW, n), dtype=dtype)
        self.zeros = None

    def __call__(self, x4):
        a = x4 if self.conv is None else self.conv(x4)
        p = self.pool
        if p is not None:
            if self.tiles:
                a = pool.maxpool_tiles_forward(a, p.kernel_size, out=self.pooled, rows=self.rows)
            else:
                a = pool.maxpool2d_forward(from_chwn(a), p.kernel_size, p.stride, p.padding)[0]
                a = a.transpose(1, 2, 3, 0)  # (C, OH, OW, n) of fresh memory
            if self.conv is not None and self.late is not None:
                np.add(a, self.late, out=a)
        if self.relu:
            if self.zeros is None or self.zeros.shape != a.shape:
                self.zeros = zeros_like(a)
            np.maximum(a, self.zeros, out=a)
        return a
