"""In-process state store: a dict behind a lock. Values are kept as JSON text, so a stored value
is a copy and only JSON-able values are accepted, exactly as on the database backends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vecmem._keys import check_tenant, to_json
from vecmem.state.base import (
    StateEntry,
    check_args,
    check_ttl,
    check_version,
    conflict,
)


@dataclass
class _Row:
    value: str
    version: int
    expires_at: float | None
    updated_at: float


class _Shared:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str], _Row] = {}
        self.lock = threading.Lock()


class MemoryStateStore:
    """State in memory, lost on exit; tenants created with :meth:`with_tenant` share it.

    >>> s = MemoryStateStore(tenant="acme")
    >>> s.set("ns", "k", [1, 2], ttl=60)
    1
    >>> s.with_tenant("other").get("ns", "k") is None
    True
    """

    def __init__(
        self,
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        _shared: _Shared | None = None,
    ) -> None:
        self.tenant = check_tenant(tenant)
        self.clock = clock
        self._shared = _shared or _Shared()

    def with_tenant(self, tenant: str) -> MemoryStateStore:
        return MemoryStateStore(tenant=tenant, clock=self.clock, _shared=self._shared)

    def _live(self, namespace: str, key: str, now: float) -> _Row | None:
        row = self._shared.rows.get((self.tenant, namespace, key))
        if row is not None and row.expires_at is not None and row.expires_at <= now:
            del self._shared.rows[(self.tenant, namespace, key)]
            return None
        return row

    def get_entry(self, namespace: str, key: str) -> StateEntry | None:
        check_args(namespace, key)
        with self._shared.lock:
            row = self._live(namespace, key, self.clock())
            if row is None:
                return None
            return StateEntry(
                namespace, key, json.loads(row.value), row.version, row.expires_at, row.updated_at
            )

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        entry = self.get_entry(namespace, key)
        return default if entry is None else entry.value

    def _write(
        self, namespace: str, key: str, value: Any, ttl: float | None, expected: int | None
    ) -> int:
        check_args(namespace, key)
        check_ttl(ttl)
        text = to_json("state value", value)
        with self._shared.lock:
            now = self.clock()
            row = self._live(namespace, key, now)
            current = row.version if row else 0
            if expected is not None and current != expected:
                raise conflict(namespace, key, expected, current)
            new = _Row(text, current + 1, now + ttl if ttl else None, now)
            self._shared.rows[(self.tenant, namespace, key)] = new
            return new.version

    def set(self, namespace: str, key: str, value: Any, *, ttl: float | None = None) -> int:
        return self._write(namespace, key, value, ttl, None)

    def compare_and_set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        expected_version: int,
        ttl: float | None = None,
    ) -> int:
        check_version(expected_version)
        return self._write(namespace, key, value, ttl, expected_version)

    def delete(self, namespace: str, key: str, *, expected_version: int | None = None) -> bool:
        check_args(namespace, key)
        if expected_version is not None:
            check_version(expected_version)
        with self._shared.lock:
            row = self._live(namespace, key, self.clock())
            if row is None:
                if expected_version:
                    raise conflict(namespace, key, expected_version, 0)
                return False
            if expected_version is not None and row.version != expected_version:
                raise conflict(namespace, key, expected_version, row.version)
            del self._shared.rows[(self.tenant, namespace, key)]
            return True

    def keys(self, namespace: str, *, prefix: str = "") -> list[str]:
        check_args(namespace)
        with self._shared.lock:
            now = self.clock()
            return sorted(
                k
                for (t, ns, k) in list(self._shared.rows)
                if t == self.tenant
                and ns == namespace
                and k.startswith(prefix)
                and self._live(ns, k, now) is not None
            )

    def clear(self, namespace: str) -> int:
        check_args(namespace)
        with self._shared.lock:
            now = self.clock()
            doomed = [k for k in self._shared.rows if k[0] == self.tenant and k[1] == namespace]
            live = sum(1 for k in doomed if self._live(k[1], k[2], now) is not None)
            for k in doomed:
                self._shared.rows.pop(k, None)
            return live

    def close(self) -> None:
        pass
