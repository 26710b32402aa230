"""LanceDB adapter benchmark (issue 3): vecmem's LanceDb store against lancedb used directly.

    python -m benchmarks.bench_lancedb              # 100k chunks (a few minutes)
    python -m benchmarks.bench_lancedb --quick      # 5k chunks

Data: synthetic clustered 384-d unit vectors and Zipf text (benchmarks/synthetic.py), metadata
``{"bucket": i % 100, "source": ...}``, both tables in temporary folders, same process:

* ingest: ``LanceDb.upsert`` in batches of 1,000 (one ``merge_insert`` commit each, plus its BM25
  index) versus the raw table doing the same ``merge_insert`` on ``id`` (an idempotent write), and
  the raw append-only ``add`` for reference; then each side's index step: vecmem's
  ``optimize()`` (compaction, B-trees on ``id`` and ``document_id``) versus raw compaction and
  the FTS index;
* vector / filtered vector (10%) / keyword / hybrid: ``VectorMemory.search`` with the query
  vector given versus ``table.search`` (flat vector search, a ``where`` prefilter on a ``bucket``
  column, the native FTS index, and LanceDB's hybrid query with its RRF reranker).

vecmem's keyword leg is exact rank_bm25 BM25 kept beside the table (then one ``id IN (...)``
read), LanceDB's FTS is Lucene-style BM25 (different scores), so the keyword and hybrid ratios
compare the cost of doing the job, not identical computations.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks import synthetic
from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000


class _Lookup:
    """Stands in for an embedder: benchmarks pass vectors explicitly."""

    name = "synthetic-384"
    dim = 384

    def embed(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - never called
        raise AssertionError("benchmarks pass vectors explicitly")


def _paired(ours: Callable[[int], Any], theirs: Callable[[int], Any], queries: int,
            runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Time both sides on the same queries, alternating call by call (a busy machine slows
    both alike); one warm-up call each."""
    ours(0)
    theirs(0)
    a, b = [], []
    for r in range(runs):
        j = r % queries
        t = time.perf_counter()
        ours(j)
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        theirs(j)
        b.append(time.perf_counter() - t)
    return synthetic.percentiles(a), synthetic.percentiles(b)


def run(n: int, n_queries: int, folder: Path) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS

    from vecmem import VectorMemory
    from vecmem.stores.lancedb import LanceDb
    from vecmem.types import Chunk

    texts = synthetic.texts(n)
    vecs = synthetic.vectors(n)
    qtexts = synthetic.queries(texts, n_queries)
    qvecs = synthetic.vectors(n_queries, seed=7)
    metas = [{"bucket": i % 100, "source": f"s{i % 10}.md"} for i in range(n)]
    chunks = [Chunk.create(f"d{i}", 0, t, metas[i]) for i, t in enumerate(texts)]
    out: dict[str, Any] = {"chunks": n, "queries": n_queries, "lancedb": lancedb.__version__}

    # ---------------------------------------------------------------- vecmem
    store = LanceDb(folder / "vecmem", table="bench")
    mem = VectorMemory(store=store, embedder=_Lookup())  # type: ignore[arg-type]
    mem.space  # noqa: B018 (connect)
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        store.upsert(chunks[s : s + BATCH], vecs[s : s + BATCH])
    out["vecmem_ingest_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    store.optimize()
    out["vecmem_optimize_s"] = round(time.perf_counter() - t0, 2)

    # ---------------------------------------------------------------- raw lancedb
    db = lancedb.connect(folder / "raw")
    schema = pa.schema([("id", pa.string()), ("document_id", pa.string()), ("text", pa.string()),
                        ("bucket", pa.int64()), ("source", pa.string()),
                        ("vector", pa.list_(pa.float32(), 384))])

    def batch(s: int) -> Any:
        e = min(n, s + BATCH)
        return pa.table({
            "id": [c.id for c in chunks[s:e]], "document_id": [c.document_id for c in chunks[s:e]],
            "text": texts[s:e], "bucket": [m["bucket"] for m in metas[s:e]],
            "source": [m["source"] for m in metas[s:e]],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs[s:e].reshape(-1)), 384),
        }, schema=schema)

    appended = db.create_table("appended", schema=schema)
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        appended.add(batch(s))
    out["raw_add_s"] = round(time.perf_counter() - t0, 2)
    tbl = db.create_table("merged", schema=schema)
    t0 = time.perf_counter()
    for s in range(0, n, BATCH):
        tbl.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(
            batch(s))
    out["raw_merge_insert_s"] = round(time.perf_counter() - t0, 2)
    out["ingest_ratio_vs_merge_insert"] = round(
        out["vecmem_ingest_s"] / out["raw_merge_insert_s"], 3)
    out["ingest_ratio_vs_add"] = round(out["vecmem_ingest_s"] / out["raw_add_s"], 3)
    t0 = time.perf_counter()
    tbl.optimize()
    out["raw_optimize_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    tbl.create_index("text", config=FTS())
    out["raw_fts_index_s"] = round(time.perf_counter() - t0, 2)
    # the same work: idempotent writes plus a keyword index
    out["ingest_ratio_vs_merge_insert_plus_fts"] = round(
        out["vecmem_ingest_s"] / (out["raw_merge_insert_s"] + out["raw_fts_index_s"]), 3)

    cols = ["id", "document_id", "text", "bucket", "source"]
    def raw_vector(j: int, where: str | None = None) -> Any:
        q = tbl.search(qvecs[j], vector_column_name="vector").distance_type("cosine")
        if where:
            q = q.where(where, prefilter=True)
        return q.select([*cols, "_distance"]).limit(10).to_arrow()

    cases: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]] = {
        "vector": (lambda j: mem.search(qtexts[j], 10, mode="vector", vector=qvecs[j]),
                   lambda j: raw_vector(j)),
        "vector_filtered_10pct": (
            lambda j: mem.search(qtexts[j], 10, mode="vector", vector=qvecs[j],
                                 filter={"bucket": {"$lt": 10}}),
            lambda j: raw_vector(j, "bucket < 10")),
        "keyword": (lambda j: mem.search(qtexts[j], 10, mode="keyword"),
                    lambda j: tbl.search(qtexts[j], query_type="fts").select(cols).limit(10)
                    .to_arrow()),
        "hybrid": (lambda j: mem.search(qtexts[j], 10, mode="hybrid", vector=qvecs[j]),
                   # limit(100): 100 candidates per leg, as vecmem's, then the best 10
                   lambda j: tbl.search(query_type="hybrid", vector_column_name="vector")
                   .vector(qvecs[j]).text(qtexts[j]).select(cols).limit(100).to_arrow()
                   .slice(0, 10)),
    }
    for name, (ours, theirs) in cases.items():
        gc.collect()
        a, b = _paired(ours, theirs, n_queries, n_queries)
        out[name] = {"vecmem": a, "raw": b, "p50_ratio": round(a["p50_ms"] / b["p50_ms"], 3),
                     "runs": n_queries}
    store.close()
    t0 = time.perf_counter()
    again = LanceDb(folder / "vecmem", table="bench")
    again.connect(mem.space)
    out["reopen_with_bm25_snapshot_s"] = round(time.perf_counter() - t0, 2)
    again.close()
    (folder / "vecmem" / "bench.vecmem-bm25.npz").unlink()
    t0 = time.perf_counter()
    again = LanceDb(folder / "vecmem", table="bench")
    again.connect(mem.space)
    out["reopen_rebuilding_bm25_s"] = round(time.perf_counter() - t0, 2)
    again.close()
    return out


def markdown(r: dict[str, Any]) -> str:
    m = synthetic.machine()
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; "
        f"lancedb {r['lancedb']}. {r['chunks']:,} chunks (384-d clustered unit vectors, Zipf "
        "text), k=10, hybrid with 100 candidates per leg, flat (exact) vector search on both "
        "sides. vecmem through `VectorMemory.search` with the query vector given; raw = lancedb "
        "on a table of the same rows, same process.",
        "",
        "| operation | vecmem | raw lancedb | vecmem / raw |",
        "|---|---|---|---|",
        f"| ingest {r['chunks']:,} (batches of {BATCH}), keyword index included | "
        f"{r['vecmem_ingest_s']} s | merge_insert {r['raw_merge_insert_s']} s + FTS index "
        f"{r['raw_fts_index_s']} s | {r['ingest_ratio_vs_merge_insert_plus_fts']} |",
        f"| the writes alone | | merge_insert {r['raw_merge_insert_s']} s; add "
        f"{r['raw_add_s']} s | {r['ingest_ratio_vs_merge_insert']}; {r['ingest_ratio_vs_add']} |",
        f"| compaction after ingest | optimize() {r['vecmem_optimize_s']} s (with B-trees on "
        f"id, document_id) | optimize() {r['raw_optimize_s']} s | |",
    ]
    for name in ("vector", "vector_filtered_10pct", "keyword", "hybrid"):
        x = r[name]
        lines.append(f"| {name}, p50 / p99 ms ({x['runs']} runs) | {x['vecmem']['p50_ms']} / "
                     f"{x['vecmem']['p99_ms']} | {x['raw']['p50_ms']} / {x['raw']['p99_ms']} | "
                     f"{x['p50_ratio']} |")
    lines += [
        f"| reopen: BM25 snapshot / rebuild | {r['reopen_with_bm25_snapshot_s']} s / "
        f"{r['reopen_rebuilding_bm25_s']} s | | |",
        "",
        "Keyword and hybrid rows are not the same computation: vecmem's keyword leg is exact "
        "rank_bm25 BM25 in a BM25Index beside the table plus one `id IN (...)` read for the "
        "rows; the raw row is LanceDB's native FTS (Lucene-style BM25, its own tokenizer). "
        "vecmem's hybrid runs both legs and fuses with `vecmem.fusion.fuse` (RRF k=60); the raw "
        "row is LanceDB's hybrid query (vector + FTS, 100 candidates each, RRF reranker, best "
        "10). vecmem's ingest tokenizes "
        "every chunk for its BM25 index as it writes (the raw side pays for that in its FTS "
        "index build) and fills the typed filter columns.",
        "",
        "Where vecmem's extra time goes. Ingest: about two thirds is the BM25 leg's tokenizer "
        "(regex + Snowball stemming) and `BM25Index.add`, both core Python shared by every "
        "backend, against LanceDB's FTS build in Rust; the adapter's own third (the Arrow batch "
        "with JSON metadata and typed columns, version checks, one `merge_insert` commit per "
        "batch) is some 2-3x the raw `merge_insert` alone (profiled at 20k). "
        "Keyword: the exact BM25 top-k takes ~0.15 ms at 100k; most of the difference is "
        "reading the 10 winning rows back by `id IN (...)` (~2 ms with the B-tree), which the "
        "FTS query returns directly.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_lancedb")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--quick", action="store_true", help="5,000 chunks, 50 queries")
    args = p.parse_args(argv)
    n, nq = (5_000, 50) if args.quick else (args.n, args.queries)
    with tempfile.TemporaryDirectory() as d:
        result = run(n, nq, Path(d))
    result["machine"] = synthetic.machine()
    name = "lancedb-quick" if args.quick else "lancedb"
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.quick:
        write_section("lancedb", "LanceDB adapter (issue 3)", markdown(result))


if __name__ == "__main__":
    main()
