"""BM25Index scores equal rank_bm25.BM25Okapi (the reference) to 1e-6: on SciFact, on random
corpora, after interleaved adds and deletes, and after state()/from_state()."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rank_bm25 import BM25Okapi

from vecmem import bm25 as bm25_module
from vecmem.bm25 import BM25Index, idf_reference
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.testing.congruence import scifact_path
from vecmem.tokenize import DefaultTokenizer

TOL = 1e-6


def assert_equal_to_rank_bm25(
    idx: BM25Index, live: dict[int, list[str]], queries: list[list[str]]
) -> None:
    """Scores of every live slot, and top-k order, equal BM25Okapi built on the live docs."""
    slots = sorted(live)
    ref = BM25Okapi([live[s] for s in slots], k1=idx.k1, b=idx.b, epsilon=idx.epsilon)
    for q in queries:
        with np.errstate(invalid="ignore"):
            want = ref.get_scores(q)
        got = idx.get_scores(q, slots)
        # rank_bm25 divides 0/0 for an empty document when b == 1; it holds no term: score 0
        undefined = ~np.isfinite(want)
        assert all(not live[slots[i]] for i in np.flatnonzero(undefined))
        want = np.where(undefined, 0.0, want)
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)
        terms = set(q)
        touched = [i for i, s in enumerate(slots) if terms & set(live[s])]
        k = min(10, max(len(touched), 1))
        top_slots, top_scores = idx.top_k(q, k)
        assert len(top_slots) == min(k, len(touched))
        expect = sorted(touched, key=lambda i: (-want[i], slots[i]))[:k]
        np.testing.assert_allclose(top_scores, want[expect], rtol=0, atol=TOL)
        assert set(top_slots.tolist()) <= {slots[i] for i in touched}


# ----------------------------------------------------------------------------- SciFact
@pytest.fixture(scope="module")
def scifact() -> tuple[list[list[str]], list[list[str]]]:
    path = scifact_path()
    if path is None:
        pytest.skip("SciFact not found: set VECMEM_SCIFACT or put it at ../shared/datasets/scifact")
    from vecmem.datasets import load_beir

    ds = load_beir(path, split="test")
    tok = DefaultTokenizer()
    docs = [tok(d.text) for d in ds.documents()]
    queries = [tok(q) for q in list(ds.queries.values())[:60]]
    return docs, queries


def test_scifact_scores_equal_rank_bm25(scifact: tuple[list[list[str]], list[list[str]]]) -> None:
    """Whole SciFact corpus (5,183 docs), 60 test queries, vecmem's default tokenizer."""
    docs, queries = scifact
    assert len(docs) > 5000 and len(queries) == 60
    idx = BM25Index()
    idx.add(np.arange(len(docs)), docs)
    ref = BM25Okapi(docs)
    for q in queries:
        want = ref.get_scores(q)
        np.testing.assert_allclose(idx.get_scores(q, np.arange(len(docs))), want, rtol=0, atol=TOL)
        slots, scores = idx.top_k(q, 10)
        np.testing.assert_allclose(scores, np.sort(want)[::-1][:10], rtol=0, atol=TOL)
        assert want[slots].tolist() == pytest.approx(scores.tolist(), abs=TOL)


def test_scifact_after_deletes_and_state_round_trip(
    scifact: tuple[list[list[str]], list[list[str]]],
) -> None:
    """Delete a third of SciFact, re-add some under new slots, persist and restore: scores stay
    equal to rank_bm25 on the surviving documents."""
    docs, queries = scifact
    idx = BM25Index()
    idx.add(np.arange(len(docs)), docs)
    rng = np.random.default_rng(0)
    gone = rng.choice(len(docs), size=len(docs) // 3, replace=False)
    assert idx.remove(gone) == len(gone)
    live = {i: docs[i] for i in range(len(docs)) if i not in set(gone.tolist())}
    readd = gone[:200]
    new_slots = np.arange(len(docs), len(docs) + len(readd))
    idx.add(new_slots, [docs[i] for i in readd])
    live.update({int(s): docs[i] for s, i in zip(new_slots, readd)})
    restored = BM25Index.from_state(idx.state())
    assert len(restored) == len(idx) == len(live)
    slots = sorted(live)
    ref = BM25Okapi([live[s] for s in slots])
    for q in queries[:30]:
        want = ref.get_scores(q)
        np.testing.assert_allclose(idx.get_scores(q, slots), want, rtol=0, atol=TOL)
        np.testing.assert_allclose(restored.get_scores(q, slots), want, rtol=0, atol=TOL)


# ----------------------------------------------------------------------------- random corpora
VOCAB = [f"w{i}" for i in range(12)]
doc_st = st.lists(st.sampled_from(VOCAB), min_size=0, max_size=15)
op_st = st.one_of(
    st.tuples(st.just("add"), st.lists(doc_st, min_size=1, max_size=6)),
    st.tuples(st.just("remove"), st.lists(st.integers(0, 60), min_size=1, max_size=5)),
    st.tuples(st.just("restore"), st.none()),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(op_st, min_size=1, max_size=12),
    queries=st.lists(
        st.lists(st.sampled_from(VOCAB + ["unknown"]), min_size=1, max_size=4),
        min_size=1,
        max_size=4,
    ),
    params=st.sampled_from(
        [(1.5, 0.75, 0.25), (1.2, 0.75, 0.25), (0.9, 0.4, 0.1), (2.0, 1.0, 0.5), (1.5, 0.0, 0.25)]
    ),
)
def test_random_corpora_interleaved(
    ops: list, queries: list[list[str]], params: tuple[float, float, float]
) -> None:
    """Random adds, deletes (including of dead or unknown slots) and state round trips."""
    k1, b, eps = params
    idx = BM25Index(k1=k1, b=b, epsilon=eps)
    live: dict[int, list[str]] = {}
    next_slot = 0
    for kind, arg in ops:
        if kind == "add":
            slots = list(range(next_slot, next_slot + len(arg)))
            next_slot += len(arg)
            idx.add(slots, arg)
            live.update(zip(slots, arg))
        elif kind == "remove":
            removed = idx.remove(arg)
            assert removed == len({s for s in arg if s in live})
            for s in arg:
                live.pop(s, None)
        else:
            idx = BM25Index.from_state(idx.state())
        assert len(idx) == len(live)
    if live and any(live.values()):
        assert_equal_to_rank_bm25(idx, live, queries)


def test_many_small_batches_cross_merge_and_compaction() -> None:
    """Enough postings to merge the tail and compact dead postings several times."""
    rng = random.Random(5)
    vocab = [f"t{i}" for i in range(300)]
    idx = BM25Index()
    live: dict[int, list[str]] = {}
    slot = 0
    for step in range(60):
        batch = [rng.choices(vocab, k=rng.randint(1, 40)) for _ in range(150)]
        idx.add(range(slot, slot + len(batch)), batch)
        live.update(zip(range(slot, slot + len(batch)), batch))
        slot += len(batch)
        doomed = rng.sample(sorted(live), k=len(live) // 4)
        idx.remove(doomed)
        for s in doomed:
            del live[s]
        if step % 20 == 19:
            assert_equal_to_rank_bm25(idx, live, [rng.choices(vocab, k=3) for _ in range(5)])


def test_one_document_at_a_time_keeps_few_segments_and_queries_never_merge() -> None:
    """Adds of one document each: the segments stay at most 3 log2(postings) + 1 (a query reads
    each), scores stay exact, and a query leaves the segments as they are (no merge or sort on
    the query path: the first query after a bulk load used to sort every posting)."""
    rng = random.Random(9)
    vocab = [f"t{i}" for i in range(200)]
    idx = BM25Index()
    live: dict[int, list[str]] = {}
    for slot in range(700):
        doc = rng.choices(vocab, k=rng.randint(1, 12))
        idx.add([slot], [doc])
        live[slot] = doc
        postings = sum(len(seg) for seg in idx._segments)
        assert len(idx._segments) <= 3 * math.log2(postings) + 1
    before = [(id(seg), len(seg)) for seg in idx._segments]
    assert_equal_to_rank_bm25(idx, live, [rng.choices(vocab, k=3) for _ in range(5)])
    idx.top_k(["t1", "t2"], 10)
    assert [(id(seg), len(seg)) for seg in idx._segments] == before


def test_top_k_honours_mask_and_skips_documents_without_terms() -> None:
    idx = BM25Index()
    idx.add([0, 1, 2, 3], [["cat", "sat"], ["dog"], ["cat", "cat"], ["cat"]])
    slots, _ = idx.top_k(["cat"], 10)
    assert sorted(slots.tolist()) == [0, 2, 3]  # slot 1 has no query term
    mask = np.array([True, True, False, True])
    slots, _ = idx.top_k(["cat"], 10, mask)
    assert sorted(slots.tolist()) == [0, 3]
    assert idx.top_k(["bird"], 5)[0].tolist() == []


def test_idf_epsilon_floor_matches_reference() -> None:
    """A term in more than half the documents gets epsilon * mean idf, as in rank_bm25."""
    docs = [["common", "a"], ["common", "b"], ["common"], ["rare"]]
    idx = BM25Index(epsilon=0.25)
    idx.add(range(4), docs)
    ref = BM25Okapi(docs, epsilon=0.25)
    assert idf_reference(4, 3) < 0
    assert idx.get_scores(["common"], range(4)) == pytest.approx(ref.get_scores(["common"]))
    assert ref.idf["common"] == pytest.approx(0.25 * ref.average_idf)


def test_invalid_use_raises_typed_errors() -> None:
    idx = BM25Index()
    idx.add([0], [["a"]])
    with pytest.raises(InvalidInputError):
        idx.add([0], [["b"]])  # reused slot
    idx.remove([0])
    with pytest.raises(InvalidInputError):
        idx.add([0], [["b"]])  # a deleted slot is not reused either
    with pytest.raises(InvalidInputError):
        idx.add([1, 2], [["b"]])
    with pytest.raises(InvalidInputError):
        idx.add([3, 3], [["b"], ["c"]])
    with pytest.raises(InvalidInputError):
        idx.top_k(["a"], 0)
    with pytest.raises(ConfigurationError):
        BM25Index(k1=-1)
    with pytest.raises(ConfigurationError):
        BM25Index(b=1.5)


def test_with_params_changes_scores_without_reindex() -> None:
    docs = [["x", "y", "y"], ["x"], ["y", "z", "z", "z"]]
    idx = BM25Index()
    idx.add(range(3), docs)
    idx.with_params(k1=0.9, b=0.3, epsilon=0.1)
    ref = BM25Okapi(docs, k1=0.9, b=0.3, epsilon=0.1)
    for q in (["x"], ["y", "z"], ["x", "x", "y"]):
        assert idx.get_scores(q, range(3)) == pytest.approx(ref.get_scores(q), abs=TOL)


@pytest.mark.parametrize("cache", [1 << 22, 40])
def test_scores_follow_every_change_after_queries(
    cache: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each term's per-posting scores are kept between queries: a query after every add, delete
    and parameter change still equals rank_bm25 on the documents of that moment (kept scores of
    the version before would not), also when the kept scores overflow their bound (40
    postings: dropped and computed again nearly every query)."""
    monkeypatch.setattr(bm25_module, "TERM_CACHE", cache)
    rng = random.Random(13)
    vocab = [f"t{i}" for i in range(60)]
    idx = BM25Index()
    live: dict[int, list[str]] = {}
    queries = [rng.choices(vocab, k=rng.randint(1, 4)) for _ in range(8)]
    for step in range(30):
        if step % 3 == 2 and live:
            doomed = rng.sample(sorted(live), k=max(1, len(live) // 5))
            idx.remove(doomed)
            for s in doomed:
                del live[s]
        else:
            start = max(live, default=-1) + 1 + step
            batch = [rng.choices(vocab, k=rng.randint(1, 15)) for _ in range(20)]
            idx.add(range(start, start + len(batch)), batch)
            live.update(zip(range(start, start + len(batch)), batch))
        if step == 20:
            idx.with_params(k1=0.9, b=0.3)
        assert_equal_to_rank_bm25(idx, live, queries)
