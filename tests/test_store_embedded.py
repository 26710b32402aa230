"""The conformance suite on the embedded default (exact and HNSW paths), plus what only the
embedded store has: cross-process visibility, the HNSW index and its snapshot."""

from __future__ import annotations

import functools
import multiprocessing
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecmem.filters import parse_filter
from vecmem.stores.embedded import EmbeddedStore
from vecmem.testing import HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import SPACE, StoreFactory, make_chunks, unit_vectors
from vecmem.types import Chunk, EmbeddingSpace


class TestEmbeddedStore(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return functools.partial(EmbeddedStore, tmp_path / "kb")  # picklable: writers spawned


class _GraphAfterEveryWrite(EmbeddedStore):
    """Brings the graph up to date after every write (flush), so that searches go through
    HNSW alone, with no exact tail."""

    def upsert(self, chunks: Any, vectors: Any, *, delete_ids: Any = ()) -> None:
        super().upsert(chunks, vectors, delete_ids=delete_ids)
        self.flush()


def _hnsw_store(path: Path) -> EmbeddedStore:
    # rows read from SQLite on demand too (the other suite runs with them held in memory)
    store = _GraphAfterEveryWrite(path, ann_threshold=1, background=False, memory_rows=0)
    store.exact_filter_rows = 0  # send filtered searches through HNSW too
    return store


class TestEmbeddedStoreHNSW(StoreSuite):
    """The same suite with every search, filtered or not, going through the HNSW graph (a
    lambda factory: the process-writer test forks)."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: _hnsw_store(tmp_path / "kb")


def test_every_chunk_stays_reachable_through_hnsw(tmp_path: Path) -> None:
    """The HNSW graph must reach every chunk: a search for all of them returns all of them, and
    each chunk's own vector finds it first (usearch's multi-threaded add strands nodes,
    unum-cloud/USearch#735: at 1,000 8-d vectors most such graphs missed one)."""
    n = 1500
    store = _hnsw_store(tmp_path / "kb")
    store.connect(SPACE)
    chunks, vectors = make_chunks(n), unit_vectors(n, seed=11)
    store.upsert(chunks[:500], vectors[:500])  # the graph is built here, then grows
    store.upsert(chunks[500:], vectors[500:])
    assert store._ann_upto == n and len(store._ann) == n  # no exact tail: HNSW alone
    assert len(store.query(vectors[0], k=n)) == n
    assert all(store.query(vectors[i], k=1)[0][0].id == chunks[i].id for i in range(0, n, 7))


# ----------------------------------------------------------------------------- processes
def _reader(path: Path, ready: Any, go: Any) -> None:
    code = 1
    try:
        s = EmbeddedStore(path)
        s.connect(SPACE)
        assert s.count() == 5
        ready.set()
        go.wait(60)
        assert s.count() == 6, s.count()  # doc0 deleted, doc5 and doc6 added
        assert s.get(["doc0#0"]) == []
        assert [c.text for c in s.get(["doc6#0"])] == ["written by the parent"]
        assert [c.id for c, _ in s.keyword("parent", k=3)] == ["doc6#0"]
        assert s.query(unit_vectors(1, seed=606)[0], k=1)[0].chunk.id == "doc6#0"
        s.close()
        code = 0
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    os._exit(code)


def test_reader_process_sees_another_processes_commit(tmp_path: Path) -> None:
    """A store open in another process must see commits (adds, deletes) on its next call,
    without reopening."""
    path = tmp_path / "kb"
    s = EmbeddedStore(path)
    s.connect(SPACE)
    s.upsert(make_chunks(5), unit_vectors(5))
    ctx = multiprocessing.get_context("fork")
    ready, go = ctx.Event(), ctx.Event()
    p = ctx.Process(target=_reader, args=(path, ready, go))
    p.start()
    assert ready.wait(60)
    s.upsert(
        [Chunk.create("doc5", 0, "another"), Chunk.create("doc6", 0, "written by the parent")],
        np.vstack([unit_vectors(1, seed=605), unit_vectors(1, seed=606)]),
        delete_ids=["doc0#0"],
    )
    go.set()
    p.join(60)
    s.close()
    assert p.exitcode == 0


def _writer(path: Path, n: int) -> None:
    s = EmbeddedStore(path)
    s.connect(SPACE)
    s.upsert(make_chunks(n, prefix="child"), unit_vectors(n, seed=999))
    s.close()
    os._exit(0)


def test_hnsw_catches_up_with_another_processes_writes(tmp_path: Path) -> None:
    """An HNSW index already built must pick up vectors another process committed."""
    path = tmp_path / "kb"
    s = EmbeddedStore(path, ann_threshold=10)
    s.connect(SPACE)
    s.upsert(make_chunks(200), unit_vectors(200, seed=1))
    s.flush()
    assert s._ann is not None and len(s._ann) == 200
    p = multiprocessing.get_context("fork").Process(target=_writer, args=(path, 20))
    p.start()
    p.join(60)
    assert p.exitcode == 0
    child = unit_vectors(20, seed=999)
    for i in (0, 19):
        c, score = s.query(child[i], k=1)[0]
        assert c.id == f"child{i}#0" and score == pytest.approx(1.0, abs=1e-5)  # the tail
    s.flush()
    assert len(s._ann) == 220 and s._ann_upto == 220
    for i in (0, 19):
        assert s.query(child[i], k=1)[0].chunk.id == f"child{i}#0"  # through the graph
    s.close()


# ----------------------------------------------------------------------------- HNSW quality
DIM64 = EmbeddingSpace(embedder="test", dim=64)


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres (like real embeddings, not uniform)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    v = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float32)


@pytest.fixture(scope="module")
def hnsw_store(tmp_path_factory: pytest.TempPathFactory) -> Any:
    n = 5000
    vectors = clustered(n, 64, 50, seed=7)
    store = EmbeddedStore(tmp_path_factory.mktemp("hnsw") / "kb", ann_threshold=1000)
    store.exact_filter_rows = 0
    store.connect(DIM64)
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", {"bucket": i % 100}) for i in range(n)]
    store.upsert(chunks, vectors)
    store.flush()
    yield store, vectors, clustered(100, 64, 50, seed=8)
    store.close()


def test_hnsw_recall_at_10(hnsw_store: Any) -> None:
    """Above ann_threshold search goes through HNSW; its recall@10 against exact search must
    stay >= 0.95 on clustered vectors (else raise ann_expansion_search)."""
    store, vectors, queries = hnsw_store
    recalls = []
    for q in queries:
        got = store.query(q, k=10)
        assert store._ann is not None
        exact = set(np.argsort(-(vectors @ q))[:10].tolist())
        recalls.append(len({int(c.document_id[1:]) for c, _ in got} & exact) / 10)
        scores = [s for _, s in got]
        assert scores == sorted(scores, reverse=True)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


@pytest.mark.parametrize("buckets", [1, 10, 50], ids=["1%", "10%", "50%"])
def test_hnsw_filtered_search_returns_k(hnsw_store: Any, buckets: int) -> None:
    """A filtered search through HNSW must return k hits that all match, with recall >= 0.95
    against the exact filtered top-k, at 1%, 10% and 50% selectivity."""
    store, vectors, queries = hnsw_store
    f = parse_filter({"bucket": {"$lt": buckets}})
    rows = np.flatnonzero(np.arange(len(vectors)) % 100 < buckets)
    recalls = []
    for q in queries[:30]:
        got = store.query(q, k=10, filter=f)
        assert len(got) == 10
        assert all(c.metadata["bucket"] < buckets for c, _ in got)
        exact = set(rows[np.argsort(-(vectors[rows] @ q))[:10]].tolist())
        recalls.append(len({int(c.document_id[1:]) for c, _ in got} & exact) / 10)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


def test_rows_are_searchable_at_once_while_the_graph_is_built_beside(tmp_path: Path) -> None:
    """The write that crosses the threshold starts a build in a child process and returns;
    its rows, and rows written later, are found at once (the exact tail) while the graph is
    built, and the graph catches up with every row (extended, not rebuilt)."""
    s = EmbeddedStore(tmp_path / "kb", ann_threshold=100)
    s.connect(SPACE)
    s.upsert(make_chunks(99), unit_vectors(99, seed=1))
    assert s._ann is None and s._builder is None
    s.upsert(make_chunks(30, prefix="more"), unit_vectors(30, seed=2))
    assert s._builder is not None  # building beside, the write did not wait
    assert s.query(unit_vectors(30, seed=2)[7], k=1)[0].chunk.id == "more7#0"
    s.flush()
    assert len(s._ann) == 129 and s._ann_upto == 129
    stamp = (tmp_path / "kb" / "ann.usearch").stat().st_mtime_ns
    s.upsert(make_chunks(5, prefix="late"), unit_vectors(5, seed=3))
    assert s.query(unit_vectors(5, seed=3)[2], k=1)[0].chunk.id == "late2#0"  # from the tail
    s.delete(ids=["more7#0"])
    assert s.query(unit_vectors(30, seed=2)[7], k=1)[0].chunk.id != "more7#0"  # filtered out
    s.flush()
    assert len(s._ann) == 133 and s._ann_upto == 134  # one deleted row removed, five added
    assert (tmp_path / "kb" / "ann.usearch").stat().st_mtime_ns != stamp
    assert s.query(unit_vectors(5, seed=3)[2], k=1)[0].chunk.id == "late2#0"
    s.close()


def test_hnsw_snapshot_is_reused_after_reopen(tmp_path: Path) -> None:
    """close() saves the HNSW graph; reopening must load it (not rebuild) and answer the same."""
    path = tmp_path / "kb"
    vectors = clustered(1500, 64, 20, seed=3)
    s = EmbeddedStore(path, ann_threshold=100)
    s.connect(DIM64)
    s.upsert([Chunk.create(f"d{i}", 0, f"t {i}") for i in range(1500)], vectors)
    q = clustered(1, 64, 20, seed=4)[0]
    s.flush()
    before = [(c.id, s) for c, s in s.query(q, k=10)]
    s.close()
    assert (path / "ann.usearch").exists()
    stamp = (path / "ann.usearch").stat().st_mtime_ns
    again = EmbeddedStore(path, ann_threshold=100)
    again.connect(DIM64)
    assert [(c.id, pytest.approx(s)) for c, s in again.query(q, k=10)] == before
    assert again._ann is not None and again._ann_upto == 1500 and again._builder is None
    assert (path / "ann.usearch").stat().st_mtime_ns == stamp  # mapped, not rebuilt
    again.close()


def test_an_older_graph_serves_its_rows_and_is_extended(tmp_path: Path) -> None:
    """A saved graph older than the data (more rows committed by a store that builds none)
    still serves the rows it holds; the rest are the exact tail until a build extends it, so
    no committed vector is missing from search."""
    path = tmp_path / "kb"
    s = EmbeddedStore(path, ann_threshold=10)
    s.connect(SPACE)
    s.upsert(make_chunks(100), unit_vectors(100, seed=1))
    s.flush()
    s.close()
    plain = EmbeddedStore(path, ann_threshold=10**9)  # never builds: the graph goes stale
    plain.connect(SPACE)
    plain.upsert(make_chunks(10, prefix="late"), unit_vectors(10, seed=2))
    plain.close()
    again = EmbeddedStore(path, ann_threshold=10, background=False)
    again.connect(SPACE)
    late = unit_vectors(10, seed=2)
    assert again.query(late[3], k=1)[0].chunk.id == "late3#0"
    assert len(again._ann) == 100 and again._ann_upto == 100  # the old graph, and the tail
    again.flush()
    assert len(again._ann) == 110
    assert again.query(late[3], k=1)[0].chunk.id == "late3#0"
    again.close()


def test_rows_added_and_deleted_elsewhere_are_skipped(tmp_path: Path) -> None:
    """A connection that missed both the add and the delete of a row (made by another
    connection) must replay the log without error and agree on the contents."""
    a = EmbeddedStore(tmp_path / "kb")
    a.connect(SPACE)
    a.upsert(make_chunks(3), unit_vectors(3))
    b = EmbeddedStore(tmp_path / "kb")
    b.connect(SPACE)
    b.upsert(make_chunks(2, prefix="x"), unit_vectors(2, seed=3))
    b.delete(ids=["x0#0"])
    b.upsert(make_chunks(1, prefix="y"), unit_vectors(1, seed=4), delete_ids=["x1#0", "doc0#0"])
    assert a.count() == b.count() == 3
    assert sorted(c.id for c in a.all_chunks()) == ["doc1#0", "doc2#0", "y0#0"]
    assert a.query(unit_vectors(1, seed=4)[0], k=1)[0].chunk.id == "y0#0"
    a.close()
    b.close()


def test_connect_while_another_thread_writes(tmp_path: Path) -> None:
    """Opening a store while another connection commits must load each row exactly once (the
    first load reads the table and the log in one snapshot)."""
    import threading

    main = EmbeddedStore(tmp_path / "kb")
    main.connect(SPACE)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        w = EmbeddedStore(tmp_path / "kb")
        w.connect(SPACE)
        for j in range(0, 200, 10):
            w.upsert(
                make_chunks(10, prefix="w", start=j, texts=[f"w {i}" for i in range(10)]),
                unit_vectors(10, seed=j),
            )
        w.close()
        stop.set()

    t = threading.Thread(target=write)
    t.start()
    while not stop.is_set():
        s = EmbeddedStore(tmp_path / "kb")
        try:
            s.connect(SPACE)
            s.count()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        s.close()
    t.join()
    assert not errors, errors[:3]
    assert main.count() == 200
    main.close()


class TestEmbeddedStoreHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return functools.partial(EmbeddedStore, tmp_path / "kb")


def test_a_failed_graph_build_is_logged_and_not_retried_on_every_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A build process that fails is reported once; rows stay searchable (exactly), no new
    build starts on the next writes (no process a write), and flush() builds the graph."""
    import subprocess
    import sys

    from vecmem.stores import embedded

    real = subprocess.Popen
    started: list[Any] = []

    def failing(args: Any, **kwargs: Any) -> Any:
        started.append(real([sys.executable, "-c", "raise SystemExit(3)"], **kwargs))
        return started[-1]

    monkeypatch.setattr(embedded.subprocess, "Popen", failing)
    s = EmbeddedStore(tmp_path / "kb", ann_threshold=10)
    s.connect(SPACE)
    s.upsert(make_chunks(20), unit_vectors(20, seed=1))
    started[0].wait()
    for j in range(3):
        s.upsert(make_chunks(5, prefix=f"b{j}"), unit_vectors(5, seed=2 + j))
    assert len(started) == 1 and "failed (exit 3)" in caplog.text
    assert s.query(unit_vectors(5, seed=4)[1], k=1)[0].chunk.id == "b21#0"
    monkeypatch.undo()
    s.flush()
    assert len(s._ann) == 35
    s.close()
