"""The conformance suites on the LangChain bridge over two real LangChain stores
(``InMemoryVectorStore`` and FAISS), plus the bridge's own promises: filters are translated or
refused, never dropped; vecmem's vectors are the ones stored."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

pytest.importorskip("langchain_core", reason="pip install 'vecmem[langchain]'")

from vecmem.errors import UnsupportedFilterError
from vecmem.filters import parse_filter
from vecmem.stores.langchain import LangChain
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import SPACE, StoreFactory, make_chunks, unit_vectors


def in_memory(emb: Any) -> Any:
    from langchain_core.vectorstores import InMemoryVectorStore

    return InMemoryVectorStore(emb)


def faiss_store(emb: Any) -> Any:
    pytest.importorskip("faiss", reason="pip install faiss-cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # langchain-community's sunset note
        from langchain_community.docstore.in_memory import InMemoryDocstore
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy
    import faiss

    return FAISS(
        embedding_function=emb,
        index=faiss.IndexFlatIP(emb.dim),
        docstore=InMemoryDocstore(),
        index_to_docstore_id={},
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )


class TestLangChainInMemory(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LangChain(in_memory)


class TestLangChainFaiss(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LangChain(faiss_store)


class TestLangChainInMemoryCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LangChain(in_memory)


class TestLangChainFaissCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LangChain(faiss_store)


def test_filter_mode_is_read_from_the_store() -> None:
    """Both test stores take a callable filter; FAISS also gets fetch_k (it filters after
    fetching fetch_k, which would cut matches short)."""
    for make, fetch_k in ((in_memory, False), (faiss_store, True)):
        store = LangChain(make)
        store.connect(SPACE)
        assert store.filter_mode == "callable" and store._fetch_k is fetch_k


def test_a_store_without_filters_refuses_them() -> None:
    """filter='none': a filtered vector search raises UnsupportedFilterError, and unfiltered
    searches, keyword searches and filtered counts still work."""
    store = LangChain(in_memory, filter="none")
    store.connect(SPACE)
    store.upsert(make_chunks(4, metadata=lambda i: {"i": i}), unit_vectors(4))
    with pytest.raises(UnsupportedFilterError):
        store.query(unit_vectors(1)[0], k=2, filter=parse_filter({"i": 1}))
    assert len(store.query(unit_vectors(1)[0], k=2)) == 2
    assert store.count(parse_filter({"i": {"$gte": 2}})) == 2


def test_a_store_that_ignores_the_filter_is_caught() -> None:
    """A wrapped store that drops the callable must not hand back unfiltered hits."""

    def deaf(emb: Any) -> Any:
        store = in_memory(emb)
        search = store.similarity_search_with_score_by_vector

        def no_filter(embedding: list[float], k: int = 4, filter: Any = None) -> Any:
            return search(embedding, k=k)

        object.__setattr__(store, "similarity_search_with_score_by_vector", no_filter)
        return store

    store = LangChain(deaf, filter="callable")
    store.connect(SPACE)
    store.upsert(make_chunks(6, metadata=lambda i: {"i": i}), unit_vectors(6))
    with pytest.raises(UnsupportedFilterError):
        store.query(unit_vectors(6)[0], k=3, filter=parse_filter({"i": 5}))


def test_the_wrapped_store_holds_vecmems_vectors() -> None:
    store = LangChain(in_memory)
    store.connect(SPACE)
    v = unit_vectors(3)
    store.upsert(make_chunks(3), v)
    held = store._wrapped.store
    np.testing.assert_allclose([held[f"doc{i}#0"]["vector"] for i in range(3)], v, atol=1e-6)


@pytest.mark.parametrize("name", ["langchain", "langchain_adapter"])
def test_registered_by_name_and_alias(name: str) -> None:
    from vecmem.registry import KNOWLEDGE_STORES

    store = KNOWLEDGE_STORES.create(name, make=in_memory)
    assert isinstance(store, LangChain) and store.make is in_memory


class TestLangChainInMemoryHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: LangChain(in_memory)
