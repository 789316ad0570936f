"""Eval-mode forward of a Sequential: the inference plan, on parts of the batch sized for the cache, on threads.

``Sequential.forward`` hands over here when gradients are off. A batch larger than one part is cut into
parts (``nanocnn.parallel.parts.inference_parts``), each runs through the plan on a thread of the
process's one pool, BLAS held at one thread; the output is the parts' outputs in order. The numbers are
those of each part run alone, so they do not depend on the batch size or the thread count.
"""

import math
import threading

import numpy as np

from ..parallel.parts import inference_parts
from ..parallel.threads import run_on_threads
from ..validation import UserError
from .blas import single_thread
from .plan import Plan, signature

PART_BYTES = 2 * 2**20  # a part's largest per-example array (a layer's output or scratch) times its size
MIN_PART, MAX_PART = 8, 1024


def plan_of(model):
    """The inference plan for the model's layers as they are now (rebuilt when a layer or its mode changes)."""
    key = signature(model.layers)
    cached = model._plan
    if cached is None or cached[0] != key:
        cached = model._plan = (key, Plan(model.layers))  # one atomic store: threads see one plan or the other
    return cached[1]


def part_size(model, input_shape, dtype=np.float32):
    """Examples per inference part: the largest per-example array (a layer's output or its scratch, e.g. a
    conv's columns) times the part stays near PART_BYTES, between MIN_PART and MAX_PART examples."""
    largest, shape = 1, tuple(input_shape)
    try:
        for layer in model.layers:
            largest = max(largest, layer.scratch_size(shape))
            shape = layer.output_shape(shape)
            largest = max(largest, math.prod(shape))
    except UserError:  # a shape the layers reject: forward will say why, on a small part
        return MIN_PART
    return int(np.clip(PART_BYTES // (np.dtype(dtype).itemsize * largest), MIN_PART, MAX_PART))


def infer(model, x, threads=None):
    """Eval-mode forward of x (N, ...) through the plan, in parts spread over ``threads`` threads (None:
    every usable CPU, at most 8); gradients must be off."""
    plan = plan_of(model)
    n = len(x) if isinstance(x, np.ndarray) and x.ndim > 0 else 0
    if n <= MIN_PART:
        size = n
    else:
        key = (x.shape[1:], x.dtype)
        size = plan.part_sizes.get(key)
        if size is None:
            size = plan.part_sizes[key] = part_size(model, *key)
    with single_thread():
        if n <= size:
            return plan.run(x)
        return _in_parts(plan, x, inference_parts(n, size), threads)


def _in_parts(plan, x, parts, threads):
    """plan.run on each part of x, the parts spread over threads; the output is allocated by the first part
    to finish (its shape and dtype tell the output's), so no part waits for another."""
    out, lock = [], threading.Lock()

    def job(part):
        y = plan.run(x[part])
        if not out:
            with lock:
                if not out:
                    out.append(np.empty((len(x),) + y.shape[1:], dtype=y.dtype))
        out[0][part] = y

    run_on_threads(job, [(part,) for part in parts], threads)
    return out[0]
