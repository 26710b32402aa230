"""Sparse BM25 vectors over hashed terms: what the Qdrant and Pinecone adapters store.

A term's sparse index is the first 4 bytes of its BLAKE2b digest, little-endian (:func:`term_id`;
no vocabulary to store or share between clients): about V^2 / 2^33 pairs of V distinct terms share
an index (0.01 at 10k), and such a pair counts as one term. A chunk's values are BM25's
term-frequency part ``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))`` (:func:`bm25_document`);
the idf comes at query time (Qdrant's ``Modifier.IDF``, Pinecone's query weights).

>>> bm25_query(["memory", "vector", "memory"])
([429982191, 1800165712], [2.0, 1.0])
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from functools import lru_cache


@lru_cache(maxsize=262_144)
def term_id(term: str) -> int:
    """A term's sparse index: the first 4 bytes of its BLAKE2b digest, little-endian."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def by_id(weights: Mapping[str, float]) -> dict[int, float]:
    """Per-term ``weights`` summed per term id."""
    out: dict[int, float] = {}
    for t, w in weights.items():
        i = term_id(t)
        out[i] = out[i] + w if i in out else w
    return out


def bm25_document(
    tokens: Iterable[str], *, k1: float, b: float, avgdl: float
) -> tuple[list[int], list[float]]:
    """A chunk's sparse BM25 vector from its tokens (or their counts, a mapping): ``tf * (k1 +
    1) / (tf + k1 * (1 - b + b * dl / avgdl))`` per term id, ids ascending."""
    tf = by_id(tokens) if isinstance(tokens, Mapping) else Counter(map(term_id, tokens))
    norm = k1 * (1 - b + b * sum(tf.values()) / avgdl)
    ids = sorted(tf)
    return ids, [tf[i] * (k1 + 1) / (tf[i] + norm) for i in ids]


def bm25_query(tokens: Iterable[str]) -> tuple[list[int], list[float]]:
    """A query's sparse vector: how often each term occurs (a repeated term counts again, as in
    rank_bm25), ids ascending."""
    counts = Counter(map(term_id, tokens))
    ids = sorted(counts)
    return ids, [float(counts[i]) for i in ids]


__all__ = ["bm25_document", "bm25_query", "by_id", "term_id"]
