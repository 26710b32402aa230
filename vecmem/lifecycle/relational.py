"""Back up and restore the relational parts (conversations, state, checkpoints, agent-memory
history) from one database to another: SQLite, PostgreSQL, MySQL/MariaDB in any direction.

A backup to a file is a copy into ``sqlite:////path/backup.db``; a restore is the copy back.
Each part's tables are created in the target by the part's own migrations, then copied in
keyset pages of the primary key (memory flat in the table's size), each page one upsert
transaction: a copy killed half way and run again ends with exactly one copy of every row.
``tenants`` limits the copy to those tenants (agent-memory history has no tenant column and is
copied whole). At the end each table is verified: the same row count and the same SHA-256
over its rows in key order, read back through each dialect's types
(:class:`~vecmem.errors.IntegrityError` otherwise).

>>> copy_relational("postgresql://localhost/app", "sqlite:////backups/app.db",
...                 parts=["conversations", "state"], tenants=["acme"])   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from vecmem.db import Database, Migration, open_database
from vecmem.errors import BackendError, ConfigurationError, IntegrityError

PAGE = 1000


def _parts() -> dict[str, tuple[str, Sequence[Migration], tuple[sa.Table, ...]]]:
    """part -> (component recorded in vecmem_schema, its migrations, its tables)."""
    from vecmem import agent_memory
    from vecmem.checkpoints import sql as checkpoints
    from vecmem.conversations import sql as conversations
    from vecmem.state import sql as state

    return {
        "conversations": (
            "conversations",
            conversations.MIGRATIONS,
            (conversations.SESSIONS, conversations.TAGS, conversations.MESSAGES),
        ),
        "state": ("state", state.MIGRATIONS, (state.state_table,)),
        "checkpoints": (
            "checkpoints",
            checkpoints.MIGRATIONS,
            (checkpoints.CHECKPOINTS, checkpoints.TAGS),
        ),
        "agent_memory": (
            "agent_memory",
            agent_memory.MIGRATIONS,
            (agent_memory.versions_table, agent_memory.changes_table),
        ),
    }


PARTS = ("conversations", "state", "checkpoints", "agent_memory")


@dataclass(frozen=True)
class RelationalReport:
    """Rows copied per table (all verified)."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _fault(point: str) -> None:
    """Fault-injection hook, a no-op ("relational-page": a page committed)."""


def copy_relational(
    src: Database | str,
    dst: Database | str,
    *,
    parts: Sequence[str] | None = None,
    tenants: Sequence[str] | None = None,
    page: int = PAGE,
) -> RelationalReport:
    """Copy ``parts`` (default: all of :data:`PARTS`) of ``src`` into ``dst``; see the module
    text. Parts the source has never created are skipped (0 rows)."""
    import time

    t0 = time.perf_counter()
    chosen = list(parts) if parts is not None else list(PARTS)
    if page < 1:
        raise ConfigurationError(f"page must be at least 1, got {page}")
    s, own_s = open_database(src)
    d, own_d = open_database(dst)
    rows: dict[str, int] = {}
    try:
        for component, migrations, tables in _present(s, chosen):
            d.migrate(component, migrations)
            for table in tables:
                where = _tenant_filter(table, tenants)
                rows[table.name] = _copy(s, d, table, where, page)
                _verify(s, d, table, where)
    finally:
        if own_s:
            s.close()
        if own_d:
            d.close()
    return RelationalReport(rows, round(time.perf_counter() - t0, 3))


def _present(
    db: Database, parts: Sequence[str]
) -> list[tuple[str, Sequence[Migration], tuple[sa.Table, ...]]]:
    known = _parts()
    unknown = [p for p in parts if p not in known]
    if unknown:
        raise ConfigurationError(f"unknown parts {unknown}; choose from {list(PARTS)}")
    have = set(sa.inspect(db.engine).get_table_names())
    return [known[p] for p in parts if all(t.name in have for t in known[p][2])]


def verify_relational(
    src: Database | str,
    dst: Database | str,
    *,
    parts: Sequence[str] | None = None,
    tenants: Sequence[str] | None = None,
) -> dict[str, int]:
    """Rows per table once ``dst`` is checked to hold exactly ``src``'s rows of ``parts`` (of
    ``tenants``); :class:`~vecmem.errors.IntegrityError` on the first difference."""
    s, own_s = open_database(src)
    d, own_d = open_database(dst)
    try:
        out = {}
        for _component, _migrations, tables in _present(s, list(parts or PARTS)):
            for table in tables:
                out[table.name] = _verify(s, d, table, _tenant_filter(table, tenants))
        return out
    finally:
        if own_s:
            s.close()
        if own_d:
            d.close()


def _tenant_filter(table: sa.Table, tenants: Sequence[str] | None) -> Any:
    if tenants is None or "tenant" not in table.c:
        return sa.true()
    return table.c.tenant.in_(list(tenants))


def _pk(table: sa.Table) -> list[sa.Column[Any]]:
    return list(table.primary_key.columns)


def _pages(db: Database, table: sa.Table, where: Any, page: int) -> Iterator[list[dict[str, Any]]]:
    """Rows of ``table`` matching ``where`` in primary-key order (code-point order for keys),
    ``page`` at a time, each page read after the previous one's last key."""
    pk = _pk(table)
    order = [db.exact(c) if isinstance(c.type, sa.types.TypeDecorator) else c for c in pk]
    last: tuple[Any, ...] | None = None
    while True:
        stmt = sa.select(table).where(where)
        if last is not None:
            stmt = stmt.where(
                sa.tuple_(*order)
                > sa.tuple_(*[sa.literal(v, type_=c.type) for v, c in zip(last, pk)])
            )
        stmt = stmt.order_by(*order).limit(page)
        with db.read(f"read {table.name}") as conn:
            batch = [dict(r._mapping) for r in conn.execute(stmt)]
        if not batch:
            return
        last = tuple(batch[-1][c.name] for c in pk)
        yield batch


def _copy(s: Database, d: Database, table: sa.Table, where: Any, page: int) -> int:
    keys = [c.name for c in _pk(table)]
    n = 0
    for batch in _pages(s, table, where, page):

        def write(conn: sa.Connection, b: list[dict[str, Any]] = batch) -> None:
            d.upsert(conn, table, b, keys=keys)

        d.transact(write, what=f"write {table.name}")
        n += len(batch)
        _fault("relational-page")
    return n


def _canon(v: Any) -> Any:
    """A value as every dialect reads it back the same (timestamps to UTC seconds, floats
    rounded to 12 significant digits: MySQL's DOUBLE text round trip, bytes as hex)."""
    if isinstance(v, datetime):
        return round(v.timestamp(), 6)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float):
        return float(f"{v:.12g}") if math.isfinite(v) else repr(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return v


def _digest(db: Database, table: sa.Table, where: Any) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    for batch in _pages(db, table, where, PAGE):
        for row in batch:
            h.update(
                json.dumps(
                    [_canon(row[c.name]) for c in table.columns], ensure_ascii=False, default=str
                ).encode()
            )
            n += 1
    return n, h.hexdigest()


def _verify(s: Database, d: Database, table: sa.Table, where: Any) -> int:
    a = _digest(s, table, where)
    try:
        b = _digest(d, table, where)
    except BackendError as exc:
        raise IntegrityError(f"copy of {table.name} failed its check: {exc}") from exc
    if a[0] != b[0]:
        raise IntegrityError(
            f"copy of {table.name} failed its check: {a[0]} rows in the "
            f"source, {b[0]} in the target"
        )
    if a[1] != b[1]:
        raise IntegrityError(
            f"copy of {table.name} failed its check: the rows differ "
            f"{_first_difference(s, d, table, where)} "
            "(SHA-256 over the rows in key order)"
        )
    return a[0]


def _first_difference(s: Database, d: Database, table: sa.Table, where: Any) -> str:
    """The first row (in key order) that reads back differently, for the error message."""
    names = [c.name for c in table.columns]
    for ra, rb in zip(_rows(s, table, where), _rows(d, table, where)):
        a, b = [_canon(ra[n]) for n in names], [_canon(rb[n]) for n in names]
        if a != b:
            diff = {n: (x, y) for n, x, y in zip(names, a, b) if x != y}
            return f"(first at key {[ra[c.name] for c in _pk(table)]}: {diff})"
    return "(row counts differ)"


def _rows(db: Database, table: sa.Table, where: Any) -> Iterator[dict[str, Any]]:
    for batch in _pages(db, table, where, PAGE):
        yield from batch
