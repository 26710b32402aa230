"""Serialise a knowledge store's writers through any lock.

A lock is any object with ``acquire(name, ttl) -> bool`` and ``release(name)``:
:class:`LocalLock` within one process, :class:`~vecmem.state.StateLock` across processes on
any state store (SQLite, PostgreSQL, MySQL, Redis), or your own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

from vecmem.errors import StoreLockedError
from vecmem.knowledge_fs.base import ChangeEvent, KnowledgeStore, Subscription


@runtime_checkable
class Lock(Protocol):
    """A named lock with a time-to-live (seconds) after which a crashed holder loses it."""

    def acquire(self, name: str, ttl: float) -> bool: ...

    def release(self, name: str) -> None: ...


class LocalLock:
    """An in-process named lock (threads); waits up to ``wait`` seconds in ``acquire``.

    >>> lock = LocalLock(wait=0)
    >>> lock.acquire("kb", 30), lock.acquire("kb", 30)
    (True, False)
    """

    def __init__(self, *, wait: float = 10.0) -> None:
        self.wait = wait
        self._held: dict[str, float] = {}
        self._cond = threading.Condition()

    def acquire(self, name: str, ttl: float) -> bool:
        deadline = time.monotonic() + self.wait
        with self._cond:
            while True:
                now = time.monotonic()
                until = self._held.get(name)
                if until is None or until <= now:
                    self._held[name] = now + ttl
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(min(deadline, until) - now)

    def release(self, name: str) -> None:
        with self._cond:
            self._held.pop(name, None)
            self._cond.notify_all()


class LockedKnowledgeStore:
    """A knowledge store whose ``write``, ``append`` and ``delete`` hold ``lock`` (one lock
    name per tenant); reads go straight through.

    >>> from vecmem.knowledge_fs import MemoryKnowledgeStore
    >>> kb = LockedKnowledgeStore(MemoryKnowledgeStore(), LocalLock())
    >>> kb.append("/log", "a"), kb.append("/log", "b")
    (0, 1)

    Raises :class:`~vecmem.errors.StoreLockedError` when the lock cannot be had.
    """

    def __init__(
        self,
        store: KnowledgeStore,
        lock: Lock,
        *,
        name: str = "vecmem.knowledge",
        ttl: float = 30.0,
    ) -> None:
        self.store = store
        self.lock = lock
        self.name = name
        self.ttl = ttl
        self.tenant = store.tenant

    @property
    def lock_name(self) -> str:
        return f"{self.name}:{self.tenant}"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        if not self.lock.acquire(self.lock_name, self.ttl):
            raise StoreLockedError(f"another writer holds the lock {self.lock_name!r}")
        try:
            yield
        finally:
            self.lock.release(self.lock_name)

    def with_tenant(self, tenant: str) -> LockedKnowledgeStore:
        return LockedKnowledgeStore(
            self.store.with_tenant(tenant), self.lock, name=self.name, ttl=self.ttl
        )

    def write(self, path: str, data: bytes | str) -> None:
        with self._locked():
            self.store.write(path, data)

    def append(self, path: str, data: bytes | str) -> int:
        with self._locked():
            return self.store.append(path, data)

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        with self._locked():
            return self.store.delete(path, recursive=recursive)

    def read(self, path: str) -> bytes:
        return self.store.read(path)

    def read_range(self, path: str, start: int, end: int | None = None) -> bytes:
        return self.store.read_range(path, start, end)

    def list(self, path: str = "/") -> list[str]:
        return self.store.list(path)

    def exists(self, path: str) -> bool:
        return self.store.exists(path)

    def on_change(self, callback: Callable[[ChangeEvent], None]) -> Subscription:
        return self.store.on_change(callback)

    def close(self) -> None:
        self.store.close()
