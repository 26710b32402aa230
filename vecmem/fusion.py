"""Fusing the vector and keyword legs: reciprocal rank fusion and a normalised convex combination.

Both are pure functions of the two ranked lists, so every backend that fuses in the database
(pgvector in SQL, Qdrant's RRF) can be checked against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from vecmem.errors import ConfigurationError
from vecmem.types import Chunk, Hit, Scored, Scores

RRF_K = 60
"""The RRF constant of Cormack, Clarke & Buettcher (SIGIR 2009): score = sum(w / (k + rank))."""


@dataclass(frozen=True)
class Fusion:
    """How hybrid search fuses its two legs.

    ``method="rrf"``: score = w_vector / (k + rank_vector) + w_keyword / (k + rank_keyword), ranks
    1-based, a leg that did not return the chunk contributes 0.
    ``method="convex"``: score = alpha * minmax(vector) + (1 - alpha) * minmax(keyword), each leg
    min-max normalised over its own candidates (a missing leg contributes 0).
    """

    method: Literal["rrf", "convex"] = "rrf"
    k: int = RRF_K
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "convex"):
            raise ConfigurationError(f"fusion method must be 'rrf' or 'convex', not {self.method!r}")
        if self.k < 0:
            raise ConfigurationError(f"RRF k must be >= 0, got {self.k}")
        if self.vector_weight < 0 or self.keyword_weight < 0:
            raise ConfigurationError("fusion weights must be >= 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigurationError(f"alpha must be in [0, 1], got {self.alpha}")


def rrf(
    rankings: Sequence[Sequence[str]], *, k: int = RRF_K, weights: Sequence[float] | None = None
) -> dict[str, float]:
    """Reciprocal rank fusion of ranked id lists (best first).

    >>> rrf([["a", "b"], ["b", "c"]], k=60)["b"] == 1 / 62 + 1 / 61
    True
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ConfigurationError("one weight per ranking")
    out: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, key in enumerate(ranking, start=1):
            out[key] = out.get(key, 0.0) + w / (k + rank)
    return out


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max normalise to [0, 1]; all-equal scores map to 1."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {key: (s - lo) / span if span > 0 else 1.0 for key, s in scores.items()}


def fuse(
    vector: Sequence[Scored], keyword: Sequence[Scored], fusion: Fusion, *, k: int
) -> list[Hit]:
    """Fuse two legs into the top ``k`` hits, ties broken by chunk id for determinism."""
    chunks: dict[str, Chunk] = {}
    vec = {}
    kw = {}
    vrank = {}
    krank = {}
    for rank, (chunk, score) in enumerate(vector, start=1):
        chunks.setdefault(chunk.id, chunk)
        vec[chunk.id], vrank[chunk.id] = float(score), rank
    for rank, (chunk, score) in enumerate(keyword, start=1):
        chunks.setdefault(chunk.id, chunk)
        kw[chunk.id], krank[chunk.id] = float(score), rank
    if fusion.method == "rrf":
        fused = rrf(
            [[c.id for c, _ in vector], [c.id for c, _ in keyword]],
            k=fusion.k,
            weights=[fusion.vector_weight, fusion.keyword_weight],
        )
    else:
        nv, nk = minmax(vec), minmax(kw)
        fused = {
            key: fusion.alpha * nv.get(key, 0.0) + (1 - fusion.alpha) * nk.get(key, 0.0)
            for key in chunks
        }
    order = sorted(fused, key=lambda key: (-fused[key], key))[:k]
    return [
        Hit(
            chunks[key],
            fused[key],
            Scores(
                vector=vec.get(key),
                keyword=kw.get(key),
                vector_rank=vrank.get(key),
                keyword_rank=krank.get(key),
                fused=fused[key],
            ),
        )
        for key in order
    ]
