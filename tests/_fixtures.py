"""Small real embedders for the core tests: instrumented and failing ones (plugin-style
implementations of the Embedder protocol, not mocks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vecmem.embedders import HashingEmbedder


class CountingEmbedder:
    """A HashingEmbedder that records how many calls and texts it embedded."""

    def __init__(self, dim: int = 64, name: str | None = None) -> None:
        self.inner = HashingEmbedder(dim)
        self.name = name or self.inner.name
        self.calls = 0
        self.texts: list[str] = []

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return self.inner.embed(texts)


class PoisonEmbedder(CountingEmbedder):
    """Returns NaN for any text containing ``POISON`` (a broken model or service)."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = super().embed(texts)
        for i, t in enumerate(texts):
            if "POISON" in t:
                out[i, 0] = np.nan
        return out
