"""Saving a benchmark's results and writing its section of BENCHMARKS.md between its markers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def write_section(name: str, title: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace the text between ``<!-- BEGIN name -->`` and ``<!-- END name -->`` (appending the
    section if it is not there yet); other sections are left as they are."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n## {title}\n\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


RESULTS = Path(__file__).resolve().parent / "results"


def publish(
    result: dict[str, Any],
    name: str,
    section: tuple[str, str] | None = None,
    markdown: Callable[[dict[str, Any]], str] | None = None,
) -> Path:
    """Save ``result`` as ``benchmarks/results/<name>.json`` and print it; with ``section``
    (its marker name and title) and ``markdown``, also write that section of BENCHMARKS.md."""
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    out.write_text(text)
    print(text, end="")
    if section is not None and markdown is not None:
        write_section(section[0], section[1], markdown(result))
    return out


def latency_row(label: str, x: dict[str, Any], *, p99_ratio: bool = True) -> str:
    """A table row for one paired latency result (``synthetic.paired`` percentiles of both
    sides and their ratios): ``| label (N runs) | p50 / p99 | raw p50 / p99 | ratio(s) |``."""
    ratio = f"{x['p50_ratio']}, {x['p99_ratio']}" if p99_ratio else f"{x['p50_ratio']}"
    return (
        f"| {label} ({x['runs']} runs) | {x['vecmem']['p50_ms']} / {x['vecmem']['p99_ms']} | "
        f"{x['raw']['p50_ms']} / {x['raw']['p99_ms']} | {ratio} |"
    )
