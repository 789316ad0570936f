"""Data parallelism over threads: a batch cut into parts, each part run through its own replica of the model.

numpy releases the GIL inside array copies, ufuncs and matrix products, where nearly all of a step's
time goes, so plain Python threads keep several cores busy. Meanwhile BLAS is held at one thread per
call (backend/blas.py), or its own worker threads would fight ours for the same cores.

The parts depend only on the batch size, never on the number of threads (parts.py), and the parts'
gradients are added in part order, so training gives bit-identical weights with 1 thread or 8. Every
user of threads in a process shares one pool (``run_on_threads``), started once and kept (a thread count
above MAX_THREADS, given explicitly, gets a pool of its own for each call).

    with DataParallel(model, threads=2) as parallel:
        results = parallel.forward_backward(step, x, y)    # step(replica, x_part, y_part, weight) per part
        outputs = parallel.map(fn, [x1, x2, ...])          # fn(replica, xi) per input, e.g. inference
"""

import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from ..backend.blas import single_thread
from .cpus import MAX_THREADS, resolve_threads
from .parts import PART, training_parts
from .world import LOCAL

_pool = {"executor": None}
_pool_lock = threading.Lock()
_in_pool = threading.local()  # .yes in the pool's own threads


def _mark():
    _in_pool.yes = True


def pool():
    """The process's one pool of worker threads (MAX_THREADS - 1: the caller's thread is the other one)."""
    with _pool_lock:
        if _pool["executor"] is None:
            _pool["executor"] = ThreadPoolExecutor(MAX_THREADS - 1, thread_name_prefix="nanocnn", initializer=_mark)
        return _pool["executor"]


def run_on_threads(fn, jobs, threads=None):
    """[fn(*job) for job in jobs], job i on thread i % T (T = threads, at most len(jobs)), the caller's own
    thread being thread 0; waits for all, then re-raises any error. In a pool thread (a job that itself
    asks for threads) the jobs run in that thread, so no pool thread ever waits for another."""
    T = min(resolve_threads(threads), len(jobs))
    if T <= 1 or getattr(_in_pool, "yes", False):
        return [fn(*job) for job in jobs]

    def thread(t):
        return [fn(*job) for job in jobs[t::T]]

    shared = T <= MAX_THREADS  # an explicit count above it gets a pool of its own for this call
    workers = pool() if shared else ThreadPoolExecutor(T - 1, thread_name_prefix="nanocnn-more", initializer=_mark)
    futures = [workers.submit(thread, t) for t in range(1, T)]
    try:
        done = [thread(0)]
    finally:
        wait(futures)  # no thread is still at work when we return or raise
        if not shared:
            workers.shutdown()
    done += [f.result() for f in futures]
    results = [None] * len(jobs)
    for t, chunk in enumerate(done):
        results[t::T] = chunk
    return results


def sync(replica, model, reseed=False):
    """Point the replica at the model's current parameter arrays and modes (Module.replicate's contract).

    With reseed, every layer of the replica that draws random numbers gets a new generator drawn from
    the model's (Module.reseed): call it in one thread, replicas in a fixed order, and the masks are
    the same in every run.
    """
    for (_, p), (_, q) in zip(replica.named_parameters(), model.named_parameters()):
        p.data = q.data
    for (_, b), (_, c) in zip(replica.named_buffers(), model.named_buffers()):
        np.copyto(b.data, c.data)  # a copy of its own: a training forward updates it (BatchNorm's statistics)
    replica.train(model.training)
    replica.enable_grad(model.grad_enabled)
    if reseed:
        replica.reseed(model)


class DataParallel:
    """Runs ``model`` on parts of its input in ``threads`` threads (the caller's own included).

    BLAS is held at one thread while it is open (backend/blas.py), even with one thread of ours:
    OpenBLAS's threaded products round differently from its one-thread products, and a run must give the
    same numbers on any thread count. Replicas (and with them their workspaces) last as long as this
    object, so a training loop allocates them once, not at every step. ``world`` (world.py) is the
    processes that share each batch's parts: this one alone by default; ``part`` the images per part, at least.
    """

    def __init__(self, model, threads=None, world=None, part=PART):
        self.model = model
        self.part = part  # images per part, at least: the run's --part-size
        self.threads = resolve_threads(threads)
        self.world = LOCAL if world is None else world
        self._replicas = []
        self._spare = None
        self._hold = None

    def __enter__(self):
        self._hold = single_thread()
        self._hold.__enter__()
        return self

    def __exit__(self, *exc_info):
        if self._hold is not None:
            self._hold.__exit__(None, None, None)
        self._hold = self._spare = None
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
        """[fn(*job) for job in jobs] on this object's threads (``run_on_threads``); it must be open."""
        if self._hold is None and min(self.threads, len(jobs)) > 1:
            raise RuntimeError("DataParallel: open it first (with DataParallel(model, threads) as parallel: ...)")
        return run_on_threads(fn, jobs, self.threads)

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

        A layer that normalises with its batch's statistics (BatchNorm2d) normalises each part with that
        part's own (as PyTorch's DistributedDataParallel does without SyncBatchNorm), and the running
        statistics the model keeps are the first part's, on every process (as DDP's broadcast from rank 0):
        the same numbers on any thread count and any number of ranks, since the parts are the batch's.
        """
        parts, world = training_parts(len(x), self.part), self.world
        mine = world.share(len(parts))  # in one process: all of them
        params = self.model.parameters()
        if len(parts) == 1:
            results = [step(self.model, x, y, 1.0)]
            return world.reduce(params, results[: len(mine)], [], 1)  # one process: nothing to add
        replicas = self.replicas(len(parts), reseed=True, mine=mine)
        for r in replicas:
            r.zero_grad()
        jobs = [(r, x[s], y[s], (s.stop - s.start) / len(x)) for r, s in zip(replicas, parts[mine.start : mine.stop])]
        results = self.run(step, jobs)
        buffers = self.model.buffers()
        if buffers:  # BatchNorm's running statistics: the first part's, as DDP broadcasts rank 0's
            world.first_part_buffers(buffers, replicas[0].buffers() if mine.start == 0 and len(mine) else None)
        return world.reduce(params, results, [[q.grad for q in r.parameters()] for r in replicas], len(parts))
