"""Training in several processes or on several machines with MPI (mpi4py): each batch's parts spread over ranks.

``mpiexec -n K nanocnn train --distributed`` starts K processes (ranks). Every rank loads the same data
and draws the same initial weights and batch order from the same seed (they check that they agree, then
take rank 0's weights, as Horovod and PyTorch DDP start), and computes its share of each batch's parts
(``parts.training_parts``: those one process runs on its threads) on its own threads. The parts' gradients are
summed along the ranks in part order (``MPIWorld.reduce``), through the very additions one process
makes, so the weights end bit-identical to one process's on any number of ranks, for about the traffic
of an Allreduce (which would add in an order and grouping of its own).

``world.World`` is one process, so ``fit`` has one code path; ``connect()``, the one importer of
mpi4py, returns an ``MPIWorld`` for an MPI job; ``launch(body)`` runs a command on every rank and ends the whole
job, with one line naming the rank, if any rank fails.
"""

import hashlib
import os
import sys
import time
import traceback
import warnings

import numpy as np

from ..train.config import option
from ..validation import UserError, one_line
from . import messages
from .cpus import MAX_THREADS, resolve_threads, usable_cpus
from .world import World

# What launchers set to the job's process count and the rank: MPICH/Intel MPI (hydra), Open MPI, MVAPICH2, srun.
SIZES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")
RANKS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
SEGMENT = 2**16  # values (256 KB of float32) that travel the chain of ranks at once
START = "start K with: mpiexec -n K nanocnn train --distributed"
INSTALL = "pip install 'nanocnn[mpi]' (a laptop), or on a cluster mpi4py built against its MPI (see the README)"


class SharedError(UserError):
    """An error every rank reached at the same collective step: rank 0 reports it, the others exit quietly."""


def digest(*arrays):
    """A short hash of the arrays' shapes, dtypes and bytes (160 MB of MNIST in about 0.15 s)."""
    h = hashlib.sha1(usedforsecurity=False)
    for a in map(np.ascontiguousarray, arrays):
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.data)
    return h.hexdigest()[:12]


def fingerprint(config, data, model, rng):
    """What must be the same on every rank: settings, data (sizes and hash), initial weights and generator state."""
    train, test = data.train, data.test
    sizes = (len(train.labels), len(test.labels), tuple(data.input_shape), data.num_classes)
    data = (*sizes, digest(train.images, train.labels, test.images, test.labels))
    return dict(
        config=config.to_dict(),
        data=data,
        weights=digest(*model.state_dict().values()),
        rng=str(rng.bit_generator.state),
    )


def differences(mine, root):
    """What of a rank's fingerprint differs from rank 0's, in words."""
    config = mine["config"]
    found = [f"--{option(k)} {config[k]} (rank 0: {v})" for k, v in root["config"].items() if config.get(k) != v]
    if mine["data"] != root["data"]:
        data = "{} training and {} test images {}, {} classes, hash {}"
        found.append(f"data of {data.format(*mine['data'])} (rank 0: {data.format(*root['data'])})")
    if not found and (mine["weights"], mine["rng"]) != (root["weights"], root["rng"]):
        found.append("initial weights or random generator (another version of nanocnn or numpy?)")
    return found


class MPIWorld(World):
    """The ranks of an MPI job (its COMM_WORLD)."""

    def __init__(self, comm):
        self.comm, self.rank, self.size = comm, comm.Get_rank(), comm.Get_size()
        self.layout, self.exchange_seconds = [("", 1)] * self.size, 0.0  # seconds in reduce(), waits included

    def threads(self, given):
        """--threads, else this rank's share of its machine: the CPUs its ranks may use / ranks on it, at least 1
        (a launcher that binds each rank to its own cores has already divided them: then a rank's own CPUs)."""
        from mpi4py import MPI

        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)  # the ranks on this machine
        try:
            cpus = [set(c) for c in local.allgather(sorted(usable_cpus()))]
            share = min(len(cpus[local.Get_rank()]), len(set().union(*cpus)) // local.Get_size())
        finally:
            local.Free()
        threads = min(max(1, share), MAX_THREADS) if given is None else resolve_threads(given)
        self.layout = self.comm.allgather((MPI.Get_processor_name(), threads))
        return threads

    def describe(self, threads):
        machines, counts = len({name for name, _ in self.layout}), [t for _, t in self.layout]
        each = f"threads per rank {', '.join(map(str, counts))}"
        if len(set(counts)) == 1:
            each = f"{counts[0]} thread{'s' * (counts[0] > 1)} each"
        return f"MPI: {self.size} ranks on {machines} machine{'s' * (machines > 1)}, {each}"

    def reduce(self, params, results, grads, k):
        """A chain along the ranks with parts: rank 0 adds its parts into its .grad and sends the sum to rank 1,
        which adds its own and sends it on, in segments of SEGMENT values (pipelined); the last broadcasts it.

        Every value goes through the very additions of one process, in its order. Per rank: one gradient in,
        one out and a broadcast, about what an Allreduce moves. The parts' (logits, loss) reach every rank.
        """
        start = time.perf_counter()
        sizes, last = [p.data.size for p in params], min(k, self.size) - 1  # ranks 0..last have parts
        total = np.concatenate([p.grad.ravel() for p in params])  # (P,); only rank 0's values count
        mine = [np.concatenate([g.ravel() for g in part]) for part in grads]
        if self.rank <= last:
            for s in range(0, len(total), SEGMENT):
                segment = total[s : s + SEGMENT]
                if self.rank > 0:
                    self.comm.Recv(segment, source=self.rank - 1)
                for q in mine:  # in part order
                    segment += q[s : s + SEGMENT]
                if self.rank < last:
                    self.comm.Send(segment, dest=self.rank + 1)
        self.comm.Bcast(total, root=last)
        for p, end, n in zip(params, np.cumsum(sizes), sizes):
            p.grad[...] = total[end - n : end].reshape(p.shape)
        results = [r for rank in self.comm.allgather(results) for r in rank]
        self.exchange_seconds += time.perf_counter() - start
        return results

    def first_part_buffers(self, buffers, first):
        """Rank 0 ran the first part: it sends those buffers to every rank (DDP's broadcast_buffers)."""
        values = self.comm.bcast([f.data for f in first] if self.is_root else None)
        for b, v in zip(buffers, values):
            np.copyto(b.data, v)

    def gather(self, chunks):
        return np.concatenate([c for rank in self.comm.allgather(chunks) for c in rank])

    def on_root(self, fn, *args):
        outcome = None
        if self.is_root:
            try:
                outcome = (True, fn(*args))
            except (UserError, OSError) as e:
                outcome = (False, one_line(e))
        ok, value = self.comm.bcast(outcome)
        if not ok:
            raise SharedError(value)
        return value

    def on_every_rank(self, fn, *args):
        value, error = None, None
        try:
            value = fn(*args)
        except (UserError, OSError) as e:
            error = one_line(e)
        errors = self.comm.allgather(error)
        if any(errors):
            if len(set(errors)) == 1:  # the same on every rank: a bad option, say; no rank to name
                raise SharedError(errors[0])
            ranks = {e: [str(r) for r, f in enumerate(errors) if f == e] for e in errors if e}
            raise SharedError("; ".join(f"rank{'s' * (len(r) > 1)} {', '.join(r)}: {e}" for e, r in ranks.items()))
        return value

    def check_same_start(self, config, data, model, rng):
        every = self.comm.allgather(fingerprint(config, data, model, rng))
        found = [f"rank {r}: {', '.join(d)}" for r in range(1, self.size) if (d := differences(every[r], every[0]))]
        if found:
            raise SharedError(
                f"the ranks disagree: {'; '.join(found)}; start every rank with the same options and data"
            )
        model.load_state_dict(self.comm.bcast(model.state_dict() if self.is_root else None))

    def fail(self, error):
        """Report this rank's failure in one line (a bug's traceback first) and end the whole job."""
        if isinstance(error, KeyboardInterrupt):  # Ctrl-C reaches every rank: rank 0 says it, as one process would
            code, line = 130, "interrupted (a run can be continued with: nanocnn train --resume --out DIR)"
            line = line if self.is_root else None
        elif isinstance(error, (UserError, OSError)):
            code, line = 2, f"error: rank {self.rank}: {one_line(error)}"
        else:
            traceback.print_exc()
            code, line = 1, f"error: rank {self.rank}: {type(error).__name__}: {one_line(error)}"
        if line:
            print(line, file=sys.stderr, flush=True)
        sys.stdout.flush()
        os.close(1)  # the end of this rank's output: the launcher forwards all of it before it ends the job
        os.close(2)  # (and MPICH's own "Abort(...) on node" line, which would repeat ours, is not printed)
        time.sleep(0.5)  # without this pause MPICH's launcher lost the line about 1 time in 4 here
        self.comm.Abort(code)  # the launcher ends every rank, also those waiting for this one
        os._exit(code)  # MPICH's Abort can return before that happens: this rank must not go on


def launcher(environ=os.environ):
    """(the job's process count, this process's rank) as the launcher's variables say; (0, 0) without a launcher."""
    sizes, ranks = ([int(environ[k]) for k in keys if environ.get(k, "").isdigit()] for keys in (SIZES, RANKS))
    return max(sizes, default=0), (ranks or [0])[0]


def connect():
    """The MPI job this process is a rank of (an MPIWorld); World() for a process started without a launcher.

    Raises SharedError when the launcher started K > 1 processes but MPI sees a job of 1 in each: the
    launcher belongs to another MPI than the one mpi4py uses, and K copies would train side by side.
    """
    try:
        with warnings.catch_warnings():  # mpi4py's own warning of a launcher mismatch: we say it in one line below
            warnings.filterwarnings("ignore", "suspicious MPI execution environment", RuntimeWarning)
            from mpi4py import MPI  # initialises MPI
    except (ImportError, RuntimeError, OSError) as e:
        raise UserError(f"--distributed needs mpi4py and an MPI library ({one_line(e)}): {INSTALL}") from None
    messages.use_with(MPI)  # messages between ranks as JSON and .npy arrays, never pickle
    size, expected = MPI.COMM_WORLD.Get_size(), launcher()[0]
    if size == 1 and expected > 1:
        library = " ".join(MPI.Get_library_version().splitlines()[0].split())
        raise SharedError(
            f"--distributed: the launcher started {expected} processes, but each is alone in its "
            f"MPI job: mpi4py uses {library}, and the launcher belongs to another MPI. Start with the "
            f"mpiexec of mpi4py's MPI (`python -m mpi4py --mpi-library` shows it), "
            f"or rebuild mpi4py against the cluster's: pip install --no-binary mpi4py mpi4py"
        )
    if size == 1:
        if not expected:
            print(
                f"note: --distributed without an MPI launcher: training in this one process ({START})", file=sys.stderr
            )
        return World()
    return MPIWorld(MPI.COMM_WORLD)


def launch(body):
    """Run body(world) on this rank of an MPI job (or alone, without one); returns what it returns.

    An error met before training (a bad option, bad data on some rank, ranks that disagree) is printed
    once, by rank 0, naming the ranks (exit status 2). A rank that fails later (an exception, Ctrl-C)
    prints ``error: rank R: <cause>`` and ends the whole job at once through MPI_Abort, so no rank is
    left waiting for it; a rank that dies (kill -9) is noticed by the launcher, which ends the others.
    """
    try:
        world = connect()
    except SharedError:
        if launcher()[1] == 0:  # every process found the mismatch: one line, from the launcher's first
            raise
        raise SystemExit(2) from None
    if world.size == 1:
        return body(world)
    try:
        return body(world)
    except SharedError:
        if world.is_root:
            raise
        raise SystemExit(2) from None
    except (Exception, KeyboardInterrupt) as e:
        world.fail(e)
