"""The session read cache: the whole conversation suite through the cache (in-process LRU on
memory and SQLite, Redis on PostgreSQL and SQLite), hits and misses counted, invalidation by
writes from another store instance and from another process, and reads that race a write never
leave a stale entry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.conversations import MemoryConversationStore, Message
from vecmem.conversations.cache import MISS, CachedConversationStore, LRUCache, RedisCache
from vecmem.conversations.sql import SQLConversationStore
from vecmem.errors import ConfigurationError, NotFoundError, PermissionDeniedError
from vecmem.testing.conversations import ConversationStoreSuite


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLConversationStore]:
    store = SQLConversationStore(f"sqlite:///{tmp_path_factory.mktemp('cc')}/c.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres_store(postgres_url: str) -> Iterator[SQLConversationStore]:
    store = SQLConversationStore(postgres_url)
    yield store
    store.close()


def _redis(url: str) -> RedisCache:
    return RedisCache(url, prefix=f"test-cc-{uuid.uuid4().hex[:8]}")


class TestLRUOverMemory(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self) -> Any:
        return lambda: CachedConversationStore(MemoryConversationStore(), cache=LRUCache(50))


class TestLRUOverSQLite(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, sqlite_store: SQLConversationStore) -> Any:
        return lambda: CachedConversationStore(sqlite_store, cache=LRUCache(50))


@pytest.mark.server
class TestRedisOverPostgres(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, postgres_store: SQLConversationStore, redis_url: str) -> Any:
        return lambda: CachedConversationStore(postgres_store, cache=_redis(redis_url))


def test_reads_hit_and_writes_invalidate() -> None:
    cache = LRUCache(10)
    store = CachedConversationStore(MemoryConversationStore(), cache=cache)
    store.add_messages("u", "s", [Message("user", "a")])
    for _ in range(3):
        assert [m.content for m in store.last_messages("u", "s", 5)] == ["a"]
        assert store.get_session("u", "s").message_count == 1
    assert (cache.hits, cache.misses) == (5, 1)  # the first page read also cached the header
    store.add_messages("u", "s", [Message("user", "b")])
    assert [m.content for m in store.last_messages("u", "s", 5)] == ["a", "b"]
    assert store.get_session("u", "s").message_count == 2
    store.acting_as("u").add_messages("u", "s", [Message("user", "c")])  # a view invalidates too
    assert store.get_session("u", "s").message_count == 3
    store.delete_user("u")
    with pytest.raises(NotFoundError):
        store.get_session("u", "s")
    assert store.get_messages("u", "s") == []


def test_the_lru_keeps_only_maxsize_sessions() -> None:
    cache = LRUCache(2)
    store = CachedConversationStore(MemoryConversationStore(), cache=cache)
    for sid in ("a", "b", "c"):
        store.add_messages("u", sid, [Message("user", sid)])
        store.get_session("u", sid)
    store.get_session("u", "c")
    store.get_session("u", "a")  # evicted by c: a miss
    assert (cache.hits, cache.misses) == (1, 4)
    with pytest.raises(ConfigurationError):
        LRUCache(0)


@pytest.mark.parametrize("kind", ["lru", "redis"])
def test_a_read_racing_a_write_leaves_no_stale_entry(
    kind: str, request: pytest.FixtureRequest
) -> None:
    cache: Any = LRUCache(10) if kind == "lru" else _redis(request.getfixturevalue("redis_url"))
    key, other = ("t", "u", "s"), ("t", "u", "other")
    _, stamp = cache.get(key, ("session",))  # a reader misses and goes to the store ...
    cache.invalidate([key])  # ... a writer commits and invalidates ...
    cache.put(key, ("session",), _session("old"), stamp)  # ... the reader stores what it read
    assert cache.get(key, ("session",))[0] is MISS
    _, stamp = cache.get(other, ("session",))
    cache.invalidate([key])  # another session changed: this entry may still be stored
    cache.put(other, ("session",), _session("fresh"), stamp)
    if kind == "redis":  # versions are per session in Redis
        assert cache.get(other, ("session",))[0].title == "fresh"


def _session(title: str) -> Any:
    from vecmem.conversations import Session

    return Session("u", "s", title=title)


def test_two_instances_share_a_redis_cache(tmp_path: Path, redis_url: str) -> None:
    url, prefix = f"sqlite:///{tmp_path}/c.db", f"two-{uuid.uuid4().hex[:8]}"
    a = CachedConversationStore(
        SQLConversationStore(url), cache=RedisCache(redis_url, prefix=prefix)
    )
    b = CachedConversationStore(
        SQLConversationStore(url), cache=RedisCache(redis_url, prefix=prefix)
    )
    a.add_messages("u", "s", [Message("user", "one")])
    assert [m.content for m in a.last_messages("u", "s", 5)] == ["one"]
    assert [m.content for m in b.last_messages("u", "s", 5)] == ["one"]
    assert b.cache.hits == 1  # b read what a cached
    b.add_messages("u", "s", [Message("user", "two")])
    b.save_session("u", "s", title="by b")
    assert [m.content for m in a.last_messages("u", "s", 5)] == ["one", "two"]
    assert a.get_session("u", "s").title == "by b"
    a.close()
    b.close()


WRITER = textwrap.dedent("""
    import sys
    from vecmem.conversations import Message
    from vecmem.conversations.cache import CachedConversationStore, RedisCache
    from vecmem.conversations.sql import SQLConversationStore
    store = CachedConversationStore(
        SQLConversationStore(sys.argv[1]), cache=RedisCache(sys.argv[2], prefix=sys.argv[3])
    )
    for i in range(int(sys.argv[4])):
        store.add_messages("u", "s", [Message("user", f"child {i}")])
    store.close()
""")


def test_another_process_writes_are_seen(tmp_path: Path, redis_url: str) -> None:
    url, prefix = f"sqlite:///{tmp_path}/c.db", f"proc-{uuid.uuid4().hex[:8]}"
    store = CachedConversationStore(
        SQLConversationStore(url), cache=RedisCache(redis_url, prefix=prefix)
    )
    store.add_messages("u", "s", [Message("user", "parent")])
    assert store.get_session("u", "s").message_count == 1  # cached now
    for n in (3, 2):
        subprocess.run(
            [sys.executable, "-c", WRITER, url, redis_url, prefix, str(n)], check=True, timeout=120
        )
        got = store.get_messages("u", "s")
        assert got[-1].content == f"child {n - 1}"
        assert store.get_session("u", "s").message_count == len(got)
    assert len(got) == 6
    store.close()


def test_redis_versions_outlive_the_values_stored_under_them(redis_url: str) -> None:
    """A version counter that expired while a value stored under it lived on would restart at
    0 and, after writes, reach that value's version again: a stale read."""
    cache = RedisCache(redis_url, ttl=5, prefix=f"ttl-{uuid.uuid4().hex[:8]}")
    key = ("t", "u", "s")
    cache.invalidate([key])
    _, stamp = cache.get(key, ("session",))
    cache.put(key, ("session",), _session("v1"), stamp)
    name = cache._name(key)
    value_ttl = cache.client.ttl(f"{name}:{stamp.decode()}")
    assert 0 < value_ttl <= 5 < cache.client.ttl(name)
    cache.client.expire(name, 1)  # nearly gone: the next value stored renews it
    _, stamp = cache.get(key, ("messages", None, 0, False))
    cache.put(key, ("messages", None, 0, False), _page(), stamp)
    assert cache.client.ttl(name) > 5


def _page() -> Any:
    from vecmem.conversations.cache import _Page

    return _Page(None, [])


@pytest.mark.parametrize("kind", ["lru", "redis"])
def test_a_cache_over_a_participants_view_checks_every_read(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A wrapper built over a store already acting as a participant shares the owner's cache
    entries only through the store's permission check: what the owner's wrapper cached is not
    handed to a user without a grant, nor after the grant is revoked."""
    if kind == "lru":
        cache: Any = LRUCache(maxsize=100)
    else:
        cache = RedisCache(request.getfixturevalue("redis_url"), prefix=uuid.uuid4().hex[:8])
    root = SQLConversationStore(f"sqlite:///{tmp_path}/c.db")
    owner = CachedConversationStore(root, cache=cache)
    bob = CachedConversationStore(root.acting_as("bob"), cache=cache)
    owner.add_messages("alice", "s", [Message("user", "private")])
    assert owner.get_session("alice", "s").message_count == 1  # cached now
    assert [m.content for m in owner.last_messages("alice", "s", 5)] == ["private"]
    with pytest.raises(PermissionDeniedError):
        bob.get_session("alice", "s")
    with pytest.raises(PermissionDeniedError):
        bob.last_messages("alice", "s", 5)
    owner.add_participant("alice", "s", "bob", permission="read")
    assert [m.content for m in bob.last_messages("alice", "s", 5)] == ["private"]
    owner.remove_participant("alice", "s", "bob")
    with pytest.raises(PermissionDeniedError):
        bob.get_messages("alice", "s")
    root.close()


class _PausingStore(SQLConversationStore):
    """A real SQLite store that stops at one point of a call until the test lets it go on, so
    that another thread's calls interleave exactly there."""

    pause: str = ""  # "delete_user": before deleting; "get_messages": after reading

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.reached, self.go_on = threading.Event(), threading.Event()

    def _stop(self, where: str) -> None:
        if self.pause == where:
            self.pause = ""
            self.reached.set()
            assert self.go_on.wait(30)

    def delete_user(self, user_id: str) -> int:
        self._stop("delete_user")
        return super().delete_user(user_id)

    def get_messages(self, *args: Any, **kwargs: Any) -> list[Message]:
        out = super().get_messages(*args, **kwargs)
        self._stop("get_messages")
        return out


def _cache(kind: str, request: pytest.FixtureRequest) -> Any:
    return LRUCache(100) if kind == "lru" else _redis(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("kind", ["lru", "redis"])
def test_a_session_written_during_delete_user_is_not_served_after_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """delete_user listed the user's sessions and then deleted; a session another thread wrote
    and read (so cached) in between was deleted from the store but still served from the cache,
    a deleted user's data. Now the whole user is invalidated after the delete."""
    root = _PausingStore(f"sqlite:///{tmp_path}/c.db")
    cached = CachedConversationStore(root, cache=_cache(kind, request))
    cached.add_messages("u", "old", [Message("user", "old")])
    root.pause = "delete_user"
    deleted: list[int] = []
    worker = threading.Thread(target=lambda: deleted.append(cached.delete_user("u")))
    worker.start()
    assert root.reached.wait(30)  # delete_user is under way, the store's delete not yet run
    cached.add_messages("u", "new", [Message("user", "secret")])  # another thread writes ...
    assert [m.content for m in cached.get_messages("u", "new")] == ["secret"]  # ... and reads
    assert cached.get_session("u", "new").message_count == 1
    root.go_on.set()
    worker.join(30)
    assert deleted == [2] and root.query_sessions(user_id="u") == []  # both gone from the store
    assert cached.get_messages("u", "new") == []
    assert cached.last_messages("u", "new", 5) == []
    with pytest.raises(NotFoundError):
        cached.get_session("u", "new")
    cached.add_messages("u", "new", [Message("user", "after")])  # the user can start again
    assert [m.content for m in cached.get_messages("u", "new")] == ["after"]
    root.close()


@pytest.mark.parametrize("kind", ["lru", "redis"])
def test_a_read_begun_before_delete_user_stores_nothing_after_it(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A reader that read a session before delete_user and stores its page after it: the page
    is dropped, also for a session the cache had never held."""
    root = _PausingStore(f"sqlite:///{tmp_path}/c.db")
    cached = CachedConversationStore(root, cache=_cache(kind, request))
    root.add_messages("u", "s", [Message("user", "before")])  # not through the cache
    root.pause = "get_messages"
    read: list[list[Message]] = []
    reader = threading.Thread(target=lambda: read.append(cached.get_messages("u", "s")))
    reader.start()
    assert root.reached.wait(30)  # the reader has the old page, not yet cached
    assert cached.delete_user("u") == 1
    root.go_on.set()
    reader.join(30)
    assert [m.content for m in read[0]] == ["before"]  # what it read before the delete
    assert cached.get_messages("u", "s") == []  # ... and did not leave in the cache
    with pytest.raises(NotFoundError):
        cached.get_session("u", "s")
    root.close()
