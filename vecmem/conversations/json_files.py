"""Conversations as JSON files, crash-safe, with size rotation and automatic backups.

``root/<tenant>/<user>/<session>.json`` holds a session: its header, participants and its
newest messages. Options (all off by default):

* ``max_file_bytes``: when a session file would grow past it, its older messages are sealed
  into segment files ``<session>.json.<n>`` (each at most ``max_file_bytes``, unless one
  message alone is bigger) that appends never rewrite; the session file names their range
  (``"sealed"``: first and next number, message count, first and last message id). Reads see
  every message as before; appends rewrite only the small session file. Trimming or merging
  the front of a rotated session writes a new run of segments and then removes the old one.
* ``backup_interval`` (seconds): after a write, a session whose newest backup is older than
  this gets a new one, a single JSON file with every message under
  ``root/.backups/<tenant>/<user>/<session>/<time-ms>.json``; the newest ``backups_kept`` are
  kept. :meth:`JSONConversationStore.backups` lists them, :meth:`~JSONConversationStore.
  restore_backup` brings one back. Deleting a session deletes its backups too.

Every file is written to a temporary name, fsynced, renamed over the old one and its directory
fsynced, so a crash leaves the previous or the new version, never a torn one; new segments are
durable before the session file names them, and segments it no longer names are removed after.

Deleting a user or a session is all or nothing: a record of the delete is written first into
``root/.deleting+users`` (``+`` is escaped in every tenant's folder name, old or new), then the
user's folder and backups (a session's file, segments and backups) are renamed into that folder,
the record notes it, they are removed and then the record. A store opened later finishes any
delete whose record it finds, so a crash leaves the user or session whole (no record yet) or
gone, with no backup left to restore it from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vecmem._keys import child_path, file_name
from vecmem.conversations.base import (
    Message,
    Session,
    check_ids,
    message_dict,
    message_from_dict,
    session_dict,
    session_from_dict,
)
from vecmem.conversations.memory import _PythonConversationStore, _Record
from vecmem.errors import BackendError, DocumentReadError, InvalidInputError, NotFoundError

_BACKUP = re.compile(r"(\d+)\.json\Z")
_DELETING = ".deleting+users"  # no tenant's folder: file_name and legacy names escape "+"


def _dump(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8")


def write_atomic(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload``: temporary file, fsync, rename, fsync of the folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise BackendError(f"cannot write conversation file {path}: {exc}") from exc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DocumentReadError(f"cannot read conversation file {path}: {exc}") from exc


def _positive(name: str, value: Any, *, integer: bool) -> None:
    if value is None:
        return
    ok = isinstance(value, int) or (not integer and isinstance(value, float))
    if isinstance(value, bool) or not ok or not value > 0:
        raise InvalidInputError(f"{name} must be a positive number or None, got {value!r}")


class JSONConversationStore(_PythonConversationStore):
    """Conversations as JSON files: ``root/<tenant>/<user>/<session>.json``, each id written as
    :func:`vecmem._keys.file_name` (``..`` is ``%2E%2E``, ``A`` is ``%41``), so no id leaves its
    folder or meets another by case; files written under the old spelling are renamed on use.
    Meant for one process (use SQLite for several).

    >>> import tempfile
    >>> store = JSONConversationStore(tempfile.mkdtemp(), max_file_bytes=1 << 20,
    ...                               backup_interval=3600)
    >>> _ = store.add_messages("u1", "s1", [Message("user", "hi")])
    >>> store.get_messages("u1", "s1")[0].content, len(store.backups("u1", "s1"))
    ('hi', 1)
    """

    _locks: dict[str, threading.RLock] = {}
    _locks_guard = threading.Lock()

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.time,
        max_file_bytes: int | None = None,
        backup_interval: float | None = None,
        backups_kept: int = 5,
    ) -> None:
        super().__init__(tenant, clock)
        _positive("max_file_bytes", max_file_bytes, integer=True)
        _positive("backup_interval", backup_interval, integer=False)
        _positive("backups_kept", backups_kept, integer=True)
        self.root = Path(root)
        self.max_file_bytes = max_file_bytes
        self.backup_interval = backup_interval
        self.backups_kept = backups_kept
        self._dir = child_path(self.root, self.tenant, what="tenant")
        key = str(self.root.resolve())
        with self._locks_guard:
            self._lock = self._locks.setdefault(key, threading.RLock())
        self._deleting = self.root / _DELETING
        with self._lock:
            self._finish_deletes()

    def with_tenant(self, tenant: str) -> JSONConversationStore:
        view = JSONConversationStore(
            self.root,
            tenant=tenant,
            clock=self.clock,
            max_file_bytes=self.max_file_bytes,
            backup_interval=self.backup_interval,
            backups_kept=self.backups_kept,
        )
        view.actor = self.actor
        return view

    # -- paths ----------------------------------------------------------------------------------
    def _user_dir(self, user_id: str) -> Path:
        return child_path(self._dir, user_id, what="user_id")

    def _path(self, user_id: str, session_id: str) -> Path:
        return child_path(self._user_dir(user_id), session_id, suffix=".json", what="session_id")

    def _backup_dir(self, user_id: str, session_id: str) -> Path:
        return (
            self.root
            / ".backups"
            / file_name(self.tenant)
            / file_name(user_id)
            / file_name(session_id)
        )

    @staticmethod
    def _segment(path: Path, n: int) -> Path:
        return path.with_name(f"{path.name}.{n}")

    # -- records --------------------------------------------------------------------------------
    def _read(self, path: Path) -> _Record | None:
        data = _read_json(path)
        if data is None:
            return None
        try:
            messages: list[Message] = []
            sealed = data.get("sealed")
            for n in range(int(sealed["first"]), int(sealed["next"])) if sealed else ():
                part = _read_json(self._segment(path, n))
                if part is None:
                    raise DocumentReadError(f"segment {n} of {path} is missing")
                messages.extend(message_from_dict(m) for m in part["messages"])
            if sealed and len(messages) != int(sealed["count"]):
                raise DocumentReadError(f"the segments of {path} do not hold what it says")
            messages.extend(message_from_dict(m) for m in data["messages"])
            return _Record(
                session_from_dict(data["session"]),
                messages,
                dict(data.get("participants") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DocumentReadError(f"cannot read conversation file {path}: {exc}") from exc

    def _load(self, user_id: str, session_id: str) -> _Record | None:
        return self._read(self._path(user_id, session_id))

    def _store(self, record: _Record) -> None:
        s = record.session
        path = self._path(s.user_id, s.session_id)
        old = (_read_json(path) or {}).get("sealed")
        first, count = self._sealed_prefix(old, record.messages)
        nxt = int(old["next"]) if old else 0
        if count == 0:
            first = nxt  # nothing kept: a new run of segments starts after the old one
        rest = record.messages[count:]
        head: dict[str, Any] = {"session": session_dict(s), "participants": record.participants}
        payload = _dump({**head, "messages": [message_dict(m) for m in rest]})
        if self.max_file_bytes is not None and len(payload) > self.max_file_bytes and rest:
            chunks = list(self._chunks(rest))
            tail = chunks.pop() if len(chunks) > 1 else []  # a partial chunk stays if it fits
            if tail and len(_dump({**head, "messages": [message_dict(m) for m in tail]})) > (
                self.max_file_bytes
            ):
                chunks.append(tail)
                tail = []
            for chunk in chunks:
                segment = _dump({"messages": [message_dict(m) for m in chunk]})
                write_atomic(self._segment(path, nxt), segment)
                nxt += 1
                count += len(chunk)
            rest = tail
        if count:
            head["sealed"] = {
                "first": first,
                "next": nxt,
                "count": count,
                "first_id": record.messages[0].id,
                "last_id": record.messages[count - 1].id,
            }
        head["messages"] = [message_dict(m) for m in rest]
        write_atomic(path, _dump(head))
        if old:  # segments the session file no longer names
            keep = range(first, nxt) if count else range(0)
            for n in range(int(old["first"]), int(old["next"])):
                if n not in keep:
                    self._segment(path, n).unlink(missing_ok=True)
        if self.backup_interval is not None:
            self._maybe_backup(record)

    @staticmethod
    def _sealed_prefix(sealed: Any, messages: list[Message]) -> tuple[int, int]:
        """``(first segment, messages in segments)`` when the old segments still hold exactly
        the first messages; ``(0, 0)`` (rewrite them) once trimming or a merge changed them."""
        if not sealed:
            return 0, 0
        n = int(sealed["count"])
        if (
            n <= len(messages)
            and messages[0].id == sealed["first_id"]
            and messages[n - 1].id == sealed["last_id"]
        ):
            return int(sealed["first"]), n
        return 0, 0

    def _chunks(self, messages: list[Message]) -> Iterator[list[Message]]:
        """Consecutive runs of ``messages`` whose segment files fit ``max_file_bytes``."""
        limit = self.max_file_bytes or 0
        base = len(_dump({"messages": [0]})) - 3  # the file around its list items
        chunk: list[Message] = []
        size = base
        for m in messages:
            text = json.dumps(message_dict(m), ensure_ascii=False, indent=1)
            n = len(text.encode("utf-8")) + 2 * (text.count("\n") + 1)  # items sit 2 deeper
            if chunk and size + 2 + n > limit:
                yield chunk
                chunk, size = [], base
            size += n + (2 if chunk else 0)  # ",\n" between items
            chunk.append(m)
        if chunk:
            yield chunk

    def _remove(self, user_id: str, session_id: str) -> bool:
        # file by file, a crash left segments and backups that restore_backup brought back
        data = _read_json(self._path(user_id, session_id))
        if data is None:
            return False
        sealed = data.get("sealed")
        segments = [int(sealed["first"]), int(sealed["next"])] if sealed else [0, 0]
        self._delete({"user_id": user_id, "session_id": session_id, "segments": segments})
        return True

    # -- deleting a user: all or nothing ------------------------------------------------------------
    # -- deleting a user or a session: all or nothing -----------------------------------------------
    def _remove_user(self, user_id: str, session_ids: list[str]) -> None:
        # one session after another, a crash left half a user: see the module docstring
        self._delete({"user_id": user_id})

    def _delete(self, what: dict[str, Any]) -> None:
        """Delete a user (``what``: its ``user_id``) or a session (also ``session_id`` and
        its ``segments`` range) through a delete record, rolled back if it fails here."""
        record = self._deleting / f"{uuid.uuid4().hex}.json"
        what = {"tenant": self.tenant, **what}
        write_atomic(record, _dump({**what, "moved": False}))
        try:
            self._move_away(record, what)
        except BaseException:
            self._move_back(record, what)  # nothing moved is deleted later
            raise
        self._finish_delete(record)

    def _doomed(self, what: dict[str, Any]) -> list[Path]:
        """What a delete removes (the part that hides it first), from its record."""
        tenant, user_id = what["tenant"], what["user_id"]
        folder = child_path(child_path(self.root, tenant, what="tenant"), user_id, what="user_id")
        backups = self.root / ".backups" / file_name(tenant) / file_name(user_id)
        session_id = what.get("session_id")
        if session_id is None:
            return [folder, backups]
        path = child_path(folder, session_id, suffix=".json", what="session_id")
        first, nxt = (int(n) for n in what["segments"])
        segments = [self._segment(path, n) for n in range(first, nxt)]
        return [path, backups / file_name(session_id), *segments]

    def _move_away(self, record: Path, what: dict[str, Any]) -> None:
        """Rename what goes into ``.deleting+users`` (the first rename hides it whole) and note
        in the record that it is there: from then on nothing live is touched."""
        for i, path in enumerate(self._doomed(what)):
            if os.path.lexists(path):
                try:
                    os.rename(path, record.with_suffix(f".{i}"))
                    _fsync_dir(path.parent)
                except OSError as exc:
                    raise BackendError(f"cannot delete {path}: {exc}") from exc
        _fsync_dir(self._deleting)
        write_atomic(record, _dump({**what, "moved": True}))

    def _move_back(self, record: Path, what: dict[str, Any]) -> None:
        for i, path in reversed(list(enumerate(self._doomed(what)))):
            moved = record.with_suffix(f".{i}")
            if os.path.lexists(moved) and not os.path.lexists(path):
                os.rename(moved, path)
        record.unlink()

    def _finish_delete(self, record: Path) -> None:
        data = _read_json(record)
        try:
            what = {k: v for k, v in data.items() if k != "moved"}
            doomed = self._doomed(what)
            moved = data["moved"]
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise DocumentReadError(f"cannot read the delete record {record}: {exc}") from exc
        if not moved:  # a crash came before everything was moved: move the rest now
            self._move_away(record, what)
        for i in range(len(doomed)):
            gone = record.with_suffix(f".{i}")
            try:
                if gone.is_dir() and not gone.is_symlink():
                    shutil.rmtree(gone)
                else:
                    gone.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise BackendError(f"cannot remove {gone}: {exc}") from exc
        record.unlink()

    def _finish_deletes(self) -> None:
        """Finish every delete a crash interrupted (called when the store opens)."""
        try:
            names = sorted(os.listdir(self._deleting))
        except FileNotFoundError:
            return
        for name in names:
            if name.startswith(".tmp-"):  # a record never written: that delete did not begin
                (self._deleting / name).unlink(missing_ok=True)
            elif name.endswith(".json"):
                self._finish_delete(self._deleting / name)

    def _records(self, user_id: str | None) -> Iterator[_Record]:
        if user_id is not None:
            dirs = [self._user_dir(user_id)]
        else:
            dirs = (
                sorted(p for p in self._dir.iterdir() if p.is_dir() and not p.is_symlink())
                if self._dir.is_dir()
                else []
            )  # a link planted here may lead anywhere
        for d in dirs:
            if not d.is_dir():
                continue
            for path in sorted(d.glob("*.json")):
                rec = self._read(path)
                if rec is not None and (user_id is None or rec.session.user_id == user_id):
                    yield rec

    # -- backups --------------------------------------------------------------------------------
    def _backup_times(self, folder: Path) -> list[int]:
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        return sorted((int(m.group(1)) for n in names if (m := _BACKUP.match(n))), reverse=True)

    def _maybe_backup(self, record: _Record) -> None:
        s = record.session
        folder = self._backup_dir(s.user_id, s.session_id)
        times = self._backup_times(folder)
        now_ms = int(self.clock() * 1000)
        if times and now_ms - times[0] < (self.backup_interval or 0) * 1000:
            return
        full = {
            "session": session_dict(s),
            "participants": record.participants,
            "messages": [message_dict(m) for m in record.messages],
        }
        write_atomic(folder / f"{now_ms}.json", _dump(full))
        for old in [now_ms, *times][self.backups_kept :]:
            (folder / f"{old}.json").unlink(missing_ok=True)

    def backups(self, user_id: str, session_id: str) -> list[float]:
        """Times (seconds) of the session's backups, newest first."""
        check_ids(user_id, session_id)
        with self._lock:
            return [t / 1000 for t in self._backup_times(self._backup_dir(user_id, session_id))]

    def restore_backup(self, user_id: str, session_id: str, *, at: float | None = None) -> Session:
        """Make a backup (the newest, or the one taken at ``at``, a time from :meth:`backups`)
        the session's content again; :class:`NotFoundError` if there is none."""
        check_ids(user_id, session_id)
        with self._lock:
            folder = self._backup_dir(user_id, session_id)
            times = self._backup_times(folder)
            if at is not None:
                times = [t for t in times if t == round(at * 1000)]
            if not times:
                raise NotFoundError(f"no backup of session {session_id!r} for user {user_id!r}")
            data = _read_json(folder / f"{times[0]}.json")
            rec = _Record(
                session_from_dict(data["session"]),
                [message_from_dict(m) for m in data["messages"]],
                dict(data.get("participants") or {}),
            )
            self._open(user_id, session_id, "moderate", "restoring a session", self.clock())
            self._store(rec)
            return rec.session


__all__ = ["JSONConversationStore", "write_atomic"]
