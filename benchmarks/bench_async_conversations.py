"""Async conversation stores (issue 19): throughput of 32 concurrent tasks on the native async
store against the sync store, on SQLite and PostgreSQL.

    python -m benchmarks.bench_async_conversations            # 4,000 operations per variant
    python -m benchmarks.bench_async_conversations --quick    # 800

Each of 32 workers owns a session and repeats one operation: append one message, then read
the session's last 10 messages. Variants: ``async`` = :class:`AsyncSQLConversationStore`
(aiosqlite / psycopg async) with 32 asyncio tasks; ``sync+threads`` = the sync
:class:`SQLConversationStore` with 32 threads (its natural concurrent use); ``sync+to_thread`` =
the sync store behind :class:`AsyncConversationStore` (what an asyncio program had before),
32 tasks. Ratios are against ``sync+threads``; best of three alternating rounds.
PostgreSQL is the test server of :mod:`vecmem.testing._infra.servers` unless ``--postgres-url``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks import synthetic
from benchmarks.report import publish

TASKS = 32


def _msg(i: int) -> Any:
    from vecmem.conversations import Message

    return [Message("user", f"message {i} about agent memory and sessions")]


async def _async_round(store: Any, ops: int, tag: str) -> float:
    per = ops // TASKS

    async def worker(w: int) -> None:
        for i in range(per):
            await store.add_messages("u", f"{tag}-{w}", _msg(i))
            await store.last_messages("u", f"{tag}-{w}", 10)

    t0 = time.perf_counter()
    await asyncio.gather(*[worker(w) for w in range(TASKS)])
    return per * TASKS / (time.perf_counter() - t0)


def _thread_round(store: Any, ops: int, tag: str) -> float:
    per = ops // TASKS

    def worker(w: int) -> None:
        for i in range(per):
            store.add_messages("u", f"{tag}-{w}", _msg(i))
            store.last_messages("u", f"{tag}-{w}", 10)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(TASKS) as pool:
        list(pool.map(worker, range(TASKS)))
    return per * TASKS / (time.perf_counter() - t0)


def run_backend(name: str, url: str, ops: int) -> dict[str, Any]:
    from vecmem.conversations import AsyncConversationStore, SQLConversationStore
    from vecmem.conversations.async_sql import AsyncSQLConversationStore

    sync = SQLConversationStore(url, tenant="bench-async")
    best: dict[str, float] = {"async": 0.0, "sync+threads": 0.0, "sync+to_thread": 0.0}

    async def async_rounds(r: int) -> tuple[float, float]:
        store = AsyncSQLConversationStore(url, tenant="bench-async")
        try:
            a = await _async_round(store, ops, f"a{r}")
        finally:
            await store.aclose()
        b = await _async_round(AsyncConversationStore(sync), ops, f"t{r}")
        return a, b

    for r in range(3):
        print(f"[{name}] round {r + 1}", file=sys.stderr, flush=True)
        best["sync+threads"] = max(best["sync+threads"], _thread_round(sync, ops, f"s{r}"))
        a, b = asyncio.run(async_rounds(r))
        best["async"] = max(best["async"], a)
        best["sync+to_thread"] = max(best["sync+to_thread"], b)
    sync.close()
    base = best["sync+threads"]
    return {
        "backend": name,
        "ops_per_s": {k: round(v) for k, v in best.items()},
        "vs_sync_threads": {k: round(v / base, 2) for k, v in best.items()},
    }


@contextlib.contextmanager
def _postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from vecmem.testing._infra import servers

    with servers.postgres() as started:
        yield started


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}. "
        f"Run: `python -m benchmarks.bench_async_conversations{' --quick' if r['quick'] else ''}`"
        f" ({r['seconds']:.0f} s; 1-minute load average {r['load_average_before']} before, "
        f"{r['load_average_after']} after: the machine was shared). {TASKS} concurrent workers, "
        f"{r['ops']:,} operations per variant (an operation: append one message, read the last "
        "10); best of three rounds. SQLite: a local file (WAL). PostgreSQL: "
        f"{r['postgres_note']}.",
        "",
        "| backend | async (native driver) ops/s | sync + 32 threads | sync behind "
        "AsyncConversationStore (to_thread) | async / sync+threads |",
        "|---|---|---|---|---|",
    ]
    for b in r["backends"]:
        o, v = b["ops_per_s"], b["vs_sync_threads"]
        lines.append(
            f"| {b['backend']} | {o['async']:,} | {o['sync+threads']:,} | "
            f"{o['sync+to_thread']:,} ({v['sync+to_thread']}) | {v['async']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_async_conversations")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--postgres-url")
    p.add_argument("--skip-postgres", action="store_true")
    args = p.parse_args(argv)
    ops = 800 if args.quick else 4_000
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "machine": synthetic.machine(),
        "quick": args.quick,
        "ops": ops,
        "backends": [],
        "load_average_before": round(os.getloadavg()[0], 1),
    }
    with tempfile.TemporaryDirectory(prefix="vecmem-bench-") as tmp:
        result["backends"].append(run_backend("SQLite", f"sqlite:///{tmp}/a.db", ops))
    result["postgres_note"] = "skipped"
    if not args.skip_postgres:
        with _postgres(args.postgres_url) as url:
            result["postgres_note"] = (
                "given server"
                if args.postgres_url
                else "local test server, fsync=off, synchronous_commit=off"
            )
            result["backends"].append(run_backend("PostgreSQL", url, ops))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["load_average_after"] = round(os.getloadavg()[0], 1)
    publish(
        result,
        "async-conversations-quick" if args.quick else "async-conversations",
        None
        if args.quick
        else ("async-conversations", "Async conversation stores: 32 concurrent tasks (issue 19)"),
        markdown,
    )


if __name__ == "__main__":
    main()
