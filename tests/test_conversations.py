"""The conversation suite on every backend: memory, JSON files, SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from vecmem.conversations import JSONConversationStore, MemoryConversationStore
from vecmem.registry import CONVERSATION_STORES
from vecmem.testing.conversations import ConversationStoreSuite


@pytest.fixture(scope="module")
def sqlite_conversations(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    url = f"sqlite:///{tmp_path_factory.mktemp('conv')}/conv.db"
    store = CONVERSATION_STORES.create(url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres_conversations(postgres_url: str) -> Iterator[Any]:
    store = CONVERSATION_STORES.create(postgres_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def mariadb_conversations(mariadb_url: str) -> Iterator[Any]:
    store = CONVERSATION_STORES.create(mariadb_url)
    yield store
    store.close()


class TestMemoryConversations(ConversationStoreSuite):
    @pytest.fixture
    def backend(self) -> MemoryConversationStore:
        return MemoryConversationStore()


class TestJSONFileConversations(ConversationStoreSuite):
    @pytest.fixture
    def backend(self, tmp_path: Any) -> JSONConversationStore:
        return CONVERSATION_STORES.create(f"file://{tmp_path}")  # type: ignore[no-any-return]


class TestSQLiteConversations(ConversationStoreSuite):
    @pytest.fixture
    def backend(self, sqlite_conversations: Any) -> Any:
        return sqlite_conversations


@pytest.mark.server
class TestPostgresConversations(ConversationStoreSuite):
    @pytest.fixture
    def backend(self, postgres_conversations: Any) -> Any:
        return postgres_conversations


@pytest.mark.server
class TestMariaDBConversations(ConversationStoreSuite):
    @pytest.fixture
    def backend(self, mariadb_conversations: Any) -> Any:
        return mariadb_conversations


def test_json_files_are_readable_and_ids_cannot_escape(tmp_path: Any) -> None:
    store = JSONConversationStore(tmp_path, tenant="acme")
    from vecmem.conversations import Message

    store.add_messages("../../etc", "..", [Message("user", "hi")])
    files = [p for p in tmp_path.rglob("*.json")]
    assert len(files) == 1 and tmp_path in files[0].parents
    assert ".." not in files[0].relative_to(tmp_path).parts
    assert '"content": "hi"' in files[0].read_text()
    assert store.get_messages("../../etc", "..")[0].content == "hi"
    store.add_messages("User", "S", [Message("user", "case")])
    store.add_messages("user", "s", [Message("user", "lower")])
    assert store.get_messages("User", "S")[0].content == "case"
    assert store.get_messages("user", "s")[0].content == "lower"
