"""vecmem through PraisonAI's own persistence API: its registries create the ``vecmem`` stores
from the entry points this package declares, a ``PersistenceOrchestrator`` built from them runs
an agent's lifecycle (``wrap_agent_with_persistence`` around a local echo agent: no model call),
knowledge and state go through the orchestrator, and a fresh orchestrator on the same database
resumes the session. SQLite / the embedded default and PostgreSQL (+ pgvector) are real; state
also on Redis, conversations also on MariaDB.

praisonai pins litellm<1.106, which conflicts with this repository's main environment, so these
tests run in their own environment (``./dev test`` builds .venv-praisonai-vecmem and runs them
there); in the main environment they skip, saying so.
"""

from __future__ import annotations

import multiprocessing
import uuid
from pathlib import Path

import pytest

pytest.importorskip(
    "praisonai.persistence",
    reason="praisonai is not installed here: ./dev test runs these tests in "
    ".venv-praisonai-vecmem (praisonai's litellm pin conflicts with the main environment)",
)

from praisonai.persistence import PersistenceOrchestrator
from praisonai.persistence.conversation.base import (
    ConversationMessage,
    ConversationSession,
)
from praisonai.persistence.factory import (
    create_conversation_store,
    create_knowledge_store,
    create_state_store,
)
from praisonai.persistence.hooks import wrap_agent_with_persistence
from praisonai.persistence.knowledge.base import KnowledgeDocument
from praisonai.persistence.registry import get_default_registry
from praisonai_vecmem import (
    UnsupportedByVecmem,
    VecmemConversationStore,
    VecmemKeyValueStore,
    VecmemKnowledgeStore,
)

from vecmem.errors import ConflictError, DimensionMismatchError, InvalidInputError
from vecmem.registry import CONVERSATION_STORES


class EchoAgent:
    """The two things PraisonAI's persistence wrapper uses of an agent: a name and ``chat``."""

    name = "Helper"

    def chat(self, prompt: str) -> str:
        return f"echo: {prompt}"


@pytest.fixture(params=["sqlite", "postgres"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    if request.param == "sqlite":
        db = f"sqlite:///{tmp_path}/praisonai.db"
        return {"conversation": db, "state": db, "knowledge": str(tmp_path / "kb")}
    pg = str(request.getfixturevalue("postgres_url"))
    return {"conversation": pg, "state": pg, "knowledge": pg}


def orchestrator(urls: dict[str, str], tenant: str) -> PersistenceOrchestrator:
    """Stores made by PraisonAI's registries, by the name this package's entry points give."""
    return PersistenceOrchestrator(
        conversation_store=create_conversation_store(
            "vecmem", url=urls["conversation"], tenant=tenant
        ),
        knowledge_store=create_knowledge_store("vecmem", url=urls["knowledge"]),
        state_store=create_state_store("vecmem", url=urls["state"], tenant=tenant),
    )


def test_registries_know_vecmem() -> None:
    for kind in ("conversation", "knowledge", "state"):
        assert "vecmem" in get_default_registry(kind).list_names()


def test_agent_lifecycle_resumes_from_a_fresh_orchestrator(urls: dict[str, str]) -> None:
    tenant, session = f"t{uuid.uuid4().hex[:8]}", f"s-{uuid.uuid4().hex[:8]}"
    orch = orchestrator(urls, tenant)
    agent = wrap_agent_with_persistence(EchoAgent(), orch, session_id=session, user_id="alice")
    assert agent.chat("hello") == "echo: hello"
    assert agent.chat("again") == "echo: again"
    orch.set_state("last_topic", {"topic": "greetings"}, ttl=3600)
    orch.close()

    fresh = orchestrator(urls, tenant)
    history = fresh.on_agent_start(EchoAgent(), session_id=session, user_id="alice")
    assert [(m.role, m.content) for m in history] == [
        ("user", "hello"),
        ("assistant", "echo: hello"),
        ("user", "again"),
        ("assistant", "echo: again"),
    ]
    found = fresh.list_sessions(user_id="alice")
    assert [s.session_id for s in found] == [session]
    assert found[0].agent_id == "Helper" and found[0].user_id == "alice"
    assert fresh.get_state("last_topic") == {"topic": "greetings"}
    # ... and vecmem's own API sees the same conversation.
    raw = CONVERSATION_STORES.create(urls["conversation"], tenant=tenant)
    assert raw.get_session("praisonai", session).message_count == 4
    raw.close()
    fresh.close()


def test_knowledge_through_the_orchestrator(urls: dict[str, str]) -> None:
    orch = orchestrator(urls, "kb")
    collection = f"c{uuid.uuid4().hex[:8]}"
    docs = [
        KnowledgeDocument(
            id="paris",
            content="Paris is in France",
            embedding=[1.0, 0.0, 0.0],
            metadata={"lang": "en"},
        ),
        KnowledgeDocument(
            id="berlin",
            content="Berlin is in Germany",
            embedding=[0.0, 1.0, 0.0],
            metadata={"lang": "de"},
        ),
    ]
    # add_knowledge upserts into a collection nobody created: vecmem creates it (dimension 3).
    assert orch.add_knowledge(docs, collection=collection) == ["paris", "berlin"]
    top = orch.retrieve_knowledge([0.9, 0.1, 0.0], collection=collection, limit=1)
    assert [d.id for d in top] == ["paris"] and top[0].content == "Paris is in France"
    only_de = orch.retrieve_knowledge(
        [1.0, 0.0, 0.0], collection=collection, filters={"lang": "de"}
    )
    assert [d.id for d in only_de] == ["berlin"]
    kb = orch.knowledge
    assert isinstance(kb, VecmemKnowledgeStore)
    assert collection in kb.list_collections() and kb.count(collection) == 2
    assert kb.get(collection, ["berlin"])[0].embedding == pytest.approx([0.0, 1.0, 0.0])
    with pytest.raises(ConflictError):  # insert never overwrites; nothing written
        kb.insert(collection, [KnowledgeDocument(id="paris", content="x", embedding=[0, 0, 1.0])])
    assert kb.get(collection, ["paris"])[0].content == "Paris is in France"
    with pytest.raises(DimensionMismatchError):  # another dimension is refused
        kb.upsert(collection, [KnowledgeDocument(id="x", content="x", embedding=[1.0, 0.0])])
    assert kb.search(collection, [0.0, 1.0, 0.0], score_threshold=0.99)[0].id == "berlin"
    assert kb.delete(collection, ids=["berlin"]) == 1 and kb.count(collection) == 1
    assert kb.delete_collection(collection) and not kb.collection_exists(collection)
    orch.close()


def test_conversation_store_contract(urls: dict[str, str]) -> None:
    store = VecmemConversationStore(urls["conversation"], tenant=f"t{uuid.uuid4().hex[:8]}")
    store.create_session(
        ConversationSession(
            session_id="a", user_id="u1", agent_id="bot", state={"step": 1}, metadata={"k": "v"}
        )
    )
    store.create_session(ConversationSession(session_id="b", user_id="u2"))
    tool = [{"id": "call1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    for i, (role, extra) in enumerate(
        [("user", {}), ("assistant", {"tool_calls": tool}), ("tool", {"tool_call_id": "call1"})]
    ):
        store.add_message(
            "a", ConversationMessage(role=role, content=f"m{i}", created_at=100.0 + i, **extra)
        )
    got = store.get_messages("a")
    assert [m.content for m in got] == ["m0", "m1", "m2"]
    assert got[1].tool_calls == tool and got[2].tool_call_id == "call1"
    assert [m.content for m in store.get_messages("a", after=100.0, before=102.0)] == ["m1"]
    assert [m.content for m in store.get_messages("a", limit=2)] == ["m0", "m1"]
    s = store.get_session("a")
    assert s is not None and s.state == {"step": 1} and s.metadata == {"k": "v"}
    assert [x.session_id for x in store.list_sessions(user_id="u2")] == ["b"]
    assert [x.session_id for x in store.list_sessions(agent_id="bot")] == ["a"]
    s.name = "renamed"
    assert store.update_session(s).name == "renamed"
    assert store.get_session("missing") is None
    with pytest.raises(UnsupportedByVecmem):
        store.delete_messages("a", ["x"])
    assert store.delete_session("a") and store.get_messages("a") == []
    with pytest.raises(InvalidInputError):
        store.add_message("b", "not a message")  # type: ignore[arg-type]
    store.close()


def test_conversations_on_mariadb(request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("mariadb_url"))
    store = create_conversation_store("vecmem", url=url, tenant=f"t{uuid.uuid4().hex[:8]}")
    store.create_session(ConversationSession(session_id="m", user_id="u"))
    store.add_message("m", ConversationMessage(role="user", content="hi"))
    assert [m.content for m in store.get_messages("m")] == ["hi"]
    store.close()


def _bump(url: str, tenant: str, field: str, n: int) -> None:
    state = VecmemKeyValueStore(url, tenant=tenant)
    for i in range(n):
        state.hset("h", f"{field}{i}", i)
    state.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_state_store_contract(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = (
        f"sqlite:///{tmp_path}/state.db"
        if backend == "sqlite"
        else str(request.getfixturevalue("redis_url"))
    )
    tenant = f"t{uuid.uuid4().hex[:8]}"
    state = create_state_store("vecmem", url=url, tenant=tenant)
    state.set("user:1", {"name": "a"})
    state.set("user:2", "b", ttl=100)
    state.set("other", 3)
    assert sorted(state.keys("user:*")) == ["user:1", "user:2"]
    assert state.exists("other") and not state.exists("nope")
    assert state.ttl("user:1") is None and 0 < state.ttl("user:2") <= 100
    assert state.expire("user:1", 50) and 0 < state.ttl("user:1") <= 50
    assert state.get("user:1") == {"name": "a"}  # expire kept the value
    assert state.delete("other") and state.get("other") is None
    # Hash fields written by two processes at once all land (compare-and-set per field).
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_bump, args=(url, tenant, f, 15)) for f in ("x", "y")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(state.hgetall("h")) == 30 and state.hget("h", "x3") == 3
    assert state.hdel("h", "x0", "nope") == 1 and len(state.hgetall("h")) == 29
    with pytest.raises(InvalidInputError):
        state.set("k", 1, ttl=-1)
    state.close()
