"""Per-tenant quotas (sessions, content bytes, requests per minute) on memory, SQLite, PostgreSQL
and MariaDB: refused with typed errors and nothing written; the whole conversation suite through
the wrapper. (``usage()`` itself is in the shared SessionSuite.)"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem.conversations import MemoryConversationStore, Message
from vecmem.conversations.quota import QuotaConversationStore, TenantQuota
from vecmem.conversations.sql import SQLConversationStore
from vecmem.errors import (
    ConfigurationError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitedError,
)
from vecmem.testing.conversations import ConversationStoreSuite


@pytest.fixture(scope="module")
def sqlite_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SQLConversationStore]:
    store = SQLConversationStore(f"sqlite:///{tmp_path_factory.mktemp('q')}/q.db")
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite", "postgres", "mariadb"])
def root(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryConversationStore()
    elif request.param == "sqlite":
        yield request.getfixturevalue("sqlite_root")
    else:
        url = request.getfixturevalue(f"{request.param}_url")
        store = SQLConversationStore(url)
        yield store
        store.close()


def _tenant() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_session_quota_refuses_new_sessions_only(root: Any) -> None:
    store = QuotaConversationStore(
        root.with_tenant(_tenant()), quota=TenantQuota(max_sessions=2), refresh=3600
    )
    store.add_messages("u", "s1", [Message("user", "one")])
    store.save_session("u", "s2", title="two")
    refused = [
        lambda: store.add_messages("u", "s3", [Message("user", "three")]),
        lambda: store.save_session("u", "s3", title="three"),
        lambda: store.set_session_limits("u", "s3", ttl=60),
        lambda: store.branch_session("u", "s1", "s3", at=1),
        lambda: store.merge_sessions("u", "s1", "s2", into="s3"),
    ]
    for call in refused:
        with pytest.raises(QuotaExceededError):
            call()
        with pytest.raises(NotFoundError):
            store.get_session("u", "s3")
    store.add_messages("u", "s1", [Message("user", "existing sessions take more")])
    store.merge_sessions("u", "s1", "s2")  # into the primary: no new session
    assert store.usage().sessions == 2
    assert store.delete_session("u", "s2") is True
    store.add_messages("u", "s3", [Message("user", "room again")])
    with pytest.raises(QuotaExceededError):
        store.add_messages("v", "s4", [Message("user", "another user, same tenant")])


def test_byte_quota_counts_content_and_frees_on_trim(root: Any) -> None:
    store = QuotaConversationStore(
        root.with_tenant(_tenant()), quota=TenantQuota(max_bytes=100), refresh=3600
    )
    store.add_messages("u", "s", [Message("user", "a" * 60)])
    before = store.get_messages("u", "s")
    with pytest.raises(QuotaExceededError):
        store.add_messages("u", "s", [Message("user", "b" * 20), Message("user", "é" * 11)])
    assert store.get_messages("u", "s") == before  # nothing of the batch was written
    store.add_messages("u", "s", [Message("user", "é" * 20)])  # 40 bytes: exactly 100
    with pytest.raises(QuotaExceededError):
        store.add_messages("u", "other", [Message("user", "x")])
    store.set_session_limits("u", "s", max_messages=1, overflow="trim_oldest")  # drops the 60
    store.add_messages("u", "s", [Message("user", "c" * 30)])
    assert store.usage().content_bytes == 30  # the 40-byte message was trimmed as well


def test_rate_limit_per_tenant_per_minute(root: Any) -> None:
    clock = Clock()
    store = QuotaConversationStore(
        root.with_tenant(_tenant()), quota=TenantQuota(requests_per_minute=3), clock=clock
    )
    store.add_messages("u", "s", [Message("user", "1")])
    clock.now += 20
    store.get_messages("u", "s")
    store.last_messages("u", "s", 1)
    with pytest.raises(RateLimitedError) as err:
        store.add_messages("u", "s", [Message("user", "refused")])
    assert err.value.retry_after == pytest.approx(40)
    assert isinstance(err.value, QuotaExceededError)
    assert [m.content for m in root.with_tenant(store.tenant).get_messages("u", "s")] == ["1"]
    other = store.with_tenant(_tenant())  # its own budget
    for _ in range(3):
        other.get_messages("u", "s")
    clock.now += 40.5  # the first request is a minute old
    store.add_messages("u", "s", [Message("user", "2")])
    with pytest.raises(RateLimitedError):
        store.get_session("u", "s")


def test_quotas_are_per_tenant(root: Any) -> None:
    small, big = _tenant(), _tenant()
    store = QuotaConversationStore(
        root.with_tenant(big),
        quota=TenantQuota(max_sessions=10),
        quotas={small: TenantQuota(max_sessions=1)},
    )
    s = store.with_tenant(small)
    s.add_messages("u", "a", [Message("user", "x")])
    with pytest.raises(QuotaExceededError):
        s.add_messages("u", "b", [Message("user", "x")])
    for i in range(10):
        store.add_messages("u", f"s{i}", [Message("user", "x")])
    with pytest.raises(QuotaExceededError):
        store.add_messages("u", "s10", [Message("user", "x")])


def test_participants_writes_count_in_the_owners_tenant(root: Any) -> None:
    store = QuotaConversationStore(
        root.with_tenant(_tenant()), quota=TenantQuota(max_bytes=10), refresh=3600
    )
    store.add_messages("alice", "s", [Message("user", "12345")])
    store.add_participant("alice", "s", "bob", permission="write")
    bob = store.acting_as("bob")
    bob.add_messages("alice", "s", [Message("user", "678")])
    with pytest.raises(QuotaExceededError):
        bob.add_messages("alice", "s", [Message("user", "901")])
    with pytest.raises(PermissionDeniedError):
        store.acting_as("eve").add_messages("alice", "s", [Message("user", "x")])
    assert store.usage().content_bytes == 8


def test_two_processes_share_the_count_through_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    quota = TenantQuota(max_sessions=2)
    a = QuotaConversationStore(SQLConversationStore(url, tenant="t"), quota=quota, refresh=0)
    b = QuotaConversationStore(SQLConversationStore(url, tenant="t"), quota=quota, refresh=0)
    a.add_messages("u", "s1", [Message("user", "x")])
    a.add_messages("u", "s2", [Message("user", "x")])
    with pytest.raises(QuotaExceededError):
        b.add_messages("u", "s3", [Message("user", "x")])
    a.close()
    b.close()


def test_bad_quotas_are_configuration_errors() -> None:
    for bad in ({"max_sessions": 0}, {"max_bytes": -1}, {"requests_per_minute": 1.5}):
        with pytest.raises(ConfigurationError):
            TenantQuota(**bad)
    with pytest.raises(ConfigurationError):
        QuotaConversationStore(MemoryConversationStore(), refresh=-1)


class TestSuiteThroughQuotas(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, sqlite_root: SQLConversationStore) -> Any:
        quota = TenantQuota(max_sessions=10_000, max_bytes=10**9, requests_per_minute=10**6)
        return lambda: QuotaConversationStore(sqlite_root, quota=quota, refresh=0)


@pytest.mark.parametrize("kind", ["sessions", "bytes"])
def test_concurrent_writers_cannot_pass_the_quota_together(root: Any, kind: str) -> None:
    """Threads of one process admitted at once: each admission reserves what it will write, so
    12 writers racing for 3 sessions (or 3 messages' bytes) leave exactly 3, the rest refused."""
    quota = TenantQuota(max_sessions=3) if kind == "sessions" else TenantQuota(max_bytes=30)
    store = QuotaConversationStore(root.with_tenant(_tenant()), quota=quota, refresh=3600)
    store.usage()  # measured once before the race
    start = threading.Barrier(12)
    refused: list[BaseException] = []

    def write(i: int) -> None:
        start.wait()
        sid = f"s{i}" if kind == "sessions" else "s"
        try:
            store.add_messages("u", sid, [Message("user", "x" * 10)])
        except QuotaExceededError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    used = store.store.usage()
    assert (used.sessions, used.content_bytes) == ((3, 30) if kind == "sessions" else (1, 30))
    assert len(refused) == 9


def test_empty_writes_count_the_sessions_they_create(root: Any) -> None:
    """add_messages with no messages still creates the session: it counts against max_sessions
    at once (before, it was counted only at the next measurement, so a tenant could create any
    number of empty sessions in between)."""
    store = QuotaConversationStore(
        root.with_tenant(_tenant()), quota=TenantQuota(max_sessions=2), refresh=3600
    )
    store.add_messages("u", "a", [])
    store.add_messages("u", "b", [])
    with pytest.raises(QuotaExceededError):
        store.add_messages("u", "c", [])
    with pytest.raises(NotFoundError):
        store.get_session("u", "c")
    assert store.store.usage().sessions == 2


def test_a_participants_view_is_wrapped_through_acting_as(root: Any) -> None:
    """Quotas are measured on the tenant's own store: wrapping a participant's view is a
    ConfigurationError at once (before, each of its writes failed with PermissionDeniedError
    from measuring, even with a write grant); the wrapper's acting_as is the way."""
    tenant = root.with_tenant(_tenant())
    tenant.add_messages("alice", "s", [Message("user", "hi")])
    tenant.add_participant("alice", "s", "bob", permission="write")
    with pytest.raises(ConfigurationError, match="acting_as"):
        QuotaConversationStore(tenant.acting_as("bob"), quota=TenantQuota(max_bytes=100))
    bob = QuotaConversationStore(tenant, quota=TenantQuota(max_bytes=100)).acting_as("bob")
    assert [m.seq for m in bob.add_messages("alice", "s", [Message("user", "yo")])] == [1]
