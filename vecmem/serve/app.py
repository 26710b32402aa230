"""The HTTP API (FastAPI): knowledge, agent memory, conversations, health, metrics, the page
and the MCP endpoint, behind API keys. Build it with :func:`create_app`; ``vecmem serve`` runs
it with uvicorn.

>>> from vecmem.memory import VectorMemory
>>> app = create_app(Service(VectorMemory(embedder="hashing")), keys=None, open_access=True)
>>> sorted(r.path for r in app.routes if r.path.startswith("/memory/"))[:3]
['/memory/consolidate', '/memory/forget', '/memory/get']
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from vecmem.errors import InvalidInputError, VecmemError
from vecmem.serve import models as m
from vecmem.serve.auth import OPEN, Caller, KeyTable
from vecmem.serve.errors import error_body, status_of
from vecmem.serve.metrics import Metrics, span
from vecmem.serve.service import Service, TenantView

log = logging.getLogger("vecmem.serve")
STATIC = Path(__file__).parent / "static"
DEFAULT_MAX_BODY = 10 * 2**20
DEFAULT_THREADS = 40  # anyio's default
PUBLIC = frozenset(
    {"/", "/health", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/page.js", "/page.css"}
)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


class Gate:
    """Pure ASGI middleware in front of everything: body size limit, API-key authentication
    (the caller goes into ``scope["state"]["caller"]``) and per-route metrics."""

    def __init__(
        self,
        app: Any,
        *,
        keys: KeyTable | None,
        open_access: bool,
        max_body: int,
        metrics: Metrics,
        routes: Callable[[], set[str]],
    ) -> None:
        self.app = app
        self.keys = keys
        self.open_access = open_access
        self.max_body = max_body
        self.metrics = metrics
        self._routes = routes

    def _caller(self, headers: dict[bytes, bytes]) -> Caller | None:
        auth = headers.get(b"authorization", b"").decode("latin-1")
        if self.keys is not None and len(self.keys):
            return self.keys.lookup(auth)
        return OPEN if self.open_access else None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        path = scope["path"]
        if path == "/mcp":  # the MCP endpoint is mounted at /mcp/; no redirect for clients
            scope = {**scope, "path": "/mcp/", "raw_path": b"/mcp/"}
        route = (
            path if path in self._routes() else ("/mcp" if path.startswith("/mcp") else "(other)")
        )
        status = {"code": 500}
        started = {"done": False}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                started["done"] = True
            await send(message)

        async def reply(
            code: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            await _json(code, body, headers)(scope, receive, send_wrapper)

        try:
            headers = dict(scope.get("headers") or [])
            length = headers.get(b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await reply(
                    413,
                    error_body(
                        413,
                        type_="RequestTooLarge",
                        message=f"request body over {self.max_body} bytes",
                    ),
                )
                return
            if self.open_access and not (self.keys is not None and len(self.keys)):
                refusal = _browser_guard(headers)
                if refusal is not None:
                    await reply(403, error_body(403, type_="Forbidden", message=refusal))
                    return
            if path not in PUBLIC:
                caller = self._caller(headers)
                if caller is None:
                    await reply(
                        401,
                        error_body(
                            401,
                            type_="Unauthorized",
                            message=(
                                "missing or unknown API key: send 'Authorization: Bearer KEY'"
                            ),
                        ),
                        {"WWW-Authenticate": "Bearer"},
                    )
                    return
                scope.setdefault("state", {})["caller"] = caller
            if (
                length is None
                and not path.startswith("/mcp")
                and scope["method"] in ("POST", "PUT", "PATCH")
            ):
                # a chunked body: read it here, up to the limit (FastAPI would turn an error
                # raised while it reads into a 400), then hand it on
                body, more = bytearray(), True
                while more:
                    message = await receive()
                    if message["type"] != "http.request":
                        return
                    body += message.get("body", b"")
                    more = message.get("more_body", False)
                    if len(body) > self.max_body:
                        await reply(
                            413,
                            error_body(
                                413,
                                type_="RequestTooLarge",
                                message=f"request body over {self.max_body} bytes",
                            ),
                        )
                        return
                sent = {"done": False}

                async def replay() -> Any:
                    if sent["done"]:
                        return await receive()
                    sent["done"] = True
                    return {"type": "http.request", "body": bytes(body), "more_body": False}

                await self.app(scope, replay, send_wrapper)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.record(route, status["code"], time.perf_counter() - t0)


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def _host_of(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _browser_guard(headers: dict[bytes, bytes]) -> str | None:
    """Why an open (keyless) server refuses a request, or None. With no key to protect it, a
    web page elsewhere must not drive it: the Host must be a loopback name (against DNS
    rebinding) and a browser's Origin, when sent, must be this server's own."""
    host = headers.get(b"host", b"").decode("latin-1")
    if _host_of(host) not in _LOOPBACK_HOSTS:
        return f"an open server answers loopback host names only, not {host!r}"
    origin = headers.get(b"origin")
    if origin is not None:
        o = origin.decode("latin-1")
        if o.split("://", 1)[-1].lower() != host.lower():
            return f"cross-origin requests ({o}) are refused by an open server"
    return None


def create_app(
    service: Service,
    *,
    keys: KeyTable | None,
    open_access: bool = False,
    max_body: int = DEFAULT_MAX_BODY,
    mcp: bool = True,
    host: str = "127.0.0.1",
    tracer: Any = None,
    threads: int = DEFAULT_THREADS,
) -> FastAPI:
    """The ASGI app. With no keys, ``open_access=True`` serves every request unscoped (the
    command line allows it on a loopback host only); otherwise every request but the page,
    ``/health`` and the OpenAPI document needs a key. ``tracer``: an OpenTelemetry tracer for
    ``vecmem.search`` / ``vecmem.add`` spans (see :mod:`vecmem.serve.tracing` for the stages)."""
    metrics = Metrics()
    tr = tracer
    mcp_app = server = None
    if mcp:
        from vecmem.serve.mcp import build_mcp

        server = build_mcp(service, caller=lambda ctx: _mcp_caller(ctx, keys, open_access))
        mcp_app = server.streamable_http_app(
            streamable_http_path="/", host=host, stateless_http=False
        )

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        import anyio.to_thread

        # the library's calls run in worker threads; a few keep the cores busy, more only
        # contend for the GIL (see BENCHMARKS.md "serve")
        anyio.to_thread.current_default_thread_limiter().total_tokens = threads
        if server is None:
            yield
            return
        async with server.session_manager.run():
            yield

    app = FastAPI(
        title="vecmem",
        version="0.1.0",
        lifespan=lifespan,
        description=(
            "Vector memory over HTTP: the library's calls with its semantics, scoped to the API "
            'key\'s tenant. Errors are `{"error": {"status", "type", "message"}}`.'
        ),
    )
    app.state.service = service
    app.state.metrics = metrics
    paths: set[str] = set()

    # async: FastAPI would run a plain def dependency in the thread pool (one more hop)
    async def view(request: Request) -> TenantView:
        caller: Caller = request.state.caller
        return service.view(caller.tenant)

    async def writer(request: Request) -> TenantView:
        caller: Caller = request.state.caller
        if caller.read_only:
            raise _Forbidden()
        return service.view(caller.tenant)

    Read = Depends(view)
    Write = Depends(writer)

    # ------------------------------------------------------------------ errors
    @app.exception_handler(VecmemError)
    async def vecmem_error(_: Request, exc: VecmemError) -> JSONResponse:
        code = status_of(exc)
        if code >= 500:
            log.warning("%s: %s", type(exc).__name__, exc)
        return _json(code, error_body(code, exc))

    @app.exception_handler(_Forbidden)
    async def forbidden(_: Request, exc: Exception) -> JSONResponse:
        return _json(403, error_body(403, type_="Forbidden", message="this API key is read-only"))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        first = detail[0] if detail else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(x) for x in first["loc"][1:]) or "body"
        return _json(
            400,
            error_body(
                400, type_="InvalidInputError", message=f"{where}: {first['msg']}", detail=detail
            ),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _json(
            exc.status_code, error_body(exc.status_code, type_="HTTPError", message=str(exc.detail))
        )

    @app.exception_handler(Exception)
    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _json(500, error_body(500, type_="InternalError", message="internal error"))

    # ------------------------------------------------------------------ public
    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health", summary="Liveness: the store answers")
    def health() -> dict[str, Any]:
        service.view(None).count()  # touches the store: a down backend is 503
        return {"status": "ok"}

    @app.get("/metrics", summary="Request counts and latencies per route")
    def get_metrics(request: Request) -> dict[str, Any]:
        return metrics.snapshot()

    # ------------------------------------------------------------------ knowledge
    @app.post("/add", summary="VectorMemory.add: texts (+ metadata, ids) -> document ids")
    def add(body: m.AddBody, v: TenantView = Write) -> dict[str, Any]:
        with span(tr, "vecmem.add", tenant=v.tenant):
            return {"ids": v.add(body.texts, body.metadata, ids=body.ids)}

    @app.post(
        "/add_files",
        summary="VectorMemory.add_files for uploaded files (multipart: "
        "files=@report.pdf, optional metadata='{json}', force=true)",
    )
    async def add_files(request: Request, v: TenantView = Write) -> dict[str, Any]:
        import json as _json

        from starlette.concurrency import run_in_threadpool

        form = await request.form(max_files=1000, max_fields=10)
        try:
            uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            if not uploads:
                raise InvalidInputError("send the files as multipart form fields named 'files'")
            raw = form.get("metadata")
            try:
                meta = _json.loads(raw) if isinstance(raw, str) and raw.strip() else None
            except ValueError as exc:
                raise InvalidInputError(f"metadata is not JSON: {exc}") from exc
            force = str(form.get("force", "false")).lower() in ("1", "true", "yes")
            files = [(f.filename or "", await f.read()) for f in uploads]
        finally:
            await form.close()
        with span(tr, "vecmem.add_files", files=len(files), tenant=v.tenant):
            return await run_in_threadpool(v.add_files, files, metadata=meta, force=force)

    @app.post("/search", summary="VectorMemory.search: hits with per-leg scores and ranks")
    def search(body: m.SearchBody, v: TenantView = Read) -> dict[str, Any]:
        with span(tr, "vecmem.search", mode=body.mode, k=body.k, tenant=v.tenant):
            return {
                "hits": v.search(
                    body.query,
                    body.k,
                    mode=body.mode,
                    filter=body.filter,
                    candidates=body.candidates,
                    fusion=body.fusion,
                    vector=body.vector,
                )
            }

    @app.post("/get", summary="Chunks by chunk id, or every chunk of a document id")
    def get(body: m.IdsBody, v: TenantView = Read) -> dict[str, Any]:
        return {"chunks": v.get(body.ids)}

    @app.post("/documents", summary="The documents, in insertion order (stores that can list)")
    def documents(body: m.PageBody, v: TenantView = Read) -> dict[str, Any]:
        return v.documents(limit=body.limit, offset=body.offset)

    @app.post("/delete", summary="Delete chunks by chunk/document id and/or filter")
    def delete(body: m.DeleteBody, v: TenantView = Write) -> dict[str, Any]:
        return {"deleted": v.delete(body.ids, filter=body.filter)}

    @app.post("/count", summary="How many chunks (match the filter)")
    def count(body: m.CountBody, v: TenantView = Read) -> dict[str, Any]:
        return {"count": v.count(body.filter)}

    @app.get("/stats", summary="VectorMemory.stats (chunks counted within the tenant)")
    def stats(v: TenantView = Read) -> dict[str, Any]:
        return v.stats()

    # ------------------------------------------------------------------ agent memory
    def scope(b: m.Scope) -> dict[str, Any]:
        return {"user_id": b.user_id, "agent_id": b.agent_id, "run_id": b.run_id}

    @app.post("/memory/remember", summary="AgentMemory.remember")
    def remember(b: m.RememberBody, v: TenantView = Write) -> dict[str, Any]:
        return v.remember(
            b.text,
            **scope(b),
            session_id=b.session_id,
            importance=b.importance,
            metadata=b.metadata,
        )

    @app.post("/memory/recall", summary="AgentMemory.recall")
    def recall(b: m.RecallBody, v: TenantView = Read) -> dict[str, Any]:
        return {
            "hits": v.recall(
                b.query,
                **scope(b),
                k=b.k,
                filter=b.filter,
                as_of=b.as_of,
                recency_weight=b.recency_weight,
                importance_weight=b.importance_weight,
                half_life_days=b.half_life_days,
                mode=b.mode,
            )
        }

    @app.post("/memory/update", summary="AgentMemory.update (supersedes; history kept)")
    def update(b: m.UpdateBody, v: TenantView = Write) -> dict[str, Any]:
        return v.update(b.memory_id, b.text, **scope(b), reason=b.reason, metadata=b.metadata)

    @app.post("/memory/forget", summary="AgentMemory.forget (closes the current version)")
    def forget(b: m.ForgetBody, v: TenantView = Write) -> dict[str, Any]:
        return v.forget(b.memory_id, **scope(b), reason=b.reason)

    @app.post("/memory/get", summary="AgentMemory.get: the current version")
    def memory_get(b: m.MemoryIdBody, v: TenantView = Read) -> dict[str, Any]:
        return v.memory(b.memory_id, **scope(b))

    @app.post("/memory/history", summary="AgentMemory.history and versions")
    def history(b: m.MemoryIdBody, v: TenantView = Read) -> dict[str, Any]:
        return v.history(b.memory_id, **scope(b))

    @app.post("/memory/undo", summary="AgentMemory.undo")
    def undo(b: m.UndoBody, v: TenantView = Write) -> dict[str, Any]:
        return v.undo(b.change_id, **scope(b), reason=b.reason)

    @app.post("/memory/consolidate", summary="AgentMemory.consolidate (extractive summaries)")
    def consolidate(b: m.ConsolidateBody, v: TenantView = Write) -> dict[str, Any]:
        return v.consolidate(
            **scope(b),
            window=b.window,
            similarity=b.similarity,
            min_group=b.min_group,
            source_weight=b.source_weight,
            max_sentences=b.max_sentences,
        )

    @app.post("/memory/list", summary="A scope's memories, newest first")
    def memory_list(b: m.ListMemoriesBody, v: TenantView = Read) -> dict[str, Any]:
        return {
            "memories": v.memories(
                **scope(b), limit=b.limit, offset=b.offset, current_only=b.current_only
            )
        }

    # ------------------------------------------------------------------ conversations
    @app.post("/conversations/sessions/save", summary="ConversationStore.save_session")
    def save_session(b: m.SaveSessionBody, v: TenantView = Write) -> dict[str, Any]:
        return v.save_session(
            b.user_id,
            b.session_id,
            agent_id=b.agent_id,
            title=b.title,
            tags=b.tags,
            metadata=b.metadata,
        )

    @app.post("/conversations/sessions/get", summary="ConversationStore.get_session")
    def get_session(b: m.SessionKey, v: TenantView = Read) -> dict[str, Any]:
        return v.get_session(b.user_id, b.session_id)

    @app.post("/conversations/sessions/query", summary="ConversationStore.query_sessions")
    def query_sessions(b: m.QuerySessionsBody, v: TenantView = Read) -> dict[str, Any]:
        return {"sessions": v.query_sessions(**b.model_dump())}

    @app.post("/conversations/sessions/delete", summary="ConversationStore.delete_session")
    def delete_session(b: m.SessionKey, v: TenantView = Write) -> dict[str, Any]:
        return {"deleted": v.delete_session(b.user_id, b.session_id)}

    @app.post("/conversations/messages/add", summary="ConversationStore.add_messages")
    def add_messages(b: m.AddMessagesBody, v: TenantView = Write) -> dict[str, Any]:
        msgs = [x.model_dump() for x in b.messages]
        return {"messages": v.add_messages(b.user_id, b.session_id, msgs, agent_id=b.agent_id)}

    @app.post("/conversations/messages/get", summary="ConversationStore.get_messages")
    def get_messages(b: m.GetMessagesBody, v: TenantView = Read) -> dict[str, Any]:
        return {
            "messages": v.get_messages(
                b.user_id, b.session_id, limit=b.limit, offset=b.offset, newest_first=b.newest_first
            )
        }

    @app.post("/conversations/export", summary="ConversationStore.export")
    def export(b: m.ExportBody, v: TenantView = Read) -> dict[str, Any]:
        return v.export(b.user_id, b.session_id)

    if mcp_app is not None:
        app.mount("/mcp", mcp_app)
    paths.update(getattr(r, "path", "") for r in app.routes if hasattr(r, "methods"))
    app.add_middleware(
        Gate,
        keys=keys,
        open_access=open_access,
        max_body=max_body,
        metrics=metrics,
        routes=lambda: paths,
    )
    return app


class _Forbidden(Exception):
    pass


def _mcp_caller(ctx: Any, keys: KeyTable | None, open_access: bool) -> Caller:
    """The caller of an MCP tool call over HTTP (the Gate already refused unknown keys)."""
    headers = ctx.headers or {}
    if keys is not None and len(keys):
        caller = keys.lookup(headers.get("authorization"))
        if caller is None:
            raise PermissionError("missing or unknown API key")
        return caller
    if open_access:
        return OPEN
    raise PermissionError("missing or unknown API key")
