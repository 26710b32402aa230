"""Run every benchmark in one command and update BENCHMARKS.md.

    python -m benchmarks                # all of them, full sizes (long: see each module)
    python -m benchmarks --quick        # small sizes, minutes
    python -m benchmarks core pgvector  # some of them

Each ``benchmarks/bench_<name>.py`` runs in its own process (clean peak memory, no shared
caches) and writes ``benchmarks/results/<name>.json`` and its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(p.stem[len("bench_") :] for p in HERE.glob("bench_*.py"))


def main() -> int:
    names = available()
    p = argparse.ArgumentParser(prog="python -m benchmarks")
    p.add_argument("names", nargs="*", help=f"some of: {', '.join(names)}")
    p.add_argument("--quick", action="store_true", help="small sizes")
    args = p.parse_args()
    unknown = set(args.names) - set(names)
    if unknown:
        p.error(f"unknown benchmarks {sorted(unknown)}; available: {names}")
    failed = []
    for name in args.names or names:
        cmd = [sys.executable, "-m", f"benchmarks.bench_{name}"] + (
            ["--quick"] if args.quick else []
        )
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd, cwd=HERE.parent)
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f}s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
