"""The conformance suite on LanceDB (embedded, in a temporary folder), plus what only this adapter
has: URLs, the typed filter columns, the BM25 index kept beside the table and its snapshot."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lancedb", reason="lancedb is not installed (pip install 'vecmem[lancedb]')")

from vecmem.errors import ConfigurationError, NotFoundError, UnsupportedFilterError  # noqa: E402
from vecmem.filters import matches, parse_filter  # noqa: E402
from vecmem.stores import open_store  # noqa: E402
from vecmem.stores.lancedb import LanceDb  # noqa: E402
from vecmem.testing import CongruenceSuite, StoreSuite  # noqa: E402
from vecmem.testing.store_suite import (  # noqa: E402
    SPACE,
    StoreFactory,
    make_chunks,
    reference,
    unit_vectors,
)
from vecmem.types import Chunk  # noqa: E402


def _spawned_writer(uri: str, start: int, n: int) -> None:
    """Runs in a spawned process: the suite's writer, on LanceDB."""
    s = LanceDb(uri, table="suite")
    s.connect(SPACE)
    for j in range(start, start + n, 10):
        texts = [f"proc {i}" for i in range(j, j + 10)]
        s.upsert(make_chunks(10, prefix="p", start=j, texts=texts), unit_vectors(10, seed=j))
    s.close()


class TestLanceDb(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: LanceDb(tmp_path / "lance", table="suite")

    def test_processes_writing_lose_nothing(  # type: ignore[override]
        self, store: LanceDb, store_factory: StoreFactory, tmp_path: Path
    ) -> None:
        """The suite's check with processes started by 'spawn' instead of 'fork': lancedb resets
        its runtime in a forked child but documents that a fork can still deadlock (it did here,
        about one run in five), so its writers must not be forked from a process using it."""
        ctx = multiprocessing.get_context("spawn")
        procs = [ctx.Process(target=_spawned_writer, args=(str(tmp_path / "lance"), p * 1000, 100))
                 for p in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(180)
        assert [p.exitcode for p in procs] == [0, 0], "a writer process failed (see its stderr)"
        assert store.count() == 200
        assert len(store.get([f"p{i}#0" for i in (0, 99, 1000, 1099)])) == 4
        assert len(store.keyword("proc", k=500)) == 200  # the BM25 leg saw both writers


class TestLanceDbCongruence(CongruenceSuite):
    """SciFact with the real model against the exact reference."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: LanceDb(tmp_path / "lance", table="congruence")


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize("url,uri,table", [
    ("lancedb:///data/lance", "/data/lance", "vecmem"),
    ("lancedb:///data/lance?table=kb", "/data/lance", "kb"),
    ("lancedb://./rel?collection=c", "./rel", "c"),
])
def test_urls(url: str, uri: str, table: str) -> None:
    """open_store() must map lancedb:// URLs onto the folder and table."""
    store = open_store(url)
    assert isinstance(store, LanceDb) and (store.uri, store.table) == (uri, table)


@pytest.mark.parametrize("url", ["lancedb://", "lancedb:///x?tabel=y"])
def test_bad_urls_raise(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_bad_table_name_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        LanceDb(tmp_path, table="a b'; drop")


# ----------------------------------------------------------------------------- errors
def test_missing_table_has_no_space_and_is_not_created(tmp_path: Path) -> None:
    """stored_space() on a missing table must return None without creating it."""
    store = LanceDb(tmp_path / "lance", table="absent")
    assert store.stored_space() is None
    assert not (tmp_path / "lance" / "absent.lance").exists()


def test_table_dropped_underneath_is_not_found(tmp_path: Path) -> None:
    """If the table disappears after connect, calls must raise NotFoundError."""
    store = LanceDb(tmp_path / "lance", table="gone")
    store.connect(SPACE)
    store.upsert(make_chunks(2), unit_vectors(2))
    store._conn().drop_table("gone")
    with pytest.raises(NotFoundError):
        store.count()
    store.close()


def test_foreign_table_is_refused(tmp_path: Path) -> None:
    """A table not made by vecmem (no recorded space) must raise ConfigurationError."""
    import lancedb
    import pyarrow as pa

    lancedb.connect(tmp_path / "lance").create_table(
        "theirs", schema=pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), 8))]))
    with pytest.raises(ConfigurationError):
        LanceDb(tmp_path / "lance", table="theirs").connect(SPACE)


def test_non_finite_filter_bound_is_unsupported(tmp_path: Path) -> None:
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    with pytest.raises(UnsupportedFilterError):
        store.count(parse_filter({"x": {"$lt": float("inf")}}))


# ----------------------------------------------------------------------------- layout
def test_awkward_field_names_and_quotes_filter_exactly(tmp_path: Path) -> None:
    """Field names with dots, capitals, quotes or non-ASCII, and values with quotes, must address
    exactly that field and value (no SQL injection, no case folding)."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    metas = [{"a.b": 1}, {"A": "x"}, {"a": "x"}, {"it's": "o'clock"}, {"_61": 2}, {"a": 2},
             {"a": ["x", "y'"]}]
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(metas)]
    store.upsert(chunks, unit_vectors(len(chunks)))
    for spec in ({"a.b": 1}, {"A": "x"}, {"a": "x"}, {"it's": "o'clock"}, {"_61": 2}, {"a": 2},
                 {"a": {"$contains": "y'"}}, {"a": {"$ne": "x"}}, {"A": {"$exists": False}}):
        f = parse_filter(spec)
        want = {c.id for c in chunks if matches(f, c.metadata)}
        assert {c.id for c, _ in store.query(unit_vectors(1)[0], k=10, filter=f)} == want, spec
        assert store.count(f) == len(want), spec


def test_upsert_with_deletes_is_one_commit(tmp_path: Path) -> None:
    """An upsert and its delete_ids land in one Lance commit (one new table version)."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    store.upsert(make_chunks(4), unit_vectors(4))
    before = store._t().version
    store.upsert(make_chunks(1, start=4), unit_vectors(1, seed=4), delete_ids=["doc0#0"])
    assert store._t().version == before + 1
    assert store.count() == 4 and store.get(["doc0#0"]) == []


def _bm25_of(store: LanceDb, q: str) -> list[tuple[str, float]]:
    return [(c.id, s) for c, s in store.keyword(q, k=10)]


def test_keyword_index_snapshot_is_reused_only_when_current(tmp_path: Path) -> None:
    """close() saves the BM25 index next to the table; reopening reuses it when the table
    version matches, and rebuilds it when another writer committed since."""
    chunks = make_chunks(30)
    vectors = unit_vectors(30)
    first = LanceDb(tmp_path / "lance")
    first.connect(SPACE)
    first.upsert(chunks, vectors)
    first.close()
    assert (tmp_path / "lance" / "vecmem.vecmem-bm25.npz").exists()
    want = [(c.id, pytest.approx(s))
            for c, s in reference(chunks, vectors).keyword("memory graph", k=10)]
    second = LanceDb(tmp_path / "lance")
    rebuilds = []
    second._rebuild_keyword_index = lambda: rebuilds.append(1)  # type: ignore[method-assign]
    second.connect(SPACE)
    assert rebuilds == [] and _bm25_of(second, "memory graph") == want
    second.close()
    # a writer that never closes leaves the snapshot behind the table
    import lancedb

    lancedb.connect(tmp_path / "lance").open_table("vecmem").delete("id = 'doc3#0'")
    third = LanceDb(tmp_path / "lance")
    third.connect(SPACE)
    ref = reference([c for c in chunks if c.id != "doc3#0"],
                    np.delete(vectors, 3, axis=0)).keyword("memory graph", k=10)
    assert _bm25_of(third, "memory graph") == [(c.id, pytest.approx(s)) for c, s in ref]
    third.close()


def test_keyword_leg_follows_another_writer_without_reopening(tmp_path: Path) -> None:
    """A store must see another store object's commits in its keyword leg on the next search."""
    a = LanceDb(tmp_path / "lance")
    a.connect(SPACE)
    a.upsert(make_chunks(10), unit_vectors(10))
    b = LanceDb(tmp_path / "lance")
    b.connect(SPACE)
    b.upsert([Chunk.create("other", 0, "zebra crossing")], unit_vectors(1, seed=5),
             delete_ids=["doc1#0"])
    assert [c.id for c, _ in a.keyword("zebra", k=3)] == ["other#0"]
    a.upsert([Chunk.create("mine", 0, "zebra too")], unit_vectors(1, seed=6))
    everything = a.get([f"doc{i}#0" for i in range(10)] + ["other#0", "mine#0"])
    ref = reference(everything, a.get_vectors([c.id for c in everything]))
    assert _bm25_of(a, "zebra memory") == [(c.id, pytest.approx(s))
                                           for c, s in ref.keyword("zebra memory", k=10)]
    a.close()
    b.close()


def test_optimize_changes_no_answers(tmp_path: Path) -> None:
    """optimize() (compaction, B-tree on id) must leave contents and keyword scores as they were,
    without a rebuild of the BM25 index, and later writes must still be tracked."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    for i in range(4):  # several commits: several fragments
        store.upsert(make_chunks(10, start=10 * i), unit_vectors(10, seed=i))
    before = _bm25_of(store, "memory graph")
    store.optimize()
    assert any(list(ix.columns) == ["id"] for ix in store._t().list_indices())
    store._rebuild_keyword_index = None  # type: ignore[assignment]  # must not be needed
    assert _bm25_of(store, "memory graph") == [(i, pytest.approx(s)) for i, s in before]
    assert store.count() == 40
    store.upsert([Chunk.create("late", 0, "graph graph graph")], unit_vectors(1, seed=9))
    assert store.get(["late#0"])[0].text == "graph graph graph"
    assert _bm25_of(store, "graph")[0][0] == "late#0"


def test_selective_filter_on_keyword_uses_one_scan(tmp_path: Path) -> None:
    """With a filter matching few of many keyword candidates, keyword search must still return
    the exact filtered top k (past widening by id lists, it switches to one filtered scan)."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    n = 6000
    chunks = make_chunks(n, metadata=lambda i: {"rare": i % 1000 == 7},
                         texts=[f"memory chunk {'memory ' * (i % 3)}{i}" for i in range(n)])
    store.upsert(chunks, unit_vectors(n, seed=2))
    f = parse_filter({"rare": True})
    ref = reference(chunks, unit_vectors(n, seed=2))
    want = ref.keyword("memory chunk", k=5, filter=f)
    scans = []
    real_mask = store._mask
    store._mask = (  # type: ignore[method-assign]
        lambda where: scans.append(where) or real_mask(where))
    got = store.keyword("memory chunk", k=5, filter=f)
    assert len(scans) == 1
    assert [(c.id, pytest.approx(s)) for c, s in want] == [(c.id, s) for c, s in got]
    assert len(got) == 5
