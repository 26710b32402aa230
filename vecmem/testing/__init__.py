"""Test helpers shipped with vecmem: the store conformance suite, the congruence suite and the
hostile-input suite.

>>> from vecmem.testing import StoreSuite        # doctest: +SKIP
>>> class TestMyStore(StoreSuite): ...           # doctest: +SKIP

Imported lazily, so ``import vecmem.testing`` does not need pytest. The shared suites check
with plain ``assert`` (they are pytest test classes, not library code); when pytest is installed
they are registered for its assertion rewriting, so a failing check shows both values.
"""

from __future__ import annotations

import importlib
from typing import Any

SUITES = ("store_suite", "congruence", "hostile", "conversations", "state", "checkpoints",
          "knowledge_fs", "tenancy")

try:
    import pytest
except ImportError:  # running without pytest: the suites are not used then
    pass
else:
    pytest.register_assert_rewrite(*(f"vecmem.testing.{name}" for name in SUITES))

_LAZY = {
    "StoreSuite": "vecmem.testing.store_suite",
    "CongruenceSuite": "vecmem.testing.congruence",
    "HostileInputSuite": "vecmem.testing.hostile",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vecmem.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["CongruenceSuite", "HostileInputSuite", "StoreSuite"]
