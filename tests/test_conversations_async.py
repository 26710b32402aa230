"""The shared conversation suite on the async stores (native async drivers: aiosqlite, psycopg's
async API, asyncmy), driven through a bridge that runs each coroutine on one
event loop in a background thread; plus the async API itself under concurrent tasks."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.conversations import Message
from vecmem.conversations.async_sql import AsyncSQLConversationStore
from vecmem.errors import ConfigurationError, InvalidInputError, NotFoundError
from vecmem.testing.conversations import ConversationStoreSuite


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class SyncBridge:
    """The sync protocol over an async store (test harness only: every call is awaited on the
    store's own event loop, so the store's driver stays natively async)."""

    def __init__(self, store: AsyncSQLConversationStore, loop: _Loop) -> None:
        self._store, self._loop = store, loop
        self.tenant = store.tenant

    @property
    def actor(self) -> str | None:
        return self._store.actor

    def with_tenant(self, tenant: str) -> SyncBridge:
        return SyncBridge(self._store.with_tenant(tenant), self._loop)

    def acting_as(self, participant: str) -> SyncBridge:
        return SyncBridge(self._store.acting_as(participant), self._loop)

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._store, name)
        return lambda *a, **k: self._loop.run(method(*a, **k))


def _open(url: str) -> Iterator[SyncBridge]:
    loop = _Loop()
    store = loop.run(_make(url))
    yield SyncBridge(store, loop)
    loop.run(store.aclose())
    loop.stop()


async def _make(url: str) -> AsyncSQLConversationStore:
    return AsyncSQLConversationStore(url)


@pytest.fixture(scope="module")
def async_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyncBridge]:
    yield from _open(f"sqlite:///{tmp_path_factory.mktemp('aconv')}/conv.db")


@pytest.fixture(scope="module")
def async_postgres(postgres_url: str) -> Iterator[SyncBridge]:
    yield from _open(postgres_url)


@pytest.fixture(scope="module")
def async_mariadb(mariadb_url: str) -> Iterator[SyncBridge]:
    yield from _open(mariadb_url)


class TestAsyncSQLiteConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, async_sqlite: SyncBridge) -> Any:
        return lambda: async_sqlite


@pytest.mark.server
class TestAsyncPostgresConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, async_postgres: SyncBridge) -> Any:
        return lambda: async_postgres


@pytest.mark.server
class TestAsyncMariaDBConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, async_mariadb: SyncBridge) -> Any:
        return lambda: async_mariadb


def _url(scheme: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if scheme == "sqlite":
        return f"sqlite:///{tmp_path}/c.db"
    return str(request.getfixturevalue(f"{scheme}_url"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_concurrent_tasks_and_sync_store_agree(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _url(backend, tmp_path, request)
    from vecmem.registry import CONVERSATION_STORES

    async def scenario() -> None:
        store = AsyncSQLConversationStore(url, tenant=f"conc-{backend}-{tmp_path.name}")
        try:
            await asyncio.gather(
                *[store.add_messages("u", "s", [Message("user", str(i))]) for i in range(32)]
            )
            msgs = await store.get_messages("u", "s")
            assert [m.seq for m in msgs] == list(range(32))
            assert sorted(int(m.content) for m in msgs) == list(range(32))
            with pytest.raises(NotFoundError):
                await store.get_session("u", "nope")
            with pytest.raises(InvalidInputError):
                await store.add_messages("", "s", [Message("user", "x")])
        finally:
            await store.aclose()

    asyncio.run(scenario())
    sync = CONVERSATION_STORES.create(url, tenant=f"conc-{backend}-{tmp_path.name}")
    assert sync.get_session("u", "s").message_count == 32  # the same tables as the sync store
    sync.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_cancelled_writes_land_whole_or_not_at_all_and_the_store_stays_live(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Writers cancelled at random moments, some in the middle of their transaction: every
    batch is stored whole or not at all, each task ends in its result or CancelledError (the
    cancelled one came back as BackendError) and the store keeps answering. On SQLite a write
    cancelled mid-statement left its connection closed under a live cursor, holding the write
    lock, and every later writer hung in the busy handler."""
    url = _url(backend, tmp_path, request)
    rnd = random.Random(19)

    def batch(r: int, i: int) -> list[Message]:
        return [Message("user", f"{r}:{i}:{j}") for j in range(5)]

    async def scenario() -> None:
        store = AsyncSQLConversationStore(url, tenant=f"cancel-{backend}-{tmp_path.name}")
        rounds: list[dict[tuple[int, int], asyncio.Task[list[Message]]]] = []  # kept, as a
        # caller's gather keeps them: their tracebacks hold the cancelled writes' cursors
        try:
            for r in range(30):
                tasks = {
                    (r, i): asyncio.create_task(store.add_messages("u", f"s{i % 3}", batch(r, i)))
                    for i in range(12)
                }
                rounds.append(tasks)
                await asyncio.sleep(rnd.uniform(0, 0.015))
                for key in rnd.sample(sorted(tasks), 8):
                    tasks[key].cancel()
                _, pending = await asyncio.wait(tasks.values(), timeout=10)
                assert not pending, f"round {r}: {len(pending)} writes hang after cancellations"
            after = await asyncio.wait_for(
                store.add_messages("u", "after", [Message("user", "x")]), 10
            )
            assert [m.content for m in after] == ["x"]
            stored: dict[str, list[str]] = {}
            for sid in ("s0", "s1", "s2"):
                msgs = await asyncio.wait_for(store.get_messages("u", sid), 10)
                assert [m.seq for m in msgs] == list(range(len(msgs)))
                for m in msgs:
                    r, i, _ = m.content.split(":")
                    stored.setdefault(f"{r}:{i}", []).append(m.content)
            landed = 0
            for tasks in rounds:
                for (r, i), task in tasks.items():
                    want = [m.content for m in batch(r, i)]
                    got = stored.get(f"{r}:{i}", [])
                    assert got in ([], want), f"batch {r}:{i} stored in part: {got}"
                    if not task.cancelled():
                        assert task.exception() is None, f"batch {r}:{i}: {task.exception()!r}"
                        assert [m.content for m in task.result()] == want == got
                    landed += bool(got)
            assert 0 < landed < 30 * 12  # some cancellations took effect, some writes landed
        finally:
            await store.aclose()

    asyncio.run(scenario())


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="needs a file"):
        AsyncSQLConversationStore("sqlite://")


@pytest.mark.parametrize(
    ("name", "scheme"),
    [
        ("async_sqlite", "sqlite"),
        ("aiosqlite", "sqlite"),
        ("sqlite_async", "sqlite"),
        ("async_postgres", "postgres"),
        ("asyncpg", "postgres"),
        ("postgres_async", "postgres"),
        ("async_mysql", "mariadb"),
        ("aiomysql", "mariadb"),
        ("mysql_async", "mariadb"),
    ],
)
def test_registry_names_open_the_async_store_on_an_async_driver(
    name: str, scheme: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from vecmem.registry import CONVERSATION_STORES

    url = _url(scheme, tmp_path, request)
    store = CONVERSATION_STORES.create(name, url=url, tenant=f"reg-{tmp_path.name}")
    assert isinstance(store, AsyncSQLConversationStore)
    assert store.engine.dialect.is_async
    drivers = {"sqlite": "aiosqlite", "postgres": "psycopg", "mariadb": "asyncmy"}
    assert store.engine.dialect.driver == drivers[scheme]
    by_scheme = CONVERSATION_STORES.create(
        url.replace(url.split("://")[0], name, 1), tenant=f"reg-{tmp_path.name}"
    )
    assert isinstance(by_scheme, AsyncSQLConversationStore)

    async def roundtrip() -> list[str]:
        await store.add_messages("u", "s", [Message("user", "hi")])
        out = [m.content for m in await by_scheme.get_messages("u", "s")]
        await store.aclose()
        await by_scheme.aclose()
        return out

    assert asyncio.run(roundtrip()) == ["hi"]
    with pytest.raises(ConfigurationError, match="not a"):
        CONVERSATION_STORES.create(name, url="redis://localhost/0")


@pytest.mark.parametrize("backend", ["sqlite", "postgres", "mariadb"])
def test_usage_metrics_on_async_stores(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``await store.usage_metrics(...)`` on both async stores gives what the sync store's
    ``usage_metrics`` gives; handing an async store to the sync function is a typed error (it was
    a TypeError from inside, iterating a coroutine)."""
    url = _url(backend, tmp_path, request)
    tenant = f"usage-{backend}-{tmp_path.name}"
    from vecmem.conversations import (
        AsyncConversationStore,
        SQLConversationStore,
        Usage,
        usage_metrics,
    )

    sync = SQLConversationStore(url, tenant=tenant)
    sync.add_messages("ann", "s", [Message("assistant", "x", usage=Usage(3, 4, "m", 0.5))])
    sync.add_messages("bob", "s", [Message("assistant", "y", usage=Usage(1, 1, "m", None))])
    expected = usage_metrics(sync, by=["user_id"])

    async def scenario() -> None:
        native = AsyncSQLConversationStore(url, tenant=tenant)
        threaded = AsyncConversationStore(sync)
        try:
            assert await native.usage_metrics(by=["user_id"]) == expected
            assert await threaded.usage_metrics(by=["user_id"]) == expected
            assert await native.usage_metrics(by=[], user_id="bob") == usage_metrics(
                sync, by=[], user_id="bob"
            )
            with pytest.raises(InvalidInputError):
                await native.usage_metrics(by=["week"])  # type: ignore[list-item]
            for store in (native, threaded):
                with pytest.raises(InvalidInputError, match="await"):
                    usage_metrics(store)
        finally:
            await native.aclose()

    asyncio.run(scenario())
    sync.close()
