"""The ``vecmem eval`` and ``vecmem tune`` commands (registered by :mod:`vecmem.cli`).

vecmem eval ../shared/datasets/scifact --split test --modes keyword,vector,hybrid --json
vecmem eval sample --plot eval.png
vecmem tune ../shared/datasets/scifact --split train --report test
vecmem tune ../shared/datasets/scifact ../shared/datasets/nfcorpus --report test,dev
vecmem eval sample --save sqlite:///evals.db --label baseline; vecmem eval-runs sqlite:///evals.db
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecmem.datasets import BEIR_URL, SAMPLE_PATH, BeirDataset, download_beir, load_beir
from vecmem.embedders import default_cache_dir
from vecmem.errors import ConfigurationError
from vecmem.evaluation.metrics import metric_label
from vecmem.evaluation.runner import (
    MODES,
    ModeResult,
    default_cache_path,
    evaluate_memory,
    index_dataset,
)
from vecmem.evaluation.stats import compare
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_BM25, DEFAULT_CANDIDATES, DEFAULT_FUSION


def _default_runs_db() -> str:
    from vecmem.evaluation.saved import default_url

    return default_url()


def _csv(text: str, cast: Any = str) -> list[Any]:
    try:
        return [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad list {text!r}: {exc}") from exc


def _ints(text: str) -> list[int]:
    return _csv(text, int)


def _floats(text: str) -> list[float]:
    return _csv(text, float)


def _folder(args: argparse.Namespace, name: str) -> Path:
    path = SAMPLE_PATH if name == "sample" else Path(name)
    if args.download and name != "sample" and not path.is_dir():
        path = download_beir(name, default_cache_dir() / "datasets", base_url=args.beir_url)
    return path


def _load(args: argparse.Namespace, split: str, name: str | None = None) -> BeirDataset:
    name = args.path if name is None else name
    path = _folder(args, name)
    ds = load_beir(path, split=split, limit_docs=args.limit_docs, limit_queries=args.limit_queries)
    if name == "sample":
        ds.name = "vecmem-sample"
    if not ds.queries:
        raise ConfigurationError(f"{path}: no judged queries in qrels/{split}.tsv")
    return ds


def _report_split(args: argparse.Namespace, name: str, splits: Sequence[str]) -> str | None:
    """The first of ``splits`` that data set ``name`` has judgements for."""
    folder = _folder(args, name)
    return next((s for s in splits if (folder / "qrels" / f"{s}.tsv").is_file()), None)


def _dataset_args(p: argparse.ArgumentParser, split: str, *, several: bool = False) -> None:
    if several:
        p.add_argument(
            "path",
            nargs="+",
            help="one or more BEIR folders (corpus.jsonl, "
            "queries.jsonl, qrels/) or 'sample'; with several, one set of settings "
            "is chosen for all of them",
        )
    else:
        p.add_argument(
            "path", help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or 'sample'"
        )
    p.add_argument("--split", default=split, help=f"qrels split (default {split})")
    p.add_argument(
        "--embedder",
        default=argparse.SUPPRESS,
        help="model name or 'hashing' (default all-MiniLM-L6-v2)",
    )
    p.add_argument(
        "--cache",
        default=None,
        help=f"embedding cache file (default {default_cache_path()}; ':memory:' for none kept)",
    )
    p.add_argument("--limit-docs", type=int, help="first N documents plus every judged one")
    p.add_argument("--limit-queries", type=int, help="first N judged queries")
    p.add_argument(
        "--download",
        action="store_true",
        help="PATH is a BEIR name (e.g. scifact): download it into "
        f"{default_cache_dir() / 'datasets'} unless already there",
    )
    p.add_argument("--beir-url", default=BEIR_URL, help=argparse.SUPPRESS)


def _reranker(spec: str | None) -> tuple[Any, str | None]:
    if not spec:
        return None, None
    from vecmem.rerank import CrossEncoderReranker, MMRReranker

    name, _, arg = spec.partition(":")
    if name == "mmr":
        return MMRReranker(float(arg) if arg else 0.5), spec
    if name == "cross-encoder":
        return (CrossEncoderReranker(arg) if arg else CrossEncoderReranker()), name
    raise ConfigurationError(
        f"--rerank must be mmr[:LAMBDA] or cross-encoder[:MODEL], not {spec!r}"
    )


def _fusion(args: argparse.Namespace) -> Fusion:
    d = DEFAULT_FUSION
    method = args.fusion or d.method
    return Fusion(
        method=method,
        k=d.k if args.rrf_k is None else args.rrf_k,
        vector_weight=d.vector_weight if args.vector_weight is None else args.vector_weight,
        keyword_weight=d.keyword_weight if args.keyword_weight is None else args.keyword_weight,
        alpha=d.alpha if args.alpha is None else args.alpha,
        # the default's adaptive weights do not carry over to --fusion rrf; an explicit
        # --adaptive with rrf is refused by Fusion itself
        adaptive=(d.adaptive and method != "rrf") if args.adaptive is None else args.adaptive,
    )


def _table(results: Sequence[ModeResult], k: int, depth: int) -> str:
    cols = list(
        dict.fromkeys([f"ndcg@{k}", f"recall@{depth}", f"mrr@{k}", f"map@{k}", f"precision@{k}"])
    )
    multi = len({r.backend for r in results}) > 1
    head = f"{'mode':<18}" + (f"{'backend':<10}" if multi else "")
    head += "".join(f"{metric_label(c):>12}" for c in cols) + f"{'p50 ms':>10}{'p99 ms':>10}"
    lines = [head]
    for r in results:
        row = f"{r.mode:<18}" + (f"{r.backend:<10}" if multi else "")
        row += "".join(f"{r.metrics[c]:>12.4f}" for c in cols)
        lines.append(row + f"{r.latency(50):>10.2f}{r.latency(99):>10.2f}")
    return "\n".join(lines)


def _significance(results: Sequence[ModeResult], metric: str) -> dict[str, dict[str, Any]]:
    """Each hybrid result against every single-leg result on the same backend."""
    out: dict[str, dict[str, Any]] = {}
    for h in results:
        if not h.mode.startswith("hybrid"):
            continue
        for r in results:
            if r is h or r.backend != h.backend or r.mode.startswith("hybrid"):
                continue
            c = compare(h.evaluation.scores(metric), r.evaluation.scores(metric))
            out.setdefault(f"{h.mode}@{h.backend}", {})[r.mode] = {
                "metric": metric,
                "difference": round(c.mean_difference, 6),
                "p_randomization": round(c.p_randomization, 6),
                "p_t_test": round(c.p_t_test, 6),
                "wins": c.wins,
                "losses": c.losses,
            }
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from vecmem.stores import open_store

    modes = _csv(args.modes)
    for m in modes:
        if m not in MODES:
            raise ConfigurationError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
    if args.stores and args.store:
        raise ConfigurationError("pass --store or --stores, not both")
    ds = _load(args, args.split)
    targets: list[str | None] = _csv(args.stores) if args.stores else [args.store]
    reranker, rerank_name = _reranker(args.rerank)
    fusion = _fusion(args)
    if args.bm25 and len(args.bm25) != 2:
        raise ConfigurationError("--bm25 takes K1,B")
    bm25 = (args.bm25[0], args.bm25[1], DEFAULT_BM25[2]) if args.bm25 else DEFAULT_BM25
    embedder = getattr(args, "embedder", None)
    results: list[ModeResult] = []
    for target in targets:
        mem = index_dataset(
            ds,
            store=open_store(target),
            embedder=embedder,
            cache=args.cache or default_cache_path(),
            chunk_size=args.chunk_size,
            chunk_overlap=args.chunk_overlap,
            fusion=fusion,
            candidates=args.candidates,
            bm25=bm25,
            progress=not args.json,
        )
        try:
            results += evaluate_memory(
                mem,
                ds,
                modes=modes,
                split=args.split,
                k=args.k,
                depth=args.depth,
                chunked=args.chunk_size is not None,
            )
            if reranker is not None:
                results += evaluate_memory(
                    mem,
                    ds,
                    modes=modes,
                    split=args.split,
                    k=args.k,
                    depth=args.depth,
                    rerank=reranker,
                    rerank_name=rerank_name,
                    chunked=args.chunk_size is not None,
                )
        finally:
            mem.close()
    depth = max(args.depth, args.k, 100)
    sig = _significance(results, f"ndcg@{args.k}")
    if args.plot:
        from vecmem.evaluation.plot import plot_results

        plot_results(results, args.plot)
    out = []
    for r in results:
        s = r.summary()
        if f"{r.mode}@{r.backend}" in sig:
            s["significance"] = sig[f"{r.mode}@{r.backend}"]
        out.append(s)
    if args.save:
        _save(args, out)
    if args.json:
        print(json.dumps(out))
        return 0
    first = results[0]
    print(
        f"{ds.name} {args.split}: {len(ds.queries)} queries, {len(ds.corpus)} documents; "
        f"embedder {first.settings['embedder']}, chunker {first.settings['chunker']}"
    )
    print(_table(results, args.k, depth))
    for name, against in sig.items():
        for leg, c in against.items():
            print(
                f"{name} vs {leg}: {metric_label(c['metric'])} {c['difference']:+.4f} "
                f"(wins {c['wins']}, losses {c['losses']}), p = {c['p_randomization']:.4f} "
                f"randomisation, {c['p_t_test']:.4f} paired t-test"
            )
    embed = [r.query_embedding_ms for r in results if r.query_embedding_ms is not None]
    if embed:
        print(
            f"latencies are retrieval only; embedding a query takes {embed[0]:.1f} ms more "
            "(median, without the cache)"
        )
    if args.plot:
        print(f"plot written to {args.plot}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from vecmem.evaluation import tune
    from vecmem.tokenize import DefaultTokenizer, get_tokenizer

    if args.split == "test" and not args.allow_test:
        raise ConfigurationError(
            "tune on a train or dev split, never on test (the split you "
            "report); pass --allow-test if this data set has no other"
        )
    names = list(args.path)
    several = len(names) > 1
    objective = args.objective or ("worst" if several else "robust")
    sets = [_load(args, args.split, name) for name in names]
    toks = [DefaultTokenizer()] + ([DefaultTokenizer(stem=None)] if args.compare_stemming else [])
    embedder = getattr(args, "embedder", None)
    cache = args.cache or default_cache_path()

    def grid(value: list[Any] | None, default: Sequence[Any]) -> Sequence[Any]:
        return default if value is None else value

    options: dict[str, Any] = {
        "embedder": embedder,
        "cache": cache,
        "metric": args.metric,
        "tokenizers": toks,
        "k1s": grid(args.k1, tune.K1S),
        "bs": grid(args.b, tune.BS),
        "rrf_ks": grid(args.rrf_ks, tune.RRF_KS),
        "weights": grid(args.weights, tune.WEIGHTS),
        "alphas": grid(args.alphas, tune.ALPHAS),
        "candidate_depths": grid(args.candidates, tune.CANDIDATE_DEPTHS),
        "tolerance": args.tolerance,
        "objective": objective,
        "split": args.split,
        "progress": not args.json,
    }
    result = (
        tune.tune_datasets(sets, **options) if several else tune.tune_dataset(sets[0], **options)
    )
    reports: list[ModeResult] = []
    if args.report:
        wanted = _csv(args.report)
        if args.split in wanted:
            raise ConfigurationError("--report must name another split than the one tuned on")
        for name in names:
            split = _report_split(args, name, wanted)
            if split is None:
                if not several:
                    raise ConfigurationError(f"{name}: no qrels for --report {args.report}")
                continue
            held = _load(args, split, name)
            mem = index_dataset(
                held,
                embedder=embedder,
                cache=cache,
                fusion=result.fusion,
                candidates=result.candidates,
                bm25=result.bm25,
                tokenizer=get_tokenizer(result.tokenizer),
            )
            try:
                reports += evaluate_memory(mem, held, split=split)
            finally:
                mem.close()
    if args.json:
        out = result.to_dict()
        if args.report:
            out["report"] = [r.summary() for r in reports]
        print(json.dumps(out))
        return 0
    m = args.metric
    for ds in sets:
        print(
            f"tuned on {ds.name} {args.split}: {len(ds.queries)} queries, "
            f"{len(ds.corpus)} documents"
        )
    rule = (
        "the smallest worst shortfall from each data set's best"
        if several and objective != "mean"
        else "the best mean"
    )
    print(f"\nBM25 (keyword leg), {len(result.bm25_grid)} settings, chosen by {rule}:")
    ranked = sorted(result.bm25_grid, key=lambda r: (-r.get("worst_shortfall", r[m]), -r[m]))
    shown = ranked[:5] + [
        next(r for r in ranked if r["tokenizer"] == t)
        for t in dict.fromkeys(r["tokenizer"] for r in ranked[5:])
        if t not in {r["tokenizer"] for r in ranked[:5]}
    ]
    for row in shown:
        per = "".join(f"  {n} {v:.4f}" for n, v in row.get("per_dataset", {}).items())
        print(
            f"  {row['tokenizer']:<32} k1={row['k1']:<4g} b={row['b']:<5g} "
            f"{metric_label(m)} {row[m]:.4f}{per}"
        )
    if result.legs_by_dataset:
        for n, legs in result.legs_by_dataset.items():
            print(
                f"\nsingle legs on {n}: "
                + ", ".join(f"{leg} {v[m]:.4f}" for leg, v in legs.items())
            )
    else:
        print("\nsingle legs: " + ", ".join(f"{leg} {v[m]:.4f}" for leg, v in result.legs.items()))
    explain = {
        "robust": "gap to the vector / keyword leg where it wins",
        "worst": "fused over the better leg minus 1, on each data set",
        "mean": "gap to the vector / keyword leg where it wins",
    }[objective]
    print(
        f"\nfusion, best 10 of {len(result.grid)} settings by the {objective} objective "
        f"({metric_label(m)}, Recall@100, {explain}):"
    )
    for g in sorted(result.grid, key=lambda g: -tune.objective_value(g, m, objective))[:10]:
        extra = (
            "".join(f" {v:+.4f}" for v in g.margins.values())
            if objective == "worst"
            else f" {g.gaps[0]:+.4f} {g.gaps[1]:+.4f}"
        )
        print(
            f"  {g.describe():<52} {g.scores[m]:.4f}  {g.scores.get('recall@100', 0):.4f} {extra}"
        )
    print(
        f"\nchosen (best {objective} objective within {args.tolerance}, then the fewest "
        f"candidates): {result.best.describe()}, "
        f"bm25 k1={result.bm25[0]:g} b={result.bm25[1]:g}"
    )
    print("\n" + result.constants())
    for name in dict.fromkeys(r.dataset for r in reports):
        rows = [r for r in reports if r.dataset == name]
        print(f"\nreport on {name} {rows[0].split} (chosen settings, not tuned on it):")
        print(_table(rows, 10, 100))
    return 0


_SAVED_OPTIONS = (
    "path", "split", "modes", "k", "depth", "store", "stores", "chunk_size", "chunk_overlap",
    "fusion", "rrf_k", "vector_weight", "keyword_weight", "alpha", "adaptive", "candidates",
    "bm25", "rerank", "embedder", "limit_docs", "limit_queries",
)  # fmt: skip


def _save(args: argparse.Namespace, summaries: list[dict[str, Any]]) -> None:
    from vecmem.evaluation.saved import EvalRunStore

    options = {k: getattr(args, k, None) for k in _SAVED_OPTIONS}
    options = {k: v for k, v in options.items() if v is not None and not callable(v)}
    runs = EvalRunStore(args.save)
    try:
        run = runs.save(summaries, label=args.label, options=json.loads(json.dumps(options)))
        where = runs.db.safe_url
    finally:
        runs.close()
    print(f"saved eval run {run.id} to {where}", file=sys.stderr)


def cmd_eval_runs(args: argparse.Namespace) -> int:
    from vecmem.evaluation.saved import EvalRunStore

    runs = EvalRunStore(args.db)
    try:
        if args.show:
            found = [runs.get(args.show)]
        else:
            found = runs.list(
                dataset=args.dataset, split=args.split, label=args.label, limit=args.limit
            )
    finally:
        runs.close()
    if args.json:
        print(json.dumps([dataclasses.asdict(r) for r in found]))
        return 0
    if not found:
        print("no saved eval runs")
    metric = f"ndcg@{args.k}"
    for r in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created_at))
        label = f" [{r.label}]" if r.label else ""
        print(f"{r.id}  {when} UTC  {r.dataset} {r.split}{label}")
        for name, value in r.metric(metric).items():
            print(f"    {name:<28} {metric_label(metric)} {value:.4f}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``eval`` and ``tune`` to the ``vecmem`` command line."""
    e = subparsers.add_parser(
        "eval",
        help="evaluate retrieval on a BEIR data set",
        description="Index a BEIR data set, run every judged query in "
        "each mode and report nDCG, Recall, MRR, MAP, P and latency.",
    )
    _dataset_args(e, "test")
    e.add_argument("--modes", default=",".join(MODES), help="comma-separated (default all)")
    e.add_argument("--k", type=int, default=10, help="cut-off of nDCG/MRR/MAP/P (default 10)")
    e.add_argument("--depth", type=int, default=100, help="documents per query (default 100)")
    e.add_argument("--stores", help="comma-separated store URLs to compare (instead of --store)")
    e.add_argument(
        "--chunk-size",
        type=int,
        help="split documents into chunks of N characters; a document scores as its "
        "best chunk (default: one chunk per document)",
    )
    e.add_argument("--chunk-overlap", type=int, default=0)
    e.add_argument(
        "--fusion", choices=["rrf", "convex", "dbsf"], help="override the default fusion"
    )
    e.add_argument("--rrf-k", type=int)
    e.add_argument("--vector-weight", type=float)
    e.add_argument("--keyword-weight", type=float)
    e.add_argument("--alpha", type=float, help="score fusion weight of the vector leg")
    e.add_argument(
        "--adaptive",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score fusion: weigh the legs per query by their confidence",
    )
    e.add_argument(
        "--candidates",
        type=int,
        default=DEFAULT_CANDIDATES,
        help=f"candidates per leg for hybrid (default {DEFAULT_CANDIDATES})",
    )
    e.add_argument(
        "--bm25", type=_floats, help=f"K1,B (default {DEFAULT_BM25[0]},{DEFAULT_BM25[1]})"
    )
    e.add_argument("--rerank", help="also evaluate reranked: mmr[:LAMBDA] or cross-encoder[:MODEL]")
    e.add_argument("--plot", metavar="FILE.png", help="draw quality per mode and vs latency")
    e.add_argument(
        "--save",
        nargs="?",
        const=_default_runs_db(),
        metavar="DB_URL",
        help="save the run to a database (default: the evals.db of the cache folder); "
        "list saved runs with 'vecmem eval-runs'",
    )
    e.add_argument("--label", help="a name for the saved run (with --save)")
    e.set_defaults(func=cmd_eval)

    r = subparsers.add_parser(
        "eval-runs",
        help="list the runs saved by 'vecmem eval --save'",
        description="List saved evaluation runs, newest first, with each mode's nDCG.",
    )
    r.add_argument("db", nargs="?", default=_default_runs_db(), help="database URL")
    r.add_argument("--dataset", help="only runs of this data set")
    r.add_argument("--split", help="only runs of this split")
    r.add_argument("--label", help="only runs with this label")
    r.add_argument("--limit", type=int, default=20, help="at most N runs (default 20)")
    r.add_argument("--show", metavar="RUN_ID", help="one run, by id")
    r.add_argument("--k", type=int, default=10, help="the nDCG cut-off shown (default 10)")
    r.set_defaults(func=cmd_eval_runs)

    t = subparsers.add_parser(
        "tune",
        help="choose fusion and BM25 settings on a train split",
        description="Grid-search BM25 k1/b and hybrid fusion (RRF k and "
        "weights, convex alpha, candidate depth) on a train or dev split.",
    )
    _dataset_args(t, "train", several=True)
    t.add_argument("--metric", default="ndcg@10")
    t.add_argument(
        "--report",
        metavar="SPLIT[,SPLIT]",
        help="then evaluate the choice on SPLIT (e.g. test); with several data sets, "
        "each on the first of the listed splits it has (e.g. test,dev)",
    )
    t.add_argument(
        "--compare-stemming", action="store_true", help="also try the tokenizer without stemming"
    )
    t.add_argument("--k1", type=_floats, default=None, help="BM25 k1 grid, comma-separated")
    t.add_argument("--b", type=_floats, default=None, help="BM25 b grid")
    t.add_argument("--rrf-ks", type=_ints, default=None, help="RRF k grid")
    t.add_argument(
        "--weights", type=_floats, default=None, help="vector-leg weight grid (keyword weight 1)"
    )
    t.add_argument("--alphas", type=_floats, default=None, help="convex alpha grid ('' for none)")
    t.add_argument("--candidates", type=_ints, default=None, help="candidate depth grid")
    t.add_argument(
        "--objective",
        choices=["robust", "mean", "worst"],
        default=None,
        help="worst (default with several data sets): the largest smallest relative "
        "margin over the data sets of fused over the better leg; robust (default "
        "with one): the smallest loss to the better leg on the queries it wins; "
        "mean: the best mean",
    )
    t.add_argument(
        "--tolerance",
        type=float,
        default=0.002,
        help="prefer fewer candidates within this much of the best (default 0.002)",
    )
    t.add_argument("--allow-test", action="store_true", help=argparse.SUPPRESS)
    t.set_defaults(func=cmd_tune)
