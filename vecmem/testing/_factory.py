"""The one fixture every shared suite asks a backend's test file for: ``store_factory``.

``store_factory`` is a zero-argument callable returning the thing under test: a new, unconnected
vector store (:class:`~vecmem.testing.StoreSuite`, :class:`~vecmem.testing.CongruenceSuite`; called
again to reopen), a root store the suite makes tenants of (state, conversation, checkpoint and
file stores), or an agent memory (:class:`~vecmem.testing.AgentMemoryTenancySuite`). A suite
that needs one such object uses ``root_store`` (``store_factory()`` called once per test).

Until the next release a test file that still overrides the old ``backend`` fixture (a store,
not a callable) keeps working, with a DeprecationWarning.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

StoreFactory = Callable[[], Any]


class FactorySuite:
    """Base of every shared suite: the ``store_factory`` fixture to override and ``root_store``."""

    @pytest.fixture
    def store_factory(self, request: pytest.FixtureRequest) -> StoreFactory:
        if hasattr(type(self), "backend"):
            warnings.warn(
                f"{type(self).__name__}: the shared suites' `backend` fixture is now "
                "`store_factory`, a zero-argument callable returning the store (`backend` stops "
                "working in the next release)",
                DeprecationWarning,
                stacklevel=1,
            )
            return lambda: request.getfixturevalue("backend")
        pytest.fail(f"{type(self).__name__} must override the store_factory fixture")

    @pytest.fixture
    def root_store(self, store_factory: StoreFactory) -> Any:
        """``store_factory()``, once per test."""
        return store_factory()


__all__ = ["FactorySuite", "StoreFactory"]
