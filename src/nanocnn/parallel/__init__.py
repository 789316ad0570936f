"""Threads and processes: a batch's parts on threads (threads.py), the ranks of an MPI job (mpi.py,
imported only with --distributed), and how both cut a batch (parts.py) and share it (world.py)."""

from .cpus import MAX_THREADS, default_threads, resolve_threads, usable_cpus
from .parts import PART, inference_parts, training_parts
from .threads import DataParallel, run_on_threads, sync
from .world import LOCAL, World

__all__ = [
    "LOCAL",
    "MAX_THREADS",
    "PART",
    "DataParallel",
    "World",
    "default_threads",
    "inference_parts",
    "resolve_threads",
    "run_on_threads",
    "sync",
    "training_parts",
    "usable_cpus",
]
