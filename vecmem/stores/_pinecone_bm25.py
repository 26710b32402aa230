"""Pinecone's keyword leg: BM25 statistics kept in the index, and exact rescoring.

Scores equal ``rank_bm25.BM25Okapi``, but ``avgdl`` and each idf change with every write while
sparse values are frozen when written. So Pinecone ranks and vecmem scores: a chunk's sparse
values are BM25's tf part at ``avgdl_w``, the average length when it was written
(:func:`._sparse.bm25_document`), the query's the current ``idf(t) x count`` (:func:`plan`), so
Pinecone's dot product is BM25 up to the drift of ``avgdl``. The candidates are rescored exactly
(:func:`rescore`); the top ``k`` is certain once the ``k``-th exact score exceeds ``rho`` times
the last candidate's Pinecone score, ``rho = max(1, avgdl / min avgdl_w)`` bounding the drift;
otherwise the window widens.

The statistics (:class:`Stats`) live in the meta namespace as delta records (``stats-...``,
zlib+base64 JSON: :func:`pack`), one per write, merged into one group when they pile up.

>>> unpack(pack({"n": 1, "l": 2.0, "a": 2.0, "df": {"x": 1}})[0])["df"]
{'x': 1}
"""

from __future__ import annotations

import base64
import heapq
import json
import math
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import numpy as np

from vecmem.bm25 import idf_reference
from vecmem.stores._json import encoder
from vecmem.stores._pinecone_layout import decode
from vecmem.stores._sparse import by_id
from vecmem.types import EmbeddingSpace, Scored

MAX_TERMS = 1000  # sparse values per vector
MAX_WINDOW = 1000  # topK with metadata
STATS_PAYLOAD = 30_000  # bytes of compressed statistics per record
PACK_RATIO = 0.8  # base64(zlib level 1(JSON)) / JSON: ~0.5-0.8 for term counts, a high guess
_dumps = encoder(compact=True, allow_nan=False)


class Stats:
    """N, total length, the smallest avgdl any document was weighted with, df per term; and the
    statistics records seen, counted and written here but not listed yet."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}  # record id -> its metadata
        self.pending: set[str] = set()  # written here, not listed yet (listing lags writes)
        self.version = 0
        self.reset()

    def reset(self) -> None:
        self.n, self.total, self.version = 0, 0.0, self.version + 1
        self.counted: frozenset[str] = frozenset()  # the records summed into this state
        self.avgdl_min: float | None = None
        self.df = Counter[str]()  # sums of deltas (exact: one may be summed early; zeros stay)
        self._mean_idf: tuple[int, float] | None = None

    def add(self, delta: dict[str, Any]) -> None:
        self.n += int(delta.get("n", 0))
        self.total += float(delta.get("l", 0.0))
        a = delta.get("a")
        if a is not None:
            self.avgdl_min = a if self.avgdl_min is None else min(self.avgdl_min, a)
        self.df.update(delta.get("df", {}))
        self.version += 1

    def idf(self, terms: Sequence[str], epsilon: float) -> dict[str, float]:
        """rank_bm25's idf of ``terms`` (negative ones floored at epsilon x the mean idf over
        the vocabulary, computed once a version)."""
        if self._mean_idf is None or self._mean_idf[0] != self.version:
            df = np.fromiter(self.df.values(), dtype=np.float64, count=len(self.df))
            df = df[df > 0]
            raw = np.log(self.n - df + 0.5) - np.log(df + 0.5)
            self._mean_idf = (self.version, float(raw.mean()) if len(raw) else 0.0)
        idf = {t: idf_reference(self.n, self.df.get(t, 0)) for t in terms}
        return {t: epsilon * self._mean_idf[1] if x < 0 else x for t, x in idf.items()}

    def counted_in(self, present: set[str]) -> frozenset[str]:
        """Which of the ``present`` records make up the statistics: deltas not merged away, and
        complete merge groups (the earliest of two overlapping merges wins)."""
        seen = {r: self.seen[r] for r in present if r in self.seen}
        groups: dict[str, list[dict[str, Any]]] = {}
        for meta in seen.values():
            groups.setdefault(meta.get("group") or "", []).append(meta)
        covered: set[str] = set()
        done = {""}  # the records of no group, and the groups that count
        for g in sorted(groups.keys() - {""}):
            head = next((m for m in groups[g] if "covers" in m), None)
            # complete (not being written, not abandoned), and covering nothing covered already
            if head and len(groups[g]) == int(head["parts"]) and not covered & set(head["covers"]):
                covered |= set(head["covers"])
                done.add(g)
        return frozenset(
            r for r, m in seen.items() if r not in covered and (m.get("group") or "") in done
        )

    def recount(self, counted: frozenset[str]) -> None:
        """Make ``counted`` the records summed here (adding new ones, or summing again when
        records were merged away)."""
        if not self.counted <= counted:
            self.reset()
        for rid in sorted(counted - self.counted):
            self.add(unpack(self.seen[rid]))
        self.counted = counted


def change(gone: Iterable[Counter[str]], new: Iterable[Counter[str]] = ()) -> dict[str, Any]:
    """The delta of the statistics when chunks with the term counts ``gone`` leave and ``new``
    come (``a``, the average length new chunks are weighted with, is the writer's to set)."""
    n, length, df = 0, 0.0, Counter[str]()
    for sign, counts in [*((-1, c) for c in gone), *((1, c) for c in new)]:
        n += sign
        length += sign * counts.total()
        (df.update if sign > 0 else df.subtract)(counts.keys())
    return {"n": n, "l": length, "a": None, "df": {t: d for t, d in df.items() if d}}


def pack(delta: dict[str, Any]) -> list[dict[str, Any]]:
    """A delta as one or more record payloads of at most STATS_PAYLOAD bytes each (additive)."""
    items = list(delta["df"].items())
    head = {k: v for k, v in delta.items() if k != "df"}
    # parts by that guess, so each is serialised and compressed once; one still too large shrinks
    size = (sum(map(len, delta["df"])) + 8 * len(items) + 100) * PACK_RATIO  # ~ compressed
    step = max(1, math.ceil(len(items) / math.ceil(size / (0.95 * STATS_PAYLOAD))))
    out, i = [], 0
    while True:
        part = {**(head if i == 0 else {}), "df": dict(items[i : i + step])}
        blob = base64.b64encode(zlib.compress(_dumps(part).encode(), 1))
        if len(blob) > STATS_PAYLOAD and step > 1:  # aim at 95% of the limit
            step = max(1, min(step - 1, int(step * 0.95 * STATS_PAYLOAD / len(blob))))
            continue
        out.append({"d": blob.decode("ascii")})
        i += step
        if i >= len(items):
            return out


def unpack(meta: dict[str, Any]) -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b64decode(meta["d"])))


class Plan(NamedTuple):
    """A keyword query planned from the statistics."""

    qw: dict[str, float]  # term -> idf x count in the query
    sparse: dict[str, list[Any]]  # the query's sparse values
    avgdl: float
    rho: float  # bound on how far a frozen document weight may lag the current one
    certain: bool  # every query weight is positive, so the bound holds
    window: int  # candidates asked for first
    k1: float
    b: float


def plan(
    st: Stats, space: EmbeddingSpace, terms: Counter[str], k: int, native: bool
) -> Plan | None:
    """The sparse query of the query's ``terms`` under the statistics ``st`` (``None``: no term
    of them is stored), with the drift bound and the first window (native mode: Pinecone's
    scores are the answer, so ``k`` when every weight is positive)."""
    wanted = {t: m for t, m in terms.items() if st.df.get(t, 0) > 0}
    if not wanted or st.n == 0:
        return None
    k1, b, eps = space.keyword_params()
    idf = st.idf(list(wanted), eps)
    qw = {t: idf[t] * m for t, m in wanted.items()}
    sparse = by_id(qw)
    avgdl = st.total / st.n
    rho = max(1.0, avgdl / st.avgdl_min) if st.avgdl_min else 1.0
    certain = all(w > 0 for w in qw.values())
    if native:
        window = k if certain else max(k, MAX_WINDOW)
    else:
        window = min(MAX_WINDOW, k + max(20, k // 4)) if certain else MAX_WINDOW
    query: dict[str, list[Any]] = {"indices": list(sparse), "values": list(sparse.values())}
    return Plan(qw, query, avgdl, rho, certain, window, k1, b)


def rescore(
    p: Plan, found: list[Any], k: int, tokenizer: Callable[[str], list[str]]
) -> tuple[list[Scored], bool]:
    """The candidates' exact BM25 scores, best first (ties by id), and whether they prove the
    top ``k``: candidates come by Pinecone's score, descending, so once the ``k``-th best exact
    score beats ``rho`` times a candidate's, nothing after it (in the window or beyond) can
    enter the top ``k``, and the rest is not decoded nor tokenized."""
    qw, k1, b, avgdl = p.qw, p.k1, p.b, p.avgdl
    scored: list[Scored] = []
    best: list[float] = []  # the k best exact scores so far (a min-heap)
    proven = False
    for m in found:
        c = decode(m.id, m.metadata)
        toks = tokenizer(c.text)
        tf = Counter(t for t in toks if t in qw)
        if tf:
            norm = k1 * (1 - b + b * len(toks) / avgdl)
            score = sum(qw[t] * (n * (k1 + 1)) / (n + norm) for t, n in tf.items())
            scored.append(Scored(c, score))
            (heapq.heappush if len(best) < k else heapq.heappushpop)(best, score)
        if p.certain and len(best) >= k and best[0] > float(m.score) * p.rho * (1 + 1e-5):
            proven = True
            break
    scored.sort(key=lambda x: (-x.score, x.chunk.id))
    return scored, proven
