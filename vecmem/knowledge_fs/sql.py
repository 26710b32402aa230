"""Knowledge store on the shared relational database (SQLite, PostgreSQL, MySQL/MariaDB).

Files are rows of ``vecmem_kfs_files`` (keyed by the SHA-256 of the path, so paths of any
length index on MySQL) whose bytes live in ``vecmem_kfs_chunks``: a write stores the data in
chunks of at most 4 MiB, an append adds one chunk at the current size (so appending is O(1) and
a ranged read touches only the chunks it needs). ``vecmem_kfs_dirs`` holds the implicit
directories, created with their first file and removed with their last.
"""

from __future__ import annotations

import builtins
import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from vecmem._keys import MAX_TENANT, check_tenant
from vecmem.db import Blob, Database, Key, Migration, Text, Timestamp, open_database
from vecmem.errors import NotFoundError
from vecmem.knowledge_fs.base import (
    ChangeEvent,
    Subscription,
    check_range,
    is_a_directory,
    not_a_directory,
    polling,
    to_bytes,
)
from vecmem.knowledge_fs.paths import ancestors, any_path, dir_path, file_path, name, parent

CHUNK = 4 * 1024 * 1024
metadata = sa.MetaData()
FILES = sa.Table(
    "vecmem_kfs_files",
    metadata,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("path_hash", Key(64), primary_key=True),
    sa.Column("parent_hash", Key(64), nullable=False),
    sa.Column("path", Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_vecmem_kfs_files_parent", "tenant", "parent_hash"),
)
CHUNKS = sa.Table(
    "vecmem_kfs_chunks",
    metadata,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("path_hash", Key(64), primary_key=True),
    sa.Column("offset", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("data", Blob, nullable=False),
)
DIRS = sa.Table(
    "vecmem_kfs_dirs",
    metadata,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("path_hash", Key(64), primary_key=True),
    sa.Column("parent_hash", Key(64), nullable=False),
    sa.Column("path", Text, nullable=False),
    sa.Index("ix_vecmem_kfs_dirs_parent", "tenant", "parent_hash"),
)
MIGRATIONS = [
    Migration("create knowledge store tables", lambda m: m.create_tables(FILES, CHUNKS, DIRS))
]
F, CH, D = FILES.c, CHUNKS.c, DIRS.c


def h(path: str) -> str:
    """The key of a path: SHA-256 of its UTF-8 bytes, hex."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


class SQLKnowledgeStore:
    """Knowledge files in a relational database.

    >>> kb = SQLKnowledgeStore("sqlite://", tenant="acme")
    >>> kb.write("/plans/q3.md", "ship")
    >>> kb.append("/plans/q3.md", "!"), kb.read("/plans/q3.md")
    (4, b'ship!')
    >>> kb.close()
    """

    def __init__(
        self,
        db: Database | str | None = None,
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db, self._owned = open_database(db)
        self.tenant = check_tenant(tenant)
        self.clock = clock
        self.db.migrate("knowledge_fs", MIGRATIONS)

    def with_tenant(self, tenant: str) -> SQLKnowledgeStore:
        return SQLKnowledgeStore(self.db, tenant=tenant, clock=self.clock)

    # -- helpers ----------------------------------------------------------------------------
    def _is(self, conn: sa.Connection, table: sa.Table, hashes: Sequence[str]) -> list[str]:
        if not hashes:
            return []
        c = table.c
        return list(
            conn.execute(
                sa.select(c.path).where(c.tenant == self.tenant, c.path_hash.in_(list(hashes)))
            ).scalars()
        )

    def _prepare_new(self, conn: sa.Connection, path: str) -> None:
        """Check that ``path`` can become a file, and create its directories."""
        if self._is(conn, DIRS, [h(path)]):
            raise is_a_directory(path)
        ups = ancestors(path)
        files = self._is(conn, FILES, [h(a) for a in ups])
        if files:
            raise not_a_directory(files[0])
        self.db.insert_ignore(
            conn,
            DIRS,
            [
                {"tenant": self.tenant, "path_hash": h(a), "parent_hash": h(parent(a)), "path": a}
                for a in ups
            ],
            keys=["tenant", "path_hash"],
        )

    def _size(self, conn: sa.Connection, key: str, *, lock: bool = False) -> int | None:
        q = sa.select(F.size).where(F.tenant == self.tenant, F.path_hash == key)
        return conn.execute(q.with_for_update() if lock else q).scalar()

    def _missing(self, conn: sa.Connection, path: str) -> Exception:
        if self._is(conn, DIRS, [h(path)]):
            return is_a_directory(path)
        return NotFoundError(f"no file {path!r}")

    def _chunks(self, data: bytes, offset: int, key: str) -> list[dict[str, Any]]:
        return [
            {
                "tenant": self.tenant,
                "path_hash": key,
                "offset": offset + i,
                "data": data[i : i + CHUNK],
            }
            for i in range(0, len(data), CHUNK)
        ]

    def _prune(self, conn: sa.Connection, path: str) -> None:
        """Remove the directories above ``path`` that no longer hold anything."""
        for a in ancestors(path):
            key = h(a)
            busy = (
                conn.execute(
                    sa.select(F.path_hash)
                    .where(F.tenant == self.tenant, F.parent_hash == key)
                    .limit(1)
                ).first()
                or conn.execute(
                    sa.select(D.path_hash)
                    .where(D.tenant == self.tenant, D.parent_hash == key)
                    .limit(1)
                ).first()
            )
            if busy:
                return
            conn.execute(sa.delete(DIRS).where(D.tenant == self.tenant, D.path_hash == key))

    # -- API --------------------------------------------------------------------------------
    def read(self, path: str) -> bytes:
        return self.read_range(path, 0)

    def read_range(self, path: str, start: int, end: int | None = None) -> bytes:
        path = file_path(path)
        check_range(start, end)
        key = h(path)
        with self.db.read("reading a file") as conn:
            size = self._size(conn, key)
            if size is None:
                raise self._missing(conn, path)
            stop = size if end is None else min(end, size)
            if start >= stop:
                return b""
            first = conn.execute(
                sa.select(sa.func.max(CH.offset)).where(
                    CH.tenant == self.tenant, CH.path_hash == key, CH.offset <= start
                )
            ).scalar()
            rows = conn.execute(
                sa.select(CH.offset, CH.data)
                .where(
                    CH.tenant == self.tenant,
                    CH.path_hash == key,
                    CH.offset >= (first or 0),
                    CH.offset < stop,
                )
                .order_by(CH.offset)
            ).all()
        if not rows:
            return b""
        base = rows[0].offset
        blob = b"".join(bytes(r.data) for r in rows)
        return blob[start - base : stop - base]

    def write(self, path: str, data: bytes | str) -> None:
        path, raw = file_path(path), to_bytes(data)
        key = h(path)

        def tx(conn: sa.Connection) -> None:
            if self._size(conn, key, lock=True) is None:
                self._prepare_new(conn, path)
                conn.execute(
                    sa.insert(FILES).values(
                        tenant=self.tenant,
                        path_hash=key,
                        parent_hash=h(parent(path)),
                        path=path,
                        size=len(raw),
                        updated_at=self.clock(),
                    )
                )
            else:
                conn.execute(
                    sa.update(FILES)
                    .where(F.tenant == self.tenant, F.path_hash == key)
                    .values(size=len(raw), updated_at=self.clock())
                )
                conn.execute(sa.delete(CHUNKS).where(CH.tenant == self.tenant, CH.path_hash == key))
            for row in self._chunks(raw, 0, key):
                conn.execute(sa.insert(CHUNKS).values(**row))

        self.db.transact(tx, what="writing a file", retry_integrity=True)

    def append(self, path: str, data: bytes | str) -> int:
        path, raw = file_path(path), to_bytes(data)
        key = h(path)

        def tx(conn: sa.Connection) -> int:
            size = self._size(conn, key, lock=True)
            if size is None:
                self._prepare_new(conn, path)
                conn.execute(
                    sa.insert(FILES).values(
                        tenant=self.tenant,
                        path_hash=key,
                        parent_hash=h(parent(path)),
                        path=path,
                        size=len(raw),
                        updated_at=self.clock(),
                    )
                )
                size = 0
            else:
                conn.execute(
                    sa.update(FILES)
                    .where(F.tenant == self.tenant, F.path_hash == key)
                    .values(size=size + len(raw), updated_at=self.clock())
                )
            for row in self._chunks(raw, size, key):
                conn.execute(sa.insert(CHUNKS).values(**row))
            return size

        return self.db.transact(tx, what="appending to a file", retry_integrity=True)

    def list(self, path: str = "/") -> list[str]:
        path = dir_path(path)
        key = h(path)
        with self.db.read("listing a directory") as conn:
            files = (
                conn.execute(sa.select(F.path).where(F.tenant == self.tenant, F.parent_hash == key))
                .scalars()
                .all()
            )
            dirs = (
                conn.execute(sa.select(D.path).where(D.tenant == self.tenant, D.parent_hash == key))
                .scalars()
                .all()
            )
            if not files and not dirs and path != "/":
                if self._size(conn, key) is not None:
                    raise not_a_directory(path)
                raise NotFoundError(f"no directory {path!r}")
        return sorted([name(p) for p in files] + [name(p) + "/" for p in dirs])

    def _descendants(
        self, conn: sa.Connection, path: str
    ) -> tuple[builtins.list[str], builtins.list[str]]:
        """(file hashes, dir hashes) under directory ``path`` (breadth first)."""
        files: list[str] = []
        dirs: list[str] = []
        level = [h(path)]
        while level:
            files += (
                conn.execute(
                    sa.select(F.path_hash).where(F.tenant == self.tenant, F.parent_hash.in_(level))
                )
                .scalars()
                .all()
            )
            level = list(
                conn.execute(
                    sa.select(D.path_hash).where(D.tenant == self.tenant, D.parent_hash.in_(level))
                )
                .scalars()
                .all()
            )
            dirs += level
        return files, dirs

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        path = any_path(path)

        def tx(conn: sa.Connection) -> bool:
            key = h(path)
            if path != "/" and self._size(conn, key, lock=True) is not None:
                self._drop_files(conn, [key])
                self._prune(conn, path)
                return True
            if path != "/" and not self._is(conn, DIRS, [key]):
                return False
            files, dirs = self._descendants(conn, path)
            if not files and not dirs:
                return False
            if not recursive:
                raise is_a_directory(path)
            self._drop_files(conn, files)
            if path != "/":
                dirs.append(key)
            for i in range(0, len(dirs), 500):
                conn.execute(
                    sa.delete(DIRS).where(
                        D.tenant == self.tenant, D.path_hash.in_(dirs[i : i + 500])
                    )
                )
            if path != "/":
                self._prune(conn, path)
            return True

        return self.db.transact(tx, what="deleting")

    def _drop_files(self, conn: sa.Connection, keys: Sequence[str]) -> None:
        for i in range(0, len(keys), 500):
            part = list(keys[i : i + 500])
            conn.execute(sa.delete(CHUNKS).where(CH.tenant == self.tenant, CH.path_hash.in_(part)))
            conn.execute(sa.delete(FILES).where(F.tenant == self.tenant, F.path_hash.in_(part)))

    def exists(self, path: str) -> bool:
        path = any_path(path)
        if path == "/":
            return True
        key = h(path)
        with self.db.read("checking a path") as conn:
            return self._size(conn, key) is not None or bool(self._is(conn, DIRS, [key]))

    def on_change(self, callback: Callable[[ChangeEvent], None]) -> Subscription:
        return polling()

    def close(self) -> None:
        if self._owned:
            self.db.close()
