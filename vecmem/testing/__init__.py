"""The shared test suites shipped with vecmem: subclass one and override one fixture,
``store_factory`` (a zero-argument callable returning the store under test).

>>> from vecmem.testing import StoreSuite        # doctest: +SKIP
>>> class TestMyStore(StoreSuite):               # doctest: +SKIP
...     @pytest.fixture
...     def store_factory(self, tmp_path):
...         return lambda: MyStore(path=tmp_path / "db")

=============================  ===============================================================
suite                          for
=============================  ===============================================================
:class:`StoreSuite`            vector stores (reopened: the factory is called again)
:class:`CongruenceSuite`       vector stores against the exact reference on SciFact (real model)
:class:`HostileInputSuite`     vector stores given hostile input: typed errors, nothing changed
:class:`StateStoreSuite`       key/value state stores
:class:`ConversationStoreSuite` conversation stores (with :class:`SessionSuite`: branch, merge,
                               TTL, maximum of messages, participants)
:class:`CheckpointStoreSuite`  checkpoint stores
:class:`FileStoreSuite`        path-based file stores (also ``KnowledgeStoreSuite``, its 0.1 name)
:class:`LockSuite`             cross-process locks, with real worker processes
``*TenancySuite``              tenant isolation alone (inherited by the four suites above);
                               :class:`AgentMemoryTenancySuite`: the factory returns an AgentMemory
=============================  ===============================================================

Imported lazily, so ``import vecmem.testing`` does not need pytest. The shared suites check
with plain ``assert`` (they are pytest test classes, not library code); when pytest is installed
they are registered for its assertion rewriting, so a failing check shows both values. Test
infrastructure (server starters, the Pinecone stand-in) lives apart, in
:mod:`vecmem.testing._infra`.
"""

from __future__ import annotations

import importlib
from typing import Any

SUITES = (
    "store_suite",
    "congruence",
    "hostile",
    "conversations",
    "sessions",
    "state",
    "checkpoints",
    "knowledge_fs",
    "locks",
    "usage",
    "tenancy",
    "_factory",
)

try:
    import pytest
except ImportError:  # running without pytest: the suites are not used then
    pass
else:
    pytest.register_assert_rewrite(*(f"vecmem.testing.{name}" for name in SUITES))

_LAZY = {
    "StoreSuite": ("vecmem.testing.store_suite", "StoreSuite"),
    "CongruenceSuite": ("vecmem.testing.congruence", "CongruenceSuite"),
    "HostileInputSuite": ("vecmem.testing.hostile", "HostileInputSuite"),
    "StateStoreSuite": ("vecmem.testing.state", "StateStoreSuite"),
    "ConversationStoreSuite": ("vecmem.testing.conversations", "ConversationStoreSuite"),
    "SessionSuite": ("vecmem.testing.sessions", "SessionSuite"),
    "CheckpointStoreSuite": ("vecmem.testing.checkpoints", "CheckpointStoreSuite"),
    "FileStoreSuite": ("vecmem.testing.knowledge_fs", "KnowledgeStoreSuite"),
    "KnowledgeStoreSuite": ("vecmem.testing.knowledge_fs", "KnowledgeStoreSuite"),
    "LockSuite": ("vecmem.testing.locks", "LockSuite"),
    "KnowledgeTenancySuite": ("vecmem.testing.tenancy", "KnowledgeTenancySuite"),
    "ConversationTenancySuite": ("vecmem.testing.tenancy", "ConversationTenancySuite"),
    "StateTenancySuite": ("vecmem.testing.tenancy", "StateTenancySuite"),
    "CheckpointTenancySuite": ("vecmem.testing.tenancy", "CheckpointTenancySuite"),
    "AgentMemoryTenancySuite": ("vecmem.testing.tenancy", "AgentMemoryTenancySuite"),
    "StoreFactory": ("vecmem.testing._factory", "StoreFactory"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        if name in (
            "store_suite",
            "congruence",
            "hostile",
            "conversations",
            "state",
            "checkpoints",
            "knowledge_fs",
            "tenancy",
            "servers",
            "pinecone_standin",
        ):
            return importlib.import_module(f"vecmem.testing.{name}")  # submodules, as before
        raise AttributeError(f"module 'vecmem.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(target[0]), target[1])


__all__ = sorted(_LAZY)
