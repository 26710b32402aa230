"""LanceDB adapter benchmark (issue 3): vecmem's LanceDb store against lancedb used directly.

    python -m benchmarks.bench_lancedb              # 100k chunks (a few minutes)
    python -m benchmarks.bench_lancedb --quick      # 5k chunks

Data: synthetic clustered 384-d unit vectors and Zipf text (benchmarks/synthetic.py), metadata
``{"bucket": i % 100, "source": ...}``, every table in a temporary folder, one process.

Like with like, in one run:

* ingest: ``LanceDb(keyword="native").upsert`` in batches of 1,000 (one ``merge_insert`` commit
  each) until the first keyword search returns (it builds the full-text index: more than
  ``FTS_LAG`` rows are outside it), versus the raw table doing the same ``merge_insert`` on ``id``
  (an idempotent write, vecmem's semantics), ``create_index(FTS)`` and its first FTS query; the
  raw append-only ``add`` is shown beside it. All sides write batch i before any writes batch
  i + 1. The time each side spends building its Arrow batches is measured apart (a dry run).
  The raw client connects with vecmem's read consistency (``read_consistency_interval=0``: every
  read sees other writers' latest commit, one manifest check per call).
* vector / filtered vector (10%) / keyword / filtered keyword / hybrid: ``VectorMemory.search``
  with the query vector given, on the native store, versus ``table.search`` (flat vector search,
  a ``where`` prefilter, the FTS index, and LanceDB's hybrid query with its RRF reranker,
  100 candidates per leg and the best 10); vecmem's hybrid uses RRF (k=60) too. Both sides
  compacted by ``optimize()`` first.
* the same ingest, keyword and hybrid rows for ``keyword="exact"`` (rank_bm25 BM25 kept beside
  the table, the default), against the same raw calls: not the same computation (see the notes
  it writes), kept to show what exactness costs.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks import synthetic
from benchmarks.report import latency_row, publish

BATCH = 1000
# LanceDB's hybrid query logs a deprecation warning per query when it projects columns
# (lancedb#3001); the raw side below does, so quiet LanceDB's log for this process.
os.environ.setdefault("LANCEDB_LOG", "error")


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return round(time.perf_counter() - t0, 2)


def run(n: int, n_queries: int, folder: Path) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS

    from vecmem import VectorMemory
    from vecmem.fusion import Fusion
    from vecmem.stores import _lancedb_layout as layout
    from vecmem.stores import lancedb as adapter
    from vecmem.stores.lancedb import LanceDb

    texts, vecs, qtexts, qvecs, metas, chunks = synthetic.corpus(n, n_queries)
    out: dict[str, Any] = {
        "chunks": n,
        "queries": n_queries,
        "lancedb": lancedb.__version__,
        "fts_lag": adapter.FTS_LAG,
        "load_average_at_start": round(os.getloadavg()[0], 2),
    }
    stores: dict[str, Any] = {}
    mems: dict[str, Any] = {}
    for mode in ("native", "exact"):
        stores[mode] = LanceDb(folder / mode, table="bench", keyword=mode)  # type: ignore[arg-type]
        mems[mode] = VectorMemory(store=stores[mode], embedder=synthetic.PrecomputedVectors())  # type: ignore[arg-type]
        mems[mode].space  # noqa: B018 (connect)
    native = stores["native"]

    # the same read consistency as vecmem's: every read sees the latest commit
    db = lancedb.connect(folder / "raw", read_consistency_interval=timedelta(0))
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("document_id", pa.string()),
            ("text", pa.string()),
            ("bucket", pa.int64()),
            ("source", pa.string()),
            ("vector", pa.list_(pa.float32(), 384)),
        ]
    )

    def batch(s: int) -> Any:
        e = min(n, s + BATCH)
        return pa.table(
            {
                "id": [c.id for c in chunks[s:e]],
                "document_id": [c.document_id for c in chunks[s:e]],
                "text": texts[s:e],
                "bucket": [m["bucket"] for m in metas[s:e]],
                "source": [m["source"] for m in metas[s:e]],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs[s:e].reshape(-1)), 384),
            },
            schema=schema,
        )

    appended = db.create_table("appended", schema=schema)
    tbl = db.create_table("merged", schema=schema)

    # ---------------------------------------------------------------- ingest, batch by batch
    # Every side writes batch i before any writes batch i + 1 (a busy machine slows all alike),
    # in an order reversed every other batch.
    writers: dict[str, Callable[[int], Any]] = {
        "native": lambda s: native.upsert(chunks[s : s + BATCH], vecs[s : s + BATCH]),
        "exact": lambda s: stores["exact"].upsert(chunks[s : s + BATCH], vecs[s : s + BATCH]),
        "raw_merge_insert": lambda s: (
            tbl.merge_insert("id")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(batch(s))
        ),
        "raw_add": lambda s: appended.add(batch(s)),
    }
    spent = dict.fromkeys(writers, 0.0)
    for bno, s in enumerate(range(0, n, BATCH)):
        order = list(writers.items())  # reversed every other batch: no side always goes first
        for name, write in order if bno % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            write(s)
            spent[name] += time.perf_counter() - t0
    out["native_writes_s"] = round(spent["native"], 2)
    out["exact_writes_s"] = round(spent["exact"], 2)
    out["raw_merge_insert_s"] = round(spent["raw_merge_insert"], 2)
    out["raw_add_s"] = round(spent["raw_add"], 2)

    def prep() -> None:  # the adapter's Arrow batches, built and dropped
        for s in range(0, n, BATCH):
            part = chunks[s : s + BATCH]
            typed, untyped = layout.typed_columns([c.metadata for c in part])
            cols = layout.arrays(part, vecs[s : s + BATCH], 0, typed, untyped)
            layout.as_table(cols, len(part), native._t().schema)

    out["vecmem_batches_s"] = _timed(prep)
    out["raw_batches_s"] = _timed(lambda: [batch(s) for s in range(0, n, BATCH)])

    # ---------------------------------------------------------------- until searchable
    fts = FTS(**adapter._fts_config("default"))
    cols = ["id", "document_id", "text", "bucket", "source"]

    def fts_ready(t: Any) -> None:
        t.create_index("text", config=fts)
        t.search(qtexts[0], query_type="fts").select([*cols, "_score"]).limit(10).to_arrow()

    def first_search(mode: str) -> None:  # native: builds the full-text index first
        stores[mode].keyword(qtexts[0], k=10)

    for mode in ("native", "exact"):
        out[f"{mode}_index_s"] = _timed(partial(first_search, mode))
        out[f"{mode}_ingest_s"] = round(out[f"{mode}_writes_s"] + out[f"{mode}_index_s"], 2)
    out["raw_fts_index_s"] = _timed(lambda: fts_ready(tbl))
    out["raw_add_fts_index_s"] = _timed(lambda: fts_ready(appended))
    for mode in ("native", "exact"):
        out[f"{mode}_optimize_s"] = _timed(stores[mode].optimize)
    out["raw_optimize_s"] = _timed(tbl.optimize)
    for mode in ("native", "exact"):
        raw_same = out["raw_merge_insert_s"] + out["raw_fts_index_s"]
        raw_add = out["raw_add_s"] + out["raw_add_fts_index_s"]
        out[f"{mode}_ingest_ratio"] = round(out[f"{mode}_ingest_s"] / raw_same, 3)
        out[f"{mode}_ingest_ratio_vs_add"] = round(out[f"{mode}_ingest_s"] / raw_add, 3)
    out["native_writes_ratio"] = round(out["native_writes_s"] / out["raw_merge_insert_s"], 3)
    out["native_index_ratio"] = round(out["native_index_s"] / out["raw_fts_index_s"], 3)

    # ---------------------------------------------------------------- queries
    rrf = Fusion()

    def raw_vector(j: int, where: str | None = None) -> Any:
        q = tbl.search(qvecs[j], vector_column_name="vector").distance_type("cosine")
        if where:
            q = q.where(where, prefilter=True)
        return q.select([*cols, "_distance"]).limit(10).to_arrow()

    def raw_keyword(j: int, where: str | None = None) -> Any:
        q = tbl.search(qtexts[j], query_type="fts")
        if where:
            q = q.where(where, prefilter=True)
        return q.select([*cols, "_score"]).limit(10).to_arrow()

    def raw_hybrid(j: int) -> Any:  # limit(100): 100 candidates per leg, as vecmem's; best 10
        return (
            tbl.search(query_type="hybrid", vector_column_name="vector")
            .vector(qvecs[j])
            .text(qtexts[j])
            .select(cols)
            .limit(100)
            .to_arrow()
            .slice(0, 10)
        )

    def cases(mem: Any) -> dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]]:
        ten = {"bucket": {"$lt": 10}}
        return {
            "vector": (
                lambda j: mem.search(qtexts[j], 10, mode="vector", vector=qvecs[j]),
                lambda j: raw_vector(j),
            ),
            "vector_filtered_10pct": (
                lambda j: mem.search(qtexts[j], 10, mode="vector", vector=qvecs[j], filter=ten),
                lambda j: raw_vector(j, "bucket < 10"),
            ),
            "keyword": (
                lambda j: mem.search(qtexts[j], 10, mode="keyword"),
                lambda j: raw_keyword(j),
            ),
            "keyword_filtered_10pct": (
                lambda j: mem.search(qtexts[j], 10, mode="keyword", filter=ten),
                lambda j: raw_keyword(j, "bucket < 10"),
            ),
            "hybrid": (
                lambda j: mem.search(
                    qtexts[j], 10, mode="hybrid", vector=qvecs[j], fusion=rrf, candidates=100
                ),
                raw_hybrid,
            ),
        }

    plan = [("native", name) for name in cases(mems["native"])]
    plan += [("exact", "keyword"), ("exact", "keyword_filtered_10pct"), ("exact", "hybrid")]
    for mode, name in plan:
        ours, theirs = cases(mems[mode])[name]
        gc.collect()
        a, b = synthetic.paired(ours, theirs, n_queries)
        out[f"{mode}_{name}"] = {
            "vecmem": a,
            "raw": b,
            "runs": n_queries,
            "p50_ratio": round(a["p50_ms"] / b["p50_ms"], 3),
        }
    for store in stores.values():
        store.close()

    def reopen(mode: str) -> None:
        again = LanceDb(folder / mode, table="bench", keyword=mode)  # type: ignore[arg-type]
        again.connect(mems[mode].space)
        again.close()

    out["native_reopen_s"] = _timed(lambda: reopen("native"))
    out["exact_reopen_s"] = _timed(lambda: reopen("exact"))
    (folder / "exact" / "bench.vecmem-bm25.npz").unlink()
    out["exact_reopen_rebuilding_bm25_s"] = _timed(lambda: reopen("exact"))
    return out


def markdown(r: dict[str, Any]) -> str:
    m = synthetic.machine()
    n = f"{r['chunks']:,}"

    def q(key: str, label: str) -> str:
        return latency_row(f"{label}, p50 / p99 ms", r[key], p99_ratio=False)

    lines = [
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; "
            f"lancedb {r['lancedb']}. {n} chunks (384-d clustered unit vectors, Zipf text), k=10, "
            "flat (exact) vector search on both sides, both tables compacted. vecmem through "
            "`VectorMemory.search` with the query vector given; raw = lancedb on a table of the same "
            "rows, same process, calls interleaved, connected with vecmem's read consistency (every "
            "read sees the latest commit). Run: `python -m benchmarks.bench_lancedb`."
            + (
                f" Load average at the start: {r['load_average_at_start']} (a shared machine: sides "
                "are interleaved call by call and batch by batch)."
                if "load_average_at_start" in r
                else ""
            )
        ),
        "",
        (
            '**`LanceDb(keyword="native")`**: LanceDB\'s full-text index; the same work on both '
            "sides."
        ),
        "",
        "| operation | vecmem | raw lancedb | vecmem / raw |",
        "|---|---|---|---|",
        (
            f"| ingest {n} (batches of {BATCH}) until the first keyword search answers | "
            f"{r['native_ingest_s']} s | merge_insert + FTS index + first query "
            f"{round(r['raw_merge_insert_s'] + r['raw_fts_index_s'], 2)} s | "
            f"{r['native_ingest_ratio']} |"
        ),
        (
            f"| the same, raw append-only | | add {r['raw_add_s']} s + FTS index "
            f"{r['raw_add_fts_index_s']} s | {r['native_ingest_ratio_vs_add']} |"
        ),
        (
            f"| the writes alone | {r['native_writes_s']} s | merge_insert "
            f"{r['raw_merge_insert_s']} s | {r['native_writes_ratio']} |"
        ),
        (
            f"| the index step: first search / create_index(FTS) + first query | "
            f"{r['native_index_s']} s | {r['raw_fts_index_s']} s | {r['native_index_ratio']} |"
        ),
        (
            f"| of which building the Arrow batches | {r['vecmem_batches_s']} s | "
            f"{r['raw_batches_s']} s | |"
        ),
        q("native_vector", "vector"),
        q("native_vector_filtered_10pct", "vector, filter 10%"),
        q("native_keyword", "keyword (FTS)"),
        q("native_keyword_filtered_10pct", "keyword (FTS), filter 10%"),
        q("native_hybrid", "hybrid (RRF, 100 per leg)"),
        (
            f"| compaction after ingest | optimize() {r['native_optimize_s']} s (with a B-tree on "
            f"document_id) | optimize() {r['raw_optimize_s']} s | |"
        ),
        f"| reopen | {r['native_reopen_s']} s | | |",
        "",
        (
            '**`LanceDb(keyword="exact")`** (the default): rank_bm25-exact BM25 kept beside the '
            "table; against the same raw rows, so not the same computation."
        ),
        "",
        "| operation | vecmem | raw lancedb | vecmem / raw |",
        "|---|---|---|---|",
        (
            f"| ingest {n}, keyword index included | {r['exact_ingest_s']} s | merge_insert "
            f"{r['raw_merge_insert_s']} s + FTS index {r['raw_fts_index_s']} s | "
            f"{r['exact_ingest_ratio']} |"
        ),
        q("exact_keyword", "keyword"),
        q("exact_keyword_filtered_10pct", "keyword, filter 10%"),
        q("exact_hybrid", "hybrid (RRF, 100 per leg)"),
        (
            f"| reopen: BM25 snapshot / rebuild | {r['exact_reopen_s']} s / "
            f"{r['exact_reopen_rebuilding_bm25_s']} s | | |"
        ),
        "",
        (
            "Native mode does what the raw client does: the keyword leg is LanceDB's FTS query with "
            "the same `where` prefilter, and `LanceDb.both_legs` runs the same two queries LanceDB's "
            "hybrid query runs (at once, on two threads) and fuses them with `vecmem.fusion.fuse` "
            "(here RRF k=60, as LanceDB's default reranker). Its ingest stops when the first keyword "
            "search has rebuilt the index; the raw side's when `create_index(FTS)` and its first FTS "
            "query return."
        ),
        "",
        (
            "Exact mode's ingest tokenizes every chunk in Python (vecmem's tokenizer) into a "
            "`BM25Index`, against LanceDB's FTS build in Rust; its keyword query is the exact BM25 "
            "top-k (~0.15 ms at 100k) plus reading the 10 rows back by `id IN (...)`, which the FTS "
            "query returns directly; its hybrid fuses the facade's two legs. A filtered exact keyword "
            "search reads candidates by `id IN (...) AND filter` until 10 pass, or lists the ids "
            "that match a selective filter once."
        ),
        "",
        (
            "Writes: vecmem's batch of 1,000 takes ~3 ms of Python (validation, typed filter "
            "columns, the JSON `chunk` column that reads back exactly) against ~1 ms to build the "
            "raw batch, and its `merge_insert` writes wider rows (a JSON column, the write order, "
            "`vm_keys`, typed columns: ~5% more merge time). Layout 4 (this run) took ~2 ms a batch "
            "off layout 3's write: `vm_keys` holds only fields without a typed value (null here), the "
            "schema of the store's last commit is reused instead of read per batch (~1 ms after each "
            "commit; a write is redone when another writer added columns meanwhile), `Chunk.create`'s "
            "chunks skip re-hashing their text, and the packed rows are built as tuples (as lists "
            "they set off ~2 garbage collections a batch). Layout 3 measured ingest 1.18-1.24x and "
            "writes alone 1.25-1.34x on a quiet machine; layout 4 measured ingest 1.09-1.13x and "
            "writes alone 1.15-1.20x in three runs. In native mode `optimize()` leaves `id` without a "
            "B-tree (with lancedb 0.40 one makes every `merge_insert` 2-4x slower); exact mode keeps "
            "one, as its keyword search reads hits back by id (see `LanceDb.optimize`)."
        ),
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
    publish(
        result,
        "lancedb-quick" if args.quick else "lancedb",
        None if args.quick else ("lancedb", "LanceDB adapter (issue 3)"),
        markdown,
    )


if __name__ == "__main__":
    main()
