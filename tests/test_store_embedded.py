"""The conformance suite on the embedded default, plus its own persistence and HNSW tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecmem.stores.embedded import EmbeddedStore
from vecmem.testing import StoreSuite
from vecmem.testing.store_suite import StoreFactory


class TestEmbeddedStore(StoreSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: EmbeddedStore(tmp_path / "kb")
