"""A read cache for sessions and their messages in front of any conversation store.

:class:`CachedConversationStore` answers ``get_session``, ``get_messages`` and ``last_messages``
from a cache and sends every other call to the store; each write through it invalidates the
sessions it touched. Two caches:

- :class:`LRUCache`: in this process, bounded by a number of sessions. Right when every write goes
  through this process's wrapper; another process's writes are not seen until eviction.
- :class:`RedisCache`: shared by processes. Each session has a version counter in Redis that a
  write increments after the store commits, and each user one that ``delete_user`` increments;
  entries are stored under the pair read before the store was, so a reader never takes an entry
  older than the last finished write. Values expire after ``ttl`` seconds.

Reads of a session that does not exist are not cached. A cached session past its
``expires_at`` is treated as gone. Participants' views (:meth:`acting_as`, or a wrapper over a
store that acts as a participant) bypass the cache, so every permission check happens in the
store.

>>> from vecmem.conversations import MemoryConversationStore, Message
>>> store = CachedConversationStore(MemoryConversationStore(), cache=LRUCache(maxsize=100))
>>> _ = store.add_messages("u", "s", [Message("user", "hi")])
>>> _ = store.last_messages("u", "s", 5); _ = store.last_messages("u", "s", 5)
>>> store.cache.hits, store.cache.misses
(1, 1)
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vecmem.conversations.base import (
    ConversationStore,
    Message,
    OrderBy,
    Session,
    TenantUsage,
    check_ids,
    check_page,
    message_dict,
    message_from_dict,
    session_dict,
    session_from_dict,
)
from vecmem.conversations.sessions import MergeStrategy, Overflow, Permission, is_live
from vecmem.errors import BackendError, BackendUnavailableError, ConfigurationError, NotFoundError

Key = tuple[str, str, str]  # tenant, user_id, session_id
Part = tuple[Any, ...]  # which read of the session: ("session",) or ("messages", ...)


class Cache(Protocol):
    """Entries grouped by session. ``get`` returns the value (or :data:`MISS`) and a stamp; a
    miss read from the store is ``put`` with that stamp, and dropped if the session was
    invalidated in between."""

    hits: int
    misses: int

    def get(self, key: Key, part: Part) -> tuple[Any, Any]: ...

    def put(self, key: Key, part: Part, value: Any, stamp: Any) -> None: ...

    def invalidate(self, keys: Sequence[Key]) -> None: ...

    def invalidate_user(self, tenant: str, user_id: str) -> None:
        """Every session of the user, cached or not, including ones no listing has seen."""
        ...


MISS: Any = object()


@dataclass(frozen=True)
class _Page:
    """A cached read of messages with the session's expiry at the time."""

    expires_at: float | None
    messages: list[Message]


@dataclass
class _Entry:
    changed: int
    values: dict[Part, Any] = field(default_factory=dict)


class LRUCache:
    """The ``maxsize`` most recently used sessions of this process, with their reads.

    >>> cache = LRUCache(maxsize=2)
    >>> value, stamp = cache.get(("t", "u", "s"), ("session",))
    >>> cache.put(("t", "u", "s"), ("session",), "S", stamp)
    >>> cache.get(("t", "u", "s"), ("session",))[0]
    'S'
    """

    def __init__(self, maxsize: int = 10_000) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 1:
            raise ConfigurationError(f"maxsize must be an int >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.hits = self.misses = 0
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._writes = 0  # invalidations so far: a put older than one it cannot see is dropped
        self._lock = threading.Lock()

    def get(self, key: Key, part: Part) -> tuple[Any, int]:
        with self._lock:
            entry = self._entries.get(key)
            value = MISS if entry is None else entry.values.get(part, MISS)
            if value is MISS:
                self.misses += 1
            else:
                self.hits += 1
                self._entries.move_to_end(key)
            return value, self._writes

    def put(self, key: Key, part: Part, value: Any, stamp: int) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                if stamp != self._writes:  # some session changed since the read: maybe this one
                    return
                entry = self._entries[key] = _Entry(stamp)
            elif entry.changed > stamp:  # this session changed after the read began
                return
            entry.values[part] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def invalidate(self, keys: Sequence[Key]) -> None:
        with self._lock:
            self._writes += 1
            for key in keys:
                self._entries[key] = _Entry(self._writes)  # a tombstone until evicted
                self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def invalidate_user(self, tenant: str, user_id: str) -> None:
        with self._lock:
            self._writes += 1  # a read begun before this is not stored: see put
            for key in [k for k in self._entries if k[0] == tenant and k[1] == user_id]:
                del self._entries[key]


# one round trip: the version ("<user's>.<session's>") and the value stored at that version.
# KEYS: the session's counter, the user's counter
_GET = """
local v = (redis.call('GET', KEYS[2]) or '0') .. '.' .. (redis.call('GET', KEYS[1]) or '0')
return {v, redis.call('HGET', KEYS[1] .. ':' .. v, ARGV[1]) or false}
"""
# store only if no write happened since the read began; the counters' lives are renewed with
# every value stored under them, so they outlive them all (each resets to 0 only when none is
# left)
_PUT = """
local v = (redis.call('GET', KEYS[2]) or '0') .. '.' .. (redis.call('GET', KEYS[1]) or '0')
if v ~= ARGV[1] then return 0 end
local h = KEYS[1] .. ':' .. ARGV[1]
redis.call('HSET', h, ARGV[2], ARGV[3])
redis.call('EXPIRE', h, ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[5])
return 1
"""
_BUMP = """
for i, k in ipairs(KEYS) do
  redis.call('INCR', k)
  redis.call('EXPIRE', k, ARGV[1])
end
return #KEYS
"""


class RedisCache:
    """Session reads cached in Redis, shared by every process that uses the same ``prefix``.

    >>> cache = RedisCache("redis://localhost:6379/0", ttl=300)  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        ttl: int = 300,
        prefix: str = "vecmem:convcache",
    ) -> None:
        from vecmem.state.redis import connect_redis

        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
            raise ConfigurationError(f"ttl must be whole seconds >= 1, got {ttl!r}")
        self.client = connect_redis(url, client)
        self.ttl, self.prefix = ttl, prefix
        self._version_ttl = ttl * 10 + 60  # longer than any value stored under a version
        self.hits = self.misses = 0
        self._get = self.client.register_script(_GET)
        self._put = self.client.register_script(_PUT)
        self._bump = self.client.register_script(_BUMP)

    def _name(self, key: Key) -> str:
        from vecmem.state.redis import escape

        return ":".join([self.prefix, *(escape(k) for k in key)])

    def _keys(self, key: Key) -> list[str]:
        """The session's counter and its user's (``prefix:tenant:user``: one part fewer than
        any session's, and ids hold no ``:`` once escaped, so the two never meet)."""
        name = self._name(key)
        return [name, name.rsplit(":", 1)[0]]

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        import redis

        try:
            return fn(**kwargs)
        except redis.ConnectionError as exc:
            raise BackendUnavailableError(f"{what}: {exc}") from exc
        except redis.RedisError as exc:
            raise BackendError(f"{what}: {exc}") from exc

    def get(self, key: Key, part: Part) -> tuple[Any, bytes]:
        version, raw = self._call(
            "reading the cache", self._get, keys=self._keys(key), args=[json.dumps(part)]
        )
        if raw is None:
            self.misses += 1
            return MISS, version
        self.hits += 1
        data = json.loads(raw)
        if "session" in data:
            return session_from_dict(data["session"]), version
        msgs = [message_from_dict(m) for m in data["messages"]]
        return _Page(data["expires_at"], msgs), version

    def put(self, key: Key, part: Part, value: Any, stamp: bytes) -> None:
        if isinstance(value, Session):
            data: dict[str, Any] = {"session": session_dict(value)}
        else:
            data = {
                "expires_at": value.expires_at,
                "messages": [message_dict(m) for m in value.messages],
            }
        self._call(
            "writing the cache",
            self._put,
            keys=self._keys(key),
            args=[stamp, json.dumps(part), json.dumps(data), self.ttl, self._version_ttl],
        )

    def invalidate(self, keys: Sequence[Key]) -> None:
        self._call(
            "invalidating the cache",
            self._bump,
            keys=[self._name(k) for k in keys],
            args=[self._version_ttl],
        )

    def invalidate_user(self, tenant: str, user_id: str) -> None:
        self._call(
            "invalidating the cache",
            self._bump,
            keys=[self._keys((tenant, user_id, "-"))[1]],
            args=[self._version_ttl],
        )


class CachedConversationStore:
    """Any :class:`~vecmem.conversations.ConversationStore` with its session reads cached.

    ``cache``: an :class:`LRUCache` (one process) or a :class:`RedisCache` (several).
    """

    actor: str | None = None

    def __init__(
        self,
        store: ConversationStore,
        *,
        cache: Cache,
        clock: Callable[[], float] = time.time,
        _bypass: bool = False,
    ) -> None:
        self.store, self.cache, self.clock = store, cache, clock
        self.tenant = store.tenant
        self.actor = store.actor
        # participants' views (made by acting_as or over a store acting as one): reads go to the
        # store, which checks the grant; writes invalidate
        self._bypass = _bypass or store.actor is not None

    def with_tenant(self, tenant: str) -> CachedConversationStore:
        return CachedConversationStore(
            self.store.with_tenant(tenant), cache=self.cache, clock=self.clock, _bypass=self._bypass
        )

    def acting_as(self, participant: str) -> CachedConversationStore:
        return CachedConversationStore(
            self.store.acting_as(participant), cache=self.cache, clock=self.clock, _bypass=True
        )

    def _key(self, user_id: str, session_id: str) -> Key:
        check_ids(user_id, session_id)
        return (self.tenant, user_id, session_id)

    def _changed(self, *keys: Key) -> None:
        self.cache.invalidate(keys)

    # -- cached reads ---------------------------------------------------------------------------
    def get_session(self, user_id: str, session_id: str) -> Session:
        key = self._key(user_id, session_id)
        if self._bypass:
            return self.store.get_session(user_id, session_id)
        value, stamp = self.cache.get(key, ("session",))
        if value is MISS:
            value = self.store.get_session(user_id, session_id)
            self.cache.put(key, ("session",), value, stamp)
        if not is_live(value.expires_at, self.clock()):
            raise NotFoundError(f"no session {session_id!r} for user {user_id!r}")
        return value

    def get_messages(
        self,
        user_id: str,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[Message]:
        key = self._key(user_id, session_id)
        check_page(limit, offset)
        if self._bypass:
            return self.store.get_messages(
                user_id, session_id, limit=limit, offset=offset, newest_first=newest_first
            )
        part = ("messages", limit, offset, newest_first)
        page, stamp = self.cache.get(key, part)
        if page is MISS:
            try:  # the header first: its expiry bounds the page's life
                session = self.store.get_session(user_id, session_id)
            except NotFoundError:
                return []
            msgs = self.store.get_messages(
                user_id, session_id, limit=limit, offset=offset, newest_first=newest_first
            )
            page = _Page(session.expires_at, msgs)
            self.cache.put(key, part, page, stamp)
            self.cache.put(key, ("session",), session, stamp)
        if not is_live(page.expires_at, self.clock()):
            return []
        return list(page.messages)

    def last_messages(self, user_id: str, session_id: str, n: int) -> list[Message]:
        return self.get_messages(user_id, session_id, limit=n, newest_first=True)[::-1]

    # -- writes: through to the store, then invalidate ------------------------------------------
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
        key = self._key(user_id, session_id)
        try:
            return self.store.save_session(
                user_id, session_id, agent_id=agent_id, title=title, tags=tags, metadata=metadata
            )
        finally:
            self._changed(key)

    def add_messages(
        self,
        user_id: str,
        session_id: str,
        messages: Sequence[Message],
        *,
        agent_id: str | None = None,
    ) -> list[Message]:
        key = self._key(user_id, session_id)
        try:
            return self.store.add_messages(user_id, session_id, messages, agent_id=agent_id)
        finally:
            self._changed(key)

    def set_session_limits(
        self,
        user_id: str,
        session_id: str,
        *,
        ttl: float | None = None,
        max_messages: int | None = None,
        overflow: Overflow = "refuse",
    ) -> Session:
        key = self._key(user_id, session_id)
        try:
            return self.store.set_session_limits(
                user_id, session_id, ttl=ttl, max_messages=max_messages, overflow=overflow
            )
        finally:
            self._changed(key)

    def delete_session(self, user_id: str, session_id: str) -> bool:
        key = self._key(user_id, session_id)
        try:
            return self.store.delete_session(user_id, session_id)
        finally:
            self._changed(key)

    def delete_user(self, user_id: str) -> int:
        # the whole user, not the sessions a listing found before the delete: a session written
        # (and cached) between that listing and the delete was deleted and still served
        check_ids(user_id)
        try:
            return self.store.delete_user(user_id)
        finally:
            self.cache.invalidate_user(self.tenant, user_id)

    def branch_session(
        self, user_id: str, session_id: str, new_session_id: str, *, at: int
    ) -> Session:
        key = self._key(user_id, new_session_id)
        try:
            return self.store.branch_session(user_id, session_id, new_session_id, at=at)
        finally:
            self._changed(key)

    def merge_sessions(
        self,
        user_id: str,
        primary_id: str,
        secondary_id: str,
        *,
        into: str | None = None,
        strategy: MergeStrategy = "primary_wins",
    ) -> Session:
        key = self._key(user_id, primary_id if into is None else into)
        try:
            return self.store.merge_sessions(
                user_id, primary_id, secondary_id, into=into, strategy=strategy
            )
        finally:
            self._changed(key)

    # -- the rest goes to the store as is -------------------------------------------------------
    def purge_expired(self) -> int:
        return self.store.purge_expired()  # purged sessions had expired: cached as gone

    def usage(self) -> TenantUsage:
        return self.store.usage()

    def add_participant(
        self, user_id: str, session_id: str, participant: str, *, permission: Permission
    ) -> None:
        self.store.add_participant(user_id, session_id, participant, permission=permission)

    def remove_participant(self, user_id: str, session_id: str, participant: str) -> bool:
        return self.store.remove_participant(user_id, session_id, participant)

    def list_participants(self, user_id: str, session_id: str) -> dict[str, Permission]:
        return self.store.list_participants(user_id, session_id)

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
        return self.store.list_sessions(user_id, limit=limit, offset=offset)

    def export(self, user_id: str, session_id: str | None = None) -> dict[str, Any]:
        return self.store.export(user_id, session_id)

    def close(self) -> None:
        self.store.close()


__all__ = ["CachedConversationStore", "LRUCache", "RedisCache"]
