"""Test helpers shipped with vecmem: the store conformance suite and the congruence suite.

>>> from vecmem.testing import StoreSuite        # doctest: +SKIP
>>> class TestMyStore(StoreSuite): ...           # doctest: +SKIP

Imported lazily, so ``import vecmem.testing`` does not need pytest.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "StoreSuite": "vecmem.testing.store_suite",
    "CongruenceSuite": "vecmem.testing.congruence",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vecmem.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["CongruenceSuite", "StoreSuite"]
