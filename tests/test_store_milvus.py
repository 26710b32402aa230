"""The conformance suites on Milvus through Milvus Lite (the real engine, embedded), plus what
only this adapter has: URLs, the typed filter expressions, writes by another client."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (pip install 'vecmem[milvus]')")
pytest.importorskip(
    "milvus_lite", reason="milvus-lite is not installed (pip install 'vecmem[milvus]')"
)

from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.filters import parse_filter
from vecmem.stores import open_store
from vecmem.stores.milvus import Milvus, to_expr
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import SPACE, StoreFactory, make_chunks, unit_vectors
from vecmem.types import Chunk


class TestMilvusLite(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: Milvus(str(tmp_path / "milvus.db"), collection="suite")


class TestMilvusLiteCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: Milvus(str(tmp_path / "milvus.db"), collection="congruence")


@pytest.mark.parametrize(
    "url,want",
    [
        ("milvus:///srv/milvus.db?collection=kb", {"uri": "/srv/milvus.db", "collection": "kb"}),
        ("milvus://./rel.db", {"uri": "./rel.db", "collection": "vecmem"}),
        (
            "milvus+http://db.local?collection=c1",
            {"uri": "http://db.local:19530", "collection": "c1"},
        ),
        ("milvus+https://cloud.example:443", {"uri": "https://cloud.example:443"}),
    ],
)
def test_urls_pick_the_engine(url: str, want: dict[str, object]) -> None:
    store = open_store(url)
    assert isinstance(store, Milvus)
    for key, value in want.items():
        assert getattr(store, key) == value, key
    assert store.capabilities.concurrent_writers == url.startswith("milvus+")


@pytest.mark.parametrize("url", ["milvus://", "milvus+http://", "milvus:///x.db?colection=y"])
def test_bad_urls_raise(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_collection_names_are_checked() -> None:
    for bad in ("", "a-b", "1abc", "a b"):
        with pytest.raises(ConfigurationError):
            Milvus("./x.db", collection=bad)


def test_filter_expressions_keep_types_apart() -> None:
    """Milvus compares true == 1 and leaves conditions on missing keys undecided; the
    translation must read booleans and numbers from their own keys and guard every leaf."""
    assert to_expr(parse_filter({"flag": 1})) == '((exists f["n_flag"] and f["n_flag"] == 1))'
    assert to_expr(parse_filter({"flag": True})) == '((exists f["b_flag"] and f["b_flag"] == true))'
    assert to_expr(parse_filter({'q"\\': "x"})) == (
        '((exists f["s_q\\"\\\\"] and f["s_q\\"\\\\"] == "x"))'
    )


def test_odd_keys_and_negations_on_the_engine(tmp_path: Path) -> None:
    """Keys with quotes and backslashes address that key; $ne matches chunks without it."""
    store = Milvus(str(tmp_path / "m.db"))
    store.connect(SPACE)
    store.upsert(
        [
            Chunk.create("a", 0, "x", {'q"\\': 1, "flag": True}),
            Chunk.create("b", 0, "y", {"flag": 1}),
        ],
        unit_vectors(2),
    )
    assert store.count(parse_filter({'q"\\': 1})) == 1
    assert [c.id for c in store.get(["a#0", "b#0"])] == ["a#0", "b#0"]
    assert store.count(parse_filter({'q"\\': {"$ne": 1}})) == 1
    assert store.count(parse_filter({"flag": 1})) == 1
    assert store.count(parse_filter({"flag": {"$nin": [True]}})) == 1
    store.close()


def test_writes_by_another_client_reach_the_keyword_leg(tmp_path: Path) -> None:
    """A write through a second store object on the same collection shows in the first one's
    BM25 leg on its next search (the vecmem_gen token)."""
    first = Milvus(str(tmp_path / "m.db"))
    first.connect(SPACE)
    first.upsert(make_chunks(3, texts=["alpha", "beta", "gamma"]), unit_vectors(3))
    assert [c.id for c, _ in first.keyword("alpha", k=3)] == ["doc0#0"]
    second = Milvus(str(tmp_path / "m.db"))
    second.connect(SPACE)
    second.upsert(make_chunks(1, start=3, texts=["zebra"]), unit_vectors(1), delete_ids=["doc0#0"])
    assert [c.id for c, _ in first.keyword("zebra", k=3)] == ["doc3#0"]
    assert first.keyword("alpha", k=3) == []


def test_registered_by_name(tmp_path: Path) -> None:
    from vecmem.registry import KNOWLEDGE_STORES

    store = KNOWLEDGE_STORES.create("milvus", uri=str(tmp_path / "m.db"), collection="kb")
    assert isinstance(store, Milvus) and store.collection == "kb"


class TestMilvusLiteHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: Milvus(str(tmp_path / "milvus.db"), collection="hostile")


@pytest.mark.parametrize("doc_id", ['"', 'say "hi"', "back\\slash"])
def test_ids_milvus_cannot_page_past_are_refused_before_writing(
    tmp_path: Path, doc_id: str
) -> None:
    """pymilvus pages scans with an unescaped `id > "<last id>"`: an id holding a quote or a
    backslash would break every later scan of the collection, so it is refused, store unchanged."""
    store = Milvus(str(tmp_path / "m.db"))
    store.connect(SPACE)
    store.upsert(make_chunks(3), unit_vectors(3))
    with pytest.raises(InvalidInputError, match="quote or backslash"):
        store.upsert([Chunk.create(doc_id, 0, "text")], unit_vectors(1))
    assert store.count() == 3
    assert len(store.get_by_document(["doc1"])) == 1
    store.close()
