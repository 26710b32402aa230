""":func:`~vecmem.conversations.usage.usage_metrics` on a SQL conversation store: one query.

The inner ``GROUP BY`` sums per group and session, the outer per group and counts sessions
(``COUNT(DISTINCT user_id, session_id)`` is not portable). The day is the whole number of days
since the epoch (``floor``; SQLite's integer cast truncates, the same for positive times),
turned into a date in Python, so every dialect buckets in UTC.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from vecmem.conversations.sql import MESSAGES, SESSIONS, _live
from vecmem.conversations.usage import DAY, Dimension, UsageMetrics, day_of, sort_key

M, S = MESSAGES.c, SESSIONS.c


def _day(dialect: str) -> Any:
    if dialect == "sqlite":
        return sa.cast(M.created_at / DAY, sa.Integer)
    return sa.func.floor(M.created_at / DAY)


def sql_usage(
    store: Any,
    dims: tuple[Dimension, ...],
    *,
    since: float | None,
    until: float | None,
    user_id: str | None,
    agent_id: str | None,
) -> list[UsageMetrics]:
    db = store.db
    columns = {
        "day": _day(db.dialect).label("day"),
        "user_id": M.user_id.label("g_user"),
        "agent_id": S.agent_id.label("agent_id"),
        "model": M.model.label("model"),
    }
    keys = [columns[d] for d in dims]
    joined = MESSAGES.join(
        SESSIONS,
        sa.and_(S.tenant == M.tenant, S.user_id == M.user_id, S.session_id == M.session_id),
    )
    # an expired session is gone, purged or not
    conds = [M.tenant == store.tenant, M.input_tokens.is_not(None), _live(store.clock())]
    if since is not None:
        conds.append(M.created_at >= since)
    if until is not None:
        conds.append(M.created_at < until)
    if user_id is not None:
        conds.append(M.user_id == user_id)
    if agent_id is not None:
        conds.append(S.agent_id == agent_id)
    inner = (
        sa.select(
            *keys,
            sa.func.sum(M.input_tokens).label("i"),
            sa.func.sum(M.output_tokens).label("o"),
            sa.func.sum(sa.func.coalesce(M.cost, 0.0)).label("c"),
            sa.func.count().label("n"),
        )
        .select_from(joined)
        .where(*conds)
        .group_by(*keys, M.user_id, M.session_id)
        .subquery()
    )
    outer_keys = [inner.c[k.name] for k in keys]
    query = sa.select(
        *outer_keys,
        sa.func.sum(inner.c.i),
        sa.func.sum(inner.c.o),
        sa.func.sum(inner.c.c),
        sa.func.sum(inner.c.n),
        sa.func.count(),
    ).group_by(*outer_keys)
    with db.read("aggregating usage") as conn:
        rows = conn.execute(query).all()
    out = []
    for row in rows:
        values = dict(zip(dims, row[: len(dims)]))
        i, o, c, n, sessions = row[len(dims) :]
        day = values.get("day")
        out.append(
            UsageMetrics(
                day=None if day is None else day_of(int(day) * DAY),
                user_id=values.get("user_id"),
                agent_id=values.get("agent_id"),
                model=values.get("model"),
                input_tokens=int(i or 0),
                output_tokens=int(o or 0),
                cost=float(c or 0.0),
                messages=int(n or 0),
                sessions=int(sessions),
            )
        )
    return sorted(out, key=sort_key)
