"""``VecmemSaver``: LangGraph checkpoints kept in vecmem's checkpoint store.

Each LangGraph checkpoint is one vecmem checkpoint of the thread ``thread_id`` (subgraph
namespaces included), so it gets vecmem's zstd compression, optional encryption at rest, integrity
checks, ``history()``/``diff()``/``branch()`` tooling and its SQL backends (SQLite, PostgreSQL,
MySQL/MariaDB through :class:`vecmem.db.Database`). The state is the checkpoint serialised by the
saver's ``serde`` (one entry per channel, so ``store.diff()`` shows which channels changed).

LangGraph addresses checkpoints by ``(thread_id, checkpoint_ns, checkpoint_id)`` and needs
pending writes, parent ids and metadata filters; two tables of this adapter hold those
(created through ``vecmem.db`` migrations, component ``langgraph``):

``vecmem_lg_checkpoints``  the key -> the vecmem checkpoint id, parent checkpoint id, run id and
                           the metadata (JSON)
``vecmem_lg_writes``       pending writes, one row per (task, index); values encoded by the
                           store's codec (compressed, encrypted when the store has a key)

A checkpoint's state is written before its key row, so a failure in between leaves at most an
unreachable vecmem checkpoint (removed on the spot when possible), never a key without state.
Metadata filters of ``list()`` are applied in Python after the thread/namespace/``before``
narrowing done in SQL.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
)

from vecmem._keys import MAX_KEY, MAX_TENANT, check_name, to_json
from vecmem.checkpoints import SQLCheckpointStore
from vecmem.checkpoints.codec import Cipher
from vecmem.db import Blob, Database, Key, Migration, Text
from vecmem.errors import ConfigurationError, InvalidInputError, NotFoundError

from .interval import IntervalBuffer, Pending

_ID = 128  # checkpoint and task ids (LangGraph's are 36-character UUIDs)

_meta = sa.MetaData()
CHECKPOINTS = sa.Table(
    "vecmem_lg_checkpoints",
    _meta,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("thread_id", Key(MAX_KEY), primary_key=True),
    sa.Column("checkpoint_ns", Key(MAX_KEY), primary_key=True),
    sa.Column("checkpoint_id", Key(_ID), primary_key=True),
    sa.Column("parent_checkpoint_id", Key(_ID), nullable=True),
    sa.Column("record_id", Key(64), nullable=False),
    sa.Column("run_id", Key(MAX_KEY), nullable=True),
    sa.Column("metadata", Text, nullable=False),
    sa.Index("ix_vecmem_lg_checkpoints_run", "tenant", "run_id"),
)
WRITES = sa.Table(
    "vecmem_lg_writes",
    _meta,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("thread_id", Key(MAX_KEY), primary_key=True),
    sa.Column("checkpoint_ns", Key(MAX_KEY), primary_key=True),
    sa.Column("checkpoint_id", Key(_ID), primary_key=True),
    sa.Column("task_id", Key(_ID), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("channel", Text, nullable=False),
    sa.Column("task_path", Text, nullable=False),
    sa.Column("value", Blob, nullable=False),
)
MIGRATIONS = [
    Migration(
        "create LangGraph key and writes tables", lambda m: m.create_tables(CHECKPOINTS, WRITES)
    )
]
C, W = CHECKPOINTS.c, WRITES.c
_ROW = [
    C.thread_id,
    C.checkpoint_ns,
    C.checkpoint_id,
    C.parent_checkpoint_id,
    C.record_id,
    C.metadata,
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text(kind: str, value: Any, max_len: int, *, empty: bool = False) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # {"thread_id": 1} is common in examples
    if (
        not isinstance(value, str)
        or (not value and not empty)
        or len(value) > max_len
        or "\x00" in value
    ):
        raise InvalidInputError(
            f"{kind} must be a{'' if empty else ' non-empty'} string of at most {max_len} "
            f"characters without NUL, got {value!r}"
        )
    if value and not value.isascii():
        check_name(kind, value, max_len=max_len)  # lone surrogates: no driver can store them
    return value


class VecmemSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer over vecmem's checkpoints (SQLite, PostgreSQL, MySQL/MariaDB).

    ``store`` is a :class:`~vecmem.checkpoints.SQLCheckpointStore` (its database, tenant and
    key are used), a :class:`~vecmem.db.Database` or a database URL; ``tenant``, ``key`` and
    ``cipher`` apply when the saver opens the store itself. ``interval=N`` writes a checkpoint
    every N steps (the input checkpoint and steps 0, N, 2N, ...; the others wait in memory
    until a read, :meth:`flush` or :meth:`close`, see :mod:`.interval`): fewer writes, and a
    crash re-runs at most N - 1 steps.

    >>> from langgraph.checkpoint.vecmem import VecmemSaver
    >>> saver = VecmemSaver("sqlite:///graph.db")                     # doctest: +SKIP
    >>> graph = builder.compile(checkpointer=saver)                   # doctest: +SKIP
    >>> graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})  # doctest: +SKIP
    >>> saver.store.history("t-1")  # vecmem's view of the same checkpoints  # doctest: +SKIP
    """

    store: SQLCheckpointStore

    def __init__(
        self,
        store: SQLCheckpointStore | Database | str,
        *,
        serde: SerializerProtocol | None = None,
        tenant: str = "default",
        key: bytes | str | None = None,
        cipher: Cipher = "aes-gcm",
        interval: int = 1,
    ) -> None:
        super().__init__(serde=serde)
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ConfigurationError(f"interval must be an int >= 1, got {interval!r}")
        self._buffer = IntervalBuffer(interval)
        if isinstance(store, SQLCheckpointStore):
            self.store, self._owned = store, False
        elif isinstance(store, (Database, str)):
            self.store = SQLCheckpointStore(store, tenant=tenant, key=key, cipher=cipher)
            self._owned = True
        else:
            raise ConfigurationError(
                "VecmemSaver needs a SQLCheckpointStore, a vecmem Database or a database URL, "
                f"got {type(store).__name__}"
            )
        if self.store.retention is not None:
            raise ConfigurationError(
                "a checkpoint store with a retention policy would delete LangGraph checkpoints "
                "behind the saver's back; use VecmemSaver.prune() instead"
            )
        self.db: Database = self.store.db
        self.tenant = self.store.tenant
        self.db.migrate("langgraph", MIGRATIONS)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        url: str,
        *,
        tenant: str = "default",
        key: bytes | str | None = None,
        interval: int = 1,
    ) -> Iterator[VecmemSaver]:
        """A saver on ``url`` (``sqlite:///graph.db``, ``postgresql://...``), closed on exit."""
        saver = cls(url, tenant=tenant, key=key, interval=interval)
        try:
            yield saver
        finally:
            saver.close()

    @property
    def interval(self) -> int:
        return self._buffer.interval

    def flush(self, thread_id: str | None = None) -> None:
        """Write the checkpoints held back by ``interval`` (of one thread, or all)."""
        with self._buffer.lock:
            for (tid, ns), p in self._buffer.take(thread_id):
                self._put(p.config, p.checkpoint, p.metadata, p.new_versions)
                conf: RunnableConfig = {
                    "configurable": {
                        "thread_id": tid,
                        "checkpoint_ns": ns,
                        "checkpoint_id": p.checkpoint["id"],
                    }
                }
                for writes, task_id, task_path in p.writes:
                    self._put_writes(conf, writes, task_id, task_path)
                self._buffer.written((tid, ns))

    def close(self) -> None:
        self.flush()
        if self._owned:
            self.store.close()

    # ----------------------------------------------------------------- encoding
    def _encode(self, checkpoint: Checkpoint) -> dict[str, Any]:
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        t, data = self.serde.dumps_typed(rest)
        channels = {}
        for name, value in checkpoint.get("channel_values", {}).items():
            ct, cdata = self.serde.dumps_typed(value)
            channels[name] = [ct, _b64(cdata)]
        return {"checkpoint": [t, _b64(data)], "channels": channels}

    def _decode(self, state: dict[str, Any]) -> Checkpoint:
        t, data = state["checkpoint"]
        checkpoint = self.serde.loads_typed((t, base64.b64decode(data)))
        versions = checkpoint.get("channel_versions", {})
        checkpoint["channel_values"] = {
            name: self.serde.loads_typed((ct, base64.b64decode(cdata)))
            for name, (ct, cdata) in state["channels"].items()
            if name in versions
        }
        return checkpoint  # type: ignore[no-any-return]

    def _aad(self, thread_id: str, ns: str, checkpoint_id: str, task_id: str, idx: int) -> bytes:
        return "\x00".join(
            ("lg-write", self.tenant, thread_id, ns, checkpoint_id, task_id, str(idx))
        ).encode()

    def _encode_write(self, value: Any, aad: bytes) -> bytes:
        t, data = self.serde.dumps_typed(value)
        return self.store.codec.encode([t, _b64(data)], aad=aad)[0]

    def _decode_write(self, blob: bytes, aad: bytes) -> Any:
        t, data = self.store.codec.decode(blob, aad=aad, what="a LangGraph pending write")
        return self.serde.loads_typed((t, base64.b64decode(data)))

    # ----------------------------------------------------------------- reads
    @staticmethod
    def _key(config: RunnableConfig) -> tuple[str, str]:
        conf = config.get("configurable") or {}
        if "thread_id" not in conf:
            raise InvalidInputError("the config needs configurable.thread_id")
        return (
            _text("thread_id", conf["thread_id"], MAX_KEY),
            _text("checkpoint_ns", conf.get("checkpoint_ns") or "", MAX_KEY, empty=True),
        )

    def _where(self, thread_id: str, ns: str, checkpoint_id: str) -> Any:
        return sa.and_(
            C.tenant == self.tenant,
            C.thread_id == thread_id,
            C.checkpoint_ns == ns,
            C.checkpoint_id == checkpoint_id,
        )

    def _tuple(self, row: Any) -> CheckpointTuple | None:
        try:
            state = self.store.get(row.record_id).state
        except NotFoundError:  # deleted between the key lookup and this read
            return None
        with self.db.read("reading LangGraph pending writes") as conn:
            writes = conn.execute(
                sa.select(W.task_id, W.idx, W.channel, W.value)
                .where(
                    W.tenant == self.tenant,
                    W.thread_id == row.thread_id,
                    W.checkpoint_ns == row.checkpoint_ns,
                    W.checkpoint_id == row.checkpoint_id,
                )
                .order_by(self.db.exact(W.task_path), self.db.exact(W.task_id), W.idx)
            ).all()
        pending = [
            (
                w.task_id,
                w.channel,
                self._decode_write(
                    bytes(w.value),
                    self._aad(
                        row.thread_id, row.checkpoint_ns, row.checkpoint_id, w.task_id, w.idx
                    ),
                ),
            )
            for w in writes
        ]

        def conf(checkpoint_id: str) -> RunnableConfig:
            return {
                "configurable": {
                    "thread_id": row.thread_id,
                    "checkpoint_ns": row.checkpoint_ns,
                    "checkpoint_id": checkpoint_id,
                }
            }

        return CheckpointTuple(
            config=conf(row.checkpoint_id),
            checkpoint=self._decode(state),
            metadata=json.loads(row.metadata),
            parent_config=conf(row.parent_checkpoint_id) if row.parent_checkpoint_id else None,
            pending_writes=pending,
        )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names, or its thread/namespace's newest; ``None`` if none."""
        thread_id, ns = self._key(config)
        self.flush(thread_id)
        checkpoint_id = get_checkpoint_id(config)
        q = sa.select(*_ROW)
        if checkpoint_id:
            q = q.where(self._where(thread_id, ns, checkpoint_id))
        else:
            q = (
                q.where(C.tenant == self.tenant, C.thread_id == thread_id, C.checkpoint_ns == ns)
                .order_by(self.db.exact(C.checkpoint_id).desc())
                .limit(1)
            )
        with self.db.read("reading a LangGraph checkpoint") as conn:
            row = conn.execute(q).first()
        return None if row is None else self._tuple(row)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (by checkpoint id): of ``config``'s thread (and namespace,
        when the config names one; every thread for ``None``), older than ``before``, whose
        metadata has every ``filter`` item, at most ``limit``."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidInputError(f"limit must be an int >= 0, got {limit!r}")
        self.flush()
        q = sa.select(*_ROW).where(C.tenant == self.tenant)
        if config is not None:
            thread_id, ns = self._key(config)
            q = q.where(C.thread_id == thread_id)
            if config["configurable"].get("checkpoint_ns") is not None:
                q = q.where(C.checkpoint_ns == ns)
            if checkpoint_id := get_checkpoint_id(config):
                q = q.where(C.checkpoint_id == checkpoint_id)
        if before is not None and (before_id := get_checkpoint_id(before)):
            q = q.where(self.db.exact(C.checkpoint_id) < before_id)
        q = q.order_by(
            self.db.exact(C.checkpoint_id).desc(),
            self.db.exact(C.thread_id),
            self.db.exact(C.checkpoint_ns),
        )
        if limit is not None and not filter:
            q = q.limit(limit)
        with self.db.read("listing LangGraph checkpoints") as conn:
            rows = conn.execute(q).all()  # fetched before yielding: no connection held
        left = limit
        for row in rows:
            if left is not None and left <= 0:
                return
            if filter:
                meta = json.loads(row.metadata)
                if not all(meta.get(k) == v for k, v in filter.items()):
                    continue
            tup = self._tuple(row)
            if tup is not None:
                if left is not None:
                    left -= 1
                yield tup

    # ----------------------------------------------------------------- writes
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store ``checkpoint`` under ``config``'s thread and namespace; ``config``'s
        checkpoint id (if any) becomes its parent (with ``interval``: its nearest written
        ancestor; a checkpoint between intervals is held back)."""
        thread_id, ns = self._key(config)
        checkpoint_id = _text("checkpoint id", checkpoint["id"], _ID)
        key = (thread_id, ns)
        with self._buffer.lock:
            parent = self._buffer.resolve(key, get_checkpoint_id(config))
            conf = {"configurable": {**config["configurable"], "checkpoint_id": parent}}
            if not parent:
                del conf["configurable"]["checkpoint_id"]
            if not self._buffer.durable(metadata):
                pending = Pending(conf, checkpoint, metadata, new_versions)
                self._buffer.hold(key, checkpoint_id, parent, pending)
                return {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": checkpoint_id,
                    }
                }
            out = self._put(conf, checkpoint, metadata, new_versions)  # type: ignore[arg-type]
            self._buffer.written(key)
            return out

    def _put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, ns = self._key(config)
        checkpoint_id = _text("checkpoint id", checkpoint["id"], _ID)
        parent_id = get_checkpoint_id(config)
        meta = get_serializable_checkpoint_metadata(config, metadata)
        meta_json = to_json("LangGraph checkpoint metadata", meta)
        run_id = meta.get("run_id")
        with self.db.read("reading LangGraph checkpoint keys") as conn:
            ids = [checkpoint_id] + ([parent_id] if parent_id else [])
            known = {
                r.checkpoint_id: r.record_id
                for r in conn.execute(
                    sa.select(C.checkpoint_id, C.record_id).where(
                        C.tenant == self.tenant,
                        C.thread_id == thread_id,
                        C.checkpoint_ns == ns,
                        C.checkpoint_id.in_(ids),
                    )
                )
            }
        summary: dict[str, Any] = {
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
            **{k: meta[k] for k in ("source", "step") if k in meta},
        }
        parent_record = known.get(parent_id) if parent_id else None
        try:
            info = self.store.save(
                thread_id, self._encode(checkpoint), metadata=summary, parent_id=parent_record
            )
        except NotFoundError:  # the parent's record went away meanwhile
            info = self.store.save(thread_id, self._encode(checkpoint), metadata=summary)
        row = {
            "tenant": self.tenant,
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
            "parent_checkpoint_id": parent_id,
            "record_id": info.id,
            "run_id": str(run_id)[:MAX_KEY] if run_id else None,
            "metadata": meta_json,
        }
        try:
            with self.db.write("saving a LangGraph checkpoint key") as conn:
                self.db.upsert(
                    conn,
                    CHECKPOINTS,
                    [row],
                    keys=["tenant", "thread_id", "checkpoint_ns", "checkpoint_id"],
                )
        except BaseException:
            self._forget_records([info.id])
            raise
        if checkpoint_id in known:  # the same checkpoint put again: drop the old record
            self._forget_records([known[checkpoint_id]])
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes for ``config``'s checkpoint. Writing the same
        ``(task_id, index)`` again keeps the first, except for the special channels (errors,
        interrupts, ...), which are overwritten."""
        thread_id, ns = self._key(config)
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            raise InvalidInputError("put_writes needs configurable.checkpoint_id")
        task_id = _text("task_id", task_id, _ID)
        with self._buffer.lock:
            if self._buffer.add_writes((thread_id, ns), checkpoint_id, writes, task_id, task_path):
                return
        self._put_writes(config, writes, task_id, task_path)

    def _put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, ns = self._key(config)
        checkpoint_id = get_checkpoint_id(config)
        task_id = _text("task_id", task_id, _ID)
        special: list[dict[str, Any]] = []
        regular: list[dict[str, Any]] = []
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            row = {
                "tenant": self.tenant,
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
                "task_id": task_id,
                "idx": idx,
                "channel": channel,
                "task_path": task_path or "",
                "value": self._encode_write(
                    value, self._aad(thread_id, ns, checkpoint_id, task_id, idx)
                ),
            }
            (special if idx < 0 else regular).append(row)
        keys = ["tenant", "thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"]
        with self.db.write("saving LangGraph pending writes") as conn:
            self.db.upsert(conn, WRITES, special, keys=keys)
            self.db.insert_ignore(conn, WRITES, regular, keys=keys)

    # ----------------------------------------------------------------- deletes and copies
    def _forget_records(self, record_ids: Sequence[str]) -> None:
        for rid in record_ids:
            try:
                self.store.delete(rid)
            except Exception:  # noqa: BLE001 - an unreachable record is harmless
                pass

    def _delete_keys(self, rows: Sequence[Any]) -> None:
        """Delete key rows and their writes in one transaction, then their vecmem records."""
        if not rows:
            return
        with self.db.write("deleting LangGraph checkpoints") as conn:
            for r in rows:
                cond = [
                    W.tenant == self.tenant,
                    W.thread_id == r.thread_id,
                    W.checkpoint_ns == r.checkpoint_ns,
                    W.checkpoint_id == r.checkpoint_id,
                ]
                conn.execute(sa.delete(WRITES).where(*cond))
                conn.execute(
                    sa.delete(CHECKPOINTS).where(
                        self._where(r.thread_id, r.checkpoint_ns, r.checkpoint_id)
                    )
                )
        self._forget_records([r.record_id for r in rows])

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint (all namespaces) and pending write of a thread."""
        thread_id = _text("thread_id", thread_id, MAX_KEY)
        with self._buffer.lock:
            self._buffer.forget(thread_id)
        with self.db.write("deleting a LangGraph thread") as conn:
            conn.execute(sa.delete(WRITES).where(W.tenant == self.tenant, W.thread_id == thread_id))
            conn.execute(
                sa.delete(CHECKPOINTS).where(C.tenant == self.tenant, C.thread_id == thread_id)
            )
        self.store.delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) that the given runs created."""
        ids = [str(r) for r in run_ids]
        if not ids:
            return
        self.flush()
        with self.db.read("finding LangGraph checkpoints by run") as conn:
            rows = conn.execute(
                sa.select(*_ROW).where(C.tenant == self.tenant, C.run_id.in_(ids))
            ).all()
        self._delete_keys(rows)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and pending write of a thread to another thread."""
        src = _text("source_thread_id", source_thread_id, MAX_KEY)
        dst = _text("target_thread_id", target_thread_id, MAX_KEY)
        self.flush(src)
        with self.db.read("reading a LangGraph thread") as conn:
            rows = conn.execute(
                sa.select(*_ROW, C.run_id)
                .where(C.tenant == self.tenant, C.thread_id == src)
                .order_by(self.db.exact(C.checkpoint_id))
            ).all()
            writes = conn.execute(
                sa.select(WRITES).where(W.tenant == self.tenant, W.thread_id == src)
            ).all()
        records: dict[tuple[str, str], str] = {}
        new_rows = []
        try:
            for r in rows:
                old = self.store.get(r.record_id)
                parent = records.get((r.checkpoint_ns, r.parent_checkpoint_id or ""))
                info = self.store.save(dst, old.state, metadata=old.info.metadata, parent_id=parent)
                records[(r.checkpoint_ns, r.checkpoint_id)] = info.id
                new_rows.append(
                    {
                        "tenant": self.tenant,
                        "thread_id": dst,
                        "checkpoint_ns": r.checkpoint_ns,
                        "checkpoint_id": r.checkpoint_id,
                        "parent_checkpoint_id": r.parent_checkpoint_id,
                        "record_id": info.id,
                        "run_id": r.run_id,
                        "metadata": r.metadata,
                    }
                )
            new_writes = [
                {
                    **w._asdict(),
                    "thread_id": dst,
                    "value": self.store.codec.encode(
                        self.store.codec.decode(
                            bytes(w.value),
                            aad=self._aad(src, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.idx),
                        ),
                        aad=self._aad(dst, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.idx),
                    )[0],
                }
                for w in writes
            ]
            with self.db.write("copying a LangGraph thread") as conn:
                self.db.upsert(
                    conn,
                    CHECKPOINTS,
                    new_rows,
                    keys=["tenant", "thread_id", "checkpoint_ns", "checkpoint_id"],
                )
                self.db.upsert(
                    conn,
                    WRITES,
                    new_writes,
                    keys=[
                        "tenant",
                        "thread_id",
                        "checkpoint_ns",
                        "checkpoint_id",
                        "task_id",
                        "idx",
                    ],
                )
        except BaseException:
            self._forget_records(list(records.values()))
            raise

    def prune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: Literal["keep_latest", "delete"] | str = "keep_latest",
    ) -> None:
        """``"keep_latest"``: keep each namespace's newest checkpoint (with its writes) of the
        given threads; ``"delete"``: delete the threads."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInputError(f"strategy must be 'keep_latest' or 'delete', got {strategy!r}")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            tid = _text("thread_id", thread_id, MAX_KEY)
            self.flush(tid)
            with self.db.read("reading a LangGraph thread") as conn:
                rows = conn.execute(
                    sa.select(*_ROW).where(C.tenant == self.tenant, C.thread_id == tid)
                ).all()
            newest: dict[str, str] = {}
            for r in rows:
                if r.checkpoint_id > newest.get(r.checkpoint_ns, ""):
                    newest[r.checkpoint_ns] = r.checkpoint_id
            self._delete_keys([r for r in rows if newest[r.checkpoint_ns] != r.checkpoint_id])

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Versions as LangGraph's own SQL savers write them: a zero-padded counter plus a
        random fraction (monotonic within a channel, distinct across branches)."""
        if current is None:
            n = 0
        elif isinstance(current, int):
            n = current
        else:
            n = int(str(current).split(".")[0])
        return f"{n + 1:032}.{random.random():016}"

    # ----------------------------------------------------------------- async twins
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: Literal["keep_latest", "delete"] | str = "keep_latest",
    ) -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)
