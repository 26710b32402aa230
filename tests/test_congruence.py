"""The embedded store (HNSW on, filtered searches through HNSW too) against the exact
in-memory reference on a SciFact slice with the real MiniLM model."""

from __future__ import annotations

from pathlib import Path

import pytest

from vecmem.stores.embedded import EmbeddedStore
from vecmem.testing import CongruenceSuite
from vecmem.testing.store_suite import StoreFactory


def _hnsw(path: Path) -> EmbeddedStore:
    store = EmbeddedStore(path, ann_threshold=100, memory_rows=0)  # rows read on demand
    store.exact_filter_rows = 0
    return store


class TestEmbeddedCongruence(CongruenceSuite):
    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: _hnsw(tmp_path / "kb")
