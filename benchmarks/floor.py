"""The peers of ``bench_floor``: the hand-written floor (bm25s + numpy) and LanceDB, each exposing
the same calls on the same data, so that vecmem's figures can be given as ratios.

:class:`HandWritten` is what a performance-minded user writes without a library in between:
bm25s for BM25 (its sparse matrix, ``get_scores`` of the query's token ids), one matrix-vector
product for the dense leg, reciprocal rank fusion (k=60) of 100 candidates a leg with numpy, and
the top 10 as ``(id, text, score)``. It tokenizes with vecmem's tokenizer, so both sides index
the same words with the same k1 and b; it keeps nothing on disk and cannot update or delete.

:class:`Lance` is LanceDB used directly: one table written in one ``add``, a full-text index,
flat (exact) vector search and LanceDB's own hybrid query (RRF), 100 candidates a leg.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Result = list[tuple[str, str, float]]
RRF_K = 60
os.environ.setdefault("LANCEDB_LOG", "error")  # its hybrid query warns once per query


def _best(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, best first."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        return part[np.argsort(-scores[part], kind="stable")]
    return np.argsort(-scores, kind="stable")


class HandWritten:
    """bm25s + numpy, no library in between (see the module docstring)."""

    def __init__(
        self,
        ids: list[str],
        texts: list[str],
        vectors: np.ndarray,
        *,
        tokenizer: Callable[[str], list[str]],
        k1: float,
        b: float,
    ) -> None:
        import bm25s

        self.ids, self.texts, self.tokenizer = ids, texts, tokenizer
        self.matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        self.bm25 = bm25s.BM25(k1=k1, b=b, method="robertson")
        self.bm25.index([tokenizer(t) for t in texts], show_progress=False)
        self.vocab: dict[str, int] = self.bm25.vocab_dict

    def _keyword(self, text: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best rows with a query term, and every row's score."""
        ids = [i for i in map(self.vocab.get, self.tokenizer(text)) if i is not None]
        if not ids:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        scores = self.bm25.get_scores(ids)
        top = _best(scores, k)
        return top[scores[top] > 0], scores

    def _out(self, rows: np.ndarray, scores: np.ndarray) -> Result:
        return [(self.ids[i], self.texts[i], float(scores[i])) for i in rows.tolist()]

    def vector(self, qv: np.ndarray, k: int = 10) -> Result:
        sims = self.matrix @ qv
        return self._out(_best(sims, k), sims)

    def keyword(self, text: str, k: int = 10) -> Result:
        return self._out(*self._keyword(text, k))

    def hybrid(self, text: str, qv: np.ndarray, k: int = 10, candidates: int = 100) -> Result:
        vec, (kw, _) = _best(self.matrix @ qv, candidates), self._keyword(text, candidates)
        fused = np.zeros(len(self.ids))
        fused[vec] = 1.0 / (RRF_K + np.arange(1, len(vec) + 1))
        fused[kw] += 1.0 / (RRF_K + np.arange(1, len(kw) + 1))
        top = _best(fused, k)
        return self._out(top[fused[top] > 0], fused)


class Lance:
    """LanceDB used directly (see the module docstring)."""

    def __init__(self, folder: Path, ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        import lancedb
        import pyarrow as pa
        from lancedb.index import FTS

        from vecmem.stores.lancedb import _fts_config

        dim = vectors.shape[1]
        self.db = lancedb.connect(folder)
        self.table = self.db.create_table(
            "floor",
            data=pa.table(
                {
                    "id": ids,
                    "text": texts,
                    "vector": pa.FixedSizeListArray.from_arrays(
                        pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1)), dim
                    ),
                }
            ),
        )
        self.table.create_index("text", config=FTS(**_fts_config("default")))

    def vector(self, qv: np.ndarray, k: int = 10) -> Any:
        return (
            self.table.search(qv, vector_column_name="vector")
            .distance_type("cosine")
            .select(["id", "text", "_distance"])
            .limit(k)
            .to_arrow()
        )

    def keyword(self, text: str, k: int = 10) -> Any:
        return (
            self.table.search(text, query_type="fts")
            .select(["id", "text", "_score"])
            .limit(k)
            .to_arrow()
        )

    def hybrid(self, text: str, qv: np.ndarray, k: int = 10, candidates: int = 100) -> Any:
        return (
            self.table.search(query_type="hybrid", vector_column_name="vector")
            .vector(qv)
            .text(text)
            .select(["id", "text"])
            .limit(candidates)
            .to_arrow()
            .slice(0, k)
        )
