"""Fusing the vector and keyword legs: reciprocal rank fusion and normalised convex combinations.

All are pure functions of the two ranked lists, so every backend that fuses in the database
(pgvector in SQL) can be checked against them.

Score fusion normalises each leg over its own candidates, then mixes them with weight ``alpha``
for the vector leg: ``"convex"`` min-max normalises (Bruch et al., "An Analysis of Fusion Functions
for Hybrid Retrieval", TOIS 2023); ``"dbsf"`` maps mean -/+ 3 standard deviations to 0/1
(distribution-based score fusion, as in Qdrant), so one outlier does not squash the rest.
``adaptive=True`` sets ``alpha`` per query from how far each leg's best candidate stands out:
``confidence = (max - mean) / std`` of the leg's scores, and the vector weight becomes
``alpha * c_vec / (alpha * c_vec + (1 - alpha) * c_kw)``. A keyword leg whose best match is barely
above the rest (common words only) then counts less than one with a clear winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np

from vecmem.errors import ConfigurationError
from vecmem.types import Chunk, Hit, Scored, Scores

METHODS = ("rrf", "convex", "dbsf")
RRF_K = 60
"""The RRF constant of Cormack, Clarke & Buettcher (SIGIR 2009): score = sum(w / (k + rank))."""


@dataclass(frozen=True)
class Fusion:
    """How hybrid search fuses its two legs.

    ``method="rrf"``: score = w_vector / (k + rank_vector) + w_keyword / (k + rank_keyword), ranks
    1-based, a leg that did not return the chunk contributes 0.
    ``method="convex"``: score = alpha * minmax(vector) + (1 - alpha) * minmax(keyword), each leg
    min-max normalised over its own candidates (a missing leg contributes 0).
    ``method="dbsf"``: the same with :func:`dbsf` normalisation.
    ``adaptive=True`` (convex and dbsf): ``alpha`` is re-weighted per query by each leg's
    :func:`confidence` (see the module docstring).

    >>> Fusion("dbsf", alpha=0.6, adaptive=True).method
    'dbsf'
    """

    method: Literal["rrf", "convex", "dbsf"] = "rrf"
    k: int = RRF_K
    vector_weight: float = 1.0
    keyword_weight: float = 1.0
    alpha: float = 0.5
    adaptive: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigurationError(
                f"fusion method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if self.adaptive and self.method == "rrf":
            raise ConfigurationError("adaptive weights need scores: use method 'convex' or 'dbsf'")
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


def dbsf(scores: Mapping[str, float]) -> dict[str, float]:
    """Distribution-based normalisation: ``(s - (mean - 3 std)) / (6 std)``, not clipped (the best
    candidates of a peaked leg land above 1); all-equal scores (or one score) map to 1."""
    if not scores:
        return {}
    values = np.fromiter(scores.values(), np.float64, len(scores))
    mean, std = float(values.mean()), float(values.std())
    if std <= 0:
        return {key: 1.0 for key in scores}
    lo, span = mean - 3 * std, 6 * std
    return {key: (s - lo) / span for key, s in scores.items()}


def confidence(scores: Mapping[str, float]) -> float:
    """How far a leg's best candidate stands out: ``(max - mean) / std`` of its scores (population
    std); 1.0 for a single candidate, 0.0 when all candidates tie (the leg ranks nothing)."""
    if len(scores) < 2:
        return 1.0
    values = np.fromiter(scores.values(), np.float64, len(scores))
    std = float(values.std())
    return (float(values.max()) - float(values.mean())) / std if std > 0 else 0.0


def adaptive_alpha(alpha: float, vector_confidence: float, keyword_confidence: float) -> float:
    """The vector leg's weight for one query: ``alpha`` scaled by the legs' confidences
    (``alpha`` itself when neither leg has any)."""
    total = alpha * vector_confidence + (1 - alpha) * keyword_confidence
    return alpha * vector_confidence / total if total > 0 else alpha


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
        normalise = minmax if fusion.method == "convex" else dbsf
        nv, nk = normalise(vec), normalise(kw)
        alpha = fusion.alpha
        if fusion.adaptive and vec and kw:
            alpha = adaptive_alpha(alpha, confidence(vec), confidence(kw))
        fused = {
            key: alpha * nv.get(key, 0.0) + (1 - alpha) * nk.get(key, 0.0) for key in chunks
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
