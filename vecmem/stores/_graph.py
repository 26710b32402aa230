"""The HNSW graph of the embedded store, built beside the store in a child process.

The graph is a cache over committed rows: ``ann.usearch`` (usearch's file) and ``ann.json``
(``{"count", "epoch", "upto"}``: the graph holds the rows below slot ``upto`` that were live
when it was built; rows deleted since are filtered out by the reader, rows from ``upto`` on are
the reader's exact tail). A store process never adds to a graph: it starts ``python -m
vecmem.stores._graph FOLDER ...``, which reads the committed rows in one SQLite snapshot (their
vectors checked against the checksums), extends the saved graph when it is of the same epoch
(removing the rows deleted since, adding the rows from its ``upto`` on) or builds a new one,
saves it to temporary files and renames them into place; readers map the new file (a view, no
copy) when ``ann.json`` changes. So writes never wait for the graph, readers never wait for a
build, and a build runs on another core, outside the GIL (usearch holds it while it adds).

Removed nodes stay in usearch's file as tombstones; ``ann.json`` counts them (``dead``), and a
build starts afresh instead of extending once they pass a quarter of the live nodes
(:data:`DEAD_SHARE`), so a store that deletes much does not carry a graph twice its size. A
compaction (:mod:`vecmem.stores._compact`) renumbers the slots: :func:`remapped` gives it the
saved graph with its keys renamed to the new slots, installed with the new epoch after the
switch, so searches keep using HNSW; its tombstones make the next build a fresh one.

A kill at any point loses nothing: the rows are committed before any build reads them, a torn
temporary file is never renamed, and a graph whose ``count`` does not match ``ann.json`` (killed
between the two renames) is refused and built again. ``ann.build.lock`` (an flock) keeps one
build per store at a time across processes.

Adds use one thread: usearch's concurrent ``add`` leaves nodes no search reaches
(unum-cloud/USearch#735, open, and still so in usearch 2.26.6; measured here: with all cores 4 of
3,000 and 23 of 60,000 nodes were not found even by their own vector, none with one thread; on
2.26.6, 3,000 random 384-d vectors added on 8 threads left 11-26 such nodes a graph, on 2
threads 1-5, on one none). At 100,000 clustered vectors every HNSW graph measured strands some
nodes whatever the threads (not found by their own vector: usearch 131 on one thread, 141 on
two; faiss 168, hnswlib 130; ``benchmarks/bench_graph_libs.py``, BENCHMARKS.md "HNSW
libraries"): an unfiltered vector search does not return those rows (recall@10 0.9985).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from vecmem._deps import usearch_index

DEAD_SHARE = 0.25
"""A build starts afresh when the graph's removed nodes exceed this share of its live ones."""
ADD_THREADS = 1
BLOCK_ROWS = 50_000
FAULT_ENV = "VECMEM_GRAPH_FAULT"
"""Fault injection for the fault suite: the build kills itself (SIGKILL) at this point:
"graph-read" (rows read, nothing saved), "graph-saved" (graph in its temporary file),
"graph-replaced" (graph renamed into place, ann.json not yet)."""


DTYPES = ("f32", "f16")
"""Precisions the graph can keep its copy of the vectors in. The store re-scores the graph's
candidates exactly against its float32 rows; with f16 (20k synthetic 384-d chunks, 2 busy
cores) recall@10 was 0.998 against 1.0, the graph file 17.5 MiB against 32.1, its build 19 s
against 42, a query 0.32 ms against 0.55. usearch's i8 is left out: recall@10 0.74, and still
0.74 with 8 times the candidates (a 384-d unit vector's components round to a few levels)."""


def new_index(
    dim: int, connectivity: int, expansion_add: int, expansion_search: int, dtype: str = "f32"
) -> Any:
    Index = usearch_index()
    return Index(
        ndim=dim,
        metric="ip",
        dtype=dtype,
        connectivity=connectivity,
        expansion_add=expansion_add,
        expansion_search=expansion_search,
    )


def read_meta(folder: Path) -> dict[str, int] | None:
    try:
        meta = json.loads((folder / "ann.json").read_text())
        out = {k: int(meta[k]) for k in ("count", "epoch", "upto")}
        out["dead"] = int(meta.get("dead", 0))
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def open_view(folder: Path, epoch: int, rows: int) -> tuple[Any, int] | None:
    """The saved graph as a read-only memory map and its ``upto``, if it is whole, of
    ``epoch`` and within the first ``rows`` committed rows; else ``None``."""
    Index = usearch_index()
    meta = read_meta(folder)
    if meta is None or meta["epoch"] != epoch or meta["upto"] > rows:
        return None
    try:
        view = Index.restore(str(folder / "ann.usearch"), view=True)
    except (OSError, ValueError, RuntimeError):
        return None
    if view is None or len(view) != meta["count"]:
        return None  # replaced between our two reads, or torn: a later look tries again
    return view, meta["upto"]


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def build(
    folder: Path, dim: int, connectivity: int, expansion_add: int, dtype: str = "f32"
) -> int | None:
    """Bring the saved graph up to the committed rows (see the module docstring); returns the
    number of rows added, or ``None`` when another process holds the build lock."""
    from vecmem.stores._vectorfile import VectorFile

    with open(folder / "ann.build.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another process is building this graph
        db = sqlite3.connect(f"file:{folder / 'store.sqlite'}?mode=ro", uri=True)
        try:
            db.execute("BEGIN")  # one snapshot
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            epoch, upto = int(meta.get("epoch", 0)), int(meta.get("next_slot", 0))
            live = np.array(
                [
                    r[0]
                    for r in db.execute(
                        "SELECT slot FROM chunks WHERE slot < ? ORDER BY slot", (upto,)
                    )
                ],
                dtype=np.int64,
            )
            ranges = db.execute(
                "SELECT start, stop, crc FROM ranges WHERE start < ? ORDER BY start", (upto,)
            ).fetchall()
            # opened in the snapshot: a compaction deletes the file only after its commit
            try:
                vf = VectorFile(folder / meta.get("vectors", "vectors.f32"), dim=dim, create=False)
            except FileNotFoundError:
                return 0  # compacted since: a later build reads the new rows
        finally:
            db.close()
        index, added, dead = None, live, 0
        saved = read_meta(folder)
        if saved is not None and saved["epoch"] == epoch and saved["upto"] <= upto:
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                old = usearch_index().restore(str(folder / "ann.usearch"))
                same = old is not None and str(old.dtype) == f"ScalarKind.{dtype.upper()}"
                if same and len(old) == saved["count"]:  # (another dtype: afresh)
                    keys = np.asarray(old.keys, dtype=np.int64)
                    gone = np.setdiff1d(keys, live, assume_unique=True)
                    dead = saved["dead"] + len(gone)
                    if dead <= DEAD_SHARE * len(live):  # else: afresh, without tombstones
                        if len(gone):
                            old.remove(gone.astype(np.uint64))
                        index, added = old, live[live >= saved["upto"]]
                    else:
                        dead = 0
        if index is None:
            index = new_index(dim, connectivity, expansion_add, 64, dtype)
        try:
            starts = np.array([r[0] for r in ranges], dtype=np.int64)
            stops = np.array([r[1] for r in ranges], dtype=np.int64)
            at = np.searchsorted(added, starts)
            wanted = [
                r for r, i, stop in zip(ranges, at, stops) if i < len(added) and added[i] < stop
            ]
            pending: list[np.ndarray] = []
            for lo, block in vf.verified(wanted):
                mine = added[(added >= lo) & (added < lo + len(block))]
                pending.append(mine)
                index.add(mine.astype(np.uint64), block[mine - lo], threads=ADD_THREADS)
        finally:
            vf.close()
        _fault("graph-read")
        tmp = _temporary(folder, "ann.usearch")
        try:
            index.save(str(tmp))
            _fault("graph-saved")
            install(folder, tmp, {"count": len(index), "epoch": epoch, "upto": upto, "dead": dead})
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        return int(sum(len(p) for p in pending))


def _temporary(folder: Path, name: str) -> Path:
    return folder / f"{name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"


def install(folder: Path, graph: Path, meta: dict[str, int]) -> None:
    """Rename a saved graph file into place, then its ``ann.json`` (a reader that sees one
    without the other finds the counts differ and waits)."""
    info = _temporary(folder, "ann.json")
    try:
        info.write_text(json.dumps(meta))
        os.replace(graph, folder / "ann.usearch")
        _fault("graph-replaced")
        os.replace(info, folder / "ann.json")
    finally:
        with contextlib.suppress(OSError):
            info.unlink()


def remapped(
    folder: Path, epoch: int, rows: int, live: np.ndarray
) -> tuple[Path, dict[str, int]] | None:
    """For a compaction that packs the rows ``live`` (sorted slots, within the first ``rows``)
    to slots ``0..len(live)-1``: the saved graph of ``epoch`` with node ``live[i]`` renamed
    ``i`` and the others removed, saved to a temporary file, with its ``ann.json`` for epoch
    ``epoch + 1``; ``None`` when there is no whole graph of ``epoch``."""
    saved = read_meta(folder)
    if saved is None or saved["epoch"] != epoch or saved["upto"] > rows:
        return None
    try:
        index = usearch_index().restore(str(folder / "ann.usearch"))
    except (OSError, ValueError, RuntimeError):
        return None
    if index is None or len(index) != saved["count"]:
        return None
    keys = np.sort(np.asarray(index.keys, dtype=np.int64))
    at = np.searchsorted(live, keys)
    keep = at < len(live)
    keep[keep] = live[at[keep]] == keys[keep]
    if not keep.all():
        index.remove(keys[~keep].astype(np.uint64))
    kept, new = keys[keep].astype(np.uint64), at[keep].astype(np.uint64)
    aside = kept + np.uint64(1 << 62)  # two steps: a new key may still be another node's old one
    index.rename(kept, aside)
    index.rename(aside, new)
    tmp = _temporary(folder, "ann.usearch")
    try:
        index.save(str(tmp))
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    upto = int(np.searchsorted(live, saved["upto"]))
    dead = saved["dead"] + int(np.count_nonzero(~keep))
    return tmp, {"count": len(index), "epoch": epoch + 1, "upto": upto, "dead": dead}


def main(argv: list[str]) -> int:
    folder, dim, connectivity, expansion_add = Path(argv[0]), *map(int, argv[1:4])
    dtype = argv[4] if len(argv) > 4 else "f32"
    try:
        os.nice(5)  # below the store's own writes and queries
    except OSError:
        pass
    build(folder, dim, connectivity, expansion_add, dtype)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
