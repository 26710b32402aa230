"""The MCP server, driven by the official SDK's own client over both transports: streamable
HTTP (mounted at /mcp of the real HTTP server, behind the same API keys) and stdio
(`vecmem mcp` in a subprocess)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

mcp = pytest.importorskip("mcp", reason="vecmem[serve] is not installed")
pytest.importorskip("fastapi", reason="vecmem[serve] is not installed")

import httpx2  # noqa: E402  (the SDK's HTTP client)
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from tests._serve import running  # noqa: E402
from vecmem.agent_memory import AgentMemory  # noqa: E402
from vecmem.memory import VectorMemory  # noqa: E402
from vecmem.serve import Service, create_app  # noqa: E402
from vecmem.serve.auth import KeyTable  # noqa: E402

KEYS = "key-acme-0123456789 acme\nkey-globex-0123456 globex\nkey-acme-readonly-1 acme ro\n"
TOOLS = {
    "search_knowledge",
    "add_knowledge",
    "get_document",
    "remember",
    "recall",
    "update_memory",
    "forget",
}


def client(url: str, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = httpx2.AsyncClient(headers=headers, timeout=30)
    return Client(streamable_http_client(url + "/mcp", http_client=http))


async def call(c: Client, tool: str, **args):
    r = await c.call_tool(tool, args)
    return r


def text_of(result) -> str:
    return " ".join(getattr(b, "text", "") for b in result.content)


@pytest.fixture(scope="module")
def url():
    svc = Service(
        VectorMemory(embedder="hashing"), agent=AgentMemory(VectorMemory(embedder="hashing"))
    )
    with running(create_app(svc, keys=KeyTable.parse(KEYS, source="t"))) as base:
        yield base


def test_streamable_http_tools_are_tenant_scoped(url):
    async def scenario():
        async with client(url, "key-acme-0123456789") as a, client(url, "key-globex-0123456") as b:
            tools = {t.name: t for t in (await a.list_tools()).tools}
            assert TOOLS <= set(tools)
            assert tools["search_knowledge"].input_schema["required"] == ["query"]
            assert "filter" in tools["search_knowledge"].input_schema["properties"]
            r = await call(
                a,
                "add_knowledge",
                texts=["Acme ships rocket skates on Fridays."],
                ids=["skates"],
                metadata={"team": "ops"},
            )
            assert not r.is_error and r.structured_content == {"ids": ["skates"]}
            r = await call(a, "search_knowledge", query="rocket skates", k=3)
            hit = r.structured_content["hits"][0]
            assert hit["document_id"] == "skates" and hit["metadata"] == {"team": "ops"}
            assert hit["scores"]["vector_rank"] == 1
            r = await call(b, "search_knowledge", query="rocket skates", k=3)
            assert r.structured_content["hits"] == []  # globex sees none of acme's
            assert (await call(b, "get_document", id="skates")).structured_content == {"chunks": []}
            w = await call(a, "remember", text="Wile prefers the desert", user_id="wile")
            mid = w.structured_content["memory_id"]
            rec = await call(a, "recall", query="where does wile like to be", user_id="wile")
            assert rec.structured_content["memories"][0]["memory_id"] == mid
            assert (await call(b, "recall", query="desert", user_id="wile")).structured_content[
                "memories"
            ] == []
            r = await call(b, "forget", memory_id=mid, user_id="wile")
            assert r.is_error and text_of(r).startswith(
                "Error executing tool forget: NotFoundError"
            )
            r = await call(
                a, "update_memory", memory_id=mid, text="Wile moved to the canyon", user_id="wile"
            )
            assert r.structured_content["version"] == 2
            assert not (await call(a, "forget", memory_id=mid, user_id="wile")).is_error
            assert (await call(a, "recall", query="canyon", user_id="wile")).structured_content[
                "memories"
            ] == []
            r = await call(a, "search_knowledge", query="   ")
            assert r.is_error and "InvalidInputError" in text_of(r)
            assert "Traceback" not in text_of(r)

    asyncio.run(scenario())


def test_streamable_http_needs_a_key_and_read_only_keys_cannot_write(url):
    r = httpx.post(url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert r.status_code == 401

    async def scenario():
        async with client(url, "key-acme-readonly-1") as ro:
            r = await call(ro, "add_knowledge", texts=["x"])
            assert r.is_error and "read-only" in text_of(r)
            r = await call(ro, "search_knowledge", query="rocket")
            assert not r.is_error

    asyncio.run(scenario())


def test_stdio_transport(tmp_path):
    VectorMemory(tmp_path / "kb", embedder="hashing").add(
        ["The lighthouse keeper logs every passing ship."], ids=["log"]
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-P", "-m", "vecmem.cli", "--store", str(tmp_path / "kb"), "mcp"],
        env=env,
    )

    async def scenario():
        async with Client(params) as c:
            assert TOOLS <= {t.name for t in (await c.list_tools()).tools}
            r = await call(c, "search_knowledge", query="lighthouse ships", k=1)
            assert r.structured_content["hits"][0]["document_id"] == "log"
            r = await call(c, "add_knowledge", texts=["Fog horns sound at night."], ids=["fog"])
            assert r.structured_content == {"ids": ["fog"]}
            w = await call(c, "remember", text="The keeper is named Ada", user_id="ada")
            assert not w.is_error
            r = await call(c, "recall", query="keeper name", user_id="ada")
            assert r.structured_content["memories"][0]["text"] == "The keeper is named Ada"

    asyncio.run(scenario())
    assert [c.text for c in VectorMemory(tmp_path / "kb").get("fog")] == [
        "Fog horns sound at night."
    ]
