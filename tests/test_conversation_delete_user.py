"""``delete_user`` is all or nothing on the stores that keep a user in several keys or files
(Redis, JSON files), and so is the JSON store's ``delete_session`` (a session file, its sealed
segments and backups). A child process deletes a user and is killed with SIGKILL at every step of
it: after each file-system change (JSON), or after each send to Redis or half way through one.
After each kill a fresh store shows the user whole, exactly as before, or gone with nothing left
(no session, segment or backup). The other user is untouched. Deleting key by key, or file by
file, left half a user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from vecmem._keys import file_name
from vecmem.conversations import JSONConversationStore, Message
from vecmem.errors import NotFoundError

_CHILD = r"""
import os, signal, socket, sys

kind, where, kill_at, mode, prefix, op = sys.argv[1:7]
kill_at = int(kill_at)
steps = 0


def die():
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


if kind == "json":
    from vecmem.conversations import JSONConversationStore

    store = JSONConversationStore(where, tenant="acme")

    def hooked(real):
        def call(*args, **kwargs):
            global steps
            out = real(*args, **kwargs)
            steps += 1
            if steps == kill_at:
                die()
            return out

        return call

    for name in ("fsync", "unlink", "remove", "rmdir", "rename", "replace"):
        setattr(os, name, hooked(getattr(os, name)))
else:
    from vecmem.conversations.redis import RedisConversationStore

    store = RedisConversationStore(where, tenant="acme", prefix=prefix)
    real_sendall = socket.socket.sendall

    def sendall(self, data, *args):
        global steps
        steps += 1
        if steps == kill_at and mode == "half" and len(data) > 1:
            real_sendall(self, bytes(data)[: len(data) // 2])
            die()
        out = real_sendall(self, data, *args)
        if steps == kill_at:
            die()
        return out

    socket.socket.sendall = sendall

deleted = store.delete_user("doomed") if op == "user" else store.delete_session("doomed", "a")
print(steps, int(deleted), flush=True)
"""

SESSIONS = ("a", "b")


def _child(kind: str, where: str, kill_at: int, mode: str, prefix: str, op: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, where, str(kill_at), mode, prefix, op],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if kill_at:
        assert proc.returncode == -signal.SIGKILL, proc.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _fill(store: Any) -> dict[str, Any]:
    for sid in SESSIONS:
        for i in range(2):  # a JSON session file and a sealed segment, two backups
            batch = [Message("user", f"{sid}{i}.{j} " + "x" * 120) for j in range(2)]
            store.add_messages("doomed", sid, batch)
    store.add_messages("kept", "k", [Message("user", "keep")])
    return _snapshot(store, "doomed")


def _snapshot(store: Any, user_id: str) -> dict[str, Any]:
    doc = store.export(user_id)
    del doc["exported_at"]
    return doc


def _trials(
    kind: str,
    check: Any,
    fill: Any,
    where: str,
    modes: tuple[str, ...],
    prefix: str = "",
    op: str = "user",
) -> None:
    """A dry run counts the steps; then one kill after (or half way into) each step."""
    expected = fill()
    total, deleted = map(int, _child(kind, where, 0, "after", prefix, op).split())
    assert deleted == (len(SESSIONS) if op == "user" else 1)
    assert check(expected) == "gone"
    outcomes = []
    for mode in modes:
        for kill_at in range(1, total + 1):
            expected = fill() if outcomes[-1:] != ["whole"] else expected
            _child(kind, where, kill_at, mode, prefix, op)
            outcomes.append(check(expected))
    # the kills fell both before and after the delete took effect
    assert "whole" in outcomes and "gone" in outcomes, outcomes


def test_a_json_delete_user_killed_at_every_step_is_all_or_nothing(tmp_path: Path) -> None:
    root = str(tmp_path)

    def store() -> JSONConversationStore:
        return JSONConversationStore(root, tenant="acme", max_file_bytes=600, backup_interval=1e-6)

    def check(expected: dict[str, Any]) -> str:
        fresh = store()  # opening finishes an interrupted delete
        assert _snapshot(fresh, "kept")["sessions"][0]["messages"][0]["content"] == "keep"
        assert fresh.backups("kept", "k")
        got = _snapshot(fresh, "doomed")
        if got["sessions"]:
            assert got == expected, "a half-deleted user"
            assert all(fresh.backups("doomed", sid) for sid in SESSIONS)
            return "whole"
        for sid in SESSIONS:
            assert fresh.backups("doomed", sid) == []
            with pytest.raises(NotFoundError):
                fresh.restore_backup("doomed", sid)  # nothing of the user can come back
        left = [p for p in tmp_path.rglob("*") if file_name("doomed") in p.parts]
        assert left == [], f"files of the deleted user left behind: {left}"
        assert os.listdir(tmp_path / ".deleting+users") == []
        return "gone"

    _trials("json", check, lambda: _fill(store()), root, ("after",))


def test_a_json_delete_session_killed_at_every_step_is_all_or_nothing(tmp_path: Path) -> None:
    """The session file went first, then its segments and backups one by one: killed in
    between, restore_backup brought the deleted session back."""
    root = str(tmp_path)

    def store() -> JSONConversationStore:
        return JSONConversationStore(root, tenant="acme", max_file_bytes=600, backup_interval=1e-6)

    def check(expected: dict[str, Any]) -> str:
        fresh = store()  # opening finishes an interrupted delete
        got = _snapshot(fresh, "doomed")
        if len(got["sessions"]) == 2:
            assert got == expected, "a half-deleted session"
            assert fresh.backups("doomed", "a")
            return "whole"
        assert got == {**expected, "sessions": expected["sessions"][1:]}  # b as it was
        assert fresh.backups("doomed", "a") == [] and fresh.backups("doomed", "b")
        with pytest.raises(NotFoundError):
            fresh.restore_backup("doomed", "a")
        user = tmp_path / "acme" / "doomed"
        assert sorted(p.name for p in user.iterdir() if p.name.startswith("a.")) == []
        assert not any((tmp_path / ".deleting+users").glob("*"))
        fresh.add_messages("doomed", "a", [Message("user", "new")])  # the id can be used again
        assert [m.content for m in fresh.get_messages("doomed", "a")] == ["new"]
        fresh.delete_session("doomed", "a")
        return "gone"

    def fill() -> dict[str, Any]:
        s = store()
        s.delete_user("doomed")
        s.delete_user("kept")
        return _fill(s)

    _trials("json", check, fill, root, ("after",), op="session")


def test_a_redis_delete_user_killed_at_every_step_is_all_or_nothing(redis_url: str) -> None:
    from vecmem.conversations.redis import RedisConversationStore

    prefix = f"del-{uuid.uuid4().hex[:8]}"

    def store() -> RedisConversationStore:
        return RedisConversationStore(redis_url, tenant="acme", prefix=prefix)

    def check(expected: dict[str, Any]) -> str:
        fresh = store()
        fresh.client.delete(f"{prefix}-lock:acme")  # the killed child's lock: as if expired
        assert _snapshot(fresh, "kept")["sessions"][0]["messages"][0]["content"] == "keep"
        got = _snapshot(fresh, "doomed")
        keys = list(fresh.client.scan_iter(f"{prefix}:acme:doomed:*"))
        fresh.close()
        if got["sessions"]:
            assert got == expected, "a half-deleted user"
            return "whole"
        assert keys == []
        return "gone"

    _trials("redis", check, lambda: _fill(store()), redis_url, ("after", "half"), prefix)


def test_a_json_delete_user_that_fails_half_way_puts_the_user_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second rename (the backups) fails: the user's folder, already moved, comes back,
    the delete record goes, and a later open does not finish a delete that did not happen.
    Otherwise it would delete the sessions written in between."""
    from vecmem.errors import BackendError

    store = JSONConversationStore(tmp_path, tenant="acme", backup_interval=1e-6)
    expected = _fill(store)
    real, calls = os.rename, []

    def rename(src: Any, dst: Any) -> None:
        calls.append(src)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(BackendError, match="cannot delete"):
        store.delete_user("doomed")
    monkeypatch.setattr(os, "rename", real)
    assert len(calls) == 3  # the folder, the backups (failed), the folder back
    assert _snapshot(store, "doomed") == expected
    store.add_messages("doomed", "later", [Message("user", "written after the failure")])
    fresh = JSONConversationStore(tmp_path, tenant="acme")
    assert [s["session_id"] for s in _snapshot(fresh, "doomed")["sessions"]] == ["a", "b", "later"]
    assert os.listdir(tmp_path / ".deleting+users") == []
    assert fresh.delete_user("doomed") == 3
    assert _snapshot(fresh, "doomed")["sessions"] == []
