"""The knowledge-store suite on memory, SQLite, disk, PostgreSQL, MariaDB and Redis, plus the
disk store's real change events and the event log's handling of what it does not know."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.errors import DocumentReadError, InvalidInputError
from vecmem.knowledge_fs import (
    ChangeEvent,
    EventLog,
    LockedKnowledgeStore,
    LoggedKnowledgeStore,
    MemoryKnowledgeStore,
)
from vecmem.registry import FILE_STORES
from vecmem.testing.knowledge_fs import KnowledgeStoreSuite


@pytest.fixture(scope="module")
def sqlite_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = FILE_STORES.create(f"sqlite:///{tmp_path_factory.mktemp('kb')}/kb.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres_kb(postgres_url: str) -> Iterator[Any]:
    store = FILE_STORES.create(postgres_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def mariadb_kb(mariadb_url: str) -> Iterator[Any]:
    store = FILE_STORES.create(mariadb_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def redis_kb(redis_url: str) -> Iterator[Any]:
    store = FILE_STORES.create(redis_url)
    yield store
    store.close()


class TestMemoryKnowledge(KnowledgeStoreSuite):
    @pytest.fixture
    def store_factory(self) -> Any:
        return lambda: MemoryKnowledgeStore()


class TestSQLiteKnowledge(KnowledgeStoreSuite):
    @pytest.fixture
    def store_factory(self, sqlite_kb: Any) -> Any:
        return lambda: sqlite_kb


class TestDiskKnowledge(KnowledgeStoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Any:
        return lambda: FILE_STORES.create(f"file://{tmp_path}/kb")


@pytest.mark.server
class TestPostgresKnowledge(KnowledgeStoreSuite):
    @pytest.fixture
    def store_factory(self, postgres_kb: Any) -> Any:
        return lambda: postgres_kb


@pytest.mark.server
class TestMariaDBKnowledge(KnowledgeStoreSuite):
    @pytest.fixture
    def store_factory(self, mariadb_kb: Any) -> Any:
        return lambda: mariadb_kb


@pytest.mark.server
class TestRedisKnowledge(KnowledgeStoreSuite):
    @pytest.fixture
    def store_factory(self, redis_kb: Any) -> Any:
        return lambda: redis_kb


# -- disk specifics -------------------------------------------------------------------------
def _wait_for(events: list[ChangeEvent], wanted: ChangeEvent, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if wanted in events:
            return True
        time.sleep(0.02)
    return False


def test_disk_files_are_human_readable(tmp_path: Path) -> None:
    from vecmem.knowledge_fs import DiskKnowledgeStore

    kb = DiskKnowledgeStore(tmp_path, tenant="acme")
    kb.write("/notes/today.md", "# Today\n")
    kb.append("/notes/today.md", "- item\n")
    assert (tmp_path / "acme" / "notes" / "today.md").read_text() == "# Today\n- item\n"
    (tmp_path / "acme" / "notes" / "edited.md").write_text("by hand")
    assert kb.list("/notes") == ["edited.md", "today.md"]
    assert kb.read("/notes/edited.md") == b"by hand"
    (tmp_path / "acme" / "notes" / ".vecmem-tmp-abc").write_text("half written")
    assert kb.list("/notes") == ["edited.md", "today.md"]


def test_disk_refuses_symlinks_out_of_the_store(tmp_path: Path) -> None:
    from vecmem.knowledge_fs import DiskKnowledgeStore

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("no")
    kb = DiskKnowledgeStore(tmp_path / "root", tenant="t")
    os.symlink(outside, tmp_path / "root" / "t" / "link")
    with pytest.raises(InvalidInputError):
        kb.read("/link/secret")
    with pytest.raises(InvalidInputError):
        kb.write("/link/new", "x")
    assert not (outside / "new").exists()


def _files_under(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*") if p.is_file()}


def test_disk_tenant_names_reach_no_other_tenant_and_never_leave_the_root(tmp_path: Path) -> None:
    """Issue 13 finding 4: tenant "." read every tenant's files, ".." wrote beside the root."""
    from vecmem.knowledge_fs import DiskKnowledgeStore

    root = tmp_path / "kb"
    owner = DiskKnowledgeStore(root, tenant="acme")
    owner.write("/secret.md", "acme only")
    for tenant in [
        ".",
        "..",
        "../x",
        "./acme",
        "%2e%2e",
        "%2E%2E",
        "ACME",
        "Acme",
        "acme/",
        "a\\b",
        "~",
        "x" * 64,
    ]:
        kb = DiskKnowledgeStore(root, tenant=tenant)
        assert kb.list("/") == [], tenant
        assert not kb.exists("/secret.md"), tenant
        kb.write("/secret.md", f"written by {tenant!r}")
        assert kb.read("/secret.md") == f"written by {tenant!r}".encode()
        assert kb.delete("/", recursive=True)
        kb.write("/mine.md", tenant)
    assert sorted(os.listdir(tmp_path)) == ["kb"]  # nothing beside the root
    assert owner.read("/secret.md") == b"acme only" and owner.list("/") == ["secret.md"]
    assert len(os.listdir(root)) == 13  # one folder per tenant: none shared, none merged by case


def test_disk_store_written_before_names_were_escaped_stays_readable(tmp_path: Path) -> None:
    """Folders named the old way (``Acme``, ``a.b``: kept as given) move to their new name on
    first use; a folder whose old name differs only by case (``acme``) stays its own tenant's."""
    from vecmem.knowledge_fs import DiskKnowledgeStore

    (tmp_path / "Acme" / "notes").mkdir(parents=True)
    (tmp_path / "Acme" / "notes" / "a.md").write_text("upper")
    (tmp_path / "a.b").mkdir()
    (tmp_path / "a.b" / "x").write_text("dotted")
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "b.md").write_text("lower")
    upper = DiskKnowledgeStore(tmp_path, tenant="Acme")
    assert upper.read("/notes/a.md") == b"upper" and upper.list("/") == ["notes/"]
    assert DiskKnowledgeStore(tmp_path, tenant="a.b").read("/x") == b"dotted"
    lower = DiskKnowledgeStore(tmp_path, tenant="acme")
    assert lower.list("/") == ["b.md"]
    assert sorted(os.listdir(tmp_path)) == ["%41cme", "a%2Eb", "acme"]
    assert DiskKnowledgeStore(tmp_path, tenant="Acme").read("/notes/a.md") == b"upper"


def test_disk_refuses_a_tenant_folder_that_is_a_link_out_of_the_root(tmp_path: Path) -> None:
    from vecmem.errors import ScopeEscapeError
    from vecmem.knowledge_fs import DiskKnowledgeStore

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "t")
    with pytest.raises(ScopeEscapeError, match="outside"):
        DiskKnowledgeStore(tmp_path / "root", tenant="t")


def test_disk_on_change_delivers_real_events(tmp_path: Path) -> None:
    from vecmem.knowledge_fs import DiskKnowledgeStore

    kb = DiskKnowledgeStore(tmp_path, tenant="t")
    other = DiskKnowledgeStore(tmp_path, tenant="other")
    events: list[ChangeEvent] = []
    with kb.on_change(events.append) as sub:
        assert sub.polling is False
        time.sleep(0.2)
        kb.write("/a/b.md", "x")
        assert _wait_for(events, ChangeEvent("written", "/a/b.md"))
        kb.append("/log", "1")
        assert _wait_for(events, ChangeEvent("written", "/log"))
        (tmp_path / "t" / "a" / "outside-edit.txt").write_text("by another program")
        assert _wait_for(events, ChangeEvent("written", "/a/outside-edit.txt"))
        kb.delete("/a/b.md")
        assert _wait_for(events, ChangeEvent("deleted", "/a/b.md"))
        other.write("/not-mine", "x")
        time.sleep(0.3)
    assert all(e.path != "/not-mine" and ".vecmem-tmp" not in e.path for e in events)
    n = len(events)
    kb.write("/after-close", "x")
    time.sleep(0.3)
    assert len(events) == n


def test_other_backends_subscribe_by_polling() -> None:
    kb = MemoryKnowledgeStore()
    calls: list[ChangeEvent] = []
    with kb.on_change(calls.append) as sub:
        kb.write("/x", "1")
    assert sub.polling is True and calls == [] and sub.closed


# -- event log ------------------------------------------------------------------------------
def test_event_log_keeps_unknown_types_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    foreign = {
        "type": "x-embedding-updated",
        "path": "/a",
        "at": 5.0,
        "vector": [0.1, 0.2],
        "meta": {"model": "m"},
    }
    known_plus = {"type": "write", "path": "/a", "at": 6.0, "text": "hi", "author": "bot"}
    path.write_text(json.dumps(foreign) + "\n" + json.dumps(known_plus) + "\n")
    log = EventLog(path)
    events = log.read()
    assert [e.type for e in events] == ["x-embedding-updated", "write"]
    assert events[0].to_dict() == foreign and events[1].to_dict() == known_plus
    copy = EventLog(tmp_path / "copy.jsonl")
    for e in events:
        copy.append(e)
    assert [json.loads(line) for line in (tmp_path / "copy.jsonl").read_text().splitlines()] == [
        foreign,
        known_plus,
    ]
    log.rewrite(events)
    assert [e.to_dict() for e in log.read()] == [foreign, known_plus]


def test_event_log_torn_last_line_and_corrupt_lines(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_text('{"type":"write","path":"/a","text":"1"}\n{"type":"wri')
    assert [e.type for e in EventLog(path).read()] == ["write"]
    path.write_text('{"type":"write","path":"/a","text":"1"}\nnot json\n')
    with pytest.raises(DocumentReadError, match=":2:"):
        EventLog(path).read()
    path.write_text('{"no_type": 1}\n')
    with pytest.raises(DocumentReadError):
        EventLog(path).read()
    assert EventLog(tmp_path / "missing.jsonl").read() == []


def test_logged_store_rebuilds_by_replay(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log.jsonl")
    kb = LoggedKnowledgeStore(MemoryKnowledgeStore(), log)
    kb.write("/a/1", "one")
    assert kb.append("/a/1", b"\xff\x00") == 3
    kb.write("/b/2", "two")
    assert kb.delete("/b", recursive=True) and not kb.delete("/nothing")
    rebuilt = MemoryKnowledgeStore()
    assert log.replay(rebuilt) == 4
    assert rebuilt.read("/a/1") == b"one\xff\x00" and rebuilt.list("/") == ["a/"]
    assert "data_b64" in (tmp_path / "log.jsonl").read_text()


def test_locked_store_with_a_state_lock_across_stores(tmp_path: Path) -> None:
    from vecmem.state import SQLStateStore, StateLock

    state = SQLStateStore(f"sqlite:///{tmp_path}/locks.db")
    kb = FILE_STORES.create(f"sqlite:///{tmp_path}/kb.db")
    writers = [LockedKnowledgeStore(kb, StateLock(state, poll=0.001)) for _ in range(3)]

    def work(w: LockedKnowledgeStore) -> None:
        for _ in range(5):
            w.append("/log", "x")

    threads = [threading.Thread(target=work, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert kb.read("/log") == b"x" * 15
    assert state.keys("vecmem.locks") == []
    kb.close()
    state.close()
