"""The shared test suite for cross-process locks (the lock protocol of
:class:`~vecmem.knowledge_fs.LockedKnowledgeStore`), run with several real processes.

Subclass :class:`LockSuite` and supply a ``lock_spec`` fixture: ``("module:Class", kwargs)``,
JSON-able, from which both the test and its worker processes build a lock as
``Class(**kwargs, wait=...)``.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.errors import InvalidInputError

LockSpec = tuple[str, dict[str, Any]]

_WORKER = r"""
import importlib, json, os, sys, time
spec, kwargs, mode, name, ttl, arg = json.loads(sys.argv[1])
module, cls = spec.split(":")
lock = getattr(importlib.import_module(module), cls)(**kwargs, wait=30.0)
if mode == "count":
    folder = arg
    bad = 0
    for _ in range(20):
        assert lock.acquire(name, ttl)
        try:
            fd = os.open(os.path.join(folder, "inside"), os.O_CREAT | os.O_EXCL)
            os.close(fd)
        except FileExistsError:
            bad += 1
        path = os.path.join(folder, "counter")
        n = int(open(path).read())
        time.sleep(0.002)
        open(path, "w").write(str(n + 1))
        try:
            os.remove(os.path.join(folder, "inside"))
        except FileNotFoundError:
            pass
        lock.release(name)
    print(json.dumps({"overlaps": bad}), flush=True)
else:  # hold: take the lock, say so, then hang until killed
    assert lock.acquire(name, ttl)
    print("held", flush=True)
    time.sleep(arg)
"""


def build_lock(spec: LockSpec, *, wait: float) -> Any:
    module, cls = spec[0].split(":")
    return getattr(importlib.import_module(module), cls)(**spec[1], wait=wait)


def _spawn(spec: LockSpec, mode: str, name: str, ttl: float, arg: Any) -> subprocess.Popen[str]:
    payload = json.dumps([spec[0], spec[1], mode, name, ttl, arg])
    return subprocess.Popen(
        [sys.executable, "-c", _WORKER, payload],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _wait_held(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "held":
        proc.kill()
        raise AssertionError(
            f"the holder did not take the lock: {proc.stderr and proc.stderr.read()}"
        )


def spawn_holder(spec: LockSpec, name: str, ttl: float) -> subprocess.Popen[str]:
    """A process that takes lock ``name`` (built from ``spec``) and hangs until killed;
    returns once it holds the lock. Kill it (``proc.kill()``) to simulate a crash."""
    proc = _spawn(spec, "hold", name, ttl, 600)
    _wait_held(proc)
    return proc


class LockSuite:
    """Mutual exclusion between processes, release, and recovery from a crashed or hung
    holder; override ``lock_spec``."""

    @pytest.fixture
    def lock_spec(self) -> LockSpec:
        raise NotImplementedError("override the lock_spec fixture")

    @pytest.fixture
    def make_lock(self, lock_spec: LockSpec) -> Iterator[Callable[..., Any]]:
        made: list[Any] = []

        def make(*, wait: float = 0.0) -> Any:
            lock = build_lock(lock_spec, wait=wait)
            made.append(lock)
            return lock

        yield make
        for lock in made:
            close = getattr(lock, "close", None)
            if close is not None:
                close()

    @pytest.fixture
    def name(self) -> str:
        return f"suite-{uuid.uuid4().hex}"

    def test_acquire_release(self, make_lock: Callable[..., Any], name: str) -> None:
        a, b = make_lock(), make_lock()
        assert a.acquire(name, 30) is True
        assert b.acquire(name, 30) is False and a.acquire(name, 30) is False
        assert b.acquire(name + "-other", 30) is True  # names are independent
        a.release(name)
        assert b.acquire(name, 30) is True
        b.release(name)
        b.release(name + "-other")
        b.release(name)  # releasing what is not held is a no-op
        assert a.acquire(name, 30) is True
        a.release(name)

    def test_bad_arguments_are_typed_errors(self, make_lock: Callable[..., Any]) -> None:
        lock = make_lock()
        for name, ttl in [("", 5), (5, 5), ("x" * 600, 5), ("n", 0), ("n", -1), ("n", True)]:
            with pytest.raises(InvalidInputError):
                lock.acquire(name, ttl)
        with pytest.raises(InvalidInputError):
            lock.acquire("n", "5")
        with pytest.raises(InvalidInputError):
            make_lock(wait=-1)
        assert lock.acquire("n-" + uuid.uuid4().hex, 5) is True

    def test_excludes_across_processes(
        self, lock_spec: LockSpec, name: str, tmp_path: Path
    ) -> None:
        """Four processes each increment a file counter 20 times under the lock, sleeping
        between read and write: any overlap loses increments and trips the marker file."""
        (tmp_path / "counter").write_text("0")
        procs = [_spawn(lock_spec, "count", name, 30, str(tmp_path)) for _ in range(4)]
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
        assert [r["overlaps"] for r in reports] == [0, 0, 0, 0]
        assert (tmp_path / "counter").read_text() == "80"

    def test_crashed_holder_frees_the_lock(
        self, lock_spec: LockSpec, make_lock: Callable[..., Any], name: str
    ) -> None:
        ttl = 2.0
        holder = _spawn(lock_spec, "hold", name, ttl, 600)
        try:
            _wait_held(holder)
            assert make_lock(wait=0).acquire(name, 30) is False
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=10)
            start = time.monotonic()
            waiter = make_lock(wait=ttl + 10)
            assert waiter.acquire(name, 30) is True
            assert time.monotonic() - start < ttl + 3
            waiter.release(name)
        finally:
            holder.kill()
            holder.communicate()

    def test_hung_holder_loses_the_lock_at_its_ttl(
        self, lock_spec: LockSpec, make_lock: Callable[..., Any], name: str
    ) -> None:
        ttl = 1.5
        holder = _spawn(lock_spec, "hold", name, ttl, 600)
        try:
            _wait_held(holder)
            start = time.monotonic()
            assert make_lock(wait=0).acquire(name, 30) is False
            waiter = make_lock(wait=ttl + 10)
            assert waiter.acquire(name, 30) is True
            waited = time.monotonic() - start
            assert holder.poll() is None  # the holder still runs: the TTL, not a crash, freed it
            assert waited < ttl + 3
            waiter.release(name)
        finally:
            holder.kill()
            holder.communicate()

    def test_locked_store_waits_for_another_process(
        self, lock_spec: LockSpec, make_lock: Callable[..., Any]
    ) -> None:
        """A :class:`LockedKnowledgeStore` refuses a write while another process holds its
        tenant's lock (nothing written), and writes once that process is gone."""
        from vecmem.errors import StoreLockedError
        from vecmem.knowledge_fs import LockedKnowledgeStore, MemoryKnowledgeStore

        inner = MemoryKnowledgeStore(tenant=f"t{uuid.uuid4().hex[:10]}")
        kb = LockedKnowledgeStore(inner, make_lock(wait=0), ttl=30)
        holder = _spawn(lock_spec, "hold", kb.lock_name, 3, 600)
        try:
            _wait_held(holder)
            with pytest.raises(StoreLockedError):
                kb.write("/a.md", "x")
            assert not inner.exists("/a.md")
            holder.kill()
            holder.wait(timeout=10)
            patient = LockedKnowledgeStore(inner, make_lock(wait=40), ttl=30)
            patient.write("/a.md", "x")
            assert inner.read("/a.md") == b"x"
        finally:
            holder.kill()
            holder.communicate()
