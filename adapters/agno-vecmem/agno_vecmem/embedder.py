"""``AgnoEmbedder``: any agno ``Embedder`` as a vecmem embedder (name, dim, batch ``embed``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from agno.knowledge.embedder import Embedder as AgnoBaseEmbedder

from vecmem.embedders import normalize
from vecmem.errors import DimensionMismatchError, InvalidInputError


class AgnoEmbedder:
    """A vecmem embedder over an agno ``Embedder`` (batched when the embedder batches).

    ``name`` (recorded by the store, so reopening it with another model raises instead of mixing
    vector spaces) defaults to ``agno:<class>:<id>``.

    >>> from agno.knowledge.embedder.openai import OpenAIEmbedder      # doctest: +SKIP
    >>> AgnoEmbedder(OpenAIEmbedder()).dim                             # doctest: +SKIP
    1536
    """

    def __init__(self, embedder: AgnoBaseEmbedder, *, name: str | None = None) -> None:
        if not isinstance(embedder, AgnoBaseEmbedder):
            raise InvalidInputError(f"expected an agno Embedder, got {type(embedder).__name__}")
        self.embedder = embedder
        model = getattr(embedder, "id", None)
        self.name = name or f"agno:{type(embedder).__name__}" + (f":{model}" if model else "")
        self._dim = embedder.dimensions

    @property
    def dim(self) -> int:
        if not self._dim:
            self._dim = len(self.embedder.get_embedding("dimension probe"))
        return int(self._dim)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        batch = getattr(self.embedder, "get_embeddings_batch_and_usage", None)
        if self.embedder.enable_batch and batch is not None:
            rows, _ = batch(items)
        else:
            rows = [self.embedder.get_embedding(t) for t in items]
        if len(rows) != len(items) or any(not r for r in rows):
            raise InvalidInputError(
                f"{self.name} returned {len(rows)} embeddings (some empty) for {len(items)} texts"
            )
        out = np.asarray(rows, dtype=np.float32)
        if out.ndim != 2 or out.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"{self.name} returned vectors of shape {out.shape}; it declares "
                f"dimensions={self.dim}"
            )
        return normalize(out)

    def __repr__(self) -> str:
        return f"AgnoEmbedder({self.name!r})"
