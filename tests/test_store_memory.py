"""The conformance suite on the exact in-memory reference store."""

from __future__ import annotations

import pytest

from vecmem.stores.memory import MemoryStore
from vecmem.testing import HostileInputSuite, StoreSuite
from vecmem.testing.store_suite import StoreFactory


class TestMemoryStore(StoreSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return MemoryStore


class TestMemoryStoreHostile(HostileInputSuite):
    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        return MemoryStore
