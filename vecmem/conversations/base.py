"""Conversation data model, the store protocol and its asyncio variant.

A session is keyed by ``(user_id, session_id)`` inside a tenant and carries ``agent_id``, a
``title``, ``tags``, ``metadata`` and running totals (message count, tokens, cost). Messages are
appended in order; each gets a position ``seq`` (0, 1, ...), an ``id`` and a ``created_at``.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from vecmem._keys import check_epoch, check_metadata, check_name, check_tags
from vecmem.conversations.sessions import MergeStrategy, Overflow, Permission, require_owner
from vecmem.conversations.usage import Dimension, UsageMetrics, usage_metrics
from vecmem.errors import InvalidInputError
from vecmem.validation import check_text

OrderBy = Literal["created_at", "updated_at", "message_count"]
ORDER_FIELDS = ("created_at", "updated_at", "message_count")
EXPORT_FORMAT = "vecmem.conversations/1"


@dataclass(frozen=True)
class Usage:
    """Token usage and cost of one model call (cost in the caller's currency)."""

    input_tokens: int = 0
    output_tokens: int = 0
    model: str | None = None
    cost: float | None = None


@dataclass(frozen=True)
class Message:
    """One message. Give ``role`` and ``content``; the store fills ``id`` (unless given),
    ``created_at`` (unless given) and ``seq`` (its position in the session).

    >>> Message("user", "hello", usage=Usage(input_tokens=3, model="gpt-x")).role
    'user'
    """

    role: str
    content: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    usage: Usage | None = None
    id: str = ""
    created_at: float | None = None
    seq: int = -1


@dataclass(frozen=True)
class Session:
    """A conversation's header with running totals over its messages."""

    user_id: str
    session_id: str
    agent_id: str | None = None
    title: str | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0
    message_count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    expires_at: float | None = None
    max_messages: int | None = None
    overflow: Overflow = "refuse"


@dataclass(frozen=True)
class TenantUsage:
    """What a tenant stores: its live sessions, their messages and the UTF-8 bytes of their
    contents (what per-tenant quotas count)."""

    sessions: int = 0
    messages: int = 0
    content_bytes: int = 0


@runtime_checkable
class ConversationStore(Protocol):
    """Sessions and their messages, scoped to ``tenant``.

    >>> from vecmem.conversations import MemoryConversationStore, Message
    >>> store = MemoryConversationStore(tenant="acme")
    >>> _ = store.add_messages("u1", "s1", [Message("user", "hi"), Message("assistant", "hey")])
    >>> [m.content for m in store.last_messages("u1", "s1", 1)]
    ['hey']
    >>> store.get_session("u1", "s1").message_count
    2
    """

    tenant: str
    actor: str | None

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
        """Create the session or update the fields given (``None`` leaves a field as is;
        ``tags`` replaces the set)."""
        ...

    def get_session(self, user_id: str, session_id: str) -> Session:
        """The session, or :class:`~vecmem.errors.NotFoundError`."""
        ...

    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        """Append ``messages`` in one transaction, creating the session if needed; returns them
        with ``id``, ``created_at`` and ``seq`` filled in."""
        ...

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        """A page of the session's messages (``[]`` for an unknown session)."""
        ...

    def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        """The newest ``n`` messages, oldest first (what a prompt needs)."""
        ...

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
        """Sessions matching every filter given: ``since <= updated_at < until``, all ``tags``,
        at least ``min_messages``; ties ordered by ``(user_id, session_id)``."""
        ...

    def list_sessions(self, user_id: str, *, limit: int = 100, offset: int = 0) -> list[Session]:
        """A user's sessions, most recently updated first."""
        ...

    def delete_session(self, user_id: str, session_id: str) -> bool:
        """Delete a session and its messages; ``False`` if it did not exist."""
        ...

    def delete_user(self, user_id: str) -> int:
        """Delete all of a user's sessions; returns how many."""
        ...

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        """A JSON-able dump of a user's sessions (or one) with every message."""
        ...

    def with_tenant(self, tenant: str) -> ConversationStore:
        """A view of the same backend scoped to another tenant."""
        ...

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
        """Replace the session's limits (creating it if needed): it expires ``ttl`` seconds from
        now (``None``: never) and holds at most ``max_messages`` (``None``: no limit); past the
        limit the oldest are dropped (``"trim_oldest"``, at once and on later writes) or writes
        fail with :class:`~vecmem.errors.SessionFullError` (``"refuse"``). An expired session is
        gone: reads do not see it, a write starts it afresh, :meth:`purge_expired` deletes it.
        Token and cost totals keep counting dropped messages."""
        ...

    def purge_expired(self) -> int:
        """Delete the tenant's expired sessions; returns how many."""
        ...

    def usage(self) -> TenantUsage:
        """The tenant's live sessions, messages and content bytes."""
        ...

    def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        """A new session ``new_session_id`` holding copies of the first ``at`` messages (ids,
        times and usage kept, positions from 0) and the source's agent, title, tags and
        metadata; :class:`~vecmem.errors.ConflictError` if it exists."""
        ...

    def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        """Merge ``secondary_id`` into ``primary_id`` (or into the new session ``into``);
        the secondary is left as it was. A message both hold (same ``id``) is kept once, the
        primary's copy. ``"primary_wins"``: the primary's messages, then the secondary's others
        in their order; ``"interleave_by_time"``: all ordered by ``created_at``. Header fields
        are the primary's, the secondary filling those unset; tags are united."""
        ...

    def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        """Grant ``participant`` ``"read"``, ``"write"`` (read and add messages) or
        ``"moderate"`` (also edit, limit, branch, merge, delete and manage participants) on the
        session, replacing an earlier grant."""
        ...

    def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        """Revoke a participant's grant; ``False`` if there was none."""
        ...

    def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        """The session's participants and their permissions."""
        ...

    def acting_as(self, participant: str) -> ConversationStore:
        """A view of the same store whose calls run as ``participant``: on another user's
        session each needs the matching grant (:class:`~vecmem.errors.PermissionDeniedError`
        otherwise, with nothing read or written); listing and exporting stay the owner's."""
        ...

    def close(self) -> None: ...


# -- shared validation and helpers ---------------------------------------------------------------
def check_ids(user_id: str, session_id: str | None = None) -> None:
    check_name("user_id", user_id)
    if session_id is not None:
        check_name("session_id", session_id)


def check_optional(kind: str, value: str | None) -> None:
    if value is not None:
        check_name(kind, value)


def _is_real(v: Any) -> bool:
    """A finite int or float (not a bool, not a numeric string)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_usage(u: Any) -> None:
    """``u`` is a :class:`Usage` of token counts (ints >= 0), a model name and a finite cost."""
    if not isinstance(u, Usage):
        raise InvalidInputError(f"usage must be a Usage, got {type(u).__name__}")
    for name in ("input_tokens", "output_tokens"):
        v = getattr(u, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InvalidInputError(f"Usage.{name} must be an int >= 0, got {v!r}")
    if u.cost is not None and not _is_real(u.cost):
        raise InvalidInputError(f"Usage.cost must be a finite number or None, got {u.cost!r}")
    check_optional("model", u.model)


def prepare(messages: Sequence[Message], now: float) -> list[Message]:
    """Validated copies of new messages with ``id`` and ``created_at`` filled (seq still -1)."""
    if isinstance(messages, Message):
        raise InvalidInputError("add_messages takes a sequence of Message, not one Message")
    out = []
    for m in messages:
        if not isinstance(m, Message):
            raise InvalidInputError(f"expected Message, got {type(m).__name__}")
        check_name("role", m.role, max_len=64)
        if not isinstance(m.content, str):
            raise InvalidInputError("message content must be a string")
        check_text("message content", m.content)
        if m.id:
            check_name("message id", m.id)
        u = m.usage
        if u is not None:
            check_usage(u)
        if m.created_at is not None and not _is_real(m.created_at):
            raise InvalidInputError(
                f"created_at must be epoch seconds (a finite number), got {m.created_at!r}"
            )
        meta = check_metadata(m.metadata) if m.metadata else {}
        out.append(
            Message(
                m.role,
                m.content,
                meta,
                u,
                m.id or uuid.uuid4().hex,
                now if m.created_at is None else float(m.created_at),
            )
        )
    return out


def with_seq(messages: Sequence[Message], base: int) -> list[Message]:
    """``messages`` numbered from ``base`` (positions in the session)."""
    return [
        Message(m.role, m.content, m.metadata, m.usage, m.id, m.created_at, base + i)
        for i, m in enumerate(messages)
    ]


@dataclass(frozen=True)
class SessionQuery:
    """The checked arguments of ``query_sessions``: ``user_id`` is the actor's own when a
    participant's view lists without naming a user."""

    user_id: str | None
    agent_id: str | None
    since: float | None
    until: float | None
    tags: tuple[str, ...]
    min_messages: int | None
    order_by: OrderBy
    descending: bool
    limit: int
    offset: int


def check_query(
    actor: str | None,
    *,
    user_id: str | None,
    agent_id: str | None,
    since: float | None,
    until: float | None,
    tags: Sequence[str],
    min_messages: int | None,
    order_by: OrderBy,
    descending: bool,
    limit: int,
    offset: int,
) -> SessionQuery:
    """Every backend's ``query_sessions`` checks: :class:`InvalidInputError` for a bad argument,
    :class:`PermissionDeniedError` when a participant's view lists another user's sessions."""
    if order_by not in ORDER_FIELDS:
        raise InvalidInputError(f"order_by must be one of {ORDER_FIELDS}, got {order_by!r}")
    check_page(limit, offset)
    if min_messages is not None and (
        not isinstance(min_messages, int) or isinstance(min_messages, bool) or min_messages < 0
    ):
        raise InvalidInputError(f"min_messages must be an int >= 0, got {min_messages!r}")
    check_optional("user_id", user_id)
    check_optional("agent_id", agent_id)
    check_epoch("since", since)
    check_epoch("until", until)
    wanted = check_tags(tags)
    if actor is not None:
        user_id = user_id or actor
        require_owner(actor, user_id, "list the sessions")
    return SessionQuery(
        user_id, agent_id, since, until, wanted, min_messages, order_by, bool(descending), limit,
        offset,
    )  # fmt: skip


def check_page(limit: int | None, offset: int) -> None:
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidInputError(f"limit must be an int >= 0, got {limit!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidInputError(f"offset must be an int >= 0, got {offset!r}")


def message_dict(m: Message) -> dict[str, Any]:
    u = m.usage
    return {
        "seq": m.seq,
        "id": m.id,
        "role": m.role,
        "content": m.content,
        "metadata": dict(m.metadata),
        "created_at": m.created_at,
        "usage": None
        if u is None
        else {
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "model": u.model,
            "cost": u.cost,
        },
    }


def message_from_dict(d: Mapping[str, Any]) -> Message:
    u = d.get("usage")
    return Message(
        role=d["role"],
        content=d["content"],
        metadata=dict(d.get("metadata") or {}),
        usage=None if u is None else Usage(**u),
        id=d["id"],
        created_at=d["created_at"],
        seq=d["seq"],
    )


def session_dict(s: Session) -> dict[str, Any]:
    return {
        "user_id": s.user_id,
        "session_id": s.session_id,
        "agent_id": s.agent_id,
        "title": s.title,
        "tags": list(s.tags),
        "metadata": dict(s.metadata),
        "created_at": s.created_at,
        "updated_at": s.updated_at,
        "message_count": s.message_count,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "cost": s.cost,
        "expires_at": s.expires_at,
        "max_messages": s.max_messages,
        "overflow": s.overflow,
    }


def session_from_dict(d: Mapping[str, Any]) -> Session:
    return Session(**{**d, "tags": tuple(d.get("tags", ())), "metadata": dict(d["metadata"])})


def export_document(
    tenant: str, user_id: str, sessions: list[tuple[Session, list[Message]]]
) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "tenant": tenant,
        "user_id": user_id,
        "exported_at": time.time(),
        "sessions": [
            {**session_dict(s), "messages": [message_dict(m) for m in msgs]} for s, msgs in sessions
        ],
    }


class AsyncConversationStore:
    """The asyncio variant of any :class:`ConversationStore`: each call runs the synchronous
    store in a worker thread (``asyncio.to_thread``), so SQL drivers never block the loop.

    >>> import asyncio
    >>> from vecmem.conversations import MemoryConversationStore, Message
    >>> store = AsyncConversationStore(MemoryConversationStore())
    >>> _ = asyncio.run(store.add_messages("u", "s", [Message("user", "hi")]))
    >>> asyncio.run(store.get_session("u", "s")).message_count
    1
    """

    def __init__(self, store: ConversationStore) -> None:
        self.store = store
        self.tenant = store.tenant
        self.actor = store.actor

    def acting_as(self, participant: str) -> AsyncConversationStore:
        return AsyncConversationStore(self.store.acting_as(participant))

    def with_tenant(self, tenant: str) -> AsyncConversationStore:
        return AsyncConversationStore(self.store.with_tenant(tenant))

    async def save_session(
        self,
        user_id: str,
        session_id: str,
        *,
        agent_id: str | None = None,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Session:
        return await asyncio.to_thread(
            self.store.save_session,
            user_id,
            session_id,
            agent_id=agent_id,
            title=title,
            tags=tags,
            metadata=metadata,
        )

    async def get_session(self, user_id: str, session_id: str) -> Session:
        return await asyncio.to_thread(self.store.get_session, user_id, session_id)

    async def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        return await asyncio.to_thread(
            self.store.add_messages, user_id, session_id, messages, agent_id=agent_id
        )

    async def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        return await asyncio.to_thread(
            self.store.get_messages,
            user_id,
            session_id,
            limit=limit,
            offset=offset,
            newest_first=newest_first,
        )

    async def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        return await asyncio.to_thread(self.store.last_messages, user_id, session_id, n)

    async def query_sessions(
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
        return await asyncio.to_thread(
            self.store.query_sessions,
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

    async def list_sessions(
        self, user_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[Session]:
        return await asyncio.to_thread(
            self.store.list_sessions, user_id, limit=limit, offset=offset
        )

    async def delete_session(self, user_id: str, session_id: str) -> bool:
        return await asyncio.to_thread(self.store.delete_session, user_id, session_id)

    async def delete_user(self, user_id: str) -> int:
        return await asyncio.to_thread(self.store.delete_user, user_id)

    async def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        return await asyncio.to_thread(self.store.export, user_id, session_id)

    async def set_session_limits(
        self,
        user_id: str,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        overflow: Overflow = "refuse",
    ) -> Session:
        return await asyncio.to_thread(
            self.store.set_session_limits,
            user_id,
            session_id,
            ttl=ttl,
            max_messages=max_messages,
            overflow=overflow,
        )

    async def purge_expired(self) -> int:
        return await asyncio.to_thread(self.store.purge_expired)

    async def usage(self) -> TenantUsage:
        return await asyncio.to_thread(self.store.usage)

    async def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        return await asyncio.to_thread(
            self.store.branch_session, user_id, session_id, new_session_id, at=at
        )

    async def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        return await asyncio.to_thread(
            self.store.merge_sessions,
            user_id,
            primary_id,
            secondary_id,
            into=into,
            strategy=strategy,
        )

    async def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        await asyncio.to_thread(
            self.store.add_participant, user_id, session_id, participant, permission=permission
        )

    async def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        return await asyncio.to_thread(
            self.store.remove_participant, user_id, session_id, participant
        )

    async def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        return await asyncio.to_thread(self.store.list_participants, user_id, session_id)

    async def usage_metrics(
        self,
        *,
        by: Sequence[Dimension] = ("day", "user_id", "agent_id"),
        since: float | None = None,
        until: float | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
    ) -> list[UsageMetrics]:
        """:func:`~vecmem.conversations.usage_metrics` of the wrapped store."""
        return await asyncio.to_thread(
            usage_metrics,
            self.store,
            by=by,
            since=since,
            until=until,
            user_id=user_id,
            agent_id=agent_id,
        )

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)
