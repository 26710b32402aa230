"""The array fusion (``vecmem.fusion.fuse``) against the per-candidate implementation it replaced.

``oracle_fuse`` below is ``vecmem.fusion.fuse`` as it was before fusion became numpy array work
(dicts filled one candidate at a time, one Python sort of every candidate), kept verbatim as the
reference: every method must give the same hits in the same order, with the same per-leg scores
and ranks and the same fused scores (to 1e-9), over random candidate lists with tied scores,
empty legs, one leg, legs that overlap, and an id repeated within a leg.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from vecmem.fusion import Fusion, fuse
from vecmem.types import Chunk, Hit, Scored, Scores


# ----------------------------------------------------------------------------- the oracle
def _rrf(rankings: list[list[str]], *, k: int, weights: list[float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, key in enumerate(ranking, start=1):
            out[key] = out.get(key, 0.0) + w / (k + rank)
    return out


def _minmax(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    span = hi - lo
    return {key: (s - lo) / span if span > 0 else 1.0 for key, s in scores.items()}


def _dbsf(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    values = np.fromiter(scores.values(), np.float64, len(scores))
    mean, std = float(values.mean()), float(values.std())
    if std <= 0:
        return {key: 1.0 for key in scores}
    lo, span = mean - 3 * std, 6 * std
    return {key: (s - lo) / span for key, s in scores.items()}


def _confidence(scores: dict[str, float]) -> float:
    if len(scores) < 2:
        return 1.0
    values = np.fromiter(scores.values(), np.float64, len(scores))
    std = float(values.std())
    return (float(values.max()) - float(values.mean())) / std if std > 0 else 0.0


def _adaptive_alpha(alpha: float, vector_confidence: float, keyword_confidence: float) -> float:
    total = alpha * vector_confidence + (1 - alpha) * keyword_confidence
    return alpha * vector_confidence / total if total > 0 else alpha


def oracle_fuse(
    vector: list[Scored], keyword: list[Scored], fusion: Fusion, *, k: int
) -> list[Hit]:
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
        fused = _rrf(
            [[c.id for c, _ in vector], [c.id for c, _ in keyword]],
            k=fusion.k,
            weights=[fusion.vector_weight, fusion.keyword_weight],
        )
    else:
        normalise = _minmax if fusion.method == "convex" else _dbsf
        nv, nk = normalise(vec), normalise(kw)
        alpha = fusion.alpha
        if fusion.adaptive and vec and kw:
            alpha = _adaptive_alpha(alpha, _confidence(vec), _confidence(kw))
        fused = {key: alpha * nv.get(key, 0.0) + (1 - alpha) * nk.get(key, 0.0) for key in chunks}
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


# ----------------------------------------------------------------------------- the cases
FUSIONS = [
    Fusion(),
    Fusion("rrf", k=0),
    Fusion("rrf", k=10, vector_weight=0.3, keyword_weight=2.0),
    Fusion("rrf", vector_weight=0.0),
    Fusion("convex", alpha=0.25),
    Fusion("convex", alpha=1.0),
    Fusion("convex", alpha=0.0),
    Fusion("convex", alpha=0.5, adaptive=True),
    Fusion("dbsf", alpha=0.3),
    Fusion("dbsf", alpha=0.6, adaptive=True),
]


def _leg(
    rng: random.Random, pool: list[Chunk], n: int, *, ties: bool, repeat: bool, scale: float
) -> list[Scored]:
    picked = rng.sample(pool, min(n, len(pool)))
    if repeat and picked:  # the same chunk id twice within one leg
        picked.insert(rng.randrange(len(picked) + 1), rng.choice(picked))
    if ties:  # few distinct values: many candidates tie within the leg
        scores = [scale * rng.randrange(4) / 3 for _ in picked]
    else:
        scores = [scale * rng.random() for _ in picked]
    return [Scored(c, s) for c, s in zip(picked, sorted(scores, reverse=True))]


def _cases(seed: int) -> list[tuple[list[Scored], list[Scored], int]]:
    rng = random.Random(seed)
    out = []
    for i in range(60):
        # a small pool makes the legs overlap; ids sort differently from their creation order
        pool = [
            Chunk.create(f"doc{j % 7}", j, f"text {j}", id=f"c{rng.randrange(10**6):06d}")
            for j in range(rng.choice([3, 12, 40, 150]))
        ]
        pool = list({c.id: c for c in pool}.values())
        nv, nk = rng.choice([0, 1, 2, 5, 30, 100]), rng.choice([0, 1, 2, 5, 30, 100])
        vec = _leg(rng, pool, nv, ties=i % 3 == 0, repeat=i % 11 == 5, scale=1.0)
        kw = _leg(rng, pool, nk, ties=i % 4 == 1, repeat=i % 13 == 7, scale=20.0)
        out.append((vec, kw, rng.choice([1, 3, 10, 100, 1000])))
    return out


def _same(got: list[Hit], want: list[Hit]) -> None:
    assert [h.id for h in got] == [h.id for h in want]
    assert [h.score for h in got] == pytest.approx([h.score for h in want], rel=1e-9, abs=1e-12)
    for g, w in zip(got, want):
        assert g.chunk is w.chunk  # the chunk of the id's first appearance
        assert g.scores.fused == pytest.approx(w.scores.fused, rel=1e-9, abs=1e-12)
        assert (g.scores.vector, g.scores.keyword, g.scores.vector_rank, g.scores.keyword_rank) == (
            w.scores.vector,
            w.scores.keyword,
            w.scores.vector_rank,
            w.scores.keyword_rank,
        )


@pytest.mark.parametrize(
    "fusion", FUSIONS, ids=lambda f: f"{f.method}-{f.alpha}-{f.k}-{f.vector_weight}-{f.adaptive}"
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fuse_equals_the_per_candidate_oracle(fusion: Fusion, seed: int) -> None:
    for vec, kw, k in _cases(seed):
        _same(fuse(vec, kw, fusion, k=k), oracle_fuse(vec, kw, fusion, k=k))


@pytest.mark.parametrize("fusion", FUSIONS[:1] + FUSIONS[4:5] + FUSIONS[-1:])
def test_edge_shapes(fusion: Fusion) -> None:
    """Both legs empty, one leg only (either side), identical legs, all scores tied, k=0."""
    pool = [Chunk.create("d", j, f"t{j}", id=f"id{j}") for j in range(6)]
    one = [Scored(c, 1.0 - j / 10) for j, c in enumerate(pool)]
    flat = [Scored(c, 0.5) for c in pool]
    for vec, kw in (([], []), (one, []), ([], one), (one, one), (flat, flat), (flat, one[::-1])):
        for k in (0, 1, 3, 6, 50):
            _same(fuse(vec, kw, fusion, k=k), oracle_fuse(vec, kw, fusion, k=k))


def test_ties_at_the_cut_are_broken_by_id() -> None:
    """Twelve candidates share the k-th score: the cut keeps the smallest ids, as a full sort
    would, not whichever the partial sort met first."""
    pool = [Chunk.create("d", j, f"t{j}", id=f"z{99 - j:02d}") for j in range(30)]
    vec = [Scored(c, 1.0 if j < 5 else 0.5) for j, c in enumerate(pool[:20])]
    for fusion in (Fusion("convex", alpha=1.0), Fusion("dbsf", alpha=1.0)):
        got = fuse(vec, [], fusion, k=8)
        _same(got, oracle_fuse(vec, [], fusion, k=8))
        assert [h.id for h in got[5:]] == sorted(c.id for c in pool[5:20])[:3]
