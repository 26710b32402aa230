"""Hybrid latency of the shipped fusion against the previous default, on one store.

    python -m benchmarks.bench_fusion_latency 100000

The embedded default with N synthetic chunks (precomputed vectors, as ``bench_core``), 300
queries; each query is searched with both fusions, their order alternating, so a busy machine
slows both alike. Query embedding excluded. Prints p50 / p99 in ms per fusion.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import synthetic
from benchmarks.bench_core import LookupEmbedder
from vecmem import VectorMemory
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_FUSION
from vecmem.stores.embedded import EmbeddedStore

PREVIOUS = Fusion("dbsf", alpha=0.6, adaptive=True)


def main(argv: list[str] | None = None) -> None:
    n = int((argv or sys.argv[1:] or ["100000"])[0])
    texts, vecs = synthetic.texts(n), synthetic.vectors(n)
    queries, qvecs = synthetic.queries(texts, 300), synthetic.vectors(300, seed=7)
    times: dict[str, list[float]] = {"previous": [], "shipped": []}
    with tempfile.TemporaryDirectory() as d:
        mem = VectorMemory(EmbeddedStore(Path(d) / "kb"), embedder=LookupEmbedder(texts, vecs))
        for s in range(0, n, 50_000):
            mem.add(texts[s : s + 50_000], ids=[f"c{i}" for i in range(s, min(n, s + 50_000))])
        mem.search(queries[0], k=10, vector=qvecs[0])
        pair = (("previous", PREVIOUS), ("shipped", DEFAULT_FUSION))
        for i, (q, v) in enumerate(zip(queries, qvecs)):
            for name, f in pair if i % 2 else pair[::-1]:
                t0 = time.perf_counter()
                mem.search(q, k=10, vector=v, fusion=f)
                times[name].append(time.perf_counter() - t0)
        mem.close()
    print(
        json.dumps(
            {
                "chunks": n,
                **{
                    k: {
                        "p50_ms": round(1000 * float(np.median(x)), 3),
                        "p99_ms": round(1000 * float(np.percentile(x, 99)), 3),
                    }
                    for k, x in times.items()
                },
            }
        )
    )


if __name__ == "__main__":
    main()
