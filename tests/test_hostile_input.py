"""Hostile input outside the stores (issue 13, findings 7-9): the number rule, URLs, embedder
names, empty paths, clear messages, and data stored by an older vecmem that the rule now refuses.
The per-backend table and properties are :class:`vecmem.testing.HostileInputSuite`, run by each
``tests/test_store_*.py``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from vecmem import VectorMemory
from vecmem import memory as facade
from vecmem.db import Database
from vecmem.embedders import HashingEmbedder, resolve_embedder
from vecmem.errors import ConfigurationError, InvalidFilterError, InvalidInputError
from vecmem.filters import matches, parse_filter
from vecmem.stores import memory as memory_module
from vecmem.stores import open_store
from vecmem.stores.base import validate_vectors
from vecmem.stores.embedded import EmbeddedStore


# ----------------------------------------------------------------------------- the number rule
@pytest.mark.parametrize(
    "value",
    [2**53 + 1, -(2**53) - 1, 2**64, 2**1100, math.inf, -math.inf, math.nan],
    ids=["2**53+1", "-2**53-1", "2**64", "2**1100", "inf", "-inf", "nan"],
)
@pytest.mark.parametrize(
    "op", ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains"]
)
def test_filter_numbers_beyond_float64_are_refused(op: str, value: Any) -> None:
    """Every operator refuses non-finite numbers and integers beyond ±2**53, naming the field
    (MemoryStore compared 2**53 + 1 as 2**53; pgvector and LanceDB raised on ±inf)."""
    operand = [1, value] if op in ("$in", "$nin") else value
    with pytest.raises(InvalidFilterError, match="'n'"):
        parse_filter({"n": {op: operand}})


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**53 - 1, 1e300, -0.0, 0.5])
def test_filter_numbers_within_the_bound_are_exact(value: Any) -> None:
    f = parse_filter({"n": value})
    assert matches(f, {"n": value})
    if isinstance(value, int) and abs(value) == 2**53:
        assert not matches(f, {"n": value - 1 if value > 0 else value + 1})


def test_big_int_message_suggests_a_string() -> None:
    mem = VectorMemory(embedder=HashingEmbedder(16))
    with pytest.raises(InvalidInputError, match=r"metadata\['order'\].*as a string"):
        mem.add("x", metadata={"order": 12345678901234567890})
    with pytest.raises(InvalidFilterError, match=r"'order'.*as a string"):
        mem.count({"order": 12345678901234567890})


def test_ints_stored_by_an_older_vecmem_stay_readable_and_filterable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An embedded store holding integers beyond the bound (written before the rule) opens, reads
    them back exactly, and filters on the field answer exactly instead of raising OverflowError
    (2**1100) or rounding 2**53 + 1 onto 2**53."""
    old = {"huge": 2**1100, "above": 2**53 + 1, "below": -(2**63), "edge": 2**53, "small": 5}
    with monkeypatch.context() as mp:  # the old write path: vectors checked, metadata not
        mp.setattr(facade, "check_metadata", lambda meta, where: dict(meta or {}), raising=False)
        mp.setattr(
            memory_module,
            "validate_batch",
            lambda chunks, vectors, dim: validate_vectors(vectors, len(chunks), dim),
        )
        mem = VectorMemory(tmp_path / "kb", embedder=HashingEmbedder(16))
        mem.add([f"doc {k}" for k in old], ids=list(old), metadata=[{"n": v} for v in old.values()])
        mem.close()
    mem = VectorMemory(tmp_path / "kb", embedder=HashingEmbedder(16))
    assert {k: mem.get(k)[0].metadata["n"] for k in old} == old

    def ids(f):
        return sorted(h.document_id for h in mem.search("doc", k=10, mode="vector", filter=f))

    assert ids({"n": 2**53}) == ["edge"]
    assert ids({"n": {"$gt": 2**53}}) == ["above", "huge"]
    assert ids({"n": {"$gte": 2**53}}) == ["above", "edge", "huge"]
    assert ids({"n": {"$lt": -(2**53)}}) == ["below"]
    assert ids({"n": {"$ne": 2**53}}) == ["above", "below", "huge", "small"]
    assert mem.count({"n": {"$lte": 5}}) == 2
    mem.add("a new document", ids=["new"], metadata={"n": 1})  # writes resume
    assert mem.count() == 6


# ----------------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "url",
    [
        "chroma+http://[::1",
        "qdrant+http://[::1",
        "chroma+http://h:port",
        "pinecone://[x",
        "lancedb://[::1",
    ],
)
def test_malformed_store_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        VectorMemory(url, embedder=HashingEmbedder(8))


@pytest.mark.parametrize(
    "url", ["sqlite://:bad:port/x", "postgresql://u@h:notaport/db", "mysql://[::1/db"]
)
def test_malformed_database_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError, match="malformed"):
        Database(url)


@pytest.mark.parametrize(
    "name",
    [
        "hashing-abc",
        "hashing-0",
        "hashing--5",
        "hashing-",
        "hashingx",
        "hashing-1.5",
        "hashing-٣",
        "  ",
    ],
)
def test_bad_embedder_names_are_configuration_errors(name: str) -> None:
    with pytest.raises(ConfigurationError):
        resolve_embedder(name)
    assert resolve_embedder("hashing-12").dim == 12 and resolve_embedder("hashing").dim == 256


@pytest.mark.parametrize("target", ["", Path("")])
def test_an_empty_path_is_refused_not_the_current_directory(
    target: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``VectorMemory("")`` opened the current directory as a store; ``Path("")`` is ``"."``,
    which is a real folder name, so only the empty string is refused."""
    monkeypatch.chdir(tmp_path)
    if target == "":
        with pytest.raises(ConfigurationError, match="empty"):
            VectorMemory(target, embedder=HashingEmbedder(8))
        with pytest.raises(ConfigurationError):
            open_store("")
        assert list(tmp_path.iterdir()) == []
    else:
        assert isinstance(open_store(target), EmbeddedStore)


@pytest.mark.parametrize("candidates", [0, -5, True, 2.5, "10"])
def test_memory_candidates_must_be_a_positive_int(candidates: Any) -> None:
    with pytest.raises(ConfigurationError):
        VectorMemory(embedder=HashingEmbedder(8), candidates=candidates)


# ----------------------------------------------------------------------------- messages
def test_messages_say_what_was_given() -> None:
    mem = VectorMemory(embedder=HashingEmbedder(16))
    with pytest.raises(InvalidInputError, match="got bytes: decode it first"):
        mem.add(b"some bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="metadata must be a dict .* got str"):
        mem.add("one text", metadata="str")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="got NoneType"):
        mem.add(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"text 1 .* lone surrogate '\\udfff'"):
        mem.add(["ok", "bad \udfff"])
    with pytest.raises(InvalidInputError, match="nested deeper than 64"):
        deep: dict[str, Any] = {}
        cur = deep
        for _ in range(5000):
            cur["a"] = {}
            cur = cur["a"]
        mem.add("x", metadata={"d": deep})
    assert mem.count() == 0
