"""Pinecone adapter benchmark (issue 3): vecmem's PineconeDb against the official ``pinecone`` SDK.

    python -m benchmarks.bench_pinecone                 # 100k chunks, local stand-in
    python -m benchmarks.bench_pinecone --quick         # 10k chunks
    python -m benchmarks.bench_pinecone --real          # the real service ($PINECONE_API_KEY)

Pinecone's cloud cannot be reached from the project's machines, so by default both sides talk
over HTTP to :mod:`vecmem.testing._infra.pinecone_standin`, run in a separate process (its work and
garbage collection do not land on the measured process). ``--real`` runs the same code against
the service: index ``$VECMEM_PINECONE_BENCH_INDEX`` (default ``vecmem-bench``, created when
missing: serverless aws/us-east-1, 384-d, dotproduct), namespaces ``bench-vecmem`` and
``bench-raw`` (dropped at the end); without ``$PINECONE_API_KEY`` it says so and exits 0.

Data: synthetic clustered 384-d unit vectors and Zipf text (benchmarks/synthetic.py), metadata
``{"bucket": i % 100, "source": ...}``; both sides in one index, one namespace each:

* ingest: ``PineconeDb.upsert`` in batches of 1,000 chunks (vecmem splits them into requests
  under 2 MB) versus ``Index.upsert`` of the same ids, dense vectors and BM25 sparse vectors
  (vecmem's tokenizer and weights, avgdl as it grows) with plain metadata (text, document id,
  bucket, source) in requests of ``RAW_BATCH`` vectors; batches interleaved, alternating who goes
  first. On the real service each side then waits until its namespace counts every vector.
* vector / filtered vector (10% of chunks): ``VectorMemory.search(..., vector=qv)`` versus one
  ``Index.query`` with the same vector, filter and ``include_metadata``;
* keyword: vecmem's BM25 leg (a ``list`` of the statistics records, one or more sparse queries
  with metadata, candidates rescored exactly) versus one sparse query of ``idf x count``;
* hybrid: vecmem's two legs (100 candidates each, sent at once) fused by ``vecmem.fusion.fuse``
  versus one sparse-dense query (Pinecone adds the two dot products) of the final 10 — what a
  Pinecone user writes, not the same work — and versus ``hybrid_two_legs``: the same two
  requests by hand (dense and sparse top 100 with metadata, sent at once) fused by RRF in a few
  lines, i.e. vecmem's work without its exact BM25 rescoring and statistics listing.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import math
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic
from benchmarks.report import latency_row, publish

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
RAW_BATCH = 150  # vectors per upsert request on the raw side (~1.5 MB of JSON, under 2 MB)
KEY = "bench-standin-key"
NS_OURS, NS_RAW = "bench-vecmem", "bench-raw"


@contextlib.contextmanager
def _target(real: bool) -> Iterator[dict[str, Any]]:
    """Where both sides connect: the real service, or a stand-in in its own process."""
    if real:
        index = os.environ.get("VECMEM_PINECONE_BENCH_INDEX", "vecmem-bench")
        yield {
            "api_key": os.environ["PINECONE_API_KEY"],
            "controller_host": None,
            "index": index,
            "engine": f"Pinecone service, index {index!r}",
        }
        return
    code = (
        "import sys\nfrom vecmem.testing._infra.pinecone_standin import PineconeStandIn\n"
        f"s = PineconeStandIn(api_key={KEY!r}).start()\nprint(s.url, flush=True)\n"
        "sys.stdin.read()\ns.stop()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not url.startswith("http"):
            raise RuntimeError("the Pinecone stand-in did not start")
        yield {
            "api_key": KEY,
            "controller_host": url,
            "index": "bench",
            "engine": "vecmem.testing._infra.pinecone_standin (separate process, same machine)",
        }
    finally:
        proc.stdin.close()  # type: ignore[union-attr]
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_count(count: Callable[[], int], n: int, what: str, limit: float = 600.0) -> float:
    """Seconds until ``count()`` reaches ``n`` (the service is eventually consistent)."""
    t0 = time.perf_counter()
    while count() < n:
        if time.perf_counter() - t0 > limit:
            raise RuntimeError(f"{what}: fewer than {n} vectors after {limit:.0f} s")
        time.sleep(1.0)
    return time.perf_counter() - t0


class _Counting:
    """Counts the data-plane requests one side makes (wraps the SDK index object)."""

    def __init__(self, ix: Any) -> None:
        self._ix, self.calls = ix, Counter()

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._ix, name)
        if not callable(fn):
            return fn

        def call(*a: Any, **k: Any) -> Any:
            self.calls[name] += 1
            return fn(*a, **k)

        return call


def term_index(term: str) -> int:
    """A term's sparse index as vecmem hashes it, as a raw client would write it (uncached)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def run(n: int, n_queries: int, real: bool) -> dict[str, Any]:
    import pinecone

    from vecmem import VectorMemory
    from vecmem.stores.pinecone import PineconeDb

    texts, vecs, qtexts, qvecs, metas, chunks = synthetic.corpus(n, n_queries)
    with _target(real) as t:
        out: dict[str, Any] = {
            "chunks": n,
            "queries": n_queries,
            "engine": t["engine"],
            "pinecone_sdk": getattr(pinecone, "__version__", "?"),
        }

        def make(ns: str, keyword: str = "exact") -> PineconeDb:
            return PineconeDb(
                index=t["index"],
                api_key=t["api_key"],
                controller_host=t["controller_host"],
                namespace=ns,
                keyword=keyword,
            )  # type: ignore[arg-type]

        store = make(NS_OURS)
        store.drop()
        store = make(NS_OURS)
        mem = VectorMemory(store=store, embedder=synthetic.PrecomputedVectors())  # type: ignore[arg-type]
        space = mem.space  # connect: creates the index when missing
        kwargs = {"api_key": t["api_key"]}
        if t["controller_host"]:
            kwargs["host"] = t["controller_host"]
        pc = pinecone.Pinecone(**kwargs)
        ix = pc.Index(host=pc.describe_index(t["index"]).host)
        with contextlib.suppress(Exception):
            ix.delete(delete_all=True, namespace=NS_RAW)

        # --------------------------------------------------------------- ingest
        k1, b, eps = space.keyword_params()
        tok = store.tokenizer
        if tok is None:
            raise RuntimeError("the store did not connect")
        df: Counter[str] = Counter()
        raw_n, raw_total = 0, 0

        def ours_write(s: int, e: int) -> None:
            store.upsert(chunks[s:e], vecs[s:e])

        def raw_write(s: int, e: int) -> None:
            nonlocal raw_n, raw_total
            tokens = [tok(x) for x in texts[s:e]]
            raw_n += len(tokens)
            raw_total += sum(map(len, tokens))
            avgdl = raw_total / raw_n
            records = []
            for i, toks in zip(range(s, e), tokens):
                df.update(set(toks))
                norm = k1 * (1 - b + b * len(toks) / avgdl)
                w: dict[int, float] = {}
                for term, tf in Counter(toks).items():
                    h = term_index(term)
                    w[h] = w.get(h, 0.0) + tf * (k1 + 1) / (tf + norm)
                records.append(
                    {
                        "id": chunks[i].id,
                        "values": vecs[i].tolist(),
                        "sparse_values": {"indices": list(w), "values": list(w.values())},
                        "metadata": {"text": texts[i], "document_id": f"d{i}", **metas[i]},
                    }
                )
            for r in range(0, len(records), RAW_BATCH):
                ix.upsert(vectors=records[r : r + RAW_BATCH], namespace=NS_RAW)

        gc.collect()
        spent = {"vecmem": 0.0, "raw": 0.0}
        for bno, s in enumerate(range(0, n, BATCH)):
            pair = [("vecmem", ours_write), ("raw", raw_write)]
            for side, fn in pair if bno % 2 == 0 else pair[::-1]:
                t0 = time.perf_counter()
                fn(s, min(n, s + BATCH))
                spent[side] += time.perf_counter() - t0
        if real:
            out["vecmem_settle_s"] = round(_wait_count(lambda: store.count(), n, "vecmem"), 1)
            out["raw_settle_s"] = round(
                _wait_count(
                    lambda: int(
                        getattr(
                            (ix.describe_index_stats().namespaces or {}).get(NS_RAW),
                            "vector_count",
                            0,
                        )
                        or 0
                    ),
                    n,
                    "raw",
                ),
                1,
            )
        out["vecmem_ingest_s"] = round(spent["vecmem"], 2)
        out["raw_ingest_s"] = round(spent["raw"], 2)
        out["ingest_ratio"] = round(spent["vecmem"] / spent["raw"], 3)

        # --------------------------------------------------------------- queries
        idf_raw = {x: math.log(raw_n - d + 0.5) - math.log(d + 0.5) for x, d in df.items()}
        mean_idf = float(np.mean(list(idf_raw.values())))

        def sparse_query(text: str) -> dict[str, list[Any]]:
            w: dict[int, float] = {}
            for term, c in Counter(x for x in tok(text) if x in idf_raw).items():
                v = idf_raw[term]
                h = term_index(term)
                w[h] = w.get(h, 0.0) + (v if v >= 0 else eps * mean_idf) * c
            return {"indices": list(w), "values": list(w.values())}

        zero = [0.0] * 384

        def raw_vector(j: int, flt: dict[str, Any] | None = None) -> Any:
            return ix.query(
                vector=qvecs[j].tolist(),
                top_k=10,
                namespace=NS_RAW,
                filter=flt,
                include_metadata=True,
                include_values=False,
            )

        def raw_keyword(j: int) -> Any:
            return ix.query(
                vector=zero,
                sparse_vector=sparse_query(qtexts[j]),
                top_k=10,
                namespace=NS_RAW,
                include_metadata=True,
                include_values=False,
            )

        def raw_hybrid(j: int) -> Any:
            return ix.query(
                vector=qvecs[j].tolist(),
                sparse_vector=sparse_query(qtexts[j]),
                top_k=10,
                namespace=NS_RAW,
                include_metadata=True,
                include_values=False,
            )

        pool = ThreadPoolExecutor(max_workers=1)

        def raw_two_legs(j: int) -> list[str]:
            dense = pool.submit(
                ix.query,
                vector=qvecs[j].tolist(),
                top_k=100,
                namespace=NS_RAW,
                include_metadata=True,
                include_values=False,
            )
            sparse = ix.query(
                vector=zero,
                sparse_vector=sparse_query(qtexts[j]),
                top_k=100,
                namespace=NS_RAW,
                include_metadata=True,
                include_values=False,
            )
            fused: dict[str, float] = {}
            for leg in (dense.result().matches, sparse.matches):
                for r, m in enumerate(leg, 1):
                    fused[m.id] = fused.get(m.id, 0.0) + 1.0 / (60 + r)
            return sorted(fused, key=fused.__getitem__, reverse=True)[:10]

        cases: dict[str, tuple[Callable[[int], Any], Callable[[int], Any]]] = {
            "vector": (
                lambda j: mem.search(qtexts[j], 10, mode="vector", vector=qvecs[j]),
                raw_vector,
            ),
            "vector_filtered_10pct": (
                lambda j: mem.search(
                    qtexts[j], 10, mode="vector", vector=qvecs[j], filter={"bucket": {"$lt": 10}}
                ),
                lambda j: raw_vector(j, {"bucket": {"$lt": 10}}),
            ),
            "keyword": (lambda j: mem.search(qtexts[j], 10, mode="keyword"), raw_keyword),
            "hybrid": (
                lambda j: mem.search(qtexts[j], 10, mode="hybrid", vector=qvecs[j]),
                raw_hybrid,
            ),
            "hybrid_two_legs": (
                lambda j: mem.search(qtexts[j], 10, mode="hybrid", vector=qvecs[j]),
                raw_two_legs,
            ),
        }
        # keyword="native" on the same namespace: Pinecone's sparse scores, no rescoring
        native = VectorMemory(
            store=make(NS_OURS, "native"), embedder=synthetic.PrecomputedVectors()
        )  # type: ignore[arg-type]
        native.space  # noqa: B018 (connect)
        cases["native_keyword"] = (
            lambda j: native.search(qtexts[j], 10, mode="keyword"),
            raw_keyword,
        )
        cases["native_hybrid_two_legs"] = (
            lambda j: native.search(qtexts[j], 10, mode="hybrid", vector=qvecs[j]),
            raw_two_legs,
        )
        for name, (ours, theirs) in cases.items():
            gc.collect()
            a, b_ = synthetic.paired(ours, theirs, n_queries)
            out[name] = {
                "vecmem": a,
                "raw": b_,
                "p50_ratio": round(a["p50_ms"] / b_["p50_ms"], 3),
                "p99_ratio": round(a["p99_ms"] / b_["p99_ms"], 3),
                "runs": n_queries,
            }

        # requests per search on vecmem's side (counted after timing, on 20 queries)
        for side, names in (
            (store, ("vector", "keyword", "hybrid")),
            (native.store, ("native_keyword", "native_hybrid_two_legs")),
        ):
            counted = _Counting(side._ix)
            side._ix = counted
            for name in names:
                counted.calls.clear()
                for j in range(min(20, n_queries)):
                    cases[name][0](j)
                out[name]["vecmem_requests_per_search"] = {
                    k: round(v / min(20, n_queries), 2) for k, v in sorted(counted.calls.items())
                }
            side._ix = counted._ix
        # overlap of the top 10 (keyword: vecmem's exact BM25 vs the frozen sparse scores)
        for name in ("keyword", "hybrid", "native_keyword"):
            same = []
            for j in range(min(20, n_queries)):
                ours_ids = {h.id for h in cases[name][0](j)}
                raw_ids = {m.id for m in cases[name][1](j).matches}
                same.append(len(ours_ids & raw_ids) / 10)
            out[name]["top10_overlap"] = round(float(np.mean(same)), 3)
        native.store.close()

        store.drop()
        store.close()
        with contextlib.suppress(Exception):
            ix.delete(delete_all=True, namespace=NS_RAW)
    return out


def markdown(r: dict[str, Any]) -> str:
    m = synthetic.machine()
    lines = [
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}; "
            f"pinecone SDK {r.get('pinecone_sdk', '?')}. Engine: {r['engine']}. {r['chunks']:,} "
            "chunks (384-d clustered unit vectors, Zipf text), k=10, hybrid with 100 candidates per "
            "leg. vecmem through `VectorMemory(store=PineconeDb(...)).search` with the query vector "
            "given; raw = the official `pinecone` SDK against the same index (its own namespace), "
            "same process. `python -m benchmarks.bench_pinecone`."
        ),
        "",
        "| operation | vecmem p50 / p99 ms | raw SDK p50 / p99 ms | vecmem / raw (p50, p99) |",
        "|---|---|---|---|",
        (
            f"| ingest {r['chunks']:,} (batches of {BATCH}) | {r['vecmem_ingest_s']} s | "
            f"{r['raw_ingest_s']} s | {r['ingest_ratio']} |"
        ),
    ]
    for name in (
        "vector",
        "vector_filtered_10pct",
        "keyword",
        "hybrid",
        "hybrid_two_legs",
        "native_keyword",
        "native_hybrid_two_legs",
    ):
        if name not in r:
            continue
        lines.append(latency_row(name.replace("native_", 'keyword="native": '), r[name]))
    names = [
        k
        for k in ("vector", "keyword", "hybrid", "native_keyword", "native_hybrid_two_legs")
        if k in r
    ]
    req = {
        k: ", ".join(f"{n} {c}" for n, c in r[k]["vecmem_requests_per_search"].items())
        for k in names
    }
    native = (
        f"; native keyword {req['native_keyword']}; native hybrid {req['native_hybrid_two_legs']}"
        if "native_keyword" in req
        else ""
    )
    overlap = (
        f", native keyword {r['native_keyword']['top10_overlap']}" if "native_keyword" in r else ""
    )
    lines += [
        "",
        (
            f"Requests per vecmem search (mean of 20): vector {req['vector']}; keyword "
            f"{req['keyword']}; hybrid {req['hybrid']}{native}. The raw side makes one `query` "
            f"each. Top-10 overlap with the raw side: keyword {r['keyword']['top10_overlap']}, "
            f"hybrid {r['hybrid']['top10_overlap']}{overlap}."
        ),
        "",
        (
            "Read with care: against the stand-in the server answers a query in about a "
            "millisecond (it keeps each namespace's vectors stacked and an inverted index of the "
            "sparse values until the next write; a filter is still evaluated per record in Python, "
            "hence the slow filtered rows), so the ratios are vecmem's client-side work and "
            "extra requests over a near-zero network; against the service every request also "
            "pays a round trip, which requests sent at once share. Vector rows are the same request "
            "on both sides (dense `query`, top 10 with metadata); vecmem also decodes its `_vm` "
            "JSON into `Chunk`s and builds `Hit`s, and the filter is translated to its typed keys "
            "(`n_bucket`). Keyword is not the same computation: the raw row is one sparse query "
            "with frozen weights (the query's idf x count, documents' BM25 tf weights from when "
            "they were written); vecmem lists the statistics records (writes by other clients "
            "count) while asking for a window of at least 30 candidates with their text, and "
            "rescores them exactly with the current statistics (rank_bm25 BM25: each candidate's "
            "text is tokenized again, in Pinecone's order, until the bound on drift proves the top "
            "10), widening the window when it does not. Hybrid: vecmem sends its two legs at once (100 candidates each, with "
            "metadata; the keyword leg as above, with a first window of 125 to rescore) and fuses them with "
            "`vecmem.fusion.fuse` (dbsf); the `hybrid` raw row is Pinecone's one sparse-dense "
            "query, which adds the two dot products (neither RRF nor dbsf) and returns only the "
            "final 10; `hybrid_two_legs` is the same two requests by hand, fused by RRF. Ingest: "
            "vecmem also fetches the batch's ids (concurrent requests while the batch is encoded: "
            "an overwrite must take the old text out of the BM25 statistics), writes `_vm` (the "
            "chunk as JSON) beside typed filter keys, and writes one statistics record per batch "
            "(merged every 48); the raw side writes plain metadata (text, document id, bucket, "
            "source) and keeps its df counts in memory."
        ),
    ]
    if "native_keyword" in r:
        lines += [
            "",
            (
                '`keyword="native"` rows: a second `PineconeDb(keyword="native")` on the same '
                "namespace, doing what the raw side does: one sparse query of 10 (hybrid: 100 per "
                "leg, sent at once) with Pinecone's scores (the current idf x count against the "
                "weights frozen at write), no rescoring; the statistics are listed at most once a "
                "second (`STATS_TTL`), beside a query."
            ),
        ]
    if "raw_settle_s" in r:
        lines.append(
            f"\nThe service took {r['vecmem_settle_s']} s (vecmem) and "
            f"{r['raw_settle_s']} s (raw) after ingest to count every vector."
        )
    if r.get("note"):
        lines += ["", r["note"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pinecone")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--quick", action="store_true", help="10,000 chunks, 30 queries")
    p.add_argument(
        "--real",
        action="store_true",
        help="the Pinecone service ($PINECONE_API_KEY, $VECMEM_PINECONE_BENCH_INDEX)",
    )
    p.add_argument("--note", default="", help="a sentence for BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.real and not os.environ.get("PINECONE_API_KEY"):
        print("bench_pinecone --real skipped: PINECONE_API_KEY is not set")
        return
    n, nq = (10_000, 30) if args.quick else (args.n, args.queries)
    result = run(n, nq, args.real)
    result["machine"] = synthetic.machine()
    if args.note:
        result["note"] = args.note
    name = "pinecone" + ("-real" if args.real else "")
    title = "Pinecone adapter (issue 3)" + (", service" if args.real else ", local stand-in")
    publish(
        result,
        name + ("-quick" if args.quick else ""),
        None if args.quick else (name, title),
        markdown,
    )


if __name__ == "__main__":
    main()
