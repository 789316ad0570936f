"""Data parallelism over threads: a batch cut into parts, each part run through its own replica of the model.

numpy releases the GIL inside array copies, ufuncs and matrix products, where nearly all of a step's
time goes, so plain Python threads keep several cores busy. Meanwhile BLAS is held at one thread per
call (blas.py), or its own worker threads would fight ours for the same cores.

The parts depend only on the batch size, never on the number of threads, and the parts' gradients are
added in part order, so training gives bit-identical weights with 1 thread or 8. ``World`` is the
processes a batch's parts are spread over: this one alone (``LOCAL``), or the ranks of an MPI job
(``distributed.MPIWorld``), each computing its share of the parts, their gradients added in the same
order: the same weights again, on any number of processes.

    with DataParallel(model, threads=2) as parallel:
        results = parallel.forward_backward(step, x, y)    # step(replica, x_part, y_part, weight) per part
        outputs = parallel.map(fn, [x1, x2, ...])          # fn(replica, xi) per input, e.g. inference
"""

import os
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .blas import single_thread
from .validation import check_int

PART = 32  # images per part, at least: parts of 16 made an epoch 8-15% slower than parts of 32 here
MAX_THREADS = 8


def usable_cpus():
    """The set of CPUs this process may run on."""
    try:
        return os.sched_getaffinity(0)
    except AttributeError:  # not on Linux
        return set(range(os.cpu_count() or 1))


def default_threads():
    """The number of CPUs this process may run on, at most MAX_THREADS."""
    return max(1, min(len(usable_cpus()), MAX_THREADS))


def resolve_threads(threads):
    """None (all usable CPUs, at most MAX_THREADS) or an integer >= 1 -> the thread count to use."""
    return default_threads() if threads is None else check_int(threads, "threads", 1)


def parts(n):
    """Cut a batch of n images into max(1, n // PART) contiguous parts of near-equal size: a list of slices."""
    k = max(1, n // PART)
    bounds = [i * n // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


class World:
    """The processes training together; this class is one process alone (distributed.MPIWorld: an MPI job).

    Parts and evaluation pieces are spread over ranks by ``share``; ``reduce`` sums the parts' gradients
    in part order and ``gather`` gives every rank all pieces' outputs. ``from_root``, ``together`` and
    ``agree`` run the steps before training so that an error stops every rank at the same point.
    """

    rank, size = 0, 1

    @property
    def is_root(self):
        """Rank 0: the one process that writes files, logs and shows progress."""
        return self.rank == 0

    def share(self, k, rank=None):
        """The range of the k parts (or pieces) that ``rank`` (default: this one) computes: contiguous, in rank
        order, lower ranks taking one more when k does not divide evenly; empty when there are more ranks than parts.
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

    def gather(self, chunks):
        """Arrays (n_i, ...) of this process's share of pieces -> all pieces' rows concatenated in order."""
        return np.concatenate(chunks)

    def from_root(self, fn, *args):
        """fn(*args) run by rank 0 alone (it reads or writes the run folder); every rank gets its result."""
        return fn(*args)

    def together(self, fn, *args):
        """fn(*args) run by every rank; a user error on any rank stops them all, reported once."""
        return fn(*args)

    def agree(self, config, data, model, rng):
        """Check that every rank has the same settings, data, initial weights and generator; then take rank 0's."""


LOCAL = World()


def sync(replica, model, reseed=False):
    """Point the replica at the model's current parameter arrays and modes (Module.replicate's contract).

    With reseed, every layer of the replica that draws random numbers gets a new generator drawn from
    the model's (Module.reseed): call it in one thread, replicas in a fixed order, and the masks are
    the same in every run.
    """
    for (_, p), (_, q) in zip(replica.named_parameters(), model.named_parameters()):
        p.data = q.data
    replica.train(model.training)
    replica.enable_grad(model.grad_enabled)
    if reseed:
        replica.reseed(model)


class DataParallel:
    """Runs ``model`` on parts of its input in ``threads`` threads (the caller's own included).

    BLAS is held at one thread while it is open (blas.single_thread), even with one thread of ours:
    OpenBLAS's threaded products round differently from its one-thread products, and a run must give the
    same numbers on any thread count. With one thread, jobs run in the caller. Replicas (and with them
    their workspaces) last as long as this object, so a training loop allocates them once, not at every
    step.
    """

    def __init__(self, model, threads=None, world=LOCAL):
        self.model = model
        self.threads = resolve_threads(threads)
        self.world = world  # the processes that share each batch's parts (distributed.World): this one alone
        self._replicas = []
        self._spare = None
        self._executor = self._hold = None

    def __enter__(self):
        self._hold = single_thread()
        self._hold.__enter__()
        if self.threads > 1:
            self._executor = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="nanocnn")
        return self

    def __exit__(self, *exc_info):
        if self._executor is not None:
            self._executor.shutdown()
        if self._hold is not None:
            self._hold.__exit__(None, None, None)
        self._executor = self._hold = self._spare = None
        self._replicas = []

    def replicas(self, k, reseed=False, mine=None):
        """Replicas for the parts ``mine`` (a range; default all) of k, synced with the model (made on first use).

        With reseed, the generators of all k parts are drawn from the model's in part order, also those of
        parts another process computes, so every process's model generators stay in step.
        """
        mine = range(k) if mine is None else mine
        while len(self._replicas) < len(mine):
            self._replicas.append(self.model.replicate())
        for part in range(k):
            if part in mine:
                sync(self._replicas[part - mine.start], self.model, reseed)
            elif reseed:  # another process's part: draw its seeds all the same
                if self._spare is None:
                    self._spare = self.model.replicate()
                self._spare.reseed(self.model)
        return self._replicas[: len(mine)]

    def run(self, fn, jobs):
        """[fn(*job) for job in jobs], job i on thread i % threads; waits for all, then re-raises any error."""
        T = min(self.threads, len(jobs))
        if T <= 1:
            return [fn(*job) for job in jobs]
        if self._executor is None:
            raise RuntimeError("DataParallel: open it first (with DataParallel(model, threads) as parallel: ...)")

        def thread(t):
            return [fn(*job) for job in jobs[t::T]]

        futures = [self._executor.submit(thread, t) for t in range(1, T)]
        try:
            done = [thread(0)]
        finally:
            wait(futures)  # no thread is still at work when we return or raise
        done += [f.result() for f in futures]
        results = [None] * len(jobs)
        for t, chunk in enumerate(done):
            results[t::T] = chunk
        return results

    def map(self, fn, inputs):
        """[fn(replica, x) for x in inputs] in threads; input i runs on thread i % threads, on its replica.

        Meant for inference: in eval mode all threads share the model (safe: it keeps no per-call state);
        with gradients enabled each thread gets a replica.
        """
        T = max(1, min(self.threads, len(inputs)))
        models = self.replicas(T) if self.model.grad_enabled and T > 1 else [self.model] * T
        return self.run(fn, [(models[i % T], x) for i, x in enumerate(inputs)])

    def forward_backward(self, step, x, y):
        """Run ``step(replica, x_part, y_part, weight)`` on each part of the batch (x, y); returns its results.

        x : (N, C, H, W), y : (N,). ``weight`` is the part's share of the batch, len(part) / N, by which
        step scales its loss gradient, so the sum over the parts is the gradient of the batch's mean
        loss. With one part step runs on the model itself; with several each part runs on its own
        replica and the replicas' gradients are added into the model's in part order.

        In an MPI job this process runs its share of the parts (``world.share``), and ``world.reduce``
        adds all parts' gradients in the same order as one process, whichever process computed them. A
        batch of one part runs on every process, so that a Dropout draws its mask from the model's own
        generator everywhere, and everyone takes rank 0's gradient.
        """
        pieces, world = parts(len(x)), self.world
        mine = world.share(len(pieces))  # in one process: all of them
        params = self.model.parameters()
        if len(pieces) == 1:
            results = [step(self.model, x, y, 1.0)]
            return world.reduce(params, results[: len(mine)], [], 1)  # one process: nothing to add
        replicas = self.replicas(len(pieces), reseed=True, mine=mine)
        for r in replicas:
            r.zero_grad()
        jobs = [(r, x[s], y[s], (s.stop - s.start) / len(x)) for r, s in zip(replicas, pieces[mine.start : mine.stop])]
        results = self.run(step, jobs)
        return world.reduce(params, results, [[q.grad for q in r.parameters()] for r in replicas], len(pieces))
