"""Agent memory that never loses what was stored: remember, recall, update, undo, consolidate.

>>> from vecmem.agent_memory import AgentMemory
>>> am = AgentMemory(embedder="hashing")                  # in-memory store, in-memory SQLite
>>> w = am.remember("Alice prefers green tea", user_id="alice")
>>> am.remember("alice prefers green tea", user_id="alice").merged     # a near-repeat merges
True
>>> [h.memory.text for h in am.recall("what does alice drink?", user_id="alice")]
['Alice prefers green tea']

How it stays safe:

* Every memory belongs to a scope (``user_id``, ``agent_id``, ``run_id``; at least one); recall
  filters on the scope inside the store, so it never crosses scopes. ``get``, ``versions``,
  ``history``, ``update``, ``forget`` and ``undo`` take the caller's scope too (at least one of
  the three, as ``remember`` does) and answer an id of another scope exactly as a missing one
  (:class:`~vecmem.errors.NotFoundError`, same message), so ids do not leak across scopes. A
  memory is in a scope when each given field matches (``user_id="alice"`` covers alice's
  memories of every agent and run), as in ``recall``. The scope of a memory never changes:
  ``update`` refuses reserved metadata (``user_id``, ``version``, ...) as ``remember`` does.
* An exact repeat (content hash) or a near-duplicate (cosine >= ``dedup_threshold`` within the
  same scope) *merges*: count, last-seen time and metadata are updated, the repeated text is kept
  in the change log.
* An update *supersedes*: the old version gets ``valid_to``, a new version gets ``valid_from``;
  nothing is deleted. ``history(memory_id)`` lists every change with before/after states,
  ``undo(change_id)`` restores the previous state exactly, and ``recall(as_of=t)`` searches the
  versions that were valid at ``t``.
* Consolidation writes a summary memory per group of related memories (extractive by default) and
  lowers the weight of its sources; it never removes them.

Memories are ordinary chunks in any vecmem store (metadata carries the scope and validity); the
version history and change log live in the shared relational database (:mod:`vecmem.db`).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from vecmem._keys import check_name
from vecmem.chunking import split_sentences
from vecmem.db import Database, Key, Migration, open_database
from vecmem.errors import ConflictError, InvalidInputError, NotFoundError
from vecmem.filters import FilterLike, parse_filter
from vecmem.memory import VectorMemory
from vecmem.types import Chunk, content_hash
from vecmem.validation import check_metadata

SCOPE_FIELDS = ("user_id", "agent_id", "run_id")
RESERVED = frozenset(
    SCOPE_FIELDS
    + (
        "memory_id",
        "version",
        "session_id",
        "current",
        "valid_from",
        "valid_to",
        "importance",
        "count",
        "created_at",
        "last_seen",
        "kind",
        "sources",
        "weight",
        "consolidated_into",
        "retracted",
    )
)
DEFAULT_DEDUP_THRESHOLD = 0.86
"""Cosine (all-MiniLM-L6-v2) at or above which two memories of one scope, of the same polarity,
are the same fact. Chosen for F0.5 on labelled pairs from SciFact train abstracts and reported
on test abstracts: see ``benchmarks/bench_agent_memory.py`` and BENCHMARKS.md."""

_meta = sa.MetaData()
versions_table = sa.Table(
    "vecmem_memory_versions",
    _meta,
    sa.Column("memory_id", Key(64), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("user_id", Key(), nullable=True),
    sa.Column("agent_id", Key(), nullable=True),
    sa.Column("run_id", Key(), nullable=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("current", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),  # not Float: MySQL FLOAT is 24-bit
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # the chunk metadata, JSON
    sa.Index("vecmem_memory_versions_scope", "user_id", "agent_id", "run_id", "current"),
)
changes_table = sa.Table(
    "vecmem_memory_changes",
    _meta,
    sa.Column("change_id", Key(64), primary_key=True),
    sa.Column("memory_id", Key(64), nullable=False, index=True),
    sa.Column("op", sa.String(16), nullable=False),
    sa.Column("at", sa.Double, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("payload", sa.Text, nullable=False),  # [{memory_id, version, before, after, text}]
    sa.Column("undone_by", Key(64), nullable=True),
    sa.Column("seq", sa.BigInteger, nullable=False, index=True),  # order of changes
)
_INSERT_VERSION = sa.insert(versions_table)
_UPDATE_VERSION = (
    sa.update(versions_table)
    .where(
        versions_table.c.memory_id == sa.bindparam("m"),
        versions_table.c.version == sa.bindparam("v"),
    )
    .values(current=sa.bindparam("current"), state=sa.bindparam("state"))
)
_INSERT_CHANGE = sa.insert(changes_table)
_MAX_SEQ = sa.select(sa.func.coalesce(sa.func.max(changes_table.c.seq), 0))


def _double_times(m: Any) -> None:
    """Tables made before December 2026 on MySQL/MariaDB hold the times as FLOAT (single
    precision: an epoch time rounded to about 2 minutes); widen them to DOUBLE (the precision
    already lost stays lost). Other dialects made them double precision already."""
    if m.conn.dialect.name in ("mysql", "mariadb"):
        m.conn.exec_driver_sql(
            "ALTER TABLE vecmem_memory_versions MODIFY created_at DOUBLE NOT NULL"
        )
        m.conn.exec_driver_sql("ALTER TABLE vecmem_memory_changes MODIFY at DOUBLE NOT NULL")


MIGRATIONS = [
    Migration(
        "memory versions and changes", lambda m: m.create_tables(versions_table, changes_table)
    ),
    Migration("times as DOUBLE on MySQL", _double_times),
]


@dataclass(frozen=True)
class Memory:
    """One version of a memory."""

    id: str
    version: int
    text: str
    state: Mapping[str, Any]

    @property
    def metadata(self) -> dict[str, Any]:
        """The caller's own metadata (without vecmem's reserved fields)."""
        return {k: v for k, v in self.state.items() if k not in RESERVED}

    def __getattr__(self, name: str) -> Any:  # user_id, count, valid_from, weight, ...
        if name in RESERVED:
            return self.state.get(name)
        raise AttributeError(name)


@dataclass(frozen=True)
class MemoryWrite:
    """What ``remember``/``update`` did."""

    memory_id: str
    version: int
    change_id: str
    merged: bool = False


@dataclass(frozen=True)
class MemoryHit:
    memory: Memory
    score: float
    relevance: float
    recency: float


@dataclass(frozen=True)
class Change:
    change_id: str
    memory_id: str
    op: str
    at: float
    reason: str | None
    payload: list[dict[str, Any]]
    undone_by: str | None


@dataclass
class Episode:
    """Memories of one session (or one time window), for episodic recall."""

    key: str
    start: float
    end: float
    score: float
    hits: list[MemoryHit] = field(default_factory=list)


@dataclass
class ConsolidationReport:
    summaries_created: list[str] = field(default_factory=list)
    summaries_updated: list[str] = field(default_factory=list)
    memories_consolidated: int = 0
    change_ids: list[str] = field(default_factory=list)


_NEGATIONS = frozenset("not no never none nor cannot without neither nobody nothing".split())


def _polarity(text: str) -> bool:
    """Whether a text is negated (an odd number of negation words, counting "n't").

    Embeddings barely separate "X is Y" from "X is not Y" (cosine ~0.98 with MiniLM), so a
    near-duplicate merge also requires the same polarity; a contradiction becomes a new memory.
    """
    words = re.findall(r"[a-z']+", text.lower())
    return sum(w in _NEGATIONS or w.endswith("n't") for w in words) % 2 == 1


def _chunk_id(memory_id: str, version: int) -> str:
    return f"mem:{memory_id}:v{version}"


class AgentMemory:
    """Scoped, versioned agent memory over a :class:`~vecmem.memory.VectorMemory`.

    ``memory``: the vector memory holding the memories (default: in memory, with ``embedder``).
    ``db``: the relational database for history (a :class:`~vecmem.db.Database` or URL; default
    an in-memory SQLite).
    """

    def __init__(
        self,
        memory: VectorMemory | None = None,
        *,
        db: Database | str | None = None,
        embedder: Any = None,
        dedup_threshold: float = DEFAULT_DEDUP_THRESHOLD,
        half_life_days: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0.0 < dedup_threshold <= 1.0:
            raise InvalidInputError("dedup_threshold must be in (0, 1]")
        self.memory = memory if memory is not None else VectorMemory(embedder=embedder)
        self.db, self._owns_db = open_database(db, default="sqlite://")
        self.db.migrate("agent_memory", MIGRATIONS)
        self.dedup_threshold = dedup_threshold
        self.half_life_days = half_life_days
        self.clock = clock
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _scope(user_id: str | None, agent_id: str | None, run_id: str | None) -> dict[str, str]:
        scope = {k: v for k, v in zip(SCOPE_FIELDS, (user_id, agent_id, run_id)) if v is not None}
        if not scope:
            raise InvalidInputError("a memory needs a scope: user_id, agent_id or run_id")
        for k, v in scope.items():
            check_name(k, v)  # a string the history database and every store can hold
        return scope

    @staticmethod
    def _check_id(kind: str, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{kind} must be a non-empty string, got {value!r}")
        return value

    @staticmethod
    def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
        meta = check_metadata(metadata, "the memory")  # JSON, ints within ±2**53, ...
        clash = RESERVED & set(meta)
        if clash:
            raise InvalidInputError(f"metadata keys {sorted(clash)} are reserved by agent memory")
        return meta

    @staticmethod
    def _scoped(q: Any, scope: Mapping[str, str]) -> Any:
        """``q`` (over the versions table) limited to the rows of ``scope``."""
        for f, v in scope.items():
            q = q.where(versions_table.c[f] == v)
        return q

    def _within(
        self, conn: sa.Connection, payload: list[dict[str, Any]], scope: Mapping[str, str]
    ) -> bool:
        """Whether every version a change touched (its payload) is in ``scope``."""
        touched = {(p["memory_id"], p["version"]) for p in payload}
        v = versions_table
        q = self._scoped(
            sa.select(v.c.memory_id, v.c.version).where(
                v.c.memory_id.in_(sorted({m for m, _ in touched}))
            ),
            scope,
        )
        return bool(touched) and touched <= {(r.memory_id, r.version) for r in conn.execute(q)}

    @staticmethod
    def _exact_scope_filter(scope: Mapping[str, str]) -> dict[str, Any]:
        """The same scope exactly (fields not given must be absent): for dedup."""
        return {f: (scope[f] if f in scope else {"$exists": False}) for f in SCOPE_FIELDS}

    def _upsert_state(
        self, conn: sa.Connection, memory_id: str, version: int, text: str, state: Mapping[str, Any]
    ) -> None:
        """Write a version row: insert when new, else update its mutable columns. The
        statements are module constants, so SQLAlchemy compiles them once."""
        row = {
            "m": memory_id,
            "v": version,
            "current": bool(state.get("current")),
            "state": json.dumps(dict(state), ensure_ascii=False),
        }
        if conn.execute(_UPDATE_VERSION, row).rowcount == 0:
            conn.execute(
                _INSERT_VERSION,
                {
                    "memory_id": memory_id,
                    "version": version,
                    "text": text,
                    "user_id": state.get("user_id"),
                    "agent_id": state.get("agent_id"),
                    "run_id": state.get("run_id"),
                    "kind": state.get("kind", "memory"),
                    "current": row["current"],
                    "created_at": state["created_at"],
                    "state": row["state"],
                },
            )

    def _load(
        self, memory_id: str, version: int | None = None, *, scope: Mapping[str, str] | None = None
    ) -> Memory:
        """A version (default: the current one); with ``scope``, only if it is in that scope."""
        t = versions_table
        q = sa.select(t.c.memory_id, t.c.version, t.c.text, t.c.state).where(
            t.c.memory_id == memory_id
        )
        q = (
            q.where(t.c.version == version)
            if version is not None
            else q.where(t.c.current.is_(True))
        )
        if scope is not None:
            q = self._scoped(q, scope)
        with self.db.read("reading a memory") as conn:
            row = conn.execute(q).first()
        if row is None:
            raise NotFoundError(
                f"no {'version ' + str(version) + ' of ' if version else 'current '}"
                f"memory {memory_id!r}"
            )
        return Memory(row.memory_id, row.version, row.text, json.loads(row.state))

    def _restamp(self, updates: Sequence[tuple[Memory, dict[str, Any]]]) -> None:
        """Rewrite stored metadata of existing versions (no re-embedding)."""
        ids = [_chunk_id(m.id, m.version) for m, _ in updates]
        self.memory.space  # noqa: B018  (connects the store: update/forget may come first)
        vectors = self.memory.store.get_vectors(ids)
        chunks = [
            Chunk.create(f"mem:{m.id}", m.version, m.text, state, id=cid)
            for (m, state), cid in zip(updates, ids)
        ]
        self.memory.store.upsert(chunks, vectors)

    def _record(
        self,
        conn: sa.Connection,
        op: str,
        memory_id: str,
        payload: list[dict[str, Any]],
        reason: str | None,
        at: float,
    ) -> str:
        change_id = uuid.uuid4().hex
        seq = conn.execute(_MAX_SEQ).scalar_one() + 1
        conn.execute(
            _INSERT_CHANGE,
            {
                "change_id": change_id,
                "memory_id": memory_id,
                "op": op,
                "at": at,
                "reason": reason,
                "payload": json.dumps(payload, ensure_ascii=False),
                "undone_by": None,
                "seq": seq,
            },
        )
        return change_id

    # ------------------------------------------------------------------ remember
    def remember(
        self,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        session_id: str | None = None,
        importance: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        memory_id: str | None = None,
    ) -> MemoryWrite:
        """Store a memory, or merge it into an exact or near-duplicate one of the same scope.

        ``memory_id``: the caller's own id for a new memory (a framework that names its
        memories, such as agno); such a memory is never merged, and an id already used is a
        :class:`ConflictError`."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a memory needs non-empty text")
        if memory_id is not None:
            check_name("memory_id", self._check_id("memory_id", memory_id))
        if importance is not None and not 0.0 <= importance <= 1.0:
            raise InvalidInputError("importance must be in [0, 1]")
        meta = self._check_metadata(metadata)
        scope = self._scope(user_id, agent_id, run_id)
        now = self.clock()
        with self._lock:
            vector = self.memory.embedder.embed([text])[0]
            if memory_id is None:
                dup = self._find_duplicate(text, vector, scope)
                if dup is not None:
                    return self._merge(dup, text, meta, importance, session_id, now)
                memory_id = uuid.uuid4().hex
            elif self._exists(memory_id):
                raise ConflictError(f"memory id {memory_id!r} is already used")
            state: dict[str, Any] = {
                **meta,
                **scope,
                "memory_id": memory_id,
                "version": 1,
                "kind": "memory",
                "current": True,
                "valid_from": now,
                "created_at": now,
                "last_seen": now,
                "count": 1,
                "weight": 1.0,
            }
            if session_id is not None:
                state["session_id"] = session_id
            if importance is not None:
                state["importance"] = float(importance)
            return self._create(memory_id, text, state, vector, now, op="create")

    def _create(
        self,
        memory_id: str,
        text: str,
        state: dict[str, Any],
        vector: np.ndarray,
        now: float,
        *,
        op: str,
        reason: str | None = None,
    ) -> MemoryWrite:
        version = state["version"]
        chunk = Chunk.create(
            f"mem:{memory_id}", version, text, state, id=_chunk_id(memory_id, version)
        )
        self.memory.space  # noqa: B018
        self.memory.store.upsert([chunk], vector[None, :])

        def tx(conn: sa.Connection) -> str:
            self._upsert_state(conn, memory_id, version, text, state)
            return self._record(
                conn,
                op,
                memory_id,
                [
                    {
                        "memory_id": memory_id,
                        "version": version,
                        "before": None,
                        "after": state,
                        "text": text,
                    }
                ],
                reason,
                now,
            )

        try:
            change_id = self.db.transact(tx, what="recording a memory")
        except BaseException:
            self.memory.store.delete(ids=[chunk.id])  # the store write never became visible
            raise
        return MemoryWrite(memory_id, version, change_id)

    def _exists(self, memory_id: str) -> bool:
        t = versions_table
        with self.db.read("reading a memory") as conn:
            return (
                conn.execute(
                    sa.select(t.c.version).where(t.c.memory_id == memory_id).limit(1)
                ).first()
                is not None
            )

    def memories(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Memory]:
        """The current memories (and summaries) whose scope has the fields given (none given:
        every scope), optionally only ``ids``; oldest first.

        >>> am = AgentMemory(embedder="hashing")
        >>> _ = am.remember("likes tea", user_id="ann", memory_id="m1")
        >>> [(m.id, m.text) for m in am.memories(user_id="ann")]
        [('m1', 'likes tea')]
        """
        t = versions_table
        q = sa.select(t.c.memory_id, t.c.version, t.c.text, t.c.state).where(t.c.current.is_(True))
        for f, v in zip(SCOPE_FIELDS, (user_id, agent_id, run_id)):
            if v is not None:
                q = q.where(t.c[f] == check_name(f, v))
        if ids is not None:
            wanted = [self._check_id("memory_id", i) for i in ids]
            if not wanted:
                return []
            q = q.where(t.c.memory_id.in_(wanted))
        with self.db.read("listing memories") as conn:
            rows = conn.execute(q.order_by(t.c.created_at, t.c.memory_id)).fetchall()
        return [Memory(r.memory_id, r.version, r.text, json.loads(r.state)) for r in rows]

    def _find_duplicate(
        self, text: str, vector: np.ndarray, scope: Mapping[str, str]
    ) -> Memory | None:
        flt = parse_filter({**self._exact_scope_filter(scope), "current": True, "kind": "memory"})
        self.memory.space  # noqa: B018
        found = self.memory.store.query(vector, k=5, filter=flt)
        h = content_hash(text)
        for chunk, sim in found:
            if chunk.content_hash == h or (
                sim >= self.dedup_threshold and _polarity(chunk.text) == _polarity(text)
            ):
                st = dict(chunk.metadata)
                return Memory(st["memory_id"], st["version"], chunk.text, st)
        return None

    def _merge(
        self,
        old: Memory,
        text: str,
        meta: dict[str, Any],
        importance: float | None,
        session_id: str | None,
        now: float,
    ) -> MemoryWrite:
        before = dict(old.state)
        after = {**before, **meta, "count": int(before.get("count", 1)) + 1, "last_seen": now}
        if importance is not None:
            after["importance"] = max(float(before.get("importance", 0.0)), importance)
        if session_id is not None and "session_id" not in after:
            after["session_id"] = session_id
        self._restamp([(old, after)])

        def tx(conn: sa.Connection) -> str:
            self._upsert_state(conn, old.id, old.version, old.text, after)
            return self._record(
                conn,
                "merge",
                old.id,
                [
                    {
                        "memory_id": old.id,
                        "version": old.version,
                        "before": before,
                        "after": after,
                        "text": text,
                    }
                ],
                None,
                now,
            )

        try:
            change_id = self.db.transact(tx, what="recording a merge")
        except BaseException:
            self._restamp([(old, before)])
            raise
        return MemoryWrite(old.id, old.version, change_id, merged=True)

    # ------------------------------------------------------------------ update / forget
    def update(
        self,
        memory_id: str,
        text: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> MemoryWrite:
        """Supersede the current version with a new text; the old version stays (valid_to set).

        ``metadata`` is merged into the memory's; reserved keys (the scope, ``version``, ...)
        are refused. A memory outside the given scope is :class:`NotFoundError`."""
        self._check_id("memory_id", memory_id)
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError("a memory needs non-empty text")
        meta = self._check_metadata(metadata)
        scope = self._scope(user_id, agent_id, run_id)
        with self._lock:
            old = self._load(memory_id, scope=scope)
            now = self.clock()
            closed = {**old.state, "current": False, "valid_to": now}
            new_state = {
                **old.state,
                **meta,
                "version": old.version + 1,
                "valid_from": now,
                "last_seen": now,
                "current": True,
            }
            new_state.pop("valid_to", None)
            vector = self.memory.embedder.embed([text])[0]
            return self._supersede(old, closed, text, new_state, vector, now, "update", reason)

    def _supersede(
        self,
        old: Memory,
        closed: dict[str, Any],
        text: str | None,
        new_state: dict[str, Any] | None,
        vector: np.ndarray | None,
        now: float,
        op: str,
        reason: str | None,
    ) -> MemoryWrite:
        self._restamp([(old, closed)])
        new_chunk = None
        if text is not None and new_state is not None and vector is not None:
            new_chunk = Chunk.create(
                f"mem:{old.id}",
                new_state["version"],
                text,
                new_state,
                id=_chunk_id(old.id, new_state["version"]),
            )
            self.memory.store.upsert([new_chunk], vector[None, :])

        def tx(conn: sa.Connection) -> str:
            self._upsert_state(conn, old.id, old.version, old.text, closed)
            payload = [
                {
                    "memory_id": old.id,
                    "version": old.version,
                    "before": dict(old.state),
                    "after": closed,
                    "text": old.text,
                }
            ]
            if new_chunk is not None and new_state is not None:
                self._upsert_state(conn, old.id, new_state["version"], new_chunk.text, new_state)
                payload.append(
                    {
                        "memory_id": old.id,
                        "version": new_state["version"],
                        "before": None,
                        "after": new_state,
                        "text": new_chunk.text,
                    }
                )
            return self._record(conn, op, old.id, payload, reason, now)

        try:
            change_id = self.db.transact(tx, what=f"recording {op}")
        except BaseException:
            self._restamp([(old, dict(old.state))])
            if new_chunk is not None:
                self.memory.store.delete(ids=[new_chunk.id])
            raise
        version = new_state["version"] if new_state else old.version
        return MemoryWrite(old.id, version, change_id)

    def forget(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> MemoryWrite:
        """Close the current version (it stays in history and in ``as_of`` searches)."""
        self._check_id("memory_id", memory_id)
        scope = self._scope(user_id, agent_id, run_id)
        with self._lock:
            old = self._load(memory_id, scope=scope)
            now = self.clock()
            closed = {**old.state, "current": False, "valid_to": now}
            return self._supersede(old, closed, None, None, None, now, "forget", reason)

    # ------------------------------------------------------------------ history / undo
    def history(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> list[Change]:
        """Every change that touched the memory, oldest first, with before/after states."""
        self._check_id("memory_id", memory_id)
        scope = self._scope(user_id, agent_id, run_id)
        t, v = changes_table, versions_table
        with self.db.read("reading memory history") as conn:
            mine = conn.execute(
                self._scoped(sa.select(v.c.version).where(v.c.memory_id == memory_id), scope).limit(
                    1
                )
            ).first()
            if mine is None:
                raise NotFoundError(f"no memory {memory_id!r}")
            rows = conn.execute(sa.select(t).order_by(t.c.seq)).fetchall()
        out = []
        for r in rows:
            payload = json.loads(r.payload)
            if r.memory_id == memory_id or any(p["memory_id"] == memory_id for p in payload):
                out.append(
                    Change(r.change_id, r.memory_id, r.op, r.at, r.reason, payload, r.undone_by)
                )
        if not out:
            raise NotFoundError(f"no memory {memory_id!r}")
        return out

    def versions(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> list[Memory]:
        """Every version of a memory, oldest first (texts are never removed)."""
        self._check_id("memory_id", memory_id)
        return self._versions(memory_id, self._scope(user_id, agent_id, run_id))

    def _versions(self, memory_id: str, scope: Mapping[str, str]) -> list[Memory]:
        t = versions_table
        with self.db.read("reading memory versions") as conn:
            rows = conn.execute(
                self._scoped(
                    sa.select(t.c.memory_id, t.c.version, t.c.text, t.c.state).where(
                        t.c.memory_id == memory_id
                    ),
                    scope,
                ).order_by(t.c.version)
            ).fetchall()
        if not rows:
            raise NotFoundError(f"no memory {memory_id!r}")
        return [Memory(r.memory_id, r.version, r.text, json.loads(r.state)) for r in rows]

    def get(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
    ) -> Memory:
        """The current version of a memory of the given scope."""
        self._check_id("memory_id", memory_id)
        return self._load(memory_id, scope=self._scope(user_id, agent_id, run_id))

    def undo(
        self,
        change_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Restore every version a change touched to its state before the change.

        Later changes to the same versions must be undone first (else :class:`ConflictError`).
        A change that touched a memory outside the given scope is :class:`NotFoundError`.
        Returns the id of the undo change (itself in the history).
        """
        self._check_id("change_id", change_id)
        scope = self._scope(user_id, agent_id, run_id)
        with self._lock:
            t = changes_table
            with self.db.read("reading a change") as conn:
                row = conn.execute(sa.select(t).where(t.c.change_id == change_id)).first()
                if row is None or not self._within(conn, json.loads(row.payload), scope):
                    raise NotFoundError(f"no change {change_id!r}")
                later = conn.execute(
                    sa.select(t).where(t.c.seq > row.seq, t.c.undone_by.is_(None), t.c.op != "undo")
                ).fetchall()
            if row.undone_by is not None:
                raise ConflictError(f"change {change_id} was already undone by {row.undone_by}")
            if row.op == "undo":
                raise ConflictError("an undo cannot be undone; make the change again instead")
            payload = json.loads(row.payload)
            touched = {(p["memory_id"], p["version"]) for p in payload}
            for other in later:
                if touched & {(p["memory_id"], p["version"]) for p in json.loads(other.payload)}:
                    raise ConflictError(
                        f"change {other.change_id} ({other.op}) came later and touches the same "
                        "memory; undo it first"
                    )
            now = self.clock()
            restamps: list[tuple[Memory, dict[str, Any]]] = []
            undo_payload = []
            for p in payload:
                current = self._load(p["memory_id"], p["version"])
                if p["before"] is None:  # the version was created: retract it, keep its text
                    restored = {
                        **current.state,
                        "current": False,
                        "valid_to": now,
                        "retracted": True,
                    }
                else:
                    restored = dict(p["before"])
                restamps.append((current, restored))
                undo_payload.append(
                    {
                        "memory_id": p["memory_id"],
                        "version": p["version"],
                        "before": dict(current.state),
                        "after": restored,
                        "text": current.text,
                    }
                )
            self._restamp(restamps)

            def tx(conn: sa.Connection) -> str:
                for m, st in restamps:
                    self._upsert_state(conn, m.id, m.version, m.text, st)
                undo_id = self._record(
                    conn, "undo", row.memory_id, undo_payload, reason or f"undo {change_id}", now
                )
                conn.execute(
                    sa.update(t).where(t.c.change_id == change_id).values(undone_by=undo_id)
                )
                return undo_id

            try:
                return self.db.transact(tx, what="recording an undo")
            except BaseException:
                self._restamp([(m, dict(m.state)) for m, _ in restamps])
                raise

    # ------------------------------------------------------------------ recall
    def recall(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        k: int = 10,
        filter: FilterLike = None,
        as_of: float | None = None,
        recency_weight: float = 0.0,
        importance_weight: float = 0.0,
        half_life_days: float | None = None,
        mode: str = "hybrid",
    ) -> list[MemoryHit]:
        """Memories of the scope most relevant to ``query``.

        score = (1 - recency_weight - importance_weight) * relevance * weight
                + recency_weight * 0.5 ** (age / half_life) + importance_weight * importance,
        where relevance is the search score scaled to [0, 1] over the candidates, weight is
        lowered for memories a summary covers, age counts from the last time it was seen, and
        importance defaults to 0.5. ``as_of`` (a Unix time) searches the versions valid then.
        """
        if (
            not 0 <= recency_weight <= 1
            or not 0 <= importance_weight <= 1
            or recency_weight + importance_weight > 1
        ):
            raise InvalidInputError(
                "recency_weight and importance_weight must be in [0, 1] and sum to at most 1"
            )
        if half_life_days is not None and (
            isinstance(half_life_days, bool)
            or not isinstance(half_life_days, int | float)
            or not 0 < half_life_days < math.inf
        ):
            raise InvalidInputError(
                f"half_life_days must be a finite number of days > 0, got {half_life_days!r}"
            )
        scope = self._scope(user_id, agent_id, run_id)
        clauses: list[Any] = [dict(scope)]
        if as_of is None:
            clauses.append({"current": True})
        else:
            clauses += [
                {"valid_from": {"$lte": float(as_of)}},
                {"$or": [{"valid_to": {"$gt": float(as_of)}}, {"valid_to": {"$exists": False}}]},
                {"retracted": {"$ne": True}},
            ]
        if filter is not None:
            clauses.append(dict(filter) if isinstance(filter, Mapping) else filter)
        hits = self.memory.search(
            query,
            k=max(k * 4, 40),
            mode=mode,  # type: ignore[arg-type]
            filter={"$and": clauses},
        )
        if not hits:
            return []
        top = max(h.score for h in hits) or 1.0
        now = self.clock() if as_of is None else float(as_of)
        half = (half_life_days or self.half_life_days) * 86400.0
        rw, iw = recency_weight, importance_weight
        out = []
        for h in hits:
            st = dict(h.metadata)
            rel = max(h.score, 0.0) / top * float(st.get("weight", 1.0))
            age = max(0.0, now - float(st.get("last_seen", now)))
            rec = 0.5 ** (age / half) if half > 0 else 0.0
            imp = float(st.get("importance", 0.5))
            score = (1 - rw - iw) * rel + rw * rec + iw * imp
            out.append(
                MemoryHit(Memory(st["memory_id"], st["version"], h.text, st), score, rel, rec)
            )
        out.sort(key=lambda x: (-x.score, x.memory.id))
        return out[:k]

    def episodic_recall(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        k: int = 5,
        temporal_weight: float = 0.3,
        window_seconds: float = 3600.0,
    ) -> list[Episode]:
        """Recall grouped into episodes (by ``session_id``, else by time window), each episode
        scored by its best memory blended with its recency (``temporal_weight``)."""
        if not 0 <= temporal_weight <= 1:
            raise InvalidInputError("temporal_weight must be in [0, 1]")
        hits = self.recall(query, user_id=user_id, agent_id=agent_id, run_id=run_id, k=k * 5)
        groups: dict[str, list[MemoryHit]] = {}
        for h in hits:
            st = h.memory.state
            key = st.get("session_id") or f"t{int(float(st['created_at']) // window_seconds)}"
            groups.setdefault(str(key), []).append(h)
        now = self.clock()
        half = self.half_life_days * 86400.0
        episodes = []
        for key, members in groups.items():
            times = [float(m.memory.state["created_at"]) for m in members]
            recency = 0.5 ** (max(0.0, now - max(times)) / half)
            score = (1 - temporal_weight) * max(
                m.score for m in members
            ) + temporal_weight * recency
            members.sort(key=lambda m: float(m.memory.state["created_at"]))
            episodes.append(Episode(key, min(times), max(times), score, members))
        episodes.sort(key=lambda e: (-e.score, e.key))
        return episodes[:k]

    # ------------------------------------------------------------------ consolidation
    def consolidate(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        window: float = 7 * 86400.0,
        similarity: float = 0.75,
        min_group: int = 2,
        source_weight: float = 0.5,
        max_sentences: int = 3,
        summarizer: Callable[[list[str]], str] | None = None,
    ) -> ConsolidationReport:
        """Summarise groups of related memories of a scope; never removes a memory.

        Memories not yet consolidated are grouped (greedy clustering by cosine >= ``similarity``
        within time windows of ``window`` seconds); a group of at least ``min_group`` becomes a
        summary memory (``kind="summary"``, ``sources`` = the memory ids), extractive by default
        (the ``max_sentences`` sentences closest to the group's centroid) or written by
        ``summarizer(texts)``. The sources' weight drops to ``source_weight`` and they record
        ``consolidated_into``. Running it again changes nothing; new memories are processed
        incrementally (joining an existing summary of their window when similar enough).
        """
        scope = self._scope(user_id, agent_id, run_id)
        report = ConsolidationReport()
        with self._lock:
            pending, summaries = self._consolidation_inputs(scope)
            if not pending:
                return report
            ids = [_chunk_id(m.id, m.version) for m in pending]
            vecs = self.memory.store.get_vectors(ids)
            sum_vecs = (
                self.memory.store.get_vectors([_chunk_id(s.id, s.version) for s in summaries])
                if summaries
                else np.zeros((0, vecs.shape[1]), np.float32)
            )
            groups = _cluster(pending, vecs, summaries, sum_vecs, window, similarity)
            for g in groups:
                if g.summary is None and len(g.members) < min_group:
                    continue
                if g.members:
                    self._write_summary(g, scope, source_weight, max_sentences, summarizer, report)
        return report

    def _consolidation_inputs(self, scope: Mapping[str, str]) -> tuple[list[Memory], list[Memory]]:
        t = versions_table
        q = sa.select(t.c.memory_id, t.c.version, t.c.text, t.c.state).where(t.c.current.is_(True))
        for f in SCOPE_FIELDS:
            q = q.where(t.c[f] == scope[f]) if f in scope else q.where(t.c[f].is_(None))
        with self.db.read("listing memories") as conn:
            rows = conn.execute(q.order_by(t.c.created_at, t.c.memory_id)).fetchall()
        mems = [Memory(r.memory_id, r.version, r.text, json.loads(r.state)) for r in rows]
        pending = [
            m
            for m in mems
            if m.state.get("kind") == "memory" and "consolidated_into" not in m.state
        ]
        summaries = [m for m in mems if m.state.get("kind") == "summary"]
        return pending, summaries

    @staticmethod
    def _summary_text(
        members: Sequence[tuple[str, np.ndarray]],
        max_sentences: int,
        summarizer: Callable[[list[str]], str] | None,
    ) -> str:
        """Extractive by default: sentences of the members closest to the group's centroid
        (ties to earlier sentences), in the members' order; no model call."""
        texts = [t for t, _ in members]
        if summarizer is not None:
            out = summarizer(texts)
            if not isinstance(out, str) or not out.strip():
                raise InvalidInputError("the summarizer returned no text")
            return out
        vecs = np.stack([v for _, v in members])
        centrality = vecs @ vecs.mean(axis=0)
        scored = []  # (score, member, position, sentence)
        for i, text in enumerate(texts):
            for j, sentence in enumerate(split_sentences(text) or [text]):
                scored.append((float(centrality[i]) - 1e-3 * j, i, j, sentence))
        picked, seen = [], set()
        for item in sorted(scored, key=lambda x: (-x[0], x[1], x[2])):
            key = item[3].lower().strip(" .!?")
            if key not in seen:
                seen.add(key)
                picked.append(item)
            if len(picked) == max_sentences:
                break
        return " ".join(x[3] for x in sorted(picked, key=lambda x: (x[1], x[2])))

    def _write_summary(
        self,
        group: _Group,
        scope: Mapping[str, str],
        source_weight: float,
        max_sentences: int,
        summarizer: Callable[[list[str]], str] | None,
        report: ConsolidationReport,
    ) -> None:
        old = group.summary
        members = [m for m, _ in group.members]
        earlier = list(old.state.get("sources", [])) if old else []
        source_ids = earlier + [m.id for m in members]
        inputs = [(m.text, v) for m, v in group.members]
        if earlier:
            prior = [self._versions(i, scope)[-1] for i in earlier]
            prior_vecs = self.memory.store.get_vectors([_chunk_id(p.id, p.version) for p in prior])
            inputs = [(p.text, v) for p, v in zip(prior, prior_vecs)] + inputs
        text = self._summary_text(inputs, max_sentences, summarizer)
        now = self.clock()
        created = min(float(m.state["created_at"]) for m in members)
        if old is not None:
            created = min(created, float(old.state["created_at"]))
        summary_state: dict[str, Any] = {
            **scope,
            "kind": "summary",
            "sources": source_ids,
            "current": True,
            "valid_from": now,
            "created_at": created,
            "last_seen": now,
            "count": len(source_ids),
            "weight": 1.0,
            "importance": max([float(m.state.get("importance", 0.5)) for m in members] + [0.5]),
        }
        vector = self.memory.embedder.embed([text])[0]
        sources_after = [(m, {**m.state, "weight": source_weight}) for m in members]
        if old is None:
            summary_id = uuid.uuid4().hex
            summary_state.update(memory_id=summary_id, version=1)
            for _, st in sources_after:
                st["consolidated_into"] = summary_id
            write = self._create(
                summary_id,
                text,
                summary_state,
                vector,
                now,
                op="consolidate",
                reason=f"summary of {len(source_ids)} memories",
            )
            report.summaries_created.append(summary_id)
        else:
            summary_state.update(memory_id=old.id, version=old.version + 1)
            for _, st in sources_after:
                st["consolidated_into"] = old.id
            closed = {**old.state, "current": False, "valid_to": now}
            write = self._supersede(
                old,
                closed,
                text,
                summary_state,
                vector,
                now,
                "consolidate",
                f"summary grows to {len(source_ids)} memories",
            )
            report.summaries_updated.append(old.id)
        self._restamp(sources_after)

        def tx(conn: sa.Connection) -> None:
            payload = []
            for m, st in sources_after:
                self._upsert_state(conn, m.id, m.version, m.text, st)
                payload.append(
                    {
                        "memory_id": m.id,
                        "version": m.version,
                        "before": dict(m.state),
                        "after": st,
                        "text": m.text,
                    }
                )
            # the sources' restamp belongs to the summary's change, so one undo reverts both
            row = conn.execute(
                sa.select(changes_table.c.payload).where(
                    changes_table.c.change_id == write.change_id
                )
            ).scalar_one()
            conn.execute(
                sa.update(changes_table)
                .where(changes_table.c.change_id == write.change_id)
                .values(payload=json.dumps(json.loads(row) + payload, ensure_ascii=False))
            )

        try:
            self.db.transact(tx, what="recording consolidation")
        except BaseException:
            self._restamp([(m, dict(m.state)) for m in members])
            raise
        report.memories_consolidated += len(members)
        report.change_ids.append(write.change_id)

    def consolidate_in_background(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        window: float = 7 * 86400.0,
        similarity: float = 0.75,
        summarizer: Callable[[list[str]], str] | None = None,
    ) -> Future[ConsolidationReport]:
        """Run :meth:`consolidate` in a worker thread while searches go on; remember() waits
        for the memory's lock only while consolidation holds it."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vecmem-consolidate")
        return self._pool.submit(
            self.consolidate,
            user_id=user_id,
            agent_id=agent_id,
            run_id=run_id,
            window=window,
            similarity=similarity,
            summarizer=summarizer,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self.memory.close()
        if self._owns_db:
            self.db.close()


@dataclass
class _Group:
    summary: Memory | None
    members: list[tuple[Memory, np.ndarray]] = field(default_factory=list)


def _cluster(
    pending: Sequence[Memory],
    vecs: np.ndarray,
    summaries: Sequence[Memory],
    sum_vecs: np.ndarray,
    window: float,
    similarity: float,
) -> list[_Group]:
    """Greedy leader clustering in time order, per time window: a memory joins the group (or
    existing summary) whose centroid is most similar, if at least ``similarity``; else it starts
    a group. Vectorised per memory: O(groups in its window) dot products."""

    def bucket(m: Memory) -> int:
        return int(float(m.state["created_at"]) // window)

    by_bucket: dict[int, list[int]] = {}
    for i, m in enumerate(pending):
        by_bucket.setdefault(bucket(m), []).append(i)
    out: list[_Group] = []
    for b, idx in by_bucket.items():
        idx.sort(key=lambda i: (float(pending[i].state["created_at"]), pending[i].id))
        seeds = [j for j, s in enumerate(summaries) if bucket(s) == b]
        dim = vecs.shape[1]
        sums = np.zeros((len(seeds) + len(idx), dim), dtype=np.float64)
        groups = [_Group(summaries[j]) for j in seeds]
        if seeds:
            sums[: len(seeds)] = sum_vecs[seeds]
        n = len(seeds)
        norms = np.zeros(len(sums))
        norms[:n] = np.linalg.norm(sums[:n], axis=1)
        for i in idx:
            v = vecs[i]
            if n:
                sims = (sums[:n] @ v) / np.where(norms[:n] > 0, norms[:n], 1.0)
                j = int(np.argmax(sims))
                if sims[j] >= similarity:
                    groups[j].members.append((pending[i], v))
                    sums[j] += v
                    norms[j] = np.linalg.norm(sums[j])
                    continue
            groups.append(_Group(None, [(pending[i], v)]))
            sums[n] = v
            norms[n] = np.linalg.norm(v)
            n += 1
        out.extend(groups)
    return out
