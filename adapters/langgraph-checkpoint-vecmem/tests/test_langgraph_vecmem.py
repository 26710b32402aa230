"""langgraph-checkpoint-vecmem: LangGraph's conformance suite, real graphs (resume, interrupts,
time travel, subgraphs, async), encryption at rest and vecmem's view of the same checkpoints --
on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import operator
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
import sqlalchemy as sa
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.vecmem import VecmemSaver
from langgraph.graph import END, START, StateGraph

from vecmem.checkpoints import Codec, Retention, SQLCheckpointStore, generate_key
from vecmem.db import Database
from vecmem.errors import ConfigurationError, IntegrityError, InvalidInputError


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.server)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'graph.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.close()


@pytest.fixture
def new_saver(db: Database) -> Callable[..., VecmemSaver]:
    """A saver in a tenant of its own (servers are shared by the whole test session)."""

    def make(**options: Any) -> VecmemSaver:
        tenant = options.pop("tenant", f"t{uuid.uuid4().hex[:16]}")
        return VecmemSaver(SQLCheckpointStore(db, tenant=tenant, **options))

    return make


# ---------------------------------------------------------------- conformance
def test_langgraph_conformance_suite(new_saver: Callable[..., VecmemSaver]) -> None:
    @checkpointer_test(name="VecmemSaver")
    async def factory() -> AsyncIterator[VecmemSaver]:
        yield new_saver()

    report = asyncio.run(validate(factory))
    failures = {cap: r.failures for cap, r in report.results.items() if r.failures}
    assert not failures, failures
    assert report.passed_all_base()
    # The optional capabilities (delete_for_runs, copy_thread, prune) are implemented too.
    assert {cap for cap, r in report.results.items() if r.detected and r.passed} == {
        c.value for c in ALL_CAPABILITIES
    }


def test_no_tenant_name_reaches_another_tenants_threads(
    new_saver: Callable[..., VecmemSaver],
) -> None:
    """vecmem.testing.tenancy's crafted names: none sees, lists, copies or deletes the
    victim's checkpoints and pending writes."""
    from vecmem._keys import MAX_TENANT
    from vecmem.testing.tenancy import hostile_names, victim_name

    name, thread = victim_name("lg"), f"th-{uuid.uuid4().hex[:8]}"
    cfg = {"configurable": {"thread_id": thread}}
    victim = _graph(new_saver(tenant=name))
    victim.invoke({"log": ["secret"], "count": 0}, cfg)
    saved = victim.checkpointer.get_tuple(cfg)
    by_id = {"configurable": {**saved.config["configurable"]}}
    before = [c.config for c in victim.checkpointer.list(cfg)]
    for crafted in hostile_names(name, max_len=MAX_TENANT):
        other = new_saver(tenant=crafted)
        assert other.get_tuple(cfg) is None and other.get_tuple(by_id) is None, crafted
        assert list(other.list(cfg)) == [], crafted
        assert all(c.config["configurable"]["thread_id"] != thread for c in other.list(None)), (
            crafted
        )
        other.copy_thread(thread, f"{thread}-stolen")
        assert other.get_tuple({"configurable": {"thread_id": f"{thread}-stolen"}}) is None
        other.delete_thread(thread)
        other.prune([thread], strategy="delete")
    assert [c.config for c in victim.checkpointer.list(cfg)] == before
    assert victim.get_state(cfg).values == {"log": ["secret", "plan", "act1"], "count": 1}


# ---------------------------------------------------------------- real graphs
class State(TypedDict):
    log: Annotated[list[str], operator.add]
    count: int


def _graph(saver: VecmemSaver, *, interrupt_before: list[str] | None = None) -> Any:
    def plan(state: State) -> dict[str, Any]:
        return {"log": ["plan"], "count": state.get("count", 0) + 1}

    def act(state: State) -> dict[str, Any]:
        return {"log": [f"act{state['count']}"]}

    g = StateGraph(State)
    g.add_node("plan", plan)
    g.add_node("act", act)
    g.add_edge(START, "plan")
    g.add_edge("plan", "act")
    g.add_edge("act", END)
    return g.compile(checkpointer=saver, interrupt_before=interrupt_before)


def test_a_thread_resumes_across_saver_instances(new_saver: Callable[..., VecmemSaver]) -> None:
    tenant = f"t{uuid.uuid4().hex[:16]}"
    cfg = {"configurable": {"thread_id": "chat-1"}}
    first = _graph(new_saver(tenant=tenant))
    assert first.invoke({"log": ["hi"], "count": 0}, cfg)["log"] == ["hi", "plan", "act1"]

    again = _graph(new_saver(tenant=tenant))  # a new process would do the same
    out = again.invoke({"log": ["more"]}, cfg)
    assert out == {"log": ["hi", "plan", "act1", "more", "plan", "act2"], "count": 2}
    history = list(again.get_state_history(cfg))
    assert [h.metadata["step"] for h in history] == [6, 5, 4, 3, 2, 1, 0, -1]
    assert history[-1].parent_config is None
    assert all(h.parent_config == o.config for h, o in itertools.pairwise(history))
    # Another thread and another tenant see nothing of it.
    assert again.get_state({"configurable": {"thread_id": "chat-2"}}).values == {}
    assert _graph(new_saver()).get_state(cfg).values == {}


def test_interrupt_then_resume_and_time_travel(new_saver: Callable[..., VecmemSaver]) -> None:
    graph = _graph(new_saver(), interrupt_before=["act"])
    cfg = {"configurable": {"thread_id": "review"}}
    graph.invoke({"log": ["start"], "count": 0}, cfg)
    paused = graph.get_state(cfg)
    assert paused.next == ("act",) and paused.values["log"] == ["start", "plan"]

    graph.update_state(cfg, {"log": ["approved"]})  # a human edits the state, then resumes
    assert graph.invoke(None, cfg)["log"] == ["start", "plan", "approved", "act1"]

    # Time travel: replay from the paused checkpoint forks a new branch; the old one stays.
    forked = graph.invoke(None, paused.config)
    assert forked["log"] == ["start", "plan", "act1"]
    assert graph.get_state(cfg).values["log"] == ["start", "plan", "act1"]


def _trace(checkpointer: Any) -> list[Any]:
    """What a user sees of a thread after resumes, an interrupt, an edit and a fork."""
    graph = _graph(checkpointer, interrupt_before=["act"])
    cfg = {"configurable": {"thread_id": "same"}}
    graph.invoke({"log": ["a"], "count": 0}, cfg)
    graph.update_state(cfg, {"log": ["edit"]})
    graph.invoke(None, cfg)
    graph.invoke({"log": ["b"]}, cfg)
    paused = list(graph.get_state_history(cfg))[3]
    graph.invoke(None, paused.config)
    out = []
    for snap in graph.get_state_history(cfg):
        parent = snap.parent_config["configurable"]["checkpoint_id"] if snap.parent_config else None
        out.append(
            (
                snap.values,
                snap.next,
                snap.metadata["source"],
                snap.metadata["step"],
                snap.config["configurable"]["checkpoint_id"] > (parent or ""),
                [(t.name, t.interrupts) for t in snap.tasks],
            )
        )
    return out


def test_graphs_see_what_langgraphs_in_memory_saver_shows(
    new_saver: Callable[..., VecmemSaver],
) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    expected = _trace(InMemorySaver())
    assert len(expected) > 8
    assert _trace(new_saver()) == expected


def test_subgraph_checkpoints_live_in_their_namespace(
    new_saver: Callable[..., VecmemSaver],
) -> None:
    saver = new_saver()
    inner = StateGraph(State)
    inner.add_node("deep", lambda s: {"log": ["deep"]})
    inner.add_edge(START, "deep")
    inner.add_edge("deep", END)
    outer = StateGraph(State)
    outer.add_node("sub", inner.compile(checkpointer=True))
    outer.add_edge(START, "sub")
    outer.add_edge("sub", END)
    graph = outer.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "nested"}}
    assert graph.invoke({"log": [], "count": 0}, cfg)["log"] == ["deep"]
    namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(cfg)}
    assert namespaces == {"", "sub"}  # checkpointer=True: the subgraph keeps its own history
    root_only = list(saver.list({"configurable": {"thread_id": "nested", "checkpoint_ns": ""}}))
    assert {t.config["configurable"]["checkpoint_ns"] for t in root_only} == {""}
    saver.delete_thread("nested")
    assert list(saver.list(cfg)) == []


def test_async_graph(new_saver: Callable[..., VecmemSaver]) -> None:
    graph = _graph(new_saver())

    async def run() -> list[Any]:
        cfgs = [{"configurable": {"thread_id": f"a{i}"}} for i in range(3)]
        await asyncio.gather(
            *(graph.ainvoke({"log": [str(i)], "count": i}, c) for i, c in enumerate(cfgs))
        )
        return [(await graph.aget_state(c)).values for c in cfgs]

    assert asyncio.run(run()) == [
        {"log": [str(i), "plan", f"act{i + 1}"], "count": i + 1} for i in range(3)
    ]


# ---------------------------------------------------------------- vecmem underneath
def test_vecmem_sees_the_same_checkpoints(new_saver: Callable[..., VecmemSaver]) -> None:
    saver = new_saver()
    graph = _graph(saver)
    cfg = {"configurable": {"thread_id": "audit"}}
    graph.invoke({"log": ["x"], "count": 0}, cfg)
    history = saver.store.history("audit")
    assert len(history) == len(list(saver.list(cfg))) == 4
    newest, previous = history[0], history[1]
    assert (
        newest.metadata["checkpoint_id"]
        == graph.get_state(cfg).config["configurable"]["checkpoint_id"]
    )
    assert newest.parent_id == previous.id  # vecmem's lineage follows LangGraph's parents
    changed = saver.store.diff(previous.id, newest.id)
    assert any(p.startswith("/channels/log") for p in {**changed.changed, **changed.added})


def test_encrypted_at_rest(new_saver: Callable[..., VecmemSaver], db: Database) -> None:
    key = generate_key()
    tenant = f"t{uuid.uuid4().hex[:16]}"
    saver = new_saver(tenant=tenant, key=key)
    cfg = saver.put(
        {"configurable": {"thread_id": "s", "checkpoint_ns": ""}},
        {
            **empty_checkpoint(),
            "channel_values": {"secret": "PLAINTEXT-CANARY"},
            "channel_versions": {"secret": 1},
        },
        {"source": "input", "step": -1},
        {"secret": 1},
    )
    saver.put_writes(cfg, [("secret", "WRITE-CANARY")], "task-1")
    with db.engine.connect() as conn:
        blobs = [
            bytes(v)
            for (v,) in conn.execute(
                sa.text("SELECT state FROM vecmem_checkpoints WHERE tenant = :t"), {"t": tenant}
            )
        ]
        blobs += [
            bytes(v)
            for (v,) in conn.execute(
                sa.text("SELECT value FROM vecmem_lg_writes WHERE tenant = :t"), {"t": tenant}
            )
        ]
    assert len(blobs) == 2
    for blob in blobs:  # checkpoint state and pending write are both encrypted
        with pytest.raises(IntegrityError, match="encrypted"):
            Codec().decode(blob)
    tup = saver.get_tuple(cfg)
    assert tup is not None and tup.checkpoint["channel_values"] == {"secret": "PLAINTEXT-CANARY"}
    assert tup.pending_writes == [("task-1", "secret", "WRITE-CANARY")]
    with pytest.raises(IntegrityError):
        new_saver(tenant=tenant).get_tuple(cfg)  # no key: refuses, never returns garbage


# ---------------------------------------------------------------- typed errors
def test_bad_input_raises_typed_errors_and_stores_nothing(
    new_saver: Callable[..., VecmemSaver],
) -> None:
    saver = new_saver()
    cp = empty_checkpoint()
    with pytest.raises(InvalidInputError):
        saver.get_tuple({"configurable": {}})
    with pytest.raises(InvalidInputError):
        saver.put(
            {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
            cp,
            {"source": "input", "step": -1, "bad": object()},
            {},
        )  # type: ignore[typeddict-unknown-key]
    with pytest.raises(InvalidInputError):
        saver.put({"configurable": {"thread_id": "x" * 500, "checkpoint_ns": ""}}, cp, {}, {})
    for thread in ["a\ud800b", "a\x00b"]:  # a lone surrogate reached the driver untyped
        with pytest.raises(InvalidInputError):
            saver.put({"configurable": {"thread_id": thread, "checkpoint_ns": ""}}, cp, {}, {})
        with pytest.raises(InvalidInputError):
            saver.get_tuple({"configurable": {"thread_id": thread}})
    with pytest.raises(InvalidInputError):
        saver.put_writes({"configurable": {"thread_id": "t"}}, [("c", 1)], "task")
    with pytest.raises(InvalidInputError):
        saver.prune(["t"], strategy="keep_some")
    assert list(saver.list(None)) == [] and saver.store.threads() == []


def test_configuration_errors(db: Database) -> None:
    with pytest.raises(ConfigurationError):
        VecmemSaver(SQLCheckpointStore(db, retention=Retention(keep_last=2)))
    with pytest.raises(ConfigurationError):
        VecmemSaver(42)  # type: ignore[arg-type]


def test_from_conn_string(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    with VecmemSaver.from_conn_string(url) as saver:
        _graph(saver).invoke({"log": [], "count": 0}, {"configurable": {"thread_id": 7}})
    with VecmemSaver.from_conn_string(url) as saver:
        tup = saver.get_tuple({"configurable": {"thread_id": "7"}})
        assert tup is not None and tup.checkpoint["channel_values"]["count"] == 1


# ---------------------------------------------------------------- interval=N
def _loop(saver: VecmemSaver, until: int = 10) -> Any:
    def inc(state: State) -> dict[str, Any]:
        return {"log": [f"i{state['count'] + 1}"], "count": state["count"] + 1}

    g = StateGraph(State)
    g.add_node("inc", inc)
    g.add_edge(START, "inc")
    g.add_conditional_edges("inc", lambda s: END if s["count"] >= until else "inc")
    return g.compile(checkpointer=saver)


def test_interval_writes_every_nth_step(db: Database) -> None:
    tenant = f"t{uuid.uuid4().hex[:16]}"
    cfg = {"configurable": {"thread_id": "loop"}}
    every = VecmemSaver(SQLCheckpointStore(db, tenant=tenant + "a"))
    assert _loop(every).invoke({"log": [], "count": 0}, cfg)["count"] == 10
    assert len(every.store.history("loop")) == 12  # steps -1 .. 10

    saver = VecmemSaver(SQLCheckpointStore(db, tenant=tenant), interval=3)
    graph = _loop(saver)
    out = graph.invoke({"log": [], "count": 0}, cfg)
    assert out["count"] == 10 and out["log"] == [f"i{i}" for i in range(1, 11)]
    written = [i.metadata["step"] for i in saver.store.history("loop")]
    assert written == [9, 6, 3, 0, -1]  # step 10 waits in memory
    state = graph.get_state(cfg)  # a read writes it
    assert state.values == out and state.metadata["step"] == 10
    history = list(graph.get_state_history(cfg))
    assert [h.metadata["step"] for h in history] == [10, 9, 6, 3, 0, -1]
    assert all(h.parent_config == o.config for h, o in itertools.pairwise(history))
    assert history[-1].parent_config is None
    saver.close()


def test_interval_crash_resumes_from_the_last_written_step(db: Database) -> None:
    tenant = f"t{uuid.uuid4().hex[:16]}"
    cfg = {"configurable": {"thread_id": "loop"}}
    crashed = VecmemSaver(SQLCheckpointStore(db, tenant=tenant), interval=4)
    _loop(crashed, until=7).invoke({"log": [], "count": 0}, cfg)  # never flushed or closed
    fresh = VecmemSaver(SQLCheckpointStore(db, tenant=tenant))  # the process restarted
    graph = _loop(fresh, until=7)
    state = graph.get_state(cfg)
    assert state.metadata["step"] == 4 and state.values["count"] == 5  # the last written
    out = graph.invoke(None, cfg)  # re-runs the steps after 4
    assert out == {"log": [f"i{i}" for i in range(1, 8)], "count": 7}


def test_interval_must_be_a_positive_int(db: Database) -> None:
    for bad in [0, -1, 1.5, True, "2"]:
        with pytest.raises(ConfigurationError):
            VecmemSaver(SQLCheckpointStore(db), interval=bad)  # type: ignore[arg-type]
