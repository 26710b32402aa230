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
vocabulary. The mean stays exact under writes without scanning the vocabulary: ``T_dfhist``
counts terms per df value, so the mean is a sum over the distinct df values (a few thousand rows
at most), refreshed in ``T_meta`` by every write. Tokens come from the space's tokenizer.

Hybrid search is one statement: both legs are CTEs (top ``candidates`` each, the filter inside
both), fused by RRF or a score fusion (min-max or dbsf normalised, fixed or adaptive weights)
exactly as :func:`vecmem.fusion.fuse` does (to float rounding: SQL sums in its own order).

Filtered vector search keeps recall: HNSW runs with pgvector 0.8's iterative index scans
(``hnsw.iterative_scan``); with a filter it is asked for ``max(k, ef_search)`` matching rows, of
which the best ``k`` by exact distance are kept. When HNSW cannot produce its rows (selective
filter, ``hnsw.max_scan_tuples`` reached) the same statement answers with an exact scan, so ``k``
hits come back whenever ``k`` chunks match. A selective filter skips HNSW: the statement first
counts up to ``exact_filter_rows`` matching rows and, when fewer match, ranks them exactly. Below
``exact_threshold`` chunks search is exact.

Writes are one transaction each (rows by binary COPY) under a per-table advisory lock, which
keeps N, df and the histogram consistent when several clients write at once. Every row written
joins the HNSW graph; for a large load, ``with store.bulk_load(): ...`` builds it once instead.
The SQL lives in module constants of :mod:`._pgvector_sql` (``QUERY_SQL``...), re-exported
here, so the benchmark's raw-psycopg baseline runs the same text.

>>> store = PgVector("postgresql://user:pw@localhost/db", table="kb")   # doctest: +SKIP
>>> VectorMemory("postgresql://user:pw@localhost/db?collection=kb")      # doctest: +SKIP
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
)
from vecmem.filters import Filter
from vecmem.fusion import Fusion
from vecmem.stores._pgvector_sql import (
    _ROW,
    COPY_SQL,
    COPY_TYPES,
    HNSW_SQL,
    HYBRID_SQL,
    INDEX_SQL,
    KEYWORD_SQL,
    LOCK_SQL,
    QUERY_SQL,
    REFRESH_SQL,
    REMOVE_SQL,
    RRF_SQL,
    SCHEMA_SQL,
    _chunk,
    _meta_json,
    _storable,
    _Where,
    keyword_params,
    render,
    score_fusion_sql,
    table_names,
)
from vecmem.stores.base import (
    Capabilities,
    validate_batch,
    validate_query_vector,
)
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Hit, Scored, Scores

psycopg = require("psycopg", "pgvector", "PostgreSQL")
_pgv = require("pgvector.psycopg", "pgvector", "PostgreSQL")

FORMAT = 1
_LOCK_NS = 0x7665  # first key of vecmem's advisory locks
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,47}\Z")
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_MAX_EF = 1000  # pgvector's limit for hnsw.ef_search
_HNSW_MAX_DIM = 2000  # pgvector's limit for an HNSW index on vector


# --------------------------------------------------------------------------- helpers
def _translate(exc: BaseException, what: str) -> BackendError:
    """The vecmem error for a psycopg error (raise it ``from exc``)."""
    text = str(exc).strip()
    low = text.lower()
    state = getattr(exc, "sqlstate", None) or ""
    if state.startswith("28") or "authentication failed" in low or "pg_hba.conf" in low:
        return AuthenticationError(f"{what}: {text}")
    if state in ("55P03", "40P01") or "lock timeout" in low:
        return StoreLockedError(f"{what}: {text}")
    refused_by_server = "fatal:" in low and not any(
        s in low for s in ("starting up", "shutting down", "in recovery", "too many")
    )
    if (
        state.startswith("08")
        or state in ("57P01", "57P02", "57P03", "53300")
        or isinstance(exc, psycopg.InterfaceError)
        or (isinstance(exc, psycopg.OperationalError) and not state and not refused_by_server)
    ):
        return BackendUnavailableError(f"{what}: {text}")
    return BackendError(f"{what}: {text}")


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")


# --------------------------------------------------------------------------- store
class PgVector:
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
        if not isinstance(db_url, str) or not db_url:
            raise ConfigurationError("PgVector needs db_url='postgresql://user:pw@host:port/db'")
        if not _TABLE.match(table):
            raise ConfigurationError(f"table must match {_TABLE.pattern!r}, got {table!r}")
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
        self.table, self.schema = table, schema
        self.hnsw_m, self.hnsw_ef_construction = hnsw_m, hnsw_ef_construction
        self.ef_search, self.iterative_scan = ef_search, iterative_scan
        self.max_scan_tuples, self.exact_threshold = max_scan_tuples, exact_threshold
        self.exact_filter_rows = exact_filter_rows
        self.connect_timeout = connect_timeout
        self.space: EmbeddingSpace | None = None
        self._tokenizer: Tokenizer | None = None
        self._conn: Any = None
        self._ef = 0  # hnsw.ef_search currently set on the session
        self._lock = threading.RLock()
        self._closed = False
        self._names = table_names(schema, table)
        self._qualified = f"{schema}.{table}"
        self._sql = {
            key: render(text, **self._names)
            for key, text in (
                ("query", QUERY_SQL),
                ("keyword", KEYWORD_SQL),
                ("hybrid", HYBRID_SQL),
                ("remove", REMOVE_SQL),
                ("index", INDEX_SQL),
                ("refresh", REFRESH_SQL),
                ("copy", COPY_SQL),
            )
        }

    def __repr__(self) -> str:
        return f"PgVector(table={self._qualified!r})"

    # ----------------------------------------------------------------- connection
    def _where_to(self) -> str:
        try:
            info = psycopg.conninfo.conninfo_to_dict(self.db_url)
        except psycopg.Error:
            return "PostgreSQL"
        return f"PostgreSQL at {info.get('host', 'localhost')}:{info.get('port', 5432)}"

    def _connection(self) -> Any:
        if self._closed:
            raise ConfigurationError(f"{self!r} is closed")
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        try:
            conn = psycopg.connect(
                self.db_url,
                autocommit=True,
                connect_timeout=self.connect_timeout,
                application_name="vecmem",
            )
        except psycopg.Error as exc:
            raise _translate(exc, f"cannot connect to {self._where_to()}") from exc
        self._conn, self._ef = conn, 0
        try:
            if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone():
                self.prepare_session(conn)
        except psycopg.Error as exc:
            raise _translate(exc, f"cannot prepare a session on {self._where_to()}") from exc
        return conn

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
        with self._lock:
            conn = self._connection()
            try:
                yield conn
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    self._conn = None
                raise _translate(exc, f"{what} on {self._qualified}") from exc

    def _set_ef(self, conn: Any, candidates: int) -> None:
        ef = min(max(self.ef_search, candidates), _MAX_EF)
        if ef != self._ef:
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false)", (str(ef),))
            self._ef = ef

    def _require_space(self) -> EmbeddingSpace:
        if self.space is None:
            raise ConfigurationError(f"{self!r} used before connect(space)")
        return self.space

    # ----------------------------------------------------------------- space and schema
    def _exists(self, conn: Any, suffix: str = "") -> bool:
        name = f'"{self.schema}"."{self.table}{suffix}"'
        return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None

    def _read_space(self, conn: Any) -> EmbeddingSpace | None:
        if not self._exists(conn, "_meta"):
            return None
        row = conn.execute(f"SELECT space FROM {self._names['meta']}").fetchone()
        return EmbeddingSpace.from_json(row[0]) if row else None

    def stored_space(self) -> EmbeddingSpace | None:
        if self.space is not None:
            return self.space
        with self._db("read the embedding space") as conn:
            return self._read_space(conn)

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            if space.distance != "cosine":
                raise ConfigurationError(
                    f"PgVector supports cosine distance, not {space.distance!r}"
                )
            with self._db("create the tables") as conn:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_NS,))
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                    conn.execute(LOCK_SQL, {"ns": _LOCK_NS, "name": self._qualified})
                    stored = self._read_space(conn)
                    if stored is None:
                        self._check_foreign_table(conn, space)
                        self._create(conn, space)
                        stored = space
                    else:
                        stored.check_compatible(space, where=f"table {self._qualified}")
                self.prepare_session(conn)
            self.space = stored
            self._tokenizer = get_tokenizer(stored.tokenizer)
            return stored

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

    def _create(self, conn: Any, space: EmbeddingSpace) -> None:
        parts = {
            **self._names,
            "dim": str(int(space.dim)),
            "m": str(int(self.hnsw_m)),
            "efc": str(int(self.hnsw_ef_construction)),
        }
        for text in SCHEMA_SQL + ([HNSW_SQL] if space.dim <= _HNSW_MAX_DIM else []):
            conn.execute(render(text, **parts))
        conn.execute(
            f"INSERT INTO {self._names['meta']} (format, space) VALUES (%s, %s)",
            (FORMAT, space.to_json()),
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
                    conn.execute(
                        render(
                            HNSW_SQL,
                            **self._names,
                            m=str(int(self.hnsw_m)),
                            efc=str(int(self.hnsw_ef_construction)),
                        )
                    )

    def drop(self) -> None:
        """Delete the collection's tables (all its chunks and the recorded space)."""
        n = self._names
        with self._db("drop the tables") as conn, conn.transaction():
            conn.execute(LOCK_SQL, {"ns": _LOCK_NS, "name": self._qualified})
            conn.execute(
                f"DROP TABLE IF EXISTS {n['chunks']}, {n['postings']}, {n['terms']}, "
                f"{n['hist']}, {n['meta']}"
            )
        self.space = None

    # ----------------------------------------------------------------- writes
    def _validate(self, chunks: Sequence[Chunk], vectors: Any) -> np.ndarray:
        """The shared batch checks, then what PostgreSQL cannot store (NUL, 64-bit positions)."""
        out = validate_batch(chunks, vectors, self._require_space().dim)
        for c in chunks:
            if not all(isinstance(x, str) and _storable(x) for x in (c.text, c.document_id, c.id)):
                raise InvalidInputError(
                    f"chunk {c.id!r}: text and ids must be valid Unicode "
                    "strings without NUL characters"
                )
            if not isinstance(c.position, int) or not -(2**31) <= c.position < 2**31:
                raise InvalidInputError(f"chunk {c.id!r}: position must be a 32-bit int")
        return out

    def _rows(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> list[list[Any]]:
        """COPY rows (sid 0-based until reserved): tokens and metadata checked before writing."""
        tokenize = self._tokenizer
        if tokenize is None:
            raise ConfigurationError("the store is used before connect(space)")
        rows = []
        for i, c in enumerate(chunks):
            tokens = tokenize(c.text)
            tf = Counter(tokens)
            rows.append(
                [
                    i,
                    c.id,
                    c.document_id,
                    c.position,
                    c.text,
                    _meta_json(c),
                    c.content_hash,
                    list(tf),
                    list(tf.values()),
                    len(tokens),
                    vectors[i],
                ]
            )
        return rows

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        chunks = list(chunks)
        rows = self._rows(chunks, self._validate(chunks, vectors))
        removed = list(dict.fromkeys([c.id for c in chunks] + [str(i) for i in delete_ids]))
        if not removed:
            return
        with self._db("upsert") as conn, conn.transaction():
            conn.execute(LOCK_SQL, {"ns": _LOCK_NS, "name": self._qualified})
            remove = render(self._sql["remove"], cond="id = ANY(%(ids)s::text[])")
            _, zero, first = conn.execute(remove, {"ids": removed, "new": len(rows)}).fetchone()
            if rows:
                with conn.cursor() as cur, cur.copy(self._sql["copy"]) as copy:
                    copy.set_types(COPY_TYPES)
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

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter")
        self._require_space()
        params: dict[str, Any] = {"new": 0}
        parts = []
        if ids is not None:
            parts.append("id = ANY(%(ids)s::text[])")
            params["ids"] = [str(i) for i in ids]
        if filter is not None:
            parts.append(_Where(params).sql(filter))
        with self._db("delete") as conn, conn.transaction():
            conn.execute(LOCK_SQL, {"ns": _LOCK_NS, "name": self._qualified})
            count, zero, _ = conn.execute(
                render(self._sql["remove"], cond=" OR ".join(parts)), params
            ).fetchone()
            if count:
                conn.execute(self._sql["refresh"], {"zero": zero})
            return int(count)

    # ----------------------------------------------------------------- reads
    def _vector_params(
        self, vector: Any, candidates: int, filtered: bool, params: dict[str, Any]
    ) -> None:
        """A filtered HNSW scan is asked for ``ef_search`` rows at least: the iterative scan
        returns them roughly in order, the exact re-sort keeps the best ``candidates``."""
        params.update(
            q=validate_query_vector(vector, self._require_space().dim),
            c=candidates,
            w=max(candidates, self.ef_search) if filtered else candidates,
            threshold=self.exact_threshold,
            probe=self.exact_filter_rows if filtered else 0,
        )

    def _tokens(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise InvalidInputError(f"query text must be a str, got {type(text).__name__}")
        if self._tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        return self._tokenizer(text)

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        _positive("k", k)
        params: dict[str, Any] = {}
        self._vector_params(vector, k, filter is not None, params)
        stmt = render(self._sql["query"], where=_Where(params).sql(filter))
        with self._db("vector search") as conn:
            self._set_ef(conn, k)
            rows = conn.execute(stmt, params).fetchall()
        return [Scored(_chunk(r), float(r[6])) for r in rows]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        _positive("k", k)
        tokens = self._tokens(text)
        params = keyword_params(tokens, self._require_space())
        if not tokens:
            return []
        params["c"] = k
        allowed = (
            "TRUE"
            if filter is None
            else f"sid IN (SELECT sid FROM {self._names['chunks']} WHERE {_Where(params).sql(filter)})"
        )
        stmt = render(self._sql["keyword"], allowed=allowed)
        with self._db("keyword search") as conn:
            rows = conn.execute(stmt, params).fetchall()
        return [Scored(_chunk(r), float(r[6])) for r in rows]

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
        _positive("k", k)
        _positive("candidates", candidates)
        params = keyword_params(self._tokens(text), self._require_space())
        self._vector_params(vector, candidates, filter is not None, params)
        params.update(
            k=k,
            wv=float(fusion.vector_weight),
            wk=float(fusion.keyword_weight),
            rk=int(fusion.k),
            alpha=float(fusion.alpha),
            oma=1 - float(fusion.alpha),
            adaptive=bool(fusion.adaptive),
        )
        where = _Where(params).sql(filter)
        allowed = (
            "TRUE"
            if filter is None
            else f"sid IN (SELECT sid FROM {self._names['chunks']} WHERE {where})"
        )
        stmt = render(
            self._sql["hybrid"],
            where=where,
            allowed=allowed,
            fused=RRF_SQL if fusion.method == "rrf" else score_fusion_sql(fusion.method),
        )
        with self._db("hybrid search") as conn:
            self._set_ef(conn, candidates)
            rows = conn.execute(stmt, params).fetchall()
        out = []
        for r in rows:
            vs, vr, ks, kr, fused = r[6:]
            out.append(
                Hit(
                    _chunk(r),
                    float(fused),
                    Scores(
                        vector=None if vs is None else float(vs),
                        keyword=None if ks is None else float(ks),
                        vector_rank=None if vr is None else int(vr),
                        keyword_rank=None if kr is None else int(kr),
                        fused=float(fused),
                    ),
                )
            )
        return out

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        ids = [str(i) for i in ids]
        if not ids:
            return []
        with self._db("get") as conn:
            rows = conn.execute(
                f"SELECT {_ROW} FROM {self._names['chunks']} c WHERE c.id = ANY(%s::text[])", (ids,)
            ).fetchall()
        found = {r[0]: _chunk(r) for r in rows}
        return [found[i] for i in ids if i in found]

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Up to ``limit`` ids greater than ``after``, ascending (by code point: ``COLLATE "C"``,
        the order Python compares strings in); a keyset page over the primary key."""
        self._require_space()
        with self._db("page ids") as conn:
            rows = conn.execute(
                f"SELECT id FROM {self._names['chunks']} WHERE %s::text IS NULL "
                'OR id COLLATE "C" > %s::text ORDER BY id COLLATE "C" LIMIT %s',
                (after, after, int(limit)),
            ).fetchall()
        return [r[0] for r in rows]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        dim = self._require_space().dim
        ids = [str(i) for i in ids]
        if not ids:
            return np.zeros((0, dim), np.float32)
        with self._db("get vectors") as conn:
            rows = conn.execute(
                f"SELECT id, embedding FROM {self._names['chunks']} WHERE id = ANY(%s::text[])",
                (ids,),
                binary=True,
            ).fetchall()
        found = {r[0]: r[1] for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
        return np.stack(
            [
                np.asarray(
                    found[i].to_numpy() if hasattr(found[i], "to_numpy") else found[i], np.float32
                )
                for i in ids
            ]
        )

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        docs = [str(d) for d in document_ids]
        if not docs:
            return []
        with self._db("get by document") as conn:
            rows = conn.execute(
                f"SELECT {_ROW} FROM {self._names['chunks']} c "
                "WHERE c.document_id = ANY(%s::text[]) "
                "ORDER BY c.document_id, c.position, c.id",
                (docs,),
            ).fetchall()
        by_doc: dict[str, list[Chunk]] = {}
        for r in rows:
            by_doc.setdefault(r[1], []).append(_chunk(r))
        return [c for d in dict.fromkeys(docs) for c in by_doc.get(d, [])]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        params: dict[str, Any] = {}
        stmt = (
            f"SELECT n FROM {self._names['meta']}"
            if filter is None
            else f"SELECT count(*) FROM {self._names['chunks']} WHERE {_Where(params).sql(filter)}"
        )
        with self._db("count") as conn:
            return int(conn.execute(stmt, params).fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except psycopg.Error:
                    pass
            self._conn = None
            self._closed = True


def from_url(url: str) -> PgVector:
    """``postgresql://user:pw@host:port/db?collection=NAME&schema=S`` (also ``postgres://``,
    ``pgvector://``); other query parameters (``sslmode``...) go to libpq."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("postgresql", "postgres", "pgvector"):
        raise ConfigurationError(f"not a PostgreSQL URL: {parts.scheme}://...")
    options: dict[str, str] = {}
    rest = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in ("collection", "table", "schema"):
            options["schema" if key == "schema" else "table"] = value
        else:
            rest.append((key, value))
    db_url = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), parts.fragment))
    return PgVector(
        db_url, table=options.get("table", "vecmem_chunks"), schema=options.get("schema", "public")
    )


__all__ = ["PgVector", "from_url"]
