"""Session operations beyond the shared suite: databases made by the previous version (schema 1:
no limits, no participants) open, migrate and keep their data; purging really deletes the rows;
JSON files of the previous version load; the asyncio wrapper forwards every session call."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from vecmem._keys import MAX_KEY, MAX_TENANT
from vecmem.conversations import (
    AsyncConversationStore,
    JSONConversationStore,
    MemoryConversationStore,
    Message,
)
from vecmem.conversations.sql import SQLConversationStore
from vecmem.db import Database, Key, Migration, Text, Timestamp
from vecmem.errors import PermissionDeniedError


def _v1_tables() -> list[sa.Table]:
    """The conversation tables exactly as vecmem created them before sessions had limits."""
    meta = sa.MetaData()

    def ids() -> list[sa.Column[str]]:
        return [
            sa.Column("tenant", Key(MAX_TENANT), primary_key=True),
            sa.Column("user_id", Key(MAX_KEY), primary_key=True),
            sa.Column("session_id", Key(MAX_KEY), primary_key=True),
        ]

    sessions = sa.Table(
        "vecmem_conv_sessions",
        meta,
        *ids(),
        sa.Column("agent_id", Key(MAX_KEY), nullable=True),
        sa.Column("title", Text, nullable=True),
        sa.Column("metadata", Text, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.Column("message_count", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.Index("ix_vecmem_conv_sessions_updated", "tenant", "updated_at"),
        sa.Index("ix_vecmem_conv_sessions_user", "tenant", "user_id", "updated_at"),
        sa.Index("ix_vecmem_conv_sessions_agent", "tenant", "agent_id"),
    )
    tags = sa.Table(
        "vecmem_conv_tags",
        meta,
        *ids(),
        sa.Column("tag", Key(128), primary_key=True),
        sa.Index("ix_vecmem_conv_tags_tag", "tenant", "tag"),
    )
    messages = sa.Table(
        "vecmem_conv_messages",
        meta,
        *ids(),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("id", Key(MAX_KEY), nullable=False),
        sa.Column("role", Key(64), nullable=False),
        sa.Column("content", Text, nullable=False),
        sa.Column("metadata", Text, nullable=True),
        sa.Column("input_tokens", sa.BigInteger, nullable=True),
        sa.Column("output_tokens", sa.BigInteger, nullable=True),
        sa.Column("model", Key(MAX_KEY), nullable=True),
        sa.Column("cost", sa.Double, nullable=True),
        sa.Column("created_at", Timestamp, nullable=False),
    )
    return [sessions, tags, messages]


def _make_v1_database(url: str) -> None:
    sessions, tags, messages = _v1_tables()
    db = Database(url)
    try:
        db.migrate("conversations", [Migration("v1", lambda m: m.create_tables(*_v1_tables()))])
        key = {"tenant": "acme", "user_id": "alice", "session_id": "old"}
        with db.write() as conn:
            conn.execute(
                sa.insert(sessions),
                {
                    **key,
                    "agent_id": "ag",
                    "title": "kept",
                    "metadata": json.dumps({"k": 1}),
                    "created_at": 100.0,
                    "updated_at": 200.0,
                    "message_count": 2,
                    "input_tokens": 3,
                    "output_tokens": 4,
                    "cost": 0.5,
                },
            )
            conn.execute(sa.insert(tags), {**key, "tag": "t"})
            conn.execute(
                sa.insert(messages),
                [
                    {**key, "seq": i, "id": f"m{i}", "role": "user", "content": f"old {i}"}
                    | {"created_at": 150.0 + i}
                    for i in range(2)
                ],
            )
    finally:
        db.close()


def _check_upgraded(url: str) -> None:
    store = SQLConversationStore(url, tenant="acme")
    try:
        assert store.db.schema_version("conversations") == 2
        s = store.get_session("alice", "old")
        assert (s.title, s.agent_id, s.tags, s.metadata, s.message_count) == (
            "kept",
            "ag",
            ("t",),
            {"k": 1},
            2,
        )
        assert (s.input_tokens, s.output_tokens, s.expires_at, s.max_messages) == (3, 4, None, None)
        assert [m.content for m in store.get_messages("alice", "old")] == ["old 0", "old 1"]
        (m,) = store.add_messages("alice", "old", [Message("user", "new")])
        assert m.seq == 2
        store.set_session_limits("alice", "old", max_messages=2, overflow="trim_oldest")
        assert [m.content for m in store.get_messages("alice", "old")] == ["old 1", "new"]
        store.add_participant("alice", "old", "bob", permission="read")
        assert store.acting_as("bob").get_session("alice", "old").message_count == 2
        with pytest.raises(PermissionDeniedError):
            store.acting_as("bob").add_messages("alice", "old", [Message("user", "x")])
    finally:
        store.close()


@contextmanager
def _fresh_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of ``url`` (dropped afterwards)."""
    name = f"convmig_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        url.replace("mysql://", "mysql+pymysql://", 1).replace(
            "postgresql://", "postgresql+psycopg://", 1
        ),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            if url.startswith("postgres"):
                conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
            else:
                conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


def test_a_schema_1_sqlite_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    _make_v1_database(url)
    _check_upgraded(url)
    again = SQLConversationStore(url, tenant="acme")  # finds version 2 and changes nothing
    assert [m.content for m in again.get_messages("alice", "old")] == ["old 1", "new"]
    assert again.get_session("alice", "old").max_messages == 2
    again.close()


@pytest.mark.server
@pytest.mark.parametrize("server", ["postgres_url", "mariadb_url"])
def test_a_schema_1_server_database_is_migrated_and_keeps_its_data(
    server: str, request: pytest.FixtureRequest
) -> None:
    with _fresh_database(request.getfixturevalue(server)) as url:
        _make_v1_database(url)
        _check_upgraded(url)


def test_purge_deletes_every_row_of_an_expired_session(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/p.db"
    store = SQLConversationStore(url, tenant="acme")
    store.add_messages("u", "gone", [Message("user", "x")] * 3)
    store.save_session("u", "gone", tags=["t"])
    store.add_participant("u", "gone", "bob", permission="read")
    store.add_messages("u", "kept", [Message("user", "y")])
    store.set_session_limits("u", "gone", ttl=0.2)
    time.sleep(0.3)
    assert store.purge_expired() == 1
    with store.db.read() as conn:
        counts = {
            table: conn.execute(
                sa.text(f"SELECT session_id, count(*) FROM {table} GROUP BY session_id")
            ).all()
            for table in (
                "vecmem_conv_sessions",
                "vecmem_conv_messages",
                "vecmem_conv_tags",
                "vecmem_conv_participants",
            )
        }
    assert {t: [tuple(r) for r in rows] for t, rows in counts.items()} == {
        "vecmem_conv_sessions": [("kept", 1)],
        "vecmem_conv_messages": [("kept", 1)],
        "vecmem_conv_tags": [],
        "vecmem_conv_participants": [],
    }
    store.close()


def test_json_files_of_the_previous_version_load(tmp_path: Path) -> None:
    store = JSONConversationStore(tmp_path, tenant="acme")
    store.add_messages("u", "s", [Message("user", "hi")])
    (path,) = tmp_path.rglob("*.json")
    data = json.loads(path.read_text())
    del data["participants"]
    for key in ("expires_at", "max_messages", "overflow"):
        del data["session"][key]
    path.write_text(json.dumps(data))
    s = store.get_session("u", "s")
    assert (s.message_count, s.expires_at, s.max_messages, s.overflow) == (1, None, None, "refuse")
    assert store.list_participants("u", "s") == {}


def test_the_asyncio_wrapper_forwards_session_calls() -> None:
    async def run() -> None:
        store = AsyncConversationStore(MemoryConversationStore())
        await store.add_messages("u", "a", [Message("user", str(i)) for i in range(3)])
        await store.add_messages("u", "b", [Message("user", "b")])
        assert (await store.branch_session("u", "a", "c", at=2)).message_count == 2
        merged = await store.merge_sessions("u", "a", "b", strategy="interleave_by_time")
        assert merged.message_count == 4
        await store.set_session_limits("u", "a", max_messages=2, overflow="trim_oldest")
        assert [m.content for m in await store.get_messages("u", "a")] == ["2", "b"]
        await store.add_participant("u", "a", "bob", permission="read")
        assert await store.list_participants("u", "a") == {"bob": "read"}
        bob = store.acting_as("bob")
        assert bob.actor == "bob" and len(await bob.get_messages("u", "a")) == 2
        with pytest.raises(PermissionDeniedError):
            await bob.add_messages("u", "a", [Message("user", "x")])
        assert await store.remove_participant("u", "a", "bob") is True
        assert await store.purge_expired() == 0

    asyncio.run(run())


REDIS_WRITER = """
import sys, time
from vecmem.conversations import Message
from vecmem.conversations.redis import RedisConversationStore
store = RedisConversationStore(sys.argv[1], tenant=sys.argv[2])
time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # all start together
for i in range(40):
    store.add_messages("u", "s", [Message("user", f"{sys.argv[3]}-{i}")])
store.close()
"""


@pytest.mark.server
def test_redis_writers_in_several_processes_lose_nothing(redis_url: str) -> None:
    """Each write rewrites the session's record: the tenant lock keeps concurrent processes
    from overwriting one another's messages."""
    import subprocess
    import sys

    from vecmem.conversations.redis import RedisConversationStore

    tenant = f"procs-{uuid.uuid4().hex[:8]}"
    start = str(time.time() + 5)
    procs = [
        subprocess.Popen([sys.executable, "-c", REDIS_WRITER, redis_url, tenant, str(k), start])
        for k in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0
    store = RedisConversationStore(redis_url, tenant=tenant)
    got = store.get_messages("u", "s")
    assert [m.seq for m in got] == list(range(120))
    assert sorted(m.content for m in got) == sorted(f"{k}-{i}" for k in range(3) for i in range(40))
    assert store.get_session("u", "s").message_count == 120
    store.close()
