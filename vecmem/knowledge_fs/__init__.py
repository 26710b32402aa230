"""A path-based knowledge store: a durable scratch space of files for agents.

Absolute Unix paths, implicit directories, ``read`` / ``write`` / ``append`` (returns the
offset) / ``read_range`` / ``list`` / ``delete`` / ``exists``, change subscriptions, per-tenant
scopes. Backends: :class:`MemoryKnowledgeStore`, :class:`SQLKnowledgeStore` (SQLite,
PostgreSQL, MySQL/MariaDB), :class:`DiskKnowledgeStore` (human-readable files, real change
events) and :class:`RedisKnowledgeStore`; wrappers :class:`LockedKnowledgeStore` and
:class:`LoggedKnowledgeStore` (cross-process locks :class:`RedisLock` and
:class:`PostgresAdvisoryLock`); :class:`DefaultBootstrap` / :func:`bootstrap_once` lay out a new
store as AG2 does; :class:`EventLog` writes and replays JSONL events. Create a
store by name or URL through :data:`vecmem.registry.FILE_STORES`:

>>> from vecmem.registry import FILE_STORES
>>> kb = FILE_STORES.create("memory://", tenant="acme")
>>> kb.write("/todo.md", "- [ ] write docs")
>>> kb.list("/")
['todo.md']
"""

from __future__ import annotations

from typing import Any

from vecmem.errors import ConfigurationError
from vecmem.knowledge_fs.base import ChangeEvent, KnowledgeStore, Subscription
from vecmem.knowledge_fs.bootstrap import (
    Bootstrap,
    DefaultBootstrap,
    LayoutBootstrap,
    bootstrap_once,
)
from vecmem.knowledge_fs.events import Event, EventLog, LoggedKnowledgeStore
from vecmem.knowledge_fs.locked import LocalLock, Lock, LockedKnowledgeStore
from vecmem.knowledge_fs.memory import MemoryKnowledgeStore
from vecmem.registry import FILE_STORES, PG_COMPATIBLE


def __getattr__(name: str) -> Any:  # backends with heavier imports load on first use
    if name == "SQLKnowledgeStore":
        from vecmem.knowledge_fs.sql import SQLKnowledgeStore

        return SQLKnowledgeStore
    if name == "DiskKnowledgeStore":
        from vecmem.knowledge_fs.disk import DiskKnowledgeStore

        return DiskKnowledgeStore
    if name in ("RedisLock", "PostgresAdvisoryLock"):
        from vecmem.knowledge_fs import locks

        return getattr(locks, name)
    if name == "RedisKnowledgeStore":
        from vecmem.knowledge_fs.redis import RedisKnowledgeStore

        return RedisKnowledgeStore
    raise AttributeError(name)


def _memory(*, url: str | None = None, tenant: str = "default") -> MemoryKnowledgeStore:
    return MemoryKnowledgeStore(tenant=tenant)


def _sqlite(*, url: str | None = None, db: Any = None, tenant: str = "default") -> Any:
    from vecmem.knowledge_fs.sql import SQLKnowledgeStore

    return SQLKnowledgeStore(db if db is not None else url, tenant=tenant)


def _server(*, url: str | None = None, db: Any = None, tenant: str = "default") -> Any:
    if url is None and db is None:
        raise ConfigurationError("a PostgreSQL/MySQL knowledge store needs url= or db=")
    return _sqlite(url=url, db=db, tenant=tenant)


def _disk(*, url: str | None = None, root: str | None = None, tenant: str = "default") -> Any:
    from vecmem.knowledge_fs.disk import DiskKnowledgeStore

    if url is not None:
        root = url.split("://", 1)[1] or None
    if not root:
        raise ConfigurationError("a disk knowledge store needs url='file:///dir' or root=")
    return DiskKnowledgeStore(root, tenant=tenant)


def _redis(
    *,
    url: str | None = None,
    client: Any = None,
    tenant: str = "default",
    prefix: str = "vecmem:kfs",
) -> Any:
    from vecmem.knowledge_fs.redis import RedisKnowledgeStore

    return RedisKnowledgeStore(url, client=client, tenant=tenant, prefix=prefix)


FILE_STORES.register("memory", _memory)
FILE_STORES.register("sqlite", _sqlite, aliases=("sqlite3",))
FILE_STORES.register("postgres", _server, aliases=("postgresql", "pg", *PG_COMPATIBLE))
FILE_STORES.register("mysql", _server, aliases=("mariadb",))
FILE_STORES.register("disk", _disk, aliases=("file",))
FILE_STORES.register("redis", _redis, aliases=("rediss",))

__all__ = [
    "Bootstrap",
    "ChangeEvent",
    "DefaultBootstrap",
    "DiskKnowledgeStore",
    "Event",
    "EventLog",
    "KnowledgeStore",
    "LayoutBootstrap",
    "LocalLock",
    "Lock",
    "LockedKnowledgeStore",
    "LoggedKnowledgeStore",
    "MemoryKnowledgeStore",
    "PostgresAdvisoryLock",
    "RedisKnowledgeStore",
    "RedisLock",
    "SQLKnowledgeStore",
    "Subscription",
    "bootstrap_once",
]
