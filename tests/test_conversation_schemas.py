"""Schema-per-tenant isolation on PostgreSQL: each tenant's conversation tables in a schema of its
own (the whole conversation suite, tenancy probes included), rows where they belong, and pooled
connections that go back to the default schema for stores without it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from vecmem.conversations import Message
from vecmem.conversations.sql import SQLConversationStore, tenant_schema
from vecmem.db import Database
from vecmem.errors import ConfigurationError, NotFoundError
from vecmem.testing.conversations import ConversationStoreSuite

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[Database]:
    db = Database(postgres_url)
    yield db
    with db.write() as conn:  # drop the schemas these tests made
        names = conn.execute(
            sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'vecmem_t_%'")
        ).scalars()
        for name in list(names):
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
    db.close()


class TestSchemaPerTenant(ConversationStoreSuite):
    @pytest.fixture
    def store_factory(self, database: Database) -> Any:
        return lambda: SQLConversationStore(database, schema_per_tenant=True)


def _tables_in(db: Database, schema: str) -> dict[str, int]:
    with db.read() as conn:
        out = {}
        for table in ("vecmem_conv_sessions", "vecmem_conv_messages"):
            out[table] = conn.execute(
                sa.text(f'SELECT count(*) FROM "{schema}".{table}')
            ).scalar_one()
        return out


def test_rows_live_in_the_tenants_schema(database: Database) -> None:
    a = SQLConversationStore(database, tenant="Acme", schema_per_tenant=True)
    b = a.with_tenant("acme")  # differs only in case: another schema
    assert tenant_schema("Acme") != tenant_schema("acme")
    a.add_messages("u", "s", [Message("user", "acme's"), Message("user", "second")])
    b.add_messages("u", "s", [Message("user", "the other tenant's")])
    assert _tables_in(database, tenant_schema("Acme")) == {
        "vecmem_conv_sessions": 1,
        "vecmem_conv_messages": 2,
    }
    assert _tables_in(database, tenant_schema("acme"))["vecmem_conv_messages"] == 1
    assert [m.content for m in a.get_messages("u", "s")] == ["acme's", "second"]
    shared = SQLConversationStore(database, tenant="Acme")  # the shared tables: not there
    with pytest.raises(NotFoundError):
        shared.get_session("u", "s")
    shared.add_messages("u", "public", [Message("user", "in the shared tables")])
    assert [s.session_id for s in a.list_sessions("u")] == ["s"]  # pooled connections switch
    with database.read() as conn:
        assert conn.execute(sa.text("SHOW search_path")).scalar_one() != tenant_schema("Acme")
    shared.delete_session("u", "public")


def test_schema_per_tenant_needs_postgres(tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError):
        SQLConversationStore(f"sqlite:///{tmp_path}/c.db", schema_per_tenant=True)


def test_the_registry_opens_a_schema_per_tenant(postgres_url: str, database: Database) -> None:
    from vecmem.registry import CONVERSATION_STORES

    store = CONVERSATION_STORES.create(postgres_url, tenant="reg-tenant", schema_per_tenant=True)
    store.add_messages("u", "s", [Message("user", "hi")])
    assert _tables_in(database, tenant_schema("reg-tenant"))["vecmem_conv_messages"] == 1
    store.close()
