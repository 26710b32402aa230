"""Usage metrics over stored messages, part of every conversation store's suite
(:class:`~vecmem.testing.conversations.ConversationStoreSuite` inherits :class:`UsageSuite`)."""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
from typing import Any

import pytest

from vecmem.conversations import ConversationStore, Message, Usage, usage_metrics
from vecmem.errors import InvalidInputError, PermissionDeniedError
from vecmem.testing.sessions import TTL

D = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc).timestamp()
H = 3600.0


def _row(r: Any) -> tuple[Any, ...]:
    return (r.day, r.user_id, r.agent_id, r.model, r.input_tokens, r.output_tokens,
            pytest.approx(r.cost), r.messages, r.sessions)  # fmt: skip


class UsageSuite:
    """Token usage and cost per user, agent, day and model; needs the ``store`` fixture."""

    def _fill(self, store: ConversationStore) -> None:
        def msg(ts: float, usage: Usage | None) -> Message:
            return Message("assistant" if usage else "user", "x", usage=usage, created_at=ts)

        store.add_messages(
            "ann",
            "s1",
            [msg(D + 10 * H, None), msg(D + 10 * H, Usage(10, 5, "gpt-a", 0.01))],
            agent_id="helper",
        )
        store.add_messages("ann", "s1", [msg(D + 26 * H, Usage(20, 1, "gpt-b", 0.02))])
        store.add_messages(
            "ann", "s2", [msg(D + 24 * H - 1, Usage(7, 3, "gpt-a", None))], agent_id="coder"
        )
        store.add_messages("bob", "s1", [msg(D, Usage(100, 50, "gpt-a", 0.5))], agent_id="helper")
        store.add_messages("bob", "s3", [msg(D + 50 * H, Usage(1, 1, None, 0.001))])

    def test_usage_per_day_user_and_agent(self, store: ConversationStore) -> None:
        self._fill(store)
        store.with_tenant(f"other-{uuid.uuid4().hex[:8]}").add_messages(
            "ann", "s1", [Message("assistant", "x", usage=Usage(999, 999, "gpt-a", 9.0))]
        )
        assert [_row(r) for r in usage_metrics(store)] == [
            ("2026-12-01", "ann", "coder", None, 7, 3, 0.0, 1, 1),
            ("2026-12-01", "ann", "helper", None, 10, 5, 0.01, 1, 1),
            ("2026-12-01", "bob", "helper", None, 100, 50, 0.5, 1, 1),
            ("2026-12-02", "ann", "helper", None, 20, 1, 0.02, 1, 1),
            ("2026-12-03", "bob", None, None, 1, 1, 0.001, 1, 1),
        ]
        assert [_row(r) for r in usage_metrics(store, by=["user_id"])] == [
            (None, "ann", None, None, 37, 9, 0.03, 3, 2),
            (None, "bob", None, None, 101, 51, 0.501, 2, 2),
        ]
        assert [_row(r) for r in usage_metrics(store, by=["model"])] == [
            (None, None, None, None, 1, 1, 0.001, 1, 1),
            (None, None, None, "gpt-a", 117, 58, 0.51, 3, 3),
            (None, None, None, "gpt-b", 20, 1, 0.02, 1, 1),
        ]
        total = usage_metrics(store, by=[], agent_id="helper")
        assert [_row(r) for r in total] == [(None, None, None, None, 130, 56, 0.53, 3, 2)]
        assert total[0].total_tokens == 186

    def test_usage_in_a_time_range_and_of_one_user(self, store: ConversationStore) -> None:
        self._fill(store)
        later = usage_metrics(store, by=["day", "agent_id"], since=D + 24 * H, until=D + 72 * H)
        assert [_row(r) for r in later] == [
            ("2026-12-02", None, "helper", None, 20, 1, 0.02, 1, 1),
            ("2026-12-03", None, None, None, 1, 1, 0.001, 1, 1),
        ]
        bob = usage_metrics(store, by=["day"], user_id="bob")
        assert [(r.day, r.input_tokens) for r in bob] == [("2026-12-01", 100), ("2026-12-03", 1)]
        assert usage_metrics(store, since=D + 100 * H) == []
        assert usage_metrics(store, user_id="nobody") == []

    def test_usage_leaves_out_expired_sessions(self, store: ConversationStore) -> None:
        """An expired session is gone for reads and ``usage()``, purged or not: its messages
        no longer count, and a write that starts it afresh counts only what it writes."""
        self._fill(store)
        store.set_session_limits("bob", "s1", ttl=TTL)
        time.sleep(TTL + 0.1)
        assert [
            (r.user_id, r.input_tokens, r.sessions) for r in usage_metrics(store, by=["user_id"])
        ] == [
            ("ann", 37, 2),
            ("bob", 1, 1),
        ]
        store.add_messages("bob", "s1", [Message("assistant", "x", usage=Usage(4, 0, "m", None))])
        bob = usage_metrics(store, by=[], user_id="bob")
        assert [(r.input_tokens, r.messages, r.sessions) for r in bob] == [(5, 2, 2)]

    def test_usage_of_a_participant_view_is_its_own(self, store: ConversationStore) -> None:
        """A participant's view measures the participant's own sessions, as its
        ``query_sessions`` lists them; another user's usage is refused."""
        self._fill(store)
        store.add_participant("ann", "s1", "bob", permission="read")
        bob = store.acting_as("bob")
        assert [(r.user_id, r.input_tokens) for r in usage_metrics(bob, by=["user_id"])] == [
            ("bob", 101)
        ]
        with pytest.raises(PermissionDeniedError):
            usage_metrics(bob, user_id="ann")

    def test_usage_rejects_bad_arguments(self, store: ConversationStore) -> None:
        bad: list[dict[str, Any]] = [
            {"by": ["week"]},
            {"by": "day"},
            {"by": ["day", "day"]},
            {"since": "yesterday"},
            {"until": True},
            {"since": math.nan},
            {"until": math.inf},
            {"user_id": ""},
            {"agent_id": "\x00"},
        ]
        for kwargs in bad:
            with pytest.raises(InvalidInputError):
                usage_metrics(store, **kwargs)
