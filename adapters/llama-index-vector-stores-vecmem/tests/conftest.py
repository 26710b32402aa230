"""Fixtures for the llama-index-vector-stores-vecmem tests.

``postgres_url``: a real PostgreSQL + pgvector server (:func:`vecmem.testing.servers.postgres`),
started once per session, with the semantics of the repository's ``tests/conftest.py``:
``VECMEM_TEST_POSTGRES_URL`` points it at your own server; a server that cannot start fails the
tests under CI (``CI`` or ``VECMEM_REQUIRE_SERVERS=1``) and skips them, saying why, otherwise.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from vecmem.testing import servers

HERE = Path(__file__).parent


def _servers_required() -> bool:
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in ("", "0", "false", "no") or os.environ.get("VECMEM_REQUIRE_SERVERS") == "1"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("VECMEM_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(servers.postgres())
        except Exception as exc:  # noqa: BLE001 - ServerStartError, or a missing package
            if _servers_required():
                pytest.fail(f"postgres test server did not start: {exc}", pytrace=False)
            pytest.skip(f"postgres test server unavailable ({type(exc).__name__}): "
                        f"{str(exc).splitlines()[0]}")
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents and "postgres_url" in getattr(
            item, "fixturenames", ()
        ):
            item.add_marker(pytest.mark.server)
