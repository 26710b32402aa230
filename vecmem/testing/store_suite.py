"""The conformance suite every :class:`~vecmem.stores.base.VectorStore` passes.

A backend's test file subclasses :class:`StoreSuite` and overrides one fixture, ``store_factory``:
a zero-argument callable returning a *new, unconnected* store bound to the same test-unique
collection each time it is called (reopen tests call it twice)::

    from vecmem.testing import StoreSuite

    class TestMyStore(StoreSuite):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(path=tmp_path / "db")

The suite gives each test ``store`` (``store_factory()`` connected to :data:`SPACE`, closed after
the test) and holds the answers against the exact in-memory reference
(:class:`~vecmem.stores.memory.MemoryStore`) and :func:`vecmem.filters.matches`. Tests are grouped
in mixins (one per area) combined into :class:`StoreSuite`; each carries a one-line
troubleshooting note. Only what ``store.capabilities`` declares absent is skipped. A filter the
backend cannot express may raise :class:`~vecmem.errors.UnsupportedFilterError` (that case is
skipped, never silently wrong).
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import os
import pickle
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

from vecmem.errors import (
    DimensionMismatchError,
    EmbeddingSpaceMismatchError,
    InvalidInputError,
    UnsupportedFilterError,
)
from vecmem.filters import Filter, matches, parse_filter
from vecmem.memory import DEFAULT_BM25
from vecmem.stores.base import PagedStore, VectorStore
from vecmem.stores.memory import MemoryStore
from vecmem.testing._factory import FactorySuite
from vecmem.types import Chunk, EmbeddingSpace, Scored

DIM = 8
SPACE = EmbeddingSpace(
    embedder="test",
    dim=DIM,
    bm25_k1=DEFAULT_BM25[0],
    bm25_b=DEFAULT_BM25[1],
    bm25_epsilon=DEFAULT_BM25[2],
)
"""The embedding space every suite test connects with: BM25 as vecmem ships it
(:data:`vecmem.memory.DEFAULT_BM25`), so the suite checks the parameters users run."""

StoreFactory = Callable[[], VectorStore]
ReferenceFactory = Callable[..., MemoryStore]
"""``(chunks, vectors, space) -> MemoryStore``: :func:`reference` or a variant of it."""

VECTOR_TOL = 1e-4  # float32 storage and server-side arithmetic
BM25_REL = 1e-5

_WORDS = (
    "memory vector search index cosine keyword ranking agent retrieval chunk embedding query "
    "database filter metadata hybrid fusion graph token model cache store document score"
).split()
_STOP = ("the", "of", "and", "a", "is", "to")


# --------------------------------------------------------------------------- helpers
def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` random L2-normalised float32 vectors."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` short texts over a small vocabulary (Zipf-like), so BM25 scores vary."""
    rng = random.Random(seed)
    weights = [1.0 / (r + 1) for r in range(len(_WORDS))]
    out = []
    for _ in range(n):
        words = rng.choices(_WORDS, weights=weights, k=rng.randint(3, 12))
        words += rng.choices(_STOP, k=rng.randint(0, 3))
        rng.shuffle(words)
        out.append(" ".join(words))
    return out


def filter_metadata(i: int) -> dict[str, Any]:
    """Varied metadata for chunk ``i``: ints, floats, bools vs ints, strings, lists, missing."""
    m: dict[str, Any] = {"i": i, "x": i + 0.5 - 20}
    r = i % 10
    if r == 3:
        m["n"] = i + 0.5
    elif r == 7:
        m["n"] = i % 20 == 7
    elif r != 9:
        m["n"] = i % 7
    if i % 5 != 4:
        m["s"] = ("red", "green", "blue", "Red")[i % 4]
    flag = (True, False, 1, 0, None)[i % 5]
    if flag is not None:
        m["flag"] = flag
    t = i % 4
    if t == 0:
        m["tags"] = ["a", "b"]
    elif t == 1:
        m["tags"] = ["b", "c"] if i % 8 == 1 else ["b"]
    elif t == 2:
        m["tags"] = []
    if i % 6 == 0:
        m["nested"] = {"k": i, "l": [i]}
    return m


def make_chunks(
    n: int,
    *,
    prefix: str = "doc",
    texts: Sequence[str] | None = None,
    metadata: Callable[[int], dict[str, Any]] | None = None,
    start: int = 0,
) -> list[Chunk]:
    """Chunks ``{prefix}{i}#0`` (one per document) for ``i`` in ``start .. start + n``."""
    texts = texts if texts is not None else corpus_texts(start + n, seed=1)[start:]
    return [
        Chunk.create(f"{prefix}{start + j}", 0, texts[j], metadata(start + j) if metadata else {})
        for j in range(n)
    ]


def reference(
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    space: EmbeddingSpace = SPACE,
    *,
    cls: type[MemoryStore] = MemoryStore,
) -> MemoryStore:
    """The exact in-memory reference holding the same data (``cls``: a MemoryStore whose keyword
    scores follow a backend's documented BM25 variant instead)."""
    ref = cls()
    ref.connect(space)
    if len(chunks):
        ref.upsert(list(chunks), vectors)
    return ref


def ranked_keyword(
    chunks: Sequence[Chunk],
    docs: Sequence[Mapping[str, int]],
    query: Iterable[str],
    k: int,
    filter: Filter | None,
    score: Callable[[Chunk, Mapping[str, int]], float],
) -> list[Scored]:
    """Keyword hits as a reference with a BM25 variant of its own computes them: the chunks
    sharing a term with ``query`` (``docs``: each chunk's term counts) and passing ``filter``,
    scored by ``score(chunk, its term counts)``, best first, ``k`` at most."""
    terms = set(query)
    out = [
        Scored(c, score(c, d))
        for c, d in zip(chunks, docs)
        if not terms.isdisjoint(d) and (filter is None or matches(filter, c.metadata))
    ]
    return sorted(out, key=lambda x: -x.score)[:k]


def typed(value: Any) -> Any:
    """A comparable form of a JSON value that keeps types apart (``1``, ``1.0`` and ``True``)."""
    if isinstance(value, dict):
        return ("dict", sorted((k, typed(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("list", [typed(v) for v in value])
    return (type(value).__name__, value)


def assert_same_chunk(got: Chunk, want: Chunk) -> None:
    assert got.id == want.id
    assert got.document_id == want.document_id
    assert got.position == want.position
    assert got.text == want.text
    assert got.content_hash == want.content_hash
    assert typed(dict(got.metadata)) == typed(dict(want.metadata))


def assert_ranked_like(
    got: Sequence[Scored],
    want: Sequence[Scored],
    truth: dict[str, float],
    *,
    rel: float,
    abs_: float,
) -> None:
    """``got`` has ``want``'s length and scores rank by rank, and each hit's score is its true
    score (``truth``: id -> score over every candidate): equal up to ties."""
    assert len(got) == len(want), (
        f"{len(got)} hits, expected {len(want)}: {[c.id for c, _ in got]} vs {[c.id for c, _ in want]}"
    )
    ids = [c.id for c, _ in got]
    assert len(set(ids)) == len(ids), f"duplicate hits {ids}"
    for rank, ((gc, gs), (wc, ws)) in enumerate(zip(got, want), 1):
        assert gs == pytest.approx(ws, rel=rel, abs=abs_), (
            f"rank {rank}: {gc.id}={gs} vs {wc.id}={ws}"
        )
        assert gc.id in truth, f"{gc.id} should not match"
        assert gs == pytest.approx(truth[gc.id], rel=rel, abs=abs_), f"score of {gc.id}"


def _supported(fn: Callable[[], Any]) -> tuple[bool, Any]:
    try:
        return True, fn()
    except UnsupportedFilterError as exc:
        return False, exc


FILTER_CASES: list[tuple[str, dict[str, Any]]] = [
    ("eq-int", {"n": 2}),
    ("eq-float", {"n": 13.5}),
    ("eq-str", {"s": "red"}),
    ("eq-str-case", {"s": "Red"}),
    ("eq-bool-not-int", {"flag": True}),
    ("eq-int-not-bool", {"flag": 1}),
    ("eq-explicit", {"s": {"$eq": "blue"}}),
    ("eq-missing-field", {"nope": 1}),
    ("ne-str-keeps-missing", {"s": {"$ne": "red"}}),
    ("ne-bool", {"flag": {"$ne": False}}),
    ("ne-missing-field", {"nope": {"$ne": 1}}),
    ("gt-skips-bools", {"n": {"$gt": 0}}),
    ("gte", {"n": {"$gte": 3}}),
    ("lt-float", {"x": {"$lt": -0.5}}),
    ("lte-float-bound", {"x": {"$lte": 0.5}}),
    ("range", {"i": {"$gte": 10, "$lt": 20}}),
    ("in-str", {"s": {"$in": ["red", "blue"]}}),
    ("in-mixed-bool-int", {"flag": {"$in": [True, 0]}}),
    ("in-numbers", {"n": {"$in": [1, 33.5, 5]}}),
    ("nin-str", {"s": {"$nin": ["red", "green"]}}),
    ("nin-bool", {"flag": {"$nin": [False]}}),
    ("contains", {"tags": {"$contains": "a"}}),
    ("contains-c", {"tags": {"$contains": "c"}}),
    ("exists", {"n": {"$exists": True}}),
    ("exists-false", {"tags": {"$exists": False}}),
    ("exists-nested", {"nested": {"$exists": True}}),
    ("and", {"$and": [{"s": "red"}, {"i": {"$lt": 30}}]}),
    ("implicit-and", {"s": "green", "flag": False}),
    ("or", {"$or": [{"s": "blue"}, {"tags": {"$contains": "a"}}]}),
    ("not", {"$not": {"s": "red"}}),
    ("not-or", {"$not": {"$or": [{"n": {"$gt": 3}}, {"flag": True}]}}),
    (
        "nested-logic",
        {
            "$or": [
                {"$and": [{"n": {"$lt": 4}}, {"s": {"$exists": False}}]},
                {"$not": {"tags": {"$exists": True}}},
            ]
        },
    ),
]

_ANY_VALUES: list[Any] = [0, 1, 2, 13.5, -0.5, True, False, "red", "Red", "a", "c"]
_FIELD_VALUES: dict[str, list[Any]] = {
    "i": list(range(0, 40, 3)),
    "n": [0, 1, 2, 3, 5, 6, 3.5, 13.5, 23.5, True, False],
    "s": ["red", "green", "blue", "Red", "purple"],
    "flag": [True, False, 1, 0],
    "tags": ["a", "b", "c", "d"],
    "x": [-19.5, -10.5, -0.5, 0.5, 7.5, 19.5],
    "absent": [1, "red", True],
}
_FIELD_NUMBERS: dict[str, list[Any]] = {
    "i": [0, 5, 12, 19.5, 30, 39],
    "n": [0, 1, 2.5, 3, 5, 13.5],
    "x": [-20, -10.5, -1, 0, 0.5, 8, 19.5],
}
_FIELD_OPS: dict[str, tuple[str, ...]] = {
    "i": ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"),
    "n": ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"),
    "s": ("$eq", "$ne", "$in", "$nin", "$exists", "$gt"),
    "flag": ("$eq", "$ne", "$in", "$nin", "$exists", "$lt"),
    "tags": ("$contains", "$contains", "$exists", "$eq", "$nin"),
    "x": ("$gt", "$gte", "$lt", "$lte", "$eq", "$ne", "$in"),
    "absent": ("$eq", "$ne", "$exists", "$nin", "$contains"),
}


def random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    """A random valid filter over :func:`filter_metadata`'s fields: mostly values of the field's
    own type, sometimes another type (bools vs ints, strings vs numbers) or a missing field."""
    if depth < 2 and rng.random() < 0.3:
        kind = rng.choice(("$and", "$or", "$not"))
        if kind == "$not":
            return {"$not": random_filter(rng, depth + 1)}
        return {kind: [random_filter(rng, depth + 1) for _ in range(rng.randint(2, 3))]}
    if rng.random() < 0.04:
        return {"nested": {"$exists": rng.random() < 0.5}}
    field = rng.choices(list(_FIELD_OPS), weights=[3, 4, 4, 4, 3, 3, 1])[0]
    op = rng.choice(_FIELD_OPS[field])
    pool = _FIELD_VALUES[field] if rng.random() < 0.85 else _ANY_VALUES
    if op in ("$gt", "$gte", "$lt", "$lte"):
        value: Any = rng.choice(_FIELD_NUMBERS.get(field, [0, 1, 2.5]))
    elif op in ("$in", "$nin"):
        value = rng.sample(pool, min(len(pool), rng.randint(1, 3)))
    elif op == "$exists":
        value = rng.random() < 0.5
    else:
        value = rng.choice(pool)
    if op == "$eq" and rng.random() < 0.4:
        return {field: value}
    return {field: {op: value}}


# --------------------------------------------------------------------------- base
class _SuiteBase(FactorySuite):
    SPACE = SPACE
    N_FILTER = 40  # chunks in the filter corpus
    KEYWORD_QUERY = "memory vector search index keyword agent"

    @pytest.fixture
    def reference_factory(self) -> ReferenceFactory:
        """What answers are held to: :func:`reference`, the exact in-memory store. A backend
        whose keyword scores follow a documented BM25 variant of its own overrides this with
        ``functools.partial(reference, cls=MyVariantOfMemoryStore)``."""
        return reference

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> Iterator[VectorStore]:
        s = store_factory()
        s.connect(self.SPACE)
        yield s
        s.close()

    def fill(
        self,
        store: VectorStore,
        n: int,
        *,
        seed: int = 0,
        metadata: Callable[[int], dict[str, Any]] | None = filter_metadata,
    ) -> tuple[list[Chunk], np.ndarray]:
        chunks = make_chunks(n, metadata=metadata)
        vectors = unit_vectors(n, seed=seed)
        store.upsert(chunks, vectors)
        return chunks, vectors

    @staticmethod
    def snapshot(store: VectorStore, ids: Sequence[str]) -> tuple[int, list[Any], np.ndarray]:
        got = store.get(list(ids))
        present = [c.id for c in got]
        vecs = store.get_vectors(present) if present else np.zeros((0, DIM), np.float32)
        return store.count(), [(c.id, c.text, typed(dict(c.metadata))) for c in got], vecs


# --------------------------------------------------------------------------- mixins
class BasicsTests(_SuiteBase):
    """Writes, reads by id, deletes, counts."""

    def test_empty_store(self, store: VectorStore) -> None:
        """An empty collection must count 0 and answer searches with [] (not an error)."""
        assert store.count() == 0
        assert store.query(unit_vectors(1)[0], k=5) == []
        assert store.keyword("memory", k=5) == []
        assert store.get(["nope#0"]) == []
        assert store.get_by_document(["nope"]) == []

    def test_upsert_then_get_round_trips(self, store: VectorStore) -> None:
        """get() must return exactly what upsert() wrote: check the id/text/metadata mapping."""
        chunks, vectors = self.fill(store, 10)
        assert store.count() == 10
        for got, want in zip(store.get([c.id for c in chunks]), chunks):
            assert_same_chunk(got, want)
        np.testing.assert_allclose(
            store.get_vectors([c.id for c in chunks]), vectors, atol=VECTOR_TOL
        )

    def test_upsert_is_idempotent(self, store: VectorStore) -> None:
        """Upserting the same ids twice must not duplicate rows: key the row on Chunk.id."""
        chunks, vectors = self.fill(store, 10)
        store.upsert(chunks, vectors)
        assert store.count() == 10
        hits = store.query(vectors[0], k=10)
        assert len({c.id for c, _ in hits}) == len(hits) == 10

    def test_upsert_overwrites_text_metadata_and_vector(self, store: VectorStore) -> None:
        """An upsert of an existing id must replace its text, metadata and vector together."""
        chunks, vectors = self.fill(store, 5)
        new = Chunk.create("doc0", 0, "completely different words", {"fresh": True})
        v = unit_vectors(1, seed=99)
        store.upsert([new], v)
        assert store.count() == 5
        assert_same_chunk(store.get(["doc0#0"])[0], new)
        np.testing.assert_allclose(store.get_vectors(["doc0#0"]), v, atol=VECTOR_TOL)
        top = store.query(v[0], k=1)[0]
        assert top.chunk.id == "doc0#0" and top.score == pytest.approx(1.0, abs=VECTOR_TOL)
        assert [c.id for c, _ in store.keyword("completely different", k=5)] == ["doc0#0"]
        assert all(c.id != "doc0#0" for c, _ in store.keyword(chunks[0].text, k=10))
        assert store.count(parse_filter({"fresh": True})) == 1

    def test_upsert_with_delete_ids(self, store: VectorStore) -> None:
        """delete_ids must be removed in the same call that writes the new chunks."""
        chunks, vectors = self.fill(store, 6)
        extra = make_chunks(2, start=6)
        store.upsert(extra, unit_vectors(2, seed=5), delete_ids=["doc1#0", "doc2#0", "absent#0"])
        assert store.count() == 6
        assert store.get(["doc1#0", "doc2#0"]) == []
        assert [c.id for c in store.get(["doc6#0", "doc7#0"])] == ["doc6#0", "doc7#0"]
        assert all(c.id not in ("doc1#0", "doc2#0") for c, _ in store.query(vectors[1], k=10))

    def test_upsert_empty_batch_with_only_deletes(self, store: VectorStore) -> None:
        """An upsert of no chunks must still apply delete_ids (the facade shrinks documents so)."""
        self.fill(store, 4)
        store.upsert([], np.zeros((0, DIM), np.float32), delete_ids=["doc3#0"])
        assert store.count() == 3 and store.get(["doc3#0"]) == []

    def test_inputs_are_not_mutated(self, store: VectorStore) -> None:
        """The store must copy, not modify, the caller's chunks, metadata and arrays."""
        chunks = make_chunks(6, metadata=filter_metadata)
        vectors = unit_vectors(6) * 1.0
        before_chunks = copy.deepcopy(chunks)
        before_meta = [typed(dict(c.metadata)) for c in chunks]
        before_vectors = vectors.copy()
        deletes = ["doc9#0"]
        store.upsert(chunks, vectors, delete_ids=deletes)
        q = vectors[0].copy()
        store.query(q, k=3)
        store.query(q, k=3, filter=parse_filter({"s": "red"}))
        assert chunks == before_chunks
        assert [typed(dict(c.metadata)) for c in chunks] == before_meta
        np.testing.assert_array_equal(vectors, before_vectors)
        np.testing.assert_array_equal(q, before_vectors[0])
        assert deletes == ["doc9#0"]

    def test_delete_missing_id_is_silent(self, store: VectorStore) -> None:
        """Deleting ids that do not exist must not raise and must return 0."""
        self.fill(store, 3)
        assert store.delete(ids=["nope#0", "nope#1"]) == 0
        assert store.delete(ids=[]) == 0
        assert store.count() == 3

    def test_delete_by_ids_returns_count(self, store: VectorStore) -> None:
        """delete(ids=...) must remove exactly those chunks and return how many existed."""
        self.fill(store, 5)
        assert store.delete(ids=["doc0#0", "doc4#0", "nope#0"]) == 2
        assert store.count() == 3
        assert sorted(c.id for c in store.get([f"doc{i}#0" for i in range(5)])) == [
            "doc1#0",
            "doc2#0",
            "doc3#0",
        ]

    def test_delete_without_ids_or_filter_raises(self, store: VectorStore) -> None:
        """delete() with neither ids nor filter must raise, never wipe the collection."""
        self.fill(store, 3)
        with pytest.raises(InvalidInputError):
            store.delete()
        assert store.count() == 3

    def test_get_keeps_order_and_skips_missing(self, store: VectorStore) -> None:
        """get() must follow the order of the ids asked for and leave out unknown ids."""
        self.fill(store, 6)
        ids = ["doc4#0", "nope#0", "doc0#0", "doc2#0"]
        assert [c.id for c in store.get(ids)] == ["doc4#0", "doc0#0", "doc2#0"]

    def test_get_by_document(self, store: VectorStore) -> None:
        """get_by_document() must return every chunk of each document, and nothing else."""
        chunks = [
            Chunk.create(d, p, f"{d} part {p}", {"p": p}) for d in ("a", "b", "c") for p in range(3)
        ]
        store.upsert(chunks, unit_vectors(len(chunks)))
        got = store.get_by_document(["a", "c", "zz"])
        assert sorted(c.id for c in got) == ["a#0", "a#1", "a#2", "c#0", "c#1", "c#2"]
        by_id = {c.id: c for c in chunks}
        for c in got:
            assert_same_chunk(c, by_id[c.id])

    def test_get_vectors(self, store: VectorStore) -> None:
        """get_vectors() must return the stored vectors, in the order asked, as (n, dim)."""
        chunks, vectors = self.fill(store, 6)
        got = store.get_vectors(["doc5#0", "doc1#0"])
        assert got.shape == (2, DIM)
        np.testing.assert_allclose(got, vectors[[5, 1]], atol=VECTOR_TOL)

    def test_count_with_filter(self, store: VectorStore) -> None:
        """count(filter) must count only matching chunks (apply the filter server-side)."""
        chunks, _ = self.fill(store, self.N_FILTER)
        f = parse_filter({"s": "red"})
        assert store.count(f) == sum(matches(f, c.metadata) for c in chunks) > 0
        assert store.count() == self.N_FILTER

    def test_page_ids_lists_every_id_once_in_code_point_order(self, store: VectorStore) -> None:
        """page_ids() (a PagedStore: what export and migrate read) must list each live id once,
        ascending by code point (upper case before lower, "é" after "z"), from ``after`` on."""
        if not isinstance(store, PagedStore):
            pytest.skip(f"{type(store).__name__} has no page_ids()")
        names = ["b", "B", "a", "é", "z", "a b", "10", "9", "日本"]
        chunks = [Chunk.create(n, 0, f"text of {n}") for n in names]
        store.upsert(chunks, unit_vectors(len(chunks)))
        store.delete(ids=["z#0"])
        want = sorted(c.id for c in chunks if c.id != "z#0")
        got: list[str] = []
        after = None
        while page := store.page_ids(after=after, limit=2):
            assert len(page) <= 2
            got += page
            after = page[-1]
        assert got == want
        assert store.page_ids(after="a#0", limit=100) == [i for i in want if i > "a#0"]


class SearchTests(_SuiteBase):
    """Vector and keyword search: k, order, scores."""

    def test_k_is_honoured(self, store: VectorStore) -> None:
        """query/keyword must return min(k, available) hits."""
        _, vectors = self.fill(store, 20)
        assert len(store.query(vectors[0], k=5)) == 5
        assert len(store.query(vectors[0], k=1)) == 1
        assert len(store.query(vectors[0], k=100)) == 20
        assert len(store.keyword(self.KEYWORD_QUERY, k=3)) == 3

    def test_scores_descend(self, store: VectorStore) -> None:
        """Results must come best first (higher score = better; convert distances)."""
        _, vectors = self.fill(store, 30)
        for q in vectors[:3]:
            scores = [s for _, s in store.query(q, k=30)]
            assert scores == sorted(scores, reverse=True)
        kw = [s for _, s in store.keyword(self.KEYWORD_QUERY, k=30)]
        assert kw and kw == sorted(kw, reverse=True)

    def test_vector_scores_are_cosine_similarities(self, store: VectorStore) -> None:
        """A vector hit's score must be the cosine similarity (1 - cosine distance), not a
        distance or a rank."""
        chunks, vectors = self.fill(store, 30)
        q = unit_vectors(1, seed=42)[0]
        truth = vectors @ q
        want = np.argsort(-truth)[:10]
        got = store.query(q, k=10)
        by_index = {c.id: i for i, c in enumerate(chunks)}
        for c, s in got:
            assert s == pytest.approx(float(truth[by_index[c.id]]), abs=VECTOR_TOL)
        np.testing.assert_allclose([s for _, s in got], truth[want], atol=VECTOR_TOL)
        assert got[0][0].id == chunks[want[0]].id

    def test_exact_vector_is_found_first(self, store: VectorStore) -> None:
        """Querying with a stored vector must return that chunk first with score ~1."""
        chunks, vectors = self.fill(store, 30)
        for i in (0, 7, 29):
            c, s = store.query(vectors[i], k=1)[0]
            assert c.id == chunks[i].id and s == pytest.approx(1.0, abs=VECTOR_TOL)

    def test_keyword_scores_equal_the_reference(
        self, store: VectorStore, reference_factory: ReferenceFactory
    ) -> None:
        """Keyword scores must be BM25Okapi (space.bm25_k1/b/epsilon, vecmem's tokenizer)
        computed over the whole collection, equal to MemoryStore's."""
        chunks, vectors = self.fill(store, self.N_FILTER)
        ref = reference_factory(chunks, vectors, self.SPACE)
        for q in (
            "memory",
            "vector search",
            self.KEYWORD_QUERY,
            "Documents SCORING graphs",
            "fusion cache",
        ):
            want = ref.keyword(q, k=10)
            truth = {c.id: s for c, s in ref.keyword(q, k=1000)}
            assert want, q
            assert_ranked_like(store.keyword(q, k=10), want, truth, rel=BM25_REL, abs_=1e-6)

    def test_keyword_returns_only_chunks_with_a_query_term(self, store: VectorStore) -> None:
        """Keyword search must not return chunks that share no term with the query."""
        self.fill(store, 20)
        assert store.keyword("zebra xylophone", k=5) == []
        assert store.keyword("the of and", k=5) == []  # only stop words
        hits = store.keyword("graph", k=50)
        assert hits and all("graph" in c.text for c, _ in hits)

    def test_keyword_after_overwrite_and_delete(
        self, store: VectorStore, reference_factory: ReferenceFactory
    ) -> None:
        """The keyword index must follow overwrites and deletes (N, avgdl and df change)."""
        chunks, vectors = self.fill(store, 30)
        store.delete(ids=[c.id for c in chunks[:5]])
        changed = [
            Chunk.create(c.document_id, 0, "graph graph token " + c.text, c.metadata)
            for c in chunks[5:10]
        ]
        store.upsert(changed, vectors[5:10])
        live = changed + chunks[10:]
        ref = reference_factory(live, np.vstack([vectors[5:10], vectors[10:]]), self.SPACE)
        for q in ("graph token", "memory"):
            truth = {c.id: s for c, s in ref.keyword(q, k=1000)}
            assert_ranked_like(
                store.keyword(q, k=8), ref.keyword(q, k=8), truth, rel=BM25_REL, abs_=1e-6
            )

    def test_native_hybrid_equals_fusing_both_legs(self, store: VectorStore) -> None:
        """A store that fuses in the database (``native_hybrid``) must return what
        :func:`vecmem.fusion.fuse` makes of its own two legs with ``k=candidates``: same ids and
        order, same per-leg scores, fused scores equal to float rounding, with and without a
        filter, for every fusion method."""
        if not store.capabilities.native_hybrid:
            pytest.skip(f"{store.name} does not declare native_hybrid: the facade fuses its legs")
        from vecmem.fusion import Fusion, fuse

        _, vectors = self.fill(store, self.N_FILTER)
        rng = np.random.default_rng(0)
        for fusion in (
            Fusion(),
            Fusion("rrf", k=10, vector_weight=0.3, keyword_weight=2.0),
            Fusion("convex", alpha=0.25),
            Fusion("convex", alpha=1.0),
            Fusion("dbsf", alpha=0.3),
            Fusion("dbsf", alpha=0.6, adaptive=True),
            Fusion("convex", alpha=0.5, adaptive=True),
        ):
            for text, flt in (
                (self.KEYWORD_QUERY, None),
                ("graph token", None),
                ("memory fusion", parse_filter({"s": {"$in": ["red", "blue"]}})),
                ("vector score", parse_filter({"n": {"$gt": 2}})),
                ("graph", parse_filter({"i": {"$lt": 4}})),  # 4 chunks match
                ("zebra xylophone", None),
                ("the of and", None),
            ):  # no keyword leg
                q = vectors[rng.integers(len(vectors))] + 0.1 * unit_vectors(1, seed=7)[0]
                q = (q / np.linalg.norm(q)).astype(np.float32)
                got = store.hybrid(  # type: ignore[attr-defined]
                    q,
                    text,
                    k=15,
                    candidates=20,
                    fusion=fusion,
                    filter=flt,
                )
                want = fuse(
                    store.query(q, k=20, filter=flt),
                    store.keyword(text, k=20, filter=flt),
                    fusion,
                    k=15,
                )
                assert [h.id for h in got] == [h.id for h in want], (fusion, text)
                assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-9)
                for g, w in zip(got, want):
                    assert (g.scores.vector_rank, g.scores.keyword_rank) == (
                        w.scores.vector_rank,
                        w.scores.keyword_rank,
                    )
                    for a, b in (
                        (g.scores.vector, w.scores.vector),
                        (g.scores.keyword, w.scores.keyword),
                    ):
                        assert (a is None) == (b is None) and (
                            a is None or a == pytest.approx(b, rel=1e-6, abs=1e-6)
                        )
                assert all(matches(flt, h.metadata) for h in got)

    def test_both_legs_equal_the_two_legs(self, store: VectorStore) -> None:
        """A store that runs both legs in one round trip (``both_legs``) must return exactly
        ``query()`` and ``keyword()``, filtered the same way; the facade fuses them."""
        if not store.capabilities.both_legs:
            pytest.skip(f"{store.name} does not declare both_legs")
        _, vectors = self.fill(store, self.N_FILTER)
        for text, flt in (
            (self.KEYWORD_QUERY, None),
            ("graph", parse_filter({"i": {"$lt": 4}})),
            ("memory fusion", parse_filter({"s": {"$in": ["red", "blue"]}})),
            ("the of and", None),
        ):
            vec, kw = store.both_legs(  # type: ignore[attr-defined]
                vectors[3],
                text,
                k=12,
                filter=flt,
            )
            want_vec, want_kw = (
                store.query(vectors[3], k=12, filter=flt),
                store.keyword(text, k=12, filter=flt),
            )
            assert [c.id for c, _ in vec] == [c.id for c, _ in want_vec], text
            assert [c.id for c, _ in kw] == [c.id for c, _ in want_kw], text
            assert [s for _, s in vec] == pytest.approx([s for _, s in want_vec], rel=1e-6)
            assert [s for _, s in kw] == pytest.approx([s for _, s in want_kw], rel=1e-6)


class FilterTests(_SuiteBase):
    """The portable filter grammar, held against vecmem.filters.matches."""

    def _check(
        self,
        store: VectorStore,
        chunks: list[Chunk],
        vectors: np.ndarray,
        ref: MemoryStore,
        f: Filter | None,
        label: str,
    ) -> bool:
        """Query, keyword and count under ``f`` versus the reference; False if unsupported."""
        expected = {c.id for c in chunks if matches(f, c.metadata)}
        n = len(chunks)
        q = vectors[3]
        ok, got = _supported(lambda: store.query(q, k=n, filter=f))
        if not ok:
            return False
        assert {c.id for c, _ in got} == expected, f"query {label}"
        truth = {c.id: float(s) for c, s in zip(chunks, vectors @ q)}
        assert_ranked_like(got, ref.query(q, k=n, filter=f), truth, rel=0, abs_=VECTOR_TOL)
        kw_truth = {c.id: s for c, s in ref.keyword(self.KEYWORD_QUERY, k=1000)}
        assert_ranked_like(
            store.keyword(self.KEYWORD_QUERY, k=n, filter=f),
            ref.keyword(self.KEYWORD_QUERY, k=n, filter=f),
            kw_truth,
            rel=BM25_REL,
            abs_=1e-6,
        )
        assert store.count(f) == len(expected), f"count {label}"
        return True

    @pytest.mark.parametrize("label,spec", FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
    def test_filter_operator(
        self,
        store: VectorStore,
        reference_factory: ReferenceFactory,
        label: str,
        spec: dict[str, Any],
    ) -> None:
        """Each operator must select exactly what vecmem.filters.matches selects (missing fields,
        bools are not numbers, $ne/$nin keep chunks without the field, $contains is list
        membership) in query, keyword and count."""
        chunks, vectors = self.fill(store, self.N_FILTER)
        ref = reference_factory(chunks, vectors, self.SPACE)
        if not self._check(store, chunks, vectors, ref, parse_filter(spec), label):
            pytest.skip(f"{store.name} raises UnsupportedFilterError for {spec}")

    def test_random_filters_match_the_reference(
        self, store: VectorStore, reference_factory: ReferenceFactory
    ) -> None:
        """50 seeded random filters: query, keyword, count and delete-by-filter must equal the
        reference; print the failing filter and compare the translation with filters.matches."""
        chunks, vectors = self.fill(store, self.N_FILTER)
        ref = reference_factory(chunks, vectors, self.SPACE)
        rng = random.Random(1234)
        by_id = {c.id: i for i, c in enumerate(chunks)}
        supported = 0
        for n in range(50):
            spec = random_filter(rng)
            f = parse_filter(spec)
            label = f"#{n} {spec}"
            if not self._check(store, chunks, vectors, ref, f, label):
                continue
            supported += 1
            doomed = [c for c in chunks if matches(f, c.metadata)]
            assert store.delete(filter=f) == len(doomed), f"delete {label}"
            assert store.count() == len(chunks) - len(doomed), f"count after delete {label}"
            assert store.count(f) == 0, f"left after delete {label}"
            if doomed:
                store.upsert(doomed, vectors[[by_id[c.id] for c in doomed]])
            assert store.count() == len(chunks)
        if supported == 0:
            pytest.skip(f"{store.name} supports none of the random filters")

    def test_selective_filter_still_returns_k(self, store: VectorStore) -> None:
        """A filter must apply before top-k: a very selective filter must still give k hits when
        k chunks match (no post-filtering of an unfiltered top-k)."""
        n = 1000
        chunks = make_chunks(
            n,
            metadata=lambda i: {"bucket": i % 100, "i": i},
            texts=[f"memory chunk {i}" for i in range(n)],
        )
        vectors = unit_vectors(n, seed=3)
        store.upsert(chunks, vectors)
        q = unit_vectors(1, seed=4)[0]
        sims = vectors @ q
        for spec, k in (
            ({"bucket": 42}, 10),
            ({"bucket": {"$in": [1, 2, 3, 4, 5]}}, 20),
            ({"i": 777}, 5),
            ({"bucket": {"$lt": 50}}, 10),
        ):
            f = parse_filter(spec)
            idx = [i for i, c in enumerate(chunks) if matches(f, c.metadata)]
            want = min(k, len(idx))
            got = store.query(q, k=k, filter=f)
            assert len(got) == want, f"{spec}: {len(got)} hits, expected {want}"
            best = sorted(idx, key=lambda i: -sims[i])[:want]
            np.testing.assert_allclose([s for _, s in got], sims[best], atol=VECTOR_TOL)
            kw = store.keyword("memory chunk", k=k, filter=f)
            assert len(kw) == want and all(matches(f, c.metadata) for c, _ in kw)

    def test_delete_by_filter(self, store: VectorStore) -> None:
        """delete(filter=...) must remove exactly the matching chunks and return their number."""
        chunks, _ = self.fill(store, self.N_FILTER)
        f = parse_filter({"$or": [{"s": "red"}, {"flag": True}]})
        doomed = {c.id for c in chunks if matches(f, c.metadata)}
        assert 0 < len(doomed) < len(chunks)
        assert store.delete(filter=f) == len(doomed)
        left = {c.id for c in store.get([c.id for c in chunks])}
        assert left == {c.id for c in chunks} - doomed
        assert store.delete(filter=f) == 0

    def test_delete_by_ids_and_filter(self, store: VectorStore) -> None:
        """delete(ids=, filter=) must remove the union of both."""
        chunks, _ = self.fill(store, self.N_FILTER)
        f = parse_filter({"s": "blue"})
        doomed = {c.id for c in chunks if matches(f, c.metadata)} | {"doc0#0", "doc1#0"}
        assert store.delete(ids=["doc0#0", "doc1#0"], filter=f) == len(doomed)
        assert store.count() == len(chunks) - len(doomed)


class ValidationTests(_SuiteBase):
    """Bad input gets a typed vecmem error and changes nothing."""

    def test_dimension_mismatch(self, store: VectorStore) -> None:
        """Vectors of another dimension must raise DimensionMismatchError on upsert and query."""
        self.fill(store, 3)
        with pytest.raises(DimensionMismatchError):
            store.upsert(make_chunks(1, start=10), unit_vectors(1, dim=DIM + 1))
        with pytest.raises(DimensionMismatchError):
            store.query(unit_vectors(1, dim=DIM - 1)[0], k=3)
        assert store.count() == 3

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_vectors_are_rejected(self, store: VectorStore, bad: float) -> None:
        """NaN/inf in a vector must raise InvalidInputError before anything is written."""
        self.fill(store, 3)
        v = unit_vectors(2, seed=8)
        v[1, 2] = bad
        with pytest.raises(InvalidInputError):
            store.upsert(make_chunks(2, start=10), v)
        q = unit_vectors(1)[0]
        q[0] = bad
        with pytest.raises(InvalidInputError):
            store.query(q, k=3)
        assert store.count() == 3

    @pytest.mark.parametrize("k", [0, -1])
    def test_k_must_be_positive(self, store: VectorStore, k: int) -> None:
        """k <= 0 must raise InvalidInputError (not return [] or everything)."""
        self.fill(store, 3)
        with pytest.raises(InvalidInputError):
            store.query(unit_vectors(1)[0], k=k)
        with pytest.raises(InvalidInputError):
            store.keyword("memory", k=k)

    def test_wrong_vector_count(self, store: VectorStore) -> None:
        """A batch must have exactly one vector per chunk."""
        with pytest.raises(InvalidInputError):
            store.upsert(make_chunks(3), unit_vectors(2))
        assert store.count() == 0

    def test_connect_with_another_space_raises(self, store: VectorStore) -> None:
        """Connecting a connected store with another embedder/dim must raise
        EmbeddingSpaceMismatchError naming both values."""
        with pytest.raises(EmbeddingSpaceMismatchError, match="other-embedder"):
            store.connect(EmbeddingSpace(embedder="other-embedder", dim=DIM))
        with pytest.raises(EmbeddingSpaceMismatchError):
            store.connect(EmbeddingSpace(embedder=self.SPACE.embedder, dim=DIM * 2))

    def test_failed_batch_leaves_store_unchanged(self, store: VectorStore) -> None:
        """A batch rejected part-way (NaN in the last vector, duplicate ids) must leave nothing
        half-written: no overwrite, no insert, no delete."""
        chunks, vectors = self.fill(store, 5)
        ids = [c.id for c in chunks] + ["doc5#0", "doc6#0"]
        before = self.snapshot(store, ids)
        batch = [Chunk.create("doc0", 0, "overwritten text", {"x": 1})] + make_chunks(2, start=5)
        v = unit_vectors(3, seed=11)
        v[2, 0] = math.nan
        with pytest.raises(InvalidInputError):
            store.upsert(batch, v, delete_ids=["doc1#0"])
        dup = [Chunk.create("doc0", 0, "overwritten"), Chunk.create("doc0", 0, "twice")]
        with pytest.raises(InvalidInputError):
            store.upsert(dup, unit_vectors(2, seed=12), delete_ids=["doc1#0"])
        after = self.snapshot(store, ids)
        assert after[0] == before[0] and after[1] == before[1]
        np.testing.assert_allclose(after[2], before[2], atol=VECTOR_TOL)
        assert store.keyword("overwritten", k=5) == []


class RoundTripTests(_SuiteBase):
    """Text and metadata come back exactly."""

    META = {
        "int": 3,
        "neg": -7,
        "big": 2**40,
        "float": 2.5,
        "whole_float": 1.0,
        "tiny": 1e-9,
        "bool_t": True,
        "bool_f": False,
        "zero": 0,
        "str": "日本語 🎉 café",
        "empty_str": "",
        "list": [1, "two", 3.5, True],
        "strs": ["α", "β"],
        "nested": {"a": {"b": [1, {"c": "d"}]}},
        "ключ": "значение",
        "emoji 🔑": "✓",
    }
    TEXTS = (
        "Emoji 🎉🚀 and CJK 漢字かなカナ한국어",
        "RTL: مرحبا بالعالم — שלום",
        "combining: e\u0301 vs é, ligature ﬁ, zero width\u200bjoiner",
        "quotes ' \" ` \\ backslash; SQL -- comment /* */ %s {} $1",
        "newlines\nand\ttabs\r\nend  ",
    )

    def test_unicode_text_and_metadata_round_trip(self, store: VectorStore) -> None:
        """Text and metadata must come back byte-for-byte, with JSON types kept (ints stay ints,
        floats stay floats, bools stay bools, nested dicts and lists survive)."""
        chunks = [
            Chunk.create(f"ü-{i}/文書", i, t, {**self.META, "i": i})
            for i, t in enumerate(self.TEXTS)
        ]
        store.upsert(chunks, unit_vectors(len(chunks)))
        for got, want in zip(store.get([c.id for c in chunks]), chunks):
            assert_same_chunk(got, want)
        by_id = {c.id: c for c, _ in store.query(unit_vectors(1)[0], k=10)}
        for c in chunks:
            assert_same_chunk(by_id[c.id], c)
        kw = store.keyword("漢字かなカナ한국어 مرحبا", k=5)
        assert {c.id for c, _ in kw} == {chunks[0].id, chunks[1].id}
        assert store.count(parse_filter({"str": "日本語 🎉 café"})) == len(chunks)
        assert store.count(parse_filter({"ключ": "значение"})) == len(chunks)


class ScaleTests(_SuiteBase):
    """Large batches."""

    def test_10k_batch_upsert(self, store: VectorStore) -> None:
        """One upsert of 10,000 chunks must store them all (batch internally if the backend has
        request-size limits) and find a stored vector first."""
        n = 10_000
        chunks = [Chunk.create(f"d{i}", 0, f"text {i} memory", {"i": i}) for i in range(n)]
        vectors = unit_vectors(n, seed=21)
        store.upsert(chunks, vectors)
        assert store.count() == n
        for i in (0, 4321, n - 1):
            c, s = store.query(vectors[i], k=10)[0]
            assert c.id == chunks[i].id and s == pytest.approx(1.0, abs=VECTOR_TOL)
        assert len(store.query(vectors[5], k=10)) == 10
        assert store.count(parse_filter({"i": {"$gte": 9000}})) == 1000


def _child_writer(factory: StoreFactory, space: EmbeddingSpace, start: int, n: int) -> None:
    """Runs in a forked process: write ``n`` chunks in small batches, exit non-zero on error."""
    code = 0
    try:
        s = factory()
        s.connect(space)
        for j in range(start, start + n, 10):
            s.upsert(
                make_chunks(10, prefix="p", start=j, texts=[f"proc {i}" for i in range(j, j + 10)]),
                unit_vectors(10, seed=j),
            )
        s.close()
    except BaseException:  # noqa: BLE001 - report through the exit code
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


class DurabilityTests(_SuiteBase):
    """Persistence, reopening, concurrency."""

    def test_reopen_after_close(self, store_factory: StoreFactory) -> None:
        """A persistent store must keep chunks, vectors, metadata and the keyword index across
        close() and a new store object."""
        first = store_factory()
        if not first.capabilities.persistent:
            pytest.skip(f"{first.name} is not persistent")
        first.connect(self.SPACE)
        chunks, vectors = self.fill(first, 20)
        kw = first.keyword(self.KEYWORD_QUERY, k=5)
        first.close()
        second = store_factory()
        try:
            assert second.stored_space() is not None
            second.connect(self.SPACE)
            assert second.count() == 20
            for got, want in zip(second.get([c.id for c in chunks]), chunks):
                assert_same_chunk(got, want)
            c, s = second.query(vectors[4], k=1)[0]
            assert c.id == chunks[4].id and s == pytest.approx(1.0, abs=VECTOR_TOL)
            assert [
                (c.id, pytest.approx(s)) for c, s in second.keyword(self.KEYWORD_QUERY, k=5)
            ] == [(c.id, s) for c, s in kw]
            second.upsert(make_chunks(1, start=20), unit_vectors(1, seed=77))
            assert second.count() == 21
        finally:
            second.close()

    def test_reopen_with_another_space_raises(self, store_factory: StoreFactory) -> None:
        """Reopening a persistent collection with another embedder or dimension must raise
        EmbeddingSpaceMismatchError (record the space with the collection)."""
        first = store_factory()
        if not first.capabilities.persistent:
            pytest.skip(f"{first.name} is not persistent")
        first.connect(self.SPACE)
        self.fill(first, 3)
        first.close()
        for other in (
            EmbeddingSpace(embedder="another-model", dim=DIM),
            EmbeddingSpace(embedder=self.SPACE.embedder, dim=DIM * 2),
        ):
            s = store_factory()
            try:
                stored = s.stored_space()
                assert stored is not None and stored.embedder == self.SPACE.embedder
                assert stored.dim == DIM
                with pytest.raises(EmbeddingSpaceMismatchError):
                    s.connect(other)
            finally:
                s.close()
        s = store_factory()
        try:
            s.connect(self.SPACE)
            assert s.count() == 3
        finally:
            s.close()

    def test_threads_writing_one_store_lose_nothing(self, store: VectorStore) -> None:
        """Concurrent upserts through one store object from several threads must all land."""
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                for b in range(5):
                    start = t * 100 + b * 20
                    store.upsert(
                        make_chunks(
                            20,
                            prefix="t",
                            start=start,
                            texts=[f"thread {t} batch {b} n{i}" for i in range(20)],
                        ),
                        unit_vectors(20, seed=start),
                    )
                    store.query(unit_vectors(1, seed=t)[0], k=3)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        assert store.count() == 400
        assert len(store.get([f"t{i}#0" for i in range(400)])) == 400

    def test_separate_store_objects_writing_lose_nothing(
        self, store: VectorStore, store_factory: StoreFactory
    ) -> None:
        """Several store objects (clients) writing the same collection at once must not lose
        writes (backends with concurrent_writers)."""
        if not store.capabilities.concurrent_writers:
            pytest.skip(f"{store.name} does not declare concurrent_writers")
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                s = store_factory()
                s.connect(self.SPACE)
                for b in range(5):
                    start = t * 100 + b * 20
                    s.upsert(
                        make_chunks(
                            20,
                            prefix="w",
                            start=start,
                            texts=[f"writer {t} n{i}" for i in range(20)],
                        ),
                        unit_vectors(20, seed=start),
                    )
                s.close()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        assert store.count() == 300

    def test_processes_writing_lose_nothing(
        self, store: VectorStore, store_factory: StoreFactory
    ) -> None:
        """Two processes writing the same collection at once must not lose writes, and a third
        connection must see both (backends with concurrent_writers). The writers are spawned when
        store_factory pickles (use functools.partial), else forked."""
        if not store.capabilities.concurrent_writers:
            pytest.skip(f"{store.name} does not declare concurrent_writers")
        try:  # a picklable factory (a class, functools.partial) runs in fresh interpreters
            pickle.dumps(store_factory)
            method = "spawn"
        except Exception:  # noqa: BLE001 - a lambda or closure: fork so the child inherits it
            method = "fork"
        ctx = multiprocessing.get_context(method)
        procs = [
            ctx.Process(  # type: ignore[attr-defined]
                target=_child_writer,
                args=(store_factory, self.SPACE, p * 1000, 100),
            )
            for p in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(180)
        codes = [p.exitcode for p in procs]
        hint = (
            " -- clients with background threads (tokio, gRPC) do not survive fork(): return "
            "a picklable store_factory, e.g. functools.partial(MyStore, ...), so the writers "
            "are spawned"
            if method == "fork" and any(c is not None and c < 0 for c in codes)
            else ""
        )
        assert codes == [0, 0], f"writer processes ({method}) exited with {codes}{hint}"
        assert store.count() == 200
        assert len(store.get([f"p{i}#0" for i in (0, 99, 1000, 1099)])) == 4


class StoreSuite(
    BasicsTests,
    SearchTests,
    FilterTests,
    ValidationTests,
    RoundTripTests,
    ScaleTests,
    DurabilityTests,
):
    """Every conformance test; subclass it and override the ``store_factory`` fixture.

    >>> class TestMemory(StoreSuite):                       # doctest: +SKIP
    ...     @pytest.fixture
    ...     def store_factory(self):
    ...         return MemoryStore
    """


__all__ = [
    "DIM",
    "FILTER_CASES",
    "SPACE",
    "BasicsTests",
    "DurabilityTests",
    "FilterTests",
    "RoundTripTests",
    "ScaleTests",
    "SearchTests",
    "StoreFactory",
    "StoreSuite",
    "ValidationTests",
    "assert_ranked_like",
    "assert_same_chunk",
    "corpus_texts",
    "filter_metadata",
    "make_chunks",
    "random_filter",
    "ranked_keyword",
    "ReferenceFactory",
    "reference",
    "typed",
    "unit_vectors",
]
