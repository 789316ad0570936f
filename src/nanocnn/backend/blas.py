"""BLAS held at one thread while nanocnn computes: its own threads share the cores, and the numbers stay fixed.

OpenBLAS rounds a product differently when it splits it over several threads than when it runs it on
one (seen here: up to 5e-5 apart on a 32x400 @ 400x6272 float32 product), and its spinning worker
threads would fight nanocnn's for the same cores. So nanocnn runs every product on one BLAS thread,
with ``single_thread()`` around its work. OpenBLAS takes a new thread count only from the main thread
(a call from any other thread is ignored; measured with OpenBLAS 0.3.31), so the hold is taken there
and nested holds count; in other threads ``single_thread()`` does nothing, and whoever starts threads
that call nanocnn (a server, say) holds it in the main thread around them, as ``nanocnn serve`` does.
While it is held, other numpy work in the same process also runs BLAS on one thread.
"""

import threading
from contextlib import contextmanager

_state = {"controller": None, "limiter": None, "depth": 0}  # touched by the main thread only


@contextmanager
def single_thread():
    """Hold BLAS at one thread inside the ``with`` block (nestable; a no-op outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _state["depth"] == 0:
        if _state["controller"] is None:
            from threadpoolctl import ThreadpoolController  # ~0.5 ms, once

            _state["controller"] = ThreadpoolController()
        _state["limiter"] = _state["controller"].limit(limits=1, user_api="blas")
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0:
            _state["limiter"].restore_original_limits()
            _state["limiter"] = None
