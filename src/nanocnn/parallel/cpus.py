"""How many threads to use: the CPUs this process may run on, at most MAX_THREADS."""

import os

from ..validation import check_int

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
