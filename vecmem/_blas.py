"""Single-threaded BLAS for per-query matrix-vector products.

A query's exact scan is one matrix-vector product. Multi-threaded BLAS splits it across cores and
waits for the slowest thread, so on a busy machine (2 cores, other work running) its tail latency
jumps from well under a millisecond to tens of milliseconds; measured here: p99 41 ms with
OpenBLAS's threads against 9 ms with one thread, for a 10k x 384 scan under load. Bulk work
(building indexes, clustering) keeps every thread.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import Any, ContextManager, Iterator


@lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its own threading
        return None
    return ThreadpoolController()


@contextmanager
def _limited(controller: Any) -> Iterator[None]:
    with controller.limit(limits=1, user_api="blas"):
        yield


def single_threaded_blas() -> ContextManager[None]:
    controller = _controller()
    return nullcontext() if controller is None else _limited(controller)
