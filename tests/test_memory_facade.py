"""The VectorMemory facade: change detection, replacement, reopening, filtered search, and a
typed error (with the store left as it was) for every bad input."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _fixtures import CountingEmbedder, PoisonEmbedder

from vecmem import Document, VectorMemory
from vecmem.chunking import RecursiveSplitter
from vecmem.errors import (
    ConfigurationError,
    DimensionMismatchError,
    DocumentReadError,
    InvalidFilterError,
    InvalidInputError,
)
from vecmem.stores.embedded import EmbeddedStore
from vecmem.stores.memory import MemoryStore

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda omicron".split()


def long_text(n_words: int, tag: str) -> str:
    return " ".join(f"{tag}{WORDS[i % len(WORDS)]}{i}" for i in range(n_words))


@pytest.fixture(params=["memory", "embedded"])
def make_memory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., VectorMemory]:
    def make(embedder: Any = None, **kwargs: Any) -> VectorMemory:
        store = MemoryStore() if request.param == "memory" else EmbeddedStore(tmp_path / "kb")
        return VectorMemory(
            store=store,
            embedder=embedder or CountingEmbedder(64),
            chunker=kwargs.pop("chunker", RecursiveSplitter(200, 20)),
            **kwargs,
        )

    return make


def snapshot(mem: VectorMemory) -> list[tuple[str, str, str]]:
    chunks = mem.store.all_chunks()  # type: ignore[attr-defined]
    return sorted((c.id, c.text, json.dumps(dict(c.metadata), sort_keys=True)) for c in chunks)


# ----------------------------------------------------------------------------- change detection
def test_same_text_twice_is_a_no_op(make_memory: Callable[..., VectorMemory]) -> None:
    """Re-adding unchanged documents writes nothing and embeds nothing."""
    emb = CountingEmbedder(64)
    mem = make_memory(emb)
    docs = [Document(f"d{i}", long_text(60, f"t{i}"), {"i": i}) for i in range(5)]
    first = mem.add_documents(docs)
    assert first.added == 5 and first.skipped == 0 and first.chunks_written == len(mem)
    assert first.embedded == len(emb.texts) == len(mem) > 5
    calls = emb.calls
    again = mem.add_documents(docs)
    assert (again.added, again.skipped, again.chunks_written, again.embedded) == (0, 5, 0, 0)
    assert emb.calls == calls
    ids = mem.add(["plain text one", "plain text one again"])
    assert mem.add(["plain text one", "plain text one again"]) == ids  # content-hash ids
    assert emb.calls == calls + 1


def test_metadata_change_rewrites_without_re_embedding(
    make_memory: Callable[..., VectorMemory],
) -> None:
    emb = CountingEmbedder(64)
    mem = make_memory(emb)
    mem.add_documents([Document("d", long_text(50, "x"), {"v": 1})])
    n = len(emb.texts)
    res = mem.add_documents([Document("d", long_text(50, "x"), {"v": 2})])
    assert res.added == 1 and res.embedded == 0 and len(emb.texts) == n
    assert mem.count({"v": 2}) == len(mem) and mem.count({"v": 1}) == 0


def test_changed_document_replaces_its_chunks(make_memory: Callable[..., VectorMemory]) -> None:
    """Same id, shorter new text: the old extra chunks are gone, no orphans, no duplicates."""
    mem = make_memory()
    mem.add_documents(
        [
            Document("doc", long_text(150, "old"), {"v": 1}),
            Document("other", "unrelated neighbour text"),
        ]
    )
    old_n = len(mem.get("doc"))
    assert old_n >= 4
    res = mem.add_documents([Document("doc", long_text(30, "new"), {"v": 2})])
    chunks = mem.get("doc")
    assert 1 <= len(chunks) < old_n
    assert res.chunks_deleted == old_n - len(chunks)
    assert [c.id for c in chunks] == [f"doc#{i}" for i in range(len(chunks))]
    assert all(c.text.startswith("new") and c.metadata == {"v": 2} for c in chunks)
    assert len(mem) == len(chunks) + 1
    assert mem.search("oldalpha0 oldbeta1", mode="keyword") == []
    assert {h.document_id for h in mem.search("newalpha0", k=10)} >= {"doc"}


def test_reopen_after_restart(tmp_path: Path) -> None:
    """An embedded memory reopened from its folder (embedder picked from the record) answers
    exactly as before."""
    with VectorMemory(tmp_path / "kb", embedder="hashing-64") as mem:
        mem.add([long_text(40, f"d{i}") for i in range(20)], metadata={"src": "x"})
        before = [(h.id, round(h.score, 6)) for h in mem.search("d3alpha0 d3beta1", k=5)]
        count = len(mem)
    with VectorMemory(tmp_path / "kb") as mem:
        assert len(mem) == count
        assert [(h.id, round(h.score, 6)) for h in mem.search("d3alpha0 d3beta1", k=5)] == before
        mem.add(["one more"])
        assert len(mem) == count + 1


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_filtered_search_returns_k(make_memory: Callable[..., VectorMemory], mode: str) -> None:
    """A very selective filter still gives k hits (the filter applies before top-k)."""
    mem = make_memory()
    mem.add(
        [f"shared words text number {i}" for i in range(400)],
        metadata=[{"bucket": i % 100} for i in range(400)],
    )
    hits = mem.search("shared words", k=4, mode=mode, filter={"bucket": 7})  # type: ignore[arg-type]
    assert len(hits) == 4 and all(h.metadata["bucket"] == 7 for h in hits)
    hits = mem.search("shared words", k=10, mode=mode, filter={"bucket": {"$in": [1, 2]}})  # type: ignore[arg-type]
    assert len(hits) == 8


def test_delete_by_document_chunk_and_filter(make_memory: Callable[..., VectorMemory]) -> None:
    mem = make_memory()
    mem.add_documents(
        [
            Document("a", long_text(80, "a"), {"k": "a"}),
            Document("b", "bee text", {"k": "b"}),
            Document("c", "sea text", {"k": "c"}),
        ]
    )
    n_a = len(mem.get("a"))
    assert mem.delete("a") == n_a
    assert mem.get("a") == []
    assert mem.delete(["b#0"]) == 1
    assert mem.delete(filter={"k": "c"}) == 1
    assert len(mem) == 0
    assert mem.delete("missing") == 0


def test_search_modes_and_scores(make_memory: Callable[..., VectorMemory]) -> None:
    mem = make_memory()
    mem.add(["the quick brown fox", "a lazy dog sleeps", "quick quick fox jumps"])
    kw = mem.search("quick fox", mode="keyword")
    assert {h.text for h in kw} == {"the quick brown fox", "quick quick fox jumps"}
    assert all(h.scores.keyword is not None and h.scores.vector is None for h in kw)
    vec = mem.search("quick fox", mode="vector", k=3)
    assert len(vec) == 3 and all(h.scores.vector == h.score for h in vec)
    hyb = mem.search("quick fox", k=3)
    assert [h.score for h in hyb] == sorted((h.score for h in hyb), reverse=True)
    assert hyb[0].scores.fused == hyb[0].score


# ----------------------------------------------------------------------------- bad input
BAD_CALLS: list[tuple[str, Callable[[VectorMemory, Path], Any], type[Exception]]] = [
    ("empty text", lambda m, p: m.add([""]), InvalidInputError),
    ("blank text", lambda m, p: m.add(["ok", "  \n"]), InvalidInputError),
    ("non-str text", lambda m, p: m.add([b"bytes"]), InvalidInputError),  # type: ignore[list-item]
    ("empty document text", lambda m, p: m.add_documents([Document("x", "")]), InvalidInputError),
    ("empty document id", lambda m, p: m.add_documents([Document("", "t")]), InvalidInputError),
    (
        "duplicate ids",
        lambda m, p: m.add_documents([Document("x", "a"), Document("x", "b")]),
        InvalidInputError,
    ),
    ("ids length", lambda m, p: m.add(["a", "b"], ids=["1"]), InvalidInputError),
    ("metadata length", lambda m, p: m.add(["a", "b"], metadata=[{}]), InvalidInputError),
    ("metadata not a dict", lambda m, p: m.add(["a"], metadata=[["k"]]), InvalidInputError),  # type: ignore[list-item]
    ("metadata key", lambda m, p: m.add(["a"], metadata={1: "x"}), InvalidInputError),  # type: ignore[dict-item]
    ("metadata empty key", lambda m, p: m.add(["a"], metadata={"": "x"}), InvalidInputError),
    ("metadata value", lambda m, p: m.add(["a"], metadata={"k": {1, 2}}), InvalidInputError),
    ("metadata NaN", lambda m, p: m.add(["a"], metadata={"k": math.nan}), InvalidInputError),
    ("empty query", lambda m, p: m.search(""), InvalidInputError),
    ("blank query", lambda m, p: m.search("   "), InvalidInputError),
    ("k zero", lambda m, p: m.search("q", k=0), InvalidInputError),
    ("k negative", lambda m, p: m.search("q", k=-3), InvalidInputError),
    ("k float", lambda m, p: m.search("q", k=2.5), InvalidInputError),  # type: ignore[arg-type]
    ("k bool", lambda m, p: m.search("q", k=True), InvalidInputError),
    ("mode", lambda m, p: m.search("q", mode="fuzzy"), InvalidInputError),  # type: ignore[arg-type]
    (
        "unknown filter operator",
        lambda m, p: m.search("q", filter={"a": {"$like": "x"}}),
        InvalidFilterError,
    ),
    ("malformed filter", lambda m, p: m.count({"a": {"$in": 3}}), InvalidFilterError),
    ("delete filter", lambda m, p: m.delete(filter={"$nor": []}), InvalidFilterError),
    ("delete nothing", lambda m, p: m.delete(), InvalidInputError),
    ("NaN query vector", lambda m, p: m.search_by_vector([math.nan] * 64), InvalidInputError),
    ("query vector dim", lambda m, p: m.search_by_vector([0.1] * 63), DimensionMismatchError),
    ("rerank without reranker", lambda m, p: m.search("q", rerank=True), ConfigurationError),
    # on_error="raise": the first unreadable file raises and nothing is written (the default,
    # "report", lists it in the result and adds the others: tests/test_documents.py)
    (
        "non-UTF-8 file",
        lambda m, p: m.add_files(p / "latin1.txt", on_error="raise"),
        DocumentReadError,
    ),
    ("missing file", lambda m, p: m.add_files(p / "nope.txt"), DocumentReadError),
    (
        "unsupported file",
        lambda m, p: m.add_files(p / "data.bin", on_error="raise"),
        DocumentReadError,
    ),
    ("bad JSONL", lambda m, p: m.add_files(p / "bad.jsonl", on_error="raise"), DocumentReadError),
    (
        "JSON without text",
        lambda m, p: m.add_files(p / "notext.json", on_error="raise"),
        DocumentReadError,
    ),
    ("folder with a bad file", lambda m, p: m.add_files(p, on_error="raise"), DocumentReadError),
    ("on_error value", lambda m, p: m.add_files(p, on_error="ignore"), InvalidInputError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize("label,call,error", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_input_raises_typed_error_and_changes_nothing(
    make_memory: Callable[..., VectorMemory],
    tmp_path: Path,
    label: str,
    call: Callable[[VectorMemory, Path], Any],
    error: type[Exception],
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "good.txt").write_text("a good file that would be added")
    (files / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (files / "data.bin").write_bytes(b"\x00\x01")
    (files / "bad.jsonl").write_text('{"text": "fine"}\n{not json\n')
    (files / "notext.json").write_text('[{"title": "no text field"}]')
    mem = make_memory()
    mem.add_documents([Document("kept", "text already stored", {"k": 1})])
    before = snapshot(mem)
    with pytest.raises(error) as info:
        call(mem, files)
    assert str(info.value)
    assert snapshot(mem) == before


def test_poisoned_batch_leaves_store_unchanged(make_memory: Callable[..., VectorMemory]) -> None:
    """An embedder failing on one text of a batch (NaN) aborts the whole write: earlier documents
    of the batch are not written and a document being replaced keeps its old chunks."""
    mem = make_memory(PoisonEmbedder(64))
    mem.add_documents([Document("a", long_text(60, "old")), Document("b", "bee")])
    before = snapshot(mem)
    with pytest.raises(InvalidInputError):
        mem.add_documents(
            [
                Document("a", "replacement text"),
                Document("new", "fresh text"),
                Document("bad", "this one is POISON"),
            ]
        )
    assert snapshot(mem) == before


def test_failure_in_a_later_batch_leaves_no_orphans() -> None:
    """Each store write holds whole documents with their stale-chunk removals: a failure in a
    later write leaves every document either fully old or fully new."""
    mem = VectorMemory(
        store=MemoryStore(), embedder=PoisonEmbedder(32), chunker=RecursiveSplitter(40, 0)
    )
    mem.add_documents([Document("a", long_text(40, "old"))])
    docs = [Document("a", "short now")] + [
        Document(f"n{i}", f"filler text {i}") for i in range(300)
    ]
    docs.append(Document("z", "POISON at the end"))
    with pytest.raises(InvalidInputError):
        mem.add_documents(docs)
    chunks = mem.get("a")
    assert all(c.text.startswith("old") for c in chunks) or [c.text for c in chunks] == [
        "short now"
    ]


def test_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        VectorMemory(tmp_path / "kb", store=MemoryStore(), embedder="hashing-8")
    with pytest.raises(ConfigurationError):
        VectorMemory(store=MemoryStore(), embedder="hashing-8", candidates=0)
    with pytest.raises(ConfigurationError):
        VectorMemory(store=object(), embedder="hashing-8")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        VectorMemory("nosuchscheme://x", embedder="hashing-8")


def test_add_files_reads_text_markdown_and_jsonl(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Title\n\nMarkdown body about vectors.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Plain text about keywords. ünïcödé ✓")
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"_id": "j1", "title": "T", "text": "json line", "metadata": {"n": 1}}) + "\n"
    )
    mem = VectorMemory(store=MemoryStore(), embedder="hashing-32")
    res = mem.add_files(tmp_path, metadata={"batch": 7})
    assert res.added == 3
    assert mem.count({"batch": 7}) == 3
    assert mem.get("j1")[0].text == "T json line" and mem.get("j1")[0].metadata["n"] == 1
    hit = mem.search("keywords", mode="keyword", k=1)[0]
    assert hit.metadata["source"].endswith("b.txt") and "✓" in hit.text
    assert mem.add_files(tmp_path, metadata={"batch": 7}).skipped == 3  # unchanged: skipped


def test_search_by_vector(make_memory: Callable[..., VectorMemory]) -> None:
    emb = CountingEmbedder(64)
    mem = make_memory(emb)
    mem.add(["red apples", "green pears", "blue berries"])
    q = emb.inner.embed(["green pears"])[0]
    hits = mem.search_by_vector(q, k=2)
    assert hits[0].text == "green pears" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(mem.search_by_vector(np.asarray(q), k=2, filter={"$not": {"x": 1}})) == 2
