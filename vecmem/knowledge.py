"""``Knowledge``: the agent-facing face of a vector memory, shaped like agno's and phidata's.

>>> from vecmem import Knowledge
>>> from vecmem.stores import PgVector                                        # doctest: +SKIP
>>> kb = Knowledge(vector_db=PgVector(db_url="postgresql://u:p@localhost/db"))  # doctest: +SKIP
>>> kb.insert(path="docs/", metadata={"team": "search"})                      # doctest: +SKIP
>>> kb.search("how do we deploy?", max_results=5, filters={"team": "search"}) # doctest: +SKIP

Unchanged content is skipped on re-insert (chunk ids are stable and content-hashed), and every
method has an ``a``-prefixed async twin for agents running in an event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from vecmem.chunking import Chunker
from vecmem.embedders import Embedder
from vecmem.errors import InvalidInputError
from vecmem.filters import FilterLike
from vecmem.memory import AddResult, VectorMemory
from vecmem.rerank import Reranker, VectorReranker
from vecmem.stores.base import VectorStore
from vecmem.types import Document, Hit, content_hash


class Knowledge:
    """A knowledge base for agents over any vecmem store.

    ``vector_db`` is a store object (``PgVector(...)``, ``Qdrant(...)``, ...), a folder, or a
    name or URL :data:`vecmem.registry.KNOWLEDGE_STORES` knows (``"qdrant://:memory:"``,
    ``"postgresql://..."``, ``"chromadb"``, a plugin's); ``None`` is an in-memory store.
    """

    def __init__(
        self,
        vector_db: VectorStore | str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | str | None = None,
        reranker: Reranker | VectorReranker | str | None = None,
        chunker: Chunker | None = None,
        max_results: int = 10,
        search_mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
        name: str = "knowledge_base",
    ) -> None:
        if max_results <= 0:
            raise InvalidInputError("max_results must be > 0")
        self.memory = VectorMemory(vector_db, embedder=embedder, chunker=chunker, reranker=reranker)
        self.max_results = max_results
        self.search_mode = search_mode
        self.name = name

    # ------------------------------------------------------------------ insert
    def insert(
        self,
        *,
        text: str | Sequence[str] | None = None,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        documents: Sequence[Document] | None = None,
        metadata: Mapping[str, Any] | None = None,
        name: str | None = None,
        skip_if_exists: bool = True,
    ) -> AddResult:
        """Insert text(s), file(s)/folder(s)/URL(s) or documents. With ``skip_if_exists`` (the
        default) unchanged content is not re-embedded or rewritten; with ``False`` it is
        rewritten. Files are read as :meth:`VectorMemory.add_files` reads them (every format of
        :mod:`vecmem.loaders`); files that cannot be read are in the result's ``failed``."""
        if text is None and path is None and documents is None:
            raise InvalidInputError("insert needs text=, path= or documents=")
        meta = dict(metadata or {})
        if name is not None:
            meta.setdefault("name", name)
        docs: list[Document] = list(documents or [])
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            single = name if (name and len(texts) == 1) else None
            docs.extend(Document(single or _text_id(t), t, meta) for t in texts)
        result = self.memory.add_documents(docs, force=not skip_if_exists) if docs else None
        if path is not None:
            files = self.memory.add_files(path, metadata=meta, force=not skip_if_exists)
            if result is not None:
                files.merge(result)
            result = files
        return result if result is not None else AddResult()  # empty text= or documents=

    add_content = insert  # agno's name for the same call

    def search(
        self, query: str, max_results: int | None = None, filters: FilterLike = None
    ) -> list[Hit]:
        """The best chunks for ``query`` (hybrid by default), at most ``max_results``."""
        return self.memory.search(
            query, k=max_results or self.max_results, mode=self.search_mode, filter=filters
        )

    def delete(self, ids: Sequence[str] | None = None, *, filters: FilterLike = None) -> int:
        return self.memory.delete(ids, filter=filters)

    # ------------------------------------------------------------------ async twins
    async def ainsert(
        self,
        *,
        text: str | Sequence[str] | None = None,
        path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        documents: Sequence[Document] | None = None,
        metadata: Mapping[str, Any] | None = None,
        name: str | None = None,
        skip_if_exists: bool = True,
    ) -> AddResult:
        """Async :meth:`insert` (runs in a worker thread)."""
        return await asyncio.to_thread(
            lambda: self.insert(
                text=text,
                path=path,
                documents=documents,
                metadata=metadata,
                name=name,
                skip_if_exists=skip_if_exists,
            )
        )

    async def asearch(
        self, query: str, max_results: int | None = None, filters: FilterLike = None
    ) -> list[Hit]:
        """Async :meth:`search` (runs in a worker thread)."""
        return await asyncio.to_thread(self.search, query, max_results, filters)

    # ------------------------------------------------------------------ agent tools
    def retriever(self, query: str, num_documents: int | None = None) -> list[dict[str, Any]]:
        """What an agent's knowledge retriever returns: plain dicts (content, metadata, score)."""
        return [
            {"id": h.id, "content": h.text, "metadata": dict(h.metadata), "score": h.score}
            for h in self.search(query, max_results=num_documents)
        ]

    def as_tool(self) -> Callable[[str], str]:
        """A function an agent can call as a tool: ``search_knowledge_base(query) -> JSON``."""

        def search_knowledge_base(query: str) -> str:
            """Search the knowledge base and return the most relevant passages as JSON."""
            return json.dumps(self.retriever(query), ensure_ascii=False)

        search_knowledge_base.__name__ = f"search_{self.name}"
        return search_knowledge_base

    def close(self) -> None:
        self.memory.close()

    def __len__(self) -> int:
        return len(self.memory)


def _text_id(text: str) -> str:
    return content_hash(text)[:32]
