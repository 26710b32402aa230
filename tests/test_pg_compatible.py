"""PostgreSQL-compatible names users already type: ``neon``, ``xata`` (hosted PostgreSQL) and
``cockroachdb`` / ``cockroach`` / ``crdb`` open vecmem's PostgreSQL stores."""

from __future__ import annotations

import importlib.util

import pytest

from vecmem.conversations import Message
from vecmem.db import normalize_url
from vecmem.errors import ConfigurationError, MissingDependencyError
from vecmem.registry import CONVERSATION_STORES, FILE_STORES, STATE_STORES

PG_NAMES = ("neon", "xata", "cockroachdb", "cockroach", "crdb")


@pytest.mark.parametrize(
    "registry", [CONVERSATION_STORES, STATE_STORES, FILE_STORES], ids=lambda r: r.kind
)
def test_pg_compatible_names_are_aliases_of_postgres(registry: object) -> None:
    aliases = registry.list_aliases()  # type: ignore[attr-defined]
    assert {name: aliases.get(name) for name in PG_NAMES} == dict.fromkeys(PG_NAMES, "postgres")


@pytest.mark.parametrize("scheme", ["neon", "xata", "NEON"])
def test_hosted_postgres_urls_open_postgresql(scheme: str) -> None:
    assert normalize_url(f"{scheme}://u:pw@host/db") == "postgresql+psycopg://u:pw@host/db"
    assert normalize_url(f"{scheme}+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize("scheme", ["neon", "xata"])
def test_hosted_postgres_url_stores_round_trip(postgres_url: str, scheme: str) -> None:
    url = postgres_url.replace("postgresql://", f"{scheme}://", 1)
    conv = CONVERSATION_STORES.create(url, tenant=f"t-{scheme}")
    state = STATE_STORES.create(url, tenant=f"t-{scheme}")
    files = FILE_STORES.create(url, tenant=f"t-{scheme}")
    try:
        conv.add_messages("u", "s", [Message("user", "hi"), Message("assistant", "hello")])
        assert [m.content for m in conv.get_messages("u", "s")] == ["hi", "hello"]
        state.set("ns", "k", {"v": 1})
        assert state.get("ns", "k") == {"v": 1}
        files.write("/notes.md", "x")
        assert files.read("/notes.md") == b"x"
        assert conv.db.dialect == "postgresql"
    finally:
        for store in (conv, state, files):
            store.close()


@pytest.mark.parametrize("scheme", ["cockroachdb", "cockroach", "crdb"])
def test_cockroach_urls_use_the_cockroachdb_dialect(scheme: str) -> None:
    url = f"{scheme}://root@host:26257/defaultdb?sslmode=disable"
    if importlib.util.find_spec("sqlalchemy_cockroachdb") is None:
        with pytest.raises(MissingDependencyError, match=r"vecmem\[cockroachdb\]"):
            normalize_url(url)
    else:
        assert normalize_url(url) == (
            "cockroachdb+psycopg://root@host:26257/defaultdb?sslmode=disable"
        )


def test_unknown_scheme_names_the_compatible_ones() -> None:
    with pytest.raises(ConfigurationError, match="neon://"):
        normalize_url("oracle://u@h/db")
