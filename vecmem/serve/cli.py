"""``vecmem serve`` (HTTP API + MCP at /mcp + the page) and ``vecmem mcp`` (MCP over stdio).

vecmem --store ./kb serve --api-keys keys.txt --port 8080
vecmem --store ./kb serve --open                 # no keys: 127.0.0.1 only, whole store
vecmem --store ./kb mcp                          # for a desktop assistant (stdio)
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from vecmem.errors import ConfigurationError

LOOPBACK = ("localhost",)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def one_blas_thread() -> None:
    """Set BLAS to one thread for the whole process. A server answers many requests at once, so
    its parallelism comes from requests. A search's own scan never uses BLAS
    (:mod:`vecmem._matvec`); this keeps the rest of a request's numpy work (vector rerankers,
    agent-memory scoring) from spinning BLAS threads on cores the other requests need."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1, user_api="blas")


def build_service(args: argparse.Namespace) -> Any:
    """The :class:`~vecmem.serve.service.Service` the options describe."""
    from vecmem.agent_memory import AgentMemory
    from vecmem.memory import VectorMemory
    from vecmem.registry import CONVERSATION_STORES
    from vecmem.serve.service import Service

    memory = VectorMemory(
        args.store or os.environ.get("VECMEM_STORE") or "./kb", embedder=args.embedder
    )
    agent_vm = (
        VectorMemory(args.memory_store, embedder=memory.embedder)
        if args.memory_store
        else VectorMemory(embedder=memory.embedder)
    )
    agent = AgentMemory(agent_vm, db=args.db or "sqlite://")
    conversations = CONVERSATION_STORES.create(args.conversations or "memory://", tenant="default")
    if not (args.memory_store and args.db and args.conversations):
        print(
            "vecmem: note: agent memory and conversations without --memory-store, --db and "
            "--conversations are kept in memory and lost on exit",
            file=sys.stderr,
        )
    return Service(memory, agent=agent, conversations=conversations)


def cmd_serve(args: argparse.Namespace) -> int:
    from vecmem._deps import require

    uvicorn = require("uvicorn", "serve", "vecmem serve")
    require("fastapi", "serve", "vecmem serve")
    from vecmem.serve.app import create_app
    from vecmem.serve.auth import KeyTable

    keys = KeyTable.load(args.api_keys)
    if len(keys) and args.open:
        raise ConfigurationError("--open serves without keys; drop it or the API keys")
    if not len(keys):
        if not args.open:
            raise ConfigurationError(
                "no API keys: give --api-keys FILE (lines 'KEY TENANT [ro]') or $VECMEM_API_KEYS,"
                " or start explicitly open with --open (loopback hosts only)"
            )
        if not _is_loopback(args.host):
            raise ConfigurationError(
                f"--open serves without keys on a loopback host only, not {args.host!r}"
            )
    one_blas_thread()
    tracer = None
    if args.otel:
        from vecmem.serve.tracing import configure

        tracer = configure(args.otel)
    service = build_service(args)
    if tracer is not None:
        from vecmem.serve.tracing import instrument

        instrument(service.memory, tracer=tracer)
    app = create_app(
        service,
        keys=keys if len(keys) else None,
        open_access=args.open,
        max_body=int(args.max_body_mb * 2**20),
        mcp=not args.no_mcp,
        host=args.host,
        tracer=tracer,
        threads=args.threads,
    )
    mode = "OPEN (no keys)" if args.open else f"{len(keys)} API keys"
    print(
        f"vecmem: serving {service.memory.store.name} on http://{args.host}:{args.port}/ "
        f"({mode}); MCP at /mcp/",
        file=sys.stderr,
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=args.log_level == "debug",
        )
    finally:
        service.close()
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from vecmem._deps import require

    require("mcp", "serve", "vecmem mcp")
    from vecmem.serve.auth import OPEN
    from vecmem.serve.mcp import build_mcp

    one_blas_thread()
    service = build_service(args)
    try:
        build_mcp(service, caller=lambda ctx: OPEN).run("stdio")
    finally:
        service.close()
    return 0


def _stores(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--memory-store", help="folder or URL of the agent-memory vector store (default: in memory)"
    )
    p.add_argument(
        "--db",
        help="database URL of the agent-memory history, e.g. "
        "sqlite:///history.db (default: in memory)",
    )
    p.add_argument(
        "--conversations",
        help="conversation store URL, e.g. sqlite:///conversations.db (default: in memory)",
    )


def register(sub: Any) -> None:
    s = sub.add_parser("serve", help="HTTP API + MCP (/mcp) + web page over the store")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--api-keys", help="file of 'KEY TENANT [ro]' lines (and/or $VECMEM_API_KEYS)")
    s.add_argument(
        "--open",
        action="store_true",
        help="serve without keys, the whole store (loopback hosts only)",
    )
    s.add_argument(
        "--max-body-mb",
        type=float,
        default=10.0,
        help="larger request bodies are refused with 413 (default 10)",
    )
    s.add_argument("--no-mcp", action="store_true", help="do not mount the MCP endpoint")
    s.add_argument(
        "--threads",
        type=int,
        default=40,
        help="worker threads running the library's calls (default 40)",
    )
    s.add_argument(
        "--otel",
        choices=["console", "otlp"],
        help="OpenTelemetry spans for add/search stages (vecmem[otel])",
    )
    s.add_argument(
        "--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"]
    )
    _stores(s)
    s.set_defaults(func=cmd_serve)

    m = sub.add_parser("mcp", help="MCP server over stdio (for desktop assistants)")
    _stores(m)
    m.set_defaults(func=cmd_mcp)
