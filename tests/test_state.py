"""The state suite on every backend: memory, SQLite, PostgreSQL, MariaDB and Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vecmem.state import MemoryStateStore
from vecmem.testing.state import StateStoreSuite


@pytest.fixture(scope="module")
def sqlite_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from vecmem.state import SQLStateStore

    store = SQLStateStore(f"sqlite:///{tmp_path_factory.mktemp('state')}/state.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres_state(postgres_url: str) -> Iterator[Any]:
    from vecmem.state import SQLStateStore

    store = SQLStateStore(postgres_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def mariadb_state(mariadb_url: str) -> Iterator[Any]:
    from vecmem.state import SQLStateStore

    store = SQLStateStore(mariadb_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def redis_state(redis_url: str) -> Iterator[Any]:
    from vecmem.state import RedisStateStore

    store = RedisStateStore(redis_url)
    yield store
    store.close()


class TestMemoryState(StateStoreSuite):
    @pytest.fixture
    def store_factory(self) -> Any:
        return lambda: MemoryStateStore()


class TestSQLiteState(StateStoreSuite):
    @pytest.fixture
    def store_factory(self, sqlite_state: Any) -> Any:
        return lambda: sqlite_state


@pytest.mark.server
class TestPostgresState(StateStoreSuite):
    @pytest.fixture
    def store_factory(self, postgres_state: Any) -> Any:
        return lambda: postgres_state


@pytest.mark.server
class TestMariaDBState(StateStoreSuite):
    @pytest.fixture
    def store_factory(self, mariadb_state: Any) -> Any:
        return lambda: mariadb_state


@pytest.mark.server
class TestRedisState(StateStoreSuite):
    @pytest.fixture
    def store_factory(self, redis_state: Any) -> Any:
        return lambda: redis_state
