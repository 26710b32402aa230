"""PostgreSQL + pgvector adapter: vectors, filters, BM25 and hybrid fusion all run in SQL.

Tables (``T`` is the ``table`` argument, all in ``schema``)::

    T           sid, id, document_id, position, text, meta_json (the metadata as written),
                metadata (jsonb, generated from meta_json), content_hash, terms/tfs (the chunk's
                distinct tokens and their counts), length (tokens), embedding vector(dim)
    T_postings  (term, sid) -> tf, dl            one row per distinct token of a chunk
    T_terms     term -> df                       documents containing the term
    T_dfhist    df -> number of terms with that df
    T_meta      one row: the EmbeddingSpace, N, total length, next sid, mean idf

Indexes: HNSW (``vector_cosine_ops``) on the embedding, GIN (``jsonb_path_ops``) on the metadata,
btree on ``document_id``. Scores are similarities (``1 - cosine distance``).

The keyword leg is rank_bm25's BM25Okapi computed in SQL from the postings: idf
``ln(N - df + 0.5) - ln(df + 0.5)``, a negative idf replaced by ``epsilon * mean idf`` over the
vocabulary, kept exact under writes by the df histogram ``T_dfhist`` (the mean is a sum over the
distinct df values, refreshed in ``T_meta`` by every write). Hybrid search is one statement: both
legs are CTEs (top ``candidates`` each, the filter inside both), fused exactly as
:func:`vecmem.fusion.fuse` does (to float rounding; ``StoreSuite`` checks it), so only the top
``k`` rows leave the server.

Filtered vector search keeps recall: HNSW runs with pgvector 0.8's iterative index scans and is
asked for ``max(k, ef_search)`` matching rows, of which the best ``k`` by exact distance are kept;
when HNSW cannot produce its rows the same statement answers with an exact scan. A filter that
matches fewer than ``exact_filter_rows`` chunks, or a table under ``exact_threshold`` chunks, is
searched exactly.

Writes are one transaction each (rows by binary COPY) under a per-table advisory lock, which
keeps N, df and the histogram consistent when several clients write at once. Every row written
joins the HNSW graph; for a large load, ``with store.bulk_load(): ...`` builds it once instead.
The SQL lives in :mod:`._pgvector_sql`; :func:`from_url` reads ``postgresql://...?collection=kb``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    EmbeddingSpaceMismatchError,
    InvalidInputError,
    StoreLockedError,
    VecmemError,
)
from vecmem.filters import Filter
from vecmem.fusion import Fusion
from vecmem.stores import _pgvector_sql as pgsql
from vecmem.stores._pgvector_sql import Where, chunk, render
from vecmem.stores.base import Capabilities, validate_query_vector
from vecmem.stores.kit import Switchable
from vecmem.types import Chunk, EmbeddingSpace, Hit, Scored

psycopg = require("psycopg", "pgvector", "PostgreSQL")
_pgv = require("pgvector.psycopg", "pgvector", "PostgreSQL")

FORMAT = 1
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}\Z")
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_MAX_EF = 1000  # pgvector's limit for hnsw.ef_search
_HNSW_MAX_DIM = 2000  # pgvector's limit for an HNSW index on vector
_URL_KEYS = ("collection", "table", "schema")  # from_url's; the rest go to libpq
_STATEMENTS = ("query", "keyword", "hybrid", "remove", "index", "refresh", "copy")


class PgVector(Switchable):
    """A vector store in PostgreSQL with pgvector, with BM25 and hybrid search in SQL.

    >>> store = PgVector("postgresql://user:pw@localhost:5432/db", table="kb")  # doctest: +SKIP
    >>> mem = VectorMemory(store=store)                                         # doctest: +SKIP
    >>> mem.search("how do agents remember?", k=5, filter={"source": "a.md"})   # doctest: +SKIP

    ``hnsw_m``/``hnsw_ef_construction`` are the index build settings, ``ef_search`` the search
    list size (raised to the number of candidates asked for, up to 1000), ``iterative_scan``
    (``"relaxed_order"``, ``"strict_order"`` or ``"off"``) and ``max_scan_tuples`` pgvector 0.8's
    filtered-scan settings; below ``exact_threshold`` chunks search is exact, and so is a
    filtered search whose filter matches fewer than ``exact_filter_rows`` chunks.
    """

    name = "pgvector"
    capabilities = Capabilities(
        persistent=True,
        native_keyword=True,
        native_hybrid=True,
        transactions=True,
        concurrent_writers=True,
    )

    def __init__(
        self,
        db_url: str,
        *,
        table: str = "vecmem_chunks",
        schema: str = "public",
        hnsw_m: int = 16,
        hnsw_ef_construction: int = 128,
        ef_search: int = 100,
        iterative_scan: str = "relaxed_order",
        max_scan_tuples: int = 20_000,
        exact_threshold: int = 10_000,
        exact_filter_rows: int = 3_000,
        connect_timeout: int = 10,
    ) -> None:
        super().__init__()
        if not isinstance(db_url, str) or not db_url:
            raise ConfigurationError("PgVector needs db_url='postgresql://user:pw@host:port/db'")
        if not _TABLE.match(table) or table == pgsql.SPACES:
            raise ConfigurationError(
                f"table must match {_TABLE.pattern!r} and not be {pgsql.SPACES!r}, got {table!r}"
            )
        if not _SCHEMA.match(schema):
            raise ConfigurationError(f"schema must match {_SCHEMA.pattern!r}, got {schema!r}")
        if iterative_scan not in ("relaxed_order", "strict_order", "off"):
            raise ConfigurationError(
                f"iterative_scan must be relaxed_order, strict_order or off, not {iterative_scan!r}"
            )
        if hnsw_m < 2 or hnsw_ef_construction < 2 * hnsw_m or not 1 <= ef_search <= _MAX_EF:
            raise ConfigurationError(
                "need hnsw_m >= 2, hnsw_ef_construction >= 2 * hnsw_m and "
                f"1 <= ef_search <= {_MAX_EF}"
            )
        self.db_url = db_url
        self.table, self.schema, self.collection = table, schema, table
        self.hnsw_m, self.hnsw_ef_construction = hnsw_m, hnsw_ef_construction
        self.ef_search, self.iterative_scan = ef_search, iterative_scan
        self.max_scan_tuples, self.exact_threshold = max_scan_tuples, exact_threshold
        self.exact_filter_rows = exact_filter_rows
        self.connect_timeout = connect_timeout
        self._ef = 0  # hnsw.ef_search currently set on the session
        self._spaces = f'"{schema}".{pgsql.SPACES}'
        self._pin(table)
        self._physical = None  # read from the collection's pointer on first use

    def _pin(self, physical: str) -> None:
        """Use the tables of the space stored under ``physical`` (see :class:`Switchable`)."""
        super()._pin(physical)
        self._names = pgsql.table_names(self.schema, physical)
        self._qualified = f"{self.schema}.{physical}"
        self._sql = {
            key: render(getattr(pgsql, f"{key.upper()}_SQL"), **self._names) for key in _STATEMENTS
        }

    def __repr__(self) -> str:
        return f"PgVector(table={self._qualified!r})"

    # ----------------------------------------------------------------- kit hooks
    @property
    def where(self) -> str:
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.db_url)
        except psycopg.Error:
            return f"table {self._qualified} on PostgreSQL"
        host, port = info.get("host", "localhost"), info.get("port", 5432)
        return f"table {self._qualified} on PostgreSQL at {host}:{port}"

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        if not isinstance(exc, psycopg.Error):
            return None
        text = str(exc).lower()
        state = getattr(exc, "sqlstate", None) or ""
        if state.startswith("28") or "authentication failed" in text or "pg_hba.conf" in text:
            return AuthenticationError
        if state in ("55P03", "40P01") or "lock timeout" in text:
            return StoreLockedError
        refused_by_server = "fatal:" in text and not any(
            s in text for s in ("starting up", "shutting down", "in recovery", "too many")
        )
        if (
            state.startswith("08")
            or state in ("57P01", "57P02", "57P03", "53300")
            or isinstance(exc, psycopg.InterfaceError)
            or (isinstance(exc, psycopg.OperationalError) and not state and not refused_by_server)
        ):
            return BackendUnavailableError
        return BackendError

    def _open(self) -> Any:
        conn = psycopg.connect(
            self.db_url,
            autocommit=True,
            connect_timeout=self.connect_timeout,
            application_name="vecmem",
        )
        self._ef = 0
        if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
            self.prepare_session(conn)
        return conn

    def _c(self) -> Any:
        conn = self._client
        if conn is not None and (conn.closed or conn.broken):
            self._client = None  # the server dropped the session: open another
        return super()._c()  # (Switchable's: the pointer read once)

    def _release(self) -> None:
        with suppress(psycopg.Error):
            self._client.close()

    def prepare_session(self, conn: Any) -> None:
        """Register pgvector's types on ``conn`` and set the HNSW scan settings of this store."""
        _pgv.register_vector(conn)
        conn.execute(
            "SELECT set_config('hnsw.iterative_scan', %s, false), "
            "set_config('hnsw.max_scan_tuples', %s, false)",
            (self.iterative_scan, str(self.max_scan_tuples)),
        )

    @contextmanager
    def _db(self, what: str) -> Iterator[Any]:
        """The connection, under the store's lock, with psycopg errors translated."""
        with self._lock, self._errors(what):
            yield self._c()

    def _lock_table(self, conn: Any) -> None:
        """Take this table's advisory lock for the transaction (one writer at a time)."""
        conn.execute(pgsql.LOCK_SQL, {"ns": pgsql.LOCK_NS, "name": self._qualified})

    def _set_ef(self, conn: Any, candidates: int) -> None:
        ef = min(max(self.ef_search, candidates), _MAX_EF)
        if ef != self._ef:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
            self._ef = ef

    # ----------------------------------------------------------------- space and schema
    def _exists(self, conn: Any, suffix: str = "") -> bool:
        name = f'"{self.schema}"."{self._names["name"]}{suffix}"'
        return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None

    # ----------------------------------------------------------------- re-embedding: the switch
    def _pointer(self, conn: Any) -> tuple[str, str | None] | None:
        if conn.execute("SELECT to_regclass(%s)", (self._spaces,)).fetchone()[0] is None:
            return None
        row = conn.execute(
            f"SELECT physical, replaced FROM {self._spaces} WHERE collection = %s",
            (self.collection,),
        ).fetchone()
        return (row[0], row[1]) if row else None

    def _check_current(self, conn: Any) -> None:
        """Refuse a write into a space a switch replaced (call under the table's advisory lock,
        which the switch takes too: a write is either before it, and checked by it, or after)."""
        row = conn.execute(
            f"SELECT to_jsonb(m) ->> 'replaced_by' FROM {self._names['meta']} m"
        ).fetchone()
        self._refuse_replaced(row[0] if row else None)

    def _switch_pointer(self, new: Any, verify: Any, midway: Any) -> bool:
        """One transaction under both tables' advisory locks (no writer of either meanwhile):
        the two spaces compared in SQL (same ids with the same content hashes; ``verify`` is not
        needed), the pointer row written and the old space marked replaced (its writers are
        refused from then on). Atomic: a crash before the commit changes nothing."""
        old_n, new_n = self._names, new._names
        with self._db("switch the space") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (pgsql.LOCK_NS,))
            self._lock_table(conn)
            conn.execute(pgsql.LOCK_SQL, {"ns": pgsql.LOCK_NS, "name": new._qualified})
            n_old, n_new, differ = conn.execute(
                render(
                    pgsql.COMPARE_SQL,
                    old=old_n["chunks"],
                    new=new_n["chunks"],
                    old_meta=old_n["meta"],
                    new_meta=new_n["meta"],
                )
            ).fetchone()
            self._refuse_differing(n_old, n_new, differ)
            conn.execute(render(pgsql.SPACES_SQL, spaces=self._spaces))
            row = conn.execute(
                f"SELECT physical FROM {self._spaces} WHERE collection = %s FOR UPDATE",
                (self.collection,),
            ).fetchone()
            self._refuse_moved(row[0] if row else None, self.physical)
            conn.execute(
                f"INSERT INTO {self._spaces} (collection, physical, replaced) VALUES (%s, %s, %s) "
                "ON CONFLICT (collection) DO UPDATE SET physical = excluded.physical, "
                "replaced = excluded.replaced",
                (self.collection, new.physical, self.physical),
            )
            conn.execute(f"ALTER TABLE {old_n['meta']} ADD COLUMN IF NOT EXISTS replaced_by text")
            conn.execute(f"UPDATE {old_n['meta']} SET replaced_by = %s", (new.physical,))
            midway()
        return False

    def _drop_tables(self, conn: Any, physical: str) -> None:
        n = pgsql.table_names(self.schema, physical)
        conn.execute(pgsql.LOCK_SQL, {"ns": pgsql.LOCK_NS, "name": f"{self.schema}.{physical}"})
        conn.execute(
            f"DROP TABLE IF EXISTS {n['chunks']}, {n['postings']}, {n['terms']}, "
            f"{n['hist']}, {n['meta']}"
        )

    def _drop_physical(self, physical: str) -> None:
        with self._db("drop the old space") as conn, conn.transaction():
            self._drop_tables(conn, physical)
            conn.execute(
                f"UPDATE {self._spaces} SET replaced = NULL WHERE collection = %s",
                (self.collection,),
            )

    def _stored(self, conn: Any) -> EmbeddingSpace | None:
        if not self._exists(conn, "_meta"):
            return None
        row = conn.execute(f"SELECT space FROM {self._names['meta']}").fetchone()
        return EmbeddingSpace.from_json(row[0]) if row else None

    def _read_space(self) -> EmbeddingSpace | None:
        with self._db("read the embedding space") as conn:
            return self._stored(conn)

    def _create(self, space: EmbeddingSpace) -> EmbeddingSpace | None:
        """Create the tables (in one transaction under the advisory locks), or adopt those
        another client created meanwhile."""
        with self._db("create the tables") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (pgsql.LOCK_NS,))
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            self._lock_table(conn)
            stored = self._stored(conn)
            if stored is not None:
                return self._adopt(stored, space)
            self._check_foreign_table(conn, space)
            for text in pgsql.SCHEMA_SQL:
                conn.execute(render(text, **self._names, dim=str(int(space.dim))))
            if space.dim <= _HNSW_MAX_DIM:
                conn.execute(self._hnsw_sql())
            conn.execute(
                f"INSERT INTO {self._names['meta']} (format, space) VALUES (%s, %s)",
                (FORMAT, space.to_json()),
            )
        return None

    def _connected(self, space: EmbeddingSpace) -> None:
        with self._db("prepare the session") as conn:
            self.prepare_session(conn)  # the extension may have been created just now

    def _check_foreign_table(self, conn: Any, space: EmbeddingSpace) -> None:
        """A table of that name made by something else: refuse it, naming its dimension."""
        if not self._exists(conn):
            return
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attname = 'embedding' AND NOT attisdropped",
            (self._names["chunks"],),
        ).fetchone()
        if row and row[0] != f"vector({space.dim})":
            raise EmbeddingSpaceMismatchError(
                f"table {self._qualified} already exists with embedding {row[0]} but this call "
                f"uses dim={space.dim}; use another table (table=...)"
            )
        raise ConfigurationError(
            f"table {self._qualified} exists but was not created by vecmem "
            "(no metadata table); use another table name"
        )

    @contextmanager
    def bulk_load(self, *, maintenance_work_mem: str = "512MB") -> Iterator[PgVector]:
        """Load many chunks fast: the HNSW index is dropped on entry and built once on exit
        (pgvector builds an index many times faster than it inserts into one). Searches inside
        the block are exact. Should the process die inside it, enter and leave it again to
        rebuild the index.

        >>> with store.bulk_load():                                  # doctest: +SKIP
        ...     mem.add_documents(docs)
        """
        space = self._require_space()
        with self._db("drop the HNSW index") as conn:
            conn.execute(f"DROP INDEX IF EXISTS {self._names['hnsw']}")
        try:
            yield self
        finally:
            if space.dim <= _HNSW_MAX_DIM:
                with self._db("build the HNSW index") as conn, conn.transaction():
                    conn.execute(
                        "SELECT set_config('maintenance_work_mem', %s, true)",
                        (maintenance_work_mem,),
                    )
                    conn.execute(self._hnsw_sql())

    def _hnsw_sql(self) -> str:
        m, efc = str(int(self.hnsw_m)), str(int(self.hnsw_ef_construction))
        return render(pgsql.HNSW_SQL, **self._names, m=m, efc=efc)

    def drop(self) -> None:
        """Delete the collection's tables (all its chunks and the recorded space, and an old
        space a re-embedding left beside it)."""
        with self._db("drop the tables") as conn, conn.transaction():
            pointer = self._pointer(conn)
            for physical in dict.fromkeys([self.physical, *(p for p in pointer or () if p)]):
                self._drop_tables(conn, physical)
            if pointer is not None:
                conn.execute(
                    f"DELETE FROM {self._spaces} WHERE collection = %s", (self.collection,)
                )
        self.space = None

    # ----------------------------------------------------------------- writes
    def _rows(self, chunks: Sequence[Chunk], v: np.ndarray) -> list[list[Any]]:
        """COPY rows (sid 0-based until reserved), made before anything is written: the kit
        checked the batch, this what PostgreSQL cannot store (NUL, 64-bit positions)."""
        rows = []
        for i, c in enumerate(chunks):
            if any("\x00" in x for x in (c.text, c.document_id, c.id)):
                raise InvalidInputError(f"chunk {c.id!r}: text and ids must not hold NUL")
            if not isinstance(c.position, int) or not -(2**31) <= c.position < 2**31:
                raise InvalidInputError(f"chunk {c.id!r}: position must be a 32-bit int")
            tokens = self._tokens(c.text)
            tf = Counter(tokens)
            meta = pgsql.meta_json(c)
            rows.append(
                [i, c.id, c.document_id, c.position, c.text, meta, c.content_hash]
                + [list(tf), list(tf.values()), len(tokens), v[i]]
            )
        return rows

    def _write_chunks(self, chunks: list[Chunk], v: np.ndarray, deletes: list[str]) -> None:
        rows = self._rows(chunks, v)
        removed = [c.id for c in chunks] + [str(i) for i in deletes]
        with self._db("upsert") as conn, conn.transaction():
            self._lock_table(conn)
            self._check_current(conn)
            remove = render(self._sql["remove"], cond="id = ANY(%(ids)s::text[])")
            _, zero, first = conn.execute(remove, {"ids": removed, "new": len(rows)}).fetchone()
            if rows:
                with conn.cursor() as cur, cur.copy(self._sql["copy"]) as copy:
                    copy.set_types(pgsql.COPY_TYPES)
                    for row in rows:
                        row[0] += first
                        copy.write_row(row)
                conn.execute(
                    self._sql["index"],
                    {
                        "lo": first,
                        "hi": first + len(rows),
                        "count": len(rows),
                        "total": sum(r[9] for r in rows),
                    },
                )
            conn.execute(self._sql["refresh"], {"zero": zero})

    def _delete_chunks(self, ids: list[str] | None, filter: Filter | None) -> int:
        params: dict[str, Any] = {"new": 0}
        parts = []
        if ids is not None:
            parts.append("id = ANY(%(ids)s::text[])")
            params["ids"] = [str(i) for i in ids]
        if filter is not None:
            parts.append(Where(params).sql(filter))
        with self._db("delete") as conn, conn.transaction():
            self._lock_table(conn)
            self._check_current(conn)
            count, zero, _ = conn.execute(
                render(self._sql["remove"], cond=" OR ".join(parts)), params
            ).fetchone()
            if count:
                conn.execute(self._sql["refresh"], {"zero": zero})
            return int(count)

    # ----------------------------------------------------------------- reads
    def _vector_params(self, vector: Any, candidates: int, filtered: bool) -> dict[str, Any]:
        """Parameters of ``VECTOR_CTES`` (see there)."""
        return {
            "q": validate_query_vector(vector, self._require_space().dim),
            "c": candidates,
            "w": max(candidates, self.ef_search) if filtered else candidates,
            "threshold": self.exact_threshold,
            "probe": self.exact_filter_rows if filtered else 0,
        }

    def _keyword_params(self, text: str, k: int) -> dict[str, Any]:
        """The query's distinct terms with their multiplicity, and BM25's parameters."""
        k1, b, eps = self._require_space().keyword_params()
        mult = Counter(self._tokens(text))
        terms = {"qterms": list(mult), "mults": list(mult.values()), "eps": eps, "c": k}
        return {**terms, "k1p1": k1 + 1.0, "k1": k1, "b": b}

    def _filter(self, f: Filter | None, params: dict[str, Any]) -> dict[str, str]:
        """``f`` as SQL over the chunks (``where``) and over the postings' sids (``allowed``)."""
        if f is None:
            return {"where": "TRUE", "allowed": "TRUE"}
        where = Where(params).sql(f)
        allowed = f"sid IN (SELECT sid FROM {self._names['chunks']} WHERE {where})"
        return {"where": where, "allowed": allowed}

    def _search(self, stmt: str, what: str, params: dict[str, Any], f: Filter | None) -> list[Any]:
        """The rows of ``stmt`` (from ``self._sql``) with the filter ``f`` in it."""
        stmt = render(stmt, **self._filter(f, params))
        with self._db(what) as conn:
            if "q" in params:
                self._set_ef(conn, params["c"])
            return conn.execute(stmt, params).fetchall()

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        params = self._vector_params(vector, k, filter is not None)
        rows = self._search(self._sql["query"], "vector search", params, filter)
        return [Scored(chunk(r), float(r[6])) for r in rows]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        params = self._keyword_params(text, k)
        if not params["qterms"]:
            return []
        rows = self._search(self._sql["keyword"], "keyword search", params, filter)
        return [Scored(chunk(r), float(r[6])) for r in rows]

    def hybrid(
        self,
        vector: np.ndarray,
        text: str,
        *,
        k: int,
        candidates: int,
        fusion: Fusion,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Both legs and their fusion in one statement; equal to :func:`vecmem.fusion.fuse` of
        :meth:`query` and :meth:`keyword` with ``k=candidates``."""
        self._check_k(k, candidates)
        params = self._keyword_params(text, candidates)
        params.update(self._vector_params(vector, candidates, filter is not None))
        params.update(
            k=k,
            wv=float(fusion.vector_weight),
            wk=float(fusion.keyword_weight),
            rk=int(fusion.k),
            alpha=float(fusion.alpha),
            oma=1 - float(fusion.alpha),
            adaptive=bool(fusion.adaptive),
        )
        fused = pgsql.RRF_SQL if fusion.method == "rrf" else pgsql.score_fusion_sql(fusion.method)
        stmt = render(self._sql["hybrid"], fused=fused)
        return [pgsql.hit(r) for r in self._search(stmt, "hybrid search", params, filter)]

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """A keyset page over the primary key, by code point (``COLLATE "C"``)."""
        self._require_space()
        with self._db("page ids") as conn:
            rows = conn.execute(
                f"SELECT id FROM {self._names['chunks']} WHERE %s::text IS NULL "
                'OR id COLLATE "C" > %s::text ORDER BY id COLLATE "C" LIMIT %s',
                (after, after, int(limit)),
            ).fetchall()
        return [r[0] for r in rows]

    def _where_in(self, what: str, cols: str, column: str, keys: list[str]) -> list[Any]:
        """``cols`` of the chunks whose ``column`` is one of ``keys``."""
        if not keys:
            return []
        with self._db(what) as conn:
            return conn.execute(
                f"SELECT {cols} FROM {self._names['chunks']} c WHERE c.{column} = ANY(%s::text[])",
                ([str(k) for k in keys],),
                binary=True,
            ).fetchall()

    def _read_chunks(self, ids: list[str]) -> dict[str, Chunk]:
        return {r[0]: chunk(r) for r in self._where_in("get", pgsql.ROW, "id", ids)}

    def _read_vectors(self, ids: list[str]) -> dict[str, Any]:
        rows = self._where_in("get vectors", "c.id, c.embedding", "id", ids)
        return {i: v.to_numpy() if hasattr(v, "to_numpy") else v for i, v in rows}

    def _read_documents(self, docs: list[str]) -> list[Chunk]:
        return [chunk(r) for r in self._where_in("get by document", pgsql.ROW, "document_id", docs)]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        params: dict[str, Any] = {}
        stmt = (
            f"SELECT n FROM {self._names['meta']}"
            if filter is None
            else f"SELECT count(*) FROM {self._names['chunks']} WHERE {Where(params).sql(filter)}"
        )
        with self._db("count") as conn:
            return int(conn.execute(stmt, params).fetchone()[0])


def from_url(url: str) -> PgVector:
    """``postgresql://user:pw@host:port/db?collection=NAME&schema=S`` (also ``postgres://``,
    ``pgvector://``); other query parameters (``sslmode``...) go to libpq."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres", "pgvector"):
        raise ConfigurationError(f"not a PostgreSQL URL: {parts.scheme}://...")
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k if k == "schema" else "table": v for k, v in query if k in _URL_KEYS}
    rest = urlencode([(k, v) for k, v in query if k not in _URL_KEYS])
    db_url = urlunsplit(("postgresql", parts.netloc, parts.path, rest, parts.fragment))
    return PgVector(
        db_url, table=ours.get("table", "vecmem_chunks"), schema=ours.get("schema", "public")
    )


__all__ = ["PgVector", "from_url"]
