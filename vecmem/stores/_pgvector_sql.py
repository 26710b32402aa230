"""The SQL of :mod:`vecmem.stores.pgvector`: schema, writes, the vector / keyword / hybrid
statements, the filter translation to jsonb, and the rows' metadata encoding. Module constants
(``QUERY_SQL``...), so the benchmark's raw-psycopg baseline runs the same text.

>>> "{chunks}" in QUERY_SQL
True
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from vecmem.errors import InvalidInputError
from vecmem.filters import Filter, SqlTranslator
from vecmem.types import Chunk, Hit, Scores

LOCK_NS = 0x7665  # first key of vecmem's advisory locks

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
HNSW_SQL = (
    "CREATE INDEX IF NOT EXISTS {name}_hnsw ON {chunks} "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {efc})"
)

COPY_SQL = (
    "COPY {chunks} (sid, id, document_id, position, text, meta_json, content_hash, "
    "terms, tfs, length, embedding) FROM STDIN (FORMAT BINARY)"
)
COPY_TYPES = "int8 text text int4 text text text text[] int4[] int4 vector".split()

LOCK_SQL = "SELECT pg_advisory_xact_lock(%(ns)s, hashtext(%(name)s))"

# Re-embedding (see PgVector._switch_pointer): the pointer table, one row per collection (the
# physical name of its space and of the old space a switch left), and the check made under both
# tables' locks before a switch: the two counts, and how many ids differ in presence or hash.
SPACES = "vecmem_spaces"
SPACES_SQL = """CREATE TABLE IF NOT EXISTS {spaces} (collection text COLLATE "C" PRIMARY KEY,
    physical text NOT NULL, replaced text)"""
COMPARE_SQL = """SELECT (SELECT n FROM {old_meta}), (SELECT n FROM {new_meta}),
    (SELECT count(*) FROM {old} o FULL JOIN {new} x ON o.id = x.id
     WHERE o.content_hash IS DISTINCT FROM x.content_hash)"""

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

ROW = "c.id, c.document_id, c.position, c.text, c.meta_json, c.content_hash"
QUERY_SQL = (
    "WITH " + VECTOR_CTES + "\nSELECT " + ROW + ", 1 - v.dist FROM vec v "
    "JOIN {chunks} c ON c.sid = v.sid ORDER BY v.rank"
)
KEYWORD_SQL = (
    "WITH " + KEYWORD_CTES + "\nSELECT " + ROW + ", w.score FROM kw w "
    "JOIN {chunks} c ON c.sid = w.sid ORDER BY w.rank"
)
RRF_SQL = (
    "coalesce(%(wv)s::float8 / (%(rk)s::int8 + v.rank), 0) + "
    "coalesce(%(wk)s::float8 / (%(rk)s::int8 + w.rank), 0)"
)
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
    "WITH "
    + VECTOR_CTES
    + ",\n"
    + KEYWORD_CTES
    + """,
vm AS (SELECT min(1 - dist) AS lo, max(1 - dist) AS hi, avg(1 - dist) AS mu,
              coalesce(stddev_pop(1 - dist), 0) AS sd, count(*) AS n FROM vec),
km AS (SELECT min(score) AS lo, max(score) AS hi, avg(score) AS mu,
              coalesce(stddev_pop(score), 0) AS sd, count(*) AS n FROM kw),
cf AS (SELECT """
    + _CONF.format(m="vm")
    + " AS cv, "
    + _CONF.format(m="km")
    + """ AS ck,
              vm.n > 0 AND km.n > 0 AND %(adaptive)s::bool AS adapt FROM vm CROSS JOIN km),
wt AS (SELECT CASE WHEN adapt AND %(alpha)s::float8 * cv + %(oma)s::float8 * ck > 0
                   THEN %(alpha)s::float8 * cv / (%(alpha)s::float8 * cv + %(oma)s::float8 * ck)
                   ELSE %(alpha)s::float8 END AS a FROM cf),
fused AS (
    SELECT coalesce(v.sid, w.sid) AS sid, 1 - v.dist AS vs, v.rank AS vr, w.score AS ks,
           w.rank AS kr, {fused} AS fused
    FROM vec v FULL JOIN kw w ON w.sid = v.sid CROSS JOIN vm CROSS JOIN km CROSS JOIN wt)
SELECT """
    + ROW
    + """, f.vs, f.vr, f.ks, f.kr, f.fused FROM fused f
JOIN {chunks} c ON c.sid = f.sid ORDER BY f.fused DESC, c.id LIMIT %(k)s::int8"""
)


def render(template: str, **parts: str) -> str:
    """``template`` with each ``{key}`` replaced by ``parts[key]`` (no other brace handling)."""
    for key, value in parts.items():
        template = template.replace("{" + key + "}", value)
    return template


def table_names(schema: str, table: str) -> dict[str, str]:
    """The quoted names of a collection's tables, for the SQL templates."""
    q = f'"{schema}".'
    return {
        "name": table,
        "chunks": f'{q}"{table}"',
        "postings": f'{q}"{table}_postings"',
        "terms": f'{q}"{table}_terms"',
        "hist": f'{q}"{table}_dfhist"',
        "meta": f'{q}"{table}_meta"',
        "hnsw": f'{q}"{table}_hnsw"',
    }


# --------------------------------------------------------------------------- filters
class Where(SqlTranslator):
    """Translates a parsed filter to SQL over ``metadata`` (jsonb) with the reference semantics
    of ``filters.matches``, its values added to ``params``. Every piece is a non-NULL boolean, so
    NOT/AND/OR act as in Python; equality is jsonb containment (types kept apart, ``1 == 1.0``, a
    list never equals a scalar, GIN-indexed); comparisons apply only to ``jsonb_typeof =
    'number'`` (bools are not numbers)."""

    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params

    def sql(self, f: Filter | None) -> str:
        return "TRUE" if f is None else self(f)

    def _p(self, value: Any, cast: str) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f"%({name})s::{cast}"

    def eq(self, field: str, value: Any) -> str:
        return f"(metadata @> {self._p(json.dumps({field: value}), 'jsonb')})"

    def exists(self, field: str) -> str:
        return f"(metadata ? {self._p(field, 'text')})"

    def contains(self, field: str, value: Any) -> str:
        return self.eq(field, [value])

    def compare(self, field: str, op: str, value: float) -> str:
        compare = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        name = self._p(field, "text")
        bound = self._p(repr(value) if isinstance(value, float) else str(value), "numeric")
        return (
            f"(CASE WHEN jsonb_typeof(metadata -> {name}) = 'number' "
            f"THEN (metadata -> {name})::numeric {compare} {bound} ELSE FALSE END)"
        )


# --------------------------------------------------------------------------- rows
def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_has_nul(v) for v in value)
    return False


def meta_json(c: Chunk) -> str:
    """A chunk's metadata as JSON text (``validate_batch`` checked it is JSON); PostgreSQL text
    holds no NUL character."""
    raw = json.dumps(dict(c.metadata), ensure_ascii=False)
    if "\\u0000" in raw and _has_nul(c.metadata):
        raise InvalidInputError(f"metadata of chunk {c.id!r} holds a NUL character")
    return raw


def chunk(row: Sequence[Any]) -> Chunk:
    cid, doc, pos, text, meta, h = row[:6]
    return Chunk(
        id=cid, document_id=doc, position=pos, text=text, metadata=json.loads(meta), content_hash=h
    )


def hit(row: Sequence[Any]) -> Hit:
    """A row of ``HYBRID_SQL``: the chunk, then each leg's score and rank (NULL where the leg did
    not return it), and the fused score; psycopg gives them as float, int and None."""
    vs, vr, ks, kr, fused = row[6:]
    scores = Scores(vector=vs, keyword=ks, vector_rank=vr, keyword_rank=kr, fused=fused)
    return Hit(chunk(row), fused, scores)
