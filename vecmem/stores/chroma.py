"""Chroma adapter: dense vectors and filters in Chroma, exact BM25 beside them.

``ChromaDb(path=...)`` runs Chroma embedded (``PersistentClient``), ``ChromaDb()`` in memory
(``EphemeralClient``), ``ChromaDb(host=..., port=...)`` against a Chroma server (``HttpClient``).
One collection per store, cosine space, created with ``embedding_function=None``: vecmem always
passes the vectors, Chroma never embeds (its default model would be downloaded).

Layout. A chunk is a record: its id, its vector, its text as the document, and metadata holding
``_vm`` (document id, position, content hash and the metadata, as JSON, so ints, floats and
nested values come back exactly), ``_vm_doc`` (the document id, for ``get_by_document``) and a
typed flat copy for filtering: ``s_F`` strings, ``n_F`` numbers (as floats), ``b_F`` booleans,
``l_F`` the scalar elements of a list as tagged strings (``s:x``, ``n:1``, ``b:1``), and
``_vm_keys``, the typed keys present (``o_F`` for a field holding nothing filterable: null, an
object, an empty list). Keeping types apart makes the portable semantics exact whatever Chroma
does with mixed types: ``$eq`` never matches a list, booleans are not numbers, ``$ne``/``$nin``
match chunks without the field (written as ``$or`` with ``_vm_keys $not_contains``, not left to
how a Chroma version treats missing keys), ``$exists`` reads ``_vm_keys``, and ``$not`` is pushed
down to the leaves. The recorded :class:`~vecmem.types.EmbeddingSpace` lives in the collection metadata.

The keyword leg is a :class:`~vecmem.bm25.BM25Index` kept beside the collection (Chroma has no
BM25 equal to ``rank_bm25``): built from the documents on the first keyword search, kept in step
with every write made through this store, filtered by Chroma (the best BM25 candidates are checked
with ``get(ids=..., where=...)``, widening until ``k`` pass). Every write also stores a fresh
random token in the collection metadata (``vecmem_gen``); a store that finds a token it did not
write rebuilds its index, so writes by other clients reach it on the next keyword search. Limits:
a write by another client racing this store's own write by milliseconds can be missed until
:meth:`ChromaDb.refresh`; the rebuild reads every document (seconds per 100k chunks). Numbers are
compared as 64-bit floats (ints beyond 2**53 lose precision in filters, not in the stored JSON).

Vector search is Chroma's HNSW; when it returns fewer than ``k`` hits although more chunks match
(a selective filter), the store scans the matching vectors exactly.

>>> store = ChromaDb(path="./chroma")                       # doctest: +SKIP
>>> VectorMemory("chroma+http://localhost:8000?collection=kb")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
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
    VecmemError,
)
from vecmem.filters import Cond, Filter, Not, Or
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

FORMAT = 1
_KEYS = "_vm_keys"
_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,510})[a-zA-Z0-9]\Z")
_PAGE = 5000  # records per get() page
_Where = Any  # a Chroma where dict, or True (everything) / False (nothing)


# --------------------------------------------------------------------------- metadata
def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _tag(v: Any) -> str | None:
    """A list element as a tagged string; equal strings iff ``vecmem.filters._eq`` says equal."""
    if isinstance(v, bool):
        return "b:1" if v else "b:0"
    if isinstance(v, str):
        return "s:" + v
    if _num(v) and math.isfinite(v):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return f"n:{v!r}"
    return None


def _encode(c: Chunk) -> dict[str, Any]:
    """The Chroma metadata of a chunk (see the module docstring)."""
    try:
        raw = json.dumps({"d": c.document_id, "p": int(c.position), "h": c.content_hash,
                          "m": dict(c.metadata)},
                         ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata of chunk {c.id!r} is not JSON: {exc}") from exc
    meta: dict[str, Any] = {"_vm": raw, "_vm_doc": c.document_id}
    keys: list[str] = []
    val: Any
    for field, v in c.metadata.items():
        if not isinstance(field, str):
            raise InvalidInputError(f"metadata keys of chunk {c.id!r} must be strings")
        if isinstance(v, bool):
            key, val = "b_" + field, v
        elif _num(v):
            key, val = "n_" + field, float(v)
        elif isinstance(v, str):
            key, val = "s_" + field, v
        elif isinstance(v, (list, tuple)):
            key, val = "l_" + field, [t for t in map(_tag, v) if t is not None]
        else:  # None, dicts: present (for $exists), never equal to a scalar
            key, val = "o_" + field, []
        if val == []:  # nothing to filter on (an empty list): only its presence
            keys.append("o_" + field)
        else:
            keys.append(key)
            meta[key] = val
    meta[_KEYS] = keys or [""]  # never empty: Chroma refuses empty lists
    return meta


def _decode(cid: str, text: str | None, meta: dict[str, Any]) -> Chunk:
    d = json.loads(meta["_vm"])
    return Chunk(id=cid, document_id=d["d"], position=int(d["p"]), text=text or "",
                 metadata=d["m"], content_hash=d["h"])


# --------------------------------------------------------------------------- filters
def _and(items: list[_Where]) -> _Where:
    if any(x is False for x in items):
        return False
    items = [x for x in items if x is not True]
    if not items:
        return True
    return items[0] if len(items) == 1 else {"$and": items}


def _or(items: list[_Where]) -> _Where:
    if any(x is True for x in items):
        return True
    items = [x for x in items if x is not False]
    if not items:
        return False
    return items[0] if len(items) == 1 else {"$or": items}


def _absent(key: str) -> dict[str, Any]:
    return {_KEYS: {"$not_contains": key}}


def _typed_key(field: str, v: Any) -> tuple[str, Any]:
    if isinstance(v, bool):
        return "b_" + field, v
    if isinstance(v, str):
        return "s_" + field, v
    return "n_" + field, float(v)


_FLIP = {"gt": "$lte", "gte": "$lt", "lt": "$gte", "lte": "$gt"}
_PREFIXES = ("n_", "s_", "b_", "l_", "o_")


def _cond(c: Cond, neg: bool) -> _Where:
    """One condition, or its negation, as a Chroma where (exact vecmem semantics)."""
    op, v, f = c.op, c.value, c.field
    if op == "exists":  # one of the typed keys (or the o_ marker) is listed
        keys = [p + f for p in _PREFIXES]
        if v != neg:
            return _or([{_KEYS: {"$contains": k}} for k in keys])
        return _and([_absent(k) for k in keys])
    if op in ("ne", "nin"):
        op, neg = {"ne": "eq", "nin": "in"}[op], not neg
    if op == "eq":
        key, val = _typed_key(f, v)
        return _or([_absent(key), {key: {"$ne": val}}]) if neg else {key: {"$eq": val}}
    if op == "in":
        groups: dict[str, list[Any]] = {}
        for x in v:
            key, val = _typed_key(f, x)
            if val not in groups.setdefault(key, []):
                groups[key].append(val)
        if neg:
            return _and([_or([_absent(k), {k: {"$nin": vals}}]) for k, vals in groups.items()])
        return _or([{k: {"$in": vals}} for k, vals in groups.items()])
    if op == "contains":
        key, tag = "l_" + f, _tag(v)
        return _or([_absent(key), {key: {"$not_contains": tag}}]) if neg else {
            key: {"$contains": tag}}
    key = "n_" + f  # gt gte lt lte
    if neg:
        return _or([_absent(key), {key: {_FLIP[op]: float(v)}}])
    return {key: {"$" + op: float(v)}}


def to_where(f: Filter | None, neg: bool = False) -> _Where:
    """A parsed vecmem filter as a Chroma ``where`` (``True``: no filter, ``False``: nothing)."""
    if f is None:
        return True
    if isinstance(f, Cond):
        return _cond(f, neg)
    if isinstance(f, Not):
        return to_where(f.item, not neg)
    parts = [to_where(x, neg) for x in f.items]
    return _or(parts) if isinstance(f, Or) != neg else _and(parts)


# --------------------------------------------------------------------------- the store
class ChromaDb:
    """A vecmem store on Chroma (embedded, in memory, or a server), with exact BM25 beside it.

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=ChromaDb(path="./chroma-data"))              # doctest: +SKIP
    >>> mem = VectorMemory(store=ChromaDb(host="localhost", port=8000, collection="kb"))
    ... # doctest: +SKIP

    Give ``path`` (a folder, ``PersistentClient``) or ``host`` (``HttpClient``), or neither for an
    in-memory ``EphemeralClient`` (shared by every ephemeral store of the process).
    """

    name = "chroma"

    def __init__(
        self,
        path: str | None = None,
        *,
        host: str | None = None,
        port: int = 8000,
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        collection: str = "vecmem",
    ) -> None:
        if path is not None and host is not None:
            raise ConfigurationError("ChromaDb takes path= or host=, not both")
        if not isinstance(collection, str) or not _NAME.match(collection):
            raise ConfigurationError(
                f"Chroma collection names have 3-512 characters from [a-zA-Z0-9._-] and start "
                f"and end with a letter or digit, got {collection!r}")
        self.path = None if path is None else str(path)
        self.host, self.port, self.ssl, self.headers = host, int(port), ssl, headers
        self.collection = collection
        self.capabilities = Capabilities(persistent=path is not None or host is not None,
                                         concurrent_writers=host is not None)
        self.space: EmbeddingSpace | None = None
        self.tokenizer: Tokenizer | None = None
        self._client: Any = None
        self._col: Any = None
        self._closed = False
        self._lock = threading.RLock()
        self._batch = 1000
        # the keyword index (None until the first keyword search)
        self._bm25: BM25Index | None = None
        self._slot_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._next_slot = 0
        self._gen: str | None = None  # the collection's vecmem_gen our index reflects

    # ----------------------------------------------------------------- plumbing
    @property
    def _where_am_i(self) -> str:
        if self.host is not None:
            target = f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"
        else:
            target = self.path or "memory"
        return f"Chroma collection {self.collection!r} at {target}"

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate client exceptions into vecmem errors."""
        errors = require("chromadb.errors", "chroma")
        try:
            yield
        except VecmemError:
            raise
        except errors.NotFoundError as exc:
            raise NotFoundError(f"{self._where_am_i} does not exist ({what})") from exc
        except (errors.ChromaAuthError, errors.AuthorizationError) as exc:
            raise AuthenticationError(f"{self._where_am_i}: access refused ({what})") from exc
        except errors.ChromaError as exc:
            if "dimension" in str(exc):
                raise DimensionMismatchError(f"{self._where_am_i}: {exc}") from exc
            raise BackendError(f"{self._where_am_i}: {what} failed: {exc}") from exc
        except Exception as exc:  # httpx errors, or ValueError("Could not connect ...")
            text = f"{type(exc).__name__} {exc}".lower()
            if "connect" in text or "timeout" in text or isinstance(exc, OSError):
                raise BackendUnavailableError(
                    f"cannot reach the Chroma server at {self._where_am_i}: {exc}") from exc
            raise BackendError(f"{self._where_am_i}: {what} failed: {exc}") from exc

    def _c(self) -> Any:
        if self._closed:
            raise ConfigurationError("the Chroma store is closed")
        if self._client is None:
            chromadb = require("chromadb", "chroma")
            # default settings: a client made elsewhere in the process for the same path must
            # match them (Chroma reads ANONYMIZED_TELEMETRY etc. from the environment)
            with self._errors("open"):
                if self.host is not None:
                    self._client = chromadb.HttpClient(host=self.host, port=self.port,
                                                       ssl=self.ssl, headers=self.headers)
                elif self.path is not None:
                    self._client = chromadb.PersistentClient(path=self.path)
                else:
                    self._client = chromadb.EphemeralClient()
                self._batch = int(self._client.get_max_batch_size())
        return self._client

    def _require_space(self) -> EmbeddingSpace:
        if self._closed:
            raise ConfigurationError("the Chroma store is closed")
        if self.space is None or self._col is None:
            raise ConfigurationError("Chroma store used before connect(space)")
        return self.space

    def _find(self) -> Any | None:
        """The collection, or ``None`` if it does not exist."""
        errors = require("chromadb.errors", "chroma")
        client = self._c()
        try:
            with self._errors("open the collection"):
                return client.get_collection(self.collection, embedding_function=None)
        except NotFoundError as exc:
            if isinstance(exc.__cause__, errors.NotFoundError):
                return None
            raise

    # ----------------------------------------------------------------- space
    def stored_space(self) -> EmbeddingSpace | None:
        if self.space is not None:
            return self.space
        col = self._find()
        raw = (col.metadata or {}).get("vecmem_space") if col is not None else None
        return EmbeddingSpace.from_json(raw) if isinstance(raw, str) else None

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            if space.distance != "cosine":
                raise ConfigurationError(f"ChromaDb supports cosine, not {space.distance!r}")
            col = self._find()
            if col is None:
                errors = require("chromadb.errors", "chroma")
                try:
                    with self._errors("create the collection"):
                        col = self._c().create_collection(
                            self.collection, embedding_function=None,
                            configuration={"hnsw": {"space": "cosine"}},
                            metadata={"vecmem_space": space.to_json(), "vecmem_format": FORMAT})
                    stored = space
                except BackendError as exc:  # created meanwhile by another client
                    if not isinstance(exc.__cause__, errors.ChromaError):
                        raise
                    col = self._find()
                    if col is None:
                        raise
                    stored = self._adopt(col, space)
            else:
                stored = self._adopt(col, space)
            self._col = col
            self.space = stored
            self.tokenizer = get_tokenizer(stored.tokenizer)
            return stored

    def _adopt(self, col: Any, space: EmbeddingSpace) -> EmbeddingSpace:
        """Check an existing collection against ``space``; returns the recorded space."""
        config = getattr(col, "configuration_json", None) or {}
        hnsw = config.get("hnsw") or {}
        meta = dict(col.metadata or {})
        spann = config.get("spann") or {}
        metric = hnsw.get("space") or spann.get("space") or meta.get("hnsw:space") or "l2"
        if metric != "cosine":
            raise ConfigurationError(
                f"{self._where_am_i} uses the {metric!r} space; vecmem needs cosine "
                "(pick another collection name)")
        raw = meta.get("vecmem_space")
        if isinstance(raw, str):
            stored = EmbeddingSpace.from_json(raw)
            stored.check_compatible(space, where=self._where_am_i)
            return stored
        with self._errors("inspect the collection"):
            if col.count():
                raise ConfigurationError(
                    f"{self._where_am_i} already holds records not written by vecmem; "
                    "pick another collection name")
            col.modify(metadata={**meta, "vecmem_space": space.to_json(),
                                 "vecmem_format": FORMAT})
        return space

    # ----------------------------------------------------------------- keyword index
    def _current_gen(self) -> str | None:
        with self._errors("read the collection"):
            col = self._c().get_collection(self.collection, embedding_function=None)
        return (col.metadata or {}).get("vecmem_gen")

    def refresh(self) -> None:
        """Rebuild the keyword index from the collection now (after writes by other clients)."""
        with self._lock:
            self._require_space()
            self._rebuild()

    def _rebuild(self) -> None:
        space = self._require_space()
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        gen = self._current_gen()  # read before the scan: a later write triggers a new rebuild
        k1, b, eps = space.keyword_params()
        bm25 = BM25Index(k1=k1, b=b, epsilon=eps)
        slot_of: dict[str, int] = {}
        offset = 0
        while True:
            with self._errors("read the documents"):
                page = self._col.get(include=["documents"], limit=_PAGE * 4, offset=offset)
            ids, docs = page["ids"], page["documents"] or []
            fresh = [(i, d) for i, d in zip(ids, docs) if i not in slot_of]
            slots = np.arange(len(slot_of), len(slot_of) + len(fresh))
            bm25.add(slots, [self.tokenizer(d or "") for _, d in fresh])
            slot_of.update((i, int(s)) for (i, _), s in zip(fresh, slots))
            offset += len(ids)
            if len(ids) < _PAGE * 4:
                break
        self._bm25, self._slot_of = bm25, slot_of
        self._id_of = {s: i for i, s in slot_of.items()}
        self._next_slot, self._gen = len(slot_of), gen

    def _index_written(self, chunks: Sequence[Chunk], deleted: Sequence[str]) -> None:
        if self._bm25 is None or self.tokenizer is None:
            return
        gone = [self._slot_of.pop(i) for i in [*deleted, *(c.id for c in chunks)]
                if i in self._slot_of]
        self._bm25.remove(gone)
        for s in gone:
            self._id_of.pop(s, None)
        slots = np.arange(self._next_slot, self._next_slot + len(chunks))
        self._next_slot += len(chunks)
        self._bm25.add(slots, [self.tokenizer(c.text) for c in chunks])
        for s, c in zip(slots.tolist(), chunks):
            self._slot_of[c.id] = s
            self._id_of[s] = c.id

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Wrap a write: keep the keyword index in step and publish a new generation token."""
        if self._bm25 is not None and self._current_gen() != self._gen:
            self._bm25 = None  # another client wrote: rebuild on the next keyword search
        try:
            yield
        except BaseException:
            self._bm25 = None  # perhaps partly written: rebuild from what is there
            try:
                self._publish()
            except VecmemError:
                pass  # the original error says more
            raise
        self._publish()

    def _publish(self) -> None:
        """Store a new generation token: other clients' keyword indexes will rebuild."""
        gen = uuid.uuid4().hex
        with self._errors("record the write"):
            col = self._c().get_collection(self.collection, embedding_function=None)
            col.modify(metadata={**(col.metadata or {}), "vecmem_gen": gen})
        self._gen = gen

    # ----------------------------------------------------------------- writes
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        space = self._require_space()
        chunks = list(chunks)
        v = validate_batch(chunks, vectors, space.dim)
        metas = [_encode(c) for c in chunks]
        written = {c.id for c in chunks}
        deletes = [i for i in dict.fromkeys(delete_ids) if i not in written]
        if not chunks and not deletes:
            return
        with self._lock, self._writing():
            for i in range(0, len(chunks), self._batch):
                part = slice(i, i + self._batch)
                with self._errors("upsert"):
                    self._col.upsert(ids=[c.id for c in chunks[part]], embeddings=v[part],
                                     documents=[c.text for c in chunks[part]],
                                     metadatas=metas[part])
            if deletes:
                self._delete_ids(deletes)
            self._index_written(chunks, deletes)

    def _delete_ids(self, ids: list[str]) -> None:
        for i in range(0, len(ids), self._batch):
            with self._errors("delete"):
                self._col.delete(ids=ids[i : i + self._batch])

    def _existing(self, ids: Sequence[str], where: _Where = True) -> list[str]:
        """Which of ``ids`` exist (and match ``where``)."""
        out: list[str] = []
        for i in range(0, len(ids), self._batch):
            with self._errors("get"):
                out += self._col.get(ids=list(ids[i : i + self._batch]), include=[],
                                     where=None if where is True else where)["ids"]
        return out

    def _matching_ids(self, where: _Where) -> list[str]:
        if where is False:
            return []
        out: list[str] = []
        offset = 0
        while True:
            with self._errors("get"):
                ids = self._col.get(where=None if where is True else where, include=[],
                                    limit=_PAGE * 4, offset=offset)["ids"]
            out += ids
            offset += len(ids)
            if len(ids) < _PAGE * 4:
                return out

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")
        self._require_space()
        with self._lock:
            doomed: set[str] = set()
            if ids:
                doomed.update(self._existing(list(dict.fromkeys(ids))))
            if filter is not None:
                doomed.update(self._matching_ids(to_where(filter)))
            if not doomed:
                return 0
            with self._writing():
                self._delete_ids(sorted(doomed))
                self._index_written([], sorted(doomed))
            return len(doomed)

    # ----------------------------------------------------------------- reads
    def _records(self, ids: Sequence[str], where: _Where = True,
                 include: Sequence[str] = ("documents", "metadatas")) -> dict[str, Any]:
        """``{id: (document, metadata, embedding)}`` for those of ``ids`` that exist."""
        out: dict[str, Any] = {}
        ids = list(dict.fromkeys(ids))
        for i in range(0, len(ids), self._batch):
            with self._errors("get"):
                got = self._col.get(ids=ids[i : i + self._batch], include=list(include),
                                    where=None if where is True else where)
            docs = got.get("documents") or [None] * len(got["ids"])
            metas = got.get("metadatas") or [None] * len(got["ids"])
            embs = got.get("embeddings")
            embs = [None] * len(got["ids"]) if embs is None else embs
            for cid, d, m, e in zip(got["ids"], docs, metas, embs):
                out[cid] = (d, m, e)
        return out

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        q = validate_query_vector(vector, self._require_space().dim)
        where = to_where(filter)
        if where is False:
            return []
        with self._errors("vector query"):
            res = self._col.query(query_embeddings=q[None, :], n_results=k,
                                  where=None if where is True else where,
                                  include=["documents", "metadatas", "distances"])
        ids = res["ids"][0]
        hits = [Scored(_decode(cid, d, m), 1.0 - float(dist)) for cid, d, m, dist in
                zip(ids, res["documents"][0], res["metadatas"][0], res["distances"][0])]
        if len(hits) < k:
            with self._errors("count"):
                total = self._col.count() if where is True else len(self._matching_ids(where))
            if total > len(hits):  # HNSW missed some matches: scan them exactly
                return self._exact(q, k, where)
        return hits

    def _exact(self, q: np.ndarray, k: int, where: _Where) -> list[Scored]:
        best_ids: list[str] = []
        best = np.zeros(0, np.float32)
        offset = 0
        while True:
            with self._errors("get"):
                page = self._col.get(where=None if where is True else where,
                                     include=["embeddings"], limit=_PAGE, offset=offset)
            if len(page["ids"]):
                sims = np.asarray(page["embeddings"], dtype=np.float32) @ q
                pool = np.concatenate([best, sims])
                ids = best_ids + list(page["ids"])
                top = np.argsort(-pool, kind="stable")[:k]
                best_ids, best = [ids[i] for i in top], pool[top]
            offset += len(page["ids"])
            if len(page["ids"]) < _PAGE:
                break
        recs = self._records(best_ids)
        return [Scored(_decode(i, recs[i][0], recs[i][1]), float(s))
                for i, s in zip(best_ids, best) if i in recs]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        self._require_space()
        where = to_where(filter)
        with self._lock:
            if self._bm25 is None or self._current_gen() != self._gen:
                self._rebuild()
            if self._bm25 is None or self.tokenizer is None:
                raise ConfigurationError("the store is used before connect(space)")
            tokens = self.tokenizer(text)
            if not tokens or where is False:
                return []
            want = k if where is True else max(4 * k, 64)
            recs: dict[str, Any] = {}
            checked: set[str] = set()
            while True:
                slots, scores = self._bm25.top_k(tokens, want)
                ranked = [(self._id_of[int(s)], float(x)) for s, x in zip(slots, scores)]
                fresh = [cid for cid, _ in ranked if cid not in checked]
                recs.update(self._records(fresh, where))
                checked.update(fresh)
                passing = [(cid, x) for cid, x in ranked if cid in recs]
                if len(passing) >= k or len(slots) < want:
                    break
                want *= 4
            return [Scored(_decode(cid, recs[cid][0], recs[cid][1]), x) for cid, x in passing[:k]]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        recs = self._records(ids)
        return [_decode(i, recs[i][0], recs[i][1]) for i in ids if i in recs]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        space = self._require_space()
        recs = self._records(ids, include=("embeddings",))
        missing = [i for i in ids if i not in recs]
        if missing:
            raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
        out = np.zeros((len(ids), space.dim), dtype=np.float32)
        for row, i in enumerate(ids):
            out[row] = recs[i][2]
        return out

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        docs = list(dict.fromkeys(document_ids))
        by_doc: dict[str, list[Chunk]] = {}
        for i in range(0, len(docs), 1000):
            part = docs[i : i + 1000]
            offset = 0
            while True:
                with self._errors("get"):
                    got = self._col.get(where={"_vm_doc": {"$in": part}},
                                        include=["documents", "metadatas"],
                                        limit=_PAGE, offset=offset)
                for cid, d, m in zip(got["ids"], got["documents"], got["metadatas"]):
                    c = _decode(cid, d, m)
                    by_doc.setdefault(c.document_id, []).append(c)
                offset += len(got["ids"])
                if len(got["ids"]) < _PAGE:
                    break
        return [c for d in docs for c in sorted(by_doc.get(d, []), key=lambda c: c.id)]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        where = to_where(filter)
        if where is True:
            with self._errors("count"):
                return int(self._col.count())
        return len(self._matching_ids(where))

    def drop(self) -> None:
        """Delete the whole collection (its records and recorded space); no-op if absent."""
        with self._lock:
            try:
                with self._errors("drop"):
                    self._c().delete_collection(self.collection)
            except NotFoundError:
                pass
            self.space, self._col, self._bm25 = None, None, None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._client = self._col = self._bm25 = None


def from_url(url: str) -> ChromaDb:
    """``chroma:///abs/path``, ``chroma://./rel/path``, ``chroma://:memory:``,
    ``chroma+http://host:8000``, ``chroma+https://host``; query: ``?collection=NAME``."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"collection"}
    if unknown:
        raise ConfigurationError(f"unknown Chroma URL parameters: {sorted(unknown)}")
    collection = query.get("collection", "vecmem")
    scheme = parts.scheme.lower()
    if scheme in ("chroma+http", "chroma+https"):
        if not parts.hostname:
            raise ConfigurationError(f"Chroma URL {url!r} has no host")
        ssl = scheme == "chroma+https"
        return ChromaDb(host=parts.hostname, port=parts.port or (443 if ssl else 8000), ssl=ssl,
                        collection=collection)
    if scheme != "chroma":
        raise ConfigurationError(f"not a Chroma URL: {url!r}")
    rest = unquote(parts.netloc + parts.path)
    if rest == ":memory:":
        return ChromaDb(collection=collection)
    if not rest:
        raise ConfigurationError(f"Chroma URL {url!r} names no folder; use chroma://:memory:")
    return ChromaDb(path=rest, collection=collection)


__all__ = ["ChromaDb", "from_url", "to_where"]
