"""A LangChain ``VectorStore`` over any vecmem store: the embedded default, pgvector, Qdrant, ...

Semantics a LangChain user should know:

* ``add_texts`` / ``add_documents`` store each text as one vecmem chunk (no chunking: split your
  documents before). Given ids are kept exactly and overwrite; texts without an id get a fresh
  uuid4, so adding the same text twice without ids stores it twice.
* Scores are **similarities, higher is better**: ``similarity_search_with_score`` returns the
  cosine similarity (1 = same direction), not a distance; relevance scores are that similarity
  clipped to [0, 1]; ``hybrid_search_with_score`` returns the fused score
  (vecmem's default fusion, :data:`vecmem.memory.DEFAULT_FUSION`, unless ``fusion=`` is given).
* ``filter=`` takes vecmem's portable filter grammar (``{"year": {"$gte": 2020}}``, see
  :mod:`vecmem.filters`) on every backend. A keyword argument the store does not know raises
  :class:`~vecmem.errors.ConfigurationError` instead of being ignored.
* ``delete(ids)`` removes those ids (missing ids are ignored); ``delete(filter=...)`` removes what
  matches. ``delete()`` with neither raises rather than emptying the store.
* The ``a*`` methods embed queries with the embedding's own async method
  (``aembed_query``) and run the store call in a worker thread (``asyncio.to_thread``): the
  vecmem stores are synchronous.
"""

from __future__ import annotations

import asyncio
import copy
import os
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever

from langchain_vecmem.embeddings import LangChainEmbedder, VecmemEmbeddings
from vecmem.embedders import normalize
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.filters import FilterLike
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_CANDIDATES, DEFAULT_FUSION, VectorMemory
from vecmem.rerank import MMRReranker
from vecmem.stores import open_store
from vecmem.stores.base import VectorStore as VecmemStore
from vecmem.types import Chunk, Hit

SEARCH_TYPES = ("similarity", "similarity_score_threshold", "mmr", "hybrid")


def _reject(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise ConfigurationError(
            f"{method}() got unexpected keyword argument(s) {', '.join(sorted(kwargs))}; "
            "VecmemVectorStore takes filter= in vecmem's filter grammar (see vecmem.filters)"
        )


def _copy_meta(meta: Any) -> dict[str, Any]:
    if all(isinstance(v, (str, int, float, bool)) or v is None for v in meta.values()):
        return dict(meta)
    return copy.deepcopy(dict(meta))


def _doc(chunk: Chunk) -> Document:
    return Document(id=chunk.id, page_content=chunk.text, metadata=_copy_meta(chunk.metadata))


def _relevance(similarity: float) -> float:
    return min(1.0, max(0.0, similarity))


class VecmemVectorStore(VectorStore):
    """A LangChain vector store backed by vecmem.

    ``target`` is what :class:`vecmem.VectorMemory` takes: a folder (the embedded default), a URL
    (``postgresql://...``, ``qdrant+http://...``, ...) or ``None`` (in memory); ``store=`` takes a
    vecmem store object instead. ``embedding`` is any LangChain ``Embeddings``; a
    :class:`~langchain_vecmem.VecmemEmbeddings` is used natively, so the folder can also be opened
    with ``vecmem.VectorMemory`` directly.

    >>> from langchain_vecmem import VecmemEmbeddings, VecmemVectorStore
    >>> store = VecmemVectorStore(VecmemEmbeddings("hashing-64"))      # in memory
    >>> store.add_texts(["cats purr", "dogs bark"], [{"pet": "cat"}, {"pet": "dog"}],
    ...                 ids=["c", "d"])
    ['c', 'd']
    >>> [d.id for d in store.similarity_search("cats", k=1, filter={"pet": "cat"})]
    ['c']
    >>> [d.id for d in store.as_retriever(search_type="hybrid").invoke("dogs bark")][:1]
    ['d']
    """

    def __init__(
        self,
        embedding: Embeddings,
        target: str | os.PathLike[str] | None = None,
        *,
        store: VecmemStore | None = None,
        fusion: Fusion = DEFAULT_FUSION,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> None:
        if not isinstance(embedding, Embeddings):
            raise ConfigurationError(
                f"embedding must be a LangChain Embeddings, got {type(embedding).__name__}"
            )
        if store is not None and target is not None:
            raise ConfigurationError("pass a path/URL or store=, not both")
        backend = store if store is not None else open_store(target)
        if isinstance(embedding, VecmemEmbeddings):
            embedder: Any = embedding.embedder
        else:
            embedder = LangChainEmbedder(embedding)
            recorded = backend.stored_space()
            if recorded is not None and recorded.embedder == embedder.name:
                embedder.set_dim(recorded.dim)  # no probe call to the embedding
        self._embedding = embedding
        self.memory = VectorMemory(
            store=backend, embedder=embedder, fusion=fusion, candidates=candidates
        )

    @classmethod
    def from_memory(cls, memory: VectorMemory) -> VecmemVectorStore:
        """Wrap an existing :class:`vecmem.VectorMemory` (its embedder embeds the queries)."""
        self = cls.__new__(cls)
        inner = getattr(memory.embedder, "inner", memory.embedder)
        self._embedding = (
            inner.embedding if isinstance(inner, LangChainEmbedder) else VecmemEmbeddings(inner)
        )
        self.memory = memory
        return self

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    # ------------------------------------------------------------------ writes
    def _chunks(
        self,
        texts: Iterable[str],
        metadatas: Sequence[dict[str, Any] | None] | None,
        ids: Sequence[str | None] | None,
    ) -> list[Chunk]:
        items = list(texts)
        if metadatas is not None and len(metadatas) != len(items):
            raise InvalidInputError(f"{len(metadatas)} metadatas for {len(items)} texts")
        if ids is not None and len(ids) != len(items):
            raise InvalidInputError(f"{len(ids)} ids for {len(items)} texts")
        chunks = []
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise InvalidInputError(f"text {i} is {type(text).__name__}, not str")
            given = ids[i] if ids is not None else None
            if given is not None and (not isinstance(given, str) or not given):
                raise InvalidInputError(f"id {i} must be a non-empty string, got {given!r}")
            doc_id = given or str(uuid.uuid4())
            meta = metadatas[i] if metadatas is not None else None
            chunks.append(Chunk.create(doc_id, 0, text, meta, id=doc_id))
        return chunks

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed and store ``texts``; returns their ids (given ones kept, others uuid4)."""
        _reject(kwargs, "add_texts")
        chunks = self._chunks(texts, metadatas, ids)
        if chunks:
            self.memory.add_chunks(chunks)
        return [c.id for c in chunks]

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        _reject(kwargs, "aadd_texts")
        chunks = self._chunks(texts, metadatas, ids)
        if chunks:
            await asyncio.to_thread(self.memory.add_chunks, chunks)
        return [c.id for c in chunks]

    def delete(
        self, ids: list[str] | None = None, *, filter: FilterLike = None, **kwargs: Any
    ) -> bool:
        """Delete by ids (missing ones ignored) and/or by filter; ``True`` when done."""
        _reject(kwargs, "delete")
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or filter=; it never empties the store")
        if ids is not None and not list(ids) and filter is None:
            return True
        self.memory.delete(list(ids) if ids is not None else None, filter=filter)
        return True

    async def adelete(
        self, ids: list[str] | None = None, *, filter: FilterLike = None, **kwargs: Any
    ) -> bool:
        _reject(kwargs, "adelete")
        return await asyncio.to_thread(self.delete, ids, filter=filter)

    # ------------------------------------------------------------------ reads
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents by id, in the order given; missing ids are left out."""
        self.memory.space  # noqa: B018  (connect first)
        return [_doc(c) for c in self.memory.store.get(list(ids))]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await asyncio.to_thread(self.get_by_ids, ids)

    def _query_vector(self, query: str) -> np.ndarray:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        return np.asarray(self._embedding.embed_query(query), dtype=np.float32)

    async def _aquery_vector(self, query: str) -> np.ndarray:
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError("query must be a non-empty string")
        return np.asarray(await self._embedding.aembed_query(query), dtype=np.float32)

    def _vector_hits(self, query: str, vector: np.ndarray, k: int, filter: FilterLike) -> list[Hit]:
        return self.memory.search(
            query, k, mode="vector", filter=filter, rerank=False, vector=vector
        )

    def _by_vector(self, vector: Sequence[float], k: int, filter: FilterLike) -> list[Hit]:
        return self.memory.search_by_vector(normalize(np.asarray(vector))[0], k, filter=filter)

    def _hybrid_hits(
        self,
        query: str,
        vector: np.ndarray,
        k: int,
        filter: FilterLike,
        fusion: Fusion | None,
        candidates: int | None,
    ) -> list[Hit]:
        return self.memory.search(
            query,
            k,
            mode="hybrid",
            filter=filter,
            rerank=False,
            fusion=fusion,
            candidates=candidates,
            vector=vector,
        )

    def _mmr(
        self,
        vector: Sequence[float] | np.ndarray,
        k: int,
        fetch_k: int,
        lambda_mult: float,
        filter: FilterLike,
    ) -> list[Document]:
        reranker = MMRReranker(lambda_mult)
        if not isinstance(fetch_k, int) or fetch_k <= 0:
            raise InvalidInputError(f"fetch_k must be a positive integer, got {fetch_k!r}")
        q = normalize(np.asarray(vector))[0]
        hits = self.memory.search_by_vector(q, fetch_k, filter=filter)
        if not hits:
            return []
        vectors = self.memory.store.get_vectors([h.id for h in hits])
        return [_doc(h.chunk) for h in reranker.rerank_vectors(q, hits, vectors, k=k)]

    def similarity_search_with_score(  # type: ignore[override]
        self, query: str, k: int = 4, *, filter: FilterLike = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The ``k`` most similar documents with their cosine similarity (higher is better)."""
        _reject(kwargs, "similarity_search_with_score")
        hits = self._vector_hits(query, self._query_vector(query), k, filter)
        return [(_doc(h.chunk), h.score) for h in hits]

    async def asimilarity_search_with_score(  # type: ignore[override]
        self, query: str, k: int = 4, *, filter: FilterLike = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        _reject(kwargs, "asimilarity_search_with_score")
        vector = await self._aquery_vector(query)
        hits = await asyncio.to_thread(self._vector_hits, query, vector, k, filter)
        return [(_doc(h.chunk), h.score) for h in hits]

    def similarity_search(
        self, query: str, k: int = 4, *, filter: FilterLike = None, **kwargs: Any
    ) -> list[Document]:
        _reject(kwargs, "similarity_search")
        return [d for d, _ in self.similarity_search_with_score(query, k, filter=filter)]

    async def asimilarity_search(
        self, query: str, k: int = 4, *, filter: FilterLike = None, **kwargs: Any
    ) -> list[Document]:
        _reject(kwargs, "asimilarity_search")
        return [d for d, _ in await self.asimilarity_search_with_score(query, k, filter=filter)]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, *, filter: FilterLike = None
    ) -> list[tuple[Document, float]]:
        return [(_doc(h.chunk), h.score) for h in self._by_vector(embedding, k, filter)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, *, filter: FilterLike = None, **kwargs: Any
    ) -> list[Document]:
        _reject(kwargs, "similarity_search_by_vector")
        return [_doc(h.chunk) for h in self._by_vector(embedding, k, filter)]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, *, filter: FilterLike = None, **kwargs: Any
    ) -> list[Document]:
        _reject(kwargs, "asimilarity_search_by_vector")
        hits = await asyncio.to_thread(self._by_vector, embedding, k, filter)
        return [_doc(h.chunk) for h in hits]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Scores are already cosine similarities; relevance clips them to [0, 1]."""
        return _relevance

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR (vecmem's :class:`~vecmem.rerank.MMRReranker`) over the ``fetch_k`` nearest."""
        _reject(kwargs, "max_marginal_relevance_search")
        return self._mmr(self._query_vector(query), k, fetch_k, lambda_mult, filter)

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> list[Document]:
        _reject(kwargs, "amax_marginal_relevance_search")
        vector = await self._aquery_vector(query)
        return await asyncio.to_thread(self._mmr, vector, k, fetch_k, lambda_mult, filter)

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> list[Document]:
        _reject(kwargs, "max_marginal_relevance_search_by_vector")
        return self._mmr(embedding, k, fetch_k, lambda_mult, filter)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        *,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> list[Document]:
        _reject(kwargs, "amax_marginal_relevance_search_by_vector")
        return await asyncio.to_thread(self._mmr, embedding, k, fetch_k, lambda_mult, filter)

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: FilterLike = None,
        fusion: Fusion | None = None,
        candidates: int | None = None,
    ) -> list[tuple[Document, float]]:
        """BM25 + vector search fused (vecmem's default fusion unless ``fusion=``); the score is
        the fused score."""
        hits = self._hybrid_hits(query, self._query_vector(query), k, filter, fusion, candidates)
        return [(_doc(h.chunk), h.score) for h in hits]

    def hybrid_search(
        self,
        query: str,
        k: int = 4,
        *,
        filter: FilterLike = None,
        fusion: Fusion | None = None,
        candidates: int | None = None,
    ) -> list[Document]:
        return [
            d
            for d, _ in self.hybrid_search_with_score(
                query, k, filter=filter, fusion=fusion, candidates=candidates
            )
        ]

    async def ahybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        *,
        filter: FilterLike = None,
        fusion: Fusion | None = None,
        candidates: int | None = None,
    ) -> list[tuple[Document, float]]:
        vector = await self._aquery_vector(query)
        hits = await asyncio.to_thread(
            self._hybrid_hits, query, vector, k, filter, fusion, candidates
        )
        return [(_doc(h.chunk), h.score) for h in hits]

    async def ahybrid_search(
        self,
        query: str,
        k: int = 4,
        *,
        filter: FilterLike = None,
        fusion: Fusion | None = None,
        candidates: int | None = None,
    ) -> list[Document]:
        pairs = await self.ahybrid_search_with_score(
            query, k, filter=filter, fusion=fusion, candidates=candidates
        )
        return [d for d, _ in pairs]

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """``search_type``: ``"similarity"``, ``"similarity_score_threshold"``, ``"mmr"`` or
        ``"hybrid"``."""
        if search_type == "hybrid":
            return self.hybrid_search(query, **kwargs)
        if search_type not in SEARCH_TYPES:
            raise InvalidInputError(
                f"search_type must be one of {SEARCH_TYPES}, not {search_type!r}"
            )
        return super().search(query, search_type, **kwargs)

    async def asearch(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        if search_type == "hybrid":
            return await self.ahybrid_search(query, **kwargs)
        if search_type not in SEARCH_TYPES:
            raise InvalidInputError(
                f"search_type must be one of {SEARCH_TYPES}, not {search_type!r}"
            )
        return await super().asearch(query, search_type, **kwargs)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        target: str | os.PathLike[str] | None = None,
        store: VecmemStore | None = None,
        **kwargs: Any,
    ) -> VecmemVectorStore:
        """A store at ``target`` (or ``store=``; in memory by default) holding ``texts``."""
        _reject(kwargs, "from_texts")
        vs = cls(embedding, target, store=store)
        vs.add_texts(texts, metadatas, ids=ids)
        return vs

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        target: str | os.PathLike[str] | None = None,
        store: VecmemStore | None = None,
        **kwargs: Any,
    ) -> VecmemVectorStore:
        _reject(kwargs, "afrom_texts")
        vs = await asyncio.to_thread(cls, embedding, target, store=store)
        await vs.aadd_texts(texts, metadatas, ids=ids)
        return vs

    def as_retriever(self, **kwargs: Any) -> VecmemRetriever:
        """A retriever; ``search_type`` may also be ``"hybrid"`` (``search_kwargs``: ``k``,
        ``filter``, ``fusion``, ``candidates``)."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return VecmemRetriever(vectorstore=self, tags=tags, **kwargs)

    def close(self) -> None:
        self.memory.close()

    def __enter__(self) -> VecmemVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VecmemVectorStore({self.memory!r})"


class VecmemRetriever(VectorStoreRetriever):
    """LangChain's ``VectorStoreRetriever`` plus ``search_type="hybrid"``.

    >>> store.as_retriever(search_type="hybrid", search_kwargs={"k": 5})  # doctest: +SKIP
    """

    allowed_search_types: ClassVar[Collection[str]] = SEARCH_TYPES

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            store = self.vectorstore
            if not isinstance(store, VecmemVectorStore):
                raise ConfigurationError("search_type='hybrid' needs a VecmemVectorStore")
            return store.hybrid_search(query, **(self.search_kwargs | kwargs))
        return super()._get_relevant_documents(query, run_manager=run_manager, **kwargs)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        if self.search_type == "hybrid":
            store = self.vectorstore
            if not isinstance(store, VecmemVectorStore):
                raise ConfigurationError("search_type='hybrid' needs a VecmemVectorStore")
            return await store.ahybrid_search(query, **(self.search_kwargs | kwargs))
        return await super()._aget_relevant_documents(query, run_manager=run_manager, **kwargs)
