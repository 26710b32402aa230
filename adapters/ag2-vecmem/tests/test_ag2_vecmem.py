"""ag2-vecmem through AG2 itself: vecmem's file stores satisfy AG2's ``KnowledgeStore`` protocol,
and AG2's own ``DefaultBootstrap`` and ``EventLogWriter`` run on them and read back what they
wrote through a freshly opened store -- on SQLite, PostgreSQL, Redis and disk."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ag2.events import HumanMessage, ModelMessage
from ag2.knowledge import (
    DefaultBootstrap,
    EventLogWriter,
    KnowledgeStore,
    NoopChangeSubscription,
)
from ag2_vecmem import VecmemKnowledgeStore

Opener = Callable[[], VecmemKnowledgeStore]


@pytest.fixture(params=["sqlite", "postgres", "redis", "disk"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens a fresh ``VecmemKnowledgeStore`` on one backend and tenant (new object = restart)."""
    tenant = f"t{uuid.uuid4().hex[:10]}"
    url = {
        "sqlite": lambda: f"sqlite:///{tmp_path}/kb.db",
        "postgres": lambda: request.getfixturevalue("postgres_url"),
        "redis": lambda: request.getfixturevalue("redis_url"),
        "disk": lambda: f"file://{tmp_path}/kb",
    }[request.param]()
    opened: list[VecmemKnowledgeStore] = []

    def make() -> VecmemKnowledgeStore:
        store = VecmemKnowledgeStore(url, tenant=tenant)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_satisfies_ag2_protocol_with_ag2_semantics(open_store: Opener) -> None:
    store = open_store()
    assert isinstance(store, KnowledgeStore)

    async def scenario() -> None:
        assert await store.read("/missing.md") is None
        assert await store.read_range("/missing.md", 0) == ""
        await store.delete("/missing.md")  # no-op, no error
        await store.write("a/b//c.md", "héllo")  # normalised like AG2's own stores
        assert await store.read("/a/b/c.md") == "héllo"
        assert await store.exists("/a/b") and await store.exists("/a/b/c.md")
        assert await store.list("/") == ["a/"] and await store.list("/a/") == ["b/"]
        assert await store.list("/nothing/") == []
        assert await store.append("/log/s.jsonl", "one\n") == 0
        assert await store.append("/log/s.jsonl", "twö\n") == 4
        assert await store.read_range("/log/s.jsonl", 4) == "twö\n"
        assert await store.read_range("/log/s.jsonl", 0, 4) == "one\n"
        with pytest.raises(UnicodeDecodeError):  # inside 'ö': refused, as AG2's stores do
            await store.read_range("/log/s.jsonl", 7)
        await store.delete("/a")  # a directory and everything under it
        assert not await store.exists("/a/b/c.md") and await store.list("/") == ["log/"]

    asyncio.run(scenario())


def test_default_bootstrap_lays_out_the_store_once(open_store: Opener) -> None:
    asyncio.run(DefaultBootstrap().bootstrap(open_store(), "alice"))

    async def check() -> None:
        store = open_store()
        assert await store.list("/") == ["SKILL.md", "artifacts/", "log/", "memory/"]
        for d in ("/log/", "/artifacts/", "/memory/"):
            assert await store.list(d) == ["SKILL.md"]
        root = await store.read("/SKILL.md")
        assert root is not None and root.startswith("# alice Knowledge Store")

    asyncio.run(check())


def test_vecmem_bootstrap_writes_what_ag2_writes_and_ag2_skips_it(open_store: Opener) -> None:
    """vecmem's DefaultBootstrap (sync, no AG2 needed) lays out exactly AG2's files, and its
    sentinel is AG2's: an agent-style check (`exists('/.initialized')`) then skips AG2's own."""
    from vecmem.knowledge_fs import DefaultBootstrap as VecmemBootstrap
    from vecmem.knowledge_fs import bootstrap_once

    theirs, ours = (
        open_store(),
        VecmemKnowledgeStore(open_store().store.with_tenant(f"o{uuid.uuid4().hex[:10]}")),
    )
    for mention_tool in (True, False):
        asyncio.run(DefaultBootstrap(mention_tool=mention_tool).bootstrap(theirs, "alice"))
        files = VecmemBootstrap(mention_tool=mention_tool).files("alice")

        for path, text in files.items():
            assert asyncio.run(theirs.read(path)) == text
    assert bootstrap_once(ours.store, "alice") is True
    assert asyncio.run(ours.exists("/.initialized"))  # AG2's agent skips its bootstrap
    assert asyncio.run(ours.read("/.initialized")) == "alice"


def test_event_log_writer_round_trips_events(open_store: Opener) -> None:
    stream = uuid.uuid4()
    asked, dropped = HumanMessage(content="what is vecmem?"), HumanMessage(content="earlier turn")
    answer = ModelMessage(content="a memory library")

    async def write() -> None:
        writer = EventLogWriter(open_store())
        await writer.persist_dropped(stream, [dropped])
        await writer.persist_dropped(stream, [asked])
        await writer.persist(stream, [answer])

    asyncio.run(write())
    events = asyncio.run(EventLogWriter(open_store()).load(stream))
    assert events == [dropped, asked, answer]
    assert asyncio.run(open_store().list("/log/")) == [
        f"{stream}.dropped-1.jsonl",
        f"{stream}.dropped-2.jsonl",
        f"{stream}.jsonl",
    ]


def test_on_change_delivers_events_or_asks_ag2_to_poll(
    open_store: Opener, request: pytest.FixtureRequest
) -> None:
    store = open_store()
    backend = request.node.callspec.params["open_store"]

    async def scenario() -> list[str]:
        seen: list[str] = []
        got = asyncio.Event()

        async def callback(path: str) -> None:
            seen.append(path)
            got.set()

        sub = await store.on_change("/memory", callback)
        if backend != "disk":
            assert isinstance(sub, NoopChangeSubscription)
            return seen
        await store.write("/artifacts/x.md", "not watched")
        await store.write("/memory/working.md", "state")
        await asyncio.wait_for(got.wait(), timeout=10)
        await sub.close()
        return seen

    seen = asyncio.run(scenario())
    if backend == "disk":
        assert "/memory/working.md" in seen and "/artifacts/x.md" not in seen


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_ag2_locked_store_excludes_another_process(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """AG2's own LockedKnowledgeStore on a vecmem store, with vecmem's cross-process locks:
    a write is refused while another process holds its path's lock (nothing written) and
    goes through once that process is killed."""
    from ag2.knowledge import LockedKnowledgeStore
    from ag2_vecmem import AsyncLock

    from vecmem.knowledge_fs import PostgresAdvisoryLock, RedisLock
    from vecmem.testing.locks import spawn_holder

    url = request.getfixturevalue(f"{kind}_url")
    cls = RedisLock if kind == "redis" else PostgresAdvisoryLock
    spec = (f"vecmem.knowledge_fs.locks:{cls.__name__}", {"url": url})
    inner = VecmemKnowledgeStore(f"sqlite:///{tmp_path}/kb.db", tenant="t")
    impatient, patient = cls(url, wait=0), cls(url, wait=30)
    kb = LockedKnowledgeStore(inner, AsyncLock(impatient))
    holder = spawn_holder(spec, "store:write:/a.md", ttl=2)
    try:
        with pytest.raises(RuntimeError, match="acquire write lock"):
            asyncio.run(kb.write("/a.md", "x"))
        assert asyncio.run(inner.read("/a.md")) is None
        asyncio.run(kb.write("/b.md", "other paths are free"))
        holder.kill()
        holder.wait(timeout=10)
        asyncio.run(LockedKnowledgeStore(inner, AsyncLock(patient)).write("/a.md", "x"))
        assert asyncio.run(inner.read("/a.md")) == "x"
    finally:
        holder.kill()
        holder.communicate()
        for lock in (impatient, patient):
            lock.close()
        inner.close()
