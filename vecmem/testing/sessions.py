"""Shared tests of session operations: branches, merges, TTL, a maximum of messages and
participants' permissions, enforced by the store itself.

:class:`~vecmem.testing.conversations.ConversationStoreSuite` inherits :class:`SessionSuite`, so
every conversation backend runs these with its ``store_factory``.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from vecmem.conversations import ConversationStore, Message, Usage
from vecmem.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    SessionFullError,
)
from vecmem.testing._factory import FactorySuite

MakeStore = Callable[[str], ConversationStore]
TTL = 1.0  # seconds: long enough for a loaded machine between two calls, short for the suite


def _texts(msgs: list[Message]) -> list[str]:
    return [m.content for m in msgs]


def _snapshot(store: ConversationStore, user: str, sid: str) -> tuple[Any, ...]:
    return (store.get_session(user, sid), store.get_messages(user, sid))


class SessionSuite(FactorySuite):
    """Branch, merge, limits and participants; needs the ``store_factory`` fixture."""

    @pytest.fixture
    def make_store(self, root_store: Any) -> MakeStore:
        return lambda tenant: root_store.with_tenant(tenant)

    @pytest.fixture
    def store(self, make_store: MakeStore) -> ConversationStore:
        return make_store(f"t-{uuid.uuid4().hex[:12]}")

    # -- branch ---------------------------------------------------------------------------------
    def test_branch_copies_the_first_messages(self, store: ConversationStore) -> None:
        src = store.add_messages(
            "u",
            "main",
            [Message("user", f"m{i}", usage=Usage(i, 1, "m", 0.5)) for i in range(5)],
            agent_id="ag",
        )
        store.save_session("u", "main", title="Trip", tags=["t"], metadata={"k": 1})
        b = store.branch_session("u", "main", "alt", at=3)
        assert (b.session_id, b.message_count, b.agent_id, b.title, b.tags, b.metadata) == (
            "alt",
            3,
            "ag",
            "Trip",
            ("t",),
            {"k": 1},
        )
        assert (b.input_tokens, b.output_tokens, b.cost) == (0 + 1 + 2, 3, pytest.approx(1.5))
        got = store.get_messages("u", "alt")
        assert [(m.id, m.content, m.created_at, m.usage) for m in got] == [
            (m.id, m.content, m.created_at, m.usage) for m in src[:3]
        ]
        assert [m.seq for m in got] == [0, 1, 2]
        assert store.get_session("u", "alt") == b
        store.add_messages("u", "alt", [Message("user", "only in the branch")])
        assert _texts(store.get_messages("u", "main")) == [f"m{i}" for i in range(5)]
        assert _texts(store.get_messages("u", "alt")) == ["m0", "m1", "m2", "only in the branch"]
        assert store.branch_session("u", "main", "empty", at=0).message_count == 0
        assert store.branch_session("u", "main", "all", at=5).message_count == 5

    def test_branch_refuses_bad_points_and_taken_ids(self, store: ConversationStore) -> None:
        store.add_messages("u", "main", [Message("user", "a"), Message("user", "b")])
        store.add_messages("u", "taken", [Message("user", "keep me")])
        before = _snapshot(store, "u", "taken")
        for at in (-1, 3, 1.5, None, True):
            with pytest.raises(InvalidInputError):
                store.branch_session("u", "main", "new", at=at)  # type: ignore[arg-type]
        with pytest.raises(ConflictError):
            store.branch_session("u", "main", "taken", at=1)
        with pytest.raises(ConflictError):
            store.branch_session("u", "main", "main", at=1)
        with pytest.raises(NotFoundError):
            store.branch_session("u", "missing", "new", at=0)
        with pytest.raises(InvalidInputError):
            store.branch_session("u", "main", "", at=0)
        assert _snapshot(store, "u", "taken") == before
        assert sorted(s.session_id for s in store.list_sessions("u")) == ["main", "taken"]

    # -- merge ----------------------------------------------------------------------------------
    def test_merge_primary_wins(self, store: ConversationStore) -> None:
        p = store.add_messages(
            "u", "p", [Message("user", "p0", id="x"), Message("user", "p1", usage=Usage(2, 0))]
        )
        store.save_session("u", "p", title="primary", tags=["a"], metadata={"k": "p"})
        store.add_messages(
            "u",
            "s",
            [
                Message("user", "s0", usage=Usage(5, 1, "m", 0.25)),
                Message("user", "secondary's copy of x", id="x"),
                Message("user", "s2"),
            ],
            agent_id="helper",
        )
        store.save_session("u", "s", title="secondary", tags=["b"], metadata={"k": "s", "j": 1})
        s_before = _snapshot(store, "u", "s")
        out = store.merge_sessions("u", "p", "s", strategy="primary_wins")
        got = store.get_messages("u", "p")
        assert _texts(got) == ["p0", "p1", "s0", "s2"]  # x kept once: the primary's copy
        assert [m.seq for m in got] == [0, 1, 2, 3] and got[0].id == p[0].id == "x"
        assert (out.session_id, out.title, out.agent_id, out.tags, out.metadata) == (
            "p",
            "primary",
            "helper",
            ("a", "b"),
            {"k": "p", "j": 1},
        )
        assert (out.message_count, out.input_tokens, out.output_tokens) == (4, 7, 1)
        assert out.cost == pytest.approx(0.25)
        assert store.get_session("u", "p") == out
        assert _snapshot(store, "u", "s") == s_before  # the secondary is left as it was
        store.add_messages("u", "p", [Message("user", "after")])
        assert store.get_messages("u", "p")[-1].seq == 4

    def test_merge_interleave_by_time_into_a_new_session(self, store: ConversationStore) -> None:
        store.add_messages(
            "u", "p", [Message("user", f"p{t}", created_at=float(t)) for t in (1, 4, 6)]
        )
        store.add_messages(
            "u",
            "s",
            [Message("user", f"s{t}", created_at=float(t)) for t in (2, 3, 6, 9)],
        )
        p_before, s_before = _snapshot(store, "u", "p"), _snapshot(store, "u", "s")
        out = store.merge_sessions("u", "p", "s", into="both", strategy="interleave_by_time")
        got = store.get_messages("u", "both")
        assert _texts(got) == ["p1", "s2", "s3", "p4", "p6", "s6", "s9"]  # tie: primary first
        assert [m.seq for m in got] == list(range(7)) and out.message_count == 7
        assert _snapshot(store, "u", "p") == p_before and _snapshot(store, "u", "s") == s_before
        with pytest.raises(ConflictError):
            store.merge_sessions("u", "p", "s", into="both")
        assert _texts(store.get_messages("u", "both")) == _texts(got)

    def test_merge_refuses_bad_input(self, store: ConversationStore) -> None:
        store.add_messages("u", "p", [Message("user", "p")])
        store.add_messages("u", "s", [Message("user", "s")])
        before = (_snapshot(store, "u", "p"), _snapshot(store, "u", "s"))
        bad: list[Callable[[], Any]] = [
            lambda: store.merge_sessions("u", "p", "s", strategy="newest"),  # type: ignore[arg-type]
            lambda: store.merge_sessions("u", "p", "p"),
            lambda: store.merge_sessions("u", "p", "s", into="s"),
            lambda: store.merge_sessions("u", "p", "s", into=""),
            lambda: store.merge_sessions("u", "p", ""),
        ]
        for call in bad:
            with pytest.raises(InvalidInputError):
                call()
        with pytest.raises(NotFoundError):
            store.merge_sessions("u", "p", "missing")
        with pytest.raises(NotFoundError):
            store.merge_sessions("u", "missing", "s", into="new")
        assert (_snapshot(store, "u", "p"), _snapshot(store, "u", "s")) == before
        assert sorted(s.session_id for s in store.list_sessions("u")) == ["p", "s"]

    # -- TTL ------------------------------------------------------------------------------------
    def test_expired_sessions_are_gone_and_purged(self, store: ConversationStore) -> None:
        store.add_messages("u", "short", [Message("user", "old"), Message("user", "older")])
        store.save_session("u", "short", tags=["t"])
        store.add_participant("u", "short", "bob", permission="read")
        s = store.set_session_limits("u", "short", ttl=TTL)
        assert s.expires_at is not None and s.expires_at > time.time() - 1
        store.add_messages("u", "kept", [Message("user", "stays")])
        assert store.get_session("u", "short").message_count == 2
        time.sleep(TTL + 0.1)
        with pytest.raises(NotFoundError):
            store.get_session("u", "short")
        assert store.get_messages("u", "short") == [] and store.last_messages("u", "short", 3) == []
        assert [x.session_id for x in store.query_sessions()] == ["kept"]
        assert [x.session_id for x in store.query_sessions(tags=["t"])] == []
        assert [x["session_id"] for x in store.export("u")["sessions"]] == ["kept"]
        with pytest.raises(NotFoundError):
            store.export("u", "short")
        with pytest.raises(NotFoundError):
            store.branch_session("u", "short", "b", at=0)
        with pytest.raises(PermissionDeniedError):  # the grant went with the session
            store.acting_as("bob").get_messages("u", "short")
        assert store.purge_expired() == 1
        assert store.purge_expired() == 0
        assert store.get_session("u", "kept").message_count == 1

    def test_writing_to_an_expired_session_starts_afresh(self, store: ConversationStore) -> None:
        store.add_messages("u", "s", [Message("user", "old", usage=Usage(7, 7))])
        store.save_session("u", "s", title="old title", tags=["old"])
        store.set_session_limits("u", "s", ttl=TTL, max_messages=1, overflow="refuse")
        time.sleep(TTL + 0.1)
        (m,) = store.add_messages("u", "s", [Message("user", "new")])
        s = store.get_session("u", "s")
        assert m.seq == 0 and _texts(store.get_messages("u", "s")) == ["new"]
        assert (s.message_count, s.input_tokens, s.title, s.tags) == (1, 0, None, ())
        assert (s.expires_at, s.max_messages) == (None, None)
        assert store.delete_session("u", "s") is True

    def test_ttl_can_be_renewed_or_cleared(self, store: ConversationStore) -> None:
        store.add_messages("u", "s", [Message("user", "x")])
        store.set_session_limits("u", "s", ttl=TTL)
        assert store.set_session_limits("u", "s", ttl=None).expires_at is None
        store.set_session_limits("u", "t", ttl=TTL)
        time.sleep(TTL / 2)
        store.set_session_limits("u", "t", ttl=3600)
        time.sleep(TTL / 2 + 0.1)
        assert store.get_session("u", "s").message_count == 1
        assert store.get_session("u", "t").expires_at is not None
        assert store.purge_expired() == 0
        assert store.delete_session("u", "t") is True

    def test_delete_does_not_count_expired_sessions(self, store: ConversationStore) -> None:
        store.add_messages("u", "a", [Message("user", "x")])
        store.add_messages("u", "b", [Message("user", "x")])
        store.set_session_limits("u", "a", ttl=TTL)
        time.sleep(TTL + 0.1)
        assert store.delete_session("u", "a") is False
        assert store.delete_user("u") == 1
        assert store.purge_expired() == 0

    # -- maximum number of messages ---------------------------------------------------------------
    def test_trim_oldest_keeps_the_newest(self, store: ConversationStore) -> None:
        store.add_messages(
            "u", "s", [Message("user", f"m{i}", usage=Usage(1, 0)) for i in range(4)]
        )
        s = store.set_session_limits("u", "s", max_messages=3, overflow="trim_oldest")
        assert (s.max_messages, s.overflow, s.message_count) == (3, "trim_oldest", 3)
        assert _texts(store.get_messages("u", "s")) == ["m1", "m2", "m3"]  # trimmed at once
        added = store.add_messages("u", "s", [Message("user", "m4", usage=Usage(1, 0))])
        assert added[0].seq == 4  # positions keep counting from the session's start
        got = store.get_messages("u", "s")
        assert _texts(got) == ["m2", "m3", "m4"] and [m.seq for m in got] == [2, 3, 4]
        store.add_messages("u", "s", [Message("user", f"b{i}") for i in range(5)])
        assert _texts(store.get_messages("u", "s")) == ["b2", "b3", "b4"]
        assert _texts(store.last_messages("u", "s", 2)) == ["b3", "b4"]
        assert _texts(store.get_messages("u", "s", limit=1, offset=1)) == ["b3"]
        s = store.get_session("u", "s")
        assert s.message_count == 3 and s.input_tokens == 5  # usage of dropped ones still counts

    def test_refuse_writes_nothing_past_the_maximum(self, store: ConversationStore) -> None:
        store.set_session_limits("u", "s", max_messages=2, overflow="refuse")
        store.add_messages("u", "s", [Message("user", "a"), Message("user", "b")])
        before = _snapshot(store, "u", "s")
        with pytest.raises(SessionFullError):
            store.add_messages("u", "s", [Message("user", "c", usage=Usage(9, 9))])
        with pytest.raises(QuotaExceededError):  # SessionFullError is a QuotaExceededError
            store.add_messages("u", "s", [Message("user", "c")])
        assert _snapshot(store, "u", "s") == before
        store.set_session_limits("u", "big", max_messages=2)
        with pytest.raises(SessionFullError):
            store.add_messages("u", "big", [Message("user", str(i)) for i in range(3)])
        assert store.get_session("u", "big").message_count == 0
        with pytest.raises(InvalidInputError):  # would drop messages under "refuse"
            store.set_session_limits("u", "s", max_messages=1, overflow="refuse")
        assert _snapshot(store, "u", "s") == before
        store.set_session_limits("u", "s", max_messages=None)
        store.add_messages("u", "s", [Message("user", "c")])
        assert store.get_session("u", "s").message_count == 3

    def test_merge_into_a_limited_primary_obeys_its_limit(self, store: ConversationStore) -> None:
        store.add_messages("u", "p", [Message("user", "p0"), Message("user", "p1")])
        store.add_messages("u", "s", [Message("user", "s0"), Message("user", "s1")])
        store.set_session_limits("u", "p", max_messages=3, overflow="refuse")
        before = _snapshot(store, "u", "p")
        with pytest.raises(SessionFullError):
            store.merge_sessions("u", "p", "s")
        assert _snapshot(store, "u", "p") == before
        store.set_session_limits("u", "p", max_messages=3, overflow="trim_oldest")
        store.merge_sessions("u", "p", "s")
        assert _texts(store.get_messages("u", "p")) == ["p1", "s0", "s1"]
        out = store.merge_sessions("u", "s", "p", into="n")  # a new session has no limits
        assert (out.message_count, out.max_messages) == (3, None)  # s0, s1 + p1

    def test_concurrent_writers_respect_the_maximum(self, store: ConversationStore) -> None:
        store.set_session_limits("u", "s", max_messages=5, overflow="trim_oldest")

        def write(k: int) -> None:
            for i in range(4):
                store.add_messages("u", "s", [Message("user", f"{k}-{i}")])

        threads = [threading.Thread(target=write, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = store.get_messages("u", "s")
        assert [m.seq for m in got] == list(range(7, 12))
        assert store.get_session("u", "s").message_count == 5

    def test_limits_reject_bad_values(self, store: ConversationStore) -> None:
        bad: list[dict[str, Any]] = [
            {"ttl": 0},
            {"ttl": -1},
            {"ttl": math.nan},
            {"ttl": math.inf},
            {"ttl": "60"},
            {"ttl": True},
            {"max_messages": 0},
            {"max_messages": -3},
            {"max_messages": 2.5},
            {"max_messages": True},
            {"max_messages": 3, "overflow": "drop"},
        ]
        for kwargs in bad:
            with pytest.raises(InvalidInputError):
                store.set_session_limits("u", "s", **kwargs)
        assert store.query_sessions() == []  # nothing half-written

    def test_usage_counts_live_sessions_and_utf8_bytes(self, store: ConversationStore) -> None:
        from vecmem.conversations.base import TenantUsage

        assert store.usage() == TenantUsage(0, 0, 0)
        store.add_messages("u", "a", [Message("user", "héllo"), Message("user", "✓")])
        store.add_messages("v", "b", [Message("user", "1234")])
        store.add_messages("u", "gone", [Message("user", "x" * 50)])
        store.set_session_limits("u", "gone", ttl=TTL)
        assert store.usage() == TenantUsage(3, 4, 6 + 3 + 4 + 50)
        time.sleep(TTL + 0.1)
        assert store.usage() == TenantUsage(2, 3, 13)
        with pytest.raises(PermissionDeniedError):
            store.acting_as("bob").usage()

    # -- participants -----------------------------------------------------------------------------
    def test_participants_are_enforced_by_the_store(self, store: ConversationStore) -> None:
        store.add_messages("alice", "s", [Message("user", "hi")])
        for who, perm in [("bob", "read"), ("carol", "write"), ("dave", "moderate")]:
            store.add_participant("alice", "s", who, permission=perm)  # type: ignore[arg-type]
        assert store.list_participants("alice", "s") == {
            "bob": "read",
            "carol": "write",
            "dave": "moderate",
        }
        bob, carol = store.acting_as("bob"), store.acting_as("carol")
        dave, eve = store.acting_as("dave"), store.acting_as("eve")
        assert bob.actor == "bob" and store.actor is None
        assert _texts(bob.get_messages("alice", "s")) == ["hi"]
        assert bob.get_session("alice", "s").message_count == 1
        assert bob.list_participants("alice", "s")["bob"] == "read"
        assert [x["session_id"] for x in bob.export("alice", "s")["sessions"]] == ["s"]
        before = _snapshot(store, "alice", "s")
        denied: list[Callable[[], Any]] = [
            lambda: bob.add_messages("alice", "s", [Message("user", "bob was here")]),
            lambda: bob.save_session("alice", "s", title="bob's"),
            lambda: carol.save_session("alice", "s", title="carol's"),
            lambda: carol.set_session_limits("alice", "s", ttl=1),
            lambda: carol.add_participant("alice", "s", "eve", permission="write"),
            lambda: carol.remove_participant("alice", "s", "bob"),
            lambda: carol.delete_session("alice", "s"),
            lambda: carol.branch_session("alice", "s", "copy", at=1),
            lambda: eve.get_messages("alice", "s"),
            lambda: eve.get_session("alice", "s"),
            lambda: eve.add_messages("alice", "s", [Message("user", "eve")]),
            lambda: eve.add_messages("alice", "new", [Message("user", "eve")]),
            lambda: eve.list_participants("alice", "s"),
            lambda: bob.query_sessions(user_id="alice"),
            lambda: bob.list_sessions("alice"),
            lambda: bob.export("alice"),
            lambda: bob.delete_user("alice"),
        ]
        for call in denied:
            with pytest.raises(PermissionDeniedError):
                call()
        with pytest.raises(PermissionError):  # PermissionDeniedError is a PermissionError too
            bob.add_messages("alice", "s", [Message("user", "x")])
        assert _snapshot(store, "alice", "s") == before  # nothing was written
        assert store.list_participants("alice", "s") == {
            "bob": "read",
            "carol": "write",
            "dave": "moderate",
        }
        assert sorted(s.session_id for s in store.list_sessions("alice")) == ["s"]
        (m,) = carol.add_messages("alice", "s", [Message("user", "carol writes")])
        assert m.seq == 1 and store.get_session("alice", "s").message_count == 2
        assert dave.save_session("alice", "s", title="moderated").title == "moderated"
        dave.add_participant("alice", "s", "eve", permission="read")
        assert _texts(eve.get_messages("alice", "s")) == ["hi", "carol writes"]
        assert dave.remove_participant("alice", "s", "carol") is True
        assert dave.remove_participant("alice", "s", "carol") is False
        with pytest.raises(PermissionDeniedError):  # revoked at once
            carol.add_messages("alice", "s", [Message("user", "too late")])
        assert bob.list_sessions("bob") == [] and bob.query_sessions() == []  # their own: none
        bob.add_messages("bob", "mine", [Message("user", "own session")])
        assert [s.session_id for s in bob.query_sessions()] == ["mine"]
        assert store.get_session("alice", "s").message_count == 2

    def test_grants_end_with_the_session(self, store: ConversationStore) -> None:
        store.add_messages("alice", "s", [Message("user", "hi")])
        store.add_participant("alice", "s", "bob", permission="write")
        assert store.delete_session("alice", "s") is True
        store.add_messages("alice", "s", [Message("user", "a new session, same id")])
        assert store.list_participants("alice", "s") == {}
        with pytest.raises(PermissionDeniedError):
            store.acting_as("bob").get_messages("alice", "s")

    def test_moderators_branch_and_merge_the_owners_sessions(
        self, store: ConversationStore
    ) -> None:
        store.add_messages("alice", "a", [Message("user", "a0"), Message("user", "a1")])
        store.add_messages("alice", "b", [Message("user", "b0")])
        store.add_participant("alice", "a", "dave", permission="moderate")
        dave = store.acting_as("dave")
        assert dave.branch_session("alice", "a", "a-branch", at=1).user_id == "alice"
        assert _texts(store.get_messages("alice", "a-branch")) == ["a0"]
        with pytest.raises(PermissionDeniedError):  # dave moderates a, not b
            dave.merge_sessions("alice", "a", "b")
        assert _texts(store.get_messages("alice", "a")) == ["a0", "a1"]
        store.add_participant("alice", "b", "dave", permission="moderate")
        dave.merge_sessions("alice", "a", "b")
        assert _texts(store.get_messages("alice", "a")) == ["a0", "a1", "b0"]
        assert store.list_participants("alice", "a-branch") == {}  # grants are not copied

    def test_participant_input_is_checked(self, store: ConversationStore) -> None:
        store.add_messages("alice", "s", [Message("user", "hi")])
        for perm in ("admin", "", None, "READ"):
            with pytest.raises(InvalidInputError):
                store.add_participant("alice", "s", "bob", permission=perm)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            store.add_participant("alice", "s", "alice", permission="read")
        for name in ("", "b\x00b", "x" * 300):
            with pytest.raises(InvalidInputError):
                store.add_participant("alice", "s", name, permission="read")
            with pytest.raises(InvalidInputError):
                store.acting_as(name)
        with pytest.raises(NotFoundError):
            store.add_participant("alice", "missing", "bob", permission="read")
        assert store.list_participants("alice", "s") == {}
        assert [s.session_id for s in store.query_sessions()] == ["s"]

    def test_grants_stay_in_their_tenant(self, make_store: MakeStore) -> None:
        a = make_store(f"a-{uuid.uuid4().hex[:8]}")
        b = make_store(f"b-{uuid.uuid4().hex[:8]}")
        a.add_messages("alice", "s", [Message("user", "tenant a")])
        b.add_messages("alice", "s", [Message("user", "tenant b")])
        a.add_participant("alice", "s", "bob", permission="write")
        assert _texts(a.acting_as("bob").get_messages("alice", "s")) == ["tenant a"]
        with pytest.raises(PermissionDeniedError):
            b.acting_as("bob").get_messages("alice", "s")
        with pytest.raises(PermissionDeniedError):  # a view keeps its actor in other tenants
            a.acting_as("bob").with_tenant(b.tenant).get_messages("alice", "s")
        assert b.list_participants("alice", "s") == {}
