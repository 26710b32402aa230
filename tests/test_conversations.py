"""The conversation suite on every backend: memory, JSON files, SQLite, PostgreSQL, MariaDB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

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
    def store_factory(self) -> Any:
        return lambda: MemoryConversationStore()


class TestJSONFileConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> Any:
        return lambda: CONVERSATION_STORES.create(f"file://{tmp_path}")


class TestRotatedJSONFileConversations(ConversationStoreSuite):
    """The whole suite with every option of the JSON store on: 2 KB files, a backup per write."""

    @pytest.fixture
    def store_factory(self, tmp_path: Any) -> Any:
        return lambda: CONVERSATION_STORES.create(
            f"json://{tmp_path}", max_file_bytes=2048, backup_interval=0.001, backups_kept=2
        )


class TestSQLiteConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, sqlite_conversations: Any) -> Any:
        return lambda: sqlite_conversations


@pytest.mark.server
class TestPostgresConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, postgres_conversations: Any) -> Any:
        return lambda: postgres_conversations


@pytest.fixture(scope="module")
def redis_conversations(redis_url: str) -> Iterator[Any]:
    store = CONVERSATION_STORES.create(redis_url, tenant="t")
    yield store
    store.close()


@pytest.mark.server
class TestRedisConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, redis_conversations: Any) -> Any:
        return lambda: redis_conversations


@pytest.mark.server
class TestMariaDBConversations(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, mariadb_conversations: Any) -> Any:
        return lambda: mariadb_conversations


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


def test_json_user_and_session_names_stay_in_their_folders(tmp_path: Any) -> None:
    """Issue 13 finding 4: user_id ".." wrote ``root/<session>.json`` beside the tenants."""
    from vecmem.conversations import Message

    root = tmp_path / "conv"
    owner = JSONConversationStore(root, tenant="acme")
    owner.add_messages("alice", "s", [Message("user", "alice's")])
    crafted = [
        ".",
        "..",
        "../acme",
        "./alice",
        "%2e%2e",
        "ALICE",
        "Alice",
        "alice/",
        "a\\b",
        "~",
        "x" * 191,
    ]
    for name in crafted:
        store = JSONConversationStore(root, tenant=name[:64])
        store.add_messages(name, name, [Message("user", name)])
        assert store.get_messages(name, name)[0].content == name
        owner.add_messages(name, "s", [Message("user", f"{name} in acme")])
    assert sorted(os.listdir(tmp_path)) == ["conv"]
    files = [p.relative_to(root) for p in root.rglob("*.json")]
    assert all(len(p.parts) == 3 for p in files), files  # tenant/user/session.json, no other
    assert len(files) == 2 * len(crafted) + 1
    assert owner.get_messages("alice", "s")[0].content == "alice's"
    assert [s.user_id for s in owner.query_sessions()].count("alice") == 1


def test_json_files_written_before_names_were_escaped_stay_readable(tmp_path: Any) -> None:
    """Old stores kept upper case and dots in folder and file names (``User/S.json``); they are
    found and renamed on first use."""
    from vecmem.conversations import Message

    store = JSONConversationStore(tmp_path, tenant="Acme")
    store.add_messages("User", "S.1", [Message("user", "old")])
    os.rename(
        tmp_path / "%41cme" / "%55ser" / "%53%2E1.json", tmp_path / "%41cme" / "%55ser" / "S.1.json"
    )
    os.rename(tmp_path / "%41cme" / "%55ser", tmp_path / "%41cme" / "User")
    os.rename(tmp_path / "%41cme", tmp_path / "Acme")
    old = JSONConversationStore(tmp_path, tenant="Acme")
    assert [s.session_id for s in old.list_sessions("User")] == ["S.1"]
    assert old.get_messages("User", "S.1")[0].content == "old"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.json")) == [
        "%41cme/%55ser/%53%2E1.json"
    ]


def test_json_refuses_a_user_folder_that_is_a_link_out_of_the_tenant(tmp_path: Any) -> None:
    from vecmem.conversations import Message
    from vecmem.errors import ScopeEscapeError

    store = JSONConversationStore(tmp_path / "root", tenant="acme")
    store.add_messages("alice", "s", [Message("user", "hi")])
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "root" / "acme" / "mallory")
    with pytest.raises(ScopeEscapeError, match="outside"):
        store.add_messages("mallory", "s", [Message("user", "x")])
    with pytest.raises(ScopeEscapeError):
        store.get_messages("mallory", "s")
    assert os.listdir(tmp_path / "elsewhere") == []
    assert store.get_messages("alice", "s")[0].content == "hi"
    (tmp_path / "elsewhere" / "s.json").write_bytes(
        (tmp_path / "root" / "acme" / "alice" / "s.json").read_bytes()
    )
    assert [s.user_id for s in store.query_sessions()] == ["alice"]  # the link is not followed


@pytest.mark.server
def test_mariadb_writers_creating_sessions_of_one_user_at_once_all_succeed(
    mariadb_conversations: Any,
) -> None:
    """Rounds of 32 threads, each creating a session of one user and appending to it: at
    InnoDB's REPEATABLE READ the locking reads of missing rows locked gaps, and creators and
    appenders deadlocked past the retries (BackendError); at READ COMMITTED they do not."""
    import threading
    import uuid

    from vecmem.conversations import Message
    from vecmem.errors import VecmemError

    store = mariadb_conversations.with_tenant(f"gap-{uuid.uuid4().hex[:8]}")
    errors: list[Exception] = []

    def writer(r: int, w: int, start: threading.Barrier) -> None:
        start.wait()
        for i in range(8):
            try:
                store.add_messages("u", f"s{r}-{w}", [Message("user", str(i))])
                store.last_messages("u", f"s{r}-{w}", 10)
            except VecmemError as exc:  # collected: the assertion below names them
                errors.append(exc)

    for r in range(8):
        start = threading.Barrier(32)
        threads = [threading.Thread(target=writer, args=(r, w, start)) for w in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    assert store.usage() == type(store.usage())(
        sessions=8 * 32, messages=8 * 32 * 8, content_bytes=8 * 32 * 8
    )
