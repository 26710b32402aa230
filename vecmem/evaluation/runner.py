"""Running a retrieval evaluation: index a BEIR dataset into a :class:`~vecmem.VectorMemory`, run
every judged query in each mode, score the runs with trec_eval semantics and time each search.

How documents are indexed: BEIR judges whole documents, so by default each document is one chunk
(:class:`WholeDocument`); an embedder with a length limit (all-MiniLM-L6-v2: 256 word pieces)
embeds the beginning of a long document, while BM25 sees all of it. With ``chunk_size`` documents
are split (``RecursiveSplitter``, characters) and a document scores as its best chunk (MaxP): the
first time a document appears in the ranked chunks fixes its rank.

How a run is built: each query is searched once for ``depth`` results (``depth * 4`` chunks when
chunking), as a user would call ``search(query, k=depth, mode=...)``; a hybrid search fuses
``max(depth, candidates)`` candidates of each leg. As in BEIR, a hit whose document id equals the
query id is dropped. The run keeps vecmem's order (scores are derived from ranks), so the metrics
measure exactly the ranking the user gets.

How latency is measured: the queries are embedded (through the embedding cache) before the timed
searches, so a search's latency is retrieval only -- store, BM25, fusion, reranking -- and is the
same on a first and a second run. The embedder's own cost per query is measured apart, on up to
20 queries one at a time without the cache (``query_embedding_p50_ms``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vecmem.chunking import RecursiveSplitter
from vecmem.datasets import BeirDataset
from vecmem.embedders import EmbeddingCache, default_cache_dir
from vecmem.errors import ConfigurationError
from vecmem.evaluation.metrics import Evaluation, evaluate
from vecmem.fusion import Fusion
from vecmem.memory import DEFAULT_BM25, DEFAULT_CANDIDATES, DEFAULT_FUSION, VectorMemory
from vecmem.rerank import Reranker, VectorReranker
from vecmem.stores.base import VectorStore
from vecmem.stores.memory import MemoryStore
from vecmem.tokenize import Tokenizer

MODES = ("keyword", "vector", "hybrid")
CHUNK_FANOUT = 4  # chunks fetched per wanted document when documents are chunked


class WholeDocument:
    """A chunker that keeps each document whole: one chunk per document, as BEIR evaluates.

    >>> WholeDocument().split("  a whole abstract.  ")
    ['a whole abstract.']
    """

    spec = "whole"

    def split(self, text: str) -> list[str]:
        text = text.strip()
        return [text] if text else []


def default_cache_path() -> Path:
    """The embedding cache ``vecmem eval`` uses: ``default_cache_dir()/embeddings.sqlite``."""
    return default_cache_dir() / "embeddings.sqlite"


def metric_names(k: int = 10, depth: int = 100) -> list[str]:
    """The metrics an evaluation reports: nDCG/MRR/MAP/P/Recall at ``k``, Recall at ``depth``,
    and always nDCG@10, Recall@100 and MRR@10."""
    names = [
        f"ndcg@{k}",
        f"recall@{depth}",
        f"mrr@{k}",
        f"map@{k}",
        f"precision@{k}",
        f"recall@{k}",
        "ndcg@10",
        "recall@100",
        "mrr@10",
    ]
    return list(dict.fromkeys(names))


@dataclass
class ModeResult:
    """The evaluation of one mode on one backend: per-query scores, the run and latencies."""

    mode: str
    backend: str
    dataset: str
    split: str
    evaluation: Evaluation
    latencies_ms: np.ndarray
    run: dict[str, dict[str, float]] = field(repr=False, default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    query_embedding_ms: float | None = None
    """Median time to embed one query without the cache (``None`` for keyword search)."""

    @property
    def metrics(self) -> dict[str, float]:
        return self.evaluation.means

    def latency(self, q: float) -> float:
        """The ``q``-th percentile of per-query search latency, milliseconds."""
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else 0.0

    def summary(self) -> dict[str, Any]:
        """What ``vecmem eval --json`` prints for this mode."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "mode": self.mode,
            "backend": self.backend,
            "queries": len(self.evaluation.queries),
            **{m: round(v, 6) for m, v in self.metrics.items()},
            "latency_p50_ms": round(self.latency(50), 3),
            "latency_p99_ms": round(self.latency(99), 3),
            "query_embedding_p50_ms": (
                None if self.query_embedding_ms is None else round(self.query_embedding_ms, 3)
            ),
            "settings": self.settings,
        }


def index_dataset(
    dataset: BeirDataset,
    *,
    store: VectorStore | None = None,
    embedder: Any = None,
    cache: EmbeddingCache | str | Path | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int = 0,
    fusion: Fusion = DEFAULT_FUSION,
    candidates: int = DEFAULT_CANDIDATES,
    bm25: tuple[float, float, float] = DEFAULT_BM25,
    tokenizer: Tokenizer | None = None,
    progress: bool = False,
) -> VectorMemory:
    """A memory holding ``dataset``'s corpus (unchanged documents already there are skipped).

    ``cache`` defaults to :func:`default_cache_path`, so a second run does not re-embed. The
    store must hold nothing but this corpus: extra chunks would change every metric.

    >>> from vecmem.datasets import load_sample
    >>> mem = index_dataset(load_sample(), embedder="hashing", cache=":memory:")
    >>> mem.count() == len(load_sample().corpus)
    True
    """
    if chunk_size is not None:
        if chunk_overlap >= chunk_size:
            raise ConfigurationError("chunk_overlap must be smaller than chunk_size")
        chunker: Any = RecursiveSplitter(chunk_size, chunk_overlap)
    else:
        chunker = WholeDocument()
    if cache is None:
        cache = default_cache_path()
    mem = VectorMemory(
        store=store if store is not None else MemoryStore(),
        embedder=embedder,
        chunker=chunker,
        tokenizer=tokenizer,
        fusion=fusion,
        candidates=candidates,
        bm25=bm25,
        cache=cache,
        progress=progress,
    )
    docs = dataset.documents()
    mem.add_documents(docs)
    expected = sum(len(chunker.split(d.text)) for d in docs)
    held = mem.count()
    if held != expected:
        raise ConfigurationError(
            f"the store holds {held} chunks but {dataset.name} has {expected}: evaluate on an "
            "empty store (or one holding only this corpus with the same chunking)"
        )
    return mem


def search_run(
    mem: VectorMemory,
    queries: dict[str, str],
    *,
    mode: str,
    depth: int = 100,
    rerank: Reranker | VectorReranker | None = None,
    chunked: bool = False,
) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """Search every query once; returns the run ``{qid: {doc_id: score}}`` (documents in vecmem's
    order, at most ``depth``, the query's own id dropped) and per-query latencies in ms."""
    if mode not in MODES:
        raise ConfigurationError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    fetch = depth * CHUNK_FANOUT if chunked else depth
    if mode != "keyword" and queries:
        mem.embedder.embed(list(queries.values()))  # cached: the timed searches embed nothing
    run: dict[str, dict[str, float]] = {}
    latencies = np.zeros(len(queries), dtype=np.float64)
    for i, (qid, text) in enumerate(queries.items()):
        t0 = time.perf_counter()
        hits = mem.search(text, k=fetch, mode=mode, rerank=rerank or False)  # type: ignore[arg-type]
        latencies[i] = (time.perf_counter() - t0) * 1000.0
        docs: list[str] = []
        seen: set[str] = set()
        for h in hits:
            d = h.document_id
            if d in seen or d == qid:
                continue
            seen.add(d)
            docs.append(d)
        run[qid] = {d: float(depth - r) for r, d in enumerate(docs[:depth])}
    return run, latencies


def query_embedding_ms(mem: VectorMemory, texts: Sequence[str], *, sample: int = 20) -> float:
    """Median milliseconds to embed one query with the memory's embedder, cache bypassed (after
    one warm-up call, so loading the model is not counted)."""
    inner = getattr(mem.embedder, "inner", mem.embedder)
    texts = list(texts)[:sample]
    if not texts:
        return 0.0
    inner.embed(texts[:1])
    times = []
    for t in texts:
        t0 = time.perf_counter()
        inner.embed([t])
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.median(times))


def evaluate_memory(
    mem: VectorMemory,
    dataset: BeirDataset,
    *,
    modes: Sequence[str] = MODES,
    split: str = "test",
    k: int = 10,
    depth: int = 100,
    rerank: Reranker | VectorReranker | None = None,
    rerank_name: str | None = None,
    chunked: bool = False,
) -> list[ModeResult]:
    """Evaluate an indexed memory in each mode (see :func:`search_run`)."""
    if k <= 0 or depth <= 0:
        raise ConfigurationError("k and depth must be > 0")
    depth = max(depth, k, 100)
    names = metric_names(k, depth)
    embed_ms = None
    if any(m != "keyword" for m in modes):
        embed_ms = query_embedding_ms(mem, list(dataset.queries.values()))
    out = []
    for mode in modes:
        run, lat = search_run(
            mem, dataset.queries, mode=mode, depth=depth, rerank=rerank, chunked=chunked
        )
        settings: dict[str, Any] = {
            "embedder": mem.embedder.name,
            "chunker": mem.chunker.spec,
            "depth": depth,
        }
        if mode == "hybrid":
            settings.update(fusion=dict(mem.fusion.__dict__), candidates=mem.candidates)
        if mode != "vector":
            settings["bm25"] = list(mem.space.keyword_params())
        label = f"{mode}+{rerank_name or 'rerank'}" if rerank is not None else mode
        out.append(
            ModeResult(
                label,
                mem.store.name,
                dataset.name,
                split,
                evaluate(dataset.qrels, run, names),
                lat,
                run,
                settings,
                None if mode == "keyword" else embed_ms,
            )
        )
    return out


def evaluate_dataset(
    dataset: BeirDataset,
    *,
    modes: Sequence[str] = MODES,
    split: str = "test",
    store: VectorStore | None = None,
    embedder: Any = None,
    cache: EmbeddingCache | str | Path | None = None,
    chunk_size: int | None = None,
    chunk_overlap: int = 0,
    fusion: Fusion = DEFAULT_FUSION,
    candidates: int = DEFAULT_CANDIDATES,
    bm25: tuple[float, float, float] = DEFAULT_BM25,
    k: int = 10,
    depth: int = 100,
    progress: bool = False,
) -> list[ModeResult]:
    """Index ``dataset`` and evaluate it in each mode: the library form of ``vecmem eval``.

    >>> from vecmem.datasets import load_sample
    >>> results = evaluate_dataset(load_sample(), embedder="hashing", cache=":memory:")
    >>> [r.mode for r in results]
    ['keyword', 'vector', 'hybrid']
    """
    mem = index_dataset(
        dataset,
        store=store,
        embedder=embedder,
        cache=cache,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        fusion=fusion,
        candidates=candidates,
        bm25=bm25,
        progress=progress,
    )
    try:
        return evaluate_memory(
            mem, dataset, modes=modes, split=split, k=k, depth=depth, chunked=chunk_size is not None
        )
    finally:
        mem.close()
