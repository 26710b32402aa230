"""Lazy import of optional dependencies, naming the pip extra that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from vecmem.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``vecmem[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
