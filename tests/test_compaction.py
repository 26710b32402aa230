"""Compaction of the embedded store (issue 16, part 5): dead vector rows reclaimed and the change
log emptied, online, automatically past a threshold, from Python and the CLI. Kills during a
compaction are in tests/test_faults.py."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vecmem import VectorMemory
from vecmem.cli import main as cli
from vecmem.embedders import CachedEmbedder, HashingEmbedder
from vecmem.errors import ConfigurationError, IntegrityError
from vecmem.stores import _compact
from vecmem.stores.embedded import EmbeddedStore
from vecmem.stores.memory import MemoryStore

DIM = 64
ctx = multiprocessing.get_context("fork")


def text(i: int, version: int = 0) -> str:
    return f"note{i}v{version} about topic{i % 13} with words w{i * 7 % 101} and x{i}y{version}"


def memory(path: Path, **options: object) -> VectorMemory:
    return VectorMemory(
        EmbeddedStore(path, lock_timeout=60, **options),  # type: ignore[arg-type]
        embedder=HashingEmbedder(DIM),
    )


def meta(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path / "store.sqlite")
    try:
        return dict(db.execute("SELECT key, value FROM meta").fetchall())
    finally:
        db.close()


def log_rows(path: Path) -> int:
    db = sqlite3.connect(path / "store.sqlite")
    try:
        return int(db.execute("SELECT count(*) FROM log").fetchone()[0])
    finally:
        db.close()


def assert_sound(path: Path, expected: dict[str, str]) -> None:
    """A fresh open holds exactly ``expected`` (id -> text), every vector equals its text's
    embedding, and each document is found first by its own text in every mode."""
    with memory(path) as m:
        m.space  # noqa: B018
        chunks = m.store.all_chunks()
        assert {c.document_id: c.text for c in chunks} == expected
        vectors = m.store.get_vectors([c.id for c in chunks])
        fresh = CachedEmbedder(HashingEmbedder(DIM)).embed([c.text for c in chunks])
        assert not np.any(vectors != fresh)
        for c in chunks[:: max(1, len(chunks) // 60)]:
            for mode in ("vector", "keyword", "hybrid"):
                assert m.search(c.text, k=1, mode=mode)[0].document_id == c.document_id, mode


def filled(path: Path, n: int) -> dict[str, str]:
    docs = {f"d{i}": text(i) for i in range(n)}
    with memory(path, compact_at=None) as m:
        m.add(list(docs.values()), ids=list(docs))
    return docs


def test_compaction_reclaims_dead_rows_and_the_log(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    docs = filled(path, 2000)
    with memory(path, compact_at=None) as m:
        m.delete([f"d{i}" for i in range(0, 2000, 2)])
        rewritten = {f"d{i}": text(i, 1) for i in range(1, 200, 2)}
        m.add(list(rewritten.values()), ids=list(rewritten))
    expected = {d: t for d, t in docs.items() if int(d[1:]) % 2} | rewritten
    vectors_before = (path / "vectors.f32").stat().st_size
    sqlite_before = (path / "store.sqlite").stat().st_size
    assert log_rows(path) > 3000

    report = _compact.compact(path)

    assert report is not None
    assert (report.live, report.rows_before, report.rows_after) == (1000, 2100, 1000)
    assert report.log_before > 3000 and log_rows(path) == 0
    assert not (path / "vectors.f32").exists()
    assert (path / "vectors.1.f32").stat().st_size == 1000 * DIM * 4 < vectors_before / 2
    assert (path / "store.sqlite").stat().st_size < sqlite_before  # VACUUM gave pages back
    assert report.bytes_after <= 0.55 * report.bytes_before
    assert meta(path)["format"] == "3" and meta(path)["generation"] == "1"
    assert_sound(path, expected)
    with memory(path) as m:  # writes go on in the new file
        m.add([text(5000)], ids=["new"])
    assert_sound(path, expected | {"new": text(5000)})
    again = _compact.compact(path)  # nothing dead: nothing rewritten, one log entry dropped
    assert again is not None and again.rows_after == again.live == 1001


def test_a_store_that_compacted_is_reloaded_by_every_open_process(tmp_path: Path) -> None:
    """A reader opened before the compaction sees the renumbered store on its next call (the
    slots and file changed under it), and its own writes land right."""
    path = tmp_path / "kb"
    docs = filled(path, 600)
    reader = memory(path, compact_at=None)
    assert reader.search(text(3), k=1, mode="vector")[0].document_id == "d3"
    with memory(path, compact_at=None) as other:
        other.delete([f"d{i}" for i in range(0, 600, 3)])
        other.store.compact()  # type: ignore[attr-defined]
    expected = {d: t for d, t in docs.items() if int(d[1:]) % 3}
    for i in (1, 2, 598):
        hit = reader.search(text(i), k=1, mode="vector")[0]
        assert hit.document_id == f"d{i}" and hit.text == text(i)
    assert reader.count() == len(expected)
    reader.add([text(9000)], ids=["mine"])
    reader.close()
    assert_sound(path, expected | {"mine": text(9000)})


def _writer(path: Path, seed: int, acks: Path, rounds: int) -> None:
    """Child: add and rewrite documents w*, deleting some; one JSON line per acknowledged write
    (its time, the texts written, the ids deleted)."""
    rng = random.Random(seed)
    m = memory(path, compact_at=None)
    mine: list[str] = []
    with open(acks, "a") as out:
        for j in range(rounds):
            batch = {f"w{seed}_{rng.randrange(60)}": text(10_000 + j, j) for _ in range(3)}
            m.add(list(batch.values()), ids=list(batch))
            gone = [d for d in rng.sample(mine, min(2, len(mine))) if d not in batch]
            if gone:
                m.delete(gone)
            mine = sorted((set(mine) | set(batch)) - set(gone))
            out.write(json.dumps({"t": time.time(), "add": batch, "del": gone}) + "\n")
            out.flush()
    m.close()
    os._exit(0)


def _reader(path: Path, stable: dict[str, str], out: Path, seconds: float) -> None:
    """Child: search the stable documents by their text until ``seconds`` pass; writes the
    times of good answers, or the first wrong one."""
    m = memory(path, compact_at=None)
    rng = random.Random(7)
    good: list[float] = []
    ids = sorted(stable)
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            d = rng.choice(ids)
            mode = rng.choice(["vector", "keyword", "hybrid"])
            hit = m.search(stable[d], k=1, mode=mode)[0]
            if hit.document_id != d or hit.text != stable[d]:
                out.write_text(json.dumps({"wrong": [d, mode, hit.document_id]}))
                os._exit(1)
            good.append(time.time())
        out.write_text(json.dumps({"good": good}))
    finally:
        m.close()
    os._exit(0)


def test_compaction_is_online_with_readers_and_a_writer(tmp_path: Path) -> None:
    """Compactions run again and again while a writer process writes and deletes, a reader
    process and two reader threads (on the compacting process's own store) search: every
    write is acknowledged and lands, every answer in between is right, some of both happened
    while a compaction ran, and at the end every live chunk is found with the right vector."""
    path = tmp_path / "kb"
    stable = filled(path, 3000)
    with memory(path, compact_at=None) as m:  # dead rows to reclaim
        m.delete([f"d{i}" for i in range(0, 3000, 2)])
    stable = {d: t for d, t in stable.items() if int(d[1:]) % 2}
    acks, seen = tmp_path / "acks", tmp_path / "seen"
    writer = ctx.Process(target=_writer, args=(path, 1, acks, 80))
    reader = ctx.Process(target=_reader, args=(path, stable, seen, 12.0))
    writer.start()
    reader.start()
    own = memory(path, compact_at=None)
    wrong: list[object] = []
    thread_hits: list[float] = []
    stop = threading.Event()

    def search_here() -> None:
        rng = random.Random(threading.get_ident())
        ids = sorted(stable)
        while not stop.is_set():
            d = rng.choice(ids)
            hit = own.search(stable[d], k=1, mode=rng.choice(["vector", "hybrid"]))[0]
            if hit.document_id != d:
                wrong.append((d, hit.document_id))
            thread_hits.append(time.time())

    threads = [threading.Thread(target=search_here) for _ in range(2)]
    for t in threads:
        t.start()
    windows: list[tuple[float, float]] = []
    deadline = time.monotonic() + 60
    while writer.is_alive() and time.monotonic() < deadline:
        t0 = time.time()
        own.store.compact(vacuum=len(windows) % 2 == 0)  # type: ignore[attr-defined]
        windows.append((t0, time.time()))
    stop.set()
    for t in threads:
        t.join()
    writer.join(120)
    reader.join(120)
    own.close()
    assert writer.exitcode == 0 and reader.exitcode == 0, (writer.exitcode, seen.read_text())
    assert not wrong, wrong[:5]

    def during(times: list[float]) -> int:
        return sum(any(a <= x <= b for a, b in windows) for x in times)

    lines = [json.loads(x) for x in acks.read_text().splitlines()]
    assert len(lines) == 80 and len(windows) >= 3
    assert during([x["t"] for x in lines]) >= 1  # writes acknowledged mid-compaction
    assert during(json.loads(seen.read_text())["good"]) >= 1
    assert during(thread_hits) >= 1
    expected = dict(stable)
    for x in lines:
        expected.update(x["add"])
        for d in x["del"]:
            expected.pop(d, None)
    assert_sound(path, expected)
    assert int(meta(path)["generation"]) >= 3  # (a compaction with nothing dead is a no-op)


def test_the_store_compacts_itself_past_the_threshold(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    docs = filled(path, 400)
    m = memory(path, compact_at=0.25, compact_min_dead=50)
    m.delete([f"d{i}" for i in range(0, 60)])  # 15% dead: not yet
    time.sleep(0.5)
    assert "generation" not in meta(path)
    m.delete([f"d{i}" for i in range(60, 120)])  # 30% dead: a compaction starts beside
    deadline = time.monotonic() + 60
    while meta(path).get("generation") != "1" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert meta(path).get("generation") == "1"
    assert m.store.dead_rows() == 0  # type: ignore[attr-defined]  (reloaded on this call)
    m.close()
    assert_sound(path, {d: t for d, t in docs.items() if int(d[1:]) >= 120})


def test_the_threshold_can_be_turned_off_and_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    filled(path, 300)
    with memory(path, compact_at=None, compact_min_dead=1) as m:
        m.delete([f"d{i}" for i in range(250)])
        time.sleep(0.5)
        assert m.store.dead_rows() == 250  # type: ignore[attr-defined]
    assert "generation" not in meta(path)
    for bad in (0.0, 1.0, -0.5, 2):
        with pytest.raises(ConfigurationError, match="compact_at"):
            EmbeddedStore(path, compact_at=bad)


def test_compaction_keeps_the_hnsw_graph_and_rebuilds_it_afresh(tmp_path: Path) -> None:
    """Above ann_threshold the saved graph is renamed to the new slots and put in place with the
    switch: searches use HNSW at once (no exact-search period), every live document is found
    through it, the old slots' graph is never loaded. Its removed nodes are tombstones, so the
    next build beside the store starts afresh and the graph file shrinks."""
    path = tmp_path / "kb"
    docs = filled(path, 600)
    with memory(path, compact_at=None, ann_threshold=50) as m:
        m.space  # noqa: B018
        m.store.flush()  # type: ignore[attr-defined]
        full = (path / "ann.usearch").stat().st_size
        m.delete([f"d{i}" for i in range(0, 600, 2)])
        m.store.compact()  # type: ignore[attr-defined]
        info = json.loads((path / "ann.json").read_text())
        assert info["epoch"] == int(meta(path)["epoch"])
        assert (info["count"], info["upto"], info["dead"]) == (300, 300, 300)
        for i in range(1, 600, 24):  # the odd ones live, found through the renamed graph
            assert m.search(docs[f"d{i}"], k=1, mode="vector")[0].document_id == f"d{i}"
        store = m.store
        assert store._ann is not None and len(store._ann) == 300  # type: ignore[attr-defined]
        # the query above started a fresh build (tombstones past DEAD_SHARE): wait for it
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            info = json.loads((path / "ann.json").read_text())
            if info["dead"] == 0 and info["epoch"] == int(meta(path)["epoch"]):
                break
            time.sleep(0.2)
            m.search(docs["d1"], k=1)
        assert info["dead"] == 0 and info["count"] == 300
        assert (path / "ann.usearch").stat().st_size < 0.75 * full
        for i in range(1, 600, 24):
            assert m.search(docs[f"d{i}"], k=1, mode="vector")[0].document_id == f"d{i}"


def test_the_facade_compacts_and_brings_the_graph_up_to_date(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    docs = filled(path, 300)
    with memory(path, compact_at=None, ann_threshold=50, background=False) as m:
        m.delete([f"d{i}" for i in range(100)])
        m.compact()
        store = m.store
        assert store.dead_rows() == 0  # type: ignore[attr-defined]
        assert store._ann is not None and len(store._ann) == 200  # type: ignore[attr-defined]
        assert m.search(docs["d150"], k=1, mode="vector")[0].document_id == "d150"


def test_vecmem_compact_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kb"
    docs = filled(path, 300)
    with memory(path, compact_at=None) as m:
        m.delete([f"d{i}" for i in range(100)])
    assert cli(["--json", "compact", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["live"], report["rows_before"], report["rows_after"]) == (200, 300, 200)
    assert cli(["compact", str(path)]) == 0
    assert "200 live chunks" in capsys.readouterr().out
    assert cli(["compact", str(tmp_path / "nothing")]) == 2
    assert "not an embedded vecmem store" in capsys.readouterr().err
    assert_sound(path, {d: t for d, t in docs.items() if int(d[1:]) >= 100})


def test_compact_on_a_store_without_maintenance_is_a_typed_error() -> None:
    m = VectorMemory(MemoryStore(), embedder=HashingEmbedder(DIM))
    with pytest.raises(ConfigurationError, match="no maintenance"):
        m.compact()


def test_a_killed_compaction_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    docs = filled(path, 300)
    with memory(path, compact_at=None) as m:
        m.delete([f"d{i}" for i in range(150)])

    def die() -> None:
        os.environ[_compact.FAULT_ENV] = "compact-copied"
        _compact.compact(path)
        os._exit(0)

    child = ctx.Process(target=die)
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert (path / "vectors.1.f32").exists() and "vectors" not in meta(path)  # an orphan
    assert_sound(path, {d: t for d, t in docs.items() if int(d[1:]) >= 150})
    assert _compact.compact(path) is not None
    assert sorted(p.name for p in path.glob("vectors*")) == ["vectors.1.f32"]
    assert_sound(path, {d: t for d, t in docs.items() if int(d[1:]) >= 150})


def test_a_store_opened_while_another_process_compacts_reads_the_new_file(
    tmp_path: Path,
) -> None:
    """A compaction that commits between connect() opening the vector file and its first load
    (the write lock is released in between): the load reads the file the database names."""
    path = tmp_path / "kb"
    docs = filled(path, 300)
    with memory(path, compact_at=None) as m:
        m.delete([f"d{i}" for i in range(100)])
    store = EmbeddedStore(path, compact_at=None)
    first = store._sync

    def compacted_first(force: bool = False) -> None:
        store._sync = first  # type: ignore[method-assign]
        assert _compact.compact(path) is not None
        first(force)

    store._sync = compacted_first  # type: ignore[method-assign]
    with VectorMemory(store, embedder=HashingEmbedder(DIM)) as m:
        assert m.search(docs["d150"], k=1, mode="vector")[0].document_id == "d150"
        assert store._vf is not None and store._vf.path.name == "vectors.1.f32"
    assert_sound(path, {d: t for d, t in docs.items() if int(d[1:]) >= 100})


def test_repair_after_another_process_compacted(tmp_path: Path) -> None:
    """repair() on a store object loaded before another process compacted checks the file the
    database names now (not the old one it still holds open): nothing damaged, nothing lost."""
    path = tmp_path / "kb"
    docs = filled(path, 300)
    m = memory(path, compact_at=None)
    assert m.search(docs["d5"], k=1)[0].document_id == "d5"
    with memory(path, compact_at=None) as other:
        other.delete([f"d{i}" for i in range(100)])
        other.store.compact()  # type: ignore[attr-defined]
    report = m.repair()
    assert (report.damaged_ranges, report.reembedded) == (0, 0)
    assert m.search(docs["d150"], k=1, mode="vector")[0].document_id == "d150"
    m.close()
    assert_sound(path, {d: t for d, t in docs.items() if int(d[1:]) >= 100})


def _bytes(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(path.iterdir()) if f.suffix != ".lock"}


def test_a_store_without_whole_checksums_is_refused_unchanged(tmp_path: Path) -> None:
    """A format-1 store (no checksum records) and one whose records miss a range: rows without
    a record cannot be copied under a checked CRC, so the compaction refuses with IntegrityError
    (saying to open or repair it) and changes nothing, instead of dropping those vectors."""
    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parent / "fixtures" / "embedded_format1_shifted", old)
    before = _bytes(old)
    with pytest.raises(IntegrityError, match="format 1"):
        _compact.compact(old)
    assert cli(["compact", str(old)]) == 2
    assert _bytes(old) == before

    path = tmp_path / "kb"
    filled(path, 3000)  # several checksum ranges
    with memory(path, compact_at=None) as m:
        m.delete([f"d{i}" for i in range(0, 3000, 2)])
    db = sqlite3.connect(path / "store.sqlite")
    with db:
        db.execute("DELETE FROM ranges WHERE start = (SELECT max(start) FROM ranges)")
    db.close()
    before = _bytes(path)
    with pytest.raises(IntegrityError, match="repair"):
        _compact.compact(path)
    assert _bytes(path) == before and not list(path.glob("vectors.*.f32"))


def test_the_wal_file_does_not_keep_the_vacuums_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VACUUM writes the whole database through the WAL; with a reader holding a snapshot the
    final checkpoint cannot truncate it. Later writes cut it back to the limit
    (``journal_size_limit``), so the space the compaction freed is not kept in the WAL."""
    monkeypatch.setattr(_compact, "WAL_LIMIT", 256 * 1024)
    path = tmp_path / "kb"
    filled(path, 4000)
    with memory(path, compact_at=None) as m:
        m.delete([f"d{i}" for i in range(0, 4000, 2)])
    m = memory(path, compact_at=None)  # a process that keeps the store open throughout
    m.add([text(19_999)], ids=["before"])
    reader = sqlite3.connect(path / "store.sqlite")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM chunks").fetchone()  # a snapshot held open
    assert _compact.compact(path) is not None
    wal = path / "store.sqlite-wal"
    big = wal.stat().st_size
    assert big > 1024 * 1024  # the VACUUM's pages, not truncated under the reader
    reader.rollback()
    reader.close()
    with m:
        for i in range(3):
            m.add([text(20_000 + i)], ids=[f"after{i}"])
            m.store._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[attr-defined]
        # (checked while the store is open: the last connection to close deletes the WAL)
        assert wal.stat().st_size <= 256 * 1024 + 64 * 1024, (big, wal.stat().st_size)
