"""DuckDB adapter: chunks, vectors and filters in DuckDB (in-process), exact BM25 beside them.

``DuckDb(path="kb.duckdb")`` keeps the data in one file, ``DuckDb()`` in memory. One table per
store (``table=``): ``id, doc, pos, text, hash, meta JSON, vec FLOAT[dim]``, and ``<table>_vm``
holding the recorded :class:`~vecmem.types.EmbeddingSpace` and a write generation token.

Vector search is ``array_cosine_distance`` over the table with the filter in the ``WHERE`` clause
(exact, filter before top-k). No HNSW index: the ``vss`` extension's (DuckDB 1.4.4,
``duckdb-ext-vss``) hangs inside a ``DELETE`` after about ten delete/insert rounds on 40 rows, in
memory and on file (December 2026), and a store must survive its own deletes. Filters become SQL
over the JSON metadata with the types kept apart (``json_type``): ``$eq`` on ``1`` never matches
``true``, ``$gt`` skips strings and booleans, ``$contains`` looks inside lists only. Numbers are
compared as 64-bit floats.

The keyword leg is a :class:`~vecmem.stores._beside.KeywordBeside` (rank_bm25's scores, which
DuckDB's ``fts`` extension does not reproduce: its BM25 stems and has its own idf), built from the
table on the first keyword search and kept in step with every write; a write through another
store object bumps the generation token, and this store rebuilds on its next keyword search.

>>> store = DuckDb(path="./kb.duckdb")                         # doctest: +SKIP
>>> VectorMemory("duckdb:///srv/kb.duckdb?table=notes")        # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    BackendError,
    ConfigurationError,
    InvalidInputError,
    StoreLockedError,
    SwitchUnsupportedError,
    VecmemError,
)
from vecmem.filters import Filter, Translator
from vecmem.stores.base import Capabilities
from vecmem.stores.kit import BesideKit, Switchable, parse_url
from vecmem.types import Chunk, EmbeddingSpace, Scored

_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_NUM = "('UBIGINT','BIGINT','DOUBLE','HUGEINT')"
_COLS = "id, doc, pos, text, hash, meta"
SPACES = "vecmem_spaces"  # the collections' pointers (re-embedding, see kit.Switchable)
SQL = tuple[str, list[Any]]


def _pointer(field: str) -> str:
    """A metadata field as a JSON pointer (any key: quotes, slashes, emoji)."""
    return "/" + field.replace("~", "~0").replace("/", "~1")


def _eq(doc: str, path: str | None, v: Any) -> SQL:
    """``doc`` (a JSON expression; ``path`` a pointer into it, or None for itself) equals the
    scalar ``v`` with types kept apart."""
    at = (
        (f"json_type({doc}, ?)", f"json_extract_string({doc}, ?)")
        if path
        else (f"json_type({doc})", f"json_extract_string({doc}, '$')")
    )
    p = [path] if path else []
    if isinstance(v, bool):
        return f"({at[0]} = 'BOOLEAN' AND {at[1]} = ?)", [*p, *p, "true" if v else "false"]
    if isinstance(v, str):
        return f"({at[0]} = 'VARCHAR' AND {at[1]} = ?)", [*p, *p, v]
    return (f"({at[0]} IN {_NUM} AND TRY_CAST({at[1]} AS DOUBLE) = ?)", [*p, *p, float(v)])


def to_sql(f: Filter | None) -> SQL:
    """A parsed vecmem filter as a SQL condition over ``meta`` with its parameters.

    >>> from vecmem.filters import parse_filter
    >>> to_sql(parse_filter({"n": {"$gt": 2}}))[1]
    ['/n', '/n', 2.0]
    """
    return ("TRUE", []) if f is None else _Sql()(f)


def _join(word: str, items: list[SQL]) -> SQL:
    return "(" + f" {word} ".join(s for s, _ in items) + ")", [p for _, ps in items for p in ps]


def _leaf(sql: str, params: list[Any]) -> SQL:
    return f"COALESCE({sql}, FALSE)", params  # a missing field is false, never NULL


class _Sql(Translator[SQL]):
    def and_(self, items: list[SQL]) -> SQL:
        return _join("AND", items)

    def or_(self, items: list[SQL]) -> SQL:
        return _join("OR", items) if items else ("FALSE", [])

    def not_(self, item: SQL) -> SQL:
        return f"(NOT {item[0]})", item[1]

    def eq(self, field: str, value: Any) -> SQL:
        return _leaf(*_eq("meta", _pointer(field), value))

    def exists(self, field: str) -> SQL:
        return _leaf("(json_type(meta, ?) IS NOT NULL)", [_pointer(field)])

    def contains(self, field: str, value: Any) -> SQL:
        inner, params = _eq("x", None, value)
        path = _pointer(field)
        # TRY_CAST: AND does not stop DuckDB from casting the rows whose value is no array
        return _leaf(
            f"(json_type(meta, ?) = 'ARRAY' AND len(list_filter(TRY_CAST(json_extract(meta, ?) "
            f"AS JSON[]), lambda x: {inner})) > 0)",
            [path, path, *params],
        )

    def compare(self, field: str, op: str, value: float) -> SQL:
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        path = _pointer(field)
        return _leaf(
            f"(json_type(meta, ?) IN {_NUM} AND TRY_CAST(json_extract_string(meta, ?) AS DOUBLE)"
            f" {sym} ?)",
            [path, path, float(value)],
        )


def _encode_meta(c: Chunk) -> str:
    try:
        return json.dumps(dict(c.metadata), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata of chunk {c.id!r} is not JSON: {exc}") from exc


def _chunk(row: Sequence[Any]) -> Chunk:
    cid, doc, pos, text, h, meta = row[:6]
    return Chunk(
        id=cid,
        document_id=doc,
        position=int(pos),
        text=text,
        metadata=json.loads(meta),
        content_hash=h,
    )


class DuckDb(BesideKit, Switchable):
    """A vecmem store in DuckDB, in a file or in memory, with exact BM25 beside it.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=DuckDb(path="./kb.duckdb"))                  # doctest: +SKIP
    >>> mem = VectorMemory(store=DuckDb(table="notes"))                      # doctest: +SKIP

    Re-embedding a file's table switches it in one transaction (the pointer table ``vecmem_spaces``
    and the old table marked replaced: its writers are refused from then on); a DuckDB file is
    open in one process at a time, so readers elsewhere wait for it anyway.
    """

    name = "duckdb"

    def __init__(self, path: str | None = None, *, table: str = "vecmem") -> None:
        super().__init__()
        if not isinstance(table, str) or not _TABLE.match(table) or table == SPACES:
            raise ConfigurationError(
                f"DuckDb table names are SQL identifiers "
                f"([A-Za-z_][A-Za-z0-9_]*, 63 at most), got {table!r}"
            )
        self.path = None if path is None or str(path) == ":memory:" else str(path)
        self.table = self.collection = table
        self.capabilities = Capabilities(persistent=self.path is not None, transactions=True)
        self._vm_seen: dict[str, str] = {}  # the generation rows _read_gen last read

    # ----------------------------------------------------------------- kit hooks
    @property
    def where(self) -> str:
        return f"DuckDB table {self.table!r} in {self.path or 'memory'}"

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        duckdb = require("duckdb", "duckdb")
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            return StoreLockedError
        if isinstance(exc, duckdb.Error):
            return None if isinstance(exc, duckdb.IOException) else BackendError
        return None

    def _open(self) -> Any:
        duckdb = require("duckdb", "duckdb")
        return duckdb.connect(self.path or ":memory:")

    def _release(self) -> None:
        self._client.close()
        self._kw = None

    # ----------------------------------------------------------------- re-embedding: the switch
    def _pin(self, physical: str) -> None:
        super()._pin(physical)
        self.table = physical

    def _pointer(self, con: Any) -> tuple[str, str | None] | None:
        found = con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [SPACES]
        ).fetchall()[0][0]
        if not found:
            return None
        rows = con.execute(
            f"SELECT physical, replaced FROM {SPACES} WHERE collection = ?", [self.collection]
        ).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def _sibling_store(self, physical: str) -> Switchable:
        if self.path is None:
            raise SwitchUnsupportedError(
                "an in-memory DuckDB store cannot be re-embedded beside itself (another "
                "connection sees another database)"
            )
        return super()._sibling_store(physical)

    def _in_transaction(self, what: str, body: Any) -> Any:
        con = self._c()
        with self._lock, self._errors(what):
            con.execute("BEGIN")
            try:
                out = body(con)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            return out

    def _switch_pointer(self, new: Any, verify: Any, midway: Any) -> bool:
        """One transaction: the two tables compared (same ids with the same hashes), the
        pointer row written, the old table marked replaced and its generation bumped (a writer
        of it in a concurrent transaction conflicts)."""
        old, side = self.table, new.table

        def body(con: Any) -> bool:
            n_old, n_new, differ = con.execute(
                f'SELECT (SELECT count(*) FROM "{old}"), (SELECT count(*) FROM "{side}"), '
                f'(SELECT count(*) FROM "{old}" o FULL JOIN "{side}" x ON o.id = x.id '
                "WHERE o.hash IS DISTINCT FROM x.hash)"
            ).fetchall()[0]
            self._refuse_differing(n_old, n_new, differ)
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {SPACES} (collection VARCHAR PRIMARY KEY, "
                "physical VARCHAR NOT NULL, replaced VARCHAR)"
            )
            pointer = self._pointer(con)
            self._refuse_moved(pointer[0] if pointer else None, old)
            con.execute(
                f"INSERT OR REPLACE INTO {SPACES} VALUES (?, ?, ?)", [self.collection, side, old]
            )
            con.execute(f"INSERT OR REPLACE INTO \"{old}_vm\" VALUES ('replaced_by', ?)", [side])
            con.execute(f"UPDATE \"{old}_vm\" SET value = ? WHERE key = 'gen'", [uuid.uuid4().hex])
            midway()
            return False

        return bool(self._in_transaction("switch the space", body))

    def _drop_physical(self, physical: str) -> None:
        def body(con: Any) -> None:
            con.execute(f'DROP TABLE IF EXISTS "{physical}"')
            con.execute(f'DROP TABLE IF EXISTS "{physical}_vm"')
            con.execute(
                f"UPDATE {SPACES} SET replaced = NULL WHERE collection = ?", [self.collection]
            )

        self._in_transaction("drop the old space", body)

    def _sql(self, sql: str, params: Sequence[Any] = (), what: str = "query") -> list[Any]:
        """The rows of one statement (fetched under the lock: the connection is shared)."""
        with self._lock, self._errors(what):
            return self._c().execute(sql, list(params)).fetchall()

    def _read_space(self) -> EmbeddingSpace | None:
        found = self._sql(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?",
            [f"{self.table}_vm"],
            "read the space",
        )[0][0]
        if not found:
            return None
        rows = self._sql(f"SELECT value FROM \"{self.table}_vm\" WHERE key = 'space'")
        return EmbeddingSpace.from_json(rows[0][0]) if rows else None

    def _create(self, space: EmbeddingSpace) -> None:
        def body(con: Any) -> None:
            con.execute(
                f'CREATE TABLE IF NOT EXISTS "{self.table}" (id VARCHAR NOT NULL, '
                "doc VARCHAR NOT NULL, pos BIGINT, text VARCHAR, hash VARCHAR, "
                f"meta JSON, vec FLOAT[{space.dim}])"
            )
            con.execute(f'CREATE TABLE "{self.table}_vm" (key VARCHAR PRIMARY KEY, value VARCHAR)')
            con.execute(
                f"INSERT INTO \"{self.table}_vm\" VALUES ('space', ?), ('gen', ?)",
                [space.to_json(), uuid.uuid4().hex],
            )

        self._in_transaction("create the table", body)

    # ----------------------------------------------------------------- writes
    # Each write is one transaction around BesideKit's ``_writing``: the generation rows read
    # (a replaced table refuses the write), the rows changed, a new token recorded; a crash
    # leaves all or nothing. A switch rewrites the old table's token in its own transaction, so
    # a write racing it conflicts instead of landing in the replaced table.
    def _write_chunks(self, chunks: list[Chunk], vectors: np.ndarray, deletes: list[str]) -> None:
        pa = require("pyarrow", "duckdb")
        dim = self._require_space().dim
        batch = pa.table(
            {
                "id": [c.id for c in chunks],
                "doc": [c.document_id for c in chunks],
                "pos": pa.array([int(c.position) for c in chunks], pa.int64()),
                "text": [c.text for c in chunks],
                "hash": [c.content_hash for c in chunks],
                "meta": [_encode_meta(c) for c in chunks],
                "vec": pa.FixedSizeListArray.from_arrays(
                    pa.array(vectors.reshape(-1), pa.float32()), dim
                ),
            }
        )

        def body(con: Any) -> None:
            with self._writing(chunks, deletes):
                self._delete_ids([*deletes, *(c.id for c in chunks)])
                if chunks:
                    con.register("_vm_batch", batch)
                    try:
                        con.execute(
                            f'INSERT INTO "{self.table}" SELECT id, doc, pos, text, '
                            f"hash, meta::JSON, vec::FLOAT[{dim}] FROM _vm_batch"
                        )
                    finally:
                        con.unregister("_vm_batch")

        self._in_transaction("upsert", body)

    def _delete_chunks(self, ids: list[str] | None, filter: Filter | None) -> int:
        delete = super()._delete_chunks  # the ids found, then deleted: in one transaction
        return int(self._in_transaction("delete", lambda con: delete(ids, filter)))

    def _read_gen(self) -> str | None:
        self._vm_seen = dict(
            self._sql(
                f"SELECT key, value FROM \"{self.table}_vm\" WHERE key IN ('gen', 'replaced_by')",
                (),
                "read the generation",
            )
        )
        return self._vm_seen.get("gen")

    def _check_writable(self) -> None:
        self._refuse_replaced(self._vm_seen.get("replaced_by"))  # just read

    def _write_gen(self, gen: str) -> None:
        self._sql(
            f"UPDATE \"{self.table}_vm\" SET value = ? WHERE key = 'gen'", [gen], "record the write"
        )

    def _texts(self) -> Iterable[tuple[str, str]]:
        return self._sql(
            f"SELECT id, coalesce(text, '') FROM \"{self.table}\"", (), "read the texts"
        )

    def _existing(self, ids: list[str]) -> Iterable[str]:
        return (r[0] for r in self._where_id(ids, "id"))

    def _matching(self, filter: Filter) -> Iterable[str]:
        sql, params = to_sql(filter)
        return (r[0] for r in self._sql(f'SELECT id FROM "{self.table}" WHERE {sql}', params))

    def _delete_ids(self, ids: list[str]) -> None:
        self._sql(
            f'DELETE FROM "{self.table}" WHERE id IN (SELECT unnest(?::VARCHAR[]))',
            [ids],
            "delete",
        )

    # ----------------------------------------------------------------- reads
    def _where_id(self, ids: list[str], cols: str = _COLS, where: SQL = ("TRUE", [])) -> list[Any]:
        """The rows (``cols``) of those of ``ids`` that exist and pass ``where``."""
        return self._sql(
            f'SELECT {cols} FROM "{self.table}" WHERE id IN (SELECT unnest(?::VARCHAR[])) '
            f"AND {where[0]}",
            [ids, *where[1]],
            "get",
        )

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        q = self._check_query(vector, k)
        dim = self._require_space().dim
        sql, params = to_sql(filter)
        rows = self._sql(
            f"SELECT {_COLS}, array_cosine_distance(vec, ?::FLOAT[{dim}]) AS d "
            f'FROM "{self.table}" WHERE {sql} ORDER BY d, id LIMIT ?',
            [q.tolist(), *params, k],
            "vector query",
        )
        return [Scored(_chunk(r), 1.0 - float(r[6])) for r in rows]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        self._require_space()
        with self._lock:
            kw = self._beside()
            where = to_sql(filter)

            def fetch(ids: list[str], filtered: bool) -> dict[str, Chunk]:
                rows = self._where_id(ids, where=where if filtered else ("TRUE", []))
                return {r[0]: _chunk(r) for r in rows}

            return self._keyword_search(kw, text, k, fetch, filter is not None)

    def optimize(self) -> None:
        """Write the WAL into the database file (``CHECKPOINT``)."""
        self._require_space()
        self._sql("CHECKPOINT", (), "checkpoint")

    def _read_chunks(self, ids: list[str]) -> Mapping[str, Chunk]:
        return {r[0]: _chunk(r) for r in self._where_id(ids)}

    def _read_vectors(self, ids: list[str]) -> Mapping[str, Any]:
        return dict(self._where_id(ids, "id, vec"))

    def _read_documents(self, docs: list[str]) -> Iterable[Chunk]:
        rows = self._sql(
            f'SELECT {_COLS} FROM "{self.table}" WHERE doc IN (SELECT unnest(?::VARCHAR[]))',
            [docs],
            "get",
        )
        return map(_chunk, rows)

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Up to ``limit`` ids greater than ``after``, ascending (DuckDB compares VARCHAR by
        bytes: code-point order); a keyset page (:class:`~vecmem.stores.base.PagedStore`)."""
        self._require_space()
        rows = self._sql(
            f'SELECT id FROM "{self.table}" WHERE ?::VARCHAR IS NULL OR id > ? ORDER BY id LIMIT ?',
            [after, after, int(limit)],
            "page ids",
        )
        return [r[0] for r in rows]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        sql, params = to_sql(filter)
        return int(
            self._sql(f'SELECT count(*) FROM "{self.table}" WHERE {sql}', params, "count")[0][0]
        )

    def _drop_named(self, physical: str) -> None:
        self._sql(f'DROP TABLE IF EXISTS "{physical}"', (), "drop")
        self._sql(f'DROP TABLE IF EXISTS "{physical}_vm"', (), "drop")

    def _delete_pointer(self) -> None:
        self._sql(f"DELETE FROM {SPACES} WHERE collection = ?", [self.collection], "drop")

    def _forget(self) -> None:
        self.space, self._kw, self._gen = None, None, None


def from_url(url: str) -> DuckDb:
    """``duckdb:///abs/file.duckdb``, ``duckdb://./rel.duckdb``, ``duckdb://:memory:``;
    query: ``?table=NAME``."""
    u = parse_url(url, schemes=("duckdb",), params=("table",))
    if not u.path:
        raise ConfigurationError(f"DuckDB URL {url!r} names no file; use duckdb://:memory:")
    return DuckDb(None if u.path == ":memory:" else u.path, table=u.query.get("table", "vecmem"))


__all__ = ["DuckDb", "from_url", "to_sql"]
