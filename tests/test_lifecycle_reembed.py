"""Re-embedding an embedded store (vecmem.lifecycle.reembed): the new space is built beside the
old, swapped in atomically, the old one dropped only when asked; kill -9 at any point leaves
exactly one usable space at the store's path, and a rerun finishes the job."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vecmem.cli import main
from vecmem.embedders import EmbeddingCache, HashingEmbedder
from vecmem.lifecycle.reembed import drop_old_space, reembed, sibling
from vecmem.memory import VectorMemory
from vecmem.stores.embedded import EmbeddedStore

ROOT = Path(__file__).resolve().parent.parent
N = 300
TEXTS = [f"note {i} about topic{i % 13} and subject{i % 7}" for i in range(N)]


@pytest.fixture
def store(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> Path:
    path = tmp_path / "kb"
    with VectorMemory(str(path), embedder=HashingEmbedder(32)) as mem:
        mem.add(TEXTS, metadata=[{"n": i} for i in range(N)])
    return path


def _state(path: Path) -> tuple[str, int]:
    s = EmbeddedStore(path)
    space = s.stored_space()
    assert space is not None
    s.connect(space)
    try:
        return space.embedder, s.count()
    finally:
        s.close()


def _assert_new_space(path: Path) -> None:
    """The store answers with hashing-64 vectors of every chunk's own text."""
    s = EmbeddedStore(path)
    space = s.stored_space()
    assert space is not None and space.embedder == "hashing-64"
    s.connect(space)
    try:
        ids = s.page_ids(limit=N + 1)
        assert len(ids) == N
        chunks = s.get(ids)
        want = HashingEmbedder(64).embed([c.text for c in chunks])
        np.testing.assert_allclose(s.get_vectors(ids), want, atol=1e-6)
    finally:
        s.close()
    with VectorMemory(str(path)) as mem:
        assert mem.embedder.name == "hashing-64"
        assert "topic3" in mem.search("topic3 subject2", k=3)[0].text


def test_reembed_switches_and_keeps_old_until_asked(store: Path, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache.db")
    report = reembed(store, HashingEmbedder(64), cache=cache, page=64)
    assert report.switched and report.embedded == N and report.skipped == 0
    _assert_new_space(store)
    assert _state(sibling(store)) == ("hashing-32", N)  # the old space, kept
    again = reembed(store, "hashing-64", drop_old=True)  # already switched: only drops
    assert not again.switched and not sibling(store).exists()
    assert not drop_old_space(store)


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
    ("point", "at"), [("reembed-page", 3), ("reembed-switch", 1), ("reembed-switched", 1)]
)
def test_kill_at_any_point_leaves_one_usable_space(store: Path, point: str, at: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, str(store), point, str(at)],
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    embedder, count = _state(store)
    assert count == N  # whole, whichever space it is
    assert embedder == ("hashing-64" if point == "reembed-switched" else "hashing-32")
    with VectorMemory(str(store)) as mem:  # and usable
        assert mem.search("topic3", k=1)
    report = reembed(store, "hashing-64", page=32)
    if point == "reembed-page":
        assert report.switched and 0 < report.skipped < N and report.embedded == N - report.skipped
    elif point == "reembed-switch":
        assert report.switched and report.embedded == 0 and report.skipped == N
    else:
        assert not report.switched
    _assert_new_space(store)
    assert _state(sibling(store)) == ("hashing-32", N)


def test_a_foreign_folder_beside_is_refused(store: Path, tmp_path: Path) -> None:
    with VectorMemory(str(sibling(store)), embedder=HashingEmbedder(16)) as mem:
        mem.add(["something else"])
    with pytest.raises(ValueError, match="neither"):
        reembed(store, "hashing-64")
    assert _state(store) == ("hashing-32", N)
    shutil.rmtree(sibling(store))


def test_cli_reembed(store: Path) -> None:
    assert main(["reembed", str(store), "--embedder", "hashing-64", "--drop-old", "--json"]) == 0
    _assert_new_space(store)
    assert not sibling(store).exists()


def test_embedding_cache_is_reused(store: Path, tmp_path: Path) -> None:
    """A second store with the same texts re-embedded through the same cache embeds nothing."""

    class Counting(HashingEmbedder):
        texts = 0

        def embed(self, texts: list[str]) -> np.ndarray:  # type: ignore[override]
            Counting.texts += len(texts)
            return super().embed(texts)

    copy = tmp_path / "copy"
    shutil.copytree(store, copy)
    cache = EmbeddingCache(tmp_path / "cache.db")
    reembed(store, Counting(64), cache=cache)
    assert Counting.texts == N
    reembed(copy, Counting(64), cache=cache)
    assert Counting.texts == N  # every vector came from the cache
    _assert_new_space(copy)
