"""Retrieval evaluation: trec_eval metrics, ``vecmem eval`` / ``vecmem tune``, significance tests
and plots.

>>> from vecmem.datasets import load_sample
>>> from vecmem.evaluation import evaluate_dataset
>>> [r.mode for r in evaluate_dataset(load_sample(), embedder="hashing", cache=":memory:")]
['keyword', 'vector', 'hybrid']

Modules: :mod:`~vecmem.evaluation.metrics` (nDCG/Recall/MRR/MAP/P, equal to pytrec_eval),
:mod:`~vecmem.evaluation.runner` (index a BEIR dataset, run and time every query),
:mod:`~vecmem.evaluation.tune` (grid search on a train split), :mod:`~vecmem.evaluation.stats`
(paired t-test and randomisation test), :mod:`~vecmem.evaluation.plot` (matplotlib figures),
:mod:`~vecmem.evaluation.cli` (the ``eval``, ``eval-runs`` and ``tune`` commands),
:mod:`~vecmem.evaluation.saved` (runs saved by ``vecmem eval --save``).
"""

from __future__ import annotations

from vecmem.evaluation.metrics import Evaluation, evaluate, parse_metric, trec_order
from vecmem.evaluation.runner import (
    ModeResult,
    WholeDocument,
    evaluate_dataset,
    evaluate_memory,
    index_dataset,
    search_run,
)
from vecmem.evaluation.saved import EvalRun, EvalRunStore

__all__ = [
    "EvalRun",
    "EvalRunStore",
    "Evaluation",
    "ModeResult",
    "WholeDocument",
    "evaluate",
    "evaluate_dataset",
    "evaluate_memory",
    "index_dataset",
    "parse_metric",
    "search_run",
    "trec_order",
]
