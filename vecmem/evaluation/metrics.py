"""Ranking metrics with trec_eval's semantics: nDCG@k, Recall@k, MRR@k, MAP@k and P@k.

They equal ``pytrec_eval`` (the trec_eval C code) to 1e-6; ``tests/test_metrics.py`` checks it.
The semantics, spelled out:

* a run is ``{query_id: {doc_id: score}}``; each query's documents are ranked by score
  descending, ties broken by doc id *descending* (trec_eval's order, whatever order they came in);
* a document is relevant when its grade is >= 1; unjudged documents count as non-relevant;
* nDCG uses the grade itself as gain and ``log2(rank + 1)`` as discount; the ideal ranking is
  every positive grade of the query, best first (``ndcg_cut``);
* Recall@k and MAP@k divide by every relevant document of the query, P@k always by ``k``;
  MRR@k is the reciprocal rank of the first relevant document in the top ``k``;
* :func:`evaluate` scores every query of the qrels: a query absent from the run scores 0, and
  the mean is over all of them (trec_eval ``-c``, as the BEIR tables report).

>>> qrels = {"q1": {"d1": 1, "d2": 2}}
>>> run = {"q1": {"d2": 0.9, "d3": 0.5, "d1": 0.1}}
>>> round(evaluate(qrels, run, ["ndcg@10", "mrr@10"]).means["mrr@10"], 3)
1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vecmem.errors import ConfigurationError

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

KINDS = ("ndcg", "recall", "mrr", "map", "precision")
DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@10", "precision@10")

# trec_eval / pytrec_eval measure names, for cross-checking
TREC_NAMES = {
    "ndcg": "ndcg_cut_{k}",
    "recall": "recall_{k}",
    "map": "map_cut_{k}",
    "precision": "P_{k}",
    "mrr": "recip_rank",
}


LABELS = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR", "map": "MAP", "precision": "P"}


def metric_label(name: str) -> str:
    """``"ndcg@10"`` -> ``"nDCG@10"`` (for tables and plots)."""
    kind, k = parse_metric(name)
    return f"{LABELS[kind]}@{k}"


def parse_metric(name: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``; ``p@5`` is accepted for precision."""
    kind, sep, cutoff = name.strip().lower().partition("@")
    kind = {"p": "precision", "r": "recall"}.get(kind, kind)
    if kind not in KINDS or not sep or not cutoff.isdigit() or int(cutoff) <= 0:
        raise ConfigurationError(
            f"unknown metric {name!r}: use KIND@K with KIND one of {', '.join(KINDS)}, e.g. ndcg@10"
        )
    return kind, int(cutoff)


def trec_order(scores: Mapping[str, float]) -> list[str]:
    """Doc ids in trec_eval's order: score descending, then doc id descending."""
    by_id = sorted(scores, reverse=True)
    return sorted(by_id, key=lambda d: -float(scores[d]))  # stable: keeps id order within ties


def _query_scores(
    judged: Mapping[str, int], scores: Mapping[str, float], metrics: Sequence[tuple[str, int]]
) -> list[float]:
    ranked = trec_order(scores)
    grades = np.array([judged.get(d, 0) for d in ranked], dtype=np.float64)
    relevant = grades >= 1
    num_rel = sum(1 for g in judged.values() if g >= 1)
    ideal = np.sort(np.array([g for g in judged.values() if g > 0], dtype=np.float64))[::-1]
    out = []
    for kind, k in metrics:
        rel_k = relevant[:k]
        if kind == "ndcg":
            gains = np.where(grades[:k] > 0, grades[:k], 0.0)
            dcg = float(np.sum(gains / np.log2(np.arange(2, len(gains) + 2))))
            ig = ideal[:k]
            idcg = float(np.sum(ig / np.log2(np.arange(2, len(ig) + 2))))
            out.append(dcg / idcg if idcg > 0 else 0.0)
        elif kind == "recall":
            out.append(float(rel_k.sum()) / num_rel if num_rel else 0.0)
        elif kind == "precision":
            out.append(float(rel_k.sum()) / k)
        elif kind == "mrr":
            hits = np.flatnonzero(rel_k)
            out.append(1.0 / (hits[0] + 1) if len(hits) else 0.0)
        else:  # map
            ranks = np.flatnonzero(rel_k) + 1
            precisions = np.arange(1, len(ranks) + 1) / ranks
            out.append(float(precisions.sum()) / num_rel if num_rel else 0.0)
    return out


@dataclass
class Evaluation:
    """Per-query scores of one run (``per_query[metric][query_id]``) and their means.

    Every query of the qrels is present, in ``queries`` order, so two evaluations over the same
    qrels pair up query by query for significance tests (:mod:`vecmem.evaluation.stats`).

    >>> ev = evaluate({"q": {"a": 1}}, {"q": {"a": 1.0}}, ["recall@10"])
    >>> ev.means, ev.scores("recall@10").tolist()
    ({'recall@10': 1.0}, [1.0])
    """

    queries: list[str]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        return list(self.per_query)

    @property
    def means(self) -> dict[str, float]:
        return {m: float(np.mean(self.scores(m))) if self.queries else 0.0 for m in self.per_query}

    def scores(self, metric: str) -> np.ndarray:
        """One score per query, in ``queries`` order."""
        if metric not in self.per_query:
            raise ConfigurationError(f"metric {metric!r} was not computed; have {self.metrics}")
        values = self.per_query[metric]
        return np.array([values[q] for q in self.queries], dtype=np.float64)


def evaluate(qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS) -> Evaluation:
    """Score ``run`` against ``qrels`` on every qrels query (see the module docstring)."""
    parsed = [parse_metric(m) for m in metrics]
    names = [f"{kind}@{k}" for kind, k in parsed]
    queries = sorted(qrels)
    per_query: dict[str, dict[str, float]] = {name: {} for name in names}
    empty: dict[str, float] = {}
    for q in queries:
        values = _query_scores(qrels[q], run.get(q, empty), parsed)
        for name, v in zip(names, values):
            per_query[name][q] = v if math.isfinite(v) else 0.0
    return Evaluation(queries, per_query)
