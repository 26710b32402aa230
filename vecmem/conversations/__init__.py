"""Conversation history: sessions keyed by ``(user_id, session_id)`` with their messages.

Backends: :class:`MemoryConversationStore`, :class:`JSONConversationStore` (one JSON file per
session), :class:`SQLConversationStore` (SQLite, PostgreSQL, MySQL/MariaDB) and
:class:`~vecmem.conversations.redis.RedisConversationStore` (``redis://``);
:class:`AsyncConversationStore` wraps any of them for asyncio (in threads),
:class:`CachedConversationStore` with a read cache (:class:`LRUCache`, :class:`RedisCache`);
:class:`~vecmem.conversations.async_sql.AsyncSQLConversationStore` runs on native async drivers
(``async_postgres``, ``async_mysql``, ``async_sqlite`` in the registry). Create one by name or URL
through :data:`vecmem.registry.CONVERSATION_STORES`:

>>> from vecmem.registry import CONVERSATION_STORES
>>> store = CONVERSATION_STORES.create("memory://", tenant="acme")
>>> _ = store.add_messages("u1", "s1", [Message("user", "hello")])
>>> store.get_session("u1", "s1").message_count
1
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from vecmem._sqlite import SQLiteOptions
from vecmem.conversations.base import (
    AsyncConversationStore,
    ConversationStore,
    Message,
    Session,
    Usage,
)
from vecmem.conversations.cache import CachedConversationStore, LRUCache, RedisCache
from vecmem.conversations.json_files import JSONConversationStore
from vecmem.conversations.memory import MemoryConversationStore
from vecmem.conversations.quota import QuotaConversationStore, TenantQuota
from vecmem.conversations.usage import UsageMetrics, usage_metrics
from vecmem.errors import ConfigurationError
from vecmem.registry import CONVERSATION_STORES, PG_COMPATIBLE


def __getattr__(name: str) -> Any:  # SQLAlchemy loads on first use
    if name == "SQLConversationStore":
        from vecmem.conversations.sql import SQLConversationStore

        return SQLConversationStore
    if name == "RedisConversationStore":
        from vecmem.conversations.redis import RedisConversationStore

        return RedisConversationStore
    raise AttributeError(name)


def _memory(
    *, url: str | None = None, tenant: str = "default", clock: Callable[[], float] = time.time
) -> MemoryConversationStore:
    return MemoryConversationStore(tenant=tenant, clock=clock)


def _files(
    *,
    url: str | None = None,
    root: str | None = None,
    tenant: str = "default",
    clock: Callable[[], float] = time.time,
    max_file_bytes: int | None = None,
    backup_interval: float | None = None,
    backups_kept: int = 5,
) -> JSONConversationStore:
    if url is not None:
        root = url.split("://", 1)[1] or None
    if not root:
        raise ConfigurationError("a JSON-file conversation store needs url='file:///dir' or root=")
    return JSONConversationStore(
        root,
        tenant=tenant,
        clock=clock,
        max_file_bytes=max_file_bytes,
        backup_interval=backup_interval,
        backups_kept=backups_kept,
    )


def _sqlite(
    *,
    url: str | None = None,
    db: Any = None,
    tenant: str = "default",
    clock: Callable[[], float] = time.time,
    sqlite: SQLiteOptions | None = None,
) -> Any:
    from vecmem.conversations.sql import SQLConversationStore

    return SQLConversationStore(
        db if db is not None else url, tenant=tenant, clock=clock, sqlite=sqlite
    )


def _server(
    *,
    url: str | None = None,
    db: Any = None,
    tenant: str = "default",
    clock: Callable[[], float] = time.time,
    partition_messages: Literal["day", "month"] | None = None,
    schema_per_tenant: bool = False,
) -> Any:
    from vecmem.conversations.sql import SQLConversationStore

    if url is None and db is None:
        raise ConfigurationError("a PostgreSQL/MySQL conversation store needs url= or db=")
    return SQLConversationStore(
        db if db is not None else url,
        tenant=tenant,
        clock=clock,
        partition_messages=partition_messages,
        schema_per_tenant=schema_per_tenant,
    )


def _redis(
    *,
    url: str | None = None,
    client: Any = None,
    tenant: str = "default",
    clock: Callable[[], float] = time.time,
) -> Any:
    from vecmem.conversations.redis import RedisConversationStore

    return RedisConversationStore(url, client=client, tenant=tenant, clock=clock)


def _async(dialect: str, names: tuple[str, ...]) -> Callable[..., Any]:
    def factory(
        *, url: str | None = None, tenant: str = "default", clock: Callable[[], float] = time.time
    ) -> Any:
        from vecmem.conversations.async_sql import AsyncSQLConversationStore

        if url is None:
            raise ConfigurationError(f"an async {dialect} conversation store needs url=")
        scheme, _, rest = url.partition("://")
        base = scheme.split("+", 1)[0].lower()
        if base in names:  # async_postgres://... is postgresql://... on the async driver
            url = f"{dialect}://{rest}"
        elif base not in _SCHEMES.get(dialect, (dialect,)):
            raise ConfigurationError(f"{url.split('://')[0]}:// is not a {dialect} URL")
        return AsyncSQLConversationStore(url, tenant=tenant, clock=clock)

    return factory


# the names users type for each async store; all three run on native async drivers (psycopg,
# aiosqlite, asyncmy: aiomysql 0.3.2 fails to escape bytes parameters with PyMySQL 1.2)
_ASYNC_NAMES = {
    "postgresql": ("async_postgres", "asyncpg", "postgres_async"),
    "mysql": ("async_mysql", "aiomysql", "mysql_async"),
    "sqlite": ("async_sqlite", "aiosqlite", "sqlite_async"),
}
_SCHEMES = {  # the URL schemes each async store accepts besides its own names
    "postgresql": ("postgresql", "postgres", "pg", *PG_COMPATIBLE),
    "mysql": ("mysql", "mariadb"),
}

CONVERSATION_STORES.register("memory", _memory)
CONVERSATION_STORES.register("file", _files, aliases=("json",))
CONVERSATION_STORES.register("sqlite", _sqlite, aliases=("sqlite3",))
CONVERSATION_STORES.register("postgres", _server, aliases=("postgresql", "pg", *PG_COMPATIBLE))
CONVERSATION_STORES.register("mysql", _server, aliases=("mariadb",))
CONVERSATION_STORES.register("redis", _redis, aliases=("rediss",))
for _dialect, (_name, *_aliases) in _ASYNC_NAMES.items():
    CONVERSATION_STORES.register(_name, _async(_dialect, _ASYNC_NAMES[_dialect]), aliases=_aliases)

__all__ = [
    "AsyncConversationStore",
    "CachedConversationStore",
    "ConversationStore",
    "JSONConversationStore",
    "LRUCache",
    "MemoryConversationStore",
    "Message",
    "QuotaConversationStore",
    "RedisCache",
    "RedisConversationStore",
    "SQLConversationStore",
    "Session",
    "TenantQuota",
    "Usage",
    "UsageMetrics",
    "usage_metrics",
]
