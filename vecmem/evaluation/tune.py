"""Choosing hybrid-search settings on a train split, without touching the test split.

``vecmem tune PATH --split train`` (or :func:`tune_dataset`):

1. BM25: for each tokenizer and (k1, b) of the grid, the keyword leg is run over the train
   queries with a :class:`~vecmem.bm25.BM25Index` whose parameters change in place
   (``with_params``: no re-index); the best keyword nDCG@10 wins.
2. Fusion: with that BM25, each leg is run once per train query from the memory's own store, to
   the deepest candidate depth of the grid; then every grid point (RRF k and leg weights, convex
   alpha, candidate depth) is fused offline with :func:`vecmem.fusion.fuse` -- the function
   ``VectorMemory.search`` calls -- exactly as a ``search(query, k=depth)`` would (a leg gives
   ``max(depth, candidates)`` candidates).
3. Selection (``objective="robust"``, the default): the setting whose *worst loss to the better
   leg* is smallest. The train queries are split by which single leg scores higher on them; on
   each group the fused metric is compared with that leg's (``gap_vector``: fused minus vector on
   the queries the vector leg wins; ``gap_keyword`` likewise), and the objective is the smaller of
   the two. A data set where one leg is stronger than on train is a different mix of these two
   groups, and hybrid-minus-best-leg is worst at a pure mix, so this objective asks for settings
   that keep beating both legs whatever the mix -- what defaults must do on data they were not
   tuned on. ``objective="mean"``: the best mean metric. Either way, among settings within
   ``tolerance`` of the best objective: the fewest candidates (cheapest), then the best mean.

Several data sets at once (``vecmem tune A B --split train`` or :func:`tune_datasets`): one set of
defaults for all of them, chosen by the ``worst`` rule -- BM25 by the smallest worst relative
shortfall from each data set's best keyword score, fusion by the largest smallest relative margin
over the data sets of fused over that data set's better leg. A default must hold on data it was not tuned on, so
it is judged by the data set it fits worst, not by an average the easier one dominates.

Only after the choice is made may the caller score it on the test split (``--report test``).

>>> from vecmem.datasets import load_sample
>>> result = tune_dataset(load_sample(), embedder="hashing", cache=":memory:",
...                       rrf_ks=(60,), weights=(1.0,), alphas=(), candidate_depths=(100,),
...                       k1s=(1.2,), bs=(0.75,))
>>> result.fusion.method
'rrf'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vecmem.bm25 import BM25Index
from vecmem.datasets import BeirDataset
from vecmem.embedders import EmbeddingCache
from vecmem.errors import ConfigurationError
from vecmem.evaluation.metrics import evaluate, parse_metric
from vecmem.evaluation.runner import index_dataset
from vecmem.fusion import Fusion, fuse
from vecmem.memory import DEFAULT_BM25, VectorMemory
from vecmem.tokenize import DefaultTokenizer, Tokenizer
from vecmem.types import Scored

RRF_KS = (5, 10, 20, 40, 60, 100)
WEIGHTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)  # vector weight; the keyword weight is 1
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SCORE_METHODS = ("convex", "dbsf")
CANDIDATE_DEPTHS = (100, 200, 400)
K1S = (0.6, 0.9, 1.2, 1.5, 2.0)
BS = (0.3, 0.4, 0.5, 0.6, 0.75, 0.9)


@dataclass(frozen=True)
class GridPoint:
    """One setting tried, and its mean train scores."""

    fusion: Fusion
    candidates: int
    scores: dict[str, float]
    gaps: tuple[float, float] = (0.0, 0.0)
    """Mean fused-minus-leg metric on the train queries the vector (keyword) leg wins."""
    per_dataset: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    """With several data sets: the metric on each."""
    margins: dict[str, float] = field(default_factory=dict, compare=False, hash=False)
    """With several data sets: the metric over the better single leg's, minus 1, on each."""

    @property
    def worst_gap(self) -> float:
        return min(self.gaps)

    @property
    def worst_margin(self) -> float:
        """The smallest relative margin over the better leg among the data sets (``worst``)."""
        return min(self.margins.values()) if self.margins else 0.0

    def describe(self) -> str:
        f = self.fusion
        what = (
            f"rrf k={f.k} w_vec={f.vector_weight:g} w_kw={f.keyword_weight:g}"
            if f.method == "rrf"
            else f"{f.method}{' adaptive' if f.adaptive else ''} alpha={f.alpha:g}"
        )
        return f"{what} candidates={self.candidates}"


@dataclass
class TuneResult:
    """The chosen settings, the train scores behind them and every grid point tried."""

    dataset: str
    split: str
    metric: str
    objective: str
    bm25: tuple[float, float, float]
    tokenizer: str
    fusion: Fusion
    candidates: int
    legs: dict[str, dict[str, float]] = field(default_factory=dict)
    bm25_grid: list[dict[str, Any]] = field(default_factory=list)
    grid: list[GridPoint] = field(default_factory=list)
    legs_by_dataset: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """With several data sets: each one's single-leg scores (``legs`` is their mean)."""

    @property
    def best(self) -> GridPoint:
        return next(
            g for g in self.grid if g.fusion == self.fusion and g.candidates == self.candidates
        )

    def constants(self) -> str:
        """The ``DEFAULT_*`` lines for ``vecmem/memory.py``, citing the train figures."""
        f, (k1, b, eps) = self.fusion, self.bm25
        legs = ", ".join(f"{m} {v[self.metric]:.4f}" for m, v in self.legs.items())
        gv, gk = self.best.gaps
        if self.legs_by_dataset:
            why = "; ".join(
                f"{n}: hybrid {self.best.per_dataset[n]:.4f}, "
                + ", ".join(f"{m} {v[self.metric]:.4f}" for m, v in legs_n.items())
                for n, legs_n in self.legs_by_dataset.items()
            )
        else:
            why = (
                f"hybrid {self.best.scores[self.metric]:.4f}; {legs}; gaps to the better leg "
                f"{gv:+.4f} (vector wins) {gk:+.4f} (keyword wins)"
            )
        return "\n".join(
            [
                (
                    f"# chosen by `vecmem tune` on {self.dataset} {self.split} ({self.metric}, "
                    f"objective {self.objective}): {why}"
                ),
                (
                    f"DEFAULT_FUSION = Fusion(method={f.method!r}, k={f.k}, "
                    f"vector_weight={f.vector_weight}, keyword_weight={f.keyword_weight}, "
                    f"alpha={f.alpha}, adaptive={f.adaptive})"
                ),
                f"DEFAULT_CANDIDATES = {self.candidates}",
                f"DEFAULT_BM25 = ({k1}, {b}, {eps})",
            ]
        )

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        ranked = sorted(self.grid, key=lambda g: -g.scores[self.metric])[:top]
        return {
            "dataset": self.dataset,
            "split": self.split,
            "metric": self.metric,
            "objective": self.objective,
            "chosen": {
                "setting": self.best.describe(),
                "fusion": dict(self.fusion.__dict__),
                "candidates": self.candidates,
                "bm25": list(self.bm25),
                "tokenizer": self.tokenizer,
                "scores": self.best.scores,
                "gaps": list(self.best.gaps),
                "per_dataset": self.best.per_dataset,
                "margins": self.best.margins,
            },
            "legs": self.legs,
            "legs_by_dataset": self.legs_by_dataset,
            "bm25_grid": sorted(self.bm25_grid, key=lambda r: -r[self.metric])[:top],
            "top": [
                {
                    "setting": g.describe(),
                    **g.scores,
                    "gaps": list(g.gaps),
                    "per_dataset": g.per_dataset,
                    "margins": g.margins,
                }
                for g in ranked
            ],
            "grid_size": len(self.grid),
        }


def _doc_run(qid: str, ids: Sequence[str], depth: int) -> dict[str, float]:
    docs: list[str] = []
    seen: set[str] = set()
    for d in ids:
        if d not in seen and d != qid:
            seen.add(d)
            docs.append(d)
    return {d: float(depth - r) for r, d in enumerate(docs[:depth])}


def tune_bm25(
    dataset: BeirDataset,
    *,
    tokenizers: Sequence[Tokenizer] = (DefaultTokenizer(),),
    k1s: Sequence[float] = K1S,
    bs: Sequence[float] = BS,
    epsilon: float = DEFAULT_BM25[2],
    metrics: Sequence[str] = ("ndcg@10", "recall@100"),
    depth: int = 100,
) -> list[dict[str, Any]]:
    """Keyword-leg scores for every tokenizer x k1 x b (whole documents): one index per
    tokenizer, parameters changed in place."""
    docs = dataset.documents()
    out = []
    for tok in tokenizers:
        index = BM25Index(k1=DEFAULT_BM25[0], b=DEFAULT_BM25[1], epsilon=epsilon)
        index.add(np.arange(len(docs)), [tok(d.text) for d in docs])
        qtokens = {q: tok(t) for q, t in dataset.queries.items()}
        for k1 in k1s:
            for b in bs:
                index.with_params(k1=k1, b=b, epsilon=epsilon)
                run = {}
                for q, tokens in qtokens.items():
                    slots, _ = index.top_k(tokens, depth + 1)
                    run[q] = _doc_run(q, [docs[int(s)].id for s in slots], depth)
                means = evaluate(dataset.qrels, run, metrics).means
                out.append({"tokenizer": tok.spec, "k1": k1, "b": b, **means})
    return out


def collect_legs(
    mem: VectorMemory, queries: dict[str, str], *, depth: int
) -> dict[str, tuple[list[Scored], list[Scored]]]:
    """Each leg once per query from the memory's store, ``depth`` deep: ``{qid: (vector,
    keyword)}``."""
    vectors = mem.embedder.embed(list(queries.values()))
    store = mem.store
    mem.space  # noqa: B018  (connect)
    return {
        q: (store.query(v, k=depth), store.keyword(text, k=depth))
        for (q, text), v in zip(queries.items(), vectors)
    }


def fusion_grid(
    rrf_ks: Sequence[int] = RRF_KS,
    weights: Sequence[float] = WEIGHTS,
    alphas: Sequence[float] = ALPHAS,
    methods: Sequence[str] = SCORE_METHODS,
) -> list[Fusion]:
    """The fusion settings tried: RRF for each k and vector weight; each score method (convex,
    dbsf), fixed and adaptive, for each alpha."""
    grid = [
        Fusion("rrf", k=k, vector_weight=w, keyword_weight=1.0) for k in rrf_ks for w in weights
    ]
    return grid + [
        Fusion(m, alpha=a, adaptive=ad)  # type: ignore[arg-type]
        for m in methods
        for ad in (False, True)
        for a in alphas
    ]


def score_fusions(
    legs: dict[str, tuple[list[Scored], list[Scored]]],
    qrels: dict[str, dict[str, int]],
    fusions: Sequence[Fusion],
    candidate_depths: Sequence[int],
    *,
    depth: int = 100,
    metrics: Sequence[str] = ("ndcg@10", "recall@100"),
    leg_scores: tuple[dict[str, float], dict[str, float]] | None = None,
) -> list[GridPoint]:
    """Mean scores of every (fusion, candidates) pair, fused offline from ``legs``; with
    ``leg_scores`` (per-query ``metrics[0]`` of the vector and keyword legs) also each point's
    gaps to the better leg (see the module docstring)."""
    out = []
    for c in candidate_depths:
        d = max(depth, c)
        for f in fusions:
            run = {}
            for q, (vec, kw) in legs.items():
                hits = fuse(vec[:d], kw[:d], f, k=d)[:depth]
                run[q] = _doc_run(q, [h.document_id for h in hits], depth)
            result = evaluate(qrels, run, metrics)
            gaps = (0.0, 0.0)
            if leg_scores is not None:
                gaps = leg_gaps(result.per_query[metrics[0]], *leg_scores)
            out.append(GridPoint(f, c, result.means, gaps))
    return out


def leg_gaps(
    fused: dict[str, float], vector: dict[str, float], keyword: dict[str, float]
) -> tuple[float, float]:
    """Mean ``fused - vector`` over the queries where the vector leg beats the keyword leg, and
    ``fused - keyword`` where the keyword leg wins (0.0 for a group with no queries).

    >>> leg_gaps({"a": 0.9, "b": 0.5}, {"a": 1.0, "b": 0.2}, {"a": 0.3, "b": 0.6})
    (-0.09999999999999998, -0.09999999999999998)
    """

    def gap(winner: dict[str, float], loser: dict[str, float]) -> float:
        qs = [q for q in winner if winner[q] > loser.get(q, 0.0)]
        return float(np.mean([fused.get(q, 0.0) - winner[q] for q in qs])) if qs else 0.0

    return gap(vector, keyword), gap(keyword, vector)


OBJECTIVES = ("robust", "mean", "worst")


def objective_value(g: GridPoint, metric: str, objective: str) -> float:
    """What :func:`choose` maximises: ``"robust"``, the worst gap to the better leg on the queries
    each leg wins; ``"mean"``, the mean ``metric``; ``"worst"``, the smallest relative margin
    over the data sets of fused over the better single leg."""
    if objective == "robust":
        return g.worst_gap
    if objective == "worst":
        return g.worst_margin
    return g.scores[metric]


def choose(
    grid: Sequence[GridPoint], metric: str, tolerance: float, objective: str = "robust"
) -> GridPoint:
    """Best objective (see :func:`objective_value`); among points within ``tolerance`` of it,
    fewest candidates, then best mean."""
    if not grid:
        raise ConfigurationError("the tuning grid is empty")
    if objective not in OBJECTIVES:
        raise ConfigurationError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    top = max(objective_value(g, metric, objective) for g in grid)
    near = [g for g in grid if objective_value(g, metric, objective) >= top - tolerance]
    return min(near, key=lambda g: (g.candidates, -g.scores[metric]))


def _fusion_grid_on(
    dataset: BeirDataset,
    fusions: Sequence[Fusion],
    candidate_depths: Sequence[int],
    *,
    bm25: tuple[float, float, float],
    tokenizer: Tokenizer,
    embedder: Any,
    cache: EmbeddingCache | str | Path | None,
    metrics: Sequence[str],
    depth: int,
    progress: bool,
) -> tuple[dict[str, dict[str, float]], list[GridPoint]]:
    """Index ``dataset``, run each leg once per query and score every fusion setting offline:
    ``({leg: means}, grid)``."""
    mem = index_dataset(
        dataset, embedder=embedder, cache=cache, bm25=bm25, tokenizer=tokenizer, progress=progress
    )
    try:
        legs = collect_legs(mem, dataset.queries, depth=max(max(candidate_depths), depth))
    finally:
        mem.close()
    leg_scores, per_query = {}, {}
    for name, pick in (("keyword", 1), ("vector", 0)):
        run = {
            q: _doc_run(q, [s.chunk.document_id for s in pair[pick][:depth]], depth)
            for q, pair in legs.items()
        }
        result = evaluate(dataset.qrels, run, metrics)
        leg_scores[name], per_query[name] = result.means, result.per_query[metrics[0]]
    grid = score_fusions(
        legs,
        dataset.qrels,
        fusions,
        candidate_depths,
        depth=depth,
        metrics=metrics,
        leg_scores=(per_query["vector"], per_query["keyword"]),
    )
    return leg_scores, grid


def tune_dataset(
    dataset: BeirDataset,
    *,
    embedder: Any = None,
    cache: EmbeddingCache | str | Path | None = None,
    metric: str = "ndcg@10",
    tokenizers: Sequence[Tokenizer] | None = None,
    k1s: Sequence[float] = K1S,
    bs: Sequence[float] = BS,
    rrf_ks: Sequence[int] = RRF_KS,
    weights: Sequence[float] = WEIGHTS,
    alphas: Sequence[float] = ALPHAS,
    methods: Sequence[str] = SCORE_METHODS,
    candidate_depths: Sequence[int] = CANDIDATE_DEPTHS,
    depth: int = 100,
    tolerance: float = 0.002,
    objective: str = "robust",
    split: str = "train",
    progress: bool = False,
) -> TuneResult:
    """Tune BM25 and fusion on ``dataset`` (a train or dev split); see the module docstring.

    ``tokenizers`` defaults to the default tokenizer only; pass e.g. ``(DefaultTokenizer(),
    DefaultTokenizer(stem=None))`` to compare stemming; the chosen one is reported.
    """
    if objective == "worst":
        return tune_datasets(
            [dataset],
            embedder=embedder,
            cache=cache,
            metric=metric,
            tokenizers=tokenizers,
            k1s=k1s,
            bs=bs,
            rrf_ks=rrf_ks,
            weights=weights,
            alphas=alphas,
            methods=methods,
            candidate_depths=candidate_depths,
            depth=depth,
            tolerance=tolerance,
            objective=objective,
            split=split,
            progress=progress,
        )
    parse_metric(metric)
    if not candidate_depths or min(candidate_depths) <= 0:
        raise ConfigurationError("candidate depths must be > 0")
    metrics = list(dict.fromkeys([metric, "ndcg@10", f"recall@{depth}", "mrr@10"]))
    toks = list(tokenizers or (DefaultTokenizer(),))
    bm25_rows = tune_bm25(dataset, tokenizers=toks, k1s=k1s, bs=bs, metrics=metrics, depth=depth)
    best_bm25 = max(bm25_rows, key=lambda r: r[metric])
    bm25 = (float(best_bm25["k1"]), float(best_bm25["b"]), DEFAULT_BM25[2])
    tokenizer = next(t for t in toks if t.spec == best_bm25["tokenizer"])
    leg_scores, grid = _fusion_grid_on(
        dataset,
        fusion_grid(rrf_ks, weights, alphas, methods),
        candidate_depths,
        bm25=bm25,
        tokenizer=tokenizer,
        embedder=embedder,
        cache=cache,
        metrics=metrics,
        depth=depth,
        progress=progress,
    )
    best = choose(grid, metric, tolerance, objective)
    return TuneResult(
        dataset.name,
        split,
        metric,
        objective,
        bm25,
        tokenizer.spec,
        best.fusion,
        best.candidates,
        leg_scores,
        bm25_rows,
        grid,
    )


def _relative(score: float, reference: float) -> float:
    """``score / reference - 1`` (0.0 against a reference of 0): margins and shortfalls are
    relative, so a data set whose metric is low throughout counts as much as one where it is
    high (NFCorpus's nDCG@10 is about half SciFact's)."""
    return score / reference - 1.0 if reference > 0 else 0.0


def tune_datasets(
    datasets: Sequence[BeirDataset],
    *,
    embedder: Any = None,
    cache: EmbeddingCache | str | Path | None = None,
    metric: str = "ndcg@10",
    tokenizers: Sequence[Tokenizer] | None = None,
    k1s: Sequence[float] = K1S,
    bs: Sequence[float] = BS,
    rrf_ks: Sequence[int] = RRF_KS,
    weights: Sequence[float] = WEIGHTS,
    alphas: Sequence[float] = ALPHAS,
    methods: Sequence[str] = SCORE_METHODS,
    candidate_depths: Sequence[int] = CANDIDATE_DEPTHS,
    depth: int = 100,
    tolerance: float = 0.002,
    objective: str = "worst",
    split: str = "train",
    progress: bool = False,
) -> TuneResult:
    """Tune one set of defaults on several data sets (their train or dev splits) at once.

    The rule (``objective="worst"``, the default) asks each setting to hold on every data set:

    * BM25: the (tokenizer, k1, b) whose *largest relative shortfall* on any data set from that
      data set's best keyword score of the grid is smallest (ties: the best mean);
    * fusion: with that BM25, the (fusion, candidates) whose *smallest relative margin* over the
      data sets of fused over the better single leg (``fused / better leg - 1``) is largest;
      within ``tolerance`` of it, the fewest candidates, then the best mean over the data sets.

    Relative, not absolute: nDCG@10 levels differ between collections (NFCorpus's is about half
    SciFact's), and an absolute margin lets the collection with the larger numbers dominate.

    ``"robust"`` takes, per fusion setting, the worst of each data set's two gaps (see
    :func:`leg_gaps`); ``"mean"`` the mean over data sets. Every grid point keeps its score and
    margin on each data set (``GridPoint.per_dataset`` / ``margins``).

    >>> from vecmem.datasets import load_sample
    >>> a, b = load_sample(), load_sample()
    >>> b.name = "again"
    >>> result = tune_datasets([a, b], embedder="hashing", cache=":memory:", rrf_ks=(60,),
    ...                        weights=(1.0,), alphas=(), candidate_depths=(100,), k1s=(1.2,),
    ...                        bs=(0.75,))
    >>> sorted(result.best.margins) == ["again", "vecmem-sample"]
    True
    """
    parse_metric(metric)
    if not datasets:
        raise ConfigurationError("tune_datasets needs at least one data set")
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"data set names must differ, got {names}")
    if not candidate_depths or min(candidate_depths) <= 0:
        raise ConfigurationError("candidate depths must be > 0")
    if objective not in OBJECTIVES:
        raise ConfigurationError(f"objective must be one of {OBJECTIVES}, not {objective!r}")
    metrics = list(dict.fromkeys([metric, "ndcg@10", f"recall@{depth}", "mrr@10"]))
    toks = list(tokenizers or (DefaultTokenizer(),))
    per_set = {
        d.name: tune_bm25(d, tokenizers=toks, k1s=k1s, bs=bs, metrics=metrics, depth=depth)
        for d in datasets
    }
    best_kw = {n: max(r[metric] for r in rows) for n, rows in per_set.items()}
    bm25_rows = []
    for i, first in enumerate(per_set[names[0]]):
        scores = {n: per_set[n][i][metric] for n in names}
        bm25_rows.append(
            {
                "tokenizer": first["tokenizer"],
                "k1": first["k1"],
                "b": first["b"],
                **{m: float(np.mean([per_set[n][i][m] for n in names])) for m in metrics},
                "per_dataset": scores,
                "worst_shortfall": min(_relative(scores[n], best_kw[n]) for n in names),
            }
        )
    key = "worst_shortfall" if objective != "mean" else metric
    best_bm25 = max(bm25_rows, key=lambda r: (r[key], r[metric]))
    bm25 = (float(best_bm25["k1"]), float(best_bm25["b"]), DEFAULT_BM25[2])
    tokenizer = next(t for t in toks if t.spec == best_bm25["tokenizer"])
    fusions = fusion_grid(rrf_ks, weights, alphas, methods)
    legs: dict[str, dict[str, dict[str, float]]] = {}
    grids: dict[str, list[GridPoint]] = {}
    for d in datasets:
        legs[d.name], grids[d.name] = _fusion_grid_on(
            d,
            fusions,
            candidate_depths,
            bm25=bm25,
            tokenizer=tokenizer,
            embedder=embedder,
            cache=cache,
            metrics=metrics,
            depth=depth,
            progress=progress,
        )
    grid = []
    for i, point in enumerate(grids[names[0]]):
        points = {n: grids[n][i] for n in names}
        per = {n: p.scores[metric] for n, p in points.items()}
        grid.append(
            GridPoint(
                point.fusion,
                point.candidates,
                {m: float(np.mean([p.scores[m] for p in points.values()])) for m in metrics},
                (min(p.gaps[0] for p in points.values()), min(p.gaps[1] for p in points.values())),
                per_dataset=per,
                margins={
                    n: _relative(per[n], max(legs[n]["vector"][metric], legs[n]["keyword"][metric]))
                    for n in names
                },
            )
        )
    best = choose(grid, metric, tolerance, objective)
    mean_legs = {
        leg: {m: float(np.mean([legs[n][leg][m] for n in names])) for m in metrics}
        for leg in ("keyword", "vector")
    }
    return TuneResult(
        "+".join(names),
        split,
        metric,
        objective,
        bm25,
        tokenizer.spec,
        best.fusion,
        best.candidates,
        mean_legs,
        bm25_rows,
        grid,
        legs_by_dataset=legs,
    )


__all__ = [
    "OBJECTIVES",
    "GridPoint",
    "TuneResult",
    "choose",
    "collect_legs",
    "fusion_grid",
    "leg_gaps",
    "objective_value",
    "score_fusions",
    "tune_bm25",
    "tune_dataset",
    "tune_datasets",
]
