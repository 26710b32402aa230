"""Qdrant adapter: dense vectors and filters in Qdrant, exact BM25 beside them.

One collection per store, with one named dense vector ``dense`` (cosine). Works with every engine
qdrant-client has: ``Qdrant(":memory:")`` and ``Qdrant(path="./qdrant")`` run Qdrant's local mode
in-process (nothing to install), ``Qdrant(url="http://host:6333")`` talks to a server (>= 1.16,
for collection metadata).

Layout. A chunk is a point whose id is ``uuid5(chunk id)``; its payload holds the chunk
(``chunk_id``, ``document_id``, ``position``, ``text``, ``content_hash``, ``metadata`` as given)
plus ``vm``, a typed copy of the metadata for filtering: ``vm.s.F`` strings, ``vm.n.F`` numbers,
``vm.b.F`` booleans, ``vm.ls.F``/``vm.ln.F``/``vm.lb.F`` the string/number/boolean elements of a
list, ``vm.keys`` the names present (``F`` is the field name, hex-encoded when it is not a plain
identifier). Keeping types apart is what makes the portable filter semantics exact: Qdrant
matches any element of an array and compares ``True == 1`` in local mode, while vecmem's
``$eq`` never matches a list and booleans are not numbers. The embedding space is recorded in
the collection's metadata, so a reopened store knows its embedder.

The keyword leg. vecmem's keyword scores must equal ``rank_bm25.BM25Okapi``; Qdrant's sparse
vectors cannot reproduce it: its ``Modifier.IDF`` uses Lucene's idf ``ln(1 + (N-df+0.5)/(df+0.5))``,
not rank_bm25's (with the ``epsilon * mean idf`` floor over the whole vocabulary), and the
document-length norm ``k1 * (1 - b + b * dl / avgdl)`` depends on ``avgdl``, which every write
changes, so sparse values baked at write time go stale. Rather than approximate, this adapter
keeps a :class:`~vecmem.bm25.BM25Index` beside the collection (``native_keyword=False``): rebuilt
from the points' text when the store connects, kept in step with every write and delete made
through it, and filtered by Qdrant: the best BM25 candidates are checked against the filter in
Qdrant (a ``HasId`` + filter scroll), widening until ``k`` pass; past 4,096 candidates (at once in
local mode, where every scroll scans all points) one filtered scroll of ids gives the matching
points and BM25 ranks exactly those. Scores equal the reference.
Consequently hybrid search is fused by :func:`vecmem.fusion.fuse` in the facade
(``native_hybrid=False``): Qdrant's own RRF fuses Qdrant's legs, and only the vector leg is one.

Limits, stated: writes by *another* client to the same server collection reach this store's
keyword leg only when it reconnects (``concurrent_writers=False``); local mode locks its folder
to one client anyway. Qdrant has no transactions (``transactions=False``): an upsert with
``delete_ids`` is one call in local mode and one request per 512 points to a server; if one fails,
the keyword index is rebuilt from the collection before the next keyword search.

>>> store = Qdrant(":memory:")                          # doctest: +SKIP
>>> VectorMemory(store=Qdrant(url="http://localhost:6333", collection="kb"))  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import re
import threading
import uuid
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from vecmem._deps import require
from vecmem.bm25 import BM25Index
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    InvalidInputError,
    NotFoundError,
    StoreLockedError,
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.filters import And, Cond, Filter, Not, Or
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

FORMAT = 1
VECTOR = "dense"
_NAMESPACE = uuid.UUID("6f1c2b1e-5d0a-4a53-9a5e-7b0c6a2f9e11")  # vecmem's uuid5 namespace
_CHUNK_FIELDS = ["chunk_id", "document_id", "position", "text", "content_hash", "metadata"]
_BATCH = 512  # points per upsert operation (and per request to a server)
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk id (uuid5 in vecmem's namespace)."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


@lru_cache(maxsize=65536)
def _enc(field: str) -> str:
    """A metadata field name as a safe payload key: itself if a plain identifier, else
    ``_`` + hex of its UTF-8 (the two forms cannot collide: identifiers start with a letter)."""
    return field if _IDENT.match(field) else "_" + field.encode("utf-8").hex()


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _typed(meta: Any) -> dict[str, Any]:
    """The ``vm`` payload: metadata split by type (see the module docstring)."""
    vm: dict[str, Any] = {"keys": list(meta)}
    for field, v in meta.items():
        e = _enc(field)
        if isinstance(v, bool):
            vm.setdefault("b", {})[e] = v
        elif _is_num(v):
            vm.setdefault("n", {})[e] = v
        elif isinstance(v, str):
            vm.setdefault("s", {})[e] = v
        elif isinstance(v, (list, tuple)):
            for kind, keep in (("lb", lambda x: isinstance(x, bool)), ("ln", _is_num),
                               ("ls", lambda x: isinstance(x, str))):
                items = [x for x in v if keep(x)]
                if items:
                    vm.setdefault(kind, {})[e] = items
    return vm


class _FilterBuilder:
    """Translates a parsed vecmem filter into a ``models.Filter`` with the reference semantics."""

    def __init__(self, models: Any) -> None:
        self.m = models

    def build(self, f: Filter) -> Any:
        out = self._node(f)
        return out if isinstance(out, self.m.Filter) else self.m.Filter(must=[out])

    def _node(self, f: Filter) -> Any:
        m = self.m
        if isinstance(f, Cond):
            return self._cond(f)
        if isinstance(f, And):
            return m.Filter(must=[self._node(x) for x in f.items])
        if isinstance(f, Or):
            return m.Filter(should=[self._node(x) for x in f.items])
        if isinstance(f, Not):
            return m.Filter(must_not=[self._node(f.item)])
        raise UnsupportedFilterError(f"unknown filter node {f!r}")

    def _nothing(self) -> Any:
        # chunk_id is always a non-empty string, so this matches no point
        return self.m.IsEmptyCondition(is_empty=self.m.PayloadField(key="chunk_id"))

    def _number(self, key: str, **bounds: float) -> Any:
        for v in bounds.values():
            if not math.isfinite(v):
                raise UnsupportedFilterError(f"Qdrant filters cannot compare with {v!r}")
        return self.m.FieldCondition(key=key, range=self.m.Range(**bounds))

    def _eq(self, field: str, v: Any, *, list_elements: bool = False) -> Any:
        m, e = self.m, _enc(field)
        prefix = "vm.l" if list_elements else "vm."
        if isinstance(v, bool):
            return m.FieldCondition(key=f"{prefix}b.{e}", match=m.MatchValue(value=v))
        if isinstance(v, str):
            return m.FieldCondition(key=f"{prefix}s.{e}", match=m.MatchValue(value=v))
        return self._number(f"{prefix}n.{e}", gte=v, lte=v)

    def _in(self, field: str, values: Sequence[Any]) -> Any:
        m = self.m
        strings = [v for v in values if isinstance(v, str)]
        parts = [self._eq(field, v) for v in values if not isinstance(v, str)]
        if strings:
            parts.append(m.FieldCondition(key=f"vm.s.{_enc(field)}", match=m.MatchAny(any=strings)))
        if not parts:
            return self._nothing()
        return parts[0] if len(parts) == 1 else m.Filter(should=parts)

    def _cond(self, c: Cond) -> Any:
        m, op, v = self.m, c.op, c.value
        if op == "exists":
            has = m.FieldCondition(key="vm.keys", match=m.MatchValue(value=c.field))
            return has if v else m.Filter(must_not=[has])
        if op in ("eq", "ne"):
            cond = self._eq(c.field, v)
            return cond if op == "eq" else m.Filter(must_not=[cond])
        if op in ("in", "nin"):
            cond = self._in(c.field, v)
            return cond if op == "in" else m.Filter(must_not=[cond])
        if op == "contains":
            return self._eq(c.field, v, list_elements=True)
        if op in ("gt", "gte", "lt", "lte"):
            return self._number(f"vm.n.{_enc(c.field)}", **{op: v})
        raise UnsupportedFilterError(f"Qdrant adapter cannot express operator ${op}")


class Qdrant:
    """A vecmem store on Qdrant (local mode or server), with exact BM25 kept beside it.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=Qdrant(path="./qdrant-data"))    # doctest: +SKIP
    >>> mem = VectorMemory("qdrant+http://localhost:6333?collection=kb")  # doctest: +SKIP

    Give exactly one of ``location`` (``":memory:"``), ``path`` (a folder) or ``url``.
    """

    name = "qdrant"

    def __init__(
        self,
        location: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "vecmem",
        timeout: int | None = None,
    ) -> None:
        given = [x for x in (location, path, url) if x is not None]
        if len(given) != 1:
            raise ConfigurationError(
                "Qdrant needs exactly one of location=':memory:', path= or url=")
        if location is not None and location != ":memory:":
            if location.startswith(("http://", "https://")):
                url, location = location, None
            else:
                raise ConfigurationError(
                    f"location must be ':memory:' or an http(s) URL, got {location!r}; "
                    "use path= for a folder"
                )
        if not isinstance(collection, str) or not collection:
            raise ConfigurationError("collection must be a non-empty string")
        self.location, self.url = location, url
        self.path = os.fspath(path) if path is not None else None
        self.api_key, self.collection, self.timeout = api_key, collection, timeout
        self.capabilities = Capabilities(persistent=location is None)
        self.space: EmbeddingSpace | None = None
        self.tokenizer: Tokenizer | None = None
        self._client: Any = None
        self._closed = False
        self._lock = threading.RLock()
        # local mode is not thread-safe: one call at a time; a server client is
        self._io: Any = threading.RLock() if url is None else nullcontext()
        self._bm25: BM25Index | None = None
        self._slot_of: dict[str, int] = {}  # chunk id -> BM25 slot
        self._id_of: dict[int, str] = {}  # BM25 slot -> chunk id
        self._doc_of: dict[str, str] = {}  # chunk id -> document id
        self._chunks_of: dict[str, set[str]] = {}  # document id -> chunk ids
        self._next_slot = 0
        self._next_seq = 0
        self._stale = False  # the BM25 index may be out of step (a failed write): rebuild

    # ----------------------------------------------------------------- plumbing
    @property
    def _where(self) -> str:
        target = self.url or self.path or ":memory:"
        return f"Qdrant collection {self.collection!r} at {target}"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate client exceptions into vecmem errors."""
        exc_mod = require("qdrant_client.http.exceptions", "qdrant")
        try:
            with self._io:
                yield
        except VecmemError:
            raise
        except exc_mod.UnexpectedResponse as exc:
            status = exc.status_code
            detail = exc.content.decode("utf-8", "replace")[:300]
            if status == 404:
                raise NotFoundError(f"{self._where} does not exist ({what})") from exc
            if status in (401, 403):
                raise AuthenticationError(f"{self._where}: access refused ({what})") from exc
            raise BackendError(f"{self._where}: {what} failed: HTTP {status} {detail}") from exc
        except exc_mod.ResponseHandlingException as exc:
            raise BackendUnavailableError(f"cannot reach Qdrant at {self.url}: {exc}") from exc
        except RuntimeError as exc:
            if "already accessed" in str(exc):
                raise StoreLockedError(
                    f"the Qdrant folder {self.path} is open in another client; local mode "
                    "allows one at a time (use a Qdrant server for concurrent access)"
                ) from exc
            raise BackendError(f"{self._where}: {what} failed: {exc}") from exc
        except ValueError as exc:  # local mode reports a missing collection this way
            if "not found" in str(exc):
                raise NotFoundError(f"{self._where} does not exist ({what})") from exc
            raise BackendError(f"{self._where}: {what} failed: {exc}") from exc
        except OSError as exc:
            raise BackendUnavailableError(f"{self._where}: {what} failed: {exc}") from exc

    def _c(self) -> Any:
        if self._closed:
            raise ConfigurationError("the Qdrant store is closed")
        if self._client is None:
            qc = require("qdrant_client", "qdrant")
            with self._errors("open"):
                if self.url is not None:
                    self._client = qc.QdrantClient(url=self.url, api_key=self.api_key,
                                                   timeout=self.timeout, check_compatibility=False)
                elif self.path is not None:
                    self._client = qc.QdrantClient(path=self.path)
                else:
                    self._client = qc.QdrantClient(location=":memory:")
        return self._client

    @property
    def _m(self) -> Any:
        return require("qdrant_client.models", "qdrant")

    def _require_space(self) -> EmbeddingSpace:
        if self._closed:
            raise ConfigurationError("the Qdrant store is closed")
        if self.space is None:
            raise ConfigurationError("Qdrant store used before connect(space)")
        return self.space

    def _filter(self, f: Filter | None) -> Any:
        return None if f is None else _FilterBuilder(self._m).build(f)

    # ----------------------------------------------------------------- space
    def stored_space(self) -> EmbeddingSpace | None:
        if self.space is not None:
            return self.space
        client = self._c()
        with self._errors("read the collection"):
            if not client.collection_exists(self.collection):
                return None
            meta = client.get_collection(self.collection).config.metadata or {}
        raw = meta.get("vecmem_space")
        return EmbeddingSpace.from_json(raw) if isinstance(raw, str) else None

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            m = self._m
            distance = {"cosine": m.Distance.COSINE, "dot": m.Distance.DOT}.get(space.distance)
            if distance is None:
                raise ConfigurationError(
                    f"Qdrant adapter supports cosine and dot, not {space.distance!r}")
            client = self._c()
            with self._errors("connect"):
                created = False
                if not client.collection_exists(self.collection):
                    try:
                        client.create_collection(
                            self.collection,
                            vectors_config={VECTOR: m.VectorParams(size=space.dim,
                                                                   distance=distance)},
                            metadata={"vecmem_space": space.to_json(), "vecmem_format": FORMAT},
                        )
                        created = True
                    except Exception:
                        if not client.collection_exists(self.collection):
                            raise
                        # another client created it first: adopt theirs below
                if created:
                    if self.url is not None:
                        for key in ("chunk_id", "document_id"):
                            client.create_payload_index(self.collection, key,
                                                        m.PayloadSchemaType.KEYWORD)
                    stored = space
                else:
                    stored = self._adopt(client, space)
            self.space = stored
            self.tokenizer = get_tokenizer(stored.tokenizer)
            self._rebuild_keyword_index()
            return stored

    def _adopt(self, client: Any, space: EmbeddingSpace) -> EmbeddingSpace:
        """Check an existing collection against ``space``; returns the recorded space."""
        info = client.get_collection(self.collection)
        vectors = info.config.params.vectors
        params = vectors.get(VECTOR) if isinstance(vectors, dict) else None
        if params is None:
            raise ConfigurationError(
                f"{self._where} exists but has no vector named {VECTOR!r}: it was not made by "
                "vecmem; pick another collection name"
            )
        raw = (info.config.metadata or {}).get("vecmem_space")
        if isinstance(raw, str):
            stored = EmbeddingSpace.from_json(raw)
            stored.check_compatible(space, where=self._where)
            return stored
        if params.size != space.dim:
            raise DimensionMismatchError(
                f"{self._where} holds {params.size}-d vectors, this space has {space.dim}"
            )
        client.update_collection(
            self.collection, metadata={"vecmem_space": space.to_json(), "vecmem_format": FORMAT})
        return space

    # ----------------------------------------------------------------- keyword index
    def _rebuild_keyword_index(self) -> None:
        """Rebuild the BM25 index from every point's text, in write order."""
        space = self._require_space()
        k1, b, eps = space.keyword_params()
        rows: list[tuple[int, str, str, str]] = []
        for rec in self._scroll(None, ["chunk_id", "document_id", "text", "seq"]):
            p = rec.payload or {}
            if "chunk_id" in p:
                rows.append((int(p.get("seq", 0)), p["chunk_id"], p.get("text", ""),
                             p.get("document_id", "")))
        rows.sort()
        self._bm25 = BM25Index(k1=k1, b=b, epsilon=eps)
        self._slot_of = {r[1]: i for i, r in enumerate(rows)}
        self._id_of = {i: cid for cid, i in self._slot_of.items()}
        self._doc_of, self._chunks_of = {}, {}
        for _, cid, _, doc in rows:
            self._doc_of[cid] = doc
            self._chunks_of.setdefault(doc, set()).add(cid)
        self._next_slot = len(rows)
        self._next_seq = (rows[-1][0] + 1) if rows else 0
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        self._bm25.add(np.arange(len(rows)), [self.tokenizer(r[2]) for r in rows])
        self._stale = False

    def _index_written(self, chunks: Sequence[Chunk], deleted: Sequence[str]) -> None:
        if self._bm25 is None or self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        gone = [self._slot_of.pop(i) for i in [*deleted, *(c.id for c in chunks)]
                if i in self._slot_of]
        self._bm25.remove(gone)
        for s in gone:
            self._id_of.pop(s, None)
        for cid in [*deleted, *(c.id for c in chunks)]:
            doc = self._doc_of.pop(cid, None)
            ids = self._chunks_of.get(doc) if doc is not None else None
            if doc is not None and ids is not None:
                ids.discard(cid)
                if not ids:
                    del self._chunks_of[doc]
        for c in chunks:
            self._doc_of[c.id] = c.document_id
            self._chunks_of.setdefault(c.document_id, set()).add(c.id)
        slots = np.arange(self._next_slot, self._next_slot + len(chunks))
        self._next_slot += len(chunks)
        self._bm25.add(slots, [self.tokenizer(c.text) for c in chunks])
        for s, c in zip(slots.tolist(), chunks):
            self._slot_of[c.id] = s
            self._id_of[s] = c.id

    # ----------------------------------------------------------------- writes
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        space = self._require_space()
        chunks = list(chunks)
        v = validate_batch(chunks, vectors, space.dim)
        written = {c.id for c in chunks}
        deletes = [i for i in dict.fromkeys(delete_ids) if i not in written]
        m = self._m
        with self._lock:
            seq = self._next_seq
            self._next_seq += len(chunks)
            points = [
                m.PointStruct(id=point_id(c.id), vector={VECTOR: v[i].tolist()}, payload={
                    "chunk_id": c.id, "document_id": c.document_id, "position": c.position,
                    "text": c.text, "content_hash": c.content_hash,
                    "metadata": dict(c.metadata), "seq": seq + i, "vm": _typed(c.metadata),
                })
                for i, c in enumerate(chunks)
            ]
            ops: list[Any] = [m.UpsertOperation(upsert=m.PointsList(points=points[i : i + _BATCH]))
                              for i in range(0, len(points), _BATCH)]
            if deletes:
                ops.append(m.DeleteOperation(delete=m.PointIdsList(
                    points=[point_id(i) for i in deletes])))
            if not ops:
                return
            self._stale = True  # until the write and the index update both succeeded
            # one request per few batches keeps a server under its request-size limit (32 MiB)
            per_request = 1 if self.url is not None else len(ops)
            for i in range(0, len(ops), per_request):
                with self._errors("upsert"):
                    self._c().batch_update_points(self.collection, ops[i : i + per_request],
                                                  wait=True)
            self._index_written(chunks, deletes)
            self._stale = False

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")
        self._require_space()
        with self._lock:
            doomed: dict[str, str] = {}  # point id -> chunk id
            if ids:
                for rec in self._retrieve(list(dict.fromkeys(ids)), ["chunk_id"]):
                    doomed[str(rec.id)] = rec.payload["chunk_id"]
            if filter is not None:
                for rec in self._scroll(self._filter(filter), ["chunk_id"]):
                    doomed[str(rec.id)] = rec.payload["chunk_id"]
            if not doomed:
                return 0
            m = self._m
            self._stale = True
            with self._errors("delete"):
                self._c().delete(self.collection, m.PointIdsList(points=list(doomed)), wait=True)
            self._index_written([], list(doomed.values()))
            self._stale = False
            return len(doomed)

    # ----------------------------------------------------------------- reads
    def _scroll(self, flt: Any, payload: Any, page: int = 10_000) -> Iterator[Any]:
        offset = None
        while True:
            with self._errors("scroll"):
                recs, offset = self._c().scroll(self.collection, scroll_filter=flt, limit=page,
                                                offset=offset, with_payload=payload,
                                                with_vectors=False)
            yield from recs
            if offset is None:
                return

    def _retrieve(self, ids: Sequence[str], payload: Any, vectors: bool = False) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(ids), _BATCH * 4):
            with self._errors("retrieve"):
                out += self._c().retrieve(
                    self.collection, [point_id(x) for x in ids[i : i + _BATCH * 4]],
                    with_payload=payload, with_vectors=[VECTOR] if vectors else False)
        return out

    @staticmethod
    def _chunk(payload: dict[str, Any]) -> Chunk:
        return Chunk(id=payload["chunk_id"], document_id=payload["document_id"],
                     position=int(payload["position"]), text=payload["text"],
                     metadata=payload.get("metadata") or {},
                     content_hash=payload.get("content_hash", ""))

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        q = validate_query_vector(vector, self._require_space().dim)
        with self._errors("vector query"):
            res = self._c().query_points(self.collection, query=q.tolist(), using=VECTOR,
                                         limit=k, query_filter=self._filter(filter),
                                         with_payload=_CHUNK_FIELDS)
        return [Scored(self._chunk(p.payload), float(p.score)) for p in res.points]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        self._require_space()
        with self._lock:
            if self._stale:
                self._rebuild_keyword_index()
            if self._bm25 is None or self.tokenizer is None:
                raise ConfigurationError("the store is used before connect(space)")
            tokens = self.tokenizer(text)
            flt = self._filter(filter)
            want = k if flt is None else max(4 * k, 64)
            chunks: dict[str, Chunk] = {}
            checked: set[str] = set()
            mask = None
            # widening by ids is cheap on a server (indexed); local mode scans every point per
            # scroll, so there one scan for the matching ids comes right after the first try
            widen_to = 4096 if self.url is not None else 0
            while True:
                slots, scores = self._bm25.top_k(tokens, want, mask)
                ranked = [(self._id_of[int(s)], float(x)) for s, x in zip(slots, scores)]
                fresh = [cid for cid, _ in ranked if cid not in checked]
                chunks.update(self._fetch(fresh, None if mask is not None else flt))
                checked.update(fresh)
                passing = [(cid, x) for cid, x in ranked if cid in chunks]
                if len(passing) >= k or len(slots) < want or mask is not None:
                    break
                want *= 4
                if want > widen_to:
                    mask = np.zeros(self._next_slot, dtype=bool)
                    hits = [self._slot_of.get(r.payload["chunk_id"])
                            for r in self._scroll(flt, ["chunk_id"])]
                    mask[[h for h in hits if h is not None]] = True
                    want = k
            return [Scored(chunks[cid], x) for cid, x in passing[:k]]

    def _fetch(self, ids: list[str], flt: Any) -> dict[str, Chunk]:
        """Chunks of ``ids`` that pass ``flt`` (all of them when it is ``None``)."""
        if not ids:
            return {}
        if flt is None:
            recs = self._retrieve(ids, _CHUNK_FIELDS)
        else:
            m = self._m
            recs = []
            for i in range(0, len(ids), 4096):
                part = [point_id(x) for x in ids[i : i + 4096]]
                both = m.Filter(must=[m.HasIdCondition(has_id=part), flt])
                recs += list(self._scroll(both, _CHUNK_FIELDS, page=len(part)))
        return {r.payload["chunk_id"]: self._chunk(r.payload) for r in recs}

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        found = {r.payload["chunk_id"]: self._chunk(r.payload)
                 for r in self._retrieve(list(dict.fromkeys(ids)), _CHUNK_FIELDS)}
        return [found[i] for i in ids if i in found]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        space = self._require_space()
        recs = self._retrieve(list(dict.fromkeys(ids)), ["chunk_id"], vectors=True)
        found = {r.payload["chunk_id"]: r.vector[VECTOR] for r in recs}
        missing = [i for i in ids if i not in found]
        if missing:
            raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
        return np.asarray([found[i] for i in ids], dtype=np.float32).reshape(len(ids), space.dim)

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        docs = [d for d in dict.fromkeys(document_ids)]
        if not docs:
            return []
        if self.url is None:  # local mode has one client: the id map is complete, and a
            with self._lock:  # retrieve by id beats a Python scan of every payload
                if self._stale:
                    self._rebuild_keyword_index()
                ids = [i for d in docs for i in sorted(self._chunks_of.get(d, ()))]
            return self.get(ids)
        m = self._m
        flt = m.Filter(must=[m.FieldCondition(key="document_id", match=m.MatchAny(any=docs))])
        by_doc: dict[str, list[Chunk]] = {}
        for rec in self._scroll(flt, _CHUNK_FIELDS):
            c = self._chunk(rec.payload)
            by_doc.setdefault(c.document_id, []).append(c)
        return [c for d in docs for c in sorted(by_doc.get(d, []), key=lambda c: c.id)]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        with self._errors("count"):
            return int(self._c().count(self.collection, count_filter=self._filter(filter),
                                       exact=True).count)

    def drop(self) -> None:
        """Delete the whole collection (its points and recorded space)."""
        with self._lock, self._errors("drop"):
            self._c().delete_collection(self.collection)
            self.space = None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._client is not None:
                try:
                    self._client.close()
                finally:
                    self._client = None


def from_url(url: str) -> Qdrant:
    """``qdrant://:memory:``, ``qdrant:///abs/path``, ``qdrant://./rel/path``,
    ``qdrant+http://host:6333``, ``qdrant+https://host`` ; query: ``?collection=NAME&api_key=KEY``.
    """
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"collection", "api_key"}
    if unknown:
        raise ConfigurationError(f"unknown Qdrant URL parameters: {sorted(unknown)}")
    collection = query.get("collection", "vecmem")
    scheme = parts.scheme.lower()
    if scheme in ("qdrant+http", "qdrant+https"):
        if not parts.netloc:
            raise ConfigurationError(f"Qdrant URL {url!r} has no host")
        server = f"{scheme.split('+')[1]}://{parts.netloc}{parts.path.rstrip('/')}"
        return Qdrant(url=server, api_key=query.get("api_key"), collection=collection)
    if scheme != "qdrant":
        raise ConfigurationError(f"not a Qdrant URL: {url!r}")
    rest = unquote(parts.netloc + parts.path)
    if rest == ":memory:":
        return Qdrant(":memory:", collection=collection)
    if not rest:
        raise ConfigurationError(f"Qdrant URL {url!r} names no folder; use qdrant://:memory:")
    return Qdrant(path=rest, collection=collection)


__all__ = ["Qdrant", "from_url", "point_id"]
