"""HNSW recall@10 against exact search at 1M vectors, per search width (issue 2).

    python -m benchmarks.bench_hnsw_1m            # 1M synthetic vectors (about 12 minutes)
    python -m benchmarks.bench_hnsw_1m --quick    # 100k

Same usearch settings as the embedded store (cosine as inner product on unit vectors,
connectivity 16, expansion_add 128; 32 candidates re-scored exactly, best 10 kept), so it checks
the store's width rule (`EmbeddedStore._ef_for`) without paying for the store's ingest.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from usearch.index import Index

from benchmarks import synthetic

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--n", type=int, default=None)
    args = p.parse_args(argv)
    n = args.n or (100_000 if args.quick else 1_000_000)
    t0 = time.time()
    vecs = synthetic.vectors(n)
    queries = synthetic.vectors(100, seed=7)
    index = Index(
        ndim=384, metric="ip", dtype="f32", connectivity=16, expansion_add=128, expansion_search=96
    )
    for s in range(0, n, 50_000):
        index.add(
            np.arange(s, min(n, s + 50_000), dtype=np.uint64), vecs[s : s + 50_000], threads=0
        )
    out: dict[str, object] = {
        "vectors": n,
        "build_s": round(time.time() - t0, 1),
        "machine": synthetic.machine(),
    }
    exact = [set(np.argpartition(-(vecs @ q), 10)[:10].tolist()) for q in queries]
    for ef in (96, 200, 303):
        index.expansion_search = ef
        recalls, times = [], []
        for q, truth in zip(queries, exact):
            t = time.perf_counter()
            found = index.search(q, 32)
            times.append(time.perf_counter() - t)
            keys = np.asarray(found.keys, dtype=np.int64)
            top = keys[np.argsort(-(vecs[keys] @ q))[:10]]
            recalls.append(len(set(top.tolist()) & truth) / 10)
        out[f"ef{ef}"] = {
            "recall_at_10": round(float(np.mean(recalls)), 4),
            **synthetic.percentiles(times),
        }
    name = "hnsw_1m-quick.json" if args.quick else "hnsw_1m.json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
