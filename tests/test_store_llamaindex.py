"""The conformance suites on the LlamaIndex bridge over two real LlamaIndex stores
(``SimpleVectorStore`` and ``QdrantVectorStore`` on an in-process Qdrant), plus the bridge's
promises: filters reach the store as an ``IN`` on the chunk id, or are refused."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("llama_index.core", reason="pip install 'vecmem[llamaindex]'")

from vecmem.errors import UnsupportedFilterError
from vecmem.filters import parse_filter
from vecmem.stores.llamaindex import LlamaIndex, node_id
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import SPACE, StoreFactory, make_chunks, unit_vectors


def simple() -> Any:
    from llama_index.core.vector_stores import SimpleVectorStore

    return SimpleVectorStore()


def qdrant(dim: int) -> Any:
    pytest.importorskip(
        "llama_index.vector_stores.qdrant", reason="pip install llama-index-vector-stores-qdrant"
    )
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    return QdrantVectorStore("vecmem", client=QdrantClient(":memory:"))


class TestLlamaIndexSimple(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LlamaIndex(simple())


class TestLlamaIndexQdrant(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LlamaIndex(qdrant)


class TestLlamaIndexSimpleCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LlamaIndex(simple())


class TestLlamaIndexQdrantCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LlamaIndex(qdrant)


def test_node_ids_are_uuids_of_the_chunk_ids() -> None:
    import uuid

    assert uuid.UUID(node_id("doc#0")) and node_id("doc#0") != node_id("doc#1")


def test_filters_none_refuses_filtered_searches() -> None:
    store = LlamaIndex(simple(), filters="none")
    store.connect(SPACE)
    store.upsert(make_chunks(4, metadata=lambda i: {"flag": i % 2 == 0}), unit_vectors(4))
    with pytest.raises(UnsupportedFilterError):
        store.query(unit_vectors(1)[0], k=2, filter=parse_filter({"flag": True}))
    assert store.count(parse_filter({"flag": True})) == 2


def test_booleans_are_not_numbers_through_the_simple_store() -> None:
    """LlamaIndex's own filters call True == 1; through the bridge {"flag": 1} must not match
    True."""
    store = LlamaIndex(simple())
    store.connect(SPACE)
    store.upsert(make_chunks(2, metadata=lambda i: {"flag": True if i else 1}), unit_vectors(2))
    assert [
        c.id for c, _ in store.query(unit_vectors(2)[1], k=2, filter=parse_filter({"flag": True}))
    ] == ["doc1#0"]


@pytest.mark.parametrize("name", ["llamaindex", "llama_index", "llamaindex_adapter"])
def test_registered_by_name_and_aliases(name: str) -> None:
    from vecmem.registry import KNOWLEDGE_STORES

    wrapped = simple()
    store = KNOWLEDGE_STORES.create(name, store=wrapped)
    assert isinstance(store, LlamaIndex) and store.store is wrapped


class TestLlamaIndexSimpleHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LlamaIndex(simple())
