"""Any LangChain ``VectorStore`` as a vecmem store, vecmem's exact BM25 beside it.

vecmem embeds; the wrapped store holds the vectors and ranks them. It is built for the space by a
factory that receives the :class:`HandedEmbeddings` vecmem passes it (``embed_documents`` hands
over the vectors vecmem computed; ``.dim`` is the dimension), so stores that embed inside
``add_documents`` (``InMemoryVectorStore``, FAISS, Chroma...) store vecmem's vectors::

    from langchain_core.vectorstores import InMemoryVectorStore
    store = LangChain(lambda emb: InMemoryVectorStore(emb))

Searches go through ``similarity_search_with_score_by_vector``. Filters: a store whose ``filter``
takes a callable on the ``Document`` (``InMemoryVectorStore``, FAISS) gets one that passes
exactly the chunks vecmem's grammar selects (``filter="callable"``, detected from the method's
signature); with ``filter="none"`` a filtered search raises
:class:`~vecmem.errors.UnsupportedFilterError`. Where the method takes ``fetch_k`` (FAISS filters
after fetching ``fetch_k``), a filtered search asks for every candidate, so the filter holds
before top-k. What the bridge keeps in memory, and why, is in :mod:`vecmem.stores._bridge`.

>>> VectorMemory(store=LangChain(lambda emb: InMemoryVectorStore(emb)))     # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np

from vecmem._deps import require
from vecmem.errors import ConfigurationError, UnsupportedFilterError
from vecmem.stores._bridge import BridgeStore
from vecmem.types import Chunk, EmbeddingSpace

_ID = "_vm_id"  # the chunk id, in each Document's metadata


def _embeddings_base() -> type:
    return require("langchain_core.embeddings", "langchain").Embeddings


class HandedEmbeddings:
    """The LangChain ``Embeddings`` a bridged store is built with: it returns the vectors vecmem
    hands over for the next ``add_documents`` call, and never embeds a query itself."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._next: list[list[float]] = []

    def hand(self, vectors: np.ndarray) -> None:
        self._next = vectors.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if len(texts) != len(self._next):
            raise ConfigurationError(
                f"the wrapped store embedded {len(texts)} texts, vecmem handed "
                f"{len(self._next)} vectors: it must embed exactly the documents it is given"
            )
        out, self._next = self._next, []
        return out

    def embed_query(self, text: str) -> list[float]:
        raise ConfigurationError(
            "vecmem searches a bridged LangChain store by vector; the store asked to embed a query"
        )


def _handed(dim: int) -> HandedEmbeddings:
    """A :class:`HandedEmbeddings` that is also a LangChain ``Embeddings`` subclass."""
    cls = type("VecmemHandedEmbeddings", (HandedEmbeddings, _embeddings_base()), {})
    return cls(dim)


class LangChain(BridgeStore):
    """A LangChain vector store as a vecmem store (see the module docstring).

    >>> from langchain_core.vectorstores import InMemoryVectorStore           # doctest: +SKIP
    >>> mem = VectorMemory(store=LangChain(lambda emb: InMemoryVectorStore(emb)))  # doctest: +SKIP
    """

    name = "langchain"

    def __init__(
        self, make: Callable[[Any], Any], *, filter: Literal["auto", "callable", "none"] = "auto"
    ) -> None:
        super().__init__()
        if not callable(make):
            raise ConfigurationError("LangChain(make) takes a factory: embeddings -> VectorStore")
        if filter not in ("auto", "callable", "none"):
            raise ConfigurationError(f"filter must be 'auto', 'callable' or 'none', not {filter!r}")
        self.make, self.filter_mode = make, filter
        self._emb: HandedEmbeddings | None = None
        self._fetch_k = False

    @property
    def where(self) -> str:
        kind = type(self._wrapped).__name__ if self._wrapped is not None else "store"
        return f"the wrapped LangChain {kind}"

    def _make(self, space: EmbeddingSpace) -> Any:
        self._emb = _handed(space.dim)
        store = self.make(self._emb)
        search = getattr(store, "similarity_search_with_score_by_vector", None)
        if search is None:
            raise ConfigurationError(
                f"{type(store).__name__} has no similarity_search_with_score_by_vector"
            )
        params = inspect.signature(search).parameters
        if self.filter_mode == "auto":
            hint = str(params["filter"].annotation) if "filter" in params else ""
            self.filter_mode = "callable" if "Callable" in hint else "none"
        self._fetch_k = "fetch_k" in params
        return store

    def _add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        docs = require("langchain_core.documents", "langchain")
        if self._emb is None:
            raise ConfigurationError("the LangChain store is used before connect(space)")
        self._emb.hand(vectors)
        self._wrapped.add_documents(
            [
                docs.Document(id=c.id, page_content=c.text, metadata={**c.metadata, _ID: c.id})
                for c in chunks
            ],
            ids=[c.id for c in chunks],
        )

    def _remove(self, ids: Sequence[str]) -> None:
        self._wrapped.delete(ids=list(ids))

    def _rank(self, q: np.ndarray, k: int, allowed: set[str] | None) -> list[str]:
        extra: dict[str, Any] = {}
        if allowed is not None:
            if self.filter_mode != "callable":
                raise UnsupportedFilterError(
                    f"{self.where} takes no filter vecmem can translate "
                    "(LangChain(..., filter='callable') if it takes one)"
                )

            def passes(doc: Any) -> bool:  # InMemoryVectorStore passes the Document, FAISS
                meta = getattr(doc, "metadata", doc)  # its metadata dict
                return isinstance(meta, dict) and meta.get(_ID) in allowed

            extra["filter"] = passes
            if self._fetch_k:
                extra["fetch_k"] = len(self._chunks)
        found = self._wrapped.similarity_search_with_score_by_vector(q.tolist(), k=k, **extra)
        return [str(doc.metadata.get(_ID, doc.id)) for doc, _ in found]


__all__ = ["HandedEmbeddings", "LangChain"]
