"""The shared relational connection: one SQLite file, PostgreSQL or MySQL/MariaDB for every store.

Conversations, state, checkpoints and the path-based knowledge store all take a
:class:`Database` (or a URL), so one database holds them all. It is SQLAlchemy Core 2.x
underneath: one code path for the three dialects.

Tables are created on first use and migrated through the ``vecmem_schema`` table, which records
one version per component. Migrations are additive (create table, add column, create index),
each step idempotent, and run under a database-wide lock (``pg_advisory_xact_lock`` on
PostgreSQL, ``GET_LOCK`` on MySQL, ``BEGIN IMMEDIATE`` on SQLite), so two processes starting at
once are safe.

URLs: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite://`` (in memory),
``postgresql://user:pw@host/db`` (psycopg 3, extra ``postgres``), ``mysql://user:pw@host/db``
or ``mariadb://...`` (PyMySQL, extra ``mysql``).
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from vecmem._deps import require
from vecmem._sqlite import SQLiteOptions
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidInputError,
    StorageFullError,
    StoreLockedError,
)
from vecmem.registry import COCKROACH_SCHEMES, POSTGRES_HOSTED

R = TypeVar("R")

KEY = 191
"""Length of indexed string columns: 191 utf8mb4 characters fit MySQL's index-prefix limits."""
TENANT = 64


class Key(sa.types.TypeDecorator[str]):
    """An indexed string compared byte for byte on every dialect.

    MySQL's default collations are case- and trailing-space-insensitive, so there it is stored
    as ``VARBINARY`` (UTF-8, 4 bytes per character reserved); elsewhere it is a ``VARCHAR``.
    """

    impl = sa.String
    cache_ok = True

    def __init__(self, length: int = KEY) -> None:
        super().__init__(length)
        self.chars = length

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import VARBINARY

            return dialect.type_descriptor(VARBINARY(self.chars * 4))
        return dialect.type_descriptor(sa.String(self.chars))

    # Processors only where needed: elsewhere strings go to the driver untouched (fast path).
    def bind_processor(self, dialect: sa.Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return _encode
        return None

    def result_processor(self, dialect: sa.Dialect, coltype: Any) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return _decode
        return None


def _encode(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


def _decode(value: Any) -> Any:
    return bytes(value).decode("utf-8") if isinstance(value, (bytes, bytearray)) else value


class _LongText(sa.types.TypeDecorator[str]):
    """TEXT, or LONGTEXT on MySQL (whose TEXT stops at 64 KiB)."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGTEXT

            return dialect.type_descriptor(LONGTEXT())
        return dialect.type_descriptor(sa.Text())


class _LongBlob(sa.types.TypeDecorator[bytes]):
    """BLOB/BYTEA, or LONGBLOB on MySQL (whose BLOB stops at 64 KiB)."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            from sqlalchemy.dialects.mysql import LONGBLOB

            return dialect.type_descriptor(LONGBLOB())
        return dialect.type_descriptor(sa.LargeBinary())


Text: sa.types.TypeEngine[str] = _LongText()
Blob: sa.types.TypeEngine[bytes] = _LongBlob()
Timestamp: sa.types.TypeEngine[float] = sa.Double()
"""Epoch seconds as a double on every dialect."""


MYSQL_ISOLATION = "READ COMMITTED"
"""Write transactions on MySQL/MariaDB run at READ COMMITTED, PostgreSQL's default, which the
stores are written for. At InnoDB's default REPEATABLE READ a ``SELECT ... FOR UPDATE`` of a
row that does not exist yet locks the gap: two writers creating different rows in one gap
(say two sessions of one user) each wait for the other's gap lock and deadlock, again on every
retry when 32 threads create sessions at once."""


def normalize_url(url: str) -> str:
    """Pick vecmem's driver for each dialect: psycopg 3 for PostgreSQL, PyMySQL for MySQL.

    ``neon://`` and ``xata://`` are PostgreSQL; ``cockroachdb://`` (``cockroach``, ``crdb``)
    uses sqlalchemy-cockroachdb's dialect over psycopg.

    >>> normalize_url("neon://u:pw@ep-x.neon.tech/app")
    'postgresql+psycopg://u:pw@ep-x.neon.tech/app'
    """
    if "://" not in url:
        raise ConfigurationError(f"not a database URL: {url!r} (e.g. sqlite:///vecmem.db)")
    scheme, rest = url.split("://", 1)
    base = scheme.split("+", 1)[0].lower()
    if base in POSTGRES_HOSTED:  # hosted PostgreSQL: the server is PostgreSQL itself
        scheme, base = "postgresql" + scheme[len(base) :], "postgresql"
    if base in COCKROACH_SCHEMES:
        # CockroachDB speaks PostgreSQL's protocol but reports its own version string, which
        # SQLAlchemy's postgresql dialect rejects; sqlalchemy-cockroachdb's dialect accepts it.
        require("sqlalchemy_cockroachdb", "cockroachdb", "CockroachDB")
        driver = scheme.split("+", 1)[1] if "+" in scheme else "psycopg"
        if driver == "psycopg":
            require("psycopg", "cockroachdb", "CockroachDB")
        scheme = "cockroachdb+" + driver
    elif base in ("postgresql", "postgres", "pg"):
        if "+" not in scheme:
            require("psycopg", "postgres", "PostgreSQL")
            scheme = "postgresql+psycopg"
        elif base != "postgresql":
            scheme = "postgresql+" + scheme.split("+", 1)[1]
    elif base in ("mysql", "mariadb"):
        if "+" not in scheme:
            require("pymysql", "mysql", "MySQL/MariaDB")
            scheme = "mysql+pymysql"
    elif base != "sqlite":
        raise ConfigurationError(
            f"unsupported database scheme {scheme!r}: use sqlite://, postgresql:// (neon://, "
            "xata://, cockroachdb://) or mysql://"
        )
    return f"{scheme}://{rest}"


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> str:
    """JSON text of a metadata mapping or a value (UTF-8, no ASCII escaping)."""
    return _ENCODER.encode(value)


def translate(exc: BaseException, what: str) -> BackendError:
    """A vecmem error for a driver or SQLAlchemy failure (chain it with ``from exc``)."""
    text = str(getattr(exc, "orig", None) or exc)
    low = text.lower()
    if "password authentication failed" in low or "access denied" in low:
        return AuthenticationError(f"{what}: {text}")
    if getattr(getattr(exc, "orig", None), "sqlstate", None) == "53100" or any(
        s in low
        for s in ("database or disk is full", "no space left on device", "disk full", "is full")
    ):
        return StorageFullError(f"{what}: the disk is full ({text}); nothing of the write was kept")
    if "database is locked" in low or "lock wait timeout" in low:
        return StoreLockedError(f"{what}: {text}")
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return BackendUnavailableError(f"{what}: {text}")
    if any(
        s in low
        for s in (
            "could not connect",
            "can't connect",
            "connection refused",
            "connection failed",
            "server closed the connection",
        )
    ):
        return BackendUnavailableError(f"{what}: {text}")
    return BackendError(f"{what}: {text}")


def _retryable(exc: sa.exc.DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or ""
    args = getattr(exc.orig, "args", ())
    mysql_code = args[0] if args and isinstance(args[0], int) else None
    return code in ("40001", "40P01") or mysql_code in (1213, 1205)


@dataclass(frozen=True)
class Migration:
    """One additive schema step. ``apply`` must be idempotent (use the :class:`Migrator`)."""

    description: str
    apply: Callable[[Migrator], None]


class Migrator:
    """Idempotent DDL helpers handed to each :class:`Migration` step."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def create_table(self, table: sa.Table) -> None:
        """Create ``table`` with its indexes unless it exists."""
        table.create(self.conn, checkfirst=True)

    def add_column(self, table: sa.Table, column_name: str) -> None:
        """Add ``table.c[column_name]`` (nullable or with a server default) unless present."""
        present = {c["name"] for c in sa.inspect(self.conn).get_columns(table.name)}
        if column_name in present:
            return
        column = table.c[column_name]
        ddl = sa.schema.CreateColumn(column).compile(dialect=self.conn.dialect)
        self.conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")

    def create_tables(self, *tables: sa.Table) -> None:
        """Create each table (with its indexes) unless it exists, in order."""
        for table in tables:
            self.create_table(table)

    def create_index(self, index: sa.Index) -> None:
        index.create(self.conn, checkfirst=True)


_schema_meta = sa.MetaData()
schema_table = sa.Table(
    "vecmem_schema",
    _schema_meta,
    sa.Column("component", Key(), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)


class Database:
    """A pooled connection to SQLite, PostgreSQL or MySQL/MariaDB shared by vecmem's stores.

    >>> db = Database("sqlite://")                       # in memory; "sqlite:///app.db" on disk
    >>> from vecmem.state import SQLStateStore
    >>> state = SQLStateStore(db, tenant="acme")
    >>> state.set("session", "step", 3)
    1
    >>> db.close()
    """

    def __init__(
        self,
        url: str = "sqlite:///vecmem.db",
        *,
        echo: bool = False,
        sqlite: SQLiteOptions | None = None,
    ) -> None:
        if sqlite is not None and not isinstance(sqlite, SQLiteOptions):
            raise ConfigurationError(f"sqlite must be SQLiteOptions, got {type(sqlite).__name__}")
        self.sqlite = sqlite or SQLiteOptions()
        self.url = normalize_url(url)
        self._lock: threading.RLock | None = None
        options: dict[str, Any] = {"echo": echo, "future": True}
        try:
            sa_url = sa.make_url(self.url)
        except (sa.exc.ArgumentError, ValueError) as exc:  # e.g. a port that is not a number
            raise ConfigurationError(f"malformed database URL: {exc}") from exc
        self.dialect = sa_url.get_backend_name()
        if self.dialect == "mariadb":
            self.dialect = "mysql"
        if sqlite is not None and self.dialect != "sqlite":
            raise ConfigurationError(f"sqlite= options need a SQLite URL, not {self.dialect}")
        if self.dialect == "sqlite":
            memory = sa_url.database in (None, "", ":memory:")
            timeout = self.sqlite.busy_timeout
            options["connect_args"] = {"check_same_thread": False, "timeout": timeout}
            if memory:
                options["poolclass"] = sa.pool.StaticPool
                self._lock = threading.RLock()  # one connection: serialise its transactions
        elif self.dialect == "mysql":
            options["pool_recycle"] = 3600
            options["pool_pre_ping"] = True
            options["isolation_level"] = MYSQL_ISOLATION
        else:
            options["pool_pre_ping"] = True
        try:
            self.engine = sa.create_engine(self.url, **options)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConfigurationError(f"cannot open database {self.safe_url}: {exc}") from exc
        self._reader: sa.Engine | None = None
        if self.dialect == "sqlite":
            self._setup_sqlite(memory)
        else:
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._migrated: set[str] = set()
        self._migrate_lock = threading.Lock()
        self._schemas: dict[str, Database] = {}
        if self.dialect == "postgresql":
            event.listen(self.engine, "engine_connect", _follow_search_path)

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _setup_sqlite(self, memory: bool) -> None:
        pragmas = self.sqlite.pragmas(memory=memory)
        vacuum = [self.sqlite.auto_vacuum_code()]  # checked on the first connection only

        @event.listens_for(self.engine, "connect")
        def _connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite quirk)
            cur = dbapi_conn.cursor()
            if vacuum[0] is not None:
                mode, vacuum[0] = vacuum[0], None
                if cur.execute("PRAGMA auto_vacuum").fetchone()[0] != mode:
                    cur.execute(f"PRAGMA auto_vacuum={mode}")
                    cur.execute("VACUUM")  # an existing file takes the new mode only so
            for pragma in pragmas:
                cur.execute(pragma)
            cur.close()

        @event.listens_for(self.engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            # Writers take the write lock up front: no deadlock upgrading a read lock later.
            read = conn.get_execution_options().get("vecmem_read", False)
            conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    # -- transactions -------------------------------------------------------------------------
    @contextmanager
    def _guard(self) -> Iterator[None]:
        if self._lock is None:
            yield
        else:
            with self._lock:
                yield

    @contextmanager
    def write(self, what: str = "write") -> Iterator[sa.Connection]:
        """A write transaction: committed on exit, rolled back on error."""
        with self._guard():
            try:
                with self.engine.begin() as conn:
                    yield conn
            except sa.exc.SQLAlchemyError as exc:
                raise translate(exc, f"{what} failed on {self.safe_url}") from exc

    @contextmanager
    def read(self, what: str = "read") -> Iterator[sa.Connection]:
        """A connection for reading: on SQLite a deferred transaction (one snapshot, no write
        lock), on servers autocommit (each statement sees committed data, as in their default
        READ COMMITTED transactions, without the BEGIN and ROLLBACK round trips)."""
        with self._guard():
            try:
                if self._reader is not None:  # server: autocommit, no BEGIN/ROLLBACK trips
                    with self._reader.connect() as conn:
                        yield conn
                    return
                with self.engine.connect() as conn:
                    conn = conn.execution_options(vecmem_read=True)
                    with conn.begin():
                        yield conn
            except sa.exc.SQLAlchemyError as exc:
                raise translate(exc, f"{what} failed on {self.safe_url}") from exc

    def transact(
        self,
        fn: Callable[[sa.Connection], R],
        *,
        what: str = "write",
        retries: int = 5,
        retry_integrity: bool = False,
    ) -> R:
        """Run ``fn(conn)`` in a write transaction, retried on deadlocks and serialisation
        failures (``fn`` must therefore be safe to run again); with ``retry_integrity`` also on
        a unique-key clash (two writers creating the same row: the retry sees it)."""
        for attempt in range(retries + 1):
            try:
                with self._guard(), self.engine.begin() as conn:
                    return fn(conn)
            except sa.exc.DBAPIError as exc:
                if attempt < retries and (
                    _retryable(exc) or retry_integrity and isinstance(exc, sa.exc.IntegrityError)
                ):
                    time.sleep(0.005 * 2**attempt)
                    continue
                raise translate(exc, f"{what} failed on {self.safe_url}") from exc
            except sa.exc.SQLAlchemyError as exc:
                raise translate(exc, f"{what} failed on {self.safe_url}") from exc
        raise AssertionError("unreachable")

    # -- dialect helpers ----------------------------------------------------------------------
    def upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        *,
        keys: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> None:
        """Insert ``rows``, overwriting columns ``update`` (default: all non-key) on key clash."""
        if not rows:
            return
        cols = (
            list(update)
            if update is not None
            else [c.name for c in table.columns if c.name not in keys and c.name in rows[0]]
        )
        stmt: Any
        insert: Any
        if self.dialect == "mysql":
            from sqlalchemy.dialects.mysql import insert as mysql_insert

            stmt = mysql_insert(table)
            stmt = stmt.on_duplicate_key_update(
                {c: stmt.inserted[c] for c in cols} or {keys[0]: stmt.inserted[keys[0]]}
            )
        else:
            if self.dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as pg_insert

                insert = pg_insert
            else:
                from sqlalchemy.dialects.sqlite import insert as sqlite_insert

                insert = sqlite_insert
            stmt = insert(table)
            if cols:
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(keys), set_={c: stmt.excluded[c] for c in cols}
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(keys))
        conn.execute(stmt, list(rows))

    def exact(self, column: Any) -> Any:
        """``column`` ordered by code point on every dialect (PostgreSQL databases often use a
        locale collation; SQLite and vecmem's MySQL key columns already compare bytes)."""
        return column.collate("C") if self.dialect == "postgresql" else column

    def insert_ignore(
        self,
        conn: sa.Connection,
        table: sa.Table,
        rows: Sequence[dict[str, Any]],
        *,
        keys: Sequence[str],
    ) -> None:
        """Insert ``rows``, leaving existing rows with the same key untouched."""
        self.upsert(conn, table, rows, keys=keys, update=())

    # -- migrations ---------------------------------------------------------------------------
    def migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        """Bring ``component``'s tables to ``len(migrations)``; a no-op once done in this process.

        Returns the schema version recorded. Steps newer than the recorded version run in
        order under the database-wide migration lock.
        """
        if component in self._migrated:
            return len(migrations)
        with self._migrate_lock:
            if component in self._migrated:
                return len(migrations)
            try:
                version = self._migrate(component, migrations)
            except sa.exc.SQLAlchemyError as exc:
                raise translate(exc, f"migrating {component} on {self.safe_url}") from exc
            self._migrated.add(component)
            return version

    def _migrate(self, component: str, migrations: Sequence[Migration]) -> int:
        with self._guard():
            if self.dialect == "mysql":
                with self.engine.connect() as conn:
                    got = conn.execute(sa.text("SELECT GET_LOCK('vecmem_schema', 120)")).scalar()
                    if got != 1:
                        raise StoreLockedError("timed out waiting for the schema migration lock")
                    try:
                        conn.commit()
                        return self._apply(conn, component, migrations, commit_each=True)
                    finally:
                        conn.execute(sa.text("SELECT RELEASE_LOCK('vecmem_schema')"))
                        conn.commit()
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    key = zlib.crc32(b"vecmem_schema")
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                return self._apply(conn, component, migrations, commit_each=False)

    def _apply(
        self,
        conn: sa.Connection,
        component: str,
        migrations: Sequence[Migration],
        *,
        commit_each: bool,
    ) -> int:
        schema_table.create(conn, checkfirst=True)
        current = (
            conn.execute(
                sa.select(schema_table.c.version).where(schema_table.c.component == component)
            ).scalar()
            or 0
        )
        migrator = Migrator(conn)
        for version, step in enumerate(migrations[current:], start=current + 1):
            step.apply(migrator)
            row = {"component": component, "version": version, "updated_at": time.time()}
            self.upsert(conn, schema_table, [row], keys=["component"])
            if commit_each:
                conn.commit()
        return max(current, len(migrations))

    def schema_version(self, component: str) -> int:
        """The version recorded for ``component`` (0 if never migrated)."""
        with self.read("reading schema version") as conn:
            if not sa.inspect(conn).has_table(schema_table.name):
                return 0
            return (
                conn.execute(
                    sa.select(schema_table.c.version).where(schema_table.c.component == component)
                ).scalar()
                or 0
            )

    def incremental_vacuum(self, pages: int | None = None) -> None:
        """Give free pages back to the file system (SQLite with ``auto_vacuum="incremental"``;
        ``pages``: at most that many, None: all)."""
        if self.dialect != "sqlite":
            raise ConfigurationError("incremental_vacuum is for SQLite databases")
        if pages is not None and (
            isinstance(pages, bool) or not isinstance(pages, int) or pages < 1
        ):
            raise InvalidInputError(f"pages must be a positive int or None, got {pages!r}")
        with self._guard():
            raw = self.engine.raw_connection()
            try:  # executescript steps the pragma to its end (execute frees one page only)
                raw.driver_connection.executescript(f"PRAGMA incremental_vacuum({pages or 0});")  # type: ignore[union-attr]
            except sqlite3.Error as exc:
                raise translate(exc, f"reclaiming free pages of {self.safe_url}") from exc
            finally:
                raw.close()

    def in_schema(self, schema: str) -> Database:
        """This PostgreSQL database with every statement in ``schema`` (created if missing;
        ``search_path`` is that schema alone), sharing the connection pool. Tables, the schema
        version record and raw SQL all resolve there, so one schema cannot see another's.

        >>> Database("postgresql://u@h/db").in_schema("tenant_a")  # doctest: +SKIP
        """
        if self.dialect != "postgresql":
            raise ConfigurationError(f"schemas need PostgreSQL, not {self.dialect}")
        with self._migrate_lock:
            view = self._schemas.get(schema)
            if view is None:
                view = copy.copy(self)
                view.engine = self.engine.execution_options(vecmem_search_path=schema)
                view._reader = view.engine.execution_options(isolation_level="AUTOCOMMIT")
                view._migrated, view._migrate_lock, view._schemas = set(), threading.Lock(), {}
                quoted = self.engine.dialect.identifier_preparer.quote_identifier(schema)
                with self.write(f"creating schema {schema}") as conn:
                    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
                self._schemas[schema] = view
        return view

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.safe_url!r})"


def _follow_search_path(conn: sa.Connection) -> None:
    """Point a pooled PostgreSQL connection at the schema its engine asks for (``in_schema``),
    or back at the default; a ``SET`` only when that changes, committed at once so no later
    rollback undoes it."""
    want = conn.get_execution_options().get("vecmem_search_path")
    pooled = conn.connection
    if pooled.info.get("vecmem_search_path") == want:
        return
    raw = pooled.dbapi_connection
    if raw is None:
        return
    quoted = conn.dialect.identifier_preparer.quote_identifier(want) if want else "DEFAULT"
    cur = raw.cursor()
    try:
        cur.execute(f"SET search_path TO {quoted}")
    finally:
        cur.close()
    if not getattr(raw, "autocommit", False):
        raw.commit()
    pooled.info["vecmem_search_path"] = want


def open_database(
    db: Database | str | None,
    default: str = "sqlite:///vecmem.db",
    *,
    sqlite: SQLiteOptions | None = None,
) -> tuple[Database, bool]:
    """``(database, owned)``: a URL opens a new :class:`Database` that the caller owns
    (with ``sqlite`` options; an open :class:`Database` keeps its own)."""
    if isinstance(db, Database):
        if sqlite is not None:
            raise ConfigurationError("sqlite= applies when a URL is opened, not to a Database")
        return db, False
    return Database(db or default, sqlite=sqlite), True


__all__ = [
    "Blob",
    "Database",
    "Key",
    "Migration",
    "Migrator",
    "SQLiteOptions",
    "Text",
    "Timestamp",
    "normalize_url",
    "open_database",
]
