"""Copy a store into another without re-embedding, resumably, and prove the copy.

Pages of the source (ascending ids, :class:`~vecmem.lifecycle.pages.Pages`) are compared with
what the target already holds under the same ids: a chunk whose id and content hash are there
already is skipped, any other is upserted with its stored vector. So a migration killed at any
point and started again ends with exactly one copy of everything (and copies only what is
missing). The target must be new or hold the same embedding space
(:class:`~vecmem.errors.EmbeddingSpaceMismatchError`, before anything is written).

The proof at the end: equal counts (of the filtered part) and, for a sample of the source's
chunks, the same top-10 in the vector leg (the chunk's own vector as the query) and the keyword
leg (its first words) from both stores; an overlap below ``min_overlap`` (default 0.9: an ANN
index such as HNSW may miss a neighbour, documented by pgvector and hnswlib alike) raises
:class:`~vecmem.errors.IntegrityError`.

>>> migrate("./kb", "postgresql://localhost/db?collection=kb", progress=True)  # doctest: +SKIP
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from vecmem.errors import IntegrityError
from vecmem.filters import FilterLike, parse_filter
from vecmem.lifecycle.pages import Pages, loading, opened, progress_bar
from vecmem.stores.base import VectorStore
from vecmem.types import Scored

TOP = 10


@dataclass(frozen=True)
class MigrateReport:
    """What :func:`migrate` did and what its check found."""

    copied: int
    skipped: int
    source_count: int
    target_count: int
    overlap: dict[str, float] = field(default_factory=dict)
    """Mean top-10 overlap per mode ("vector", "keyword") over the sampled queries."""
    seconds: float = 0.0


def _fault(point: str) -> None:
    """Fault-injection hook, a no-op: the fault tests replace it in a child process to kill it
    at ``point`` ("migrate-page": a page written)."""


def migrate(
    src: Any,
    dst: Any,
    *,
    filter: FilterLike = None,
    page: int = 1024,
    verify: bool = True,
    sample: int = 20,
    min_overlap: float = 0.9,
    progress: bool = False,
) -> MigrateReport:
    """Copy ``src`` into ``dst`` (store objects, or folders / names / URLs that
    :func:`vecmem.stores.open_store` takes); see the module text."""
    t0 = time.perf_counter()
    f = parse_filter(filter)
    copied = skipped = 0
    picks: list[str] = []
    with opened(src) as (s, space), opened(dst, space=space) as (d, _):
        pages = Pages(s, filter=f, page=page)
        total = pages.total()
        every = max(1, (total or 0) // max(1, sample))
        seen = 0
        with loading(d, total), progress_bar(total, "migrate", progress) as bar:
            for chunks, vectors in pages:
                have = {c.id: c.content_hash for c in d.get([c.id for c in chunks])}
                todo = [i for i, c in enumerate(chunks) if have.get(c.id) != c.content_hash]
                if todo:
                    d.upsert([chunks[i] for i in todo], vectors[todo])
                copied += len(todo)
                skipped += len(chunks) - len(todo)
                for c in chunks:
                    if seen % every == 0 and len(picks) < sample:
                        picks.append(c.id)
                    seen += 1
                bar.update(len(chunks))
                _fault("migrate-page")
        n_src, n_dst = s.count(f), d.count(f)
        overlap = _compare(s, d, picks, f) if verify else {}
    if verify and n_src != n_dst:
        raise IntegrityError(
            f"migration check failed: the source holds {n_src} chunks, the target {n_dst}"
        )
    low = {m: v for m, v in overlap.items() if v < min_overlap}
    if low:
        raise IntegrityError(
            f"migration check failed: top-{TOP} overlap {low} is below {min_overlap}"
        )
    return MigrateReport(copied, skipped, n_src, n_dst, overlap, round(time.perf_counter() - t0, 3))


def _compare(s: VectorStore, d: VectorStore, ids: list[str], f: Any) -> dict[str, float]:
    """Mean overlap of the two stores' top-10 per mode for queries made from ``ids``."""
    if not ids:
        return {}
    chunks = s.get(ids)
    vectors = s.get_vectors([c.id for c in chunks])
    scores: dict[str, list[float]] = {"vector": [], "keyword": []}
    for c, v in zip(chunks, vectors):
        scores["vector"].append(_overlap(s.query(v, k=TOP, filter=f), d.query(v, k=TOP, filter=f)))
        text = " ".join(c.text.split()[:8])
        if text:
            scores["keyword"].append(
                _overlap(s.keyword(text, k=TOP, filter=f), d.keyword(text, k=TOP, filter=f))
            )
    return {m: round(sum(x) / len(x), 4) for m, x in scores.items() if x}


def _overlap(a: list[Scored], b: list[Scored], tol: float = 1e-4) -> float:
    """Share of ``b``'s hits that are ``a``'s, counting as the same a hit that ties with
    ``a``'s last score: stores order equal scores differently (by insertion, by id), so a tie
    at the cut may bring in another chunk of the same score."""
    if not a or not b:
        return 1.0 if len(a) == len(b) else 0.0
    ids = {h.chunk.id for h in a}
    cut = a[-1].score - tol * max(1.0, abs(a[-1].score))
    same = sum(1 for h in b if h.chunk.id in ids or h.score >= cut)
    return min(same, len(a)) / max(len(a), len(b))
