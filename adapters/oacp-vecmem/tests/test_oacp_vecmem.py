"""OACP's own governance API on vecmem storage: a ``@with_oacp`` node configured by
``OACP_STORAGE_URI=vecmem+<url>`` writes its trail through vecmem, ``TraceReader`` reads it back
from a fresh storage object, votes cast by another writer decide the node's consensus, and the
run is an ordinary vecmem session. On SQLite, PostgreSQL and MariaDB (real servers)."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from oacp import DecisionContract, with_oacp
from oacp.errors import OacpRetryExhausted
from oacp.events import NodeResult, NodeStart, TaskStart, VoteCast, VoteDecision
from oacp.routing import RetryPolicy
from oacp.trace import TraceReader
from oacp_vecmem import VecmemStorage, install

from vecmem.conversations import Message
from vecmem.errors import IntegrityError, InvalidInputError
from vecmem.registry import CONVERSATION_STORES


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/oacp.db"
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def user() -> str:
    return f"oacp-{uuid.uuid4().hex[:8]}"  # the servers are shared by the whole test session


def run_id() -> str:
    return uuid.uuid4().hex


def test_with_oacp_node_trail_through_vecmem(
    url: str, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install()
    monkeypatch.setenv("OACP_STORAGE_URI", f"vecmem+{url}")

    @with_oacp(role="summariser")
    def summarise(text: str) -> dict[str, str]:
        return {"summary": text[:5]}

    run = run_id()
    assert summarise("hello world", _oacp_run_id=run) == {"summary": "hello"}

    # The default user of URIs is "oacp"; a fresh storage object reads what the node wrote.
    events = TraceReader(VecmemStorage(url)).read_run(run)
    assert [type(e) for e in events] == [NodeStart, NodeResult]
    assert events[1].output == {"summary": "hello"} and events[1].success
    assert events[0].inputs is not None and events[0].inputs["args"] == ["hello world"]

    # ... and it is an ordinary vecmem session.
    store = CONVERSATION_STORES.create(url)
    try:
        assert store.get_session("oacp", run).message_count == 2
        assert [m.role for m in store.get_messages("oacp", run)] == ["NodeStart", "NodeResult"]
    finally:
        store.close()


def test_votes_from_another_writer_decide_consensus(url: str, user: str) -> None:
    contract = DecisionContract(required_approvers=["alice", "bob"], strategy="unanimous")
    storage, voter = VecmemStorage(url, user_id=user), VecmemStorage(url, user_id=user)
    run = run_id()
    storage.append(NodeResult(run_id=run, node_id="n1", output="draft"))

    def vote() -> None:
        time.sleep(0.3)  # after await_votes started polling
        for who in ("alice", "bob"):
            voter.append(VoteCast(run_id=run, voter_id=who, decision=VoteDecision.APPROVE))

    t = threading.Thread(target=vote)
    t.start()
    started = time.monotonic()
    result = storage.await_votes(run, contract, window_seconds=20)
    t.join()
    assert time.monotonic() - started < 10  # returned once both had voted
    assert result["timeout"] is False and result["missing_voters"] == []
    assert sorted(result["votes"]) == ["alice", "bob"]

    # A missing approver: the window runs out and OACP is told who is missing.
    lone = run_id()
    voter.append(VoteCast(run_id=lone, voter_id="alice", decision=VoteDecision.REJECT))
    voter.append(VoteCast(run_id=lone, voter_id="mallory", decision=VoteDecision.APPROVE))
    result = storage.await_votes(lone, contract, window_seconds=1)
    assert result["timeout"] is True and result["missing_voters"] == ["bob"]
    assert list(result["votes"]) == ["alice"]  # a non-approver's vote does not count
    storage.close()
    voter.close()


def test_stored_votes_drive_the_decorators_consensus(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    install()
    monkeypatch.setenv("OACP_STORAGE_URI", f"vecmem+{url}")
    contract = DecisionContract(required_approvers=["alice", "bob"], strategy="unanimous")
    calls: list[int] = []

    quick = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.01, jitter=False)

    @with_oacp(role="writer", contract=contract, retry_policy=quick)
    def write() -> str:
        calls.append(1)
        return "text"

    approved, rejected = run_id(), run_id()
    voters = VecmemStorage(url)
    for run, second in ((approved, VoteDecision.APPROVE), (rejected, VoteDecision.REJECT)):
        voters.append(VoteCast(run_id=run, voter_id="alice", decision=VoteDecision.APPROVE))
        voters.append(VoteCast(run_id=run, voter_id="bob", decision=second))

    assert write(_oacp_run_id=approved) == "text" and len(calls) == 1
    with pytest.raises(OacpRetryExhausted):  # bob's stored REJECT fails the unanimous contract
        write(_oacp_run_id=rejected)
    assert len(calls) == 1 + 3  # OACP retried on each consensus failure, reading the votes again
    voters.close()


def test_replace_filter_and_order(url: str, user: str) -> None:
    storage = VecmemStorage(url, user_id=user)
    run = run_id()
    t0 = datetime(2026, 1, 1, 12, 0, 0)  # naive, as OACP's utcnow() stamps
    start = TaskStart(run_id=run, graph_name="g", timestamp=t0)
    node = NodeStart(run_id=run, node_id="a", timestamp=t0 + timedelta(seconds=2))
    late = NodeResult(run_id=run, node_id="a", output=1, timestamp=t0 + timedelta(seconds=1))
    for e in (start, node, late):
        storage.append(e)
    # Events come back in timestamp order, not append order.
    assert [e.event_id for e in storage.iterate(run)] == [
        start.event_id,
        late.event_id,
        node.event_id,
    ]
    # The same event id again replaces it (OACP's INSERT OR REPLACE), at its new timestamp.
    fixed = late.model_copy(update={"output": 2, "timestamp": t0 + timedelta(seconds=3)})
    storage.append(fixed)
    events = list(storage.iterate(run))
    assert [e.event_id for e in events] == [start.event_id, node.event_id, late.event_id]
    assert events[-1].output == 2
    # from_timestamp, naive or aware, is inclusive.
    since = t0 + timedelta(seconds=2)
    assert [e.event_id for e in storage.iterate(run, since)] == [node.event_id, late.event_id]
    aware = since.replace(tzinfo=timezone.utc)
    assert len(list(storage.iterate(run, aware))) == 2
    assert list(storage.iterate(run_id())) == []  # an unknown run is empty
    storage.close()


def test_bad_input_and_foreign_messages(url: str, user: str) -> None:
    storage = VecmemStorage(url, user_id=user)
    with pytest.raises(InvalidInputError):
        storage.append({"event_type": "TaskStart", "run_id": "r"})  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        VecmemStorage(url, poll_interval=0)
    run = run_id()
    storage.append(TaskStart(run_id=run))
    store = CONVERSATION_STORES.create(url)
    store.add_messages(user, run, [Message("user", "not an OACP event")])
    with pytest.raises(IntegrityError):  # never skipped silently
        list(storage.iterate(run))
    store.close()
    storage.close()
