"""The shared relational connection: URLs, error translation, schema versions and migrations
that are additive and safe when two processes run them at once (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from vecmem.db import Database, Key, Migration, normalize_url
from vecmem.errors import AuthenticationError, BackendUnavailableError, ConfigurationError

# Migrations of one component: step 1 creates a table, step 2 adds a column and an index; each
# step logs who applied it and lingers, so that two processes running them overlap.
DEFS = textwrap.dedent("""
    import os, time
    import sqlalchemy as sa
    from vecmem.db import Key, Migration

    def build(name):
        meta = sa.MetaData()
        table = sa.Table(name, meta, sa.Column("id", Key(64), primary_key=True),
                         sa.Column("note", sa.Text, nullable=True))
        log = sa.Table(name + "_log", meta, sa.Column("step", sa.Integer, primary_key=True),
                       sa.Column("pid", sa.Integer))

        def step(n, apply):
            def run(m):
                apply(m)
                m.create_table(log)
                m.conn.execute(sa.insert(log).values(step=n, pid=os.getpid()))
                time.sleep(0.2)
            return Migration(f"step {n}", run)

        return [step(1, lambda m: m.create_table(table)),
                step(2, lambda m: (m.add_column(table, "note"),
                                   m.create_index(sa.Index(name + "_ix", table.c.note))))]
""")
MAIN = textwrap.dedent("""
    import sys
    from vecmem.db import Database
    db = Database(sys.argv[1])
    print(db.migrate(sys.argv[2], build(sys.argv[2])))
    db.close()
""")


def _check_concurrent_migrations(url: str) -> None:
    name = f"t_{uuid.uuid4().hex[:10]}"
    defs: dict[str, Any] = {}
    exec(DEFS, defs)
    db = Database(url)
    try:
        assert db.migrate(name, defs["build"](name)[:1]) == 1  # version 1: no "note" column
        assert db.schema_version(name) == 1
        with db.write() as conn:
            conn.execute(sa.text(f"INSERT INTO {name} (id) VALUES ('kept')"))
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", DEFS + MAIN, url, name],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]  # upgrade to version 2 from two processes at once
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert out.strip() == "2"
        assert db.schema_version(name) == 2
        with db.read() as conn:
            steps = conn.execute(sa.text(f"SELECT step FROM {name}_log ORDER BY step")).all()
            rows = conn.execute(sa.text(f"SELECT id, note FROM {name}")).all()
            cols = {c["name"] for c in sa.inspect(conn).get_columns(name)}
        assert [s[0] for s in steps] == [1, 2]  # each step ran exactly once
        rows = [(r[0].decode() if isinstance(r[0], bytes) else r[0], r[1]) for r in rows]
        assert rows == [("kept", None)] and cols == {"id", "note"}  # additive: data kept
    finally:
        db.close()


def test_concurrent_migrations_sqlite(tmp_path: Path) -> None:
    _check_concurrent_migrations(f"sqlite:///{tmp_path}/m.db")


def test_concurrent_migrations_postgres(postgres_url: str) -> None:
    _check_concurrent_migrations(postgres_url)


def test_concurrent_migrations_mariadb(mariadb_url: str) -> None:
    _check_concurrent_migrations(mariadb_url)


def test_migrate_is_recorded_and_idempotent(tmp_path: Path) -> None:
    calls: list[int] = []
    meta = sa.MetaData()
    table = sa.Table("things", meta, sa.Column("id", Key(), primary_key=True))
    steps = [Migration("one", lambda m: (calls.append(1), m.create_table(table)) and None)]
    url = f"sqlite:///{tmp_path}/x.db"
    with Database(url) as db:
        assert db.schema_version("things") == 0
        assert db.migrate("things", steps) == 1 and db.migrate("things", steps) == 1
    with Database(url) as db:  # a new process-level handle: version read from the table
        assert db.migrate("things", steps) == 1
        assert db.schema_version("things") == 1
    assert calls == [1]


def test_urls() -> None:
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("mysql://u@h/db") == "mysql+pymysql://u@h/db"
    assert normalize_url("mariadb://u@h/db") == "mysql+pymysql://u@h/db"
    assert normalize_url("postgresql+asyncpg://h/db") == "postgresql+asyncpg://h/db"
    assert normalize_url("sqlite:///a.db") == "sqlite:///a.db"
    for bad in ("oracle://h/db", "not a url", "redis://h"):
        with pytest.raises(ConfigurationError):
            normalize_url(bad)
    db = Database("postgresql://user:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in db.safe_url and "hunter2" not in repr(db)
    db.close()


def test_unreachable_server_is_backend_unavailable() -> None:
    from vecmem.testing._infra.servers import free_port

    db = Database(f"postgresql://u:p@127.0.0.1:{free_port()}/db?connect_timeout=2")
    with pytest.raises(BackendUnavailableError):
        with db.read() as conn:
            conn.execute(sa.text("SELECT 1"))
    db.close()


@pytest.mark.parametrize("fixture", ["postgres_url", "mariadb_url"])
def test_wrong_password_is_an_authentication_error(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    url = sa.make_url(request.getfixturevalue(fixture)).set(password="wrong")
    db = Database(url.render_as_string(hide_password=False))
    with pytest.raises(AuthenticationError):
        db.migrate("x", [])
    db.close()


def test_in_memory_sqlite_is_one_shared_database() -> None:
    from vecmem.state import SQLStateStore

    db = Database("sqlite://")
    a = SQLStateStore(db, tenant="a")
    a.set("ns", "k", 1)
    assert SQLStateStore(db, tenant="a").get("ns", "k") == 1
    db.close()
