"""The conformance suite on LanceDB (embedded, in a temporary folder) in both keyword modes, plus
what only this adapter has: URLs, the typed filter columns, the BM25 index kept beside the table
and its snapshot (``keyword="exact"``), LanceDB's full-text index and hybrid (``"native"``).

In native mode the suite's keyword checks are held against :class:`LuceneReference`: BM25 as
LanceDB's full-text index computes it (Lucene's idf, k1=1.2, b=0.75, LanceDB's tokenizer) over
the live rows, instead of rank_bm25's."""

from __future__ import annotations

import functools
import math
import multiprocessing
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("lancedb", reason="lancedb is not installed (pip install 'vecmem[lancedb]')")

from vecmem.errors import (
    ConfigurationError,
    InvalidFilterError,
    InvalidInputError,
    NotFoundError,
    UnsupportedFilterError,
)
from vecmem.filters import Cond, Filter, matches, parse_filter
from vecmem.fusion import Fusion, fuse
from vecmem.memory import VectorMemory
from vecmem.stores import _lancedb_layout as lancedb_layout
from vecmem.stores import lancedb as lancedb_store
from vecmem.stores import open_store
from vecmem.stores.base import validate_vectors
from vecmem.stores.lancedb import LanceDb
from vecmem.stores.memory import MemoryStore
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.congruence import filled
from vecmem.testing.store_suite import (
    SPACE,
    ReferenceFactory,
    StoreFactory,
    assert_ranked_like,
    corpus_texts,
    make_chunks,
    ranked_keyword,
    reference,
    unit_vectors,
)
from vecmem.tokenize import LUCENE_ENGLISH_STOP_WORDS, DefaultTokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

MODES = ["exact", "native"]


# ----------------------------------------------------------------------------- the native oracle
_STEM = DefaultTokenizer(stopwords=())


def _hybrid(
    store: LanceDb,
    q: np.ndarray,
    text: str,
    *,
    k: int,
    candidates: int,
    fusion: Fusion,
    filter: Any = None,
) -> list[Any]:
    """What the facade does with a both_legs store: fuse the two legs it returns."""
    return fuse(*store.both_legs(q, text, k=candidates, filter=filter), fusion, k=k)


def lance_tokens(text: str) -> list[str]:
    """LanceDB's tokenizer as vecmem configures it: runs of letters and digits (``_`` splits),
    lower case, Snowball English stems, then Lucene's English stop words dropped (after stemming,
    unlike vecmem's tokenizer: "its" -> "it" is dropped)."""
    stems = [t for w in re.findall(r"[^\W_]+", text.lower()) for t in _STEM(w)]
    return [t for t in stems if t not in LUCENE_ENGLISH_STOP_WORDS]


class LuceneReference(MemoryStore):
    """The exact reference, with keyword scores as LanceDB's native full-text index computes them:
    sum over query tokens (repeats count) of ``ln(1 + (N - df + 0.5) / (df + 0.5)) * tf * 2.2 /
    (tf + 1.2 * (0.25 + 0.75 * dl / avgdl))`` over every live chunk."""

    _tokens: dict[str, Counter[str]]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        chunks = self.all_chunks()
        if not hasattr(self, "_tokens"):
            self._tokens = {}
        docs = [
            self._tokens.get(c.content_hash)
            or self._tokens.setdefault(c.content_hash, Counter(lance_tokens(c.text)))
            for c in chunks
        ]
        n = len(docs)
        avgdl = sum(sum(d.values()) for d in docs) / n if n else 1.0
        df = Counter(t for d in docs for t in d)
        query = lance_tokens(text)

        def score(c: Chunk, d: Mapping[str, int]) -> float:
            dl = sum(d.values())
            return sum(
                math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                * d[t]
                * 2.2
                / (d[t] + 1.2 * (0.25 + 0.75 * dl / avgdl))
                for t in query
                if t in d
            )

        return ranked_keyword(chunks, docs, query, k, filter, score)


lucene_reference = functools.partial(reference, cls=LuceneReference)


def _spawned_writer(uri: str, start: int, n: int, keyword: str = "exact") -> None:
    """Runs in a spawned process: the suite's writer, on LanceDB."""
    s = LanceDb(uri, table="suite", keyword=keyword)  # type: ignore[arg-type]
    s.connect(SPACE)
    for j in range(start, start + n, 10):
        texts = [f"proc {i}" for i in range(j, j + 10)]
        s.upsert(make_chunks(10, prefix="p", start=j, texts=texts), unit_vectors(10, seed=j))
    s.close()


class TestLanceDb(StoreSuite):
    @pytest.fixture(params=MODES)
    def keyword_mode(self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
        """Both keyword modes."""
        if request.param == "native":
            # the index rebuilt before any search that follows a change: LanceDB's statistics are
            # then those of the live rows (tests below cover searches while the index lags)
            monkeypatch.setattr(lancedb_store, "FTS_LAG", 0)
            monkeypatch.setattr(lancedb_store, "_FTS_CHECK_S", 0.0)
        return str(request.param)

    @pytest.fixture
    def reference_factory(self, keyword_mode: str) -> ReferenceFactory:
        """Native mode's keyword answers are held to LuceneReference."""
        return lucene_reference if keyword_mode == "native" else reference

    @pytest.fixture
    def store_factory(self, tmp_path: Path, keyword_mode: str) -> StoreFactory:
        return lambda: LanceDb(tmp_path / "lance", table="suite", keyword=keyword_mode)  # type: ignore[arg-type]

    def test_processes_writing_lose_nothing(  # type: ignore[override]
        self, store: LanceDb, store_factory: StoreFactory, tmp_path: Path
    ) -> None:
        """The suite's check with processes started by 'spawn' instead of 'fork': lancedb resets
        its runtime in a forked child but documents that a fork can still deadlock (it did here,
        about one run in five), so its writers must not be forked from a process using it."""
        ctx = multiprocessing.get_context("spawn")
        procs = [
            ctx.Process(
                target=_spawned_writer,
                args=(str(tmp_path / "lance"), p * 1000, 100, store.keyword_mode),
            )
            for p in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(180)
        assert [p.exitcode for p in procs] == [0, 0], "a writer process failed (see its stderr)"
        assert store.count() == 200
        assert len(store.get([f"p{i}#0" for i in (0, 99, 1000, 1099)])) == 4
        assert len(store.keyword("proc", k=500)) == 200  # the BM25 leg saw both writers


class TestLanceDbCongruence(CongruenceSuite):
    """SciFact with the real model against the exact reference, in both keyword modes."""

    KEYWORD_REL = 1e-4  # LanceDB's FTS scores are float32

    @pytest.fixture(params=MODES)
    def keyword_mode(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def store_factory(self, tmp_path: Path, keyword_mode: str) -> StoreFactory:
        return lambda: LanceDb(tmp_path / "lance", table="congruence", keyword=keyword_mode)  # type: ignore[arg-type]

    @pytest.fixture
    def keyword_reference(  # type: ignore[override]
        self, reference: VectorMemory, data: Any, keyword_mode: str
    ) -> VectorMemory:
        """exact: rank_bm25's scores. native: LanceDB's documented BM25 (LuceneReference over the
        same chunks), which also checks that its tokenizer mirrors vecmem's on real text."""
        return reference if keyword_mode == "exact" else filled(LuceneReference(), data)


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    "url,uri,table,mode",
    [
        ("lancedb:///data/lance", "/data/lance", "vecmem", "exact"),
        ("lancedb:///data/lance?table=kb", "/data/lance", "kb", "exact"),
        ("lancedb://./rel?collection=c", "./rel", "c", "exact"),
        ("lancedb:///data/lance?table=kb&keyword=native", "/data/lance", "kb", "native"),
    ],
)
def test_urls(url: str, uri: str, table: str, mode: str) -> None:
    """open_store() must map lancedb:// URLs onto the folder, table and keyword mode."""
    store = open_store(url)
    assert isinstance(store, LanceDb) and (store.uri, store.table) == (uri, table)
    assert store.keyword_mode == mode
    assert store.capabilities.native_keyword == store.capabilities.both_legs == (mode == "native")


@pytest.mark.parametrize("url", ["lancedb://", "lancedb:///x?tabel=y", "lancedb:///x?keyword=fts"])
def test_bad_urls_raise(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


@pytest.mark.parametrize("mode", ["fts", "Native", "", None, True])
def test_bad_keyword_mode_raises(tmp_path: Path, mode: Any) -> None:
    """keyword= takes 'exact' or 'native' only, checked before anything is opened or made."""
    with pytest.raises(ConfigurationError, match="keyword"):
        LanceDb(tmp_path / "lance", keyword=mode)
    assert not (tmp_path / "lance").exists()


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
    store._c().drop_table("gone")
    with pytest.raises(NotFoundError):
        store.count()
    store.close()


def test_foreign_table_is_refused(tmp_path: Path) -> None:
    """A table not made by vecmem (no recorded space) must raise ConfigurationError."""
    import lancedb
    import pyarrow as pa

    lancedb.connect(tmp_path / "lance").create_table(
        "theirs", schema=pa.schema([("id", pa.string()), ("vector", pa.list_(pa.float32(), 8))])
    )
    with pytest.raises(ConfigurationError):
        LanceDb(tmp_path / "lance", table="theirs").connect(SPACE)


def test_non_finite_filter_bound_is_unsupported(tmp_path: Path) -> None:
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    with pytest.raises(InvalidFilterError):  # refused by the grammar on every backend
        store.count(parse_filter({"x": {"$lt": float("inf")}}))
    with pytest.raises(UnsupportedFilterError):  # and by the adapter, if built by hand
        store.count(Cond("x", "lt", math.inf))


@pytest.mark.parametrize("mode", MODES)
def test_query_text_that_is_not_a_str_is_invalid_input(tmp_path: Path, mode: str) -> None:
    """keyword()/both_legs() with a text that is not a str: InvalidInputError in both modes
    (it used to escape as AttributeError from the tokenizer, or from ``text.strip()``)."""
    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    chunks = make_chunks(3)
    store.upsert(chunks, unit_vectors(len(chunks), SPACE.dim))
    for text in (123, None, b"hello"):
        with pytest.raises(InvalidInputError, match="str"):
            store.keyword(text, k=2)  # type: ignore[arg-type]
        if mode == "native":
            with pytest.raises(InvalidInputError, match="str"):
                store.both_legs(np.ones(SPACE.dim), text, k=2)  # type: ignore[arg-type]
    assert store.count() == len(chunks)
    store.close()


# ----------------------------------------------------------------------------- layout
def test_awkward_field_names_and_quotes_filter_exactly(tmp_path: Path) -> None:
    """Field names with dots, capitals, quotes or non-ASCII, and values with quotes, must address
    exactly that field and value (no SQL injection, no case folding)."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    metas = [
        {"a.b": 1},
        {"A": "x"},
        {"a": "x"},
        {"it's": "o'clock"},
        {"_61": 2},
        {"a": 2},
        {"a": ["x", "y'"]},
    ]
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(metas)]
    store.upsert(chunks, unit_vectors(len(chunks)))
    for spec in (
        {"a.b": 1},
        {"A": "x"},
        {"a": "x"},
        {"it's": "o'clock"},
        {"_61": 2},
        {"a": 2},
        {"a": {"$contains": "y'"}},
        {"a": {"$ne": "x"}},
        {"A": {"$exists": False}},
    ):
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
    want = [
        (c.id, pytest.approx(s))
        for c, s in reference(chunks, vectors).keyword("memory graph", k=10)
    ]
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
    ref = reference([c for c in chunks if c.id != "doc3#0"], np.delete(vectors, 3, axis=0)).keyword(
        "memory graph", k=10
    )
    assert _bm25_of(third, "memory graph") == [(c.id, pytest.approx(s)) for c, s in ref]
    third.close()


def test_keyword_leg_follows_another_writer_without_reopening(tmp_path: Path) -> None:
    """A store must see another store object's commits in its keyword leg on the next search."""
    a = LanceDb(tmp_path / "lance")
    a.connect(SPACE)
    a.upsert(make_chunks(10), unit_vectors(10))
    b = LanceDb(tmp_path / "lance")
    b.connect(SPACE)
    b.upsert(
        [Chunk.create("other", 0, "zebra crossing")], unit_vectors(1, seed=5), delete_ids=["doc1#0"]
    )
    assert [c.id for c, _ in a.keyword("zebra", k=3)] == ["other#0"]
    a.upsert([Chunk.create("mine", 0, "zebra too")], unit_vectors(1, seed=6))
    everything = a.get([f"doc{i}#0" for i in range(10)] + ["other#0", "mine#0"])
    ref = reference(everything, a.get_vectors([c.id for c in everything]))
    assert _bm25_of(a, "zebra memory") == [
        (c.id, pytest.approx(s)) for c, s in ref.keyword("zebra memory", k=10)
    ]
    a.close()
    b.close()


def test_optimize_changes_no_answers(tmp_path: Path) -> None:
    """optimize() (compaction, B-trees on document_id and, in exact mode, id) must leave contents
    and keyword scores as they were, without a rebuild of the BM25 index, and later writes must
    still be tracked."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    for i in range(4):  # several commits: several fragments
        store.upsert(make_chunks(10, start=10 * i), unit_vectors(10, seed=i))
    before = _bm25_of(store, "memory graph")
    store.optimize()
    assert sorted(list(ix.columns) for ix in store._t().list_indices()) == [["document_id"], ["id"]]
    store._rebuild_keyword_index = None  # type: ignore[assignment]  # must not be needed
    assert _bm25_of(store, "memory graph") == [(i, pytest.approx(s)) for i, s in before]
    assert store.count() == 40
    store.upsert([Chunk.create("late", 0, "graph graph graph")], unit_vectors(1, seed=9))
    assert store.get(["late#0"])[0].text == "graph graph graph"
    assert _bm25_of(store, "graph")[0][0] == "late#0"


def test_native_optimize_leaves_id_without_a_btree(tmp_path: Path) -> None:
    """In native mode optimize() drops a B-tree on id (it slows every upsert's merge_insert)
    and keeps answers as they were."""
    import lancedb.index

    store = LanceDb(tmp_path / "lance", keyword="native")
    store.connect(SPACE)
    chunks, vectors = make_chunks(30), unit_vectors(30)
    store.upsert(chunks, vectors)
    store._t().create_index("id", config=lancedb.index.BTree())  # as an older vecmem made
    hits = [c.id for c, _ in store.query(vectors[4], k=5)]
    store.optimize()
    indexed = [list(ix.columns) for ix in store._t().list_indices() if ix.index_type != "FTS"]
    assert indexed == [["document_id"]]
    assert [c.id for c, _ in store.query(vectors[4], k=5)] == hits
    assert [c.id for c in store.get([chunks[7].id])] == [chunks[7].id]


def test_selective_filter_on_keyword_uses_one_scan(tmp_path: Path) -> None:
    """With a filter matching few of many keyword candidates, keyword search must still return
    the exact filtered top k (past widening by id lists, it switches to one filtered scan)."""
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    n = 6000
    chunks = make_chunks(
        n,
        metadata=lambda i: {"rare": i % 1000 == 7},
        texts=[f"memory chunk {'memory ' * (i % 3)}{i}" for i in range(n)],
    )
    store.upsert(chunks, unit_vectors(n, seed=2))
    f = parse_filter({"rare": True})
    ref = reference(chunks, unit_vectors(n, seed=2))
    want = ref.keyword("memory chunk", k=5, filter=f)
    scans = []  # reads of the ids matching the filter (the one scan)
    real_rows = store._rows
    store._rows = (  # type: ignore[method-assign]
        lambda where, cols: (
            (scans.append(where) if cols == ["id"] else None) or real_rows(where, cols)
        )
    )
    got = store.keyword("memory chunk", k=5, filter=f)
    assert len(scans) == 1
    assert [(c.id, pytest.approx(s)) for c, s in want] == [(c.id, s) for c, s in got]
    assert len(got) == 5


# ----------------------------------------------------------------------------- native mode
@pytest.fixture
def native(tmp_path: Path) -> Iterator[LanceDb]:
    store = LanceDb(tmp_path / "lance", keyword="native")
    store.connect(SPACE)
    yield store
    store.close()


def _ids(hits: Sequence[Any]) -> list[str]:
    return [h.id if hasattr(h, "id") else h[0].id for h in hits]


def _unindexed(store: LanceDb) -> int:
    stats = store._t().index_stats(store._fts_name)
    assert stats is not None
    return int(stats.num_unindexed_rows)


def test_native_sees_its_own_writes_and_deletes_while_the_index_lags(native: LanceDb) -> None:
    """Between index rebuilds (fewer than FTS_LAG changes), keyword and hybrid search must still
    return new and overwritten chunks by their new text, never by their old, and never deleted
    ones, with and without a filter."""
    n = 1500
    chunks = make_chunks(n, metadata=lambda i: {"i": i}, texts=corpus_texts(n, seed=4))
    vectors = unit_vectors(n, seed=4)
    native.upsert(chunks, vectors)
    assert native.keyword("memory", k=3)  # more than FTS_LAG rows outside: rebuilt first
    assert _unindexed(native) == 0
    q = unit_vectors(1, seed=8)[0]

    def both(text: str, f: Any = None) -> tuple[set[str], set[str]]:
        flt = None if f is None else parse_filter(f)
        kw = {c.id for c, _ in native.keyword(text, k=50, filter=flt)}
        hy = {
            h.id
            for h in _hybrid(native, q, text, k=2000, candidates=50, fusion=Fusion(), filter=flt)
            if h.scores.keyword is not None
        }
        return kw, hy

    native.upsert([Chunk.create("new", 0, "zebra crossing", {"i": -1})], unit_vectors(1, seed=1))
    assert both("zebra") == ({"new#0"}, {"new#0"})
    assert both("zebra", {"i": {"$lt": 0}}) == ({"new#0"}, {"new#0"})
    assert both("zebra", {"i": {"$gte": 0}}) == (set(), set())
    native.upsert([Chunk.create("doc7", 0, "xylophone solo", {"i": 7})], unit_vectors(1, seed=2))
    assert both("xylophone") == ({"doc7#0"}, {"doc7#0"})
    assert "doc7#0" not in both(chunks[7].text)[0] | both(chunks[7].text)[1]
    native.delete(ids=["new#0"])
    native.upsert(
        [Chunk.create("late", 0, "quokka", {"i": -2})],
        unit_vectors(1, seed=3),
        delete_ids=["doc7#0"],
    )
    assert both("zebra xylophone") == (set(), set())
    assert both("quokka") == ({"late#0"}, {"late#0"})
    assert _unindexed(native) == 1  # the index lagged all along (late#0 is outside it)
    native.delete(filter=parse_filter({"i": {"$lt": 100}}))
    kw, hy = both("memory vector search")
    assert kw and all(int(i[3:-2]) >= 100 for i in kw | hy)


def test_native_rebuilds_the_index_after_fts_lag_changes(
    native: LanceDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More than FTS_LAG rows written or deleted here make the next search rebuild the index; its
    scores are then LanceDB's BM25 over exactly the live rows (deleted ones no longer counted)."""
    monkeypatch.setattr(lancedb_store, "FTS_LAG", 40)
    chunks = make_chunks(200, texts=corpus_texts(200, seed=6))
    vectors = unit_vectors(200, seed=6)
    native.upsert(chunks, vectors)
    native.keyword("memory", k=1)
    assert _unindexed(native) == 0
    native.delete(ids=[c.id for c in chunks[:41]])  # deletes alone count too
    live, live_vectors = chunks[41:], vectors[41:]
    ref = lucene_reference(live, live_vectors)
    for q in ("memory graph", "agent keyword index"):
        got = native.keyword(q, k=10)
        want = ref.keyword(q, k=10)
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-5)
    native.upsert(
        make_chunks(41, prefix="x", texts=corpus_texts(41, seed=7)), unit_vectors(41, seed=7)
    )
    _hybrid(native, vectors[50], "memory", k=5, candidates=10, fusion=Fusion())
    assert _unindexed(native) == 0


def test_native_hybrid_with_only_stop_words_is_the_vector_leg(native: LanceDb) -> None:
    chunks, vectors = make_chunks(30), unit_vectors(30)
    native.upsert(chunks, vectors)
    got = _hybrid(native, vectors[4], "the of and", k=5, candidates=10, fusion=Fusion())
    assert _ids(got) == _ids(native.query(vectors[4], k=5))
    assert all(h.scores.keyword is None for h in got)
    with pytest.raises(InvalidInputError):
        native.both_legs(vectors[4], "memory", k=0)


def test_vector_memory_uses_native_hybrid(tmp_path: Path) -> None:
    """The facade's hybrid search on a native store is one both_legs() call, fused as the facade
    fuses the two legs."""
    from vecmem.embedders import HashingEmbedder

    mem = VectorMemory(
        store=LanceDb(tmp_path / "lance", keyword="native"), embedder=HashingEmbedder(32)
    )
    mem.add(corpus_texts(120, seed=9), metadata=[{"i": i} for i in range(120)])
    calls = []
    real = mem.store.both_legs  # type: ignore[attr-defined]
    mem.store.both_legs = lambda *a, **kw: calls.append(1) or real(*a, **kw)  # type: ignore[attr-defined]
    q = "memory agent retrieval"
    hits = mem.search(q, k=10, mode="hybrid", candidates=30)
    assert calls == [1]
    qv = mem.embedder.embed([q])[0]
    want = fuse(mem.store.query(qv, k=30), mem.store.keyword(q, k=30), mem.fusion, k=30)[:10]
    assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in want]
    mem.close()


def test_exact_mode_leaves_hybrid_to_the_facade(tmp_path: Path) -> None:
    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    assert not store.capabilities.both_legs and not store.capabilities.native_keyword
    with pytest.raises(ConfigurationError):
        store.both_legs(unit_vectors(1)[0], "memory", k=3)
    store.close()


def test_native_tokenizer_mirrors_vecmems(native: LanceDb) -> None:
    """The index tokenizes as lance_tokens() says, which is vecmem's DefaultTokenizer except that
    ``_`` splits words and stop words are dropped after stemming."""
    texts = [
        *corpus_texts(50, seed=2),
        "The Running vaccines: 42 cafés, naïve ﬁ",
        "Emoji 🎉🚀 and CJK 漢字かなカナ한국어",
        "its online_services being",
    ]
    vecmem_tokens = DefaultTokenizer()
    for text in texts:
        assert [t.text for t in native._t().tokenize(text, column="text")] == lance_tokens(text)
    for text in texts[:-1]:
        assert lance_tokens(text) == vecmem_tokens(text), text
    assert vecmem_tokens(texts[-1]) == ["it", "online_servic", "be"]
    assert lance_tokens(texts[-1]) == ["onlin", "servic"]


def test_native_needs_a_tokenizer_it_can_mirror(tmp_path: Path) -> None:
    store = LanceDb(tmp_path / "lance", keyword="native")
    with pytest.raises(ConfigurationError, match="exact"):
        store.connect(EmbeddingSpace(embedder="test", dim=8, tokenizer="my-own-tokenizer"))
    plain = LanceDb(tmp_path / "lance", table="plain", keyword="native")
    plain.connect(EmbeddingSpace(embedder="test", dim=8, tokenizer="default(stem=none,stop=none)"))
    plain.upsert([Chunk.create("a", 0, "The cats"), Chunk.create("b", 0, "a cat")], unit_vectors(2))
    assert _ids(plain.keyword("the", k=5)) == ["a#0"]  # no stop words, no stemming
    assert _ids(plain.keyword("cat", k=5)) == ["b#0"]
    plain.close()


def test_modes_share_a_table(tmp_path: Path) -> None:
    """A table written in one mode opens in the other: native builds its index over the rows
    there (replacing one made with other settings), exact rebuilds its BM25 index."""
    import lancedb
    from lancedb.index import FTS

    chunks, vectors = make_chunks(40), unit_vectors(40)
    exact = LanceDb(tmp_path / "lance")
    exact.connect(SPACE)
    exact.upsert(chunks, vectors)
    exact.close()
    lancedb.connect(tmp_path / "lance").open_table("vecmem").create_index(
        "text", config=FTS(stem=False)
    )  # someone else's index, other settings
    native = LanceDb(tmp_path / "lance", keyword="native")
    native.connect(SPACE)
    details = [ix.index_details for ix in native._t().list_indices() if ix.index_type == "FTS"]
    assert len(details) == 1 and details[0]["stem"] is True
    ref = lucene_reference(chunks, vectors)
    truth = {c.id: s for c, s in ref.keyword("memory graph", k=100)}
    assert_ranked_like(
        native.keyword("memory graph", k=10),
        ref.keyword("memory graph", k=10),
        truth,
        rel=1e-5,
        abs_=1e-6,
    )
    native.upsert(make_chunks(1, start=40), unit_vectors(1, seed=40))
    native.close()
    again = LanceDb(tmp_path / "lance")
    again.connect(SPACE)
    everything = again.get([c.id for c in make_chunks(41)])
    ref = reference(everything, again.get_vectors([c.id for c in everything]))
    assert _bm25_of(again, "memory graph") == [
        (c.id, pytest.approx(s)) for c, s in ref.keyword("memory graph", k=10)
    ]
    again.close()


@pytest.mark.parametrize("mode", MODES)
def test_metadata_that_is_not_json_is_refused(tmp_path: Path, mode: str) -> None:
    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    store.upsert(make_chunks(2), unit_vectors(2))
    bad = [Chunk("doc0", "doc0", 0, "overwritten", {"x": {1, 2}}, "h")]
    with pytest.raises(InvalidInputError, match="doc0"):
        store.upsert(bad, unit_vectors(1, seed=3))
    assert store.count() == 2 and store.get(["doc0#0"])[0].text != "overwritten"
    store.close()


def test_content_hash_is_stored_only_when_it_is_not_the_texts(tmp_path: Path) -> None:
    """Layout 3 writes the hash as null when it is the text's (every Chunk.create); a chunk with
    a hash of its own keeps it. Both read back exactly."""
    import dataclasses
    import json

    store = LanceDb(tmp_path / "lance")
    store.connect(SPACE)
    plain = Chunk.create("d", 0, "plain text")
    own = Chunk("own#0", "own", 0, "other text", {"k": 1}, "my-digest")
    built = Chunk("built#0", "built", 0, "plain text", {}, plain.content_hash)  # not create()'s
    moved = dataclasses.replace(plain, id="moved#0", text="changed")  # keeps the old hash
    chunks = [plain, own, built, moved]
    store.upsert(chunks, unit_vectors(4))
    assert [(c.id, c.text, c.content_hash) for c in store.get([c.id for c in chunks])] == [
        (c.id, c.text, c.content_hash) for c in chunks
    ]
    rows = store._t().search().select(["id", "chunk"]).limit(None).to_arrow().to_pylist()
    assert {r["id"]: json.loads(r["chunk"])[1] for r in rows} == {
        plain.id: None,
        own.id: "my-digest",
        built.id: None,
        moved.id: plain.content_hash,
    }


_ODD_VALUES: list[dict[str, Any]] = [
    {"a": 1},
    {"a": None},
    {"b": {}},
    {"b": {"x": 1}},
    {"c": []},
    {"c": [None]},
    {"c": [[1]]},
    {"c": [1, {}]},
    {"d": 2**70},
    {"d": 10**400},
    {"e": "s", "a": None},
    {},
]


def _without_the_int_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Write as vecmem did before it refused integers beyond ±2**53 (``_ODD_VALUES`` has such
    rows, which tables written then still hold): vectors checked, metadata not."""
    monkeypatch.setattr(
        LanceDb,
        "_check_batch",
        lambda self, chunks, vectors: validate_vectors(vectors, len(chunks), self.space.dim),
    )


def _exists_filters() -> list[Filter]:
    out = [parse_filter({f: {"$exists": v}}) for f in "abcde" for v in (True, False)]
    return [f for f in out if f is not None]


@pytest.mark.parametrize("mode", MODES)
def test_layout_4_lists_only_untyped_fields_and_exists_reads_both(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Layout 4 keeps in vm_keys only the fields with no typed value (null, objects, empty or
    nested lists, numbers beyond float64 -- written before vecmem refused ints beyond 2**53, so
    the metadata check is bypassed here), null on other rows; $exists still matches exactly."""
    _without_the_int_rule(monkeypatch)
    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(_ODD_VALUES)]
    store.upsert(chunks, unit_vectors(len(chunks)))
    rows = store._t().search().select(["id", "vm_keys"]).limit(None).to_arrow().to_pylist()
    assert {r["id"]: r["vm_keys"] for r in rows} == {
        "d0#0": None,
        "d1#0": ["a"],
        "d2#0": ["b"],
        "d3#0": ["b"],
        "d4#0": ["c"],
        "d5#0": ["c"],
        "d6#0": ["c"],
        "d7#0": None,
        "d8#0": None,
        "d9#0": ["d"],
        "d10#0": ["a"],
        "d11#0": None,
    }
    for f in _exists_filters():
        want = {c.id for c in chunks if matches(f, c.metadata)}
        assert {c.id for c, _ in store.query(unit_vectors(1)[0], k=20, filter=f)} == want, f
        assert store.count(f) == len(want), f
    assert [dict(c.metadata) for c in store.get([c.id for c in chunks])] == _ODD_VALUES


@pytest.mark.parametrize("mode", MODES)
def test_layout_3_tables_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A table in layout 3 (every field name in vm_keys) keeps writing every name, and $exists
    matches exactly on rows of both writers."""
    monkeypatch.setattr(lancedb_layout, "FORMAT", 3)
    _without_the_int_rule(monkeypatch)
    old = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    old.connect(SPACE)
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(_ODD_VALUES)]
    old.upsert(chunks[:6], unit_vectors(6))
    old.close()
    monkeypatch.undo()
    _without_the_int_rule(monkeypatch)
    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    store.upsert(chunks[6:], unit_vectors(len(chunks) - 6, seed=1))
    assert (store._t().schema.metadata or {})[b"vecmem_format"] == b"3"
    rows = store._t().search().select(["id", "vm_keys"]).limit(None).to_arrow().to_pylist()
    assert {r["id"]: r["vm_keys"] for r in rows} == {c.id: list(c.metadata) for c in chunks}
    for f in _exists_filters():
        assert store.count(f) == sum(matches(f, c.metadata) for c in chunks), f
    store.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_write_on_a_stale_schema_clears_columns_another_writer_added(
    tmp_path: Path, mode: str
) -> None:
    """A store writes with the schema of its last commit. When another writer added filter
    columns since, the overwrite must still clear them (LanceDB's merge keeps the columns a
    batch leaves out), and a column both want is added once."""
    a = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    a.connect(SPACE)
    a.upsert([Chunk.create("x", 0, "first"), Chunk.create("y", 0, "second")], unit_vectors(2))
    b = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    b.connect(SPACE)
    b.upsert([Chunk.create("y", 0, "second", {"color": "red", "n": 3})], unit_vectors(1))
    red = parse_filter({"color": "red"})
    assert b.count(red) == 1
    before = a._t().version
    a.upsert([Chunk.create("y", 0, "second again")], unit_vectors(1, seed=2))
    # native: written with the stale schema, then again with every column; exact mode checks
    # the table version before a write anyway (its BM25 index follows other writers)
    assert a._t().version == before + (2 if mode == "native" else 1)
    for store in (a, b):
        assert store.count(red) == 0 and store.count(parse_filter({"n": {"$exists": True}})) == 0
        assert dict(store.get(["y#0"])[0].metadata) == {}
    b.upsert([Chunk.create("z", 0, "third", {"tone": "low"})], unit_vectors(1, seed=3))
    a.upsert([Chunk.create("w", 0, "fourth", {"tone": "high"})], unit_vectors(1, seed=4))
    for store in (a, b):
        assert store.count(parse_filter({"tone": {"$in": ["low", "high"]}})) == 2
    before = a._t().version
    reads = []
    read_schema = a._read_schema
    a._read_schema = lambda: reads.append(1) or read_schema()  # type: ignore[method-assign]
    a.upsert([Chunk.create("v", 0, "fifth", {"tone": "mid"})], unit_vectors(1, seed=5))
    assert a._t().version == before + 1 and reads == []  # no other writer since: one commit,
    # written with the schema of a's last commit (not read again)
    a.close()
    b.close()


@pytest.mark.parametrize("mode", MODES)
def test_layout_2_tables_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A table in layout 2 (every hash written out) reads, searches and writes as before, and
    keeps writing the hash."""
    import json

    chunks, vectors = make_chunks(20), unit_vectors(20)
    monkeypatch.setattr(lancedb_layout, "FORMAT", 2)
    old = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    old.connect(SPACE)
    old.upsert(chunks[:10], vectors[:10])
    old.close()
    monkeypatch.undo()
    _without_the_int_rule(monkeypatch)
    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    store.upsert(chunks[10:], vectors[10:])
    assert [
        (c.id, c.content_hash, dict(c.metadata)) for c in store.get([c.id for c in chunks])
    ] == [(c.id, c.content_hash, dict(c.metadata)) for c in chunks]
    rows = store._t().search().select(["chunk"]).limit(None).to_arrow().to_pylist()
    assert all(json.loads(r["chunk"])[1] is not None for r in rows)
    assert (store._t().schema.metadata or {})[b"vecmem_format"] == b"2"
    assert _ids(store.keyword(chunks[12].text, k=1)) == [chunks[12].id]
    store.close()


@pytest.mark.parametrize("mode", MODES)
def test_layout_1_tables_still_work(tmp_path: Path, mode: str) -> None:
    """A table in layout 1 (position, content_hash, metadata in columns of their own, before
    they were packed into ``chunk``) reads and writes as before, in both modes."""
    import lancedb
    import pyarrow as pa

    schema = pa.schema(
        [
            ("id", pa.string(), False),
            ("document_id", pa.string()),
            ("position", pa.int64()),
            ("text", pa.string()),
            ("content_hash", pa.string()),
            ("metadata", pa.string()),
            ("seq", pa.int64()),
            ("vector", pa.list_(pa.float32(), 8)),
            ("vm_keys", pa.list_(pa.string())),
        ],
        metadata={"vecmem_space": SPACE.to_json(), "vecmem_format": "1"},
    )
    old = make_chunks(6, texts=corpus_texts(6, seed=3))
    vectors = unit_vectors(6)
    lancedb.connect(tmp_path / "lance").create_table(
        "vecmem",
        pa.table(
            {
                "id": [c.id for c in old],
                "document_id": [c.document_id for c in old],
                "position": [c.position for c in old],
                "text": [c.text for c in old],
                "content_hash": [c.content_hash for c in old],
                "metadata": ["{}"] * 6,
                "seq": list(range(6)),
                "vector": [list(v) for v in vectors],
                "vm_keys": [[]] * 6,
            },
            schema=schema,
        ),
    )
    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    for got, want in zip(store.get([c.id for c in old]), old):
        assert (got.id, got.position, got.text, got.content_hash, dict(got.metadata)) == (
            want.id,
            want.position,
            want.text,
            want.content_hash,
            {},
        )
    new = Chunk.create("doc0", 0, "zebra crossing", {"n": 2, "tags": ["a"]})
    store.upsert([new], unit_vectors(1, seed=9))
    got = store.get(["doc0#0"])[0]
    assert (got.text, dict(got.metadata)) == ("zebra crossing", {"n": 2, "tags": ["a"]})
    assert _ids(store.keyword("zebra", k=3)) == ["doc0#0"]
    assert store.count(parse_filter({"tags": {"$contains": "a"}})) == 1
    assert "chunk" not in store._t().schema.names
    store.close()


class TestLanceDbHostile(HostileInputSuite):
    """Format strings, quotes and SQL in filter values (issue 13: they went through
    ``str.format``) and the rest of the hostile table."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: LanceDb(tmp_path / "lance", table="hostile")


# ----------------------------------------------------------------------------- paging (export)
@pytest.mark.parametrize("mode", MODES)
def test_export_reads_the_ids_once_not_once_a_page(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Exporting pages through page_ids/get/get_vectors. Lance has no ordered scan: paging must
    read the id column once per table version and take each page by row id, not scan the table
    three times a page (quadratic: 49 pages x 100k rows at 100k chunks). The archive still
    holds every chunk once, exactly, and a write between pages is seen."""
    from vecmem.lifecycle import export_store, import_store

    store = LanceDb(tmp_path / "lance", keyword=mode)  # type: ignore[arg-type]
    store.connect(SPACE)
    chunks, vectors = make_chunks(600, metadata=lambda i: {"i": i}), unit_vectors(600)
    store.upsert(chunks, vectors)
    tbl = store._t()
    scans: list[Any] = []
    real_search = tbl.search
    monkeypatch.setattr(tbl, "search", lambda *a, **kw: scans.append(a) or real_search(*a, **kw))
    report = export_store(store, tmp_path / "kb.vmar", page=50)
    assert report.chunks == 600
    assert len(scans) == 1  # the id column, for all 12 pages (was 36 full scans)
    copy = MemoryStore()
    import_store(tmp_path / "kb.vmar", copy)
    ids = sorted(c.id for c in chunks)
    assert [c.id for c in copy.get(ids)] == ids
    for got, want in zip(copy.get(ids), sorted(chunks, key=lambda c: c.id)):
        assert (got.text, dict(got.metadata), got.content_hash) == (
            want.text,
            dict(want.metadata),
            want.content_hash,
        )
    np.testing.assert_allclose(copy.get_vectors(ids), store.get_vectors(ids), atol=1e-6)

    page = store.page_ids(limit=10)
    store.upsert([Chunk(page[3], "new", 0, "rewritten", {})], unit_vectors(1, seed=7))
    assert [c.text for c in store.get(page)][3] == "rewritten"  # a new version: read by id
    assert store.page_ids(after=page[2], limit=2) == page[3:5]
