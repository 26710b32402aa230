"""The shared test suite every :class:`~vecmem.conversations.ConversationStore` passes.

Subclass :class:`ConversationStoreSuite` and supply a ``store_factory`` fixture, a
zero-argument callable returning a store; each test works in fresh tenants made with its
``with_tenant``, so a shared server needs no cleanup between tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from vecmem.conversations import (
    AsyncConversationStore,
    ConversationStore,
    Message,
    Usage,
)
from vecmem.errors import InvalidInputError, NotFoundError
from vecmem.testing.sessions import MakeStore, SessionSuite
from vecmem.testing.tenancy import ConversationTenancySuite
from vecmem.testing.usage import UsageSuite


def _tick() -> float:
    """Let the wall clock move on so timestamps before and after differ on every backend."""
    time.sleep(0.02)
    now = time.time()
    time.sleep(0.02)
    return now


def _deep(depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cur = out
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return out


class ConversationStoreSuite(ConversationTenancySuite, SessionSuite, UsageSuite):
    """Conformance tests for conversation stores; override the ``store_factory`` fixture.

    Session operations (branch, merge, TTL, maximum of messages, participants) come from
    :class:`~vecmem.testing.sessions.SessionSuite`, usage metrics from
    :class:`~vecmem.testing.usage.UsageSuite`."""

    # -- messages -------------------------------------------------------------------------
    def test_add_and_read_back_messages(self, store: ConversationStore) -> None:
        before = time.time()
        added = store.add_messages(
            "u1",
            "s1",
            [
                Message("system", "be brief"),
                Message("user", "héllo ✓ " * 3, metadata={"n": 1, "f": 0.5, "l": [1, "a"]}),
                Message("assistant", "hi", usage=Usage(12, 3, "model-x", 0.0025)),
            ],
        )
        assert [m.seq for m in added] == [0, 1, 2]
        assert len({m.id for m in added}) == 3 and all(m.id for m in added)
        got = store.get_messages("u1", "s1")
        assert got == added
        assert got[1].metadata == {"n": 1, "f": 0.5, "l": [1, "a"]}
        assert isinstance(got[1].metadata["n"], int)
        assert got[2].usage == Usage(12, 3, "model-x", 0.0025) and got[0].usage is None
        assert all(before - 1 <= (m.created_at or 0) <= time.time() + 1 for m in got)

    def test_session_is_created_with_totals(self, store: ConversationStore) -> None:
        store.add_messages(
            "u1", "s1", [Message("user", "q", usage=Usage(5, 0, "m", 0.5))], agent_id="agent-a"
        )
        store.add_messages(
            "u1",
            "s1",
            [Message("assistant", "a", usage=Usage(1, 7, "m", 0.25)), Message("user", "thanks")],
        )
        s = store.get_session("u1", "s1")
        assert (s.user_id, s.session_id, s.agent_id) == ("u1", "s1", "agent-a")
        assert s.message_count == 3 and s.input_tokens == 6 and s.output_tokens == 7
        assert s.cost == pytest.approx(0.75)
        assert s.created_at <= s.updated_at

    def test_big_batch_round_trips(self, store: ConversationStore) -> None:
        msgs = [
            Message(
                "user" if i % 2 else "assistant",
                f"m{i} \\ \t \n 'q' \"d\" ✓",
                metadata={"i": i} if i % 3 else {},
                usage=Usage(i, 2 * i, "m", i / 1000) if i % 2 else None,
            )
            for i in range(150)
        ]
        store.add_messages("u", "s", msgs[:1])
        added = store.add_messages("u", "s", msgs[1:])
        assert [m.seq for m in added] == list(range(1, 150))
        got = store.get_messages("u", "s")
        assert got[1:] == added and [m.content for m in got] == [m.content for m in msgs]
        s = store.get_session("u", "s")
        assert s.message_count == 150
        assert s.input_tokens == sum(i for i in range(150) if i % 2)

    def test_given_id_and_time_are_kept(self, store: ConversationStore) -> None:
        store.add_messages("u", "s", [Message("user", "old", id="m-1", created_at=1000.5)])
        (m,) = store.get_messages("u", "s")
        assert m.id == "m-1" and m.created_at == 1000.5

    def test_pages_of_messages(self, store: ConversationStore) -> None:
        store.add_messages("u", "s", [Message("user", str(i)) for i in range(10)])
        text = lambda ms: [m.content for m in ms]  # noqa: E731
        assert text(store.get_messages("u", "s", limit=3)) == ["0", "1", "2"]
        assert text(store.get_messages("u", "s", limit=3, offset=8)) == ["8", "9"]
        assert text(store.get_messages("u", "s", offset=7)) == ["7", "8", "9"]
        assert text(store.get_messages("u", "s", limit=2, newest_first=True)) == ["9", "8"]
        assert text(store.last_messages("u", "s", 3)) == ["7", "8", "9"]
        assert store.get_messages("u", "s", limit=0) == []
        assert store.get_messages("u", "unknown") == []
        assert store.last_messages("u", "unknown", 5) == []

    def test_input_is_not_mutated(self, store: ConversationStore) -> None:
        meta = {"a": [1]}
        msgs = [Message("user", "x", metadata=meta)]
        added = store.add_messages("u", "s", msgs)
        assert msgs[0].id == "" and msgs[0].seq == -1 and meta == {"a": [1]}
        meta["a"].append(2)
        assert store.get_messages("u", "s")[0].metadata == {"a": [1]}
        assert added[0].metadata == {"a": [1]}

    def test_large_and_empty_content(self, store: ConversationStore) -> None:
        big = "x" * 200_000
        store.add_messages("u", "s", [Message("user", big), Message("tool", "")])
        got = store.get_messages("u", "s")
        assert got[0].content == big and got[1].content == ""

    def test_concurrent_writers_get_consecutive_positions(self, store: ConversationStore) -> None:
        def write(k: int) -> None:
            for i in range(5):
                store.add_messages("u", "s", [Message("user", f"{k}-{i}")])

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = store.get_messages("u", "s")
        assert [m.seq for m in got] == list(range(20))
        assert sorted(m.content for m in got) == sorted(
            f"{k}-{i}" for k in range(4) for i in range(5)
        )
        assert store.get_session("u", "s").message_count == 20

    # -- sessions -------------------------------------------------------------------------
    def test_save_session_creates_and_updates_given_fields(self, store: ConversationStore) -> None:
        s = store.save_session(
            "u", "s", agent_id="a", title="Trip", tags=["b", "a", "b"], metadata={"lang": "fr"}
        )
        assert s.tags == ("a", "b") and s.title == "Trip" and s.message_count == 0
        s2 = store.save_session("u", "s", title="Trip 2")
        assert (s2.title, s2.agent_id, s2.tags, s2.metadata) == (
            "Trip 2",
            "a",
            ("a", "b"),
            {"lang": "fr"},
        )
        s3 = store.save_session("u", "s", tags=[], metadata={})
        assert s3.tags == () and s3.metadata == {} and s3.created_at == s.created_at
        assert store.get_session("u", "s") == s3

    def test_missing_session(self, store: ConversationStore) -> None:
        with pytest.raises(NotFoundError):
            store.get_session("u", "nope")
        with pytest.raises(KeyError):  # NotFoundError is a KeyError too
            store.get_session("u", "nope")

    def test_query_filters(self, store: ConversationStore) -> None:
        store.add_messages("alice", "a1", [Message("user", "x")] * 3, agent_id="support")
        store.save_session("alice", "a1", tags=["billing", "urgent"])
        store.add_messages("alice", "a2", [Message("user", "x")], agent_id="sales")
        store.save_session("alice", "a2", tags=["billing"])
        mid = _tick()
        store.add_messages("bob", "b1", [Message("user", "x")] * 5, agent_id="support")
        store.save_session("bob", "b1", tags=["urgent"])
        ids = lambda ss: sorted(s.session_id for s in ss)  # noqa: E731
        assert ids(store.query_sessions()) == ["a1", "a2", "b1"]
        assert ids(store.query_sessions(user_id="alice")) == ["a1", "a2"]
        assert ids(store.list_sessions("bob")) == ["b1"]
        assert ids(store.query_sessions(agent_id="support")) == ["a1", "b1"]
        assert ids(store.query_sessions(tags=["billing"])) == ["a1", "a2"]
        assert ids(store.query_sessions(tags=["billing", "urgent"])) == ["a1"]
        assert ids(store.query_sessions(tags=["nope"])) == []
        assert ids(store.query_sessions(min_messages=3)) == ["a1", "b1"]
        assert ids(store.query_sessions(since=mid)) == ["b1"]
        assert ids(store.query_sessions(until=mid)) == ["a1", "a2"]
        assert ids(store.query_sessions(user_id="alice", since=mid)) == []
        assert ids(store.query_sessions(agent_id="support", min_messages=4, tags=["urgent"])) == [
            "b1"
        ]

    def test_query_order_and_pages(self, store: ConversationStore) -> None:
        for i, sid in enumerate(["s0", "s1", "s2", "s3"]):
            store.add_messages("u", sid, [Message("user", "x")] * (2 if i % 2 else 1))
            _tick()
        ids = lambda ss: [s.session_id for s in ss]  # noqa: E731
        assert ids(store.query_sessions()) == ["s3", "s2", "s1", "s0"]
        assert ids(store.query_sessions(order_by="created_at", descending=False)) == [
            "s0",
            "s1",
            "s2",
            "s3",
        ]
        # ties in the ordering key are broken by (user_id, session_id), ascending
        assert ids(store.query_sessions(order_by="message_count")) == ["s1", "s3", "s0", "s2"]
        assert ids(store.query_sessions(order_by="message_count", descending=False)) == [
            "s0",
            "s2",
            "s1",
            "s3",
        ]
        assert ids(store.query_sessions(limit=2)) == ["s3", "s2"]
        assert ids(store.query_sessions(limit=2, offset=2)) == ["s1", "s0"]
        assert ids(store.query_sessions(limit=2, offset=4)) == []
        store.add_messages("u", "s0", [Message("user", "again")])
        assert ids(store.query_sessions(limit=1)) == ["s0"]

    def test_ties_are_ordered_by_code_point(self, store: ConversationStore) -> None:
        for user in ["b", "é", "B", "a", "Z"]:
            store.add_messages(user, "s", [Message("user", "x")])
        got = store.query_sessions(order_by="message_count", descending=False)
        assert [s.user_id for s in got] == ["B", "Z", "a", "b", "é"]
        assert [s["session_id"] for s in store.export("a")["sessions"]] == ["s"]

    def test_delete_session_and_user(self, store: ConversationStore) -> None:
        for user, sid in [("u1", "a"), ("u1", "b"), ("u2", "a")]:
            store.add_messages(user, sid, [Message("user", "x")])
            store.save_session(user, sid, tags=["t"])
        assert store.delete_session("u1", "a") is True
        assert store.delete_session("u1", "a") is False
        assert store.get_messages("u1", "a") == []
        with pytest.raises(NotFoundError):
            store.get_session("u1", "a")
        store.add_messages("u1", "a", [Message("user", "new")])  # re-created from scratch
        assert [m.seq for m in store.get_messages("u1", "a")] == [0]
        assert store.get_session("u1", "a").tags == ()
        assert store.delete_user("u1") == 2
        assert store.list_sessions("u1") == [] and store.get_messages("u1", "b") == []
        assert [s.session_id for s in store.list_sessions("u2")] == ["a"]
        assert store.delete_user("nobody") == 0

    def test_export(self, store: ConversationStore) -> None:
        store.add_messages(
            "u",
            "s1",
            [Message("user", "hi", usage=Usage(1, 2, "m", 0.1)), Message("assistant", "yo")],
            agent_id="ag",
        )
        store.save_session("u", "s1", tags=["x"], title="T")
        store.add_messages("u", "s2", [Message("user", "other")])
        store.add_messages("v", "s3", [Message("user", "not mine")])
        doc = store.export("u")
        json.dumps(doc)  # JSON-able
        assert doc["format"] == "vecmem.conversations/1" and doc["user_id"] == "u"
        assert [s["session_id"] for s in doc["sessions"]] == ["s1", "s2"]
        s1 = doc["sessions"][0]
        assert (s1["title"], s1["tags"], s1["agent_id"], s1["message_count"]) == (
            "T",
            ["x"],
            "ag",
            2,
        )
        assert [m["content"] for m in s1["messages"]] == ["hi", "yo"]
        assert s1["messages"][0]["usage"] == {
            "input_tokens": 1,
            "output_tokens": 2,
            "model": "m",
            "cost": 0.1,
        }
        one = store.export("u", "s2")
        assert [s["session_id"] for s in one["sessions"]] == ["s2"]
        with pytest.raises(NotFoundError):
            store.export("u", "missing")
        assert store.export("nobody")["sessions"] == []

    def test_invalid_input(self, store: ConversationStore) -> None:
        bad: list[Callable[[], Any]] = [
            lambda: store.add_messages("", "s", [Message("user", "x")]),
            lambda: store.add_messages("u", "", [Message("user", "x")]),
            lambda: store.add_messages("u", "s\x00", [Message("user", "x")]),
            lambda: store.add_messages("u", "s", [Message("", "x")]),
            lambda: store.add_messages("u", "s", [Message("user", 3)]),  # type: ignore[arg-type]
            lambda: store.add_messages("u", "s", Message("user", "x")),  # type: ignore[arg-type]
            lambda: store.add_messages("u", "s", [Message("user", "x", metadata={"a": {1, 2}})]),
            lambda: store.add_messages("u", "s", [Message("user", "x", usage=Usage(-1))]),
            lambda: store.add_messages("u" * 300, "s", [Message("user", "x")]),
            lambda: store.query_sessions(order_by="title"),  # type: ignore[arg-type]
            lambda: store.query_sessions(limit=-1),
            lambda: store.query_sessions(tags="one"),
            lambda: store.query_sessions(since="yesterday"),  # type: ignore[arg-type]
            lambda: store.query_sessions(until=math.nan),
            lambda: store.query_sessions(since=True),
            lambda: store.query_sessions(agent_id=""),
            lambda: store.query_sessions(agent_id=7),  # type: ignore[arg-type]
            lambda: store.query_sessions(user_id="u\x00"),
            lambda: store.query_sessions(min_messages=True),
            lambda: store.query_sessions(limit=2.5),  # type: ignore[arg-type]
            lambda: store.save_session("u", "s", tags=[""]),
            lambda: store.get_messages("u", "s", offset=-1),
            # issue 13: each of these was an untyped error or stored garbage
            lambda: store.add_messages("u", "s", [Message("user", "x", created_at="yesterday")]),  # type: ignore[arg-type]
            lambda: store.add_messages("u", "s", [Message("user", "x", created_at=math.nan)]),
            lambda: store.add_messages("u", "s", [Message("user", "x", created_at=math.inf)]),
            lambda: store.add_messages("u", "s", [Message("user", "x", created_at=True)]),
            lambda: store.add_messages("u", "s", [Message("user", "x", usage=Usage("5"))]),  # type: ignore[arg-type]
            lambda: store.add_messages("u", "s", [Message("user", "x", usage=Usage(1, 2.5))]),  # type: ignore[arg-type]
            lambda: store.add_messages("u", "s", [Message("user", "x", usage=Usage(cost="1"))]),  # type: ignore[arg-type]
            lambda: store.add_messages("u", "s", [Message("user", "x\ud800")]),
            lambda: store.add_messages("u\ud800", "s", [Message("user", "x")]),
            lambda: store.add_messages("u", "s", [Message("user", "x", metadata={"k": "\udfff"})]),
            lambda: store.add_messages("u", "s", [Message("user", "x", metadata=_deep(5000))]),
        ]
        for call in bad:
            with pytest.raises(InvalidInputError):
                call()
        assert store.query_sessions() == []  # nothing half-written

    def test_tenants_are_isolated(self, make_store: MakeStore) -> None:
        a = make_store(f"a-{uuid.uuid4().hex[:8]}")
        b = make_store(f"b-{uuid.uuid4().hex[:8]}")
        a.add_messages("u", "s", [Message("user", "secret")], agent_id="ag")
        a.save_session("u", "s", tags=["t"])
        assert b.get_messages("u", "s") == [] and b.last_messages("u", "s", 5) == []
        with pytest.raises(NotFoundError):
            b.get_session("u", "s")
        assert b.query_sessions() == [] and b.list_sessions("u") == []
        assert b.query_sessions(tags=["t"]) == [] and b.query_sessions(agent_id="ag") == []
        assert b.export("u")["sessions"] == []
        assert b.delete_session("u", "s") is False and b.delete_user("u") == 0
        b.add_messages("u", "s", [Message("user", "b's")])
        b.save_session("u", "s", title="b", tags=[])
        s = a.get_session("u", "s")
        assert s.message_count == 1 and s.title is None and s.tags == ("t",)
        assert [m.content for m in a.get_messages("u", "s")] == ["secret"]
        b.delete_user("u")
        assert a.get_session("u", "s").message_count == 1

    def test_async_variant(self, store: ConversationStore) -> None:
        async def run() -> None:
            s = AsyncConversationStore(store)
            await s.save_session("u", "s", title="async")
            await asyncio.gather(
                *[s.add_messages("u", "s", [Message("user", str(i))]) for i in range(5)]
            )
            assert len(await s.get_messages("u", "s")) == 5
            assert len(await s.last_messages("u", "s", 2)) == 2
            assert (await s.get_session("u", "s")).message_count == 5
            assert [x.session_id for x in await s.query_sessions(user_id="u")] == ["s"]
            assert [x.session_id for x in await s.list_sessions("u")] == ["s"]
            assert len((await s.export("u"))["sessions"]) == 1
            assert await s.delete_session("u", "s") is True
            assert await s.delete_user("u") == 0

        asyncio.run(run())
