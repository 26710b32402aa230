"""Conversations in Redis: one key per session holding its record as JSON (header, messages,
participants), on the same implementation as the in-memory and JSON-file stores.

Keys are ``{prefix}:{tenant}:{user}:{session}`` with ``%`` and ``:`` percent-escaped, so no two
scopes share a key. A tenant's writers, in any process, take one Redis lock (redis-py's
``Lock``, released after ``lock_timeout`` seconds if its holder dies), so read-modify-write of a
record never loses a concurrent write. Each write rewrites the session's record: meant for
conversations of modest length (use PostgreSQL for long ones). ``delete_user`` removes all of a
user's sessions in one MULTI/EXEC, so a writer killed half way leaves the user whole or gone.

>>> from vecmem.conversations import Message
>>> store = RedisConversationStore("redis://localhost:6379/0", tenant="acme")  # doctest: +SKIP
>>> _ = store.add_messages("u1", "s1", [Message("user", "hi")])                # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

from vecmem._deps import require
from vecmem.conversations.base import (
    message_dict,
    message_from_dict,
    session_dict,
    session_from_dict,
)
from vecmem.conversations.memory import _PythonConversationStore, _Record
from vecmem.errors import BackendError, BackendUnavailableError, StoreLockedError
from vecmem.state.redis import connect_redis, escape, glob_escape


class _TenantLock:
    """A tenant-wide Redis lock usable in ``with`` (one token per thread)."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock

    def __enter__(self) -> None:
        redis = require("redis", "redis")
        try:
            got = self.lock.acquire()
        except redis.ConnectionError as exc:
            raise BackendUnavailableError(f"taking the conversation lock: {exc}") from exc
        if not got:
            raise StoreLockedError("timed out waiting for the tenant's conversation lock")

    def __exit__(self, *exc: object) -> None:
        redis = require("redis", "redis")
        try:
            self.lock.release()
        except redis.exceptions.LockError as err:  # expired while held: the write went through
            raise StoreLockedError(f"the conversation lock expired while held: {err}") from err


class RedisConversationStore(_PythonConversationStore):
    """Conversations in Redis (see the module docstring)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        prefix: str = "vecmem:conv",
        lock_timeout: float = 60.0,
    ) -> None:
        super().__init__(tenant, clock)
        self._owned = client is None
        self.client = connect_redis(url, client)
        self.prefix, self.lock_timeout = prefix, lock_timeout
        self._base = f"{prefix}:{escape(self.tenant)}:"
        self._lock = _TenantLock(  # type: ignore[assignment]  # a lock usable in `with`
            self.client.lock(
                f"{prefix}-lock:{escape(self.tenant)}",
                timeout=lock_timeout,
                blocking_timeout=lock_timeout / 2,
            )
        )

    def with_tenant(self, tenant: str) -> RedisConversationStore:
        view = RedisConversationStore(
            client=self.client,
            tenant=tenant,
            clock=self.clock,
            prefix=self.prefix,
            lock_timeout=self.lock_timeout,
        )
        view.actor = self.actor
        return view

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        redis = require("redis", "redis")
        try:
            return fn(*args)
        except redis.ConnectionError as exc:
            raise BackendUnavailableError(f"{what}: {exc}") from exc
        except redis.RedisError as exc:
            raise BackendError(f"{what}: {exc}") from exc

    def _key(self, user_id: str, session_id: str) -> str:
        return f"{self._base}{escape(user_id)}:{escape(session_id)}"

    @staticmethod
    def _decode(raw: bytes) -> _Record:
        data = json.loads(raw)
        return _Record(
            session_from_dict(data["session"]),
            [message_from_dict(m) for m in data["messages"]],
            dict(data["participants"]),
        )

    def _load(self, user_id: str, session_id: str) -> _Record | None:
        raw = self._call("reading a session", self.client.get, self._key(user_id, session_id))
        return None if raw is None else self._decode(raw)

    def _store(self, record: _Record) -> None:
        s = record.session
        data = {
            "session": session_dict(s),
            "messages": [message_dict(m) for m in record.messages],
            "participants": record.participants,
        }
        text = json.dumps(data, ensure_ascii=False)
        self._call("writing a session", self.client.set, self._key(s.user_id, s.session_id), text)

    def _remove(self, user_id: str, session_id: str) -> bool:
        return bool(
            self._call("deleting a session", self.client.delete, self._key(user_id, session_id))
        )

    def _remove_user(self, user_id: str, session_ids: list[str]) -> None:
        # one MULTI/EXEC: Redis runs its DELs together or, if the connection drops before EXEC
        # (a writer killed half way), not at all; deleting key by key left half a user
        keys = [self._key(user_id, sid) for sid in session_ids]

        def delete() -> None:
            pipe = self.client.pipeline(transaction=True)
            for i in range(0, len(keys), 1000):
                pipe.delete(*keys[i : i + 1000])
            pipe.execute()

        self._call("deleting a user's sessions", delete)

    def _records(self, user_id: str | None) -> Iterator[_Record]:
        users = "*" if user_id is None else glob_escape(escape(user_id))
        pattern = f"{glob_escape(self._base)}{users}:*"
        keys = sorted(
            self._call("listing sessions", lambda: list(self.client.scan_iter(pattern, count=500)))
        )
        for i in range(0, len(keys), 500):
            for raw in self._call("reading sessions", self.client.mget, keys[i : i + 500]):
                if raw is not None:  # deleted since the scan
                    yield self._decode(raw)

    def close(self) -> None:
        if self._owned:
            self.client.close()


__all__ = ["RedisConversationStore"]
