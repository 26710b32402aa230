"""Fixtures for every test in the repository (tests/ and adapters/*/tests): real database
servers, each started once per session when a test asks.

``postgres_url``, ``mariadb_url``, ``redis_url`` and ``chroma_url`` give a connection URL (see
:mod:`vecmem.testing._infra.servers`). ``VECMEM_TEST_<NAME>_URL`` (e.g. ``VECMEM_TEST_POSTGRES_URL``)
points a fixture at a server of your own instead. A server that cannot start fails the tests
that need it when ``CI`` is set or ``VECMEM_REQUIRE_SERVERS=1`` (``./dev test`` sets it), and
skips them, saying why, otherwise. Tests that use these fixtures get the ``server`` marker, so
``-m "not server"`` runs only what needs no server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import pytest

from vecmem.testing._infra import servers

SERVER_FIXTURES = {"postgres_url", "mariadb_url", "redis_url", "chroma_url"}


def servers_required() -> bool:
    """True when a missing server must fail the run instead of skipping tests."""
    ci = os.environ.get("CI", "").strip().lower()
    return ci not in ("", "0", "false", "no") or os.environ.get("VECMEM_REQUIRE_SERVERS") == "1"


_failed: dict[str, str] = {}  # server -> why it did not start; tried once per session


def _serve(name: str, start: Callable[[], contextlib.AbstractContextManager[str]]) -> Iterator[str]:
    given = os.environ.get(f"VECMEM_TEST_{name.upper()}_URL")
    if given:
        yield given
        return
    if name not in _failed:
        stack = contextlib.ExitStack()
        try:
            url = stack.enter_context(start())
        except Exception as exc:  # noqa: BLE001 - ServerStartError, or a missing package
            _failed[name] = f"{type(exc).__name__}: {exc}"
        else:
            with stack:
                yield url
            return
    if servers_required():
        pytest.fail(f"{name} test server did not start: {_failed[name]}", pytrace=False)
    pytest.skip(f"{name} test server unavailable: {_failed[name].splitlines()[0]}")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """``postgresql://vecmem:PW@127.0.0.1:PORT/vecmem``, superuser, pgvector available."""
    yield from _serve("postgres", servers.postgres)


@pytest.fixture(scope="session")
def mariadb_url() -> Iterator[str]:
    """``mysql://vecmem:PW@127.0.0.1:PORT/vecmem``; the user may create databases."""
    yield from _serve("mariadb", servers.mariadb)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0``."""
    yield from _serve("redis", servers.redis)


@pytest.fixture(scope="session")
def chroma_url() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a Chroma server."""
    yield from _serve("chroma", servers.chroma)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)
