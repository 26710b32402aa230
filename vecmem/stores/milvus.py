"""Milvus adapter: vectors and filters in Milvus (embedded Milvus Lite or a server), exact BM25
beside them.

``Milvus(uri="./milvus.db")`` runs the real Milvus engine in-process (``milvus-lite``, one file);
``Milvus(uri="http://host:19530", token=...)`` talks to a Milvus server or cluster with the same
``pymilvus`` calls. One collection per store, a ``FLAT`` cosine index (exact top-k, the filter
applied before it), the recorded :class:`~vecmem.types.EmbeddingSpace` in the collection's
properties.

Layout: ``id`` (primary key), ``doc``, ``pos``, ``text``, ``hash``, ``meta`` (the metadata as
JSON text, read back exactly), ``vec``, and ``f``, a JSON field of typed copies for filtering:
``n_F`` numbers, ``s_F`` strings, ``b_F`` booleans, ``l_F`` the scalar elements of a list as tagged
strings (:mod:`._flat`) and ``_k`` the field names present. Milvus compares ``true == 1`` and
leaves a condition on a missing key undecided (so ``not`` drops it); with each type under its
own key and every condition guarded by ``exists``, filters keep vecmem's semantics exactly:
``$ne`` matches chunks without the field, booleans are not numbers. Numbers compare as Milvus
compares JSON numbers (64-bit; ints beyond 2**53 are stored as floats in ``n_F``).

The keyword leg is a :class:`~vecmem.stores._beside.KeywordBeside` (rank_bm25's scores; Milvus's
own BM25 function needs an analyzer-built sparse field and scores differently), built on the first
keyword search and kept in step with this store's writes; every write stores a fresh token in the
collection properties (``vecmem_gen``), and a store that finds one it did not write rebuilds.

>>> store = Milvus(uri="./milvus.db")                                # doctest: +SKIP
>>> VectorMemory("milvus:///srv/milvus.db?collection=kb")           # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    BackendUnavailableError,
    ConfigurationError,
    InvalidInputError,
    VecmemError,
)
from vecmem.filters import Filter, Translator
from vecmem.stores import _flat as flat
from vecmem.stores.base import Capabilities
from vecmem.stores.kit import BesideKit, Switchable, parse_url
from vecmem.types import Chunk, EmbeddingSpace, Scored

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
_MAX_VARCHAR = 65_535  # Milvus's VARCHAR limit, in bytes
_BATCH = 2000  # rows per insert / ids per request
_WINDOW = 16_384  # Milvus's limit on offset + limit
_EXACT = 2**53
_FIELDS = ["id", "doc", "pos", "text", "hash", "meta"]
SPACES = "vecmem_spaces"
"""The collection of the collections' pointers (re-embedding, see :class:`Switchable`): one row
per collection switched once (``collection``, ``physical``, ``replaced``; "" for none); a switch
is one row's ``upsert``."""


# --------------------------------------------------------------------------- filters
def _lit(v: Any) -> str:
    """A scalar as a Milvus expression literal."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(float(v)) if isinstance(v, float) or abs(v) > _EXACT else str(int(v))


def _key(key: str) -> str:
    return f"f[{_lit(key)}]"


def _leaf(key: str, op: str, v: Any) -> str:
    """``key op v`` guarded by ``exists``: false, never undecided, when the key is missing."""
    return f"(exists {_key(key)} and {_key(key)} {op} {_lit(v)})"


def _eq_any(field: str, values: Iterable[Any]) -> str:
    parts = []
    for key, vals in flat.groups(field, values).items():
        for x in vals:
            if key.startswith("n_") and not math.isfinite(x):
                continue  # no stored number is infinite
            parts.append(_leaf(key, "==", x))
    return "(" + " or ".join(parts) + ")" if parts else "false"


def to_expr(f: Filter | None) -> str:
    """A parsed vecmem filter as a Milvus boolean expression over the typed field ``f``
    (``""``: no filter).

    >>> from vecmem.filters import parse_filter
    >>> to_expr(parse_filter({"n": {"$gt": 2}}))
    '(exists f["n_n"] and f["n_n"] > 2)'
    """
    return "" if f is None else _Expr()(f)


class _Expr(Translator[str]):
    def and_(self, items: list[str]) -> str:
        return "(" + " and ".join(items) + ")"

    def or_(self, items: list[str]) -> str:
        return "(" + " or ".join(items) + ")"

    def not_(self, item: str) -> str:
        return f"(not {item})"

    def eq(self, field: str, value: Any) -> str:
        return _eq_any(field, (value,))

    def in_(self, field: str, values: Sequence[Any]) -> str:
        return _eq_any(field, values)

    def exists(self, field: str) -> str:
        return f'json_contains(f["_k"], {_lit(field)})'

    def contains(self, field: str, value: Any) -> str:
        tag, key = flat.tag(value), "l_" + field
        if tag is None:
            return "false"
        return f"(exists {_key(key)} and json_contains({_key(key)}, {_lit(tag)}))"

    def compare(self, field: str, op: str, value: float) -> str:
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
        if math.isinf(value):  # every stored number is finite
            wanted = (value > 0) != (op in ("gt", "gte"))
            return f"(exists {_key('n_' + field)})" if wanted else "false"
        return _leaf("n_" + field, sym, value)


def _typed(meta: dict[str, Any]) -> dict[str, Any]:
    """The typed copies of a chunk's metadata (see the module docstring)."""
    out: dict[str, Any] = {"_k": list(meta)}
    for field, v in meta.items():
        t, val = flat.typed(v)
        if t in ("i", "f"):
            if isinstance(v, float) and not math.isfinite(v):
                raise InvalidInputError(f"metadata {field!r} is {v}: not JSON")
            out["n_" + field] = float(val) if t == "i" and abs(val) > _EXACT else val
        elif t != "o":
            out[flat.KEY[t] + field] = val
    return out


# --------------------------------------------------------------------------- the store
class Milvus(BesideKit, Switchable):
    """A vecmem store on Milvus: Milvus Lite in a file, or a Milvus server, exact BM25 beside.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=Milvus(uri="./milvus.db"))                   # doctest: +SKIP
    >>> mem = VectorMemory(store=Milvus(uri="http://localhost:19530", collection="kb"))
    ... # doctest: +SKIP
    """

    name = "milvus"

    def __init__(
        self, uri: str = "./milvus.db", *, token: str = "", collection: str = "vecmem"
    ) -> None:
        super().__init__()
        if not isinstance(collection, str) or not _NAME.match(collection) or collection == SPACES:
            raise ConfigurationError(
                f"Milvus collection names are [A-Za-z_][A-Za-z0-9_]* "
                f"(255 at most), got {collection!r}"
            )
        self.uri, self.token = str(uri), token
        self.collection = self._name = collection
        self._props_seen: dict[str, Any] = {}  # the properties _read_gen last read
        server = self.uri.startswith(("http://", "https://", "tcp://", "unix:"))
        self.capabilities = Capabilities(persistent=True, concurrent_writers=server)

    # ----------------------------------------------------------------- kit hooks
    @property
    def where(self) -> str:
        return f"Milvus collection {self._name!r} at {self.uri}"

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        text = str(exc).lower()
        if "connect" in text or "unavailable" in text or "deadline" in text:
            return BackendUnavailableError
        return None

    def _open(self) -> Any:
        pymilvus = require("pymilvus", "milvus")
        return pymilvus.MilvusClient(uri=self.uri, token=self.token)

    def _release(self) -> None:
        self._client.close()
        self._kw = None

    # ----------------------------------------------------------------- re-embedding: the switch
    def _pin(self, physical: str) -> None:
        super()._pin(physical)
        self._name = physical

    def _pointer(self, client: Any) -> tuple[str, str | None] | None:
        if not client.has_collection(SPACES):
            return None
        client.load_collection(SPACES)
        got = client.query(
            SPACES,
            filter=f"collection == {_lit(self.collection)}",
            output_fields=["physical", "replaced"],
        )
        return (got[0]["physical"], got[0]["replaced"] or None) if got else None

    def _set_pointer(self, client: Any, physical: str, replaced: str | None) -> None:
        """One row's upsert: the collection's pointer (its collection made on first use)."""
        if not client.has_collection(SPACES):
            pymilvus = require("pymilvus", "milvus")
            dt = pymilvus.DataType
            schema = pymilvus.MilvusClient.create_schema(auto_id=False)
            schema.add_field("collection", dt.VARCHAR, is_primary=True, max_length=256)
            schema.add_field("physical", dt.VARCHAR, max_length=256)
            schema.add_field("replaced", dt.VARCHAR, max_length=256)
            schema.add_field("vec", dt.FLOAT_VECTOR, dim=2)
            index = client.prepare_index_params()
            index.add_index(field_name="vec", index_type="FLAT", metric_type="L2")
            client.create_collection(SPACES, schema=schema, index_params=index)
        client.load_collection(SPACES)
        row = {
            "collection": self.collection,
            "physical": physical,
            "replaced": replaced or "",
            "vec": [0.0, 0.0],
        }
        client.upsert(SPACES, [row])

    def _space_stamp(self) -> str | None:
        return self._read_gen()

    def _mark_replaced(self, client: Any, by: str) -> None:
        client.alter_collection_properties(self._name, {"vecmem_replaced_by": by})

    def _drop_named(self, physical: str) -> None:
        client = self._c()
        if client.has_collection(physical):
            client.drop_collection(physical)

    def _props(self) -> dict[str, Any]:
        with self._errors("describe the collection"):
            return dict(self._c().describe_collection(self._name).get("properties") or {})

    def _read_space(self) -> EmbeddingSpace | None:
        with self._errors("open the collection"):
            if not self._c().has_collection(self._name):
                return None
        raw = self._props().get("vecmem_space")
        if raw is None:
            raise ConfigurationError(f"{self.where} was not made by vecmem; pick another name")
        return EmbeddingSpace.from_json(raw)

    def _create(self, space: EmbeddingSpace) -> None:
        pymilvus = require("pymilvus", "milvus")
        dt, c = pymilvus.DataType, self._c()
        schema = pymilvus.MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", dt.VARCHAR, is_primary=True, max_length=_MAX_VARCHAR)
        for name in ("doc", "text", "meta"):
            schema.add_field(name, dt.VARCHAR, max_length=_MAX_VARCHAR)
        schema.add_field("pos", dt.INT64)
        schema.add_field("hash", dt.VARCHAR, max_length=128)
        schema.add_field("f", dt.JSON)
        schema.add_field("vec", dt.FLOAT_VECTOR, dim=space.dim)
        index = c.prepare_index_params()
        index.add_index(field_name="vec", index_type="FLAT", metric_type="COSINE")
        with self._errors("create the collection"):
            c.create_collection(
                self._name,
                schema=schema,
                index_params=index,
                properties={"vecmem_space": space.to_json(), "vecmem_gen": uuid.uuid4().hex},
            )

    def _connected(self, space: EmbeddingSpace) -> None:
        with self._errors("load the collection"):
            self._c().load_collection(self._name)

    # ----------------------------------------------------------------- writes
    def _row(self, c: Chunk, v: np.ndarray) -> dict[str, Any]:
        meta = dict(c.metadata)
        try:
            text = json.dumps(meta, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"metadata of chunk {c.id!r} is not JSON: {exc}") from exc
        if '"' in c.id or "\\" in c.id:
            # pymilvus's query_iterator pages with `id > "<last id>"` unescaped, so an id holding
            # a quote or backslash breaks every later scan (count by filter, delete, get by
            # document): refused here, before anything is written
            raise InvalidInputError(
                f"chunk id {c.id!r} holds a double quote or backslash, which Milvus's paging "
                "cannot carry; use other characters in ids and document ids on Milvus"
            )
        for what, value in (
            ("id", c.id),
            ("document id", c.document_id),
            ("text", c.text),
            ("metadata", text),
        ):
            if len(value.encode("utf-8")) > _MAX_VARCHAR:
                raise InvalidInputError(
                    f"the {what} of chunk {c.id!r} is over Milvus's {_MAX_VARCHAR}-byte limit"
                )
        return {
            "id": c.id,
            "doc": c.document_id,
            "pos": int(c.position),
            "text": c.text,
            "hash": c.content_hash,
            "meta": text,
            "f": _typed(meta),
            "vec": v.tolist(),
        }

    def _write_chunks(self, chunks: list[Chunk], vectors: np.ndarray, deletes: list[str]) -> None:
        rows = [self._row(c, x) for c, x in zip(chunks, vectors)]  # every check before any write
        with self._lock:
            deletes = self._existing(deletes)
            with self._writing(chunks, deletes):
                for i in range(0, len(rows), _BATCH):
                    with self._errors("upsert"):
                        self._c().upsert(self._name, rows[i : i + _BATCH])
                self._delete_ids(deletes)

    def _read_gen(self) -> str | None:
        self._props_seen = self._props()
        return self._props_seen.get("vecmem_gen")

    def _check_writable(self) -> None:
        self._refuse_replaced(self._props_seen.get("vecmem_replaced_by"))  # just read

    def _write_gen(self, gen: str) -> None:
        with self._errors("record the write"):
            self._c().alter_collection_properties(self._name, {"vecmem_gen": gen})

    def _texts(self) -> Iterable[tuple[str, str]]:
        return ((r["id"], r["text"]) for r in self._scan("", ["id", "text"]))

    def _delete_ids(self, ids: list[str]) -> None:
        for i in range(0, len(ids), _BATCH):
            with self._errors("delete"):
                self._c().delete(self._name, ids=ids[i : i + _BATCH])

    def _existing(self, ids: Sequence[str]) -> list[str]:
        return list(self._rows(ids, "", ["id"]))

    def _matching(self, filter: Filter) -> Iterable[str]:
        return (r["id"] for r in self._scan(to_expr(filter), ["id"]))

    # ----------------------------------------------------------------- reads
    def _rows(
        self, ids: Sequence[str], expr: str = "", fields: Sequence[str] = _FIELDS
    ) -> dict[str, dict[str, Any]]:
        """``{id: row}`` for those of ``ids`` (distinct) that exist (and match ``expr``)."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), _BATCH):
            part = ids[i : i + _BATCH]
            where = f"id in [{', '.join(map(_lit, part))}]" + (f" and ({expr})" if expr else "")
            with self._errors("get"):
                got = self._c().query(
                    self._name, filter=where, output_fields=list(fields), limit=len(part)
                )
            out.update((r["id"], r) for r in got)
        return out

    def _scan(self, expr: str, fields: Sequence[str]) -> Iterable[dict[str, Any]]:
        """Every row matching ``expr`` (``""``: all), page by page."""
        with self._errors("scan"):
            it = self._c().query_iterator(
                self._name, batch_size=_BATCH, filter=expr, output_fields=list(fields)
            )
            try:
                while page := it.next():
                    yield from page
            finally:
                it.close()

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        q = self._check_query(vector, k)
        if k > _WINDOW:
            raise InvalidInputError(f"Milvus returns at most {_WINDOW} hits, k={k}")
        with self._errors("vector query"):
            res = self._c().search(
                self._name,
                data=[q.tolist()],
                limit=k,
                filter=to_expr(filter),
                output_fields=_FIELDS,
                search_params={"metric_type": "COSINE"},
            )
        return [Scored(_chunk(h["entity"]), float(h["distance"])) for h in res[0]]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        self._require_space()
        with self._lock:
            kw = self._beside()
            expr = to_expr(filter)

            def fetch(ids: list[str], filtered: bool) -> dict[str, Chunk]:
                return {i: _chunk(r) for i, r in self._rows(ids, expr if filtered else "").items()}

            return self._keyword_search(kw, text, k, fetch, filter is not None)

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Up to ``limit`` ids greater than ``after``, ascending: the first page of a query
        iterator (Milvus pages it in primary-key order; VARCHAR compares by bytes, so code-point
        order), a keyset page (:class:`~vecmem.stores.base.PagedStore`)."""
        self._require_space()
        expr = f"id > {_lit(after)}" if after is not None else ""
        with self._errors("page ids"):
            it = self._c().query_iterator(
                self._name, batch_size=limit, filter=expr, output_fields=["id"]
            )
            try:
                return [r["id"] for r in it.next()]
            finally:
                it.close()

    def _read_chunks(self, ids: list[str]) -> Mapping[str, Chunk]:
        return {i: _chunk(r) for i, r in self._rows(ids).items()}

    def _read_vectors(self, ids: list[str]) -> Mapping[str, Any]:
        return {i: r["vec"] for i, r in self._rows(ids, "", ["id", "vec"]).items()}

    def _read_documents(self, docs: list[str]) -> Iterable[Chunk]:
        for i in range(0, len(docs), _BATCH):
            expr = f"doc in [{', '.join(map(_lit, docs[i : i + _BATCH]))}]"
            yield from map(_chunk, self._scan(expr, _FIELDS))

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        with self._errors("count"):
            got = self._c().query(self._name, filter=to_expr(filter), output_fields=["count(*)"])
        return int(got[0]["count(*)"])

    # ----------------------------------------------------------------- maintenance
    def optimize(self) -> None:
        """Flush and compact the collection's segments."""
        self._require_space()
        with self._errors("optimize"):
            self._c().flush(self._name)
            self._c().compact(self._name)

    def _delete_pointer(self) -> None:
        self._c().delete(SPACES, ids=[self.collection])

    def _forget(self) -> None:
        self.space, self._kw, self._gen = None, None, None


def _chunk(r: dict[str, Any]) -> Chunk:
    return Chunk(
        id=r["id"],
        document_id=r["doc"],
        position=int(r["pos"]),
        text=r["text"],
        metadata=json.loads(r["meta"]),
        content_hash=r["hash"],
    )


def from_url(url: str) -> Milvus:
    """``milvus:///abs/milvus.db`` / ``milvus://./rel.db`` (Milvus Lite), ``milvus+http://host:
    19530``, ``milvus+https://host``; query: ``?collection=NAME``."""
    u = parse_url(url, schemes=("milvus", "milvus+http", "milvus+https"), params=("collection",))
    collection = u.query.get("collection", "vecmem")
    if u.scheme != "milvus":
        if not u.host:
            raise ConfigurationError(f"Milvus URL {url!r} has no host")
        web = u.scheme.removeprefix("milvus+")
        return Milvus(f"{web}://{u.host}:{u.port or 19530}", collection=collection)
    if not u.path:
        raise ConfigurationError(f"Milvus URL {url!r} names no file")
    return Milvus(u.path, collection=collection)


__all__ = ["Milvus", "from_url", "to_expr"]
