"""`vecmem serve`: the real server (uvicorn on a free 127.0.0.1 port) driven over HTTP through
vecmem.client.Client and raw httpx: every endpoint, every error mapping, tenant isolation with
two keys, read-only keys, open mode, request size limits, metrics and the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

pytest.importorskip("fastapi", reason="vecmem[serve] is not installed")

from tests._serve import free_port, running
from vecmem import errors as E
from vecmem.agent_memory import AgentMemory
from vecmem.client import AuthError, Client
from vecmem.fusion import Fusion
from vecmem.memory import VectorMemory
from vecmem.serve import Service, create_app
from vecmem.serve.auth import KeyTable
from vecmem.serve.service import TENANT_FIELD
from vecmem.stores.memory import MemoryStore

KEYS = "key-acme-0123456789 acme\nkey-globex-0123456 globex\nkey-acme-readonly-1 acme ro\n"
A, B, RO = "key-acme-0123456789", "key-globex-0123456", "key-acme-readonly-1"
TEXTS = [
    "Green tea is brewed at 80 degrees.",
    "Black coffee keeps people awake.",
    "The vaccine trial enrolled 300 patients.",
    "Tea ceremonies are common in Japan.",
]


def service() -> Service:
    return Service(
        VectorMemory(embedder="hashing"), agent=AgentMemory(VectorMemory(embedder="hashing"))
    )


@pytest.fixture(scope="module")
def url():
    with running(create_app(service(), keys=KeyTable.parse(KEYS, source="test"))) as base:
        yield base


@pytest.fixture()
def a(url):
    with Client(url, A) as c:
        yield c


@pytest.fixture()
def b(url):
    with Client(url, B) as c:
        yield c


def err(r: httpx.Response) -> dict:
    body = r.json()
    assert set(body) == {"error"} and {"status", "type", "message"} <= set(body["error"])
    assert body["error"]["status"] == r.status_code
    assert "Traceback" not in r.text
    return body["error"]


# ---------------------------------------------------------------- knowledge
def test_add_search_get_count_delete_round_trip(a, url):
    ids = a.add(
        TEXTS,
        metadata=[{"topic": "tea"}, {"topic": "coffee"}, {"topic": "med"}, {"topic": "tea"}],
        ids=["t1", "c1", "v1", "t2"],
    )
    assert ids == ["t1", "c1", "v1", "t2"]
    hits = a.search("green tea brewing", k=2)
    assert hits[0].document_id == "t1" and hits[0].id == "t1#0"
    assert hits[0].scores.vector_rank == 1 and hits[0].scores.fused is not None
    assert TENANT_FIELD not in hits[0].metadata and hits[0].metadata == {"topic": "tea"}
    kw = a.search("coffee", k=3, mode="keyword")
    assert kw[0].document_id == "c1" and kw[0].scores.keyword_rank == 1
    assert kw[0].scores.vector is None
    vec = a.search("vaccine trial", k=1, mode="vector", filter={"topic": "med"})
    assert [h.document_id for h in vec] == ["v1"] and vec[0].scores.keyword is None
    assert {h.document_id for h in a.search("tea", k=10, filter={"topic": "tea"})} == {"t1", "t2"}
    assert [c.text for c in a.get("t1")] == [TEXTS[0]]
    assert a.get(["c1#0"])[0].metadata == {"topic": "coffee"}
    assert a.count() == 4 and a.count({"topic": "tea"}) == 2 and len(a) == 4
    st = a.stats()
    assert st["chunks"] == 4 and st["tenant"] == "acme" and st["embedder"] == "hashing-256"
    page = a.documents(limit=2, offset=1)
    assert [d["document_id"] for d in page["documents"]] == ["c1", "v1"]
    assert page["documents"][0] == {
        "document_id": "c1",
        "chunks": 1,
        "source": None,
        "text": TEXTS[1],
    }
    assert a.delete(["c1"]) == 1 and a.get("c1") == [] and a.count() == 3
    assert a.delete(filter={"topic": "med"}) == 1 and a.count() == 3 - 1
    assert a.delete(["no-such-doc"]) == 0


def test_served_search_equals_the_in_process_call():
    """Open server over one memory, in-process call on an identical one: same hits, same scores."""
    served, local = service(), VectorMemory(embedder="hashing")
    meta = [{"n": i} for i in range(len(TEXTS))]
    served.memory.add(TEXTS, meta)
    local.add(TEXTS, meta)
    with running(create_app(served, keys=None, open_access=True)) as base, Client(base) as c:
        for mode in ("hybrid", "vector", "keyword"):
            got = c.search("tea in Japan", k=4, mode=mode)
            want = local.search("tea in Japan", k=4, mode=mode)
            assert [h.id for h in got] == [h.id for h in want]
            assert np.allclose([h.score for h in got], [h.score for h in want])
            assert [h.scores for h in got] == [h.scores for h in want]
        assert c.get(want[0].id) == local.get(want[0].id)
        qv = local.embedder.embed(["tea in Japan"])[0]
        assert [h.id for h in c.search("tea in Japan", k=3, mode="vector", vector=qv)] == [
            h.id for h in local.search("tea in Japan", k=3, mode="vector", vector=qv)
        ]
        with pytest.raises(E.DimensionMismatchError):
            c.search("tea", vector=[0.1, 0.2])
        rrf = Fusion(method="rrf")
        assert [(h.id, h.score) for h in c.search("tea", k=3, fusion=rrf)] == [
            (h.id, h.score) for h in local.search("tea", k=3, fusion=rrf)
        ]


def test_health_openapi_and_metrics(url, a):
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    spec = httpx.get(url + "/openapi.json").json()
    paths = set(spec["paths"])
    assert {
        "/add",
        "/add_files",
        "/search",
        "/get",
        "/delete",
        "/count",
        "/stats",
        "/health",
        "/metrics",
        "/memory/remember",
        "/memory/recall",
        "/memory/update",
        "/memory/forget",
        "/memory/get",
        "/memory/history",
        "/memory/undo",
        "/memory/consolidate",
        "/memory/list",
        "/conversations/sessions/save",
        "/conversations/sessions/get",
        "/conversations/sessions/query",
        "/conversations/sessions/delete",
        "/conversations/messages/add",
        "/conversations/messages/get",
        "/conversations/export",
    } <= paths
    before = a.metrics()["routes"].get("/count", {"count": 0, "errors": 0})
    a.count()
    with pytest.raises(E.InvalidFilterError):
        a.count({"x": {"$bogus": 1}})
    after = a.metrics()["routes"]["/count"]
    assert after["count"] == before["count"] + 2 and after["errors"] == before["errors"] + 1
    assert after["p50_ms"] > 0 and after["by_status"]["400"] >= 1


# ---------------------------------------------------------------- errors
def test_bad_input_is_400_with_the_vecmem_type(url):
    h = {"Authorization": f"Bearer {A}"}
    cases = [
        ("/search", {"query": "x", "k": 0}, "InvalidInputError"),
        ("/search", {"query": "   "}, "InvalidInputError"),
        ("/search", {"query": "x", "filter": {"a": {"$nope": 1}}}, "InvalidFilterError"),
        ("/search", {"query": "x", "fusion": {"bogus": 1}}, "InvalidInputError"),
        ("/search", {"query": "x", "mode": "fuzzy"}, "InvalidInputError"),
        ("/search", {"query": "x", "unknown_field": 1}, "InvalidInputError"),
        ("/search", {"k": 3}, "InvalidInputError"),
        ("/add", {"texts": ["a", "b"], "ids": ["only-one"]}, "InvalidInputError"),
        ("/add", {"texts": [""]}, "InvalidInputError"),
        ("/add", {"texts": ["x"], "metadata": {TENANT_FIELD: "globex"}}, "InvalidInputError"),
        ("/delete", {}, "InvalidInputError"),
        ("/memory/remember", {"text": "no scope"}, "InvalidInputError"),
        (
            "/memory/recall",
            {"query": "q", "user_id": "u", "recency_weight": 2},
            "InvalidInputError",
        ),
        (
            "/conversations/messages/add",
            {"user_id": "u", "session_id": "s", "messages": [{"role": "user"}]},
            "InvalidInputError",
        ),
    ]
    for path, body, kind in cases:
        r = httpx.post(url + path, json=body, headers=h)
        assert r.status_code == 400, (path, body, r.text)
        assert err(r)["type"] == kind, (path, body, r.text)
    r = httpx.post(
        url + "/search", content=b'{"query": ', headers={**h, "Content-Type": "application/json"}
    )
    assert r.status_code == 400 and err(r)["type"] == "InvalidInputError"


def test_unknown_ids_are_404(url, a):
    for call in (
        lambda: a.agent.get("nope", user_id="u"),
        lambda: a.agent.history("nope", user_id="u"),
        lambda: a.agent.update("nope", "t", user_id="u"),
        lambda: a.agent.forget("nope", user_id="u"),
        lambda: a.agent.undo("nope", user_id="u"),
        lambda: a.conversations.get_session("u", "nope"),
    ):
        with pytest.raises(E.NotFoundError):
            call()
    r = httpx.post(
        url + "/memory/get",
        json={"memory_id": "x", "user_id": "u"},
        headers={"Authorization": f"Bearer {A}"},
    )
    assert r.status_code == 404 and err(r)["type"] == "NotFoundError"
    r = httpx.get(url + "/no/such/route", headers={"Authorization": f"Bearer {A}"})
    assert r.status_code == 404 and err(r)["type"] == "HTTPError"


def test_space_mismatch_and_undo_conflict_are_409(tmp_path, a):
    VectorMemory(tmp_path / "kb", embedder="hashing-64").add(["built with 64 dimensions"])
    other = Service(
        VectorMemory(tmp_path / "kb", embedder="hashing-128"),
        agent=AgentMemory(VectorMemory(embedder="hashing")),
    )
    with running(create_app(other, keys=None, open_access=True, mcp=False)) as base:
        r = httpx.post(base + "/search", json={"query": "dimensions"})
        assert r.status_code == 409 and err(r)["type"] == "EmbeddingSpaceMismatchError"
        with Client(base) as c, pytest.raises(E.EmbeddingSpaceMismatchError):
            c.add(["x"])
    w = a.agent.remember("Undo me twice", user_id="conflict")
    a.agent.undo(w["change_id"], user_id="conflict")
    with pytest.raises(E.ConflictError):
        a.agent.undo(w["change_id"], user_id="conflict")


def test_too_large_is_413_and_the_server_keeps_serving(url, a):
    h = {"Authorization": f"Bearer {A}", "Content-Type": "application/json"}
    app_limit = 10 * 2**20
    big = json.dumps({"texts": ["x" * (app_limit + 10)]}).encode()
    r = httpx.post(url + "/add", content=big, headers=h)
    assert r.status_code == 413 and err(r)["type"] == "RequestTooLarge"

    def chunks():  # no Content-Length: the limit is counted while reading
        yield b'{"texts": ["'
        for _ in range(11):
            yield b"y" * 2**20
        yield b'"]}'

    r = httpx.post(url + "/add", content=chunks(), headers=h)
    assert r.status_code == 413 and err(r)["type"] == "RequestTooLarge"
    assert a.search("Green tea", k=1)  # still serving, nothing of the big body stored
    assert not a.search("yyyy", k=5, mode="keyword")


class _DownStore(MemoryStore):
    """A store whose backend is unreachable (what adapters raise when the server is down)."""

    def count(self, filter=None):
        raise E.BackendUnavailableError("cannot reach the database at 127.0.0.1:1")

    def query(self, vector, *, k, filter=None):
        raise ZeroDivisionError("a bug in a store")


def test_backend_down_is_503_and_a_crash_is_500_without_a_trace():
    svc = Service(
        VectorMemory(store=_DownStore(), embedder="hashing"),
        agent=AgentMemory(VectorMemory(embedder="hashing")),
    )
    with running(create_app(svc, keys=None, open_access=True, mcp=False)) as base:
        for r in (httpx.get(base + "/health"), httpx.post(base + "/count", json={})):
            assert r.status_code == 503 and err(r)["type"] == "BackendUnavailableError"
        r = httpx.post(base + "/search", json={"query": "x", "mode": "vector"})
        assert r.status_code == 500
        assert err(r) == {"status": 500, "type": "InternalError", "message": "internal error"}
        assert "ZeroDivision" not in r.text
        with Client(base) as c, pytest.raises(E.BackendUnavailableError):
            c.count()


def test_unreachable_server_is_backend_unavailable():
    with (
        Client(f"http://127.0.0.1:{free_port()}", "k") as c,
        pytest.raises(E.BackendUnavailableError),
    ):
        c.search("x")


# ---------------------------------------------------------------- auth
def test_no_key_bad_key_and_read_only_key(url):
    for headers in (
        {},
        {"Authorization": "Bearer wrong-key-0123456789"},
        {"Authorization": f"Basic {A}"},
        {"Authorization": "Bearer"},
    ):
        r = httpx.post(url + "/search", json={"query": "tea"}, headers=headers)
        assert r.status_code == 401 and err(r)["type"] == "Unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url + "/stats").status_code == 401
    assert httpx.get(url + "/metrics").status_code == 401
    with Client(url, RO) as ro:
        assert ro.search("green tea", k=1)  # reads acme's data
        for write in (
            lambda: ro.add(["x"]),
            lambda: ro.delete(["t1"]),
            lambda: ro.agent.remember("x", user_id="u"),
            lambda: ro.conversations.add_messages("u", "s", [{"role": "user", "content": "x"}]),
        ):
            with pytest.raises(AuthError) as info:
                write()
            assert info.value.status == 403
    with Client(url, "bogus-key-000000000") as bad, pytest.raises(AuthError):
        bad.search("x")


def test_key_file_and_environment(tmp_path):
    f = tmp_path / "keys.txt"
    f.write_text("# comment\nfile-key-0123456789 acme ro\n")
    t = KeyTable.load(f, environ={"VECMEM_API_KEYS": "env-key-0123456789ab:globex"})
    assert t.lookup("Bearer file-key-0123456789").tenant == "acme"
    assert t.lookup("Bearer file-key-0123456789").read_only
    assert t.lookup("bearer env-key-0123456789ab").tenant == "globex"
    for bad in (
        "short acme\n",
        "k-0123456789abcdef a/b\n",
        "k-0123456789abcdef\n",
        "k-0123456789abcdef acme admin\n",
        "k-0123456789abcdef a\nk-0123456789abcdef b\n",
    ):
        f.write_text(bad)
        with pytest.raises(E.ConfigurationError):
            KeyTable.load(f, environ={})


# ---------------------------------------------------------------- tenant isolation
def test_two_tenants_never_see_or_change_each_other(url, a, b):
    """Probes: whatever globex sends (ids, prefixed ids, filters naming the tenant field, user
    ids), it never reads, lists, changes or deletes acme's data."""
    a.add(
        ["Acme's secret roadmap mentions quantum widgets."],
        ids=["shared"],
        metadata={"owner": "acme"},
    )
    b.add(["Globex plans a volcano lair."], ids=["shared"], metadata={"owner": "globex"})
    assert [c.text for c in a.get("shared")] == ["Acme's secret roadmap mentions quantum widgets."]
    assert [c.text for c in b.get("shared")] == ["Globex plans a volcano lair."]
    acme_total = a.count()

    def acme_visible(hits):
        return [h for h in hits if "quantum" in h.text or h.metadata.get("owner") == "acme"]

    probes = [
        None,
        {TENANT_FIELD: "acme"},
        {"$or": [{TENANT_FIELD: "acme"}, {"owner": "acme"}]},
        {"$not": {TENANT_FIELD: "globex"}},
        {TENANT_FIELD: {"$in": ["acme", "globex"]}},
        {"owner": "acme"},
    ]
    for flt in probes:
        for mode in ("hybrid", "vector", "keyword"):
            assert not acme_visible(
                b.search("quantum widgets roadmap", k=50, mode=mode, filter=flt)
            ), (flt, mode)
    assert b.count({"owner": "acme"}) == 0 and b.count({TENANT_FIELD: "acme"}) == 0
    for ids in (
        ["shared#0"],
        ["acme/shared"],
        ["acme/shared#0"],
        ["../acme/shared"],
        ["t1"],
        ["t1#0"],
    ):
        assert all("quantum" not in c.text and "tea" not in c.text for c in b.get(ids)), ids
    listed = a.documents(limit=1000)
    assert "shared" in [d["document_id"] for d in listed["documents"]]
    assert listed["total"] == len(listed["documents"])
    theirs = b.documents(limit=1000)["documents"]
    assert [d["document_id"] for d in theirs] == ["shared"]
    assert theirs[0]["text"].startswith("Globex") and theirs[0]["chunks"] == 1
    for ids, flt in (
        (["acme/shared"], None),
        (["t1", "t2"], None),
        (None, {"owner": "acme"}),
        (None, {TENANT_FIELD: "acme"}),
        (None, {"$not": {"owner": "nobody"}}),
    ):
        b.delete(ids, filter=flt)
    assert a.count() == acme_total  # nothing of acme's was deleted
    assert [c.text for c in a.get("shared")] == ["Acme's secret roadmap mentions quantum widgets."]
    assert b.count() == 0  # globex's own "$not" delete removed globex's own chunk only
    # agent memory: the same user id in two tenants is two users
    w = a.agent.remember("Alice is allergic to peanuts", user_id="alice")
    mid = w["memory_id"]
    assert b.agent.recall("peanuts allergy", user_id="alice") == []
    assert b.agent.recall("peanuts", user_id="alice", filter={"user_id": "acme/alice"}) == []
    assert b.agent.list(user_id="alice") == []
    for call in (
        lambda: b.agent.get(mid, user_id="alice"),
        lambda: b.agent.get(mid, user_id="acme/alice"),
        lambda: b.agent.history(mid, user_id="alice"),
        lambda: b.agent.update(mid, "Alice loves peanuts", user_id="alice"),
        lambda: b.agent.forget(mid, user_id="alice"),
        lambda: b.agent.undo(w["change_id"], user_id="alice"),
    ):
        with pytest.raises(E.NotFoundError):
            call()
    b.agent.consolidate(user_id="alice")
    assert a.agent.get(mid, user_id="alice")["text"] == "Alice is allergic to peanuts"
    assert a.agent.get(mid, user_id="alice")["version"] == 1
    # conversations
    a.conversations.add_messages("u1", "s1", [{"role": "user", "content": "acme private"}])
    with pytest.raises(E.NotFoundError):
        b.conversations.get_session("u1", "s1")
    assert b.conversations.get_messages("u1", "s1") == []
    assert b.conversations.query_sessions() == []
    assert b.conversations.export("u1")["sessions"] == []
    assert b.conversations.delete_session("u1", "s1") is False
    assert a.conversations.get_session("u1", "s1")["message_count"] == 1


# ---------------------------------------------------------------- agent memory, conversations
def test_agent_memory_calls(a):
    w = a.agent.remember(
        "Bob drinks oolong tea every morning",
        user_id="bob",
        metadata={"src": "chat"},
        importance=0.9,
    )
    assert w["merged"] is False and w["version"] == 1
    again = a.agent.remember("bob drinks oolong tea every morning", user_id="bob")
    assert again["merged"] is True and again["memory_id"] == w["memory_id"]
    hits = a.agent.recall("what does bob drink", user_id="bob")
    assert hits[0]["memory"]["id"] == w["memory_id"]
    # The client forwards every recall option the server takes, and the server checks it.
    weighted = a.agent.recall("bob drink", user_id="bob", recency_weight=0.5, half_life_days=7.0)
    assert [h["memory"]["id"] for h in weighted] == [w["memory_id"]]
    with pytest.raises(E.InvalidInputError):
        a.agent.recall("bob drink", user_id="bob", half_life_days=-1.0)
    assert hits[0]["memory"]["state"]["user_id"] == "bob"  # the tenant prefix is not shown
    assert hits[0]["memory"]["metadata"] == {"src": "chat"}
    u = a.agent.update(
        w["memory_id"], "Bob switched to green tea", user_id="bob", reason="he said so"
    )
    assert u["version"] == 2
    assert a.agent.get(w["memory_id"], user_id="bob")["text"] == "Bob switched to green tea"
    h = a.agent.history(w["memory_id"], user_id="bob")
    assert [c["op"] for c in h["changes"]] == ["create", "merge", "update"]
    assert [v["text"] for v in h["versions"]] == [
        "Bob drinks oolong tea every morning",
        "Bob switched to green tea",
    ]
    assert all(v["state"]["user_id"] == "bob" for v in h["versions"])
    a.agent.undo(u["change_id"], user_id="bob")
    assert (
        a.agent.get(w["memory_id"], user_id="bob")["text"] == "Bob drinks oolong tea every morning"
    )
    a.agent.forget(w["memory_id"], user_id="bob", reason="asked to")
    assert a.agent.recall("bob drink", user_id="bob") == []
    with pytest.raises(E.NotFoundError):
        a.agent.get(w["memory_id"], user_id="bob")
    for t in ("Carol plays chess on Sundays", "Carol won a chess cup playing on Sundays"):
        assert a.agent.remember(t, user_id="carol", agent_id="bot")["merged"] is False
    rep = a.agent.consolidate(user_id="carol", agent_id="bot", similarity=0.2)  # exact scope
    assert len(rep["summaries_created"]) == 1 and rep["memories_consolidated"] == 2
    listed = a.agent.list(user_id="carol")
    assert {m["state"]["kind"] for m in listed} == {"memory", "summary"}
    assert all(m["state"]["agent_id"] == "bot" for m in listed)


def test_conversation_calls(a):
    s = a.conversations.save_session("dana", "chat-1", title="Trip", tags=["travel"])
    assert s["title"] == "Trip" and s["tags"] == ["travel"]
    msgs = a.conversations.add_messages(
        "dana",
        "chat-1",
        [
            {
                "role": "user",
                "content": "Book a train",
                "usage": {"input_tokens": 5, "output_tokens": 0},
            },
            {"role": "assistant", "content": "Done", "metadata": {"tool": "rail"}},
        ],
    )
    assert [m["seq"] for m in msgs] == [0, 1]
    got = a.conversations.get_messages("dana", "chat-1", newest_first=True, limit=1)
    assert [m["content"] for m in got] == ["Done"]
    sess = a.conversations.get_session("dana", "chat-1")
    assert sess["message_count"] == 2 and sess["input_tokens"] == 5
    assert [x["session_id"] for x in a.conversations.query_sessions(tags=["travel"])] == ["chat-1"]
    assert len(a.conversations.export("dana", "chat-1")["sessions"][0]["messages"]) == 2
    assert a.conversations.delete_session("dana", "chat-1") is True
    with pytest.raises(E.NotFoundError):
        a.conversations.get_session("dana", "chat-1")


# ---------------------------------------------------------------- command line
def _wait(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read())
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("vecmem serve did not start")


def test_vecmem_serve_command(tmp_path):
    """The real command: a folder store with keys from a file, stopped with SIGTERM; data
    added over HTTP is in the folder afterwards."""
    keys = tmp_path / "keys.txt"
    keys.write_text(KEYS)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-P",
            "-m",
            "vecmem.cli",
            "--store",
            str(tmp_path / "kb"),
            "--embedder",
            "hashing",
            "serve",
            "--port",
            str(port),
            "--api-keys",
            str(keys),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(base, proc)
        with Client(base, A) as c:
            c.add(["Served documents persist in the folder."], ids=["p1"])
            assert c.search("persist folder", k=1)[0].document_id == "p1"
    finally:
        proc.terminate()
        proc.wait(20)
    mem = VectorMemory(tmp_path / "kb")
    assert [c.text for c in mem.get("acme/p1")] == ["Served documents persist in the folder."]


def test_serve_refuses_to_start_open_by_accident(tmp_path, capsys):
    from vecmem.cli import main

    env = os.environ.pop("VECMEM_API_KEYS", None)
    try:
        assert main(["--store", str(tmp_path / "kb"), "serve"]) == 2
        assert "no API keys" in capsys.readouterr().err
        assert main(["--store", str(tmp_path / "kb"), "serve", "--open", "--host", "0.0.0.0"]) == 2
        assert "loopback" in capsys.readouterr().err
    finally:
        if env is not None:
            os.environ["VECMEM_API_KEYS"] = env


def test_open_mode_serves_the_whole_store_unscoped(tmp_path):
    VectorMemory(tmp_path / "kb", embedder="hashing").add(
        ["added by the command line"], ids=["cli-doc"]
    )
    svc = Service(
        VectorMemory(tmp_path / "kb"), agent=AgentMemory(VectorMemory(embedder="hashing"))
    )
    with (
        running(create_app(svc, keys=None, open_access=True, mcp=False)) as base,
        Client(base) as c,
    ):
        assert c.search("command line", k=1)[0].document_id == "cli-doc"
        assert c.get("cli-doc")[0].text == "added by the command line"
    with running(create_app(svc, keys=None, open_access=False, mcp=False)) as base:
        assert httpx.post(base + "/search", json={"query": "x"}).status_code == 401


def test_add_files_uploads_are_read_by_the_loaders(url, a, b, tmp_path):
    (tmp_path / "guide.md").write_text(
        "# Setup\n\nTurn the brass valve clockwise twice.\n\n"
        "# Care\n\nOil the hinges every spring.\n"
    )
    (tmp_path / "note.txt").write_text("Zeppelins were filled with hydrogen.")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "fake.pdf").write_bytes(b"<html>not a pdf</html>")
    (tmp_path / "data.xyz").write_bytes(b"??")
    r = a.add_files(
        [tmp_path / n for n in ("guide.md", "note.txt", "empty.txt", "fake.pdf", "data.xyz")],
        metadata={"batch": 7},
    )
    assert sorted(r["document_ids"]) == ["guide.md", "note.txt"] and r["files"] == 2
    assert r["unsupported"] == ["data.xyz"]
    assert {f["source"]: f["error"] for f in r["failed"]} == {
        "empty.txt": "EmptyDocumentError",
        "fake.pdf": "FormatMismatchError",
    }
    hit = a.search("brass valve", k=1)[0]
    assert hit.document_id == "guide.md" and hit.metadata["heading"] == "Setup"
    assert hit.metadata["source"] == "guide.md" and hit.metadata["batch"] == 7
    assert a.add_files([tmp_path / "note.txt"], metadata={"batch": 7})["skipped"] == 1
    assert not [
        h
        for h in b.search("brass valve zeppelins", k=10)
        if h.document_id in ("guide.md", "note.txt")
    ]
    h = {"Authorization": f"Bearer {A}"}
    r = httpx.post(
        url + "/add_files",
        data={"metadata": "{bad"},
        headers=h,
        files=[("files", ("n.txt", b"text"))],
    )
    assert r.status_code == 400 and "metadata is not JSON" in err(r)["message"]
    r = httpx.post(url + "/add_files", data={"x": "1"}, headers=h)
    assert r.status_code == 400 and err(r)["type"] == "InvalidInputError"
    with Client(url, RO) as ro, pytest.raises(AuthError):
        ro.add_files([tmp_path / "note.txt"])


def test_an_open_server_refuses_other_web_pages_and_rebound_host_names():
    """Without keys, a page on another origin (or a DNS-rebound name) must not drive the server:
    a fetch() with a body Blob sends no Content-Type and needs no CORS preflight."""
    with running(create_app(service(), keys=None, open_access=True, mcp=False)) as base:
        port = base.rsplit(":", 1)[1]
        for headers in (
            {"Origin": "http://evil.example"},
            {"Host": f"evil.example:{port}"},
            {"Origin": "null"},
        ):
            r = httpx.post(base + "/add", content=json.dumps({"texts": ["pwned"]}), headers=headers)
            assert r.status_code == 403 and err(r)["type"] == "Forbidden", headers
        ok = httpx.post(
            base + "/add",
            content=json.dumps({"texts": ["fine"]}),
            headers={"Origin": base, "Content-Type": "application/json"},
        )
        assert ok.status_code == 200
        with Client(base.replace("127.0.0.1", "localhost")) as c:
            assert [h.text for h in c.search("pwned fine", k=5)] == ["fine"]
