"""Chroma adapter: dense vectors and filters in Chroma, exact BM25 beside them.

``ChromaDb(path=...)`` runs Chroma embedded (``PersistentClient``), ``ChromaDb()`` in memory
(``EphemeralClient``), ``ChromaDb(host=..., port=...)`` against a Chroma server (``HttpClient``).
One collection per store, cosine space, created with ``embedding_function=None``: vecmem always
passes the vectors, Chroma never embeds (its default model would be downloaded).

Layout (format 2). A chunk is a record: its id, its vector, its text as the document, and flat
metadata: ``_vm_doc`` (the document id, for ``get_by_document``), ``_vm_sig`` (the chunk's
metadata shape: its field names in order, each behind a type letter, as JSON) and a typed copy of
each field for filtering: ``n_F`` numbers (as floats), ``s_F`` strings, ``b_F`` booleans, ``l_F``
the scalar elements of a list as tagged strings (``s:x``, ``n:1``, ``b:1``; ``[""]`` if none).
The metadata is read back from the typed copy and the shape (ints stay ints, key order kept), the
position from the id (``document#position``), the content hash from the text; what cannot be
(null, nested values, -0.0, ints beyond 2**50, floats Chroma may not read back exactly, a custom
id or hash) is kept in ``_vm`` as JSON. Chroma (1.5) filters on stored floats exactly but reads
about 4% of them back one unit in the last place off (``123456789.12345679`` as
``123456789.1234568``; ints stored as floats from about 2**51 on): see :func:`_reads_back`.
Chroma reads every key back as one row per hit, so this keeps a query's reads close to a raw
collection's: two short keys more per chunk. Format 1 (``_vm`` JSON on every chunk, a ``_vm_keys``
list) is refused with a pointer to :meth:`ChromaDb.upgrade`.

Filters stay exact whatever Chroma does with mixed types: ``$eq`` never matches a list, booleans
are not numbers. ``$ne``/``$nin`` and negated ``$contains`` use Chroma's own operators, which match
records without the key (Chroma 1.x; probed once per store, and where a Chroma does not, absence
is read from the shapes as below). ``$exists`` and negated ranges need the chunks lacking a field:
they become ``_vm_sig $in [shapes]`` over the shapes stored, which a store reads with
``_vm_sig $nin [known]`` scans. After each such operation it reads the collection's generation
token (below): if a write came since its last scan, it scans again and, when that finds a new
shape, runs the operation again. ``$not`` is pushed down to the leaves (:mod:`._flat`). The
recorded :class:`~vecmem.types.EmbeddingSpace` lives in the collection metadata.

The keyword leg is a :class:`~vecmem.bm25.BM25Index` kept beside the collection (Chroma has no
BM25 equal to ``rank_bm25``): built from the documents on the first keyword search, kept in step
with every write made through this store, filtered by Chroma (the best BM25 candidates are checked
with ``get(ids=..., where=...)``, widening until ``k`` pass). Every write also stores a fresh
random token in the collection metadata (``vecmem_gen``); a store that finds a token it did not
write rebuilds its index, so writes by other clients reach it on the next keyword search. Limits:
a write by another client racing this store's own write by milliseconds can be missed until
:meth:`ChromaDb.refresh`, and a new metadata shape stored by another client's write still under
way (its records in, its token not yet) by a filter on presence at that instant; the rebuild
reads every document (seconds per 100k chunks). Numbers are
compared as 64-bit floats: exact for every number vecmem accepts (ints within ±2**53).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from hashlib import sha256
from typing import Any, TypeVar
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
    UnsupportedFilterError,
    VecmemError,
)
from vecmem.filters import Cond, Filter
from vecmem.stores import _flat as flat
from vecmem.stores._beside import KeywordBeside
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

FORMAT = 2
_DOC, _SIG, _EXTRA = "_vm_doc", "_vm_sig", "_vm"
_NAME = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9._-]{1,510})[a-zA-Z0-9]\Z")
_PAGE = 5000  # records per get() page
MAX_SHAPES = 2000  # distinct metadata shapes a shape-dependent filter may list
_EXACT = 2**50  # ints up to this magnitude read back exactly from Chroma's floats (measured)
_INCLUDE = ["documents", "metadatas", "distances"]
_Where = Any  # a Chroma where dict, or True (everything) / False (nothing)
_T = TypeVar("_T")
Shapes = Mapping[str, Mapping[str, str]]  # _vm_sig -> {field: type letter}


# --------------------------------------------------------------------------- metadata
def _float(v: float) -> float:
    """A number as a float; beyond the float range, an infinity of its sign."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _reads_back(v: float) -> bool:
    """Whether Chroma reads float ``v`` back exactly: an integer within ±2**50, or at most 15
    significant digits between 1e-5 and 1e15 (and not -0.0). Chroma 1.5 filters on the stored
    double exactly but reads some back one unit in the last place off; measured on 19,206
    floats (random digits 1-17, exponents -8..17): 740 came back off, none that passes this."""
    if v.is_integer():
        return abs(v) <= _EXACT and not (v == 0.0 and math.copysign(1.0, v) < 0.0)
    mantissa = repr(abs(v)).partition("e")[0]
    return len(mantissa.replace(".", "").strip("0")) <= 15 and 1e-5 <= abs(v) < 1e15


def _encode(c: Chunk) -> dict[str, Any]:
    """The Chroma metadata of a chunk (see the module docstring)."""
    meta: dict[str, Any] = {_DOC: c.document_id}
    sig: list[str] = []
    exact = True  # the metadata can be read back from the typed keys
    for field, v in c.metadata.items():
        if not isinstance(field, str):
            raise InvalidInputError(f"metadata keys of chunk {c.id!r} must be strings")
        t, val = flat.typed(v)
        if t == "i":
            exact, val = exact and -_EXACT <= v <= _EXACT, _float(v)
            if math.isinf(val):
                raise InvalidInputError(f"metadata {field!r} of chunk {c.id!r} is too large")
        elif t == "f":
            if not math.isfinite(v):
                raise InvalidInputError(f"metadata {field!r} of chunk {c.id!r} is {v}: not JSON")
            exact = exact and _reads_back(v)
        elif t == "s":
            exact = exact and "\x00" not in v
        elif t == "l":  # [""]: present although nothing in it can be compared
            exact, val = False, val or [""]
        elif t == "o":  # None, dicts: present (for $exists), never equal to a scalar
            exact = False
        if t != "o":
            meta[flat.KEY[t] + field] = val
        sig.append(t + field)
    meta[_SIG] = json.dumps(sig, ensure_ascii=False, separators=(",", ":"))
    extra: dict[str, Any] = {}
    if not exact:
        extra["m"] = dict(c.metadata)
    if type(c.position) is not int or c.id != f"{c.document_id}#{c.position}":
        extra["p"] = int(c.position)
    if not c.hash_is_of_text():
        extra["h"] = c.content_hash
    if extra:
        try:
            meta[_EXTRA] = json.dumps(extra, ensure_ascii=False, allow_nan=False,
                                      separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"metadata of chunk {c.id!r} is not JSON: {exc}") from exc
    return meta


_CONVERT = {"i": int, "f": float}
_READERS: dict[str, tuple[tuple[str, str, Any], ...]] = {}


def _reader(sig: str) -> tuple[tuple[str, str, Any], ...]:
    """(field, typed key, converter) for each field of a shape (read back from typed keys)."""
    r = _READERS.get(sig)
    if r is None:
        r = tuple((x[1:], flat.KEY.get(x[0], "?") + x[1:], _CONVERT.get(x[0]))
                  for x in json.loads(sig))
        if len(_READERS) > 10_000:
            _READERS.clear()
        _READERS[sig] = r
    return r


def shape(sig: str) -> dict[str, str]:
    """A ``_vm_sig`` as ``{field: type letter}`` (``i f s b l o``)."""
    return {x[1:]: x[0] for x in json.loads(sig)}


def _decode(ids: Sequence[str], texts: Sequence[str | None],
            metas: Sequence[Mapping[str, Any] | None]) -> list[Chunk]:
    """The chunks of Chroma records (hashes first, in one pass: it is the costly part)."""
    docs = [t or "" for t in texts]
    hashes = [sha256(t.encode("utf-8")).hexdigest() for t in docs]
    out = []
    for cid, text, meta, h in zip(ids, docs, metas, hashes):
        try:
            m: Mapping[str, Any] = meta or {}
            doc = m[_DOC]
            x = {} if (extra := m.get(_EXTRA)) is None else json.loads(extra)
            md = x["m"] if "m" in x else {name: m[key] if conv is None else conv(m[key])
                                          for name, key, conv in _reader(m[_SIG])}
            pos = x["p"] if "p" in x else int(cid[len(doc) + 1:])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(f"Chroma record {cid!r} was not written by vecmem (format "
                               f"{FORMAT}): {type(exc).__name__} {exc}") from exc
        out.append(Chunk(id=cid, document_id=doc, position=pos, text=text, metadata=md,
                         content_hash=x.get("h", h)))
    return out


def _decode_v1(cid: str, text: str | None, meta: Mapping[str, Any]) -> Chunk:
    d = json.loads(meta["_vm"])  # format 1: every chunk as JSON
    return Chunk(id=cid, document_id=d["d"], position=int(d["p"]), text=text or "",
                 metadata=d["m"], content_hash=d["h"])


# --------------------------------------------------------------------------- filters
class ShapesNeeded(UnsupportedFilterError):
    """The filter needs the metadata shapes stored (``$exists``, a negated range)."""


_TYPES = {"n_": ("i", "f"), "s_": ("s",), "b_": ("b",), "l_": ("l",)}


class _Conditions:
    """Conditions as Chroma where clauses (see the module docstring)."""

    def __init__(self, complement: bool, shapes: Shapes | None) -> None:
        self.complement, self.shapes = complement, shapes

    def with_shape(self, field: str, keep: Callable[[str | None], bool]) -> _Where:
        """Chunks whose shape gives ``field`` a type letter (``None``: absent) that ``keep``s."""
        if self.shapes is None:
            raise ShapesNeeded(f"a filter on the presence of {field!r} needs the metadata "
                               "shapes stored (ChromaDb learns them)")
        sigs = [s for s, fields in self.shapes.items() if keep(fields.get(field))]
        if len(sigs) == len(self.shapes):
            return True
        return {_SIG: {"$in": sigs}} if sigs else False

    def absent(self, key: str) -> _Where:
        types = _TYPES[key[:2]]
        return self.with_shape(key[2:], lambda t: t not in types)

    def unless(self, key: str, where: _Where) -> _Where:
        """``where`` (a complement operator on ``key``), or the chunks without ``key``."""
        return where if self.complement else flat.or_([self.absent(key), where])

    def __call__(self, c: Cond, neg: bool) -> _Where:
        op, v, f = c.op, c.value, c.field
        if op == "exists":
            return self.with_shape(f, lambda t: (t is not None) == (v != neg))
        if op in ("eq", "in"):
            parts = []
            for key, vals in flat.groups(f, (v,) if op == "eq" else v).items():
                if key.startswith("n_"):  # compared as floats; no stored number is infinite
                    vals = [x for x in map(_float, vals) if math.isfinite(x)]
                    if not vals:
                        continue
                one = len(vals) == 1
                if neg:
                    parts.append(self.unless(key, {key: {"$ne": vals[0]} if one else {
                        "$nin": vals}}))
                else:
                    parts.append({key: {"$eq": vals[0]} if one else {"$in": vals}})
            return flat.and_(parts) if neg else flat.or_(parts)
        if op == "contains":
            key, tag = "l_" + f, flat.tag(v)
            if tag is None:
                return neg
            return self.unless(key, {key: {"$not_contains": tag}}) if neg else {
                key: {"$contains": tag}}
        key = "n_" + f  # gt gte lt lte
        if neg:
            return flat.or_([_range(key, flat.FLIP[op], v), self.absent(key)])
        return _range(key, op, v)


def _range(key: str, op: str, v: float) -> _Where:
    x = _float(v)
    if math.isinf(x):  # every stored number is finite
        if (x > 0) == (op in ("gt", "gte")):
            return False
        return {"$or": [{key: {"$gte": 0.0}}, {key: {"$lt": 0.0}}]}  # any number
    return {key: {"$" + op: x}}


def to_where(f: Filter | None, *, complement: bool = True,
             shapes: Shapes | None = None) -> _Where:
    """A parsed vecmem filter as a Chroma ``where`` (``True``: no filter, ``False``: nothing).

    ``complement``: Chroma's ``$ne``/``$nin``/``$not_contains`` match records without the key
    (Chroma 1.x). ``shapes``: the metadata shapes stored (``{_vm_sig: {field: type}}``), needed
    by ``$exists`` and negated ranges; without them those raise :class:`ShapesNeeded`.
    """
    return flat.translate(f, _Conditions(complement, shapes))


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
        self._kw: KeywordBeside | None = None
        self._gen: str | None = None  # the collection's vecmem_gen our index reflects
        # filters: Chroma's complement operators match missing keys (None: not probed yet),
        # and the metadata shapes stored that this store knows of
        self._complement: bool | None = None
        self._shapes: dict[str, dict[str, str]] = {}
        self._shapes_gen: str | None = None  # the vecmem_gen at which _shapes were all read

    # ----------------------------------------------------------------- plumbing
    @property
    def _where_am_i(self) -> str:
        if self.host is not None:
            target = f"{'https' if self.ssl else 'http'}://{self.host}:{self.port}"
        else:
            target = self.path or "memory"
        return f"Chroma collection {self.collection!r} at {target}"

    def _error(self, exc: Exception, what: str) -> VecmemError:
        """The vecmem error for a client exception."""
        errors = require("chromadb.errors", "chroma")
        if isinstance(exc, errors.NotFoundError):
            return NotFoundError(f"{self._where_am_i} does not exist ({what})")
        if isinstance(exc, (errors.ChromaAuthError, errors.AuthorizationError)):
            return AuthenticationError(f"{self._where_am_i}: access refused ({what})")
        if isinstance(exc, errors.ChromaError):
            if "dimension" in str(exc):
                return DimensionMismatchError(f"{self._where_am_i}: {exc}")
            return BackendError(f"{self._where_am_i}: {what} failed: {exc}")
        # httpx errors, or ValueError("Could not connect ...")
        text = f"{type(exc).__name__} {exc}".lower()
        if "connect" in text or "timeout" in text or isinstance(exc, OSError):
            return BackendUnavailableError(
                f"cannot reach the Chroma server at {self._where_am_i}: {exc}")
        return BackendError(f"{self._where_am_i}: {what} failed: {exc}")

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate client exceptions into vecmem errors."""
        try:
            yield
        except VecmemError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from exc

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
            if meta.get("vecmem_format") != FORMAT:
                with self._errors("inspect the collection"):
                    empty = not col.count()
                    if empty:  # nothing stored in the old layout
                        col.modify(metadata={**meta, "vecmem_format": FORMAT})
                if not empty:
                    raise ConfigurationError(
                        f"{self._where_am_i} holds chunks in vecmem's Chroma layout format "
                        f"{meta.get('vecmem_format')!r}, this vecmem reads format {FORMAT}: "
                        "call ChromaDb(...).upgrade() once to rewrite it in place")
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
        kw = KeywordBeside(k1=k1, b=b, epsilon=eps, tokenizer=self.tokenizer)
        offset = 0
        while True:
            with self._errors("read the documents"):
                page = self._col.get(include=["documents"], limit=_PAGE * 4, offset=offset)
            ids, docs = page["ids"], page["documents"] or []
            fresh = [(i, d) for i, d in zip(ids, docs) if i not in kw]
            kw.add([i for i, _ in fresh], [self.tokenizer(d or "") for _, d in fresh])
            offset += len(ids)
            if len(ids) < _PAGE * 4:
                break
        self._kw, self._gen = kw, gen

    def _index_written(self, chunks: Sequence[Chunk], deleted: Sequence[str]) -> None:
        if self._kw is not None:
            self._kw.write(chunks, deleted)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Wrap a write: keep the keyword index in step and publish a new generation token
        (one read of the collection before the write, one update after it)."""
        with self._errors("read the collection"):
            col = self._c().get_collection(self.collection, embedding_function=None)
        meta = dict(col.metadata or {})
        if self._kw is not None and meta.get("vecmem_gen") != self._gen:
            self._kw = None  # another client wrote: rebuild on the next keyword search
        try:
            yield
        except BaseException:
            self._kw = None  # perhaps partly written: rebuild from what is there
            try:
                self._publish(col, meta)
            except VecmemError:
                pass  # the original error says more
            raise
        self._publish(col, meta)

    def _publish(self, col: Any, meta: dict[str, Any]) -> None:
        """Store a new generation token: other clients' keyword indexes will rebuild."""
        gen = uuid.uuid4().hex
        with self._errors("record the write"):
            col.modify(metadata={**meta, "vecmem_gen": gen})
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
                ids = [c.id for c in chunks[part]]
                with self._errors("upsert"):
                    # Chroma's upsert merges metadata: drop the keys an overwritten chunk had
                    old = self._col.get(ids=ids, include=["metadatas"])
                    if old["ids"]:
                        row = {cid: j for j, cid in enumerate(ids, i)}
                        for cid, m in zip(old["ids"], old["metadatas"]):
                            new = metas[row[cid]]
                            new.update({key: None for key in m or () if key not in new})
                    self._col.upsert(ids=ids, embeddings=v[part],
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

    # ----------------------------------------------------------------- filters
    def _filtered(self, f: Filter | None, run: Callable[[_Where], _T]) -> _T:
        """``run(where)`` with ``f`` translated. A translation read from the metadata shapes is
        checked after the run: if a shape it did not list was stored meanwhile, run again."""
        if f is None:
            return run(True)
        if self._complement is None:
            self._complement = self._probe_complement()
        complement = self._complement is True
        try:
            where = to_where(f, complement=complement)
        except ShapesNeeded:
            pass
        else:
            return run(where)
        if not self._shapes:
            self._learn()
        while True:
            out = run(to_where(f, complement=complement, shapes=self._shapes))
            if self._current_gen() == self._shapes_gen or not self._learn():
                return out

    def _probe_complement(self) -> bool | None:
        """Whether Chroma's ``$ne``/``$nin``/``$not_contains`` match records without the key
        (``None``: cannot tell, the collection is empty)."""
        missing = {"$and": [{"_vm_absent": {"$ne": ""}}, {"_vm_absent": {"$nin": [""]}},
                            {"_vm_absent": {"$not_contains": ""}}]}
        with self._errors("probe the filters"):
            if self._col.get(where=missing, limit=1, include=[])["ids"]:
                return True
            return False if self._col.count() else None

    def _learn(self) -> bool:
        """Read the metadata shapes stored that this store does not know; True if any. Until
        the next write (a new ``vecmem_gen``) they are all the shapes stored."""
        gen = self._current_gen()  # read before the scan: a later write means a new scan
        shapes = dict(self._shapes)  # replaced, not changed: other threads may be reading it
        found, limit = False, 1
        while True:
            where = {_SIG: {"$nin": list(shapes)}} if shapes else None
            with self._errors("read the metadata shapes"):
                got = self._col.get(where=where, include=["metadatas"], limit=limit)
            if not got["ids"]:
                self._shapes, self._shapes_gen = shapes, gen
                return found
            for cid, m in zip(got["ids"], got["metadatas"]):
                sig = (m or {}).get(_SIG)
                if not isinstance(sig, str):
                    raise BackendError(f"{self._where_am_i}: record {cid!r} was not written by "
                                       f"vecmem (format {FORMAT})")
                shapes[sig] = shape(sig)
            if len(shapes) > MAX_SHAPES:
                raise UnsupportedFilterError(
                    f"{self._where_am_i} holds more than {MAX_SHAPES} distinct metadata shapes "
                    "(sets of field names and types): $exists and negated ranges are not "
                    "supported on it")
            found, limit = True, min(limit * 8, _PAGE)

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")
        self._require_space()
        with self._lock:
            doomed: set[str] = set()
            if ids:
                doomed.update(self._existing(list(dict.fromkeys(ids))))
            if filter is not None:
                doomed.update(self._filtered(filter, self._matching_ids))
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
        dim = self._require_space().dim
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != dim or not q.any():
            validate_query_vector(q, dim)  # DimensionMismatchError, or all zeros
        return self._filtered(filter, lambda where: self._query(q, k, where))

    def _query(self, q: np.ndarray, k: int, where: _Where) -> list[Scored]:
        if where is False:
            validate_query_vector(q, q.shape[0])
            return []
        try:
            res = self._col.query(query_embeddings=q[None, :], n_results=k,
                                  where=None if where is True else where, include=_INCLUDE)
        except Exception as exc:
            validate_query_vector(q, q.shape[0])  # NaN or infinity: the caller's error
            raise self._error(exc, "vector query") from exc
        dists = res["distances"][0]
        hits = [Scored(c, 1.0 - x) for c, x in zip(
            _decode(res["ids"][0], res["documents"][0], res["metadatas"][0]), dists)]
        if len(hits) < k or any(map(math.isnan, dists)):
            # Chroma answers NaN distances to a query with NaN or infinity: checked only then
            validate_query_vector(q, q.shape[0])
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
        found = [(i, float(s)) for i, s in zip(best_ids, best) if i in recs]
        chunks = _decode([i for i, _ in found], [recs[i][0] for i, _ in found],
                         [recs[i][1] for i, _ in found])
        return [Scored(c, s) for c, (_, s) in zip(chunks, found)]

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        self._require_space()
        with self._lock:
            if self._kw is None or self._current_gen() != self._gen:
                self._rebuild()
            if self._kw is None or self.tokenizer is None:
                raise ConfigurationError("the store is used before connect(space)")
            tokens = self.tokenizer(text)
            if not tokens:
                return []
            return self._filtered(filter, lambda where: self._keyword(tokens, k, where))

    def _keyword(self, tokens: list[str], k: int, where: _Where) -> list[Scored]:
        if self._kw is None or where is False:
            return []
        found = self._kw.search(tokens, k, lambda ids, _: self._records(ids, where),
                                filtered=where is not True)
        chunks = _decode([i for i, _, _ in found], [r[0] for _, r, _ in found],
                         [r[1] for _, r, _ in found])
        return [Scored(c, x) for c, (_, _, x) in zip(chunks, found)]

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        recs = self._records(ids)
        found = [i for i in ids if i in recs]
        return _decode(found, [recs[i][0] for i in found], [recs[i][1] for i in found])

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
                    got = self._col.get(where={_DOC: {"$in": part}},
                                        include=["documents", "metadatas"],
                                        limit=_PAGE, offset=offset)
                for c in _decode(got["ids"], got["documents"], got["metadatas"]):
                    by_doc.setdefault(c.document_id, []).append(c)
                offset += len(got["ids"])
                if len(got["ids"]) < _PAGE:
                    break
        return [c for d in docs for c in sorted(by_doc.get(d, []), key=lambda c: c.id)]

    def count(self, filter: Filter | None = None) -> int:
        self._require_space()
        return self._filtered(filter, self._count)

    def _count(self, where: _Where) -> int:
        if where is True:
            with self._errors("count"):
                return int(self._col.count())
        return len(self._matching_ids(where))

    # ----------------------------------------------------------------- maintenance
    def upgrade(self) -> int:
        """Rewrite a collection stored in vecmem's format-1 Chroma layout in format 2, in
        place (documents, vectors and ids untouched); returns the chunks rewritten. Run it
        once, while no other client writes; it can be run again after an interruption.

        >>> ChromaDb(path="./chroma").upgrade()                  # doctest: +SKIP
        """
        with self._lock:
            col = self._find()
            if col is None:
                raise NotFoundError(f"{self._where_am_i} does not exist")
            meta = dict(col.metadata or {})
            if meta.get("vecmem_format") == FORMAT:
                return 0
            if meta.get("vecmem_format") != 1:
                raise ConfigurationError(f"{self._where_am_i} is not in a vecmem layout this "
                                         f"version knows (format {meta.get('vecmem_format')!r})")
            done = offset = 0
            while True:
                with self._errors("read for the upgrade"):
                    page = col.get(include=["documents", "metadatas"], limit=_PAGE,
                                   offset=offset)
                ids, metas = [], []
                for cid, d, m in zip(page["ids"], page["documents"], page["metadatas"]):
                    if _SIG in m and "_vm_keys" not in m:
                        continue  # already rewritten
                    new = _encode(_decode_v1(cid, d, m))
                    ids.append(cid)
                    metas.append({**{key: None for key in m if key not in new}, **new})
                if ids:
                    with self._errors("upgrade"):
                        col.update(ids=ids, metadatas=metas)
                done += len(ids)
                offset += len(page["ids"])
                if len(page["ids"]) < _PAGE:
                    break
            with self._errors("upgrade"):
                col.modify(metadata={**meta, "vecmem_format": FORMAT})
            return done

    def drop(self) -> None:
        """Delete the whole collection (its records and recorded space); no-op if absent."""
        with self._lock:
            try:
                with self._errors("drop"):
                    self._c().delete_collection(self.collection)
            except NotFoundError:
                pass
            self.space, self._col, self._kw = None, None, None
            self._complement, self._shapes, self._shapes_gen = None, {}, None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._client = self._col = self._kw = None


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
