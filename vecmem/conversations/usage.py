"""Token usage and cost aggregated from stored messages, as agno's daily metrics are.

agno (``agno.db``) refreshes a metrics table with one row per day and user: token totals from
its sessions' run metrics and a count per model. vecmem keeps each model call's usage on the
message that answered it (:class:`~vecmem.conversations.Usage`: input and output tokens, model,
cost), so :func:`usage_metrics` sums the messages themselves, grouped by any of ``day`` (UTC),
``user_id``, ``agent_id`` (the session's) and ``model``, over a time range of the messages.

On a SQL store this is one ``GROUP BY`` in the database; on the memory and JSON-file stores a
pass over the records. Messages without usage are not counted; messages removed (trimmed,
deleted) no longer count, while a session's running totals keep them; nor do the messages of an
expired session, purged or not (reads do not see it either). A participant's view
(``acting_as``) measures the participant's own sessions only.

>>> from vecmem.conversations import MemoryConversationStore, Message, Usage
>>> store = MemoryConversationStore()
>>> _ = store.add_messages("ann", "s1", [Message("assistant", "hi", usage=Usage(10, 2, "m", 0.01),
...                                              created_at=0)], agent_id="helper")
>>> [(r.day, r.user_id, r.agent_id, r.total_tokens) for r in usage_metrics(store)]
[('1970-01-01', 'ann', 'helper', 12)]
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vecmem._keys import check_epoch, check_name
from vecmem.conversations.sessions import is_live, require_owner
from vecmem.errors import InvalidInputError

Dimension = Literal["day", "user_id", "agent_id", "model"]
DIMENSIONS: tuple[Dimension, ...] = ("day", "user_id", "agent_id", "model")
DAY = 86400


@dataclass(frozen=True)
class UsageMetrics:
    """Usage of one group; a dimension not grouped by is ``None``. ``messages``: messages with
    usage in the group; ``sessions``: distinct sessions they belong to."""

    day: str | None
    user_id: str | None
    agent_id: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    messages: int
    sessions: int

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def day_of(ts: float) -> str:
    """The UTC date of epoch seconds ``ts`` as ``YYYY-MM-DD``."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d")


def check_by(by: Sequence[str]) -> tuple[Dimension, ...]:
    if isinstance(by, str) or not all(d in DIMENSIONS for d in by) or len(set(by)) != len(by):
        raise InvalidInputError(f"by must be distinct names from {DIMENSIONS}, got {by!r}")
    return tuple(d for d in DIMENSIONS if d in by)


def check_range(since: Any, until: Any) -> None:
    check_epoch("since", since)
    check_epoch("until", until)


Fact = tuple[str, str, str | None, str | None, float, int, int, float]
"""One message with usage: user, session, agent, model, created_at, in, out, cost."""


def aggregate(facts: Iterable[Fact], by: tuple[Dimension, ...]) -> list[UsageMetrics]:
    """Group message facts by the dimensions ``by`` (the reference the SQL path matches)."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for user, session, agent, model, created, i, o, c in facts:
        values = {"day": day_of(created), "user_id": user, "agent_id": agent, "model": model}
        key = tuple(values[d] if d in by else None for d in DIMENSIONS)
        g = groups.setdefault(key, [0, 0, 0.0, 0, set()])
        g[0] += i
        g[1] += o
        g[2] += c
        g[3] += 1
        g[4].add((user, session))
    rows = [
        UsageMetrics(
            day=k[0],
            user_id=k[1],
            agent_id=k[2],
            model=k[3],
            input_tokens=g[0],
            output_tokens=g[1],
            cost=g[2],
            messages=g[3],
            sessions=len(g[4]),
        )
        for k, g in groups.items()
    ]
    return sorted(rows, key=sort_key)


def sort_key(r: UsageMetrics) -> tuple[str, ...]:
    return tuple(getattr(r, d) or "" for d in DIMENSIONS)


def usage_metrics(
    store: Any,
    *,
    by: Sequence[Dimension] = ("day", "user_id", "agent_id"),
    since: float | None = None,
    until: float | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
) -> list[UsageMetrics]:
    """Usage summed per group of ``by``, over messages with ``since <= created_at < until``
    (of one user or agent if given), sorted by day, user, agent, model.

    ``store``: a SQL, memory or JSON-file conversation store (any other
    :class:`~vecmem.conversations.ConversationStore` is read through its public methods).
    """
    if inspect.iscoroutinefunction(getattr(store, "query_sessions", None)):
        raise InvalidInputError(
            "usage_metrics takes a synchronous conversation store; "
            "on an async one, await store.usage_metrics(...)"
        )
    dims = check_by(by)
    check_range(since, until)
    if user_id is not None:
        check_name("user_id", user_id)
    if agent_id is not None:
        check_name("agent_id", agent_id)
    actor = getattr(store, "actor", None)
    if actor is not None:  # a participant's view measures its own sessions, as it lists them
        user_id = user_id or actor
        require_owner(actor, user_id, "measure the usage")
    from vecmem.conversations.memory import _PythonConversationStore
    from vecmem.conversations.sql import SQLConversationStore

    if isinstance(store, SQLConversationStore):
        from vecmem.conversations.usage_sql import sql_usage

        return sql_usage(store, dims, since=since, until=until, user_id=user_id, agent_id=agent_id)
    if isinstance(store, _PythonConversationStore):
        with store._lock:
            now = store.clock()
            records = [
                (r.session, list(r.messages))
                for r in store._records(user_id)
                if is_live(r.session.expires_at, now)  # expired sessions are gone, purged or not
            ]
    else:
        records = [
            (s, store.get_messages(s.user_id, s.session_id)) for s in _all_sessions(store, user_id)
        ]
    facts: list[Fact] = []
    for s, messages in records:
        if agent_id is not None and s.agent_id != agent_id:
            continue
        for m in messages:
            ts = m.created_at or 0.0
            if m.usage is None or (since is not None and ts < since):
                continue
            if until is not None and ts >= until:
                continue
            u = m.usage
            facts.append(
                (
                    s.user_id,
                    s.session_id,
                    s.agent_id,
                    u.model,
                    ts,
                    u.input_tokens,
                    u.output_tokens,
                    u.cost or 0.0,
                )
            )
    return aggregate(facts, dims)


def _all_sessions(store: Any, user_id: str | None) -> list[Any]:
    out: list[Any] = []
    while True:
        page = store.query_sessions(user_id=user_id, limit=500, offset=len(out))
        out += page
        if len(page) < 500:
            return out


__all__ = ["DIMENSIONS", "Dimension", "UsageMetrics", "aggregate", "day_of", "usage_metrics"]
