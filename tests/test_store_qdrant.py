"""The conformance suite on Qdrant in both keyword modes: local mode in memory and in a folder
(qdrant-client's own engine, nothing to install), and a Qdrant server when ``QDRANT_URL`` is set.
Plus what only this adapter has: URLs, error translation, the typed payload that keeps filters
exact, and native mode's sparse BM25 vectors (avgdl, term ids, hybrid in one request).

In native mode the suite's keyword checks are held against :class:`SparseReference`: BM25 as
native mode defines it (Qdrant's idf over the chunks with a token, the avgdl the collection
recorded) over the live chunks, instead of rank_bm25's."""

from __future__ import annotations

import math
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "qdrant_client", reason="qdrant-client is not installed (pip install 'vecmem[qdrant]')"
)

from vecmem.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    InvalidFilterError,
    InvalidInputError,
    NotFoundError,
    StoreLockedError,
    UnsupportedFilterError,
)
from vecmem.filters import Cond, Filter, matches, parse_filter
from vecmem.fusion import Fusion
from vecmem.memory import VectorMemory
from vecmem.stores import open_store
from vecmem.stores.memory import MemoryStore
from vecmem.stores.qdrant import Qdrant, point_id, term_id
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import (
    SPACE,
    ReferenceFactory,
    StoreFactory,
    corpus_texts,
    filter_metadata,
    make_chunks,
    reference,
    unit_vectors,
)
from vecmem.types import Chunk, EmbeddingSpace, Scored

QDRANT_URL = os.environ.get("QDRANT_URL")
MODES = ["native", "exact"]


# ----------------------------------------------------------------------------- the native oracle
class SparseReference(MemoryStore):
    """The exact reference, with keyword scores as native mode defines them: over the live chunks
    that have a token, the sum over query tokens (repeats count) of ``ln(1 + (N - df + 0.5) /
    (df + 0.5)) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))``, avgdl being the one the
    store under test recorded (``avgdl()``)."""

    def __init__(self, avgdl: Callable[[], float | None]) -> None:
        super().__init__()
        self._avgdl_of = avgdl

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        tok = self.tokenizer
        assert tok is not None
        k1, b, _ = self._require_space().keyword_params()
        docs = [(c, Counter(tok(c.text))) for c in self.all_chunks()]
        docs = [(c, d) for c, d in docs if d]
        n = len(docs)
        df = Counter(t for _, d in docs for t in d)
        avgdl = self._avgdl_of()
        query = tok(text)
        out = []
        for c, d in docs:
            if filter is not None and not matches(filter, c.metadata):
                continue
            if not any(t in d for t in query):
                continue
            assert avgdl, "the store recorded no avgdl although it holds chunks with tokens"
            norm = k1 * (1 - b + b * sum(d.values()) / avgdl)
            out.append(
                Scored(
                    c,
                    sum(
                        math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                        * d[t]
                        * (k1 + 1)
                        / (d[t] + norm)
                        for t in query
                        if t in d
                    ),
                )
            )
        return sorted(out, key=lambda x: -x.score)[:k]


def sparse_reference(avgdl: Callable[[], float | None]) -> Callable[..., MemoryStore]:
    def make(
        chunks: Sequence[Chunk], vectors: np.ndarray, space: EmbeddingSpace = SPACE
    ) -> MemoryStore:
        ref = SparseReference(avgdl)
        ref.connect(space)
        if len(chunks):
            ref.upsert(list(chunks), vectors)
        return ref

    return make


def _hybrid(
    store: Qdrant,
    q: np.ndarray,
    text: str,
    *,
    k: int,
    candidates: int,
    fusion: Fusion,
    filter: Any = None,
) -> list[Any]:
    """What the facade does with a both_legs store: fuse the two legs it returns."""
    from vecmem.fusion import fuse

    return fuse(*store.both_legs(q, text, k=candidates, filter=filter), fusion, k=k)


class _ModeSuite(StoreSuite):
    """The suite in both keyword modes; native mode's keyword answers are held to SparseReference
    with the avgdl of the first store the test made."""

    made: list[Qdrant]

    @pytest.fixture(params=MODES)
    def keyword_mode(self, request: pytest.FixtureRequest) -> str:
        self.made = []
        return str(request.param)

    @pytest.fixture
    def reference_factory(self, keyword_mode: str) -> ReferenceFactory:
        if keyword_mode == "native":
            return sparse_reference(lambda: self.made[0].avgdl)
        return reference

    def track(self, store: Qdrant) -> Qdrant:
        self.made.append(store)
        return store


class TestQdrantMemory(_ModeSuite):
    @pytest.fixture
    def store_factory(self, keyword_mode: str) -> StoreFactory:
        return lambda: self.track(Qdrant(":memory:", keyword=keyword_mode))  # type: ignore[arg-type]


class TestQdrantPath(_ModeSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path, keyword_mode: str) -> StoreFactory:
        return lambda: self.track(
            Qdrant(path=str(tmp_path / "qdrant"), collection="suite", keyword=keyword_mode)
        )  # type: ignore[arg-type]


class TestQdrantCongruence(CongruenceSuite):
    """SciFact with the real model against the exact reference, in both keyword modes (local mode
    in memory: the folder mode runs the same engine and only adds its SQLite writes)."""

    @pytest.fixture(params=MODES)
    def keyword_mode(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    def store_factory(self, keyword_mode: str) -> StoreFactory:
        return lambda: Qdrant(":memory:", collection="congruence", keyword=keyword_mode)  # type: ignore[arg-type]

    @pytest.mark.slow
    def test_keyword_scores(  # type: ignore[override]
        self, memory: VectorMemory, reference: VectorMemory, data: Any, keyword_mode: str
    ) -> None:
        """exact: the suite's check (rank_bm25's scores). native: BM25 as native mode defines it
        (SparseReference over the same chunks, with the avgdl the collection recorded)."""
        if keyword_mode == "exact":
            super().test_keyword_scores(memory, reference, data)
            return
        from vecmem.testing.congruence import real_embedder

        store = memory.store
        assert isinstance(store, Qdrant) and store.avgdl is not None
        oracle = VectorMemory(store=SparseReference(lambda: store.avgdl), embedder=real_embedder())
        oracle.add_documents(data.documents)
        for q in list(data.queries.values())[:20]:
            got = memory.search(q, k=10, mode="keyword")
            want = oracle.search(q, k=10, mode="keyword")
            assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-5), q


@pytest.mark.server
@pytest.mark.skipif(
    QDRANT_URL is None,
    reason="no Qdrant server: set QDRANT_URL=http://host:6333 "
    "to run the suite against one (none can be installed on this machine)",
)
class TestQdrantServer(_ModeSuite):
    @pytest.fixture
    def store_factory(self, keyword_mode: str) -> Iterator[StoreFactory]:
        name = f"vecmem_test_{uuid.uuid4().hex[:12]}"
        yield lambda: self.track(Qdrant(url=QDRANT_URL, collection=name, keyword=keyword_mode))  # type: ignore[arg-type]
        Qdrant(url=QDRANT_URL, collection=name, keyword="exact").drop()


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    "url,want",
    [
        ("qdrant://:memory:", {"location": ":memory:", "collection": "vecmem"}),
        ("qdrant:///srv/q?collection=kb", {"path": "/srv/q", "collection": "kb"}),
        ("qdrant://./rel/dir", {"path": "./rel/dir"}),
        (
            "qdrant+http://db.local:6333?collection=c&api_key=s3cret",
            {"url": "http://db.local:6333", "collection": "c", "api_key": "s3cret"},
        ),
        ("qdrant+https://cloud.example", {"url": "https://cloud.example"}),
        ("qdrant://:memory:", {"keyword_mode": "native"}),
        ("qdrant:///srv/q?keyword=exact", {"path": "/srv/q", "keyword_mode": "exact"}),
    ],
)
def test_urls_pick_the_engine(url: str, want: dict[str, str]) -> None:
    """open_store() must map each documented qdrant URL form onto the constructor arguments."""
    store = open_store(url)
    assert isinstance(store, Qdrant)
    for key, value in want.items():
        assert getattr(store, key) == value, key


@pytest.mark.parametrize(
    "url",
    [
        "qdrant://",
        "qdrant+http://",
        "qdrant://:memory:?colection=x",
        "qdrant://:memory:?keyword=bm25",
    ],
)
def test_bad_urls_raise(url: str) -> None:
    """A URL without a target or with an unknown parameter must raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_constructor_needs_exactly_one_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Qdrant()
    with pytest.raises(ConfigurationError):
        Qdrant(":memory:", path=str(tmp_path))
    with pytest.raises(ConfigurationError):
        Qdrant("./not-a-location")


@pytest.mark.parametrize("bad", ["bm25", "Native", "", None, True])
def test_bad_keyword_mode_raises(bad: Any) -> None:
    """keyword= takes 'native' or 'exact' only; anything else is a ConfigurationError (a
    ValueError) at construction, before any connection is made."""
    with pytest.raises(ConfigurationError) as info:
        Qdrant(":memory:", keyword=bad)
    assert isinstance(info.value, ValueError) and "keyword" in str(info.value)


# ----------------------------------------------------------------------------- errors
def test_unreachable_server_is_backend_unavailable() -> None:
    """A URL nobody listens on must raise BackendUnavailableError (a ConnectionError), not a
    client exception."""
    store = Qdrant(url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(BackendUnavailableError) as info:
        store.connect(SPACE)
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(BackendUnavailableError):
        store.stored_space()


def test_dimension_of_a_foreign_collection_is_checked(tmp_path: Path) -> None:
    """A collection made without vecmem, with a 'dense' vector of another size, must raise
    DimensionMismatchError; one without the 'dense' vector a ConfigurationError."""
    from qdrant_client import QdrantClient, models

    path = str(tmp_path / "q")
    client = QdrantClient(path=path)
    client.create_collection(
        "foreign",
        vectors_config={"dense": models.VectorParams(size=3, distance=models.Distance.COSINE)},
    )
    client.create_collection(
        "unnamed", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE)
    )
    client.close()
    with pytest.raises(DimensionMismatchError):
        Qdrant(path=path, collection="foreign").connect(SPACE)
    with pytest.raises(ConfigurationError):
        Qdrant(path=path, collection="unnamed").connect(SPACE)
    # without the sparse BM25 vector, only exact mode can use it
    with pytest.raises(ConfigurationError):
        Qdrant(path=path, collection="foreign").connect(EmbeddingSpace(embedder="e", dim=3))
    # a matching foreign collection is adopted and its space recorded
    ok = Qdrant(path=path, collection="foreign", keyword="exact")
    ok.connect(EmbeddingSpace(embedder="e", dim=3))
    ok.close()
    again = Qdrant(path=path, collection="foreign")
    assert again.stored_space() == EmbeddingSpace(embedder="e", dim=3)
    again.close()


def test_collection_dropped_underneath_is_not_found() -> None:
    """If the collection disappears after connect, calls must raise NotFoundError (a KeyError)."""
    store = Qdrant(":memory:", collection="gone")
    store.connect(SPACE)
    store.upsert(make_chunks(2), unit_vectors(2))
    store._c().delete_collection("gone")
    with pytest.raises(NotFoundError):
        store.count()
    with pytest.raises(NotFoundError):
        store.query(unit_vectors(1)[0], k=1)


def test_missing_collection_has_no_space_and_is_not_created(tmp_path: Path) -> None:
    """stored_space() on a missing collection must return None without creating it."""
    store = Qdrant(path=str(tmp_path / "q"), collection="absent")
    assert store.stored_space() is None
    assert not store._c().collection_exists("absent")
    store.close()


def test_second_client_on_a_folder_is_store_locked(tmp_path: Path) -> None:
    """Local mode allows one client per folder: the second must get StoreLockedError."""
    first = Qdrant(path=str(tmp_path / "q"))
    first.connect(SPACE)
    second = Qdrant(path=str(tmp_path / "q"))
    with pytest.raises(StoreLockedError):
        second.connect(SPACE)
    first.close()
    second.close()


def test_used_after_close_raises() -> None:
    store = Qdrant(":memory:")
    store.connect(SPACE)
    store.close()
    with pytest.raises(ConfigurationError):
        store.count()


def test_non_finite_filter_bound_is_unsupported() -> None:
    """Qdrant's JSON cannot carry infinity: such a filter must raise UnsupportedFilterError,
    not be dropped."""
    store = Qdrant(":memory:")
    store.connect(SPACE)
    with pytest.raises(InvalidFilterError):  # refused by the grammar on every backend
        store.count(parse_filter({"x": {"$lt": float("inf")}}))
    with pytest.raises(UnsupportedFilterError):  # and by the adapter, if built by hand
        store.count(Cond("x", "lt", math.inf))


# ----------------------------------------------------------------------------- layout
def test_points_use_uuid5_ids_and_keep_the_chunk_id() -> None:
    """Point ids are uuid5 of the chunk id (stable across clients) and the payload keeps the id."""
    store = Qdrant(":memory:", collection="c")
    store.connect(SPACE)
    store.upsert([Chunk.create("doc", 0, "hello")], unit_vectors(1))
    rec = store._c().retrieve("c", [point_id("doc#0")], with_payload=True)[0]
    assert str(uuid.UUID(str(rec.id))) == point_id("doc#0")
    assert rec.payload["chunk_id"] == "doc#0"


def test_awkward_field_names_filter_exactly() -> None:
    """Field names with dots, brackets, quotes or non-ASCII must address that field only (Qdrant
    would read 'a.b' as a nested path)."""
    store = Qdrant(":memory:")
    store.connect(SPACE)
    metas = [{"a.b": 1}, {"a": {"b": 1}}, {"x[0]": "v"}, {'q"k': True}, {"_61": 2}, {"a": 2}]
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(metas)]
    store.upsert(chunks, unit_vectors(len(chunks)))
    for spec in (
        {"a.b": 1},
        {"x[0]": "v"},
        {'q"k': True},
        {"_61": 2},
        {"a": 2},
        {"a.b": {"$exists": True}},
        {"a": {"$exists": True}},
        {"a.b": {"$ne": 1}},
    ):
        f = parse_filter(spec)
        want = {c.id for c in chunks if matches(f, c.metadata)}
        assert {c.id for c, _ in store.query(unit_vectors(1)[0], k=10, filter=f)} == want, spec


def test_filter_keys_are_top_level_payload_keys() -> None:
    """New collections keep the typed copies at the top of the payload (``vm_n_F``): local mode
    evaluates filters in Python and pays for every level of nesting."""
    store = Qdrant(":memory:", collection="c")
    store.connect(SPACE)
    store.upsert(
        [Chunk.create("doc", 0, "hello", {"n": 1, "s": "x", "l": ["a", 2], "a.b": True})],
        unit_vectors(1),
    )
    payload = store._c().retrieve("c", [point_id("doc#0")], with_payload=True)[0].payload
    assert {k: v for k, v in payload.items() if k.startswith("vm")} == {
        "vm_keys": ["n", "s", "l", "a.b"],
        "vm_n_n": 1,
        "vm_s_s": "x",
        "vm_ls_l": ["a"],
        "vm_ln_l": [2],
        "vm_b__612e62": True,
    }


@pytest.mark.parametrize("mode", MODES)
def test_layout_1_collections_still_filter_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A collection made by a vecmem that nested the typed keys under ``vm`` (layout 1) reopens
    with filters, deletes by filter and counts exact, and keeps writing layout 1."""
    import vecmem.stores.qdrant as qdrant_module

    path = str(tmp_path / "q")
    chunks = make_chunks(60, metadata=filter_metadata)
    vectors = unit_vectors(60, seed=3)
    monkeypatch.setattr(qdrant_module, "FORMAT", 1)
    old = Qdrant(path=path, keyword=mode)
    old.connect(SPACE)
    old.upsert(chunks[:40], vectors[:40])
    old.close()
    monkeypatch.undo()
    store = Qdrant(path=path, keyword=mode)
    try:
        store.connect(SPACE)
        store.upsert(chunks[40:], vectors[40:])
        payload = (
            store._c()
            .retrieve(store.collection, [point_id(chunks[-1].id)], with_payload=True)[0]
            .payload
        )
        assert "vm" in payload and not any(k.startswith("vm_") for k in payload)
        for spec in (
            {"s": "red"},
            {"n": {"$gte": 3}},
            {"tags": {"$contains": "a"}},
            {"flag": True},
            {"n": {"$ne": 2}},
            {"s": {"$exists": False}},
            {"s": {"$in": ["red", "blue"]}},
        ):
            f = parse_filter(spec)
            want = {c.id for c in chunks if matches(f, c.metadata)}
            got = {c.id for c, _ in store.query(vectors[0], k=100, filter=f)}
            assert got == want, spec
            assert store.count(f) == len(want), spec
        red = parse_filter({"s": "red"})
        reds = sum(c.metadata.get("s") == "red" for c in chunks)
        assert store.delete(filter=red) == reds
        assert store.count(red) == 0 and store.count() == 60 - reds
    finally:
        store.close()


def test_keyword_index_is_rebuilt_after_a_failed_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """If a write fails after validation (a plain upsert, or one with deletes), the exact keyword
    leg must not drift from the collection."""
    store = Qdrant(":memory:", collection="c", keyword="exact")
    store.connect(SPACE)
    chunks = make_chunks(5)
    store.upsert(chunks, unit_vectors(5))
    client = store._c()

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network went away")

    with monkeypatch.context() as patch:
        patch.setattr(client, "upsert", boom)
        patch.setattr(client, "batch_update_points", boom)
        with pytest.raises(BackendError):
            store.upsert([Chunk.create("new", 0, "zebra words")], unit_vectors(1, seed=3))
        with pytest.raises(BackendError):
            store.upsert(
                [Chunk.create("new", 0, "zebra words")],
                unit_vectors(1, seed=3),
                delete_ids=[chunks[0].id],
            )
    assert store.keyword("zebra", k=3) == []
    store.upsert([Chunk.create("new", 0, "zebra words")], unit_vectors(1, seed=3))
    assert [c.id for c, _ in store.keyword("zebra", k=3)] == ["new#0"]
    np.testing.assert_allclose(store.get_vectors(["new#0"]), unit_vectors(1, seed=3), atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_documents_are_read_right_after_a_failed_write(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local mode reads a document's chunks through a map of every chunk's document: a write that
    stored its points and then failed must not leave that map behind the collection."""
    store = Qdrant(":memory:", collection="c", keyword=mode)
    store.connect(SPACE)
    store.upsert(make_chunks(5), unit_vectors(5))
    assert store.get_by_document(["late"]) == []
    client = store._c()
    upsert = client.upsert

    def stored_then_failed(*args: Any, **kwargs: Any) -> None:
        upsert(*args, **kwargs)
        raise RuntimeError("connection reset after the write")

    with monkeypatch.context() as patch:
        patch.setattr(client, "upsert", stored_then_failed)
        with pytest.raises(BackendError):
            store.upsert([Chunk.create("late", 0, "zebra words")], unit_vectors(1, seed=3))
    assert [c.id for c in store.get_by_document(["late"])] == ["late#0"]
    store.delete(ids=["late#0"])
    assert store.get_by_document(["late"]) == []


# ----------------------------------------------------------------------------- native keyword
def _native(chunks: Sequence[Chunk], vectors: np.ndarray, **kwargs: Any) -> Qdrant:
    store = Qdrant(":memory:", collection="n", **kwargs)
    store.connect(SPACE)
    store.upsert(chunks, vectors)
    return store


def test_term_ids_are_stable() -> None:
    """Term ids are baked into stored sparse vectors: they must never change between releases,
    processes or machines (a change would silently break every persisted native collection)."""
    assert [term_id(t) for t in ("memori", "vector", "")] == [2011608429, 1800165712, 634351890]
    assert all(0 <= term_id(t) < 2**32 for t in ("ünïcode", "x" * 1000))


def test_avgdl_is_measured_on_the_first_write_and_recorded() -> None:
    """avgdl is the first batch's mean token count, recorded in the collection metadata."""
    chunks = make_chunks(30)
    store = _native(chunks, unit_vectors(30))
    tok = store.tokenizer
    assert tok is not None
    want = sum(len(tok(c.text)) for c in chunks) / 30
    assert store.avgdl == pytest.approx(want)
    meta = store._c().get_collection("n").config.metadata
    assert '"avgdl"' in meta["vecmem_bm25"]


def test_avgdl_drift_reindexes_every_sparse_vector() -> None:
    """When the chunks written since avgdl was measured move the mean length more than 5 %, avgdl
    is re-measured over every chunk and every sparse vector rewritten: scores then equal BM25 with
    the live mean length."""
    short = make_chunks(20, texts=[f"memory vector {i}" for i in range(20)])
    store = _native(short, unit_vectors(20))
    first = store.avgdl
    long_texts = [" ".join(corpus_texts(6, seed=i)) for i in range(20)]
    longer = make_chunks(20, start=20, texts=long_texts)
    store.upsert(longer, unit_vectors(20, seed=1))
    tok = store.tokenizer
    assert tok is not None
    live = [len(tok(c.text)) for c in short + longer]
    assert first is not None and store.avgdl == pytest.approx(sum(live) / len(live))
    assert store.avgdl > 1.5 * first
    ref = sparse_reference(lambda: store.avgdl)(
        short + longer, np.vstack([unit_vectors(20), unit_vectors(20, seed=1)])
    )
    for q in ("memory", "vector search graph"):
        assert [(c.id, pytest.approx(s, rel=1e-5)) for c, s in store.keyword(q, k=10)] == [
            (c.id, s) for c, s in ref.keyword(q, k=10)
        ]


def test_native_keyword_and_hybrid_see_their_own_writes_at_once() -> None:
    """An upsert, an overwrite and a delete show in the very next keyword and hybrid search."""
    store = _native(make_chunks(20, metadata=filter_metadata), unit_vectors(20))
    fusion = Fusion("rrf")
    q = unit_vectors(1, seed=9)[0]
    assert store.keyword("zebra", k=5) == []
    store.upsert([Chunk.create("z", 0, "zebra crossing")], unit_vectors(1, seed=5))
    assert [c.id for c, _ in store.keyword("zebra", k=5)] == ["z#0"]
    assert "z#0" in [h.id for h in _hybrid(store, q, "zebra", k=5, candidates=10, fusion=fusion)]
    store.upsert([Chunk.create("z", 0, "horse crossing")], unit_vectors(1, seed=5))
    assert store.keyword("zebra", k=5) == []
    assert [c.id for c, _ in store.keyword("horse", k=5)] == ["z#0"]
    store.delete(ids=["z#0"])
    assert store.keyword("horse", k=5) == []
    assert "z#0" not in [
        h.id for h in _hybrid(store, q, "horse", k=25, candidates=25, fusion=fusion)
    ]
    before = {c.id for c, _ in store.keyword("memory", k=50)}
    store.delete(filter=parse_filter({"i": {"$lt": 10}}))
    after = {c.id for c, _ in store.keyword("memory", k=50)}
    assert after == {i for i in before if int(i[3:-2]) >= 10} and after != before


def test_native_both_legs_validates_its_arguments() -> None:
    store = _native(make_chunks(3), unit_vectors(3))
    with pytest.raises(InvalidInputError):
        store.both_legs(unit_vectors(1)[0], "memory", k=0)
    with pytest.raises(DimensionMismatchError):
        store.both_legs(np.ones(3, np.float32), "memory", k=3)


def test_native_facade_uses_one_hybrid_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """VectorMemory's hybrid search on a native store is one query_batch_points call (both legs),
    and no separate query or keyword request."""
    from vecmem.embedders import HashingEmbedder

    mem = VectorMemory(store=Qdrant(":memory:"), embedder=HashingEmbedder(dim=16))
    mem.add(["the zebra sleeps", "a vector database", "zebra crossings in town"])
    client = mem.store._c()  # type: ignore[attr-defined]
    calls: list[str] = []
    for name in ("query_batch_points", "query_points", "scroll", "retrieve"):
        original = getattr(client, name)
        monkeypatch.setattr(
            client, name, lambda *a, _o=original, _n=name, **k: (calls.append(_n), _o(*a, **k))[1]
        )
    hits = mem.search("zebra", k=2)
    assert calls == ["query_batch_points"]
    assert {h.text for h in hits} == {"the zebra sleeps", "zebra crossings in town"}


def test_reopened_native_folder_keeps_working(tmp_path: Path) -> None:
    """A persisted native collection reopens with its avgdl and answers keyword and hybrid search
    as before; writes after reopening are searchable at once."""
    path = str(tmp_path / "q")
    chunks, vectors = make_chunks(30), unit_vectors(30)
    first = Qdrant(path=path)
    first.connect(SPACE)
    first.upsert(chunks, vectors)
    avgdl = first.avgdl
    kw = sorted((c.id, round(s, 5)) for c, s in first.keyword("memory vector", k=100))
    hy = [h.id for h in _hybrid(first, vectors[3], "zzz", k=5, candidates=10, fusion=Fusion())]
    first.close()
    second = Qdrant(path=path)
    try:
        second.connect(SPACE)
        assert second.avgdl == avgdl
        assert sorted((c.id, round(s, 5)) for c, s in second.keyword("memory vector", k=100)) == kw
        assert [
            h.id for h in _hybrid(second, vectors[3], "zzz", k=5, candidates=10, fusion=Fusion())
        ] == hy  # the vector leg alone
        assert {
            h.id
            for h in _hybrid(
                second, vectors[3], "memory vector", k=100, candidates=100, fusion=Fusion()
            )
        } >= {i for i, _ in kw}
        second.upsert([Chunk.create("new", 0, "zebra memory")], unit_vectors(1, seed=4))
        assert [c.id for c, _ in second.keyword("zebra", k=3)] == ["new#0"]
    finally:
        second.close()


def test_modes_share_a_native_collection(tmp_path: Path) -> None:
    """A native collection opened in exact mode keeps its sparse vectors in step (its writes show
    in native mode afterwards); an exact collection cannot be opened in native mode."""
    path = str(tmp_path / "q")
    native = Qdrant(path=path, collection="shared")
    native.connect(SPACE)
    native.upsert(make_chunks(10), unit_vectors(10))
    native.close()
    exact = Qdrant(path=path, collection="shared", keyword="exact")
    exact.connect(SPACE)
    exact.upsert([Chunk.create("z", 0, "zebra")], unit_vectors(1, seed=3))
    assert [c.id for c, _ in exact.keyword("zebra", k=2)] == ["z#0"]
    exact.close()
    again = Qdrant(path=path, collection="shared")
    again.connect(SPACE)
    assert [c.id for c, _ in again.keyword("zebra", k=2)] == ["z#0"]
    again.close()
    plain = Qdrant(path=path, collection="plain", keyword="exact")
    plain.connect(SPACE)
    plain.close()
    with pytest.raises(ConfigurationError, match="keyword='exact'"):
        Qdrant(path=path, collection="plain").connect(SPACE)


def test_reindex_needs_the_sparse_vector() -> None:
    store = Qdrant(":memory:", keyword="exact")
    store.connect(SPACE)
    with pytest.raises(ConfigurationError):
        store.reindex()


class TestQdrantHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: Qdrant(":memory:")
