"""The ``vecmem`` command line: add, search, stats, delete, repair, compact, demo (and eval/tune, see
:mod:`vecmem.evaluation.cli`; serve/mcp, see :mod:`vecmem.serve.cli`).

    vecmem add docs/ notes.md
    vecmem search "how do vaccines work" --k 5 --mode hybrid --json
    vecmem stats

The store is ``--store`` (a folder or URL), else ``$VECMEM_STORE``, else ``./kb``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vecmem.errors import ConfigurationError, VecmemError

SAMPLE = Path(__file__).parent / "data" / "sample"

# modules that add sub-commands: each has register(subparsers) setting func on its parsers
EXTENSIONS = ("vecmem.evaluation.cli", "vecmem.serve.cli", "vecmem.lifecycle.cli")


def _memory(args: argparse.Namespace) -> Any:
    from vecmem.memory import VectorMemory

    return VectorMemory(
        args.store or os.environ.get("VECMEM_STORE") or "./kb",
        embedder=args.embedder,
        progress=not args.json,
    )


def _print_hits(hits: Sequence[Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False))
        return
    if not hits:
        print("no results")
    for rank, h in enumerate(hits, 1):
        text = " ".join(h.text.split())
        print(f"{rank:>2}. {h.score:.4f}  {h.id}  {h.location}")
        print(f"    {text[:160]}{'…' if len(text) > 160 else ''}")


def _files(n: int) -> str:
    return f"{n} file{'' if n == 1 else 's'}"


def _summary(result: Any, seconds: float, total: int) -> str:
    lines = [
        f"read {_files(result.files)} ({result.pages} pages/slides/sheets): added "
        f"{result.added} documents ({result.chunks_written} chunks, {result.embedded} "
        f"embedded), skipped {result.skipped} unchanged, removed {result.chunks_deleted} "
        f"old chunks in {seconds}s; store has {total} chunks"
    ]
    if result.unsupported:
        shown = ", ".join(result.unsupported[:10])
        more = f" and {len(result.unsupported) - 10} more" if len(result.unsupported) > 10 else ""
        lines.append(f"skipped {_files(len(result.unsupported))} no loader reads: {shown}{more}")
    if result.hidden:
        lines.append(f"did not enter {result.hidden} hidden files/folders")
    lines += [f"warning: {w}" for w in result.warnings]
    if result.failed:
        lines.append(f"failed {_files(len(result.failed))} (not added):")
        lines += [f"  {f}" for f in result.failed]
    return "\n".join(lines)


def cmd_add(args: argparse.Namespace) -> int:
    """Exit status 0, or 1 when some files failed (the others are added)."""
    mem = _memory(args)
    meta = json.loads(args.metadata) if args.metadata else None
    t0 = time.perf_counter()
    with mem:
        result = mem.add_files(
            args.paths, metadata=meta, force=args.force, max_bytes=int(args.max_mb * 2**20)
        )
        total = len(mem)
    seconds = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps({**result.to_dict(), "seconds": seconds, "total_chunks": total}))
    else:
        print(_summary(result, seconds, total))
    return 1 if result.failed else 0


def cmd_search(args: argparse.Namespace) -> int:
    with _memory(args) as mem:
        hits = mem.search(
            args.query,
            k=args.k,
            mode=args.mode,
            filter=json.loads(args.filter) if args.filter else None,
        )
    _print_hits(hits, args.json)
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _memory(args) as mem:
        stats = mem.stats()
    if args.json:
        print(json.dumps(stats))
    else:
        for key, value in stats.items():
            print(f"{key:>10}: {value}")
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    """Check the store's vector checksums and embed damaged chunks again."""
    if args.path:
        args.store = args.path
    with _memory(args) as mem:
        report = mem.repair()
    if args.json:
        print(json.dumps(report.__dict__))
    else:
        print(
            f"checked {report.rows} vector rows: {report.damaged_ranges} damaged ranges, "
            f"{report.reembedded} chunks embedded again ({report.changed} had a wrong "
            f"vector); the store is sound"
        )
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    """Reclaim the dead vector rows of an embedded store and empty its change log."""
    from vecmem.stores.embedded import EmbeddedStore

    path = Path(args.path or args.store or os.environ.get("VECMEM_STORE") or "./kb")
    if not (path / "store.sqlite").is_file():
        raise ConfigurationError(
            f"{path} is not an embedded vecmem store (no store.sqlite); other stores compact "
            "through their database"
        )
    store = EmbeddedStore(path)
    try:
        report = store.compact(vacuum=not args.no_vacuum)
    finally:
        store.close()
    if args.json:
        print(json.dumps(report.__dict__))
    else:
        mib = 2**20
        print(
            f"compacted {path} in {report.seconds:.1f}s: {report.live} live chunks, vector rows "
            f"{report.rows_before} -> {report.rows_after}, {report.log_before} log entries "
            f"dropped, {report.bytes_before / mib:.1f} -> {report.bytes_after / mib:.1f} MiB "
            "(the HNSW graph, if any, is rebuilt on the next use)"
        )
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _memory(args) as mem:
        n = mem.delete(args.ids or None, filter=json.loads(args.filter) if args.filter else None)
    print(json.dumps({"deleted": n}) if args.json else f"deleted {n} chunks")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Index the bundled sample into a folder and run a few searches on it."""
    args.store = args.store or "./kb-demo"
    corpus = SAMPLE / "corpus.jsonl"
    queries = [json.loads(line)["text"] for line in (SAMPLE / "queries.jsonl").open()][:3]
    with _memory(args) as mem:
        t0 = time.perf_counter()
        result = mem.add_files([corpus])
        print(
            f"indexed {result.added} new documents ({result.skipped} unchanged) into "
            f"{args.store} in {time.perf_counter() - t0:.1f}s with {mem.embedder.name}"
        )
        for q in queries:
            print(f"\nsearch (hybrid): {q}")
            _print_hits(mem.search(q, k=3), args.json)
    print(f'\nnext: vecmem --store {args.store} search "your question" --mode keyword')
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vecmem", description="Vector memory: add, search, evaluate.")
    p.add_argument("--store", help="folder or URL of the store (default $VECMEM_STORE or ./kb)")
    p.add_argument(
        "--embedder",
        help="model name, a registered kind (onnx, hashing, ...) or "
        "kind:model (default: recorded or MiniLM)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )
    common.add_argument("--store", default=argparse.SUPPRESS, help="folder or URL of the store")
    _add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        return _add(name, parents=[common], **kw)

    sub.add_parser = add_parser  # type: ignore[method-assign]

    a = sub.add_parser(
        "add",
        help="add files, folders or URLs (PDF, DOCX, PPTX, XLSX, CSV, "
        "HTML, EPUB, Markdown, text, JSON lines, code)",
    )
    a.add_argument("paths", nargs="+", help="files, folders or http(s):// URLs")
    a.add_argument("--metadata", help="JSON object added to every document")
    a.add_argument("--force", action="store_true", help="rewrite unchanged files too")
    a.add_argument(
        "--max-mb",
        type=float,
        default=100.0,
        help="files or downloads larger than this many MiB fail (default 100)",
    )
    a.set_defaults(func=cmd_add)

    s = sub.add_parser("search", help="search the store")
    s.add_argument("query")
    s.add_argument("--k", type=int, default=10)
    s.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    s.add_argument("--filter", help='JSON filter, e.g. \'{"source": "a.md"}\'')
    s.set_defaults(func=cmd_search)

    st = sub.add_parser("stats", help="what the store holds and how it was built")
    st.set_defaults(func=cmd_stats)

    d = sub.add_parser("delete", help="delete chunks or documents by id, or by filter")
    d.add_argument("ids", nargs="*")
    d.add_argument("--filter")
    d.set_defaults(func=cmd_delete)

    r = sub.add_parser("repair", help="check the stored vectors; embed damaged chunks again")
    r.add_argument("path", nargs="?", help="the store's folder (default: --store)")
    r.set_defaults(func=cmd_repair)

    c = sub.add_parser(
        "compact", help="reclaim dead vector rows and empty the change log (embedded store)"
    )
    c.add_argument("path", nargs="?", help="the store's folder (default: --store)")
    c.add_argument("--no-vacuum", action="store_true", help="leave SQLite's free pages in place")
    c.set_defaults(func=cmd_compact)

    demo = sub.add_parser("demo", help="index the bundled sample and search it")
    demo.set_defaults(func=cmd_demo)

    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VecmemError as exc:
        print(f"vecmem: error: {exc}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"vecmem: error: invalid JSON argument: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
