"""Relational backups (vecmem.lifecycle.relational): conversations, state, checkpoints and
agent-memory history copied between SQLite, PostgreSQL and MariaDB (real servers), whole or by
tenant, verified; a changed row is caught; a copy killed half way and run again is exact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from vecmem.agent_memory import AgentMemory
from vecmem.checkpoints.sql import SQLCheckpointStore
from vecmem.conversations.base import Message
from vecmem.conversations.sql import SQLConversationStore
from vecmem.db import Database
from vecmem.embedders import HashingEmbedder
from vecmem.errors import ConfigurationError, IntegrityError
from vecmem.lifecycle.relational import copy_relational, verify_relational
from vecmem.memory import VectorMemory
from vecmem.state.sql import SQLStateStore

ROOT = Path(__file__).resolve().parent.parent


def _fill(url: str) -> str:
    for tenant in ("acme", "globex"):
        conv = SQLConversationStore(url).with_tenant(tenant)
        for s in range(3):
            conv.add_messages(
                "u1",
                f"s{s}",
                [Message("user", f"hello {tenant} {s} ü"), Message("assistant", f"hi {s}")],
            )
        conv.close()
        state = SQLStateStore(url).with_tenant(tenant)
        for k in range(5):
            state.set("ns", f"k{k}", {"v": k, "t": tenant, "f": 0.1 * k})
        state.close()
        ck = SQLCheckpointStore(url, tenant=tenant)
        for i in range(4):
            ck.save("run", {"step": i, "blob": "x" * 50})
        ck.close()
    db = Database(url)
    am = AgentMemory(VectorMemory(embedder=HashingEmbedder(32)), db=db)
    for i in range(6):
        am.remember(f"user likes topic {i}", user_id="u1")
    db.close()
    return url


def _snapshot(url: str, tenant: str) -> dict[str, object]:
    """What a user reads back through the public APIs."""
    conv = SQLConversationStore(url).with_tenant(tenant)
    state = SQLStateStore(url).with_tenant(tenant)
    ck = SQLCheckpointStore(url, tenant=tenant)
    out = {
        "messages": [
            (m.role, m.content, m.seq) for s in range(3) for m in conv.get_messages("u1", f"s{s}")
        ],
        "sessions": sorted((s.session_id, s.message_count) for s in conv.list_sessions("u1")),
        "state": {k: state.get("ns", k) for k in state.keys("ns")},
        "checkpoints": [ck.get(i.id).state for i in ck.history("run")],
    }
    conv.close(), state.close(), ck.close()
    return out


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return _fill(f"sqlite:///{tmp_path / 'src.db'}")


def _fresh(url: str, kind: str) -> Iterator[str]:
    """A new, empty database on the server behind ``url``."""
    name = f"lc_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        url.replace("mysql://", "mysql+pymysql://").replace(
            "postgresql://", "postgresql+psycopg://"
        ),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    base, _, _ = url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f"DROP DATABASE {name}" + (" WITH (FORCE)" if kind == "pg" else "")))
        admin.dispose()


@pytest.fixture
def pg(postgres_url: str) -> Iterator[str]:
    yield from _fresh(postgres_url, "pg")


@pytest.fixture
def maria(mariadb_url: str) -> Iterator[str]:
    yield from _fresh(mariadb_url, "maria")


def test_round_trip_sqlite_postgres_mariadb_sqlite(
    sqlite_url: str, pg: str, maria: str, tmp_path: Path
) -> None:
    back = f"sqlite:///{tmp_path / 'back.db'}"
    r1 = copy_relational(sqlite_url, pg)
    assert r1.rows["vecmem_conv_messages"] == 12 and r1.rows["vecmem_state"] == 10
    assert r1.rows["vecmem_checkpoints"] == 8 and r1.rows["vecmem_memory_versions"] == 6
    copy_relational(pg, maria)
    copy_relational(maria, back)
    for tenant in ("acme", "globex"):
        want = _snapshot(sqlite_url, tenant)
        assert _snapshot(pg, tenant) == want
        assert _snapshot(maria, tenant) == want
        assert _snapshot(back, tenant) == want
    assert verify_relational(sqlite_url, back)["vecmem_memory_changes"] >= 6
    copy_relational(sqlite_url, back)  # again: idempotent, still verified
    assert verify_relational(sqlite_url, back)["vecmem_conv_messages"] == 12


def test_by_tenant_and_part(sqlite_url: str, tmp_path: Path) -> None:
    out = f"sqlite:///{tmp_path / 'acme.db'}"
    r = copy_relational(sqlite_url, out, parts=["conversations", "state"], tenants=["acme"])
    assert r.rows["vecmem_conv_messages"] == 6 and "vecmem_checkpoints" not in r.rows
    assert SQLStateStore(out).with_tenant("globex").keys("ns") == []
    assert _snapshot(out, "acme")["state"] == _snapshot(sqlite_url, "acme")["state"]
    with pytest.raises(ConfigurationError):
        copy_relational(sqlite_url, out, parts=["nope"])


def test_a_changed_row_fails_verification(sqlite_url: str, tmp_path: Path) -> None:
    out = f"sqlite:///{tmp_path / 'b.db'}"
    copy_relational(sqlite_url, out)
    db = Database(out)
    with db.write() as c:
        c.execute(
            sa.text(
                "UPDATE vecmem_state SET value = '{\"v\": 99}' WHERE key = 'k3' AND tenant = 'acme'"
            )
        )
    db.close()
    with pytest.raises(IntegrityError, match="vecmem_state"):
        verify_relational(sqlite_url, out)


_CHILD = """
import os, signal, sys
from vecmem.lifecycle import relational
calls = 0
def fault(point):
    global calls
    calls += 1
    if calls == 3:
        os.kill(os.getpid(), signal.SIGKILL)
relational._fault = fault
relational.copy_relational(sys.argv[1], sys.argv[2], page=2)
"""


def test_kill_during_copy_then_rerun_is_exact(sqlite_url: str, pg: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, sqlite_url, pg],
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    with pytest.raises(IntegrityError):
        verify_relational(sqlite_url, pg)  # half copied, and the check says so
    copy_relational(sqlite_url, pg, page=2)
    assert verify_relational(sqlite_url, pg)["vecmem_conv_messages"] == 12
    assert _snapshot(pg, "acme") == _snapshot(sqlite_url, "acme")


def test_cli_backup(sqlite_url: str, tmp_path: Path) -> None:
    from vecmem.cli import main

    out = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["backup", sqlite_url, out, "--parts", "state", "--tenant", "globex"]) == 0
    assert SQLStateStore(out).with_tenant("globex").get("ns", "k4") == {
        "v": 4,
        "t": "globex",
        "f": 0.4,
    }
    assert SQLStateStore(out).with_tenant("acme").keys("ns") == []
