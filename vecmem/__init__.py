"""vecmem: vector memory and RAG adapter hub for AI agents.

>>> from vecmem import VectorMemory                 # doctest: +SKIP
>>> mem = VectorMemory("./kb")                      # doctest: +SKIP
>>> mem.add(["first text", "second text"])          # doctest: +SKIP
>>> mem.search("first", k=5)                        # doctest: +SKIP
"""

from __future__ import annotations

from vecmem.errors import (
    BackendError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingSpaceMismatchError,
    IntegrityError,
    InvalidFilterError,
    InvalidInputError,
    MissingDependencyError,
    StorageFullError,
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.fusion import Fusion
from vecmem.knowledge import Knowledge
from vecmem.memory import AddResult, VectorMemory
from vecmem.types import Chunk, Document, EmbeddingSpace, Hit, Scores

__version__ = "0.1.0"

__all__ = [
    "AddResult",
    "BackendError",
    "Chunk",
    "ConfigurationError",
    "DimensionMismatchError",
    "Document",
    "EmbeddingSpace",
    "EmbeddingSpaceMismatchError",
    "Fusion",
    "Hit",
    "IntegrityError",
    "InvalidFilterError",
    "InvalidInputError",
    "Knowledge",
    "MissingDependencyError",
    "Scores",
    "StorageFullError",
    "UnsupportedFilterError",
    "VecmemError",
    "VectorMemory",
]
