"""Conversations on native async database drivers: psycopg's async API (PostgreSQL), asyncmy
(MySQL/MariaDB) and aiosqlite (SQLite), through SQLAlchemy's asyncio engine.

:class:`AsyncSQLConversationStore` runs the very statements of
:class:`~vecmem.conversations.sql.SQLConversationStore` (one implementation of the schema,
validation and ordering) on an ``AsyncConnection``: SQLAlchemy's ``run_sync`` drives them over
the async driver on the event loop, with no worker threads. Tables are created or migrated once
at construction through the matching synchronous driver.

>>> import asyncio
>>> from vecmem.conversations import Message
>>> async def demo(path):
...     store = AsyncSQLConversationStore(f"sqlite:///{path}", tenant="acme")
...     await store.add_messages("u1", "s1", [Message("user", "hi")])
...     n = (await store.get_session("u1", "s1")).message_count
...     await store.aclose()
...     return n
>>> import tempfile, os; asyncio.run(demo(os.path.join(tempfile.mkdtemp(), "c.db")))
1
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.util import greenlet_spawn

from vecmem._deps import require
from vecmem._keys import check_tenant
from vecmem.conversations import partitions
from vecmem.conversations.base import Message, OrderBy, Session, TenantUsage
from vecmem.conversations.sessions import MergeStrategy, Overflow, Permission
from vecmem.conversations.usage import Dimension, UsageMetrics, usage_metrics
from vecmem.db import MYSQL_ISOLATION, Database, _retryable, normalize_url, translate
from vecmem.errors import ConfigurationError

# dialect -> (SQLAlchemy driver, module, pip extra). MySQL/MariaDB runs on asyncmy, not aiomysql:
# aiomysql 0.3.2 fails to escape bytes parameters (vecmem's VARBINARY keys) with PyMySQL 1.2.
_ASYNC_DRIVERS = {
    "postgresql": ("psycopg", "psycopg", "postgres"),
    "sqlite": ("aiosqlite", "aiosqlite", "async-sqlite"),
    "mysql": ("asyncmy", "asyncmy", "async-mysql"),
    "mariadb": ("asyncmy", "asyncmy", "async-mysql"),
}


def async_url(url: str) -> tuple[str, str]:
    """``(sync URL, async URL)``: vecmem's sync driver and the native async one per dialect.

    >>> async_url("postgresql://u@h/db")[1]
    'postgresql+psycopg://u@h/db'
    >>> async_url("sqlite:///c.db")[1]
    'sqlite+aiosqlite:///c.db'
    """
    sync = normalize_url(url)
    scheme, rest = sync.split("://", 1)
    base = scheme.split("+", 1)[0]
    if base == "cockroachdb":
        base = "postgresql"
    if base not in _ASYNC_DRIVERS:
        raise ConfigurationError(f"no async driver for {scheme!r}")
    driver, module, extra = _ASYNC_DRIVERS[base]
    require(module, extra, f"async {base}")
    if base == "sqlite" and rest in ("", "/", "/:memory:"):
        raise ConfigurationError(
            "an async SQLite conversation store needs a file "
            "(sqlite:///path.db): each connection of :memory: is empty"
        )
    return sync, f"{scheme.split('+', 1)[0]}+{driver}://{rest}"


class _Aborted(Exception):
    """Raised inside a write whose caller was cancelled, so that it rolls back."""


class _Bound:
    """What :class:`SQLConversationStore` needs of a :class:`Database`, on the one connection
    ``run_sync`` hands over (the transaction and retries are the async caller's)."""

    upsert = Database.upsert
    exact = Database.exact
    insert_ignore = Database.insert_ignore

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.dialect = "mysql" if conn.dialect.name == "mariadb" else conn.dialect.name
        self.engine = SimpleNamespace(dialect=conn.dialect)

    def transact(
        self,
        fn: Callable[[sa.Connection], Any],
        *,
        what: str = "write",
        retries: int = 5,
        retry_integrity: bool = False,
    ) -> Any:
        return fn(self.conn)

    @contextmanager
    def read(self, what: str = "read") -> Iterator[sa.Connection]:
        yield self.conn


class AsyncSQLConversationStore:
    """An asyncio conversation store on a native async driver (same tables as the sync one).

    ``url``: ``postgresql://`` (psycopg async), ``mysql://`` (asyncmy) or ``sqlite:///file.db``
    (aiosqlite); its
    methods are coroutines with the sync protocol's signatures.
    """

    def __init__(
        self,
        url: str,
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        _engine: Any = None,
        _safe_url: str | None = None,
        _period: Any = None,
        _writers: asyncio.Lock | None = None,
    ) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        from vecmem.conversations.sql import SQLConversationStore

        self.clock = clock
        if _engine is None:
            sync, aurl = async_url(url)
            schema = SQLConversationStore(sync, tenant=tenant)  # creates / migrates the tables
            self._safe_url = schema.db.safe_url
            _period = schema._period  # messages partitioned by date: see add_messages
            schema.close()
            options: dict[str, Any] = {"pool_pre_ping": not aurl.startswith("sqlite")}
            if aurl.startswith(("mysql", "mariadb")):  # as the sync store
                options.update(pool_recycle=3600, isolation_level=MYSQL_ISOLATION)
            if aurl.startswith("sqlite"):
                options["connect_args"] = {"timeout": 30}
            try:
                _engine = create_async_engine(aurl, **options)
            except (sa.exc.ArgumentError, ImportError) as exc:
                raise ConfigurationError(f"cannot open {self._safe_url}: {exc}") from exc
            if aurl.startswith("sqlite"):
                _sqlite_events(_engine.sync_engine)
            self._owned = True
        else:
            self._safe_url = _safe_url or ""
            self._owned = False
        self.engine = _engine
        self._period = _period
        # SQLite has one writer at a time: this process's writers queue here, in order, rather
        # than in SQLite's busy handler, which polls with sleeps of up to 100 ms (other
        # processes still wait in the busy handler)
        self._writers = _writers or asyncio.Lock()
        self._serialize = _engine.dialect.name == "sqlite"
        # as the sync store: SQLite reads in a deferred read transaction, servers autocommit
        self._reader = _engine.sync_engine.execution_options(
            **({"vecmem_read": True} if _engine.dialect.name == "sqlite" else {})
        )
        if _engine.dialect.name != "sqlite":
            self._reader = self._reader.execution_options(isolation_level="AUTOCOMMIT")
        # the sync store's logic, bound per call to the async connection
        self._proto = SQLConversationStore.__new__(SQLConversationStore)
        self._proto.tenant = check_tenant(tenant)
        self._proto.clock = clock
        self._proto._copy = False
        self._proto._owned = False
        self._proto.actor = None
        self.tenant = self._proto.tenant

    @property
    def actor(self) -> str | None:
        return self._proto.actor

    def with_tenant(self, tenant: str) -> AsyncSQLConversationStore:
        view = AsyncSQLConversationStore(
            "",
            tenant=tenant,
            clock=self.clock,
            _engine=self.engine,
            _safe_url=self._safe_url,
            _period=self._period,
        )
        view._proto.actor = self.actor
        return view

    def acting_as(self, participant: str) -> AsyncSQLConversationStore:
        view = self.with_tenant(self.tenant)
        view._proto = self._proto.acting_as(participant)
        return view

    async def _call(
        self,
        name: str | Callable[..., Any],
        *args: Any,
        write: bool,
        what: str,
        retry_integrity: bool = False,
        **kwargs: Any,
    ) -> Any:
        def run(conn: sa.Connection) -> Any:
            store = self._proto.__class__.__new__(self._proto.__class__)
            store.__dict__.update(self._proto.__dict__)
            store.db = _Bound(conn)  # type: ignore[assignment]  # the parts of Database it uses
            if callable(name):  # a function of the store (usage_metrics)
                return name(store, *args, **kwargs)
            return getattr(store, name)(*args, **kwargs)

        aborted = in_db = False  # cancelled by the caller / a greenlet on the connection

        def call() -> Any:
            # Checkout, BEGIN, the statements, COMMIT and checkin in one greenlet: what
            # ``async with engine.begin() as conn: await conn.run_sync(run)`` does in five
            # (a greenlet and event-loop hops each). Every driver call still awaits the async
            # driver on this event loop; measured in benchmarks/bench_async_conversations.py.
            if write:
                with self.engine.sync_engine.begin() as conn:
                    out = run(conn)
                    if aborted:
                        raise _Aborted  # leaves the block: SQLAlchemy rolls back
                    return out
            with self._reader.connect() as conn:
                return run(conn)

        async def spawn() -> Any:
            nonlocal in_db
            in_db = True
            try:
                return await greenlet_spawn(call)
            finally:
                in_db = False

        async def attempts() -> Any:
            for attempt in range(6):
                try:
                    if write and self._serialize:
                        async with self._writers:
                            return await spawn()
                    return await spawn()
                except sa.exc.DBAPIError as exc:
                    if attempt < 5 and (
                        _retryable(exc)
                        or retry_integrity
                        and isinstance(exc, sa.exc.IntegrityError)
                    ):
                        await asyncio.sleep(0.005 * 2**attempt)
                        continue
                    raise translate(exc, f"{what} failed on {self._safe_url}") from exc
                except sa.exc.SQLAlchemyError as exc:
                    raise translate(exc, f"{what} failed on {self._safe_url}") from exc
            raise AssertionError("unreachable")

        # The call runs in a task of its own that cancellation reaches only while it waits
        # outside the database (for the writer lock, between retries). A CancelledError thrown
        # into the greenlet mid-statement made SQLAlchemy invalidate the connection and close it
        # under a live cursor: SQLite keeps such a "zombie" connection's write lock until the
        # cursor is garbage-collected, and every later writer waited on it (the hang of issue
        # 19; the cancelled call also came back as BackendError, not CancelledError). Cancelled
        # there, the caller waits for the transaction to end (rolled back, unless its COMMIT
        # had begun) and then raises CancelledError.
        task = asyncio.ensure_future(attempts())
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            aborted = True
            if not in_db:
                task.cancel()
            while not task.done():
                try:
                    await asyncio.wait({task})
                except asyncio.CancelledError:
                    continue  # cancelled again: the transaction still has to end first
            if not task.cancelled():
                task.exception()  # the outcome is the cancellation: mark it retrieved
            raise

    async def save_session(
        self,
        user_id: str,
        session_id: str,
        *,
        agent_id: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        return await self._call(
            "save_session",
            user_id,
            session_id,
            agent_id=agent_id,
            title=title,
            tags=tags,
            metadata=metadata,
            write=True,
            what="saving a session",
        )

    async def get_session(self, user_id: str, session_id: str) -> Session:
        return await self._call(
            "get_session", user_id, session_id, write=False, what="reading a session"
        )

    async def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        if self._period is not None:  # the partitions these rows need (now: either side of it)
            now = self.clock()
            times = [m.created_at for m in messages if isinstance(m.created_at, (int, float))]
            needed = partitions.missing(self.engine, self._period, [*times, now, now + 60])
            if needed:
                async with self.engine.begin() as conn:
                    await conn.run_sync(partitions.create, self.engine, self._period, needed)
        return await self._call(
            "add_messages",
            user_id,
            session_id,
            messages,
            agent_id=agent_id,
            write=True,
            what="adding messages",
            retry_integrity=True,
        )

    async def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        return await self._call(
            "get_messages",
            user_id,
            session_id,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
            write=False,
            what="reading messages",
        )

    async def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        return (await self.get_messages(user_id, session_id, limit=n, newest_first=True))[::-1]

    async def query_sessions(
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
        return await self._call(
            "query_sessions",
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
            write=False,
            what="querying sessions",
        )

    async def list_sessions(
        self, user_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[Session]:
        return await self.query_sessions(user_id=user_id, limit=limit, offset=offset)

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        return await self._call(
            "delete_session", user_id, session_id, write=True, what="deleting a session"
        )

    async def delete_user(self, user_id: str) -> int:
        return await self._call(
            "delete_user", user_id, write=True, what="deleting a user's sessions"
        )

    async def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        return await self._call(
            "export", user_id, session_id, write=False, what="exporting conversations"
        )

    async def set_session_limits(
        self,
        user_id: str,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        overflow: Overflow = "refuse",
    ) -> Session:
        return await self._call(
            "set_session_limits",
            user_id,
            session_id,
            ttl=ttl,
            max_messages=max_messages,
            overflow=overflow,
            write=True,
            what="limiting a session",
            retry_integrity=True,
        )

    async def purge_expired(self) -> int:
        return await self._call("purge_expired", write=True, what="purging expired sessions")

    async def usage(self) -> TenantUsage:
        return await self._call("usage", write=False, what="measuring usage")

    async def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        return await self._call(
            "branch_session",
            user_id,
            session_id,
            new_session_id,
            at=at,
            write=True,
            what="branching a session",
            retry_integrity=True,
        )

    async def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        return await self._call(
            "merge_sessions",
            user_id,
            primary_id,
            secondary_id,
            into=into,
            strategy=strategy,
            write=True,
            what="merging sessions",
            retry_integrity=True,
        )

    async def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        await self._call(
            "add_participant",
            user_id,
            session_id,
            participant,
            permission=permission,
            write=True,
            what="managing participants",
            retry_integrity=True,
        )

    async def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        return await self._call(
            "remove_participant",
            user_id,
            session_id,
            participant,
            write=True,
            what="managing participants",
        )

    async def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        return await self._call(
            "list_participants", user_id, session_id, write=False, what="listing participants"
        )

    async def usage_metrics(
        self,
        *,
        by: Sequence[Dimension] = ("day", "user_id", "agent_id"),
        since: float | None = None,
        until: float | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> list[UsageMetrics]:
        """:func:`~vecmem.conversations.usage_metrics` here: one ``GROUP BY`` on the async
        driver."""
        return await self._call(
            usage_metrics,
            by=by,
            since=since,
            until=until,
            user_id=user_id,
            agent_id=agent_id,
            write=False,
            what="aggregating usage",
        )

    async def aclose(self) -> None:
        if self._owned:
            await self.engine.dispose()


def _sqlite_events(engine: sa.Engine) -> None:
    """As the sync store: WAL, a busy timeout, and writers taking the write lock at BEGIN."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(
            "BEGIN" if conn.get_execution_options().get("vecmem_read") else "BEGIN IMMEDIATE"
        )
