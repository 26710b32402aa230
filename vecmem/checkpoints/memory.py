"""Checkpoints in memory (encoded exactly as on a database, so sizes and keys behave the same)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from vecmem.checkpoints.base import CheckpointInfo, CheckpointStoreBase, Retention
from vecmem.checkpoints.codec import Cipher
from vecmem.errors import ConflictError


class _Shared:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], tuple[CheckpointInfo, bytes]] = {}
        self.threads: dict[tuple[str, str], list[str]] = {}  # ids in seq order
        self.lock = threading.RLock()


class MemoryCheckpointStore(CheckpointStoreBase):
    """Checkpoints in memory, lost on exit.

    >>> store = MemoryCheckpointStore(tenant="acme")
    >>> first = store.save("thread-1", {"step": 1}, tags=["draft"])
    >>> _ = store.save("thread-1", {"step": 2})
    >>> store.latest("thread-1").state, store.diff(first.id, store.latest("thread-1").id).changed
    ({'step': 2}, {'/step': (1, 2)})
    """

    def __init__(
        self,
        *,
        tenant: str = "default",
        key: bytes | str | None = None,
        cipher: Cipher = "aes-gcm",
        compression: bool = True,
        retention: Retention | None = None,
        clock: Callable[[], float] = time.time,
        _shared: _Shared | None = None,
    ) -> None:
        super().__init__(
            tenant=tenant,
            key=key,
            cipher=cipher,
            compression=compression,
            retention=retention,
            clock=clock,
        )
        self._shared = _shared or _Shared()

    def _clone(self, options: dict[str, Any]) -> MemoryCheckpointStore:
        return MemoryCheckpointStore(**options, _shared=self._shared)

    def _append(
        self, info: CheckpointInfo, blob: bytes, *, parent_latest: bool, new_thread: bool
    ) -> CheckpointInfo:
        sh = self._shared
        with sh.lock:
            tkey = (self.tenant, info.thread_id)
            ids = sh.threads.setdefault(tkey, [])
            if new_thread and ids:
                raise ConflictError(f"thread {info.thread_id!r} already exists")
            seq = sh.rows[(self.tenant, ids[-1])][0].seq + 1 if ids else 0
            parent = ids[-1] if parent_latest and ids else info.parent_id
            info = replace(info, seq=seq, parent_id=parent)
            sh.rows[(self.tenant, info.id)] = (info, blob)
            ids.append(info.id)
            return info

    def _get(self, checkpoint_id: str) -> tuple[CheckpointInfo, bytes] | None:
        with self._shared.lock:
            return self._shared.rows.get((self.tenant, checkpoint_id))

    def _latest_id(self, thread_id: str) -> str | None:
        with self._shared.lock:
            ids = self._shared.threads.get((self.tenant, thread_id))
            return ids[-1] if ids else None

    def _list(
        self,
        *,
        thread_id: str | None,
        tags: tuple[str, ...],
        since: float | None,
        until: float | None,
        limit: int | None,
        offset: int,
    ) -> list[CheckpointInfo]:
        with self._shared.lock:
            infos = [info for (t, _), (info, _) in self._shared.rows.items() if t == self.tenant]
        wanted = set(tags)
        infos = [
            i
            for i in infos
            if (thread_id is None or i.thread_id == thread_id)
            and wanted.issubset(i.tags)
            and (since is None or i.created_at >= since)
            and (until is None or i.created_at < until)
        ]
        infos.sort(key=lambda i: (i.created_at, i.thread_id, i.seq), reverse=True)
        return infos[offset : None if limit is None else offset + limit]

    def _delete(self, ids: Sequence[str]) -> int:
        sh = self._shared
        removed = 0
        with sh.lock:
            for cid in ids:
                got = sh.rows.pop((self.tenant, cid), None)
                if got is None:
                    continue
                removed += 1
                tkey = (self.tenant, got[0].thread_id)
                sh.threads[tkey].remove(cid)
                if not sh.threads[tkey]:
                    del sh.threads[tkey]
        return removed

    def _threads(self) -> list[str]:
        with self._shared.lock:
            return sorted(th for (t, th) in self._shared.threads if t == self.tenant)
