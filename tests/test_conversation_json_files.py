"""The JSON-file conversation store's options: rotation at a maximum file size, automatic
backups at an interval, and writes that survive a killed writer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from vecmem.conversations import JSONConversationStore, Message
from vecmem.errors import DocumentReadError, InvalidInputError, NotFoundError
from vecmem.registry import CONVERSATION_STORES


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "acme").rglob("*") if p.is_file())


def test_rotation_keeps_every_file_under_the_limit(tmp_path: Path) -> None:
    store = JSONConversationStore(tmp_path, tenant="acme", max_file_bytes=4096)
    texts = [f"message {i} " + "x" * (i % 97) for i in range(300)]
    for i in range(0, 300, 7):
        store.add_messages("u", "s", [Message("user", t) for t in texts[i : i + 7]])
    files = _files(tmp_path)
    assert len(files) > 10  # the session file and its segments
    assert all(p.stat().st_size <= 4096 for p in files), [p.stat().st_size for p in files]
    got = store.get_messages("u", "s")
    assert [m.content for m in got] == texts and [m.seq for m in got] == list(range(300))
    assert store.get_session("u", "s").message_count == 300
    assert [m.content for m in store.last_messages("u", "s", 2)] == texts[-2:]
    # sealed segments are never rewritten by later appends
    sealed = {p: p.stat().st_mtime_ns for p in files if not p.name.endswith(".json")}
    time.sleep(0.01)
    store.add_messages("u", "s", [Message("user", "one more")])
    assert all(p.stat().st_mtime_ns == t for p, t in sealed.items())
    # a store opened without the option reads the rotated session as it is
    plain = JSONConversationStore(tmp_path, tenant="acme")
    assert len(plain.get_messages("u", "s")) == 301
    assert [s.session_id for s in plain.query_sessions()] == ["s"]


def test_one_message_bigger_than_the_limit_gets_a_segment_of_its_own(tmp_path: Path) -> None:
    store = JSONConversationStore(tmp_path, tenant="acme", max_file_bytes=2048)
    store.add_messages("u", "s", [Message("user", "small")])
    store.add_messages("u", "s", [Message("user", "B" * 10_000)])
    store.add_messages("u", "s", [Message("user", "after")])
    big = [p for p in _files(tmp_path) if p.stat().st_size > 2048]
    assert len(big) == 1 and "B" * 10_000 in big[0].read_text()
    assert [m.content[:5] for m in store.get_messages("u", "s")] == ["small", "BBBBB", "after"]


def test_trimming_and_deleting_a_rotated_session(tmp_path: Path) -> None:
    store = JSONConversationStore(tmp_path, tenant="acme", max_file_bytes=1024)
    store.add_messages("u", "s", [Message("user", f"m{i} " + "y" * 60) for i in range(60)])
    store.set_session_limits("u", "s", max_messages=10, overflow="trim_oldest")
    store.add_messages("u", "s", [Message("user", "last")])
    got = store.get_messages("u", "s")
    assert len(got) == 10 and got[-1].content == "last" and got[0].content.startswith("m51 ")
    assert sum(len(p.read_text()) for p in _files(tmp_path)) < 3000  # trimmed data is gone
    assert store.delete_session("u", "s") is True
    assert _files(tmp_path) == [] and store.get_messages("u", "s") == []


def test_backups_at_an_interval_rotate_and_restore(tmp_path: Path) -> None:
    clock = Clock()
    store = JSONConversationStore(
        tmp_path, tenant="acme", clock=clock, backup_interval=60, backups_kept=2
    )
    start = clock.now
    with pytest.raises(NotFoundError):
        store.restore_backup("u", "s")
    store.add_messages("u", "s", [Message("user", "a")])  # first write: backup
    clock.now += 10
    store.add_messages("u", "s", [Message("user", "b")])  # within the interval: none
    assert store.backups("u", "s") == [start]
    clock.now += 60
    store.add_messages("u", "s", [Message("user", "c")])
    clock.now += 100
    store.add_messages("u", "s", [Message("user", "d")])
    times = store.backups("u", "s")
    assert times == [start + 170, start + 70]  # two kept, newest first
    store.add_messages("u", "s", [Message("user", "oops")])
    restored = store.restore_backup("u", "s", at=start + 70)
    assert restored.message_count == 3
    assert [m.content for m in store.get_messages("u", "s")] == ["a", "b", "c"]
    assert [m.content for m in store.get_messages("u", "s")] == [
        m.content for m in store.get_messages("u", "s")
    ]
    with pytest.raises(NotFoundError):
        store.restore_backup("u", "s", at=start + 1)
    backup_dir = tmp_path / ".backups"
    assert backup_dir.is_dir() and [s.session_id for s in store.query_sessions()] == ["s"]
    store.delete_session("u", "s")
    assert store.backups("u", "s") == []  # a deleted session leaves no copy behind


def test_bad_options_are_typed_errors(tmp_path: Path) -> None:
    for options in [
        {"max_file_bytes": 0},
        {"max_file_bytes": 1.5},
        {"max_file_bytes": True},
        {"backup_interval": -1},
        {"backup_interval": "60"},
        {"backups_kept": 0},
    ]:
        with pytest.raises(InvalidInputError):
            JSONConversationStore(tmp_path, **options)
        with pytest.raises(InvalidInputError):
            CONVERSATION_STORES.create(f"json://{tmp_path}", **options)
    assert not any(tmp_path.iterdir())


def test_a_torn_segment_is_reported_not_hidden(tmp_path: Path) -> None:
    store = JSONConversationStore(tmp_path, tenant="acme", max_file_bytes=1024)
    store.add_messages("u", "s", [Message("user", "z" * 100) for _ in range(30)])
    segment = next(p for p in _files(tmp_path) if not p.name.endswith(".json"))
    segment.write_text('{"messages": [')
    with pytest.raises(DocumentReadError):
        store.get_messages("u", "s")


_WRITER = r"""
import sys
from vecmem.conversations import JSONConversationStore, Message
store = JSONConversationStore(sys.argv[1], tenant="acme", max_file_bytes=2048, backup_interval=0.001)
i = int(sys.argv[2])
while True:
    store.add_messages("u", "s", [Message("user", f"m{i} " + "w" * (i % 150))])
    print(i, flush=True)
    i += 1
"""


def test_a_killed_writer_never_leaves_a_torn_session(tmp_path: Path) -> None:
    """SIGKILL a writer (rotation and backups on) at 6 random moments: each time the session
    reads back whole, with every acknowledged message, in order."""
    acked = -1
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(tmp_path), str(acked + 1)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 0.3 + 0.15 * round_
        last = None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert last is not None, "the writer acknowledged nothing"
        acked = last
        store = JSONConversationStore(tmp_path, tenant="acme")
        got = [m.content.split(" ")[0] for m in store.get_messages("u", "s")]
        assert len(got) >= acked + 1
        assert got == [f"m{i}" for i in range(len(got))]
        acked = len(got) - 1
        for p in (tmp_path / "acme").rglob("*.json*"):
            if not p.name.startswith(".tmp-"):
                json.loads(p.read_text())  # every file parses
    backups = sorted((tmp_path / ".backups").rglob("*.json"))
    assert backups and json.loads(backups[-1].read_text())["messages"]


def test_registry_name_json_takes_the_options(tmp_path: Path) -> None:
    store: Any = CONVERSATION_STORES.create(
        f"json://{tmp_path}", max_file_bytes=4096, backup_interval=30
    )
    assert isinstance(store, JSONConversationStore)
    assert store.max_file_bytes == 4096 and store.backup_interval == 30
    assert isinstance(CONVERSATION_STORES.create("json", root=str(tmp_path)), JSONConversationStore)
