"""PostgreSQL message tables partitioned by date (``partition_messages="day"`` or ``"month"``).

``vecmem_conv_messages`` becomes a table ``PARTITION BY RANGE (created_at)`` (epoch seconds,
UTC periods) with one partition per period, ``vecmem_conv_messages_d20261207`` or
``vecmem_conv_messages_m202612``, created before the first message of its period is written.
Old periods can then be detached or dropped as whole tables (``DROP TABLE ..._d20250101``)
instead of deleted row by row. The primary key gains ``created_at`` (PostgreSQL requires the
partition key in it); a message's position stays unique because writers to a session hold its
row lock. Queries are unchanged.

Asking for it on an existing, unpartitioned table converts the table in one transaction under an
advisory lock (a new partitioned table, a partition per period present, the rows copied, the old
table dropped): writers wait meanwhile. The period is recorded as the table's comment; every
store opened on a partitioned table (with the option or not) creates the partitions it needs.
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections.abc import Iterable
from typing import Any, Literal

import sqlalchemy as sa

from vecmem.db import Database
from vecmem.errors import ConfigurationError

Period = Literal["day", "month"]
TABLE = "vecmem_conv_messages"
_COMMENT = "vecmem partitions: "
_LOCK = zlib.crc32(b"vecmem_conv_partitions")
_known: dict[int, set[str]] = {}  # id of the engine -> partitions made in this process
_guard = threading.Lock()


def check_period(period: object) -> Period | None:
    if period not in (None, "day", "month"):
        raise ConfigurationError(f"partition_messages must be 'day', 'month' or None: {period!r}")
    return period


def bounds(period: Period, ts: float) -> tuple[str, float, float]:
    """The partition holding time ``ts``: its name and ``[from, to)`` in epoch seconds."""
    day = dt.datetime.fromtimestamp(ts, dt.timezone.utc)
    if period == "day":
        lo = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)
        hi = lo + dt.timedelta(days=1)
        name = f"{TABLE}_d{lo:%Y%m%d}"
    else:
        lo = dt.datetime(day.year, day.month, 1, tzinfo=dt.timezone.utc)
        hi = dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=dt.timezone.utc)
        name = f"{TABLE}_m{lo:%Y%m}"
    return name, lo.timestamp(), hi.timestamp()


def table_period(conn: sa.Connection) -> tuple[str | None, Period | None]:
    """``(relkind, period)`` of the messages table in the current schema (``None`` if absent;
    ``"p"`` partitioned, ``"r"`` a plain table)."""
    row = conn.execute(
        sa.text(
            "SELECT c.relkind, obj_description(c.oid, 'pg_class') FROM pg_class c "
            "WHERE c.relname = :t AND c.relnamespace = current_schema()::regnamespace"
        ),
        {"t": TABLE},
    ).first()
    if row is None:
        return None, None
    kind, comment = str(row[0]), row[1] or ""
    period = comment[len(_COMMENT) :] if comment.startswith(_COMMENT) else None
    return kind, check_period(period) if kind == "p" else None


def _create_partitioned(conn: sa.Connection, name: str, messages: sa.Table, period: Period) -> None:
    cols = []
    for c in messages.columns:
        ddl = sa.schema.CreateColumn(c).compile(dialect=conn.dialect)
        cols.append(str(ddl).replace(" NOT NULL", "") + (" NOT NULL" if not c.nullable else ""))
    pk = "tenant, user_id, session_id, seq, created_at"
    conn.execute(
        sa.text(
            f"CREATE TABLE {name} ({', '.join(cols)}, "
            f"CONSTRAINT {name}_pkey PRIMARY KEY ({pk})) PARTITION BY RANGE (created_at)"
        )
    )


def _create_partition(conn: sa.Connection, parent: str, period: Period, ts: float) -> str:
    name, lo, hi = bounds(period, ts)
    conn.execute(
        sa.text(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} "
            f"FOR VALUES FROM ({lo!r}) TO ({hi!r})"
        )
    )
    return name


def partition_table(db: Database, messages: sa.Table, period: Period) -> None:
    """Make the messages table partitioned by ``period`` (converting a plain one)."""
    with db.engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
        kind, current = table_period(conn)
        if kind == "p":
            if current != period:
                raise ConfigurationError(
                    f"{TABLE} is partitioned by {current}, not {period}; open it with "
                    f"partition_messages={current!r}"
                )
            return
        new = f"{TABLE}_partitioned" if kind else TABLE
        _create_partitioned(conn, new, messages, period)
        conn.execute(sa.text(f"COMMENT ON TABLE {new} IS '{_COMMENT}{period}'"))
        if kind:
            times = conn.execute(
                sa.text(
                    f"SELECT DISTINCT floor(created_at / 86400) * 86400 FROM {TABLE}"  # days
                )
            ).scalars()
            for ts in times:
                _create_partition(conn, new, period, float(ts))
            conn.execute(sa.text(f"INSERT INTO {new} SELECT * FROM {TABLE}"))
            conn.execute(sa.text(f"DROP TABLE {TABLE}"))
            conn.execute(sa.text(f"ALTER TABLE {new} RENAME TO {TABLE}"))
            conn.execute(
                sa.text(f"ALTER TABLE {TABLE} RENAME CONSTRAINT {new}_pkey TO {TABLE}_pkey")
            )
    with _guard:
        _known.pop(id(db.engine), None)


def missing(engine: Any, period: Period, times: Iterable[float]) -> dict[str, float]:
    """The partitions rows written at ``times`` need that this process has not made yet."""
    wanted = {bounds(period, t)[0]: t for t in times}
    with _guard:
        made = _known.setdefault(id(engine), set())
        return {n: t for n, t in wanted.items() if n not in made}


def create(conn: sa.Connection, engine: Any, period: Period, needed: dict[str, float]) -> None:
    """Create ``needed`` partitions in ``conn``'s transaction (committed by the caller)."""
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    for ts in needed.values():
        _create_partition(conn, TABLE, period, ts)
    with _guard:
        _known.setdefault(id(engine), set()).update(needed)


def ensure_partitions(db: Database, period: Period, times: Iterable[float]) -> None:
    """Create the partitions that rows written at ``times`` need (each once per process)."""
    needed = missing(db.engine, period, times)
    if needed:
        with db.engine.begin() as conn:
            create(conn, db.engine, period, needed)


def partitions(db: Database) -> dict[str, int]:
    """Each partition of the messages table with its number of rows (for tests and checks)."""
    with db.engine.connect() as conn:
        rows: Any = conn.execute(
            sa.text(f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1")
        ).all()
    return {str(r[0]): int(r[1]) for r in rows}
