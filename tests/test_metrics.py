"""Metrics equal pytrec_eval (trec_eval's C code) to 1e-6, on random runs with ties, missing
queries and graded judgements, and on a real BM25 run over SciFact; significance tests behave."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.evaluation.metrics import evaluate, metric_label, parse_metric, trec_order
from vecmem.evaluation.stats import compare, paired_t_test, randomization_test
from vecmem.testing.data import datasets_dir

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pytrec-eval-terrier is the reference")

SCIFACT = datasets_dir() / "scifact"
CUTS = (1, 3, 5, 10, 20, 100)
OURS_TO_TREC = {
    "ndcg": "ndcg_cut_{k}",
    "recall": "recall_{k}",
    "precision": "P_{k}",
    "map": "map_cut_{k}",
}


def _reference(qrels: dict, run: dict) -> dict:
    measures = {f"{m}.{','.join(map(str, CUTS))}" for m in ("ndcg_cut", "recall", "P", "map_cut")}
    return pytrec_eval.RelevanceEvaluator(qrels, measures | {"recip_rank"}).evaluate(run)


def _check_equal(qrels: dict, run: dict) -> int:
    """Compare every metric at every cut-off, query by query; returns how many were compared."""
    ours = evaluate(
        qrels, run, [f"{kind}@{k}" for kind in OURS_TO_TREC for k in CUTS] + ["mrr@100000"]
    )
    ref = _reference(qrels, run)
    compared = 0
    for q in qrels:
        for kind, trec in OURS_TO_TREC.items():
            for k in CUTS:
                want = ref[q][trec.format(k=k)] if q in ref else 0.0
                assert ours.per_query[f"{kind}@{k}"][q] == pytest.approx(want, abs=1e-6), (
                    q,
                    kind,
                    k,
                )
                compared += 1
        want = ref[q]["recip_rank"] if q in ref else 0.0
        assert ours.per_query["mrr@100000"][q] == pytest.approx(want, abs=1e-6)
    return compared


def _random_case(seed: int, ties: bool) -> tuple[dict, dict]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        judged = rng.sample(docs, rng.randint(1, 12))
        qrels[f"q{q}"] = {d: rng.choice([0, 1, 1, 2, 3]) for d in judged}
        if q % 7 == 3:
            continue  # a judged query the run does not answer: scores 0
        returned = rng.sample(docs, rng.randint(0, 40))
        run[f"q{q}"] = {d: (round(rng.random(), 1) if ties else rng.random()) for d in returned}
    run["unjudged"] = {"d1": 1.0}  # ignored: not in the qrels
    return qrels, run


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("ties", [False, True])
def test_random_runs_equal_pytrec_eval(seed: int, ties: bool) -> None:
    qrels, run = _random_case(seed, ties)
    assert _check_equal(qrels, run) > 0


def test_mrr_at_k_equals_recip_rank_of_the_truncated_run() -> None:
    rng = random.Random(5)
    qrels = {f"q{q}": {f"d{rng.randrange(50)}": 1 for _ in range(3)} for q in range(30)}
    run = {q: {f"d{i}": rng.random() for i in rng.sample(range(50), 30)} for q in qrels}
    for k in (1, 3, 10):
        top = {q: dict(sorted(r.items(), key=lambda x: -x[1])[:k]) for q, r in run.items()}
        ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top)
        ours = evaluate(qrels, run, [f"mrr@{k}"])
        for q in qrels:
            assert ours.per_query[f"mrr@{k}"][q] == pytest.approx(ref[q]["recip_rank"], abs=1e-9)


def test_ties_are_broken_by_doc_id_descending_like_trec_eval() -> None:
    scores = {"a": 1.0, "c": 1.0, "b": 1.0, "z": 0.5, "top": 2.0}
    assert trec_order(scores) == ["top", "c", "b", "a", "z"]
    qrels = {"q": {"a": 1}}
    run = {"q": {"a": 1.0, "b": 1.0}}  # b ranks first in trec_eval, so P@1 = 0
    assert evaluate(qrels, run, ["precision@1"]).means["precision@1"] == 0.0
    assert _reference(qrels, run)["q"]["P_1"] == 0.0


def test_hand_computed_values() -> None:
    qrels = {"q": {"d1": 2, "d2": 1, "d3": 0}}
    run = {"q": {"x": 0.9, "d2": 0.8, "d1": 0.7, "d3": 0.6}}
    ev = evaluate(qrels, run, ["ndcg@3", "recall@2", "precision@2", "mrr@10", "map@10"]).means
    dcg = 1 / math.log2(3) + 2 / math.log2(4)
    idcg = 2 + 1 / math.log2(3)
    assert ev["ndcg@3"] == pytest.approx(dcg / idcg)
    assert ev["recall@2"] == 0.5 and ev["precision@2"] == 0.5 and ev["mrr@10"] == 0.5
    assert ev["map@10"] == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_mean_is_over_every_judged_query() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    ev = evaluate(qrels, {"q1": {"a": 1.0}}, ["ndcg@10"])
    assert ev.queries == ["q1", "q2"]
    assert ev.scores("ndcg@10").tolist() == [1.0, 0.0]
    assert ev.means["ndcg@10"] == 0.5


def test_bad_metric_names_raise_a_typed_error() -> None:
    assert parse_metric("P@5") == ("precision", 5) and metric_label("ndcg@10") == "nDCG@10"
    for bad in ("ndcg", "ndcg@0", "foo@10", "ndcg@x"):
        with pytest.raises(ConfigurationError):
            parse_metric(bad)
    with pytest.raises(ConfigurationError):
        evaluate({"q": {"a": 1}}, {}, ["ndcg@10"]).scores("recall@100")


@pytest.mark.skipif(not (SCIFACT / "corpus.jsonl").exists(), reason="SciFact not at ../shared")
def test_bm25_run_on_scifact_equals_pytrec_eval() -> None:
    from vecmem.bm25 import BM25Index
    from vecmem.datasets import load_beir
    from vecmem.tokenize import DefaultTokenizer

    ds = load_beir(SCIFACT, split="test")
    docs = ds.documents()
    tok = DefaultTokenizer()
    index = BM25Index()
    index.add(np.arange(len(docs)), [tok(d.text) for d in docs])
    run = {}
    for q, text in ds.queries.items():
        slots, scores = index.top_k(tok(text), 100)
        run[q] = {docs[int(s)].id: float(v) for s, v in zip(slots, scores)}
    assert _check_equal(ds.qrels, run) == 300 * len(OURS_TO_TREC) * len(CUTS)
    mean = evaluate(ds.qrels, run, ["ndcg@10"]).means["ndcg@10"]
    assert 0.6 < mean < 0.75  # a sane BM25 on SciFact (published 0.665-0.679)


def test_significance_tests() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200)
    better = np.clip(base + 0.05 + rng.normal(0, 0.05, 200), 0, 1)
    same = base + rng.normal(0, 0.05, 200)
    c = compare(better, base, trials=2000)
    assert c.mean_difference > 0 and c.p_randomization < 0.01 and c.p_t_test < 0.01
    assert c.significant() and c.wins > c.losses and c.queries == 200
    assert randomization_test(same, base, trials=2000) > 0.05
    assert paired_t_test(base, base) == 1.0
    assert randomization_test(base, base, trials=100) == 1.0
    with pytest.raises(InvalidInputError):
        compare(base, base[:10])
    with pytest.raises(InvalidInputError):
        randomization_test(np.array([]), np.array([]))
