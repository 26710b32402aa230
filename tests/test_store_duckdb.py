"""The conformance suites on DuckDB (in a file and in memory), plus what
only this adapter has: URLs, its filter SQL, the lock error, writes by another store object."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("duckdb", reason="duckdb is not installed (pip install 'vecmem[duckdb]')")

from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import StoreFactory


class TestDuckDbFile(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        from vecmem.stores.duckdb import DuckDb

        return lambda: DuckDb(str(tmp_path / "kb.duckdb"), table="suite")


class TestDuckDbMemory(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        from vecmem.stores.duckdb import DuckDb

        return lambda: DuckDb()


class TestDuckDbCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        from vecmem.stores.duckdb import DuckDb

        return lambda: DuckDb(str(tmp_path / "kb.duckdb"))


# ----------------------------------------------------------------------------- adapter only
@pytest.mark.parametrize(
    "url,want",
    [
        ("duckdb:///srv/kb.duckdb?table=notes", {"path": "/srv/kb.duckdb", "table": "notes"}),
        ("duckdb://./rel.duckdb", {"path": "./rel.duckdb", "table": "vecmem"}),
        ("duckdb://:memory:", {"path": None}),
    ],
)
def test_urls_pick_the_file(url: str, want: dict[str, object]) -> None:
    from vecmem.stores import open_store
    from vecmem.stores.duckdb import DuckDb

    store = open_store(url)
    assert isinstance(store, DuckDb)
    for key, value in want.items():
        assert getattr(store, key) == value, key


@pytest.mark.parametrize("url", ["duckdb://", "duckdb:///x.db?tabel=y"])
def test_bad_urls_raise(url: str) -> None:
    from vecmem.errors import ConfigurationError
    from vecmem.stores import open_store

    with pytest.raises(ConfigurationError):
        open_store(url)


def test_table_names_are_identifiers() -> None:
    """A table name that would need quoting inside SQL is refused up front."""
    from vecmem.errors import ConfigurationError
    from vecmem.stores.duckdb import DuckDb

    for bad in ("", "a b", 'x"; DROP TABLE y; --', "1abc", "x" * 64):
        with pytest.raises(ConfigurationError):
            DuckDb(table=bad)


def test_keys_with_json_pointer_characters_filter_exactly() -> None:
    """Metadata keys holding '/', '~', quotes or '$' address that key, not a nested path."""
    from vecmem.filters import parse_filter
    from vecmem.stores.duckdb import DuckDb
    from vecmem.testing.store_suite import SPACE, unit_vectors
    from vecmem.types import Chunk

    store = DuckDb()
    store.connect(SPACE)
    store.upsert(
        [
            Chunk.create("a", 0, "x", {"a/b": 1, "t~0": "v", 'q"': True}),
            Chunk.create("b", 0, "y", {"a": {"b": 1}}),
        ],
        unit_vectors(2),
    )
    assert store.count(parse_filter({"a/b": 1})) == 1
    assert store.count(parse_filter({"t~0": "v"})) == 1
    assert store.count(parse_filter({'q"': True})) == 1
    assert store.count(parse_filter({"a/b": {"$exists": False}})) == 1


def test_writes_by_another_store_object_reach_the_keyword_leg(tmp_path: Path) -> None:
    """Two store objects on one file in one process: the second one's writes and deletes show
    in the first one's BM25 leg on its next search (the generation token)."""
    from vecmem.stores.duckdb import DuckDb
    from vecmem.testing.store_suite import SPACE, make_chunks, unit_vectors

    first, second = DuckDb(str(tmp_path / "kb.duckdb")), DuckDb(str(tmp_path / "kb.duckdb"))
    first.connect(SPACE)
    second.connect(SPACE)
    first.upsert(make_chunks(3, texts=["alpha", "beta", "gamma"]), unit_vectors(3))
    assert [c.id for c, _ in first.keyword("alpha", k=3)] == ["doc0#0"]
    second.upsert(make_chunks(1, start=3, texts=["zebra"]), unit_vectors(1), delete_ids=["doc0#0"])
    assert [c.id for c, _ in first.keyword("zebra", k=3)] == ["doc3#0"]
    assert first.keyword("alpha", k=3) == []


def test_registered_by_name() -> None:
    from vecmem.registry import KNOWLEDGE_STORES
    from vecmem.stores.duckdb import DuckDb

    store = KNOWLEDGE_STORES.create("duckdb", table="kb")
    assert isinstance(store, DuckDb) and store.table == "kb" and store.path is None


class TestDuckDbHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        from vecmem.stores.duckdb import DuckDb

        return lambda: DuckDb(str(tmp_path / "kb.duckdb"), table="hostile")


def test_contains_on_a_field_holding_strings_on_other_rows() -> None:
    """``$contains`` over a field that is a list on some rows and a string on others answers
    (DuckDB cast every row's value to a list, AND notwithstanding: a BackendError before)."""
    from vecmem.filters import parse_filter
    from vecmem.stores.duckdb import DuckDb
    from vecmem.testing.store_suite import SPACE, unit_vectors
    from vecmem.types import Chunk

    store = DuckDb()
    store.connect(SPACE)
    metas = [{"s": "plain"}, {"s": ["x", "{c}"]}, {"s": 3}, {}]
    store.upsert(
        [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(metas)], unit_vectors(4)
    )
    assert store.count(parse_filter({"s": {"$contains": "x"}})) == 1
    assert store.count(parse_filter({"s": {"$contains": "plain"}})) == 0
    assert store.count(parse_filter({"$not": {"s": {"$contains": "{c}"}}})) == 3
