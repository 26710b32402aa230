"""The ONNX int8 MiniLM embedder against the sentence-transformers path (the same model, float32
on PyTorch), on the same texts in the same run, so every figure is a ratio.

    python -m benchmarks.bench_embedders            # 512 SciFact passages, 200 queries, + nDCG
    python -m benchmarks.bench_embedders --quick    # 128 passages, 50 queries, no nDCG
    python -m benchmarks.bench_embedders --no-eval  # speed only

*Ingest*: the passages (title + abstract, as ``vecmem eval`` indexes them) embedded in one call
by each embedder (its own batching: 32, sorted by length), two rounds alternating the embedders;
a side's figure is its faster round. *Query*: the test queries embedded one at a time (what a
search does), the embedders alternating query by query; p50/p99 of the per-query times.
*Cold start*: a fresh process importing vecmem, loading the model and embedding one text.
*Quality*: nDCG@10 (and Recall@100) on SciFact test, 300 queries, through
:func:`vecmem.evaluation.evaluate_dataset` with the default embedding cache (the first run embeds
5,183 passages with each embedder: slow on a busy machine; later runs read the cache).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.report import publish

ROOT = Path(__file__).resolve().parent.parent
SCIFACT = Path(os.environ.get("VECMEM_SCIFACT", ROOT.parent / "shared" / "datasets" / "scifact"))
SIDES = {"sentence-transformers": "st", "onnx-int8": "onnx"}


def _texts(n_docs: int, n_queries: int) -> tuple[list[str], list[str]]:
    docs, queries = [], []
    with (SCIFACT / "corpus.jsonl").open() as f:
        for line in f:
            d = json.loads(line)
            docs.append(f"{d.get('title', '')}\n{d['text']}".strip())
            if len(docs) == n_docs:
                break
    with (SCIFACT / "queries.jsonl").open() as f:
        for line in f:
            queries.append(json.loads(line)["text"])
            if len(queries) == n_queries:
                break
    return docs, queries


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 2)


def _cold_start(spec: str) -> float:
    code = (
        "import time; t = time.perf_counter(); from vecmem.embedders import resolve_embedder; "
        f"resolve_embedder({spec!r}).embed(['cold start']); "
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return round(float(out.stdout.strip().splitlines()[-1]), 2)


def _ndcg(spec: str) -> dict[str, Any]:
    from vecmem.datasets import load_beir
    from vecmem.embedders import EmbeddingCache, default_cache_dir
    from vecmem.evaluation import evaluate_dataset

    cache = EmbeddingCache(default_cache_dir() / "embeddings.sqlite")
    results = evaluate_dataset(load_beir(SCIFACT, split="test"), embedder=spec, cache=cache)
    return {
        r.mode: {
            "ndcg@10": round(r.metrics["ndcg@10"], 4),
            "recall@100": round(r.metrics["recall@100"], 4),
        }
        for r in results
    }


def run(n_docs: int, n_queries: int, evaluate: bool) -> dict[str, Any]:
    from vecmem.embedders import resolve_embedder

    docs, queries = _texts(n_docs, n_queries)
    emb = {side: resolve_embedder(spec) for side, spec in SIDES.items()}
    for e in emb.values():
        e.embed(["warm up"])
    ingest: dict[str, list[float]] = {s: [] for s in emb}
    for _ in range(2):
        for side, e in emb.items():
            t = time.perf_counter()
            e.embed(docs)
            ingest[side].append(time.perf_counter() - t)
    query: dict[str, list[float]] = {s: [] for s in emb}
    for i, q in enumerate(queries):
        order = list(emb.items()) if i % 2 == 0 else list(reversed(emb.items()))
        for side, e in order:
            t = time.perf_counter()
            e.embed([q])
            query[side].append((time.perf_counter() - t) * 1000)
    out: dict[str, Any] = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load": os.getloadavg()[0],
        "passages": len(docs),
        "queries": len(queries),
        "sides": {},
    }
    for side, spec in SIDES.items():
        out["sides"][side] = {
            "embedder": emb[side].name,
            "ingest_passages_per_s": round(len(docs) / min(ingest[side]), 1),
            "query_p50_ms": _pct(query[side], 0.5),
            "query_p99_ms": _pct(query[side], 0.99),
            "cold_start_s": _cold_start(spec),
        }
        if evaluate:
            out["sides"][side]["scifact_test"] = _ndcg(spec)
    st, ox = out["sides"]["sentence-transformers"], out["sides"]["onnx-int8"]
    out["ratios_onnx_over_st"] = {
        "ingest_speed": round(ox["ingest_passages_per_s"] / st["ingest_passages_per_s"], 2),
        "query_p50": round(ox["query_p50_ms"] / st["query_p50_ms"], 2),
        "cold_start": round(ox["cold_start_s"] / st["cold_start_s"], 2),
    }
    return out


def markdown(r: dict[str, Any]) -> str:
    rows = [
        "| embedder | ingest (passages/s) | query p50 / p99 (ms) | cold start (s) |"
        + (
            " nDCG@10 keyword / vector / hybrid |"
            if "scifact_test" in r["sides"]["onnx-int8"]
            else ""
        ),
        "|---|---|---|---|" + ("---|" if "scifact_test" in r["sides"]["onnx-int8"] else ""),
    ]
    for side, x in r["sides"].items():
        row = (
            f"| {side} (`{x['embedder']}`) | {x['ingest_passages_per_s']} | "
            f"{x['query_p50_ms']} / {x['query_p99_ms']} | {x['cold_start_s']} |"
        )
        if "scifact_test" in x:
            row += (
                " "
                + " / ".join(
                    f"{x['scifact_test'][m]['ndcg@10']:.4f}"
                    for m in ("keyword", "vector", "hybrid")
                )
                + " |"
            )
        rows.append(row)
    ratio = r["ratios_onnx_over_st"]
    return (
        f"Machine: {r['machine']}, load average {r['load']:.1f} during the run (shared "
        f"cores). {r['passages']} SciFact passages, {r['queries']} queries. "
        "`python -m benchmarks.bench_embedders`.\n\n" + "\n".join(rows) + "\n\n"
        f"ONNX / sentence-transformers: ingest speed x{ratio['ingest_speed']}, query p50 "
        f"x{ratio['query_p50']}, cold start x{ratio['cold_start']} (below 1 is faster for "
        "cold start and query, above 1 faster for ingest). The ONNX path imports no PyTorch."
        + _quality(r)
    )


def _quality(r: dict[str, Any]) -> str:
    st, ox = (r["sides"][s].get("scifact_test") for s in ("sentence-transformers", "onnx-int8"))
    if not st or not ox:
        return ""
    gaps = {m: round(ox[m]["ndcg@10"] - st[m]["ndcg@10"], 4) for m in ("vector", "hybrid")}
    return (
        f" nDCG@10 on SciFact test, ONNX minus sentence-transformers: vector "
        f"{gaps['vector']:+.4f}, hybrid {gaps['hybrid']:+.4f} (the target: within 0.005). "
        "The two are different embedding spaces, so the choice is per store: "
        "sentence-transformers where batched ingest throughput matters (int8 was slower "
        "here), ONNX where query latency, start-up time or an install without PyTorch do."
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-eval", action="store_true", help="skip the SciFact nDCG runs")
    args = p.parse_args()
    n_docs, n_queries = (128, 50) if args.quick else (512, 200)
    result = run(n_docs, n_queries, evaluate=not (args.quick or args.no_eval))
    publish(
        result,
        "embedders",
        ("embedders", "Embedders: ONNX int8 vs sentence-transformers"),
        markdown,
    )


if __name__ == "__main__":
    main()
