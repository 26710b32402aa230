"""Re-embedding database stores (vecmem.lifecycle.reembed through the kit's Switchable): the new
space is built under the collection's other name while searches answer from the old one, one
atomic commit switches the collection to it, the old space is dropped only when asked; kill -9
at any point leaves exactly one usable space, and readers see the old space or the new, never a
mix. Real PostgreSQL (fixture ``postgres_url``) and LanceDB on disk; stores without an atomic
switch refuse with a typed error before building anything."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from vecmem.cli import main
from vecmem.embedders import HashingEmbedder
from vecmem.errors import ConflictError, SpaceReplacedError, SwitchUnsupportedError
from vecmem.lifecycle.reembed import drop_old_space, reembed
from vecmem.memory import VectorMemory
from vecmem.stores import open_store
from vecmem.types import Chunk

ROOT = Path(__file__).resolve().parent.parent
N = 300
TEXTS = [f"note {i} about topic{i % 13} and subject{i % 7}" for i in range(N)]
_names = itertools.count()


def _pg(postgres_url: str) -> str:
    name = f"re_{os.getpid()}_{next(_names)}"
    return f"{postgres_url}{'&' if '?' in postgres_url else '?'}collection={name}"


def _chroma(chroma_url: str) -> str:
    host = chroma_url.split("://", 1)[1]
    return f"chroma+http://{host}?collection=re_{os.getpid()}_{next(_names)}"


@pytest.fixture(params=["pgvector", "lancedb", "duckdb", "chroma", "milvus"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "pgvector":
        u = _pg(request.getfixturevalue("postgres_url"))
    elif request.param == "chroma":
        u = _chroma(request.getfixturevalue("chroma_url"))
    elif request.param == "lancedb":
        u = f"lancedb://{tmp_path / 'lance'}?table=kb"
    elif request.param == "milvus":
        u = f"milvus://{tmp_path / 'm.db'}?collection=kb"
    else:
        u = f"duckdb://{tmp_path / 'kb.duckdb'}?table=kb"
    with VectorMemory(u, embedder=HashingEmbedder(32)) as mem:
        mem.add(TEXTS, metadata=[{"n": i} for i in range(N)])
    yield u
    s = open_store(u)
    s.drop()  # type: ignore[attr-defined]
    s.close()


def _state(url: str) -> tuple[str, int]:
    """The embedder and chunk count a store opened now finds."""
    s = open_store(url)
    try:
        space = s.stored_space()
        assert space is not None
        s.connect(space)
        return space.embedder, s.count()
    finally:
        s.close()


def _assert_new_space(url: str) -> None:
    """A store opened now answers with hashing-64 vectors of every chunk's own text."""
    s = open_store(url)
    try:
        space = s.stored_space()
        assert space is not None and space.embedder == "hashing-64"
        s.connect(space)
        ids = s.page_ids(limit=N + 1)  # type: ignore[attr-defined]
        assert len(ids) == N
        chunks = s.get(ids)
        want = HashingEmbedder(64).embed([c.text for c in chunks])
        np.testing.assert_allclose(s.get_vectors(ids), want, atol=1e-6)
    finally:
        s.close()
    with VectorMemory(url) as mem:
        assert mem.embedder.name == "hashing-64"
        assert "topic3" in mem.search("topic3 subject2", k=3)[0].text


class Searching:
    """Searches the store from a thread until stopped: one memory opened before (it must keep
    answering from the space it opened) and a fresh one opened for each round (the current
    space). Every answer must be whole: ``k`` hits, each from its own space's embedder."""

    def __init__(self, url: str) -> None:
        self.url, self.rounds, self.errors = url, 0, []  # type: ignore[var-annotated]
        self.held = VectorMemory(url)
        self.embedders: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _check(self, mem: VectorMemory) -> None:
        hits = mem.search("topic3 subject2", k=5)
        if len(hits) != 5 or not any("topic3" in h.text for h in hits):
            raise AssertionError(f"a broken answer from {mem.embedder.name}: {hits}")
        self.embedders.add(mem.embedder.name)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._check(self.held)
                with VectorMemory(self.url) as fresh:
                    self._check(fresh)
                self.rounds += 1
            except Exception as exc:  # noqa: BLE001 - every failure is reported by stop()
                self.errors.append(repr(exc))
                return

    def __enter__(self) -> Searching:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
        self.held.close()
        assert not self.errors, self.errors
        assert self.rounds > 0


def test_reembed_switches_and_keeps_old_until_asked(url: str) -> None:
    with Searching(url) as searching:
        report = reembed(url, HashingEmbedder(64), page=64)
        assert report.switched and report.embedded == N and report.skipped == 0
        _assert_new_space(url)
        assert searching.held.embedder.name == "hashing-32"  # its space, whole, to the end
        assert searching.held.search("topic3", k=1)
    assert "hashing-32" in searching.embedders
    assert report.old_space  # the old space, kept
    again = reembed(url, "hashing-64", drop_old=True)  # already switched: only drops
    assert not again.switched and again.old_space == ""
    assert not drop_old_space(url)
    _assert_new_space(url)


@pytest.mark.parametrize("kind", ["pgvector", "duckdb", "chroma", "milvus"])
def test_a_writer_of_the_old_space_is_refused_after_the_switch(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """pgvector and DuckDB mark the old space replaced in the switch's transaction, Chroma and
    Milvus right after their switch: a store opened before it cannot write there any more (the write
    would be lost), nothing is written."""
    if kind == "pgvector":
        u = _pg(request.getfixturevalue("postgres_url"))
    elif kind == "chroma":
        u = _chroma(request.getfixturevalue("chroma_url"))
    elif kind == "milvus":
        u = f"milvus://{tmp_path / 'w.db'}?collection=kb"
    else:
        u = f"duckdb://{tmp_path / 'w.duckdb'}?table=kb"
    with VectorMemory(u, embedder=HashingEmbedder(32)) as mem:
        mem.add(TEXTS[:50])
        reembed(u, "hashing-64")
        with pytest.raises(SpaceReplacedError, match="reopen"):
            mem.add(["written after the switch"])
        with pytest.raises(SpaceReplacedError):
            mem.store.delete(ids=[mem.store.page_ids(limit=1)[0]])  # type: ignore[attr-defined]
    assert _state(u) == ("hashing-64", 50)
    s = open_store(u)
    s.drop()  # type: ignore[attr-defined]  # both spaces and the pointer
    s.close()
    assert open_store(u).stored_space() is None


def test_writes_during_the_build_reach_the_new_space(url: str) -> None:
    """A chunk written to the old space while the new one is built is in the new one at the
    switch (the switch compares both spaces; what differs is copied first)."""
    from vecmem.lifecycle import reembed as r

    extra = Chunk.create("late", 0, "written during the build topic3", {})
    writer = open_store(url)
    space = writer.stored_space()
    assert space is not None
    writer.connect(space)
    calls = 0

    def fault(point: str) -> None:
        nonlocal calls
        if point == "reembed-page":
            calls += 1
            if calls == 5:  # the last page has been read: this chunk is not in the new space
                writer.upsert([extra], HashingEmbedder(32).embed([extra.text]))

    saved, r._fault = r._fault, fault
    try:
        report = reembed(url, "hashing-64", page=64)
    finally:
        r._fault = saved
        writer.close()
    assert report.switched
    assert _state(url) == ("hashing-64", N + 1)


_CHILD = """
import os, signal, sys
from vecmem.lifecycle import reembed as r
calls = 0
def fault(point):
    global calls
    if point == sys.argv[2]:
        calls += 1
        if calls == int(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)
r._fault = fault
r.reembed(sys.argv[1], "hashing-64", page=32)
"""


@pytest.mark.parametrize(
    ("point", "at"),
    [
        ("reembed-page", 3),
        ("reembed-switch", 1),
        ("reembed-switching", 1),
        ("reembed-switched", 1),
    ],
)
def test_kill_at_any_point_leaves_one_usable_space(url: str, point: str, at: int) -> None:
    # a DuckDB or Milvus Lite file is open in one process at a time: no searches from here
    # while the child runs
    local = url.startswith(("duckdb", "milvus"))
    if url.startswith("milvus"):  # pymilvus keeps this process's Milvus Lite server running
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_all()
    with Searching(url) if not local else contextlib.nullcontext():
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, url, point, str(at)],
            check=False,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=300,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
        embedder, count = _state(url)
        assert count == N  # whole, whichever space it is
        assert embedder == ("hashing-64" if point == "reembed-switched" else "hashing-32")
        report = reembed(url, "hashing-64", page=32)
    if point == "reembed-page":
        assert report.switched and 0 < report.skipped < N and report.embedded == N - report.skipped
    elif point in ("reembed-switch", "reembed-switching"):
        assert report.switched and report.embedded == 0 and report.skipped == N
    else:
        assert not report.switched
    _assert_new_space(url)
    assert report.old_space


def test_cli_reembed_a_url(url: str) -> None:
    assert main(["reembed", url, "--embedder", "hashing-64", "--drop-old", "--json"]) == 0
    _assert_new_space(url)
    s = open_store(url)
    assert s.old_space() is None  # type: ignore[attr-defined]
    s.close()


def test_a_switch_from_a_store_that_missed_another_switch_is_refused(url: str) -> None:
    if url.startswith(("duckdb", "milvus")):
        pytest.skip("one client at a time opens a DuckDB or Milvus Lite file")
    stale = open_store(url)
    try:
        space = stale.stored_space()
        assert space is not None
        stale.connect(space)
        assert stale.count() == N  # pinned to the collection's first space
        assert reembed(url, HashingEmbedder(64)).switched  # another client switches it
        beside = stale.space_sibling()  # the stale store's idea of "beside": the new space
        new_space = beside.stored_space()
        assert new_space is not None
        beside.connect(new_space)
        with pytest.raises(ConflictError, match="switched .* by another client meanwhile"):
            stale.switch_space(beside, verify=lambda: None)
        beside.close()
    finally:
        stale.close()
    _assert_new_space(url)  # nothing switched back


def test_a_second_reembed_needs_the_old_space_dropped(url: str) -> None:
    reembed(url, "hashing-64")
    with pytest.raises(ValueError, match="neither"):
        reembed(url, "hashing-16")
    assert _state(url) == ("hashing-64", N)
    assert drop_old_space(url)
    assert reembed(url, "hashing-16").switched
    assert _state(url) == ("hashing-16", N)


def test_stores_without_an_atomic_switch_refuse(tmp_path: Path) -> None:
    u = f"qdrant://{tmp_path / 'q'}?collection=kb"
    with VectorMemory(u, embedder=HashingEmbedder(32)) as mem:
        mem.add(TEXTS[:20])
    with pytest.raises(SwitchUnsupportedError, match="without downtime: Qdrant's local mode"):
        reembed(u, "hashing-64")
    assert _state(u) == ("hashing-32", 20)
