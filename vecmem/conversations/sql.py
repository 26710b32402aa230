"""Conversations on the shared relational database (SQLite, PostgreSQL, MySQL/MariaDB).

Tables ``vecmem_conv_sessions`` (one row per session, with running totals),
``vecmem_conv_tags`` and ``vecmem_conv_messages`` (primary key ``(tenant, user_id, session_id,
seq)``, so the last N messages of a session are one index range scan). Adding messages locks the
session row, so concurrent writers to one session get consecutive positions. On PostgreSQL
(psycopg 3) batches of 64 messages or more are written with ``COPY``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from vecmem._keys import (
    MAX_KEY,
    MAX_TENANT,
    check_metadata,
    check_name,
    check_tags,
    check_tenant,
)
from vecmem._sqlite import SQLiteOptions
from vecmem.conversations.base import (
    Message,
    OrderBy,
    Session,
    TenantUsage,
    Usage,
    check_ids,
    check_optional,
    check_page,
    check_query,
    export_document,
    prepare,
    with_seq,
)
from vecmem.conversations.partitions import (
    Period,
    check_period,
    ensure_partitions,
    partition_table,
    table_period,
)
from vecmem.conversations.sessions import (
    MergeStrategy,
    Overflow,
    Permission,
    branched,
    check_at,
    check_limits,
    check_merge,
    check_participant,
    check_permission,
    is_live,
    limit_drop,
    merge,
    not_found,
    overflow_after,
    require,
    require_owner,
    usage_totals,
)
from vecmem.db import Database, Key, Migration, Migrator, Text, Timestamp, dumps, open_database
from vecmem.errors import ConfigurationError, ConflictError

metadata = sa.MetaData()


def _ids() -> list[sa.Column[str]]:
    """The three key columns every table starts with."""
    return [
        sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
        sa.Column("user_id", Key(MAX_KEY), primary_key=True),
        sa.Column("session_id", Key(MAX_KEY), primary_key=True),
    ]


SESSIONS = sa.Table(
    "vecmem_conv_sessions",
    metadata,
    *_ids(),
    sa.Column("agent_id", Key(MAX_KEY), nullable=True),
    sa.Column("title", Text, nullable=True),
    sa.Column("metadata", Text, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Column("message_count", sa.BigInteger, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost", sa.Double, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("max_messages", sa.BigInteger, nullable=True),
    sa.Column("overflow", Key(16), nullable=True),
    # messages dropped by trim_oldest: the next message's seq is trimmed + message_count
    sa.Column("trimmed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Index("ix_vecmem_conv_sessions_updated", "tenant", "updated_at"),
    sa.Index("ix_vecmem_conv_sessions_user", "tenant", "user_id", "updated_at"),
    sa.Index("ix_vecmem_conv_sessions_agent", "tenant", "agent_id"),
)
TAGS = sa.Table(
    "vecmem_conv_tags",
    metadata,
    *_ids(),
    sa.Column("tag", Key(128), primary_key=True),
    sa.Index("ix_vecmem_conv_tags_tag", "tenant", "tag"),
)
MESSAGES = sa.Table(
    "vecmem_conv_messages",
    metadata,
    *_ids(),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("id", Key(MAX_KEY), nullable=False),
    sa.Column("role", Key(64), nullable=False),
    sa.Column("content", Text, nullable=False),
    sa.Column("metadata", Text, nullable=True),
    sa.Column("input_tokens", sa.BigInteger, nullable=True),
    sa.Column("output_tokens", sa.BigInteger, nullable=True),
    sa.Column("model", Key(MAX_KEY), nullable=True),
    sa.Column("cost", sa.Double, nullable=True),
    sa.Column("created_at", Timestamp, nullable=False),
)
PARTICIPANTS = sa.Table(
    "vecmem_conv_participants",
    metadata,
    *_ids(),
    sa.Column("participant", Key(MAX_KEY), primary_key=True),
    sa.Column("permission", Key(16), nullable=False),
)
_EXPIRES = sa.Index("ix_vecmem_conv_sessions_expires", SESSIONS.c.tenant, SESSIONS.c.expires_at)


def _limits_and_participants(m: Migrator) -> None:
    for column in ("expires_at", "max_messages", "overflow", "trimmed"):
        m.add_column(SESSIONS, column)
    m.create_index(_EXPIRES)
    m.create_table(PARTICIPANTS)


MIGRATIONS = [
    Migration("create conversation tables", lambda m: m.create_tables(SESSIONS, TAGS, MESSAGES)),
    Migration("session limits (TTL, max messages) and participants", _limits_and_participants),
]
S, M, T, P = SESSIONS.c, MESSAGES.c, TAGS.c, PARTICIPANTS.c

# Hot statements, built once: SQLAlchemy then reuses their compiled form without rebuilding
# the expression on every call.
_b = sa.bindparam


def _where(c: Any) -> Any:
    return sa.and_(
        c.tenant == _b("p_tenant"), c.user_id == _b("p_user"), c.session_id == _b("p_session")
    )


def _live(now: Any) -> Any:
    return sa.or_(S.expires_at.is_(None), S.expires_at > now)


BUMP_SESSION = (
    sa.update(SESSIONS)
    .where(_where(S), _live(_b("p_now")))
    .values(
        message_count=S.message_count + _b("p_n"),
        updated_at=_b("p_now"),
        input_tokens=S.input_tokens + _b("p_in"),
        output_tokens=S.output_tokens + _b("p_out"),
        cost=S.cost + _b("p_cost"),
        agent_id=sa.func.coalesce(S.agent_id, _b("p_agent")),
    )
)
_LIMITS = (S.message_count, S.trimmed, S.max_messages, S.overflow)
BUMP_RETURNING = BUMP_SESSION.returning(*_LIMITS)
INSERT_MESSAGES = sa.insert(MESSAGES)
INSERT_SESSION = sa.insert(SESSIONS)
_page = dict(limit=_b("p_limit", type_=sa.BigInteger), offset=_b("p_offset", type_=sa.BigInteger))
_NOT_EXPIRED = ~sa.exists().where(_where(S), S.expires_at <= _b("p_now"))
SELECT_OLDEST = (
    sa.select(MESSAGES)
    .where(_where(M), _NOT_EXPIRED)
    .order_by(M.seq)
    .limit(_page["limit"])
    .offset(_page["offset"])
)
SELECT_NEWEST = (
    sa.select(MESSAGES)
    .where(_where(M), _NOT_EXPIRED)
    .order_by(M.seq.desc())
    .limit(_page["limit"])
    .offset(_page["offset"])
)


def _session(row: Any, tag_list: Sequence[str]) -> Session:
    return Session(
        user_id=row.user_id,
        session_id=row.session_id,
        agent_id=row.agent_id,
        title=row.title,
        tags=tuple(sorted(tag_list)),
        metadata=json.loads(row.metadata) if row.metadata else {},
        created_at=row.created_at,
        updated_at=row.updated_at,
        message_count=row.message_count,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost=row.cost,
        expires_at=row.expires_at,
        max_messages=row.max_messages,
        overflow=row.overflow or "refuse",
    )


def _message(row: Any) -> Message:
    usage = None
    if row.input_tokens is not None:
        usage = Usage(row.input_tokens, row.output_tokens, row.model, row.cost)
    return Message(
        role=row.role,
        content=row.content,
        metadata=json.loads(row.metadata) if row.metadata else {},
        usage=usage,
        id=row.id,
        created_at=row.created_at,
        seq=row.seq,
    )


COPY_THRESHOLD = 64
_COPY_COLUMNS = [c.name for c in MESSAGES.columns]
_COPY_SQL = f"COPY {MESSAGES.name} ({', '.join(_COPY_COLUMNS)}) FROM STDIN"


def _copy_rows(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert message rows with PostgreSQL's COPY (psycopg 3), in the open transaction."""
    raw = conn.connection.driver_connection
    if raw is None:
        raise ConfigurationError("vecmem internal error: expected raw is not None")
    with raw.cursor() as cur, cur.copy(_COPY_SQL) as copy:
        for row in rows:
            copy.write_row([row[c] for c in _COPY_COLUMNS])


def tenant_schema(tenant: str) -> str:
    """The PostgreSQL schema of ``tenant`` with ``schema_per_tenant``: ``vecmem_t_`` + the
    tenant's letters and digits (lower case, up to 32) + a hash of the exact name, so names that
    differ only in case or punctuation get their own schema.

    >>> tenant_schema("Acme Corp")
    'vecmem_t_acmecorp_a73cb456'
    """
    slug = "".join(c for c in tenant.lower() if c.isascii() and c.isalnum())[:32]
    return (
        f"vecmem_t_{slug}_{hashlib.sha256(tenant.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
    )


class SQLConversationStore:
    """Conversations in a relational database.

    >>> store = SQLConversationStore("sqlite://", tenant="acme")
    >>> _ = store.add_messages("u1", "s1", [Message("user", "hi")], agent_id="helper")
    >>> [s.session_id for s in store.query_sessions(agent_id="helper")]
    ['s1']
    >>> store.close()
    """

    actor: str | None = None
    _period: Period | None = None  # set when the messages table is partitioned by date

    def __init__(
        self,
        db: Database | str | None = None,
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        sqlite: SQLiteOptions | None = None,
        partition_messages: Period | None = None,
        schema_per_tenant: bool = False,
    ) -> None:
        period = check_period(partition_messages)
        self.db, self._owned = open_database(db, sqlite=sqlite)
        self.tenant = check_tenant(tenant)
        self.clock = clock
        self._root: Database | None = None  # with schema_per_tenant: the database of all
        if schema_per_tenant:
            if self.db.dialect != "postgresql":
                raise ConfigurationError("schema_per_tenant needs PostgreSQL")
            self._root, self.db = self.db, self.db.in_schema(tenant_schema(self.tenant))
        if period is not None and self.db.dialect != "postgresql":
            raise ConfigurationError("partition_messages needs PostgreSQL")
        self.db.migrate("conversations", MIGRATIONS)
        if self.db.dialect == "postgresql":
            if period is not None:
                partition_table(self.db, MESSAGES, period)
            with self.db.read("reading the messages table") as conn:
                self._period = table_period(conn)[1]
        # big batches go through COPY on PostgreSQL with psycopg 3
        self._copy = self.db.dialect == "postgresql" and self.db.engine.dialect.driver == "psycopg"

    def with_tenant(self, tenant: str) -> SQLConversationStore:
        if self._root is not None:  # another tenant, another schema
            other = SQLConversationStore(
                self._root, tenant=tenant, clock=self.clock, schema_per_tenant=True
            )
            other.actor = self.actor
            return other
        view = copy.copy(self)
        view._owned = False
        view.tenant = check_tenant(tenant)
        return view

    def acting_as(self, participant: str) -> SQLConversationStore:
        check_name("participant", participant)
        view = copy.copy(self)
        view._owned = False
        view.actor = participant
        return view

    def _key(self, table: sa.Table, user_id: str, session_id: str | None = None) -> Any:
        c = table.c
        cond = sa.and_(c.tenant == self.tenant, c.user_id == user_id)
        return cond if session_id is None else sa.and_(cond, c.session_id == session_id)

    def _new_session_row(
        self, user_id: str, session_id: str, now: float, agent_id: str | None
    ) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "user_id": user_id,
            "session_id": session_id,
            "agent_id": agent_id,
            "title": None,
            "metadata": None,
            "created_at": now,
            "updated_at": now,
            "message_count": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost": 0.0,
            "trimmed": 0,
        }

    def _tags_of(
        self, conn: sa.Connection, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], list[str]]:
        out: dict[tuple[str, str], list[str]] = defaultdict(list)
        for i in range(0, len(keys), 200):
            part = keys[i : i + 200]
            rows = conn.execute(
                sa.select(T.user_id, T.session_id, T.tag).where(
                    T.tenant == self.tenant, sa.tuple_(T.user_id, T.session_id).in_(part)
                )
            ).all()
            for r in rows:
                out[(r.user_id, r.session_id)].append(r.tag)
        return out

    def _read_session(self, conn: sa.Connection, user_id: str, session_id: str) -> Session:
        row = conn.execute(
            sa.select(SESSIONS).where(self._key(SESSIONS, user_id, session_id))
        ).one()
        return _session(row, self._tags_of(conn, [(user_id, session_id)])[(user_id, session_id)])

    # -- liveness and permissions -------------------------------------------------------------
    def _live_session(
        self, conn: sa.Connection, user_id: str, session_id: str, now: float, *, lock: bool = False
    ) -> Session:
        """The live session, or :class:`NotFoundError` (missing or expired)."""
        row = self._live_row(conn, user_id, session_id, now, lock=lock)
        if row is None:
            raise not_found(user_id, session_id)
        return _session(row, self._tags_of(conn, [(user_id, session_id)])[(user_id, session_id)])

    def _live_row(
        self, conn: sa.Connection, user_id: str, session_id: str, now: float, *, lock: bool = False
    ) -> Any:
        q = sa.select(SESSIONS).where(self._key(SESSIONS, user_id, session_id), _live(now))
        return conn.execute(q.with_for_update() if lock else q).first()

    def _check(
        self,
        conn: sa.Connection,
        user_id: str,
        session_id: str,
        needed: Permission,
        what: str,
        now: float,
    ) -> None:
        """The actor's grant on the live session must reach ``needed`` (owners pass)."""
        if self.actor is None or self.actor == user_id:
            return
        granted = conn.execute(
            sa.select(P.permission)
            .select_from(
                PARTICIPANTS.join(
                    SESSIONS,
                    sa.and_(
                        S.tenant == P.tenant, S.user_id == P.user_id, S.session_id == P.session_id
                    ),
                )
            )
            .where(
                self._key(PARTICIPANTS, user_id, session_id),
                P.participant == self.actor,
                _live(now),
            )
        ).scalar()
        require(self.actor, user_id, granted, needed, what)

    def _purge(self, conn: sa.Connection, keys: Sequence[tuple[str, str]]) -> int:
        """Delete these sessions (rows, messages, tags, participants); returns how many."""
        n = 0
        for i in range(0, len(keys), 200):
            part = list(keys[i : i + 200])
            for table in (MESSAGES, TAGS, PARTICIPANTS, SESSIONS):
                c = table.c
                r = conn.execute(
                    sa.delete(table).where(
                        c.tenant == self.tenant, sa.tuple_(c.user_id, c.session_id).in_(part)
                    )
                )
            n += int(r.rowcount)
        return n

    def _purge_if_expired(
        self, conn: sa.Connection, user_id: str, session_id: str, now: float
    ) -> None:
        expired = conn.execute(
            sa.select(S.session_id)
            .where(self._key(SESSIONS, user_id, session_id), S.expires_at <= now)
            .with_for_update()
        ).first()
        if expired is not None:
            self._purge(conn, [(user_id, session_id)])

    def _ensure(
        self, conn: sa.Connection, user_id: str, session_id: str, now: float, agent_id: str | None
    ) -> Any:
        """The live session row, locked; created (after purging an expired one) if needed."""
        row = self._live_row(conn, user_id, session_id, now, lock=True)
        if row is None:
            self._purge_if_expired(conn, user_id, session_id, now)
            conn.execute(INSERT_SESSION, self._new_session_row(user_id, session_id, now, agent_id))
            row = self._live_row(conn, user_id, session_id, now, lock=True)
        return row

    def _trim(self, conn: sa.Connection, user_id: str, session_id: str, upto: int) -> None:
        conn.execute(
            sa.delete(MESSAGES).where(self._key(MESSAGES, user_id, session_id), M.seq < upto)
        )

    def _insert_messages(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        if len(rows) >= COPY_THRESHOLD and self._copy:
            _copy_rows(conn, rows)
        elif rows:
            conn.execute(INSERT_MESSAGES, rows)

    def _set_tags(
        self, conn: sa.Connection, user_id: str, session_id: str, tags: Sequence[str]
    ) -> None:
        conn.execute(sa.delete(TAGS).where(self._key(TAGS, user_id, session_id)))
        if tags:
            conn.execute(
                sa.insert(TAGS),
                [
                    {"tenant": self.tenant, "user_id": user_id, "session_id": session_id, "tag": t}
                    for t in tags
                ],
            )

    # -- the protocol ---------------------------------------------------------------------------
    def save_session(
        self,
        user_id: str,
        session_id: str,
        *,
        agent_id: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        check_ids(user_id, session_id)
        check_optional("agent_id", agent_id)
        tag_set = None if tags is None else check_tags(tags)
        meta = None if metadata is None else check_metadata(metadata)

        def tx(conn: sa.Connection) -> Session:
            now = self.clock()
            self._check(conn, user_id, session_id, "moderate", "editing a session", now)
            self._ensure(conn, user_id, session_id, now, agent_id)
            changes: dict[str, Any] = {"updated_at": now}
            if agent_id is not None:
                changes["agent_id"] = agent_id
            if title is not None:
                changes["title"] = title
            if meta is not None:
                changes["metadata"] = dumps(meta) if meta else None
            conn.execute(
                sa.update(SESSIONS)
                .where(self._key(SESSIONS, user_id, session_id))
                .values(**changes)
            )
            if tag_set is not None:
                self._set_tags(conn, user_id, session_id, tag_set)
            return self._read_session(conn, user_id, session_id)

        return self.db.transact(tx, what="saving a session", retry_integrity=True)

    def get_session(self, user_id: str, session_id: str) -> Session:
        check_ids(user_id, session_id)
        with self.db.read("reading a session") as conn:
            now = self.clock()
            self._check(conn, user_id, session_id, "read", "reading a session", now)
            return self._live_session(conn, user_id, session_id, now)

    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        check_ids(user_id, session_id)
        check_optional("agent_id", agent_id)
        now = self.clock()
        prepared = prepare(messages, now)
        i_tok, o_tok, cost = usage_totals(prepared)

        n = len(prepared)
        returning = bool(self.db.engine.dialect.update_returning)
        if self._period is not None:
            ensure_partitions(self.db, self._period, [m.created_at or now for m in prepared])

        def tx(conn: sa.Connection) -> list[Message]:
            self._check(conn, user_id, session_id, "write", "adding messages", now)
            params = {
                "p_tenant": self.tenant,
                "p_user": user_id,
                "p_session": session_id,
                "p_n": n,
                "p_now": now,
                "p_in": i_tok,
                "p_out": o_tok,
                "p_cost": cost,
                "p_agent": agent_id,
            }
            if returning:  # one statement locks the row, bumps the count and returns it
                row = conn.execute(BUMP_RETURNING, params).first()
                if row is None:  # a new session (a concurrent creator makes us retry)
                    self._purge_if_expired(conn, user_id, session_id, now)
                    new = self._new_session_row(user_id, session_id, now, agent_id)
                    new.update(message_count=n, input_tokens=i_tok, output_tokens=o_tok, cost=cost)
                    conn.execute(INSERT_SESSION, new)
                    count, trimmed, limit, overflow = n, 0, None, None
                else:
                    count, trimmed, limit, overflow = row
            else:
                row = self._ensure(conn, user_id, session_id, now, agent_id)
                trimmed, limit, overflow = row.trimmed, row.max_messages, row.overflow
                count = row.message_count + n
                conn.execute(BUMP_SESSION, params)
            drop = overflow_after(count - n, n, limit, overflow, f"session {session_id!r}")
            out = with_seq(prepared, trimmed + count - n)
            self._insert_messages(conn, [self._message_row(user_id, session_id, m) for m in out])
            if drop:
                self._trim(conn, user_id, session_id, trimmed + drop)
                conn.execute(
                    sa.update(SESSIONS)
                    .where(self._key(SESSIONS, user_id, session_id))
                    .values(message_count=count - drop, trimmed=trimmed + drop)
                )
            return out

        return self.db.transact(tx, what="adding messages", retry_integrity=True)

    def _message_row(self, user_id: str, session_id: str, m: Message) -> dict[str, Any]:
        u = m.usage
        return {
            "tenant": self.tenant,
            "user_id": user_id,
            "session_id": session_id,
            "seq": m.seq,
            "id": m.id,
            "role": m.role,
            "content": m.content,
            "metadata": dumps(dict(m.metadata)) if m.metadata else None,
            "input_tokens": u.input_tokens if u else None,
            "output_tokens": u.output_tokens if u else None,
            "model": u.model if u else None,
            "cost": u.cost if u else None,
            "created_at": m.created_at,
        }

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        check_ids(user_id, session_id)
        check_page(limit, offset)
        now = self.clock()
        params = {
            "p_tenant": self.tenant,
            "p_user": user_id,
            "p_session": session_id,
            "p_limit": 2**62 if limit is None else limit,
            "p_offset": offset,
            "p_now": now,
        }
        with self.db.read("reading messages") as conn:
            self._check(conn, user_id, session_id, "read", "reading messages", now)
            rows = conn.execute(SELECT_NEWEST if newest_first else SELECT_OLDEST, params)
            return [_message(r) for r in rows]

    def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        return self.get_messages(user_id, session_id, limit=n, newest_first=True)[::-1]

    def query_sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        tags: Sequence[str] = (),
        min_messages: int | None = None,
        order_by: OrderBy = "updated_at",
        descending: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Session]:
        a = check_query(
            self.actor,
            user_id=user_id,
            agent_id=agent_id,
            since=since,
            until=until,
            tags=tags,
            min_messages=min_messages,
            order_by=order_by,
            descending=descending,
            limit=limit,
            offset=offset,
        )
        q = sa.select(SESSIONS).where(S.tenant == self.tenant, _live(self.clock()))
        if a.user_id is not None:
            q = q.where(S.user_id == a.user_id)
        if a.agent_id is not None:
            q = q.where(S.agent_id == a.agent_id)
        if a.since is not None:
            q = q.where(S.updated_at >= a.since)
        if a.until is not None:
            q = q.where(S.updated_at < a.until)
        if a.min_messages is not None:
            q = q.where(S.message_count >= a.min_messages)
        for tag in a.tags:
            q = q.where(
                sa.exists().where(
                    T.tenant == S.tenant,
                    T.user_id == S.user_id,
                    T.session_id == S.session_id,
                    T.tag == tag,
                )
            )
        col = S[a.order_by]
        q = q.order_by(
            col.desc() if a.descending else col.asc(),
            self.db.exact(S.user_id),
            self.db.exact(S.session_id),
        )
        q = q.limit(a.limit).offset(a.offset)
        with self.db.read("querying sessions") as conn:
            rows = conn.execute(q).all()
            tag_map = self._tags_of(conn, [(r.user_id, r.session_id) for r in rows])
        return [_session(r, tag_map[(r.user_id, r.session_id)]) for r in rows]

    def list_sessions(self, user_id: str, *, limit: int = 100, offset: int = 0) -> list[Session]:
        return self.query_sessions(user_id=user_id, limit=limit, offset=offset)

    def _delete(self, conn: sa.Connection, user_id: str, session_id: str | None) -> int:
        """Delete a session (or all of a user's); returns how many of them were live."""
        now = self.clock()
        keys = conn.execute(
            sa.select(S.session_id, S.expires_at)
            .where(self._key(SESSIONS, user_id, session_id))
            .with_for_update()
        ).all()
        self._purge(conn, [(user_id, k.session_id) for k in keys])
        return sum(is_live(k.expires_at, now) for k in keys)

    def delete_session(self, user_id: str, session_id: str) -> bool:
        check_ids(user_id, session_id)

        def tx(conn: sa.Connection) -> bool:
            self._check(conn, user_id, session_id, "moderate", "deleting a session", self.clock())
            return self._delete(conn, user_id, session_id) > 0

        return self.db.transact(tx, what="deleting a session")

    def delete_user(self, user_id: str) -> int:
        check_ids(user_id)
        require_owner(self.actor, user_id, "delete the sessions")
        return self.db.transact(
            lambda conn: self._delete(conn, user_id, None), what="deleting a user's sessions"
        )

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        check_ids(user_id, session_id)
        if session_id is None:
            require_owner(self.actor, user_id, "export the sessions")
        with self.db.read("exporting conversations") as conn:
            now = self.clock()
            if session_id is not None:
                self._check(conn, user_id, session_id, "read", "exporting a session", now)
            rows = conn.execute(
                sa.select(SESSIONS)
                .where(self._key(SESSIONS, user_id, session_id), _live(now))
                .order_by(self.db.exact(S.session_id))
            ).all()
            if session_id is not None and not rows:
                raise not_found(user_id, session_id)
            tag_map = self._tags_of(conn, [(r.user_id, r.session_id) for r in rows])
            live = {r.session_id for r in rows}
            by_session: dict[str, list[Message]] = defaultdict(list)
            for r in conn.execute(
                sa.select(MESSAGES)
                .where(self._key(MESSAGES, user_id, session_id))
                .order_by(M.session_id, M.seq)
            ):
                if r.session_id in live:
                    by_session[r.session_id].append(_message(r))
        return export_document(
            self.tenant,
            user_id,
            [
                (_session(r, tag_map[(r.user_id, r.session_id)]), by_session[r.session_id])
                for r in rows
            ],
        )

    # -- sessions: limits, branches, merges, participants --------------------------------------
    def set_session_limits(
        self,
        user_id: str,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        overflow: Overflow = "refuse",
    ) -> Session:
        check_ids(user_id, session_id)
        check_limits(ttl, max_messages, overflow)

        def tx(conn: sa.Connection) -> Session:
            now = self.clock()
            self._check(conn, user_id, session_id, "moderate", "limiting a session", now)
            row = self._ensure(conn, user_id, session_id, now, None)
            count = row.message_count
            drop = limit_drop(count, max_messages, overflow, session_id)
            if drop:
                self._trim(conn, user_id, session_id, row.trimmed + drop)
            conn.execute(
                sa.update(SESSIONS)
                .where(self._key(SESSIONS, user_id, session_id))
                .values(
                    expires_at=None if ttl is None else now + ttl,
                    max_messages=max_messages,
                    overflow=overflow,
                    message_count=count - drop,
                    trimmed=row.trimmed + drop,
                    updated_at=now,
                )
            )
            return self._read_session(conn, user_id, session_id)

        return self.db.transact(tx, what="limiting a session", retry_integrity=True)

    def purge_expired(self) -> int:
        def tx(conn: sa.Connection) -> int:
            keys = conn.execute(
                sa.select(S.user_id, S.session_id)
                .where(S.tenant == self.tenant, S.expires_at <= self.clock())
                .with_for_update()
            ).all()
            return self._purge(conn, [(k.user_id, k.session_id) for k in keys])

        return self.db.transact(tx, what="purging expired sessions")

    def usage(self) -> TenantUsage:
        require_owner(self.actor, None, "measure the tenant's usage")
        content: Any = M.content
        if self.db.dialect == "postgresql":
            size = sa.func.octet_length(content)
        elif self.db.dialect == "sqlite":
            size = sa.func.length(sa.cast(content, sa.LargeBinary))
        else:
            size = sa.func.length(content)  # MySQL/MariaDB: bytes
        with self.db.read("measuring usage") as conn:
            now = self.clock()
            live = sa.and_(S.tenant == self.tenant, _live(now))
            sessions, messages = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(S.message_count), 0)).where(
                    live
                )
            ).one()
            nbytes = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(size), 0))
                .select_from(
                    MESSAGES.join(
                        SESSIONS,
                        sa.and_(
                            S.tenant == M.tenant,
                            S.user_id == M.user_id,
                            S.session_id == M.session_id,
                        ),
                    )
                )
                .where(live)
            ).scalar_one()
        return TenantUsage(int(sessions), int(messages), int(nbytes))

    def _messages_of(self, conn: sa.Connection, user_id: str, session_id: str) -> list[Message]:
        rows = conn.execute(
            sa.select(MESSAGES).where(self._key(MESSAGES, user_id, session_id)).order_by(M.seq)
        )
        return [_message(r) for r in rows]

    def _claim(self, conn: sa.Connection, user_id: str, session_id: str, now: float) -> None:
        """Make way for a new session ``session_id``: ConflictError if a live one exists."""
        if self._live_row(conn, user_id, session_id, now, lock=True) is not None:
            raise ConflictError(f"session {session_id!r} of user {user_id!r} exists")
        self._purge_if_expired(conn, user_id, session_id, now)

    def _write_session(
        self,
        conn: sa.Connection,
        session: Session,
        messages: list[Message],
        *,
        trimmed: int,
        replace: bool,
    ) -> None:
        """Write ``session`` with exactly ``messages``, as new or replacing the existing one."""
        u, sid = session.user_id, session.session_id
        values = {
            "agent_id": session.agent_id,
            "title": session.title,
            "metadata": dumps(dict(session.metadata)) if session.metadata else None,
            "updated_at": session.updated_at,
            "message_count": len(messages),
            "input_tokens": session.input_tokens,
            "output_tokens": session.output_tokens,
            "cost": session.cost,
            "trimmed": trimmed,
        }
        if replace:
            conn.execute(sa.delete(MESSAGES).where(self._key(MESSAGES, u, sid)))
            conn.execute(sa.update(SESSIONS).where(self._key(SESSIONS, u, sid)).values(**values))
        else:
            row = self._new_session_row(u, sid, session.created_at, None)
            conn.execute(INSERT_SESSION, {**row, **values})
        self._set_tags(conn, u, sid, session.tags)
        self._insert_messages(conn, [self._message_row(u, sid, m) for m in messages])

    def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        check_ids(user_id, session_id)
        check_name("session_id", new_session_id)

        def tx(conn: sa.Connection) -> Session:
            now = self.clock()
            self._check(conn, user_id, session_id, "moderate", "branching a session", now)
            src = self._live_session(conn, user_id, session_id, now)
            msgs = self._messages_of(conn, user_id, session_id)
            msgs = with_seq(msgs[: check_at(at, len(msgs))], 0)
            self._claim(conn, user_id, new_session_id, now)
            new = branched(src, new_session_id, msgs, now)
            self._write_session(conn, new, msgs, trimmed=0, replace=False)
            return self._read_session(conn, user_id, new_session_id)

        return self.db.transact(tx, what="branching a session", retry_integrity=True)

    def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        check_ids(user_id, primary_id)
        target = check_merge(primary_id, secondary_id, into, strategy)

        def tx(conn: sa.Connection) -> Session:
            now = self.clock()
            found = []
            for sid in (primary_id, secondary_id):
                self._check(conn, user_id, sid, "moderate", "merging sessions", now)
                session = self._live_session(conn, user_id, sid, now, lock=True)
                found.append((session, self._messages_of(conn, user_id, sid)))
            (ps, pm), (ss, sm) = found
            new = target != primary_id
            if new:
                self._claim(conn, user_id, target, now)
            out, msgs = merge(ps, ss, pm, sm, target=target, strategy=strategy, now=now)
            self._write_session(conn, out, with_seq(msgs, 0), trimmed=0, replace=not new)
            return self._read_session(conn, user_id, target)

        return self.db.transact(tx, what="merging sessions", retry_integrity=True)

    def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        self._set_participant(user_id, session_id, participant, check_permission(permission))

    def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        return self._set_participant(user_id, session_id, participant, None)

    def _set_participant(
        self, user_id: str, session_id: str, participant: str, permission: str | None
    ) -> bool:
        check_participant(user_id, session_id, participant)

        def tx(conn: sa.Connection) -> bool:
            now = self.clock()
            self._check(conn, user_id, session_id, "moderate", "managing participants", now)
            if self._live_row(conn, user_id, session_id, now, lock=True) is None:
                raise not_found(user_id, session_id)
            key = sa.and_(
                self._key(PARTICIPANTS, user_id, session_id), P.participant == participant
            )
            had = conn.execute(sa.delete(PARTICIPANTS).where(key)).rowcount > 0
            if permission is not None:
                conn.execute(
                    sa.insert(PARTICIPANTS),
                    {
                        "tenant": self.tenant,
                        "user_id": user_id,
                        "session_id": session_id,
                        "participant": participant,
                        "permission": permission,
                    },
                )
            return bool(had)

        return self.db.transact(tx, what="managing participants", retry_integrity=True)

    def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        check_ids(user_id, session_id)
        with self.db.read("listing participants") as conn:
            now = self.clock()
            self._check(conn, user_id, session_id, "read", "listing participants", now)
            if self._live_row(conn, user_id, session_id, now) is None:
                raise not_found(user_id, session_id)
            rows = conn.execute(
                sa.select(P.participant, P.permission)
                .where(self._key(PARTICIPANTS, user_id, session_id))
                .order_by(self.db.exact(P.participant))
            ).all()
        return {r.participant: check_permission(r.permission) for r in rows}

    def close(self) -> None:
        if self._owned:
            (self._root or self.db).close()
