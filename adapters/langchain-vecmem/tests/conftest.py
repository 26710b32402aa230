"""Hooks for the langchain-vecmem tests (the ``postgres_url`` fixture is the repository's, in
the root ``conftest.py``).

LangChain's standard suite declares its async tests without ``@pytest.mark.asyncio``; the hook
below marks the coroutine tests collected here so pytest-asyncio runs them in strict mode.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Iterator[None]:
    # trylast: this wrapper is the innermost, so it marks the items before pytest-asyncio's own
    # wrapper looks for the mark and turns them into coroutine-running items.
    outcome = yield
    if not inspect.iscoroutinefunction(obj) or HERE not in Path(str(collector.path)).parents:
        return
    result = outcome.get_result()
    for item in result if isinstance(result, list) else [result]:
        if isinstance(item, pytest.Function) and item.get_closest_marker("asyncio") is None:
            item.add_marker(pytest.mark.asyncio)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents and "postgres_url" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.server)
