"""The embedded default: one folder, no server, only the base install.

Layout of the folder::

    store.sqlite    chunks (text, metadata, ids), the recorded embedding space, a change log
    vectors.f32     float32 rows, one per slot (append-only; a slot is never reused)
    ann.usearch     the HNSW graph (usearch), saved on close; rebuilt or caught up on open
    write.lock      an flock that serialises writers across processes

SQLite is the commit point: vectors are written past the committed end first, then one SQLite
transaction records the rows and the log. A failed write leaves the store exactly as it was
(stray vector bytes past the end are ignored and overwritten later). Readers in other processes
see a commit on their next call: ``PRAGMA data_version`` tells them to replay the change log.

Search is exact (numpy) below ``ann_threshold`` live chunks and HNSW above it; the graph is built
by the write that crosses the threshold (or on first use after opening) and extended by every
later write. A filtered search
runs exactly over the matching rows when they are few, and otherwise asks HNSW for more and more
candidates, falling back to an exact scan, so it returns ``k`` hits whenever ``k`` chunks match.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from vecmem.errors import BackendError, ConfigurationError, StoreLockedError
from vecmem.filters import Filter
from vecmem.stores.base import Capabilities
from vecmem.stores.memory import MemoryStore, validate_query_vector
from vecmem.types import Chunk, EmbeddingSpace, Scored

FORMAT = 1
ANN_ADD_THREADS = 1
"""Threads usearch adds with. One: concurrent ``add`` leaves nodes no search reaches
(unum-cloud/USearch#735, open; measured here: with all cores 4 of 3,000 and 23 of 60,000 nodes
were not found even by their own vector, none with one thread). A build takes ~1.75x longer
(50k 384-d vectors on 2 cores: 13.2 s against 7.5 s)."""

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
"""


class EmbeddedStore(MemoryStore):
    """A persistent store in one folder; exact search while small, HNSW when large.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory("./kb")     # doctest: +SKIP  (uses EmbeddedStore("./kb"))
    """

    name = "embedded"
    exact_filter_rows = 20_000
    """A filtered search scans the matching rows exactly when there are at most this many."""
    capabilities = Capabilities(
        persistent=True, native_keyword=True, transactions=True, concurrent_writers=True
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ann_threshold: int = 20_000,
        ann_connectivity: int = 16,
        ann_expansion_add: int = 128,
        ann_expansion_search: int = 96,
        lock_timeout: float = 30.0,
    ) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigurationError(f"{self.path} exists and is not a folder")
        self.ann_threshold = ann_threshold
        self._ann_params = (ann_connectivity, ann_expansion_add, ann_expansion_search)
        self.lock_timeout = lock_timeout
        self._db: sqlite3.Connection | None = None
        self._vfile: Any = None
        self._seq = 0
        self._data_version = -1
        self._ann: Any = None
        self._ann_dirty = False
        self._closed = False
        self._dblock = threading.RLock()

    # ----------------------------------------------------------------- files
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise ConfigurationError("the store is closed")
        if self._db is None:
            self.path.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path / "store.sqlite", timeout=self.lock_timeout,
                                 check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def stored_space(self) -> EmbeddingSpace | None:
        if self.space is not None:
            return self.space
        if not (self.path / "store.sqlite").exists():
            return None
        row = self._conn().execute("SELECT value FROM meta WHERE key = 'space'").fetchone()
        return EmbeddingSpace.from_json(row[0]) if row else None

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            db = self._conn()
            with self._write_lock():
                row = db.execute("SELECT value FROM meta WHERE key = 'space'").fetchone()
                if row is None:
                    db.execute("INSERT INTO meta VALUES ('space', ?), ('format', ?)",
                               (space.to_json(), str(FORMAT)))
                    stored = space
                else:
                    stored = EmbeddingSpace.from_json(row[0])
                    stored.check_compatible(space, where=f"store at {self.path}")
            super().connect(stored)
            self._vfile = open(self.path / "vectors.f32", "a+b")  # noqa: SIM115
            self._sync(force=True)
            return stored

    @contextmanager
    def _write_lock(self) -> Iterator[None]:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / "write.lock", "a") as fh:
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
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ----------------------------------------------------------------- sync
    def _read_vectors(self, slots: np.ndarray) -> np.ndarray:
        dim = self._require_space().dim
        if len(slots) == 0:
            return np.zeros((0, dim), np.float32)
        lo, hi = int(slots.min()), int(slots.max()) + 1
        raw = np.fromfile(self.path / "vectors.f32", dtype=np.float32, count=(hi - lo) * dim,
                          offset=lo * dim * 4)
        if raw.size != (hi - lo) * dim:
            raise BackendError(f"{self.path / 'vectors.f32'} is shorter than the committed rows")
        return raw.reshape(hi - lo, dim)[slots - lo]

    def _sync(self, force: bool = False) -> None:
        """Replay commits made by other connections since we last looked."""
        db = self._conn()
        version = db.execute("PRAGMA data_version").fetchone()[0]
        if version == self._data_version and not force:
            return
        self._data_version = version
        db.execute("BEGIN")  # one snapshot: a commit landing between two reads is seen by neither
        try:
            self._replay(db)
        finally:
            db.execute("COMMIT")

    def _replay(self, db: sqlite3.Connection) -> None:
        if self._seq == 0:  # first load: read the table, not the whole log
            self._seq = db.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]
            self._load(db.execute(f"SELECT {_COLS} FROM chunks ORDER BY slot"))
            return
        rows = db.execute("SELECT seq, op, slot FROM log WHERE seq > ? ORDER BY seq",
                          (self._seq,)).fetchall()
        if not rows:
            return
        self._seq = rows[-1][0]
        dead = [s for _, op, s in rows if op == "del"]
        added = sorted({s for _, op, s in rows if op == "add"} - set(dead))
        # rows added and deleted since we last looked were never loaded here
        dead = [s for s in dead if s < len(self._chunks) and self._chunks[s] is not None]
        self._drop_slots(dead)
        self._ann_remove(dead)
        for i in range(0, len(added), 5000):
            part = added[i : i + 5000]
            self._load(db.execute(
                f"SELECT {_COLS} FROM chunks WHERE slot IN ({','.join('?' * len(part))}) "
                "ORDER BY slot", part))

    def _load(self, cursor: sqlite3.Cursor) -> None:
        """Apply committed rows (in slot order) to the in-memory index."""
        while True:
            found = cursor.fetchmany(20_000)
            if not found:
                return
            slots = np.array([r[0] for r in found], dtype=np.int64)
            vectors = self._read_vectors(slots)
            self._apply([_chunk(r) for r in found], vectors, [], slots=slots)
            self._ann_add(slots, vectors)

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
                doomed |= {c.id for c in (self._chunks[s] for s in np.flatnonzero(
                    self._mask(filter))) if c is not None}
            if ids is None and filter is None:
                return super().delete()  # raises the usual error
            self._write([], np.zeros((0, self._require_space().dim), np.float32),
                        [i for i in doomed if i in self._slot_of])
            return len(before - set(self._slot_of.values()))

    def _write(self, chunks: list[Chunk], vectors: np.ndarray, delete_ids: list[str]) -> None:
        space = self._require_space()
        db = self._conn()
        with self._lock, self._write_lock():
            self._sync()
            first = max(self._next_slot, _next_slot(db))
            slots = np.arange(first, first + len(chunks), dtype=np.int64)
            replaced = [c.id for c in chunks] + delete_ids
            if len(chunks):
                self._vfile.seek(first * space.dim * 4)
                self._vfile.write(np.ascontiguousarray(vectors, np.float32).tobytes())
                self._vfile.flush()
            try:
                db.execute("BEGIN IMMEDIATE")
                dead: list[int] = []
                for i in range(0, len(replaced), 500):
                    part = replaced[i : i + 500]
                    dead += [r[0] for r in db.execute(
                        f"SELECT slot FROM chunks WHERE id IN ({','.join('?' * len(part))})", part)]
                if dead:
                    db.executemany("DELETE FROM chunks WHERE slot = ?", [(s,) for s in dead])
                    db.executemany("INSERT INTO log (op, slot) VALUES ('del', ?)",
                                   [(s,) for s in dead])
                db.executemany(
                    f"INSERT INTO chunks ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(int(s), c.id, c.document_id, c.position, c.text,
                      json.dumps(dict(c.metadata), ensure_ascii=False), c.content_hash)
                     for s, c in zip(slots, chunks)],
                )
                db.executemany("INSERT INTO log (op, slot) VALUES ('add', ?)",
                               [(int(s),) for s in slots])
                seq = db.execute("SELECT max(seq) FROM log").fetchone()[0] or 0
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_slot', ?)",
                           (str(first + len(chunks)),))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise BackendError(f"write to {self.path} failed: {exc}") from exc
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._drop_slots(dead)
            self._ann_remove(dead)
            self._apply(chunks, vectors, [], slots=slots)
            self._ann_add(slots, vectors)
            self._seq = seq
            self._data_version = db.execute("PRAGMA data_version").fetchone()[0]
        # Crossing ann_threshold builds the graph now, outside the cross-process write lock, so
        # that later writes extend it and no query pays for a build (a first query on 1M rows
        # used to wait ~11-34 minutes for it).
        if self._ann is None and len(self._slot_of) >= self.ann_threshold:
            with self._lock:
                if self._ann is None:
                    self._build_ann()

    # ----------------------------------------------------------------- ANN
    def _ef_for(self, size: int) -> int:
        """HNSW search width: the configured one up to 100k rows, growing with the square root
        of the size beyond (measured: recall@10 0.998 at 100k but 0.919 at 1M with a fixed 96)."""
        base = self._ann_params[2]
        return int(base * max(1.0, (size / 100_000) ** 0.5))

    def _new_ann(self) -> Any:
        from usearch.index import Index

        conn, exp_add, exp_search = self._ann_params
        return Index(ndim=self._require_space().dim, metric="ip", dtype="f32",
                     connectivity=conn, expansion_add=exp_add, expansion_search=exp_search)

    def _ann_add(self, slots: np.ndarray, vectors: np.ndarray) -> None:
        if self._ann is not None and len(slots):
            self._ann.add(slots.astype(np.uint64), vectors, threads=ANN_ADD_THREADS)
            self._ann_dirty = True

    def _ann_remove(self, slots: Sequence[int]) -> None:
        if self._ann is not None and len(slots):
            self._ann.remove(np.asarray(slots, dtype=np.uint64))
            self._ann_dirty = True

    def _build_ann(self) -> None:
        """Load the saved graph if it covers the live rows, else build it from the vectors."""
        live = np.flatnonzero(self._live.view())
        saved = self.path / "ann.usearch"
        info = self.path / "ann.json"
        if saved.exists() and info.exists():
            try:
                meta = json.loads(info.read_text())
                index = self._new_ann()
                index.load(str(saved))
                if meta.get("count") == len(index) and self._ann_matches(index, live):
                    self._ann = index
                    return
            except (OSError, ValueError, RuntimeError):
                pass  # a stale or torn snapshot: rebuild below
        index = self._new_ann()
        for i in range(0, len(live), 50_000):
            part = live[i : i + 50_000]
            index.add(part.astype(np.uint64), self._vectors[part], threads=ANN_ADD_THREADS)
        self._ann = index
        self._ann_dirty = True

    @staticmethod
    def _ann_matches(index: Any, live: np.ndarray) -> bool:
        keys = np.sort(np.asarray(index.keys, dtype=np.int64)) if len(index) else np.zeros(0)
        return len(keys) == len(live) and bool(np.array_equal(keys, live))

    def _save_ann(self) -> None:
        if self._ann is None or not self._ann_dirty:
            return
        tmp = self.path / "ann.usearch.tmp"
        self._ann.save(str(tmp))
        os.replace(tmp, self.path / "ann.usearch")
        (self.path / "ann.json").write_text(json.dumps({"count": len(self._ann)}))
        self._ann_dirty = False

    # ----------------------------------------------------------------- reads
    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        with self._lock:
            self._sync()
            if self._ann is None and len(self._slot_of) >= self.ann_threshold:
                self._build_ann()
            if self._ann is None:
                return super().query(vector, k=k, filter=filter)
            q = validate_query_vector(vector, self._require_space().dim)
            if k <= 0:
                return super().query(vector, k=k)  # raises the usual error
            mask = None if filter is None else self._mask(filter)
            matching = len(self._slot_of) if mask is None else int(mask.sum())
            if matching <= max(4 * k, self.exact_filter_rows) and mask is not None:
                return super().query(vector, k=k, filter=filter)  # exact over few rows
            want = min(matching, k)
            count = max(k, 32)
            if mask is not None:  # enough candidates that ~4 * max(k, 32) of them match
                count = int(count * 4 * len(self._slot_of) / max(matching, 1))
                if count > 16 * max(k, 32) * 4:  # the filter is too selective for HNSW
                    return super().query(vector, k=k, filter=filter)
            ef = self._ef_for(len(self._ann))
            if self._ann.expansion_search != ef:
                self._ann.expansion_search = ef
            while True:
                found = self._ann.search(q, min(count, len(self._ann)))
                keys = np.asarray(found.keys, dtype=np.int64)
                sims = 1.0 - np.asarray(found.distances, dtype=np.float64)
                if mask is not None:
                    ok = mask[keys]
                    keys, sims = keys[ok], sims[ok]
                if len(keys) >= want or count >= len(self._ann):
                    break
                count *= 4
                if count > 16 * max(k, 32) * 4:  # the filter is too selective for HNSW
                    return super().query(vector, k=k, filter=filter)
            keys, sims = keys[:k], sims[:k]
            exact = self._vectors[keys] @ q  # report exact similarities
            return self._top(keys, exact, k)

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        with self._lock:
            self._sync()
            return super().keyword(text, k=k, filter=filter)

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        with self._lock:
            self._sync()
            return super().get(ids)

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        with self._lock:
            self._sync()
            return super().get_vectors(ids)

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        with self._lock:
            self._sync()
            return super().get_by_document(document_ids)

    def count(self, filter: Filter | None = None) -> int:
        with self._lock:
            self._sync()
            return super().count(filter)

    def all_chunks(self) -> list[Chunk]:
        with self._lock:
            self._sync()
            return super().all_chunks()

    def flush(self) -> None:
        """Save the HNSW graph so the next open does not rebuild it."""
        with self._lock:
            self._save_ann()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._db is not None:
                self._save_ann()
                self._db.close()
            if self._vfile is not None:
                self._vfile.close()
            self._closed = True


_COLS = "slot, id, document_id, position, text, metadata, content_hash"


def _chunk(row: tuple[Any, ...]) -> Chunk:
    _, cid, doc, pos, text, meta, h = row
    return Chunk(id=cid, document_id=doc, position=pos, text=text, metadata=json.loads(meta),
                 content_hash=h)


def _next_slot(db: sqlite3.Connection) -> int:
    """The first never-used slot (slots are never reused, even after deletes)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'next_slot'").fetchone()
    return int(row[0]) if row else 0
