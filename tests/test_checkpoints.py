"""The checkpoint suite on memory, SQLite, PostgreSQL and MariaDB, plus codec tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vecmem.checkpoints import Codec, MemoryCheckpointStore, generate_key, open_checkpoints
from vecmem.errors import ConfigurationError, IntegrityError
from vecmem.testing.checkpoints import CheckpointStoreSuite


@pytest.fixture(scope="module")
def sqlite_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    store = open_checkpoints(f"sqlite:///{tmp_path_factory.mktemp('ck')}/ck.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres_checkpoints(postgres_url: str) -> Iterator[Any]:
    store = open_checkpoints(postgres_url)
    yield store
    store.close()


@pytest.fixture(scope="module")
def mariadb_checkpoints(mariadb_url: str) -> Iterator[Any]:
    store = open_checkpoints(mariadb_url)
    yield store
    store.close()


class TestMemoryCheckpoints(CheckpointStoreSuite):
    @pytest.fixture
    def store_factory(self) -> Any:
        return lambda: MemoryCheckpointStore()


class TestSQLiteCheckpoints(CheckpointStoreSuite):
    @pytest.fixture
    def store_factory(self, sqlite_checkpoints: Any) -> Any:
        return lambda: sqlite_checkpoints


@pytest.mark.server
class TestPostgresCheckpoints(CheckpointStoreSuite):
    @pytest.fixture
    def store_factory(self, postgres_checkpoints: Any) -> Any:
        return lambda: postgres_checkpoints


@pytest.mark.server
class TestMariaDBCheckpoints(CheckpointStoreSuite):
    @pytest.fixture
    def store_factory(self, mariadb_checkpoints: Any) -> Any:
        return lambda: mariadb_checkpoints


@pytest.mark.parametrize(
    "key,cipher",
    [(None, "aes-gcm"), (generate_key(), "aes-gcm"), (generate_key("fernet"), "fernet")],
    ids=["plain", "aes-gcm", "fernet"],
)
def test_every_corruption_is_an_integrity_error(key: Any, cipher: Any) -> None:
    codec = Codec(key=key, cipher=cipher)
    blob, _ = codec.encode({"a": list(range(100))}, aad=b"x")
    assert codec.decode(blob, aad=b"x") == {"a": list(range(100))}
    for i in [0, 5, 9, 10, len(blob) // 2, len(blob) - 1]:
        bad = bytearray(blob)
        bad[i] ^= 0x41
        with pytest.raises(IntegrityError):
            codec.decode(bytes(bad), aad=b"x")
    for bad_blob in (b"", blob[:6], blob[:-3], b"not a checkpoint at all"):
        with pytest.raises(IntegrityError):
            codec.decode(bad_blob, aad=b"x")
    if key is not None and cipher == "aes-gcm":
        with pytest.raises(IntegrityError):  # bound to its checkpoint: moved, it fails
            codec.decode(blob, aad=b"y")


def test_uncompressed_codec_and_bad_keys() -> None:
    codec = Codec(compression=False)
    blob, size = codec.encode({"x": "y"})
    assert b'{"x":"y"}' in blob and size == 9
    assert codec.decode(blob) == {"x": "y"}
    with pytest.raises(ConfigurationError):
        Codec(key=b"short")
    with pytest.raises(ConfigurationError):
        Codec(key=b"x" * 32, cipher="fernet")
    with pytest.raises(ConfigurationError):
        Codec(cipher="rot13")  # type: ignore[arg-type]
    aes_blob, _ = Codec(key=generate_key()).encode({}, aad=b"")
    with pytest.raises(IntegrityError, match="aes-gcm"):
        Codec(key=generate_key("fernet"), cipher="fernet").decode(aes_blob)


def test_corrupted_row_in_sqlite_raises_integrity_error(tmp_path: Any) -> None:
    import sqlalchemy as sa

    from vecmem.checkpoints import SQLCheckpointStore

    store = SQLCheckpointStore(f"sqlite:///{tmp_path}/ck.db", key=generate_key())
    ck = store.save("th", {"v": 1})
    with store.db.write() as conn:
        conn.execute(
            sa.text("UPDATE vecmem_checkpoints SET state = :s WHERE id = :i"),
            {"s": b"VMCP\x01\x10\x00\x00\x00\x00garbage", "i": ck.id},
        )
    with pytest.raises(IntegrityError, match=ck.id):
        store.get(ck.id)
    store.close()


def test_open_checkpoints_rejects_unknown_schemes() -> None:
    with pytest.raises(ConfigurationError):
        open_checkpoints("redis://localhost")


def _old_schema_db(url: str) -> None:
    """A database as 0.1 left it: checkpoints without the ``failed`` column, schema version 1."""
    import sqlalchemy as sa

    store = open_checkpoints(url, tenant="old")
    store.save("th", {"i": 0}, tags=["v1"])
    store.save("th", {"i": 1})
    store.close()
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE vecmem_checkpoints DROP COLUMN failed")
        conn.exec_driver_sql("UPDATE vecmem_schema SET version = 1 WHERE component = 'checkpoints'")
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/old.db"
        return
    import uuid

    import sqlalchemy as sa

    base = request.getfixturevalue("postgres_url")
    name = f"ck_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        base.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield base.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


def test_old_checkpoint_tables_gain_the_failed_flag(fresh_db_url: str) -> None:
    _old_schema_db(fresh_db_url)
    store = open_checkpoints(fresh_db_url, tenant="old")
    try:
        old = store.history("th")
        assert [i.failed for i in old] == [False, False] and old[1].tags == ("v1",)
        assert store.get(old[0].id).state == {"i": 1}
        bad = store.save("th", {"i": 2}, failed=True)
        assert [i.id for i in store.find(failed=True)] == [bad.id]
        assert store.prune(thread_id="th", keep_last=1, keep_failed=True) == 2
        assert [i.id for i in store.history("th")] == [bad.id]
        assert store.db.schema_version("checkpoints") == 2
    finally:
        store.close()
