"""langchain-vecmem beyond the standard suite: filters, scores, MMR, hybrid retrieval, native
async, deletes, persistence and typed errors -- on the embedded default and on PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_vecmem import LangChainEmbedder, VecmemEmbeddings, VecmemVectorStore

from vecmem import VectorMemory
from vecmem.errors import (
    ConfigurationError,
    EmbeddingSpaceMismatchError,
    InvalidFilterError,
    InvalidInputError,
)

TEXTS = [
    "the cat sat on the mat",
    "dogs chase cats in the garden",
    "vector databases store embeddings",
    "postgres can store vectors with pgvector",
    "a zebra named quillfeather lives in the zoo",
]
METAS: list[dict[str, Any]] = [
    {"kind": "pet", "year": 2019, "tags": ["cat"]},
    {"kind": "pet", "year": 2021, "tags": ["dog", "cat"]},
    {"kind": "db", "year": 2022, "tags": ["vector"]},
    {"kind": "db", "year": 2024, "tags": ["vector", "sql"], "draft": True},
    {"kind": "zoo", "year": 2020, "tags": []},
]
IDS = ["cat", "dog", "vdb", "pg", "zebra"]


def _open(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, embedding: Embeddings
) -> VecmemVectorStore:
    if backend == "embedded":
        return VecmemVectorStore(embedding, tmp_path / "kb")
    url = request.getfixturevalue("postgres_url")
    return VecmemVectorStore(embedding, f"{url}?collection=lcu_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.server)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VecmemVectorStore]:
    vs = _open(request.param, tmp_path, request, VecmemEmbeddings("hashing-128"))
    vs.add_texts(TEXTS, METAS, ids=IDS)
    try:
        yield vs
    finally:
        drop = getattr(vs.memory.store, "drop", None)
        if drop is not None:
            drop()
        vs.close()


# ---------------------------------------------------------------- writes and ids
def test_ids_are_kept_and_metadata_round_trips_exactly(store: VecmemVectorStore) -> None:
    docs = store.get_by_ids(["pg", "missing", "cat"])
    assert [d.id for d in docs] == ["pg", "cat"]
    assert docs[0] == Document(id="pg", page_content=TEXTS[3], metadata=METAS[3])
    assert type(docs[0].metadata["year"]) is int and docs[0].metadata["draft"] is True


def test_adding_without_ids_creates_new_entries_each_time(store: VecmemVectorStore) -> None:
    first = store.add_texts(["repeated text"])
    second = store.add_texts(["repeated text"])
    assert first != second
    assert all(str(uuid.UUID(i)) == i for i in first + second)
    assert len(store.memory) == len(TEXTS) + 2


def test_inputs_are_not_mutated(store: VecmemVectorStore) -> None:
    meta = {"nested": {"a": [1, 2]}, "n": 1}
    docs = [Document(page_content="fresh text", metadata=meta)]
    (new_id,) = store.add_documents(docs)
    assert docs[0].id is None and meta == {"nested": {"a": [1, 2]}, "n": 1}
    got = store.get_by_ids([new_id])[0]
    got.metadata["nested"]["a"].append(3)
    assert store.get_by_ids([new_id])[0].metadata == {"nested": {"a": [1, 2]}, "n": 1}


def test_bad_inputs_raise_typed_errors_and_store_nothing(store: VecmemVectorStore) -> None:
    before = len(store.memory)
    with pytest.raises(InvalidInputError):
        store.add_texts(["ok", "   "], ids=["a1", "a2"])
    with pytest.raises(InvalidInputError):
        store.add_texts(["ok"], [{"when": object()}])
    with pytest.raises(InvalidInputError):
        store.add_texts(["a", "b"], [{}])
    with pytest.raises(InvalidInputError):
        store.add_texts(["a", "b"], ids=["same", "same"])
    with pytest.raises(InvalidInputError):
        store.add_texts([42])  # type: ignore[list-item]
    assert len(store.memory) == before


def test_unknown_keyword_arguments_raise_instead_of_being_ignored(
    store: VecmemVectorStore,
) -> None:
    with pytest.raises(ConfigurationError, match="where"):
        store.similarity_search("cat", k=2, where={"kind": "pet"})
    with pytest.raises(ConfigurationError):
        store.add_texts(["x"], batch_size=10)


def test_delete_by_ids_by_filter_and_never_everything(store: VecmemVectorStore) -> None:
    assert store.delete(["cat", "not-there"]) is True
    assert store.get_by_ids(["cat"]) == []
    assert store.delete(filter={"kind": "db"}) is True
    assert sorted(d.id or "" for d in store.get_by_ids(IDS)) == ["dog", "zebra"]
    with pytest.raises(InvalidInputError):
        store.delete()
    assert store.delete([]) is True
    assert len(store.memory) == 2


# ---------------------------------------------------------------- search
def test_filters_use_the_portable_grammar(store: VecmemVectorStore) -> None:
    docs = store.similarity_search("store vectors", k=5, filter={"kind": "db"})
    assert {d.id for d in docs} == {"vdb", "pg"}
    docs = store.similarity_search(
        "cats", k=5, filter={"$or": [{"year": {"$gte": 2022}}, {"tags": {"$contains": "cat"}}]}
    )
    assert {d.id for d in docs} == {"cat", "dog", "vdb", "pg"}
    docs = store.similarity_search("anything", k=5, filter={"draft": {"$ne": True}})
    assert "pg" not in {d.id for d in docs} and len(docs) == 4
    with pytest.raises(InvalidFilterError):
        store.similarity_search("cats", k=2, filter={"year": {"$regex": "20.*"}})


def test_scores_are_cosine_similarities_higher_is_better(store: VecmemVectorStore) -> None:
    pairs = store.similarity_search_with_score(TEXTS[2], k=5)
    assert pairs[0][0].id == "vdb" and pairs[0][1] == pytest.approx(1.0, abs=1e-5)
    scores = [s for _, s in pairs]
    assert scores == sorted(scores, reverse=True)
    emb = store.embeddings
    q = np.asarray(emb.embed_query(TEXTS[2]))
    for doc, score in pairs:
        d = np.asarray(emb.embed_documents([doc.page_content])[0])
        assert score == pytest.approx(float(q @ d), abs=1e-5)
    rel = store.similarity_search_with_relevance_scores(TEXTS[2], k=5)
    assert all(0.0 <= s <= 1.0 for _, s in rel)
    kept = store.similarity_search_with_relevance_scores(TEXTS[2], k=5, score_threshold=0.99)
    assert [d.id for d, _ in kept] == ["vdb"]


def test_search_by_vector_matches_search_by_text(store: VecmemVectorStore) -> None:
    vector = store.embeddings.embed_query("postgres vectors")
    by_text = store.similarity_search("postgres vectors", k=3)
    assert store.similarity_search_by_vector([3.0 * x for x in vector], k=3) == by_text


def test_mmr_trades_relevance_for_diversity(tmp_path: Path) -> None:
    vs = VecmemVectorStore(VecmemEmbeddings("hashing-128"), tmp_path / "kb")
    vs.add_texts(
        [
            "apple pie recipe",
            "apple pie recipe with cinnamon",
            "apple pie recipe easy",
            "apple orchard tour",
        ],
        ids=["p1", "p2", "p3", "orchard"],
    )
    plain = [d.id for d in vs.similarity_search("apple pie recipe", k=2)]
    diverse = [
        d.id
        for d in vs.max_marginal_relevance_search(
            "apple pie recipe", k=2, fetch_k=4, lambda_mult=0.3
        )
    ]
    relevance_only = [
        d.id
        for d in vs.max_marginal_relevance_search(
            "apple pie recipe", k=2, fetch_k=4, lambda_mult=1.0
        )
    ]
    assert plain[0] == diverse[0] == "p1"
    assert diverse[1] == "orchard" and plain[1] != "orchard"
    assert relevance_only == plain
    retr = vs.as_retriever(
        search_type="mmr", search_kwargs={"k": 2, "fetch_k": 4, "lambda_mult": 0.3}
    )
    assert [d.id for d in retr.invoke("apple pie recipe")] == diverse
    with pytest.raises(ConfigurationError):
        vs.max_marginal_relevance_search("apple", k=2, lambda_mult=1.5)
    vs.close()


def test_hybrid_retriever_finds_rare_keywords(store: VecmemVectorStore) -> None:
    retriever = store.as_retriever(search_type="hybrid", search_kwargs={"k": 2})
    assert retriever.invoke("quillfeather")[0].id == "zebra"
    assert (
        store.hybrid_search("quillfeather", k=1, filter={"kind": "db"})[0].metadata["kind"] == "db"
    )
    pairs = store.hybrid_search_with_score("cats", k=3)
    assert [s for _, s in pairs] == sorted((s for _, s in pairs), reverse=True)
    assert store.search("quillfeather", "hybrid", k=1)[0].id == "zebra"
    with pytest.raises(ValueError, match="search_type"):
        store.as_retriever(search_type="fulltext")


def test_async_methods(store: VecmemVectorStore) -> None:
    async def run() -> None:
        ids = await store.aadd_texts(["an async text about otters"], [{"kind": "otter"}])
        assert (await store.aget_by_ids(ids))[0].metadata == {"kind": "otter"}
        docs = await store.asimilarity_search("otters", k=1, filter={"kind": "otter"})
        assert [d.id for d in docs] == ids
        assert (await store.ahybrid_search("quillfeather", k=1))[0].id == "zebra"
        retr = store.as_retriever(search_type="hybrid", search_kwargs={"k": 1})
        assert (await retr.ainvoke("quillfeather"))[0].id == "zebra"
        mmr = await store.amax_marginal_relevance_search("cats", k=2, fetch_k=5)
        assert len(mmr) == 2
        assert await store.adelete(ids) is True
        assert await store.aget_by_ids(ids) == []

    asyncio.run(run())


class _AsyncOnlyQueries(DeterministicFakeEmbedding):
    """Refuses synchronous query embedding: proves the a* methods use ``aembed_query``."""

    def embed_query(self, text: str) -> list[float]:
        if text == "vecmem dimension probe":
            return super().embed_query(text)
        raise AssertionError("the async path called embed_query")

    async def aembed_query(self, text: str) -> list[float]:
        return super().embed_query(text)


def test_async_search_embeds_queries_natively(tmp_path: Path) -> None:
    vs = VecmemVectorStore(_AsyncOnlyQueries(size=16), tmp_path / "kb")
    vs.add_texts(["one", "two"], ids=["1", "2"])

    async def run() -> list[Document]:
        return await vs.asimilarity_search("two", k=1)

    assert [d.id for d in asyncio.run(run())] == ["2"]
    vs.close()


# ---------------------------------------------------------------- construction, persistence
def test_from_texts_persists_and_reopens(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=16)
    vs = VecmemVectorStore.from_texts(
        ["alpha", "beta"], emb, [{"n": 1}, {"n": 2}], ids=["a", "b"], target=tmp_path / "kb"
    )
    vs.close()
    again = VecmemVectorStore(emb, tmp_path / "kb")
    assert again.similarity_search("beta", k=1) == [
        Document(id="b", page_content="beta", metadata={"n": 2})
    ]
    again.close()
    with pytest.raises(EmbeddingSpaceMismatchError):
        VecmemVectorStore(VecmemEmbeddings("hashing-16"), tmp_path / "kb").similarity_search(
            "beta", k=1
        )


class _CountingEmbedding(DeterministicFakeEmbedding):
    calls: int = 0

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


def test_reopening_a_store_takes_the_dimension_from_it(tmp_path: Path) -> None:
    first = _CountingEmbedding(size=12)
    with VecmemVectorStore(first, tmp_path / "kb") as created:
        created.add_texts(["x"], ids=["x"])
    assert first.calls == 1  # the one-time dimension probe of a new store
    again = _CountingEmbedding(size=12)
    store = VecmemVectorStore(again, tmp_path / "kb")
    assert store.get_by_ids(["x"])[0].page_content == "x" and again.calls == 0
    store.close()


def test_afrom_documents(tmp_path: Path) -> None:
    docs = [Document(page_content="gamma", metadata={"n": 3}, id="g")]
    vs = asyncio.run(
        VecmemVectorStore.afrom_documents(
            docs, DeterministicFakeEmbedding(size=8), target=tmp_path / "kb"
        )
    )
    assert vs.get_by_ids(["g"]) == docs
    vs.close()


def test_vecmem_embeddings_share_the_folder_with_vector_memory(tmp_path: Path) -> None:
    vs = VecmemVectorStore(VecmemEmbeddings("hashing-64"), tmp_path / "kb")
    vs.add_texts(["shared knowledge base entry"], [{"src": "lc"}], ids=["e1"])
    vs.close()
    with VectorMemory(tmp_path / "kb") as mem:
        hits = mem.search("knowledge base", k=1)
        assert hits[0].id == "e1" and dict(hits[0].metadata) == {"src": "lc"}
        back = VecmemVectorStore.from_memory(mem)
        assert back.similarity_search("knowledge", k=1)[0].id == "e1"


def test_vecmem_embeddings_and_langchain_embedder() -> None:
    emb = VecmemEmbeddings("hashing-32")
    vecs = emb.embed_documents(["a b", "c d"])
    assert len(vecs) == 2 and len(vecs[0]) == 32 == emb.dim
    assert np.linalg.norm(vecs[0]) == pytest.approx(1.0, abs=1e-6)
    assert emb.embed_query("a b") == pytest.approx(vecs[0])
    assert asyncio.run(emb.aembed_documents(["a b"]))[0] == pytest.approx(vecs[0])
    assert emb.embed_documents([]) == []
    wrapped = LangChainEmbedder(DeterministicFakeEmbedding(size=6))
    assert wrapped.dim == 6 and wrapped.name.endswith("DeterministicFakeEmbedding")
    rows = wrapped.embed(["x", "y"])
    assert rows.dtype == np.float32 and np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    with pytest.raises(InvalidInputError):
        LangChainEmbedder("not an embedding")  # type: ignore[arg-type]


def test_same_answers_as_langchains_in_memory_store(tmp_path: Path) -> None:
    emb = DeterministicFakeEmbedding(size=32)
    texts = [f"document number {i}" for i in range(40)]
    ids = [str(i) for i in range(40)]
    ours = VecmemVectorStore.from_texts(texts, emb, ids=ids, target=tmp_path / "kb")
    theirs = InMemoryVectorStore.from_texts(texts, emb, ids=ids)
    for q in ("document number 7", "something else", "number"):
        a = ours.similarity_search_with_score(q, k=5)
        b = theirs.similarity_search_with_score(q, k=5)
        assert [d.id for d, _ in a] == [d.id for d, _ in b]
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-5)
    ours.close()
