"""``vecmem.Knowledge``, the agent-facing knowledge base: insert text, files and folders with
metadata, skip unchanged content, search with ``max_results``/``filters``, async twins, and the
retriever/tool an agent calls -- on the embedded default and on PostgreSQL (``PgVector``)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vecmem import Knowledge
from vecmem.errors import InvalidFilterError, InvalidInputError
from vecmem.rerank import MMRReranker
from vecmem.types import Document

EMBEDDER = "hashing-256"  # deterministic and fast; the MiniLM path is covered by the store tests


def _open(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, **options: object
) -> Knowledge:
    if backend == "embedded":
        return Knowledge(tmp_path / "kb", embedder=EMBEDDER, **options)  # type: ignore[arg-type]
    from vecmem.stores import PgVector

    url = request.getfixturevalue("postgres_url")
    store = PgVector(db_url=url, table=f"kb_{uuid.uuid4().hex[:12]}")
    return Knowledge(vector_db=store, embedder=EMBEDDER, **options)  # type: ignore[arg-type]


BACKENDS = ["embedded", pytest.param("postgres", marks=pytest.mark.server)]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def kb(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Knowledge]:
    k = _open(backend, tmp_path, request)
    try:
        yield k
    finally:
        drop = getattr(k.memory.store, "drop", None)
        if drop is not None:
            drop()
        k.close()


@pytest.fixture
def docs_dir(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "ops").mkdir(parents=True)
    (root / "ops" / "deploy.md").write_text(
        "# Deploying\n\nWe deploy with blue green releases behind the load balancer.\n"
    )
    (root / "ops" / "oncall.txt").write_text("The oncall rotation changes every monday.\n")
    (root / "faq.md").write_text("Refunds are processed within five business days.\n")
    (root / "notes.bin").write_bytes(b"\x00\x01 not a supported file type")
    return root


# ---------------------------------------------------------------- insert
def test_insert_text_with_metadata_and_name(kb: Knowledge) -> None:
    res = kb.insert(
        text="Quillfeather the zebra lives in the city zoo.",
        metadata={"team": "zoo", "year": 2024},
        name="zebra",
    )
    assert res.document_ids == ["zebra"] and res.added == 1
    hit = kb.search("zebra zoo", max_results=1)[0]
    assert hit.document_id == "zebra"
    assert dict(hit.metadata) == {"team": "zoo", "year": 2024, "name": "zebra"}
    assert type(hit.metadata["year"]) is int


def test_insert_several_texts_gives_each_its_own_document(kb: Knowledge) -> None:
    res = kb.insert(text=["alpha particles", "beta decay", "gamma rays"], metadata={"k": "phys"})
    assert len(set(res.document_ids)) == 3 and res.added == 3
    assert len(kb) == 3
    assert {h.text for h in kb.search("decay rays particles", max_results=5)} == {
        "alpha particles",
        "beta decay",
        "gamma rays",
    }


def test_insert_a_directory_walks_supported_files_with_metadata(
    kb: Knowledge, docs_dir: Path
) -> None:
    res = kb.insert(path=docs_dir, metadata={"team": "search"})
    assert res.added == 3  # notes.bin is not a supported file type
    hits = kb.search("blue green deploy load balancer", max_results=3)
    top = hits[0]
    assert top.document_id == str((docs_dir / "ops" / "deploy.md").resolve())
    assert top.metadata["team"] == "search"
    assert top.metadata["source"] == str(docs_dir / "ops" / "deploy.md")


def test_insert_one_file_and_documents(kb: Knowledge, docs_dir: Path) -> None:
    kb.insert(path=docs_dir / "faq.md", metadata={"kind": "faq"})
    kb.insert(
        documents=[
            Document("policy-7", "Laptops are replaced every three years.", {"kind": "policy"})
        ]
    )
    assert len(kb) == 2
    assert kb.search("laptops replaced", max_results=1)[0].document_id == "policy-7"
    assert kb.search("refunds", max_results=1)[0].metadata["kind"] == "faq"


def test_unchanged_content_is_skipped_and_changed_content_replaced(
    kb: Knowledge, docs_dir: Path
) -> None:
    first = kb.insert(path=docs_dir, metadata={"team": "search"})
    again = kb.insert(path=docs_dir, metadata={"team": "search"})
    assert (again.added, again.skipped, again.chunks_written, again.embedded) == (0, 3, 0, 0)
    (docs_dir / "faq.md").write_text("Refunds now take ten business days.\n")
    changed = kb.insert(path=docs_dir, metadata={"team": "search"})
    assert (changed.added, changed.skipped) == (1, 2)
    assert len(kb) == first.chunks_written  # replaced in place, nothing left behind
    faq = [
        h
        for h in kb.search("refunds business days", max_results=5)
        if h.document_id.endswith("faq.md")
    ]
    assert [h.text for h in faq] == ["Refunds now take ten business days."]


def test_new_metadata_is_not_skipped(kb: Knowledge) -> None:
    kb.insert(text="the cafeteria opens at eight", name="cafe", metadata={"v": 1})
    res = kb.insert(text="the cafeteria opens at eight", name="cafe", metadata={"v": 2})
    assert res.added == 1
    assert kb.search("cafeteria", max_results=1)[0].metadata["v"] == 2


def test_skip_if_exists_false_rewrites(kb: Knowledge) -> None:
    kb.insert(text="rewrite me please", name="r")
    res = kb.insert(text="rewrite me please", name="r", skip_if_exists=False)
    assert (res.added, res.skipped, res.chunks_written) == (1, 0, 1)
    assert len(kb) == 1


def test_insert_needs_something_and_typed_errors_leave_the_store_unchanged(
    kb: Knowledge, tmp_path: Path
) -> None:
    kb.insert(text="kept", name="kept")
    with pytest.raises(InvalidInputError):
        kb.insert()
    with pytest.raises(InvalidInputError):
        kb.insert(text="   ")
    with pytest.raises(InvalidInputError):
        kb.insert(text="x", metadata={"bad": object()})
    from vecmem.errors import DocumentReadError

    with pytest.raises(DocumentReadError):
        kb.insert(path=tmp_path / "missing-folder")
    assert [h.document_id for h in kb.search("kept", max_results=5)] == ["kept"]


# ---------------------------------------------------------------- search
@pytest.fixture
def filled(kb: Knowledge) -> Knowledge:
    kb.insert(
        documents=[
            Document("d1", "postgres stores vectors with pgvector", {"kind": "db", "year": 2022}),
            Document("d2", "qdrant stores vectors in segments", {"kind": "db", "year": 2024}),
            Document("d3", "cats chase mice in the garden", {"kind": "pet", "year": 2023}),
            Document("d4", "vectors of dogs chasing cats", {"kind": "pet", "year": 2020}),
        ]
    )
    return kb


def test_search_max_results_and_default(filled: Knowledge) -> None:
    assert len(filled.search("vectors", max_results=2)) == 2
    assert len(filled.search("vectors")) == 4  # default max_results=10: every chunk
    filled.max_results = 1
    assert len(filled.search("vectors")) == 1


def test_search_filters_apply_before_top_k(filled: Knowledge) -> None:
    hits = filled.search("vectors", max_results=10, filters={"kind": "pet"})
    assert {h.document_id for h in hits} == {"d3", "d4"}
    hits = filled.search("vectors", max_results=1, filters={"year": {"$gte": 2023}, "kind": "db"})
    assert [h.document_id for h in hits] == ["d2"]
    assert filled.search("vectors", filters={"kind": "none"}) == []


def test_bad_filters_raise_typed_errors(filled: Knowledge) -> None:
    with pytest.raises(InvalidFilterError):
        filled.search("vectors", filters={"year": {"$between": [1, 2]}})


def test_search_modes(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    kb = _open(backend, tmp_path, request, search_mode="keyword")
    try:
        kb.insert(text=["zebra crossing", "lion pride"])
        assert [h.text for h in kb.search("zebra")] == ["zebra crossing"]  # keyword: term match
        assert kb.search("zebra")[0].scores.keyword is not None
    finally:
        getattr(kb.memory.store, "drop", lambda: None)()
        kb.close()


def test_reranker_reorders_within_the_filter(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    kb = _open(backend, tmp_path, request, reranker=MMRReranker(lambda_mult=0.3))
    try:
        kb.insert(
            documents=[
                Document("a", "vector search with postgres", {"k": 1}),
                Document("b", "vector search with postgres!", {"k": 1}),
                Document("c", "vector search engines in rust", {"k": 1}),
                Document("z", "vector search with postgres?", {"k": 2}),
            ]
        )
        hits = kb.search("vector search with postgres", max_results=2, filters={"k": 1})
        assert {h.document_id for h in hits} <= {"a", "b", "c"}
        assert all(h.scores.rerank is not None for h in hits)
        assert "c" in {h.document_id for h in hits}  # MMR trades a near-duplicate for novelty
    finally:
        getattr(kb.memory.store, "drop", lambda: None)()
        kb.close()


def test_delete_by_ids_and_filter(filled: Knowledge) -> None:
    assert filled.delete(["d1"]) == 1
    assert filled.delete(filters={"kind": "pet"}) == 2
    assert [h.document_id for h in filled.search("vectors")] == ["d2"]


# ---------------------------------------------------------------- async twins
def test_async_twins(kb: Knowledge, docs_dir: Path) -> None:
    async def run() -> None:
        res = await kb.ainsert(path=docs_dir, metadata={"team": "ops"})
        assert res.added == 3
        again = await kb.ainsert(path=docs_dir, metadata={"team": "ops"})
        assert again.skipped == 3
        both = await asyncio.gather(
            kb.asearch("oncall rotation monday", max_results=1),
            kb.asearch("refunds", max_results=1, filters={"team": "ops"}),
        )
        assert both[0][0].document_id.endswith("oncall.txt")
        assert both[1][0].document_id.endswith("faq.md")
        assert await kb.asearch("refunds", filters={"team": "other"}) == []

    asyncio.run(run())


# ---------------------------------------------------------------- agent tools
def test_retriever_returns_plain_dicts(filled: Knowledge) -> None:
    out = filled.retriever("cats mice garden", num_documents=2)
    assert len(out) == 2
    assert set(out[0]) == {"id", "content", "metadata", "score"}
    assert out[0]["content"] == "cats chase mice in the garden"
    assert out[0]["metadata"] == {"kind": "pet", "year": 2023}
    assert out[0]["score"] >= out[1]["score"]
    json.dumps(out)  # what an agent framework serialises


def test_as_tool_is_a_named_documented_function_returning_json(filled: Knowledge) -> None:
    filled.name = "handbook"
    tool = filled.as_tool()
    assert tool.__name__ == "search_handbook"
    assert tool.__doc__ and "knowledge base" in tool.__doc__
    got = json.loads(tool("qdrant segments"))
    assert got[0]["id"] == "d2#0" and got[0]["metadata"]["year"] == 2024


def test_invalid_max_results() -> None:
    with pytest.raises(InvalidInputError):
        Knowledge(None, embedder=EMBEDDER, max_results=0)
