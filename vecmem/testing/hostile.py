"""The hostile-input suite: bad and adversarial input through the public API, on any store.

A backend's test file subclasses :class:`HostileInputSuite` and overrides ``store_factory``
exactly as for :class:`~vecmem.testing.StoreSuite` (a zero-argument callable returning a new,
unconnected store)::

    from vecmem.testing import HostileInputSuite

    class TestMyStoreHostile(HostileInputSuite):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(path=tmp_path / "db")

Every test drives a :class:`~vecmem.memory.VectorMemory` on the store, seeded with a few
documents whose metadata is itself hostile (format strings, quotes, ``±2**53``), beside the same
memory on the exact reference (:class:`~vecmem.stores.memory.MemoryStore`). Each input must get
either **a typed error** (a :class:`~vecmem.errors.VecmemError` of the expected kind) **with the
store exactly unchanged** (count and a checksum of every chunk and vector), or **the reference's
answer**. A table holds the known cases (issue 13: ``add(None)``, lone surrogates, metadata nested
5,000 deep, integers beyond ``2**53``, ``±inf`` filter values, format strings in filter values,
broken embedders, zero vectors, ``k=True``...); hypothesis generates metadata, ids and filters
(a bounded number of examples, so the suite stays within CI time on two cores).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecmem.embedders import HashingEmbedder
from vecmem.errors import (
    DimensionMismatchError,
    InvalidFilterError,
    InvalidInputError,
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.memory import VectorMemory
from vecmem.stores.base import VectorStore
from vecmem.stores.memory import MemoryStore
from vecmem.testing._factory import FactorySuite
from vecmem.testing.store_suite import StoreFactory, typed
from vecmem.types import content_hash

DIM = 64
EXAMPLES = 25
"""Hypothesis examples per property (each is a write or a few searches on the backend)."""
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# strings that broke, or could break, a translation to SQL, a predicate or a path
HOSTILE_STRINGS = [
    "{c}",
    '{"a": 1}',
    "{c:>50}",
    "{0}",
    "%s",
    "%(x)s",
    "it's",
    "'; DROP TABLE x; --",
    'say "hi"',
    "back\\slash",
    "vm_s_s",
    "a.b",
    "$eq",
    "ünïcödé",
    "日本語",
    "\u2028",
    "🙂",
    " ",
    "NULL",
    "null",
    "true",
    "1",
    "1.0",
]
HOSTILE_NUMBERS: list[Any] = [
    0,
    -1,
    1,
    2**31,
    2**53 - 1,
    2**53,
    -(2**53),
    0.5,
    -0.0,
    1e300,
    -1e-300,
]

SEED_IDS = [f"seed{i}" for i in range(12)]
SEED_TEXTS = [
    f"seed document {i} about {w}"
    for i, w in enumerate(
        [
            "memory",
            "vector",
            "search",
            "index",
            "cosine",
            "keyword",
            "ranking",
            "agent",
            "retrieval",
            "chunk",
            "embedding",
            "query",
        ]
    )
]


def seed_metadata(i: int) -> dict[str, Any]:
    """Hostile but valid metadata for seed document ``i``."""
    meta: dict[str, Any] = {
        "s": HOSTILE_STRINGS[i % len(HOSTILE_STRINGS)],
        "n": HOSTILE_NUMBERS[i % len(HOSTILE_NUMBERS)],
        "b": i % 3 == 0,
        "tags": [HOSTILE_STRINGS[(i + 1) % len(HOSTILE_STRINGS)], i],
    }
    if i % 4 == 1:
        meta["{c}"] = "field named {c}"
    if i % 5 == 2:
        meta["it's"] = i
    return meta


def fingerprint(mem: VectorMemory, document_ids: Sequence[str]) -> tuple[int, str]:
    """The chunk count and a SHA-256 of every chunk of ``document_ids`` (ids, text, metadata
    with types kept apart, hash) and of its stored vector: equal before and after a refused
    call, or something was written."""
    chunks = sorted(mem.get(list(document_ids)), key=lambda c: c.id)
    vectors = (
        mem.store.get_vectors([c.id for c in chunks]) if chunks else np.zeros((0, DIM), np.float32)
    )
    h = hashlib.sha256()
    for c, v in zip(chunks, vectors):
        h.update(
            repr(
                (c.id, c.document_id, c.position, c.text, typed(dict(c.metadata)), c.content_hash)
            ).encode("utf-8", "backslashreplace")
        )
        h.update(np.asarray(v, np.float32).tobytes())
    return mem.count(), h.hexdigest()


def _deep(depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return out


def _deep_filter(depth: int) -> dict[str, Any]:
    f: dict[str, Any] = {"s": "x"}
    for _ in range(depth):
        f = {"$not": f}
    return f


Call = Callable[[VectorMemory], Any]

BAD_WRITES: list[tuple[str, Call, type[VecmemError]]] = [
    ("add(None)", lambda m: m.add(None), InvalidInputError),  # type: ignore[arg-type]
    ("add(42)", lambda m: m.add(42), InvalidInputError),  # type: ignore[arg-type]
    ("add(bytes)", lambda m: m.add(b"some bytes"), InvalidInputError),  # type: ignore[arg-type]
    (
        "bytes in the list",
        lambda m: m.add(["fine text", b"x"]),  # type: ignore[list-item]
        InvalidInputError,
    ),
    (
        "metadata is a str",
        lambda m: m.add("text", metadata="str"),  # type: ignore[arg-type]
        InvalidInputError,
    ),
    ("metadata list too short", lambda m: m.add(["a b", "c d"], metadata=[{}]), InvalidInputError),
    ("ids count", lambda m: m.add(["a b", "c d"], ids=["one"]), InvalidInputError),
    ("id None", lambda m: m.add(["a b"], ids=[None]), InvalidInputError),  # type: ignore[list-item]
    ("empty text", lambda m: m.add("   "), InvalidInputError),
    ("lone surrogate in text", lambda m: m.add("a \ud800 b"), InvalidInputError),
    (
        "lone surrogate in the 2nd text",
        lambda m: m.add(["fine text", "bad \udfff"]),
        InvalidInputError,
    ),
    ("lone surrogate in an id", lambda m: m.add("text", ids=["id\ud800"]), InvalidInputError),
    (
        "lone surrogate in a metadata value",
        lambda m: m.add("text", metadata={"k": "\ud800"}),
        InvalidInputError,
    ),
    (
        "lone surrogate in a metadata key",
        lambda m: m.add("text", metadata={"\ud800": 1}),
        InvalidInputError,
    ),
    (
        "lone surrogate in a nested value",
        lambda m: m.add("text", metadata={"k": [{"x": "\ud800"}]}),
        InvalidInputError,
    ),
    (
        "metadata 5,000 deep",
        lambda m: m.add("text", metadata={"d": _deep(5000)}),
        InvalidInputError,
    ),
    ("int 2**53 + 1", lambda m: m.add("text", metadata={"n": 2**53 + 1}), InvalidInputError),
    ("int -(2**53) - 1", lambda m: m.add("text", metadata={"n": -(2**53) - 1}), InvalidInputError),
    ("int 2**1100", lambda m: m.add("text", metadata={"n": 2**1100}), InvalidInputError),
    (
        "int 2**1100 in a list",
        lambda m: m.add("text", metadata={"n": [1, 2**1100]}),
        InvalidInputError,
    ),
    ("NaN metadata", lambda m: m.add("text", metadata={"x": math.nan}), InvalidInputError),
    ("inf metadata", lambda m: m.add("text", metadata={"x": -math.inf}), InvalidInputError),
    ("a set in metadata", lambda m: m.add("text", metadata={"x": {1}}), InvalidInputError),
    ("a non-str nested key", lambda m: m.add("text", metadata={"x": {1: "a"}}), InvalidInputError),
    ("an empty metadata key", lambda m: m.add("text", metadata={"": 1}), InvalidInputError),
    ("delete(42)", lambda m: m.delete(42), InvalidInputError),  # type: ignore[arg-type]
    (
        "delete by an inf filter",
        lambda m: m.delete(filter={"n": {"$lt": math.inf}}),
        InvalidFilterError,
    ),
    ("delete by 2**53 + 1", lambda m: m.delete(filter={"n": 2**53 + 1}), InvalidFilterError),
]

_TABLE_IDS = [
    "one",
    *(
        content_hash(t)[:32]
        for t in ("fine text", "text", "a b", "c d", "new text one", "new text two")
    ),
]
"""The documents the write table would create if a refused call wrote anyway."""

_VEC = [1.0] + [0.0] * (DIM - 1)
BAD_READS: list[tuple[str, Call, type[VecmemError]]] = [
    ("get(None)", lambda m: m.get(None), InvalidInputError),  # type: ignore[arg-type]
    ("get(42)", lambda m: m.get(42), InvalidInputError),  # type: ignore[arg-type]
    ("get([None])", lambda m: m.get([None]), InvalidInputError),  # type: ignore[list-item]
    ("query None", lambda m: m.search(None), InvalidInputError),  # type: ignore[arg-type]
    ("query with a lone surrogate", lambda m: m.search("x \ud800"), InvalidInputError),
    ("k=True", lambda m: m.search("memory", k=True), InvalidInputError),
    ("k=0", lambda m: m.search("memory", k=0), InvalidInputError),
    ("k=2.5", lambda m: m.search("memory", k=2.5), InvalidInputError),  # type: ignore[arg-type]
    ("candidates=-5", lambda m: m.search("memory", candidates=-5), InvalidInputError),
    ("candidates=True", lambda m: m.search("memory", candidates=True), InvalidInputError),
    ("mode", lambda m: m.search("memory", mode="fuzzy"), InvalidInputError),  # type: ignore[arg-type]
    ("search_by_vector k=True", lambda m: m.search_by_vector(_VEC, k=True), InvalidInputError),
    ("zero query vector", lambda m: m.search_by_vector([0.0] * DIM), InvalidInputError),
    ("zero vector= in search", lambda m: m.search("memory", vector=[0.0] * DIM), InvalidInputError),
    ("NaN query vector", lambda m: m.search_by_vector([math.nan] * DIM), InvalidInputError),
    ("query vector of strings", lambda m: m.search_by_vector(["a"] * DIM), InvalidInputError),  # type: ignore[list-item]
    ("query vector too short", lambda m: m.search_by_vector([1.0, 0.0]), DimensionMismatchError),
    ("filter $lt inf", lambda m: m.count({"n": {"$lt": math.inf}}), InvalidFilterError),
    ("filter $gt -inf", lambda m: m.count({"n": {"$gt": -math.inf}}), InvalidFilterError),
    ("filter $eq inf", lambda m: m.count({"n": math.inf}), InvalidFilterError),
    ("filter $in NaN", lambda m: m.count({"n": {"$in": [1, math.nan]}}), InvalidFilterError),
    ("filter 2**53 + 1", lambda m: m.count({"n": 2**53 + 1}), InvalidFilterError),
    ("filter $gte 2**1100", lambda m: m.count({"n": {"$gte": 2**1100}}), InvalidFilterError),
    ("filter $in 2**64", lambda m: m.count({"n": {"$in": [2**64]}}), InvalidFilterError),
    (
        "filter $contains 2**53 + 1",
        lambda m: m.count({"tags": {"$contains": 2**53 + 1}}),
        InvalidFilterError,
    ),
    ("filter 5,000 $not deep", lambda m: m.count(_deep_filter(5000)), InvalidFilterError),
    ("filter value with a lone surrogate", lambda m: m.count({"s": "\ud800"}), InvalidFilterError),
    ("filter key with a lone surrogate", lambda m: m.count({"\ud800": 1}), InvalidFilterError),
    (
        "filter in search",
        lambda m: m.search("memory", filter={"n": {"$lt": math.inf}}),
        InvalidFilterError,
    ),
]


class BrokenEmbedder:
    """An embedder that answers wrongly (``mode``: ``wide``, ``narrow``, ``rows``, ``zeros``,
    ``nan``, ``text``) under the name of the seed embedder, so the store accepts its space."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.inner = HashingEmbedder(DIM)
        self.name = self.inner.name

    @property
    def dim(self) -> int:
        return DIM

    def embed(self, texts: Sequence[str]) -> Any:
        v = self.inner.embed(texts)
        if self.mode == "wide":
            return np.hstack([v, v])
        if self.mode == "narrow":
            return v[:, : DIM // 2]
        if self.mode == "rows":
            return v[:-1]
        if self.mode == "zeros":
            v[-1] = 0.0
            return v
        if self.mode == "nan":
            v[0, 0] = math.nan
            return v
        return [["not a number"] * DIM for _ in texts]


# --------------------------------------------------------------------------- hypothesis
_scalar = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=12),
    st.sampled_from(
        [*HOSTILE_NUMBERS, 2**53 + 1, -(2**53) - 1, 2**64, 2**1100, math.inf, math.nan]
    ),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["\ud800", "a\udfffb", "\x00"]),
)
_key = st.one_of(
    st.sampled_from(
        ["s", "n", "b", "tags", "{c}", "it's", "a.b", "$x", "", "\ud800", "vm_keys", "_vm"]
    ),
    st.text(min_size=1, max_size=8),
)
_json = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(_key, inner, max_size=3)),
    max_leaves=8,
)
metadata_strategy = st.dictionaries(_key, _json, max_size=4)
"""Metadata dicts mixing valid values with every kind the rule refuses."""
id_strategy = st.one_of(
    st.sampled_from(["{c}", "a#0", "it's", "../x", "\ud800", " ", "%s", "seed0"]),
    st.text(min_size=1, max_size=16),
)

_fields = st.sampled_from(["s", "n", "b", "tags", "{c}", "it's", "missing"])
_filter_value = st.one_of(
    st.sampled_from(HOSTILE_STRINGS + ["{c:>50000000}", "field named {c}"]),
    st.sampled_from(HOSTILE_NUMBERS + [2**53 + 1, 2**1100, math.inf, -math.inf, math.nan]),
    st.integers(min_value=-(2**54), max_value=2**54),
    st.booleans(),
)


def _condition(field: str, op: str, value: Any, values: list[Any]) -> dict[str, Any]:
    if op == "$exists":
        return {field: {op: value is True or not values}}
    if op in ("$in", "$nin"):
        return {field: {op: values}}
    return {field: {op: value}}


_cond = st.builds(
    _condition,
    _fields,
    st.sampled_from(
        ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$exists"]
    ),
    _filter_value,
    st.lists(_filter_value, max_size=3),
)
filter_strategy = st.recursive(
    _cond,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
        inner.map(lambda x: {"$not": x}),
    ),
    max_leaves=5,
)
"""Filters over the seed fields with hostile values (some refused by the rule)."""


def _outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", fn()
    except VecmemError as exc:
        return "error", exc


# --------------------------------------------------------------------------- the suite
class HostileInputSuite(FactorySuite):
    """Typed error and an unchanged store, or the reference's answer (see the module doc)."""

    @staticmethod
    def _seeded(store: VectorStore) -> VectorMemory:
        mem = VectorMemory(store=store, embedder=HashingEmbedder(DIM))
        mem.add(SEED_TEXTS, metadata=[seed_metadata(i) for i in range(len(SEED_IDS))], ids=SEED_IDS)
        return mem

    @pytest.fixture
    def memory(self, store_factory: StoreFactory) -> Iterator[VectorMemory]:
        mem = self._seeded(store_factory())
        yield mem
        mem.close()

    @pytest.fixture
    def reference(self) -> VectorMemory:
        return self._seeded(MemoryStore())

    def assert_refused(
        self, mem: VectorMemory, call: Call, error: type[VecmemError], ids: Sequence[str] = ()
    ) -> VecmemError:
        before = fingerprint(mem, [*SEED_IDS, *ids])
        with pytest.raises(error) as info:
            call(mem)
        assert isinstance(info.value, VecmemError)
        after = fingerprint(mem, [*SEED_IDS, *ids])
        assert after == before, "a refused call changed the store"
        return info.value

    # ------------------------------------------------------------------ the table
    def check_table(
        self,
        mem: VectorMemory,
        table: Sequence[tuple[str, Call, type[VecmemError]]],
        ids: Sequence[str] = (),
    ) -> None:
        """Run every case of ``table`` on one seeded store (a refused call changes nothing, so
        the cases cannot disturb each other; one store instead of one per case keeps the suite
        fast on server backends) and report every case that failed, by name."""
        failures = []
        for name, call, error in table:
            before = fingerprint(mem, [*SEED_IDS, *ids])
            try:
                call(mem)
            except error:
                pass
            except Exception as exc:  # noqa: BLE001 - reported with the case's name below
                failures.append(
                    f"{name}: {type(exc).__name__}: {exc!s:.200}, expected {error.__name__}"
                )
                continue
            else:
                failures.append(f"{name}: no error, expected {error.__name__}")
            if fingerprint(mem, [*SEED_IDS, *ids]) != before:
                failures.append(f"{name}: the refused call changed the store")
        assert not failures, "\n".join(failures)

    def test_bad_writes_are_refused_and_change_nothing(self, memory: VectorMemory) -> None:
        """Each bad add/delete of :data:`BAD_WRITES` raises its typed error and the store keeps
        every chunk and vector as it was (nothing half-written, not even the valid texts of the
        same call)."""
        self.check_table(memory, BAD_WRITES, ids=_TABLE_IDS)

    def test_bad_reads_are_refused(self, memory: VectorMemory) -> None:
        """Each bad get/search/count of :data:`BAD_READS` raises its typed error (never a wrong
        answer, a raw OverflowError, RecursionError or numpy error) and changes nothing."""
        self.check_table(memory, BAD_READS)

    @pytest.mark.parametrize(
        "mode, error",
        [
            ("wide", DimensionMismatchError),
            ("narrow", DimensionMismatchError),
            ("rows", InvalidInputError),
            ("zeros", InvalidInputError),
            ("nan", InvalidInputError),
            ("text", InvalidInputError),
        ],
    )
    def test_broken_embedder_is_caught(
        self, memory: VectorMemory, mode: str, error: type[VecmemError]
    ) -> None:
        """An embedder returning the wrong width, too few rows, a zero or NaN row or no numbers
        raises a typed error naming it, for a write (store unchanged) and for a query."""
        broken = VectorMemory(store=memory.store, embedder=BrokenEmbedder(mode))
        err = self.assert_refused(
            broken, lambda m: m.add(["new text one", "new text two"]), error, ids=_TABLE_IDS
        )
        assert "hashing" in str(err)
        with pytest.raises(error):
            broken.search("memory", mode="vector")

    def test_integers_at_the_float64_bound_are_exact(
        self, memory: VectorMemory, reference: VectorMemory
    ) -> None:
        """Integers up to ±2**53 and any finite float are stored and compared exactly: 2**53 - 1
        and 2**53 are told apart by every filter operator, as by the reference, and read back
        as they were given."""
        near: dict[str, Any] = {
            "edge-lo": 2**53 - 1,
            "edge-hi": 2**53,
            "edge-neg": -(2**53),
            "edge-51": 2**51 + 1,
            "f-long": 123456789.12345679,
            "f-stamp": 1733560000.123456,
            "f-tiny": 2e-63,
            "f-big": 9007199254740991.0,
            "f-ulp": 4060815241312630.0,
        }
        for mem in (memory, reference):
            mem.add(
                [f"edge {k}" for k in near],
                ids=list(near),
                metadata=[{"big": v} for v in near.values()],
            )
        for doc, v in near.items():  # read back exactly, type kept (Chroma once read floats off)
            got = [c.metadata["big"] for c in memory.get(doc)]
            assert got == [v] and type(got[0]) is type(v), (doc, got, v)
        for f in [
            {"big": 2**53},
            {"big": 2**53 - 1},
            {"big": {"$gt": 2**53 - 1}},
            {"big": {"$gte": 2**53}},
            {"big": {"$lt": 2**53}},
            {"big": {"$lte": -(2**53)}},
            {"big": {"$in": [2**53 - 1, -(2**53)]}},
            {"big": {"$ne": 2**53}},
            {"big": {"$gt": 9.007199254740991e15}},
            {"big": 123456789.12345679},
            {"big": {"$gt": 1733560000.123456}},
            {"big": 4060815241312630.0},
        ]:
            self.assert_same_filter(memory, reference, f)

    def test_format_strings_in_filter_values(self, memory: VectorMemory) -> None:
        """Filter values are data, never templates: ``"{c}"`` matches only the chunk holding
        "{c}", ``'{"a": 1}'`` its own, and ``"{c:>50000000}"`` nothing (no 50 MB predicate)."""
        by_value: dict[str, list[str]] = {}
        for i in range(len(SEED_IDS)):
            by_value.setdefault(seed_metadata(i)["s"], []).append(f"seed{i}")
        for value in ["{c}", '{"a": 1}', "{c:>50}", "%s", "it's", "back\\slash", "vm_s_s"]:
            want = sorted(by_value[value])
            assert memory.count({"s": value}) == len(want), value
            got = memory.search("seed document", k=20, mode="vector", filter={"s": value})
            assert sorted(h.document_id for h in got) == want, value
        assert memory.count({"s": "{c:>50000000}"}) == 0
        assert memory.count({"s": {"$in": ["{c:>50000000}", "{0}{1}"]}}) == 0
        assert memory.count({"{c}": "field named {c}"}) == sum(i % 4 == 1 for i in range(12))

    # ------------------------------------------------------------------ properties
    def assert_same_filter(self, memory: VectorMemory, reference: VectorMemory, f: Any) -> None:
        want_kind, want = _outcome(lambda: reference.count(f))
        got_kind, got = _outcome(lambda: memory.count(f))
        if isinstance(got, UnsupportedFilterError):
            return  # declared, never silently wrong
        if want_kind == "error":
            assert got_kind == "error" and type(got) is type(want), (f, got)
            return
        assert got_kind == "ok", (f, got)
        assert got == want, f
        ids = sorted(h.id for h in memory.search("seed document", k=50, mode="vector", filter=f))
        ref = sorted(h.id for h in reference.search("seed document", k=50, mode="vector", filter=f))
        assert ids == ref, f

    def test_generated_filters_agree_with_the_reference(
        self, memory: VectorMemory, reference: VectorMemory
    ) -> None:
        """Generated filters (hostile strings, numbers at and beyond ±2**53, ±inf, NaN, nested
        logic) give the reference's count and hits, or the reference's typed error."""

        @_SETTINGS
        @given(f=filter_strategy)
        def check(f: Any) -> None:
            self.assert_same_filter(memory, reference, f)

        check()

    def test_generated_metadata_round_trips_or_is_refused(
        self, memory: VectorMemory, reference: VectorMemory
    ) -> None:
        """Generated metadata and ids: the reference's typed error with the store unchanged,
        or stored and read back exactly (types kept: 1, 1.0 and True stay apart)."""
        counter = itertools.count()

        @_SETTINGS
        @given(meta=metadata_strategy, doc_id=id_strategy)
        def check(meta: dict[str, Any], doc_id: str) -> None:
            doc_id = f"{doc_id}-{next(counter)}" if doc_id != "\ud800" else doc_id
            text = f"generated text {doc_id!r}"
            want_kind, want = _outcome(lambda: reference.add(text, metadata=meta, ids=[doc_id]))
            if want_kind == "error":
                assert isinstance(want, InvalidInputError), want
                self.assert_refused(
                    memory,
                    lambda m: m.add(text, metadata=meta, ids=[doc_id]),
                    InvalidInputError,
                    ids=[] if "\ud800" in doc_id else [doc_id],
                )
                return
            before = fingerprint(memory, SEED_IDS)
            got_kind, got = _outcome(lambda: memory.add(text, metadata=meta, ids=[doc_id]))
            if got_kind == "error":  # a limit of this backend (e.g. NUL in PostgreSQL text)
                assert isinstance(got, InvalidInputError), got
                assert memory.get(doc_id) == []
                assert fingerprint(memory, SEED_IDS) == before
                return
            stored = memory.get(doc_id)
            assert len(stored) == 1
            assert typed(dict(stored[0].metadata)) == typed(_as_json(meta)), doc_id
            assert stored[0].text == text

        check()

    def test_refused_write_leaves_searches_right(
        self, memory: VectorMemory, reference: VectorMemory
    ) -> None:
        """After every refused write of the table, each seed document is still found first by
        its own text in every mode (nothing shifted, as a failed write once did)."""
        for _, call, _error in BAD_WRITES:
            try:
                call(memory)
            except VecmemError:
                pass
        for doc, text in zip(SEED_IDS, SEED_TEXTS):
            for mode in ("vector", "keyword", "hybrid"):
                hits = memory.search(text, k=1, mode=mode)
                assert hits and hits[0].document_id == doc, (mode, doc, hits[:1])
        assert memory.count() == reference.count()


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists)."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    return value


__all__ = [
    "BAD_READS",
    "BAD_WRITES",
    "HostileInputSuite",
    "filter_strategy",
    "fingerprint",
    "metadata_strategy",
]
