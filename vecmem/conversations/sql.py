"""Conversations on the shared relational database (SQLite, PostgreSQL, MySQL/MariaDB).

Tables ``vecmem_conv_sessions`` (one row per session, with running totals),
``vecmem_conv_tags`` and ``vecmem_conv_messages`` (primary key ``(tenant, user_id, session_id,
seq)``, so the last N messages of a session are one index range scan). Adding messages locks the
session row, so concurrent writers to one session get consecutive positions. On PostgreSQL
(psycopg 3) batches of 64 messages or more are written with ``COPY``.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from vecmem._keys import MAX_KEY, MAX_TENANT, check_metadata, check_tags, check_tenant
from vecmem.conversations.base import (
    Message,
    OrderBy,
    Session,
    Usage,
    check_ids,
    check_optional,
    check_page,
    check_query,
    export_document,
    prepare,
    usage_totals,
    with_seq,
)
from vecmem.db import Database, Key, Migration, Text, Timestamp, dumps, open_database
from vecmem.errors import ConfigurationError, NotFoundError

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
MIGRATIONS = [
    Migration("create conversation tables", lambda m: m.create_tables(SESSIONS, TAGS, MESSAGES)),
]
S, M, T = SESSIONS.c, MESSAGES.c, TAGS.c

# Hot statements, built once: SQLAlchemy then reuses their compiled form without rebuilding
# the expression on every call.
_b = sa.bindparam


def _where(c: Any) -> Any:
    return sa.and_(
        c.tenant == _b("p_tenant"), c.user_id == _b("p_user"), c.session_id == _b("p_session")
    )


BUMP_SESSION = (
    sa.update(SESSIONS)
    .where(_where(S))
    .values(
        message_count=S.message_count + _b("p_n"),
        updated_at=_b("p_now"),
        input_tokens=S.input_tokens + _b("p_in"),
        output_tokens=S.output_tokens + _b("p_out"),
        cost=S.cost + _b("p_cost"),
        agent_id=sa.func.coalesce(S.agent_id, _b("p_agent")),
    )
)
BUMP_RETURNING = BUMP_SESSION.returning(S.message_count)
INSERT_MESSAGES = sa.insert(MESSAGES)
INSERT_SESSION = sa.insert(SESSIONS)
_page = dict(limit=_b("p_limit", type_=sa.BigInteger), offset=_b("p_offset", type_=sa.BigInteger))
SELECT_OLDEST = (
    sa.select(MESSAGES)
    .where(_where(M))
    .order_by(M.seq)
    .limit(_page["limit"])
    .offset(_page["offset"])
)
SELECT_NEWEST = (
    sa.select(MESSAGES)
    .where(_where(M))
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


class SQLConversationStore:
    """Conversations in a relational database.

    >>> store = SQLConversationStore("sqlite://", tenant="acme")
    >>> _ = store.add_messages("u1", "s1", [Message("user", "hi")], agent_id="helper")
    >>> [s.session_id for s in store.query_sessions(agent_id="helper")]
    ['s1']
    >>> store.close()
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
        self.db.migrate("conversations", MIGRATIONS)
        # big batches go through COPY on PostgreSQL with psycopg 3
        self._copy = self.db.dialect == "postgresql" and self.db.engine.dialect.driver == "psycopg"

    def with_tenant(self, tenant: str) -> SQLConversationStore:
        return SQLConversationStore(self.db, tenant=tenant, clock=self.clock)

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
            self.db.insert_ignore(
                conn,
                SESSIONS,
                [self._new_session_row(user_id, session_id, now, agent_id)],
                keys=["tenant", "user_id", "session_id"],
            )
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
                conn.execute(sa.delete(TAGS).where(self._key(TAGS, user_id, session_id)))
                if tag_set:
                    conn.execute(
                        sa.insert(TAGS),
                        [
                            {
                                "tenant": self.tenant,
                                "user_id": user_id,
                                "session_id": session_id,
                                "tag": t,
                            }
                            for t in tag_set
                        ],
                    )
            row = conn.execute(
                sa.select(SESSIONS).where(self._key(SESSIONS, user_id, session_id))
            ).one()
            return _session(
                row, self._tags_of(conn, [(user_id, session_id)])[(user_id, session_id)]
            )

        return self.db.transact(tx, what="saving a session")

    def get_session(self, user_id: str, session_id: str) -> Session:
        check_ids(user_id, session_id)
        with self.db.read("reading a session") as conn:
            row = conn.execute(
                sa.select(SESSIONS).where(self._key(SESSIONS, user_id, session_id))
            ).first()
            if row is None:
                raise NotFoundError(f"no session {session_id!r} for user {user_id!r}")
            return _session(
                row, self._tags_of(conn, [(user_id, session_id)])[(user_id, session_id)]
            )

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

        def tx(conn: sa.Connection) -> list[Message]:
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
                count = conn.execute(BUMP_RETURNING, params).scalar()
                if count is None:  # a new session (a concurrent creator makes us retry)
                    row = self._new_session_row(user_id, session_id, now, agent_id)
                    row.update(message_count=n, input_tokens=i_tok, output_tokens=o_tok, cost=cost)
                    conn.execute(INSERT_SESSION, row)
                    count = n
                base = count - n
            else:
                self.db.insert_ignore(
                    conn,
                    SESSIONS,
                    [self._new_session_row(user_id, session_id, now, agent_id)],
                    keys=["tenant", "user_id", "session_id"],
                )
                base = conn.execute(
                    sa.select(S.message_count)
                    .where(self._key(SESSIONS, user_id, session_id))
                    .with_for_update()
                ).scalar_one()
                conn.execute(BUMP_SESSION, params)
            out = with_seq(prepared, base)
            rows = [self._message_row(user_id, session_id, m) for m in out]
            if len(rows) >= COPY_THRESHOLD and self._copy:
                _copy_rows(conn, rows)
            elif rows:
                conn.execute(INSERT_MESSAGES, rows)
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
        params = {
            "p_tenant": self.tenant,
            "p_user": user_id,
            "p_session": session_id,
            "p_limit": 2**62 if limit is None else limit,
            "p_offset": offset,
        }
        with self.db.read("reading messages") as conn:
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
        wanted = check_query(order_by, limit, offset, tags, min_messages)
        q = sa.select(SESSIONS).where(S.tenant == self.tenant)
        if user_id is not None:
            check_ids(user_id)
            q = q.where(S.user_id == user_id)
        if agent_id is not None:
            q = q.where(S.agent_id == agent_id)
        if since is not None:
            q = q.where(S.updated_at >= since)
        if until is not None:
            q = q.where(S.updated_at < until)
        if min_messages is not None:
            q = q.where(S.message_count >= min_messages)
        for tag in wanted:
            q = q.where(
                sa.exists().where(
                    T.tenant == S.tenant,
                    T.user_id == S.user_id,
                    T.session_id == S.session_id,
                    T.tag == tag,
                )
            )
        col = S[order_by]
        q = q.order_by(
            col.desc() if descending else col.asc(),
            self.db.exact(S.user_id),
            self.db.exact(S.session_id),
        )
        q = q.limit(limit).offset(offset)
        with self.db.read("querying sessions") as conn:
            rows = conn.execute(q).all()
            tag_map = self._tags_of(conn, [(r.user_id, r.session_id) for r in rows])
        return [_session(r, tag_map[(r.user_id, r.session_id)]) for r in rows]

    def list_sessions(self, user_id: str, *, limit: int = 100, offset: int = 0) -> list[Session]:
        return self.query_sessions(user_id=user_id, limit=limit, offset=offset)

    def _delete(self, conn: sa.Connection, user_id: str, session_id: str | None) -> int:
        conn.execute(sa.delete(MESSAGES).where(self._key(MESSAGES, user_id, session_id)))
        conn.execute(sa.delete(TAGS).where(self._key(TAGS, user_id, session_id)))
        return int(
            conn.execute(
                sa.delete(SESSIONS).where(self._key(SESSIONS, user_id, session_id))
            ).rowcount
        )

    def delete_session(self, user_id: str, session_id: str) -> bool:
        check_ids(user_id, session_id)
        return self.db.transact(
            lambda conn: self._delete(conn, user_id, session_id) > 0, what="deleting a session"
        )

    def delete_user(self, user_id: str) -> int:
        check_ids(user_id)
        return self.db.transact(
            lambda conn: self._delete(conn, user_id, None), what="deleting a user's sessions"
        )

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        check_ids(user_id, session_id)
        with self.db.read("exporting conversations") as conn:
            rows = conn.execute(
                sa.select(SESSIONS)
                .where(self._key(SESSIONS, user_id, session_id))
                .order_by(self.db.exact(S.session_id))
            ).all()
            if session_id is not None and not rows:
                raise NotFoundError(f"no session {session_id!r} for user {user_id!r}")
            tag_map = self._tags_of(conn, [(r.user_id, r.session_id) for r in rows])
            by_session: dict[str, list[Message]] = defaultdict(list)
            for r in conn.execute(
                sa.select(MESSAGES)
                .where(self._key(MESSAGES, user_id, session_id))
                .order_by(M.session_id, M.seq)
            ):
                by_session[r.session_id].append(_message(r))
        return export_document(
            self.tenant,
            user_id,
            [
                (_session(r, tag_map[(r.user_id, r.session_id)]), by_session[r.session_id])
                for r in rows
            ],
        )

    def close(self) -> None:
        if self._owned:
            self.db.close()
