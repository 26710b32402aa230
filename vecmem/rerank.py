"""Rerankers: reorder the fused candidates of a search. They never add or drop a candidate that
the filter excluded -- they only see what the filtered search returned.

* :class:`CrossEncoderReranker` -- a sentence-transformers CrossEncoder (local path or model name).
* :class:`MMRReranker` -- maximal marginal relevance over the stored vectors, for diversity.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

import numpy as np

from vecmem._deps import require
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.registry import RERANKERS
from vecmem.types import Hit


@runtime_checkable
class Reranker(Protocol):
    """Reorders hits for a query and keeps the best ``k``; sets ``Hit.scores.rerank``."""

    def rerank(self, query: str, hits: Sequence[Hit], *, k: int) -> list[Hit]: ...


@runtime_checkable
class VectorReranker(Protocol):
    """A reranker that needs the query vector and the candidates' stored vectors (e.g. MMR)."""

    def rerank_vectors(
        self, query_vector: np.ndarray, hits: Sequence[Hit], vectors: np.ndarray, *, k: int
    ) -> list[Hit]: ...


class CrossEncoderReranker:
    """Scores (query, passage) pairs with a cross-encoder and sorts by that score.

    >>> rr = CrossEncoderReranker("cross-encoder/ms-marco-MiniLM-L-6-v2")   # doctest: +SKIP
    >>> mem.search("query", k=10, rerank=rr)                                # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any = "cross-encoder/ms-marco-MiniLM-L-6-v2",
        *,
        batch_size: int = 32,
        device: str = "cpu",
        max_length: int | None = 512,
    ) -> None:
        self.model_name = model if isinstance(model, str) else type(model).__name__
        self._given = None if isinstance(model, str) else model
        self.batch_size = batch_size
        self.device = device
        self.max_length = max_length

    @cached_property
    def model(self) -> Any:
        if self._given is not None:
            return self._given
        st = require("sentence_transformers", "embeddings", "CrossEncoderReranker")
        return st.CrossEncoder(self.model_name, device=self.device, max_length=self.max_length)

    def rerank(self, query: str, hits: Sequence[Hit], *, k: int) -> list[Hit]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        if not hits:
            return []
        raw = self.model.predict(
            [(query, h.text) for h in hits], batch_size=self.batch_size, show_progress_bar=False
        )
        scores = np.asarray(raw, dtype=np.float64).reshape(len(hits), -1)[:, -1]
        order = sorted(range(len(hits)), key=lambda i: (-scores[i], i))[:k]
        return [hits[i].with_score(scores[i], rerank=float(scores[i])) for i in order]


class MMRReranker:
    """Maximal marginal relevance (Carbonell & Goldstein 1998): trade relevance to the query for
    novelty against what is already picked. ``lambda_mult=1`` is pure relevance.

    >>> mem.search("query", k=5, rerank=MMRReranker(lambda_mult=0.5))       # doctest: +SKIP
    """

    def __init__(self, lambda_mult: float = 0.5) -> None:
        if not 0.0 <= lambda_mult <= 1.0:
            raise ConfigurationError(f"lambda_mult must be in [0, 1], got {lambda_mult}")
        self.lambda_mult = lambda_mult

    def rerank_vectors(
        self, query_vector: np.ndarray, hits: Sequence[Hit], vectors: np.ndarray, *, k: int
    ) -> list[Hit]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        idx = mmr(
            np.asarray(query_vector, np.float32),
            np.asarray(vectors, np.float32),
            k=k,
            lambda_mult=self.lambda_mult,
        )
        return [hits[i].with_score(score, rerank=score) for i, score in idx]


def mmr(
    query: np.ndarray, vectors: np.ndarray, *, k: int, lambda_mult: float = 0.5
) -> list[tuple[int, float]]:
    """Indices (and MMR scores) of ``k`` rows of ``vectors`` chosen by MMR, in pick order."""
    if len(vectors) == 0:
        return []
    rel = vectors @ query
    picked: list[tuple[int, float]] = []
    best_sim = np.full(len(vectors), -np.inf)
    available = np.ones(len(vectors), dtype=bool)
    for _ in range(min(k, len(vectors))):
        redundancy = np.where(np.isfinite(best_sim), best_sim, 0.0)
        score = lambda_mult * rel - (1 - lambda_mult) * redundancy
        score[~available] = -np.inf
        i = int(np.argmax(score))
        picked.append((i, float(score[i])))
        available[i] = False
        best_sim = np.maximum(best_sim, vectors @ vectors[i])
    return picked


def _cross_encoder(
    model: str | None = None,
    *,
    batch_size: int = 32,
    device: str = "cpu",
    max_length: int | None = 512,
) -> CrossEncoderReranker:
    if model is None:
        return CrossEncoderReranker(batch_size=batch_size, device=device, max_length=max_length)
    return CrossEncoderReranker(model, batch_size=batch_size, device=device, max_length=max_length)


# Built-ins, registered as a plugin registers (group ``vecmem.rerankers``); ``kind:model`` passes
# ``model=`` to the factory.
RERANKERS.register("cross-encoder", _cross_encoder, aliases=("cross_encoder", "crossencoder"))
RERANKERS.register("mmr", MMRReranker)


def resolve_reranker(
    reranker: Reranker | VectorReranker | str | None,
) -> Reranker | VectorReranker | None:
    """A reranker from an object, ``None``, or a name in :data:`vecmem.registry.RERANKERS`:
    ``"mmr"``, ``"cross-encoder"``, ``"cross-encoder:BAAI/bge-reranker-base"``, a plugin's.

    >>> type(resolve_reranker("mmr")).__name__
    'MMRReranker'
    """
    if reranker is None:
        return None
    if isinstance(reranker, str):
        kind, sep, model = reranker.partition(":")
        made = RERANKERS.create(kind, model=model) if sep else RERANKERS.create(reranker)
        reranker = made
    if not isinstance(reranker, (Reranker, VectorReranker)):
        raise ConfigurationError(
            f"{reranker!r} is not a reranker: it needs rerank(query, hits, "
            "k=) or rerank_vectors(query_vector, hits, vectors, k=)"
        )
    return reranker
