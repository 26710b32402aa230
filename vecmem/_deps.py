"""Lazy import of optional dependencies, naming the pip extra that installs them."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

from vecmem.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``vecmem[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc


def usearch_index() -> Any:
    """``usearch.index.Index``, imported after onnxruntime whenever onnxruntime is installed.

    Importing onnxruntime (1.32.0) once usearch (2.26.6) is loaded kills the process: SIGSEGV in
    libstdc++'s ``codecvt`` during onnxruntime's static initialisation (usearch's extension
    carries its own libstdc++ and loads NumKong with ``RTLD_GLOBAL``). The other order works, so
    onnxruntime, when installed (``vecmem[onnx]``, or chromadb's dependency), is imported first.
    """
    if (
        "onnxruntime" not in sys.modules
        and "usearch.index" not in sys.modules
        and importlib.util.find_spec("onnxruntime") is not None
    ):
        importlib.import_module("onnxruntime")
    return importlib.import_module("usearch.index").Index
