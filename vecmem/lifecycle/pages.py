"""Reading a whole store page by page (memory flat in its size), and opening stores by name.

A store that implements :class:`~vecmem.stores.base.PagedStore` (memory, embedded, pgvector,
LanceDB, Chroma, DuckDB, Qdrant, Pinecone, Milvus) is read as keyset pages of ids (ascending), each page fetched
with ``get`` and ``get_vectors``; a filter is applied to each page with the reference semantics
(:func:`vecmem.filters.matches`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from vecmem.errors import ConfigurationError, InvalidFilterError, NotFoundError
from vecmem.filters import Filter, FilterLike, matches, parse_filter
from vecmem.stores.base import PagedStore, VectorStore
from vecmem.types import Chunk, EmbeddingSpace


class Pages:
    """The chunks of ``store`` (matching ``filter``) with their vectors, ``page`` ids at a time.

    >>> for chunks, vectors in Pages(store, page=1000): ...           # doctest: +SKIP
    """

    def __init__(
        self,
        store: VectorStore,
        *,
        filter: FilterLike = None,
        page: int = 2048,
        after: str | None = None,
    ) -> None:
        if not isinstance(store, PagedStore):
            raise ConfigurationError(
                f"{type(store).__name__} cannot list its chunks page by page (it has no "
                "page_ids(); memory, embedded, pgvector, LanceDB, Chroma, DuckDB, Qdrant, Pinecone and "
                "Milvus have it)"
            )
        if page < 1:
            raise ConfigurationError(f"page must be at least 1, got {page}")
        self.store = store
        self.filter: Filter | None = parse_filter(filter)
        self.page = page
        self.after = after
        """The last id read: a restart with ``after=`` goes on from there."""

    def total(self) -> int | None:
        """How many chunks match (for the progress bar); ``None`` when the store cannot count
        with this filter (the pages are filtered here anyway)."""
        try:
            return self.store.count(self.filter)
        except InvalidFilterError:
            return None

    def __iter__(self) -> Iterator[tuple[list[Chunk], np.ndarray]]:
        while True:
            self.store.count()  # brings a store up to date with other writers (embedded)
            ids = self.store.page_ids(after=self.after, limit=self.page)
            if not ids:
                return
            self.after = ids[-1]
            chunks = [c for c in self.store.get(ids) if matches(self.filter, c.metadata)]
            if chunks:
                yield chunks, self.store.get_vectors([c.id for c in chunks])


@contextlib.contextmanager
def opened(
    store: Any, *, space: EmbeddingSpace | None = None
) -> Iterator[tuple[VectorStore, EmbeddingSpace]]:
    """``(store, its space)``: ``store`` opened from a folder, name or URL (and closed after)
    or the object given, connected to its recorded space, or to ``space`` when it is new
    (:class:`~vecmem.errors.EmbeddingSpaceMismatchError` when it holds another)."""
    from vecmem.stores import open_store

    own = not hasattr(store, "connect")
    s: VectorStore = open_store(store) if own else store
    try:
        recorded = s.stored_space()
        if space is None and recorded is None:
            raise NotFoundError(f"{store!r} holds no collection (no embedding space recorded)")
        if space is not None and recorded is not None:
            recorded.check_compatible(space, where=f"target store {store!r}")
        yield s, s.connect(space or recorded)  # type: ignore[arg-type]
    finally:
        if own:
            s.close()


def loading(store: VectorStore, incoming: int | None) -> contextlib.AbstractContextManager[Any]:
    """``store.bulk_load()`` (a kit store's fast path for many writes: pgvector builds its HNSW
    index once at the end) when ``incoming`` chunks are at least as many as it holds already;
    else nothing (rebuilding a large index for a few chunks costs more than it saves)."""
    from vecmem.stores.kit import StoreKit

    if isinstance(store, StoreKit) and incoming and incoming >= store.count():
        return store.bulk_load()
    return contextlib.nullcontext()


@contextlib.contextmanager
def progress_bar(total: int | None, desc: str, enabled: bool) -> Iterator[Any]:
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="chunk", disable=not enabled)
    try:
        yield bar
    finally:
        bar.close()
