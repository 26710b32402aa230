"""The embedded default: one folder, no server, only the base install.

Layout of the folder::

    store.sqlite    chunks (text, metadata, ids), the recorded embedding space, a change log,
                    a CRC-32 per committed range of vector rows
    vectors.f32     float32 rows, one per slot (a slot is never reused), see
                    :mod:`vecmem.stores._vectorfile`; after compaction N the live rows are
                    packed into ``vectors.N.f32`` (the file ``meta`` names)
    ann.usearch     the HNSW graph (usearch) with ann.json, built beside the store by a child
                    process (see :mod:`vecmem.stores._graph`)
    write.lock      an flock that serialises writers across processes
    bm25.npz        a snapshot of the BM25 index, so a large store opens without tokenizing
                    every chunk again (a cache, checked before use: :mod:`vecmem.stores._keywords`)

SQLite is the commit point: vectors are written at their own offset past the committed end
first, then one SQLite transaction records the rows, their checksums and the log. A failed or
killed write leaves the store exactly as it was (bytes past the committed end are never read,
and are overwritten or truncated later). Every load checks the checksums of the rows it reads,
so damaged vectors are refused with :class:`~vecmem.errors.IntegrityError`, never served;
:meth:`EmbeddedStore.repair` (``VectorMemory.repair()``, ``vecmem repair PATH``) re-embeds the
chunks concerned. A full disk raises :class:`~vecmem.errors.StorageFullError`. Readers in other
processes see a commit on their next call: ``PRAGMA data_version`` tells them to replay the log.

Deleted and overwritten chunks leave dead rows and the change log grows with every write: a
compaction (:mod:`vecmem.stores._compact`) packs the live rows into a new file, renumbers the
slots and empties the log, online and crash-safe. It starts by itself in a child process when
dead rows pass ``compact_at`` (30%) of the rows, and runs at once with :meth:`EmbeddedStore.compact`,
``VectorMemory.compact()`` or ``vecmem compact PATH``.

Vectors memory-mapped. The process does not copy the vectors: ``self._vectors`` is a
read-only map of the vector file over exactly the committed rows ``[0, next_slot)`` as last read
from the database, replaced by a longer map when the committed end grows and by a map of the new
file when a compaction switches files. Integrity is kept as before: a load reads every range
(in blocks it does not keep) and checks its CRC before its rows are used, and so does a replay
for the rows it brings in (and for rows repair() rewrote). A map never reaches past the
committed end, so no process can truncate bytes under it (a read there would raise SIGBUS):
only bytes past the committed end are ever truncated (a failed write's, by the writer or the
next open), the committed end of a file never shrinks (slots are not reused; a compaction
writes a new file and the database names it), and a file a compaction unlinks stays readable
through the maps that hold it (they are dropped at the next call, which loads the new
generation). repair() rewrites damaged rows in place: a map shows the new bytes at once, and
their new checksums are checked when the 'fix' entries are replayed. What this gives up: rows
damaged on disk after they were checked (a disk fault, another program's write) are served as
they are until the next load checks them; a file cut short by another program faults.

Chunks read on demand. Above ``memory_rows`` live chunks (50,000; below it they are held in
memory too, as a hit then costs no read) the process keeps, per slot, only what search needs: the chunk id (for
ties and for deletes by filter), the live mask, BM25 and the filter columns built so far. The
chunks of the hits (and of ``get``, ``get_by_document`` through the ``chunks_document`` index,
``all_chunks``) are read from SQLite by slot when they are returned (~45 us for ten). A slot is
never reused within a generation, so the row at a slot is the chunk this process indexed there,
unless a commit since the read's sync deleted it or a compaction renumbered the slots: then the
row is missing or has another id, and the read syncs and runs again. A filter on a field not
used before builds its column from the rows' JSON in SQLite.

Search is exact (numpy) below ``ann_threshold`` live chunks. Above it the HNSW graph serves the
rows it holds and the rows written since (the tail, from the graph's ``upto`` slot on) are
scanned exactly, so a row is searchable as soon as its write returns. Writes never touch the
graph: when the tail grows past an eighth of the graph (or the threshold is crossed), a child
process extends the saved graph from the committed rows and readers map the new file when it
lands (:mod:`vecmem.stores._graph`); :meth:`EmbeddedStore.flush` brings it up to date and waits.
Rows deleted since the graph was built are filtered out of its answers. A filtered search runs
exactly over the matching rows when they are few, and otherwise asks HNSW for more and more
candidates, falling back to an exact scan, so it returns ``k`` hits whenever ``k`` chunks match.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import mmap
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from vecmem._matvec import matvec
from vecmem._sqlite import sql_error as _sql_error
from vecmem.bm25 import BM25Index, _Grow
from vecmem.errors import (
    BackendError,
    ConfigurationError,
    IntegrityError,
    StorageFullError,
    StoreLockedError,
    VecmemError,
)
from vecmem.filters import Filter
from vecmem.fusion import Fusion
from vecmem.stores import _compact, _graph, _keywords
from vecmem.stores._compact import COMPACT_AT, COMPACT_MIN_DEAD, CompactReport
from vecmem.stores._vectorfile import Range, VectorFile, crc, is_full, spans
from vecmem.stores.base import Capabilities, validate_vectors
from vecmem.stores.memory import MemoryStore, _best, _own
from vecmem.tokenize import get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Hit, Scored

log = logging.getLogger("vecmem")

FORMAT = 3
"""1: no checksums (vecmem before issue 13; read after a check, see :meth:`EmbeddedStore.connect`).
2: a CRC-32 per committed range of vector rows (table ``ranges``).
3: compacted at least once: the vector file is the one ``meta`` names (``vectors``), slots were
renumbered (``generation``); see :mod:`vecmem.stores._compact`. A store is written as format 2
until its first compaction, so older vecmem versions read it until then."""
GRAPH_TAIL = 8
"""A graph build starts when the rows written since the last one exceed 1/GRAPH_TAIL of it."""
COMPACT_RETRY_S = 300
"""Seconds after starting a compaction beside before another may start (one that fails, say
on a full disk, is not retried on every write)."""
WAL_CHECKPOINT_PAGES = 8192
"""SQLite moves the WAL into the database (and fsyncs both) once it holds this many pages (32 MiB
of 4 KiB pages; SQLite's default is 1,000). A checkpoint rewrites every page the writes since
touched, and chunk ids spread index updates over many pages, so rarer checkpoints write less:
30k chunks added in writes of 256 made 11 fdatasyncs and 14.3k page writes against 29 and 18.7k
(strace), 2.2 s CPU against 2.6. The WAL still goes back to ``journal_size_limit`` after."""
MEMORY_ROWS = 50_000
"""Up to this many live chunks the embedded store holds the rows in memory too (about 1 KB a
chunk). Reading ten rows from SQLite costs ~60 us, ~150 us after a vector scan has flushed
the CPU caches: on SciFact (5k) that made hybrid p50 0.84 ms against 0.69 ms (issue 20 measures
it against a hand-written floor); at 1M chunks holding them took ~1 GB."""
GATHER_BYTES = 256 << 20
"""Above this many bytes of vectors, HNSW candidates are re-scored from rows read with
``pread``, not through the map (:meth:`VectorFile.gather`): at 1M rows, 400 searches through
the map left 1.2 GiB of the vector file resident in the process."""
BUILD_RETRY_S = 30
"""Seconds after a failed graph build before another starts (a crashing build is not retried
on every write)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    slot INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_document ON chunks(document_id);
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL,
                                slot INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ranges (start INTEGER PRIMARY KEY, stop INTEGER NOT NULL,
                                   crc INTEGER NOT NULL);
"""
# log ops: 'add' a row, 'del' a row, 'fix' a row's vector rewritten by repair() (reload it)


def _fault(point: str) -> None:
    """Fault-injection hook, a no-op: the fault suite (tests/test_faults.py) replaces it in a
    child process to kill it at ``point`` of a write: "vectors" (rows written, nothing
    committed), "commit" (just before COMMIT), "committed", "build-started" (a graph build
    just started beside). The build process has its own
    (:data:`vecmem.stores._graph.FAULT_ENV`)."""


@dataclass(frozen=True)
class RepairReport:
    """What :meth:`EmbeddedStore.repair` found and did."""

    rows: int
    """Committed vector rows checked."""
    damaged_ranges: int
    """Checksum ranges whose bytes were missing or wrong (all of them for an unverifiable
    FORMAT 1 store)."""
    reembedded: int
    """Live chunks whose vectors were embedded again and rewritten."""
    changed: int
    """Of those, how many had a stored vector that differed from the fresh embedding."""
    format_before: int


class EmbeddedStore(MemoryStore):
    """A persistent store in one folder; exact search while small, HNSW when large.

    ``compact_at``: the share of dead vector rows (deleted or overwritten chunks) past which
    the store compacts itself in a child process (default 0.3, ``None``: never; and never for
    fewer than ``compact_min_dead`` rows); :meth:`compact` runs a compaction at once.

    ``memory_rows``: up to this many live chunks (default 50,000) the rows (text, metadata) are
    held in memory as well, so a hit costs no SQLite read; above it they are read from SQLite
    on demand ("Chunks read on demand" in the module docstring); ``0``: always on demand.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory("./kb")     # doctest: +SKIP  (uses EmbeddedStore("./kb"))
    """

    name = "embedded"
    exact_filter_rows = 20_000
    """A filtered search scans the matching rows exactly when there are at most this many."""
    capabilities = Capabilities(
        persistent=True,
        native_keyword=True,
        native_hybrid=True,
        transactions=True,
        concurrent_writers=True,
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ann_threshold: int = 20_000,
        ann_connectivity: int = 16,
        ann_expansion_add: int = 128,
        ann_expansion_search: int = 96,
        ann_dtype: str = "f32",
        lock_timeout: float = 30.0,
        background: bool = True,
        compact_at: float | None = COMPACT_AT,
        compact_min_dead: int = COMPACT_MIN_DEAD,
        memory_rows: int = MEMORY_ROWS,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigurationError(f"{self.path} exists and is not a folder")
        self.ann_threshold = ann_threshold
        self._ann_params = (ann_connectivity, ann_expansion_add, ann_expansion_search)
        if ann_dtype not in _graph.DTYPES:
            raise ConfigurationError(
                f"ann_dtype must be one of {', '.join(_graph.DTYPES)}, got {ann_dtype!r}"
            )
        self.ann_dtype = ann_dtype  # the graph's copy of the vectors (re-scored in float32)
        self.lock_timeout = lock_timeout
        self.background = background  # build the graph beside as rows arrive (else: flush())
        if compact_at is not None and not 0 < compact_at < 1:
            raise ConfigurationError(
                f"compact_at must be between 0 and 1 or None, got {compact_at}"
            )
        self.compact_at = compact_at  # compact beside when this share of the rows is dead
        self.compact_min_dead = compact_min_dead
        self.memory_rows = memory_rows  # up to this many live chunks, rows are held in memory
        self._held = False  # rows held in memory (decided at each full load; dropped past it)
        self._compactor: subprocess.Popen[bytes] | None = None
        self._compact_retry_at = 0.0
        self._generation = 0  # bumped by each compaction (slots renumbered: load again)
        self._db: sqlite3.Connection | None = None
        self._vf: VectorFile | None = None
        self._loaded = False
        self._seq = 0
        self._epoch = 0  # bumped by repair(): a graph snapshot of an older epoch is not loaded
        self._data_version = -1
        self._ann: Any = None  # a read-only map of the saved graph
        self._ann_upto = 0  # the graph holds rows below this slot; the rest are the tail
        self._committed = 0  # next_slot as last read from the database
        self._ann_seen: tuple[int, int, int] | None = None  # ann.json's stat when last read
        self._ann_dead = 0  # removed nodes the saved graph still holds (ann.json's "dead")
        self._builder: subprocess.Popen[bytes] | None = None
        self._retry_at = 0.0  # after a failed build, no other starts before this
        self._closed = False
        self._locked = 0  # depth of _write_lock() held by this object
        self._json_sql: bool | None = None  # SQLite has JSON functions (looked at once)
        self._snapshot_at: tuple[int, int] | None = None  # (generation, seq) of the saved BM25

    # ----------------------------------------------------------------- files
    @property
    def _file(self) -> Path:
        return self.path / "store.sqlite"

    @property
    def _hint(self) -> str:
        return (
            f"Run `vecmem repair {self.path}` (or VectorMemory({str(self.path)!r}).repair()) "
            "to re-embed the chunks concerned."
        )

    @contextmanager
    def _sql(self, what: str) -> Iterator[None]:
        """Turn SQLite errors into vecmem's (disk full, damaged file, locked, other)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _sql_error(exc, self._file, what) from exc

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigurationError("the store is closed")
        if self._db is None:
            with self._lock, self._sql("opening"):
                if self._db is None:
                    try:
                        self.path.mkdir(parents=True, exist_ok=True)
                    except OSError as exc:
                        raise _os_error(exc, f"creating {self.path}") from exc
                    db = sqlite3.connect(
                        self._file,
                        timeout=self.lock_timeout,
                        check_same_thread=False,
                        isolation_level=None,
                    )
                    try:
                        self._setup(db)
                    except BaseException:
                        db.close()
                        raise
                    self._db = db
        return self._db

    def _setup(self, db: sqlite3.Connection) -> None:
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            # A new store: processes that open it at once take turns (the switch to WAL can
            # fail with "database is locked" without waiting for the busy timeout).
            with self._write_lock():
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
        db.execute("PRAGMA synchronous=NORMAL")
        # the WAL file is cut back to this after a checkpoint (else it keeps its largest size:
        # a compaction's VACUUM writes the whole database through it)
        db.execute(f"PRAGMA journal_size_limit={_compact.WAL_LIMIT}")
        db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        if (
            db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'ranges'").fetchone()[0]
            == 0
        ):
            with self._write_lock():
                db.executescript(_SCHEMA)

    def stored_space(self) -> EmbeddingSpace | None:
        if self.space is not None:
            return self.space
        if not self._file.exists():
            return None
        with self._sql("reading the embedding space from"):
            row = self._conn().execute("SELECT value FROM meta WHERE key = 'space'").fetchone()
        return self._space_of(row[0]) if row else None

    def _space_of(self, text: str) -> EmbeddingSpace:
        try:
            return EmbeddingSpace.from_json(text)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise IntegrityError(
                f"{self._file}: the recorded embedding space is not valid ({exc})"
            ) from exc

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        """Open the store with ``space`` (recorded on first use, checked later). A store of
        FORMAT 1 (no checksums) is upgraded when its vector file has exactly the committed
        rows (vecmem < FORMAT 2 appended every write, so only bytes a failed write left can
        have shifted rows, and then the file is longer); otherwise :class:`IntegrityError`
        says to run :meth:`repair`. Bytes past the committed rows are truncated."""
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            db = self._conn()
            with self._write_lock(), self._sql("opening"):
                row = db.execute("SELECT value FROM meta WHERE key = 'space'").fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO meta VALUES ('space', ?), ('format', ?)",
                        (space.to_json(), "2"),
                    )
                    stored = space
                else:
                    stored = self._space_of(row[0])
                    stored.check_compatible(space, where=f"store at {self.path}")
                vf = VectorFile(self._vector_path(db), dim=stored.dim, hint=self._hint)
                try:
                    if self._format(db) < 2:
                        self._upgrade(db, vf)
                    vf.truncate(_next_slot(db))
                except BaseException:
                    vf.close()
                    raise
            self._vf = vf
            super().connect(stored)
            try:
                self._sync(force=True)
            except BaseException:
                self.space = None  # not connected: a later call tries again
                self._reset()
                self._loaded, self._seq = False, 0
                raise
            return stored

    def _vector_path(self, db: sqlite3.Connection) -> Path:
        """The vector file the database names (``vectors.f32`` until a compaction)."""
        row = db.execute("SELECT value FROM meta WHERE key = 'vectors'").fetchone()
        return self.path / (row[0] if row else "vectors.f32")

    def _format(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
        try:
            fmt = int(row[0]) if row else 1
        except ValueError as exc:
            raise IntegrityError(f"{self._file}: format {row[0]!r} is not a number") from exc
        if fmt > FORMAT:
            raise ConfigurationError(
                f"the store at {self.path} has format {fmt}, written by a newer vecmem than "
                f"this one (format {FORMAT}): upgrade vecmem"
            )
        return fmt

    def _upgrade(self, db: sqlite3.Connection, vf: VectorFile) -> None:
        """Format 1 -> 2 when the rows can be shown intact (see :meth:`connect`)."""
        rows = _next_slot(db)
        if vf.size() != rows * vf.row:
            raise IntegrityError(
                f"{vf.path} holds {vf.size()} bytes where its {rows} committed rows take "
                f"{rows * vf.row}: it was written by a vecmem without checksums, where a failed "
                f"or killed write shifted the vectors written after it (vector search would "
                f"return wrong documents). {self._hint}"
            )
        records = _checksums(vf, 0, rows)
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM ranges")
            db.executemany("INSERT INTO ranges VALUES (?, ?, ?)", records)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', '2')")
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        """The cross-process write lock (re-entrant within this object; hold ``self._lock``)."""
        if self._locked:
            self._locked += 1
            try:
                yield
            finally:
                self._locked -= 1
            return
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fh = open(self.path / "write.lock", "a")
        except OSError as exc:
            raise _os_error(exc, f"opening {self.path / 'write.lock'}") from exc
        with fh:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreLockedError(
                            f"another writer has held {self.path / 'write.lock'} for "
                            f"{self.lock_timeout}s"
                        ) from None
                    time.sleep(0.01)
            self._locked = 1
            try:
                yield
            finally:
                self._locked = 0
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ----------------------------------------------------------------- sync
    def _sync(self, force: bool = False) -> None:
        """Replay commits made by other connections since we last looked."""
        db = self._conn()
        try:  # (not self._sql(): this runs before every read, a try costs nothing)
            version = db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version and not force:
                return
            # one snapshot: a commit landing between two reads is seen by neither
            for attempt in range(8):
                db.execute("BEGIN")
                try:
                    self._replay(db)
                    break
                except FileNotFoundError as exc:  # compacted again since our snapshot: look again
                    if attempt == 7:
                        raise BackendError(f"{self.path}: {exc}") from exc
                finally:
                    _rollback(db)
        except sqlite3.Error as exc:
            raise _sql_error(exc, self._file, "reading") from exc
        self._data_version = version

    def _replay(self, db: sqlite3.Connection) -> None:
        generation = _meta_int(db, "generation")
        if self._loaded and generation != self._generation:
            self._renumbered(db)  # a compaction renumbered the slots and emptied the log
        elif not self._loaded:
            self._open_vectors(db)  # (a compaction may have switched files since connect)
        self._committed = _next_slot(db)
        if not self._loaded:  # first load: read the table, not the whole log
            self._generation = generation
            self._seq = db.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]
            self._epoch = _meta_int(db, "epoch")
            ranges = self._ranges(db)
            live = db.execute("SELECT count(*) FROM chunks").fetchone()[0]
            self._held = live <= self.memory_rows
            if not self._held and self._restore(db, ranges):  # BM25 snapshot, the log since
                self._loaded = True
                self._replay_log(db)
                return
            cols = self._load_cols(db)
            self._load(ranges, _rows(db.execute(f"SELECT {cols} FROM chunks ORDER BY slot")))
            self._loaded = True
            return
        self._replay_log(db)

    def _replay_log(self, db: sqlite3.Connection) -> None:
        """Apply the log entries after ``self._seq`` (within the caller's snapshot)."""
        rows = db.execute(
            "SELECT seq, op, slot FROM log WHERE seq > ? ORDER BY seq", (self._seq,)
        ).fetchall()
        if not rows:
            return
        self._seq = rows[-1][0]
        dead = {s for _, op, s in rows if op == "del"}
        added = sorted({s for _, op, s in rows if op == "add"} - dead)
        # rows added and deleted since we last looked were never loaded here
        ids = self._ids
        gone = [s for s in dead if s < len(ids) and ids[s] is not None]
        self._drop_slots(gone)  # the graph keeps them; its answers are filtered by _live
        fixed = sorted(
            s
            for _, op, s in rows
            if op == "fix" and s not in dead and s < len(ids) and ids[s] is not None
        )
        if fixed:  # rows repair() rewrote: new vectors, same chunks
            self._epoch = _meta_int(db, "epoch")
            self._ann, self._ann_upto, self._ann_seen = None, 0, None  # of the old vectors
            self._refresh(db, fixed)
        if not added:
            return

        cols = self._load_cols(db)

        def pieces() -> Iterator[tuple[Any, ...]]:
            for i in range(0, len(added), 5000):
                part = added[i : i + 5000]
                yield from db.execute(
                    f"SELECT {cols} FROM chunks WHERE slot IN ({','.join('?' * len(part))}) "
                    "ORDER BY slot",
                    part,
                )

        self._load(_covering(db, added), pieces())

    def _restore(self, db: sqlite3.Connection, ranges: Sequence[Range]) -> bool:
        """First load from the BM25 snapshot beside the store (:mod:`vecmem.stores._keywords`)
        when it is of this generation and its ids are the table's (but for rows the log
        changed since its ``seq``, replayed after); the vectors are checked as a full load
        checks them. ``False``: no usable snapshot, load the table."""
        space = self._require_space()
        snap = _keywords.load(
            self.path,
            generation=self._generation,
            tokenizer=space.tokenizer,
            params=space.keyword_params(),
        )
        if snap is None:
            return False
        bm25, slots, ids, used, seq = snap
        if seq > self._seq:
            return False
        touched = {s for (s,) in db.execute("SELECT slot FROM log WHERE seq > ?", (seq,))}
        held = dict(zip(slots.tolist(), ids))
        cols = self._load_cols(db)  # (slot, id, text, ok, metadata): the text is not used
        cols = cols.replace("text, ", "NULL, ", 1)
        file, matched = self._file, 0
        for slot, cid, _, good, meta in _rows(
            db.execute(f"SELECT {cols} FROM chunks ORDER BY slot")
        ):
            if good != 1:
                _metadata(meta, cid, file)  # raises, as a full load does
            if slot in touched:
                continue
            if held.get(slot) != cid:
                log.info("vecmem: the BM25 snapshot of %s is not of its rows", self.path)
                return False
            matched += 1
        if matched != sum(1 for s in held if s not in touched):
            log.info("vecmem: the BM25 snapshot of %s is not of its rows", self.path)
            return False
        if self._vf is None:
            raise ConfigurationError("the store is used before connect(space)")
        for _ in self._vf.verified(ranges):  # every committed row's checksum, as a load
            pass
        self._bm25 = bm25
        self._next_slot = used
        self._ids = [None] * used
        for s, cid in held.items():
            self._ids[s] = cid
        self._slot_of = dict(zip(ids, slots.tolist()))
        self._live = _Grow(np.bool_)
        self._live.reserve(used)
        self._live.n = used
        self._live.a[slots] = True
        self._map_vectors()
        self._seq = seq
        self._snapshot_at = (self._generation, seq)
        return True

    def _save_keywords(self) -> None:
        """Save the BM25 snapshot when this store is large and its state is not the saved one
        (a cache: a failure is logged, never raised)."""
        if (
            not self._loaded
            or self._held
            or self._bm25 is None
            or self.space is None
            or len(self._slot_of) < _keywords.MIN_CHUNKS
            or self._snapshot_at == (self._generation, self._seq)
        ):
            return
        try:
            _keywords.save(
                self.path,
                self._bm25,
                self._ids,
                generation=self._generation,
                seq=self._seq,
                tokenizer=self.space.tokenizer,
            )
            self._snapshot_at = (self._generation, self._seq)
        except (OSError, ValueError, MemoryError) as exc:
            log.warning("vecmem: could not save the BM25 snapshot of %s: %s", self.path, exc)

    def _renumbered(self, db: sqlite3.Connection) -> None:
        """Drop what was loaded and switch to the vector file of the new generation (within
        the caller's snapshot); the caller loads everything again."""
        space = self._require_space()
        self._open_vectors(db)
        MemoryStore._reset(self)
        self.tokenizer = get_tokenizer(space.tokenizer)
        k1, b, eps = space.keyword_params()
        self._bm25 = BM25Index(k1=k1, b=b, epsilon=eps)
        self._loaded, self._seq = False, 0
        self._ann, self._ann_upto, self._ann_seen = None, 0, None

    def _open_vectors(self, db: sqlite3.Connection) -> None:
        """Open the vector file the database names, if it is not the one open."""
        path = self._vector_path(db)
        if self._vf is not None and self._vf.path == path:
            return
        vf = VectorFile(path, dim=self._require_space().dim, hint=self._hint, create=False)
        if self._vf is not None:
            self._vf.close()
        self._vf = vf
        self._vectors = np.zeros((0, vf.dim), np.float32)  # a map of the old file: let it go

    def _refresh(self, db: sqlite3.Connection, slots: list[int]) -> None:
        """Check the vectors of loaded rows that repair() rewrote in place (the map shows the
        new bytes already; their new checksums are verified before they are searched again)."""
        if self._vf is None:
            raise ConfigurationError("the store is used before connect(space)")
        for _ in self._vf.verified(_covering(db, slots)):
            pass

    def _put_vectors(self, slots: np.ndarray, vectors: np.ndarray, top: int) -> None:
        """The rows are read from the map of the vector file, not copied (``vectors`` are the
        same bytes, checked against their checksums by :meth:`_load` or just written): the
        map is extended to the committed end when it does not reach ``top``."""
        if top > len(self._vectors):
            self._map_vectors()
        if top > len(self._vectors):  # pragma: no cover  (rows are committed before applied)
            raise IntegrityError(f"{self.path}: row {top - 1} is past the committed rows")

    def _map_vectors(self) -> None:
        """Map the committed rows ``[0, self._committed)`` of the open vector file, read-only
        (see "Vectors memory-mapped" in the module docstring: never a byte past that end)."""
        vf, rows = self._vf, self._committed
        if vf is None:
            raise ConfigurationError("the store is used before connect(space)")
        if rows == 0:
            self._vectors = np.zeros((0, vf.dim), np.float32)
            return
        if vf.size() < rows * vf.row:  # (a map past the end would fault when read)
            raise IntegrityError(
                f"{vf.path} ends before row {rows} of its committed rows (it holds "
                f"{vf.size() // vf.row} rows); it was truncated. {self._hint}"
            )
        try:
            mm = mmap.mmap(vf.fd, rows * vf.row, mmap.MAP_SHARED, mmap.PROT_READ)
        except (OSError, ValueError) as exc:
            raise BackendError(f"mapping {vf.path} failed: {exc}") from exc
        if _MADV_RANDOM is not None:  # HNSW reads scattered rows: no read-ahead around them
            with contextlib.suppress(OSError):
                mm.madvise(_MADV_RANDOM)
        vectors = np.frombuffer(mm, np.float32).reshape(rows, vf.dim)
        vectors.flags.writeable = False
        self._vectors = vectors

    def _ranges(self, db: sqlite3.Connection) -> list[Range]:
        """Every range record, checked to tile the committed rows."""
        ranges = db.execute("SELECT start, stop, crc FROM ranges ORDER BY start").fetchall()
        top, end = 0, _next_slot(db)
        for start, stop, _ in ranges:
            if start != top or stop <= start:
                break
            top = stop
        if top != end or (ranges and ranges[-1][1] != end):
            raise IntegrityError(
                f"{self._file}: the checksum records do not cover rows {top}-{end - 1} of "
                f"{self.path / 'vectors.f32'} exactly. {self._hint}"
            )
        return ranges

    def _load_cols(self, db: sqlite3.Connection) -> str:
        """The columns :meth:`_load` reads: the whole row while rows are held in memory, else
        slot, id, text, whether the metadata is a JSON object (SQLite checks it, ~10x faster
        than parsing it here; ``NULL`` where SQLite was built without JSON), and the metadata
        itself only when filter columns need it."""
        if self._held:
            return _COLS
        if self._json_sql is None:
            try:
                db.execute("SELECT json_valid('{}')").fetchone()
                self._json_sql = True
            except sqlite3.OperationalError:  # pragma: no cover  (SQLite < 3.38 without json1)
                self._json_sql = False
        ok = (
            "CASE WHEN json_valid(metadata) THEN json_type(metadata) = 'object' ELSE 0 END"
            if self._json_sql
            else "NULL"
        )
        meta = "metadata" if self._columns or not self._json_sql else "NULL"
        return f"slot, id, text, {ok}, {meta}"

    def _load(self, ranges: Sequence[Range], rows: Iterable[tuple[Any, ...]]) -> None:
        """Apply committed ``rows`` (``_load_cols``, in slot order, each inside one of
        ``ranges``) to the in-memory index, with vectors read from ``ranges`` once their
        checksums match. Metadata that is not a JSON object is an :class:`IntegrityError`."""
        if self._vf is None:
            raise ConfigurationError("the store is used before connect(space)")
        it = iter(rows)
        pending = next(it, None)
        file = self._file  # (a Path built once: per chunk it took 12% of a load)
        for lo, block in self._vf.verified(ranges):
            hi = lo + len(block)
            found = []
            while pending is not None and pending[0] < hi:
                found.append(pending)
                pending = next(it, None)
            if not found:
                continue
            slots = np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
            if slots[0] < lo:
                break
            vectors = block[slots - lo]
            if len(found[0]) == 7:  # whole rows (held in memory)
                self._apply([_chunk(r, file) for r in found], vectors, [], slots=slots)
                continue
            for r in found:
                if r[3] != 1:
                    _metadata(r[4], r[1], file)  # raises (SQLite said so, or could not say)
            ids = [r[1] for r in found]
            slot_of = self._slot_of
            old = [slot_of[i] for i in ids if i in slot_of]
            if old:
                self._drop_slots(old)
            self._index(
                slots,
                ids,
                [r[2] for r in found],
                functools.partial(_metadatas, found, file),  # parsed only for filter columns
                vectors,
            )
        if pending is not None:
            raise IntegrityError(
                f"{self._file}: chunk {pending[1]!r} (row {pending[0]}) has no "
                f"checksum record for its vector. {self._hint}"
            )

    # ----------------------------------------------------------------- writes
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        v = self._validate_batch(chunks, vectors)
        self._write(list(chunks), v, list(delete_ids))

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        with self._lock:
            self._sync()
            before = set(self._slot_of.values())
            doomed: set[str] = set(ids or ())
            if filter is not None:
                doomed |= {
                    i
                    for i in (self._ids[s] for s in np.flatnonzero(self._mask(filter)).tolist())
                    if i is not None
                }
            if ids is None and filter is None:
                return super().delete()  # raises the usual error
            self._write(
                [],
                np.zeros((0, self._require_space().dim), np.float32),
                [i for i in doomed if i in self._slot_of],
            )
            return len(before - set(self._slot_of.values()))

    def _write(self, chunks: list[Chunk], vectors: np.ndarray, delete_ids: list[str]) -> None:
        db = self._conn()
        with self._lock, self._write_lock():
            self._sync()
            vf = self._vf  # (after the sync: a compaction may have switched files)
            if vf is None:
                raise ConfigurationError("the store is used before connect(space)")
            first = _next_slot(db)
            slots = np.arange(first, first + len(chunks), dtype=np.int64)
            replaced = [c.id for c in chunks] + delete_ids
            try:
                records = vf.write(first, vectors) if len(chunks) else []
                _fault("vectors")
                db.execute("BEGIN IMMEDIATE")
                dead: list[int] = []
                for i in range(0, len(replaced), 500):
                    part = replaced[i : i + 500]
                    dead += [
                        r[0]
                        for r in db.execute(
                            f"SELECT slot FROM chunks WHERE id IN ({','.join('?' * len(part))})",
                            part,
                        )
                    ]
                if dead:
                    db.executemany("DELETE FROM chunks WHERE slot = ?", [(s,) for s in dead])
                    db.executemany(
                        "INSERT INTO log (op, slot) VALUES ('del', ?)", [(s,) for s in dead]
                    )
                numbers = slots.tolist()
                db.executemany(
                    f"INSERT INTO chunks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            s,
                            c.id,
                            c.document_id,
                            c.position,
                            c.text,
                            _json(c.metadata),
                            c.content_hash,
                        )
                        for s, c in zip(numbers, chunks)
                    ],
                )
                db.executemany(
                    "INSERT INTO log (op, slot) VALUES ('add', ?)", [(s,) for s in numbers]
                )
                db.executemany("INSERT INTO ranges VALUES (?, ?, ?)", records)
                seq = db.execute("SELECT max(seq) FROM log").fetchone()[0] or 0
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('next_slot', ?)",
                    (str(first + len(chunks)),),
                )
                _fault("commit")
                db.execute("COMMIT")
            except BaseException as exc:
                _rollback(db)
                with contextlib.suppress(VecmemError):
                    vf.truncate(first)  # what this write put past the committed end
                if isinstance(exc, sqlite3.Error):
                    raise _sql_error(exc, self._file, "writing to") from exc
                raise
            _fault("committed")
            self._committed = first + len(chunks)  # (before _apply: it maps the new rows)
            self._drop_slots(dead)
            self._apply(chunks, vectors, [], slots=slots)
            self._seq = seq
            with self._sql("reading"):
                self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
        with self._lock:
            self._maybe_build()
            self._maybe_compact()

    # ----------------------------------------------------------------- compaction
    def dead_rows(self) -> int:
        """Vector rows no live chunk uses (deleted or overwritten chunks)."""
        with self._lock:
            self._sync()
            return max(self._committed, self._next_slot) - len(self._slot_of)

    def compact(self, *, vacuum: bool = True) -> CompactReport:
        """Reclaim dead vector rows and empty the change log now, online: searches and writes
        in this and other processes go on meanwhile (writes wait only for the final switch), and
        a kill at any point loses nothing (:mod:`vecmem.stores._compact`). Every process loads
        the store again on its next call; the HNSW graph is rebuilt beside it. ``vacuum``: give
        SQLite's freed pages back to the disk too.

        >>> EmbeddedStore("./kb").compact().rows_after                       # doctest: +SKIP
        5000
        """
        if self._closed:
            raise ConfigurationError("the store is closed")
        report = _compact.compact(self.path, lock_timeout=self.lock_timeout, vacuum=vacuum)
        if report is None:  # pragma: no cover  (wait=True always compacts)
            raise StoreLockedError(f"another process is compacting {self.path}")
        if self.space is not None:
            with self._lock:
                self._sync()
                self._maybe_build()
        return report

    def optimize(self) -> None:
        """Compact the store and bring the HNSW graph up to date (:class:`OptimizableStore`)."""
        self.compact()
        if self.space is not None:
            self.flush()

    def _maybe_compact(self) -> None:
        """Start a compaction beside (a child process) when dead rows passed ``compact_at`` of
        the rows (and ``compact_min_dead``). Hold ``self._lock``; returns at once."""
        if self._compactor is not None:
            if self._compactor.poll() is None:
                return
            self._compactor = None
        if self.compact_at is None or not self.background:
            return
        rows = max(self._committed, self._next_slot)
        dead = rows - len(self._slot_of)
        if dead < self.compact_min_dead or dead < self.compact_at * rows:
            return
        if time.monotonic() < self._compact_retry_at:
            return
        self._compact_retry_at = time.monotonic() + COMPACT_RETRY_S
        try:
            self._compactor = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vecmem.stores._compact",
                    str(self.path),
                    str(self.lock_timeout),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:
            log.warning("vecmem: cannot start a compaction beside %s (%s)", self.path, exc)

    # ----------------------------------------------------------------- ANN
    def _ef_for(self, size: int) -> int:
        """HNSW search width: the configured one up to 100k rows, growing with the square root
        of the size beyond (measured: recall@10 0.998 at 100k but 0.919 at 1M with a fixed 96)."""
        base = self._ann_params[2]
        return int(base * max(1.0, (size / 100_000) ** 0.5))

    def _graph_refresh(self) -> None:
        """Map the saved graph if it changed since we last looked (a build of ours or of another
        process finished). Cheap: one stat of ann.json. Hold ``self._lock``."""
        if self._builder is not None and self._builder.poll() is not None:
            if self._builder.returncode != 0:
                log.warning(
                    "vecmem: building the HNSW graph of %s failed (exit %s); the rows "
                    "it missed are searched exactly, the next build starts in %d s",
                    self.path,
                    self._builder.returncode,
                    BUILD_RETRY_S,
                )
                self._retry_at = time.monotonic() + BUILD_RETRY_S
            self._builder = None
        try:
            st = os.stat(self.path / "ann.json")
        except OSError:
            return
        seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen == self._ann_seen:
            return
        found = _graph.open_view(self.path, self._epoch, max(self._committed, self._next_slot))
        if found is None:
            return  # not for these rows yet (or torn): looked at again when it changes
        self._ann_seen = seen
        if found[1] >= self._ann_upto:
            self._ann, self._ann_upto = found
            meta = _graph.read_meta(self.path)
            self._ann_dead = meta["dead"] if meta else 0

    def _maybe_build(self) -> None:
        """Start a graph build in a child process when the tail outgrew an eighth of the graph
        (or the store crossed ``ann_threshold``). Hold ``self._lock``; returns at once."""
        if self._ann is None and self._builder is None and len(self._slot_of) < self.ann_threshold:
            return  # exact search: no graph to look for (saves a stat a query)
        self._graph_refresh()
        if (
            not self.background
            or self._builder is not None
            or len(self._slot_of) < self.ann_threshold
            or time.monotonic() < self._retry_at
        ):
            return
        tail = max(self._committed, self._next_slot) - self._ann_upto
        if tail > 0 and (self._ann is None or tail * GRAPH_TAIL >= len(self._ann)):
            self._spawn()
        elif self._ann is not None and self._ann_dead > _graph.DEAD_SHARE * len(self._ann):
            self._spawn()  # mostly tombstones (after a compaction): build it afresh

    def _spawn(self) -> None:
        conn, exp_add, _ = self._ann_params
        try:
            self._builder = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vecmem.stores._graph",
                    str(self.path),
                    str(self._require_space().dim),
                    str(conn),
                    str(exp_add),
                    self.ann_dtype,
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError as exc:  # no interpreter to start (an embedded Python): flush() builds
            log.warning(
                "vecmem: cannot start a graph build beside %s (%s); call flush() to "
                "build it in this process",
                self.path,
                exc,
            )
            self.background = False
            return
        _fault("build-started")

    def flush(self, timeout: float | None = None) -> None:
        """Bring the HNSW graph up to every committed row, and wait for it: a build under way
        is waited for (``timeout`` seconds at most), then any rows still missing are added in
        this process. Searches never need this (rows the graph does not hold yet are searched
        exactly). Below ``ann_threshold`` it does nothing."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                self._sync()
                self._graph_refresh()
                if len(self._slot_of) < self.ann_threshold or self._ann_upto >= max(
                    self._committed, self._next_slot
                ):
                    return
                builder = self._builder
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise StoreLockedError(
                    f"the HNSW graph of {self.path} was not brought up to date within {timeout}s"
                )
            if builder is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    builder.wait(left)
                continue
            conn, exp_add, _ = self._ann_params
            try:
                built = _graph.build(
                    self.path, self._require_space().dim, conn, exp_add, self.ann_dtype
                )
            except OSError as exc:
                raise _os_error(exc, f"saving the HNSW graph to {self.path}") from exc
            except RuntimeError as exc:  # usearch says only "Failed to serialize into stream"
                raise BackendError(f"saving the HNSW graph to {self.path} failed: {exc}") from exc
            if built is None:
                time.sleep(0.05)  # another process is building it

    # ----------------------------------------------------------------- reads
    def _read(self, read: Callable[[], _T], *, build: bool = False) -> _T:
        """``read()`` on the state of the latest commit: synced first, and again when a row it
        fetched changed since (:class:`_Stale`: another process committed in between)."""
        with self._lock:
            for attempt in range(_READ_TRIES):
                self._sync(force=attempt > 0)
                if build:
                    self._maybe_build()
                try:
                    return read()
                except _Stale:
                    continue
            raise BackendError(
                f"{self.path}: the store changed under every one of {_READ_TRIES} reads "
                "(other processes write to it without a pause)"
            )

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        return self._read(lambda: MemoryStore.query(self, vector, k=k, filter=filter), build=True)

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        return self._read(lambda: MemoryStore.keyword(self, text, k=k, filter=filter))

    def hybrid(
        self,
        vector: np.ndarray,
        text: str,
        *,
        k: int,
        candidates: int,
        fusion: Fusion,
        filter: Filter | None = None,
    ) -> list[Hit]:
        return self._read(
            lambda: MemoryStore.hybrid(
                self, vector, text, k=k, candidates=candidates, fusion=fusion, filter=filter
            ),
            build=True,
        )

    def _vector_top(
        self, q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """HNSW over the graph's rows and an exact scan of the tail, merged by exact
        similarity; exact over everything when the graph is missing or the filter selective."""
        ann, upto, n = self._ann, self._ann_upto, self._next_slot
        if ann is None or not len(ann):
            return super()._vector_top(q, k, mask)
        all_live = len(self._slot_of) == n
        allowed = mask if mask is not None else (None if all_live else self._live.view())
        matching = min(upto, n) if allowed is None else int(np.count_nonzero(allowed[:upto]))
        if mask is not None and matching <= max(4 * k, self.exact_filter_rows):
            return super()._vector_top(q, k, mask)  # exact over few rows
        want = min(matching, k)
        count = max(k, 32)
        if allowed is not None:  # enough candidates that ~4 * max(k, 32) of them match
            count = int(count * 4 * len(ann) / max(matching, 1))
        ef = self._ef_for(len(ann))
        if ann.expansion_search != ef:
            ann.expansion_search = ef
        while True:
            if count > 16 * max(k, 32) * 4:  # the filter is too selective for HNSW
                return super()._vector_top(q, k, mask)
            keys = np.asarray(ann.search(q, min(count, len(ann))).keys, dtype=np.int64)
            if upto > n:  # rows committed and deleted since, never loaded here
                keys = keys[keys < n]
            if allowed is not None:
                keys = keys[allowed[keys]]
            if len(keys) >= want or count >= len(ann):
                break
            count *= 4
        # the best max(k, 32) candidates re-scored exactly, best k kept: with ann_dtype="f16" the
        # graph's order is approximate (recall@10 at 100k: 0.996 re-scoring k, 0.9985 re-scoring 32)
        head = keys[: max(k, 32)]
        vf = self._vf
        if vf is None:
            raise ConfigurationError("the store is used before connect(space)")
        # exact similarities; a large store reads the candidates (VectorFile.gather: ~3.6 µs a
        # row here) instead of touching the map, which would make the file resident in the
        # process 64 KiB at a time (RSS); a small one reads the map (~0.1 µs a row)
        rows = vf.gather(head) if n * vf.row > GATHER_BYTES else self._vectors[head]
        sims = matvec(rows, q)
        if n > upto:  # the tail is contiguous rows: scanned in place, not gathered (at 1M rows
            # with a young graph the copy took 6 s of a first query)
            tail = np.arange(upto, n, dtype=np.int64)
            tail_sims = matvec(self._vectors[upto:n], q)
            if allowed is not None:
                keep = allowed[upto:n]
                tail, tail_sims = tail[keep], tail_sims[keep]
            head, sims = np.concatenate((head, tail)), np.concatenate((sims, tail_sims))
        return _best(head, sims, k)

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        return self._read(lambda: MemoryStore.get(self, ids))

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        with self._lock:
            self._sync()
            return super().get_vectors(ids)

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        return self._read(lambda: MemoryStore.get_by_document(self, document_ids))

    def count(self, filter: Filter | None = None) -> int:
        with self._lock:
            self._sync()
            return super().count(filter)

    def all_chunks(self) -> list[Chunk]:
        return self._read(lambda: MemoryStore.all_chunks(self))

    # -- the rows live in SQLite, read on demand (the module docstring: "Chunks read on demand")
    def _hold(self, slots: list[int], chunks: Sequence[Chunk]) -> Sequence[Chunk]:
        if self._held and len(self._slot_of) + len(chunks) > self.memory_rows:
            self._held = False  # grown past memory_rows: read rows on demand from now on
            self._chunks, self._by_doc = [], {}
        if self._held:
            return super()._hold(slots, chunks)
        # nothing kept; with filter columns built, their values must not alias the caller's
        return [_own(c) for c in chunks] if self._columns else chunks

    def _release(self, slots: list[int]) -> None:
        if self._held:
            super()._release(slots)

    def _fetch(self, slots: list[int]) -> list[Chunk]:
        if self._held:
            return super()._fetch(slots)
        return self._read_rows(slots)

    def _read_rows(self, slots: list[int]) -> list[Chunk]:
        """The chunks of ``slots`` from SQLite (one statement a few hundred slots). A slot is
        never reused within a generation, so a row there is the chunk this process indexed,
        unless a commit since our sync deleted it or a compaction renumbered the slots: a
        missing row or another id raises :class:`_Stale` (the read syncs and runs again)."""
        if not slots:
            return []
        db, ids, file = self._conn(), self._ids, self._file
        found: dict[int, tuple[Any, ...]] = {}
        try:
            for i in range(0, len(slots), _FETCH):
                part = slots[i : i + _FETCH]
                for row in db.execute(
                    f"SELECT {_COLS} FROM chunks WHERE slot IN ({','.join('?' * len(part))})",
                    part,
                ):
                    found[row[0]] = row
        except sqlite3.Error as exc:
            raise _sql_error(exc, self._file, "reading") from exc
        out = []
        for s in slots:
            row = found.get(s)
            if row is None or row[1] != ids[s]:
                raise _Stale
            out.append(_chunk(row, file))
        return out

    def _field_values(self, field: str) -> tuple[list[int], list[Any]]:
        if self._held:
            return super()._field_values(field)
        return self._stored_values(field)

    def _stored_values(self, field: str) -> tuple[list[int], list[Any]]:
        """Metadata ``field`` of every live slot, parsed from the rows' JSON in SQLite (rows
        this process has not loaded yet are skipped: their values come with their load).
        A key that JSON writes as itself is looked for as text first (rows without it: missing)."""
        db, ids, missing = self._conn(), self._ids, self._missing
        key = json.dumps(field)
        plain = key.isascii() and key == json.dumps(field, ensure_ascii=False)
        where = " WHERE instr(metadata, ?) > 0" if plain else ""
        slots: list[int] = []
        values: list[Any] = []
        file = self._file
        try:
            cursor = db.execute(
                f"SELECT slot, id, metadata FROM chunks{where} ORDER BY slot",
                (key,) if plain else (),
            )
            for slot, cid, meta in _rows(cursor):
                if slot < len(ids) and ids[slot] == cid:
                    value = _metadata(meta, cid, file).get(field, missing)
                    if value is not missing:
                        slots.append(slot)
                        values.append(value)
        except sqlite3.Error as exc:
            raise _sql_error(exc, self._file, "reading") from exc
        return slots, values

    def _document_slots(self, document_ids: Sequence[str]) -> list[int]:
        """Through the ``chunks_document`` index; a row this process has not loaded (or no
        longer holds) raises :class:`_Stale`."""
        if self._held:
            return super()._document_slots(document_ids)
        db, slot_of = self._conn(), self._slot_of
        out: list[int] = []
        try:
            for d in document_ids:
                rows = db.execute(
                    "SELECT id, slot FROM chunks WHERE document_id = ? ORDER BY id", (d,)
                ).fetchall()
                for cid, slot in rows:
                    if slot_of.get(cid) != slot:
                        raise _Stale
                    out.append(slot)
        except sqlite3.Error as exc:
            raise _sql_error(exc, self._file, "reading") from exc
        return out

    def close(self) -> None:
        """Close the files, saving the BM25 snapshot of a large store whose rows changed since it
        was saved (:mod:`vecmem.stores._keywords`). A graph build under way goes on in its own
        process and saves its graph for the next open (nothing here waits for it)."""
        with self._lock:
            if self._closed:
                return
            self._save_keywords()
            self._closed = True
            self._ann = None
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
            if self._vf is not None:
                self._vf.close()

    # ----------------------------------------------------------------- repair
    def repair(
        self,
        space: EmbeddingSpace,
        embed: Callable[[list[str]], np.ndarray],
        *,
        batch: int = 256,
    ) -> RepairReport:
        """Check every committed vector row against its checksum and embed the live chunks
        of damaged ranges again with ``embed`` (the facade passes its embedder: use
        :meth:`vecmem.VectorMemory.repair`). A FORMAT 1 store whose vector file does not hold
        exactly its committed rows has every chunk embedded again (nothing there says which
        rows moved). The rewrite is recorded in one transaction with new checksums; other
        processes reload the rows concerned on their next call; the saved graph is dropped.

        >>> store = EmbeddedStore("./kb")                                     # doctest: +SKIP
        >>> store.repair(space, HashingEmbedder(64).embed).damaged_ranges     # doctest: +SKIP
        0
        """
        with self._lock:
            db = self._conn()
            with self._write_lock(), self._sql("repairing"):
                row = db.execute("SELECT value FROM meta WHERE key = 'space'").fetchone()
                if row is None:
                    return RepairReport(0, 0, 0, 0, 2)
                stored = self._space_of(row[0])
                stored.check_compatible(space, where=f"store at {self.path}")
                path = self._vector_path(db)  # (ours may be of before a compaction)
                own = self._vf is None or self._vf.path != path
                vf = self._vf
                if vf is None or own:
                    vf = VectorFile(path, dim=stored.dim, hint=self._hint)
                try:
                    report = self._repair(db, vf, stored, embed, batch)
                finally:
                    if own:
                        vf.close()
                if report.damaged_ranges:
                    for name in ("ann.usearch", "ann.json"):
                        with contextlib.suppress(FileNotFoundError):
                            (self.path / name).unlink()
                    self._ann, self._ann_upto, self._ann_seen = None, 0, None
            if self.space is not None:
                self._sync()
            return report

    def _repair(
        self,
        db: sqlite3.Connection,
        vf: VectorFile,
        space: EmbeddingSpace,
        embed: Callable[[list[str]], np.ndarray],
        batch: int,
    ) -> RepairReport:
        fmt, rows = self._format(db), _next_slot(db)
        whole = [(a, b, 0) for a, b in spans(0, rows, vf.dim)]
        rebuild = True  # the range records are written anew
        if fmt < 2 and vf.size() == rows * vf.row:
            ranges, bad = _checksums(vf, 0, rows), []
        elif fmt < 2:
            ranges, bad = whole, whole
        else:
            try:
                ranges = self._ranges(db)
                bad, rebuild = vf.damaged(ranges), False
            except IntegrityError:  # records that do not tile the rows: redo everything
                ranges, bad = whole, whole
        fresh: list[Range] = []
        fixed: list[int] = []
        changed = 0
        for start, stop, _ in bad:
            block = vf.read(start, stop)
            if block is None:  # past the end of a short file: dead rows stay zero
                block = np.zeros((stop - start, vf.dim), np.float32)
                have = max(0, min(stop, vf.size() // vf.row) - start)
                if have:
                    block[:have] = vf.read(start, start + have)
            live = db.execute(
                "SELECT slot, text FROM chunks WHERE slot >= ? AND slot < ? ORDER BY slot",
                (start, stop),
            ).fetchall()
            for i in range(0, len(live), batch):
                part = live[i : i + batch]
                idx = np.array([s - start for s, _ in part], dtype=np.int64)
                try:
                    vectors = validate_vectors(embed([t for _, t in part]), len(part), space.dim)
                except VecmemError as exc:
                    raise BackendError(
                        f"repair of {self.path}: the embedder's output was refused: {exc}"
                    ) from exc
                changed += int(np.sum(np.any(block[idx] != vectors, axis=1)))
                block[idx] = vectors
                fixed += [s for s, _ in part]
            vf.pwrite(start, block)
            fresh.append((start, stop, crc(block)))
            _fault("repair")
        if not bad and fmt >= 2:
            vf.truncate(rows)
            return RepairReport(rows, 0, 0, 0, fmt)
        db.execute("BEGIN IMMEDIATE")
        try:
            if rebuild:
                db.execute("DELETE FROM ranges")
                db.executemany(
                    "INSERT INTO ranges VALUES (?, ?, ?)",
                    [r for r in ranges if r not in set(bad)] + fresh,
                )
            else:
                db.executemany("DELETE FROM ranges WHERE start = ?", [(r[0],) for r in bad])
                db.executemany("INSERT INTO ranges VALUES (?, ?, ?)", fresh)
            db.executemany("INSERT INTO log (op, slot) VALUES ('fix', ?)", [(s,) for s in fixed])
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (str(max(fmt, 2)),))
            if bad:
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('epoch', ?)",
                    (str(_meta_int(db, "epoch") + 1),),
                )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        vf.truncate(rows)
        log.warning(
            "vecmem: repaired %s: %d of %d vector ranges damaged, %d chunks embedded "
            "again (%d differed)",
            self.path,
            len(bad),
            len(ranges),
            len(fixed),
            changed,
        )
        return RepairReport(rows, len(bad), len(fixed), changed, fmt)


_COLS = "slot, id, document_id, position, text, metadata, content_hash"
_FETCH = 500
"""Slots fetched by one statement (SQLite allows 32,766 parameters since 3.32, 999 before)."""
_READ_TRIES = 8
_T = TypeVar("_T")
_MADV_RANDOM = getattr(mmap, "MADV_RANDOM", None)


_ENCODER = json.JSONEncoder(ensure_ascii=False)  # json.dumps builds one a call for this option


def _json(metadata: Any) -> str:
    """``json.dumps(dict(metadata), ensure_ascii=False)``."""
    return _ENCODER.encode(metadata if type(metadata) is dict else dict(metadata))


def _metadata(meta: Any, cid: str, file: Path | str) -> dict[str, Any]:
    try:
        metadata = json.loads(meta)
    except (TypeError, ValueError) as exc:
        raise IntegrityError(f"{file}: the metadata of chunk {cid!r} is not JSON ({exc})") from exc
    if not isinstance(metadata, dict):
        raise IntegrityError(f"{file}: the metadata of chunk {cid!r} is not a JSON object")
    return metadata


def _metadatas(rows: Sequence[tuple[Any, ...]], file: Path | str) -> list[dict[str, Any]]:
    return [_metadata(r[4], r[1], file) for r in rows]


def _chunk(row: tuple[Any, ...], file: Path | str = "store.sqlite") -> Chunk:
    """A stored row as a :class:`Chunk` (built without the frozen dataclass's ``__init__``, as
    :func:`vecmem.stores.memory._own` does: a search builds one per hit)."""
    _, cid, doc, pos, text, meta, h = row
    chunk = object.__new__(Chunk)
    chunk.__dict__.update(
        id=cid,
        document_id=doc,
        position=pos,
        text=text,
        metadata=_metadata(meta, cid, file),
        content_hash=h,
    )
    return chunk


class _Stale(Exception):
    """A row fetched for a read is not the one this process indexed (a commit landed since
    its sync): the read syncs and runs again (:meth:`EmbeddedStore._read`)."""


def _rows(cursor: sqlite3.Cursor) -> Iterator[tuple[Any, ...]]:
    while True:
        part = cursor.fetchmany(20_000)
        if not part:
            return
        yield from part


def _covering(db: sqlite3.Connection, slots: list[int]) -> list[Range]:
    """The range records holding any of ``slots`` (sorted)."""
    ranges = db.execute(
        "SELECT start, stop, crc FROM ranges WHERE stop > ? AND start <= ? ORDER BY start",
        (slots[0], slots[-1]),
    ).fetchall()
    wanted = np.asarray(slots, dtype=np.int64)
    at = np.searchsorted(wanted, [r[0] for r in ranges])
    return [r for r, i in zip(ranges, at) if i < len(wanted) and wanted[i] < r[1]]


def _checksums(vf: VectorFile, start: int, stop: int) -> list[Range]:
    """Range records for rows ``[start, stop)`` as they are in the file."""
    out = []
    for a, b in spans(start, stop, vf.dim):
        rows = vf.read(a, b)
        if rows is None:
            raise IntegrityError(f"{vf.path} ends before row {b}. {vf.hint}")
        out.append((a, b, crc(rows)))
    return out


def _meta_int(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def _next_slot(db: sqlite3.Connection) -> int:
    """The first never-used slot (slots are never reused, even after deletes)."""
    return _meta_int(db, "next_slot")


def _rollback(db: sqlite3.Connection) -> None:
    """Roll back if a transaction is open (after SQLITE_FULL SQLite may have rolled back
    already: a plain ROLLBACK would then raise "no transaction is active" over the cause)."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def _os_error(exc: OSError, what: str) -> VecmemError:
    if is_full(exc):
        return StorageFullError(f"{what} failed: the disk is full ({exc})")
    return BackendError(f"{what} failed: {exc}")
