"""How a batch is cut into parts: contiguous slices, whose outputs concatenated in order are the batch's.

One idea, two policies. Training cuts a batch into parts of at least ``PART`` images (a run's
``--part-size``), the units that run on threads and MPI ranks; their number depends only on the batch size
and the part size, so the weights do not depend on the thread or rank count. Inference cuts a batch into
parts sized for the cache (``part_size`` in ``nanocnn.backend.inference``), each run through the fused plan
on a thread.
"""

PART = 32  # images per training part, at least (smaller parts made an epoch slower: benchmarks/README.md)


def training_parts(n, part=PART):
    """A batch of n images as max(1, n // part) contiguous parts of near-equal size: a list of slices."""
    k = max(1, n // part)
    bounds = [i * n // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


def inference_parts(n, size):
    """A batch of n images as contiguous parts of ``size`` images (the last may be smaller): a list of slices."""
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]
