"""Single-threaded BLAS for per-query matrix-vector products.

A query's exact scan is one matrix-vector product. Multi-threaded BLAS splits it across cores and
waits for the slowest thread, so on a busy machine (2 cores, other work running) its tail latency
jumps from well under a millisecond to tens of milliseconds; measured here: p99 41 ms with
OpenBLAS's threads against 9 ms with one thread, for a 10k x 384 scan under load. Bulk work
(building indexes, clustering) keeps every thread.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its own threading
        return None
    return ThreadpoolController()


@lru_cache(maxsize=1)
def _blas_libraries() -> tuple[Any, ...]:
    controller = _controller()
    if controller is None:
        return ()
    return tuple(lib for lib in controller.lib_controllers if lib.user_api == "blas")


class _OneThread:
    """Sets each BLAS library to one thread and restores it on exit. Calls the libraries' own
    setters directly: ``ThreadpoolController.limit`` re-reads every library's state on each
    entry, ~40 us a query against ~2 us here."""

    __slots__ = ("libraries", "before")

    def __init__(self, libraries: tuple[Any, ...]) -> None:
        self.libraries = libraries
        self.before: list[int] = []

    def __enter__(self) -> None:
        self.before = [lib.get_num_threads() for lib in self.libraries]
        for lib, n in zip(self.libraries, self.before):
            if n != 1:
                lib.set_num_threads(1)

    def __exit__(self, *exc: object) -> None:
        for lib, n in zip(self.libraries, self.before):
            if n != 1:
                lib.set_num_threads(n)


def single_threaded_blas() -> AbstractContextManager[None]:
    libraries = _blas_libraries()
    return _OneThread(libraries) if libraries else nullcontext()
