"""Offline retrieval on cached embeddings, in numpy: the lever study of ``bench_levers``.

Every leg is a full query x document score matrix (the vector leg: exact dot products of the
cached all-MiniLM-L6-v2 vectors; the keyword leg: rank_bm25's BM25 as a sparse matrix product),
so a lever (title weighting, RM3, Rocchio, another fusion) costs one matrix operation instead of
a search per query. The fusion formulas are ``vecmem.fusion``'s, ties broken by chunk id as
``fuse`` does; ``bench_levers`` checks that the legs and the default hybrid reproduce what
``vecmem eval`` reports before it reports anything else. Vectors must already be in the
embedding cache (``vecmem eval`` on the data set puts them there).
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np
import scipy.sparse as sp

from vecmem.datasets import load_qrels
from vecmem.embedders import DEFAULT_MODEL, EmbeddingCache
from vecmem.evaluation.runner import default_cache_path
from vecmem.testing.data import datasets_dir
from vecmem.tokenize import DefaultTokenizer
from vecmem.types import content_hash

D = datasets_dir()
TOK = DefaultTokenizer()
CACHE = EmbeddingCache(default_cache_path())


def vectors(texts):
    got = CACHE.get(DEFAULT_MODEL, [content_hash(t) for t in texts])
    missing = sum(v is None for v in got)
    if missing:
        raise RuntimeError(f"{missing} texts not in the cache")
    return np.stack(got).astype(np.float32)


class Corpus:
    def __init__(self, name: str):
        self.name = name
        ids, texts, titles, bodies = [], [], [], []
        for line in open(D / name / "corpus.jsonl"):
            row = json.loads(line)
            title = (row.get("title") or "").strip()
            text = f"{title} {row.get('text') or ''}".strip()
            if not text:
                continue
            ids.append(str(row["_id"]))
            texts.append(text)
            titles.append(title)
            bodies.append((row.get("text") or "").strip())
        self.ids, self.texts, self.titles, self.bodies = ids, texts, titles, bodies
        self.index = {d: i for i, d in enumerate(ids)}
        # vecmem's fuse() breaks ties by chunk id ("<doc>#0") ascending
        order = sorted(range(len(ids)), key=lambda i: f"{ids[i]}#0")
        self.tb = np.empty(len(ids), np.int64)
        self.tb[order] = np.arange(len(ids))
        self.D = vectors(texts)
        self.tok_title = [TOK(t) for t in titles]
        self.tok_body = [TOK(t) for t in bodies]
        self.tok_full = [TOK(t) for t in texts]
        vocab: dict[str, int] = {}
        for toks in self.tok_full:
            for t in toks:
                vocab.setdefault(t, len(vocab))
        self.vocab = vocab

    def _counts(self, docs):
        rows, cols, vals = [], [], []
        for i, toks in enumerate(docs):
            c: dict[int, int] = {}
            for t in toks:
                j = self.vocab.get(t)
                if j is not None:
                    c[j] = c.get(j, 0) + 1
            rows += [i] * len(c)
            cols += list(c)
            vals += list(c.values())
        return sp.csr_matrix(
            (np.array(vals, float), (rows, cols)), shape=(len(docs), len(self.vocab))
        )

    @cache  # noqa: B019 (a few corpora a run)
    def tf(self, title_weight: float = 1.0):
        if title_weight == 1.0:
            return self._counts(self.tok_full)
        # title tokens counted title_weight times (tf and length)
        return (self._counts(self.tok_title) * title_weight + self._counts(self.tok_body)).tocsr()

    @cache  # noqa: B019 (a few corpora a run)
    def bm25(self, k1: float, b: float, title_weight: float = 1.0, eps: float = 0.25):
        tf = self.tf(title_weight).tocoo()
        n = tf.shape[0]
        dl = np.asarray(self.tf(title_weight).sum(axis=1)).ravel()
        avgdl = dl.mean()
        df = np.bincount(tf.col, minlength=tf.shape[1]).astype(float)
        idf = np.log(n - df + 0.5) - np.log(df + 0.5)
        present = df > 0
        avg = idf[present].sum() / present.sum()
        idf[present & (idf < 0)] = eps * avg
        norm = k1 * (1 - b + b * dl / avgdl)
        w = idf[tf.col] * tf.data * (k1 + 1) / (tf.data + norm[tf.row])
        return sp.csr_matrix((w, (tf.row, tf.col)), shape=tf.shape)


@cache
def corpus(name):
    return Corpus(name)


class Split:
    def __init__(self, name: str, split: str):
        self.c = c = corpus(name)
        self.name, self.split = name, split
        qrels = load_qrels(D / name / "qrels" / f"{split}.tsv")
        qtext = {
            str(r["_id"]): r["text"] for r in map(json.loads, open(D / name / "queries.jsonl"))
        }
        self.qids = [q for q in qrels if q in qtext]
        self.qtexts = [qtext[q] for q in self.qids]
        self.qrels = {q: qrels[q] for q in self.qids}
        self.Q = vectors(self.qtexts)
        self.qtok = [TOK(t) for t in self.qtexts]
        self.qlen = np.array([len(t) for t in self.qtok])
        rows, cols, vals = [], [], []
        for i, toks in enumerate(self.qtok):
            for t in toks:
                j = c.vocab.get(t)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
                    vals.append(1.0)
        self.Qs = sp.csr_matrix((vals, (rows, cols)), shape=(len(self.qids), len(c.vocab)))
        self.Qs.sum_duplicates()
        nq, nd = len(self.qids), len(c.ids)
        G = np.zeros((nq, nd), np.float32)
        idcg = np.zeros(nq)
        disc = 1 / np.log2(np.arange(2, 12))
        for i, q in enumerate(self.qids):
            rels = []
            for d, r in self.qrels[q].items():
                if r >= 1:
                    rels.append(r)
                    j = c.index.get(d)
                    if j is not None:
                        G[i, j] = r
            rels = sorted(rels, reverse=True)[:10]
            idcg[i] = sum(r * disc[k] for k, r in enumerate(rels))
        self.G, self.idcg, self.disc = G, idcg, disc
        self.nrel = np.array([sum(1 for r in self.qrels[q].values() if r >= 1) for q in self.qids])

    # ---- legs: full score matrices, -inf where the leg does not return the doc
    def vec_scores(self, q=None):
        return (self.Q if q is None else q) @ self.c.D.T

    def kw_scores(self, k1, b, tw=1.0, qs=None):
        s = np.asarray(((self.Qs if qs is None else qs) @ self.c.bm25(k1, b, tw).T).todense())
        s[s <= 0] = -np.inf
        return s

    def ndcg(self, S):
        """Per-query nDCG@10 of score matrix S (higher first; -inf = not returned)."""
        top = np.argpartition(-S, 10, axis=1)[:, :10]
        vals = np.take_along_axis(S, top, 1)
        order = np.argsort(-vals, axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        vals = np.take_along_axis(vals, order, 1)
        g = np.take_along_axis(self.G, top, 1) * np.isfinite(vals)
        dcg = (g * self.disc).sum(1)
        return np.where(self.idcg > 0, dcg / np.where(self.idcg > 0, self.idcg, 1), 0.0)

    def recall(self, S, k=100):
        top = np.argpartition(-S, k, axis=1)[:, :k]
        vals = np.take_along_axis(S, top, 1)
        g = (np.take_along_axis(self.G, top, 1) > 0) & np.isfinite(vals)
        return g.sum(1) / np.maximum(self.nrel, 1)


def truncate(S, d):
    """Keep each row's top d (others -inf): a leg returning d candidates."""
    S = S.copy()
    if d < S.shape[1]:
        idx = np.argpartition(-S, d, axis=1)[:, d:]
        np.put_along_axis(S, idx, -np.inf, 1)
    return S


def ranks(S):
    """1-based ranks (inf where -inf)."""
    order = np.argsort(-S, axis=1, kind="stable")
    R = np.empty_like(S)
    np.put_along_axis(R, order, np.arange(1, S.shape[1] + 1, dtype=S.dtype)[None, :], 1)
    R[~np.isfinite(S)] = np.inf
    return R


def _norm(S, method):
    fin = np.isfinite(S)
    cnt = fin.sum(1, keepdims=True)
    Z = np.where(fin, S, 0.0)
    if method == "convex":
        lo = np.where(fin, S, np.inf).min(1, keepdims=True)
        hi = np.where(fin, S, -np.inf).max(1, keepdims=True)
        span = hi - lo
        out = np.where(span > 0, (Z - lo) / np.where(span > 0, span, 1), 1.0)
    else:
        mean = Z.sum(1, keepdims=True) / np.maximum(cnt, 1)
        var = (np.where(fin, (Z - mean) ** 2, 0)).sum(1, keepdims=True) / np.maximum(cnt, 1)
        std = np.sqrt(var)
        out = np.where(std > 0, (Z - (mean - 3 * std)) / np.where(std > 0, 6 * std, 1), 1.0)
    return np.where(fin, out, 0.0), fin


def confidence(S):
    fin = np.isfinite(S)
    cnt = fin.sum(1)
    Z = np.where(fin, S, 0.0)
    mean = Z.sum(1) / np.maximum(cnt, 1)
    std = np.sqrt(np.where(fin, (Z - mean[:, None]) ** 2, 0).sum(1) / np.maximum(cnt, 1))
    mx = np.where(fin, S, -np.inf).max(1)
    conf = np.where(std > 0, (mx - mean) / np.where(std > 0, std, 1), 0.0)
    conf = np.where(cnt < 2, 1.0, conf)
    return conf


def fuse(V, K, method, *, k=60, wv=1.0, wk=1.0, alpha=0.5, adaptive=False, RV=None, RK=None):
    """Fused score matrix of truncated legs V, K (-inf = absent); -inf where neither."""
    either = np.isfinite(V) | np.isfinite(K)
    if method == "rrf":
        RV = ranks(V) if RV is None else RV
        RK = ranks(K) if RK is None else RK
        F = wv / (k + RV) + wk / (k + RK)
    else:
        nv, fv = _norm(V, method)
        nk, fk = _norm(K, method)
        a = np.full((V.shape[0], 1), alpha)
        if adaptive:
            cv, ck = confidence(V), confidence(K)
            tot = alpha * cv + (1 - alpha) * ck
            aa = np.where(tot > 0, alpha * cv / np.where(tot > 0, tot, 1), alpha)
            both = fv.any(1) & fk.any(1)
            a = np.where(both, aa, alpha)[:, None]
        F = a * nv + (1 - a) * nk
    return np.where(either, F, -np.inf)


def rm3_query(S: Split, K, *, k1, b, tw=1.0, fb_docs=10, fb_terms=10, lam=0.5):
    """RM3 query weights (nq x V sparse) from the keyword leg's first pass K."""
    c = S.c
    TF = c.tf(tw)
    dl = np.asarray(TF.sum(axis=1)).ravel()
    P = sp.diags(1 / np.maximum(dl, 1)) @ TF
    nq = K.shape[0]
    top = np.argpartition(-K, fb_docs, axis=1)[:, :fb_docs]
    w = np.take_along_axis(K, top, 1)
    w = np.where(np.isfinite(w), w, 0.0)
    w = w / np.maximum(w.sum(1, keepdims=True), 1e-12)
    A = sp.csr_matrix(
        (w.ravel(), (np.repeat(np.arange(nq), fb_docs), top.ravel())), shape=(nq, K.shape[1])
    )
    E = (A @ P).tocsr()
    rows, cols, vals = [], [], []
    for i in range(nq):
        a, bnd = E.indptr[i], E.indptr[i + 1]
        d, v = E.indices[a:bnd], E.data[a:bnd]
        if len(v) > fb_terms:
            keep = np.argpartition(-v, fb_terms)[:fb_terms]
            d, v = d[keep], v[keep]
        if v.sum() > 0:
            v = v / v.sum()
        rows += [i] * len(d)
        cols += list(d)
        vals += list(v)
    Et = sp.csr_matrix((vals, (rows, cols)), shape=E.shape)
    Q0 = S.Qs.tocsr().astype(float)
    Q0 = sp.diags(1 / np.maximum(np.asarray(Q0.sum(1)).ravel(), 1e-12)) @ Q0
    return (lam * Q0 + (1 - lam) * Et).tocsr()


def rocchio(S: Split, V, *, fb=5, beta=0.5):
    top = np.argpartition(-V, fb, axis=1)[:, :fb]
    cen = S.c.D[top].mean(1)
    q = S.Q + beta * cen
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return S.vec_scores(q)


class Legs:
    """Both legs' candidates of every query (the vector leg's top d, the keyword leg's top dk,
    default d), merged: arrays nq x (d + dk) (-inf = absent)."""

    def __init__(self, S: Split, V, K, d, dk=None):
        self.S = S
        dk = d if dk is None else dk
        Vt, Kt = truncate(V, d), truncate(K, dk)
        vid = np.argsort(-Vt, axis=1, kind="stable")[:, :d]
        kid = np.argsort(-Kt, axis=1, kind="stable")[:, :dk]
        ids = np.concatenate([vid, kid], 1)
        v = np.take_along_axis(Vt, ids, 1)
        k = np.take_along_axis(Kt, ids, 1)
        dup = np.zeros_like(v, dtype=bool)
        dup[:, d:] = np.isfinite(v[:, d:])
        k_only_missing = ~np.isfinite(k[:, d:])
        dup[:, d:] |= k_only_missing  # keyword leg ran out of matches
        v[dup] = -np.inf
        k[dup] = -np.inf
        self.ids, self.v, self.k, self.valid = ids, v, k, ~dup
        self.rv = ranks_of(v)
        self.rk = ranks_of(k)
        self.g = np.take_along_axis(S.G, ids, 1)
        self.tb = S.c.tb[ids]

    def fuse(self, method, **kw):
        F = fuse(self.v, self.k, method, RV=self.rv, RK=self.rk, **kw)
        return np.where(self.valid, F, -np.inf)

    def ndcg(self, F):
        top = np.lexsort((self.tb, -F), axis=1)[:, :10]
        vals = np.take_along_axis(F, top, 1)
        g = np.take_along_axis(self.g, top, 1) * np.isfinite(vals)
        S = self.S
        return np.where(S.idcg > 0, (g * S.disc).sum(1) / np.where(S.idcg > 0, S.idcg, 1), 0.0)


def ranks_of(X):
    order = np.argsort(-X, axis=1, kind="stable")
    R = np.empty_like(X)
    np.put_along_axis(R, order, np.arange(1, X.shape[1] + 1, dtype=X.dtype)[None, :], 1)
    R[~np.isfinite(X)] = np.inf
    return R
