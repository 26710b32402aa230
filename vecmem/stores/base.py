"""The store protocol every backend implements, and the capabilities it declares.

A store does translation only (types, filters, errors, distances -> similarities). The
:class:`~vecmem.memory.VectorMemory` facade owns chunking, embedding, fusion and reranking, so
behaviour is the same on every backend. Stores that cannot run BM25 themselves keep a
:class:`~vecmem.bm25.BM25Index` beside their data (see ``vecmem.stores.memory``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vecmem.errors import DimensionMismatchError, InvalidInputError
from vecmem.filters import Filter
from vecmem.fusion import Fusion
from vecmem.types import Chunk, EmbeddingSpace, Hit, Scored
from vecmem.validation import check_metadata, check_text


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do natively. The conformance suite skips only what is declared absent."""

    persistent: bool = False
    """Data survives ``close()`` and reopening with the same arguments."""
    native_keyword: bool = False
    """The BM25 leg runs inside the database (else a BM25Index is kept beside it)."""
    native_hybrid: bool = False
    """``hybrid()`` fuses both legs itself (pgvector's one SQL statement; one pass over the arrays
    in memory); the result must equal :func:`vecmem.fusion.fuse` of the two legs (the suite
    checks it)."""
    both_legs: bool = False
    """``both_legs()`` runs the vector and keyword legs in one round trip and returns the two
    ranked lists; the facade fuses them."""
    transactions: bool = False
    """A failed ``upsert`` leaves no partial writes."""
    concurrent_writers: bool = False
    """Several processes or clients may write at once."""


@runtime_checkable
class VectorStore(Protocol):
    """A vector store. Vectors given to it are float32, L2-normalised for cosine.

    Every method that takes ``filter`` accepts the portable grammar of :mod:`vecmem.filters`
    (already parsed into a :class:`~vecmem.filters.Filter`, or ``None``) and must apply it
    *before* top-k, or raise :class:`~vecmem.errors.UnsupportedFilterError`.
    """

    name: str
    capabilities: Capabilities

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        """Open or create the collection for ``space``.

        Returns the space recorded by the store (``space`` itself when new). Raises
        :class:`~vecmem.errors.EmbeddingSpaceMismatchError` if the stored one is incompatible.
        """
        ...

    def stored_space(self) -> EmbeddingSpace | None:
        """The space recorded by an existing collection (``None`` if there is none yet), read
        without creating anything: lets a reopened store pick its embedder."""
        ...

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        """Insert or overwrite ``chunks`` by id and remove ``delete_ids``, atomically where the
        database has transactions."""
        ...

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        """The ``k`` most similar chunks (score = similarity, descending)."""
        ...

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        """The ``k`` best BM25 matches for ``text`` (score = BM25, descending); only chunks that
        contain at least one query term."""
        ...

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order given; missing ids are left out."""
        ...

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """Stored vectors of ``ids`` (which must exist), shape ``(len(ids), dim)``."""
        ...

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        """Every chunk of the given documents."""
        ...

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        """Delete by ids and/or filter; missing ids are ignored. Returns how many were removed."""
        ...

    def count(self, filter: Filter | None = None) -> int: ...

    def close(self) -> None: ...


class BothLegsStore(VectorStore, Protocol):
    """A store that runs both legs in one round trip (``capabilities.both_legs``): one request,
    or the two queries at once. Only the facade fuses."""

    def both_legs(
        self, vector: np.ndarray, text: str, *, k: int, filter: Filter | None = None
    ) -> tuple[list[Scored], list[Scored]]:
        """``(query(vector, k=k, filter=filter), keyword(text, k=k, filter=filter))``."""
        ...


@runtime_checkable
class DroppableStore(Protocol):
    """A store whose whole collection can be deleted."""

    def drop(self) -> None:
        """Delete the collection (records and recorded space); a no-op when it is absent."""
        ...


@runtime_checkable
class PagedStore(Protocol):
    """A store that lists its chunk ids in pages, so a whole store can be read with memory flat
    in its size (export, migrate: :mod:`vecmem.lifecycle`)."""

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Up to ``limit`` live chunk ids greater than ``after`` (``None``: from the first), in
        ascending code-point order: a keyset page, so writes between pages shift nothing."""
        ...


@runtime_checkable
class RefreshableStore(Protocol):
    """A store that keeps something beside the data (a BM25 index) and can catch up at once with
    writes other clients made (Chroma, DuckDB, Milvus)."""

    def refresh(self) -> None:
        """Rebuild what is kept beside the data from the data."""
        ...


@runtime_checkable
class OptimizableStore(Protocol):
    """A store with maintenance to run now and then (LanceDB, DuckDB, Milvus)."""

    def optimize(self) -> None:
        """Compact the data and bring indexes up to date."""
        ...


class HybridStore(VectorStore, Protocol):
    """A store that fuses both legs itself (``capabilities.native_hybrid``)."""

    def hybrid(
        self,
        vector: np.ndarray,
        text: str,
        *,
        k: int,
        candidates: int,
        fusion: Fusion,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Top ``k`` of the fusion of the best ``candidates`` of each leg, scores broken down
        per leg exactly as :func:`vecmem.fusion.fuse` would."""
        ...


# ------------------------------------------------------------------ helpers for adapters
def validate_vectors(vectors: Any, n: int, dim: int) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] != n:
        raise InvalidInputError(f"expected {n} vectors, got an array of shape {v.shape}")
    if v.shape[1] != dim:
        raise DimensionMismatchError(f"vectors have dimension {v.shape[1]}, the store has {dim}")
    if not np.isfinite(v).all():
        raise InvalidInputError("vectors contain NaN or infinity")
    zero = ~v.any(axis=1)
    if zero.any():
        raise InvalidInputError(
            f"vector {int(np.flatnonzero(zero)[0])} is all zeros: it has no direction, so its "
            "similarity to anything is undefined (did the embedder fail on that text?)"
        )
    return v


def validate_query_vector(vector: Any, dim: int) -> np.ndarray:
    q = np.asarray(vector, dtype=np.float32).reshape(-1)
    if q.shape[0] != dim:
        raise DimensionMismatchError(
            f"query vector has dimension {q.shape[0]}, the store has {dim}"
        )
    if 0.0 < float(q @ q) < math.inf:  # finite and not all zeros: one pass (the usual case)
        return q
    if not np.isfinite(q).all():
        raise InvalidInputError("query vector contains NaN or infinity")
    if not q.any():
        raise InvalidInputError(
            "query vector is all zeros: it has no direction, so every "
            "similarity would be 0 and the order meaningless"
        )
    return q


def validate_batch(chunks: Sequence[Chunk], vectors: Any, dim: int) -> np.ndarray:
    """Check an upsert batch the way every store must: Chunk objects with non-empty, distinct
    ids, text, ids and metadata that every backend can store exactly
    (:mod:`vecmem.validation`), and one finite, non-zero ``dim``-wide vector each. Returns the
    vectors as float32."""
    seen: set[str] = set()
    for c in chunks:
        if not isinstance(c, Chunk):
            raise InvalidInputError(f"expected Chunk objects, got {type(c).__name__}")
        if not isinstance(c.id, str) or not c.id:
            raise InvalidInputError("chunk ids must be non-empty strings")
        if c.id in seen:
            raise InvalidInputError(f"duplicate chunk id {c.id!r} in one batch")
        seen.add(c.id)
        if not isinstance(c.document_id, str) or not isinstance(c.text, str):
            raise InvalidInputError(f"chunk {c.id!r}: document_id and text must be strings")
        if not (c.id.isascii() and c.document_id.isascii() and c.text.isascii()):
            check_text(f"chunk id {c.id!r}", c.id)
            check_text(f"document id of chunk {c.id!r}", c.document_id)
            check_text(f"text of chunk {c.id!r}", c.text)
        check_metadata(c.metadata, f"chunk {c.id!r}")
    return validate_vectors(vectors, len(chunks), dim)
