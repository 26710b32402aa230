"""LangChain integration for vecmem: a ``VectorStore`` over any vecmem store, and ``Embeddings``
over a vecmem embedder.

>>> from langchain_vecmem import VecmemEmbeddings, VecmemVectorStore   # doctest: +SKIP
>>> store = VecmemVectorStore(VecmemEmbeddings(), "./kb")              # doctest: +SKIP
>>> store.add_texts(["vecmem keeps agent memory"], [{"source": "notes.md"}])   # doctest: +SKIP
>>> store.as_retriever(search_type="hybrid").invoke("agent memory")   # doctest: +SKIP
"""

from __future__ import annotations

from langchain_vecmem.embeddings import LangChainEmbedder, VecmemEmbeddings
from langchain_vecmem.vectorstores import VecmemRetriever, VecmemVectorStore

__version__ = "0.1.0"

__all__ = ["LangChainEmbedder", "VecmemEmbeddings", "VecmemRetriever", "VecmemVectorStore"]
