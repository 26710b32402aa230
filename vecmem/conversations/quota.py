"""Per-tenant quotas on any conversation store: live sessions, stored content bytes and requests
per minute, refused with typed errors before anything is written.

:class:`QuotaConversationStore` counts a tenant's usage with the store's own ``usage()`` (one
aggregate query), keeps that count up to date with its own writes, and asks the store again after
a delete, a branch or a merge, and every ``refresh`` seconds (so writes by other processes are
seen within that time; until then they can together pass a quota by what they wrote in it).
Within one wrapper (its threads and views), an admitted write reserves what it adds until it
finishes, so concurrent writers cannot pass a quota together.
The request rate is counted per process, over the last 60 seconds, reads and writes alike.

>>> from vecmem.conversations import MemoryConversationStore, Message
>>> store = QuotaConversationStore(MemoryConversationStore(), quota=TenantQuota(max_sessions=1))
>>> _ = store.add_messages("u", "s1", [Message("user", "hi")])
>>> store.add_messages("u", "s2", [Message("user", "hi")])
Traceback (most recent call last):
...
vecmem.errors.QuotaExceededError: tenant 'default' holds 1 of at most 1 sessions
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vecmem.conversations.base import (
    ConversationStore,
    Message,
    OrderBy,
    Session,
    TenantUsage,
    check_ids,
    prepare,
)
from vecmem.conversations.sessions import MergeStrategy, Overflow, Permission
from vecmem.errors import ConfigurationError, NotFoundError, QuotaExceededError, RateLimitedError


@dataclass(frozen=True)
class TenantQuota:
    """Limits for one tenant; ``None`` is no limit."""

    max_sessions: int | None = None
    max_bytes: int | None = None
    requests_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_sessions", "max_bytes", "requests_per_minute"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise ConfigurationError(f"TenantQuota.{name} must be an int >= 1, got {v!r}")


@dataclass
class _Tenant:
    usage: TenantUsage | None = None
    measured_at: float = 0.0
    requests: deque[float] = field(default_factory=deque)
    pending: tuple[int, int] = (0, 0)  # sessions and bytes of admitted writes not finished
    settled: tuple[int, int] = (0, 0)  # sessions and bytes of all finished writes, ever
    measuring: threading.Lock = field(default_factory=threading.Lock)


class _Ledger:
    """Usage and request times per tenant, shared by the views of one wrapper."""

    def __init__(self) -> None:
        self.tenants: dict[str, _Tenant] = {}
        self.lock = threading.Lock()


def _size(messages: Sequence[Message]) -> int:
    return sum(len(m.content.encode("utf-8", "surrogatepass")) for m in messages)


class QuotaConversationStore:
    """Any :class:`~vecmem.conversations.ConversationStore` with per-tenant quotas.

    ``quota`` applies to every tenant, ``quotas`` overrides it for the tenants named.
    """

    def __init__(
        self,
        store: ConversationStore,
        *,
        quota: TenantQuota = TenantQuota(),
        quotas: Mapping[str, TenantQuota] | None = None,
        refresh: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        _ledger: _Ledger | None = None,
        _meter: ConversationStore | None = None,
    ) -> None:
        if not isinstance(refresh, (int, float)) or refresh < 0:
            raise ConfigurationError(f"refresh must be seconds >= 0, got {refresh!r}")
        if _meter is None and store.actor is not None:  # it could not measure the tenant
            raise ConfigurationError(
                "QuotaConversationStore wraps the tenant's own store, not a participant's view: "
                "wrap the store, then call acting_as on the wrapper"
            )
        self.store, self.refresh, self.clock = store, float(refresh), clock
        self.tenant, self.actor = store.tenant, store.actor
        self._default, self._quotas = quota, dict(quotas or {})
        self.quota = self._quotas.get(self.tenant, quota)
        self._ledger = _ledger or _Ledger()
        self._meter = _meter or store  # the tenant's own view: measures for participants too

    def _view(self, store: ConversationStore, meter: ConversationStore) -> QuotaConversationStore:
        return QuotaConversationStore(
            store,
            quota=self._default,
            quotas=self._quotas,
            refresh=self.refresh,
            clock=self.clock,
            _ledger=self._ledger,
            _meter=meter,
        )

    def with_tenant(self, tenant: str) -> QuotaConversationStore:
        return self._view(self.store.with_tenant(tenant), self._meter.with_tenant(tenant))

    def acting_as(self, participant: str) -> QuotaConversationStore:
        return self._view(self.store.acting_as(participant), self._meter)

    # -- accounting -----------------------------------------------------------------------------
    def _state(self) -> _Tenant:
        with self._ledger.lock:
            return self._ledger.tenants.setdefault(self.tenant, _Tenant())

    def _request(self) -> None:
        limit = self.quota.requests_per_minute
        if limit is None:
            return
        t, now = self._state(), self.clock()
        with self._ledger.lock:
            while t.requests and t.requests[0] <= now - 60.0:
                t.requests.popleft()
            if len(t.requests) >= limit:
                wait = 60.0 - (now - t.requests[0])
                raise RateLimitedError(
                    f"tenant {self.tenant!r} made {limit} requests in the last minute", wait
                )
            t.requests.append(now)

    def _usage(self) -> TenantUsage:
        t = self._state()
        with t.measuring:  # one measurement at a time per tenant
            if t.usage is None or self.clock() - t.measured_at >= self.refresh:
                with self._ledger.lock:
                    before = t.settled
                measured = self._meter.usage()
                with self._ledger.lock:
                    # writes settled while measuring count on top (those that committed before
                    # the measurement read count twice until the next one: never fewer)
                    t.usage = replace(
                        measured,
                        sessions=measured.sessions + t.settled[0] - before[0],
                        content_bytes=measured.content_bytes + t.settled[1] - before[1],
                    )
                    t.measured_at = self.clock()
            return t.usage

    def _admit(self, new_sessions: int, new_bytes: int) -> tuple[int, int]:
        """Check that the write fits and reserve it: writes admitted but not finished count, so
        threads admitted together cannot pass a quota between them. Returns the reservation,
        which :meth:`_settle` releases."""
        q = self.quota
        if q.max_sessions is None and q.max_bytes is None:
            return (0, 0)
        u, t = self._usage(), self._state()
        with self._ledger.lock:
            u = t.usage or u  # with what settled since, read under the lock
            sessions = u.sessions + t.pending[0] + new_sessions
            if q.max_sessions is not None and new_sessions and sessions > q.max_sessions:
                raise QuotaExceededError(
                    f"tenant {self.tenant!r} holds {u.sessions + t.pending[0]} of at most "
                    f"{q.max_sessions} sessions"
                )
            stored = u.content_bytes + t.pending[1]
            if q.max_bytes is not None and new_bytes and stored + new_bytes > q.max_bytes:
                raise QuotaExceededError(
                    f"tenant {self.tenant!r} stores {stored:,} bytes; {new_bytes:,} more "
                    f"would pass its quota of {q.max_bytes:,}"
                )
            t.pending = (t.pending[0] + new_sessions, t.pending[1] + new_bytes)
        return (new_sessions, new_bytes)

    def _settle(self, reserved: tuple[int, int], new_sessions: int, new_bytes: int) -> None:
        """Release a reservation and count what the write did (nothing if it failed)."""
        t = self._state()
        with self._ledger.lock:
            t.pending = (t.pending[0] - reserved[0], t.pending[1] - reserved[1])
            t.settled = (t.settled[0] + new_sessions, t.settled[1] + new_bytes)
            if t.usage is not None:
                t.usage = replace(
                    t.usage,
                    sessions=t.usage.sessions + new_sessions,
                    content_bytes=t.usage.content_bytes + new_bytes,
                )

    def _stale(self, reserved: tuple[int, int] = (0, 0)) -> None:
        """Release a reservation and measure again before the next admission."""
        self._settle(reserved, 0, 0)
        self._state().usage = None

    def _is_new(self, user_id: str, session_id: str) -> int:
        """1 if the session does not exist yet (asked only when a session quota is set)."""
        if self.quota.max_sessions is None:
            return 0
        try:
            self._meter.get_session(user_id, session_id)
        except NotFoundError:
            return 1
        return 0

    # -- writes that add -----------------------------------------------------------------------
    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        self._request()
        check_ids(user_id, session_id)
        nbytes = _size(prepare(messages, 0.0))  # validated first: bad input is InvalidInputError
        new = self._is_new(user_id, session_id)
        reserved = self._admit(new, nbytes)
        done = False
        try:
            out = self.store.add_messages(user_id, session_id, messages, agent_id=agent_id)
            done = True  # the session exists now, even when no message was given
        finally:
            self._settle(reserved, new if done else 0, nbytes if done else 0)
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
        self._request()
        check_ids(user_id, session_id)
        new = self._is_new(user_id, session_id)
        reserved = self._admit(new, 0)
        done = False
        try:
            out = self.store.save_session(
                user_id, session_id, agent_id=agent_id, title=title, tags=tags, metadata=metadata
            )
            done = True
        finally:
            self._settle(reserved, new if done else 0, 0)
        return out

    def set_session_limits(
        self,
        user_id: str,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        overflow: Overflow = "refuse",
    ) -> Session:
        self._request()
        check_ids(user_id, session_id)
        reserved = self._admit(self._is_new(user_id, session_id), 0)
        try:
            return self.store.set_session_limits(
                user_id, session_id, ttl=ttl, max_messages=max_messages, overflow=overflow
            )
        finally:
            self._stale(reserved)  # trimmed or expiring: measure again

    def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        self._request()
        head = self.store.get_messages(user_id, session_id)
        reserved = self._admit(1, _size(head[:at]) if isinstance(at, int) else 0)
        try:
            return self.store.branch_session(user_id, session_id, new_session_id, at=at)
        finally:
            self._stale(reserved)

    def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        self._request()
        nbytes = _size(self.store.get_messages(user_id, secondary_id))  # at most this is added
        if into is not None:
            nbytes += _size(self.store.get_messages(user_id, primary_id))
        reserved = self._admit(int(into is not None), nbytes)
        try:
            return self.store.merge_sessions(
                user_id, primary_id, secondary_id, into=into, strategy=strategy
            )
        finally:
            self._stale(reserved)

    # -- writes that free ----------------------------------------------------------------------
    def delete_session(self, user_id: str, session_id: str) -> bool:
        self._request()
        try:
            return self.store.delete_session(user_id, session_id)
        finally:
            self._stale()

    def delete_user(self, user_id: str) -> int:
        self._request()
        try:
            return self.store.delete_user(user_id)
        finally:
            self._stale()

    def purge_expired(self) -> int:
        self._request()
        try:
            return self.store.purge_expired()
        finally:
            self._stale()

    # -- the rest: counted as requests ---------------------------------------------------------
    def get_session(self, user_id: str, session_id: str) -> Session:
        self._request()
        return self.store.get_session(user_id, session_id)

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        self._request()
        return self.store.get_messages(
            user_id, session_id, limit=limit, offset=offset, newest_first=newest_first
        )

    def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        self._request()
        return self.store.last_messages(user_id, session_id, n)

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
        self._request()
        return self.store.query_sessions(
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
        )

    def list_sessions(self, user_id: str, *, limit: int = 100, offset: int = 0) -> list[Session]:
        self._request()
        return self.store.list_sessions(user_id, limit=limit, offset=offset)

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        self._request()
        return self.store.export(user_id, session_id)

    def usage(self) -> TenantUsage:
        self._request()
        return self.store.usage()

    def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        self._request()
        self.store.add_participant(user_id, session_id, participant, permission=permission)

    def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        self._request()
        return self.store.remove_participant(user_id, session_id, participant)

    def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        self._request()
        return self.store.list_participants(user_id, session_id)

    def close(self) -> None:
        self.store.close()


__all__ = ["QuotaConversationStore", "TenantQuota"]
