"""A query's matrix-vector product, on the calling thread, without touching BLAS.

A query's exact scan (and the re-scoring of HNSW candidates) is one matrix-vector product.
Multi-threaded BLAS splits it across cores and waits for the slowest thread, so on a busy machine
its tail latency jumps from well under a millisecond to tens of milliseconds (measured on 2 busy
cores: p99 41 ms with OpenBLAS's threads against 9 ms with one, for a 10k x 384 scan). vecmem
used to switch BLAS to one thread around each query and back; that setting is process-wide, so
threads querying at once switched it under each other (32 threads did 26 searches/s that way
against 296/s with BLAS set to one thread once), and it changed the thread count under the
caller's own BLAS work while a query ran.

Here the product is ``np.einsum``, whose loop is numpy's own SIMD code on the calling thread: no
process-wide state, as fast as single-threaded OpenBLAS on the scans that matter (measured,
float32, 384-d: 5k rows 274 us against 252, 100k rows 9.8 ms against 10.0; a few microseconds
more on a hundred rows), and the caller's BLAS keeps its threads for bulk work.
"""

from __future__ import annotations

import numpy as np


def matvec(rows: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``rows @ vector`` computed row by row on this thread (see the module docstring).

    >>> matvec(np.eye(2, dtype=np.float32), np.array([3.0, 4.0], dtype=np.float32)).tolist()
    [3.0, 4.0]
    """
    return np.einsum("ij,j->i", rows, vector)
