"""Any LlamaIndex vector store as a vecmem store, vecmem's exact BM25 beside it.

vecmem embeds; the wrapped store holds the vectors (on ``TextNode.embedding``) and ranks them.
Give the store itself, or a factory taking the dimension::

    from llama_index.core.vector_stores import SimpleVectorStore
    store = LlamaIndex(SimpleVectorStore())
    store = LlamaIndex(lambda dim: QdrantVectorStore("kb", client=QdrantClient(":memory:")))

A chunk is a node whose id is a UUID derived from the chunk id (stores such as Qdrant take only
UUIDs) and whose metadata is ``{"_vm_id": chunk id}`` (stores such as Chroma take only flat
metadata; vecmem keeps the real metadata). Filters: vecmem's grammar is evaluated exactly and
reaches the store as a ``MetadataFilter`` ``_vm_id IN [...]`` -- the operator every LlamaIndex
store with filters supports, without the stores' own typing of values (the simple store calls
``True == 1``). ``filters="none"`` makes a filtered search raise
:class:`~vecmem.errors.UnsupportedFilterError`. What the bridge keeps in memory, and why, is in
:mod:`vecmem.stores._bridge`.

>>> VectorMemory(store=LlamaIndex(SimpleVectorStore()))                  # doctest: +SKIP
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from vecmem._deps import require
from vecmem.errors import ConfigurationError, UnsupportedFilterError
from vecmem.stores._bridge import BridgeStore
from vecmem.types import Chunk, EmbeddingSpace

_ID = "_vm_id"
_NS = uuid.UUID("5f0c1d9e-6a43-4a8e-9c1e-7d5b2f0a9e11")  # node id = uuid5(_NS, chunk id)


def node_id(chunk_id: str) -> str:
    """The node id of a chunk (a UUID, accepted by every LlamaIndex store)."""
    return str(uuid.uuid5(_NS, chunk_id))


class LlamaIndex(BridgeStore):
    """A LlamaIndex vector store as a vecmem store (see the module docstring).

    >>> from llama_index.core.vector_stores import SimpleVectorStore         # doctest: +SKIP
    >>> mem = VectorMemory(store=LlamaIndex(SimpleVectorStore()))            # doctest: +SKIP
    """

    name = "llamaindex"

    def __init__(self, store: Any, *, filters: Literal["metadata", "none"] = "metadata") -> None:
        super().__init__()
        if filters not in ("metadata", "none"):
            raise ConfigurationError(f"filters must be 'metadata' or 'none', not {filters!r}")
        self.store, self.filters = store, filters

    @property
    def where(self) -> str:
        kind = type(self._wrapped).__name__ if self._wrapped is not None else "store"
        return f"the wrapped LlamaIndex {kind}"

    def _make(self, space: EmbeddingSpace) -> Any:
        made = (
            self.store(space.dim)
            if callable(self.store) and not hasattr(self.store, "query")
            else self.store
        )
        if not all(hasattr(made, m) for m in ("add", "query", "delete_nodes")):
            raise ConfigurationError(
                f"{type(made).__name__} is not a LlamaIndex vector store (add, query, delete_nodes)"
            )
        return made

    def _add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        schema = require("llama_index.core.schema", "llamaindex")
        self._wrapped.add(
            [
                schema.TextNode(
                    id_=node_id(c.id), text=c.text, metadata={_ID: c.id}, embedding=v.tolist()
                )
                for c, v in zip(chunks, vectors)
            ]
        )

    def _remove(self, ids: Sequence[str]) -> None:
        self._wrapped.delete_nodes(node_ids=[node_id(i) for i in ids])

    def _rank(self, q: np.ndarray, k: int, allowed: set[str] | None) -> list[str]:
        vs = require("llama_index.core.vector_stores.types", "llamaindex")
        filters = None
        if allowed is not None:
            if self.filters == "none":
                raise UnsupportedFilterError(f"{self.where} was set up without filters")
            filters = vs.MetadataFilters(
                filters=[
                    vs.MetadataFilter(key=_ID, value=sorted(allowed), operator=vs.FilterOperator.IN)
                ]
            )
        res = self._wrapped.query(
            vs.VectorStoreQuery(query_embedding=q.tolist(), similarity_top_k=k, filters=filters)
        )
        by_node = {node_id(i): i for i in (allowed if allowed is not None else self._chunks)}
        if res.nodes:
            return [n.metadata.get(_ID) or by_node.get(n.node_id, n.node_id) for n in res.nodes]
        return [by_node.get(i, i) for i in res.ids or []]


__all__ = ["LlamaIndex", "node_id"]
