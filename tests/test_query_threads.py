"""Searches from many threads at once: no process-wide BLAS switching per query, same answers.

vecmem once set BLAS to one thread around each query's matrix-vector product and back. The
setting is process-wide, so threads querying at once switched it under each other (32 threads:
26 searches/s against 296/s with BLAS at one thread) and under the caller's own BLAS work. A
query now computes its product without BLAS (:mod:`vecmem._matvec`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

from vecmem._matvec import matvec
from vecmem.fusion import Fusion
from vecmem.stores.embedded import EmbeddedStore
from vecmem.stores.memory import MemoryStore
from vecmem.testing.store_suite import corpus_texts, make_chunks, unit_vectors
from vecmem.types import EmbeddingSpace

DIM = 64
ROWS = 3000  # 3000 x 64: OpenBLAS splits a product this size across its threads
SPACE = EmbeddingSpace(embedder="test", dim=DIM)


@pytest.fixture
def blas_switches(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """BLAS at two threads, and every later change of its thread count recorded."""
    with threadpool_limits(limits=2, user_api="blas") as limits:
        libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        if not libs or max(lib.get_num_threads() for lib in libs) < 2:
            pytest.skip("no BLAS runs two threads in this process: no switch to observe")
        calls: list[int] = []
        for cls in {type(lib) for lib in libs}:
            real = cls.set_num_threads

            def counted(self: Any, n: int, _real: Callable[..., Any] = real) -> Any:
                calls.append(n)
                return _real(self, n)

            monkeypatch.setattr(cls, "set_num_threads", counted)
        yield calls
        monkeypatch.undo()
        del limits


def _stores(tmp_path: Path) -> dict[str, MemoryStore]:
    chunks, vectors = make_chunks(ROWS, texts=corpus_texts(ROWS)), unit_vectors(ROWS, DIM)
    hnsw = EmbeddedStore(tmp_path / "hnsw", ann_threshold=1, background=False)
    stores = {
        "memory": MemoryStore(),
        "embedded-exact": EmbeddedStore(tmp_path / "exact"),
        "embedded-hnsw": hnsw,
    }
    for store in stores.values():
        store.connect(SPACE)
        store.upsert(chunks, vectors)
    hnsw.flush()
    return stores


def _search(store: MemoryStore, i: int) -> list[tuple[str, float]]:
    q = unit_vectors(1, DIM, seed=1000 + i)[0]
    text = corpus_texts(1, seed=1000 + i)[0]
    hits = store.hybrid(q, text, k=10, candidates=50, fusion=Fusion("dbsf", alpha=0.4))
    vec = store.query(q, k=10)
    return [(h.id, h.score) for h in hits] + [(c.id, s) for c, s in vec]


def test_threaded_queries_leave_blas_alone_and_agree(
    tmp_path: Path, blas_switches: list[int]
) -> None:
    """8 threads x 25 queries on each store: BLAS's thread count is never switched (it was,
    twice a query), and every answer equals the same query run alone."""
    stores = _stores(tmp_path)
    queries = range(200)
    for name, store in stores.items():
        alone = [_search(store, i) for i in queries]
        before = len(blas_switches)
        with ThreadPoolExecutor(8) as pool:
            together = list(pool.map(lambda i, s=store: _search(s, i), queries))
        assert blas_switches[before:] == [], f"{name}: BLAS switched per query"
        assert together == alone, name
    for store in stores.values():
        store.close()


def test_matvec_is_the_product_row_by_row() -> None:
    """The same similarities for the whole matrix and for any subset of its rows (the exact
    scan and the HNSW re-scoring compare them), and equal to BLAS's within float32 rounding."""
    rows, q = unit_vectors(500, DIM, seed=3), unit_vectors(1, DIM, seed=4)[0]
    whole = matvec(rows, q)
    pick = np.random.default_rng(5).permutation(500)[:77]
    assert np.array_equal(matvec(rows[pick], q), whole[pick])
    np.testing.assert_allclose(whole, rows @ q, rtol=0, atol=1e-6)
    assert whole.dtype == np.float32
