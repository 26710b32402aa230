"""Export / import and migrate throughput (chunks/s) between the embedded store, pgvector and
LanceDB, against each client's own bulk read and write of the same rows.

    python -m benchmarks.bench_lifecycle --n 100000
    python -m benchmarks.bench_lifecycle --quick          # 10k chunks
    python -m benchmarks.bench_lifecycle --stores lancedb --no-migrate   # refresh some rows

Data: synthetic Zipf texts with 384-d clustered unit vectors (:mod:`benchmarks.synthetic`),
loaded into each store once. Then, per store: ``export_store`` to an archive vs the raw bulk
read of the same rows (pgvector: psycopg ``COPY (SELECT ...) TO STDOUT`` binary; LanceDB:
``table.to_arrow()``; embedded: ``all_chunks()`` + ``get_vectors`` of every id, in-process);
``import_store`` into an empty store vs the raw bulk write (pgvector: ``COPY FROM`` into a plain
table with the same columns; LanceDB: ``create_table`` from one Arrow table; embedded:
``upsert`` in batches of 2,000, no archive). pgvector targets are loaded inside
``PgVector.bulk_load()`` (HNSW built once at the end, included in the time; ``import_store``
and ``migrate`` enter it themselves). Migrations are timed without their proof (counts + 20 sampled top-10 queries per leg), which is timed apart.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import synthetic
from benchmarks.report import RESULTS, publish
from vecmem.stores import _pgvector_sql as pgsql

BATCH = 2000
KINDS = ("embedded", "pgvector", "lancedb")
MIGRATIONS = (
    ("embedded", "pgvector"),
    ("embedded", "lancedb"),
    ("pgvector", "lancedb"),
    ("lancedb", "embedded"),
)


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from vecmem.testing.servers import postgres

    with postgres() as started:
        yield started


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _fill(store: Any, chunks: list[Any], vecs: np.ndarray) -> None:
    for i in range(0, len(chunks), BATCH):
        store.upsert(chunks[i : i + BATCH], vecs[i : i + BATCH])


def run(
    n: int, url: str, work: Path, *, stores: tuple[str, ...] = KINDS, migrations: bool = True
) -> dict[str, Any]:
    import lancedb
    import psycopg

    from vecmem.lifecycle import export_store, import_store, migrate
    from vecmem.stores.embedded import EmbeddedStore
    from vecmem.stores.lancedb import LanceDb
    from vecmem.stores.pgvector import PgVector
    from vecmem.types import EmbeddingSpace

    texts = synthetic.texts(n)
    vecs = synthetic.vectors(n)
    from vecmem.types import Chunk

    chunks = [
        Chunk.create(f"d{i}", 0, t, {"bucket": i % 100, "source": f"s{i % 10}.md"})
        for i, t in enumerate(texts)
    ]
    space = EmbeddingSpace("synthetic-384", 384)
    out: dict[str, Any] = {"n": n}

    def open_(kind: str, name: str) -> Any:
        if kind == "embedded":
            s: Any = EmbeddedStore(work / name)
        elif kind == "lancedb":
            s = LanceDb(work / "lance", table=name)
        else:
            s = PgVector(url, table=name)
        s.connect(space)
        return s

    def loading(s: Any) -> Any:
        return s.bulk_load() if isinstance(s, PgVector) else contextlib.nullcontext()

    srcs: dict[str, Any] = {}
    needed = set(stores) | ({k for pair in MIGRATIONS for k in pair} if migrations else set())
    for kind in (k for k in KINDS if k in needed):
        s = open_(kind, f"src_{kind}")
        t = _timed(lambda s=s: _load(s, chunks, vecs, loading))
        srcs[kind] = s
        out[f"{kind}_load_s"] = round(t, 2)
        print(f"loaded {kind} in {t:.1f}s", flush=True)

    # raw bulk reads and writes
    names = pgsql.table_names("public", "src_pgvector")

    def pg_read() -> None:
        sql = (
            f"COPY (SELECT id, document_id, position, text, metadata, embedding "
            f"FROM {names['chunks']}) TO STDOUT (FORMAT BINARY)"
        )
        with psycopg.connect(url) as c, c.cursor() as cur, cur.copy(sql) as cp:
            for _ in cp:
                pass

    def pg_write() -> None:
        import json

        from pgvector.psycopg import register_vector

        with psycopg.connect(url) as c:
            register_vector(c)
            c.execute("DROP TABLE IF EXISTS raw_copy")
            c.execute(
                "CREATE TABLE raw_copy (id text PRIMARY KEY, document_id text, position "
                "int, text text, metadata jsonb, embedding vector(384))"
            )
            with c.cursor() as cur, cur.copy("COPY raw_copy FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["text", "text", "int4", "text", "jsonb", "vector"])
                for ch, v in zip(chunks, vecs):
                    cp.write_row(
                        (ch.id, ch.document_id, ch.position, ch.text, json.dumps(ch.metadata), v)
                    )
            c.execute("DROP TABLE raw_copy")

    def lance_read() -> None:
        lancedb.connect(work / "lance").open_table("src_lancedb").to_arrow()

    def lance_write() -> None:
        import pyarrow as pa

        db = lancedb.connect(work / "rawlance")
        data = pa.table(
            {
                "id": [c.id for c in chunks],
                "document_id": [c.document_id for c in chunks],
                "position": [c.position for c in chunks],
                "text": texts,
                "metadata": [str(c.metadata) for c in chunks],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), 384),
            }
        )
        db.create_table("raw", data=data, mode="overwrite")

    def emb_read() -> None:
        s = srcs["embedded"]
        cs = s.all_chunks()
        for i in range(0, len(cs), BATCH):
            s.get_vectors([c.id for c in cs[i : i + BATCH]])

    def emb_write() -> None:
        s = EmbeddedStore(work / "raw_embedded")
        s.connect(space)
        _fill(s, chunks, vecs)
        s.close()

    raw = {
        "pgvector": (pg_read, pg_write),
        "lancedb": (lance_read, lance_write),
        "embedded": (emb_read, emb_write),
    }
    for kind, (read, write) in raw.items():
        if kind not in stores:
            continue
        archive = work / f"{kind}.vmar"
        t_exp = _timed(lambda k=kind, a=archive: export_store(srcs[k], a))
        t_raw_r = _timed(read)
        dst = open_(kind, f"imp_{kind}")
        t_imp = _timed(lambda d=dst, a=archive: import_store(a, d))  # bulk_load inside
        assert dst.count() == n
        dst.close()
        t_raw_w = _timed(write)
        out[kind] = {
            "export_chunks_per_s": round(n / t_exp),
            "raw_read_chunks_per_s": round(n / t_raw_r),
            "import_chunks_per_s": round(n / t_imp),
            "raw_write_chunks_per_s": round(n / t_raw_w),
            "archive_mb": round(archive.stat().st_size / 2**20, 1),
            "own_load_chunks_per_s": round(n / out[f"{kind}_load_s"]),
            "measured": _when(),
        }
        print(kind, out[kind], flush=True)
        archive.unlink()

    for a, b in MIGRATIONS if migrations else ():
        dst = open_(b, f"mig_{a}_{b}")
        box: dict[str, Any] = {}
        t = _timed(
            lambda d=dst, s=srcs[a], box=box: box.setdefault("r", migrate(s, d, verify=False))
        )
        tv = _timed(lambda d=dst, s=srcs[a], box=box: box.setdefault("v", migrate(s, d)))
        out[f"migrate_{a}_to_{b}"] = {
            "chunks_per_s": round(n / t),
            "copied": box["r"].copied,
            "check_s": round(tv, 2),
            "overlap": box["v"].overlap,
        }
        print(a, b, out[f"migrate_{a}_to_{b}"], flush=True)
        if isinstance(dst, PgVector):
            dst.drop()
        dst.close()
    for s in srcs.values():
        if isinstance(s, PgVector):
            s.drop()
        s.close()
    with contextlib.suppress(Exception):
        p = PgVector(url, table="imp_pgvector")
        p.drop()
    return out


def _load(s: Any, chunks: list[Any], vecs: np.ndarray, loading: Callable[[Any], Any]) -> None:
    with loading(s):
        _fill(s, chunks, vecs)


def _when() -> str:
    """When and under what load a row was measured (the machine is shared)."""
    return f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load {os.getloadavg()[0]:.1f}"


def _merged(new: dict[str, Any]) -> dict[str, Any]:
    """``new`` over the last full result: rows not measured now are kept with their date."""
    try:
        old = json.loads((RESULTS / "lifecycle.json").read_text())
    except (OSError, ValueError):
        return new
    if old.get("n") != new["n"]:
        return new
    return {**old, **{k: v for k, v in new.items() if k != "machine"}, "machine": new["machine"]}


def _markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, Python "
        f"{m['python']}, shared with other jobs; PostgreSQL is vecmem's test server "
        "(`fsync=off`). " + _method(),
        "",
        f"{r['n']:,} chunks.",
        "",
        (
            "| store | export | raw bulk read | export / raw | import | raw bulk write | "
            "import / raw | the store's own upsert (initial load) | archive MB | measured |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in (k for k in KINDS if k in r):
        x = r[kind]
        own = x.get("own_load_chunks_per_s") or round(r["n"] / r[f"{kind}_load_s"])
        lines.append(
            f"| {kind} | {x['export_chunks_per_s']:,} | {x['raw_read_chunks_per_s']:,}"
            f" | {x['export_chunks_per_s'] / x['raw_read_chunks_per_s']:.2f} | "
            f"{x['import_chunks_per_s']:,} | {x['raw_write_chunks_per_s']:,} | "
            f"{x['import_chunks_per_s'] / x['raw_write_chunks_per_s']:.2f} | "
            f"{own:,} | {x['archive_mb']} | {x.get('measured', 'before 2026-12-07')} |"
        )
    lines += [
        "",
        "| migrate | chunks/s (copy) | proof of the copy, s | top-10 overlap |",
        "|---|---|---|---|",
    ]
    for key, x in r.items():
        if key.startswith("migrate_"):
            lines.append(
                f"| {key[8:].replace('_to_', ' → ')} | {x['chunks_per_s']:,} | "
                f"{x['check_s']} | {x['overlap']} |"
            )
    lines += [
        "",
        (
            "All figures chunks/s (higher is better). The proof column is a second run "
            "of `migrate` over the finished copy: it reads the whole source again, skips "
            "every chunk (same id and hash) and runs the count and top-10 check."
        ),
        _misses(r),
        f"Run: `python -m benchmarks.bench_lifecycle --n {r['n']}`.",
    ]
    return "\n".join(lines)


def _misses(r: dict[str, Any]) -> str:
    kinds = [k for k in KINDS if k in r]
    exp = [r[k]["export_chunks_per_s"] / r[k]["raw_read_chunks_per_s"] for k in kinds]

    def own(k: str) -> str:
        x = r[k]
        rate = x.get("own_load_chunks_per_s") or r["n"] / r[f"{k}_load_s"]
        return f"{k} {x['import_chunks_per_s'] / rate:.2f}"

    pg = r.get("pgvector")
    copy = (
        f" and far below a raw `COPY` (pgvector "
        f"{pg['import_chunks_per_s'] / pg['raw_write_chunks_per_s']:.2f}: the store's BM25 "
        "postings and row building dominate, not the `COPY` it writes with)"
        if pg
        else ""
    )
    return (
        f"Misses, said plainly: export runs at {min(exp):.0%}-{max(exp):.0%} of the raw "
        "clients' bulk reads (it reads through the store protocol, a keyset page of ids then "
        "`get` and `get_vectors`, and writes JSONL, .npy and SHA-256s); LanceDB reads its ids "
        "once per table version and takes each page by row id (until December 2026 every page "
        "re-read the id column and scanned the table twice: quadratic). The embedded 'raw "
        "read' is the in-process arrays, not a disk read. Import writes through each store's "
        "own `upsert` (pgvector's inside `bulk_load()`, which `import_store` enters itself "
        "when the archive holds at least as many chunks as the target), so it runs below that "
        f"store's own upsert rate ({', '.join(own(k) for k in kinds)} of it){copy}. Rows "
        "carry the time and 1-minute load average they were measured at: the machine (2 "
        "cores) is shared, and figures taken at different loads compare only roughly."
    )


def _method() -> str:
    return "Data:" + (__doc__ or "").split("Data:", 1)[1].split("\n\n")[0].replace("\n", " ")


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_lifecycle")
    p.add_argument("--n", type=int, default=None, help="chunks (default 100000; 10000 --quick)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--postgres-url", default=None)
    p.add_argument(
        "--stores",
        default=",".join(KINDS),
        help="export/import rows to measure (comma-separated; the others are kept from the "
        "last run with their dates)",
    )
    p.add_argument("--no-migrate", action="store_true", help="skip the migrations")
    args = p.parse_args()
    stores = tuple(s for s in args.stores.split(",") if s)
    if not stores or set(stores) - set(KINDS):
        p.error(f"--stores takes {', '.join(KINDS)}")
    n = args.n or (10_000 if args.quick else 100_000)
    work = Path(tempfile.mkdtemp(prefix="bench_lifecycle_"))
    try:
        with _server(args.postgres_url) as url:
            result = {
                "machine": synthetic.machine(),
                **run(n, url, work, stores=stores, migrations=not args.no_migrate),
            }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not args.quick:
        result = _merged(result)
    publish(
        result,
        "lifecycle" + ("-quick" if args.quick else ""),
        ("lifecycle", "Export / import and migrate throughput (issue 16)"),
        _markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
