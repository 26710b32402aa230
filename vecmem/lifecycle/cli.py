"""``vecmem export``, ``import``, ``verify-archive``, ``migrate``, ``backup``, ``reembed``.

    vecmem export ./kb kb.vmar --filter '{"source": "a.md"}' --key-file kb.key
    vecmem import kb.vmar postgresql://localhost/db?collection=kb --key-file kb.key
    vecmem migrate ./kb lancedb:///data/lance
    vecmem backup postgresql://localhost/app sqlite:////backups/app.db --tenant acme

A store is a folder (the embedded default) or a name or URL of
:data:`vecmem.registry.KNOWLEDGE_STORES`. A key file holds the key as written by
:func:`vecmem.checkpoints.codec.generate_key` (32 raw bytes for AES-GCM, the base64 text for
Fernet).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vecmem.errors import ConfigurationError


def _key(args: argparse.Namespace) -> bytes | None:
    if not args.key_file:
        return None
    try:
        raw = Path(args.key_file).read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key file {args.key_file}: {exc}") from exc
    return raw.strip() if args.cipher == "fernet" else raw


def _show(report: Any, as_json: bool) -> None:
    data = asdict(report)
    print(json.dumps(data) if as_json else "  ".join(f"{k}={v}" for k, v in data.items()))


def cmd_export(args: argparse.Namespace) -> int:
    from vecmem.lifecycle.archive import export_store

    flt = json.loads(args.filter) if args.filter else None
    _show(
        export_store(
            args.store,
            args.file,
            filter=flt,
            key=_key(args),
            cipher=args.cipher,
            progress=not args.json,
        ),
        args.json,
    )
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from vecmem.lifecycle.archive import import_store

    _show(import_store(args.file, args.store, key=_key(args), progress=not args.json), args.json)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from vecmem.lifecycle.archive import verify_archive

    m = verify_archive(args.file, key=_key(args))
    print(json.dumps({"chunks": m["chunks"], "dim": m["dim"], "ok": True}))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from vecmem.lifecycle.migration import migrate

    flt = json.loads(args.filter) if args.filter else None
    _show(
        migrate(
            args.src,
            args.dst,
            filter=flt,
            page=args.page,
            verify=not args.no_verify,
            progress=not args.json,
        ),
        args.json,
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from vecmem.lifecycle.relational import copy_relational

    parts = args.parts.split(",") if args.parts else None
    report = copy_relational(args.src, args.dst, parts=parts, tenants=args.tenant or None)
    _show(report, args.json)
    return 0


def cmd_reembed(args: argparse.Namespace) -> int:
    from vecmem.lifecycle.reembed import reembed

    _show(
        reembed(
            args.store,
            args.embedder,
            cache=args.cache,
            switch=not args.no_switch,
            drop_old=args.drop_old,
            progress=not args.json,
        ),
        args.json,
    )
    return 0


def _keyed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key-file", help="encrypt / decrypt with the key in this file")
    p.add_argument("--cipher", choices=["aes-gcm", "fernet"], default="aes-gcm")


def register(sub: Any) -> None:
    e = sub.add_parser("export", help="write a store to a portable archive")
    e.add_argument("store")
    e.add_argument("file")
    e.add_argument("--filter", help="JSON filter: export only the matching chunks")
    _keyed(e)
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("import", help="load an archive into a store (checked first)")
    i.add_argument("file")
    i.add_argument("store")
    _keyed(i)
    i.set_defaults(func=cmd_import)

    v = sub.add_parser("verify-archive", help="check an archive's checksums and counts")
    v.add_argument("file")
    _keyed(v)
    v.set_defaults(func=cmd_verify)

    m = sub.add_parser("migrate", help="copy a store into another without re-embedding")
    m.add_argument("src")
    m.add_argument("dst")
    m.add_argument("--filter", help="JSON filter: migrate only the matching chunks")
    m.add_argument("--page", type=int, default=1024)
    m.add_argument("--no-verify", action="store_true", help="skip the count and top-10 check")
    m.set_defaults(func=cmd_migrate)

    b = sub.add_parser(
        "backup",
        help="copy conversations, state, checkpoints and agent-memory "
        "history between databases (SQLite, PostgreSQL, MySQL)",
    )
    b.add_argument("src", help="database URL to copy from")
    b.add_argument("dst", help="database URL to copy into (sqlite:////path.db for a file)")
    b.add_argument(
        "--parts",
        help="comma-separated: conversations,state,checkpoints,agent_memory (default: all)",
    )
    b.add_argument("--tenant", action="append", help="only this tenant (repeatable)")
    b.set_defaults(func=cmd_backup)

    r = sub.add_parser(
        "reembed",
        help="embed a store again with another embedder, beside it, then switch atomically",
    )
    r.add_argument(
        "store",
        help="the embedded store's folder, or a pgvector / LanceDB / DuckDB / Chroma / Milvus URL",
    )
    r.add_argument("--embedder", required=True, help="the new embedder (name or kind:model)")
    r.add_argument("--cache", help="embedding cache file (texts embedded before are reused)")
    r.add_argument("--no-switch", action="store_true", help="build the new space, do not switch")
    r.add_argument("--drop-old", action="store_true", help="delete the old space after the switch")
    r.set_defaults(func=cmd_reembed)
