"""Knowledge store on disk: human-readable files under ``root/<tenant>/``.

The tenant's folder name is :func:`vecmem._keys.file_name` of the tenant (``acme`` stays
``acme``, ``Acme`` is ``%41cme``, ``..`` is ``%2E%2E``), so no tenant reaches another's files or
leaves ``root``; a folder written under the old spelling is renamed on first use. Each path is a
real file (``/notes/a.md`` -> ``root/<tenant>/notes/a.md``), so the store can be browsed,
grepped and edited with ordinary tools; paths are kept as written, so on a case-insensitive
file system (macOS, Windows) ``/A.md`` and ``/a.md`` are one file (the other backends keep them
apart). Writes are atomic (temporary file + rename); appends hold an exclusive ``flock`` so
concurrent appenders each get their own offset. Directories are removed with their last file.
Symbolic links that lead out of the tenant's folder are refused.
:meth:`DiskKnowledgeStore.on_change` delivers real file-system events (``watchdog``, extra
``watch``), including edits made outside vecmem.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vecmem._deps import require
from vecmem._keys import check_tenant, child_path
from vecmem.errors import (
    BackendError,
    InvalidInputError,
    NotFoundError,
    ScopeEscapeError,
    StorageFullError,
)
from vecmem.knowledge_fs.base import (
    ChangeEvent,
    Subscription,
    check_range,
    is_a_directory,
    not_a_directory,
    to_bytes,
)
from vecmem.knowledge_fs.paths import any_path, dir_path, file_path

TMP_PREFIX = ".vecmem-tmp-"


class DiskKnowledgeStore:
    """Files on disk.

    >>> import tempfile
    >>> kb = DiskKnowledgeStore(tempfile.mkdtemp(), tenant="acme")
    >>> kb.write("/notes/a.md", "hello")
    >>> sorted(p.name for p in (kb.base / "notes").iterdir())
    ['a.md']
    """

    def __init__(self, root: str | os.PathLike[str], *, tenant: str = "default") -> None:
        self.tenant = check_tenant(tenant)
        self.root = Path(root)
        self.base = child_path(self.root, self.tenant, what="tenant")
        self.base.mkdir(parents=True, exist_ok=True)
        self._real_base = os.path.realpath(self.base)

    def with_tenant(self, tenant: str) -> DiskKnowledgeStore:
        return DiskKnowledgeStore(self.root, tenant=tenant)

    def _fs(self, path: str) -> str:
        full = (
            os.path.join(self._real_base, *path.split("/")[1:]) if path != "/" else self._real_base
        )
        real = os.path.realpath(full)
        if real != self._real_base and not real.startswith(self._real_base + os.sep):
            raise ScopeEscapeError(f"{path!r} leads outside the store (symbolic link)")
        return full

    def _io(self, what: str, path: str, exc: OSError) -> Exception:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return StorageFullError(
                f"{what} {path!r} failed: the disk is full ({exc}); nothing was written"
            )
        if isinstance(exc, IsADirectoryError):
            return is_a_directory(path)
        if isinstance(exc, NotADirectoryError):
            return not_a_directory(path)
        if isinstance(exc, FileNotFoundError):
            return NotFoundError(f"no file {path!r}")
        return BackendError(f"{what} {path!r} failed: {exc}")

    def _mkparents(self, path: str, full: str) -> None:
        try:
            os.makedirs(os.path.dirname(full), exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidInputError(f"a parent of {path!r} is a file, not a directory") from exc
        if os.path.isdir(full):
            raise is_a_directory(path)

    def read(self, path: str) -> bytes:
        path = file_path(path)
        try:
            with open(self._fs(path), "rb") as f:
                return f.read()
        except OSError as exc:
            raise self._io("reading", path, exc) from exc

    def read_range(self, path: str, start: int, end: int | None = None) -> bytes:
        path = file_path(path)
        check_range(start, end)
        try:
            with open(self._fs(path), "rb") as f:
                f.seek(start)
                return f.read() if end is None else f.read(max(0, end - start))
        except OSError as exc:
            raise self._io("reading", path, exc) from exc

    def write(self, path: str, data: bytes | str) -> None:
        path, raw = file_path(path), to_bytes(data)
        full = self._fs(path)
        self._mkparents(path, full)
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(full), prefix=TMP_PREFIX)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(raw)
                os.replace(tmp, full)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise self._io("writing", path, exc) from exc

    def append(self, path: str, data: bytes | str) -> int:
        """Append ``data`` whole or not at all: a failed write (a full disk) is cut off
        again, so the file keeps exactly what it had."""
        path, raw = file_path(path), to_bytes(data)
        full = self._fs(path)
        self._mkparents(path, full)
        try:
            with open(full, "ab", buffering=0) as f:
                fd = f.fileno()
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    offset = os.fstat(fd).st_size
                    try:
                        view = memoryview(raw)
                        while view:
                            view = view[os.write(fd, view) :]
                    except OSError:
                        os.ftruncate(fd, offset)
                        raise
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            return offset
        except OSError as exc:
            raise self._io("appending to", path, exc) from exc

    def list(self, path: str = "/") -> list[str]:
        path = dir_path(path)
        full = self._fs(path)
        try:
            entries = list(os.scandir(full))
        except FileNotFoundError as exc:
            raise NotFoundError(f"no directory {path!r}") from exc
        except NotADirectoryError as exc:
            raise not_a_directory(path) from exc
        except OSError as exc:
            raise self._io("listing", path, exc) from exc
        out = [
            e.name + "/" if e.is_dir() else e.name
            for e in entries
            if not e.name.startswith(TMP_PREFIX)
        ]
        if not out and path != "/":
            raise NotFoundError(f"no directory {path!r}")
        return sorted(out)

    def _prune(self, full: str) -> None:
        d = os.path.dirname(full)
        while d != self._real_base and d.startswith(self._real_base):
            try:
                os.rmdir(d)
            except OSError:
                return
            d = os.path.dirname(d)

    def delete(self, path: str, *, recursive: bool = False) -> bool:
        path = any_path(path)
        full = self._fs(path)
        if os.path.isdir(full):
            if not os.listdir(full):
                if path != "/":
                    os.rmdir(full)
                    self._prune(full)
                return False
            if not recursive:
                raise is_a_directory(path)
            if path == "/":
                for entry in os.scandir(full):
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
            else:
                shutil.rmtree(full)
                self._prune(full)
            return True
        try:
            os.unlink(full)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._io("deleting", path, exc) from exc
        self._prune(full)
        return True

    def exists(self, path: str) -> bool:
        path = any_path(path)
        full = self._fs(path)
        if path != "/" and os.path.isdir(full):
            return any(not n.startswith(TMP_PREFIX) for n in os.listdir(full))
        return os.path.exists(full)

    def on_change(self, callback: Callable[[ChangeEvent], None]) -> Subscription:
        """Real file-system events for files under this tenant (needs ``vecmem[watch]``)."""
        require("watchdog", "watch", "change events of the disk knowledge store")
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        base = self._real_base

        def to_path(fs_path: Any) -> str | None:
            p = os.fsdecode(fs_path)
            if not p.startswith(base + os.sep) or os.path.basename(p).startswith(TMP_PREFIX):
                return None
            return "/" + os.path.relpath(p, base).replace(os.sep, "/")

        def emit(kind: str, fs_path: Any) -> None:
            p = to_path(fs_path)
            if p is not None:
                try:
                    callback(ChangeEvent(kind, p))  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - a failing callback must not kill the watcher
                    pass

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory:
                    return
                kind = event.event_type
                if kind in ("created", "modified", "closed"):
                    if kind != "closed":
                        emit("written", event.src_path)
                elif kind == "deleted":
                    emit("deleted", event.src_path)
                elif kind == "moved":
                    emit("deleted", event.src_path)
                    emit("written", event.dest_path)

        observer = Observer()
        observer.schedule(Handler(), base, recursive=True)
        observer.daemon = True
        observer.start()

        def stop() -> None:
            observer.stop()
            observer.join(timeout=5)

        return Subscription(polling=False, stop=stop)

    def close(self) -> None:
        pass
