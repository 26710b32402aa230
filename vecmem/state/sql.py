"""State on the shared relational database (SQLite, PostgreSQL, MySQL/MariaDB).

One table, ``vecmem_state``, keyed by (tenant, namespace, key). Writes lock the row
(``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` serialises writers), so
compare-and-set is atomic across processes. Expired rows are ignored on read and replaced on
write; :meth:`SQLStateStore.purge_expired` removes them in bulk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from vecmem._keys import MAX_KEY, MAX_TENANT, check_tenant, to_json
from vecmem.db import Database, Key, Migration, Text, Timestamp, open_database
from vecmem.errors import ConflictError
from vecmem.state.base import (
    StateEntry,
    check_args,
    check_ttl,
    check_version,
    conflict,
)

metadata = sa.MetaData()
state_table = sa.Table(
    "vecmem_state",
    metadata,
    sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
    sa.Column("namespace", Key(MAX_KEY), primary_key=True),
    sa.Column("key", Key(MAX_KEY), primary_key=True),
    sa.Column("value", Text, nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=True),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.Index("ix_vecmem_state_expires", "expires_at"),
)
MIGRATIONS = [Migration("create vecmem_state", lambda m: m.create_table(state_table))]


class SQLStateStore:
    """State in a relational database.

    >>> store = SQLStateStore("sqlite://", tenant="acme")
    >>> store.set("jobs", "last", {"id": 7})
    1
    >>> store.keys("jobs")
    ['last']
    >>> store.close()

    Pass a :class:`~vecmem.db.Database` to share one connection pool with other stores.
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
        self.db.migrate("state", MIGRATIONS)

    def with_tenant(self, tenant: str) -> SQLStateStore:
        return SQLStateStore(self.db, tenant=tenant, clock=self.clock)

    def _pk(self, namespace: str, key: str) -> Any:
        t = state_table.c
        return sa.and_(t.tenant == self.tenant, t.namespace == namespace, t.key == key)

    def _alive(self, now: float) -> Any:
        t = state_table.c
        return sa.or_(t.expires_at.is_(None), t.expires_at > now)

    def get_entry(self, namespace: str, key: str) -> StateEntry | None:
        check_args(namespace, key)
        t = state_table.c
        with self.db.read("reading state") as conn:
            row = conn.execute(
                sa.select(t.value, t.version, t.expires_at, t.updated_at).where(
                    self._pk(namespace, key), self._alive(self.clock())
                )
            ).first()
        if row is None:
            return None
        return StateEntry(
            namespace, key, json.loads(row.value), row.version, row.expires_at, row.updated_at
        )

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        entry = self.get_entry(namespace, key)
        return default if entry is None else entry.value

    def _write(
        self, namespace: str, key: str, value: Any, ttl: float | None, expected: int | None
    ) -> int:
        check_args(namespace, key)
        check_ttl(ttl)
        text = to_json("state value", value)
        t = state_table.c

        def tx(conn: sa.Connection) -> int:
            now = self.clock()
            row = conn.execute(
                sa.select(t.version, t.expires_at).where(self._pk(namespace, key)).with_for_update()
            ).first()
            alive = row is not None and (row.expires_at is None or row.expires_at > now)
            current = row.version if row is not None and alive else 0
            if expected is not None and current != expected:
                raise conflict(namespace, key, expected, current)
            values = {
                "value": text,
                "version": current + 1,
                "updated_at": now,
                "expires_at": now + ttl if ttl else None,
            }
            if row is None:
                conn.execute(
                    sa.insert(state_table).values(
                        tenant=self.tenant, namespace=namespace, key=key, **values
                    )
                )
            else:
                conn.execute(
                    sa.update(state_table).where(self._pk(namespace, key)).values(**values)
                )
            return current + 1

        try:
            return self.db.transact(tx, what="writing state", retry_integrity=expected is None)
        except ConflictError:
            raise
        except Exception as exc:
            if expected == 0 and _is_duplicate(exc):
                raise conflict(namespace, key, 0, 1) from exc
            raise

    def set(self, namespace: str, key: str, value: Any, *, ttl: float | None = None) -> int:
        return self._write(namespace, key, value, ttl, None)

    def compare_and_set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        expected_version: int,
        ttl: float | None = None,
    ) -> int:
        check_version(expected_version)
        return self._write(namespace, key, value, ttl, expected_version)

    def delete(self, namespace: str, key: str, *, expected_version: int | None = None) -> bool:
        check_args(namespace, key)
        if expected_version is not None:
            check_version(expected_version)
        t = state_table.c

        def tx(conn: sa.Connection) -> bool:
            now = self.clock()
            row = conn.execute(
                sa.select(t.version, t.expires_at).where(self._pk(namespace, key)).with_for_update()
            ).first()
            alive = row is not None and (row.expires_at is None or row.expires_at > now)
            current = row.version if row is not None and alive else 0
            if expected_version is not None and current != expected_version:
                raise conflict(namespace, key, expected_version, current)
            if row is not None:
                conn.execute(sa.delete(state_table).where(self._pk(namespace, key)))
            return alive

        return self.db.transact(tx, what="deleting state")

    def keys(self, namespace: str, *, prefix: str = "") -> list[str]:
        check_args(namespace)
        t = state_table.c
        query = sa.select(t.key).where(
            t.tenant == self.tenant, t.namespace == namespace, self._alive(self.clock())
        )
        if prefix:
            query = query.where(t.key.startswith(prefix, autoescape=True))
        with self.db.read("listing state") as conn:
            found = conn.execute(query).scalars().all()
        return sorted(k for k in found if k.startswith(prefix))

    def clear(self, namespace: str) -> int:
        check_args(namespace)
        t = state_table.c

        def tx(conn: sa.Connection) -> int:
            live = conn.execute(
                sa.select(sa.func.count())
                .select_from(state_table)
                .where(t.tenant == self.tenant, t.namespace == namespace, self._alive(self.clock()))
            ).scalar_one()
            conn.execute(
                sa.delete(state_table).where(t.tenant == self.tenant, t.namespace == namespace)
            )
            return int(live)

        return self.db.transact(tx, what="clearing state")

    def purge_expired(self) -> int:
        """Delete this tenant's expired rows; returns how many."""
        t = state_table.c
        with self.db.write("purging state") as conn:
            return conn.execute(
                sa.delete(state_table).where(t.tenant == self.tenant, t.expires_at <= self.clock())
            ).rowcount

    def close(self) -> None:
        if self._owned:
            self.db.close()


def _is_duplicate(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, sa.exc.IntegrityError):
            return True
        cause = cause.__cause__
    return False
