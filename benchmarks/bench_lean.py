"""A lean embedded store at scale (issue 16, part 6): what a fresh process that opens a big store
and serves queries costs, against LanceDB on the same data.

    python -m benchmarks.bench_lean                    # 1,000,000 chunks (ingest + graphs: long)
    python -m benchmarks.bench_lean --n 200000         # any size
    python -m benchmarks.bench_lean --reuse /data/lean # keep the built stores there, reuse them
    python -m benchmarks.bench_lean --quick            # 20,000 chunks, a few minutes

The parent builds (or, with ``--reuse``, finds) a synthetic store of ``--n`` chunks (Zipf text,
clustered 384-d unit vectors, metadata ``{"bucket": i % 100}``, :mod:`benchmarks.synthetic`)
through ``EmbeddedStore.upsert`` with precomputed vectors, then brings the HNSW graph up to every
row (``flush()``) for each ``ann_dtype`` (f32, f16; each graph is kept beside the store for later
runs). Each measurement then runs in a FRESH child process that opens the store and serves the
queries: its peak RSS (``VmHWM``: see :func:`_peak_mib`) and, from ``/proc/self/status``, the anonymous and file-backed
parts after opening and after the queries; the time to open (``connect`` and the first hybrid
query: a fresh process's time to searchable; for f32 once without the BM25 snapshot, every
chunk tokenized, and once with it); vector and hybrid p50/p99 (vecmem's default fusion,
100 candidates a leg, k=10, store level: query vectors are precomputed); recall@10 of the vector
search against exact search, computed in the parent with numpy (an exact scan in the child would
touch every mapped row and count them in its RSS); and how the memory it holds splits between BM25,
ids, the live mask and the rest. Above ``memory_rows`` (50,000) the store reads the hits' rows
from SQLite on demand; ``--quick``'s 20,000 chunks are held in memory.

LanceDB is the peer on the same rows (id, text, vector): the table written, an IVF_HNSW_SQ vector
index (cosine) and an FTS index built, the time to searchable measured to the first query; then
a fresh child process opens the table and serves the same queries (vector, and LanceDB's own
hybrid: its default RRF over both legs), with its peak RSS, p50 and recall@10.

Results: ``benchmarks/results/lean.json`` (``lean-<n>.json`` for other sizes, ``lean-quick.json``)
and, but for ``--quick``, the "lean" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic
from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parent.parent
DIM = 384
SPACE_NAME = "synthetic-384"
BATCH = 50_000
DTYPES = ("f32", "f16")


def _space() -> Any:
    from vecmem.types import EmbeddingSpace

    return EmbeddingSpace(SPACE_NAME, DIM)


def _status() -> dict[str, float]:
    """RssAnon / RssFile / VmRSS / VmHWM (peak) of this process now, MiB."""
    out: dict[str, float] = {}
    try:
        for line in open("/proc/self/status"):
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return out


def _peak_mib() -> float:
    """This process's peak RSS, MiB: ``VmHWM``, the high-water mark of its own address space.
    (``ru_maxrss`` is not it here: Linux carries it across ``execve``, so a child started by a
    parent that holds the corpus reports the parent's peak: 970 MiB against 457 at 100k.)"""
    return _status().get("VmHWM", 0.0) or _maxrss_mib()


def _maxrss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# ------------------------------------------------------------------------------------ data
def _data(n: int, n_queries: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    texts = synthetic.texts(n)
    vecs = synthetic.vectors(n)
    return texts, vecs, synthetic.queries(texts, n_queries), synthetic.vectors(n_queries, seed=7)


def _exact_top10(vecs: np.ndarray, qvecs: np.ndarray) -> np.ndarray:
    """Row numbers of each query's 10 most similar rows (numpy, blocks of 100k rows)."""
    best_s = np.full((len(qvecs), 0), -np.inf, np.float32)
    best_i = np.zeros((len(qvecs), 0), np.int64)
    for start in range(0, len(vecs), 100_000):
        sims = qvecs @ vecs[start : start + 100_000].T
        part = np.argpartition(-sims, min(10, sims.shape[1] - 1), axis=1)[:, :10]
        s = np.concatenate((best_s, np.take_along_axis(sims, part, 1)), axis=1)
        i = np.concatenate((best_i, part + start), axis=1)
        keep = np.argsort(-s, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(s, keep, 1), np.take_along_axis(i, keep, 1)
    return best_i


def _build_store(folder: Path, texts: list[str], vecs: np.ndarray) -> dict[str, Any]:
    from vecmem.stores.embedded import EmbeddedStore
    from vecmem.types import Chunk

    store = EmbeddedStore(folder / "kb", background=False, compact_at=None)
    store.connect(_space())
    t0 = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        part = range(start, min(start + BATCH, len(texts)))
        store.upsert(
            [Chunk.create(f"d{i}", 0, texts[i], {"bucket": i % 100}) for i in part],
            vecs[part.start : part.stop],
        )
    ingest_s = time.perf_counter() - t0
    store.close()
    return {"ingest_s": round(ingest_s, 1), "ingest_chunks_per_s": round(len(texts) / ingest_s)}


def _graph(folder: Path, dtype: str) -> dict[str, Any]:
    """Bring the graph of ``dtype`` up to every row (from the copy kept beside the store when it
    is of these rows), keep a copy, and say how long a build took (0 when reused)."""
    from vecmem.stores.embedded import EmbeddedStore

    kb, kept = folder / "kb", folder / f"graph-{dtype}"
    for name in ("ann.usearch", "ann.json"):  # (a graph of another dtype would be served)
        if (kept / "ann.json").exists():
            shutil.copyfile(kept / name, kb / name)
        else:
            (kb / name).unlink(missing_ok=True)
    store = EmbeddedStore(kb, ann_dtype=dtype, background=False, compact_at=None)
    store.connect(_space())
    t0 = time.perf_counter()
    store.flush()
    built = time.perf_counter() - t0
    store.close()
    kept.mkdir(exist_ok=True)
    for name in ("ann.usearch", "ann.json"):
        shutil.copyfile(kb / name, kept / name)
    return {"graph_s": round(built, 1)}


def _build_lance(folder: Path, texts: list[str], vecs: np.ndarray, qtext: str) -> dict[str, Any]:
    import lancedb
    import pyarrow as pa
    from lancedb.index import FTS, HnswSq

    from vecmem.stores.lancedb import _fts_config

    def batches() -> Any:
        for start in range(0, len(texts), BATCH):
            stop = min(start + BATCH, len(texts))
            yield pa.record_batch(
                {
                    "id": [f"d{i}#0" for i in range(start, stop)],
                    "text": texts[start:stop],
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(np.ascontiguousarray(vecs[start:stop]).reshape(-1)), DIM
                    ),
                }
            )

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("vector", pa.list_(pa.float32(), DIM)),
        ]
    )
    t0 = time.perf_counter()
    db = lancedb.connect(folder / "lance")
    table = db.create_table("lean", data=pa.RecordBatchReader.from_batches(schema, batches()))
    written = time.perf_counter() - t0
    table.create_index("vector", config=HnswSq(distance_type="cosine"))
    table.create_index("text", config=FTS(**_fts_config("default")))
    table.search(qtext, query_type="fts").limit(10).to_arrow()
    return {
        "write_s": round(written, 1),
        "searchable_s": round(time.perf_counter() - t0, 1),
        "index": "IVF_HNSW_SQ (cosine) + FTS",
    }


# ------------------------------------------------------------------------------------ children
def _serve_vecmem(folder: Path, dtype: str, queries: Path) -> dict[str, Any]:
    """A fresh process: open the store, serve the queries, report its memory and latency."""
    from vecmem.memory import DEFAULT_CANDIDATES, DEFAULT_FUSION
    from vecmem.stores.embedded import EmbeddedStore

    q = np.load(queries, allow_pickle=False)
    qtexts, qvecs = [str(t) for t in q["texts"]], q["vecs"]
    t0 = time.perf_counter()
    store = EmbeddedStore(folder / "kb", ann_dtype=dtype, background=False, compact_at=None)
    store.connect(_space())
    connect_s = time.perf_counter() - t0
    after_open = _status()
    snapshot = store._snapshot_at is not None

    def hybrid(i: int) -> Any:
        return store.hybrid(
            qvecs[i], qtexts[i], k=10, candidates=DEFAULT_CANDIDATES, fusion=DEFAULT_FUSION
        )

    hybrid(0)
    open_s = time.perf_counter() - t0
    index = "hnsw" if store._ann is not None else "exact"
    times: dict[str, list[float]] = {"vector": [], "hybrid": []}
    found: list[list[int]] = []
    for i in range(len(qtexts)):
        t = time.perf_counter()
        hits = store.query(qvecs[i], k=10)
        times["vector"].append(time.perf_counter() - t)
        found.append([int(c.document_id[1:]) for c, _ in hits])
        t = time.perf_counter()
        hybrid(i)
        times["hybrid"].append(time.perf_counter() - t)
    held = _held(store)
    out = {
        "system": f"vecmem-embedded ({dtype} graph"
        + (", BM25 snapshot)" if snapshot else ", BM25 from the text)"),
        "index": index,
        "connect_s": round(connect_s, 2),
        "open_to_first_hybrid_s": round(open_s, 2),
        "vector": synthetic.percentiles(times["vector"]),
        "hybrid": synthetic.percentiles(times["hybrid"]),
        "found": found,
        "rss_after_open_mib": after_open,
        "rss_after_queries_mib": _status(),
        "held_mib": held,
        "peak_rss_mib": _peak_mib(),
        "ru_maxrss_mib": _maxrss_mib(),
    }
    store.close()
    return out


def _held(store: Any) -> dict[str, float]:
    """MiB the store holds in this process, by part (numpy arrays' bytes, Python objects' sizes
    as sys.getsizeof counts them; the mapped vectors and graph are not counted: RssFile)."""
    mib = 1 / 2**20

    def arrays(obj: Any) -> int:
        total = 0
        for v in vars(obj).values():
            if isinstance(v, np.ndarray):
                total += v.nbytes
            elif hasattr(v, "a") and isinstance(getattr(v, "a", None), np.ndarray):
                total += v.a.nbytes
        return total

    bm25 = store._bm25
    seg = sum(
        getattr(s, name).nbytes
        for s in bm25._segments
        for name in type(s).__slots__
        if isinstance(getattr(s, name, None), np.ndarray)
    )
    terms = sum(a.nbytes + b.nbytes for a, b in bm25._terms.values())
    vocab = sys.getsizeof(bm25.vocab) + sum(sys.getsizeof(t) for t in bm25.vocab)
    ids = sys.getsizeof(store._ids) + sum(sys.getsizeof(i) for i in store._ids if i is not None)
    return {
        "bm25_postings_log": round(arrays(bm25) * mib, 1),
        "bm25_segments": round(seg * mib, 1),
        "bm25_term_cache": round(terms * mib, 1),
        "bm25_vocab": round(vocab * mib, 1),
        "ids_list": round(ids * mib, 1),
        "id_to_slot_dict": round(sys.getsizeof(store._slot_of) * mib, 1),
        "live_mask": round(store._live.a.nbytes * mib, 1),
    }


def _serve_lance(folder: Path, queries: Path) -> dict[str, Any]:
    import lancedb

    q = np.load(queries, allow_pickle=False)
    qtexts, qvecs = [str(t) for t in q["texts"]], q["vecs"]
    t0 = time.perf_counter()
    table = lancedb.connect(folder / "lance").open_table("lean")

    def vector(i: int) -> Any:
        return (
            table.search(qvecs[i], vector_column_name="vector")
            .distance_type("cosine")
            .select(["id", "text"])
            .limit(10)
            .to_arrow()
        )

    def hybrid(i: int) -> Any:
        return (
            table.search(query_type="hybrid", vector_column_name="vector")
            .vector(qvecs[i])
            .text(qtexts[i])
            .select(["id", "text"])
            .limit(10)
            .to_arrow()
        )

    hybrid(0)
    open_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"vector": [], "hybrid": []}
    found = []
    for i in range(len(qtexts)):
        t = time.perf_counter()
        res = vector(i)
        times["vector"].append(time.perf_counter() - t)
        found.append([int(x.split("#")[0][1:]) for x in res.column("id").to_pylist()])
        t = time.perf_counter()
        hybrid(i)
        times["hybrid"].append(time.perf_counter() - t)
    return {
        "system": "lancedb",
        "open_to_first_hybrid_s": round(open_s, 2),
        "vector": synthetic.percentiles(times["vector"]),
        "hybrid": synthetic.percentiles(times["hybrid"]),
        "found": found,
        "rss_after_queries_mib": _status(),
        "peak_rss_mib": _peak_mib(),
        "ru_maxrss_mib": _maxrss_mib(),
    }


def _child(argv: list[str]) -> dict[str, Any]:
    system, folder, queries = argv[0], Path(argv[1]), Path(argv[2])
    if system == "lancedb":
        return _serve_lance(folder, queries)
    return _serve_vecmem(folder, system, queries)


def _run_child(system: str, folder: Path, queries: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.bench_lean", "--child", system, str(folder)]
    res = subprocess.run(
        [*cmd, str(queries)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if res.returncode != 0:
        return {"system": system, "error": res.stderr[-3000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ main
def run(n: int, n_queries: int, folder: Path, lance: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    texts, vecs, qtexts, qvecs = _data(n, n_queries)
    result: dict[str, Any] = {
        "chunks": n,
        "queries": n_queries,
        "generate_s": round(time.perf_counter() - t0, 1),
        "machine": synthetic.machine(),
        "load_at_start": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    truth = _exact_top10(vecs, qvecs)
    queries = folder / "queries.npz"
    np.savez(queries, texts=np.array(qtexts), vecs=qvecs)
    built = folder / "built.json"
    if built.exists() and json.loads(built.read_text()).get("chunks") == n:
        result["build"] = {**json.loads(built.read_text()), "reused": True}
    else:
        shutil.rmtree(folder / "kb", ignore_errors=True)
        for d in DTYPES:
            shutil.rmtree(folder / f"graph-{d}", ignore_errors=True)
        result["build"] = {"chunks": n, **_build_store(folder, texts, vecs)}
        built.write_text(json.dumps(result["build"]))
    runs = []
    for dtype in DTYPES:
        graph = _graph(folder, dtype)
        if dtype == "f32":  # once without the BM25 snapshot: the open tokenizes every chunk
            (folder / "kb" / "bm25.npz").unlink(missing_ok=True)  # (its close saves one)
            r = _run_child(dtype, folder, queries)
            r.update(graph)
            runs.append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "found"}), file=sys.stderr)
        r = _run_child(dtype, folder, queries)
        r.update(graph)
        runs.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "found"}), file=sys.stderr)
    if lance:
        if (folder / "lance" / "lean.lance").exists() and result["build"].get("reused"):
            lance_build = json.loads((folder / "lance.json").read_text())
        else:
            shutil.rmtree(folder / "lance", ignore_errors=True)
            lance_build = _build_lance(folder, texts, vecs, qtexts[0])
            (folder / "lance.json").write_text(json.dumps(lance_build))
        r = _run_child("lancedb", folder, queries)
        r.update(lance_build)
        runs.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "found"}), file=sys.stderr)
    for r in runs:
        found = r.pop("found", None)
        if found is not None:
            r["recall_at_10"] = round(
                float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth.tolist())])),
                4,
            )
    result["runs"] = runs
    result["load_at_end"] = os.getloadavg()
    return result


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"{r['chunks']:,} synthetic chunks (384-d, Zipf text), {r['queries']} queries, k=10; "
        f"{m['cpu']}, {m['cores']} cores, load {r['load_at_start'][0]:.1f} at start and "
        f"{r['load_at_end'][0]:.1f} at the end, {r['date']}. Run: `{r.get('run', '')}`. "
        f"vecmem ingest {r['build'].get('ingest_s')} s"
        f"{' (an earlier run; reused)' if r['build'].get('reused') else ''}.",
        "",
        "Each row is a fresh process that opens the store (or table) and serves the queries; "
        "peak RSS is its VmHWM (anonymous + file-backed pages: the mapped vectors and graph "
        "count as they are touched). Targets (issue 16 at 1M): RSS <= 3 GB (f32) / 2 GB (f16), "
        "hybrid p50 <= 10 ms, recall@10 >= 0.98.",
        "",
        "| system | peak RSS MiB | of it anon / file after the queries | open → first hybrid s "
        "| vector p50 ms | hybrid p50 ms | recall@10 | graph / index build s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for x in r["runs"]:
        if "error" in x:
            lines.append(f"| {x['system']} | failed: see the JSON | | | | | | |")
            continue
        after = x.get("rss_after_queries_mib", {})
        lines.append(
            f"| {x['system']} | {x['peak_rss_mib']:,} | {after.get('RssAnon')} / "
            f"{after.get('RssFile')} | {x['open_to_first_hybrid_s']} | "
            f"{x['vector']['p50_ms']} | {x['hybrid']['p50_ms']} | {x.get('recall_at_10')} | "
            f"{x.get('graph_s', x.get('searchable_s', ''))} |"
        )
    held = next((x["held_mib"] for x in r["runs"] if "held_mib" in x), None)
    if held:
        lines += [
            "",
            "What the vecmem process holds besides the maps (MiB): "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in held.items())
            + ". Graph build s: 0 where the graph kept beside the store from an earlier run "
            "was reused; LanceDB's is its time to searchable (write, IVF_HNSW_SQ and FTS "
            "indexes, first query).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_lean")
    p.add_argument("--n", type=int, default=1_000_000, help="chunks (default 1,000,000)")
    p.add_argument("--quick", action="store_true", help="20,000 chunks")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--reuse", default=None, help="folder to build in and reuse (kept)")
    p.add_argument("--no-lancedb", action="store_true", help="skip the LanceDB peer")
    p.add_argument("--child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child)))
        return
    n = 20_000 if args.quick else args.n
    if args.reuse:
        folder = Path(args.reuse)
        folder.mkdir(parents=True, exist_ok=True)
        result = run(n, args.queries, folder, not args.no_lancedb)
    else:
        with tempfile.TemporaryDirectory(prefix="vecmem-lean-") as d:
            result = run(n, args.queries, Path(d), not args.no_lancedb)
    name = "lean-quick" if args.quick else ("lean" if n == 1_000_000 else f"lean-{n}")
    out = ROOT / "benchmarks" / "results" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result["run"] = "python -m benchmarks.bench_lean " + " ".join(sys.argv[1:])
    out.write_text(json.dumps(result, indent=2))
    md = markdown(result)
    print(md)
    if not args.quick:
        write_section(
            "lean",
            f"A lean embedded store: {n:,} chunks, fresh process (issue 16 part 6)",
            md,
        )


if __name__ == "__main__":
    main()
