"""Checkpoints on the shared relational database (SQLite, PostgreSQL, MySQL/MariaDB).

Table ``vecmem_checkpoints`` holds one row per checkpoint (state encoded by the codec, as a
blob) with a unique ``(tenant, thread_id, seq)`` and a ``failed`` flag (added by migration 2);
``vecmem_checkpoint_tags`` indexes tags.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from vecmem._keys import MAX_KEY, MAX_TENANT
from vecmem.checkpoints.base import CheckpointInfo, CheckpointStoreBase, Retention
from vecmem.checkpoints.codec import Cipher
from vecmem.db import Blob, Database, Key, Migration, Text, Timestamp, dumps, open_database
from vecmem.errors import ConflictError

metadata = sa.MetaData()
CHECKPOINTS = sa.Table(
    "vecmem_checkpoints",
    metadata,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("id", Key(64), primary_key=True),
    sa.Column("thread_id", Key(MAX_KEY), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("parent_id", Key(64), nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("metadata", Text, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("stored_size", sa.BigInteger, nullable=False),
    sa.Column("state", Blob, nullable=False),
    sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("tenant", "thread_id", "seq", name="uq_vecmem_checkpoints_seq"),
    sa.Index("ix_vecmem_checkpoints_created", "tenant", "created_at"),
)
TAGS = sa.Table(
    "vecmem_checkpoint_tags",
    metadata,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("checkpoint_id", Key(64), primary_key=True),
    sa.Column("tag", Key(128), primary_key=True),
    sa.Index("ix_vecmem_checkpoint_tags_tag", "tenant", "tag"),
)
MIGRATIONS = [
    Migration("create checkpoint tables", lambda m: m.create_tables(CHECKPOINTS, TAGS)),
    Migration("failed checkpoints", lambda m: m.add_column(CHECKPOINTS, "failed")),
]
C, T = CHECKPOINTS.c, TAGS.c
_INFO = [
    C.id,
    C.thread_id,
    C.seq,
    C.created_at,
    C.parent_id,
    C.metadata,
    C.size,
    C.stored_size,
    C.failed,
]


class SQLCheckpointStore(CheckpointStoreBase):
    """Checkpoints in a relational database.

    >>> from vecmem.checkpoints import generate_key
    >>> store = SQLCheckpointStore("sqlite://", tenant="acme", key=generate_key())
    >>> ck = store.save("run-7", {"messages": ["hi"]}, metadata={"node": "plan"})
    >>> store.get(ck.id).state
    {'messages': ['hi']}
    >>> store.close()
    """

    def __init__(
        self,
        db: Database | str | None = None,
        *,
        tenant: str = "default",
        key: bytes | str | None = None,
        cipher: Cipher = "aes-gcm",
        compression: bool = True,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            tenant=tenant,
            key=key,
            cipher=cipher,
            compression=compression,
            retention=retention,
            clock=clock,
        )
        self.db, self._owned = open_database(db)
        self.db.migrate("checkpoints", MIGRATIONS)

    def _clone(self, options: dict[str, Any]) -> SQLCheckpointStore:
        return SQLCheckpointStore(self.db, **options)

    def _info(self, row: Any, tags: Sequence[str]) -> CheckpointInfo:
        return CheckpointInfo(
            row.id,
            row.thread_id,
            row.seq,
            row.created_at,
            row.parent_id,
            json.loads(row.metadata) if row.metadata else {},
            tuple(sorted(tags)),
            row.size,
            row.stored_size,
            bool(row.failed),
        )

    def _tags_of(self, conn: sa.Connection, ids: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for i in range(0, len(ids), 500):
            for r in conn.execute(
                sa.select(T.checkpoint_id, T.tag).where(
                    T.tenant == self.tenant, T.checkpoint_id.in_(ids[i : i + 500])
                )
            ):
                out[r.checkpoint_id].append(r.tag)
        return out

    def _append(
        self, info: CheckpointInfo, blob: bytes, *, parent_latest: bool, new_thread: bool
    ) -> CheckpointInfo:
        def tx(conn: sa.Connection) -> CheckpointInfo:
            last = conn.execute(
                sa.select(C.id, C.seq)
                .where(C.tenant == self.tenant, C.thread_id == info.thread_id)
                .order_by(C.seq.desc())
                .limit(1)
                .with_for_update()
            ).first()
            if new_thread and last is not None:
                raise ConflictError(f"thread {info.thread_id!r} already exists")
            saved = replace(
                info,
                seq=0 if last is None else last.seq + 1,
                parent_id=last.id if parent_latest and last else info.parent_id,
            )
            conn.execute(
                sa.insert(CHECKPOINTS).values(
                    tenant=self.tenant,
                    id=saved.id,
                    thread_id=saved.thread_id,
                    seq=saved.seq,
                    parent_id=saved.parent_id,
                    created_at=saved.created_at,
                    metadata=dumps(dict(saved.metadata)) if saved.metadata else None,
                    size=saved.size,
                    stored_size=saved.stored_size,
                    state=blob,
                    failed=saved.failed,
                )
            )
            if saved.tags:
                conn.execute(
                    sa.insert(TAGS),
                    [
                        {"tenant": self.tenant, "checkpoint_id": saved.id, "tag": t}
                        for t in saved.tags
                    ],
                )
            return saved

        return self.db.transact(tx, what="saving a checkpoint", retry_integrity=True)

    def _get(self, checkpoint_id: str) -> tuple[CheckpointInfo, bytes] | None:
        with self.db.read("reading a checkpoint") as conn:
            row = conn.execute(
                sa.select(*_INFO, C.state).where(C.tenant == self.tenant, C.id == checkpoint_id)
            ).first()
            if row is None:
                return None
            return self._info(row, self._tags_of(conn, [row.id])[row.id]), bytes(row.state)

    def _latest_id(self, thread_id: str) -> str | None:
        with self.db.read("reading the latest checkpoint") as conn:
            return conn.execute(
                sa.select(C.id)
                .where(C.tenant == self.tenant, C.thread_id == thread_id)
                .order_by(C.seq.desc())
                .limit(1)
            ).scalar()

    def _list(
        self,
        *,
        thread_id: str | None,
        tags: tuple[str, ...],
        since: float | None,
        until: float | None,
        limit: int | None,
        offset: int,
    ) -> list[CheckpointInfo]:
        q = sa.select(*_INFO).where(C.tenant == self.tenant)
        if thread_id is not None:
            q = q.where(C.thread_id == thread_id)
        if since is not None:
            q = q.where(C.created_at >= since)
        if until is not None:
            q = q.where(C.created_at < until)
        for tag in tags:
            q = q.where(
                sa.exists().where(T.tenant == C.tenant, T.checkpoint_id == C.id, T.tag == tag)
            )
        q = q.order_by(C.created_at.desc(), self.db.exact(C.thread_id).desc(), C.seq.desc())
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset) if limit is not None else q.limit(2**62).offset(offset)
        with self.db.read("listing checkpoints") as conn:
            rows = conn.execute(q).all()
            tag_map = self._tags_of(conn, [r.id for r in rows])
        return [self._info(r, tag_map[r.id]) for r in rows]

    def _delete(self, ids: Sequence[str]) -> int:
        def tx(conn: sa.Connection) -> int:
            n = 0
            for i in range(0, len(ids), 500):
                part = list(ids[i : i + 500])
                conn.execute(
                    sa.delete(TAGS).where(T.tenant == self.tenant, T.checkpoint_id.in_(part))
                )
                n += conn.execute(
                    sa.delete(CHECKPOINTS).where(C.tenant == self.tenant, C.id.in_(part))
                ).rowcount
            return n

        return self.db.transact(tx, what="deleting checkpoints")

    def _threads(self) -> list[str]:
        with self.db.read("listing threads") as conn:
            return sorted(
                conn.execute(
                    sa.select(C.thread_id).where(C.tenant == self.tenant).distinct()
                ).scalars()
            )

    def close(self) -> None:
        if self._owned:
            self.db.close()
