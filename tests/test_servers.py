"""Each test server answers its real client, keeps data, and refuses a wrong password."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from vecmem.testing._infra import servers

pytestmark = pytest.mark.server


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        pytest.skip("the server URL has no password to get wrong")
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_postgres_has_pgvector_and_checks_passwords(postgres_url: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TEMP TABLE items (id int PRIMARY KEY, v vector(3), note text)")
        conn.execute(
            "INSERT INTO items VALUES (1, '[1,0,0]', 'naïve ✓'), (2, '[0,1,0]', 'b'),"
            " (3, '[0.9,0.1,0]', 'c')"
        )
        rows = conn.execute(
            "SELECT id, v <=> '[1,0,0]' AS d FROM items ORDER BY d LIMIT 2"
        ).fetchall()
        assert [r[0] for r in rows] == [1, 3]
        assert rows[0][1] == pytest.approx(0.0)
        assert conn.execute("SELECT note FROM items WHERE id = 1").fetchone() == ("naïve ✓",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(_with_password(postgres_url, "wrong-password"), connect_timeout=10)


def _mysql_connect(url: str):  # type: ignore[no-untyped-def]
    pymysql = pytest.importorskip("pymysql")
    u = urlsplit(url)
    return pymysql.connect(
        host=u.hostname,
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        database=u.path.lstrip("/"),
        charset="utf8mb4",
        connect_timeout=10,
    )


def test_mariadb_round_trip_and_checks_passwords(mariadb_url: str) -> None:
    pymysql = pytest.importorskip("pymysql")
    conn = _mysql_connect(mariadb_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMPORARY TABLE t (id INT PRIMARY KEY, note TEXT) DEFAULT CHARSET=utf8mb4"
            )
            cur.execute("INSERT INTO t VALUES (%s, %s)", (1, "naïve ✓ 日本 🙂"))
            cur.execute("SELECT note FROM t WHERE id = 1")
            assert cur.fetchone() == ("naïve ✓ 日本 🙂",)
    finally:
        conn.close()
    with pytest.raises(pymysql.err.OperationalError) as info:
        _mysql_connect(_with_password(mariadb_url, "wrong-password"))
    assert info.value.args[0] == 1045  # access denied


def test_redis_round_trip(redis_url: str) -> None:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.ping()
        client.set("vecmem:test", "ünïcode")
        assert client.get("vecmem:test") == "ünïcode".encode()
        client.delete("vecmem:test")
    finally:
        client.close()


def test_chroma_round_trip(chroma_url: str) -> None:
    chromadb = pytest.importorskip("chromadb")
    u = urlsplit(chroma_url)
    client = chromadb.HttpClient(host=u.hostname, port=u.port)
    assert client.heartbeat() > 0
    col = client.create_collection("vecmem_server_test", metadata={"hnsw:space": "cosine"})
    try:
        col.add(
            ids=["a", "b", "c"],
            embeddings=[[1, 0, 0], [0, 1, 0], [0.9, 0.1, 0]],
            documents=["x", "y", "z"],
            metadatas=[{"n": 1}, {"n": 2}, {"n": 3}],
        )
        got = col.query(query_embeddings=[[1, 0, 0]], n_results=2)
        assert got["ids"] == [["a", "c"]]
        assert col.get(ids=["b"])["metadatas"] == [{"n": 2}]
    finally:
        client.delete_collection("vecmem_server_test")


def test_a_stopped_server_frees_its_port_and_directory(redis_url: str) -> None:
    """Asks for redis_url only to know that redis-server works here; starts a second one."""
    before = set(Path("/tmp").glob("vecmem-redis-*"))
    with servers.redis(password="s3cret") as url:
        port = urlsplit(url).port
        assert url == f"redis://:s3cret@127.0.0.1:{port}/0"
        mine = set(Path("/tmp").glob("vecmem-redis-*")) - before
        assert mine
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not any(p.exists() for p in mine)
