"""PraisonAI's ``KnowledgeStore`` (collections of documents with their embeddings) on vecmem.

Each collection is one vecmem vector store: a sub-folder of the embedded default
(``url="./kb"``), a pgvector collection (``url="postgresql://..."``) or an in-memory store
(``url="memory://"``). PraisonAI computes the embeddings; vecmem stores them with the text and
records the collection's dimension, so a vector of another size is refused instead of mixed in.
The collections and their settings are listed in a vecmem state store beside them.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
from praisonai.persistence.knowledge.base import KnowledgeDocument, KnowledgeStore

from vecmem.errors import ConflictError, InvalidInputError, NotFoundError
from vecmem.filters import parse_filter
from vecmem.registry import STATE_STORES
from vecmem.stores import DroppableStore, VectorStore, open_store
from vecmem.types import Chunk, EmbeddingSpace, content_hash

EMBEDDER = "praisonai:external"
"""The embedder name vecmem records: PraisonAI brings its own vectors."""
_CATALOGUE = "praisonai.collections"
_CREATED = "praisonai_created_at"


def _is_folder(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


class VecmemKnowledgeStore(KnowledgeStore):
    """PraisonAI knowledge on vecmem's embedded default, pgvector or memory.

    >>> kb = VecmemKnowledgeStore("memory://")
    >>> kb.create_collection("docs", dimension=2)
    >>> kb.insert("docs", [KnowledgeDocument(id="a", content="hi", embedding=[1.0, 0.0])])
    ['a']
    >>> [d.id for d in kb.search("docs", [1.0, 0.1], limit=1)]
    ['a']
    """

    def __init__(self, url: str, *, catalogue: str | None = None) -> None:
        if not isinstance(url, str) or not url:
            raise InvalidInputError("url must be a folder or a vecmem store URL")
        self._url = url[len("file://") :] if url.startswith("file://") else url
        if catalogue is None:
            if _is_folder(url):
                Path(self._url).mkdir(parents=True, exist_ok=True)
                catalogue = f"sqlite:///{Path(self._url).resolve()}/collections.db"
            elif url.startswith("memory://"):
                catalogue = "memory://"
            else:  # the database itself (postgresql://...): its query names a collection
                catalogue = urlunsplit(urlsplit(url)._replace(query=""))
        self._catalogue = STATE_STORES.create(catalogue)
        self._open: dict[str, VectorStore] = {}
        self._lock = threading.Lock()

    # --------------------------------------------------------------- collections
    def _location(self, name: str) -> str:
        if not isinstance(name, str) or not name or "/" in name or name.startswith("."):
            raise InvalidInputError(f"collection name must be a plain name, got {name!r}")
        if _is_folder(self._url):
            return str(Path(self._url) / name)
        if self._url.startswith("memory://"):
            return "memory://"  # a new in-memory store, kept open in self._open
        parts = urlsplit(self._url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "collection"]
        return urlunsplit(parts._replace(query=urlencode([*query, ("collection", name)])))

    def _store(self, name: str, dimension: int | None = None) -> VectorStore:
        with self._lock:
            store = self._open.get(name)
            if store is not None:
                return store
            settings = self._catalogue.get(_CATALOGUE, name)
            if settings is None:
                if dimension is None:
                    raise NotFoundError(f"no PraisonAI collection {name!r}")
                self.create_collection(name, dimension)
                settings = self._catalogue.get(_CATALOGUE, name)
            store = open_store(self._location(name))
            store.connect(EmbeddingSpace(embedder=EMBEDDER, dim=int(settings["dimension"])))
            self._open[name] = store
            return store

    def create_collection(
        self,
        name: str,
        dimension: int,
        distance: str = "cosine",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._location(name)
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise InvalidInputError(f"dimension must be an int >= 1, got {dimension!r}")
        if distance != "cosine":
            raise InvalidInputError(f"vecmem collections use cosine distance, not {distance!r}")
        settings = {"dimension": dimension, "distance": distance, "metadata": metadata or {}}
        current = self._catalogue.get_entry(_CATALOGUE, name)
        if current is not None:
            if current.value["dimension"] != dimension:
                raise ConflictError(
                    f"collection {name!r} exists with dimension {current.value['dimension']}"
                )
            return
        self._catalogue.compare_and_set(_CATALOGUE, name, settings, expected_version=0)

    def delete_collection(self, name: str) -> bool:
        if self._catalogue.get(_CATALOGUE, name) is None:
            return False
        store = self._store(name)
        with self._lock:
            self._open.pop(name, None)
        if isinstance(store, DroppableStore):
            store.drop()
            store.close()
        else:
            store.close()
            if _is_folder(self._url):
                shutil.rmtree(self._location(name), ignore_errors=False)
        return self._catalogue.delete(_CATALOGUE, name)

    def collection_exists(self, name: str) -> bool:
        return self._catalogue.get(_CATALOGUE, name) is not None

    def list_collections(self) -> list[str]:
        return self._catalogue.keys(_CATALOGUE)

    # --------------------------------------------------------------- documents
    @staticmethod
    def _chunks(documents: list[KnowledgeDocument]) -> tuple[list[Chunk], np.ndarray]:
        if not isinstance(documents, list | tuple) or not all(
            isinstance(d, KnowledgeDocument) for d in documents
        ):
            raise InvalidInputError("documents must be a list of KnowledgeDocument")
        if any(d.embedding is None for d in documents):
            raise InvalidInputError("every KnowledgeDocument needs its embedding")
        chunks = [
            Chunk(
                d.id,
                d.id,
                0,
                d.content,
                {**(d.metadata or {}), _CREATED: d.created_at},
                content_hash(d.content),
            )
            for d in documents
        ]
        return chunks, np.asarray([d.embedding for d in documents], dtype=np.float32)

    def upsert(self, collection: str, documents: list[KnowledgeDocument]) -> list[str]:
        chunks, vectors = self._chunks(documents)
        if not chunks:
            return []
        self._store(collection, dimension=vectors.shape[1]).upsert(chunks, vectors)
        return [c.id for c in chunks]

    def insert(self, collection: str, documents: list[KnowledgeDocument]) -> list[str]:
        """Add new documents; an id already in the collection raises ``ConflictError`` and
        nothing is written (``upsert`` replaces)."""
        chunks, vectors = self._chunks(documents)
        if not chunks:
            return []
        store = self._store(collection, dimension=vectors.shape[1])
        taken = [c.id for c in store.get([c.id for c in chunks])]
        if taken:
            raise ConflictError(f"collection {collection!r} already holds {taken[:5]}")
        store.upsert(chunks, vectors)
        return [c.id for c in chunks]

    @staticmethod
    def _document(chunk: Chunk, embedding: list[float] | None = None) -> KnowledgeDocument:
        meta = dict(chunk.metadata)
        created = meta.pop(_CREATED, 0.0)
        return KnowledgeDocument(
            id=chunk.id,
            content=chunk.text,
            embedding=embedding,
            metadata=meta,
            created_at=created,
        )

    def search(
        self,
        collection: str,
        query_embedding: list[float],
        limit: int = 5,
        filters: dict[str, Any] | None = None,
        score_threshold: float | None = None,
    ) -> list[KnowledgeDocument]:
        """Nearest documents by cosine similarity (vecmem's filters: a dict is equality per key,
        ``{"year": {"$gte": 2020}}`` style operators pass through); ``score_threshold`` keeps
        similarities at or above it. The score is in ``metadata["score"]``."""
        store = self._store(collection)
        hits = store.query(
            np.asarray(query_embedding, dtype=np.float32), k=limit, filter=parse_filter(filters)
        )
        out = []
        for chunk, score in hits:
            if score_threshold is not None and score < score_threshold:
                continue
            doc = self._document(chunk)
            doc.metadata = {**(doc.metadata or {}), "score": float(score)}
            out.append(doc)
        return out

    def get(self, collection: str, ids: list[str]) -> list[KnowledgeDocument]:
        store = self._store(collection)
        chunks = store.get(ids)
        vectors = store.get_vectors([c.id for c in chunks]) if chunks else []
        return [self._document(c, [float(x) for x in v]) for c, v in zip(chunks, vectors)]

    def delete(
        self,
        collection: str,
        ids: list[str] | None = None,
        filters: dict[str, Any] | None = None,
    ) -> int:
        if ids is None and not filters:
            raise InvalidInputError("delete needs ids or filters (delete_collection drops all)")
        return self._store(collection).delete(ids=ids, filter=parse_filter(filters))

    def count(self, collection: str) -> int:
        return self._store(collection).count()

    def close(self) -> None:
        with self._lock:
            stores, self._open = list(self._open.values()), {}
        for store in stores:
            store.close()
        self._catalogue.close()
