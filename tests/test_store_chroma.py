"""The conformance suite on Chroma: embedded (``PersistentClient`` in a temporary folder), in
memory, and a real ``chroma run`` server. Plus what only this adapter has: URLs, error
translation, the typed metadata that keeps filters exact, the keyword index following other
clients, and the exact fallback when HNSW comes back short."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

pytest.importorskip("chromadb", reason="chromadb is not installed (pip install 'vecmem[chroma]')")

from vecmem.errors import (
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingSpaceMismatchError,
    InvalidInputError,
)
from vecmem.filters import matches, parse_filter
from vecmem.stores import open_store
from vecmem.stores.chroma import ChromaDb, ShapesNeeded, to_where
from vecmem.testing import CongruenceSuite, HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import (
    SPACE,
    StoreFactory,
    filter_metadata,
    make_chunks,
    random_filter,
    unit_vectors,
)
from vecmem.types import Chunk


def _unique() -> str:
    return f"vm-{uuid.uuid4().hex[:12]}"


class TestChromaEmbedded(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: ChromaDb(path=str(tmp_path / "chroma"), collection="suite")


class TestChromaEphemeral(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> Iterator[StoreFactory]:
        name = _unique()  # the in-memory client is shared by the process: one name per test
        yield lambda: ChromaDb(collection=name)
        ChromaDb(collection=name).drop()


class TestChromaServer(StoreSuite):
    @pytest.fixture
    def store_factory(self, chroma_url: str) -> Iterator[StoreFactory]:
        u = urlsplit(chroma_url)
        name = _unique()
        yield lambda: ChromaDb(host=u.hostname, port=u.port or 8000, collection=name)
        ChromaDb(host=u.hostname, port=u.port or 8000, collection=name).drop()


class TestChromaEmbeddedCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: ChromaDb(path=str(tmp_path / "chroma"), collection="congruence")


class TestChromaServerCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self, chroma_url: str) -> Iterator[StoreFactory]:
        u = urlsplit(chroma_url)
        name = _unique()
        yield lambda: ChromaDb(host=u.hostname, port=u.port or 8000, collection=name)
        ChromaDb(host=u.hostname, port=u.port or 8000, collection=name).drop()


# ----------------------------------------------------------------------------- URLs
@pytest.mark.parametrize(
    "url,want",
    [
        ("chroma:///srv/chroma?collection=kb1", {"path": "/srv/chroma", "collection": "kb1"}),
        ("chroma://./rel/dir", {"path": "./rel/dir", "collection": "vecmem"}),
        ("chroma://:memory:", {"path": None, "host": None}),
        (
            "chroma+http://db.local:8001?collection=c01",
            {"host": "db.local", "port": 8001, "ssl": False, "collection": "c01"},
        ),
        ("chroma+https://cloud.example", {"host": "cloud.example", "port": 443, "ssl": True}),
    ],
)
def test_urls_pick_the_client(url: str, want: dict[str, object]) -> None:
    """open_store() must map each documented chroma URL form onto the constructor arguments."""
    store = open_store(url)
    assert isinstance(store, ChromaDb)
    for key, value in want.items():
        assert getattr(store, key) == value, key


@pytest.mark.parametrize("url", ["chroma://", "chroma+http://", "chroma:///x?colection=y"])
def test_bad_urls_raise(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_store(url)


def test_constructor_checks_its_arguments(tmp_path: Path) -> None:
    """path and host together, or a collection name Chroma would refuse, fail up front."""
    with pytest.raises(ConfigurationError):
        ChromaDb(path=str(tmp_path), host="localhost")
    for bad in ("", "ab", "-abc", "a b c", "x" * 513):
        with pytest.raises(ConfigurationError):
            ChromaDb(path=str(tmp_path), collection=bad)


def test_capabilities_follow_the_client(tmp_path: Path) -> None:
    assert ChromaDb(path=str(tmp_path)).capabilities.persistent
    assert not ChromaDb().capabilities.persistent
    server = ChromaDb(host="localhost")
    assert server.capabilities.persistent and server.capabilities.concurrent_writers


# ----------------------------------------------------------------------------- errors
def test_unreachable_server_is_backend_unavailable() -> None:
    """A host nobody listens on must raise BackendUnavailableError (a ConnectionError)."""
    store = ChromaDb(host="127.0.0.1", port=9)
    with pytest.raises(BackendUnavailableError) as info:
        store.connect(SPACE)
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(BackendUnavailableError):
        store.stored_space()


def test_missing_collection_has_no_space(tmp_path: Path) -> None:
    """stored_space() of a collection that does not exist is None, and creates nothing."""
    store = ChromaDb(path=str(tmp_path / "c"), collection="absent")
    assert store.stored_space() is None
    assert ChromaDb(path=str(tmp_path / "c"), collection="absent").stored_space() is None


def test_foreign_collections(tmp_path: Path) -> None:
    """A collection made without vecmem: an empty cosine one is adopted, one with records or
    another space raises ConfigurationError, one of another dimension DimensionMismatchError."""
    import chromadb

    path = str(tmp_path / "c")
    client = chromadb.PersistentClient(path=path)
    client.create_collection(
        "empty-cos", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    client.create_collection("l2-space", embedding_function=None)
    full = client.create_collection(
        "full-cos", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
    )
    full.add(ids=["x"], embeddings=[[1.0, 0.0, 0.0]], documents=["foreign"])
    with pytest.raises(ConfigurationError, match="cosine"):
        ChromaDb(path=path, collection="l2-space").connect(SPACE)
    with pytest.raises(ConfigurationError, match="not written by vecmem"):
        ChromaDb(path=path, collection="full-cos").connect(SPACE)
    adopted = ChromaDb(path=path, collection="empty-cos")
    adopted.connect(SPACE)
    adopted.upsert(make_chunks(2), unit_vectors(2))
    assert ChromaDb(path=path, collection="empty-cos").stored_space() == SPACE
    with pytest.raises(DimensionMismatchError):
        adopted.upsert(make_chunks(1, start=5), unit_vectors(1, dim=SPACE.dim + 1))


def test_dimension_differing_from_the_collection(tmp_path: Path) -> None:
    """Reopening with another dimension names both in an EmbeddingSpaceMismatchError."""
    from vecmem.types import EmbeddingSpace

    path = str(tmp_path / "c")
    s = ChromaDb(path=path)
    s.connect(SPACE)
    s.upsert(make_chunks(1), unit_vectors(1))
    with pytest.raises(EmbeddingSpaceMismatchError, match="dim"):
        ChromaDb(path=path).connect(EmbeddingSpace(embedder=SPACE.embedder, dim=SPACE.dim * 3))


def test_metadata_that_is_not_json_is_refused_before_writing(tmp_path: Path) -> None:
    s = ChromaDb(path=str(tmp_path / "c"))
    s.connect(SPACE)
    bad = Chunk.create("d", 0, "text", {"when": object()})
    with pytest.raises(InvalidInputError):
        s.upsert([*make_chunks(2), bad], unit_vectors(3))
    assert s.count() == 0


# ----------------------------------------------------------------------------- filters
@pytest.mark.parametrize("complement", [True, False], ids=["chroma-ne", "shapes-only"])
def test_translation_equals_the_reference_on_500_random_filters(
    tmp_path: Path, complement: bool
) -> None:
    """The where translation, run by Chroma's own engine, selects exactly what
    vecmem.filters.matches selects, for 500 random filters over varied metadata; both with
    Chroma's $ne/$nin matching chunks without the field (Chroma 1.x, probed) and with absence
    read from the stored metadata shapes only (a Chroma whose $ne does not)."""
    s = ChromaDb(path=str(tmp_path / "c"))
    s.connect(SPACE)
    chunks = make_chunks(120, metadata=filter_metadata)
    s.upsert(chunks, unit_vectors(120))
    assert s.count(parse_filter({"s": {"$ne": "red"}})) > 0 and s._complement is True
    s._complement = complement
    rng = random.Random(7)
    for n in range(500):
        spec = random_filter(rng)
        f = parse_filter(spec)
        want = {c.id for c in chunks if matches(f, c.metadata)}
        got = set(s._filtered(f, s._matching_ids))
        where = to_where(f, complement=complement, shapes=s._shapes)
        assert got == want, f"#{n} {spec} -> {where}"


def test_negations_are_pushed_down_not_dropped() -> None:
    """Chroma has no $not: the translation must push it to the leaves."""
    f = parse_filter({"$not": {"$or": [{"a": 1}, {"b": {"$gt": 2}}]}})
    with pytest.raises(ShapesNeeded):  # "b is not a number" is read from the stored shapes
        to_where(f)
    w = to_where(f, shapes={'["ia","fb"]': {"a": "i", "b": "f"}, '["ia"]': {"a": "i"}})
    assert "'$not'" not in repr(w) and "$and" in w
    assert {"_vm_sig": {"$in": ['["ia"]']}} in w["$and"][1]["$or"]
    assert to_where(parse_filter({"a": {"$in": []}})) is False
    assert to_where(parse_filter({"a": {"$nin": []}})) is True


# ----------------------------------------------------------------------------- behaviour
def test_keyword_index_follows_another_client(tmp_path: Path) -> None:
    """A write through another store object must reach this store's keyword search."""
    path = str(tmp_path / "c")
    a, b = ChromaDb(path=path), ChromaDb(path=path)
    a.connect(SPACE)
    b.connect(SPACE)
    a.upsert(make_chunks(3), unit_vectors(3))
    assert a.keyword("zebra", k=3) == []
    b.upsert([Chunk.create("z", 0, "zebra crossing")], unit_vectors(1, seed=3))
    assert [c.id for c, _ in a.keyword("zebra", k=3)] == ["z#0"]
    b.delete(ids=["z#0"])
    assert a.keyword("zebra", k=3) == []


def test_selective_filter_falls_back_to_an_exact_scan(tmp_path: Path) -> None:
    """When HNSW returns fewer than k hits although k chunks match, the store scans the
    matching vectors exactly: here one bucket of 2000 chunks, k equal to its size."""
    s = ChromaDb(path=str(tmp_path / "c"))
    s.connect(SPACE)
    n = 2000
    chunks = make_chunks(
        n, metadata=lambda i: {"b": i % 200}, texts=[f"chunk {i}" for i in range(n)]
    )
    vectors = unit_vectors(n, seed=9)
    s.upsert(chunks, vectors)
    q = unit_vectors(1, seed=10)[0]
    f = parse_filter({"b": 17})
    idx = [i for i in range(n) if i % 200 == 17]
    got = s.query(q, k=len(idx), filter=f)
    assert sorted(c.id for c, _ in got) == sorted(chunks[i].id for i in idx)
    want = sorted((float(vectors[i] @ q) for i in idx), reverse=True)
    np.testing.assert_allclose([x for _, x in got], want, atol=1e-4)
    exact = s._exact(q, 5, to_where(f))
    np.testing.assert_allclose([x for _, x in exact], want[:5], atol=1e-5)


# ----------------------------------------------------------------------------- layout
def test_overwriting_a_chunk_drops_its_old_filter_fields(tmp_path: Path) -> None:
    """Chroma's upsert merges metadata: a field the new version lacks must not keep matching."""
    s = ChromaDb(path=str(tmp_path / "c"))
    s.connect(SPACE)
    s.upsert([Chunk.create("d", 0, "t", {"a": "x", "deep": {"k": 1}})], unit_vectors(1))
    s.upsert([Chunk.create("d", 0, "t", {"b": 2})], unit_vectors(1))
    assert s.count(parse_filter({"a": "x"})) == 0
    assert s.count(parse_filter({"a": {"$exists": True}})) == 0
    assert s.count(parse_filter({"b": {"$gte": 2}})) == 1
    assert s.get(["d#0"])[0].metadata == {"b": 2}


def test_plain_chunks_are_stored_without_a_json_copy(tmp_path: Path) -> None:
    """A chunk with scalar metadata and the usual id is read back from its typed keys: Chroma
    returns these per hit, so the layout keeps them few (the JSON copy is for the rest)."""
    s = ChromaDb(path=str(tmp_path / "c"))
    s.connect(SPACE)
    s.upsert([Chunk.create("d", 3, "t", {"n": 1, "s": "x", "b": True, "f": 0.5})], unit_vectors(1))
    stored = s._col.get(include=["metadatas"])["metadatas"][0]
    assert sorted(stored) == ["_vm_doc", "_vm_sig", "b_b", "n_f", "n_n", "s_s"]


def test_values_beyond_the_typed_keys_round_trip(tmp_path: Path) -> None:
    """-0.0, ints past 2**50 (Chroma reads its floats back inexactly there), NUL in strings, key order, a custom id, position and hash come
    back exactly (through the JSON copy where the typed keys cannot carry them)."""
    s = ChromaDb(path=str(tmp_path / "c"))
    s.connect(SPACE)
    meta = {"z": -0.0, "big": 2**52 + 1, "nul": "a\x00b", "a": 1, "f": 2.0}
    chunks = [
        Chunk.create("d", 0, "one", meta),
        Chunk.create("d", 1, "two", {"a": 1, "f": 2.0}),  # plain, but key order a, f
        Chunk(
            id="custom",
            document_id="d",
            position=7,
            text="three",
            metadata={"f": 2.0, "a": 1},
            content_hash="not-the-sha",
        ),
    ]
    s.upsert(chunks, unit_vectors(3))
    got = {c.id: c for c in s.get([c.id for c in chunks])}
    for want in chunks:
        c = got[want.id]
        assert (c.document_id, c.position, c.content_hash) == (
            want.document_id,
            want.position,
            want.content_hash,
        )
        assert list(c.metadata.items()) == list(want.metadata.items())
        assert [type(v) for v in c.metadata.values()] == [type(v) for v in want.metadata.values()]
    assert str(got["d#0"].metadata["z"]) == "-0.0"
    assert s.count(parse_filter({"big": {"$gt": 2**52}})) == 1


def test_shapes_written_by_another_client_are_learnt(tmp_path: Path) -> None:
    """$exists reads the metadata shapes a store has learnt: a shape another client stores
    afterwards must still count (the store checks after each such query and learns it)."""
    path = str(tmp_path / "c")
    a, b = ChromaDb(path=path), ChromaDb(path=path)
    a.connect(SPACE)
    b.connect(SPACE)
    a.upsert(make_chunks(3, metadata=lambda i: {"n": i}), unit_vectors(3))
    assert b.count(parse_filter({"z": {"$exists": False}})) == 3
    a.upsert(make_chunks(2, start=3, metadata=lambda i: {"n": i, "z": "new"}), unit_vectors(2))
    assert b.count(parse_filter({"z": {"$exists": False}})) == 3
    assert b.count(parse_filter({"$not": {"n": {"$gt": 1}}})) == 2
    assert {
        c.id
        for c, _ in b.query(unit_vectors(1)[0], k=5, filter=parse_filter({"z": {"$exists": True}}))
    } == {"doc3#0", "doc4#0"}


def _format_1(path: str) -> list[Chunk]:
    """A collection as vecmem's Chroma format 1 wrote it (JSON on every chunk, _vm_keys)."""
    import json

    import chromadb

    chunks = [
        Chunk.create(f"d{i}", 0, f"text {i}", {"s": "xy"[i % 2], "n": i, "tags": ["a"]})
        for i in range(6)
    ]
    col = chromadb.PersistentClient(path=path).create_collection(
        "old",
        embedding_function=None,
        configuration={"hnsw": {"space": "cosine"}},
        metadata={"vecmem_space": SPACE.to_json(), "vecmem_format": 1},
    )
    col.add(
        ids=[c.id for c in chunks],
        embeddings=unit_vectors(6),
        documents=[c.text for c in chunks],
        metadatas=[
            {
                "_vm": json.dumps(
                    {"d": c.document_id, "p": 0, "h": c.content_hash, "m": c.metadata}
                ),
                "_vm_doc": c.document_id,
                "s_s": c.metadata["s"],
                "n_n": float(c.metadata["n"]),
                "l_tags": ["s:a"],
                "_vm_keys": ["s_s", "n_n", "l_tags"],
            }
            for c in chunks
        ],
    )
    return chunks


def test_format_1_is_refused_until_upgraded(tmp_path: Path) -> None:
    """A collection in the old layout is never misread: connect() says to upgrade(), which
    rewrites it in place; then every chunk and filter is exact."""
    path = str(tmp_path / "c")
    chunks = _format_1(path)
    with pytest.raises(ConfigurationError, match="upgrade"):
        ChromaDb(path=path, collection="old").connect(SPACE)
    assert ChromaDb(path=path, collection="old").upgrade() == 6
    assert ChromaDb(path=path, collection="old").upgrade() == 0
    s = ChromaDb(path=path, collection="old")
    s.connect(SPACE)
    assert s.get([c.id for c in chunks]) == chunks
    stored = s._col.get(include=["metadatas"])["metadatas"]
    assert all("_vm_keys" not in m and "_vm_sig" in m for m in stored)
    assert s.count(parse_filter({"s": {"$ne": "x"}, "tags": {"$contains": "a"}})) == 3
    assert s.count(parse_filter({"$not": {"n": {"$gte": 2}}})) == 2


class TestChromaEmbeddedHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: ChromaDb(path=str(tmp_path / "chroma"), collection="hostile")


class TestChromaServerHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self, chroma_url: str) -> Iterator[StoreFactory]:
        u = urlsplit(chroma_url)
        name = _unique()
        yield lambda: ChromaDb(host=u.hostname, port=u.port or 8000, collection=name)
        ChromaDb(host=u.hostname, port=u.port or 8000, collection=name).drop()


def test_drop_leaves_nothing_for_the_next_collection(chroma_url: str) -> None:
    """Chroma 1.5's delete_collection leaves list-valued metadata behind and the records of the
    next collection created on the server inherit it; drop() deletes the records first, so a
    fresh collection (vecmem's or anyone's) reads back only what was written to it."""
    chromadb = pytest.importorskip("chromadb")
    u = urlsplit(chroma_url)
    dropped = ChromaDb(host=u.hostname, port=u.port or 8000, collection=_unique())
    chunks = [Chunk.create(f"d{i}", 0, f"text {i}", {"tags": ["a", 1], "i": i}) for i in range(40)]
    dropped.connect(SPACE)
    dropped.upsert(chunks, unit_vectors(len(chunks)))
    dropped.drop()
    dropped.close()
    client = chromadb.HttpClient(host=u.hostname, port=u.port)
    col = client.create_collection(_unique(), metadata={"hnsw:space": "cosine"})
    try:
        col.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], metadatas=[{"n": 1}, {"n": 2}])
        assert col.get(ids=["a", "b"])["metadatas"] == [{"n": 1}, {"n": 2}]
    finally:
        client.delete_collection(col.name)
