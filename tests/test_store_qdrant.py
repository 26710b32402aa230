"""The conformance suite on Qdrant: local mode in memory and in a folder (qdrant-client's own
engine, nothing to install), and a Qdrant server when ``QDRANT_URL`` is set. Plus what only this
adapter has: URLs, error translation and the typed payload that keeps filters exact."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("qdrant_client",
                    reason="qdrant-client is not installed (pip install 'vecmem[qdrant]')")

from vecmem.errors import (  # noqa: E402
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    NotFoundError,
    StoreLockedError,
    UnsupportedFilterError,
)
from vecmem.filters import matches, parse_filter  # noqa: E402
from vecmem.stores import open_store  # noqa: E402
from vecmem.stores.qdrant import Qdrant, point_id  # noqa: E402
from vecmem.testing import CongruenceSuite, StoreSuite  # noqa: E402
from vecmem.testing.store_suite import SPACE, StoreFactory, make_chunks, unit_vectors  # noqa: E402
from vecmem.types import Chunk, EmbeddingSpace  # noqa: E402

QDRANT_URL = os.environ.get("QDRANT_URL")


class TestQdrantMemory(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: Qdrant(":memory:")


class TestQdrantPath(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: Qdrant(path=str(tmp_path / "qdrant"), collection="suite")

    def test_10k_batch_upsert(self, store: object) -> None:
        """Skipped in folder mode only: qdrant-client's local engine commits SQLite once per point
        (about 200 s for 10k here); the adapter's batching is the same as in TestQdrantMemory."""
        pytest.skip("10k points in qdrant-client's local folder mode take minutes (one SQLite "
                    "commit per point); the same batch path runs in TestQdrantMemory")


class TestQdrantCongruence(CongruenceSuite):
    """SciFact with the real model against the exact reference (local mode in memory: the folder
    mode runs the same engine and commits once per point, which only makes this slower)."""

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return lambda: Qdrant(":memory:", collection="congruence")


@pytest.mark.server
@pytest.mark.skipif(QDRANT_URL is None, reason="no Qdrant server: set QDRANT_URL=http://host:6333 "
                    "to run the suite against one (none can be installed on this machine)")
class TestQdrantServer(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> Iterator[StoreFactory]:
        name = f"vecmem_test_{uuid.uuid4().hex[:12]}"
        yield lambda: Qdrant(url=QDRANT_URL, collection=name)
        Qdrant(url=QDRANT_URL, collection=name).drop()


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize("url,want", [
    ("qdrant://:memory:", {"location": ":memory:", "collection": "vecmem"}),
    ("qdrant:///srv/q?collection=kb", {"path": "/srv/q", "collection": "kb"}),
    ("qdrant://./rel/dir", {"path": "./rel/dir"}),
    ("qdrant+http://db.local:6333?collection=c&api_key=s3cret",
     {"url": "http://db.local:6333", "collection": "c", "api_key": "s3cret"}),
    ("qdrant+https://cloud.example", {"url": "https://cloud.example"}),
])
def test_urls_pick_the_engine(url: str, want: dict[str, str]) -> None:
    """open_store() must map each documented qdrant URL form onto the constructor arguments."""
    store = open_store(url)
    assert isinstance(store, Qdrant)
    for key, value in want.items():
        assert getattr(store, key) == value, key


@pytest.mark.parametrize("url", ["qdrant://", "qdrant+http://", "qdrant://:memory:?colection=x"])
def test_bad_urls_raise(url: str) -> None:
    """A URL without a target or with an unknown parameter must raise ConfigurationError."""
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_constructor_needs_exactly_one_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        Qdrant()
    with pytest.raises(ConfigurationError):
        Qdrant(":memory:", path=str(tmp_path))
    with pytest.raises(ConfigurationError):
        Qdrant("./not-a-location")


# ----------------------------------------------------------------------------- errors
def test_unreachable_server_is_backend_unavailable() -> None:
    """A URL nobody listens on must raise BackendUnavailableError (a ConnectionError), not a
    client exception."""
    store = Qdrant(url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(BackendUnavailableError) as info:
        store.connect(SPACE)
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(BackendUnavailableError):
        store.stored_space()


def test_dimension_of_a_foreign_collection_is_checked(tmp_path: Path) -> None:
    """A collection made without vecmem, with a 'dense' vector of another size, must raise
    DimensionMismatchError; one without the 'dense' vector a ConfigurationError."""
    from qdrant_client import QdrantClient, models

    path = str(tmp_path / "q")
    client = QdrantClient(path=path)
    client.create_collection("foreign", vectors_config={
        "dense": models.VectorParams(size=3, distance=models.Distance.COSINE)})
    client.create_collection("unnamed", vectors_config=models.VectorParams(
        size=8, distance=models.Distance.COSINE))
    client.close()
    with pytest.raises(DimensionMismatchError):
        Qdrant(path=path, collection="foreign").connect(SPACE)
    with pytest.raises(ConfigurationError):
        Qdrant(path=path, collection="unnamed").connect(SPACE)
    # a matching foreign collection is adopted and its space recorded
    ok = Qdrant(path=path, collection="foreign")
    ok.connect(EmbeddingSpace(embedder="e", dim=3))
    ok.close()
    again = Qdrant(path=path, collection="foreign")
    assert again.stored_space() == EmbeddingSpace(embedder="e", dim=3)
    again.close()


def test_collection_dropped_underneath_is_not_found() -> None:
    """If the collection disappears after connect, calls must raise NotFoundError (a KeyError)."""
    store = Qdrant(":memory:", collection="gone")
    store.connect(SPACE)
    store.upsert(make_chunks(2), unit_vectors(2))
    store._c().delete_collection("gone")
    with pytest.raises(NotFoundError):
        store.count()
    with pytest.raises(NotFoundError):
        store.query(unit_vectors(1)[0], k=1)


def test_missing_collection_has_no_space_and_is_not_created(tmp_path: Path) -> None:
    """stored_space() on a missing collection must return None without creating it."""
    store = Qdrant(path=str(tmp_path / "q"), collection="absent")
    assert store.stored_space() is None
    assert not store._c().collection_exists("absent")
    store.close()


def test_second_client_on_a_folder_is_store_locked(tmp_path: Path) -> None:
    """Local mode allows one client per folder: the second must get StoreLockedError."""
    first = Qdrant(path=str(tmp_path / "q"))
    first.connect(SPACE)
    second = Qdrant(path=str(tmp_path / "q"))
    with pytest.raises(StoreLockedError):
        second.connect(SPACE)
    first.close()
    second.close()


def test_used_after_close_raises() -> None:
    store = Qdrant(":memory:")
    store.connect(SPACE)
    store.close()
    with pytest.raises(ConfigurationError):
        store.count()


def test_non_finite_filter_bound_is_unsupported() -> None:
    """Qdrant's JSON cannot carry infinity: such a filter must raise UnsupportedFilterError,
    not be dropped."""
    store = Qdrant(":memory:")
    store.connect(SPACE)
    with pytest.raises(UnsupportedFilterError):
        store.count(parse_filter({"x": {"$lt": float("inf")}}))


# ----------------------------------------------------------------------------- layout
def test_points_use_uuid5_ids_and_keep_the_chunk_id() -> None:
    """Point ids are uuid5 of the chunk id (stable across clients) and the payload keeps the id."""
    store = Qdrant(":memory:", collection="c")
    store.connect(SPACE)
    store.upsert([Chunk.create("doc", 0, "hello")], unit_vectors(1))
    rec = store._c().retrieve("c", [point_id("doc#0")], with_payload=True)[0]
    assert str(uuid.UUID(str(rec.id))) == point_id("doc#0")
    assert rec.payload["chunk_id"] == "doc#0"


def test_awkward_field_names_filter_exactly() -> None:
    """Field names with dots, brackets, quotes or non-ASCII must address that field only (Qdrant
    would read 'a.b' as a nested path)."""
    store = Qdrant(":memory:")
    store.connect(SPACE)
    metas = [{"a.b": 1}, {"a": {"b": 1}}, {"x[0]": "v"}, {'q"k': True}, {"_61": 2}, {"a": 2}]
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", m) for i, m in enumerate(metas)]
    store.upsert(chunks, unit_vectors(len(chunks)))
    for spec in ({"a.b": 1}, {"x[0]": "v"}, {'q"k': True}, {"_61": 2}, {"a": 2},
                 {"a.b": {"$exists": True}}, {"a": {"$exists": True}}, {"a.b": {"$ne": 1}}):
        f = parse_filter(spec)
        want = {c.id for c in chunks if matches(f, c.metadata)}
        assert {c.id for c, _ in store.query(unit_vectors(1)[0], k=10, filter=f)} == want, spec


def test_keyword_index_is_rebuilt_after_a_failed_write(tmp_path: Path) -> None:
    """If a write fails after validation, the keyword leg must not drift from the collection."""
    store = Qdrant(":memory:", collection="c")
    store.connect(SPACE)
    chunks = make_chunks(5)
    store.upsert(chunks, unit_vectors(5))
    client = store._c()
    original = client.batch_update_points

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("network went away")

    client.batch_update_points = boom
    try:
        with pytest.raises(Exception):
            store.upsert([Chunk.create("new", 0, "zebra words")], unit_vectors(1, seed=3))
    finally:
        client.batch_update_points = original
    assert store.keyword("zebra", k=3) == []
    store.upsert([Chunk.create("new", 0, "zebra words")], unit_vectors(1, seed=3))
    assert [c.id for c, _ in store.keyword("zebra", k=3)] == ["new#0"]
    np.testing.assert_allclose(store.get_vectors(["new#0"]), unit_vectors(1, seed=3), atol=1e-5)
