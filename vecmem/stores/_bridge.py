"""What the LangChain and LlamaIndex bridges share: the wrapped store ranks, vecmem keeps the rest.

A framework vector store offers add, delete and "the k nearest to this vector, with this filter",
but no count, no listing and no vector read, and each store compares metadata its own way
(LlamaIndex's simple store and Milvus call ``True == 1``; a missing key is undecided in some).
So a bridge keeps the chunks and vectors it wrote in memory (the catalogue), keeps vecmem's exact
BM25 beside them (:class:`~vecmem.stores._beside.KeywordBeside`), answers ``get``, ``count``,
``get_by_document`` and filtered deletes from the catalogue, and asks the wrapped store only to
rank. A filter is evaluated exactly on the catalogue (:func:`vecmem.filters.matches`) and handed
to the wrapped store in the form it takes (a LangChain callable, a LlamaIndex ``IN`` filter on
the chunk id), so it is applied before top-k by the store itself; a store that takes no filter
raises :class:`~vecmem.errors.UnsupportedFilterError`, and every hit is checked against the
filter (a store that ignored it raises the same error: never a silently dropped condition).
Scores are the exact cosine similarity of the stored vectors, whatever scale the store uses.

The catalogue lives in this process: a bridge is not persistent (``capabilities.persistent`` is
false) even where the wrapped store is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vecmem.errors import BackendError, InvalidInputError, UnsupportedFilterError
from vecmem.filters import Filter, matches
from vecmem.stores._beside import KeywordBeside
from vecmem.stores.base import Capabilities
from vecmem.stores.kit import StoreKit
from vecmem.stores.memory import _own
from vecmem.types import Chunk, EmbeddingSpace, Scored


class BridgeStore(StoreKit):
    """The catalogue and keyword leg of a bridge; a subclass supplies ``_make`` (the wrapped
    store for a space), ``_add``, ``_remove`` and ``_rank``."""

    capabilities = Capabilities()

    def __init__(self) -> None:
        super().__init__()
        self._chunks: dict[str, Chunk] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._by_doc: dict[str, set[str]] = {}
        self._kw: KeywordBeside | None = None
        self._wrapped: Any = None

    # ----------------------------------------------------------------- hooks
    def _make(self, space: EmbeddingSpace) -> Any:
        """The wrapped store for ``space``."""
        raise NotImplementedError

    def _add(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Add chunks (none of them in the wrapped store) with their vectors."""
        raise NotImplementedError

    def _remove(self, ids: Sequence[str]) -> None:
        """Remove chunk ids that are in the wrapped store."""
        raise NotImplementedError

    def _rank(self, q: np.ndarray, k: int, allowed: set[str] | None) -> list[str]:
        """Chunk ids of the wrapped store's top ``k`` for ``q``, best first, among ``allowed``
        (``None``: all) -- or raise :class:`UnsupportedFilterError`."""
        raise NotImplementedError

    # ----------------------------------------------------------------- kit hooks
    def _open(self) -> Any:
        return self  # the wrapped store is made on connect, for its space

    def _read_space(self) -> EmbeddingSpace | None:
        return None  # the catalogue is in memory: a new bridge is empty

    def _create(self, space: EmbeddingSpace) -> None:
        with self._errors("create the wrapped store"):
            self._wrapped = self._make(space)

    def _connected(self, space: EmbeddingSpace) -> None:
        self._kw = self._keyword_index()

    def _release(self) -> None:
        self._wrapped, self._kw = None, None

    # ----------------------------------------------------------------- writes
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        v = self._check_batch(chunks, vectors).copy()
        chunks = [_own(c) for c in chunks]  # later changes to the caller's dicts can't leak in
        with self._lock:
            gone = [
                i
                for i in dict.fromkeys([*(c.id for c in chunks), *delete_ids])
                if i in self._chunks
            ]
            with self._errors("remove"):
                if gone:
                    self._remove(gone)
            self._forget(gone)
            with self._errors("add"):
                if chunks:
                    self._add(chunks, v)
            for c, x in zip(chunks, v):
                self._chunks[c.id] = c
                self._vectors[c.id] = x
                self._by_doc.setdefault(c.document_id, set()).add(c.id)
            if self._kw is not None:
                self._kw.write(chunks, gone)

    def _forget(self, ids: Sequence[str]) -> None:
        for i in ids:
            c = self._chunks.pop(i)
            del self._vectors[i]
            doc = self._by_doc[c.document_id]
            doc.discard(i)
            if not doc:
                del self._by_doc[c.document_id]
        if self._kw is not None:
            self._kw.write([], ids)

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        self._check_delete(ids, filter)
        self._require_space()
        with self._lock:
            doomed = {i for i in ids or () if i in self._chunks}
            if filter is not None:
                doomed |= self._matching(filter)
            if doomed:
                with self._errors("remove"):
                    self._remove(sorted(doomed))
                self._forget(sorted(doomed))
            return len(doomed)

    # ----------------------------------------------------------------- reads
    def _matching(self, f: Filter) -> set[str]:
        return {i for i, c in self._chunks.items() if matches(f, c.metadata)}

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        q = self._check_query(vector, k)
        with self._lock:
            allowed = None if filter is None else self._matching(filter)
            if allowed is not None and not allowed or not self._chunks:
                return []
            with self._errors("vector query"):
                ranked = list(dict.fromkeys(self._rank(q, k, allowed)))[:k]
            unknown = [i for i in ranked if i not in self._chunks]
            if unknown:
                raise BackendError(f"{self.where} returned ids vecmem did not write: {unknown[:3]}")
            if allowed is not None and not allowed.issuperset(ranked):
                raise UnsupportedFilterError(f"{self.where} ignored the filter")
            want = min(k, len(self._chunks) if allowed is None else len(allowed))
            if len(ranked) < want:
                raise BackendError(
                    f"{self.where} returned {len(ranked)} hits where {want} chunks qualify"
                )
            hits = [Scored(self._chunks[i], float(self._vectors[i] @ q)) for i in ranked]
            return sorted(hits, key=lambda h: -h.score)

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        self._require_space()
        with self._lock:
            if self._kw is None:
                self._kw = self._keyword_index()

            def fetch(ids: list[str], filtered: bool) -> dict[str, Chunk]:
                return {
                    i: self._chunks[i]
                    for i in ids
                    if i in self._chunks
                    and (not filtered or matches(filter, self._chunks[i].metadata))
                }

            return self._keyword_search(self._kw, text, k, fetch, filter is not None)

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        with self._lock:
            return [self._chunks[i] for i in ids if i in self._chunks]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        dim = self._require_space().dim
        with self._lock:
            missing = [i for i in ids if i not in self._vectors]
            if missing:
                raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
            return np.asarray([self._vectors[i] for i in ids], np.float32).reshape(len(ids), dim)

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        with self._lock:
            return [
                self._chunks[i]
                for d in dict.fromkeys(document_ids)
                for i in sorted(self._by_doc.get(d, ()))
            ]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        with self._lock:
            return len(self._chunks) if filter is None else len(self._matching(filter))
