"""The path-based knowledge store protocol, change events and subscriptions.

A knowledge store is a durable scratch space of files for agents, with file-system semantics:
absolute paths, implicit directories, whole-file and ranged reads, appends that return the
offset they wrote at. Every store is scoped to a tenant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from vecmem.errors import InvalidInputError

ChangeKind = Literal["written", "deleted"]


@dataclass(frozen=True)
class ChangeEvent:
    """A file was written (created, replaced or appended to) or deleted."""

    kind: ChangeKind
    path: str


class Subscription:
    """A handle on an ``on_change`` subscription; ``close()`` ends it.

    ``polling`` is True when the backend delivers no events (everything but the disk store):
    the caller should poll (e.g. ``list`` / ``read``) instead of waiting for callbacks.
    """

    def __init__(self, *, polling: bool, stop: Callable[[], None] | None = None) -> None:
        self.polling = polling
        self._stop = stop
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self._stop is not None:
                self._stop()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@runtime_checkable
class KnowledgeStore(Protocol):
    """Files under absolute paths, scoped to ``tenant``.

    >>> from vecmem.knowledge_fs import MemoryKnowledgeStore
    >>> kb = MemoryKnowledgeStore(tenant="acme")
    >>> kb.write("/notes/today.md", "# Today\\n")
    >>> kb.append("/notes/today.md", "- ship it\\n")
    8
    >>> kb.list("/"), kb.read_range("/notes/today.md", 8, 12)
    (['notes/'], b'- sh')
    """

    tenant: str

    def read(self, path: str) -> bytes:
        """The file's bytes; :class:`~vecmem.errors.NotFoundError` if there is none."""
        ...

    def write(self, path: str, data: bytes | str) -> None:
        """Create or replace the file (str is UTF-8); parent directories appear implicitly."""
        ...

    def append(self, path: str, data: bytes | str) -> int:
        """Append to the file (created if missing); returns the byte offset written at."""
        ...

    def read_range(self, path: str, start: int, end: int | None = None) -> bytes:
        """Bytes ``[start, end)`` of the file (``end`` clamped to its size; None: to the end)."""
        ...

    def list(self, path: str = "/") -> list[str]:
        """Sorted names of a directory's immediate children, directories ending with ``/``."""
        ...

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        """Delete a file (or a directory with ``recursive=True``); ``False`` if absent."""
        ...

    def exists(self, path: str) -> bool:
        """True if ``path`` is a file or a (non-empty, implicit) directory."""
        ...

    def on_change(self, callback: Callable[[ChangeEvent], None]) -> Subscription:
        """Call ``callback`` on changes; a ``polling`` subscription means "poll instead"."""
        ...

    def with_tenant(self, tenant: str) -> KnowledgeStore:
        """A view of the same backend scoped to another tenant."""
        ...

    def close(self) -> None: ...


def to_bytes(data: bytes | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise InvalidInputError(f"data must be bytes or str, got {type(data).__name__}")


def check_range(start: int, end: int | None) -> None:
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InvalidInputError(f"start must be an int >= 0, got {start!r}")
    if end is not None and (isinstance(end, bool) or not isinstance(end, int) or end < start):
        raise InvalidInputError(f"end must be an int >= start, got {end!r}")


def is_a_directory(path: str) -> InvalidInputError:
    return InvalidInputError(f"{path!r} is a directory")


def not_a_directory(path: str) -> InvalidInputError:
    return InvalidInputError(f"{path!r} is a file, not a directory")


def polling() -> Subscription:
    """The subscription of a backend without change events: poll instead."""
    return Subscription(polling=True)
