"""A third-party vector store, pip-installed (tests/plugins/vecmem-example-store, installed by
scripts/setup.sh), found through the ``vecmem.knowledge_stores`` entry point and by its URL
scheme, and passing vecmem's public StoreSuite by subclassing it."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from vecmem import Knowledge, VectorMemory
from vecmem.errors import ConfigurationError
from vecmem.registry import KNOWLEDGE_STORES
from vecmem.testing import StoreFactory, StoreSuite

try:
    metadata.distribution("vecmem-example-store")
except metadata.PackageNotFoundError:  # pragma: no cover - scripts/setup.sh installs it
    pytest.skip(
        "the example plugin is not installed: pip install -e "
        "tests/plugins/vecmem-example-store (scripts/setup.sh does)",
        allow_module_level=True,
    )


def test_found_by_entry_point_not_imported_until_used() -> None:
    code = (
        "import sys; from vecmem.registry import KNOWLEDGE_STORES as K; "
        "names = K.list_registered(); "
        "print('examplestore' in names, 'vecmem_example_store' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["True", "False"]  # listed from its entry point, loaded only when created
    eps = metadata.entry_points(group="vecmem.knowledge_stores")
    assert [ep.value for ep in eps if ep.name == "examplestore"] == [
        "vecmem_example_store:open_store"
    ]


def test_created_by_name_and_by_url_scheme(tmp_path: Path) -> None:
    store = KNOWLEDGE_STORES.create("examplestore", path=tmp_path / "a")
    assert type(store).__name__ == "ExampleStore" and store.path == tmp_path / "a"
    with VectorMemory(f"examplestore://{tmp_path}/kb", embedder="hashing-32") as mem:
        assert type(mem.store).__name__ == "ExampleStore"
        mem.add(["plugins are found by entry point"], metadata=[{"source": "a"}])
    kb = Knowledge(vector_db=f"examplestore://{tmp_path}/kb")  # reopens, recorded embedder
    assert kb.memory.embedder.name == "hashing-32"
    assert kb.search("entry point", max_results=1)[0].text == "plugins are found by entry point"
    with pytest.raises(ConfigurationError, match="needs a folder"):
        KNOWLEDGE_STORES.create("examplestore")
    with pytest.raises(ConfigurationError, match="unexpected keyword"):
        KNOWLEDGE_STORES.create("examplestore", colour="red")


def test_it_cannot_take_a_builtin_name() -> None:
    assert KNOWLEDGE_STORES.key_of("examplestore") == "examplestore"
    with pytest.raises(ConfigurationError, match="built-in"):
        KNOWLEDGE_STORES.register("memory", KNOWLEDGE_STORES.get_factory("examplestore"))


class TestExampleStorePassesTheSuite(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: KNOWLEDGE_STORES.create(f"examplestore://{tmp_path}/suite")
