"""Agent memory: merge, supersede, undo, as_of, scopes, consolidation, concurrency."""

from __future__ import annotations

import threading
import uuid

import pytest

from vecmem import VectorMemory
from vecmem.agent_memory import AgentMemory
from vecmem.errors import ConflictError, InvalidInputError, NotFoundError
from vecmem.testing.tenancy import AgentMemoryTenancySuite


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 1.0
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def am(clock: Clock) -> AgentMemory:
    mem = AgentMemory(embedder="hashing", clock=clock)
    yield mem
    mem.close()


def texts(hits):
    return [h.memory.text for h in hits]


def test_exact_repeat_merges_and_keeps_the_repeat_in_history(am):
    w1 = am.remember("Alice prefers green tea", user_id="alice", metadata={"src": "chat1"})
    w2 = am.remember("Alice prefers green tea", user_id="alice", metadata={"mood": "happy"})
    assert w2.merged and w2.memory_id == w1.memory_id
    m = am.get(w1.memory_id, user_id="alice")
    assert m.count == 2 and m.metadata == {"src": "chat1", "mood": "happy"}
    assert len(am.recall("green tea", user_id="alice")) == 1
    assert [c.op for c in am.history(w1.memory_id, user_id="alice")] == ["create", "merge"]


def test_near_duplicate_merges_but_distinct_fact_does_not(am):
    w1 = am.remember("Alice prefers green tea in the morning", user_id="alice")
    near = am.remember("alice prefers green tea in the morning!", user_id="alice")
    other = am.remember("Alice is allergic to peanuts", user_id="alice")
    assert near.merged and near.memory_id == w1.memory_id
    assert not other.merged
    merged_text = am.history(w1.memory_id, user_id="alice")[-1].payload[0]["text"]
    assert merged_text == "alice prefers green tea in the morning!"  # the repeat is not lost


def test_dedup_stays_within_scope(am):
    a = am.remember("likes jazz", user_id="alice")
    b = am.remember("likes jazz", user_id="bob")
    c = am.remember("likes jazz", user_id="alice", agent_id="dj")
    assert len({a.memory_id, b.memory_id, c.memory_id}) == 3


def test_recall_never_crosses_scopes(am):
    am.remember("the launch code is 1234", user_id="alice")
    am.remember("bob's secret: swordfish", user_id="bob")
    assert texts(am.recall("secret launch code", user_id="alice")) == ["the launch code is 1234"]
    assert texts(am.recall("secret launch code", user_id="bob")) == ["bob's secret: swordfish"]
    assert am.recall("secret launch code", user_id="carol") == []
    with pytest.raises(InvalidInputError):
        am.recall("anything")


def test_update_supersedes_and_as_of_sees_the_past(am, clock):
    w = am.remember("Alice lives in Paris", user_id="alice")
    before_update = clock.t + 0.5
    u = am.update(w.memory_id, "Alice lives in Berlin", user_id="alice", reason="moved")
    assert u.version == 2
    assert texts(am.recall("where does alice live", user_id="alice")) == ["Alice lives in Berlin"]
    assert texts(am.recall("where does alice live", user_id="alice", as_of=before_update)) == [
        "Alice lives in Paris"
    ]
    versions = am.versions(w.memory_id, user_id="alice")
    assert [v.text for v in versions] == ["Alice lives in Paris", "Alice lives in Berlin"]
    assert versions[0].valid_to is not None and versions[1].valid_to is None
    assert am.history(w.memory_id, user_id="alice")[-1].reason == "moved"


def test_undo_restores_exactly(am):
    w = am.remember("Alice lives in Paris", user_id="alice", importance=0.4)
    before = dict(am.get(w.memory_id, user_id="alice").state)
    u = am.update(w.memory_id, "Alice lives in Berlin", user_id="alice")
    am.undo(u.change_id, user_id="alice")
    assert dict(am.get(w.memory_id, user_id="alice").state) == before
    assert texts(am.recall("alice lives", user_id="alice")) == ["Alice lives in Paris"]
    assert [v.text for v in am.versions(w.memory_id, user_id="alice")] == [
        "Alice lives in Paris",
        "Alice lives in Berlin",
    ]
    with pytest.raises(ConflictError):
        am.undo(u.change_id, user_id="alice")


def test_undo_of_a_merge_restores_count_and_metadata(am):
    w = am.remember("uses vim", user_id="u", metadata={"a": 1})
    before = dict(am.get(w.memory_id, user_id="u").state)
    m = am.remember("uses vim", user_id="u", metadata={"a": 2})
    assert am.get(w.memory_id, user_id="u").count == 2
    am.undo(m.change_id, user_id="u")
    assert dict(am.get(w.memory_id, user_id="u").state) == before


def test_undo_refuses_when_a_later_change_touches_the_memory(am):
    w = am.remember("x is 1", user_id="u")
    u1 = am.update(w.memory_id, "x is 2", user_id="u")
    am.update(w.memory_id, "x is 3", user_id="u")
    with pytest.raises(ConflictError):
        am.undo(u1.change_id, user_id="u")


def test_forget_keeps_text_in_history_and_past(am, clock):
    w = am.remember("temporary fact", user_id="u")
    t = clock.t + 0.5
    am.forget(w.memory_id, user_id="u", reason="user asked")
    assert am.recall("temporary fact", user_id="u") == []
    assert texts(am.recall("temporary fact", user_id="u", as_of=t)) == ["temporary fact"]
    with pytest.raises(NotFoundError):
        am.get(w.memory_id, user_id="u")


HIKING = [
    "Alice likes hiking in the alps.",
    "Alice went hiking in the alps last summer.",
    "Alice enjoys hiking trips in the alps with friends.",
]


def test_consolidation_summarises_links_sources_and_never_removes(am):
    ids = [am.remember(t, user_id="alice").memory_id for t in HIKING]
    other = am.remember("Alice's cat is called Miso.", user_id="alice").memory_id
    report = am.consolidate(user_id="alice", similarity=0.3)
    assert len(report.summaries_created) == 1 and report.memories_consolidated == 3
    summary = am.get(report.summaries_created[0], user_id="alice")
    assert summary.kind == "summary" and sorted(summary.sources) == sorted(ids)
    for i in ids:
        m = am.get(i, user_id="alice")  # still current, still searchable, weight lowered
        assert m.weight == 0.5 and m.consolidated_into == summary.id
    assert am.get(other, user_id="alice").weight == 1.0
    found = texts(am.recall("hiking alps", user_id="alice", k=10))
    assert found[0] == summary.text and set(HIKING) <= set(found)


def test_consolidation_is_idempotent_and_incremental(am):
    for t in HIKING:
        am.remember(t, user_id="alice")
    first = am.consolidate(user_id="alice", similarity=0.3)
    assert am.consolidate(user_id="alice", similarity=0.3).change_ids == []
    new = am.remember("Alice plans more hiking in the alps next year.", user_id="alice")
    third = am.consolidate(user_id="alice", similarity=0.3)
    assert third.summaries_updated == first.summaries_created and third.memories_consolidated == 1
    summary = am.get(first.summaries_created[0], user_id="alice")
    assert summary.version == 2 and new.memory_id in summary.sources
    assert len(am.versions(summary.id, user_id="alice")) == 2


def test_undo_consolidation_restores_sources(am):
    ids = [am.remember(t, user_id="alice").memory_id for t in HIKING]
    before = {i: dict(am.get(i, user_id="alice").state) for i in ids}
    report = am.consolidate(user_id="alice", similarity=0.3)
    am.undo(report.change_ids[0], user_id="alice")
    assert {i: dict(am.get(i, user_id="alice").state) for i in ids} == before
    assert all(h.memory.kind == "memory" for h in am.recall("hiking", user_id="alice"))


def test_custom_summarizer(am):
    for t in HIKING:
        am.remember(t, user_id="alice")
    r = am.consolidate(user_id="alice", similarity=0.3, summarizer=lambda ts: f"{len(ts)} hikes")
    assert am.get(r.summaries_created[0], user_id="alice").text == "3 hikes"


def test_recency_and_importance_blend(am, clock):
    old = am.remember("budget meeting notes from the spring offsite", user_id="u", importance=0.1)
    clock.t += 90 * 86400
    new = am.remember("notes on the budget review meeting in autumn", user_id="u", importance=0.9)
    hits = am.recall("budget meeting notes", user_id="u", recency_weight=0.5, half_life_days=7)
    assert hits[0].memory.id == new.memory_id and hits[0].recency > hits[1].recency
    hits = am.recall("budget meeting notes", user_id="u", importance_weight=0.9)
    assert hits[0].memory.id == new.memory_id
    assert {h.memory.id for h in hits} == {old.memory_id, new.memory_id}


def test_episodic_recall_groups_by_session(am):
    am.remember("we planned the trip to Rome", user_id="u", session_id="s1")
    am.remember("booked flights to Rome", user_id="u", session_id="s1")
    am.remember("discussed the quarterly report", user_id="u", session_id="s2")
    episodes = am.episodic_recall("Rome trip", user_id="u")
    assert episodes[0].key == "s1" and len(episodes[0].hits) == 2
    assert {e.key for e in episodes} == {"s1", "s2"}


def test_bad_inputs(am):
    with pytest.raises(InvalidInputError):
        am.remember("", user_id="u")
    with pytest.raises(InvalidInputError):
        am.remember("x", user_id="u", metadata={"version": 3})
    with pytest.raises(InvalidInputError):
        am.remember("x", user_id="u", importance=2.0)
    with pytest.raises(InvalidInputError):
        am.remember("x")
    with pytest.raises(NotFoundError):
        am.undo("nope", user_id="u")


def test_concurrent_remember_and_consolidate_lose_nothing(am):
    topics = ["hiking", "cooking", "jazz", "chess", "rust"]
    stop = threading.Event()
    errors: list[BaseException] = []

    def consolidate_loop():
        while not stop.is_set():
            try:
                am.consolidate(user_id="u", similarity=0.3, window=1e9)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return

    worker = threading.Thread(target=consolidate_loop)
    worker.start()
    written = []
    for i in range(60):
        w = am.remember(f"fact {i} about {topics[i % 5]} number {i * 7919 % 1000}", user_id="u")
        written.append(w.memory_id)
    stop.set()
    worker.join()
    assert not errors
    am.consolidate(user_id="u", similarity=0.3, window=1e9)
    for mid in set(written):  # every memory is still there and current
        assert am.get(mid, user_id="u").text.startswith("fact ")
    store_ids = {c.document_id for c in am.memory.store.all_chunks()}
    assert {f"mem:{m}" for m in written} <= store_ids


def test_works_on_the_embedded_store(tmp_path, clock):
    am = AgentMemory(
        VectorMemory(tmp_path / "kb", embedder="hashing"),
        db=f"sqlite:///{tmp_path / 'history.db'}",
        clock=clock,
    )
    w = am.remember("persisted fact", user_id="u")
    am.update(w.memory_id, "persisted fact, revised", user_id="u")
    am.close()
    am2 = AgentMemory(
        VectorMemory(tmp_path / "kb"), db=f"sqlite:///{tmp_path / 'history.db'}", clock=clock
    )
    assert texts(am2.recall("persisted fact", user_id="u")) == ["persisted fact, revised"]
    assert [v.text for v in am2.versions(w.memory_id, user_id="u")] == [
        "persisted fact",
        "persisted fact, revised",
    ]
    am2.close()


# -- scope of the id-based calls (issue 13 finding 5) ----------------------------------------
def test_update_cannot_move_a_memory_into_another_scope(am):
    w = am.remember("alice's diary: the safe code is 4711", user_id="alice")
    for key in ["user_id", "agent_id", "run_id", "version", "current", "memory_id"]:
        with pytest.raises(InvalidInputError, match="reserved"):
            am.update(w.memory_id, "planted for bob", user_id="alice", metadata={key: "bob"})
    assert am.recall("safe code planted", user_id="bob") == []
    assert [v.text for v in am.versions(w.memory_id, user_id="alice")] == [
        "alice's diary: the safe code is 4711"
    ]


def test_id_calls_answer_another_scope_as_a_missing_id(am):
    w = am.remember("alice's diary: the safe code is 4711", user_id="alice", agent_id="dj")
    u = am.update(w.memory_id, "alice's diary: the safe code is 1234", user_id="alice")
    before = (
        [dict(v.state) for v in am.versions(w.memory_id, user_id="alice")],
        [c.change_id for c in am.history(w.memory_id, user_id="alice")],
    )
    for other in [
        {"user_id": "bob"},
        {"agent_id": "other"},
        {"run_id": "r1"},
        {"user_id": "alice", "agent_id": "other"},
        {"user_id": "ALICE"},
        {"user_id": "alice%"},
        {"user_id": "alice "},
    ]:
        for call in [
            lambda i, **s: am.get(i, **s),
            lambda i, **s: am.versions(i, **s),
            lambda i, **s: am.history(i, **s),
            lambda i, **s: am.update(i, "bob was here", **s),
            lambda i, **s: am.forget(i, **s),
        ]:
            with pytest.raises(NotFoundError) as theirs:
                call(w.memory_id, **other)
            with pytest.raises(NotFoundError) as missing:
                call("0" * 32, **other)
            assert str(theirs.value) == str(missing.value).replace("0" * 32, w.memory_id)
        for change in [w.change_id, u.change_id]:
            with pytest.raises(NotFoundError) as theirs:
                am.undo(change, **other)
            with pytest.raises(NotFoundError) as missing:
                am.undo("0" * 32, **other)
            assert str(theirs.value) == str(missing.value).replace("0" * 32, change)
    assert (
        [dict(v.state) for v in am.versions(w.memory_id, user_id="alice")],
        [c.change_id for c in am.history(w.memory_id, user_id="alice")],
    ) == before
    # every scope the memory belongs to reaches it, as recall does
    assert am.get(w.memory_id, agent_id="dj").text.endswith("1234")
    assert am.get(w.memory_id, user_id="alice", agent_id="dj").version == 2
    am.undo(u.change_id, agent_id="dj")
    assert am.get(w.memory_id, user_id="alice").text.endswith("4711")


def test_id_calls_need_a_scope_as_remember_does(am):
    w = am.remember("a fact", user_id="u")
    for call in [
        lambda: am.get(w.memory_id),
        lambda: am.versions(w.memory_id),
        lambda: am.history(w.memory_id),
        lambda: am.update(w.memory_id, "b"),
        lambda: am.forget(w.memory_id),
        lambda: am.undo(w.change_id),
        lambda: am.get(w.memory_id, user_id=""),
        lambda: am.get(None, user_id="u"),
    ]:
        with pytest.raises(InvalidInputError):
            call()
    assert am.get(w.memory_id, user_id="u").text == "a fact"


# -- tenancy probes on each kind of store and history database ------------------------------
class TestAgentMemoryTenancyInMemory(AgentMemoryTenancySuite):
    @pytest.fixture
    def store_factory(self, clock):
        mem = AgentMemory(embedder="hashing", clock=clock)
        yield lambda: mem
        mem.close()


class TestAgentMemoryTenancyEmbedded(AgentMemoryTenancySuite):
    @pytest.fixture
    def store_factory(self, tmp_path, clock):
        mem = AgentMemory(
            VectorMemory(tmp_path / "kb", embedder="hashing"),
            db=f"sqlite:///{tmp_path / 'history.db'}",
            clock=clock,
        )
        yield lambda: mem
        mem.close()


@pytest.mark.server
class TestAgentMemoryTenancyPostgres(AgentMemoryTenancySuite):
    @pytest.fixture
    def store_factory(self, postgres_url, clock):
        table = f"am_{uuid.uuid4().hex[:12]}"
        mem = AgentMemory(
            VectorMemory(f"{postgres_url}?collection={table}", embedder="hashing"),
            db=postgres_url,
            clock=clock,
        )
        yield lambda: mem
        mem.close()


def test_caller_ids_are_kept_never_merged_and_never_reused(am):
    a = am.remember("Alice prefers green tea", user_id="alice", memory_id="agno-1")
    b = am.remember("Alice prefers green tea", user_id="alice", memory_id="agno-2")
    assert (a.memory_id, b.memory_id, a.merged, b.merged) == ("agno-1", "agno-2", False, False)
    assert am.get("agno-2", user_id="alice").text == "Alice prefers green tea"
    with pytest.raises(ConflictError, match="agno-1"):
        am.remember("something else", user_id="alice", memory_id="agno-1")
    assert am.get("agno-1", user_id="alice").text == "Alice prefers green tea"  # untouched
    with pytest.raises(InvalidInputError):
        am.remember("x", user_id="alice", memory_id="")


def test_memories_lists_the_current_versions_of_a_scope(am, clock):
    am.remember("bob likes chess", user_id="bob", agent_id="coach", memory_id="m1")
    clock.t += 1
    am.remember("bob plays on sundays", user_id="bob", memory_id="m2")
    clock.t += 1
    am.remember("carol likes go", user_id="carol", memory_id="m3")
    am.update("m1", "bob likes chess and go", user_id="bob")
    am.forget("m2", user_id="bob")
    assert [(m.id, m.text, m.version) for m in am.memories(user_id="bob")] == [
        ("m1", "bob likes chess and go", 2)
    ]
    assert [m.id for m in am.memories()] == ["m1", "m3"]
    assert [m.id for m in am.memories(agent_id="coach")] == ["m1"]
    assert [m.id for m in am.memories(ids=["m3", "m2", "nope"])] == ["m3"]
    assert am.memories(ids=[]) == []


def test_update_and_forget_work_as_the_first_call_of_a_reopened_memory(tmp_path):
    def reopen() -> AgentMemory:
        return AgentMemory(
            VectorMemory(tmp_path / "vectors", embedder="hashing"),
            db=f"sqlite:///{tmp_path}/history.db",
        )

    first = reopen()
    a = first.remember("dana likes tea", user_id="dana").memory_id
    b = first.remember("dana runs marathons", user_id="dana").memory_id
    first.close()
    second = reopen()  # update before anything else connected the vector store
    assert second.update(a, "dana likes oolong", user_id="dana").version == 2
    second.close()
    third = reopen()
    third.forget(b, user_id="dana")
    assert [m.text for m in third.memories(user_id="dana")] == ["dana likes oolong"]
    assert [h.memory.text for h in third.recall("oolong", user_id="dana", k=1)] == [
        "dana likes oolong"
    ]
    third.close()
