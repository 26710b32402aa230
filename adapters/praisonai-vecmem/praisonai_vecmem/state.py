"""PraisonAI's ``StateStore`` (key-value with TTLs and hashes) on a vecmem state store.

Keys live in one vecmem namespace (default ``"praisonai"``); a hash is one JSON object value,
changed field by field with compare-and-set, so two processes setting different fields of the
same hash both land. TTLs are vecmem's (seconds, expired entries read as absent).
"""

from __future__ import annotations

import fnmatch
import math
import time
from typing import Any

from praisonai.persistence.state.base import StateStore

from vecmem.errors import ConflictError, InvalidInputError
from vecmem.registry import STATE_STORES
from vecmem.state import StateStore as VecmemStateStore

_RETRIES = 50


class VecmemKeyValueStore(StateStore):
    """PraisonAI state on vecmem (SQLite, PostgreSQL, MariaDB, Redis or in memory).

    >>> state = VecmemKeyValueStore("sqlite://")
    >>> state.set("greeting", "hi", ttl=60)
    >>> state.get("greeting"), 0 < state.ttl("greeting") <= 60
    ('hi', True)
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        store: VecmemStateStore | None = None,
        namespace: str = "praisonai",
        tenant: str | None = None,
    ) -> None:
        if (url is None) == (store is None):
            raise InvalidInputError("give exactly one of url= (a vecmem URL) and store=")
        self._owned = url is not None
        opened: VecmemStateStore = STATE_STORES.create(url) if url is not None else store
        self._store = opened.with_tenant(tenant) if tenant else opened
        self._ns = namespace

    @staticmethod
    def _ttl(ttl: int | None) -> float | None:
        if ttl is None:
            return None
        if not isinstance(ttl, int | float) or isinstance(ttl, bool) or not ttl > 0:
            raise InvalidInputError(f"ttl must be a number of seconds > 0, got {ttl!r}")
        return float(ttl)

    def get(self, key: str) -> Any | None:
        return self._store.get(self._ns, key)

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        self._store.set(self._ns, key, value, ttl=self._ttl(ttl))

    def delete(self, key: str) -> bool:
        return self._store.delete(self._ns, key)

    def exists(self, key: str) -> bool:
        return self._store.get_entry(self._ns, key) is not None

    def keys(self, pattern: str = "*") -> list[str]:
        """Keys matching a glob (``*``, ``?``, ``[...]``, as Redis' ``KEYS``)."""
        prefix = pattern.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        names = self._store.keys(self._ns, prefix=prefix)
        return [k for k in names if fnmatch.fnmatchcase(k, pattern)]

    def ttl(self, key: str) -> int | None:
        """Seconds left (rounded up), ``None`` for a key without expiry or no key."""
        entry = self._store.get_entry(self._ns, key)
        if entry is None or entry.expires_at is None:
            return None
        return max(0, math.ceil(entry.expires_at - time.time()))

    def expire(self, key: str, ttl: int) -> bool:
        seconds = self._ttl(ttl)
        for _ in range(_RETRIES):
            entry = self._store.get_entry(self._ns, key)
            if entry is None:
                return False
            try:
                self._store.compare_and_set(
                    self._ns, key, entry.value, expected_version=entry.version, ttl=seconds
                )
                return True
            except ConflictError:
                continue
        raise ConflictError(f"state key {key!r} kept changing; expire gave up")

    # --------------------------------------------------------------- hashes
    def _hash(self, key: str) -> tuple[dict[str, Any], int, float | None]:
        entry = self._store.get_entry(self._ns, key)
        if entry is None:
            return {}, 0, None
        if not isinstance(entry.value, dict):
            raise InvalidInputError(f"state key {key!r} holds a {type(entry.value).__name__}")
        left = None if entry.expires_at is None else max(entry.expires_at - time.time(), 1e-3)
        return dict(entry.value), entry.version, left

    def _change_hash(self, key: str, change: Any) -> Any:
        for _ in range(_RETRIES):
            fields, version, left = self._hash(key)
            result = change(fields)
            try:
                if fields:
                    self._store.compare_and_set(
                        self._ns, key, fields, expected_version=version, ttl=left
                    )
                elif version:  # the last field went: the hash goes
                    self._store.delete(self._ns, key, expected_version=version)
                return result
            except ConflictError:
                continue
        raise ConflictError(f"state hash {key!r} kept changing; gave up")

    def hget(self, key: str, field: str) -> Any | None:
        return self._hash(key)[0].get(field)

    def hset(self, key: str, field: str, value: Any) -> None:
        self._change_hash(key, lambda fields: fields.__setitem__(field, value))

    def hgetall(self, key: str) -> dict[str, Any]:
        return self._hash(key)[0]

    def hdel(self, key: str, *fields: str) -> int:
        def drop(current: dict[str, Any]) -> int:
            return sum(current.pop(f, _MISSING) is not _MISSING for f in fields)

        return int(self._change_hash(key, drop))

    def close(self) -> None:
        if self._owned:
            self._store.close()


_MISSING = object()
