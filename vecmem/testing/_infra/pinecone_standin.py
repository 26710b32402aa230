"""A local stand-in for Pinecone: the REST endpoints the official ``pinecone`` SDK calls, served
from memory on 127.0.0.1, so the Pinecone adapter can be tested without the cloud service.

It speaks what the SDK sends (checked by running the real SDK against it: pinecone 10.2 over
httpx and 7.3 over urllib3): the control plane ``GET/POST /indexes``, ``GET/DELETE /indexes/{name}``
(answered in the 2026-07 shape, with ``schema``/``deployment``, or the older shape with
``dimension``/``metric``/``spec``, following the ``X-Pinecone-Api-Version`` header), and each
index's data plane under ``{url}/index/{name}``: ``POST /vectors/upsert``, ``POST /query``,
``GET /vectors/fetch``, ``POST /vectors/delete``, ``GET /vectors/list``,
``POST /describe_index_stats``.

Semantics follow Pinecone's documentation, strictly where it is silent, so that an adapter cannot
lean on a lenient reading:

* auth: the ``Api-Key`` header must be the stand-in's key (else 401);
* limits: 1,000 vectors and 2 MB per upsert, 40 KB of metadata per vector, 1,000 sparse values,
  ``topK`` <= 10,000 (<= 1,000 with values or metadata), 1,000 ids per fetch/delete, 100 per list
  page;
* metadata values: strings, numbers, booleans, lists of strings (null, objects and other lists
  are refused); numbers are 64-bit floats;
* scores: ``cosine`` (dense only), ``dotproduct`` (dense dot + sparse dot; sparse values are
  refused on other metrics), ``euclidean`` (squared distance, ascending); ties by id;
* filters: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or`` (anything else is a 400);
  comparisons are typed (``true`` is not ``1``); a list field matches ``$eq``/``$in`` when an
  element does and ``$ne``/``$nin`` when none does; a record *without* the field matches no
  comparison, ``$ne``/``$nin`` included (only ``$exists: false``); ``$in``/``$nin`` take strings
  or numbers only.

Writes are visible at once (the service is eventually consistent), except that ``list_lag``
seconds can be set to keep new ids out of ``/vectors/list`` for a while, as the service's
listing lags its writes.

>>> with PineconeStandIn(api_key="k") as pc:                       # doctest: +SKIP
...     store = PineconeDb(index="kb", api_key="k", controller_host=pc.url)
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_SPARSE_VALUES = 1000
MAX_TOP_K = 10_000
MAX_TOP_K_WITH_DATA = 1000
MAX_IDS = 1000
LIST_PAGE = 100
NEW_API = "2026-07"


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: str = "INVALID_ARGUMENT") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class _Record:
    values: np.ndarray
    sparse: dict[int, float]
    metadata: dict[str, Any]
    written: float = 0.0  # time.monotonic() of the upsert


@dataclass
class _Index:
    name: str
    dimension: int
    metric: str
    cloud: str = "aws"
    region: str = "us-east-1"
    namespaces: dict[str, dict[str, _Record]] = field(default_factory=dict)
    writes: int = 0  # upserts and deletes so far: the version of each namespace's _Scan
    _scans: dict[str, _Scan] = field(default_factory=dict)

    def scan(self, ns: str) -> _Scan:
        """A namespace laid out for queries, kept until the next write: a database scans
        contiguous storage and an inverted index (stacking 100k arrays or looping over every
        record's sparse values per query would make the stand-in's time depend on its heap)."""
        recs = self.namespaces.get(ns, {})
        version = (self.writes, len(recs))
        got = self._scans.get(ns)
        if got is None or got.version != version:
            got = self._scans[ns] = _Scan(version, recs, self.dimension)
        return got


class _Scan:
    def __init__(self, version: tuple[int, int], recs: dict[str, _Record], dim: int) -> None:
        self.version, self.ids = version, list(recs)
        self.matrix = (
            np.stack([recs[i].values for i in self.ids])
            if self.ids
            else np.zeros((0, dim), dtype=np.float32)
        )
        self._recs = recs
        self._postings: dict[int, tuple[np.ndarray, np.ndarray]] | None = None

    def sparse_scores(self, query: dict[int, float]) -> np.ndarray:
        """Every record's sparse dot product with ``query`` (built on first use)."""
        if self._postings is None:
            lists: dict[int, tuple[list[int], list[float]]] = {}
            for row, i in enumerate(self.ids):
                for t, w in self._recs[i].sparse.items():
                    entry = lists.get(t)
                    if entry is None:
                        entry = lists[t] = ([], [])
                    entry[0].append(row)
                    entry[1].append(w)
            self._postings = {
                t: (np.asarray(r, dtype=np.int64), np.asarray(v)) for t, (r, v) in lists.items()
            }
        out = np.zeros(len(self.ids))
        for t, w in query.items():
            if t in self._postings:
                rows, values = self._postings[t]
                out[rows] += w * values
        return out


# --------------------------------------------------------------------------- filters
_OPS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists"}


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return _is_num(a) and _is_num(b) and float(a) == float(b)


def _check_filter(f: Any) -> None:
    if not isinstance(f, dict):
        raise ApiError(400, f"filter must be an object, got {f!r}")
    for key, value in f.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise ApiError(400, f"{key} needs a non-empty array")
            for x in value:
                _check_filter(x)
        elif key.startswith("$"):
            raise ApiError(400, f"unsupported filter operator {key}")
        elif isinstance(value, dict):
            for op, operand in value.items():
                if op not in _OPS:
                    raise ApiError(400, f"unsupported filter operator {op} on {key}")
                if op in ("$in", "$nin"):
                    if not isinstance(operand, list) or not all(
                        isinstance(x, str) or _is_num(x) for x in operand
                    ):
                        raise ApiError(400, f"{op} on {key} takes an array of strings or numbers")
                elif op in ("$gt", "$gte", "$lt", "$lte"):
                    if not _is_num(operand):
                        raise ApiError(400, f"{op} on {key} takes a number")
                elif op == "$exists":
                    if not isinstance(operand, bool):
                        raise ApiError(400, f"$exists on {key} takes a boolean")
                elif not isinstance(operand, (str, int, float, bool)):
                    raise ApiError(400, f"{op} on {key} takes a string, number or boolean")
        elif not isinstance(value, (str, int, float, bool)):
            raise ApiError(400, f"bad filter value for {key}: {value!r}")


def _cond(op: str, stored: Any, operand: Any, present: bool) -> bool:
    if op == "$exists":
        return present == operand
    if not present:
        return False
    items = stored if isinstance(stored, list) else [stored]
    if op == "$eq":
        return any(_same(x, operand) for x in items)
    if op == "$ne":
        return not any(_same(x, operand) for x in items)
    if op == "$in":
        return any(_same(x, y) for x in items for y in operand)
    if op == "$nin":
        return not any(_same(x, y) for x in items for y in operand)
    if not _is_num(stored):
        return False
    return {
        "$gt": stored > operand,
        "$gte": stored >= operand,
        "$lt": stored < operand,
        "$lte": stored <= operand,
    }[op]


def matches(f: dict[str, Any] | None, meta: dict[str, Any]) -> bool:
    """Pinecone's filter semantics as documented (see the module docstring)."""
    if not f:
        return True
    for key, value in f.items():
        if key == "$and":
            if not all(matches(x, meta) for x in value):
                return False
        elif key == "$or":
            if not any(matches(x, meta) for x in value):
                return False
        else:
            ops = value if isinstance(value, dict) else {"$eq": value}
            present = key in meta
            if not all(_cond(op, meta.get(key), operand, present) for op, operand in ops.items()):
                return False
    return True


# --------------------------------------------------------------------------- validation
def _check_metadata(vid: str, meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ApiError(400, f"metadata of vector {vid} must be an object")
    for key, v in meta.items():
        if not key or key.startswith("$"):
            raise ApiError(400, f"metadata key {key!r} of vector {vid} is not allowed")
        ok = (
            isinstance(v, (str, bool))
            or (_is_num(v) and math.isfinite(v))
            or (isinstance(v, list) and all(isinstance(x, str) for x in v))
        )
        if not ok:
            raise ApiError(
                400,
                f"metadata value of {key!r} in vector {vid} must be a string, "
                f"number, boolean or list of strings, got {v!r}",
            )
    size = len(json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise ApiError(
            400,
            f"metadata size is {size} bytes, which exceeds the limit of "
            f"{MAX_METADATA_BYTES} bytes per vector",
        )
    return meta


def _sparse(raw: Any, what: str) -> dict[int, float]:
    if raw is None:
        return {}
    idx, vals = raw.get("indices"), raw.get("values")
    if not isinstance(idx, list) or not isinstance(vals, list) or len(idx) != len(vals):
        raise ApiError(400, f"sparse values of {what} need indices and values of equal length")
    if len(idx) > MAX_SPARSE_VALUES:
        raise ApiError(
            400, f"sparse vector of {what} has {len(idx)} values; the limit is {MAX_SPARSE_VALUES}"
        )
    if len(set(idx)) != len(idx):
        raise ApiError(400, f"sparse indices of {what} must be unique")
    out = {}
    for i, v in zip(idx, vals):
        if not isinstance(i, int) or not 0 <= i < 2**32:
            raise ApiError(400, f"sparse indices of {what} must be uint32")
        if not _is_num(v) or not math.isfinite(v):
            raise ApiError(400, f"sparse values of {what} must be finite numbers")
        out[i] = float(np.float32(v))
    return out


def _dense(raw: Any, dim: int, what: str) -> np.ndarray:
    if not isinstance(raw, list) or not all(_is_num(x) for x in raw):
        raise ApiError(400, f"values of {what} must be an array of numbers")
    if len(raw) != dim:
        raise ApiError(
            400, f"Vector dimension {len(raw)} does not match the dimension of the index {dim}"
        )
    v = np.asarray(raw, dtype=np.float32)
    if not np.isfinite(v).all():
        raise ApiError(400, f"values of {what} must be finite")
    return v


# --------------------------------------------------------------------------- the service
class PineconeStandIn:
    """A Pinecone control plane and data plane on ``127.0.0.1``, in a background thread.

    >>> with PineconeStandIn(api_key="k") as pc:                   # doctest: +SKIP
    ...     Pinecone(api_key="k", host=pc.url).list_indexes()
    """

    def __init__(
        self, api_key: str = "standin-key", *, port: int = 0, list_lag: float = 0.0
    ) -> None:
        self.api_key = api_key
        self.list_lag = list_lag  # seconds before an upserted id shows in list (eventual)
        self.indexes: dict[str, _Index] = {}
        self.log: list[tuple[str, str, int]] = []  # (method, path, body bytes) of each request
        self._lock = threading.RLock()
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def index_host(self, name: str) -> str:
        return f"{self.url}/index/{name}"

    def start(self) -> PineconeStandIn:
        handler = type("Handler", (_Handler,), {"service": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="pinecone-standin"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> PineconeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def create_index(self, name: str, dimension: int, metric: str = "dotproduct") -> None:
        """Create an index directly (as if made in the console)."""
        with self._lock:
            self.indexes[name] = _Index(name, int(dimension), metric)

    # ----------------------------------------------------------------- control plane
    def _model(self, ix: _Index, version: str) -> dict[str, Any]:
        if version >= NEW_API:
            return {
                "name": ix.name,
                "host": self.index_host(ix.name),
                "status": {"ready": True, "state": "Ready"},
                "schema": {
                    "fields": {
                        "_values": {
                            "type": "dense_vector",
                            "dimension": ix.dimension,
                            "metric": ix.metric,
                            "description": None,
                        }
                    }
                },
                "deployment": {
                    "deployment_type": "managed",
                    "cloud": ix.cloud,
                    "region": ix.region,
                },
                "deletion_protection": "disabled",
                "tags": None,
            }
        return {
            "name": ix.name,
            "dimension": ix.dimension,
            "metric": ix.metric,
            "host": self.index_host(ix.name),
            "vector_type": "dense",
            "spec": {"serverless": {"cloud": ix.cloud, "region": ix.region}},
            "status": {"ready": True, "state": "Ready"},
            "deletion_protection": "disabled",
            "tags": None,
        }

    def control(self, method: str, parts: list[str], body: Any, version: str) -> tuple[int, Any]:
        if parts == ["indexes"] and method == "GET":
            return 200, {"indexes": [self._model(ix, version) for ix in self.indexes.values()]}
        if parts == ["indexes"] and method == "POST":
            return self._create(body, version)
        if len(parts) == 2 and parts[0] == "indexes":
            ix = self.indexes.get(parts[1])
            if ix is None:
                raise ApiError(404, f"Resource {parts[1]} not found", "NOT_FOUND")
            if method == "GET":
                return 200, self._model(ix, version)
            if method == "DELETE":
                del self.indexes[parts[1]]
                return 202, None
        raise ApiError(404, f"no route {method} /{'/'.join(parts)}", "NOT_FOUND")

    def _create(self, body: Any, version: str) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise ApiError(400, "create index needs a name")
        name = body["name"]
        if name in self.indexes:
            raise ApiError(409, f"Resource {name} already exists", "ALREADY_EXISTS")
        if "schema" in body:  # 2026-07: one dense field
            fields = (body.get("schema") or {}).get("fields") or {}
            dense = [f for f in fields.values() if f.get("type") == "dense_vector"]
            if len(dense) != 1:
                raise ApiError(400, "the stand-in supports one dense_vector field")
            dim, metric = dense[0].get("dimension"), dense[0].get("metric", "cosine")
            dep = body.get("deployment") or {}
        else:
            dim, metric = body.get("dimension"), body.get("metric", "cosine")
            dep = (body.get("spec") or {}).get("serverless") or {}
        if not isinstance(dim, int) or not 1 <= dim <= 20_000:
            raise ApiError(400, f"dimension must be an integer in 1..20000, got {dim!r}")
        if metric not in ("cosine", "dotproduct", "euclidean"):
            raise ApiError(400, f"unknown metric {metric!r}")
        ix = _Index(name, dim, metric, dep.get("cloud", "aws"), dep.get("region", "us-east-1"))
        self.indexes[name] = ix
        return 201, self._model(ix, version)

    # ----------------------------------------------------------------- data plane
    def data(
        self, ix: _Index, method: str, op: str, body: Any, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        if (method, op) == ("POST", "vectors/upsert"):
            return 200, self._upsert(ix, body)
        if (method, op) == ("POST", "query"):
            return 200, self._query(ix, body)
        if (method, op) == ("GET", "vectors/fetch"):
            ns = (query.get("namespace") or [""])[0]
            ids = query.get("ids") or []
            if not ids or len(ids) > MAX_IDS:
                raise ApiError(400, f"fetch takes 1 to {MAX_IDS} ids")
            recs = ix.namespaces.get(ns, {})
            return 200, {
                "vectors": {i: self._vector(i, recs[i], True, True) for i in ids if i in recs},
                "namespace": ns,
                "usage": {"readUnits": 1},
            }
        if (method, op) == ("POST", "vectors/delete"):
            return 200, self._delete(ix, body)
        if (method, op) == ("GET", "vectors/list"):
            return 200, self._list(ix, query)
        if (method, op) == ("POST", "describe_index_stats"):
            body = body or {}
            if body.get("filter") is not None:
                raise ApiError(
                    400, "describe_index_stats does not support filters on serverless indexes"
                )
            spaces = {ns: {"vectorCount": len(r)} for ns, r in ix.namespaces.items() if r}
            return 200, {
                "namespaces": spaces,
                "dimension": ix.dimension,
                "indexFullness": 0.0,
                "totalVectorCount": sum(v["vectorCount"] for v in spaces.values()),
                "metric": ix.metric,
                "vectorType": "dense",
            }
        raise ApiError(404, f"no route {method} /{op}", "NOT_FOUND")

    @staticmethod
    def _vector(vid: str, r: _Record, values: bool, metadata: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"id": vid, "values": r.values.tolist() if values else []}
        if values and r.sparse:
            out["sparseValues"] = {"indices": list(r.sparse), "values": list(r.sparse.values())}
        if metadata and r.metadata:
            out["metadata"] = r.metadata
        return out

    def _upsert(self, ix: _Index, body: Any) -> dict[str, Any]:
        vectors = (body or {}).get("vectors")
        if not isinstance(vectors, list) or not vectors:
            raise ApiError(400, "upsert needs a non-empty vectors array")
        if len(vectors) > MAX_UPSERT_VECTORS:
            raise ApiError(
                400,
                f"upsert takes at most {MAX_UPSERT_VECTORS} vectors per request, "
                f"got {len(vectors)}",
            )
        staged: dict[str, _Record] = {}
        for v in vectors:
            vid = v.get("id") if isinstance(v, dict) else None
            if not isinstance(vid, str) or not 1 <= len(vid.encode("utf-8")) <= 512:
                raise ApiError(400, f"vector ids are strings of 1 to 512 bytes, got {vid!r}")
            sparse = _sparse(v.get("sparseValues"), vid)
            if sparse and ix.metric != "dotproduct":
                raise ApiError(
                    400, "sparse values are supported only for indexes using the dotproduct metric"
                )
            staged[vid] = _Record(
                _dense(v.get("values"), ix.dimension, vid),
                sparse,
                _check_metadata(vid, v.get("metadata")),
                time.monotonic(),
            )
        ix.namespaces.setdefault(body.get("namespace") or "", {}).update(staged)
        ix.writes += 1
        return {"upsertedCount": len(staged)}

    def _query(self, ix: _Index, body: Any) -> dict[str, Any]:
        body = body or {}
        ns = body.get("namespace") or ""
        top_k = body.get("topK")
        with_values, with_meta = bool(body.get("includeValues")), bool(body.get("includeMetadata"))
        limit = MAX_TOP_K_WITH_DATA if (with_values or with_meta) else MAX_TOP_K
        if not isinstance(top_k, int) or not 1 <= top_k <= limit:
            raise ApiError(400, f"topK must be in 1..{limit}, got {top_k!r}")
        recs = ix.namespaces.get(ns, {})
        if "id" in body:
            if body["id"] not in recs:
                return {"matches": [], "namespace": ns, "usage": {"readUnits": 1}}
            q = recs[body["id"]].values
        elif "vector" in body:
            q = _dense(body["vector"], ix.dimension, "the query")
        else:
            raise ApiError(400, "query needs a vector or an id")
        sq = _sparse(body.get("sparseVector"), "the query")
        if sq and ix.metric != "dotproduct":
            raise ApiError(400, "sparse queries need an index using the dotproduct metric")
        flt = body.get("filter")
        if flt is not None:
            _check_filter(flt)
        scan = ix.scan(ns)
        ids, mat, rows = scan.ids, scan.matrix, None
        if flt is not None:
            rows = [j for j, i in enumerate(ids) if matches(flt, recs[i].metadata)]
            ids, mat = [ids[j] for j in rows], mat[rows]
        if not ids:
            return {"matches": [], "namespace": ns, "usage": {"readUnits": 1}}
        if ix.metric == "euclidean":
            scores = ((mat - q) ** 2).sum(axis=1)
        elif ix.metric == "cosine":
            norms = np.linalg.norm(mat, axis=1) * (np.linalg.norm(q) or 1.0)
            scores = (mat @ q) / np.where(norms == 0, 1.0, norms)
        else:
            scores = (mat @ q).astype(np.float64)
            if sq:
                sparse = scan.sparse_scores(sq)
                scores = scores + (sparse if rows is None else sparse[rows])
        key = scores * (1.0 if ix.metric == "euclidean" else -1.0)  # ascending is best
        cand = range(len(ids))
        if len(ids) > top_k:  # the top_k and everything tied with the last of them
            cand = np.flatnonzero(key <= np.partition(key, top_k - 1)[top_k - 1]).tolist()
        order = sorted(cand, key=lambda j: (float(key[j]), ids[j]))[:top_k]
        matches_ = []
        for j in order:
            m = self._vector(ids[j], recs[ids[j]], with_values, with_meta)
            m["score"] = float(np.float32(scores[j]))
            matches_.append(m)
        return {"matches": matches_, "namespace": ns, "usage": {"readUnits": 1}}

    def _delete(self, ix: _Index, body: Any) -> dict[str, Any]:
        body = body or {}
        ns = body.get("namespace") or ""
        recs = ix.namespaces.get(ns, {})
        ix.writes += 1
        given = [k for k in ("ids", "deleteAll", "filter") if body.get(k) not in (None, False)]
        if len(given) != 1:
            raise ApiError(400, "delete takes exactly one of ids, deleteAll or filter")
        if body.get("ids") is not None:
            ids = body["ids"]
            if not isinstance(ids, list) or len(ids) > MAX_IDS:
                raise ApiError(400, f"delete takes at most {MAX_IDS} ids")
            for i in ids:
                recs.pop(i, None)
        elif body.get("deleteAll"):
            recs.clear()
        else:
            _check_filter(body["filter"])
            for i in [i for i, r in recs.items() if matches(body["filter"], r.metadata)]:
                del recs[i]
        return {}

    def _list(self, ix: _Index, query: dict[str, list[str]]) -> dict[str, Any]:
        ns = (query.get("namespace") or [""])[0]
        prefix = (query.get("prefix") or [""])[0]
        limit = int((query.get("limit") or [str(LIST_PAGE)])[0])
        if not 1 <= limit <= LIST_PAGE:
            raise ApiError(400, f"limit must be in 1..{LIST_PAGE}")
        after = (query.get("paginationToken") or [""])[0]
        visible = time.monotonic() - self.list_lag
        ids = sorted(
            i
            for i, r in ix.namespaces.get(ns, {}).items()
            if i.startswith(prefix) and i > after and r.written <= visible
        )
        page = ids[:limit]
        out: dict[str, Any] = {
            "vectors": [{"id": i} for i in page],
            "namespace": ns,
            "usage": {"readUnits": 1},
        }
        if len(ids) > limit:
            out["pagination"] = {"next": page[-1]}
        return out


class _Handler(BaseHTTPRequestHandler):
    service: PineconeStandIn
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any) -> None:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        svc = self.service
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        with svc._lock:
            svc.log.append((method, url.path, len(raw)))
        try:
            if self.headers.get("Api-Key") != svc.api_key:
                raise ApiError(401, "Invalid API Key", "UNAUTHENTICATED")
            if len(raw) > MAX_REQUEST_BYTES:
                raise ApiError(
                    413,
                    f"request of {len(raw)} bytes exceeds the limit of {MAX_REQUEST_BYTES} bytes",
                    "PAYLOAD_TOO_LARGE",
                )
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise ApiError(400, f"invalid JSON: {exc}") from exc
            version = self.headers.get("X-Pinecone-Api-Version") or "2025-04"
            with svc._lock:
                if parts[:1] == ["index"] and len(parts) >= 3:
                    ix = svc.indexes.get(parts[1])
                    if ix is None:
                        raise ApiError(404, f"index {parts[1]} not found", "NOT_FOUND")
                    status, payload = svc.data(
                        ix, method, "/".join(parts[2:]), body, parse_qs(url.query)
                    )
                else:
                    status, payload = svc.control(method, parts, body, version)
        except ApiError as exc:
            status, payload = (
                exc.status,
                {"error": {"code": exc.code, "message": exc.message}, "status": exc.status},
            )
        self._send(status, payload)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


__all__ = ["PineconeStandIn", "matches"]
