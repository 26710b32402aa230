"""The session read cache (issue 19 B.6): hit rate and latency on a replay of 10,000 sessions
with Zipf access, against no cache, on SQLite and PostgreSQL.

    python -m benchmarks.bench_session_cache            # 10,000 sessions, 20,000 requests
    python -m benchmarks.bench_session_cache --quick    # 2,000 sessions, 4,000 requests

10,000 sessions of 8 messages each (500 users) are written once. The replay draws each request's
session from a Zipf distribution over the sessions (exponent 1.1, fixed seed): 95 % read the
session's last 10 messages (what an agent puts in its prompt), 5 % append one message (which
invalidates that session). Every variant replays the same requests on the same data: ``none``
(the store itself), ``lru`` (:class:`LRUCache` of 1,000 sessions, 10 % of them) and ``redis``
(:class:`RedisCache` on a local Redis). Latency percentiles are per request, reads and writes
apart; two alternating rounds, the better p50 kept. PostgreSQL and Redis are the test servers of
:mod:`vecmem.testing._infra.servers`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks import synthetic
from benchmarks.report import publish

ZIPF_S = 1.1
WRITE_SHARE = 0.05
LRU_SESSIONS = 1_000
USERS = 500


def _requests(sessions: int, n: int, seed: int = 7) -> list[tuple[int, bool]]:
    """``n`` requests: (session index drawn by Zipf rank, is it a write)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, sessions + 1) ** ZIPF_S
    order = rng.permutation(sessions)  # which session holds each popularity rank
    picks = order[rng.choice(sessions, size=n, p=weights / weights.sum())]
    writes = rng.random(n) < WRITE_SHARE
    return [(int(i), bool(w)) for i, w in zip(picks, writes, strict=True)]


def _ids(i: int) -> tuple[str, str]:
    return f"user-{i % USERS}", f"session-{i}"


def _populate(store: Any, sessions: int) -> None:
    from vecmem.conversations import Message

    for i in range(sessions):
        user, sid = _ids(i)
        store.add_messages(
            user,
            sid,
            [
                Message("user" if k % 2 == 0 else "assistant", f"turn {k} of {sid}: " + "x" * 120)
                for k in range(8)
            ],
        )


def _replay(store: Any, requests: list[tuple[int, bool]]) -> dict[str, Any]:
    from vecmem.conversations import Message

    reads: list[float] = []
    writes: list[float] = []
    for i, write in requests:
        user, sid = _ids(i)
        t0 = time.perf_counter()
        if write:
            store.add_messages(user, sid, [Message("user", "one more turn")])
            writes.append(time.perf_counter() - t0)
        else:
            store.last_messages(user, sid, 10)
            reads.append(time.perf_counter() - t0)
    out: dict[str, Any] = {
        "read": synthetic.percentiles(reads),
        "write": synthetic.percentiles(writes),
    }
    cache = getattr(store, "cache", None)
    if cache is not None:
        out["hit_rate"] = round(cache.hits / max(1, cache.hits + cache.misses), 3)
    return out


def run_backend(
    name: str, url: str, redis_url: str | None, sessions: int, n: int
) -> dict[str, Any]:
    from vecmem.conversations import CachedConversationStore, LRUCache, RedisCache
    from vecmem.conversations.sql import SQLConversationStore

    store = SQLConversationStore(url, tenant=f"bench-cache-{uuid.uuid4().hex[:6]}")
    t0 = time.perf_counter()
    _populate(store, sessions)
    populate_s = time.perf_counter() - t0
    print(f"[{name}] {sessions:,} sessions written in {populate_s:.0f} s", file=sys.stderr)
    requests = _requests(sessions, n)

    def variant(kind: str) -> Any:
        if kind == "none":
            return store
        if kind == "lru":
            return CachedConversationStore(store, cache=LRUCache(LRU_SESSIONS))
        prefix = f"bench-{uuid.uuid4().hex[:8]}"  # a cold cache each round
        return CachedConversationStore(store, cache=RedisCache(redis_url, prefix=prefix))

    kinds = ["none", "lru"] + (["redis"] if redis_url else [])
    best: dict[str, dict[str, Any]] = {}
    for r in range(2):
        for kind in kinds if r == 0 else kinds[::-1]:
            print(f"[{name}] round {r + 1}: {kind}", file=sys.stderr, flush=True)
            got = _replay(variant(kind), requests)
            if kind not in best or got["read"]["p50_ms"] < best[kind]["read"]["p50_ms"]:
                best[kind] = got
    store.close()
    base = best["none"]["read"]["p50_ms"]
    for got in best.values():
        got["read_p50_vs_none"] = round(got["read"]["p50_ms"] / base, 3)
    return {"backend": name, "populate_s": round(populate_s, 1), "variants": best}


@contextlib.contextmanager
def _servers(skip_postgres: bool) -> Iterator[tuple[str | None, str | None]]:
    from vecmem.testing._infra import servers

    with contextlib.ExitStack() as stack:
        redis_url = stack.enter_context(servers.redis())
        pg = None if skip_postgres else stack.enter_context(servers.postgres())
        yield pg, redis_url


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Python {m['python']}. "
        f"Run: `python -m benchmarks.bench_session_cache{' --quick' if r['quick'] else ''}` "
        f"({r['seconds']:.0f} s; 1-minute load average {r['load_average_before']} before, "
        f"{r['load_average_after']} after: the machine was shared). {r['sessions']:,} sessions "
        f"of 8 messages ({USERS} users), {r['requests']:,} requests with Zipf access (s = "
        f"{ZIPF_S}): {100 - WRITE_SHARE * 100:.0f} % read the last 10 messages, "
        f"{WRITE_SHARE * 100:.0f} % append one (and invalidate). LRU: {LRU_SESSIONS:,} sessions. "
        "Redis and PostgreSQL (fsync=off, synchronous_commit=off): local test servers. SQLite: "
        "a local file (WAL). Better p50 of two alternating rounds.",
        "",
        "| backend | cache | hit rate | read p50 / p99 ms | read p50 vs none | "
        "write p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for b in r["backends"]:
        for kind, v in b["variants"].items():
            lines.append(
                f"| {b['backend']} | {kind} | {v.get('hit_rate', '-')} | "
                f"{v['read']['p50_ms']} / {v['read']['p99_ms']} | {v['read_p50_vs_none']} | "
                f"{v['write']['p50_ms']} / {v['write']['p99_ms']} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_session_cache")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-postgres", action="store_true")
    args = p.parse_args(argv)
    sessions, n = (2_000, 4_000) if args.quick else (10_000, 20_000)
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "machine": synthetic.machine(),
        "quick": args.quick,
        "sessions": sessions,
        "requests": n,
        "backends": [],
        "load_average_before": round(os.getloadavg()[0], 1),
    }
    with _servers(args.skip_postgres) as (pg, redis_url):
        with tempfile.TemporaryDirectory(prefix="vecmem-bench-") as tmp:
            result["backends"].append(
                run_backend("SQLite", f"sqlite:///{tmp}/c.db", redis_url, sessions, n)
            )
        if pg is not None:
            result["backends"].append(run_backend("PostgreSQL", pg, redis_url, sessions, n))
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["load_average_after"] = round(os.getloadavg()[0], 1)
    publish(
        result,
        "session-cache-quick" if args.quick else "session-cache",
        None
        if args.quick
        else ("session-cache", "Session read cache: Zipf replay of 10,000 sessions (issue 19)"),
        markdown,
    )


if __name__ == "__main__":
    main()
