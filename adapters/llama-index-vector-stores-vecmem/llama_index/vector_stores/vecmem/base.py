"""A LlamaIndex vector store over any vecmem store: the embedded default, pgvector, Qdrant, ...

Each node is one vecmem chunk: its id is the node id, its document is the node's ``ref_doc_id``
(the node id when it has none), its text the node's text, and its metadata the node's metadata
plus LlamaIndex's usual ``_node_content`` / ``_node_type`` / ``ref_doc_id`` / ``doc_id`` /
``document_id`` keys (:func:`~llama_index.core.vector_stores.utils.node_to_metadata_dict`), so
nodes come back exactly as they went in and filters address the user's metadata directly.

LlamaIndex embeds; the store keeps the vectors it is given (L2-normalised, cosine). The store
records the embedding dimension on the first add and refuses another one afterwards.

Query modes: ``DEFAULT`` (vector), ``HYBRID`` (BM25 + vector; ``alpha`` set -> convex
combination ``alpha * vector + (1 - alpha) * keyword`` of min-max normalised scores, else the
store's ``fusion``, by default vecmem's :data:`~vecmem.memory.DEFAULT_FUSION`),
``SPARSE`` / ``TEXT_SEARCH`` (BM25 only) and ``MMR`` (``mmr_threshold`` is the lambda, default
0.5). Other modes raise :class:`~vecmem.errors.ConfigurationError`. Scores are similarities,
higher is better. The async methods run the synchronous vecmem store in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.schema import (
    BaseNode,
    MetadataMode,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from llama_index.vector_stores.vecmem.filters import to_vecmem_filter

from vecmem.embedders import normalize
from vecmem.errors import (
    ConfigurationError,
    DimensionMismatchError,
    IntegrityError,
    InvalidInputError,
    UnsupportedFilterError,
)
from vecmem.filters import Filter, matches, parse_filter
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_FUSION, VectorMemory
from vecmem.rerank import MMRReranker
from vecmem.stores import open_store
from vecmem.stores.base import VectorStore as VecmemStore
from vecmem.types import Chunk, Hit, Scores

DEFAULT_EMBEDDER_NAME = "llama-index"
"""The embedder name recorded in a new store when ``embedder_name`` is not given."""

_TEXT_MODES = (VectorStoreQueryMode.SPARSE, VectorStoreQueryMode.TEXT_SEARCH)
_ALL = {"$or": [{"ref_doc_id": {"$exists": True}}, {"ref_doc_id": {"$exists": False}}]}


def _reject(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise ConfigurationError(
            f"VecmemVectorStore.{method}() got unexpected keyword argument(s) "
            f"{', '.join(sorted(kwargs))}"
        )


class _GivenVectors:
    """The vecmem embedder of a store whose vectors LlamaIndex computes: it only has a name."""

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise ConfigurationError(
            "this store holds vectors computed by LlamaIndex; pass embeddings, not texts"
        )


class VecmemVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store backed by vecmem.

    ``target`` is what :class:`vecmem.VectorMemory` takes: a folder (the embedded default), a
    URL (``postgresql://...``, ``qdrant+http://...``) or ``None`` (in memory); ``store=`` takes
    a vecmem store object instead. ``embedder_name`` is recorded in a new store (default
    ``"llama-index"``) and checked against an existing one; by default any recorded name is
    accepted, so a folder built with ``vecmem.VectorMemory`` can be queried too.

    >>> from llama_index.core import StorageContext, VectorStoreIndex     # doctest: +SKIP
    >>> from llama_index.vector_stores.vecmem import VecmemVectorStore     # doctest: +SKIP
    >>> ctx = StorageContext.from_defaults(vector_store=VecmemVectorStore("./kb"))  # doctest: +SKIP
    >>> index = VectorStoreIndex.from_documents(docs, storage_context=ctx)          # doctest: +SKIP
    >>> hybrid = index.as_retriever(vector_store_query_mode="hybrid", alpha=0.5)  # doctest: +SKIP
    >>> hybrid.retrieve("agent memory")                                          # doctest: +SKIP
    """

    stores_text: bool = True
    flat_metadata: bool = False
    target: str | None = None
    embedder_name: str | None = None

    _store: Any = PrivateAttr()
    _fusion: Fusion = PrivateAttr()
    _memory: VectorMemory | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr()

    def __init__(
        self,
        target: str | os.PathLike[str] | None = None,
        *,
        store: VecmemStore | None = None,
        embedder_name: str | None = None,
        fusion: Fusion = DEFAULT_FUSION,
    ) -> None:
        if store is not None and target is not None:
            raise ConfigurationError("pass a path/URL or store=, not both")
        super().__init__(  # type: ignore[call-arg]
            target=os.fspath(target) if target is not None else None, embedder_name=embedder_name
        )
        self._store = store if store is not None else open_store(target)
        self._fusion = fusion
        self._memory = None
        self._lock = threading.Lock()

    @classmethod
    def class_name(cls) -> str:
        return "VecmemVectorStore"

    @property
    def client(self) -> VecmemStore:
        """The vecmem store underneath."""
        return self._store  # type: ignore[no-any-return]

    def _mem(self, dim: int | None = None) -> VectorMemory | None:
        """The memory over the store, connected; ``None`` while nothing was ever stored."""
        with self._lock:
            if self._memory is None:
                recorded = self._store.stored_space()
                if recorded is None and dim is None:
                    return None
                name = self.embedder_name or (
                    recorded.embedder if recorded is not None else DEFAULT_EMBEDDER_NAME
                )
                use_dim = dim if dim is not None else recorded.dim  # type: ignore[union-attr]
                mem = VectorMemory(
                    store=self._store, embedder=_GivenVectors(name, use_dim), fusion=self._fusion
                )
                mem.space  # noqa: B018  (connect: raises on a different name or dimension)
                self._memory = mem
            elif dim is not None and dim != self._memory.space.dim:
                raise DimensionMismatchError(
                    f"embeddings have dimension {dim}, the store has {self._memory.space.dim}"
                )
            return self._memory

    # ------------------------------------------------------------------ writes
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes with their embeddings; an existing id is overwritten. Atomic per call
        on stores with transactions."""
        _reject(add_kwargs, "add")
        if not nodes:
            return []
        chunks: list[Chunk] = []
        rows: list[list[float]] = []
        seen: set[str] = set()
        for node in nodes:
            if node.embedding is None:
                raise InvalidInputError(f"node {node.node_id!r} has no embedding")
            if node.node_id in seen:
                raise InvalidInputError(f"node id {node.node_id!r} appears twice in one add")
            seen.add(node.node_id)
            text = node.get_content(metadata_mode=MetadataMode.NONE)
            if not text.strip():
                raise InvalidInputError(f"node {node.node_id!r} has empty text")
            meta = node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)
            doc_id = node.ref_doc_id or node.node_id
            chunks.append(Chunk.create(doc_id, 0, text, meta, id=node.node_id))
            rows.append(list(node.embedding))
        dims = {len(r) for r in rows}
        if len(dims) != 1:
            raise DimensionMismatchError(f"nodes have embeddings of dimensions {sorted(dims)}")
        mem = self._mem(dims.pop())
        if mem is None:  # cannot happen: a dimension was given
            raise ConfigurationError("the store could not be connected")
        mem.store.upsert(chunks, normalize(np.asarray(rows, dtype=np.float32)))
        return [c.id for c in chunks]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        _reject(kwargs, "async_add")
        return await asyncio.to_thread(self.add, nodes)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the document ``ref_doc_id`` (nothing if there is none)."""
        _reject(delete_kwargs, "delete")
        mem = self._mem()
        if mem is None:
            return
        ids = [c.id for c in mem.store.get_by_document([ref_doc_id])]
        if ids:
            mem.store.delete(ids=ids)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        _reject(delete_kwargs, "adelete")
        await asyncio.to_thread(self.delete, ref_doc_id)

    def delete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete the nodes with these ids, those matching ``filters``, or -- given both -- the
        listed nodes that match. Neither raises: use :meth:`clear` to delete everything."""
        _reject(delete_kwargs, "delete_nodes")
        flt = parse_filter(to_vecmem_filter(filters))
        if node_ids is None and flt is None:
            raise InvalidInputError("delete_nodes needs node_ids or filters; clear() deletes all")
        mem = self._mem()
        if mem is None:
            return
        if node_ids is not None:
            ids = list(node_ids)
            if flt is not None:
                ids = [c.id for c in mem.store.get(ids) if matches(flt, c.metadata)]
            if ids:
                mem.store.delete(ids=ids)
        else:
            mem.store.delete(filter=flt)

    async def adelete_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
        **delete_kwargs: Any,
    ) -> None:
        _reject(delete_kwargs, "adelete_nodes")
        await asyncio.to_thread(self.delete_nodes, node_ids, filters)

    def clear(self) -> None:
        """Delete every node."""
        mem = self._mem()
        if mem is not None:
            mem.store.delete(filter=parse_filter(_ALL))

    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    # ------------------------------------------------------------------ reads
    def get_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        """Nodes by id (in the order given, missing ones left out) and/or by filter; with
        neither, every node (ordered by id)."""
        flt = parse_filter(to_vecmem_filter(filters))
        mem = self._mem()
        if mem is None:
            return []
        if node_ids is not None:
            chunks = [c for c in mem.store.get(list(node_ids)) if matches(flt, c.metadata)]
        else:
            chunks = sorted(self._all(mem, flt), key=lambda c: c.id)
        return [self._node(c) for c in chunks]

    async def aget_nodes(
        self,
        node_ids: list[str] | None = None,
        filters: MetadataFilters | None = None,
    ) -> list[BaseNode]:
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    @staticmethod
    def _all(mem: VectorMemory, flt: Filter | None) -> list[Chunk]:
        n = mem.store.count(flt)
        if n == 0:
            return []
        probe = np.zeros(mem.space.dim, dtype=np.float32)
        probe[0] = 1.0
        return [s.chunk for s in mem.store.query(probe, k=n, filter=flt)]

    @staticmethod
    def _node(chunk: Chunk) -> BaseNode:
        meta = dict(chunk.metadata)
        if "_node_content" in meta:
            try:
                return metadata_dict_to_node(meta, text=chunk.text)
            except (ValueError, TypeError) as exc:
                raise IntegrityError(f"node {chunk.id!r} cannot be decoded: {exc}") from exc
        relations = {}
        if chunk.document_id != chunk.id:  # a chunk written by vecmem itself
            relations[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=chunk.document_id)
        return TextNode(id_=chunk.id, text=chunk.text, metadata=meta, relationships=relations)

    def _filter(self, query: VectorStoreQuery) -> Filter | None:
        parts = []
        given = to_vecmem_filter(query.filters)
        if given is not None:
            parts.append(given)
        if query.doc_ids:  # an empty list restricts nothing (LlamaIndex's convention)
            parts.append({"ref_doc_id": {"$in": list(query.doc_ids)}})
        if not parts:
            return None
        return parse_filter(parts[0] if len(parts) == 1 else {"$and": parts})

    @staticmethod
    def _vector(query: VectorStoreQuery, mode: VectorStoreQueryMode) -> np.ndarray:
        if query.query_embedding is None:
            raise InvalidInputError(f"query mode {mode.value!r} needs query_embedding")
        return normalize(np.asarray(query.query_embedding, dtype=np.float32))[0]

    @staticmethod
    def _exact(
        mem: VectorMemory, qv: np.ndarray, node_ids: Sequence[str], flt: Filter | None, k: int
    ) -> list[Hit]:
        chunks = [c for c in mem.store.get(list(node_ids)) if matches(flt, c.metadata)]
        if not chunks:
            return []
        sims = mem.store.get_vectors([c.id for c in chunks]) @ qv
        order = sorted(range(len(chunks)), key=lambda i: (-sims[i], chunks[i].id))[:k]
        return [Hit(chunks[i], float(sims[i]), Scores(vector=float(sims[i]))) for i in order]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Run a query (modes: default, hybrid, sparse, text_search, mmr). ``kwargs``:
        ``mmr_prefetch_k`` / ``mmr_prefetch_factor`` (MMR candidates; default 4 x top k)."""
        prefetch_k = kwargs.pop("mmr_prefetch_k", None)
        prefetch_factor = kwargs.pop("mmr_prefetch_factor", None)
        _reject(kwargs, "query")
        mode = VectorStoreQueryMode(query.mode)
        k = query.similarity_top_k
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise InvalidInputError(f"similarity_top_k must be a positive integer, got {k!r}")
        flt = self._filter(query)
        # VectorStoreIndex.as_retriever passes node_ids=[] for "no restriction"
        node_ids = list(query.node_ids) if query.node_ids else None
        if node_ids is not None and mode not in (
            VectorStoreQueryMode.DEFAULT,
            VectorStoreQueryMode.MMR,
        ):
            raise UnsupportedFilterError(f"node_ids cannot restrict a {mode.value!r} query")
        dim = len(query.query_embedding) if query.query_embedding is not None else None
        mem = self._mem(dim)
        if mem is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        if mode is VectorStoreQueryMode.DEFAULT:
            qv = self._vector(query, mode)
            hits = (
                self._exact(mem, qv, node_ids, flt, k)
                if node_ids is not None
                else mem.search_by_vector(qv, k, filter=flt)
            )
        elif mode is VectorStoreQueryMode.HYBRID:
            qv = self._vector(query, mode)
            if not query.query_str:
                raise InvalidInputError("a hybrid query needs query_str")
            fusion = Fusion(method="convex", alpha=query.alpha) if query.alpha is not None else None
            top = query.hybrid_top_k or k
            candidates = max(top, k, query.sparse_top_k) if query.sparse_top_k else None
            hits = mem.search(
                query.query_str,
                top,
                mode="hybrid",
                filter=flt,
                vector=qv,
                fusion=fusion,
                candidates=candidates,
                rerank=False,
            )
        elif mode in _TEXT_MODES:
            if not query.query_str:
                raise InvalidInputError(f"a {mode.value!r} query needs query_str")
            hits = mem.search(
                query.query_str, query.sparse_top_k or k, mode="keyword", filter=flt, rerank=False
            )
        elif mode is VectorStoreQueryMode.MMR:
            qv = self._vector(query, mode)
            reranker = MMRReranker(0.5 if query.mmr_threshold is None else query.mmr_threshold)
            fetch = int(prefetch_k or max(k, round(k * float(prefetch_factor or 4.0))))
            cands = (
                self._exact(mem, qv, node_ids, flt, fetch)
                if node_ids is not None
                else mem.search_by_vector(qv, fetch, filter=flt)
            )
            hits = []
            if cands:
                vectors = mem.store.get_vectors([h.id for h in cands])
                hits = reranker.rerank_vectors(qv, cands, vectors, k=k)
        else:
            raise ConfigurationError(
                f"query mode {mode.value!r} is not supported by vecmem; use default, hybrid, "
                "sparse, text_search or mmr"
            )
        return VectorStoreQueryResult(
            nodes=[self._node(h.chunk) for h in hits],
            similarities=[h.score for h in hits],
            ids=[h.id for h in hits],
        )

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)

    def close(self) -> None:
        self._store.close()
