"""A JSONL event log of knowledge-store changes: write it, replay it, keep what you don't know.

One JSON object per line: ``{"type": "write", "path": "/a.md", "at": 1700000000.0,
"text": "..."}`` (``"data_b64"`` instead of ``"text"`` for bytes that are not UTF-8). Types
vecmem applies are ``write``, ``append`` and ``delete``; an event of any other type, and any
field vecmem does not know, is kept as read and written back unchanged, so a log shared with
newer or foreign tools loses nothing.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vecmem.errors import (
    BackendError,
    DocumentReadError,
    InvalidInputError,
    StorageFullError,
)
from vecmem.knowledge_fs.base import ChangeEvent, KnowledgeStore, Subscription, to_bytes

KNOWN = ("write", "append", "delete")
_FIELDS = ("type", "path", "at", "text", "data_b64", "recursive")


@dataclass(frozen=True)
class Event:
    """One logged change. ``extra`` holds the fields vecmem does not know, verbatim."""

    type: str
    path: str | None = None
    data: bytes | None = None
    at: float | None = None
    recursive: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.type in KNOWN

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.path is not None:
            out["path"] = self.path
        if self.at is not None:
            out["at"] = self.at
        if self.data is not None:
            try:
                out["text"] = self.data.decode("utf-8")
            except UnicodeDecodeError:
                out["data_b64"] = base64.b64encode(self.data).decode("ascii")
        if self.recursive:
            out["recursive"] = True
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        if not isinstance(d.get("type"), str):
            raise InvalidInputError(f"an event needs a string 'type': {d!r}")
        data = None
        if "text" in d:
            data = str(d["text"]).encode("utf-8")
        elif "data_b64" in d:
            data = base64.b64decode(d["data_b64"])
        return cls(
            type=d["type"],
            path=d.get("path"),
            data=data,
            at=d.get("at"),
            recursive=bool(d.get("recursive", False)),
            extra={k: v for k, v in d.items() if k not in _FIELDS},
        )


def _whole_lines_end(fd: int) -> int:
    """The size of the file up to its last newline (the whole file when it ends with one)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return size
    pos = size
    while pos > 0:
        start = max(0, pos - 65536)
        chunk = os.pread(fd, pos - start, start)
        cut = chunk.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        pos = start
    return 0


class EventLog:
    """An append-only JSONL file of :class:`Event`.

    >>> import tempfile, os
    >>> log = EventLog(os.path.join(tempfile.mkdtemp(), "events.jsonl"))
    >>> log.append(Event("write", "/a.md", b"hello"))
    >>> log.append(Event("x-annotation", extra={"note": "kept"}))
    >>> from vecmem.knowledge_fs import MemoryKnowledgeStore
    >>> kb = MemoryKnowledgeStore()
    >>> log.replay(kb), kb.read("/a.md"), [e.type for e in log]
    (1, b'hello', ['write', 'x-annotation'])
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self._lock = threading.Lock()

    def append(self, event: Event) -> None:
        """Add one event (its ``at`` defaults to now) as one line, whole or not at all: a
        failed write (a full disk: :class:`~vecmem.errors.StorageFullError`) is cut off again,
        and a line torn by a crash is dropped before the next one is added, so it can never
        run into it. Appenders in several processes take turns (an ``flock``)."""
        d = event.to_dict()
        d.setdefault("at", time.time())
        line = (json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a+b", buffering=0) as f:  # read: the last line
                    fd = f.fileno()
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    try:
                        end = _whole_lines_end(fd)
                        if end < os.fstat(fd).st_size:
                            os.ftruncate(fd, end)  # a line torn by a crash
                        try:
                            view = memoryview(line)
                            while view:
                                view = view[os.write(fd, view) :]
                            if self.fsync:
                                os.fsync(fd)
                        except OSError:
                            os.ftruncate(fd, end)
                            raise
                    finally:
                        fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StorageFullError(
                        f"appending to event log {self.path} failed: the "
                        f"disk is full ({exc}); nothing was written"
                    ) from exc
                raise BackendError(f"appending to event log {self.path} failed: {exc}") from exc

    def __iter__(self) -> Iterator[Event]:
        return iter(self.read())

    def read(self) -> list[Event]:
        """Every event in order. A torn last line (a crash mid-write) is skipped; any other bad
        line raises :class:`~vecmem.errors.DocumentReadError` naming it."""
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise DocumentReadError(f"cannot read event log {self.path}: {exc}") from exc
        lines = text.split("\n")
        torn = lines.pop()  # text after the last newline: empty, or an unfinished line
        out = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                out.append(Event.from_dict(json.loads(line)))
            except (ValueError, InvalidInputError, TypeError) as exc:
                raise DocumentReadError(f"{self.path}:{n}: bad event line: {exc}") from exc
        del torn
        return out

    def replay(self, store: KnowledgeStore) -> int:
        """Apply the known events to ``store`` in order; returns how many were applied.
        Unknown types are skipped (and stay in the log)."""
        applied = 0
        for e in self.read():
            if not e.known or e.path is None:
                continue
            if e.type == "write":
                store.write(e.path, e.data or b"")
            elif e.type == "append":
                store.append(e.path, e.data or b"")
            else:
                store.delete(e.path, recursive=e.recursive)
            applied += 1
        return applied

    def rewrite(self, events: list[Event]) -> None:
        """Replace the log with ``events`` atomically (e.g. after compaction)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with self._lock:
            with open(tmp, "w", encoding="utf-8") as f:
                for e in events:
                    f.write(
                        json.dumps(e.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
                    )
            os.replace(tmp, self.path)


class LoggedKnowledgeStore:
    """A knowledge store that records every successful write, append and delete in an
    :class:`EventLog` (replaying the log into an empty store rebuilds it).

    >>> import tempfile, os
    >>> from vecmem.knowledge_fs import MemoryKnowledgeStore
    >>> log = EventLog(os.path.join(tempfile.mkdtemp(), "log.jsonl"))
    >>> kb = LoggedKnowledgeStore(MemoryKnowledgeStore(), log)
    >>> kb.write("/a", "1"); kb.append("/a", "2")
    1
    >>> [e.type for e in log]
    ['write', 'append']
    """

    def __init__(self, store: KnowledgeStore, log: EventLog) -> None:
        self.store = store
        self.log = log
        self.tenant = store.tenant

    def write(self, path: str, data: bytes | str) -> None:
        self.store.write(path, data)
        self.log.append(Event("write", path, to_bytes(data)))

    def append(self, path: str, data: bytes | str) -> int:
        offset = self.store.append(path, data)
        self.log.append(Event("append", path, to_bytes(data), extra={"offset": offset}))
        return offset

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        done = self.store.delete(path, recursive=recursive)
        if done:
            self.log.append(Event("delete", path, recursive=recursive))
        return done

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

    def with_tenant(self, tenant: str) -> LoggedKnowledgeStore:
        raise InvalidInputError("a logged store has one log; wrap each tenant's store itself")

    def close(self) -> None:
        self.store.close()
