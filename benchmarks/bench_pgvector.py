"""PostgreSQL + pgvector (issue 3): ingest and query latency of ``PgVector`` against raw psycopg.

    python -m benchmarks.bench_pgvector               # 100k chunks (about 10 minutes)
    python -m benchmarks.bench_pgvector --quick       # 10k chunks
    python -m benchmarks.bench_pgvector --n 50000 --postgres-url postgresql://...

Data: 384-d clustered unit vectors and Zipf text (:mod:`benchmarks.synthetic`), precomputed, so
no embedding model runs; metadata ``{"source": "s<i % 50>", "year": 2000 + i % 25}``.

Ingest is measured twice: ``n`` chunks loaded inside ``PgVector.bulk_load()`` (HNSW index
dropped, rows and BM25 postings written batch by batch, the index built once at the end), then
``n / 20`` more upserted one batch at a time into the indexed table (the steady state).

The peer is raw psycopg doing the same work: the same tokenizer, binary COPY, write statements
and index build for ingest (into an identical second set of tables), and the same SQL text for
every query, on vecmem's own table (vecmem's module constants rendered once, run with hand-built
parameters, rows left as tuples). Batches and queries alternate between the two, so load on the
machine hits both alike. The ratio vecmem / raw (for queries: of the p50s) is the cost of
vecmem's layer: validation, SQL assembly, building Chunk and Hit objects. The two HNSW builds
of the bulk load are the same statement, run one after the other, so they are listed apart.
PostgreSQL is the test server of :mod:`vecmem.testing._infra.servers`
(``shared_buffers=32MB``, ``fsync=off``) unless ``--postgres-url`` names one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic
from benchmarks.report import write_section

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
K = 10
CANDIDATES = 100


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from vecmem.testing._infra.servers import postgres

    with postgres() as started:
        yield started


class Raw:
    """Raw psycopg on its own copy of the tables, running vecmem's SQL text."""

    def __init__(
        self, url: str, table: str, space: Any, ef_search: int, threshold: int, probe: int
    ) -> None:
        import psycopg
        from pgvector.psycopg import register_vector

        from vecmem.memory import DEFAULT_FUSION
        from vecmem.stores import _pgvector_sql as pg
        from vecmem.tokenize import get_tokenizer

        FUSED_SQL = (
            pg.RRF_SQL
            if DEFAULT_FUSION.method == "rrf"
            else pg.score_fusion_sql(DEFAULT_FUSION.method)
        )
        self.pg, self.space = pg, space
        self.conn = psycopg.connect(url, autocommit=True)
        register_vector(self.conn)
        self.conn.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false), "
            "set_config('hnsw.max_scan_tuples', '20000', false), "
            "set_config('hnsw.ef_search', %s, false)",
            (str(ef_search),),
        )
        self.names = names = pg.table_names("public", table)
        self.name = f"public.{table}"
        self.sql = {
            key: pg.render(text, **names)
            for key, text in (
                ("remove", pg.REMOVE_SQL),
                ("index", pg.INDEX_SQL),
                ("refresh", pg.REFRESH_SQL),
                ("copy", pg.COPY_SQL),
            )
        }
        self.sql["remove"] = pg.render(self.sql["remove"], cond="id = ANY(%(ids)s::text[])")
        self.sql["query"] = pg.render(pg.QUERY_SQL, **names, where="TRUE")
        self.sql["keyword"] = pg.render(pg.KEYWORD_SQL, **names, allowed="TRUE")
        self.sql["hybrid"] = pg.render(
            pg.HYBRID_SQL, **names, where="TRUE", allowed="TRUE", fused=FUSED_SQL
        )
        where = "(metadata @> %(f0)s::jsonb)"
        self.sql["hybrid_filtered"] = pg.render(
            pg.HYBRID_SQL,
            **names,
            where=where,
            fused=FUSED_SQL,
            allowed=f"sid IN (SELECT sid FROM {names['chunks']} WHERE {where})",
        )
        self.tokenize = get_tokenizer(space.tokenizer)
        self.probe = probe
        self.vector_params = {"c": K, "w": K, "threshold": threshold, "probe": 0}
        self.hybrid_params = {
            "c": CANDIDATES,
            "w": max(CANDIDATES, ef_search),
            "threshold": threshold,
            "probe": 0,
            "k": K,
            "wv": 1.0,
            "wk": 1.0,
            "rk": 60,
            "alpha": DEFAULT_FUSION.alpha,
            "oma": 1 - DEFAULT_FUSION.alpha,
            "adaptive": DEFAULT_FUSION.adaptive,
        }
        k1, b, eps = space.keyword_params()
        self.bm25 = {"eps": eps, "k1p1": k1 + 1.0, "k1": k1, "b": b}

    def ingest(
        self,
        ids: list[str],
        docs: list[str],
        texts: list[str],
        metas: list[dict[str, Any]],
        hashes: list[str],
        vectors: np.ndarray,
    ) -> None:
        rows, total = [], 0
        for i, text in enumerate(texts):
            tokens = self.tokenize(text)
            tf = Counter(tokens)
            total += len(tokens)
            rows.append(
                [
                    i,
                    ids[i],
                    docs[i],
                    0,
                    text,
                    json.dumps(metas[i], ensure_ascii=False),
                    hashes[i],
                    list(tf),
                    list(tf.values()),
                    len(tokens),
                    vectors[i],
                ]
            )
        conn = self.conn
        with conn.transaction():
            conn.execute(self.pg.LOCK_SQL, {"ns": self.pg.LOCK_NS, "name": self.name})
            _, zero, first = conn.execute(
                self.sql["remove"], {"ids": ids, "new": len(rows)}
            ).fetchone()
            with conn.cursor() as cur, cur.copy(self.sql["copy"]) as copy:
                copy.set_types(self.pg.COPY_TYPES)
                for row in rows:
                    row[0] += first
                    copy.write_row(row)
            conn.execute(
                self.sql["index"],
                {"lo": first, "hi": first + len(rows), "count": len(rows), "total": total},
            )
            conn.execute(self.sql["refresh"], {"zero": zero})

    def drop_index(self) -> None:
        self.conn.execute(f"DROP INDEX IF EXISTS {self.names['hnsw']}")

    def build_index(self, m: int, efc: int) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT set_config('maintenance_work_mem', '512MB', true)")
            self.conn.execute(
                self.pg.render(self.pg.HNSW_SQL, **self.names, m=str(m), efc=str(efc))
            )

    def _terms(self, text: str) -> dict[str, Any]:
        mult = Counter(self.tokenize(text))
        return {"qterms": list(mult), "mults": list(mult.values()), **self.bm25}

    def query(self, q: np.ndarray, text: str) -> list[Any]:
        return self.conn.execute(self.sql["query"], {"q": q, **self.vector_params}).fetchall()

    def keyword(self, q: np.ndarray, text: str) -> list[Any]:
        return self.conn.execute(self.sql["keyword"], {**self._terms(text), "c": K}).fetchall()

    def hybrid(self, q: np.ndarray, text: str) -> list[Any]:
        return self.conn.execute(
            self.sql["hybrid"], {"q": q, **self._terms(text), **self.hybrid_params}
        ).fetchall()

    def hybrid_filtered(self, q: np.ndarray, text: str) -> list[Any]:
        return self.conn.execute(
            self.sql["hybrid_filtered"],
            {
                "q": q,
                **self._terms(text),
                **self.hybrid_params,
                "f0": '{"source": "s7"}',
                "probe": self.probe,
            },
        ).fetchall()


def run(n: int, n_more: int, n_queries: int, url: str) -> dict[str, Any]:
    from vecmem.filters import parse_filter
    from vecmem.memory import DEFAULT_FUSION
    from vecmem.stores.pgvector import PgVector
    from vecmem.types import Chunk, EmbeddingSpace

    space = EmbeddingSpace(embedder="synthetic-384", dim=384)
    texts = synthetic.texts(n + n_more, seed=0)
    vectors = synthetic.vectors(n + n_more, seed=0)
    metas = [{"source": f"s{i % 50}", "year": 2000 + i % 25} for i in range(n + n_more)]
    chunks = [Chunk.create(f"doc{i}", 0, t, m) for i, (t, m) in enumerate(zip(texts, metas))]
    store = PgVector(url, table="bench_vecmem")
    store.drop()
    store.connect(space)
    twin = PgVector(url, table="bench_raw")  # creates the identical schema for the raw peer
    twin.drop()
    twin.connect(space)
    twin.close()
    raw = Raw(
        url, "bench_raw", space, store.ef_search, store.exact_threshold, store.exact_filter_rows
    )

    # ------------------------------------------------------------------ ingest
    def ingest(lo: int, hi: int) -> tuple[float, float]:
        """Batches lo..hi into both tables, alternating who goes first; seconds for each."""
        spent = {"vecmem": 0.0, "raw": 0.0}
        for b, start in enumerate(range(lo, hi, BATCH)):
            part = slice(start, min(start + BATCH, hi))
            batch = chunks[part]
            sides = [
                ("vecmem", partial(store.upsert, batch, vectors[part])),
                (
                    "raw",
                    partial(
                        raw.ingest,
                        [c.id for c in batch],
                        [c.document_id for c in batch],
                        texts[part],
                        metas[part],
                        [c.content_hash for c in batch],
                        vectors[part],
                    ),
                ),
            ]
            for side, fn in sides if b % 2 == 0 else sides[::-1]:
                t0 = time.perf_counter()
                fn()
                spent[side] += time.perf_counter() - t0
            if (b + 1) % 20 == 0:
                print(f"  {start + BATCH - lo:,} of {hi - lo:,} each", flush=True)
        return spent["vecmem"], spent["raw"]

    def timed(fn: Callable[[], Any]) -> float:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    # bulk: the HNSW index is dropped, the rows copied, the index built once at the end
    bulk = store.bulk_load()
    drop_vec, drop_raw = timed(bulk.__enter__), timed(raw.drop_index)
    load_vec, load_raw = ingest(0, n)
    build_vec = timed(lambda: bulk.__exit__(None, None, None))
    build_raw = timed(lambda: raw.build_index(store.hnsw_m, store.hnsw_ef_construction))
    t_vec, t_raw = drop_vec + load_vec + build_vec, drop_raw + load_raw + build_raw
    ingest_bulk = {
        "chunks": n,
        "vecmem_s": round(t_vec, 2),
        "raw_s": round(t_raw, 2),
        "vecmem_index_build_s": round(build_vec, 2),
        "raw_index_build_s": round(build_raw, 2),
        "vecmem_chunks_per_s": round(n / t_vec),
        "raw_chunks_per_s": round(n / t_raw),
        "overhead_ratio": round(t_vec / t_raw, 3),
    }
    print(f"bulk ingest: {ingest_bulk}", flush=True)
    # incremental: upserts into the indexed table (every row goes into the HNSW graph)
    t_vec, t_raw = ingest(n, n + n_more)
    ingest_inc = {
        "chunks": n_more,
        "vecmem_s": round(t_vec, 2),
        "raw_s": round(t_raw, 2),
        "vecmem_chunks_per_s": round(n_more / t_vec),
        "raw_chunks_per_s": round(n_more / t_raw),
        "overhead_ratio": round(t_vec / t_raw, 3),
    }
    print(f"incremental ingest: {ingest_inc}", flush=True)
    n += n_more
    assert store.count() == n
    with raw.conn.cursor() as cur:  # what autovacuum would do after a bulk load
        for t in ("bench_vecmem", "bench_raw"):
            for suffix in ("", "_postings", "_terms"):
                cur.execute(f"VACUUM ANALYZE {t}{suffix}")

    # ------------------------------------------------------------------ queries
    qtexts = synthetic.queries(texts, n_queries, seed=1)
    rng = np.random.default_rng(2)
    qvecs = vectors[rng.integers(n, size=n_queries)] + 0.02 * rng.normal(size=(n_queries, 384))
    qvecs = (qvecs / np.linalg.norm(qvecs, axis=1, keepdims=True)).astype(np.float32)
    # the raw peer queries vecmem's own table: same rows, same HNSW graph, so the ratio is the
    # layer alone (the two graphs, built separately, differ a little)
    raw.conn.close()
    raw = Raw(
        url, "bench_vecmem", space, store.ef_search, store.exact_threshold, store.exact_filter_rows
    )
    fusion = DEFAULT_FUSION
    source = parse_filter({"source": "s7"})
    kinds: dict[str, tuple[Callable[[np.ndarray, str], Any], Callable[[np.ndarray, str], Any]]] = {
        "vector": (lambda q, t: store.query(q, k=K), raw.query),
        "keyword": (lambda q, t: store.keyword(t, k=K), raw.keyword),
        "hybrid": (
            lambda q, t: store.hybrid(q, t, k=K, candidates=CANDIDATES, fusion=fusion),
            raw.hybrid,
        ),
        "hybrid_filtered": (
            lambda q, t: store.hybrid(
                q, t, k=K, candidates=CANDIDATES, fusion=fusion, filter=source
            ),
            raw.hybrid_filtered,
        ),
    }
    for name, (mine, theirs) in kinds.items():  # warm up, and check both sides agree
        for i in range(10):
            a, b_ = mine(qvecs[i], qtexts[i]), theirs(qvecs[i], qtexts[i])
            ids_a = [x.id if hasattr(x, "id") else x[0].id for x in a]
            ids_b = [r[0] for r in b_]
            # the two HNSW graphs are built separately, so approximate legs may differ a little
            if ids_a != ids_b if name == "keyword" else len(set(ids_a) & set(ids_b)) < 0.8 * K:
                raise SystemExit(f"{name}: vecmem and raw disagree on query {i}")
    queries: dict[str, Any] = {}
    for name, (mine, theirs) in kinds.items():
        lat: dict[str, list[float]] = {"vecmem": [], "raw": []}
        for i in range(n_queries):
            order = [("vecmem", mine), ("raw", theirs)]
            for side, fn in order if i % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                fn(qvecs[i], qtexts[i])
                lat[side].append(time.perf_counter() - t0)
        mine_p, raw_p = synthetic.percentiles(lat["vecmem"]), synthetic.percentiles(lat["raw"])
        queries[name] = {
            "vecmem": mine_p,
            "raw": raw_p,
            "overhead_ratio_p50": round(mine_p["p50_ms"] / raw_p["p50_ms"], 3),
        }
        print(f"{name}: {queries[name]}", flush=True)
    with raw.conn.cursor() as cur:
        version = cur.execute("SELECT version()").fetchone()[0].split(" on ")[0]
        pgv = cur.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0]
        sizes = {
            t: cur.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", (t,)).fetchone()[0]
            for t in ("bench_vecmem", "bench_vecmem_postings")
        }
    store.drop()
    store.close()
    with raw.conn.cursor() as cur:
        for suffix in ("", "_postings", "_terms", "_dfhist", "_meta"):
            cur.execute(f"DROP TABLE IF EXISTS bench_raw{suffix}")
    raw.conn.close()
    return {
        "n": n,
        "queries_per_kind": n_queries,
        "k": K,
        "candidates": CANDIDATES,
        "fusion": (
            f"{DEFAULT_FUSION.method} alpha={DEFAULT_FUSION.alpha}"
            f"{' adaptive' if DEFAULT_FUSION.adaptive else ''}"
        ),
        "batch": BATCH,
        "server": f"{version}, pgvector {pgv}",
        "table_sizes": sizes,
        "ingest_bulk": ingest_bulk,
        "ingest_incremental": ingest_inc,
        "latency": queries,
    }


def _markdown(r: dict[str, Any]) -> str:
    m, bulk, inc = r["machine"], r["ingest_bulk"], r["ingest_incremental"]
    sizes = ", ".join(f"{k} {v}" for k, v in r["table_sizes"].items())
    setup = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, "
        f"Python {m['python']}; server: {r['server']} (vecmem's test server: "
        "`shared_buffers=32MB`, `fsync=off`), on the same machine, shared with other jobs."
    )
    method = (
        f"{bulk['chunks']:,} chunks (384-d clustered unit vectors, Zipf text, precomputed) loaded "
        f"in batches of {r['batch']:,} inside `PgVector.bulk_load()` (HNSW built once at the end), "
        f"then {inc['chunks']:,} more upserted into the indexed table; then "
        f"{r['queries_per_kind']} queries of each kind at {r['n']:,} chunks, k={r['k']}, hybrid "
        f"with {r['candidates']} candidates a leg (the default fusion, {r['fusion']}). Raw psycopg "
        "runs the same SQL and the "
        "same tokenizer: ingest into an identical copy of the tables, queries on the same table "
        "(same HNSW graph); batches and queries alternate between the two. Table sizes: "
        f"{sizes}."
    )
    load_vec = bulk["vecmem_s"] - bulk["vecmem_index_build_s"]
    load_raw = bulk["raw_s"] - bulk["raw_index_build_s"]
    build_vec, build_raw = bulk["vecmem_index_build_s"], bulk["raw_index_build_s"]
    bulk_rows = [
        (
            f"| bulk load, chunks/s (COPY + BM25 postings, no index) | "
            f"{bulk['chunks'] / load_vec:,.0f} | {bulk['chunks'] / load_raw:,.0f} | "
            f"{load_vec / load_raw:.2f} (time) |"
        ),
        (
            f"| then the HNSW build (same `CREATE INDEX`, run one after the other), s | "
            f"{build_vec:.1f} | {build_raw:.1f} | {build_vec / build_raw:.2f} |"
        ),
        (
            f"| bulk ingest in all, chunks/s | {bulk['vecmem_chunks_per_s']:,} | "
            f"{bulk['raw_chunks_per_s']:,} | {bulk['overhead_ratio']:.2f} (time) |"
        ),
    ]
    inc_row = (
        f"| incremental upserts into the indexed table, chunks/s | {inc['vecmem_chunks_per_s']:,} "
        f"| {inc['raw_chunks_per_s']:,} | {inc['overhead_ratio']:.2f} (time) |"
    )
    lines = [
        setup,
        "",
        method,
        "",
        "| | vecmem | raw psycopg | vecmem / raw |",
        "|---|---|---|---|",
        *bulk_rows,
        inc_row,
    ]
    for name, q in r["latency"].items():
        v, w = q["vecmem"], q["raw"]
        lines.append(
            f"| {name.replace('_', ' ')} p50 / p99 (ms) | {v['p50_ms']:.2f} / "
            f"{v['p99_ms']:.2f} | {w['p50_ms']:.2f} / {w['p99_ms']:.2f} | "
            f"{q['overhead_ratio_p50']:.2f} (p50) |"
        )
    hyb = r["latency"]["hybrid"]["vecmem"]["p50_ms"]
    worst = max(
        [load_vec / load_raw, inc["overhead_ratio"]]
        + [q["overhead_ratio_p50"] for q in r["latency"].values()]
    )
    targets = (
        "Targets: vecmem overhead over raw psycopg <= 15% (worst here, index build aside: "
        f"{100 * (worst - 1):+.0f}%);"
        f" hybrid p50 <= 20 ms at 100k chunks (here: {hyb:.1f} ms at {r['n']:,}). "
        'The filtered hybrid uses `{"source": "s7"}` (2% of chunks) in both legs. '
        "Incremental upserts are bound by pgvector's HNSW inserts (each row joins the graph); "
        "for large loads use `bulk_load()`."
    )
    quick = "-quick" if r["quick"] else ""
    run = (
        f"Run: `python -m benchmarks.bench_pgvector{' --quick' if quick else ''}` "
        f"(results: `benchmarks/results/pgvector{quick}.json`)."
    )
    return "\n".join([*lines, "", targets, run])


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_pgvector")
    p.add_argument("--n", type=int, default=None, help="chunks (default 100000; 10000 --quick)")
    p.add_argument("--queries", type=int, default=None, help="queries per kind (default 300)")
    p.add_argument("--quick", action="store_true", help="10k chunks, 100 queries per kind")
    p.add_argument("--postgres-url", default=None, help="use this server instead of starting one")
    args = p.parse_args()
    n = args.n or (10_000 if args.quick else 100_000)
    n_queries = args.queries or (100 if args.quick else 300)
    with _server(args.postgres_url) as url:
        result = {
            "machine": synthetic.machine(),
            "quick": args.quick,
            **run(n, n // 20, n_queries, url),
        }
    name = "pgvector-quick.json" if args.quick else "pgvector.json"
    out = ROOT / "benchmarks" / "results" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.quick:
        write_section("pgvector", "PostgreSQL + pgvector (issue 3)", _markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
