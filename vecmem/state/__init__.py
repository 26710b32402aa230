"""Key/value state per namespace with TTL and compare-and-set.

Backends: :class:`MemoryStateStore`, :class:`SQLStateStore` (SQLite, PostgreSQL, MySQL/MariaDB)
and :class:`RedisStateStore`; create one by name or URL through
:data:`vecmem.registry.STATE_STORES`:

>>> from vecmem.errors import ConfigurationError
>>> from vecmem.registry import STATE_STORES
>>> store = STATE_STORES.create("memory://", tenant="acme")
>>> store.set("agent", "mood", "curious")
1
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vecmem.errors import ConfigurationError
from vecmem.registry import PG_COMPATIBLE, STATE_STORES
from vecmem.state.base import StateEntry, StateLock, StateStore
from vecmem.state.memory import MemoryStateStore


def __getattr__(name: str) -> Any:  # heavy backends load on first use
    if name == "SQLStateStore":
        from vecmem.state.sql import SQLStateStore

        return SQLStateStore
    if name == "RedisStateStore":
        from vecmem.state.redis import RedisStateStore

        return RedisStateStore
    raise AttributeError(name)


def _memory(
    *, url: str | None = None, tenant: str = "default", clock: Callable[[], float] = time.time
) -> MemoryStateStore:
    return MemoryStateStore(tenant=tenant, clock=clock)


def _sql(
    *,
    url: str | None = None,
    db: Any = None,
    tenant: str = "default",
    clock: Callable[[], float] = time.time,
) -> Any:
    from vecmem.state.sql import SQLStateStore

    return SQLStateStore(db if db is not None else url, tenant=tenant, clock=clock)


def _server_sql(
    *,
    url: str | None = None,
    db: Any = None,
    tenant: str = "default",
    clock: Callable[[], float] = time.time,
) -> Any:
    if db is None and url is None:
        raise ConfigurationError("a PostgreSQL/MySQL state store needs url= or db=")
    return _sql(url=url, db=db, tenant=tenant, clock=clock)


def _redis(
    *,
    url: str | None = None,
    client: Any = None,
    tenant: str = "default",
    prefix: str = "vecmem:state",
) -> Any:
    from vecmem.state.redis import RedisStateStore

    return RedisStateStore(url, client=client, tenant=tenant, prefix=prefix)


STATE_STORES.register("memory", _memory)
STATE_STORES.register("sqlite", _sql, aliases=("sqlite3",))
STATE_STORES.register("postgres", _server_sql, aliases=("postgresql", "pg", *PG_COMPATIBLE))
STATE_STORES.register("mysql", _server_sql, aliases=("mariadb",))
STATE_STORES.register("redis", _redis, aliases=("rediss",))

__all__ = [
    "MemoryStateStore",
    "RedisStateStore",
    "SQLStateStore",
    "StateEntry",
    "StateLock",
    "StateStore",
]
