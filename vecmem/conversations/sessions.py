"""Session operations every conversation backend shares: branching, merging, limits (TTL and a
maximum number of messages) and participants' permissions.

The backends keep the data; the rules live here as small pure functions, so SQLite, the servers
and the in-memory and JSON stores decide alike.

>>> from vecmem.conversations import MemoryConversationStore, Message
>>> store = MemoryConversationStore()
>>> _ = store.add_messages("u", "main", [Message("user", str(i)) for i in range(4)])
>>> store.branch_session("u", "main", "alt", at=2).message_count
2
>>> store.set_session_limits("u", "alt", max_messages=3, overflow="trim_oldest").max_messages
3
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from vecmem._keys import check_name
from vecmem.errors import InvalidInputError, NotFoundError, PermissionDeniedError, SessionFullError

Permission = Literal["read", "write", "moderate"]
Overflow = Literal["trim_oldest", "refuse"]
MergeStrategy = Literal["primary_wins", "interleave_by_time"]
PERMISSIONS: tuple[Permission, ...] = ("read", "write", "moderate")
OVERFLOWS: tuple[Overflow, ...] = ("trim_oldest", "refuse")
MERGE_STRATEGIES: tuple[MergeStrategy, ...] = ("primary_wins", "interleave_by_time")
_RANK: dict[str, int] = {p: i for i, p in enumerate(PERMISSIONS)}


def check_permission(permission: object) -> Permission:
    if permission not in PERMISSIONS:
        raise InvalidInputError(f"permission must be one of {PERMISSIONS}, got {permission!r}")
    return permission


def check_limits(ttl: float | None, max_messages: int | None, overflow: object) -> None:
    """``ttl``: seconds > 0 (``None``: never expires); ``max_messages``: an int >= 1 (``None``:
    no limit); ``overflow``: ``"trim_oldest"`` or ``"refuse"``."""
    if ttl is not None and (
        not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or not 0 < ttl < math.inf
    ):
        raise InvalidInputError(f"ttl must be a finite number of seconds > 0, got {ttl!r}")
    if max_messages is not None and (
        not isinstance(max_messages, int) or isinstance(max_messages, bool) or max_messages < 1
    ):
        raise InvalidInputError(f"max_messages must be an int >= 1 or None, got {max_messages!r}")
    if overflow not in OVERFLOWS:
        raise InvalidInputError(f"overflow must be one of {OVERFLOWS}, got {overflow!r}")


def check_merge(primary_id: str, secondary_id: str, into: str | None, strategy: object) -> str:
    """The id the merge writes to (``into``, or the primary's)."""
    check_name("session_id", secondary_id)
    if strategy not in MERGE_STRATEGIES:
        raise InvalidInputError(f"strategy must be one of {MERGE_STRATEGIES}, got {strategy!r}")
    if primary_id == secondary_id:
        raise InvalidInputError("cannot merge a session with itself")
    if into is None:
        return primary_id
    check_name("session_id", into)
    if into == secondary_id:
        raise InvalidInputError("merge into the primary or a new session, not the secondary")
    return into


def check_participant(user_id: str, session_id: str, participant: str) -> None:
    check_name("user_id", user_id)
    check_name("session_id", session_id)
    check_name("participant", participant)
    if participant == user_id:
        raise InvalidInputError("the session's owner holds every permission already")


def not_found(user_id: str, session_id: str) -> NotFoundError:
    return NotFoundError(f"no session {session_id!r} for user {user_id!r}")


def check_at(at: object, count: int) -> int:
    if not isinstance(at, int) or isinstance(at, bool) or not 0 <= at <= count:
        raise InvalidInputError(f"at must be an int in 0..{count} (the message count), got {at!r}")
    return at


def is_live(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now


def overflow_after(
    count: int, adding: int, max_messages: int | None, overflow: str | None, where: str
) -> int:
    """How many of the oldest messages to drop so ``count + adding`` fits ``max_messages``;
    :class:`SessionFullError` when the session refuses."""
    if max_messages is None or count + adding <= max_messages:
        return 0
    if overflow == "refuse":
        raise SessionFullError(
            f"{where} holds {count} of at most {max_messages} messages; "
            f"{adding} more refused (overflow='refuse')"
        )
    return count + adding - max_messages


def limit_drop(count: int, max_messages: int | None, overflow: str, session_id: str) -> int:
    """How many of the oldest of ``count`` messages :meth:`set_session_limits` drops to fit
    ``max_messages``; :class:`InvalidInputError` when the new limit refuses overflow."""
    drop = 0 if max_messages is None else max(0, count - max_messages)
    if drop and overflow == "refuse":
        raise InvalidInputError(
            f"session {session_id!r} holds {count} messages, more than max_messages={max_messages}"
        )
    return drop


def usage_totals(messages: Sequence[Any]) -> tuple[int, int, float]:
    """Input tokens, output tokens and cost summed over ``messages``."""
    i = sum(m.usage.input_tokens for m in messages if m.usage)
    o = sum(m.usage.output_tokens for m in messages if m.usage)
    c = sum(m.usage.cost or 0.0 for m in messages if m.usage)
    return i, o, c


def branched(source: Any, new_session_id: str, messages: Sequence[Any], now: float) -> Any:
    """The header of a branch of session ``source`` holding ``messages``: the source's agent,
    title, tags and metadata; created now, totals of those messages, no limits."""
    i, o, c = usage_totals(messages)
    return replace(
        source,
        session_id=new_session_id,
        created_at=now,
        updated_at=now,
        message_count=len(messages),
        input_tokens=i,
        output_tokens=o,
        cost=c,
        expires_at=None,
        max_messages=None,
        overflow="refuse",
    )


def require(
    actor: str | None,
    user_id: str,
    granted: str | None,
    needed: Permission,
    what: str,
) -> None:
    """Raise :class:`PermissionDeniedError` unless ``actor`` (``None``: the store's own caller,
    trusted) owns the session or was ``granted`` at least ``needed``."""
    if actor is None or actor == user_id:
        return
    if granted is None or _RANK[granted] < _RANK[needed]:
        held = f"holds {granted!r}" if granted else "is not a participant"
        raise PermissionDeniedError(f"{actor!r} {held}; {what} needs {needed!r}")


def require_owner(actor: str | None, user_id: str | None, what: str) -> None:
    """Calls spanning a user's sessions (listing, exporting, deleting all) are the owner's."""
    if actor is not None and user_id != actor:
        whose = f" of user {user_id!r}" if user_id else ""
        raise PermissionDeniedError(f"{actor!r} cannot {what}{whose}")


def merged(
    primary: Sequence[Any], secondary: Sequence[Any], strategy: MergeStrategy
) -> tuple[list[Any], list[Any]]:
    """``(all messages in merged order, the secondary's messages that were added)``.

    A message of the secondary whose ``id`` the primary also holds is the same message: the
    primary's copy wins. ``primary_wins`` keeps the primary's order and appends the rest;
    ``interleave_by_time`` orders everything by ``created_at`` (ties: primary first, then
    position)."""
    seen = {m.id for m in primary}
    added = [m for m in secondary if m.id not in seen]
    if strategy == "primary_wins":
        return [*primary, *added], added
    tagged = [(m.created_at, 0, m.seq, m) for m in primary]
    tagged += [(m.created_at, 1, m.seq, m) for m in added]
    tagged.sort(key=lambda t: t[:3])
    return [t[3] for t in tagged], added


def merged_header(primary: Any, secondary: Any) -> dict[str, Any]:
    """The merged session's agent, title, tags and metadata: the primary's, the secondary filling
    what the primary leaves unset; tags united."""
    return {
        "agent_id": primary.agent_id or secondary.agent_id,
        "title": primary.title if primary.title is not None else secondary.title,
        "tags": tuple(sorted({*primary.tags, *secondary.tags})),
        "metadata": {**secondary.metadata, **primary.metadata},
    }


def merge(
    primary: Any,
    secondary: Any,
    primary_messages: Sequence[Any],
    secondary_messages: Sequence[Any],
    *,
    target: str,
    strategy: MergeStrategy,
    now: float,
) -> tuple[Any, list[Any]]:
    """``(the merged session's header, its messages in order)`` (positions not renumbered).

    Merging into the primary keeps its limits (past ``max_messages`` the oldest are dropped or
    :class:`SessionFullError` refuses); a new ``target`` is created now, with no limits. Token and
    cost totals are the primary's plus the secondary's messages that were added."""
    new = target != primary.session_id
    limit = None if new else primary.max_messages
    msgs, added = merged(primary_messages, secondary_messages, strategy)
    drop = overflow_after(
        len(primary_messages), len(added), limit, primary.overflow, f"session {target!r}"
    )
    i, o, c = usage_totals(added)
    header = replace(
        primary,
        **merged_header(primary, secondary),
        session_id=target,
        created_at=now if new else primary.created_at,
        updated_at=now,
        message_count=len(msgs) - drop,
        input_tokens=primary.input_tokens + i,
        output_tokens=primary.output_tokens + o,
        cost=primary.cost + c,
        **({"expires_at": None, "max_messages": None, "overflow": "refuse"} if new else {}),
    )
    return header, msgs[drop:]


__all__ = [
    "MERGE_STRATEGIES",
    "OVERFLOWS",
    "PERMISSIONS",
    "MergeStrategy",
    "Overflow",
    "Permission",
]
