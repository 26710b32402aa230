"""LlamaIndex integration for vecmem: ``VecmemVectorStore``, a ``BasePydanticVectorStore`` over
any vecmem store (embedded default, pgvector, Qdrant, Chroma, LanceDB, Pinecone).

>>> from llama_index.vector_stores.vecmem import VecmemVectorStore   # doctest: +SKIP
>>> vector_store = VecmemVectorStore("./kb")                          # doctest: +SKIP
"""

from __future__ import annotations

from llama_index.vector_stores.vecmem.base import VecmemVectorStore
from llama_index.vector_stores.vecmem.filters import to_vecmem_filter

__all__ = ["VecmemVectorStore", "to_vecmem_filter"]
