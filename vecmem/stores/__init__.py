"""Vector stores: the in-memory reference, the embedded default and the database adapters.

Adapters import their client lazily, so ``import vecmem.stores`` needs only the base install::

    from vecmem.stores import PgVector, Qdrant, ChromaDb, LanceDb, PineconeDb
    VectorMemory(store=PgVector(db_url="postgresql://..."))
    VectorMemory("postgresql://...")          # the same, by URL (see open_store)
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from vecmem.errors import ConfigurationError
from vecmem.stores.base import Capabilities, HybridStore, VectorStore
from vecmem.stores.memory import MemoryStore

# public class name -> module (module name == pip extra == URL scheme key)
_LAZY = {
    "EmbeddedStore": "embedded",
    "PgVector": "pgvector",
    "Qdrant": "qdrant",
    "ChromaDb": "chroma",
    "LanceDb": "lancedb",
    "PineconeDb": "pinecone",
}

# URL scheme -> module whose ``from_url(url)`` builds the store
SCHEMES = {
    "postgresql": "pgvector",
    "postgres": "pgvector",
    "pgvector": "pgvector",
    "qdrant": "qdrant",
    "qdrant+http": "qdrant",
    "qdrant+https": "qdrant",
    "chroma": "chroma",
    "chroma+http": "chroma",
    "chroma+https": "chroma",
    "lancedb": "lancedb",
    "pinecone": "pinecone",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vecmem.stores' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vecmem.stores.{module}"), name)


def open_store(target: str | os.PathLike[str] | None) -> VectorStore:
    """A store from a folder path, a URL or ``None``.

    ``None`` or ``memory://`` -> :class:`MemoryStore`; a path or ``file:///dir`` -> the embedded
    default in that folder; ``postgresql://...`` -> PgVector; ``qdrant://:memory:``,
    ``qdrant:///path``, ``qdrant+http://host:6333`` -> Qdrant; ``chroma:///path``,
    ``chroma+http://host:8000`` -> ChromaDb; ``lancedb:///path`` -> LanceDb;
    ``pinecone://index-name`` -> PineconeDb. Add ``?collection=NAME`` to pick a collection.
    """
    if target is None:
        return MemoryStore()
    text = os.fspath(target)
    scheme, sep, _ = text.partition("://")
    if not sep:
        from vecmem.stores.embedded import EmbeddedStore

        return EmbeddedStore(Path(text))
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "file":
        from vecmem.stores.embedded import EmbeddedStore

        return EmbeddedStore(Path(text[len("file://") :]))
    module = SCHEMES.get(scheme)
    if module is None:
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r}; known: memory, file, {', '.join(sorted(SCHEMES))}"
        )
    return importlib.import_module(f"vecmem.stores.{module}").from_url(text)


__all__ = [
    "Capabilities",
    "ChromaDb",
    "EmbeddedStore",
    "HybridStore",
    "LanceDb",
    "MemoryStore",
    "PgVector",
    "PineconeDb",
    "Qdrant",
    "VectorStore",
    "open_store",
]
