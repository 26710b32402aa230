"""``VecmemDb`` through agno itself, on SQLite and PostgreSQL: an ``Agent(db=...)`` run keeps its
session and history across processes' worth of fresh objects (a local echo model stands in for
the LLM: no model call), agno's session API (get/list/rename/delete) and its ``MemoryManager``
(add, read, filter by topic, update, delete) work on vecmem's conversation store and agent
memory, and what agno wrote is visible through vecmem's own API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agno.agent import Agent
from agno.db.base import SessionType
from agno.db.schemas.memory import UserMemory
from agno.memory import MemoryManager
from agno.models.base import Model
from agno.models.response import ModelResponse
from agno.session import AgentSession
from agno_vecmem import UnsupportedByVecmemDb, VecmemDb

from vecmem.errors import InvalidInputError, VecmemError


@dataclass
class EchoModel(Model):
    """A local model: replies ``echo: <last user message>`` (agno's run loop, no LLM call)."""

    id: str = "echo"
    name: str = "Echo"
    provider: str = "local"

    def _reply(self, messages: Any) -> ModelResponse:
        last = next(m for m in reversed(messages) if m.role == "user")
        return ModelResponse(role="assistant", content=f"echo: {last.content}")

    def invoke(self, messages: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._reply(messages)

    async def ainvoke(self, messages: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        return self._reply(messages)

    def invoke_stream(self, messages: Any, *args: Any, **kwargs: Any) -> Iterator[ModelResponse]:
        yield self._reply(messages)

    async def ainvoke_stream(
        self, messages: Any, *args: Any, **kwargs: Any
    ) -> AsyncIterator[ModelResponse]:
        yield self._reply(messages)

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        return response

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        return response


@pytest.fixture(params=["sqlite", "postgres"])
def open_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of fresh ``VecmemDb`` objects on one database (a new one = a new process)."""
    tenant = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url, vectors = f"sqlite:///{tmp_path}/agno.db", str(tmp_path / "vectors")
    else:
        url = request.getfixturevalue("postgres_url")
        vectors = f"{url}?collection=agno_{tenant}"
    opened: list[VecmemDb] = []

    def make() -> VecmemDb:
        db = VecmemDb(url, vectors=vectors, embedder="hashing", tenant=tenant)
        opened.append(db)
        return db

    yield make
    for db in opened:
        db.close()


def test_agent_run_keeps_session_and_history_across_fresh_dbs(open_db: Any) -> None:
    user = f"alice-{uuid.uuid4().hex[:6]}"
    agent = Agent(
        model=EchoModel(), db=open_db(), user_id=user, session_id="s1", add_history_to_context=True
    )
    assert agent.run("my name is Alice").content == "echo: my name is Alice"
    agent.run("what is my name?")

    later = Agent(
        model=EchoModel(), db=open_db(), user_id=user, session_id="s1", add_history_to_context=True
    )
    out = later.run("third")
    assert [(m.role, m.content) for m in out.messages if m.role != "system"] == [
        ("user", "my name is Alice"),
        ("assistant", "echo: my name is Alice"),
        ("user", "what is my name?"),
        ("assistant", "echo: what is my name?"),
        ("user", "third"),
        ("assistant", "echo: third"),
    ]

    db = open_db()
    session = db.get_session("s1", SessionType.AGENT)
    assert isinstance(session, AgentSession) and session.user_id == user
    assert len(session.runs or []) == 3
    # vecmem's own view of the same conversation: one message per turn, not repeated history
    store = db.conversations
    assert [(m.role, m.content) for m in store.get_messages(user, "s1")][-2:] == [
        ("user", "third"),
        ("assistant", "echo: third"),
    ]
    assert store.get_session(user, "s1").message_count == 6


def test_session_api_lists_renames_and_deletes(open_db: Any) -> None:
    db = open_db()
    user = f"bob-{uuid.uuid4().hex[:6]}"
    for sid in ("a", "b"):
        Agent(model=EchoModel(), db=db, user_id=user, session_id=sid, id="helper").run("hi")
    Agent(model=EchoModel(), db=db, session_id="anon").run("hi")  # no user

    sessions = db.get_sessions(
        SessionType.AGENT, user_id=user, sort_by="session_id", sort_order="asc"
    )
    assert [s.session_id for s in sessions] == ["a", "b"]
    rows, total = db.get_sessions(
        SessionType.AGENT,
        user_id=user,
        limit=1,
        page=2,
        sort_by="session_id",
        sort_order="asc",
        deserialize=False,
    )
    assert total == 2 and [r["session_id"] for r in rows] == ["b"]
    assert db.get_sessions(SessionType.TEAM, user_id=user) == []
    assert db.get_session("anon").user_id is None  # found by id alone
    assert db.get_session("a", user_id="someone-else") is None

    renamed = db.rename_session("a", SessionType.AGENT, "Trip planning", user_id=user)
    assert renamed.session_data["session_name"] == "Trip planning"
    fresh = open_db()
    assert fresh.get_session("a", user_id=user).session_data["session_name"] == "Trip planning"
    assert [s.session_id for s in fresh.get_sessions(user_id=user, session_name="trip")] == ["a"]
    assert len(fresh.get_session("a", user_id=user).runs) == 1  # rename kept the runs

    assert fresh.delete_session("a", user_id=user) is True
    assert fresh.delete_session("a", user_id=user) is False
    assert open_db().get_session("a") is None
    assert open_db().get_session("b", user_id=user) is not None


def test_memory_manager_adds_filters_updates_and_deletes(open_db: Any) -> None:
    db = open_db()
    user = f"carol-{uuid.uuid4().hex[:6]}"
    manager = MemoryManager(db=db)
    tea = manager.add_user_memory(
        UserMemory(memory="Carol drinks green tea", topics=["food"]), user_id=user
    )
    manager.add_user_memory(
        UserMemory(memory="Carol climbs on weekends", topics=["sport"]), user_id=user
    )
    # the same text twice stays two agno memories (agno names them; vecmem must not merge)
    manager.add_user_memory(UserMemory(memory="Carol climbs on weekends"), user_id=user)

    fresh = MemoryManager(db=open_db())
    assert sorted(m.memory for m in fresh.get_user_memories(user_id=user)) == [
        "Carol climbs on weekends",
        "Carol climbs on weekends",
        "Carol drinks green tea",
    ]
    assert fresh.get_user_memory(tea, user_id=user).topics == ["food"]
    assert [m.memory for m in open_db().get_user_memories(user_id=user, topics=["sport"])] == [
        "Carol climbs on weekends"
    ]
    assert set(open_db().get_all_memory_topics(user_id=user)) == {"food", "sport"}

    fresh.replace_user_memory(
        tea, UserMemory(memory="Carol drinks oolong", topics=["food"]), user_id=user
    )
    assert open_db().get_user_memory(tea, user_id=user).memory == "Carol drinks oolong"
    # vecmem kept the earlier version in its history
    assert [v.text for v in db.memory.versions(tea, user_id=user)] == [
        "Carol drinks green tea",
        "Carol drinks oolong",
    ]

    fresh.delete_user_memory(tea, user_id=user)
    assert open_db().get_user_memory(tea, user_id=user) is None
    assert len(MemoryManager(db=open_db()).get_user_memories(user_id=user)) == 2


def test_memory_of_another_user_is_neither_read_nor_overwritten(open_db: Any) -> None:
    db = open_db()
    dan, eve = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("dan", "eve"))
    mid = MemoryManager(db=db).add_user_memory(UserMemory(memory="Dan's PIN hint"), user_id=dan)
    assert db.get_user_memory(mid, user_id=eve) is None
    with pytest.raises(InvalidInputError, match="another user"):
        db.upsert_user_memory(UserMemory(memory="hijacked", memory_id=mid, user_id=eve))
    assert db.get_user_memory(mid, user_id=dan).memory == "Dan's PIN hint"


def test_tables_vecmem_does_not_keep_say_so(open_db: Any) -> None:
    db = open_db()
    with pytest.raises(UnsupportedByVecmemDb, match="get_eval_runs") as info:
        db.get_eval_runs()
    assert isinstance(info.value, VecmemError) and isinstance(info.value, NotImplementedError)
