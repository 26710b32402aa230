"""AG2's ``KnowledgeStore`` protocol (async, text) over a vecmem file store (sync, bytes).

Each call runs the vecmem store in a worker thread (``asyncio.to_thread``) so a database or
Redis round trip never blocks the event loop. Semantics follow AG2's own stores: ``read`` of a
missing file is ``None``, ``delete`` removes a file and everything under its path and is a no-op
when nothing is there, ``read_range`` of a missing file is ``""`` and decodes strictly (an offset
inside a UTF-8 character is an error, as in AG2's ``MemoryKnowledgeStore``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ag2.knowledge import ChangeCallback, ChangeSubscription, NoopChangeSubscription

from vecmem.errors import InvalidInputError, NotFoundError
from vecmem.knowledge_fs import ChangeEvent, KnowledgeStore, Lock
from vecmem.registry import FILE_STORES


class _Subscription:
    """Forwards a vecmem store's change events under ``prefix`` to an AG2 async callback."""

    def __init__(
        self,
        store: KnowledgeStore,
        prefix: str,
        callback: ChangeCallback,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._prefix = prefix
        self._callback = callback
        self._loop = loop
        self._sub = store.on_change(self._on_event)

    @property
    def polling(self) -> bool:
        return self._sub.polling

    def _on_event(self, event: ChangeEvent) -> None:
        path = event.path
        if path == self._prefix or path.startswith(self._prefix.rstrip("/") + "/"):
            asyncio.run_coroutine_threadsafe(self._deliver(path), self._loop)

    async def _deliver(self, path: str) -> None:
        await self._callback(path)

    async def close(self) -> None:
        self._sub.close()


def _normalize(path: str) -> str:
    if not isinstance(path, str):
        raise InvalidInputError(f"a path must be a string, got {type(path).__name__}")
    path = "/" + path.lstrip("/")
    while "//" in path:
        path = path.replace("//", "/")
    return path.rstrip("/") or "/"


class VecmemKnowledgeStore:
    """An AG2 ``KnowledgeStore`` on any vecmem file store.

    ``store``: a vecmem :class:`~vecmem.knowledge_fs.KnowledgeStore`, or a name/URL that
    :data:`vecmem.registry.FILE_STORES` opens (``sqlite:///kb.db``, ``postgresql://...``,
    ``redis://...``, ``file:///dir``, ``memory://``); ``tenant`` applies to a URL.

    >>> import asyncio
    >>> kb = VecmemKnowledgeStore("memory://")
    >>> asyncio.run(kb.append("/log/s.jsonl", "{}\\n"))
    0
    >>> asyncio.run(kb.list("/"))
    ['log/']
    """

    def __init__(self, store: KnowledgeStore | str, *, tenant: str = "default") -> None:
        self._owned = isinstance(store, str)
        self.store: KnowledgeStore = (
            FILE_STORES.create(store, tenant=tenant) if isinstance(store, str) else store
        )

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def read(self, path: str) -> str | None:
        try:
            data = await self._run(self.store.read, _normalize(path))
        except NotFoundError:
            return None
        return data.decode("utf-8")

    async def write(self, path: str, content: str) -> None:
        await self._run(self.store.write, _normalize(path), content)

    async def list(self, path: str = "/") -> list[str]:
        try:
            return list(await self._run(self.store.list, _normalize(path)))
        except NotFoundError:
            return []

    async def delete(self, path: str) -> None:
        try:  # the file, or the directory and everything under it
            await self._run(self.store.delete, _normalize(path), recursive=True)
        except NotFoundError:
            pass

    async def exists(self, path: str) -> bool:
        return bool(await self._run(self.store.exists, _normalize(path)))

    async def append(self, path: str, content: str) -> int:
        return int(await self._run(self.store.append, _normalize(path), content))

    async def read_range(self, path: str, start: int, end: int | None = None) -> str:
        try:
            data = await self._run(self.store.read_range, _normalize(path), start, end)
        except NotFoundError:
            return ""
        return data.decode("utf-8", errors="strict")

    async def on_change(self, path: str, callback: ChangeCallback) -> ChangeSubscription:
        """Events from stores that deliver them (disk); the others answer AG2's
        ``NoopChangeSubscription`` so that AG2 polls."""
        sub = _Subscription(self.store, _normalize(path), callback, asyncio.get_running_loop())
        if sub.polling:
            await sub.close()
            return NoopChangeSubscription()
        return sub

    def close(self) -> None:
        if self._owned:
            self.store.close()


class AsyncLock:
    """A vecmem lock (:class:`~vecmem.knowledge_fs.RedisLock`,
    :class:`~vecmem.knowledge_fs.PostgresAdvisoryLock`, :class:`~vecmem.state.StateLock`, ...)
    with the async ``acquire(name, ttl=...)`` / ``release(name)`` that AG2's
    ``LockedKnowledgeStore`` calls; each call runs in a worker thread.

    >>> from ag2.knowledge import LockedKnowledgeStore
    >>> from vecmem.knowledge_fs import LocalLock
    >>> kb = LockedKnowledgeStore(VecmemKnowledgeStore("memory://"), AsyncLock(LocalLock()))
    >>> import asyncio; asyncio.run(kb.write("/a.md", "x"))
    """

    def __init__(self, lock: Lock) -> None:
        if not isinstance(lock, Lock):
            raise InvalidInputError(
                f"lock must have acquire(name, ttl) and release(name), got {type(lock).__name__}"
            )
        self.lock = lock

    async def acquire(self, name: str, ttl: float = 30.0) -> bool:
        return bool(await asyncio.to_thread(self.lock.acquire, name, ttl))

    async def release(self, name: str) -> None:
        await asyncio.to_thread(self.lock.release, name)
