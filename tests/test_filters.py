"""The portable filter grammar: parsing (every malformed filter is a typed error), the reference
semantics of ``matches``, and the in-memory store's vectorised filters against ``matches``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecmem.errors import InvalidFilterError
from vecmem.filters import And, Cond, Not, Or, fields, matches, parse_filter
from vecmem.stores.memory import MemoryStore
from vecmem.types import Chunk, EmbeddingSpace


def test_parse_shapes() -> None:
    assert parse_filter(None) is None
    assert parse_filter({"a": 1}) == Cond("a", "eq", 1)
    assert parse_filter({"a": {"$gte": 1, "$lt": 3}}) == And(
        (Cond("a", "gte", 1), Cond("a", "lt", 3))
    )
    assert parse_filter({"a": 1, "b": "x"}) == And((Cond("a", "eq", 1), Cond("b", "eq", "x")))
    assert parse_filter({"$or": [{"a": 1}, {"b": {"$in": ["x", "y"]}}]}) == Or(
        (Cond("a", "eq", 1), Cond("b", "in", ("x", "y")))
    )
    assert parse_filter({"$not": {"a": {"$exists": True}}}) == Not(Cond("a", "exists", True))
    parsed = parse_filter({"a": 1})
    assert parse_filter(parsed) is parsed  # an already parsed tree passes through


@pytest.mark.parametrize(
    "spec",
    [
        {"a": {"$regex": "x"}},  # unknown operator
        {"$xor": [{"a": 1}]},  # unknown logical operator
        {},  # empty clause
        {"a": {}},  # empty operator dict
        {"$and": []},
        {"$or": {"a": 1}},
        {"a": {"$in": "abc"}},
        {"a": {"$in": [[1]]}},
        {"a": {"$nin": 3}},
        {"a": {"$gt": "3"}},
        {"a": {"$lt": True}},
        {"a": {"$gte": math.nan}},
        {"a": {"$exists": 1}},
        {"a": [1, 2]},  # equality with a list
        {"a": {"$eq": {"b": 1}}},
        {"a": math.nan},
        {"a": {"$contains": None}},
        {"": 1},
        {1: 1},
        [{"a": 1}],
        "a = 1",
    ],
    ids=lambda s: repr(s)[:40],
)
def test_malformed_filters_raise(spec: Any) -> None:
    """A malformed filter is an InvalidFilterError (a ValueError), never silently ignored."""
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(spec)
    assert isinstance(info.value, ValueError) and str(info.value)


def test_unknown_operator_names_the_valid_ones() -> None:
    with pytest.raises(InvalidFilterError, match=r"\$regex.*\$contains"):
        parse_filter({"a": {"$regex": "x"}})


META = {
    "n": 3,
    "f": 2.5,
    "b": True,
    "z": 0,
    "s": "red",
    "tags": ["a", "b"],
    "nums": [1, 2],
    "d": {"k": 1},
    "empty": [],
}


@pytest.mark.parametrize(
    "spec,expected",
    [
        ({"n": 3}, True),
        ({"n": 3.0}, True),  # numbers compare as numbers
        ({"n": "3"}, False),  # strings are not numbers
        ({"b": True}, True),
        ({"b": 1}, False),  # bools are not numbers...
        ({"z": False}, False),  # ...and numbers are not bools
        ({"missing": 1}, False),
        ({"missing": {"$ne": 1}}, True),  # $ne keeps chunks without the field
        ({"missing": {"$nin": [1]}}, True),
        ({"s": {"$ne": "red"}}, False),
        ({"s": {"$in": ["red", "x"]}}, True),
        ({"s": {"$nin": ["red"]}}, False),
        ({"b": {"$in": [1]}}, False),
        ({"n": {"$gt": 2}}, True),
        ({"n": {"$gt": 3}}, False),
        ({"n": {"$gte": 3}}, True),
        ({"f": {"$lt": 2.6}}, True),
        ({"f": {"$lte": 2.5}}, True),
        ({"b": {"$gt": 0}}, False),  # a bool is never compared as a number
        ({"s": {"$gt": 0}}, False),
        ({"missing": {"$lt": 10}}, False),
        ({"tags": {"$contains": "a"}}, True),
        ({"tags": {"$contains": "c"}}, False),
        ({"nums": {"$contains": 1}}, True),
        ({"nums": {"$contains": True}}, False),
        ({"s": {"$contains": "r"}}, False),  # $contains is list membership, not substring
        ({"empty": {"$contains": "a"}}, False),
        ({"tags": "a"}, False),  # $eq on a list is not membership
        ({"d": {"$exists": True}}, True),
        ({"missing": {"$exists": False}}, True),
        ({"d": {"$eq": 1}}, False),
        ({"$and": [{"n": 3}, {"s": "red"}]}, True),
        ({"$or": [{"n": 4}, {"s": "blue"}]}, False),
        ({"$not": {"n": 4}}, True),
        ({"$not": {"$or": [{"n": 3}, {"x": 1}]}}, False),
    ],
    ids=lambda v: repr(v)[:40],
)
def test_reference_semantics(spec: dict[str, Any], expected: bool) -> None:
    assert matches(parse_filter(spec), META) is expected


def test_fields() -> None:
    f = parse_filter({"$or": [{"a": 1}, {"$not": {"b": {"$exists": True}}}], "c": {"$gt": 1}})
    assert fields(f) == {"a", "b", "c"}
    assert fields(None) == set()


# ----------------------------------------------------------------------------- vectorised
_values = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0, 3.25]),
    st.booleans(),
    st.sampled_from(["a", "b", "A", ""]),
    st.lists(st.sampled_from(["a", "b", 1, 2]), max_size=3),
    st.just({"k": 1}),
)
_metas = st.dictionaries(st.sampled_from(["x", "y", "z"]), _values, max_size=3)
_scalar = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, 2.0, -1.5]),
    st.booleans(),
    st.sampled_from(["a", "b", "A"]),
)
_number = st.one_of(st.integers(-3, 3), st.sampled_from([0.5, -1.5, 2.0, 3.25]))
_field = st.sampled_from(["x", "y", "z", "w"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda f, v: {f: v}, _field, _scalar),
        st.builds(
            lambda f, op, v: {f: {op: v}},
            _field,
            st.sampled_from(["$eq", "$ne", "$contains"]),
            _scalar,
        ),
        st.builds(
            lambda f, op, v: {f: {op: v}},
            _field,
            st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
            _number,
        ),
        st.builds(
            lambda f, op, v: {f: {op: v}},
            _field,
            st.sampled_from(["$in", "$nin"]),
            st.lists(_scalar, min_size=1, max_size=3),
        ),
        st.builds(lambda f, v: {f: {"$exists": v}}, _field, st.booleans()),
    )


_filters = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=5,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    metas=st.lists(_metas, min_size=1, max_size=25),
    later=st.lists(_metas, max_size=5),
    specs=st.lists(_filters, min_size=1, max_size=4),
)
def test_memory_store_filters_equal_matches(
    metas: list[dict[str, Any]], later: list[dict[str, Any]], specs: list[dict[str, Any]]
) -> None:
    """The store's vectorised masks (built per field, extended as chunks arrive and are
    overwritten) select exactly what ``matches`` selects."""
    store = MemoryStore()
    store.connect(EmbeddingSpace(embedder="t", dim=2))
    rng = np.random.default_rng(0)

    def put(items: list[dict[str, Any]], offset: int) -> None:
        chunks = [Chunk.create(f"d{offset + i}", 0, "text", m) for i, m in enumerate(items)]
        v = rng.standard_normal((len(chunks), 2)).astype(np.float32)
        store.upsert(chunks, v / np.linalg.norm(v, axis=1, keepdims=True))

    put(metas, 0)
    current = {f"d{i}#0": m for i, m in enumerate(metas)}
    for spec in specs:
        f = parse_filter(spec)
        assert store.count(f) == sum(matches(f, m) for m in current.values())
    if later:  # overwrite the first chunks and add new ones: columns must follow
        put(later, 0)
        put(later, len(metas))
        current.update({f"d{i}#0": m for i, m in enumerate(later)})
        current.update({f"d{len(metas) + i}#0": m for i, m in enumerate(later)})
    for spec in specs:
        f = parse_filter(spec)
        want = {i for i, m in current.items() if matches(f, m)}
        assert store.count(f) == len(want)
        got = store.query(np.array([1.0, 0.0], np.float32), k=len(current), filter=f)
        assert {c.id for c, _ in got} == want
