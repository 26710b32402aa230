"""The invariants of LangChain's standard vector-store suite, ported to LlamaIndex (idempotent add
by id, overwrite, deleting a missing id, exact metadata round-trip, filters, hybrid, async), plus
filters checked against LlamaIndex's own filter semantics -- on the embedded default and on
PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn
from llama_index.vector_stores.vecmem import VecmemVectorStore, to_vecmem_filter

from vecmem.embedders import HashingEmbedder
from vecmem.errors import (
    ConfigurationError,
    DimensionMismatchError,
    InvalidFilterError,
    InvalidInputError,
    UnsupportedFilterError,
)

EMB = HashingEmbedder(dim=64)

ROWS: list[tuple[str, str, str, dict[str, Any]]] = [  # node id, ref doc, text, metadata
    (
        "n1",
        "docA",
        "the cat sat on the mat",
        {"kind": "pet", "year": 2019, "tags": ["cat"], "score": 0.5},
    ),
    (
        "n2",
        "docA",
        "dogs chase cats in the garden",
        {"kind": "pet", "year": 2021, "tags": ["dog", "cat"], "score": 1.5},
    ),
    (
        "n3",
        "docB",
        "vector databases store embeddings",
        {"kind": "db", "year": 2022, "tags": ["vector"], "score": 2.5},
    ),
    (
        "n4",
        "docB",
        "postgres can store vectors with pgvector",
        {"kind": "db", "year": 2024, "tags": ["vector", "sql"]},
    ),
    (
        "n5",
        "docC",
        "a zebra named quillfeather lives in the zoo",
        {"kind": "zoo", "year": 2020, "tags": [], "note": None},
    ),
]


def make_node(node_id: str, doc: str, text: str, meta: dict[str, Any]) -> TextNode:
    return TextNode(
        id_=node_id,
        text=text,
        metadata=dict(meta),
        embedding=EMB.embed([text])[0].tolist(),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
    )


def nodes() -> list[TextNode]:
    return [make_node(*row) for row in ROWS]


def vq(text: str | None = None, k: int = 5, **kwargs: Any) -> VectorStoreQuery:
    emb = EMB.embed([text])[0].tolist() if text else None
    return VectorStoreQuery(query_embedding=emb, query_str=text, similarity_top_k=k, **kwargs)


def F(key: str, value: Any, op: str = "==") -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=FilterOperator(op))


def ids_of(vs: VecmemVectorStore, filters: MetadataFilters) -> set[str]:
    return {n.node_id for n in vs.get_nodes(filters=filters)}


def open_store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> VecmemVectorStore:
    if backend == "embedded":
        return VecmemVectorStore(tmp_path / "kb")
    url = request.getfixturevalue("postgres_url")
    return VecmemVectorStore(f"{url}?collection=li_{uuid.uuid4().hex[:12]}")


def dispose(vs: VecmemVectorStore) -> None:
    drop = getattr(vs.client, "drop", None)
    if drop is not None:
        drop()
    vs.close()


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.server)])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VecmemVectorStore]:
    vs = open_store(request.param, request, tmp_path)
    try:
        yield vs
    finally:
        dispose(vs)


@pytest.fixture
def store(empty: VecmemVectorStore) -> VecmemVectorStore:
    empty.add(nodes())
    return empty


# ---------------------------------------------------------------- the standard invariants
def test_empty_store_returns_nothing(empty: VecmemVectorStore) -> None:
    result = empty.query(vq("cats"))
    assert result.nodes == [] and result.ids == []
    assert empty.get_nodes() == []
    empty.delete("no-such-doc")
    empty.clear()


def test_add_by_id_is_idempotent(store: VecmemVectorStore) -> None:
    first = store.query(vq("cats in the garden"))
    assert store.add(nodes()) == [r[0] for r in ROWS]
    again = store.query(vq("cats in the garden"))
    assert again.ids == first.ids and len(store.get_nodes()) == len(ROWS)
    assert again.similarities == pytest.approx(first.similarities)


def test_add_by_id_overwrites(store: VecmemVectorStore) -> None:
    store.add([make_node("n1", "docA", "new text about owls", {"kind": "bird", "extra": 1})])
    (node,) = store.get_nodes(node_ids=["n1"])
    assert node.get_content() == "new text about owls"
    assert node.metadata == {"kind": "bird", "extra": 1}
    top = store.query(vq("new text about owls", k=2))
    assert top.ids[0] == "n1" and top.similarities[0] == pytest.approx(1.0, abs=1e-5)
    assert len(store.get_nodes()) == len(ROWS)


def test_deleting_missing_ids_does_not_raise(store: VecmemVectorStore) -> None:
    store.delete("missing-doc")
    store.delete_nodes(node_ids=["missing", "n9"])
    assert len(store.get_nodes()) == len(ROWS)


def test_metadata_and_relationships_round_trip(store: VecmemVectorStore) -> None:
    got = {n.node_id: n for n in store.get_nodes(node_ids=["n3", "n5", "nope"])}
    assert set(got) == {"n3", "n5"}
    for node_id, doc, text, meta in ROWS:
        if node_id not in got:
            continue
        node = got[node_id]
        assert isinstance(node, TextNode)
        assert node.get_content() == text and node.metadata == meta and node.ref_doc_id == doc
        assert node.embedding is None
    assert type(got["n3"].metadata["year"]) is int
    assert type(got["n3"].metadata["score"]) is float and got["n5"].metadata["note"] is None
    result = store.query(vq(ROWS[2][2], k=1))
    assert result.nodes[0].metadata == ROWS[2][3] and result.nodes[0].ref_doc_id == "docB"


def test_results_in_similarity_order_with_cosine_scores(store: VecmemVectorStore) -> None:
    result = store.query(vq("store vectors in postgres", k=5))
    assert result.similarities == sorted(result.similarities, reverse=True)
    q = EMB.embed(["store vectors in postgres"])[0]
    for node_id, sim in zip(result.ids, result.similarities):
        text = next(r[2] for r in ROWS if r[0] == node_id)
        assert sim == pytest.approx(float(EMB.embed([text])[0] @ q), abs=1e-5)


def test_delete_by_ref_doc_id_removes_only_that_document(store: VecmemVectorStore) -> None:
    store.delete("docA")
    assert {n.node_id for n in store.get_nodes()} == {"n3", "n4", "n5"}
    assert not {"n1", "n2"} & set(store.query(vq("cats", k=5)).ids)


def test_delete_nodes_ids_filters_and_both(store: VecmemVectorStore) -> None:
    pets = MetadataFilters(filters=[F("kind", "pet")])
    store.delete_nodes(node_ids=["n1", "n3"], filters=pets)  # both: the listed nodes that match
    assert {n.node_id for n in store.get_nodes()} == {"n2", "n3", "n4", "n5"}
    store.delete_nodes(filters=MetadataFilters(filters=[F("kind", "db")]))
    assert {n.node_id for n in store.get_nodes()} == {"n2", "n5"}
    store.delete_nodes(node_ids=["n2"])
    assert {n.node_id for n in store.get_nodes()} == {"n5"}
    with pytest.raises(InvalidInputError):
        store.delete_nodes()
    store.clear()
    assert store.get_nodes() == []


def test_bad_input_raises_and_stores_nothing(store: VecmemVectorStore) -> None:
    no_embedding = TextNode(id_="x1", text="no vector")
    with pytest.raises(InvalidInputError):
        store.add([make_node("ok", "d", "fine text", {}), no_embedding])
    with pytest.raises(InvalidInputError):
        store.add([make_node("dup", "d", "a", {}), make_node("dup", "d", "b", {})])
    with pytest.raises(DimensionMismatchError):
        store.add([TextNode(id_="short", text="short", embedding=[1.0, 0.0])])
    with pytest.raises(DimensionMismatchError):
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], similarity_top_k=1))
    with pytest.raises(ConfigurationError):
        store.query(vq("cats", mode=VectorStoreQueryMode.SVM))
    with pytest.raises(ConfigurationError):
        store.query(vq("cats"), where={"kind": "pet"})
    with pytest.raises(InvalidInputError):
        store.query(vq("cats", k=0))
    assert len(store.get_nodes()) == len(ROWS)


# ---------------------------------------------------------------- filters
FLAT_FILTERS = [
    [F("kind", "pet")],
    [F("kind", "pet", "!=")],
    [F("year", 2021, ">")],
    [F("year", 2021, ">=")],
    [F("year", 2021, "<")],
    [F("score", 1.5, "<=")],
    [F("kind", ["db", "zoo"], "in")],
    [F("kind", ["db", "zoo"], "nin")],
    [F("tags", "cat", "contains")],
    [F("tags", ["sql", "dog"], "any")],
    [F("tags", ["vector", "sql"], "all")],
    [F("score", 1.0, ">"), F("kind", "pet")],
    [F("missing", "x", "!=")],
    [F("missing", ["x"], "nin")],
    [F("missing", 3, ">")],
]


@pytest.mark.parametrize("condition", ["and", "or", "not"])
def test_filters_agree_with_llama_index_semantics(store: VecmemVectorStore, condition: str) -> None:
    meta = {r[0]: r[3] for r in ROWS}
    for flat in FLAT_FILTERS:
        filters = MetadataFilters(filters=flat, condition=FilterCondition(condition))
        expected = {i for i in meta if build_metadata_filter_fn(meta.__getitem__, filters)(i)}
        assert ids_of(store, filters) == expected, (condition, flat)
        result = store.query(vq("cats and vectors", k=1, filters=filters))
        assert result.ids == [] if not expected else result.ids[0] in expected


def test_nested_and_or_not(store: VecmemVectorStore) -> None:
    nested = MetadataFilters(
        filters=[
            MetadataFilters(
                filters=[F("kind", "db"), F("year", 2023, ">")], condition=FilterCondition.AND
            ),
            MetadataFilters(filters=[F("tags", "dog", "contains")], condition=FilterCondition.NOT),
        ],
        condition=FilterCondition.OR,
    )
    assert to_vecmem_filter(nested) == {
        "$or": [
            {"$and": [{"kind": {"$eq": "db"}}, {"year": {"$gt": 2023}}]},
            {"$not": {"tags": {"$contains": "dog"}}},
        ]
    }
    assert ids_of(store, nested) == {"n1", "n3", "n4", "n5"}
    both = MetadataFilters(filters=[nested, F("year", 2020, ">=")])
    assert ids_of(store, both) == {"n3", "n4", "n5"}
    assert to_vecmem_filter(MetadataFilters(filters=[])) is None


@pytest.mark.parametrize(
    "bad",
    [
        F("kind", "pe", "text_match"),
        F("kind", "PE", "text_match_insensitive"),
        F("note", None, "is_empty"),
        F("kind", "m", ">"),
    ],
    ids=["text_match", "text_match_insensitive", "is_empty", "string_comparison"],
)
def test_inexpressible_filters_raise_never_drop(
    store: VecmemVectorStore, bad: MetadataFilter
) -> None:
    filters = MetadataFilters(filters=[F("kind", "pet"), bad], condition=FilterCondition.OR)
    with pytest.raises(UnsupportedFilterError):
        store.query(vq("cats", filters=filters))
    with pytest.raises(UnsupportedFilterError):
        store.delete_nodes(filters=filters)
    with pytest.raises(UnsupportedFilterError):
        store.get_nodes(filters=filters)
    assert len(store.get_nodes()) == len(ROWS)


def test_malformed_filter_values_raise(store: VecmemVectorStore) -> None:
    with pytest.raises(InvalidFilterError):
        store.get_nodes(filters=MetadataFilters(filters=[F("tags", "cat", "any")]))
    with pytest.raises(InvalidFilterError):
        store.get_nodes(filters=MetadataFilters(filters=[MetadataFilters(filters=[])]))


def test_doc_ids_and_node_ids_restrict_queries(store: VecmemVectorStore) -> None:
    assert set(store.query(vq("cats", doc_ids=["docB", "docC"])).ids) == {"n3", "n4", "n5"}
    result = store.query(vq("cats", k=2, node_ids=["n5", "n2", "n4"]))
    assert result.ids == ["n2", "n5"] or result.ids == ["n2", "n4"]
    assert result.ids[0] == "n2"
    with pytest.raises(UnsupportedFilterError):
        store.query(vq("cats", node_ids=["n1"], mode=VectorStoreQueryMode.HYBRID))
    # VectorStoreIndex.as_retriever sends empty lists meaning "no restriction"
    assert len(store.query(vq("cats", node_ids=[], doc_ids=[])).ids) == len(ROWS)


# ---------------------------------------------------------------- hybrid, sparse, mmr
def test_hybrid_alpha_and_sparse(store: VecmemVectorStore) -> None:
    hybrid = VectorStoreQueryMode.HYBRID
    keyword_only = store.query(vq("quillfeather zebra", k=2, mode=hybrid, alpha=0.0))
    assert keyword_only.ids[0] == "n5"
    # alpha=1: the vector ranking (top 2: the rest tie at similarity 0)
    vector_only = store.query(vq("store vectors", k=2, mode=hybrid, alpha=1.0))
    assert vector_only.ids == store.query(vq("store vectors", k=2)).ids == ["n3", "n4"]
    default = store.query(vq("quillfeather", k=3, mode=hybrid))  # the store's fusion
    assert default.ids[0] == "n5"
    assert default.similarities == sorted(default.similarities, reverse=True)
    filtered = store.query(
        vq(
            "quillfeather",
            k=2,
            mode=hybrid,
            alpha=0.5,
            filters=MetadataFilters(filters=[F("kind", "db")]),
        )
    )
    assert set(filtered.ids) <= {"n3", "n4"} and filtered.ids
    sparse = store.query(
        VectorStoreQuery(
            query_str="cats garden", similarity_top_k=5, mode=VectorStoreQueryMode.SPARSE
        )
    )
    assert sparse.ids[0] == "n2" and set(sparse.ids) <= {"n1", "n2"}
    with pytest.raises(InvalidInputError):
        store.query(VectorStoreQuery(query_embedding=vq("x").query_embedding, mode=hybrid))


def test_mmr_prefers_diverse_nodes(empty: VecmemVectorStore) -> None:
    rows = [
        ("p1", "apple pie recipe"),
        ("p2", "apple pie recipe with cinnamon"),
        ("p3", "apple pie recipe easy"),
        ("orchard", "apple orchard tour"),
    ]
    empty.add([make_node(i, "d", t, {}) for i, t in rows])
    plain = empty.query(vq("apple pie recipe", k=2)).ids
    mmr = empty.query(
        vq("apple pie recipe", k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=0.3)
    ).ids
    assert plain[0] == mmr[0] == "p1" and mmr[1] == "orchard" and plain[1] != "orchard"
    relevance = empty.query(
        vq("apple pie recipe", k=2, mode=VectorStoreQueryMode.MMR, mmr_threshold=1.0),
        mmr_prefetch_k=4,
    ).ids
    assert relevance == plain


# ---------------------------------------------------------------- async
def test_async_variants(empty: VecmemVectorStore) -> None:
    async def run() -> None:
        assert await empty.async_add(nodes()) == [r[0] for r in ROWS]
        assert (await empty.aquery(vq("quillfeather", k=1))).ids == ["n5"]
        assert [n.node_id for n in await empty.aget_nodes(node_ids=["n4"])] == ["n4"]
        await empty.adelete("docA")
        await empty.adelete_nodes(filters=MetadataFilters(filters=[F("kind", "db")]))
        assert [n.node_id for n in await empty.aget_nodes()] == ["n5"]
        await empty.aclear()
        assert await empty.aget_nodes() == []

    asyncio.run(run())


def test_persists_across_reopen_and_refuses_another_dimension(tmp_path: Path) -> None:
    vs = VecmemVectorStore(tmp_path / "kb")
    vs.add(nodes())
    vs.close()
    again = VecmemVectorStore(tmp_path / "kb")
    assert again.query(vq("quillfeather", k=1)).ids == ["n5"]
    with pytest.raises(DimensionMismatchError):
        again.add([TextNode(id_="x", text="x", embedding=list(np.ones(8)))])
    again.close()
