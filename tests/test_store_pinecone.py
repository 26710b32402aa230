"""The conformance and congruence suites on Pinecone: through the real ``pinecone`` SDK against
the local stand-in (:mod:`vecmem.testing._infra.pinecone_standin`) always, and against the real service
when ``PINECONE_API_KEY`` is set (index ``$VECMEM_PINECONE_INDEX``, default ``vecmem-test``,
created when missing: serverless aws/us-east-1, dimension 8, dotproduct; one namespace per test;
each write is followed by ``$VECMEM_PINECONE_SETTLE`` seconds, as the service is eventually
consistent).
Plus what only this adapter has: the wire (batch limits), error translation, the filter
translation run by Pinecone's documented semantics, and the BM25 statistics."""

from __future__ import annotations

import functools
import math
import os
import random
import socket
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

pytest.importorskip(
    "pinecone", reason="the pinecone SDK is not installed (pip install 'vecmem[pinecone]')"
)

from vecmem.errors import (
    AuthenticationError,
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingSpaceMismatchError,
    InvalidInputError,
    NotFoundError,
)
from vecmem.filters import Filter, matches, parse_filter
from vecmem.memory import VectorMemory
from vecmem.stores import open_store
from vecmem.stores._pinecone_bm25 import STATS_PAYLOAD
from vecmem.stores._pinecone_bm25 import pack as _pack
from vecmem.stores._pinecone_bm25 import unpack as _unpack
from vecmem.stores._pinecone_layout import MAX_METADATA
from vecmem.stores._pinecone_layout import encode as _encode
from vecmem.stores.memory import MemoryStore
from vecmem.stores.pinecone import MERGE_AFTER, PineconeDb, term_index, to_filter
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing._infra import pinecone_standin
from vecmem.testing._infra.pinecone_standin import PineconeStandIn
from vecmem.testing.congruence import filled
from vecmem.testing.store_suite import (
    BM25_REL,
    SPACE,
    ReferenceFactory,
    StoreFactory,
    assert_ranked_like,
    filter_metadata,
    make_chunks,
    random_filter,
    ranked_keyword,
    reference,
    unit_vectors,
)
from vecmem.tokenize import get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

KEY = "standin-test-key"


def _same_keyword(store: PineconeDb, ref: object, q: str, k: int) -> None:
    """Keyword hits equal the reference's rank by rank (ties may come in either order)."""
    truth = {c.id: x for c, x in ref.keyword(q, k=10_000)}  # type: ignore[attr-defined]
    assert_ranked_like(
        store.keyword(q, k=k),
        ref.keyword(q, k=k),
        truth,  # type: ignore[attr-defined]
        rel=BM25_REL,
        abs_=1e-9,
    )


REAL_KEY = os.environ.get("PINECONE_API_KEY")
REAL_INDEX = os.environ.get("VECMEM_PINECONE_INDEX", "vecmem-test")
SETTLE = float(os.environ.get("VECMEM_PINECONE_SETTLE", "5"))


@pytest.fixture(scope="module")
def standin() -> Iterator[PineconeStandIn]:
    with PineconeStandIn(api_key=KEY) as s:
        yield s


def _ns() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def _store(
    standin: PineconeStandIn, *, index: str = "suite", namespace: str = "", **kwargs: object
) -> PineconeDb:
    return PineconeDb(
        index=index, api_key=KEY, controller_host=standin.url, namespace=namespace, **kwargs
    )  # type: ignore[arg-type]


class TestPineconeStandIn(StoreSuite):
    @pytest.fixture
    def store_factory(self, standin: PineconeStandIn) -> StoreFactory:
        ns = _ns()
        return lambda: _store(standin, namespace=ns)


class _Settled(PineconeDb):
    """The service is eventually consistent: wait ``$VECMEM_PINECONE_SETTLE`` seconds (default
    5) after each write, so that the suite's reads see it."""

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        super().upsert(chunks, vectors, delete_ids=delete_ids)
        time.sleep(SETTLE)

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        n = super().delete(ids=ids, filter=filter)
        time.sleep(SETTLE)
        return n


@pytest.mark.skipif(
    REAL_KEY is None,
    reason="PINECONE_API_KEY is not set: the suite runs against "
    "the local stand-in only (set it to also run against the Pinecone service)",
)
class TestPineconeService(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> Iterator[StoreFactory]:
        ns = _ns()
        yield lambda: _Settled(index=REAL_INDEX, namespace=ns)
        PineconeDb(index=REAL_INDEX, namespace=ns).drop()


class TestPineconeCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self, standin: PineconeStandIn) -> StoreFactory:
        ns = _ns()
        return lambda: _store(standin, index="congruence", namespace=ns)


# ----------------------------------------------------------------------------- keyword="native"
_LIVE: dict[str, tuple[Chunk, int]] = {}  # the test's live chunks and their token counts
_AVGDL_W: dict[str, float] = {}  # chunk id -> the average length when it was last written


class _Ledgered(PineconeDb):
    """``keyword="native"``, keeping for :class:`FrozenReference` its own account of the average
    length each chunk was weighted with: the live chunks' token counts after each write (under
    the store's lock, so threads writing one store are counted in the store's order)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, keyword="native", **kwargs)  # type: ignore[arg-type]

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        with self._lock:
            super().upsert(chunks, vectors, delete_ids=delete_ids)
            for i in [*delete_ids, *(c.id for c in chunks)]:
                _LIVE.pop(i, None)
            for c in chunks:
                _LIVE[c.id] = (c, len(self.tokenizer(c.text)))  # type: ignore[misc]
            if chunks:
                avgdl = sum(n for _, n in _LIVE.values()) / len(_LIVE)
                _AVGDL_W.update((c.id, avgdl) for c in chunks)

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        with self._lock:
            n = super().delete(ids=ids, filter=filter)
            doomed = set(ids or ()) | {
                i
                for i, (c, _) in _LIVE.items()
                if filter is not None and matches(filter, c.metadata)
            }
            for i in doomed:
                _LIVE.pop(i, None)
            return n

    def drop(self) -> None:
        super().drop()
        _LIVE.clear()


class FrozenReference(MemoryStore):
    """The exact reference, with keyword scores as ``keyword="native"`` documents them: rank_bm25's
    idf over the live chunks (epsilon floor included) times the query's term counts, and each
    chunk's term weights normalised by the average length recorded when it was written."""

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        space = self.stored_space()
        assert space is not None
        tok = get_tokenizer(space.tokenizer)
        k1, b, eps = space.keyword_params()
        chunks = self.all_chunks()
        docs = [Counter(tok(c.text)) for c in chunks]
        df = Counter(t for d in docs for t in d)
        raw = {t: math.log(len(docs) - n + 0.5) - math.log(n + 0.5) for t, n in df.items()}
        floor = eps * sum(raw.values()) / len(raw) if raw else 0.0
        idf = {t: floor if x < 0 else x for t, x in raw.items()}
        query = Counter(t for t in tok(text) if t in df)

        def score(c: Chunk, d: Mapping[str, int]) -> float:
            norm = k1 * (1 - b + b * sum(d.values()) / _AVGDL_W[c.id])
            return sum(
                idf[t] * m * d[t] * (k1 + 1) / (d[t] + norm) for t, m in query.items() if t in d
            )

        return ranked_keyword(chunks, docs, query, k, filter, score)


frozen_reference = functools.partial(reference, cls=FrozenReference)


@pytest.fixture
def frozen() -> Iterator[None]:
    """A fresh ledger for FrozenReference."""
    _LIVE.clear()
    _AVGDL_W.clear()
    yield
    _LIVE.clear()
    _AVGDL_W.clear()


@pytest.mark.usefixtures("frozen")
class TestPineconeNativeKeyword(StoreSuite):
    @pytest.fixture
    def reference_factory(self) -> ReferenceFactory:
        """The suite's keyword answers held to FrozenReference."""
        return frozen_reference

    @pytest.fixture
    def store_factory(self, standin: PineconeStandIn) -> StoreFactory:
        ns = _ns()
        return lambda: _Ledgered(
            index="suite", api_key=KEY, controller_host=standin.url, namespace=ns
        )


@pytest.mark.usefixtures("frozen")
class TestPineconeNativeCongruence(CongruenceSuite):
    """SciFact with the real model: native keyword scores as documented, hybrid nDCG@10 within
    the suite's 0.01 of the exact in-memory reference."""

    KEYWORD_REL = 1e-4  # Pinecone keeps sparse values as float32

    @pytest.fixture
    def store_factory(self, standin: PineconeStandIn) -> StoreFactory:
        ns = _ns()
        return lambda: _Ledgered(
            index="congruence", api_key=KEY, controller_host=standin.url, namespace=ns
        )

    @pytest.fixture
    def keyword_reference(self, data: Any) -> VectorMemory:  # type: ignore[override]
        return filled(FrozenReference(), data)


# ----------------------------------------------------------------------------- URLs
def test_urls() -> None:
    store = open_store(
        "pinecone://kb-index?namespace=team&host=https://kb-abc.svc.pinecone.io&api_key=k1"
    )
    assert isinstance(store, PineconeDb)
    assert (store.index, store.namespace, store.host, store.api_key) == (
        "kb-index",
        "team",
        "https://kb-abc.svc.pinecone.io",
        "k1",
    )
    assert store.keyword_mode == "exact"
    assert open_store("pinecone://kb?keyword=native").keyword_mode == "native"  # type: ignore[attr-defined]
    for bad in ("pinecone://", "pinecone://x?nmespace=y", "pinecone://x?keyword=fts"):
        with pytest.raises(ConfigurationError):
            open_store(bad)
    with pytest.raises(ConfigurationError):
        PineconeDb(index="x", keyword="Native")  # type: ignore[arg-type]


def test_missing_api_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="API key"):
        PineconeDb(index="x").connect(SPACE)


# ----------------------------------------------------------------------------- errors
def test_wrong_api_key_is_an_authentication_error(standin: PineconeStandIn) -> None:
    """The service answers 401 to a bad key: AuthenticationError (a PermissionError)."""
    store = PineconeDb(index="suite", api_key="wrong", controller_host=standin.url)
    with pytest.raises(AuthenticationError) as info:
        store.connect(SPACE)
    assert isinstance(info.value, PermissionError)


def test_missing_index_without_create(standin: PineconeStandIn) -> None:
    store = _store(standin, index="never-made", create=False)
    assert store.stored_space() is None
    with pytest.raises(NotFoundError):
        store.connect(SPACE)
    assert "never-made" not in standin.indexes


def test_unreachable_service_is_backend_unavailable() -> None:
    store = PineconeDb(index="x", api_key=KEY, controller_host="http://127.0.0.1:9")
    with pytest.raises(BackendUnavailableError) as info:
        store.connect(SPACE)
    assert isinstance(info.value, ConnectionError)


def test_timeout_bounds_a_request_to_a_silent_server() -> None:
    """``timeout=`` reaches the SDK: a data-plane host that accepts connections and never
    answers fails the call well before the SDK's default 30 s."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nothing ever reads or answers
        host = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = PineconeDb(index="x", api_key=KEY, host=host, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            store.connect(SPACE)
        assert time.monotonic() - started < 15


def test_existing_index_of_another_dimension_or_metric(standin: PineconeStandIn) -> None:
    """An index made elsewhere: another dimension raises DimensionMismatchError, another
    metric a ConfigurationError (sparse BM25 vectors need dotproduct)."""
    standin.create_index("dim-16", 16)
    standin.create_index("cosine-8", 8, metric="cosine")
    with pytest.raises(DimensionMismatchError):
        _store(standin, index="dim-16").connect(SPACE)
    with pytest.raises(ConfigurationError, match="dotproduct"):
        _store(standin, index="cosine-8").connect(SPACE)


def test_space_recorded_per_namespace(standin: PineconeStandIn) -> None:
    """The space lives with the namespace: reopening with another embedder raises, another
    namespace of the same index is free."""
    ns = _ns()
    _store(standin, namespace=ns).connect(SPACE)
    with pytest.raises(EmbeddingSpaceMismatchError):
        _store(standin, namespace=ns).connect(EmbeddingSpace(embedder="other", dim=SPACE.dim))
    assert _store(standin, namespace=ns).stored_space() == SPACE
    assert _store(standin, namespace=_ns()).stored_space() is None


def test_direct_host_skips_the_control_plane(standin: PineconeStandIn) -> None:
    ns = _ns()
    _store(standin, namespace=ns).connect(SPACE)
    before = len(standin.log)
    direct = PineconeDb(index="suite", api_key=KEY, host=standin.index_host("suite"), namespace=ns)
    direct.connect(SPACE)
    direct.upsert(make_chunks(2), unit_vectors(2))
    assert direct.count() == 2
    assert not [p for _, p, _ in standin.log[before:] if p.startswith("/indexes")]


def test_limits_are_refused_before_writing(standin: PineconeStandIn) -> None:
    """Chunks Pinecone would refuse (too many distinct terms, too much metadata) raise
    InvalidInputError and nothing of the batch is written."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    many = " ".join(f"w{i}x" for i in range(1100))
    big = {"blob": "x" * 41_000}
    for bad in (Chunk.create("d", 0, many), Chunk.create("d", 0, "t", big)):
        with pytest.raises(InvalidInputError):
            s.upsert([*make_chunks(2), bad], unit_vectors(3))
    assert s.count() == 0


@pytest.mark.parametrize(
    "text, metadata",
    [
        ("plain words", {}),
        (
            'quotes " and \\ backslashes, \n new\tlines, \x01 control, \u2028 separators, é 日本',
            {'k"ey': ['x"y', 1, None], "nested": {"a": [1.5, {"b": "\\"}]}, "n": None, "ok": True},
        ),
        ("", {"only": "metadata"}),
    ],
)
def test_metadata_size_is_its_json_size(text: str, metadata: dict) -> None:
    """The size an upsert checks against Pinecone's 40 KB and its 2 MB requests is the size of
    the metadata as JSON, also for text that JSON escapes (computed without a second dumps)."""
    import json

    meta, size = _encode(Chunk.create("d", 0, text, metadata))
    assert size == len(json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    near = Chunk.create("d", 0, '"' * (MAX_METADATA // 4))  # each quote doubles twice
    with pytest.raises(InvalidInputError, match="bytes of Pinecone metadata"):
        _encode(near)


@pytest.mark.parametrize(
    "terms",
    [
        [f"t{i}" for i in range(10)],
        [f"term{i:05d}" for i in range(20_000)],
        [f"語彙{i}ü" * 3 for i in range(8_000)],  # multi-byte terms: more JSON than the guess
    ],
)
def test_statistics_records_stay_under_the_payload_limit_and_add_up(terms: list[str]) -> None:
    delta = {"n": 7, "l": 123.0, "a": 17.5, "df": {t: 1 + i % 5 for i, t in enumerate(terms)}}
    parts = _pack(delta)
    assert all(len(p["d"]) <= STATS_PAYLOAD for p in parts)
    back = [_unpack(p) for p in parts]
    merged: dict[str, int] = {}
    for b in back:
        merged.update(b["df"])
    assert merged == delta["df"] and sum(len(b["df"]) for b in back) == len(terms)
    assert back[0]["n"] == 7 and back[0]["l"] == 123.0 and back[0]["a"] == 17.5
    assert all("n" not in b for b in back[1:])


def test_ids_pinecone_refuses_are_mapped(standin: PineconeStandIn) -> None:
    """Non-ASCII and 600-byte chunk ids round-trip (stored under a hash)."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    chunks = [
        Chunk.create("文書", 0, "unicode id"),
        Chunk.create("d", 0, "long id", id="x" * 600),
        Chunk.create("d", 1, "tilde id", id="~abc"),
    ]
    s.upsert(chunks, unit_vectors(3))
    assert [c.id for c in s.get([c.id for c in chunks])] == [c.id for c in chunks]
    assert s.get_vectors(["x" * 600]).shape == (1, SPACE.dim)
    assert {c.id for c, _ in s.keyword("unicode long tilde", k=5)} == {c.id for c in chunks}
    assert s.delete(ids=["文書#0", "~abc"]) == 2 and s.count() == 1


def test_requests_stay_within_pinecone_limits(standin: PineconeStandIn) -> None:
    """3,000 chunks go out in upserts of <= 1,000 vectors and <= 2 MB (the stand-in refuses
    more, as the service does)."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    before = len(standin.log)
    chunks = [Chunk.create(f"d{i}", 0, f"text {i} " + "word " * 150, {"i": i}) for i in range(3000)]
    s.upsert(chunks, unit_vectors(3000, seed=5))
    ups = [n for m, p, n in standin.log[before:] if p.endswith("/vectors/upsert")]
    assert len(ups) >= 3 and max(ups) <= pinecone_standin.MAX_REQUEST_BYTES
    assert s.count() == 3000


def test_page_ids_goes_on_from_the_last_page(standin: PineconeStandIn) -> None:
    """Pinecone cannot list ids from a given id: page_ids resumes the listing where the last page
    stopped, so paging through a store costs a few list requests a page, not a listing from the
    first id each time; ids stored under a hash come in code-point order among the others."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    chunks = make_chunks(900) + [Chunk.create(f"é{i}", 0, "hashed id") for i in range(30)]
    s.upsert(chunks, unit_vectors(len(chunks), seed=9))
    before = len(standin.log)
    got: list[str] = []
    while page := s.page_ids(after=got[-1] if got else None, limit=50):
        got += page
    assert got == sorted(c.id for c in chunks)
    lists = [p for _, p, _ in standin.log[before:] if "/vectors/list" in p]
    assert len(lists) <= 3 * (len(chunks) // 50 + 1)  # listed from the first id each page: 130
    assert s.page_ids(after=got[100], limit=3) == got[101:104]  # any id, listed from the start


def test_stored_sparse_values_are_bm25_at_the_average_length_of_the_write(
    standin: PineconeStandIn,
) -> None:
    """Each chunk's sparse values are BM25's term-frequency part per term id, normalised by the
    average length the statistics held when it was written, to the last bit of the float32
    Pinecone keeps (indexes written before keep working beside new writes)."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    first = make_chunks(3)
    second = [Chunk.create("x", 0, "memory memory vector graph graph graph")]
    s.upsert(first, unit_vectors(3))
    s.upsert(second, unit_vectors(1, seed=2))
    stored = standin.indexes["suite"].namespaces[s.namespace]
    tok, (k1, b, _) = get_tokenizer(SPACE.tokenizer), SPACE.keyword_params()
    lengths = [len(tok(c.text)) for c in first + second]
    for chunks, avgdl in ((first, sum(lengths[:3]) / 3), (second, sum(lengths) / 4)):
        for c in chunks:
            tf = Counter(tok(c.text))
            norm = k1 * (1 - b + b * tf.total() / avgdl)
            want = {
                term_index(t): float(np.float32(n * (k1 + 1) / (n + norm))) for t, n in tf.items()
            }
            assert stored[c.id].sparse == want


# ----------------------------------------------------------------------------- filters
def test_translation_equals_the_reference_under_pinecone_semantics(
    standin: PineconeStandIn,
) -> None:
    """The translated filter, evaluated with Pinecone's documented semantics (strict where
    they are silent), selects exactly what vecmem.filters.matches selects: 1,000 random
    filters over varied metadata, evaluated on the stored metadata."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    chunks = make_chunks(120, metadata=filter_metadata)
    s.upsert(chunks, unit_vectors(120))
    stored = standin.indexes["suite"].namespaces[s.namespace]
    rng = random.Random(11)
    for n in range(1000):
        spec = random_filter(rng)
        f = parse_filter(spec)
        flt = to_filter(f)
        want = {c.id for c in chunks if matches(f, c.metadata)}
        if flt is True or flt is False:
            got = {c.id for c in chunks} if flt else set()
        else:
            pinecone_standin._check_filter(flt)
            got = {i for i, r in stored.items() if pinecone_standin.matches(flt, r.metadata)}
        assert got == want, f"#{n} {spec} -> {flt}"


def test_no_operator_outside_pinecones_documented_set() -> None:
    """$not, $contains and booleans in $in are not Pinecone operators: none may leak."""
    f = parse_filter({"$not": {"$or": [{"tags": {"$contains": "a"}}, {"b": {"$in": [True, 1]}}]}})
    text = repr(to_filter(f))
    assert "'$not'" not in text and "$contains" not in text and "True, 1" not in text


# ----------------------------------------------------------------------------- BM25 statistics
def test_keyword_scores_stay_exact_as_the_average_length_drifts(standin: PineconeStandIn) -> None:
    """Sparse weights are frozen at write time while avgdl moves: short documents first, then
    long ones, then deletions. Keyword results must still equal the reference, rank by rank."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    short = [Chunk.create(f"s{i}", 0, " ".join(rng.choices(words, k=3))) for i in range(60)]
    long = [Chunk.create(f"l{i}", 0, " ".join(rng.choices(words, k=40))) for i in range(60)]
    vs, vl = unit_vectors(60, seed=1), unit_vectors(60, seed=2)
    for i in range(0, 60, 10):  # many small writes: many avgdl_w values
        s.upsert(short[i : i + 10], vs[i : i + 10])
    s.upsert(long, vl)
    s.delete(ids=[c.id for c in short[:20]])
    live = short[20:] + long
    ref = reference(live, np.vstack([vs[20:], vl]))
    for q in ("alpha", "beta gamma", "kappa kappa iota", "theta alpha zeta"):
        for k in (1, 5, 30):
            _same_keyword(s, ref, q, k)


def test_a_frozen_weight_far_below_its_exact_score_still_ranks(standin: PineconeStandIn) -> None:
    """A long chunk written while the average length was small has a frozen sparse weight far
    below its current BM25 weight: Pinecone ranks it under chunks it beats exactly, so the
    rescoring must not stop before reaching it (the drift bound rho is what allows stopping)."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    short = [Chunk.create(f"s{i}", 0, "beta gamma") for i in range(30)]
    late = Chunk.create("late", 0, "alpha alpha alpha " + "filler " * 40)
    fill = [Chunk.create(f"f{i}", 0, "filler " * 40) for i in range(60)]
    medium = [Chunk.create(f"m{i}", 0, "alpha " + "filler " * 30) for i in range(10)]
    batches = [[*short, late], fill, medium]
    vectors = unit_vectors(sum(map(len, batches)), seed=12)
    i = 0
    for batch in batches:  # the average length grows from ~4 to ~28 tokens
        s.upsert(batch, vectors[i : i + len(batch)])
        i += len(batch)
    ref = reference([c for batch in batches for c in batch], vectors)
    assert [c.id for c, _ in ref.keyword("alpha", k=1)] == [late.id]
    _same_keyword(s, ref, "alpha", 1)
    _same_keyword(s, ref, "alpha", 3)


def test_statistics_follow_other_clients_and_survive_merging(standin: PineconeStandIn) -> None:
    """Writes by another store object count in this one's keyword scores; after enough writes
    the delta records are merged into one group, and a new store reads the same statistics."""
    ns = _ns()
    a, b = _store(standin, namespace=ns), _store(standin, namespace=ns)
    a.connect(SPACE)
    b.connect(SPACE)
    chunks = make_chunks(MERGE_AFTER + 12)
    vectors = unit_vectors(len(chunks), seed=4)
    for i, c in enumerate(chunks):  # one write each, alternating clients
        (a if i % 2 else b).upsert([c], vectors[i : i + 1])
    ref = reference(chunks, vectors)
    meta = standin.indexes["suite"].namespaces[a.meta_namespace]
    stats = [i for i in meta if i.startswith("stats-")]
    assert len(stats) < MERGE_AFTER, "the delta records were never merged"
    fresh = _store(standin, namespace=ns)
    fresh.connect(SPACE)
    for store in (a, b, fresh):
        for q in ("memory vector", "graph token agent"):
            _same_keyword(store, ref, q, 8)
    assert fresh._stats.n == len(chunks)


def test_rebuild_stats_repairs_drift(standin: PineconeStandIn) -> None:
    """If the statistics are lost or wrong (a crash between the chunk write and the delta
    record), rebuild_stats() recomputes them from the chunks."""
    s = _store(standin, namespace=_ns())
    s.connect(SPACE)
    chunks, vectors = make_chunks(30), unit_vectors(30)
    s.upsert(chunks, vectors)
    meta = standin.indexes["suite"].namespaces[s.meta_namespace]
    for rid in [i for i in meta if i.startswith("stats-")]:
        del meta[rid]  # simulate lost statistics
    s2 = _store(standin, namespace=s.namespace)
    s2.connect(SPACE)
    assert s2.keyword("memory", k=5) == []
    s2.rebuild_stats()
    ref = reference(chunks, vectors)
    _same_keyword(s2, ref, "memory vector", 5)


def test_own_statistics_count_before_the_listing_shows_them() -> None:
    """The service lists new records seconds after writing them: a store must count its own
    statistics records at once (and merge them) without waiting for the listing."""
    with PineconeStandIn(api_key=KEY, list_lag=3600) as lagging:
        s = _store(lagging, namespace=_ns())
        s.connect(SPACE)
        chunks = make_chunks(MERGE_AFTER + 5)
        vectors = unit_vectors(len(chunks), seed=6)
        for i, c in enumerate(chunks):
            s.upsert([c], vectors[i : i + 1])
        s.delete(ids=[chunks[0].id])
        ref = reference(chunks[1:], vectors[1:])
        for q in ("memory vector", "agent graph"):
            _same_keyword(s, ref, q, 6)
        stats = [
            i
            for i in lagging.indexes["suite"].namespaces[s.meta_namespace]
            if i.startswith("stats-")
        ]
        assert len(stats) < MERGE_AFTER


# ----------------------------------------------------------------------------- native mode only
class _Counted:
    """Counts the data-plane requests a store makes (wraps its SDK index object)."""

    def __init__(self, ix: Any) -> None:
        self._ix, self.calls = ix, Counter[str]()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._ix, name)

        def call(*a: Any, **k: Any) -> Any:
            self.calls[name] += 1
            return fn(*a, **k)

        return call if callable(fn) else fn


def test_native_keyword_is_one_query_and_lists_statistics_once_a_ttl(
    standin: PineconeStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Native mode asks Pinecone for k and returns its scores: one query a search; the statistics
    are listed beside a query once STATS_TTL has passed, and another client's writes then count."""
    import vecmem.stores.pinecone as pinecone_module

    ns = _ns()
    a, b = _store(standin, namespace=ns, keyword="native"), _store(standin, namespace=ns)
    a.connect(SPACE)
    b.connect(SPACE)
    chunks, vectors = make_chunks(40), unit_vectors(40)
    a.upsert(chunks[:20], vectors[:20])
    counted = _Counted(a._ix)
    a._ix = counted
    monkeypatch.setattr(pinecone_module, "STATS_TTL", 3600.0)
    for q in ("memory", "vector graph", "agent"):
        a.keyword(q, k=5)
    assert counted.calls == {"query": 3}
    b.upsert(chunks[20:], vectors[20:])  # another client: seen at the next listing only
    assert a._stats.n == 20
    monkeypatch.setattr(pinecone_module, "STATS_TTL", 0.0)
    counted.calls.clear()
    hits = a.keyword("memory", k=5)
    assert a._stats.n == 40 and counted.calls["list_paginated"] == 1
    (term,) = a.tokenizer("memory")  # type: ignore[misc]
    idf = a._stats.idf([term], SPACE.keyword_params()[2])[term]
    stored = standin.indexes["suite"].namespaces[ns].values()  # scored with the new idf
    weights = [r.sparse.get(pinecone_module.term_index(term), 0.0) for r in stored]
    assert [x for _, x in hits] == pytest.approx(
        sorted((idf * w for w in weights if w), reverse=True)[:5], rel=1e-6
    )


def test_native_keyword_checks_terms_when_the_idf_floor_is_negative(
    standin: PineconeStandIn, frozen: None
) -> None:
    """In a tiny corpus where most terms are in most chunks, rank_bm25's floor for negative idf is
    itself negative: chunks with the query's terms score below 0, under the records Pinecone adds
    with score 0. Native mode must still return exactly the chunks with a query term."""
    s = _Ledgered(index="suite", api_key=KEY, controller_host=standin.url, namespace=_ns())
    s.connect(SPACE)
    chunks = [
        Chunk.create(f"d{i}", 0, t)
        for i, t in enumerate(["alpha beta gamma", "alpha beta gamma", "alpha beta gamma", "delta"])
    ]
    vectors = unit_vectors(len(chunks))
    s.upsert(chunks, vectors)
    hits = s.keyword("alpha", k=5)
    assert sorted(c.id for c, _ in hits) == ["d0#0", "d1#0", "d2#0"]
    assert all(x < 0 for _, x in hits)
    _same_keyword(s, frozen_reference(chunks, vectors), "alpha", 5)


class TestPineconeHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, standin: PineconeStandIn) -> StoreFactory:
        ns = _ns()
        return lambda: _store(standin, index="hostile", namespace=ns)
