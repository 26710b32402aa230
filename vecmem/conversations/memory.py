"""Conversation stores kept in Python: the shared implementation over session records and the
in-memory store. The JSON-file store (:mod:`vecmem.conversations.json_files`) shares it; they
differ only in where a record lives.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vecmem._keys import check_metadata, check_name, check_tags, check_tenant
from vecmem.conversations.base import (
    Message,
    OrderBy,
    Session,
    TenantUsage,
    check_ids,
    check_optional,
    check_page,
    check_query,
    export_document,
    prepare,
    with_seq,
)
from vecmem.conversations.sessions import (
    MergeStrategy,
    Overflow,
    Permission,
    branched,
    check_at,
    check_limits,
    check_merge,
    check_participant,
    check_permission,
    is_live,
    limit_drop,
    merge,
    not_found,
    overflow_after,
    require,
    require_owner,
    usage_totals,
)
from vecmem.errors import (
    ConflictError,
)


@dataclass
class _Record:
    session: Session
    messages: list[Message] = field(default_factory=list)
    participants: dict[str, str] = field(default_factory=dict)


class _PythonConversationStore:
    """Every operation over records; subclasses say where records are kept."""

    actor: str | None = None

    def __init__(self, tenant: str, clock: Callable[[], float]) -> None:
        self.tenant = check_tenant(tenant)
        self.clock = clock

    # storage, implemented by subclasses; called under self._lock
    _lock: threading.RLock

    def _load(self, user_id: str, session_id: str) -> _Record | None:
        raise NotImplementedError

    def _store(self, record: _Record) -> None:
        raise NotImplementedError

    def _remove(self, user_id: str, session_id: str) -> bool:
        raise NotImplementedError

    def _records(self, user_id: str | None) -> Iterator[_Record]:
        raise NotImplementedError

    def _remove_user(self, user_id: str, session_ids: list[str]) -> None:
        """Remove every session of the user (``session_ids``: those found). Stores where a crash
        could stop this loop half way, leaving half a user, override it with one atomic step."""
        for session_id in session_ids:
            self._remove(user_id, session_id)

    def acting_as(self, participant: str) -> Any:
        check_name("participant", participant)
        view = copy.copy(self)
        view.actor = participant
        return view

    def _open(
        self, user_id: str, session_id: str, needed: Permission, what: str, now: float
    ) -> _Record | None:
        """The live record (``None`` if missing or expired), once the actor may do ``what``."""
        rec = self._load(user_id, session_id)
        if rec is not None and not is_live(rec.session.expires_at, now):
            rec = None
        if self.actor is not None:
            granted = rec.participants.get(self.actor) if rec else None
            require(self.actor, user_id, granted, needed, what)
        return rec

    def _new(self, user_id: str, session_id: str, now: float) -> _Record:
        return _Record(Session(user_id, session_id, created_at=now, updated_at=now))

    # API
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
        check_ids(user_id, session_id)
        check_optional("agent_id", agent_id)
        tag_set = None if tags is None else check_tags(tags)
        meta = None if metadata is None else check_metadata(metadata)
        with self._lock:
            now = self.clock()
            rec = self._open(user_id, session_id, "moderate", "editing a session", now)
            rec = rec or self._new(user_id, session_id, now)
            s = rec.session
            rec.session = replace(
                s,
                agent_id=s.agent_id if agent_id is None else agent_id,
                title=s.title if title is None else title,
                tags=s.tags if tag_set is None else tag_set,
                metadata=s.metadata if meta is None else meta,
                updated_at=now,
            )
            self._store(rec)
            return rec.session

    def get_session(self, user_id: str, session_id: str) -> Session:
        check_ids(user_id, session_id)
        with self._lock:
            rec = self._open(user_id, session_id, "read", "reading a session", self.clock())
        if rec is None:
            raise not_found(user_id, session_id)
        return rec.session

    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        check_ids(user_id, session_id)
        check_optional("agent_id", agent_id)
        with self._lock:
            now = self.clock()
            new = prepare(messages, now)
            rec = self._open(user_id, session_id, "write", "adding messages", now)
            rec = rec or self._new(user_id, session_id, now)
            s = rec.session
            drop = overflow_after(
                len(rec.messages), len(new), s.max_messages, s.overflow, f"session {session_id!r}"
            )
            new = with_seq(new, rec.messages[-1].seq + 1 if rec.messages else 0)
            i, o, c = usage_totals(new)
            rec.messages = [*rec.messages, *new][drop:]
            rec.session = replace(
                s,
                agent_id=s.agent_id or agent_id,
                updated_at=now,
                message_count=len(rec.messages),
                input_tokens=s.input_tokens + i,
                output_tokens=s.output_tokens + o,
                cost=s.cost + c,
            )
            self._store(rec)
            return new

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        check_ids(user_id, session_id)
        check_page(limit, offset)
        with self._lock:
            rec = self._open(user_id, session_id, "read", "reading messages", self.clock())
        if rec is None:
            return []
        msgs = rec.messages[::-1] if newest_first else list(rec.messages)
        return msgs[offset : None if limit is None else offset + limit]

    def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        return self.get_messages(user_id, session_id, limit=n, newest_first=True)[::-1]

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
        q = check_query(
            self.actor,
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
        with self._lock:
            now = self.clock()
            found = [r.session for r in self._records(q.user_id)]
        found = [
            s
            for s in found
            if is_live(s.expires_at, now)
            and (q.agent_id is None or s.agent_id == q.agent_id)
            and (q.since is None or s.updated_at >= q.since)
            and (q.until is None or s.updated_at < q.until)
            and set(q.tags).issubset(s.tags)
            and (q.min_messages is None or s.message_count >= q.min_messages)
        ]
        found.sort(key=lambda s: (s.user_id, s.session_id))
        found.sort(key=lambda s: getattr(s, q.order_by), reverse=q.descending)
        return found[q.offset : q.offset + q.limit]

    def list_sessions(self, user_id: str, *, limit: int = 100, offset: int = 0) -> list[Session]:
        return self.query_sessions(user_id=user_id, limit=limit, offset=offset)

    def delete_session(self, user_id: str, session_id: str) -> bool:
        check_ids(user_id, session_id)
        with self._lock:
            live = self._open(user_id, session_id, "moderate", "deleting a session", self.clock())
            return self._remove(user_id, session_id) and live is not None

    def delete_user(self, user_id: str) -> int:
        check_ids(user_id)
        require_owner(self.actor, user_id, "delete the sessions")
        with self._lock:
            now = self.clock()
            recs = list(self._records(user_id))
            if recs:
                self._remove_user(user_id, [r.session.session_id for r in recs])
            return sum(is_live(r.session.expires_at, now) for r in recs)

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        check_ids(user_id, session_id)
        with self._lock:
            now = self.clock()
            if session_id is None:
                require_owner(self.actor, user_id, "export the sessions")
                recs = sorted(self._records(user_id), key=lambda r: r.session.session_id)
                recs = [r for r in recs if is_live(r.session.expires_at, now)]
            else:
                rec = self._open(user_id, session_id, "read", "exporting a session", now)
                if rec is None:
                    raise not_found(user_id, session_id)
                recs = [rec]
            return export_document(
                self.tenant, user_id, [(r.session, list(r.messages)) for r in recs]
            )

    # -- sessions: limits, branches, merges, participants --------------------------------------
    def set_session_limits(
        self,
        user_id: str,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        overflow: Overflow = "refuse",
    ) -> Session:
        check_ids(user_id, session_id)
        check_limits(ttl, max_messages, overflow)
        with self._lock:
            now = self.clock()
            rec = self._open(user_id, session_id, "moderate", "limiting a session", now)
            rec = rec or self._new(user_id, session_id, now)
            drop = limit_drop(len(rec.messages), max_messages, overflow, session_id)
            rec.messages = rec.messages[drop:]
            rec.session = replace(
                rec.session,
                expires_at=None if ttl is None else now + ttl,
                max_messages=max_messages,
                overflow=overflow,
                message_count=len(rec.messages),
                updated_at=now,
            )
            self._store(rec)
            return rec.session

    def purge_expired(self) -> int:
        with self._lock:
            now = self.clock()
            gone = [
                r.session for r in self._records(None) if not is_live(r.session.expires_at, now)
            ]
            return sum(self._remove(s.user_id, s.session_id) for s in gone)

    def usage(self) -> TenantUsage:
        require_owner(self.actor, None, "measure the tenant's usage")
        with self._lock:
            now = self.clock()
            live = [r for r in self._records(None) if is_live(r.session.expires_at, now)]
            return TenantUsage(
                len(live),
                sum(len(r.messages) for r in live),
                sum(len(m.content.encode()) for r in live for m in r.messages),
            )

    def _claim(self, user_id: str, session_id: str, now: float) -> None:
        rec = self._load(user_id, session_id)
        if rec is not None and is_live(rec.session.expires_at, now):
            raise ConflictError(f"session {session_id!r} of user {user_id!r} exists")

    def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        check_ids(user_id, session_id)
        check_name("session_id", new_session_id)
        with self._lock:
            now = self.clock()
            src = self._open(user_id, session_id, "moderate", "branching a session", now)
            if src is None:
                raise not_found(user_id, session_id)
            msgs = with_seq(src.messages[: check_at(at, len(src.messages))], 0)
            self._claim(user_id, new_session_id, now)
            rec = _Record(branched(src.session, new_session_id, msgs, now), msgs)
            self._store(rec)
            return rec.session

    def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        check_ids(user_id, primary_id)
        target = check_merge(primary_id, secondary_id, into, strategy)
        with self._lock:
            now = self.clock()
            recs = []
            for sid in (primary_id, secondary_id):
                rec = self._open(user_id, sid, "moderate", "merging sessions", now)
                if rec is None:
                    raise not_found(user_id, sid)
                recs.append(rec)
            p, s = recs
            if target != primary_id:
                self._claim(user_id, target, now)
            header, msgs = merge(
                p.session,
                s.session,
                p.messages,
                s.messages,
                target=target,
                strategy=strategy,
                now=now,
            )
            kept = p.participants if target == primary_id else {}  # grants stay with the primary
            out = _Record(header, with_seq(msgs, 0), kept)
            self._store(out)
            return out.session

    def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        self._set_participant(user_id, session_id, participant, check_permission(permission))

    def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        return self._set_participant(user_id, session_id, participant, None)

    def _set_participant(
        self, user_id: str, session_id: str, participant: str, permission: str | None
    ) -> bool:
        check_participant(user_id, session_id, participant)
        with self._lock:
            rec = self._open(user_id, session_id, "moderate", "managing participants", self.clock())
            if rec is None:
                raise not_found(user_id, session_id)
            had = rec.participants.pop(participant, None) is not None
            if permission is not None:
                rec.participants[participant] = permission
            self._store(rec)
            return had

    def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        check_ids(user_id, session_id)
        with self._lock:
            rec = self._open(user_id, session_id, "read", "listing participants", self.clock())
        if rec is None:
            raise not_found(user_id, session_id)
        return {k: check_permission(v) for k, v in sorted(rec.participants.items())}

    def close(self) -> None:
        pass


class _Shared:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str, str], _Record] = {}
        self.lock = threading.RLock()


class MemoryConversationStore(_PythonConversationStore):
    """Conversations in memory, lost on exit.

    >>> store = MemoryConversationStore(tenant="acme")
    >>> store.save_session("u1", "s1", title="Trip", tags=["travel"]).tags
    ('travel',)
    """

    def __init__(
        self,
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        _shared: _Shared | None = None,
    ) -> None:
        super().__init__(tenant, clock)
        self._shared = _shared or _Shared()
        self._lock = self._shared.lock

    def with_tenant(self, tenant: str) -> MemoryConversationStore:
        view = MemoryConversationStore(tenant=tenant, clock=self.clock, _shared=self._shared)
        view.actor = self.actor
        return view

    def _load(self, user_id: str, session_id: str) -> _Record | None:
        rec = self._shared.records.get((self.tenant, user_id, session_id))
        if rec is None:
            return None
        return _Record(rec.session, list(rec.messages), dict(rec.participants))

    def _store(self, record: _Record) -> None:
        s = record.session
        self._shared.records[(self.tenant, s.user_id, s.session_id)] = record

    def _remove(self, user_id: str, session_id: str) -> bool:
        return self._shared.records.pop((self.tenant, user_id, session_id), None) is not None

    def _records(self, user_id: str | None) -> Iterator[_Record]:
        for (t, u, _), rec in list(self._shared.records.items()):
            if t == self.tenant and (user_id is None or u == user_id):
                yield rec


__all__ = ["MemoryConversationStore"]
