"""The processes training together: this one alone (``LOCAL``), or the ranks of an MPI job (``mpi.MPIWorld``).

``fit`` has one code path for both. Parts of a batch and inference parts are spread over the ranks by
``share``; ``reduce`` sums the parts' gradients in part order and ``gather`` gives every rank all parts'
outputs. ``on_root``, ``on_every_rank`` and ``check_same_start`` run the steps before training so that an
error stops every rank at the same point.
"""

import numpy as np

from .cpus import resolve_threads


class World:
    """This process alone: every part is its own, and there is nobody to agree with."""

    rank, size = 0, 1

    @property
    def is_root(self):
        """Rank 0: the one process that writes files, logs and shows progress."""
        return self.rank == 0

    def share(self, k, rank=None):
        """The range of the k parts that ``rank`` (default: this one) computes: contiguous, in rank order,
        lower ranks taking one more when k does not divide evenly; empty when there are more ranks than parts.
        """
        rank = self.rank if rank is None else rank
        q, extra = divmod(k, self.size)  # the first ``extra`` ranks take q + 1 parts, the others q
        start = rank * q + min(rank, extra)
        return range(start, start + q + (rank < extra))

    def threads(self, given):
        """Threads for this process: ``given`` (--threads), else every usable CPU (at most MAX_THREADS)."""
        return resolve_threads(given)

    def describe(self, threads):
        return f"{threads} thread{'s' * (threads > 1)}"

    def reduce(self, params, results, grads, k):
        """Add every part's gradient into the params' .grad, in part order; returns every part's results.

        results : (logits (n_i, K), mean loss) of each part this process computed (here: all k);
        grads : for each of them, its gradient arrays, shaped like the params.
        """
        for part in grads:
            for p, g in zip(params, part):
                p.grad += g
        return results

    def first_part_buffers(self, buffers, first):
        """Set the model's buffers to those of the replica that ran the batch's first part (``first``, a list
        of Buffers, on the process that ran it; None elsewhere)."""
        for b, f in zip(buffers, first):
            np.copyto(b.data, f.data)

    def gather(self, chunks):
        """Arrays (n_i, ...) of this process's share of parts -> all parts' rows concatenated in order."""
        return np.concatenate(chunks)

    def on_root(self, fn, *args):
        """fn(*args) run by rank 0 alone (it reads or writes the run folder); every rank gets its result."""
        return fn(*args)

    def on_every_rank(self, fn, *args):
        """fn(*args) run by every rank; a user error on any rank stops them all, reported once."""
        return fn(*args)

    def check_same_start(self, config, data, model, rng):
        """Check that every rank has the same settings, data, initial weights and generator; then take rank 0's."""


LOCAL = World()
