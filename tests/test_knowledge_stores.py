"""KNOWLEDGE_STORES, the registry of vector stores: built-in names, aliases and URL schemes,
plugins claiming a scheme, VectorMemory/Knowledge opening what it opens, and the deprecated
spelling that still reaches the file stores (now FILE_STORES) for one release."""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecmem import Knowledge, VectorMemory
from vecmem.errors import ConfigurationError
from vecmem.knowledge_fs import MemoryKnowledgeStore, SQLKnowledgeStore
from vecmem.registry import FILE_STORES, KNOWLEDGE_STORES, LazyFactory
from vecmem.stores import ChromaDb, EmbeddedStore, MemoryStore, Qdrant, open_store

BUILTINS = {"pgvector", "qdrant", "chroma", "lancedb", "pinecone", "embedded", "memory"}


@pytest.fixture
def scratch_name() -> Iterator[str]:
    """A name registered by the test and removed after it."""
    yield "scratchstore"
    if "scratchstore" in KNOWLEDGE_STORES:
        KNOWLEDGE_STORES.unregister("scratchstore")


def test_builtin_names_and_aliases() -> None:
    assert BUILTINS <= set(KNOWLEDGE_STORES.list_registered())
    aliases = KNOWLEDGE_STORES.list_aliases()
    assert aliases["chromadb"] == "chroma"
    assert aliases["postgresql"] == aliases["postgres"] == "pgvector"
    assert aliases["file"] == "embedded"


def test_create_by_name_alias_and_url(tmp_path: Path) -> None:
    assert type(KNOWLEDGE_STORES.create("memory")) is MemoryStore
    assert type(KNOWLEDGE_STORES.create("memory://")) is MemoryStore
    assert isinstance(KNOWLEDGE_STORES.create("chromadb"), ChromaDb)
    q = KNOWLEDGE_STORES.create("qdrant", location=":memory:", collection="c1")
    assert isinstance(q, Qdrant) and q.collection == "c1"
    assert isinstance(KNOWLEDGE_STORES.create("qdrant://:memory:?collection=c2"), Qdrant)
    e = KNOWLEDGE_STORES.create(f"file://{tmp_path}/kb")
    assert isinstance(e, EmbeddedStore) and e.path == tmp_path / "kb"
    e2 = KNOWLEDGE_STORES.create("embedded", path=tmp_path / "kb2")
    assert isinstance(e2, EmbeddedStore) and e2.path == tmp_path / "kb2"
    pg = KNOWLEDGE_STORES.create("postgresql://u:p@localhost:1/db?collection=kb")
    assert type(pg).__name__ == "PgVector" and pg.table == "kb"  # connects lazily


def test_bad_names_and_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError) as err:
        KNOWLEDGE_STORES.create("weaviate")
    for name in sorted(BUILTINS):
        assert name in str(err.value)
    assert "chromadb -> chroma" in str(err.value) and "vecmem.knowledge_stores" in str(err.value)
    with pytest.raises(ConfigurationError, match="available: .*pgvector"):
        KNOWLEDGE_STORES.create("weaviate://host")
    with pytest.raises(ConfigurationError, match="unexpected keyword argument 'colour'"):
        KNOWLEDGE_STORES.create("qdrant", colour="red")
    with pytest.raises(ConfigurationError, match="missing a required argument: 'db_url'"):
        KNOWLEDGE_STORES.create("pgvector")
    with pytest.raises(ConfigurationError, match="cannot be given with a URL"):
        KNOWLEDGE_STORES.create("qdrant://:memory:", collection="x")
    with pytest.raises(ConfigurationError, match="takes no location"):
        KNOWLEDGE_STORES.create("memory://somewhere")
    with pytest.raises(ConfigurationError, match="names no folder"):
        KNOWLEDGE_STORES.create("file://")
    with pytest.raises(ConfigurationError, match="built-in"):
        KNOWLEDGE_STORES.register("mine", MemoryStore, aliases=("chromadb",))
    with pytest.raises(ConfigurationError, match="module:attr"):
        LazyFactory("no_colon_here")


def test_vector_memory_and_knowledge_open_what_the_registry_opens(tmp_path: Path) -> None:
    assert type(VectorMemory("memory", embedder="hashing-8").store) is MemoryStore
    assert isinstance(VectorMemory("chromadb", embedder="hashing-8").store, ChromaDb)
    kb = Knowledge(vector_db="qdrant://:memory:", embedder="hashing-8")
    assert isinstance(kb.memory.store, Qdrant)
    kb.insert(text="vecmem opens stores by name")
    assert kb.search("stores by name", max_results=1)
    folder = VectorMemory(str(tmp_path / "kb"), embedder="hashing-8").store
    assert isinstance(folder, EmbeddedStore)  # a path that is no registered name: a folder
    with pytest.raises(ConfigurationError, match="available: .*qdrant"):
        VectorMemory("nosuch://x", embedder="hashing-8")


def test_a_name_that_is_also_a_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "memory").mkdir()
    with pytest.raises(ConfigurationError, match="'./memory'"):
        open_store("memory")
    assert isinstance(open_store("./memory"), EmbeddedStore)


def test_a_registered_plugin_claims_a_url_scheme(scratch_name: str) -> None:
    made: list[Any] = []

    def factory(*, url: str | None = None, label: str = "x") -> MemoryStore:
        store = MemoryStore()
        made.append((url, label))
        return store

    KNOWLEDGE_STORES.register(scratch_name, factory)
    mem = VectorMemory(f"{scratch_name}://anywhere", embedder="hashing-8")
    assert made == [(f"{scratch_name}://anywhere", "x")] and type(mem.store) is MemoryStore
    KNOWLEDGE_STORES.create(scratch_name, label="y")
    assert made[-1] == (None, "y")
    KNOWLEDGE_STORES.unregister(scratch_name)
    with pytest.raises(ConfigurationError, match="unknown knowledge store"):
        VectorMemory(f"{scratch_name}://anywhere", embedder="hashing-8")


def test_a_plugin_that_is_no_vector_store_is_refused(scratch_name: str) -> None:
    KNOWLEDGE_STORES.register(scratch_name, lambda *, url=None: object())
    with pytest.raises(ConfigurationError, match="VectorStore protocol"):
        VectorMemory(scratch_name, embedder="hashing-8")


def test_old_spelling_reaches_the_file_stores_with_a_warning(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning, match="FILE_STORES"):
        kb = KNOWLEDGE_STORES.create(f"sqlite:///{tmp_path}/agent.db")
    assert isinstance(kb, SQLKnowledgeStore)
    kb.write("/notes.md", "kept")
    assert FILE_STORES.create(f"sqlite:///{tmp_path}/agent.db").read("/notes.md") == b"kept"
    with pytest.warns(DeprecationWarning):
        tenant = KNOWLEDGE_STORES.create("memory://", tenant="acme")  # only a file store takes it
    assert isinstance(tenant, MemoryKnowledgeStore)
    with pytest.warns(DeprecationWarning):
        disk = KNOWLEDGE_STORES.create("disk", root=str(tmp_path / "d"))
    assert type(disk).__name__ == "DiskKnowledgeStore"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a name both know, no file-store option: the vector store
        assert type(KNOWLEDGE_STORES.create("memory://")) is MemoryStore


def test_open_store_never_returns_a_file_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown knowledge store 'sqlite'"):
        open_store(f"sqlite:///{tmp_path}/x.db")


def test_listing_the_registry_imports_no_client() -> None:
    code = (
        "import sys; from vecmem.registry import KNOWLEDGE_STORES as K; K.list_registered(); "
        "K.list_aliases(); 'chroma' in K; "
        "print(sorted(m for m in ('psycopg', 'qdrant_client', 'chromadb', 'lancedb', "
        "'pinecone', 'sqlalchemy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"
