"""Database options of the conversation stores: SQLite tuning (journal, cache, auto-vacuum) and
PostgreSQL message tables partitioned by date, each also under the whole conversation suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from vecmem.conversations import Message, SQLConversationStore
from vecmem.conversations.partitions import partitions
from vecmem.db import Database, SQLiteOptions
from vecmem.errors import ConfigurationError
from vecmem.registry import CONVERSATION_STORES
from vecmem.testing.conversations import ConversationStoreSuite

DAY = 86400.0
T0 = 1_796_000_000.0  # 2026-11-30 UTC


def _pragma(conn: Any, name: str) -> Any:
    return conn.execute(f"PRAGMA {name}").fetchone()[0]


def _pragmas(db: Database) -> dict[str, Any]:
    conn = db.engine.raw_connection()  # a pooled connection, outside any transaction
    try:
        names = ("journal_mode", "synchronous", "cache_size", "busy_timeout", "auto_vacuum")
        return {p: _pragma(conn, p) for p in names}
    finally:
        conn.close()


def _checkpoint(db: Database) -> None:
    conn = db.engine.raw_connection()
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


# ---------------------------------------------------------------- SQLite tuning
def test_sqlite_options_reach_every_connection(tmp_path: Path) -> None:
    default = Database(f"sqlite:///{tmp_path}/a.db")
    assert _pragmas(default) == {
        "journal_mode": "wal",
        "synchronous": 1,
        "cache_size": -2000,
        "busy_timeout": 30000,
        "auto_vacuum": 0,
    }
    default.close()
    opts = SQLiteOptions(
        journal_mode="delete", synchronous="full", cache_size_kib=8192, busy_timeout=5
    )
    db = Database(f"sqlite:///{tmp_path}/b.db", sqlite=opts)
    one, two = db.engine.raw_connection(), db.engine.raw_connection()  # two in the pool
    for conn in (one, two):
        assert _pragma(conn, "journal_mode") == "delete"
        assert _pragma(conn, "synchronous") == 2
        assert _pragma(conn, "cache_size") == -8192
        assert _pragma(conn, "busy_timeout") == 5000
    one.close()
    two.close()
    db.close()
    store: Any = CONVERSATION_STORES.create(
        f"sqlite:///{tmp_path}/c.db", sqlite=SQLiteOptions(cache_size_kib=4096)
    )
    assert _pragmas(store.db)["cache_size"] == -4096
    store.close()


def _fill_and_empty(store: SQLConversationStore) -> tuple[int, int]:
    path = Path(store.db.engine.url.database or "")
    for s in range(20):
        store.add_messages("u", f"s{s}", [Message("user", "x" * 1000) for _ in range(100)])
    _checkpoint(store.db)
    full = path.stat().st_size
    store.delete_user("u")
    _checkpoint(store.db)
    return full, path.stat().st_size


@pytest.mark.parametrize("mode", ["none", "full", "incremental"])
def test_auto_vacuum_gives_space_back(tmp_path: Path, mode: str) -> None:
    store = SQLConversationStore(
        f"sqlite:///{tmp_path}/v.db",
        sqlite=SQLiteOptions(auto_vacuum=mode),  # type: ignore[arg-type]
    )
    full, emptied = _fill_and_empty(store)
    assert full > 2_000_000
    if mode == "none":
        assert emptied == full  # freed pages stay in the file
    elif mode == "full":
        assert emptied < full / 4
    else:
        assert emptied == full
        store.db.incremental_vacuum()
        _checkpoint(store.db)
        assert Path(f"{tmp_path}/v.db").stat().st_size < full / 4
    store.close()


def test_auto_vacuum_converts_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    old = SQLConversationStore(url)
    old.add_messages("u", "s", [Message("user", f"m{i}") for i in range(50)])
    old.close()
    store = SQLConversationStore(url, sqlite=SQLiteOptions(auto_vacuum="full"))
    assert _pragmas(store.db)["auto_vacuum"] == 1
    assert [m.content for m in store.get_messages("u", "s")] == [f"m{i}" for i in range(50)]
    store.close()


def test_bad_sqlite_options_are_configuration_errors(tmp_path: Path) -> None:
    for options in [
        {"journal_mode": "fast"},
        {"synchronous": "sometimes"},
        {"cache_size_kib": 0},
        {"cache_size_kib": -5},
        {"cache_size_kib": 1.5},
        {"cache_size_kib": True},
        {"auto_vacuum": "weekly"},
        {"busy_timeout": -1},
        {"busy_timeout": "5"},
    ]:
        with pytest.raises(ConfigurationError):
            SQLiteOptions(**options)
    with pytest.raises(ConfigurationError):
        Database("postgresql://u:p@localhost/db", sqlite=SQLiteOptions())
    with pytest.raises(ConfigurationError):
        Database(f"sqlite:///{tmp_path}/x.db", sqlite={"journal_mode": "wal"})  # type: ignore[arg-type]
    db = Database(f"sqlite:///{tmp_path}/y.db")
    with pytest.raises(ConfigurationError):
        SQLConversationStore(db, sqlite=SQLiteOptions())
    with pytest.raises(ConfigurationError):
        SQLConversationStore(db, partition_messages="day")  # PostgreSQL only
    db.close()
    assert not (tmp_path / "x.db").exists()


class TestTunedSQLiteConversations(ConversationStoreSuite):
    """The whole suite on a rollback-journal database with a big cache and auto-vacuum."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> Any:
        opts = SQLiteOptions(
            journal_mode="delete", synchronous="full", cache_size_kib=32_768, auto_vacuum="full"
        )
        return lambda: CONVERSATION_STORES.create(f"sqlite:///{tmp_path}/t.db", sqlite=opts)


# ---------------------------------------------------------------- PostgreSQL partitions
@pytest.fixture(scope="module")
def fresh_pg(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the test server (partitioning changes the table for all)."""
    admin = sa.create_engine(
        postgres_url.replace("postgresql://", "postgresql+psycopg://"),
        isolation_level="AUTOCOMMIT",
    )
    made: list[str] = []

    def make() -> str:
        name = f"conv_{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        made.append(name)
        return postgres_url.rsplit("/", 1)[0] + "/" + name

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.mark.server
def test_messages_land_in_day_partitions(fresh_pg: Callable[[], str]) -> None:
    clock = Clock()
    url = fresh_pg()
    store = SQLConversationStore(url, clock=clock, partition_messages="day")
    for d in range(3):
        clock.now = T0 + d * DAY + 3600
        store.add_messages("u", "s", [Message("user", f"day{d}-{i}") for i in range(d + 1)])
    store.add_messages("u", "old", [Message("user", "given", created_at=T0 - 40 * DAY)])
    assert partitions(store.db) == {
        "vecmem_conv_messages_d20261130": 1,
        "vecmem_conv_messages_d20261201": 2,
        "vecmem_conv_messages_d20261202": 3,
        "vecmem_conv_messages_d20261021": 1,
    }
    got = store.get_messages("u", "s")
    assert [m.content for m in got] == ["day0-0", "day1-0", "day1-1", "day2-0", "day2-1", "day2-2"]
    assert [m.seq for m in got] == list(range(6))
    assert [m.content for m in store.last_messages("u", "s", 2)] == ["day2-1", "day2-2"]
    # a store opened without the option follows the table: a new day gets its partition
    plain = SQLConversationStore(url, clock=clock)
    clock.now = T0 + 10 * DAY
    plain.add_messages("u", "s", [Message("user", "later")])
    assert partitions(plain.db)["vecmem_conv_messages_d20261210"] == 1
    assert store.delete_session("u", "s") and store.get_messages("u", "s") == []
    with pytest.raises(ConfigurationError):
        SQLConversationStore(url, partition_messages="month")  # partitioned by day already
    with pytest.raises(ConfigurationError):
        SQLConversationStore(url, partition_messages="week")  # type: ignore[arg-type]
    plain.close()
    store.close()


@pytest.mark.server
def test_a_plain_table_converts_to_month_partitions_and_keeps_every_row(
    fresh_pg: Callable[[], str],
) -> None:
    clock = Clock()
    url = fresh_pg()
    before = SQLConversationStore(url, clock=clock)
    for d in (0, 1, 35, 70):
        clock.now = T0 + d * DAY
        before.add_messages(f"u{d % 2}", "s", [Message("user", f"d{d}")])
    exported = [before.export(u)["sessions"] for u in ("u0", "u1")]
    before.close()
    after = SQLConversationStore(url, clock=clock, partition_messages="month")
    assert partitions(after.db) == {
        "vecmem_conv_messages_m202611": 1,
        "vecmem_conv_messages_m202612": 1,
        "vecmem_conv_messages_m202701": 1,
        "vecmem_conv_messages_m202702": 1,
    }
    assert [after.export(u)["sessions"] for u in ("u0", "u1")] == exported
    with after.db.engine.connect() as conn:
        kind = conn.exec_driver_sql(
            "SELECT relkind FROM pg_class WHERE relname = 'vecmem_conv_messages'"
        ).scalar()
    assert kind == "p"
    after.add_messages("u0", "s", [Message("user", "new")])
    assert [m.content for m in after.get_messages("u0", "s")][-1] == "new"
    after.close()


@pytest.fixture(scope="module")
def partitioned(fresh_pg: Callable[[], str]) -> Iterator[Any]:
    store = CONVERSATION_STORES.create(fresh_pg(), partition_messages="day")
    yield store
    store.close()


@pytest.mark.server
class TestPartitionedPostgresConversations(ConversationStoreSuite):
    """The whole suite, queries unchanged, on a table partitioned by day."""

    @pytest.fixture
    def store_factory(self, partitioned: Any) -> Any:
        return lambda: partitioned


@pytest.mark.server
def test_the_async_store_follows_a_partitioned_table(fresh_pg: Callable[[], str]) -> None:
    import asyncio

    from vecmem.conversations.async_sql import AsyncSQLConversationStore

    clock = Clock()
    url = fresh_pg()
    SQLConversationStore(url, partition_messages="day").close()

    async def scenario() -> list[str]:
        store = AsyncSQLConversationStore(url, clock=clock)
        view = store.with_tenant("other")
        clock.now = T0 + 5 * DAY
        await view.add_messages("u", "s", [Message("user", "async")])
        await store.add_messages("u", "s", [Message("user", "old", created_at=T0 - 3 * DAY)])
        got = [m.content for m in await view.get_messages("u", "s")]
        await store.aclose()
        return got

    assert asyncio.run(scenario()) == ["async"]
    db = Database(url)
    assert partitions(db) == {
        "vecmem_conv_messages_d20261205": 1,
        "vecmem_conv_messages_d20261127": 1,
    }
    db.close()
