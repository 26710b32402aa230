"""Checkpoint every N steps: the bookkeeping behind ``VecmemSaver(interval=N)``.

A LangGraph checkpoint whose ``step`` is not a multiple of ``interval`` (the input checkpoint,
step -1, always is durable) is not written: it is held in memory as its thread/namespace's
*pending* checkpoint, with the pending writes LangGraph puts for it, until a newer checkpoint
replaces it or a read (``get_tuple``, ``list``, ...), ``flush()`` or ``close()`` writes it. A
crash loses at most the steps since the last durable checkpoint, and LangGraph resumes from
that one and runs them again. A durable checkpoint's parent is its nearest durable ancestor, so
every stored parent link resolves.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str]  # (thread_id, checkpoint_ns)


@dataclass
class Pending:
    """A checkpoint not written yet, with the arguments of its ``put`` and ``put_writes``."""

    config: Any
    checkpoint: Any
    metadata: Any
    new_versions: Any
    writes: list[tuple[Sequence[tuple[str, Any]], str, str]] = field(default_factory=list)


class IntervalBuffer:
    """Which checkpoints are durable, the pending one per thread/namespace, and the durable
    ancestor of each skipped checkpoint id."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self.lock = threading.RLock()
        self._pending: dict[Key, Pending] = {}
        self._ancestor: dict[Key, dict[str, str | None]] = {}

    def durable(self, metadata: Any) -> bool:
        step = metadata.get("step") if isinstance(metadata, dict) else None
        if self.interval == 1 or not isinstance(step, int) or isinstance(step, bool):
            return True
        return step < 0 or step % self.interval == 0

    def resolve(self, key: Key, checkpoint_id: str | None) -> str | None:
        """The durable checkpoint standing for ``checkpoint_id`` (itself unless skipped)."""
        if checkpoint_id is None:
            return None
        return self._ancestor.get(key, {}).get(checkpoint_id, checkpoint_id)

    def hold(self, key: Key, checkpoint_id: str, parent: str | None, pending: Pending) -> None:
        self._ancestor.setdefault(key, {})[checkpoint_id] = self.resolve(key, parent)
        self._pending[key] = pending

    def written(self, key: Key) -> None:
        """A durable checkpoint was written for ``key``: older skipped ids are done with."""
        self._pending.pop(key, None)
        self._ancestor.pop(key, None)

    def add_writes(
        self,
        key: Key,
        checkpoint_id: str,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> bool:
        """Keep writes for a pending (or superseded, skipped) checkpoint; False if durable."""
        pending = self._pending.get(key)
        if pending is not None and pending.checkpoint["id"] == checkpoint_id:
            pending.writes.append((list(writes), task_id, task_path))
            return True
        return checkpoint_id in self._ancestor.get(key, {})  # superseded: dropped

    def take(self, thread_id: str | None = None) -> list[tuple[Key, Pending]]:
        """Remove and return the pending checkpoints (of one thread, or all)."""
        keys = [k for k in self._pending if thread_id is None or k[0] == thread_id]
        return [(k, self._pending.pop(k)) for k in keys]

    def forget(self, thread_id: str) -> None:
        for k in [k for k in self._ancestor if k[0] == thread_id]:
            del self._ancestor[k]
        self.take(thread_id)
