"""Vector stores: the in-memory reference, the embedded default and the database adapters.

Adapters import their client lazily, so ``import vecmem.stores`` needs only the base install::

    from vecmem.stores import PgVector, Qdrant, ChromaDb, LanceDb, PineconeDb
    VectorMemory(store=PgVector(db_url="postgresql://..."))
    VectorMemory("postgresql://...")          # the same, by URL (see open_store)
    VectorMemory("qdrant://:memory:")         # any name, alias or URL KNOWLEDGE_STORES knows
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from vecmem.errors import ConfigurationError, VecmemError
from vecmem.registry import KNOWLEDGE_STORES, LazyFactory, Registry
from vecmem.stores.base import (
    BothLegsStore,
    Capabilities,
    DroppableStore,
    HybridStore,
    OptimizableStore,
    RefreshableStore,
    VectorStore,
)
from vecmem.stores.memory import MemoryStore

# public class name -> module (module name == pip extra == URL scheme key)
_LAZY = {
    "EmbeddedStore": "embedded",
    "PgVector": "pgvector",
    "Qdrant": "qdrant",
    "ChromaDb": "chroma",
    "LanceDb": "lancedb",
    "PineconeDb": "pinecone",
    "DuckDb": "duckdb",
    "Milvus": "milvus",
    "LangChain": "langchain",
    "LlamaIndex": "llamaindex",
}

# The built-ins, registered exactly as a plugin registers (a plugin names its factory in the
# ``vecmem.knowledge_stores`` entry-point group instead). Names and aliases double as URL schemes
# (``qdrant+http://`` -> ``qdrant``). Adding a backend is one line:
#     KNOWLEDGE_STORES.register("milvus", LazyFactory("vecmem.stores.milvus:Milvus"))
# where the module's ``from_url(url)`` opens it from a URL (or pass from_url="module:function").
KNOWLEDGE_STORES.register(
    "memory",
    LazyFactory("vecmem.stores.memory:MemoryStore", from_url="vecmem.stores:memory_from_url"),
)
KNOWLEDGE_STORES.register(
    "embedded",
    LazyFactory("vecmem.stores.embedded:EmbeddedStore", from_url="vecmem.stores:embedded_from_url"),
    aliases=("file",),
)
KNOWLEDGE_STORES.register(
    "pgvector", LazyFactory("vecmem.stores.pgvector:PgVector"), aliases=("postgresql", "postgres")
)
KNOWLEDGE_STORES.register("qdrant", LazyFactory("vecmem.stores.qdrant:Qdrant"))
KNOWLEDGE_STORES.register(
    "chroma", LazyFactory("vecmem.stores.chroma:ChromaDb"), aliases=("chromadb",)
)
KNOWLEDGE_STORES.register("lancedb", LazyFactory("vecmem.stores.lancedb:LanceDb"))
KNOWLEDGE_STORES.register("pinecone", LazyFactory("vecmem.stores.pinecone:PineconeDb"))
KNOWLEDGE_STORES.register("duckdb", LazyFactory("vecmem.stores.duckdb:DuckDb"))
KNOWLEDGE_STORES.register("milvus", LazyFactory("vecmem.stores.milvus:Milvus"))
KNOWLEDGE_STORES.register(
    "langchain", LazyFactory("vecmem.stores.langchain:LangChain"), aliases=("langchain_adapter",)
)
KNOWLEDGE_STORES.register(
    "llamaindex",
    LazyFactory("vecmem.stores.llamaindex:LlamaIndex"),
    aliases=("llama_index", "llamaindex_adapter"),
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vecmem.stores' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vecmem.stores.{module}"), name)


def memory_from_url(url: str) -> MemoryStore:
    """``memory://``: a new, empty in-memory store."""
    if url.split("://", 1)[1]:
        raise ConfigurationError(
            f"an in-memory store takes no location: use 'memory://', not {url!r}"
        )
    return MemoryStore()


def embedded_from_url(url: str) -> VectorStore:
    """``file:///abs/dir`` or ``file://./rel/dir``: the embedded store in that folder."""
    from vecmem.stores.embedded import EmbeddedStore

    path = url.split("://", 1)[1]
    if not path:
        raise ConfigurationError(f"{url!r} names no folder: use file:///abs/dir or file://./dir")
    return EmbeddedStore(Path(path))


def open_store(target: str | os.PathLike[str] | None) -> VectorStore:
    """A store from a folder path, a registered name or URL, or ``None``.

    ``None`` -> :class:`MemoryStore`; a path -> the embedded default in that folder; anything
    :data:`vecmem.registry.KNOWLEDGE_STORES` knows -> that store: ``memory://``,
    ``file:///dir``, ``postgresql://...`` (PgVector), ``qdrant://:memory:``, ``qdrant:///path``,
    ``qdrant+http://host:6333``, ``chroma:///path``, ``chroma+http://host:8000``,
    ``lancedb:///path``, ``pinecone://index-name``, ``duckdb:///file.duckdb``,
    ``milvus:///file.db``, ``milvus+http://host:19530``, a plugin's ``scheme://...``, or a bare name
    (``"memory"``). Add ``?collection=NAME`` to pick a collection. A bare name that is also an
    existing path is refused as ambiguous (write ``./name`` for the folder).
    """
    if target is None:
        return MemoryStore()
    if isinstance(target, str) and not target:
        raise ConfigurationError(
            'the store path is empty: pass a folder ("." for the current '
            "one), a URL, or None for an in-memory store"
        )
    if not isinstance(target, str):
        from vecmem.stores.embedded import EmbeddedStore

        return EmbeddedStore(Path(os.fspath(target)))
    if "://" not in target and KNOWLEDGE_STORES.key_of(target) is None:
        from vecmem.stores.embedded import EmbeddedStore

        return EmbeddedStore(Path(target))  # a folder
    if "://" not in target and os.path.exists(target):
        raise ConfigurationError(
            f"{target!r} is both a registered store name and an existing path: write "
            f"'./{target}' for the folder or '{target}://...' for the store"
        )
    # Registry.create, not KNOWLEDGE_STORES.create: the file stores' deprecated spelling does
    # not apply here (a file store is no vector store)
    try:
        store = Registry.create(KNOWLEDGE_STORES, target)
    except ValueError as exc:  # urllib's "Invalid IPv6 URL", "Port could not be cast ..."
        if isinstance(exc, VecmemError):
            raise
        scheme = target.split("://", 1)[0]
        raise ConfigurationError(f"malformed {scheme}:// store URL: {exc}") from exc
    if not isinstance(store, VectorStore):
        raise ConfigurationError(
            f"{target!r} opened {type(store).__name__}, which does not "
            "implement the VectorStore protocol"
        )
    return store


__all__ = [
    "BothLegsStore",
    "Capabilities",
    "ChromaDb",
    "DroppableStore",
    "DuckDb",
    "EmbeddedStore",
    "HybridStore",
    "LanceDb",
    "LangChain",
    "LlamaIndex",
    "MemoryStore",
    "Milvus",
    "OptimizableStore",
    "PgVector",
    "PineconeDb",
    "Qdrant",
    "RefreshableStore",
    "VectorStore",
    "embedded_from_url",
    "memory_from_url",
    "open_store",
]
