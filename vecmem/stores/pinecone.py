"""Pinecone adapter: dense vectors, BM25 sparse vectors and filters in one Pinecone index.

``PineconeDb(index="kb")`` opens (or creates, serverless, ``dotproduct``) an index through the
official ``pinecone`` SDK over REST; ``host=`` skips the control plane, ``controller_host=``
points the control plane elsewhere (the tests use :mod:`vecmem.testing._infra.pinecone_standin`).
``namespace=`` separates stores sharing an index.

Layout. A chunk is a vector: id = chunk id, dense values = the embedding, sparse values = its
BM25 document-side weights, metadata = ``_vm`` (the chunk as JSON: document id, position, text,
content hash, metadata, so ints, floats, nested values come back exactly), ``_vm_doc`` (document
id), and a typed flat copy for filtering: ``s_F`` strings, ``n_F`` numbers, ``b_F`` booleans,
``l_F`` the scalar elements of a list as tagged strings (``s:x``, ``n:1``, ``b:1``), ``_vm_keys``
the typed keys present (``o_F`` for a field holding nothing filterable: null, an object, an empty
list). Pinecone metadata is flat (strings,
numbers, booleans, lists of strings) and its documented operators (``$eq $ne $gt $gte $lt $lte
$in $nin $exists $and $or``) say nothing of fields a record lacks; with the typed keys every
vecmem operator is exact without relying on that: ``$ne``/``$nin`` are written ``$or`` with "the
typed key is absent" (``_vm_keys $nin``), booleans never meet numbers, ``$eq`` never matches a
list, ``$not`` is pushed down to the leaves. A second namespace, ``__vecmem__<namespace>``,
holds the recorded :class:`~vecmem.types.EmbeddingSpace` and the BM25 statistics.

The keyword leg. Scores equal ``rank_bm25.BM25Okapi`` (as :class:`~vecmem.bm25.BM25Index`), but
both ``avgdl`` and each idf change with every write, while sparse values are frozen when written.
So Pinecone ranks candidates and vecmem scores them exactly:

* a document's sparse values are ``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl_w))`` per term
  (term -> uint32 by BLAKE2b), ``avgdl_w`` the average length when it was written;
* the query's sparse values are the current ``idf(t) x count`` and its dense part is zero, so
  Pinecone's dotproduct is the BM25 score up to the drift of ``avgdl``;
* the candidates come back with their text and are rescored exactly (current N, avgdl, df);
  the top ``k`` is certain when the ``k``-th exact score exceeds ``rho`` times the last candidate's
  Pinecone score, ``rho = max(1, avgdl / min avgdl_w)`` bounding the drift (a weight changes by at
  most the ratio of the two averages); otherwise the window widens (up to 1,000).

``keyword="native"`` skips the rescoring: keyword search is one sparse query of ``k`` and its
scores are Pinecone's dot products, i.e. BM25 with the current idf and each chunk's length
normalised by the average length when it was written (``avgdl_w``); the statistics are listed at
most every ``STATS_TTL`` seconds (writes list them anyway). After a corpus is written in one go
the two modes agree; as the average length drifts, native scores drift with it (``rho`` above
bounds by how much). It answers as fast as a hand-written sparse query; choose it when that
matters more than scores equal to rank_bm25's on every backend.

The statistics (N, total length, ``min avgdl_w``, df per term) live in the meta namespace as
append-only delta records (``stats-...``, zlib+base64 JSON in metadata), one per write, merged
into one group when they pile up; a store keeps their sum in memory and fetches only records it
has not seen (one ``list`` call per keyword search, sent beside the first sparse query; when it
brings records of another client, the query is planned again). Writes by other clients therefore
count, unless two clients merge at the same instant with skewed clocks (then
:meth:`PineconeDb.rebuild_stats`). Hybrid search sends the dense query beside the keyword leg
(``both_legs``) and the facade fuses the two with :func:`vecmem.fusion.fuse` (every fusion
method, per-leg scores kept):
Pinecone's own sparse-dense query adds the two dot products, which is neither RRF nor dbsf.

Writes. An upsert reads what its ids hold now (an overwrite takes the old text out of the
statistics; another client may have written them) in up to 4 concurrent ``fetch`` requests while
it encodes the batch (and lists the statistics records), then sends the vectors in requests under
2 MB, one in flight while the next is prepared, and writes the statistics delta only after every
vector request succeeded; it counts that delta at once, without listing again.

Chunk ids that Pinecone refuses (not printable ASCII, over 512 bytes) are stored under ``~`` + a
hash (the chunk id itself is in ``_vm``). Limits: at most 1,000 distinct terms per chunk and
40 KB of metadata per chunk (Pinecone's); numbers are compared as 64-bit floats; no transactions; the service is
eventually consistent (a write may take seconds to be searchable), the stand-in is not.

>>> VectorMemory(store=PineconeDb(index="kb"))             # doctest: +SKIP  (PINECONE_API_KEY)
"""

from __future__ import annotations

import base64
import functools
import hashlib
import heapq
import json
import math
import os
import threading
import time
import uuid
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from typing import Any, Literal, NamedTuple, cast
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    NotFoundError,
    VecmemError,
)
from vecmem.filters import Cond, Filter, matches
from vecmem.stores import _flat as flat
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

FORMAT = 1
_KEYS = "_vm_keys"
MAX_TERMS = 1000  # sparse values per vector
MAX_METADATA = 40 * 1024
MAX_REQUEST = 1_800_000  # bytes of JSON per upsert request (Pinecone's limit: 2 MB)
MAX_BATCH = 1000  # vectors per upsert / ids per delete
FETCH_BATCH = 100  # statistics records per fetch
FETCH_URL = 6000  # bytes of ids per fetch (they travel in the URL)
MAX_WINDOW = 1000  # topK with metadata
MAX_TOP_K = 10_000
STATS_PAYLOAD = 30_000  # bytes of compressed statistics per record
PACK_RATIO = 0.8  # base64(zlib(JSON)) / JSON, a high guess for term counts (see _pack)
MERGE_AFTER = 48  # delta records before they are merged
STATS_TTL = 1.0
"""``keyword="native"``: seconds a listing of the statistics serves keyword searches before the
next one lists again (writes list them anyway; this store's own writes count at once)."""
KeywordMode = Literal["exact", "native"]
_Pc = Any  # a Pinecone filter dict, or True (everything) / False (nothing)


# --------------------------------------------------------------------------- metadata
def term_index(term: str) -> int:
    """The sparse index of a term: the first 4 bytes of its BLAKE2b digest (uint32)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


_term_index = functools.lru_cache(maxsize=1 << 17)(term_index)  # writes hash each term often


def vector_id(chunk_id: str) -> str:
    """The Pinecone id of a chunk: the chunk id itself when Pinecone accepts it (printable
    ASCII, at most 512 bytes), else ``~`` + a 128-bit BLAKE2b hex digest of it."""
    if (
        chunk_id.isascii()
        and chunk_id.isprintable()
        and len(chunk_id) <= 512
        and not (chunk_id.startswith("~"))
    ):
        return chunk_id
    return "~" + hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=16).hexdigest()


_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_dumps_spaced = json.JSONEncoder(ensure_ascii=False).encode  # sizes as Pinecone's docs count


def _encode(c: Chunk) -> tuple[dict[str, Any], int]:
    """The Pinecone metadata of a chunk (see the module docstring) and its size in JSON."""
    try:
        raw = _dumps(
            {
                "i": c.id,
                "d": c.document_id,
                "p": int(c.position),
                "t": c.text,
                "h": c.content_hash,
                "m": dict(c.metadata),
            }
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata of chunk {c.id!r} is not JSON: {exc}") from exc
    meta: dict[str, Any] = {"_vm": raw, "_vm_doc": c.document_id}
    keys: list[str] = []
    for field, v in c.metadata.items():
        if not isinstance(field, str) or not field:
            raise InvalidInputError(f"metadata keys of chunk {c.id!r} must be non-empty strings")
        t, val = flat.typed(v)
        if t == "o" or val == []:  # None, objects, [...] of neither: only present ($exists)
            keys.append("o_" + field)
        else:
            keys.append(flat.KEY[t] + field)
            meta[flat.KEY[t] + field] = val
    meta[_KEYS] = keys or [""]
    # its JSON size: ``raw`` is JSON itself (no control characters left), so as a JSON string it
    # only gains its quotes and a backslash before each '"' and '\\' (one dumps, not two)
    size = (
        len(_dumps_spaced({k: x for k, x in meta.items() if k != "_vm"}).encode("utf-8"))
        + len(raw.encode("utf-8"))
        + raw.count('"')
        + raw.count("\\")
        + 11
    )
    if size > MAX_METADATA:
        raise InvalidInputError(
            f"chunk {c.id!r} needs {size} bytes of Pinecone metadata (text, metadata and their "
            f"filterable copy); Pinecone allows {MAX_METADATA}: use smaller chunks"
        )
    return meta, size


def _decode(vid: str, meta: dict[str, Any] | None) -> Chunk:
    if not meta or "_vm" not in meta:
        raise BackendError(f"Pinecone vector {vid!r} was not written by vecmem (no _vm metadata)")
    d = json.loads(meta["_vm"])
    return Chunk(
        id=d.get("i", vid),
        document_id=d["d"],
        position=int(d["p"]),
        text=d["t"],
        metadata=d["m"],
        content_hash=d["h"],
    )


# --------------------------------------------------------------------------- filters
def _absent(key: str) -> dict[str, Any]:
    return {_KEYS: {"$nin": [key]}}


_PREFIXES = ("n_", "s_", "b_", "l_", "o_")


def _cond(c: Cond, neg: bool) -> _Pc:
    op, v, f = c.op, c.value, c.field
    if op == "exists":  # one of the typed keys (or the o_ marker) is listed
        return {_KEYS: {"$in" if v != neg else "$nin": [p + f for p in _PREFIXES]}}
    if op in ("eq", "in"):
        parts: list[_Pc] = []
        for key, vals in flat.groups(f, (v,) if op == "eq" else v).items():
            if len(vals) == 1 or key.startswith("b_"):  # $in/$nin take strings, numbers
                parts += [
                    flat.or_([_absent(key), {key: {"$ne": x}}]) if neg else {key: {"$eq": x}}
                    for x in vals
                ]
            elif neg:
                parts.append(flat.or_([_absent(key), {key: {"$nin": vals}}]))
            else:
                parts.append({key: {"$in": vals}})
        return flat.and_(parts) if neg else flat.or_(parts)
    if op == "contains":
        key, tag = "l_" + f, flat.tag(v)
        if tag is None:
            return neg
        return flat.or_([_absent(key), {key: {"$nin": [tag]}}]) if neg else {key: {"$in": [tag]}}
    key = "n_" + f  # gt gte lt lte
    if neg:
        return flat.or_([_absent(key), {key: {"$" + flat.FLIP[op]: v}}])
    return {key: {"$" + op: v}}


def to_filter(f: Filter | None) -> _Pc:
    """A parsed vecmem filter as a Pinecone metadata filter (``True``: none, ``False``: nothing)."""
    return flat.translate(f, _cond)


# --------------------------------------------------------------------------- BM25 statistics
class _Stats:
    """N, total length, the smallest avgdl any document was weighted with, df per term."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.avgdl_min: float | None = None
        self.df: dict[str, int] = {}  # sums of deltas (kept exactly: one may be summed early)
        self.seen: dict[str, dict[str, Any]] = {}  # record id -> its metadata
        self.counted: frozenset[str] = frozenset()  # the records summed into this state
        self.pending: set[str] = set()  # written here, not listed yet (listing lags writes)
        self._idf: tuple[int, float, dict[str, float]] | None = None
        self.version = 0

    def add(self, delta: dict[str, Any]) -> None:
        self.n += int(delta.get("n", 0))
        self.total += float(delta.get("l", 0.0))
        a = delta.get("a")
        if a is not None:
            self.avgdl_min = a if self.avgdl_min is None else min(self.avgdl_min, a)
        df = self.df
        for t, d in delta.get("df", {}).items():
            v = df.get(t, 0) + int(d)
            if v:
                df[t] = v
            else:
                del df[t]
        self.version += 1

    def present(self, term: str) -> bool:
        return self.df.get(term, 0) > 0

    @property
    def avgdl(self) -> float:
        return self.total / self.n if self.n else 1.0

    def idf(self, terms: Sequence[str], epsilon: float) -> dict[str, float]:
        """rank_bm25's idf of ``terms`` (negative ones floored at epsilon x the mean idf)."""
        if self._idf is None or self._idf[0] != self.version:
            df = np.fromiter(self.df.values(), dtype=np.float64, count=len(self.df))
            df = df[df > 0]
            raw = np.log(self.n - df + 0.5) - np.log(df + 0.5)
            self._idf = (self.version, float(raw.mean()) if len(raw) else 0.0, {})
        _, average, cache = self._idf
        out = {}
        for t in terms:
            if t not in cache:
                df_t = self.df.get(t, 0)
                value = math.log(self.n - df_t + 0.5) - math.log(df_t + 0.5)
                cache[t] = epsilon * average if value < 0 else value
            out[t] = cache[t]
        return out


def _pack(delta: dict[str, Any]) -> list[dict[str, Any]]:
    """A delta as one or more record payloads of at most STATS_PAYLOAD bytes each (additive)."""
    items = list(delta.get("df", {}).items())
    head = {k: v for k, v in delta.items() if k != "df"}
    out: list[dict[str, Any]] = []
    # split evenly by a guess (base64 of zlib level 1 is ~0.5-0.8 of the JSON for term counts)
    # so that each part is serialised and compressed once; a part still too large shrinks
    size = sum(map(len, delta.get("df", ()))) + 8 * len(items) + 100  # ~ its JSON
    parts = math.ceil(size * PACK_RATIO / (0.95 * STATS_PAYLOAD))
    step = max(1, math.ceil(len(items) / max(1, parts)))
    i = 0
    while True:
        part = {**(head if i == 0 else {}), "df": dict(items[i : i + step])}
        blob = base64.b64encode(zlib.compress(_dumps(part).encode(), 1))
        if len(blob) > STATS_PAYLOAD and step > 1:  # aim at 95% of the limit
            step = max(1, min(step - 1, int(step * 0.95 * STATS_PAYLOAD / len(blob))))
            continue
        out.append({"d": blob.decode("ascii")})
        i += step
        if i >= len(items):
            return out


def _unpack(meta: dict[str, Any]) -> dict[str, Any]:
    return json.loads(zlib.decompress(base64.b64decode(meta["d"])))


class _Plan(NamedTuple):
    """A keyword query planned from the statistics (see :meth:`PineconeDb.keyword`)."""

    qw: dict[str, float]  # term -> idf x count in the query
    sparse: dict[str, list[Any]]  # the query's sparse values
    avgdl: float
    rho: float  # bound on how far a frozen document weight may lag the current one
    certain: bool  # every query weight is positive, so the bound holds
    window: int  # candidates asked for first
    k1: float
    b: float


# --------------------------------------------------------------------------- the store
class PineconeDb:
    """A vecmem store on a Pinecone index: dense + BM25 sparse vectors, exact BM25 scores.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=PineconeDb(index="kb", namespace="team-a"))  # doctest: +SKIP

    ``api_key`` defaults to ``$PINECONE_API_KEY``. A missing index is created (serverless,
    ``cloud``/``region``, dotproduct, the space's dimension) unless ``create=False``.
    ``keyword="native"`` returns Pinecone's own sparse scores (frozen length normalisation, one
    query) instead of rank_bm25-exact ones (see the module doc).
    """

    name = "pinecone"
    capabilities = Capabilities(
        persistent=True, native_keyword=True, both_legs=True, concurrent_writers=True
    )

    def __init__(
        self,
        index: str = "vecmem",
        *,
        api_key: str | None = None,
        host: str | None = None,
        controller_host: str | None = None,
        namespace: str = "",
        cloud: str = "aws",
        region: str = "us-east-1",
        create: bool = True,
        timeout: float = 30.0,
        keyword: KeywordMode = "exact",
    ) -> None:
        if not isinstance(index, str) or not index:
            raise ConfigurationError("index must be a non-empty string")
        if keyword not in ("exact", "native"):
            raise ConfigurationError(f"keyword must be 'exact' or 'native', got {keyword!r}")
        if not isinstance(namespace, str):
            raise ConfigurationError("namespace must be a string")
        self.index, self.host, self.controller_host = index, host, controller_host
        self.api_key = api_key if api_key is not None else os.environ.get("PINECONE_API_KEY")
        self.namespace, self.meta_namespace = namespace, "__vecmem__" + namespace
        self.cloud, self.region, self.create, self.timeout = cloud, region, create, timeout
        self.space: EmbeddingSpace | None = None
        self.tokenizer: Tokenizer | None = None
        self._pc: Any = None
        self._ix: Any = None
        self._dim: int | None = None
        self._closed = False
        self._lock = threading.RLock()
        self._pool: ThreadPoolExecutor | None = None  # concurrent fetch requests
        self._stats = _Stats()
        self.keyword_mode: KeywordMode = keyword
        self._listed = -math.inf  # time.monotonic() of the last listing of the statistics

    # ----------------------------------------------------------------- plumbing
    @property
    def _where(self) -> str:
        ns = f", namespace {self.namespace!r}" if self.namespace else ""
        return f"Pinecone index {self.index!r}{ns}"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate SDK exceptions into vecmem errors (by HTTP status, across SDK versions)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                yield
        except VecmemError:
            raise
        except Exception as exc:
            status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
            text = str(exc)
            if status in (401, 403):
                raise AuthenticationError(
                    f"{self._where}: the API key was refused ({what})"
                ) from exc
            if status == 404:
                raise NotFoundError(f"{self._where} does not exist ({what})") from exc
            if isinstance(status, int) and status == 400 and "dimension" in text:
                raise DimensionMismatchError(f"{self._where}: {text}") from exc
            if isinstance(status, int):
                raise BackendError(f"{self._where}: {what} failed: {text}") from exc
            name = type(exc).__name__
            if isinstance(exc, (OSError, TimeoutError)) or any(
                s in name for s in ("Connect", "Timeout", "MaxRetry", "Protocol")
            ):
                raise BackendUnavailableError(
                    f"cannot reach Pinecone for {self._where} ({what}): {exc}"
                ) from exc
            raise BackendError(f"{self._where}: {what} failed: {name}: {exc}") from exc

    def _client(self) -> Any:
        if self._closed:
            raise ConfigurationError("the Pinecone store is closed")
        if self._pc is None:
            if not self.api_key:
                raise ConfigurationError(
                    "Pinecone needs an API key: pass api_key= or set PINECONE_API_KEY"
                )
            pinecone = require("pinecone", "pinecone")
            with self._errors("open the client"):
                kwargs: dict[str, Any] = {"api_key": self.api_key}
                if self.controller_host:
                    kwargs["host"] = self.controller_host
                self._pc = pinecone.Pinecone(**kwargs)
        return self._pc

    def _describe(self) -> Any | None:
        """The index description, or ``None`` if it does not exist."""
        try:
            with self._errors("describe the index"):
                return self._client().describe_index(self.index)
        except NotFoundError:
            return None

    def _open_index(self) -> Any:
        """The data-plane client (describing the index, creating it if allowed, when no host)."""
        if self._ix is not None:
            return self._ix
        pc = self._client()
        host = self.host
        if host is None:
            desc = self._describe()
            if desc is None:
                raise NotFoundError(f"{self._where} does not exist")
            host = desc.host
            self._check_index(desc)
        with self._errors("open the index"):
            self._ix = pc.Index(host=host)
        return self._ix

    def _check_index(self, desc: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            dim, metric = getattr(desc, "dimension", None), getattr(desc, "metric", None)
        if metric is not None and str(getattr(metric, "value", metric)) != "dotproduct":
            raise ConfigurationError(
                f"{self._where} uses the {metric} metric; vecmem needs dotproduct (dense and "
                "BM25 sparse vectors in one index): create another index"
            )
        if dim is not None:
            self._dim = int(dim)

    def _require_space(self) -> EmbeddingSpace:
        if self._closed:
            raise ConfigurationError("the Pinecone store is closed")
        if self.space is None or self._ix is None:
            raise ConfigurationError("Pinecone store used before connect(space)")
        return self.space

    def _basis(self) -> list[float]:
        v = [0.0] * int(self._dim or 1)
        v[0] = 1.0
        return v

    # ----------------------------------------------------------------- space
    def _read_space(self) -> EmbeddingSpace | None:
        with self._errors("read the recorded space"):
            got = self._ix.fetch(ids=["space"], namespace=self.meta_namespace).vectors
        rec = got.get("space") if got else None
        raw = (rec.metadata or {}).get("space") if rec is not None else None
        return EmbeddingSpace.from_json(raw) if isinstance(raw, str) else None

    def stored_space(self) -> EmbeddingSpace | None:
        if self.space is not None:
            return self.space
        with self._lock:
            if self.host is None and self._describe() is None:
                return None
            self._open_index()
            return self._read_space()

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            if self.host is None and self._ix is None and self._describe() is None:
                if not self.create:
                    raise NotFoundError(f"{self._where} does not exist (create=False)")
                self._create_index(space.dim)
            self._open_index()
            if self._dim is None:
                with self._errors("describe the index stats"):
                    self._dim = int(self._ix.describe_index_stats().dimension or space.dim)
            stored = self._read_space()
            if stored is not None:
                stored.check_compatible(space, where=self._where)
            else:
                if self._dim != space.dim:
                    raise DimensionMismatchError(
                        f"{self._where} holds {self._dim}-d vectors, this space has {space.dim}"
                    )
                if self._count_namespace(self.namespace):
                    raise ConfigurationError(
                        f"{self._where} already holds vectors not written by vecmem; use "
                        "another namespace or index"
                    )
                with self._errors("record the space"):
                    self._ix.upsert(
                        vectors=[
                            {
                                "id": "space",
                                "values": self._basis(),
                                "metadata": {"space": space.to_json(), "format": FORMAT},
                            }
                        ],
                        namespace=self.meta_namespace,
                    )
                stored = space
            self.space = stored
            self.tokenizer = get_tokenizer(stored.tokenizer)
            self._refresh_stats()
            return stored

    def _create_index(self, dim: int) -> None:
        pinecone = require("pinecone", "pinecone")
        with self._errors("create the index"):
            self._client().create_index(
                name=self.index,
                dimension=dim,
                metric="dotproduct",
                spec=pinecone.ServerlessSpec(cloud=self.cloud, region=self.region),
                timeout=300,
            )
        self._dim = dim

    def _count_namespace(self, ns: str) -> int:
        with self._errors("describe the index stats"):
            spaces = self._ix.describe_index_stats().namespaces or {}
        summary = spaces.get(ns)
        return int(getattr(summary, "vector_count", 0) or 0) if summary is not None else 0

    # ----------------------------------------------------------------- statistics
    def _stats_ids(self) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            with self._errors("list the statistics"):
                page = self._ix.list_paginated(
                    prefix="stats-",
                    namespace=self.meta_namespace,
                    limit=100,
                    pagination_token=token,
                )
            ids += [v.id for v in (page.vectors or [])]
            token = getattr(getattr(page, "pagination", None), "next", None)
            if not token:
                return ids

    def _refresh_stats(self, ids: list[str] | None = None) -> None:
        """Bring the in-memory statistics up to the records stored (fetching only new ones);
        ``ids``: the records listed, when already listed."""
        if ids is None:
            ids = self._stats_ids()
        self._listed = time.monotonic()
        st = self._stats
        fresh = [i for i in ids if i not in st.seen]
        for i in range(0, len(fresh), FETCH_BATCH):
            with self._errors("read the statistics"):
                got = self._ix.fetch(
                    ids=fresh[i : i + FETCH_BATCH], namespace=self.meta_namespace
                ).vectors
            for rid, rec in got.items():
                st.seen[rid] = dict(rec.metadata or {})
        st.pending -= set(ids)
        counted = self._counted(set(ids) | st.pending)
        if counted == st.counted:
            return
        if st.counted <= counted:  # only new records: add them
            for rid in sorted(counted - st.counted):
                st.add(_unpack(st.seen[rid]))
        else:  # records were merged away: sum again
            st.n, st.total, st.avgdl_min, st.df = 0, 0.0, None, {}
            for rid in sorted(counted):
                st.add(_unpack(st.seen[rid]))
        st.counted = counted

    def _counted(self, present: set[str]) -> frozenset[str]:
        """Which stored records make up the statistics: deltas not merged away, and complete
        merge groups (the earliest of two overlapping merges wins)."""
        seen = self._stats.seen
        groups: dict[str, list[str]] = {}
        for rid in present:
            g = seen.get(rid, {}).get("group")
            if g:
                groups.setdefault(g, []).append(rid)
        covered: set[str] = set()
        counted_groups: set[str] = set()
        for g in sorted(groups):
            parts = groups[g]
            head = next((seen[r] for r in parts if seen[r].get("covers") is not None), None)
            if head is None or len(parts) != int(head.get("parts", 0)):
                continue  # being written, or abandoned
            covers = set(head["covers"])
            if covers & covered:
                continue
            covered |= covers
            counted_groups.add(g)
        return frozenset(
            r
            for r in present
            if r in seen
            and r not in covered
            and (not seen[r].get("group") or seen[r]["group"] in counted_groups)
        )

    def _write_stats(
        self,
        delta: dict[str, Any],
        *,
        group: str | None = None,
        covers: Sequence[str] | None = None,
        payloads: list[dict[str, Any]] | None = None,
    ) -> list[str]:
        """Write ``delta`` as new statistics records (``payloads``: ``_pack(delta)`` if done)."""
        if payloads is None:
            payloads = _pack(delta)
        stamp = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        ids = [f"stats-{stamp}-{i}" for i in range(len(payloads))]
        records: list[dict[str, Any]] = []
        meta: dict[str, Any]
        for i, (rid, meta) in enumerate(zip(ids, payloads)):
            if group is not None:
                meta = {**meta, "group": group}
                if i == 0:
                    meta.update(covers=list(covers or []), parts=len(payloads))
            records.append({"id": rid, "values": self._basis(), "metadata": meta})
        for i in range(0, len(records), 50):
            with self._errors("write the statistics"):
                self._ix.upsert(vectors=records[i : i + 50], namespace=self.meta_namespace)
        for rid, rec in zip(ids, records):
            self._stats.seen[rid] = rec["metadata"]
            self._stats.pending.add(rid)
        return ids

    def _merge_stats(self) -> None:
        """Replace the delta records by one group holding their sum."""
        st = self._stats
        counted = sorted(st.counted)
        if sum(1 for r in counted if not st.seen[r].get("group")) < MERGE_AFTER:
            return
        total = {"n": st.n, "l": st.total, "a": st.avgdl_min, "df": dict(st.df)}
        group = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        mine = set(self._write_stats(total, group=group, covers=counted))
        present = set(self._stats_ids()) | st.pending
        doomed = counted if mine & self._counted(present) else sorted(mine)
        # our merge won: drop what it covers; else another client merged first: drop ours
        for i in range(0, len(doomed), MAX_BATCH):
            with self._errors("merge the statistics"):
                self._ix.delete(ids=doomed[i : i + MAX_BATCH], namespace=self.meta_namespace)
        st.pending -= set(doomed)
        self._refresh_stats()

    def rebuild_stats(self) -> None:
        """Recompute the BM25 statistics from every chunk (repairs drift after failed writes or
        racing merges, and adopts chunks written by other tools with vecmem's layout)."""
        with self._lock:
            self._require_space()
            self._refresh_stats()
            delta: dict[str, Any] = {"n": 0, "l": 0.0, "a": None, "df": Counter()}
            for ids in self._all_ids():
                for c in self._fetch_chunks(ids).values():
                    self._account(delta, c, +1)
            if delta["n"]:
                delta["a"] = delta["l"] / delta["n"]
            old = sorted(self._stats.counted)
            group = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
            self._write_stats({**delta, "df": dict(delta["df"])}, group=group, covers=old)
            for i in range(0, len(old), MAX_BATCH):
                with self._errors("rebuild the statistics"):
                    self._ix.delete(ids=old[i : i + MAX_BATCH], namespace=self.meta_namespace)
            self._stats.pending -= set(old)
            self._refresh_stats()

    def _account(
        self, delta: dict[str, Any], c: Chunk, sign: int, counts: Counter[str] | None = None
    ) -> None:
        """Add (``sign`` +1) or take out (-1) a chunk's length and terms (``counts``: its term
        counts, when already known)."""
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        if counts is None:
            counts = Counter(self.tokenizer(c.text))
        delta["n"] += sign
        delta["l"] += sign * counts.total()
        if sign > 0:
            delta["df"].update(counts.keys())
        else:
            delta["df"].subtract(counts.keys())

    # ----------------------------------------------------------------- writes
    def _sparse(
        self, counts: list[Counter[str]], avgdl: float
    ) -> Iterator[dict[str, list[Any]] | None]:
        """The BM25 document-side sparse values of each chunk's term counts (``None``: none)."""
        space = self._require_space()
        k1, b = space.bm25_k1, space.bm25_b
        k1p, avgdl, index = k1 + 1, avgdl or 1.0, _term_index
        for tfs in counts:
            norm = k1 * (1 - b + b * tfs.total() / avgdl)
            weights: dict[int, float] = {}
            for t, tf in tfs.items():
                i = index(t)
                w = tf * k1p / (tf + norm)
                weights[i] = weights[i] + w if i in weights else w
            yield {"indices": list(weights), "values": list(weights.values())} if weights else None

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        space = self._require_space()
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        chunks = list(chunks)
        v = validate_batch(chunks, vectors, space.dim)
        written = {c.id for c in chunks}
        deletes = [i for i in dict.fromkeys(delete_ids) if i not in written]
        if not chunks and not deletes:
            return
        with self._lock:
            # what the ids hold now (an overwrite takes the old text out of the statistics),
            # read while the batch is encoded
            reading = self._fetch_start([vector_id(i) for i in [*written, *deletes]])
            listing = self._executor().submit(self._stats_ids)
            encoded = [_encode(c) for c in chunks]
            counts = [Counter(self.tokenizer(c.text)) for c in chunks]
            for c, tfs in zip(chunks, counts):
                if len(tfs) > MAX_TERMS:
                    raise InvalidInputError(
                        f"chunk {c.id!r} has {len(tfs)} distinct terms; a Pinecone sparse "
                        f"vector holds at most {MAX_TERMS}: use smaller chunks"
                    )
            self._refresh_stats(listing.result())
            old = {i: _decode(i, rec.metadata) for i, rec in self._fetch_end(reading).items()}
            delta: dict[str, Any] = {"n": 0, "l": 0.0, "a": None, "df": Counter()}
            for c in old.values():
                self._account(delta, c, -1)
            for c, tfs in zip(chunks, counts):
                self._account(delta, c, +1, tfs)
            st = self._stats
            n, total = st.n + delta["n"], st.total + delta["l"]
            avgdl = total / n if n else 1.0
            if chunks:
                delta["a"] = avgdl
            values = v.tolist()
            records = [
                {
                    "id": vector_id(c.id),
                    "values": vals,
                    "metadata": meta,
                    **({"sparse_values": sp} if sp else {}),
                }
                for c, vals, (meta, _), sp in zip(
                    chunks, values, encoded, self._sparse(counts, avgdl)
                )
            ]
            # one request in flight at a time, in order; the statistics are packed while the last
            # one runs (records are built up front: building them between requests measured no
            # faster, the worker's GIL hand-offs ate the overlap)
            inflight: Future[None] | None = None
            try:
                for batch in self._batches(records, [size for _, size in encoded]):
                    if inflight is not None:
                        inflight.result()
                    inflight = self._executor().submit(self._upsert_batch, batch)
                net = self._net(delta)
                packed = _pack(net) if net is not None else None
                last, inflight = inflight, None
                if last is not None:
                    last.result()
            finally:
                if inflight is not None:  # an error: let the request end before unlocking
                    with suppress(Exception):
                        inflight.result()
            gone = [vector_id(i) for i in deletes if vector_id(i) in old]
            for i in range(0, len(gone), MAX_BATCH):
                with self._errors("delete"):
                    self._ix.delete(ids=gone[i : i + MAX_BATCH], namespace=self.namespace)
            if net is not None:
                self._commit(net, packed)

    def _upsert_batch(self, batch: list[dict[str, Any]]) -> None:
        with self._errors("upsert"):
            self._ix.upsert(vectors=batch, namespace=self.namespace)

    @staticmethod
    def _net(delta: dict[str, Any]) -> dict[str, Any] | None:
        """A delta without zero df entries; ``None`` when it changes nothing."""
        delta = {**delta, "df": {t: d for t, d in delta["df"].items() if d}}
        if not delta["n"] and not delta["l"] and not delta["df"] and delta["a"] is None:
            return None
        return delta

    def _commit(self, net: dict[str, Any], packed: list[dict[str, Any]] | None = None) -> None:
        """Write a net delta (``_net``) as statistics records and count it here at once (no
        listing: the next refresh picks up other clients' records)."""
        ids = self._write_stats(net, payloads=packed)
        self._stats.add(net)  # records outside a merge group always count (see _counted)
        self._stats.counted |= frozenset(ids)
        self._merge_stats()

    @staticmethod
    def _batches(
        records: Iterable[dict[str, Any]], meta_sizes: list[int]
    ) -> Iterator[list[dict[str, Any]]]:
        """Upsert batches within Pinecone's limits (1,000 vectors, 2 MB); ``meta_sizes``: the
        bytes of each record's metadata as UTF-8 JSON."""
        batch: list[dict[str, Any]] = []
        size = 0
        for r, meta_size in zip(records, meta_sizes):
            sparse = r.get("sparse_values") or {"indices": ()}
            n = (
                24 * len(r["values"])
                + 36 * len(sparse["indices"])
                + len(r["id"]) * 6
                + 64
                + meta_size
            )
            if batch and (len(batch) >= MAX_BATCH or size + n > MAX_REQUEST):
                yield batch
                batch, size = [], 0
            batch.append(r)
            size += n
        if batch:
            yield batch

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")
        self._require_space()
        with self._lock:
            doomed: set[str] = {vector_id(i) for i in ids or ()}
            if filter is not None:
                doomed.update(self._matching_ids(filter))
            found = self._fetch_chunks(sorted(doomed)) if doomed else {}
            if not found:
                return 0
            gone = sorted(found)
            self._refresh_stats()
            delta: dict[str, Any] = {"n": 0, "l": 0.0, "a": None, "df": Counter()}
            for c in found.values():
                self._account(delta, c, -1)
            for i in range(0, len(gone), MAX_BATCH):
                with self._errors("delete"):
                    self._ix.delete(ids=gone[i : i + MAX_BATCH], namespace=self.namespace)
            net = self._net(delta)
            if net is not None:
                self._commit(net)
            return len(gone)

    def drop(self) -> None:
        """Delete every vector of this store's namespace and its meta namespace (the index
        stays; other namespaces are untouched)."""
        with self._lock:
            self._client()
            if self._ix is None:
                if self.host is None and self._describe() is None:
                    return
                self._open_index()
            for ns in (self.namespace, self.meta_namespace):
                if self._count_namespace(ns):
                    with self._errors("drop"):
                        self._ix.delete(delete_all=True, namespace=ns)
            self.space, self._stats = None, _Stats()

    # ----------------------------------------------------------------- reads
    def _fetch_one(self, ids: list[str]) -> dict[str, Any]:
        with self._errors("fetch"):
            return dict(self._ix.fetch(ids=ids, namespace=self.namespace).vectors or {})

    def _fetch_start(self, ids: Sequence[str]) -> list[Future[dict[str, Any]]]:
        """Start reading stored vectors by vector id, in concurrent requests (ids travel in the
        URL, so a request's ids are bounded by length); :meth:`_fetch_end` collects them."""
        batches: list[list[str]] = []
        batch: list[str] = []
        size = 0
        for i in [*dict.fromkeys(ids), None]:
            n = 0 if i is None else len(i.encode("utf-8")) * 3 + 5
            if batch and (i is None or len(batch) >= MAX_BATCH or size + n > FETCH_URL):
                batches.append(batch)
                batch, size = [], 0
            if i is not None:
                batch.append(i)
                size += n
        if not batches:
            return []
        return [self._executor().submit(self._fetch_one, b) for b in batches]

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="vecmem-pinecone")
        return self._pool

    @staticmethod
    def _fetch_end(futures: list[Future[dict[str, Any]]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in futures:
            out.update(f.result())
        return out

    def _fetch(self, ids: Sequence[str]) -> dict[str, Any]:
        """Stored vectors by vector id."""
        ids = list(dict.fromkeys(ids))
        if len(ids) == 1:
            return self._fetch_one(ids)
        return self._fetch_end(self._fetch_start(ids))

    def _fetch_chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by vector id."""
        return {i: _decode(i, rec.metadata) for i, rec in self._fetch(ids).items()}

    def _all_ids(self) -> Iterator[list[str]]:
        token = None
        while True:
            with self._errors("list"):
                page = self._ix.list_paginated(
                    namespace=self.namespace, limit=100, pagination_token=token
                )
            ids = [v.id for v in (page.vectors or [])]
            if ids:
                yield ids
            token = getattr(getattr(page, "pagination", None), "next", None)
            if not token:
                return

    def _query(
        self,
        *,
        top_k: int,
        flt: _Pc,
        vector: list[float] | None = None,
        sparse: dict[str, list[Any]] | None = None,
        metadata: bool = True,
    ) -> list[Any]:
        kwargs: dict[str, Any] = {
            "top_k": top_k,
            "namespace": self.namespace,
            "include_metadata": metadata,
            "include_values": False,
            "vector": vector if vector is not None else [0.0] * int(self._dim or 0),
        }
        if flt is not True:
            kwargs["filter"] = flt
        if sparse is not None:
            kwargs["sparse_vector"] = sparse
        with self._errors("query"):
            return list(self._ix.query(**kwargs).matches or [])

    def _matching_ids(self, f: Filter) -> list[str]:
        """Ids of every chunk matching ``f``: one query when they are fewer than 10,000, else a
        listing of the namespace checked with vecmem.filters.matches."""
        flt = to_filter(f)
        if flt is False:
            return []
        found = self._query(top_k=MAX_TOP_K, flt=flt, metadata=False)
        if len(found) < MAX_TOP_K:
            return [m.id for m in found]
        out = []
        for ids in self._all_ids():
            out += [i for i, c in self._fetch_chunks(ids).items() if matches(f, c.metadata)]
        return out

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        q = validate_query_vector(vector, self._require_space().dim)
        flt = to_filter(filter)
        if flt is False:
            return []
        if k <= MAX_WINDOW:
            return [
                Scored(_decode(m.id, m.metadata), float(m.score))
                for m in self._query(top_k=k, flt=flt, vector=q.tolist())
            ]
        found = self._query(top_k=min(k, MAX_TOP_K), flt=flt, vector=q.tolist(), metadata=False)
        chunks = self._fetch_chunks([m.id for m in found])
        return [Scored(chunks[m.id], float(m.score)) for m in found if m.id in chunks]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        """BM25. Exact mode (rank_bm25's scores): Pinecone ranks by the sparse vectors, vecmem
        rescores the candidates with the current statistics. Native mode: Pinecone's scores, one
        query of ``k``. The statistics are listed while the first query runs (native mode: once
        ``STATS_TTL`` passed since the last listing); if another client's records come in
        meanwhile, the query is planned again."""
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        self._require_space()
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        flt = to_filter(filter)
        if flt is False:
            return []
        tokens = self.tokenizer(text)
        native = self.keyword_mode == "native"
        with self._lock:
            listing = None
            if not native or time.monotonic() - self._listed >= STATS_TTL:
                listing = self._executor().submit(self._stats_ids)
            try:
                version = self._stats.version
                plan = self._keyword_plan(tokens, k)
                found = self._sparse_query(plan, flt) if plan else []
            finally:
                if listing is not None:
                    wait([listing])
            if listing is not None:
                self._refresh_stats(listing.result())
                if self._stats.version != version:  # the weights may have changed: plan again
                    plan = self._keyword_plan(tokens, k)
                    found = self._sparse_query(plan, flt) if plan else []
            if plan is None:
                return []
            if native:
                return self._native_hits(plan, found, k)
            window = plan.window
            while True:
                scored, proven = self._rescore(plan, found, k)
                last = float(found[-1].score) if found else 0.0
                if proven or (
                    len(found) < window
                    or last <= 0
                    or window >= MAX_WINDOW
                    or (len(scored) >= k and scored[k - 1].score > last * plan.rho * (1 + 1e-5))
                ):
                    return scored[:k]
                window = min(MAX_WINDOW, window * 4)
                found = self._query(top_k=window, flt=flt, sparse=plan.sparse)

    def _native_hits(self, plan: _Plan, found: list[Any], k: int) -> list[Scored]:
        """Native mode: Pinecone's matches with their scores, without the records sharing no
        term with the query (Pinecone fills ``top_k`` with them, scored 0). When every query
        weight is positive, a positive score is what shows a shared term; otherwise (a tiny
        corpus where the idf floor is negative) each candidate's tokens are checked."""
        if plan.certain:
            found = [m for m in found if float(m.score) > 0]
        if plan.window <= MAX_WINDOW:
            chunks = {m.id: _decode(m.id, m.metadata) for m in found}
        else:
            chunks = self._fetch_chunks([m.id for m in found])
        tok = self.tokenizer
        hits = [
            Scored(chunks[m.id], float(m.score))
            for m in found
            if m.id in chunks
            and (
                plan.certain or tok is None or not plan.qw.keys().isdisjoint(tok(chunks[m.id].text))
            )
        ]
        return hits[:k]

    def _sparse_query(self, plan: _Plan, flt: _Pc) -> list[Any]:
        """The first request of a keyword search (native mode past MAX_WINDOW: ids only)."""
        if plan.window > MAX_WINDOW:
            return self._query(
                top_k=min(plan.window, MAX_TOP_K), flt=flt, sparse=plan.sparse, metadata=False
            )
        return self._query(top_k=plan.window, flt=flt, sparse=plan.sparse)

    def _keyword_plan(self, tokens: list[str], k: int) -> _Plan | None:
        """The sparse query of ``tokens`` under the statistics as known (``None``: no term of
        them is stored), with the drift bound and the first window."""
        st, space = self._stats, self._require_space()
        wanted = Counter(t for t in tokens if st.present(t))
        if not wanted or st.n == 0:
            return None
        k1, b, eps = space.keyword_params()
        idf = st.idf(list(wanted), eps)
        qw = {t: idf[t] * m for t, m in wanted.items()}
        sparse: dict[int, float] = {}
        for t, w in qw.items():
            sparse[term_index(t)] = sparse.get(term_index(t), 0.0) + w
        avgdl = st.avgdl
        rho = max(1.0, avgdl / st.avgdl_min) if st.avgdl_min else 1.0
        certain = all(w > 0 for w in qw.values())
        if self.keyword_mode == "native":  # Pinecone's scores are the answer
            window = k if certain else max(k, MAX_WINDOW)
        else:
            window = min(MAX_WINDOW, k + max(20, k // 4)) if certain else MAX_WINDOW
        return _Plan(
            qw,
            {"indices": list(sparse), "values": list(sparse.values())},
            avgdl,
            rho,
            certain,
            window,
            k1,
            b,
        )

    def _rescore(self, plan: _Plan, found: list[Any], k: int) -> tuple[list[Scored], bool]:
        """The candidates' exact BM25 scores, best first (ties by id), and whether they prove
        the top ``k``. Candidates come in Pinecone's order (its score, descending) and no exact
        score exceeds ``rho`` times Pinecone's, so once the ``k``-th best exact score beats
        ``rho`` times the next candidate's, neither it nor anything after it (in the window or
        beyond) can enter the top ``k``: the rest is not decoded nor tokenized."""
        qw, k1, b, avgdl = plan.qw, plan.k1, plan.b, plan.avgdl
        scored: list[Scored] = []
        best: list[float] = []  # the k best exact scores so far (a min-heap)
        for m in found:
            if plan.certain and len(best) >= k and best[0] > float(m.score) * plan.rho * (1 + 1e-5):
                scored.sort(key=lambda x: (-x.score, x.chunk.id))
                return scored, True
            c = _decode(m.id, m.metadata)
            toks = self.tokenizer(c.text)  # type: ignore[misc]
            tf = Counter(t for t in toks if t in qw)
            if not tf:
                continue
            norm = k1 * (1 - b + b * len(toks) / avgdl)
            score = sum(qw[t] * (n * (k1 + 1)) / (n + norm) for t, n in tf.items())
            scored.append(Scored(c, score))
            (heapq.heappush if len(best) < k else heapq.heappushpop)(best, score)
        scored.sort(key=lambda x: (-x.score, x.chunk.id))
        return scored, False

    def both_legs(
        self, vector: np.ndarray, text: str, *, k: int, filter: Filter | None = None
    ) -> tuple[list[Scored], list[Scored]]:
        """Both legs at once (the dense query in a second thread while the keyword leg runs):
        one round trip of latency, as one request would be; the facade fuses them."""
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        q = validate_query_vector(vector, self._require_space().dim)
        dense = self._executor().submit(self.query, q, k=k, filter=filter)
        try:
            sparse = self.keyword(text, k=k, filter=filter)
        finally:
            wait([dense])
        return dense.result(), sparse

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        found = self._fetch_chunks([vector_id(i) for i in ids])
        return [found[vector_id(i)] for i in ids if vector_id(i) in found]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        space = self._require_space()
        vids = [vector_id(i) for i in ids]
        found = self._fetch(vids)
        missing = [i for i, v in zip(ids, vids) if v not in found]
        if missing:
            raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
        return np.asarray([found[v].values for v in vids], dtype=np.float32).reshape(
            len(ids), space.dim
        )

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        docs = list(dict.fromkeys(document_ids))
        by_doc: dict[str, list[Chunk]] = {}
        for i in range(0, len(docs), 100):
            part = docs[i : i + 100]
            flt = {"_vm_doc": {"$in": part}}
            found = self._query(top_k=MAX_WINDOW, flt=flt)
            if len(found) < MAX_WINDOW:
                chunks = [_decode(m.id, m.metadata) for m in found]
            else:  # a very long document: list every id of the namespace
                wanted = set(part)
                chunks = [
                    c
                    for ids in self._all_ids()
                    for c in self._fetch_chunks(ids).values()
                    if c.document_id in wanted
                ]
            for c in chunks:
                by_doc.setdefault(c.document_id, []).append(c)
        return [c for d in docs for c in sorted(by_doc.get(d, []), key=lambda c: c.id)]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        if filter is None:
            return self._count_namespace(self.namespace)
        return len(self._matching_ids(filter))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for obj in (self._ix, self._pc):
                close = getattr(obj, "close", None)
                if callable(close):
                    try:
                        close()
                    except Exception:  # noqa: BLE001 - closing is best effort
                        pass
            self._ix = self._pc = None
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None


def from_url(url: str) -> PineconeDb:
    """``pinecone://index-name``; query: ``?namespace=NS&host=INDEX_HOST&api_key=KEY``
    (the key defaults to ``$PINECONE_API_KEY``), ``&keyword=native`` for Pinecone's own sparse
    scores (default ``exact``)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"namespace", "host", "api_key", "collection", "keyword"}
    if unknown:
        raise ConfigurationError(f"unknown Pinecone URL parameters: {sorted(unknown)}")
    if parts.scheme.lower() != "pinecone":
        raise ConfigurationError(f"not a Pinecone URL: {url!r}")
    index = unquote(parts.netloc + parts.path).strip("/")
    if not index:
        raise ConfigurationError(f"Pinecone URL {url!r} names no index: pinecone://INDEX")
    namespace = query.get("namespace", query.get("collection", ""))
    keyword = query.get("keyword", "exact")
    if keyword not in ("exact", "native"):
        raise ConfigurationError(f"keyword must be 'exact' or 'native', got {keyword!r}")
    return PineconeDb(
        index=index,
        namespace=namespace,
        host=query.get("host"),
        api_key=query.get("api_key"),
        keyword=cast(KeywordMode, keyword),
    )


__all__ = ["PineconeDb", "from_url", "term_index", "to_filter", "vector_id"]
