"""The standing fault-injection suite of the embedded store (issue 13).

Writers are killed with SIGKILL at every step of a write (deterministic points through the
store's ``_fault`` hook, half-written vector bytes, and a seeded random schedule), graph builds
(child processes beside the store) are killed at every step of theirs and their writer killed
while they run, writes meet
an injected full disk (ENOSPC from the vector file, SQLITE_FULL from the database, a graph
that cannot be saved), and several processes write, read, open and close one store at once.
Compactions (child processes) are killed at every step of theirs and on a random schedule
while a writer, itself killed at random, writes beside them.
After each fault the store is opened afresh and checked by :func:`check`: every acknowledged
document is there and whole (all its chunks, its latest acknowledged text; an interrupted write
is there entirely or not at all), every stored vector equals the embedding of its text, every
document is found first by its own text in vector, keyword and hybrid search, and a new write
succeeds. Each test adds its counts to ``TOTALS``; ``-s`` prints them (see BENCHMARKS.md).
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import random
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecmem import VectorMemory
from vecmem.chunking import RecursiveSplitter
from vecmem.embedders import CachedEmbedder, HashingEmbedder
from vecmem.errors import StorageFullError
from vecmem.stores import _compact, _graph, embedded
from vecmem.stores.embedded import EmbeddedStore


def _tqdm_lock_per_process() -> None:
    """tqdm guards its bars (which the facade creates even when disabled) with a
    multiprocessing lock that forked children share, and a monitor thread takes it now and
    then: a child SIGKILLed while holding it blocked this process for good (seen: the random
    schedule hung, both threads waiting on the lock). A per-process lock, no monitor."""
    import tqdm.auto
    import tqdm.std

    for cls in {tqdm.std.tqdm, tqdm.auto.tqdm}:
        if cls.monitor is not None:
            cls.monitor.exit()
            cls.monitor = None
        cls.monitor_interval = 0
        cls.set_lock(threading.RLock())


_tqdm_lock_per_process()
DIM = 96
VOCAB = [
    f"{a}{b}"
    for a in ("bar", "cor", "dun", "fel", "gor", "hal", "jin", "kol")
    for b in ("ax", "eb", "ic", "od", "ul", "ym", "esh", "orn")
]
CHUNKER = RecursiveSplitter(1000, 100)  # the facade's default
TOTALS: Counter[str] = Counter()
ctx = multiprocessing.get_context("fork")


def text(doc: str, version: int = 0, long: bool = False) -> str:
    """A document whose words no other document has (``doc``), plus shared vocabulary; long
    ones span several chunks (the chunker cuts at 1,000 characters)."""
    rng = random.Random(f"{doc}/{version}")
    words = [f"{doc}w{version}", f"q{version}{doc}"] + rng.sample(VOCAB, 6)
    if long:
        words += [f"{doc}p{i} " + " ".join(rng.sample(VOCAB, 12)) for i in range(30)]
    return " ".join(words)


def memory(path: Path, *, ann_threshold: int = 20_000) -> VectorMemory:
    return VectorMemory(
        EmbeddedStore(path, ann_threshold=ann_threshold, lock_timeout=60),
        embedder=HashingEmbedder(DIM),
    )


def check(
    path: Path, acked: dict[str, str], pending: list[dict[str, str]] = (), *, graph: bool = False
) -> None:
    """Assert the invariants of the module docstring. ``acked``: the text of each document
    whose write returned; ``pending``: writes that may or may not have committed (each as a
    whole). ``graph``: also bring the HNSW graph up to date (built or extended from the
    committed rows, whatever a killed build left) and find every document through it."""
    TOTALS["checks"] += 1
    if graph:
        with VectorMemory(
            EmbeddedStore(path, ann_threshold=1, background=False, lock_timeout=60),
            embedder=HashingEmbedder(DIM),
        ) as m:
            m.space  # noqa: B018  (open)
            store = m.store
            store.flush(timeout=120)  # type: ignore[attr-defined]
            live = store.count()
            graph = store._ann  # type: ignore[attr-defined]
            assert store._ann_upto == store._committed  # type: ignore[attr-defined]
            assert len(graph) == live
            for c in store.all_chunks():
                if c.position == 0:
                    assert m.search(c.text, k=1, mode="vector")[0].document_id == c.document_id
                    TOTALS["searches through a rebuilt graph"] += 1
    with memory(path) as m:
        m.space  # noqa: B018  (open)
        chunks = m.store.all_chunks()
        docs: dict[str, list[Any]] = {}
        for c in chunks:
            docs.setdefault(c.document_id, []).append(c)
        stored = {
            d: [c.text for c in sorted(cs, key=lambda c: c.position)] for d, cs in docs.items()
        }
        expected = dict(acked)
        for write in pending:  # all of it or none of it
            landed = [d for d, t in write.items() if _same(stored.get(d), t)]
            if landed:
                assert len(landed) == len(write), f"write half applied: {landed} of {write}"
                expected.update(write)
        lost = [d for d, t in expected.items() if not _same(stored.get(d), t)]
        TOTALS["lost"] += len(lost)
        assert not lost, f"acknowledged documents lost or changed: {lost}"
        assert set(stored) == set(expected), set(stored) ^ set(expected)
        assert sorted(c.position for cs in docs.values() for c in cs) == sorted(
            i for cs in docs.values() for i in range(len(cs))
        )  # no chunk missing in between
        vectors = m.store.get_vectors([c.id for c in chunks])
        fresh = CachedEmbedder(HashingEmbedder(DIM)).embed([c.text for c in chunks])
        wrong = int(np.sum(np.any(vectors != fresh, axis=1)))
        TOTALS["vectors checked"] += len(chunks)
        TOTALS["wrong vectors"] += wrong
        assert wrong == 0
        for d, cs in docs.items():
            first = min(cs, key=lambda c: c.position).text
            for mode in ("vector", "keyword", "hybrid"):
                hits = m.search(first, k=1, mode=mode)
                assert hits and hits[0].document_id == d, (d, mode, hits[:1])
                TOTALS["searches"] += 1
        m.add([text("resume")], ids=["resume"])  # writes resume
        assert m.search(text("resume"), k=1, mode="vector")[0].document_id == "resume"
        m.delete(["resume"])


def seeded(path: Path, *, ann_threshold: int = 20_000) -> dict[str, str]:
    """A store holding 24 documents to start from (BM25 needs a few documents to rank by)."""
    base = {f"base{i}": text(f"base{i}", long=i % 8 == 0) for i in range(24)}
    with memory(path, ann_threshold=ann_threshold) as m:
        m.add(list(base.values()), ids=list(base))
    return base


def _same(stored: list[str] | None, expected: str) -> bool:
    """Whole: exactly the chunks the facade makes of the text."""
    return stored == (CHUNKER.split(expected) or [expected.strip()])


# ----------------------------------------------------------------------------- kill -9
def plan(seed: int, writes: int, start: int = 0) -> list[dict[str, str]]:
    """A seeded run of writes: new documents (some long), and rewrites of earlier ones."""
    rng = random.Random(seed)
    out: list[dict[str, str]] = []
    made: list[str] = []
    for j in range(writes):
        batch: dict[str, str] = {}
        for _ in range(rng.randint(1, 4)):
            if made and rng.random() < 0.3:
                doc = rng.choice(made)
                batch[doc] = text(doc, version=j + 1)
            else:
                doc = f"d{seed}x{start + len(made)}"
                made.append(doc)
                batch[doc] = text(doc, long=rng.random() < 0.25)
        out.append(batch)
    return out


def _writer(
    path: Path,
    writes: list[dict[str, str]],
    acks: Path,
    kill_at: tuple[int, str],
    ann_threshold: int,
    build_fault: str | None = None,
) -> None:
    """Child: apply ``writes`` in order, appending one line to ``acks`` after each returns,
    and kill itself with SIGKILL at step ``kill_at[1]`` of write ``kill_at[0]`` (-1: close).
    ``build_fault``: the graph builds it starts kill themselves at that step; it waits for
    the last one and records how it ended beside ``acks`` (suffix .builder)."""
    state = {"write": -1}
    if build_fault:
        os.environ[_graph.FAULT_ENV] = build_fault

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def hook(point: str) -> None:
        if (state["write"], point) == kill_at:
            die()

    embedded._fault = hook
    if kill_at[1] == "half-vectors":
        real = os.pwrite

        def pwrite(fd: int, data: Any, offset: int) -> int:
            if state["write"] == kill_at[0]:
                real(fd, bytes(data)[: len(data) // 2], offset)
                die()
            return real(fd, data, offset)

        os.pwrite = pwrite
    m = memory(path, ann_threshold=ann_threshold)
    with open(acks, "a") as out:
        for j, batch in enumerate(writes):
            state["write"] = j
            m.add(list(batch.values()), ids=list(batch))
            out.write(f"{j}\n")
            out.flush()
    state["write"] = -1
    builder = m.store._builder  # type: ignore[attr-defined]
    if build_fault and builder is not None:
        builder.wait(60)
        acks.with_suffix(".builder").write_text(str(builder.returncode))
    m.close()
    os._exit(0)


def _run(
    path: Path,
    writes: list[dict[str, str]],
    kill_at: tuple[int, str],
    acked: dict[str, str],
    *,
    ann_threshold: int = 20_000,
    after: float | None = None,
    build_fault: str | None = None,
) -> None:
    """Run a writer child, kill it (by its hook, or after ``after`` seconds), then check."""
    acks = path.parent / f"{path.name}.acks"
    acks.unlink(missing_ok=True)
    child = ctx.Process(
        target=_writer, args=(path, writes, acks, kill_at, ann_threshold, build_fault)
    )
    child.start()
    if after is not None:
        child.join(after)
        if child.exitcode is None:
            os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    child.join(120)
    TOTALS["trials"] += 1
    killed = child.exitcode == -signal.SIGKILL
    TOTALS["kills"] += killed
    done = (
        [int(line) for line in acks.read_text().splitlines() if line.strip()]
        if acks.exists()
        else []
    )
    assert done == list(range(len(done)))
    for j in done:
        acked.update(writes[j])
    pending = writes[len(done) : len(done) + 1] if killed else []
    check(path, acked, pending, graph=ann_threshold < 20_000)
    for write in pending:  # whichever way it went, the next trial expects what is stored
        with memory(path) as m:
            if all(_same([c.text for c in m.get(d)], t) for d, t in write.items()):
                acked.update(write)


POINTS = ["vectors", "half-vectors", "commit", "committed"]


def test_kill_at_every_step_of_a_write(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    acked = seeded(path)
    for n, point in enumerate(POINTS):
        for j in (0, 2):
            writes = plan(seed=100 + 10 * n + j, writes=4, start=0)
            _run(path, writes, (j, point), acked)
    assert TOTALS["kills"] >= 8


def test_kill_at_every_step_with_the_hnsw_graph(tmp_path: Path) -> None:
    """The same with the graph in play: builds start beside the store as writes cross the
    threshold and grow the tail; the writer is also killed just after starting one (the build
    goes on alone). After each, the graph is brought up to date from the committed rows and
    every document is found through it."""
    path = tmp_path / "kb"
    acked = seeded(path)
    for n, point in enumerate([*POINTS, "build-started"]):
        writes = plan(seed=200 + n, writes=3)
        _run(path, writes, (1, point), acked, ann_threshold=4)


def test_kill_a_graph_build_at_every_step(tmp_path: Path) -> None:
    """kill -9 of the build process after it read the rows, with the graph in its temporary
    file, and between its two renames (graph in place, ann.json not yet): nothing committed
    is lost, no torn graph is used, and the next build extends or rebuilds it."""
    path = tmp_path / "kb"
    acked = seeded(path)
    killed = 0
    for n, point in enumerate(["graph-read", "graph-saved", "graph-replaced"] * 2):
        writes = plan(seed=250 + n, writes=3)
        _run(path, writes, (-2, "never"), acked, ann_threshold=4, build_fault=point)
        rc = path.parent / f"{path.name}.builder"
        if rc.exists() and rc.read_text() == str(-signal.SIGKILL):
            killed += 1
            TOTALS["builds killed"] += 1
        rc.unlink(missing_ok=True)
    assert killed >= 3


def test_kill_on_a_seeded_random_schedule(tmp_path: Path) -> None:
    rng = random.Random(1313)
    path = tmp_path / "kb"
    acked = seeded(path)
    for trial in range(10):
        writes = plan(seed=300 + trial, writes=60)
        _run(
            path,
            writes,
            (-2, "never"),
            acked,
            ann_threshold=rng.choice([8, 20_000]),
            after=rng.uniform(0.05, 0.8),
        )


# ----------------------------------------------------------------------------- compaction
COMPACT_POINTS = ["compact-copied", "compact-commit", "compact-committed", "compact-vacuum"]


def _compactor(path: Path, fault: str | None, rounds: int) -> None:
    """Child: compact the store ``rounds`` times (killing itself at ``fault``)."""
    if fault:
        os.environ[_compact.FAULT_ENV] = fault
    for _ in range(rounds):
        _compact.compact(path, lock_timeout=60)
    os._exit(0)


def _churn(path: Path, acked: dict[str, str], seed: int) -> None:
    """Rewrite and delete some documents (dead rows for a compaction to reclaim)."""
    rng = random.Random(seed)
    with memory(path) as m:
        for batch in plan(seed=seed, writes=5):
            m.add(list(batch.values()), ids=list(batch))
            acked.update(batch)
        doomed = rng.sample(sorted(d for d in acked if not d.startswith("base")), 3)
        m.delete(doomed)
        for d in doomed:
            del acked[d]


def _generation(path: Path) -> int:
    db = sqlite3.connect(path / "store.sqlite")
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0
    finally:
        db.close()


def test_kill_a_compaction_at_every_step(tmp_path: Path) -> None:
    """kill -9 of a compaction with the new file written, just before and just after its
    commit, and before VACUUM (twice each, the second time with the HNSW graph checked): the
    store opens on whichever file its database names, every acknowledged document and vector
    is there (every range's CRC is checked on the load), and the next compaction cleans up."""
    path = tmp_path / "kb"
    acked = seeded(path)
    for n, point in enumerate(COMPACT_POINTS * 2):
        _churn(path, acked, seed=700 + n)
        before = _generation(path)
        child = ctx.Process(target=_compactor, args=(path, point, 1))
        child.start()
        child.join(120)
        assert child.exitcode == -signal.SIGKILL, (point, child.exitcode)
        TOTALS["trials"] += 1
        TOTALS["kills"] += 1
        TOTALS["compactions killed"] += 1
        assert _generation(path) == before + (
            point != "compact-copied" and point != "compact-commit"
        )
        check(path, acked, graph=n >= len(COMPACT_POINTS))
    report = _compact.compact(path)  # a whole one after all that: one vector file left
    assert report is not None and report.rows_after == report.live
    assert [p.name for p in path.glob("vectors*.f32")] == [f"vectors.{_generation(path)}.f32"]
    check(path, acked)


def test_kill_compactions_and_a_writer_on_a_random_schedule(tmp_path: Path) -> None:
    """A writer child and a compacting child run together; each is killed after a seeded random
    delay (or finishes). Every write acknowledged before the kill is there, the interrupted one
    entirely or not at all, and no vector is wrong."""
    rng = random.Random(1616)
    path = tmp_path / "kb"
    acked = seeded(path)
    compacted = 0
    for trial in range(8):
        writes = plan(seed=800 + trial, writes=40)
        acks = tmp_path / f"acks{trial}"
        writer = ctx.Process(target=_writer, args=(path, writes, acks, (-2, "never"), 20_000))
        compactor = ctx.Process(target=_compactor, args=(path, None, 50))
        before = _generation(path)
        writer.start()
        compactor.start()
        stop = {writer: rng.uniform(0.1, 1.5), compactor: rng.uniform(0.05, 1.5)}
        t0 = time.monotonic()
        for p in sorted(stop, key=stop.__getitem__):
            p.join(max(0.0, stop[p] - (time.monotonic() - t0)))
            if p.exitcode is None:
                os.kill(p.pid, signal.SIGKILL)  # type: ignore[arg-type]
            p.join(120)
        TOTALS["trials"] += 1
        killed = writer.exitcode == -signal.SIGKILL
        TOTALS["kills"] += killed + (compactor.exitcode == -signal.SIGKILL)
        TOTALS["compactions killed"] += compactor.exitcode == -signal.SIGKILL
        compacted += _generation(path) - before
        done = [int(x) for x in acks.read_text().splitlines()] if acks.exists() else []
        for j in done:
            acked.update(writes[j])
        pending = writes[len(done) : len(done) + 1] if killed else []
        check(path, acked, pending)
        for write in pending:
            with memory(path) as m:
                if all(_same([c.text for c in m.get(d)], t) for d, t in write.items()):
                    acked.update(write)
    TOTALS["compactions"] += compacted
    assert compacted >= 3  # the compactor did run beside the writer


# ----------------------------------------------------------------------------- full disk
def test_a_full_disk_at_random_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC from the vector file (before any byte, or after part of them) and SQLITE_FULL
    from the database, in a seeded order: each write fails with StorageFullError, changes
    nothing, and the next one (space freed) succeeds."""
    rng = random.Random(2828)
    path = tmp_path / "kb"
    acked = seeded(path)
    m = memory(path, ann_threshold=6)
    real = os.pwrite
    for trial, batch in enumerate(plan(seed=400, writes=12)):
        kind = rng.choice(["enospc", "enospc-partial", "sqlite-full"])
        db = m.store._conn()  # type: ignore[attr-defined]
        if kind == "sqlite-full":
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
            batch = {**batch, f"big{trial}": text(f"big{trial}", long=True) * 4}
        else:

            def full(fd: int, data: Any, offset: int, partial: bool = kind != "enospc") -> int:
                if partial:
                    real(fd, bytes(data)[: max(1, len(data) // 3)], offset)
                raise OSError(errno.ENOSPC, "No space left on device")

            monkeypatch.setattr(os, "pwrite", full)
        TOTALS["disk-full faults"] += 1
        with pytest.raises(StorageFullError):
            m.add(list(batch.values()), ids=list(batch))
        monkeypatch.setattr(os, "pwrite", real)
        db.execute("PRAGMA max_page_count = 1073741823")
        check(path, acked)
        m.add(list(batch.values()), ids=list(batch))
        acked.update(batch)
        TOTALS["trials"] += 1
    m.close()
    check(path, acked)


def test_a_full_disk_during_a_compaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while the compaction writes its new vector file, then SQLITE_FULL in its switch
    transaction: StorageFullError each time, the store exactly as it was, no new file left
    taking space, and the compaction succeeds once there is room."""
    path = tmp_path / "kb"
    acked = seeded(path)
    _churn(path, acked, seed=950)
    real_pwrite, real_connect = os.pwrite, sqlite3.connect

    def full(fd: int, data: Any, offset: int) -> int:
        real_pwrite(fd, bytes(data)[: max(1, len(data) // 3)], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    def tight(*args: Any, **options: Any) -> sqlite3.Connection:
        db = real_connect(*args, **options)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db

    for module, attr, fake in ((os, "pwrite", full), (sqlite3, "connect", tight)):
        TOTALS["disk-full faults"] += 1
        monkeypatch.setattr(module, attr, fake)
        with pytest.raises(StorageFullError):
            _compact.compact(path)
        monkeypatch.undo()
        assert _generation(path) == 0 and not list(path.glob("vectors.*.f32"))
        check(path, acked)
        TOTALS["trials"] += 1
    report = _compact.compact(path)
    assert report is not None and report.rows_after == report.live and _generation(path) == 1
    check(path, acked)


def test_a_graph_that_cannot_be_saved_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from usearch.index import Index

    path = tmp_path / "kb"
    acked = seeded(path)
    writes = plan(seed=500, writes=3)
    m = memory(path, ann_threshold=2)
    m.store.background = False  # type: ignore[attr-defined]
    for batch in writes:
        m.add(list(batch.values()), ids=list(batch))
        acked.update(batch)

    def full(self: Any, path: Any = None, **_: Any) -> None:
        with open(path, "wb") as f:
            f.write(b"partial graph")
        raise RuntimeError("Failed to serialize into stream")

    monkeypatch.setattr(Index, "save", full)
    TOTALS["disk-full faults"] += 1
    with pytest.raises(embedded.VecmemError):
        m.store.flush()  # type: ignore[attr-defined]
    m.close()
    monkeypatch.undo()
    with pytest.raises(sqlite3.ProgrammingError):
        m.store._db.execute("SELECT 1")  # type: ignore[attr-defined]
    assert not list(path.glob("*.tmp"))
    TOTALS["trials"] += 1
    check(path, acked)


# ----------------------------------------------------------------------------- processes
_ROUNDS = [15, 400, 15, 15, 15]
"""Rounds of each process below; the victim (1) has far more writes than it can finish before
its 4th acknowledgement, so it is always killed mid-run (with 15 a quiet machine let it finish
first, and the test failed)."""


def _busy(path: Path, role: str, seed: int, acks: Path, rounds: int) -> None:
    """Child: a writer (acknowledging each write), a reader (each document it sees is found by
    its own text), or an opener that opens, reads and closes again and again."""
    code = 1
    try:
        if role == "writer":
            writes = plan(seed=seed, writes=rounds)
            m = None
            with open(acks, "a") as out:
                for j, batch in enumerate(writes):
                    m = m or memory(path, ann_threshold=12)
                    m.add(list(batch.values()), ids=list(batch))
                    out.write(f"{j}\n")
                    out.flush()
                    if j % 5 == 4:  # close (saving the graph) and open again
                        m.close()
                        m = None
            if m is not None:
                m.close()
        else:
            m = memory(path, ann_threshold=12)
            for i in range(rounds):
                if role == "opener":
                    m.close()
                    m = memory(path, ann_threshold=12)
                seen = m.store.all_chunks() if m.count() else []
                for c in seen[i % 7 :: 7][:3]:
                    hits = m.search(c.text, k=1, mode=["vector", "keyword", "hybrid"][i % 3])
                    if hits[0].document_id != c.document_id:  # only if rewritten meanwhile
                        assert [x.text for x in m.store.get([c.id])] != [c.text], c.id
                        TOTALS["rewritten under a reader"] += 1
            m.close()
        code = 0
    except BaseException:  # noqa: BLE001
        import traceback

        traceback.print_exc()
    os._exit(code)


def test_processes_writing_reading_opening_and_closing_one_store(tmp_path: Path) -> None:
    path = tmp_path / "kb"
    base = seeded(path)
    roles = [("writer", 601), ("writer", 602), ("writer", 603), ("reader", 0), ("opener", 0)]
    procs = []
    for i, (role, seed) in enumerate(roles):
        acks = tmp_path / f"acks{i}"
        procs.append(
            (ctx.Process(target=_busy, args=(path, role, seed, acks, _ROUNDS[i])), seed, acks)
        )
    for p, _, _ in procs:
        p.start()
    victim, victim_acks = procs[1][0], procs[1][2]
    deadline = time.monotonic() + 120
    while (
        time.monotonic() < deadline
        and victim.exitcode is None
        and (not victim_acks.exists() or len(victim_acks.read_text().splitlines()) < 4)
    ):
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)  # type: ignore[arg-type]  (a writer dies on the way)
    for p, _, _ in procs:
        p.join(240)
    codes = [p.exitcode for p, _, _ in procs]
    assert codes[1] == -signal.SIGKILL and codes[:1] + codes[2:] == [0] * 4, codes
    TOTALS["trials"] += 1
    TOTALS["kills"] += codes[1] == -signal.SIGKILL
    TOTALS["processes"] += len(procs)
    acked, pending = dict(base), []
    for i, (p, seed, acks) in enumerate(procs[:3]):
        writes = plan(seed=seed, writes=_ROUNDS[i])
        done = [int(x) for x in acks.read_text().splitlines()] if acks.exists() else []
        for j in done:
            acked.update(writes[j])
        if p.exitcode != 0 and len(done) < len(writes):
            pending.append(writes[len(done)])
    check(path, acked, pending)


def test_zz_report_totals() -> None:
    """Print what the suite did (``pytest tests/test_faults.py -s``); counts add up over the
    tests of this module that ran before it."""
    print("\nfault suite:", dict(TOTALS))
    assert TOTALS["lost"] == 0 and TOTALS["wrong vectors"] == 0
