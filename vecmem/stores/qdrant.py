"""Qdrant adapter: dense vectors, filters and (by default) the BM25 leg in Qdrant.

One collection per store, with one named dense vector ``dense`` (cosine). Works with every engine
qdrant-client has: ``Qdrant(":memory:")`` and ``Qdrant(path="./qdrant")`` run Qdrant's local mode
in-process (nothing to install), ``Qdrant(url="http://host:6333")`` talks to a server (>= 1.16,
for collection metadata).

Layout. A chunk is a point whose id is ``uuid5(chunk id)``; its payload holds the chunk
(``chunk_id``, ``document_id``, ``position``, ``text``, ``content_hash``, ``metadata`` as given)
plus a typed copy of the metadata for filtering, at the top level: ``vm_s_F`` strings, ``vm_n_F``
numbers, ``vm_b_F`` booleans, ``vm_ls_F``/``vm_ln_F``/``vm_lb_F`` the string/number/boolean
elements of a list, ``vm_keys`` the names present (``F`` is the field name, hex-encoded when it is
not a plain identifier). Layout 1 (collections made before vecmem recorded ``vecmem_format`` 2)
nests the same keys under ``vm`` (``vm.s.F``, ``vm.keys``): it is still read and written, but
local mode evaluates a filter in Python per point and pays for each level of nesting (a filtered
query at 100k points: 1.25x a one-level key, where the flat keys are faster). Keeping types apart is what makes the portable filter semantics exact: Qdrant
matches any element of an array and compares ``True == 1`` in local mode, while vecmem's
``$eq`` never matches a list and booleans are not numbers. The embedding space is recorded in
the collection's metadata, so a reopened store knows its embedder.

The keyword leg, ``keyword="native"`` (the default). A second named vector, the sparse ``bm25``
with ``Modifier.IDF``, holds each chunk's BM25 term-frequency part
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` over vecmem's tokens (the space's
tokenizer, ``k1`` and ``b``); Qdrant multiplies by the idf at query time and the query vector is
the count of each query token, so a score is ``sum over query tokens of idf * tf-part``, computed
inside Qdrant, with the filter applied before top-k. Hybrid search is one request
(``query_batch_points``: the dense and the sparse query, each with the filter, ``both_legs``)
fused by the facade's :func:`vecmem.fusion.fuse`, so every :class:`~vecmem.fusion.Fusion` (rrf,
convex, dbsf, adaptive) gives what the facade gives, with per-leg scores (Qdrant's own prefetch
fusion has no per-leg scores, a fixed RRF constant and no adaptive weights). What differs from
rank_bm25 (``"exact"``):

* idf is Qdrant's (Lucene's) ``ln(1 + (N - df + 0.5) / (df + 0.5))``, not rank_bm25's
  ``ln((N - df + 0.5) / (df + 0.5))`` with its ``epsilon * mean idf`` floor; N counts the chunks
  with at least one token. A Qdrant *server* counts deleted points in N and df until its
  optimiser drops them (local mode does not); results stay correct, scores drift a little.
* ``avgdl`` is baked into the stored values. It is measured on the first write (that batch's mean
  token count), recorded in the collection metadata (``vecmem_bm25``), and re-measured over every
  chunk, rewriting every sparse vector (:meth:`Qdrant.reindex`), when the mean length of what this
  store object has written since drifts more than 5 % from it: cheap while a collection is small,
  rare once it is large (a 5 % move of the mean needs many new chunks). Deletes and overwrites do
  not enter that estimate, and another client's writes are seen only when this one reconnects;
  call ``reindex()`` after a large change of what the collection holds.
* Terms are 32-bit ids, the first 4 bytes of the term's BLAKE2b digest (stable everywhere, no
  vocabulary to store). Two terms with the same id merge: about V^2 / 2^33 pairs among V distinct
  terms (0.01 at 10k terms, 1.2 at 100k), each a rare term scored as if it were the other too.

Measured with MiniLM and the default fusion: on the congruence suite's SciFact slice (1,353
chunks, 50 queries) native hybrid nDCG@10 is 0.9315 against the exact reference's 0.9257; on the
whole SciFact test split (10,834 chunks, 300 queries) 0.7213 against 0.7237 (keyword alone 0.6748
against 0.6772). Choose
``keyword="exact"`` for scores equal to rank_bm25 (``vecmem eval`` numbers that match the other
stores), or in local mode at scale: local mode scores a sparse query in Python over every point
(about a second at 100k chunks, see BENCHMARKS.md), while the exact index answers in about a
millisecond.

``keyword="exact"`` keeps a :class:`~vecmem.bm25.BM25Index` beside the collection
(``native_keyword=False``): rebuilt from the points' text when the store connects, kept in step
with every write and delete made through it, and filtered by Qdrant: the best BM25 candidates are
checked against the filter in Qdrant (a ``HasId`` + filter scroll), widening until ``k`` pass;
past 4,096 candidates (at once in local mode, where every scroll scans all points) one filtered
scroll of ids gives the matching points and BM25 ranks exactly those. Scores equal the reference.
Hybrid search is fused by the facade. A collection made in native mode can be opened in exact
mode (its sparse vectors are still written); one made in exact mode has no sparse vector and
cannot be opened in native mode.

Limits, stated: in exact mode, writes by *another* client to the same server collection reach this
store's keyword leg only when it reconnects (``concurrent_writers`` only in native mode on a
server); local mode locks its folder to one client anyway. Qdrant has no transactions
(``transactions=False``): an upsert with ``delete_ids`` is one call in local mode and one request
per 512 points to a server; if one fails, the exact keyword index is rebuilt from the collection
before the next keyword search.

>>> store = Qdrant(":memory:")                          # doctest: +SKIP
>>> VectorMemory(store=Qdrant(url="http://localhost:6333", collection="kb"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import Any, Iterator, Literal, Sequence
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
    StoreLockedError,
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.filters import And, Cond, Filter, Not, Or
from vecmem.stores._beside import KeywordBeside
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

KeywordMode = Literal["native", "exact"]
KEYWORD_MODES = ("native", "exact")
FORMAT = 2  # payload layout of new collections (1: the typed keys nested under ``vm``)
VECTOR = "dense"
SPARSE = "bm25"
TERM_IDS = "blake2b-32"  # how terms become sparse indices (recorded; a change needs a reindex)
AVGDL_DRIFT = 0.05  # re-measure avgdl when the written chunks' mean length moves this much
_NAMESPACE = uuid.UUID("6f1c2b1e-5d0a-4a53-9a5e-7b0c6a2f9e11")  # vecmem's uuid5 namespace
_CHUNK_FIELDS = ["chunk_id", "document_id", "position", "text", "content_hash", "metadata"]
_BATCH = 512  # points per upsert operation (and per request to a server)
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def point_id(chunk_id: str) -> str:
    """The Qdrant point id of a chunk id (uuid5 in vecmem's namespace)."""
    return str(uuid.uuid5(_NAMESPACE, chunk_id))


@lru_cache(maxsize=262_144)
def term_id(term: str) -> int:
    """A term's sparse index: the first 4 bytes of its BLAKE2b digest, little-endian."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def bm25_document(tokens: Sequence[str], *, k1: float, b: float,
                  avgdl: float) -> tuple[list[int], list[float]]:
    """A chunk's sparse BM25 vector: ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` per
    term id, ids ascending (Qdrant's ``Modifier.IDF`` supplies the idf at query time)."""
    counts = Counter(map(term_id, tokens))
    norm = k1 * (1 - b + b * len(tokens) / avgdl)
    ids = sorted(counts)
    return ids, [counts[i] * (k1 + 1) / (counts[i] + norm) for i in ids]


def bm25_query(tokens: Sequence[str]) -> tuple[list[int], list[float]]:
    """A query's sparse vector: how often each term occurs (a repeated term counts again, as in
    rank_bm25), ids ascending."""
    counts = Counter(map(term_id, tokens))
    ids = sorted(counts)
    return ids, [float(counts[i]) for i in ids]


@lru_cache(maxsize=65536)
def _enc(field: str) -> str:
    """A metadata field name as a safe payload key: itself if a plain identifier, else
    ``_`` + hex of its UTF-8 (the two forms cannot collide: identifiers start with a letter)."""
    return field if _IDENT.match(field) else "_" + field.encode("utf-8").hex()


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _key(fmt: int, kind: str, field: str | None = None) -> str:
    """The payload key of a typed copy: ``kind`` s/n/b/ls/ln/lb of ``field`` (or ``keys``)."""
    if field is None:
        return "vm_keys" if fmt >= 2 else "vm.keys"
    return f"vm_{kind}_{_enc(field)}" if fmt >= 2 else f"vm.{kind}.{_enc(field)}"


def _typed(meta: Any, fmt: int) -> dict[str, Any]:
    """The payload keys holding the metadata split by type (see the module docstring)."""
    out: dict[str, Any] = {_key(2, "keys"): list(meta)}
    for field, v in meta.items():
        if isinstance(v, bool):
            out[_key(2, "b", field)] = v
        elif _is_num(v):
            out[_key(2, "n", field)] = v
        elif isinstance(v, str):
            out[_key(2, "s", field)] = v
        elif isinstance(v, (list, tuple)):
            for kind, keep in (("lb", lambda x: isinstance(x, bool)), ("ln", _is_num),
                               ("ls", lambda x: isinstance(x, str))):
                items = [x for x in v if keep(x)]
                if items:
                    out[_key(2, kind, field)] = items
    if fmt >= 2:
        return out
    nested: dict[str, Any] = {"keys": out.pop("vm_keys")}  # layout 1: {"vm": {kind: {F: v}}}
    for key, v in out.items():
        kind, e = key[3:].split("_", 1)
        nested.setdefault(kind, {})[e] = v
    return {"vm": nested}


class _FilterBuilder:
    """Translates a parsed vecmem filter into a ``models.Filter`` with the reference semantics."""

    def __init__(self, models: Any, fmt: int) -> None:
        self.m, self.fmt = models, fmt

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
        m, fmt, lst = self.m, self.fmt, "l" if list_elements else ""
        if isinstance(v, bool):
            return m.FieldCondition(key=_key(fmt, lst + "b", field), match=m.MatchValue(value=v))
        if isinstance(v, str):
            return m.FieldCondition(key=_key(fmt, lst + "s", field), match=m.MatchValue(value=v))
        return self._number(_key(fmt, lst + "n", field), gte=v, lte=v)

    def _in(self, field: str, values: Sequence[Any]) -> Any:
        m = self.m
        strings = [v for v in values if isinstance(v, str)]
        parts = [self._eq(field, v) for v in values if not isinstance(v, str)]
        if strings:
            parts.append(m.FieldCondition(key=_key(self.fmt, "s", field),
                                          match=m.MatchAny(any=strings)))
        if not parts:
            return self._nothing()
        return parts[0] if len(parts) == 1 else m.Filter(should=parts)

    def _cond(self, c: Cond) -> Any:
        m, op, v = self.m, c.op, c.value
        if op == "exists":
            has = m.FieldCondition(key=_key(self.fmt, "keys"), match=m.MatchValue(value=c.field))
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
            return self._number(_key(self.fmt, "n", c.field), **{op: v})
        raise UnsupportedFilterError(f"Qdrant adapter cannot express operator ${op}")


class Qdrant:
    """A vecmem store on Qdrant (local mode or server); BM25 as sparse vectors inside Qdrant
    (``keyword="native"``) or exact rank_bm25 beside it (``keyword="exact"``).

    >>> from vecmem import VectorMemory
    >>> mem = VectorMemory(store=Qdrant(path="./qdrant-data"))    # doctest: +SKIP
    >>> mem = VectorMemory(store=Qdrant(url="http://localhost:6333", keyword="exact"))  # doctest: +SKIP
    >>> mem = VectorMemory("qdrant+http://localhost:6333?collection=kb")  # doctest: +SKIP

    Give exactly one of ``location`` (``":memory:"``), ``path`` (a folder) or ``url``. See the
    module docstring for how the two keyword modes differ and when to choose which.
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
        keyword: KeywordMode = "native",
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
        if keyword not in KEYWORD_MODES:
            raise ConfigurationError(
                f"keyword must be 'native' (BM25 as sparse vectors in Qdrant) or 'exact' "
                f"(rank_bm25 beside the collection), not {keyword!r}")
        self.location, self.url = location, url
        self.path = os.fspath(path) if path is not None else None
        self.api_key, self.collection, self.timeout = api_key, collection, timeout
        self.keyword_mode: KeywordMode = keyword
        native = keyword == "native"
        self.capabilities = Capabilities(
            persistent=location is None, native_keyword=native, both_legs=native,
            concurrent_writers=native and url is not None)
        self.space: EmbeddingSpace | None = None
        self.tokenizer: Tokenizer | None = None
        self._client: Any = None
        self._closed = False
        self._lock = threading.RLock()
        # local mode is not thread-safe: one call at a time; a server client is
        self._io: Any = threading.RLock() if url is None else nullcontext()
        # exact mode: the BM25 index beside the collection
        self._kw: KeywordBeside | None = None
        self._doc_of: dict[str, str] = {}  # chunk id -> document id
        self._chunks_of: dict[str, set[str]] = {}  # document id -> chunk ids
        self._next_seq = 0
        self._stale = False  # the BM25 index may be out of step (a failed write): rebuild
        self._format = FORMAT  # the payload layout of the collection (set on connect)
        # the sparse BM25 vector (native collections, whatever the mode)
        self._sparse = False  # the collection has it: every write fills it
        self._avgdl: float | None = None  # the avgdl its values are normalised with
        self._avgdl_docs = 0  # how many chunks that avgdl was measured over
        self._written = (0, 0)  # chunks and tokens written by this object since then

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
        return None if f is None else _FilterBuilder(self._m, self._format).build(f)

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
            native = self.keyword_mode == "native"
            client = self._c()
            bm25: dict[str, Any] = {}
            with self._errors("connect"):
                created = False
                if not client.collection_exists(self.collection):
                    try:
                        client.create_collection(
                            self.collection,
                            vectors_config={VECTOR: m.VectorParams(size=space.dim,
                                                                   distance=distance)},
                            sparse_vectors_config={SPARSE: m.SparseVectorParams(
                                modifier=m.Modifier.IDF)} if native else None,
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
                    stored, sparse, fmt = space, native, FORMAT
                else:
                    stored, sparse, bm25, fmt = self._adopt(client, space)
            if native and not sparse:
                raise ConfigurationError(
                    f"{self._where} has no sparse {SPARSE!r} vector (it was made with "
                    "keyword='exact'): open it with keyword='exact', or copy its documents into "
                    "a new collection")
            if sparse and bm25.get("terms", TERM_IDS) != TERM_IDS:
                raise ConfigurationError(
                    f"{self._where} maps terms with {bm25.get('terms')!r}, this vecmem with "
                    f"{TERM_IDS!r}: open it with keyword='exact'")
            self.space, self._format = stored, fmt
            self.tokenizer = get_tokenizer(stored.tokenizer)
            self._sparse = sparse
            avgdl = bm25.get("avgdl")
            self._avgdl = float(avgdl) if isinstance(avgdl, (int, float)) and avgdl > 0 else None
            self._avgdl_docs = int(bm25.get("docs", 0)) if self._avgdl is not None else 0
            self._written = (0, 0)
            if not native:
                self._rebuild_keyword_index()
            return stored

    def _adopt(self, client: Any,
               space: EmbeddingSpace) -> tuple[EmbeddingSpace, bool, dict[str, Any], int]:
        """Check an existing collection against ``space``; returns the recorded space, whether
        the collection has the sparse BM25 vector, its recorded BM25 state and payload layout."""
        info = client.get_collection(self.collection)
        vectors = info.config.params.vectors
        params = vectors.get(VECTOR) if isinstance(vectors, dict) else None
        if params is None:
            raise ConfigurationError(
                f"{self._where} exists but has no vector named {VECTOR!r}: it was not made by "
                "vecmem; pick another collection name"
            )
        sparse = SPARSE in (info.config.params.sparse_vectors or {})
        meta = info.config.metadata or {}
        raw_bm25 = meta.get("vecmem_bm25")
        bm25 = json.loads(raw_bm25) if isinstance(raw_bm25, str) else {}
        raw = meta.get("vecmem_space")
        if isinstance(raw, str):
            fmt = meta.get("vecmem_format", 1)
            if not isinstance(fmt, int) or not 1 <= fmt <= FORMAT:
                raise ConfigurationError(
                    f"{self._where} has payload layout {fmt!r}; this vecmem reads layouts 1 to "
                    f"{FORMAT}: upgrade vecmem")
            stored = EmbeddingSpace.from_json(raw)
            stored.check_compatible(space, where=self._where)
            return stored, sparse, bm25, fmt
        if params.size != space.dim:
            raise DimensionMismatchError(
                f"{self._where} holds {params.size}-d vectors, this space has {space.dim}"
            )
        client.update_collection(
            self.collection, metadata={"vecmem_space": space.to_json(), "vecmem_format": FORMAT})
        return space, sparse, bm25, FORMAT

    # ----------------------------------------------------------------- sparse BM25 vectors
    @property
    def avgdl(self) -> float | None:
        """The mean chunk length (in tokens) the sparse BM25 values are normalised with; ``None``
        before the first write with any token, or when the collection has no sparse vector."""
        return self._avgdl

    def _record_avgdl(self, avgdl: float, docs: int) -> None:
        with self._errors("record avgdl"):
            self._c().update_collection(self.collection, metadata={"vecmem_bm25": json.dumps(
                {"avgdl": avgdl, "docs": docs, "terms": TERM_IDS})})
        self._avgdl, self._avgdl_docs, self._written = avgdl, docs, (0, 0)

    def _sparse_vectors(self, tokens: Sequence[Sequence[str]]) -> list[Any]:
        """The sparse BM25 vector of each chunk (``None`` for one without tokens); the first write
        with tokens measures avgdl (another client's may have been recorded since connect)."""
        space = self._require_space()
        if self._avgdl is None:
            with self._errors("read avgdl"):
                meta = self._c().get_collection(self.collection).config.metadata or {}
            raw = meta.get("vecmem_bm25")
            bm25 = json.loads(raw) if isinstance(raw, str) else {}
            if bm25.get("avgdl"):
                self._avgdl, self._avgdl_docs = float(bm25["avgdl"]), int(bm25.get("docs", 0))
            elif any(tokens):
                self._record_avgdl(sum(map(len, tokens)) / len(tokens), len(tokens))
        k1, b, _ = space.keyword_params()
        m, avgdl = self._m, self._avgdl
        out: list[Any] = []
        for t in tokens:
            if t and avgdl:
                ids, values = bm25_document(t, k1=k1, b=b, avgdl=avgdl)
                out.append(m.SparseVector(indices=ids, values=values))
            else:
                out.append(None)
        return out

    def _check_drift(self, tokens: Sequence[Sequence[str]]) -> None:
        """Re-measure avgdl (:meth:`reindex`) once the chunks written since it was measured have
        moved the estimated mean length more than ``AVGDL_DRIFT`` away from it."""
        if self._avgdl is None or not tokens:
            return
        n, total = self._written
        n, total = n + len(tokens), total + sum(map(len, tokens))
        self._written = (n, total)
        docs = self._avgdl_docs
        estimate = (docs * self._avgdl + total) / (docs + n)
        if abs(estimate - self._avgdl) > AVGDL_DRIFT * self._avgdl:
            self.reindex()

    def reindex(self) -> float | None:
        """Measure avgdl over every chunk now stored and rewrite every sparse BM25 vector with it
        (one scroll of the texts, then one update per 512 points). Runs by itself when the written
        chunks' mean length drifts (see the module docstring); call it after large deletes or a
        change of what the collection holds. Returns the new avgdl (``None`` if no chunk has a
        token). Not atomic: if it fails midway, some points keep the old normalisation until the
        next ``reindex()``."""
        space = self._require_space()
        if not self._sparse or self.tokenizer is None:
            raise ConfigurationError(
                f"{self._where} has no sparse BM25 vector to reindex (made with keyword='exact')")
        k1, b, _ = space.keyword_params()
        m = self._m
        with self._lock:
            rows = [(rec.id, self.tokenizer((rec.payload or {}).get("text", "")))
                    for rec in self._scroll(None, ["text"])]
            total = sum(len(t) for _, t in rows)
            if not total:
                return None
            avgdl = total / len(rows)
            points = []
            for pid, t in rows:
                if t:
                    ids, values = bm25_document(t, k1=k1, b=b, avgdl=avgdl)
                    points.append(m.PointVectors(id=pid, vector={
                        SPARSE: m.SparseVector(indices=ids, values=values)}))
            for i in range(0, len(points), _BATCH):
                with self._errors("reindex"):
                    self._c().update_vectors(self.collection, points[i : i + _BATCH], wait=True)
            self._record_avgdl(avgdl, len(rows))
            return avgdl

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
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        self._kw = KeywordBeside(k1=k1, b=b, epsilon=eps, tokenizer=self.tokenizer)
        self._kw.add([r[1] for r in rows], [self.tokenizer(r[2]) for r in rows])
        self._doc_of, self._chunks_of = {}, {}
        for _, cid, _, doc in rows:
            self._doc_of[cid] = doc
            self._chunks_of.setdefault(doc, set()).add(cid)
        self._next_seq = (rows[-1][0] + 1) if rows else 0
        self._stale = False

    def _index_written(self, chunks: Sequence[Chunk], deleted: Sequence[str],
                       tokens: Sequence[Sequence[str]] | None = None) -> None:
        if self._kw is None:
            raise ConfigurationError("the store is used before connect(space)")
        self._kw.write(chunks, deleted, tokens)
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

    # ----------------------------------------------------------------- writes
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        space = self._require_space()
        chunks = list(chunks)
        v = validate_batch(chunks, vectors, space.dim)
        written = {c.id for c in chunks}
        deletes = [i for i in dict.fromkeys(delete_ids) if i not in written]
        exact = self.keyword_mode == "exact"
        m = self._m
        with self._lock:
            if self.tokenizer is None:
                raise ConfigurationError("the store is used before connect(space)")
            tokens = [self.tokenizer(c.text) for c in chunks] if (exact or self._sparse) else None
            sparse = self._sparse_vectors(tokens) if self._sparse and tokens else None
            # write order for the exact index (native mode never scans, so it takes the clock)
            seq = self._next_seq if exact else max(self._next_seq, time.time_ns())
            self._next_seq = seq + len(chunks)
            points = []
            for i, c in enumerate(chunks):
                vec: dict[str, Any] = {VECTOR: v[i].tolist()}
                if sparse is not None and sparse[i] is not None:
                    vec[SPARSE] = sparse[i]
                points.append(m.PointStruct(id=point_id(c.id), vector=vec, payload={
                    "chunk_id": c.id, "document_id": c.document_id, "position": c.position,
                    "text": c.text, "content_hash": c.content_hash,
                    "metadata": dict(c.metadata), "seq": seq + i,
                    **_typed(c.metadata, self._format),
                }))
            if not points and not deletes:
                return
            self._stale = exact  # until the write and the index update both succeeded
            # one request per _BATCH points keeps a server under its request-size limit (32 MiB);
            # local mode takes the whole write in one call
            step = _BATCH if self.url is not None else max(1, len(points))
            if not deletes:  # a plain upsert (local mode validates batch operations twice)
                for i in range(0, len(points), step):
                    with self._errors("upsert"):
                        self._c().upsert(self.collection, points[i : i + step], wait=True)
            else:
                ops: list[Any] = [m.UpsertOperation(upsert=m.PointsList(points=points[i : i + step]))
                                  for i in range(0, len(points), step)]
                ops.append(m.DeleteOperation(delete=m.PointIdsList(
                    points=[point_id(i) for i in deletes])))
                per_request = 1 if self.url is not None else len(ops)
                for i in range(0, len(ops), per_request):
                    with self._errors("upsert"):
                        self._c().batch_update_points(self.collection, ops[i : i + per_request],
                                                      wait=True)
            if exact:
                self._index_written(chunks, deletes, tokens)
                self._stale = False
            if sparse is not None and tokens:
                self._check_drift(tokens)

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")
        self._require_space()
        exact = self.keyword_mode == "exact"
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
            self._stale = exact
            with self._errors("delete"):
                self._c().delete(self.collection, m.PointIdsList(points=list(doomed)), wait=True)
            if exact:
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

    def _sparse_query(self, text: str) -> Any:
        """The sparse query vector of ``text`` (``None`` when it has no token)."""
        if self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        ids, counts = bm25_query(self.tokenizer(text))
        return self._m.SparseVector(indices=ids, values=counts) if ids else None

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        self._require_space()
        if self.keyword_mode == "native":
            sq = self._sparse_query(text)
            if sq is None:
                return []
            with self._errors("keyword query"):
                res = self._c().query_points(self.collection, query=sq, using=SPARSE, limit=k,
                                             query_filter=self._filter(filter),
                                             with_payload=_CHUNK_FIELDS)
            return [Scored(self._chunk(p.payload), float(p.score)) for p in res.points]
        with self._lock:
            if self._stale:
                self._rebuild_keyword_index()
            if self._kw is None or self.tokenizer is None:
                raise ConfigurationError("the store is used before connect(space)")
            flt = self._filter(filter)
            # widening by ids is cheap on a server (indexed); local mode scans every point per
            # scroll, so there one scan for the matching ids comes right after the first try
            found = self._kw.search(
                self.tokenizer(text), k,
                lambda ids, filtered: self._fetch(ids, flt if filtered else None),
                filtered=flt is not None, widen_to=4096 if self.url is not None else 0,
                matching=lambda: [r.payload["chunk_id"] for r in self._scroll(flt, ["chunk_id"])])
            return [Scored(c, x) for _, c, x in found]

    def both_legs(self, vector: np.ndarray, text: str, *, k: int,
                  filter: Filter | None = None) -> tuple[list[Scored], list[Scored]]:
        """The best ``k`` of each leg; the facade fuses them. Native mode: one request
        (``query_batch_points``: the dense and the sparse query, each with the filter); exact
        mode: a vector query and the BM25 index beside the collection."""
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        q = validate_query_vector(vector, self._require_space().dim)
        if self.keyword_mode == "exact":
            return self.query(q, k=k, filter=filter), self.keyword(text, k=k, filter=filter)
        m, flt = self._m, self._filter(filter)
        requests = [m.QueryRequest(query=q.tolist(), using=VECTOR, limit=k, filter=flt,
                                   with_payload=_CHUNK_FIELDS)]
        sq = self._sparse_query(text)
        if sq is not None:
            requests.append(m.QueryRequest(query=sq, using=SPARSE, limit=k, filter=flt,
                                           with_payload=_CHUNK_FIELDS))
        with self._errors("hybrid query"):
            res = self._c().query_batch_points(self.collection, requests)
        legs = [[Scored(self._chunk(p.payload), float(p.score)) for p in r.points] for r in res]
        return legs[0], legs[1] if len(legs) > 1 else []

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

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Up to ``limit`` ids greater than ``after``, ascending. Qdrant orders points by its
        own point ids (hashes of ours), so this scrolls every chunk id and sorts them."""
        self._require_space()
        ids = [r.payload["chunk_id"] for r in self._scroll(None, ["chunk_id"])]
        return sorted(i for i in ids if after is None or i > after)[:limit]

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
        if self.url is None and self.keyword_mode == "exact":
            # local mode has one client: the id map is complete, and a
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
            self._avgdl, self._avgdl_docs, self._written = None, 0, (0, 0)

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
    ``qdrant+http://host:6333``, ``qdrant+https://host`` ; query:
    ``?collection=NAME&api_key=KEY&keyword=native|exact``.
    """
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"collection", "api_key", "keyword"}
    if unknown:
        raise ConfigurationError(f"unknown Qdrant URL parameters: {sorted(unknown)}")
    collection = query.get("collection", "vecmem")
    keyword: Any = query.get("keyword", "native")
    scheme = parts.scheme.lower()
    if scheme in ("qdrant+http", "qdrant+https"):
        if not parts.netloc:
            raise ConfigurationError(f"Qdrant URL {url!r} has no host")
        server = f"{scheme.split('+')[1]}://{parts.netloc}{parts.path.rstrip('/')}"
        return Qdrant(url=server, api_key=query.get("api_key"), collection=collection,
                      keyword=keyword)
    if scheme != "qdrant":
        raise ConfigurationError(f"not a Qdrant URL: {url!r}")
    rest = unquote(parts.netloc + parts.path)
    if rest == ":memory:":
        return Qdrant(":memory:", collection=collection, keyword=keyword)
    if not rest:
        raise ConfigurationError(f"Qdrant URL {url!r} names no folder; use qdrant://:memory:")
    return Qdrant(path=rest, collection=collection, keyword=keyword)


__all__ = ["KEYWORD_MODES", "Qdrant", "bm25_document", "bm25_query", "from_url", "point_id",
           "term_id"]
