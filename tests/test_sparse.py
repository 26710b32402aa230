"""The sparse BM25 vectors Qdrant and Pinecone store (``vecmem.stores._sparse``): collections and
indexes written before the two adapters shared this module must keep working, so the ids and
values are pinned bit for bit to what the adapters wrote before (recorded on e7865e4)."""

from __future__ import annotations

import itertools
from collections import Counter

from vecmem.stores._sparse import bm25_document, bm25_query, term_id
from vecmem.tokenize import get_tokenizer

TEXT = (
    "Vector memory: memories of vectors, memory graphs and a graph of agents; ünïcode 文書 memory"
)
IDS = [111981213, 1800165712, 2011608429, 2209817334, 3298801374, 3338912362]


def test_values_are_those_written_before() -> None:
    tokens = get_tokenizer("default")(TEXT)
    short, mid, long = 0.9075907590759078, 1.285046728971963, 1.6224188790560474
    before = (IDS, [short, mid, long, mid, short, short])
    assert bm25_document(tokens, k1=1.2, b=0.4, avgdl=7.5) == before
    assert bm25_document(Counter(tokens), k1=1.2, b=0.4, avgdl=7.5) == before  # Pinecone's call
    assert bm25_query(tokens) == (IDS, [1.0, 2.0, 4.0, 2.0, 1.0, 1.0])


def test_terms_sharing_an_id_count_as_one_term() -> None:
    """Two distinct terms with the same 32-bit id are one term: their counts add up before the
    term-frequency part is taken (what Qdrant's idf of that id assumes)."""
    seen: dict[int, str] = {}
    for i in itertools.count():
        a = f"t{i}"
        b = seen.setdefault(term_id(a), a)
        if b != a:
            break
    ids, values = bm25_document([a, b, a, "other"], k1=1.2, b=0.75, avgdl=4.0)
    assert ids == sorted({term_id(a), term_id("other")})
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / 4.0)
    assert values[ids.index(term_id(a))] == 3 * 2.2 / (3 + norm)
    assert bm25_query([a, b, b]) == ([term_id(a)], [3.0])
