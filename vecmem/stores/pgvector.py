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
The SQL lives in module constants (``QUERY_SQL``...), so the benchmark's raw-psycopg baseline
runs the same text.

>>> store = PgVector("postgresql://user:pw@localhost/db", table="kb")   # doctest: +SKIP
>>> VectorMemory("postgresql://user:pw@localhost/db?collection=kb")      # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
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
    UnsupportedFilterError,
)
from vecmem.filters import And, Cond, Filter, Not, Or
from vecmem.fusion import Fusion
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

# --------------------------------------------------------------------------- SQL
# {chunks} {postings} {terms} {hist} {meta} are the quoted table names; {where}/{allowed}/{cond}
# are filter fragments (TRUE when there is none); %(name)s are parameters.

SCHEMA_SQL = [
    """CREATE TABLE {chunks} (
        sid bigint PRIMARY KEY, id text COLLATE "C" NOT NULL UNIQUE,
        document_id text COLLATE "C" NOT NULL, position integer NOT NULL, text text NOT NULL,
        meta_json text NOT NULL, metadata jsonb GENERATED ALWAYS AS (meta_json::jsonb) STORED,
        content_hash text NOT NULL, terms text[] NOT NULL, tfs integer[] NOT NULL,
        length integer NOT NULL, embedding vector({dim}) NOT NULL)""",
    "ALTER TABLE {chunks} ALTER COLUMN embedding SET STORAGE MAIN",  # keep vectors inline
    "CREATE INDEX {name}_doc ON {chunks} (document_id)",
    "CREATE INDEX {name}_metadata ON {chunks} USING gin (metadata jsonb_path_ops)",
    """CREATE TABLE {postings} (term text COLLATE "C" NOT NULL, sid bigint NOT NULL,
        tf integer NOT NULL, dl integer NOT NULL, PRIMARY KEY (term, sid))""",
    'CREATE TABLE {terms} (term text COLLATE "C" PRIMARY KEY, df integer NOT NULL)',
    "CREATE TABLE {hist} (df integer PRIMARY KEY, terms integer NOT NULL)",
    """CREATE TABLE {meta} (one boolean PRIMARY KEY DEFAULT true CHECK (one),
        format integer NOT NULL, space text NOT NULL, n bigint NOT NULL DEFAULT 0,
        total_len bigint NOT NULL DEFAULT 0, next_sid bigint NOT NULL DEFAULT 1,
        mean_idf double precision NOT NULL DEFAULT 0)""",
]
HNSW_SQL = ("CREATE INDEX IF NOT EXISTS {name}_hnsw ON {chunks} "
            "USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {efc})")

COPY_SQL = ("COPY {chunks} (sid, id, document_id, position, text, meta_json, content_hash, "
            "terms, tfs, length, embedding) FROM STDIN (FORMAT BINARY)")
COPY_TYPES = ["int8", "text", "text", "int4", "text", "text", "text", "text[]", "int4[]", "int4",
              "vector"]

LOCK_SQL = "SELECT pg_advisory_xact_lock(%(ns)s, hashtext(%(name)s))"

# Delete chunks matching {cond} with their postings, lower df, move terms in the histogram,
# update N and the total length, reserve %(new)s sids. Returns (removed, terms now at df 0, sid).
REMOVE_SQL = """
WITH dead AS (DELETE FROM {chunks} WHERE {cond} RETURNING sid, length, terms),
x AS (SELECT d.sid, t.term FROM dead d CROSS JOIN LATERAL unnest(d.terms) AS t(term)),
gone AS (DELETE FROM {postings} p USING x WHERE p.term = x.term AND p.sid = x.sid),
d AS (SELECT term, count(*)::int AS cnt FROM x GROUP BY term),
up AS (UPDATE {terms} t SET df = t.df - d.cnt FROM d WHERE t.term = d.term
       RETURNING t.term, t.df, d.cnt),
h AS (INSERT INTO {hist} AS h (df, terms)
      SELECT df, sum(c)::int FROM (SELECT df + cnt AS df, -1 AS c FROM up
                                   UNION ALL SELECT df, 1 FROM up WHERE df > 0) y
      GROUP BY df HAVING sum(c) <> 0
      ON CONFLICT (df) DO UPDATE SET terms = h.terms + excluded.terms),
m AS (UPDATE {meta} SET n = n - (SELECT count(*) FROM dead),
             total_len = total_len - (SELECT coalesce(sum(length), 0) FROM dead),
             next_sid = next_sid + %(new)s::int8 RETURNING next_sid - %(new)s::int8 AS first)
SELECT (SELECT count(*) FROM dead),
       (SELECT coalesce(array_agg(term), ARRAY[]::text[]) FROM up WHERE df = 0),
       (SELECT first FROM m)"""

# Postings, df, histogram, N and total length for the chunks just copied (sids lo..hi-1).
INDEX_SQL = """
WITH new AS (
    SELECT c.sid, c.length, t.term, t.tf
    FROM {chunks} c CROSS JOIN LATERAL unnest(c.terms, c.tfs) AS t(term, tf)
    WHERE c.sid >= %(lo)s::int8 AND c.sid < %(hi)s::int8),
ins AS (INSERT INTO {postings} (term, sid, tf, dl)
        SELECT term, sid, tf, length FROM new ORDER BY term, sid),
d AS (SELECT term, count(*)::int AS delta FROM new GROUP BY term),
up AS (INSERT INTO {terms} AS t (term, df) SELECT term, delta FROM d
       ON CONFLICT (term) DO UPDATE SET df = t.df + excluded.df RETURNING t.term, t.df),
mv AS (SELECT up.df - d.delta AS old, up.df AS new FROM up JOIN d USING (term)),
h AS (INSERT INTO {hist} AS h (df, terms)
      SELECT df, sum(c)::int FROM (SELECT old AS df, -1 AS c FROM mv WHERE old > 0
                                   UNION ALL SELECT new, 1 FROM mv) y
      GROUP BY df HAVING sum(c) <> 0
      ON CONFLICT (df) DO UPDATE SET terms = h.terms + excluded.terms)
UPDATE {meta} SET n = n + %(count)s::int8, total_len = total_len + %(total)s::int8"""

# Drop emptied vocabulary rows; the mean idf over the vocabulary from the df histogram.
REFRESH_SQL = """
WITH zt AS (DELETE FROM {terms} WHERE term = ANY(%(zero)s::text[]) AND df = 0),
zh AS (DELETE FROM {hist} WHERE terms = 0)
UPDATE {meta} m SET mean_idf = coalesce((
    SELECT sum(h.terms * (ln((m.n - h.df)::float8 + 0.5) - ln(h.df + 0.5::float8)))
           / nullif(sum(h.terms), 0)
    FROM {hist} h WHERE h.terms > 0), 0)"""

# vec(sid, dist, rank), the %(c)s nearest matching chunks. With a filter, sel first probes for
# up to %(probe)s matching rows (with their distances): when fewer match, they are the answer.
# Otherwise HNSW is asked for %(w)s rows (c, or max(c, ef_search) with a filter) and the best c
# kept; an exact scan answers when the table is small or HNSW could not produce %(w)s rows.
VECTOR_CTES = """
sel AS MATERIALIZED (SELECT sid, embedding <=> %(q)s::vector AS dist FROM {chunks}
                     WHERE {where} LIMIT %(probe)s::int8),
small AS MATERIALIZED (SELECT count(*) < %(probe)s::int8 AS yes FROM sel),
approx AS MATERIALIZED (
    SELECT sid, embedding <=> %(q)s::vector AS dist FROM {chunks}
    WHERE (SELECT n FROM {meta}) >= %(threshold)s::int8 AND NOT (SELECT yes FROM small)
          AND {where}
    ORDER BY embedding <=> %(q)s::vector LIMIT %(w)s::int8),
exact AS MATERIALIZED (
    SELECT sid, dist FROM (
        SELECT sid, dist FROM sel WHERE (SELECT yes FROM small)
        UNION ALL
        SELECT sid, embedding <=> %(q)s::vector AS dist FROM {chunks}
        WHERE NOT (SELECT yes FROM small) AND (SELECT count(*) FROM approx) < %(w)s::int8
              AND {where}) e
    ORDER BY dist, sid LIMIT %(c)s::int8),
vec AS (
    SELECT sid, dist, rank FROM (
        SELECT sid, dist, row_number() OVER (ORDER BY dist, sid) AS rank FROM (
            SELECT sid, dist FROM approx WHERE (SELECT count(*) FROM approx) >= %(w)s::int8
            UNION ALL SELECT sid, dist FROM exact) u) r
    WHERE rank <= %(c)s::int8)"""

# kw(sid, score, rank): the %(c)s best BM25Okapi scores (rank_bm25's formulas: idf floored at
# epsilon * mean idf, query terms counted with multiplicity %(mults)s). "LIMIT 1" tells the
# planner st is one row whatever the statistics say (else it may hash-join all postings).
KEYWORD_CTES = """
st AS (SELECT n, mean_idf, CASE WHEN n > 0 AND total_len > 0 THEN total_len::float8 / n
                                ELSE 1::float8 END AS avgdl FROM {meta} LIMIT 1),
qt AS (
    SELECT q.term, q.mult * CASE WHEN r.idf < 0 THEN %(eps)s::float8 * st.mean_idf
                                 ELSE r.idf END AS w
    FROM unnest(%(qterms)s::text[], %(mults)s::int[]) AS q(term, mult)
    JOIN {terms} t ON t.term = q.term AND t.df > 0
    CROSS JOIN st
    CROSS JOIN LATERAL (SELECT ln((st.n - t.df)::float8 + 0.5) - ln(t.df + 0.5::float8) AS idf) r),
bm AS (
    SELECT p.sid, sum(qt.w * (p.tf * %(k1p1)s::float8)
                      / (p.tf + %(k1)s::float8 * (1 - %(b)s::float8 + %(b)s::float8 * p.dl
                                                  / st.avgdl))) AS score
    FROM qt JOIN {postings} p ON p.term = qt.term CROSS JOIN st
    GROUP BY p.sid),
kw AS (
    SELECT sid, score, row_number() OVER (ORDER BY score DESC, sid) AS rank FROM (
        SELECT sid, score FROM bm WHERE {allowed} ORDER BY score DESC, sid LIMIT %(c)s::int8) t)"""

_ROW = "c.id, c.document_id, c.position, c.text, c.meta_json, c.content_hash"
QUERY_SQL = ("WITH " + VECTOR_CTES + "\nSELECT " + _ROW + ", 1 - v.dist FROM vec v "
             "JOIN {chunks} c ON c.sid = v.sid ORDER BY v.rank")
KEYWORD_SQL = ("WITH " + KEYWORD_CTES + "\nSELECT " + _ROW + ", w.score FROM kw w "
               "JOIN {chunks} c ON c.sid = w.sid ORDER BY w.rank")
RRF_SQL = "coalesce(%(wv)s::float8 / (%(rk)s::int8 + v.rank), 0) + " \
          "coalesce(%(wk)s::float8 / (%(rk)s::int8 + w.rank), 0)"
_NORM = {
    "convex": "(CASE WHEN {leg}.sid IS NULL THEN 0 WHEN {m}.hi - {m}.lo > 0 "
              "THEN ({s} - {m}.lo) / ({m}.hi - {m}.lo) ELSE 1 END)",
    "dbsf": "(CASE WHEN {leg}.sid IS NULL THEN 0 WHEN {m}.sd > 0 "
            "THEN ({s} - ({m}.mu - 3 * {m}.sd)) / (6 * {m}.sd) ELSE 1 END)",
}


def score_fusion_sql(method: str) -> str:
    """``a * norm(vector) + (1 - a) * norm(keyword)`` as :func:`vecmem.fusion.fuse` computes it."""
    nv = _NORM[method].format(leg="v", m="vm", s="(1 - v.dist)")
    nk = _NORM[method].format(leg="w", m="km", s="w.score")
    return f"wt.a * {nv} + (1 - wt.a) * {nk}"


_CONF = "(CASE WHEN {m}.n < 2 THEN 1 WHEN {m}.sd > 0 THEN ({m}.hi - {m}.mu) / {m}.sd ELSE 0 END)"
HYBRID_SQL = (
    "WITH " + VECTOR_CTES + ",\n" + KEYWORD_CTES + """,
vm AS (SELECT min(1 - dist) AS lo, max(1 - dist) AS hi, avg(1 - dist) AS mu,
              coalesce(stddev_pop(1 - dist), 0) AS sd, count(*) AS n FROM vec),
km AS (SELECT min(score) AS lo, max(score) AS hi, avg(score) AS mu,
              coalesce(stddev_pop(score), 0) AS sd, count(*) AS n FROM kw),
cf AS (SELECT """ + _CONF.format(m="vm") + " AS cv, " + _CONF.format(m="km") + """ AS ck,
              vm.n > 0 AND km.n > 0 AND %(adaptive)s::bool AS adapt FROM vm CROSS JOIN km),
wt AS (SELECT CASE WHEN adapt AND %(alpha)s::float8 * cv + %(oma)s::float8 * ck > 0
                   THEN %(alpha)s::float8 * cv / (%(alpha)s::float8 * cv + %(oma)s::float8 * ck)
                   ELSE %(alpha)s::float8 END AS a FROM cf),
fused AS (
    SELECT coalesce(v.sid, w.sid) AS sid, 1 - v.dist AS vs, v.rank AS vr, w.score AS ks,
           w.rank AS kr, {fused} AS fused
    FROM vec v FULL JOIN kw w ON w.sid = v.sid CROSS JOIN vm CROSS JOIN km CROSS JOIN wt)
SELECT """ + _ROW + """, f.vs, f.vr, f.ks, f.kr, f.fused FROM fused f
JOIN {chunks} c ON c.sid = f.sid ORDER BY f.fused DESC, c.id LIMIT %(k)s::int8""")


def render(template: str, **parts: str) -> str:
    """``template`` with each ``{key}`` replaced by ``parts[key]`` (no other brace handling)."""
    for key, value in parts.items():
        template = template.replace("{" + key + "}", value)
    return template


def table_names(schema: str, table: str) -> dict[str, str]:
    """The quoted names of a collection's tables, for the SQL templates."""
    q = f'"{schema}".'
    return {"name": table, "chunks": f'{q}"{table}"', "postings": f'{q}"{table}_postings"',
            "terms": f'{q}"{table}_terms"', "hist": f'{q}"{table}_dfhist"',
            "meta": f'{q}"{table}_meta"', "hnsw": f'{q}"{table}_hnsw"'}


def keyword_params(tokens: Sequence[str], space: EmbeddingSpace) -> dict[str, Any]:
    """Parameters of ``KEYWORD_CTES`` for a tokenised query."""
    k1, b, eps = space.keyword_params()
    mult = Counter(tokens)
    return {"qterms": list(mult), "mults": list(mult.values()), "eps": float(eps),
            "k1p1": float(k1) + 1.0, "k1": float(k1), "b": float(b)}


# --------------------------------------------------------------------------- filters
class _Where:
    """Translates a parsed filter to SQL over ``metadata`` (jsonb) with the reference semantics
    of ``filters.matches``. Every piece is a non-NULL boolean, so NOT/AND/OR act as in Python;
    equality is jsonb containment (types kept apart, ``1 == 1.0``, a list never equals a scalar,
    GIN-indexed); comparisons apply only to ``jsonb_typeof = 'number'`` (bools are not numbers)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def _p(self, value: Any, cast: str) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f"%({name})s::{cast}"

    def sql(self, f: Filter | None) -> str:
        if f is None:
            return "TRUE"
        if isinstance(f, Cond):
            return self._cond(f)
        if isinstance(f, Not):
            return f"(NOT {self.sql(f.item)})"
        if isinstance(f, (And, Or)):
            return "(" + (" AND " if isinstance(f, And) else " OR ").join(
                self.sql(x) for x in f.items) + ")"
        raise UnsupportedFilterError(f"unknown filter node {f!r}")

    def _has(self, field: str, value: Any) -> str:
        return f"(metadata @> {self._p(json.dumps({field: value}), 'jsonb')})"

    def _cond(self, c: Cond) -> str:
        op, v = c.op, c.value
        if op == "exists":
            e = f"(metadata ? {self._p(c.field, 'text')})"
            return e if v else f"(NOT {e})"
        if op in ("eq", "ne"):
            e = self._has(c.field, v)
            return e if op == "eq" else f"(NOT {e})"
        if op in ("in", "nin"):
            values = list(dict.fromkeys((type(x), x) for x in v))
            e = "(" + " OR ".join(self._has(c.field, x) for _, x in values) + ")" if values \
                else "FALSE"
            return e if op == "in" else f"(NOT {e})"
        if op == "contains":
            return f"(metadata @> {self._p(json.dumps({c.field: [v]}), 'jsonb')})"
        compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}.get(op)
        if compare is None:
            raise UnsupportedFilterError(f"unknown filter operator {op!r}")
        field = self._p(c.field, "text")
        bound = self._p(repr(v) if isinstance(v, float) else str(v), "numeric")
        return (f"(CASE WHEN jsonb_typeof(metadata -> {field}) = 'number' "
                f"THEN (metadata -> {field})::numeric {compare} {bound} ELSE FALSE END)")


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
        s in low for s in ("starting up", "shutting down", "in recovery", "too many"))
    if (state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300")
            or isinstance(exc, psycopg.InterfaceError)
            or (isinstance(exc, psycopg.OperationalError) and not state and not refused_by_server)):
        return BackendUnavailableError(f"{what}: {text}")
    return BackendError(f"{what}: {text}")


def _storable(text: str) -> bool:
    """PostgreSQL text is UTF-8 without NUL: no lone surrogates, no ``\\x00``."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def _meta_json(c: Chunk) -> str:
    meta = c.metadata
    if not isinstance(meta, Mapping) or not all(isinstance(k, str) for k in meta):
        raise InvalidInputError(f"metadata of chunk {c.id!r} must be a dict with string keys")
    try:
        raw = json.dumps(dict(meta), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata of chunk {c.id!r} is not JSON: {exc}") from exc
    if not _storable(raw) or ("\\u0000" in raw and _has_nul(meta)):
        raise InvalidInputError(f"metadata of chunk {c.id!r} holds a NUL character or text that "
                                "is not valid Unicode")
    return raw


def _chunk(row: Sequence[Any]) -> Chunk:
    cid, doc, pos, text, meta, h = row[:6]
    return Chunk(id=cid, document_id=doc, position=pos, text=text, metadata=json.loads(meta),
                 content_hash=h)


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
    capabilities = Capabilities(persistent=True, native_keyword=True, native_hybrid=True,
                                transactions=True, concurrent_writers=True)

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
            raise ConfigurationError("iterative_scan must be relaxed_order, strict_order or off, "
                                     f"not {iterative_scan!r}")
        if hnsw_m < 2 or hnsw_ef_construction < 2 * hnsw_m or not 1 <= ef_search <= _MAX_EF:
            raise ConfigurationError("need hnsw_m >= 2, hnsw_ef_construction >= 2 * hnsw_m and "
                                     f"1 <= ef_search <= {_MAX_EF}")
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
        self._sql = {key: render(text, **self._names) for key, text in (
            ("query", QUERY_SQL), ("keyword", KEYWORD_SQL), ("hybrid", HYBRID_SQL),
            ("remove", REMOVE_SQL), ("index", INDEX_SQL), ("refresh", REFRESH_SQL),
            ("copy", COPY_SQL))}

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
            conn = psycopg.connect(self.db_url, autocommit=True,
                                   connect_timeout=self.connect_timeout, application_name="vecmem")
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
        conn.execute("SELECT set_config('hnsw.iterative_scan', %s, false), "
                     "set_config('hnsw.max_scan_tuples', %s, false)",
                     (self.iterative_scan, str(self.max_scan_tuples)))

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
                    f"PgVector supports cosine distance, not {space.distance!r}")
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
            (self._names["chunks"],)).fetchone()
        if row and row[0] != f"vector({space.dim})":
            raise EmbeddingSpaceMismatchError(
                f"table {self._qualified} already exists with embedding {row[0]} but this call "
                f"uses dim={space.dim}; use another table (table=...)")
        raise ConfigurationError(f"table {self._qualified} exists but was not created by vecmem "
                                 "(no metadata table); use another table name")

    def _create(self, conn: Any, space: EmbeddingSpace) -> None:
        parts = {**self._names, "dim": str(int(space.dim)), "m": str(int(self.hnsw_m)),
                 "efc": str(int(self.hnsw_ef_construction))}
        for text in SCHEMA_SQL + ([HNSW_SQL] if space.dim <= _HNSW_MAX_DIM else []):
            conn.execute(render(text, **parts))
        conn.execute(f"INSERT INTO {self._names['meta']} (format, space) VALUES (%s, %s)",
                     (FORMAT, space.to_json()))

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
                    conn.execute("SELECT set_config('maintenance_work_mem', %s, true)",
                                 (maintenance_work_mem,))
                    conn.execute(render(HNSW_SQL, **self._names, m=str(int(self.hnsw_m)),
                                        efc=str(int(self.hnsw_ef_construction))))

    def drop(self) -> None:
        """Delete the collection's tables (all its chunks and the recorded space)."""
        n = self._names
        with self._db("drop the tables") as conn, conn.transaction():
            conn.execute(LOCK_SQL, {"ns": _LOCK_NS, "name": self._qualified})
            conn.execute(f"DROP TABLE IF EXISTS {n['chunks']}, {n['postings']}, {n['terms']}, "
                         f"{n['hist']}, {n['meta']}")
        self.space = None

    # ----------------------------------------------------------------- writes
    def _validate(self, chunks: Sequence[Chunk], vectors: Any) -> np.ndarray:
        """The shared batch checks, then what PostgreSQL cannot store (NUL, 64-bit positions)."""
        out = validate_batch(chunks, vectors, self._require_space().dim)
        for c in chunks:
            if not all(isinstance(x, str) and _storable(x) for x in (c.text, c.document_id, c.id)):
                raise InvalidInputError(f"chunk {c.id!r}: text and ids must be valid Unicode "
                                        "strings without NUL characters")
            if not isinstance(c.position, int) or not -2**31 <= c.position < 2**31:
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
            rows.append([i, c.id, c.document_id, c.position, c.text, _meta_json(c),
                         c.content_hash, list(tf), list(tf.values()), len(tokens), vectors[i]])
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
                conn.execute(self._sql["index"], {"lo": first, "hi": first + len(rows),
                                                  "count": len(rows),
                                                  "total": sum(r[9] for r in rows)})
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
            count, zero, _ = conn.execute(render(self._sql["remove"], cond=" OR ".join(parts)),
                                          params).fetchone()
            if count:
                conn.execute(self._sql["refresh"], {"zero": zero})
            return int(count)

    # ----------------------------------------------------------------- reads
    def _vector_params(self, vector: Any, candidates: int, filtered: bool,
                       params: dict[str, Any]) -> None:
        """A filtered HNSW scan is asked for ``ef_search`` rows at least: the iterative scan
        returns them roughly in order, the exact re-sort keeps the best ``candidates``."""
        params.update(q=validate_query_vector(vector, self._require_space().dim), c=candidates,
                      w=max(candidates, self.ef_search) if filtered else candidates,
                      threshold=self.exact_threshold,
                      probe=self.exact_filter_rows if filtered else 0)

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
        allowed = "TRUE" if filter is None else \
            f"sid IN (SELECT sid FROM {self._names['chunks']} WHERE {_Where(params).sql(filter)})"
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
        params.update(k=k, wv=float(fusion.vector_weight), wk=float(fusion.keyword_weight),
                      rk=int(fusion.k), alpha=float(fusion.alpha), oma=1 - float(fusion.alpha),
                      adaptive=bool(fusion.adaptive))
        where = _Where(params).sql(filter)
        allowed = "TRUE" if filter is None else \
            f"sid IN (SELECT sid FROM {self._names['chunks']} WHERE {where})"
        stmt = render(self._sql["hybrid"], where=where, allowed=allowed,
                      fused=RRF_SQL if fusion.method == "rrf" else score_fusion_sql(fusion.method))
        with self._db("hybrid search") as conn:
            self._set_ef(conn, candidates)
            rows = conn.execute(stmt, params).fetchall()
        out = []
        for r in rows:
            vs, vr, ks, kr, fused = r[6:]
            out.append(Hit(_chunk(r), float(fused), Scores(
                vector=None if vs is None else float(vs), keyword=None if ks is None else float(ks),
                vector_rank=None if vr is None else int(vr),
                keyword_rank=None if kr is None else int(kr), fused=float(fused))))
        return out

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        ids = [str(i) for i in ids]
        if not ids:
            return []
        with self._db("get") as conn:
            rows = conn.execute(f"SELECT {_ROW} FROM {self._names['chunks']} c "
                                "WHERE c.id = ANY(%s::text[])", (ids,)).fetchall()
        found = {r[0]: _chunk(r) for r in rows}
        return [found[i] for i in ids if i in found]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        dim = self._require_space().dim
        ids = [str(i) for i in ids]
        if not ids:
            return np.zeros((0, dim), np.float32)
        with self._db("get vectors") as conn:
            rows = conn.execute(f"SELECT id, embedding FROM {self._names['chunks']} "
                                "WHERE id = ANY(%s::text[])", (ids,), binary=True).fetchall()
        found = {r[0]: r[1] for r in rows}
        missing = [i for i in ids if i not in found]
        if missing:
            raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
        return np.stack([np.asarray(found[i].to_numpy() if hasattr(found[i], "to_numpy")
                                    else found[i], np.float32) for i in ids])

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        docs = [str(d) for d in document_ids]
        if not docs:
            return []
        with self._db("get by document") as conn:
            rows = conn.execute(f"SELECT {_ROW} FROM {self._names['chunks']} c "
                                "WHERE c.document_id = ANY(%s::text[]) "
                                "ORDER BY c.document_id, c.position, c.id", (docs,)).fetchall()
        by_doc: dict[str, list[Chunk]] = {}
        for r in rows:
            by_doc.setdefault(r[1], []).append(_chunk(r))
        return [c for d in dict.fromkeys(docs) for c in by_doc.get(d, [])]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        params: dict[str, Any] = {}
        stmt = (f"SELECT n FROM {self._names['meta']}" if filter is None else
                f"SELECT count(*) FROM {self._names['chunks']} WHERE {_Where(params).sql(filter)}")
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
    return PgVector(db_url, table=options.get("table", "vecmem_chunks"),
                    schema=options.get("schema", "public"))


__all__ = ["PgVector", "from_url"]
