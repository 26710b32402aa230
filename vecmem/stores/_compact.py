"""Compaction of the embedded store: dead vector rows reclaimed, the change log emptied.

A slot of ``vectors.f32`` is never reused, so deleted and overwritten chunks leave dead rows
behind, and the change log (``log``) keeps one entry per write. :func:`compact` writes the live
rows, packed in slot order, into a new vector file and renumbers the chunks to match:

1. **Copy, online** (only ``compact.lock`` held): in one read snapshot, the live slots, their
   checksum ranges and the current file are taken; the rows are read (each range's CRC checked)
   and written densely into ``vectors.<generation>.f32`` with new CRCs. Readers and writers go on
   meanwhile; the new file is fsynced.
2. **Switch** (the store's write lock, one SQLite transaction): the rows written since the
   snapshot are appended to the new file, the chunks table is rebuilt with the new slots (rows
   deleted since the snapshot stay behind as dead rows of the new file), the checksum records
   are replaced, the log is emptied, and ``meta`` names the new file and a new ``generation``
   and ``epoch``. Then the old file is deleted and the HNSW graph, renamed to the new slots
   during step 1 (:func:`vecmem.stores._graph.remapped`), put in place.
3. **Vacuum** (optional, no vecmem lock): SQLite's ``VACUUM`` gives the freed pages back.

Every store process sees the new ``generation`` on its next call and loads the store again (its
open file descriptors keep the old file readable until then) and maps the renamed graph, so
searches keep using HNSW; graphs of the old epoch are never loaded again. The renamed graph keeps
the removed nodes as tombstones: the next graph build beside the store starts afresh and gives
their space back (:data:`vecmem.stores._graph.DEAD_SHARE`). A kill at any point loses
nothing: before the commit the new file is an orphan nobody reads (deleted by the next
compaction), after it the old file is. ``compact.lock`` keeps one compaction per store.

The embedded store compacts itself in a child process (``python -m vecmem.stores._compact``)
when dead rows pass ``compact_at`` of its slots (:data:`COMPACT_AT`); ``vecmem compact PATH``
and :meth:`vecmem.stores.embedded.EmbeddedStore.compact` run it at once.

>>> compact(Path("./kb")).rows_after                     # doctest: +SKIP
5000
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vecmem._sqlite import sql_error
from vecmem.errors import BackendError, IntegrityError, StoreLockedError
from vecmem.stores import _graph, _keywords
from vecmem.stores._vectorfile import RANGE_BYTES, Range, VectorFile

log = logging.getLogger("vecmem")

COMPACT_AT = 0.3
"""Default share of dead rows (deleted or overwritten chunks) among a store's vector rows at
which it compacts itself (``EmbeddedStore(compact_at=...)``; ``None`` turns it off)."""
COMPACT_MIN_DEAD = 4096
"""...and never for fewer dead rows than this (a small store's dead rows cost little)."""
WAL_LIMIT = 64 << 20
"""Bytes the store's SQLite WAL file is cut back to after a checkpoint (``journal_size_limit``):
VACUUM writes the whole database through the WAL, and without a limit the file would keep that
size when readers kept the final checkpoint from truncating it."""
FAULT_ENV = "VECMEM_COMPACT_FAULT"
"""Fault injection for the fault suite: the compaction kills itself (SIGKILL) at this point:
"compact-copied" (new file written, nothing committed), "compact-commit" (just before the
COMMIT), "compact-committed" (committed, old files still there), "compact-vacuum" (before
VACUUM)."""


@dataclass(frozen=True)
class CompactReport:
    """What :func:`compact` did."""

    live: int
    """Live chunks after the compaction."""
    rows_before: int
    """Vector rows (slots) before: live and dead."""
    rows_after: int
    """Vector rows after (the live ones and any deleted during the compaction)."""
    log_before: int
    """Change-log entries dropped."""
    bytes_before: int
    """Bytes of the store's files (database, WAL, vectors, graph) before."""
    bytes_after: int
    """The same after (the graph is rebuilt beside the store later)."""
    seconds: float


def folder_bytes(folder: Path) -> int:
    """Bytes the store's files take on disk."""
    total = 0
    for f in folder.iterdir():
        with contextlib.suppress(OSError):
            if f.is_file():
                total += f.stat().st_blocks * 512
    return total


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@contextmanager
def _flock(path: Path, *, timeout: float | None, what: str) -> Iterator[bool]:
    """An exclusive flock on ``path``; yields False at once when ``timeout`` is 0 and it is
    held elsewhere, raises :class:`StoreLockedError` after ``timeout`` seconds."""
    with open(path, "a") as fh:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    if timeout == 0:
                        yield False
                        return
                    raise StoreLockedError(f"{what}: {path} was held for {timeout}s") from None
                time.sleep(0.02)
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Packer:
    """Writes rows densely from row 0 of a new file and keeps their range records (a CRC-32 per
    :data:`RANGE_BYTES` of rows, computed as they pass)."""

    def __init__(self, vf: VectorFile) -> None:
        self.vf = vf
        self.step = max(1, RANGE_BYTES // vf.row)
        self.n = 0
        self.start = 0
        self.crc = 0
        self.records: list[Range] = []

    def add(self, rows: np.ndarray) -> None:
        i = 0
        while i < len(rows):
            part = np.ascontiguousarray(rows[i : i + self.step - (self.n - self.start)])
            self.vf.pwrite(self.n, part)
            self.crc = zlib.crc32(part.data.cast("B"), self.crc)
            self.n += len(part)
            i += len(part)
            if self.n - self.start == self.step:
                self._close_range()

    def _close_range(self) -> None:
        self.records.append((self.start, self.n, self.crc & 0xFFFFFFFF))
        self.start, self.crc = self.n, 0

    def finish(self) -> list[Range]:
        if self.n > self.start:
            self._close_range()
        return self.records


def _copy(src: VectorFile, ranges: Sequence[Range], slots: np.ndarray, out: _Packer) -> None:
    """Append the rows ``slots`` (sorted) of ``src`` to ``out``, each range's CRC checked."""
    if not len(slots):
        return
    starts = np.array([r[0] for r in ranges], dtype=np.int64)
    stops = np.array([r[1] for r in ranges], dtype=np.int64)
    at = np.searchsorted(slots, starts)
    wanted = [r for r, i, stop in zip(ranges, at, stops) if i < len(slots) and slots[i] < stop]
    for lo, block in src.verified(wanted):
        mine = slots[(slots >= lo) & (slots < lo + len(block))]
        out.add(block[mine - lo])


def db_file(db: sqlite3.Connection) -> str:
    return str(db.execute("PRAGMA database_list").fetchone()[2])


def _check_tiling(file: Path, ranges: Sequence[Range], rows: int) -> None:
    """Refuse a store whose checksum records do not tile its rows (damaged): rows without a
    record could not be copied, so the compaction would drop them."""
    top = 0
    for start, stop, _ in ranges:
        if start != top or stop <= start:
            break
        top = stop
    if top != rows:
        raise IntegrityError(
            f"{file}: the checksum records do not cover vector rows {top}-{rows - 1}; run "
            f"`vecmem repair {file.parent}` before compacting"
        )


def _check_copied(file: Path | str, packer: _Packer, rows: int) -> None:
    """Every live row was copied (else the switch would leave chunks without vectors)."""
    if packer.n != rows:
        raise IntegrityError(
            f"{file}: the compaction found {packer.n} of {rows} live vector rows under their "
            "checksum records; nothing was changed"
        )


def _meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta").fetchall())


def vector_file_name(meta: dict[str, str]) -> str:
    return meta.get("vectors", "vectors.f32")


def _dim(meta: dict[str, str], file: Path) -> int:
    try:
        return int(json.loads(meta["space"])["dim"])
    except (KeyError, ValueError, TypeError) as exc:
        raise IntegrityError(f"{file}: the recorded embedding space is not valid ({exc})") from exc


def compact(
    folder: Path,
    *,
    lock_timeout: float = 30.0,
    vacuum: bool = True,
    wait: bool = True,
) -> CompactReport | None:
    """Compact the store in ``folder`` (see the module docstring). ``wait=False`` returns
    ``None`` at once when another process is compacting it; ``lock_timeout`` bounds the wait
    for the write lock before the switch (:class:`StoreLockedError`)."""
    folder = Path(folder)
    file = folder / "store.sqlite"
    if not file.exists():
        raise BackendError(f"{folder} holds no vecmem store (no store.sqlite)")
    with _flock(folder / "compact.lock", timeout=None if wait else 0, what="compaction") as mine:
        if not mine:
            return None
        return _compact(folder, file, lock_timeout, vacuum)


def _compact(folder: Path, file: Path, lock_timeout: float, vacuum: bool) -> CompactReport:
    t0 = time.perf_counter()
    before = folder_bytes(folder)
    db = sqlite3.connect(file, timeout=lock_timeout, isolation_level=None)
    try:
        # the switch must be durable before the old file goes (WAL + NORMAL may lose the last
        # commits on a power cut, FULL syncs the WAL at each commit)
        db.execute("PRAGMA synchronous=FULL")
        db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        # 1. the snapshot and the copy
        db.execute("BEGIN")
        meta = _meta(db)
        if "space" not in meta:
            db.execute("ROLLBACK")
            return CompactReport(0, 0, 0, 0, before, before, time.perf_counter() - t0)
        dim = _dim(meta, file)
        if int(meta.get("format", 1)) < 2:
            raise IntegrityError(
                f"{file} has no vector checksums (format 1): open it with this vecmem first "
                f"(it is upgraded, or asks for `vecmem repair {folder}`), then compact it"
            )
        generation, epoch = int(meta.get("generation", 0)), int(meta.get("epoch", 0))
        old_name = vector_file_name(meta)
        n0 = int(meta.get("next_slot", 0))
        q0 = db.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]
        log_before = db.execute("SELECT count(*) FROM log").fetchone()[0]
        live = np.fromiter(
            (r[0] for r in db.execute("SELECT slot FROM chunks ORDER BY slot")), dtype=np.int64
        )
        ranges = db.execute("SELECT start, stop, crc FROM ranges ORDER BY start").fetchall()
        _check_tiling(file, ranges, n0)
        if len(live) == n0 and not log_before:
            db.execute("ROLLBACK")
            return CompactReport(len(live), n0, n0, 0, before, before, time.perf_counter() - t0)
        try:
            src = VectorFile(folder / old_name, dim=dim, create=False)
        except FileNotFoundError as exc:
            raise IntegrityError(f"{file} names {old_name}, which is not there") from exc
        db.execute("ROLLBACK")
        new_path = folder / f"vectors.{generation + 1}.f32"
        with contextlib.suppress(FileNotFoundError):
            new_path.unlink()  # what a killed compaction left
        graph: tuple[Path, dict[str, int]] | None = None
        report = None
        try:
            dst = VectorFile(new_path, dim=dim)
            try:
                packer = _Packer(dst)
                _copy(src, ranges, live, packer)
                _check_copied(file, packer, len(live))
                graph = _renamed_graph(folder, epoch, n0, live)
                _fault("compact-copied")
                # 2. the switch
                with _flock(folder / "write.lock", timeout=lock_timeout, what="compaction"):
                    report = _switch(
                        db, folder, src, dst, packer, live, n0, q0, generation, epoch, graph
                    )
            finally:
                dst.close()
        finally:
            src.close()
            if graph is not None:
                graph[0].unlink(missing_ok=True)  # (renamed into place when it went well)
            if report is None:  # failed, or repaired meanwhile: the new file is nobody's
                new_path.unlink(missing_ok=True)
        if report is None:  # repaired meanwhile: start again from the new rows
            return _compact(folder, file, lock_timeout, vacuum)
        rows_after, n_live = report
        # 3. the freed pages (the compaction stands if this fails: VACUUM needs room for a copy)
        if vacuum:
            _fault("compact-vacuum")
            try:
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                log.warning("vecmem: compacted %s, but VACUUM failed: %s", folder, exc)
    except sqlite3.Error as exc:
        raise sql_error(exc, file, "compacting") from exc
    finally:
        db.close()
    return CompactReport(
        live=n_live,
        rows_before=n0,
        rows_after=rows_after,
        log_before=log_before,
        bytes_before=before,
        bytes_after=folder_bytes(folder),
        seconds=time.perf_counter() - t0,
    )


def _switch(
    db: sqlite3.Connection,
    folder: Path,
    src: VectorFile,
    dst: VectorFile,
    packer: _Packer,
    live: np.ndarray,
    n0: int,
    q0: int,
    generation: int,
    epoch: int,
    graph: tuple[Path, dict[str, int]] | None,
) -> tuple[int, int] | None:
    """Step 2 of the module docstring (hold the write lock); ``None`` when a repair rewrote
    rows since the snapshot (the copy is stale)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        meta = _meta(db)
        if int(meta.get("generation", 0)) != generation or int(meta.get("epoch", 0)) != epoch:
            db.execute("ROLLBACK")
            return None
        added = np.fromiter(
            (
                r[0]
                for r in db.execute("SELECT slot FROM chunks WHERE slot >= ? ORDER BY slot", (n0,))
            ),
            dtype=np.int64,
        )
        if len(added):
            tail = db.execute(
                "SELECT start, stop, crc FROM ranges WHERE stop > ? ORDER BY start", (n0,)
            ).fetchall()
            _copy(src, tail, added, packer)
        _check_copied(db_file(db), packer, len(live) + len(added))
        records = packer.finish()
        dst.sync()
        st = os.stat(dst.path)  # still our file (nobody else deletes it under compact.lock)
        if (st.st_ino, st.st_dev) != (os.fstat(dst.fd).st_ino, os.fstat(dst.fd).st_dev):
            raise BackendError(f"{dst.path} was replaced during the compaction")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS moves (old INTEGER PRIMARY KEY, new INTEGER)")
        db.execute("DELETE FROM moves")
        old = np.concatenate((live, added))
        db.executemany("INSERT INTO moves VALUES (?, ?)", zip(old.tolist(), range(len(old))))
        ddl = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'chunks'"
        ).fetchone()[0]
        db.execute(re.sub(r'^CREATE TABLE\s+"?chunks"?', "CREATE TABLE chunks_next", ddl))
        cols = [r[1] for r in db.execute("PRAGMA table_info(chunks)")]
        rest = ", ".join(f"c.{c}" for c in cols if c != "slot")
        db.execute(
            f"INSERT INTO chunks_next (slot, {', '.join(c for c in cols if c != 'slot')}) "
            f"SELECT m.new, {rest} FROM chunks c JOIN moves m ON m.old = c.slot ORDER BY m.new"
        )
        n_live = db.execute("SELECT count(*) FROM chunks_next").fetchone()[0]
        indexes = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'chunks' "
            "AND sql IS NOT NULL"
        ).fetchall()
        db.execute("DROP TABLE chunks")
        db.execute("ALTER TABLE chunks_next RENAME TO chunks")
        for (sql,) in indexes:
            db.execute(sql)
        db.execute("DROP TABLE moves")
        db.execute("DELETE FROM ranges")
        db.executemany("INSERT INTO ranges VALUES (?, ?, ?)", records)
        db.execute("DELETE FROM log")
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [
                ("next_slot", str(packer.n)),
                ("vectors", dst.path.name),
                ("generation", str(generation + 1)),
                ("epoch", str(epoch + 1)),
                ("format", "3"),
            ],
        )
        _fault("compact-commit")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
        raise
    _fault("compact-committed")
    _sweep(folder, keep=dst.path.name)
    with contextlib.suppress(OSError):
        _keywords.drop(folder)  # of the old slots: never loaded again (a cache)
    try:
        if graph is None:
            raise FileNotFoundError
        _graph.install(folder, *graph)  # (a cache: if this fails, a build makes a new one)
    except OSError:
        for name in ("ann.usearch", "ann.json"):  # of the old slots: never loaded again
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
    return packer.n, n_live


def _renamed_graph(
    folder: Path, epoch: int, rows: int, live: np.ndarray
) -> tuple[Path, dict[str, int]] | None:
    """The saved HNSW graph renamed to the new slots (:func:`vecmem.stores._graph.remapped`),
    or ``None`` (no graph, or it could not be read: a build makes a new one)."""
    if not (folder / "ann.json").exists():
        return None
    try:
        return _graph.remapped(folder, epoch, rows, live)
    except (OSError, RuntimeError, ValueError, MemoryError):
        return None


def _sweep(folder: Path, *, keep: str) -> None:
    """Delete vector files other than ``keep`` (the old one, orphans of killed compactions).
    Hold the write lock and ``compact.lock``."""
    for f in [folder / "vectors.f32", *folder.glob("vectors.*.f32")]:
        if f.name != keep:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()


def main(argv: list[str]) -> int:
    """``python -m vecmem.stores._compact FOLDER LOCK_TIMEOUT``: compact unless another process
    is; prints the report as JSON (``null`` when another process was compacting)."""
    with contextlib.suppress(OSError):
        os.nice(5)  # below the store's own writes and queries
    report = compact(Path(argv[0]), lock_timeout=float(argv[1]), wait=False)
    print(json.dumps(None if report is None else report.__dict__), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
