"""``VecmemVectorDb``: an agno ``VectorDb`` over any vecmem store or ``VectorMemory``.

agno's ``Knowledge`` reads, chunks and hands documents over; vecmem embeds (with its embedder,
or an agno embedder wrapped by :class:`~agno_vecmem.embedder.AgnoEmbedder`), stores them and
searches (hybrid BM25 + vectors by default, or vector / keyword). Each agno ``Document`` is one
vecmem chunk: its ``meta_data`` are the chunk's metadata (so agno filters become vecmem filters,
applied before top-k), and agno's bookkeeping lives beside them under reserved keys:

``_agno_id``      the chunk id (a digest of the document id, content hash and owner)
``_agno_doc_id``  the agno document id        ``_agno_name``          its name
``_agno_hash``    the content hash            ``_agno_content_id``    the content id
``_agno_user``    the owner (absent: shared content, readable by every user)

The chunk's vecmem document id is the content id (else the content hash), so every chunk of a
piece of content can be fetched and rewritten together (``update_metadata``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from typing import Any

from agno.knowledge.document import Document
from agno.knowledge.embedder import Embedder as AgnoBaseEmbedder
from agno.utils.log import log_debug, log_warning
from agno.vectordb.base import VectorDb
from agno.vectordb.search import SearchType

from agno_vecmem.embedder import AgnoEmbedder
from agno_vecmem.filters import to_vecmem_filter
from vecmem.embedders import Embedder
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.memory import VectorMemory
from vecmem.stores.base import VectorStore
from vecmem.types import Chunk, Hit

ID, DOC_ID, NAME, HASH, CONTENT_ID, USER = (
    "_agno_id",
    "_agno_doc_id",
    "_agno_name",
    "_agno_hash",
    "_agno_content_id",
    "_agno_user",
)
RESERVED = (ID, DOC_ID, NAME, HASH, CONTENT_ID, USER)
_EVERYTHING = {"$or": [{ID: {"$exists": True}}, {ID: {"$exists": False}}]}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def _owner(user_id: str | None) -> dict[str, Any]:
    """Exactly one owner's rows (``None``: the shared rows)."""
    return {USER: {"$exists": False}} if user_id is None else {USER: user_id}


def _readable_by(user_id: str | None) -> dict[str, Any] | None:
    """What a search by ``user_id`` may see: its own rows and the shared ones (``None``: all)."""
    if user_id is None:
        return None
    return {"$or": [{USER: user_id}, {USER: {"$exists": False}}]}


def _and(*parts: dict[str, Any] | None) -> dict[str, Any] | None:
    kept = [p for p in parts if p]
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else {"$and": kept}


class VecmemVectorDb(VectorDb):
    """agno's ``VectorDb`` on vecmem: the embedded default, pgvector, Qdrant, Chroma, ...

    ``memory`` is a :class:`~vecmem.VectorMemory`, a vecmem store (``PgVector(...)``), a folder
    (the embedded default), a URL, or ``None`` for an in-memory store. ``embedder`` is an agno
    ``Embedder``, a vecmem embedder or name (default: the store's recorded embedder, else
    all-MiniLM-L6-v2). ``search_type`` picks hybrid (default), vector or keyword search.

    >>> from agno.knowledge.knowledge import Knowledge                     # doctest: +SKIP
    >>> kb = Knowledge(vector_db=VecmemVectorDb("./kb"))                    # doctest: +SKIP
    >>> kb.insert(text_content="We deploy on Fridays.", metadata={"team": "ops"})  # doctest: +SKIP
    >>> kb.search("when do we deploy?", filters={"team": "ops"})            # doctest: +SKIP
    """

    def __init__(
        self,
        memory: VectorMemory | VectorStore | str | os.PathLike[str] | None = None,
        *,
        embedder: AgnoBaseEmbedder | Embedder | str | None = None,
        search_type: SearchType | str = SearchType.hybrid,
        name: str | None = None,
        description: str | None = None,
        id: str | None = None,
        similarity_threshold: float | None = None,
    ) -> None:
        super().__init__(
            id=id, name=name, description=description, similarity_threshold=similarity_threshold
        )
        try:
            self.search_type = SearchType(search_type)
        except ValueError as exc:
            raise ConfigurationError(
                f"search_type must be vector, keyword or hybrid, got {search_type!r}"
            ) from exc
        # agno embeds documents itself before some replacements when the store has an agno
        # embedder; vecmem embeds everything else.
        self.embedder: AgnoBaseEmbedder | None = None
        vm_embedder: Embedder | str | None
        if isinstance(embedder, AgnoBaseEmbedder):
            self.embedder = embedder
            vm_embedder = AgnoEmbedder(embedder)
        else:
            vm_embedder = embedder
        if isinstance(memory, VectorMemory):
            if embedder is not None:
                raise ConfigurationError("pass embedder= to the VectorMemory, not to both")
            self.memory = memory
        else:
            self.memory = VectorMemory(memory, embedder=vm_embedder)

    # ----------------------------------------------------------------- lifecycle
    def create(self) -> None:
        self.memory.space  # noqa: B018 - connecting creates the collection

    async def async_create(self) -> None:
        await asyncio.to_thread(self.create)

    def exists(self) -> bool:
        return self.memory.store.stored_space() is not None

    async def async_exists(self) -> bool:
        return await asyncio.to_thread(self.exists)

    def drop(self) -> None:
        """Delete the collection (its tables/files where the store can drop them, else every
        chunk)."""
        drop = getattr(self.memory.store, "drop", None)
        if drop is not None:
            drop()
            self.memory._space = None  # reconnect (and recreate) on next use
        elif self.exists():
            self.memory.delete(filter=_EVERYTHING)

    async def async_drop(self) -> None:
        await asyncio.to_thread(self.drop)

    def get_count(self) -> int:
        return self.memory.count() if self.exists() else 0

    def get_supported_search_types(self) -> list[str]:
        return [SearchType.vector.value, SearchType.keyword.value, SearchType.hybrid.value]

    def upsert_available(self) -> bool:
        return True

    def optimize(self) -> None:
        pass  # vecmem's stores maintain their indexes on write

    # ----------------------------------------------------------------- existence checks
    def _count(self, flt: dict[str, Any]) -> int:
        return self.memory.count(flt) if self.exists() else 0

    def name_exists(self, name: str) -> bool:
        return self._count({NAME: name}) > 0

    async def async_name_exists(self, name: str) -> bool:  # type: ignore[override]
        return await asyncio.to_thread(self.name_exists, name)

    def id_exists(self, id: str) -> bool:
        return self._count({"$or": [{ID: id}, {DOC_ID: id}]}) > 0

    def content_hash_exists(self, content_hash: str, user_id: str | None = None) -> bool:
        return self._count({HASH: content_hash, **_owner(user_id)}) > 0

    # ----------------------------------------------------------------- writes
    def _chunks(
        self,
        content_hash: str,
        documents: Sequence[Document],
        filters: dict[str, Any] | None,
        user_id: str | None,
    ) -> list[Chunk]:
        if not isinstance(content_hash, str) or not content_hash:
            raise InvalidInputError("content_hash must be a non-empty string")
        if user_id is not None and (not isinstance(user_id, str) or not user_id):
            raise InvalidInputError(f"user_id must be a non-empty string or None, got {user_id!r}")
        by_id: dict[str, Chunk] = {}  # the same chunk twice in a batch: the last one wins
        skipped = 0
        for pos, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise InvalidInputError(f"expected agno Documents, got {type(doc).__name__}")
            if not doc.content or not doc.content.strip():
                skipped += 1
                continue
            meta = dict(doc.meta_data or {})
            if filters:
                meta.update(filters)
            clash = [k for k in meta if k in RESERVED]
            if clash:
                raise InvalidInputError(f"metadata keys {clash} are reserved by agno-vecmem")
            base = doc.id or _digest(doc.content)
            cid = _digest(base, content_hash, user_id or "")
            meta.update({ID: cid, DOC_ID: base, HASH: content_hash})
            if doc.name is not None:
                meta[NAME] = doc.name
            if doc.content_id is not None:
                meta[CONTENT_ID] = doc.content_id
            if user_id is not None:
                meta[USER] = user_id
            by_id[cid] = Chunk.create(
                doc.content_id or f"hash:{content_hash}", pos, doc.content, meta, id=cid
            )
        if skipped:
            log_warning(f"Skipping {skipped} empty document(s): they cannot be retrieved")
        return list(by_id.values())

    def insert(
        self,
        content_hash: str,
        documents: list[Document],
        filters: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> None:
        """Embed and store ``documents`` (``filters`` are added to each one's metadata)."""
        chunks = self._chunks(content_hash, documents, filters, user_id)
        if chunks:
            self.memory.add_chunks(chunks)
            log_debug(f"Inserted {len(chunks)} documents into {self.memory.store.name}")

    async def async_insert(
        self,
        content_hash: str,
        documents: list[Document],
        filters: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> None:
        await asyncio.to_thread(self.insert, content_hash, documents, filters, user_id)

    def upsert(
        self,
        content_hash: str,
        documents: list[Document],
        filters: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> None:
        """Replace what this owner stored under ``content_hash`` by ``documents``: the new
        chunks are written first, then the old ones they do not overwrite are deleted, so a
        failure never leaves less than was there."""
        chunks = self._chunks(content_hash, documents, filters, user_id)
        if chunks:
            self.memory.add_chunks(chunks)
        if self.exists():
            stale = {HASH: content_hash, **_owner(user_id)}
            if chunks:
                stale[ID] = {"$nin": [c.id for c in chunks]}
            self.memory.delete(filter=stale)

    async def async_upsert(
        self,
        content_hash: str,
        documents: list[Document],
        filters: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> None:
        await asyncio.to_thread(self.upsert, content_hash, documents, filters, user_id)

    def update_metadata(self, content_id: str, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into every chunk of ``content_id`` (vectors are kept)."""
        clash = [k for k in metadata if k in RESERVED]
        if clash:
            raise InvalidInputError(f"metadata keys {clash} are reserved by agno-vecmem")
        if not self.exists():
            return
        self.memory.space  # noqa: B018
        store = self.memory.store
        old = [
            c
            for c in store.get_by_document([content_id])
            if c.metadata.get(CONTENT_ID) == content_id
        ]
        if not old:
            log_debug(f"No documents with content_id {content_id!r}")
            return
        new = [
            Chunk.create(c.document_id, c.position, c.text, {**c.metadata, **metadata}, id=c.id)
            for c in old
        ]
        store.upsert(new, store.get_vectors([c.id for c in old]))

    # ----------------------------------------------------------------- deletes
    def _delete(self, flt: dict[str, Any]) -> bool:
        return self.exists() and self.memory.delete(filter=flt) > 0

    def delete(self) -> bool:
        """Delete every chunk of the collection."""
        return self._delete(_EVERYTHING)

    def delete_by_id(self, id: str) -> bool:
        return self._delete({"$or": [{ID: id}, {DOC_ID: id}]})

    def delete_by_name(self, name: str) -> bool:
        return self._delete({NAME: name})

    def delete_by_metadata(self, metadata: dict[str, Any]) -> bool:
        flt = to_vecmem_filter(metadata)
        if flt is None:
            raise InvalidInputError("delete_by_metadata needs a non-empty metadata dict")
        return self._delete(flt)

    def delete_by_content_id(self, content_id: str, user_id: str | None = None) -> bool:
        """Delete the chunks of ``content_id`` (only ``user_id``'s when given)."""
        flt = {CONTENT_ID: content_id}
        if user_id is not None:
            flt[USER] = user_id
        return self._delete(flt)

    # ----------------------------------------------------------------- search
    def _document(self, hit: Hit) -> Document:
        meta = {k: v for k, v in hit.metadata.items() if k not in RESERVED}
        meta["similarity_score"] = hit.score
        return Document(
            content=hit.text,
            id=hit.metadata.get(DOC_ID, hit.id),
            name=hit.metadata.get(NAME),
            meta_data=meta,
            content_id=hit.metadata.get(CONTENT_ID),
        )

    def search(
        self, query: str, limit: int = 5, filters: Any | None = None, user_id: str | None = None
    ) -> list[Document]:
        """The ``limit`` best documents for ``query`` among those ``filters`` select (applied
        before top-k) and ``user_id`` may read (its own and shared content)."""
        flt = _and(to_vecmem_filter(filters), _readable_by(user_id))
        if not self.exists():
            return []
        hits = self.memory.search(
            query,
            k=limit,
            mode=self.search_type.value,  # type: ignore[arg-type]
            filter=flt,
        )
        if self.similarity_threshold is not None:
            hits = [h for h in hits if h.score >= self.similarity_threshold]
        docs = [self._document(h) for h in hits]
        if self.reranker is not None and docs:  # deprecated in agno: Knowledge(reranker=...)
            docs = self.reranker.rerank(query=query, documents=docs)
        return docs

    async def async_search(
        self, query: str, limit: int = 5, filters: Any | None = None, user_id: str | None = None
    ) -> list[Document]:
        return await asyncio.to_thread(self.search, query, limit, filters, user_id)

    def __repr__(self) -> str:
        return f"VecmemVectorDb({self.memory!r}, search_type={self.search_type.value!r})"
