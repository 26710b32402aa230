"""Long documents in the lever study (``bench_levers_more``): the text past the embedder's limit,
and fusing on documents rather than chunks.

all-MiniLM-L6-v2 reads 256 word pieces (254 of text); 71% of SciFact's and 79% of NFCorpus's
documents are longer, so the whole-document vector leg sees only their beginning. Here a document
is cut into consecutive windows of 254 word pieces (no overlap): window 0 is what the model already
reads (its vector is the cached whole-document one), the later windows are embedded once through
vecmem's embedding cache (about 7,500 short passages for both corpora). The windows also serve as
the chunks of a chunked index, about the size of vecmem's default 1,000-character chunks.
"""

from __future__ import annotations

import numpy as np

from benchmarks import keyword_variants as kv
from benchmarks import levers
from vecmem.embedders import DEFAULT_MODEL, SentenceTransformerEmbedder
from vecmem.tokenize import DefaultTokenizer
from vecmem.types import content_hash

WINDOW = 254  # word pieces of text in one all-MiniLM-L6-v2 input (256 with [CLS] and [SEP])


class Windows:
    """A corpus cut into windows: ``doc[u]`` is window u's document, ``D[u]`` its vector."""

    def __init__(self, c: levers.Corpus, *, embed: bool = True) -> None:
        """``embed=False``: windows missing from the embedding cache are an error, not embedded."""
        emb = SentenceTransformerEmbedder()
        doc, texts = [], []
        for i, text in enumerate(c.texts):
            off = emb.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
                "offset_mapping"
            ]
            n = len(off)
            for s in range(0, max(n, 1), WINDOW):
                a = 0 if s == 0 else off[s][0]
                e = off[min(s + WINDOW, n) - 1][1] if n else len(text)
                texts.append(text[a:e])
                doc.append(i)
        self.doc = np.array(doc)
        self.first = np.r_[True, self.doc[1:] != self.doc[:-1]]
        self.texts = texts
        tails = [texts[j] for j in np.flatnonzero(~self.first)]
        if embed:
            _embed_missing(emb, tails)
        self.D = np.zeros((len(texts), c.D.shape[1]), np.float32)
        self.D[self.first] = c.D  # window 0 = what the whole-document vector already reads
        self.D[~self.first] = levers.vectors(tails)
        pos = np.zeros(len(doc), np.int64)
        for u in range(1, len(doc)):
            pos[u] = pos[u - 1] + 1 if doc[u] == doc[u - 1] else 0
        names = [f"{c.ids[d]}#{p}" for d, p in zip(doc, pos)]
        self.tb = np.empty(len(names), np.int64)  # fuse()'s tie-break: chunk id ascending
        self.tb[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
        tok = DefaultTokenizer()
        self.tf, self.vocab = kv.term_counts(texts, tok)
        self.tok = tok

    def per_document(self, U: np.ndarray, n_docs: int) -> np.ndarray:
        """Window scores -> document scores, each document its best window (MaxP)."""
        out = np.full((U.shape[0], n_docs), -np.inf, U.dtype)
        starts = np.flatnonzero(self.first)
        out[:, self.doc[starts]] = np.maximum.reduceat(U, starts, axis=1)
        return out


def _embed_missing(emb: SentenceTransformerEmbedder, texts: list[str]) -> None:
    hashes = [content_hash(t) for t in texts]
    todo = [i for i, v in enumerate(levers.CACHE.get(DEFAULT_MODEL, hashes)) if v is None]
    for b in range(0, len(todo), 256):
        part = todo[b : b + 256]
        vecs = emb.embed([texts[i] for i in part])
        levers.CACHE.put(DEFAULT_MODEL, [hashes[i] for i in part], vecs)


class _Units:
    """What ``levers.Legs`` reads from a split, over windows instead of documents."""

    def __init__(self, S: levers.Split, w: Windows) -> None:
        self.G = S.G[:, w.doc]
        self.idcg, self.disc = S.idcg, S.disc
        self.c = type("C", (), {"tb": w.tb})()


def chunk_level(S: levers.Split, w: Windows, UV, UK, d: int, method: str, **kw) -> np.ndarray:
    """Per-query nDCG@10 of a chunked index fused on chunks (``d`` candidates a leg), a document
    ranked where its first chunk is, as ``vecmem eval --chunk-size`` ranks documents."""
    legs = levers.Legs(_Units(S, w), UV, UK, d)  # type: ignore[arg-type]
    F = legs.fuse(method, **kw)
    out = np.zeros(F.shape[0])
    for i in range(F.shape[0]):
        order = np.lexsort((legs.tb[i], -F[i]))
        order = order[np.isfinite(F[i][order])]
        docs = list(dict.fromkeys(w.doc[legs.ids[i][order]].tolist()))[:10]
        g = S.G[i, docs]
        out[i] = (g * S.disc[: len(g)]).sum() / S.idcg[i] if S.idcg[i] > 0 else 0.0
    return out
