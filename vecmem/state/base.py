"""The key/value state protocol, its entry type and a lock built on compare-and-set.

State is JSON values keyed by ``(namespace, key)`` inside a tenant. Every write bumps the entry's
``version`` (1 on creation); :meth:`StateStore.compare_and_set` writes only if the version is the
expected one (0 meaning "absent"), which is enough to build locks and optimistic updates. An
entry past its TTL is absent everywhere: not read, not listed, and its version restarts at 1.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from vecmem._keys import check_name
from vecmem.errors import ConflictError, InvalidInputError


@dataclass(frozen=True)
class StateEntry:
    """A stored value with its version and expiry (epoch seconds, ``None`` = never)."""

    namespace: str
    key: str
    value: Any
    version: int
    expires_at: float | None
    updated_at: float


@runtime_checkable
class StateStore(Protocol):
    """Key/value state per namespace with TTL and compare-and-set, scoped to ``tenant``.

    >>> from vecmem.state import MemoryStateStore
    >>> s = MemoryStateStore(tenant="acme")
    >>> s.set("agent-1", "plan", {"step": 1})
    1
    >>> s.compare_and_set("agent-1", "plan", {"step": 2}, expected_version=1)
    2
    >>> s.get("agent-1", "plan")
    {'step': 2}
    """

    tenant: str

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        """The value, or ``default`` if absent or expired."""
        ...

    def get_entry(self, namespace: str, key: str) -> StateEntry | None:
        """The entry with its version, or ``None``."""
        ...

    def set(self, namespace: str, key: str, value: Any, *, ttl: float | None = None) -> int:
        """Write ``value`` (expiring after ``ttl`` seconds if given); returns the new version."""
        ...

    def compare_and_set(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        expected_version: int,
        ttl: float | None = None,
    ) -> int:
        """Write only if the current version is ``expected_version`` (0: must be absent).

        Returns the new version; raises :class:`~vecmem.errors.ConflictError` otherwise.
        """
        ...

    def delete(self, namespace: str, key: str, *, expected_version: int | None = None) -> bool:
        """Remove the entry; ``False`` if absent. With ``expected_version``, raise
        :class:`~vecmem.errors.ConflictError` if the entry exists at another version."""
        ...

    def keys(self, namespace: str, *, prefix: str = "") -> list[str]:
        """Sorted live keys of ``namespace`` starting with ``prefix``."""
        ...

    def clear(self, namespace: str) -> int:
        """Delete every entry of ``namespace``; returns how many live entries were removed."""
        ...

    def with_tenant(self, tenant: str) -> StateStore:
        """A view of the same backend scoped to another tenant (sharing its connection)."""
        ...

    def close(self) -> None: ...


_NO_KEY: Any = object()


def check_args(namespace: str, key: str | None = _NO_KEY) -> None:
    """Check a namespace and, when given (``None`` included: it is no key), a key."""
    check_name("namespace", namespace)
    if key is not _NO_KEY:
        check_name("key", key)


def check_ttl(ttl: float | None) -> None:
    """``ttl`` is ``None`` or a positive, finite number of seconds (``True`` is not 1 s)."""
    if ttl is not None and not (
        isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and 0 < ttl < math.inf
    ):
        raise InvalidInputError(f"ttl must be a positive number of seconds, got {ttl!r}")


def check_version(expected_version: int) -> None:
    if (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise InvalidInputError(f"expected_version must be an int >= 0, got {expected_version!r}")


def conflict(namespace: str, key: str, expected: int, actual: int) -> ConflictError:
    return ConflictError(f"state {namespace!r}/{key!r} is at version {actual}, expected {expected}")


class StateLock:
    """A named lock with a TTL on any :class:`StateStore`: ``acquire(name, ttl)`` /
    ``release(name)``, the lock protocol of :class:`~vecmem.knowledge_fs.LockedKnowledgeStore`.

    A lock left by a crashed holder frees itself when its TTL runs out.

    >>> from vecmem.state import MemoryStateStore
    >>> lock = StateLock(MemoryStateStore(), wait=0)
    >>> lock.acquire("kb", ttl=30), lock.acquire("kb", ttl=30)
    (True, False)
    >>> lock.release("kb")
    """

    def __init__(
        self,
        store: StateStore,
        *,
        namespace: str = "vecmem.locks",
        owner: str | None = None,
        wait: float = 10.0,
        poll: float = 0.01,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.owner = owner or uuid.uuid4().hex
        self.wait = wait
        self.poll = poll

    def acquire(self, name: str, ttl: float) -> bool:
        """Take the lock, waiting up to ``wait`` seconds; ``False`` if still held by another."""
        deadline = time.monotonic() + self.wait
        while True:
            try:
                self.store.compare_and_set(
                    self.namespace, name, self.owner, expected_version=0, ttl=ttl
                )
                return True
            except ConflictError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(self.poll)

    def release(self, name: str) -> None:
        """Free the lock if this owner holds it (a lock lost to its TTL is left alone)."""
        entry = self.store.get_entry(self.namespace, name)
        if entry is not None and entry.value == self.owner:
            try:
                self.store.delete(self.namespace, name, expected_version=entry.version)
            except ConflictError:
                pass
