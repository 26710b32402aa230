"""Knowledge store in memory: a dict of path -> bytes behind a lock."""

from __future__ import annotations

import threading
from collections.abc import Callable

from vecmem._keys import check_tenant
from vecmem.errors import NotFoundError
from vecmem.knowledge_fs.base import (
    ChangeEvent,
    Subscription,
    check_range,
    is_a_directory,
    not_a_directory,
    polling,
    to_bytes,
)
from vecmem.knowledge_fs.paths import ancestors, any_path, dir_path, file_path


class _Shared:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytearray] = {}
        self.lock = threading.RLock()


class MemoryKnowledgeStore:
    """Files in memory, lost on exit; tenants from :meth:`with_tenant` share the dict.

    >>> kb = MemoryKnowledgeStore()
    >>> kb.write("/a/b.txt", b"hi")
    >>> kb.exists("/a/"), kb.exists("/a/b.txt"), kb.exists("/c")
    (True, True, False)
    """

    def __init__(self, *, tenant: str = "default", _shared: _Shared | None = None) -> None:
        self.tenant = check_tenant(tenant)
        self._shared = _shared or _Shared()

    def with_tenant(self, tenant: str) -> MemoryKnowledgeStore:
        return MemoryKnowledgeStore(tenant=tenant, _shared=self._shared)

    def _mine(self) -> list[str]:
        return [p for (t, p) in self._shared.files if t == self.tenant]

    def _is_dir(self, path: str) -> bool:
        if path == "/":
            return True
        prefix = path + "/"
        return any(p.startswith(prefix) for p in self._mine())

    def _check_writable(self, path: str) -> None:
        if self._is_dir(path):
            raise is_a_directory(path)
        for a in ancestors(path):
            if (self.tenant, a) in self._shared.files:
                raise not_a_directory(a)

    def _file(self, path: str) -> bytearray:
        data = self._shared.files.get((self.tenant, path))
        if data is None:
            if self._is_dir(path):
                raise is_a_directory(path)
            raise NotFoundError(f"no file {path!r}")
        return data

    def read(self, path: str) -> bytes:
        path = file_path(path)
        with self._shared.lock:
            return bytes(self._file(path))

    def read_range(self, path: str, start: int, end: int | None = None) -> bytes:
        path = file_path(path)
        check_range(start, end)
        with self._shared.lock:
            return bytes(self._file(path)[start:end])

    def write(self, path: str, data: bytes | str) -> None:
        path, raw = file_path(path), to_bytes(data)
        with self._shared.lock:
            self._check_writable(path)
            self._shared.files[(self.tenant, path)] = bytearray(raw)

    def append(self, path: str, data: bytes | str) -> int:
        path, raw = file_path(path), to_bytes(data)
        with self._shared.lock:
            current = self._shared.files.get((self.tenant, path))
            if current is None:
                self._check_writable(path)
                current = self._shared.files[(self.tenant, path)] = bytearray()
            offset = len(current)
            current.extend(raw)
            return offset

    def list(self, path: str = "/") -> list[str]:
        path = dir_path(path)
        prefix = "/" if path == "/" else path + "/"
        with self._shared.lock:
            if path != "/" and (self.tenant, path) in self._shared.files:
                raise not_a_directory(path)
            names = set()
            for p in self._mine():
                if p.startswith(prefix):
                    rest = p[len(prefix) :]
                    head, sep, _ = rest.partition("/")
                    names.add(head + "/" if sep else head)
        if not names and path != "/":
            raise NotFoundError(f"no directory {path!r}")
        return sorted(names)

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        path = any_path(path)
        with self._shared.lock:
            if path != "/" and self._shared.files.pop((self.tenant, path), None) is not None:
                return True
            if not self._is_dir(path):
                return False
            if not recursive:
                raise is_a_directory(path)
            prefix = "/" if path == "/" else path + "/"
            doomed = [p for p in self._mine() if p.startswith(prefix)]
            for p in doomed:
                del self._shared.files[(self.tenant, p)]
            return bool(doomed)

    def exists(self, path: str) -> bool:
        path = any_path(path)
        with self._shared.lock:
            return (self.tenant, path) in self._shared.files or self._is_dir(path)

    def on_change(self, callback: Callable[[ChangeEvent], None]) -> Subscription:
        return polling()

    def close(self) -> None:
        pass
