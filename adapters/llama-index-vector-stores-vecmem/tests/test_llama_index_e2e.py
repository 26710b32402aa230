"""End to end with a real offline embedder: ``VectorStoreIndex.from_documents`` -> retriever ->
nodes, on the embedded default and on PostgreSQL; the folder is then readable by vecmem itself."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters
from llama_index.vector_stores.vecmem import VecmemVectorStore

from vecmem import VectorMemory
from vecmem.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder

pytestmark = pytest.mark.slow

DOCS = [
    Document(
        text="The mitochondria is the powerhouse of the cell and makes ATP through "
        "oxidative phosphorylation.",
        doc_id="bio",
        metadata={"topic": "biology", "year": 2019},
    ),
    Document(
        text="PostgreSQL with the pgvector extension answers nearest-neighbour queries "
        "over embeddings stored in a table.",
        doc_id="db",
        metadata={"topic": "databases", "year": 2023},
    ),
    Document(
        text="The Treaty of Westphalia of 1648 ended the Thirty Years' War in Europe.",
        doc_id="hist",
        metadata={"topic": "history", "year": 1648},
    ),
    Document(
        text="Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough.",
        doc_id="food",
        metadata={"topic": "cooking", "year": 2021},
    ),
]


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 (vecmem's offline default) as a LlamaIndex embedding."""

    _inner: Any = PrivateAttr()

    def __init__(self) -> None:
        super().__init__(model_name=DEFAULT_MODEL, embed_batch_size=32)
        self._inner = SentenceTransformerEmbedder()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._inner.embed([query])[0].tolist()  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_query_embedding(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._inner.embed(texts).tolist()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def embed_model() -> MiniLMEmbedding:
    return MiniLMEmbedding()


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.server)])
def vector_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VecmemVectorStore]:
    if request.param == "embedded":
        vs = VecmemVectorStore(tmp_path / "kb", embedder_name=DEFAULT_MODEL)
    else:
        url = request.getfixturevalue("postgres_url")
        vs = VecmemVectorStore(
            f"{url}?collection=li_e2e_{uuid.uuid4().hex[:10]}", embedder_name=DEFAULT_MODEL
        )
    try:
        yield vs
    finally:
        drop = getattr(vs.client, "drop", None)
        if drop is not None:
            drop()
        vs.close()


def test_index_retrieve_delete(
    vector_store: VecmemVectorStore, embed_model: MiniLMEmbedding
) -> None:
    ctx = StorageContext.from_defaults(vector_store=vector_store)
    index = VectorStoreIndex.from_documents(DOCS, storage_context=ctx, embed_model=embed_model)

    hits = index.as_retriever(similarity_top_k=2).retrieve("how do cells produce energy?")
    assert hits[0].node.ref_doc_id == "bio"
    assert hits[0].node.metadata == {"topic": "biology", "year": 2019}
    assert hits[0].score is not None and hits[0].score > hits[1].score

    hybrid = index.as_retriever(vector_store_query_mode="hybrid", alpha=0.5, similarity_top_k=2)
    assert hybrid.retrieve("pgvector nearest-neighbour")[0].node.ref_doc_id == "db"

    recent = MetadataFilters(
        filters=[MetadataFilter(key="year", value=2000, operator=FilterOperator.GT)]
    )
    filtered = index.as_retriever(similarity_top_k=4, filters=recent).retrieve("war in Europe")
    assert {h.node.ref_doc_id for h in filtered} == {"bio", "db", "food"}

    async_hits = asyncio.run(index.as_retriever(similarity_top_k=1).aretrieve("bread yeast"))
    assert async_hits[0].node.ref_doc_id == "food"

    index.delete_ref_doc("food")
    after = index.as_retriever(similarity_top_k=4).retrieve("bread yeast")
    assert "food" not in {h.node.ref_doc_id for h in after} and len(after) == 3


def test_vecmem_reads_what_llama_index_wrote(tmp_path: Path, embed_model: MiniLMEmbedding) -> None:
    vs = VecmemVectorStore(tmp_path / "kb", embedder_name=DEFAULT_MODEL)
    ctx = StorageContext.from_defaults(vector_store=vs)
    VectorStoreIndex.from_documents(DOCS, storage_context=ctx, embed_model=embed_model)
    vs.close()
    with VectorMemory(tmp_path / "kb") as mem:  # picks the recorded embedder: MiniLM
        hit = mem.search("Thirty Years War treaty", k=1, filter={"topic": "history"})[0]
        assert hit.document_id == "hist" and hit.metadata["year"] == 1648
