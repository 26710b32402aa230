"""A full disk outside the embedded vector store (issue 13 finding 2): the path-based disk
knowledge store appends whole records or nothing, and the SQLite-backed relational stores
say the disk is full with StorageFullError; both accept writes again once space is freed.
Also the ``vecmem repair`` command."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from _disks import fill, small_disk
from sqlalchemy import event

from vecmem.cli import main
from vecmem.db import Database
from vecmem.errors import StorageFullError
from vecmem.knowledge_fs.disk import DiskKnowledgeStore
from vecmem.state.sql import SQLStateStore

FIXTURES = Path(__file__).parent / "fixtures"


def test_an_append_that_hits_a_full_disk_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It left the first 64 KiB of a record in the file."""
    kb = DiskKnowledgeStore(tmp_path, tenant="acme")
    kb.append("/log.jsonl", b"first record\n")
    real = os.write
    calls = []

    def part_then_full(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data)[:65536])  # the first 64 KiB land...
        raise OSError(errno.ENOSPC, "No space left on device")  # ...then the disk is full

    monkeypatch.setattr(os, "write", part_then_full)
    with pytest.raises(StorageFullError, match="disk is full") as info:
        kb.append("/log.jsonl", b"x" * 200_000 + b"\n")
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    monkeypatch.setattr(os, "write", real)
    assert kb.read("/log.jsonl") == b"first record\n"
    assert kb.append("/log.jsonl", b"second record\n") == len(b"first record\n")
    assert kb.read("/log.jsonl") == b"first record\nsecond record\n"


def test_disk_knowledge_store_on_a_really_full_disk(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        kb = DiskKnowledgeStore(disk / "kb", tenant="acme")
        kb.append("/log.jsonl", b"first record\n")
        kb.write("/notes/a.md", "kept")
        filler = fill(disk)
        with pytest.raises(StorageFullError):
            kb.append("/log.jsonl", b"y" * 300_000)
        with pytest.raises(StorageFullError):
            kb.write("/notes/a.md", "z" * 300_000)
        assert kb.read("/log.jsonl") == b"first record\n"
        assert kb.read("/notes/a.md") == b"kept"
        assert kb.list("/notes") == ["a.md"]  # no temporary file left behind
        filler.unlink()
        kb.append("/log.jsonl", b"second record\n")
        assert kb.read("/log.jsonl") == b"first record\nsecond record\n"


def test_sqlite_full_in_a_relational_store_is_storage_full(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'state.db'}")
    state = SQLStateStore(db)
    state.set("s", "k", "v")
    limit = {"pages": 0}

    @event.listens_for(db.engine, "connect")
    def _cap(dbapi_conn: Any, _record: Any) -> None:  # the file cannot grow: SQLITE_FULL
        cur = dbapi_conn.cursor()
        pages = cur.execute("PRAGMA page_count").fetchone()[0]
        limit["pages"] = limit["pages"] or pages
        cur.execute(f"PRAGMA max_page_count = {limit['pages']}")
        cur.close()

    db.engine.dispose()
    with pytest.raises(StorageFullError, match="disk is full"):
        state.set("s", "big", "w" * 200_000)
    assert state.get("s", "k") == "v"
    limit["pages"] = 1 << 30
    db.engine.dispose()
    state.set("s", "big", "w" * 200_000)
    assert state.get("s", "big") == "w" * 200_000
    db.close()


def test_vecmem_repair_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "kb"
    shutil.copytree(FIXTURES / "embedded_format1_shifted", path)
    assert main(["--store", str(path), "search", "quantum physics", "--mode", "vector"]) == 2
    err = capsys.readouterr().err
    assert "vecmem: error:" in err and f"vecmem repair {path}" in err
    assert main(["repair", str(path)]) == 0
    assert "4 chunks embedded again (2 had a wrong vector)" in capsys.readouterr().out
    assert (
        main(
            [
                "--store",
                str(path),
                "--json",
                "search",
                "quantum physics lecture notes",
                "--mode",
                "vector",
                "--k",
                "1",
            ]
        )
        == 0
    )
    assert '"document_id": "c"' in capsys.readouterr().out


def test_an_embedding_cache_that_cannot_grow_does_not_fail_the_add(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The cache is a cache: vectors it cannot store are logged, and the add succeeds."""
    from vecmem import VectorMemory
    from vecmem.embedders import EmbeddingCache, HashingEmbedder

    cache = EmbeddingCache(tmp_path / "cache.sqlite")
    with VectorMemory(str(tmp_path / "kb"), embedder=HashingEmbedder(16), cache=cache) as m:
        m.add(["the first note"], ids=["a"])
        pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
        cache._db.execute(f"PRAGMA max_page_count = {pages}")  # SQLITE_FULL from now on
        m.add([f"note number {i}" for i in range(300)])
        assert m.count() == 301
    assert "embeddings not cached" in caplog.text and "disk is full" in caplog.text


def test_a_damaged_embedding_cache_is_an_integrity_error_naming_it(tmp_path: Path) -> None:
    from vecmem.embedders import EmbeddingCache
    from vecmem.errors import IntegrityError

    (tmp_path / "cache.sqlite").write_bytes(os.urandom(4096))
    with pytest.raises(IntegrityError, match="delete .*cache.sqlite to start a new one"):
        EmbeddingCache(tmp_path / "cache.sqlite")


def test_an_event_log_append_is_whole_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk left part of a line, and the next event ran into it: every later read
    failed on that line. A line torn by a crash is dropped before the next append too."""
    from vecmem.knowledge_fs.events import Event, EventLog

    log = EventLog(tmp_path / "events.jsonl")
    log.append(Event("write", "/a.md", b"first"))
    real = os.write
    calls = []

    def part_then_full(fd: int, data: Any) -> int:
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data)[:10])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", part_then_full)
    with pytest.raises(StorageFullError, match="disk is full"):
        log.append(Event("write", "/b.md", b"second" * 1000))
    monkeypatch.setattr(os, "write", real)
    with open(tmp_path / "events.jsonl", "ab") as f:  # a crash in the middle of a line
        f.write(b'{"type": "write", "pa')
    log.append(Event("write", "/c.md", b"third"))
    assert [(e.type, e.path) for e in log.read()] == [("write", "/a.md"), ("write", "/c.md")]
