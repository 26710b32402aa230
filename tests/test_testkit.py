"""The test kit itself: every suite exported from vecmem.testing, one fixture name
(``store_factory``) with the old ``backend`` still honoured for a release, the shipped BM25
parameters, and the test infrastructure apart from the suites (old import paths aliased)."""

from __future__ import annotations

import importlib

import pytest

import vecmem.testing as kit
from vecmem.memory import DEFAULT_BM25
from vecmem.state import MemoryStateStore
from vecmem.testing import StateStoreSuite
from vecmem.testing._factory import FactorySuite
from vecmem.testing.store_suite import SPACE


def test_every_suite_is_exported_and_asks_for_store_factory() -> None:
    names = [
        "StoreSuite",
        "CongruenceSuite",
        "HostileInputSuite",
        "StateStoreSuite",
        "ConversationStoreSuite",
        "CheckpointStoreSuite",
        "FileStoreSuite",
        "KnowledgeStoreSuite",
        "KnowledgeTenancySuite",
        "ConversationTenancySuite",
        "StateTenancySuite",
        "CheckpointTenancySuite",
        "AgentMemoryTenancySuite",
    ]
    for name in names:
        suite = getattr(kit, name)
        assert name in kit.__all__ and issubclass(suite, FactorySuite), name
        assert not hasattr(suite, "backend"), name  # one fixture name across the suites
    assert kit.FileStoreSuite is kit.KnowledgeStoreSuite


def test_the_suites_run_under_the_shipped_bm25_parameters() -> None:
    assert SPACE.keyword_params() == DEFAULT_BM25 != (1.5, 0.75, 0.25)


def test_infrastructure_lives_apart_and_old_paths_still_import() -> None:
    for name in ("servers", "pinecone_standin"):
        moved = importlib.import_module(f"vecmem.testing._infra.{name}")
        assert importlib.import_module(f"vecmem.testing.{name}") is moved


@pytest.mark.filterwarnings("ignore:.*is now `store_factory`:DeprecationWarning")
class TestTheOldBackendFixtureStillWorks(StateStoreSuite):
    """A 0.1 test file overriding ``backend`` (a store, not a factory) runs the whole suite."""

    @pytest.fixture
    def backend(self) -> MemoryStateStore:
        return MemoryStateStore()

    def test_it_warns(self, request: pytest.FixtureRequest) -> None:
        with pytest.warns(DeprecationWarning, match="store_factory"):
            factory = request.getfixturevalue("store_factory")
        assert isinstance(factory(), MemoryStateStore)
