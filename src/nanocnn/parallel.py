"""Data parallelism over threads: a batch cut into parts, each part run through its own replica of the model.

numpy releases the GIL inside array copies, ufuncs and matrix products, where nearly all of a step's
time goes, so plain Python threads keep several cores busy. Meanwhile BLAS is held at one thread per
call (threadpoolctl), or its own worker threads would fight ours for the same cores.

The parts depend only on the batch size, never on the number of threads, and the parts' gradients are
added in part order, so training gives bit-identical weights with 1 thread or 8.

    with DataParallel(model, threads=2) as parallel:
        results = parallel.forward_backward(step, x, y)    # step(replica, x_part, y_part, weight) per part
        outputs = parallel.map(fn, [x1, x2, ...])          # fn(replica, xi) per input, e.g. inference
"""
import os
from concurrent.futures import ThreadPoolExecutor, wait

from .validation import check_int

PART = 32  # images per part, at least: parts of 16 made an epoch 8-15% slower than parts of 32 here
MAX_THREADS = 8


def default_threads():
    """The number of CPUs this process may run on, at most MAX_THREADS."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    return max(1, min(n, MAX_THREADS))


def resolve_threads(threads):
    """None (all usable CPUs, at most MAX_THREADS) or an integer >= 1 -> the thread count to use."""
    return default_threads() if threads is None else check_int(threads, "threads", 1)


def parts(n):
    """Cut a batch of n images into max(1, n // PART) contiguous parts of near-equal size: a list of slices."""
    k = max(1, n // PART)
    bounds = [i * n // k for i in range(k + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


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

    BLAS is held at one thread while it is open, even with one thread of ours: OpenBLAS's threaded
    products round differently from its one-thread products on some machines, and a run must give the
    same numbers on any thread count. With one thread, jobs run in the caller. Replicas (and with them
    their workspaces) last as long as this object, so a training loop allocates them once, not at every
    step.
    """

    def __init__(self, model, threads=None):
        self.model = model
        self.threads = resolve_threads(threads)
        self._replicas = []
        self._executor = self._limits = None

    def __enter__(self):
        from threadpoolctl import threadpool_limits

        self._limits = threadpool_limits(1, user_api="blas")
        if self.threads > 1:
            self._executor = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="nanocnn")
        return self

    def __exit__(self, *exc_info):
        if self._executor is not None:
            self._executor.shutdown()
        if self._limits is not None:
            self._limits.restore_original_limits()
        self._executor = self._limits = None
        self._replicas = []

    def replicas(self, k, reseed=False):
        """The first k replicas, synced with the model (made on first use)."""
        while len(self._replicas) < k:
            self._replicas.append(self.model.replicate())
        for replica in self._replicas[:k]:
            sync(replica, self.model, reseed)
        return self._replicas[:k]

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
            wait(futures)                                   # no thread is still at work when we return or raise
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
        """
        pieces = parts(len(x))
        if len(pieces) == 1:
            return [step(self.model, x, y, 1.0)]
        replicas = self.replicas(len(pieces), reseed=True)
        for r in replicas:
            r.zero_grad()
        jobs = [(r, x[s], y[s], (s.stop - s.start) / len(x)) for r, s in zip(replicas, pieces)]
        results = self.run(step, jobs)
        params = self.model.parameters()
        for r in replicas:
            for p, q in zip(params, r.parameters()):
                p.grad += q.grad
        return results
