"""Keyword-leg variants for the lever study (``bench_levers_more``): tokenizers and BM25 formulas.

A variant is a tokenizer (a callable text -> terms) and a BM25 formula; each builds a document x
term weight matrix over a :class:`benchmarks.levers.Corpus`'s texts, so a split's keyword leg is
one sparse product, as in ``levers``. ``okapi`` is rank_bm25's BM25Okapi (what vecmem ships:
negative idfs floored at ``epsilon`` x the mean idf); ``lucene`` uses Lucene's idf
``ln(1 + (N - df + 0.5) / (df + 0.5))``; ``bm25l`` and ``bm25+`` are Lv & Zhai's (CIKM 2011)
with rank_bm25's constants (delta 0.5 and 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import Stemmer

from vecmem.tokenize import LUCENE_ENGLISH_STOP_WORDS

Tok = Callable[[str], list[str]]
FORMULAS = ("okapi", "lucene", "bm25l", "bm25+")


def tokenizer(
    *,
    stem: str | None = "english",
    stop: Iterable[str] = LUCENE_ENGLISH_STOP_WORDS,
    join_hyphens: bool = False,
) -> Tok:
    """vecmem's DefaultTokenizer with its choices open: the stemmer (PyStemmer's name or None),
    the stop words, and whether ``a-b`` also yields the joined term ``ab``."""
    stemmer = Stemmer.Stemmer(stem) if stem else None
    stop = frozenset(stop)
    word, compound = re.compile(r"\w+"), re.compile(r"\w+(?:-\w+)+")
    seen: dict[str, str] = {}

    def tok(text: str) -> list[str]:
        text = text.lower()
        words = word.findall(text)
        if join_hyphens:
            words += [m.replace("-", "") for m in compound.findall(text)]
        words = [w for w in words if w not in stop]
        if stemmer is None:
            return words
        return [seen.get(w) or seen.setdefault(w, stemmer.stemWord(w)) for w in words]

    return tok


def term_counts(texts: list[str], tok: Tok) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Document x term counts and the vocabulary."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    vals: list[int] = []
    for i, text in enumerate(texts):
        counts: dict[int, int] = {}
        for t in tok(text):
            j = vocab.setdefault(t, len(vocab))
            counts[j] = counts.get(j, 0) + 1
        rows += [i] * len(counts)
        cols += list(counts)
        vals += list(counts.values())
    tf = sp.csr_matrix((np.array(vals, float), (rows, cols)), shape=(len(texts), len(vocab)))
    return tf, vocab


def weights(
    tf: sp.csr_matrix, k1: float, b: float, formula: str = "okapi", eps: float = 0.25
) -> sp.csr_matrix:
    """BM25 weight of each (document, term) under ``formula``."""
    coo = tf.tocoo()
    n = tf.shape[0]
    dl = np.asarray(tf.sum(axis=1)).ravel()
    avgdl = dl.mean()
    df = np.bincount(coo.col, minlength=tf.shape[1]).astype(float)
    f, d, t = coo.data, coo.row, coo.col
    if formula in ("okapi", "lucene"):
        if formula == "okapi":
            idf = np.log(n - df + 0.5) - np.log(df + 0.5)
            present = df > 0
            idf[present & (idf < 0)] = eps * idf[present].sum() / present.sum()
        else:
            idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        w = idf[t] * f * (k1 + 1) / (f + k1 * (1 - b + b * dl[d] / avgdl))
    elif formula == "bm25l":
        ctd = f / (1 - b + b * dl[d] / avgdl)
        w = np.log((n + 1) / (df[t] + 0.5)) * (k1 + 1) * (ctd + 0.5) / (k1 + ctd + 0.5)
    elif formula == "bm25+":
        norm = k1 * (1 - b + b * dl[d] / avgdl)
        w = np.log((n + 1) / df[t]) * (f * (k1 + 1) / (f + norm) + 1.0)
    else:
        raise ValueError(f"unknown BM25 formula {formula!r}")
    return sp.csr_matrix((w, (d, t)), shape=tf.shape)


def query_matrix(queries: list[str], tok: Tok, vocab: dict[str, int]) -> sp.csr_matrix:
    """Query x term counts (a repeated query term counts twice, as in vecmem's BM25)."""
    rows, cols = [], []
    for i, q in enumerate(queries):
        for t in tok(q):
            j = vocab.get(t)
            if j is not None:
                rows.append(i)
                cols.append(j)
    m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(vocab)))
    m.sum_duplicates()
    return m


def scores(q: sp.csr_matrix, w: sp.csr_matrix) -> np.ndarray:
    """Dense query x document keyword scores, -inf where a document has no query term."""
    s = np.asarray((q @ w.T).todense())
    s[s <= 0] = -np.inf
    return s
