"""Qdrant adapter: dense vectors, filters and (by default) the BM25 leg in Qdrant.

``Qdrant(":memory:")`` and ``Qdrant(path="./qdrant")`` run qdrant-client's local mode in-process,
``Qdrant(url="http://host:6333")`` talks to a server (>= 1.16, for collection metadata). One
collection per store with one named dense vector ``dense`` (cosine or dot); the embedding space
is recorded in the collection metadata.

Layout. A chunk is a point with id ``uuid5(chunk id)``; its payload holds the chunk (``chunk_id``,
``document_id``, ``position``, ``text``, ``content_hash``, ``metadata`` as given) and a typed copy
of the metadata at the top level: ``vm_s_F``, ``vm_n_F``, ``vm_b_F`` its strings, numbers and
booleans, ``vm_ls_F``/``vm_ln_F``/``vm_lb_F`` those in a list, ``vm_keys`` the names present
(``F`` hex-encoded unless a plain identifier). Types apart keep the filter semantics exact: Qdrant
matches any element of an array and, in local mode, compares ``True == 1``. Layout 1 (before
``vecmem_format`` 2) nests the keys under ``vm``; it is still read and written, but local mode
pays for each level of nesting (a filtered query at 100k points: 1.25x).

``keyword="native"`` (the default): a sparse vector ``bm25`` with ``Modifier.IDF`` holds each
chunk's BM25 term-frequency part ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))`` over
vecmem's tokens, the query vector counts each query token, so Qdrant scores ``sum of idf *
tf-part`` with the filter before top-k; :meth:`Qdrant.both_legs` sends both legs in one request
for the facade to fuse. What differs from rank_bm25's scores:

* idf is Lucene's ``ln(1 + (N - df + 0.5) / (df + 0.5))``, without rank_bm25's ``epsilon * mean
  idf`` floor; a Qdrant server counts deleted points in N and df until its optimiser drops them.
* ``avgdl`` is measured on the first write, recorded (``vecmem_bm25``) and re-measured over every
  chunk by :meth:`Qdrant.reindex` when the mean length of this object's writes drifts more than
  5 % from it; deletes and other clients' writes do not count: call ``reindex()`` after those.
* Terms are hashed (:mod:`vecmem.stores._sparse`): about V^2 / 2^33 pairs of V terms merge.

On SciFact test (MiniLM, default fusion) native hybrid nDCG@10 is 0.7213 against the exact
reference's 0.7237. ``keyword="exact"`` keeps rank_bm25's scores in the kit's
:class:`~vecmem.stores._beside.KeywordBeside`, built on connect from the points' texts in write
order (payload ``seq``) and filtered by Qdrant (``HasId`` + filter scrolls of the best candidates,
widening; past 4,096 candidates, at once in local mode, one filtered scroll of ids): choose it for
those scores, or in local mode at scale, where a sparse query is scored in Python over every point
(about a second at 100k chunks, see BENCHMARKS.md). On a server an exact-mode write records a
token ``vecmem_gen`` in the collection metadata and a keyword search reads it, so other exact-mode
clients' writes reach the index at once, native-mode clients' on :meth:`Qdrant.refresh`. A native
collection opens in exact mode (its sparse vectors still written); an exact one cannot open in
native mode. No transactions: an upsert with ``delete_ids`` is one call in local mode and one
request per 512 points to a server; after a failure the exact index is rebuilt.

>>> store = Qdrant(":memory:")                          # doctest: +SKIP
>>> VectorMemory(store=Qdrant(url="http://localhost:6333", collection="kb"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from vecmem._deps import require
from vecmem.errors import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    DimensionMismatchError,
    NotFoundError,
    StoreLockedError,
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.filters import Filter, Translator
from vecmem.stores import kit
from vecmem.stores._sparse import bm25_document, bm25_query, term_id
from vecmem.stores.base import Capabilities
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


@lru_cache(maxsize=65536)
def _enc(field: str) -> str:
    """A metadata field name as a safe payload key: itself if a plain identifier, else
    ``_`` + hex of its UTF-8 (the two forms cannot collide: identifiers start with a letter)."""
    return field if _IDENT.match(field) else "_" + field.encode("utf-8").hex()


def _kind(v: Any) -> str:
    """Which typed copy holds the scalar ``v``: ``b``, ``n`` (finite) or ``s`` (``""``: none)."""
    if isinstance(v, bool):
        return "b"
    if isinstance(v, (int, float)) and math.isfinite(v):
        return "n"
    return "s" if isinstance(v, str) else ""


def _key(fmt: int, kind: str, field: str | None = None) -> str:
    """The payload key of a typed copy: ``kind`` s/n/b/ls/ln/lb of ``field`` (or ``keys``)."""
    if field is None:
        return "vm_keys" if fmt >= 2 else "vm.keys"
    return f"vm_{kind}_{_enc(field)}" if fmt >= 2 else f"vm.{kind}.{_enc(field)}"


def _typed(meta: Any, fmt: int) -> dict[str, Any]:
    """The payload keys holding the metadata split by type (see the module docstring)."""
    out: dict[str, Any] = {_key(2, "keys"): list(meta)}
    for field, v in meta.items():
        if isinstance(v, (list, tuple)):
            for kind in "bns":
                items = [x for x in v if _kind(x) == kind]
                if items:
                    out[_key(2, "l" + kind, field)] = items
        elif _kind(v):
            out[_key(2, _kind(v), field)] = v
    if fmt >= 2:
        return out
    nested: dict[str, Any] = {"keys": out.pop("vm_keys")}  # layout 1: {"vm": {kind: {F: v}}}
    for key, v in out.items():
        kind, e = key[3:].split("_", 1)
        nested.setdefault(kind, {})[e] = v
    return {"vm": nested}


class _FilterBuilder(Translator[Any]):
    """Translates a parsed vecmem filter into a ``models.Filter`` with the reference semantics."""

    def __init__(self, models: Any, fmt: int) -> None:
        self.m, self.fmt = models, fmt

    def build(self, f: Filter) -> Any:
        out = self(f)
        return out if isinstance(out, self.m.Filter) else self.m.Filter(must=[out])

    def and_(self, items: list[Any]) -> Any:
        return self.m.Filter(must=items)

    def or_(self, items: list[Any]) -> Any:
        return self.m.Filter(should=items)

    def not_(self, item: Any) -> Any:
        return self.m.Filter(must_not=[item])

    def _number(self, key: str, **bounds: float) -> Any:
        if not all(map(math.isfinite, bounds.values())):
            raise UnsupportedFilterError(f"Qdrant filters cannot compare with {bounds}")
        return self.m.FieldCondition(key=key, range=self.m.Range(**bounds))

    def eq(self, field: str, value: Any, lst: str = "") -> Any:
        """``field`` equals ``value`` (``lst="l"``: an element of the list in ``field`` does)."""
        if not isinstance(value, (bool, str)):
            return self._number(_key(self.fmt, lst + "n", field), gte=value, lte=value)
        kind = lst + ("b" if isinstance(value, bool) else "s")
        return self.m.FieldCondition(
            key=_key(self.fmt, kind, field), match=self.m.MatchValue(value=value)
        )

    def in_(self, field: str, values: Sequence[Any]) -> Any:
        m, strings = self.m, [v for v in values if isinstance(v, str)]
        parts = [self.eq(field, v) for v in values if not isinstance(v, str)]
        if strings:
            parts.append(
                m.FieldCondition(key=_key(self.fmt, "s", field), match=m.MatchAny(any=strings))
            )
        if not parts:  # chunk_id is always a non-empty string: this matches no point
            return m.IsEmptyCondition(is_empty=m.PayloadField(key="chunk_id"))
        return parts[0] if len(parts) == 1 else m.Filter(should=parts)

    def exists(self, field: str) -> Any:
        return self.m.FieldCondition(
            key=_key(self.fmt, "keys"), match=self.m.MatchValue(value=field)
        )

    def contains(self, field: str, value: Any) -> Any:
        return self.eq(field, value, "l")

    def compare(self, field: str, op: str, value: float) -> Any:
        return self._number(_key(self.fmt, "n", field), **{op: value})


class Qdrant(kit.BesideKit):
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
    switch_refusal = (
        "Qdrant's local mode lets one client open a folder at a time, so the new space cannot "
        "be built beside the old one while the old one answers; against a server, collection "
        "aliases would give the atomic switch, but vecmem has no tested switch for it yet"
    )
    distances = ("cosine", "dot")

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
        super().__init__()
        if sum(x is not None for x in (location, path, url)) != 1:
            raise ConfigurationError(
                "Qdrant needs exactly one of location=':memory:', path= or url="
            )
        if location is not None and location != ":memory:":
            if not location.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"location must be ':memory:' or an http(s) URL, got "
                    f"{location!r}; use path= for a folder"
                )
            url, location = location, None
        if not isinstance(collection, str) or not collection:
            raise ConfigurationError("collection must be a non-empty string")
        if keyword not in KEYWORD_MODES:
            raise ConfigurationError(
                f"keyword must be 'native' (BM25 as sparse vectors in Qdrant) or 'exact' "
                f"(rank_bm25 beside the collection), not {keyword!r}"
            )
        self.location, self.url = location, url
        self.path = os.fspath(path) if path is not None else None
        self.api_key, self.collection, self.timeout = api_key, collection, timeout
        self.keyword_mode: KeywordMode = keyword
        native = keyword == "native"
        self.capabilities = Capabilities(
            persistent=location is None,
            native_keyword=native,
            both_legs=native,
            concurrent_writers=native and url is not None,
        )
        # local mode is not thread-safe: one call at a time; a server client is
        self._io: Any = threading.RLock() if url is None else nullcontext()
        self._format = FORMAT  # the payload layout of the collection (set on connect)
        self._doc_of: dict[str, str] | None = None  # local mode: chunk id -> document id
        self._next_seq = 0  # the next write's ``seq`` (write order, for rebuilding the index)
        # the sparse BM25 vector (native collections, whatever the mode)
        self._sparse = False  # the collection has it: every write fills it
        self._avgdl: float | None = None  # the avgdl its values are normalised with
        self._docs, self._total = 0, 0.0  # chunks, tokens it was measured over + written since

    # ----------------------------------------------------------------- kit hooks
    @property
    def where(self) -> str:
        return f"Qdrant collection {self.collection!r} at {self.url or self.path or ':memory:'}"

    @property
    def _m(self) -> Any:
        return require("qdrant_client.models", "qdrant")

    def _open(self) -> Any:
        qc = require("qdrant_client", "qdrant")
        if self.url is not None:
            return qc.QdrantClient(
                url=self.url, api_key=self.api_key, timeout=self.timeout, check_compatibility=False
            )
        return qc.QdrantClient(path=self.path) if self.path else qc.QdrantClient(":memory:")

    def _release(self) -> None:
        self._client.close()

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        with self._io, super()._errors(what):
            yield

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        http = require("qdrant_client.http.exceptions", "qdrant")
        if isinstance(exc, http.UnexpectedResponse):
            return {404: NotFoundError, 401: AuthenticationError, 403: AuthenticationError}.get(
                exc.status_code, BackendError
            )
        if isinstance(exc, (http.ResponseHandlingException, OSError)):
            return BackendUnavailableError
        if isinstance(exc, RuntimeError) and "already accessed" in str(exc):
            return StoreLockedError  # local mode: one client per folder
        if isinstance(exc, ValueError) and "not found" in str(exc):
            return NotFoundError  # local mode's missing collection
        return BackendError

    def _meta(self) -> tuple[Any, dict[str, Any]]:
        """The collection's config and its recorded ``vecmem_bm25`` state."""
        with self._errors("read the collection"):
            config = self._c().get_collection(self.collection).config
        raw = (config.metadata or {}).get("vecmem_bm25")
        return config, json.loads(raw) if isinstance(raw, str) else {}

    def _read_space(self) -> EmbeddingSpace | None:
        with self._errors("read the collection"):
            if not self._client.collection_exists(self.collection):
                return None
        raw = (self._meta()[0].metadata or {}).get("vecmem_space")
        return EmbeddingSpace.from_json(raw) if isinstance(raw, str) else None

    def _create(self, space: EmbeddingSpace) -> EmbeddingSpace | None:
        """Create the collection, or adopt one made by another client meanwhile or without
        vecmem (its ``dense`` vector checked, the space recorded)."""
        m, client = self._m, self._client
        record = {"vecmem_space": space.to_json(), "vecmem_format": FORMAT}
        distance = {"cosine": m.Distance.COSINE, "dot": m.Distance.DOT}[space.distance]
        with self._errors("create the collection"):
            if not client.collection_exists(self.collection):
                try:
                    client.create_collection(
                        self.collection,
                        vectors_config={VECTOR: m.VectorParams(size=space.dim, distance=distance)},
                        sparse_vectors_config={
                            SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)
                        }
                        if self.keyword_mode == "native"
                        else None,
                        metadata=record,
                    )
                except Exception:
                    if not client.collection_exists(self.collection):
                        raise
                else:
                    for key in ("chunk_id", "document_id") if self.url is not None else ():
                        client.create_payload_index(
                            self.collection, key, m.PayloadSchemaType.KEYWORD
                        )
                    return None
            stored = self._read_space()
            if stored is not None:  # another client created it first
                return self._adopt(stored, space)
            vectors = self._meta()[0].params.vectors
            params = vectors.get(VECTOR) if isinstance(vectors, dict) else None
            if params is None:
                raise ConfigurationError(
                    f"{self.where} exists but has no vector named {VECTOR!r}:"
                    " it was not made by vecmem; pick another collection name"
                )
            if params.size != space.dim:
                raise DimensionMismatchError(
                    f"{self.where} holds {params.size}-d vectors, this space has {space.dim}"
                )
            client.update_collection(self.collection, metadata=record)
        return None

    def _connected(self, space: EmbeddingSpace) -> None:
        config, bm25 = self._meta()
        fmt = (config.metadata or {}).get("vecmem_format", 1)
        if not isinstance(fmt, int) or not 1 <= fmt <= FORMAT:
            raise ConfigurationError(
                f"{self.where} has payload layout {fmt!r}; this vecmem "
                f"reads layouts 1 to {FORMAT}: upgrade vecmem"
            )
        self._sparse = SPARSE in (config.params.sparse_vectors or {})
        if self.keyword_mode == "native" and not self._sparse:
            raise ConfigurationError(
                f"{self.where} has no sparse {SPARSE!r} vector (it was made with "
                "keyword='exact'): open it with keyword='exact', or copy its documents into "
                "a new collection"
            )
        if self._sparse and bm25.get("terms", TERM_IDS) != TERM_IDS:
            raise ConfigurationError(
                f"{self.where} maps terms with {bm25.get('terms')!r}, this "
                f"vecmem with {TERM_IDS!r}: open it with keyword='exact'"
            )
        self._format = fmt
        self._set_avgdl(bm25)
        self._doc_of = None
        self.refresh()

    def _filter(self, f: Filter | None) -> Any:
        return None if f is None else _FilterBuilder(self._m, self._format).build(f)

    # ----------------------------------------------------------------- sparse BM25 vectors
    @property
    def avgdl(self) -> float | None:
        """The mean chunk length (in tokens) the sparse BM25 values are normalised with; ``None``
        before the first write with any token, or when the collection has no sparse vector."""
        return self._avgdl

    def _set_avgdl(self, bm25: dict[str, Any]) -> None:
        avgdl = bm25.get("avgdl")
        self._avgdl = float(avgdl) if isinstance(avgdl, (int, float)) and avgdl > 0 else None
        self._docs = int(bm25.get("docs", 0)) if self._avgdl is not None else 0
        self._total = self._docs * (self._avgdl or 0.0)

    def _record_avgdl(self, avgdl: float, docs: int) -> None:
        with self._errors("record avgdl"):
            self._c().update_collection(
                self.collection,
                metadata={
                    "vecmem_bm25": json.dumps({"avgdl": avgdl, "docs": docs, "terms": TERM_IDS})
                },
            )
        self._set_avgdl({"avgdl": avgdl, "docs": docs})

    def _sparse_vectors(self, tokens: Sequence[Sequence[str]], avgdl: float = 0.0) -> list[Any]:
        """The sparse BM25 vector of each chunk (``None`` for one without tokens), normalised with
        ``avgdl`` or else the collection's, which the first write with tokens measures (another
        client's may have been recorded since connect)."""
        if not avgdl and self._avgdl is None:
            self._set_avgdl(self._meta()[1])
            if self._avgdl is None and any(tokens):
                self._record_avgdl(sum(map(len, tokens)) / len(tokens), len(tokens))
        k1, b, _ = self._require_space().keyword_params()
        avgdl = avgdl or self._avgdl or 0.0
        out = []
        for t in tokens:
            ids, values = bm25_document(t, k1=k1, b=b, avgdl=avgdl) if t and avgdl else ([], [])
            out.append(self._m.SparseVector(indices=ids, values=values) if ids else None)
        return out

    def _check_drift(self, tokens: Sequence[Sequence[str]]) -> None:
        """Re-measure avgdl (:meth:`reindex`) once the chunks written since it was measured have
        moved the estimated mean length more than ``AVGDL_DRIFT`` away from it."""
        if self._avgdl is None or not tokens:
            return
        self._docs += len(tokens)
        self._total += sum(map(len, tokens))
        if abs(self._total / self._docs - self._avgdl) > AVGDL_DRIFT * self._avgdl:
            self.reindex()

    def reindex(self) -> float | None:
        """Measure avgdl over every chunk now stored and rewrite every sparse BM25 vector with it
        (one scroll of the texts, then one update per 512 points). Runs by itself when the written
        chunks' mean length drifts (see the module docstring); call it after large deletes or a
        change of what the collection holds. Returns the new avgdl (``None`` if no chunk has a
        token). Not atomic: if it fails midway, some points keep the old normalisation until the
        next ``reindex()``."""
        self._require_space()
        if not self._sparse:
            raise ConfigurationError(
                f"{self.where} has no sparse BM25 vector to reindex (made with keyword='exact')"
            )
        with self._lock:
            rows = [
                (rec.id, self._tokens((rec.payload or {}).get("text", "")))
                for rec in self._scroll(None, ["text"])
            ]
            total = sum(len(t) for _, t in rows)
            if not total:
                return None
            avgdl = total / len(rows)
            vectors = self._sparse_vectors([t for _, t in rows], avgdl)
            points = [
                self._m.PointVectors(id=pid, vector={SPARSE: v})
                for (pid, _), v in zip(rows, vectors)
                if v is not None
            ]
            for i in range(0, len(points), _BATCH):
                with self._errors("reindex"):
                    self._c().update_vectors(self.collection, points[i : i + _BATCH], wait=True)
            self._record_avgdl(avgdl, len(rows))
            return avgdl

    # ----------------------------------------------------------------- exact keyword index
    def _read_gen(self) -> str | None:
        """The ``vecmem_gen`` token the last exact-mode write recorded on the server; local mode
        has no other client and native mode no index, so neither asks."""
        if self.url is None or self.keyword_mode == "native":
            return self._gen
        return (self._meta()[0].metadata or {}).get("vecmem_gen")

    def _write_gen(self, gen: str) -> None:
        if self.url is not None and self.keyword_mode == "exact":
            with self._errors("record the write"):
                self._c().update_collection(self.collection, metadata={"vecmem_gen": gen})

    def _texts(self) -> Iterator[tuple[str, str]]:
        """Every chunk's id and text in write order (``seq``); the map of the chunks' documents
        is read on the way."""
        rows = sorted(
            (int(p.get("seq", 0)), p["chunk_id"], p.get("text", ""), p.get("document_id", ""))
            for p in (
                r.payload or {}
                for r in self._scroll(None, ["chunk_id", "document_id", "text", "seq"])
            )
            if "chunk_id" in p
        )
        self._doc_of = {cid: doc for _, cid, _, doc in rows}
        return ((cid, text) for _, cid, text, _ in rows)

    def refresh(self) -> None:
        """Exact mode: rebuild the keyword index from the collection now (after native-mode
        clients' writes). Native mode keeps no index."""
        if self.keyword_mode == "exact":
            super().refresh()

    @contextmanager
    def _writing(self, chunks: Sequence[Chunk] = (), deleted: Sequence[str] = ()) -> Iterator[None]:
        """The kit's write wrapper; the map of the chunks' documents follows a write that
        succeeded (a failed one drops it: it is read again when needed)."""
        docs, self._doc_of = self._doc_of, None
        with super()._writing(chunks, deleted):
            yield
        if docs is not None:
            for cid in deleted:
                docs.pop(cid, None)
            docs.update((c.id, c.document_id) for c in chunks)
            self._doc_of = docs

    # ----------------------------------------------------------------- writes
    def _write_chunks(self, chunks: list[Chunk], v: np.ndarray, deletes: list[str]) -> None:
        m = self._m
        with self._lock, self._writing(chunks, deletes):
            tokens = [self._tokens(c.text) for c in chunks] if self._sparse else None
            sparse = self._sparse_vectors(tokens) if tokens else None
            seq = max(self._next_seq, time.time_ns())  # clients on a server share the clock
            self._next_seq = seq + len(chunks)
            points = []
            for i, c in enumerate(chunks):
                vec: dict[str, Any] = {VECTOR: v[i].tolist()}
                if sparse is not None and sparse[i] is not None:
                    vec[SPARSE] = sparse[i]
                points.append(
                    m.PointStruct(
                        id=point_id(c.id),
                        vector=vec,
                        payload={
                            "chunk_id": c.id,
                            "document_id": c.document_id,
                            "position": c.position,
                            "text": c.text,
                            "content_hash": c.content_hash,
                            "metadata": dict(c.metadata),
                            "seq": seq + i,
                            **_typed(c.metadata, self._format),
                        },
                    )
                )
            # one request per _BATCH points keeps a server under its request-size limit (32 MiB);
            # local mode takes the whole write in one call
            step = _BATCH if self.url is not None else max(1, len(points))
            if not deletes:  # a plain upsert (local mode validates batch operations twice)
                for i in range(0, len(points), step):
                    with self._errors("upsert"):
                        self._c().upsert(self.collection, points[i : i + step], wait=True)
            else:
                ops: list[Any] = [
                    m.UpsertOperation(upsert=m.PointsList(points=points[i : i + step]))
                    for i in range(0, len(points), step)
                ]
                ops.append(
                    m.DeleteOperation(delete=m.PointIdsList(points=[point_id(i) for i in deletes]))
                )
                per_request = 1 if self.url is not None else len(ops)
                for i in range(0, len(ops), per_request):
                    with self._errors("upsert"):
                        self._c().batch_update_points(
                            self.collection, ops[i : i + per_request], wait=True
                        )
            if tokens:
                self._check_drift(tokens)

    def _existing(self, ids: list[str]) -> Iterable[str]:
        return (rec.payload["chunk_id"] for rec in self._retrieve(ids, ["chunk_id"]))

    def _matching(self, filter: Filter) -> Iterable[str]:
        return self._ids(self._filter(filter))

    def _delete_ids(self, ids: list[str]) -> None:
        with self._errors("delete"):
            points = self._m.PointIdsList(points=[point_id(i) for i in ids])
            self._c().delete(self.collection, points, wait=True)

    # ----------------------------------------------------------------- reads
    def _scroll(self, flt: Any, payload: Any, page: int = 10_000) -> Iterator[Any]:
        offset = None
        while True:
            with self._errors("scroll"):
                recs, offset = self._c().scroll(
                    self.collection,
                    scroll_filter=flt,
                    limit=page,
                    offset=offset,
                    with_payload=payload,
                    with_vectors=False,
                )
            yield from recs
            if offset is None:
                return

    def _ids(self, flt: Any) -> Iterator[str]:
        """The chunk ids of the points that pass ``flt`` (all: ``None``)."""
        return (rec.payload["chunk_id"] for rec in self._scroll(flt, ["chunk_id"]))

    def _retrieve(self, ids: Sequence[str], payload: Any, vectors: bool = False) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(ids), _BATCH * 4):
            with self._errors("retrieve"):
                out += self._c().retrieve(
                    self.collection,
                    [point_id(x) for x in ids[i : i + _BATCH * 4]],
                    with_payload=payload,
                    with_vectors=[VECTOR] if vectors else False,
                )
        return out

    def _query(self, what: str, query: Any, using: str, k: int, flt: Any) -> list[Scored]:
        with self._errors(what):
            res = self._c().query_points(
                self.collection,
                query=query,
                using=using,
                limit=k,
                query_filter=flt,
                with_payload=_CHUNK_FIELDS,
            )
        return _scored(res)

    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        q = self._check_query(vector, k)
        return self._query("vector query", q.tolist(), VECTOR, k, self._filter(filter))

    def _sparse_query(self, text: str) -> Any:
        """The sparse query vector of ``text`` (``None`` when it has no token)."""
        ids, counts = bm25_query(self._tokens(text))
        return self._m.SparseVector(indices=ids, values=counts) if ids else None

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        self._check_k(k)
        self._require_space()
        flt = self._filter(filter)
        if self.keyword_mode == "native":
            sq = self._sparse_query(text)
            return [] if sq is None else self._query("keyword query", sq, SPARSE, k, flt)
        with self._lock:
            kw = self._beside()
            # widening by ids is cheap on a server (indexed); local mode scans every point per
            # scroll, so there one scan for the matching ids comes right after the first try
            return self._keyword_search(
                kw,
                text,
                k,
                lambda ids, filtered: self._read_chunks(ids, flt if filtered else None),
                flt is not None,
                widen_to=4096 if self.url is not None else 0,
                matching=lambda: self._ids(flt),
            )

    def both_legs(
        self, vector: np.ndarray, text: str, *, k: int, filter: Filter | None = None
    ) -> tuple[list[Scored], list[Scored]]:
        """The best ``k`` of each leg; the facade fuses them. Native mode: one request
        (``query_batch_points``: the dense and the sparse query, each with the filter); exact
        mode: a vector query and the BM25 index beside the collection."""
        q = self._check_query(vector, k)
        if self.keyword_mode == "exact":
            return self.query(q, k=k, filter=filter), self.keyword(text, k=k, filter=filter)
        m, flt, sq = self._m, self._filter(filter), self._sparse_query(text)
        requests = [
            m.QueryRequest(
                query=query, using=using, limit=k, filter=flt, with_payload=_CHUNK_FIELDS
            )
            for query, using in ((q.tolist(), VECTOR), (sq, SPARSE))
            if query is not None
        ]
        with self._errors("hybrid query"):
            legs = [_scored(r) for r in self._c().query_batch_points(self.collection, requests)]
        return legs[0], legs[1] if len(legs) > 1 else []

    def _read_chunks(self, ids: list[str], flt: Any = None) -> dict[str, Chunk]:
        """Chunks of ``ids`` that pass ``flt`` (all of them when it is ``None``)."""
        if flt is None:
            recs = self._retrieve(ids, _CHUNK_FIELDS)
        else:
            m, recs = self._m, []
            for i in range(0, len(ids), 4096):
                part = [point_id(x) for x in ids[i : i + 4096]]
                both = m.Filter(must=[m.HasIdCondition(has_id=part), flt])
                recs += list(self._scroll(both, _CHUNK_FIELDS, page=len(part)))
        return {r.payload["chunk_id"]: _chunk(r.payload) for r in recs}

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Qdrant orders points by its own ids (hashes of ours): this scrolls every chunk id
        and sorts them."""
        self._require_space()
        return kit.id_page(self._ids(None), after, limit)

    def _read_vectors(self, ids: list[str]) -> dict[str, Any]:
        recs = self._retrieve(ids, ["chunk_id"], vectors=True)
        return {r.payload["chunk_id"]: r.vector[VECTOR] for r in recs}

    def _read_documents(self, docs: list[str]) -> Iterable[Chunk]:
        if self.url is None:
            # local mode has one client, so a map of every chunk's document read once stays
            # complete; a retrieve by id beats its Python scan of every payload (20k: 16 ms, 1.6 s)
            with self._lock:
                if self._doc_of is None:
                    recs = self._scroll(None, ["chunk_id", "document_id"])
                    self._doc_of = {r.payload["chunk_id"]: r.payload["document_id"] for r in recs}
                wanted = set(docs)
                ids = [i for i, d in self._doc_of.items() if d in wanted]
                return self._read_chunks(ids).values()
        m = self._m
        flt = m.Filter(must=[m.FieldCondition(key="document_id", match=m.MatchAny(any=docs))])
        return (_chunk(rec.payload) for rec in self._scroll(flt, _CHUNK_FIELDS))

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        flt = self._filter(filter)
        with self._errors("count"):
            return int(self._c().count(self.collection, count_filter=flt, exact=True).count)

    def drop(self) -> None:
        """Delete the whole collection (its points and recorded space)."""
        with self._lock, self._errors("drop"):
            self._c().delete_collection(self.collection)
            self.space = None
            self._set_avgdl({})


def _chunk(payload: dict[str, Any]) -> Chunk:
    return Chunk(
        id=payload["chunk_id"],
        document_id=payload["document_id"],
        position=int(payload["position"]),
        text=payload["text"],
        metadata=payload.get("metadata") or {},
        content_hash=payload.get("content_hash", ""),
    )


def _scored(res: Any) -> list[Scored]:
    return [Scored(_chunk(p.payload), float(p.score)) for p in res.points]


def from_url(url: str) -> Qdrant:
    """``qdrant://:memory:``, ``qdrant:///abs/path``, ``qdrant://./rel/path``,
    ``qdrant+http://host:6333``, ``qdrant+https://host`` ; query:
    ``?collection=NAME&api_key=KEY&keyword=native|exact``.
    """
    u = kit.parse_url(
        url,
        schemes=("qdrant", "qdrant+http", "qdrant+https"),
        params=("collection", "api_key", "keyword"),
    )
    if not u.path:
        raise ConfigurationError(
            f"Qdrant URL {url!r} names no host or folder (qdrant://:memory: for one in memory)"
        )
    mode: Any = u.query.get("keyword", "native")  # checked by Qdrant
    target: dict[str, Any] = {"path": u.path}
    if u.scheme != "qdrant":
        server = f"{u.scheme.split('+')[1]}://{u.path.rstrip('/')}"
        target = {"url": server, "api_key": u.query.get("api_key")}
    elif u.path == ":memory:":
        target = {"location": ":memory:"}
    return Qdrant(**target, collection=u.query.get("collection", "vecmem"), keyword=mode)


__all__ = [
    "KEYWORD_MODES",
    "Qdrant",
    "bm25_document",
    "bm25_query",
    "from_url",
    "point_id",
    "term_id",
]
