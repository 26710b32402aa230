"""The MCP server (official ``mcp`` SDK, ``MCPServer``): tools to search and add knowledge and
to remember, recall, update and forget memories, over stdio (``vecmem mcp``) and streamable HTTP
(mounted at ``/mcp`` by ``vecmem serve``).

Over HTTP a tool call belongs to the API key of its request (the same tenants as the HTTP API);
over stdio to the caller given when the server is built (the local user: the whole store).
A vecmem error comes back as a tool error whose text starts with its type
(``"NotFoundError: no memory 'x'"``), never a stack trace.

>>> from vecmem.memory import VectorMemory
>>> from vecmem.serve.auth import OPEN
>>> server = build_mcp(Service(VectorMemory(embedder="hashing")), caller=lambda ctx: OPEN)
>>> sorted(t.name for t in server._tool_manager.list_tools())[:3]
['add_knowledge', 'forget', 'get_document']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from vecmem.errors import VecmemError
from vecmem.serve.auth import Caller
from vecmem.serve.service import Service, TenantView

INSTRUCTIONS = (
    "vecmem: a searchable knowledge base and a long-term memory. Use search_knowledge to find "
    "passages (hybrid keyword + vector search), add_knowledge to store texts, remember / "
    "recall / update_memory / forget for facts about a user (give user_id)."
)


def build_mcp(service: Service, *, caller: Callable[[Any], Caller]) -> MCPServer:
    """An MCP server over ``service``; ``caller(ctx)`` says whose call a tool call is."""
    server = MCPServer("vecmem", instructions=INSTRUCTIONS, version="0.1.0", log_level="WARNING")

    def view(ctx: Context, *, write: bool = False) -> TenantView:
        try:
            who = caller(ctx)
        except PermissionError as exc:
            raise ToolError(f"Unauthorized: {exc}") from exc
        if write and who.read_only:
            raise ToolError("Forbidden: this API key is read-only")
        return service.view(who.tenant)

    def run(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except VecmemError as exc:
            raise ToolError(f"{type(exc).__name__}: {exc}") from exc

    @server.tool()
    def search_knowledge(
        query: str,
        ctx: Context,
        k: int = 5,
        mode: Literal["hybrid", "vector", "keyword"] = "hybrid",
        filter: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Search the knowledge base. Returns hits (best first) with text, document_id,
        metadata, score and per-leg scores/ranks. ``filter`` is vecmem's metadata filter, e.g.
        {"source": "a.md"} or {"year": {"$gte": 2020}}."""
        v = view(ctx)
        hits = run(lambda: v.search(query, k, mode=mode, filter=filter))
        return {
            "hits": [
                {
                    key: h[key]
                    for key in (
                        "rank",
                        "id",
                        "document_id",
                        "text",
                        "metadata",
                        "score",
                        "scores",
                        "location",
                    )
                }
                for h in hits
            ]
        }

    @server.tool()
    def add_knowledge(
        texts: list[str],
        ctx: Context,
        metadata: dict[str, Any] | None = None,
        ids: list[str] | None = None,
    ) -> dict[str, Any]:
        """Add texts to the knowledge base (chunked and embedded); ``metadata`` applies to
        every text. Returns the document ids (re-adding the same id replaces its text)."""
        v = view(ctx, write=True)
        return {"ids": run(lambda: v.add(texts, metadata, ids=ids))}

    @server.tool()
    def get_document(id: str, ctx: Context) -> dict[str, Any]:
        """Every chunk of a document id (or one chunk by chunk id)."""
        v = view(ctx)
        return {"chunks": run(lambda: v.get([id]))}

    @server.tool()
    def remember(
        text: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        importance: float | None = None,
    ) -> dict[str, Any]:
        """Store a fact in long-term memory for a scope (user_id, agent_id and/or run_id: at
        least one). A repeat or near-repeat merges into the existing memory."""
        v = view(ctx, write=True)
        return run(
            lambda: v.remember(
                text, user_id=user_id, agent_id=agent_id, run_id=run_id, importance=importance
            )
        )

    @server.tool()
    def recall(
        query: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        k: int = 5,
    ) -> dict[str, Any]:
        """Memories of a scope most relevant to ``query``: id, text, score."""
        v = view(ctx)
        hits = run(lambda: v.recall(query, user_id=user_id, agent_id=agent_id, run_id=run_id, k=k))
        return {
            "memories": [
                {"memory_id": h["memory"]["id"], "text": h["memory"]["text"], "score": h["score"]}
                for h in hits
            ]
        }

    @server.tool()
    def update_memory(
        memory_id: str,
        text: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Replace a memory's text (the old version stays in its history)."""
        v = view(ctx, write=True)
        return run(
            lambda: v.update(
                memory_id, text, user_id=user_id, agent_id=agent_id, run_id=run_id, reason=reason
            )
        )

    @server.tool()
    def forget(
        memory_id: str,
        ctx: Context,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        reason: str | None = None,
    ) -> dict[str, Any]:
        """Forget a memory (it stays in history and can be restored with undo over HTTP)."""
        v = view(ctx, write=True)
        return run(
            lambda: v.forget(
                memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, reason=reason
            )
        )

    return server
