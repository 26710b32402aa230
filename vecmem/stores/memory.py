"""The in-memory store: exact numpy search, BM25 beside it, vectorised metadata filters.

It is the reference every other backend is held against (congruence tests), and the engine of the
embedded default (:mod:`vecmem.stores.embedded`), which adds persistence and an HNSW index.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from vecmem._matvec import matvec
from vecmem.bm25 import BM25Index, _Grow
from vecmem.errors import ConfigurationError, InvalidInputError
from vecmem.filters import And, Cond, Filter, Not, _eq
from vecmem.fusion import Fusion, fuse, fuse_arrays
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Hit, Scored
from vecmem.validation import MAX_EXACT_INT as _EXACT

# kinds of a metadata value, for vectorised filters
_MISSING, _BOOL, _NUM, _STR, _LIST, _OTHER = range(6)


def _kind(v: Any, missing: object) -> int:
    if v is missing:
        return _MISSING
    if isinstance(v, bool):
        return _BOOL
    if isinstance(v, (int, float)):
        return _NUM
    if isinstance(v, str):
        return _STR
    if isinstance(v, (list, tuple)):
        return _LIST
    return _OTHER


def _as_float(v: Any) -> float:
    """A number as the float64 filters compare: exact for every value vecmem accepts today
    (|int| <= 2**53, see :mod:`vecmem.validation`). An integer beyond that, stored by an older
    vecmem, reads as an infinity of its sign: filter values are finite and within 2**53, so it
    still compares exactly (greater than all of them, equal to none) instead of raising
    OverflowError or rounding onto a neighbour."""
    if isinstance(v, int) and not -_EXACT <= v <= _EXACT:
        return math.inf if v > 0 else -math.inf
    return float(v)


class _Column:
    """One metadata field over all slots: its kind, numeric value and raw value."""

    __slots__ = ("kind", "num", "obj", "code", "codes")

    def __init__(self) -> None:
        self.kind = _Grow(np.int8)
        self.num = _Grow(np.float64)
        self.obj = _Grow(object)
        self.code = _Grow(np.int32)  # strings as integer codes: equality is an int compare
        self.codes: dict[str, int] = {}

    def grow(self, top: int) -> None:
        """Extend to ``top`` slots; new slots read as missing (kind 0, code -1)."""
        for g, empty in (
            (self.kind, _MISSING),
            (self.num, np.nan),
            (self.obj, None),
            (self.code, -1),
        ):
            g.reserve(top)
            if top > g.n:
                g.a[g.n : top] = empty
                g.n = top

    def set(
        self, slots: Sequence[int] | np.ndarray, values: Sequence[Any], missing: object
    ) -> None:
        self.grow((max(slots) + 1) if len(slots) else 0)
        for s, v in zip(slots, values):
            k = _kind(v, missing)
            self.kind.a[s] = k
            self.num.a[s] = _as_float(v) if k in (_BOOL, _NUM) else np.nan
            self.obj.a[s] = v if k == _LIST else None  # (only "contains" reads raw values)
            self.code.a[s] = self.codes.setdefault(v, len(self.codes)) if k == _STR else -1


_SCALARS = frozenset((str, int, float, bool, type(None)))


def _own(c: Chunk) -> Chunk:
    """A chunk whose metadata the store owns: copied (deeply where values are containers).
    Built without the frozen dataclass's ``__init__`` (one ``object.__setattr__`` a field):
    half the cost, for every chunk written or loaded."""
    meta = dict(c.metadata)
    for v in meta.values():
        if type(v) not in _SCALARS:
            meta = copy.deepcopy(meta)
            break
    own = object.__new__(Chunk)
    own.__dict__.update(
        id=c.id,
        document_id=c.document_id,
        position=c.position,
        text=c.text,
        metadata=meta,
        content_hash=c.content_hash,
    )
    return own


class MemoryStore:
    """Exact in-memory store (numpy), with BM25 kept beside the vectors.

    >>> from vecmem.types import EmbeddingSpace, Chunk
    >>> s = MemoryStore()
    >>> _ = s.connect(EmbeddingSpace(embedder="e", dim=2))
    >>> s.upsert([Chunk.create("d", 0, "hello")], np.array([[1.0, 0.0]], dtype=np.float32))
    >>> s.count()
    1
    """

    name = "memory"
    capabilities = Capabilities(native_keyword=True, native_hybrid=True, transactions=True)

    def __init__(self) -> None:
        self.space: EmbeddingSpace | None = None
        self._lock = threading.RLock()
        self._reset()

    # ----------------------------------------------------------------- state
    def _reset(self) -> None:
        self._next_slot = 0
        self._slot_of: dict[str, int] = {}
        self._ids: list[str | None] = []  # the chunk id of each live slot (None: dead)
        # the rows themselves, here (a persistent subclass reads them from its file instead:
        # see _hold, _release, _fetch, _field_values and _document_slots)
        self._chunks: list[Chunk | None] = []
        self._by_doc: dict[str, set[str]] = {}
        self._live = _Grow(np.bool_)
        self._vectors = np.zeros((0, self.space.dim if self.space else 0), dtype=np.float32)
        self._columns: dict[str, _Column] = {}
        self._missing = object()
        self.tokenizer: Tokenizer | None = None
        self._bm25: BM25Index | None = None

    def _require_space(self) -> EmbeddingSpace:
        if self.space is None:
            raise ConfigurationError(f"{self.name} store used before connect(space)")
        return self.space

    def stored_space(self) -> EmbeddingSpace | None:
        return self.space

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space)
                return self.space
            self.space = space
            self._reset()
            self.tokenizer = get_tokenizer(space.tokenizer)
            k1, b, eps = space.keyword_params()
            self._bm25 = BM25Index(k1=k1, b=b, epsilon=eps)
            return space

    # ----------------------------------------------------------------- writes
    def _apply(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        delete_ids: Sequence[str],
        slots: np.ndarray | None = None,
    ) -> np.ndarray:
        """Apply a validated batch in memory; returns the slots used (new ones by default;
        a persistent subclass passes the slots it committed, which are increasing)."""
        if self._bm25 is None or self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        old = [self._slot_of[c.id] for c in chunks if c.id in self._slot_of]
        old += [self._slot_of[i] for i in delete_ids if i in self._slot_of]
        self._drop_slots(old)
        n = len(chunks)
        if slots is None:
            slots = np.arange(self._next_slot, self._next_slot + n, dtype=np.int64)
        if n == 0:
            return slots
        held = self._hold(slots.tolist(), chunks)
        self._index(
            slots,
            [c.id for c in held],
            [c.text for c in held],
            lambda: [c.metadata for c in held],
            vectors,
        )
        return slots

    def _index(
        self,
        slots: np.ndarray,
        ids: Sequence[str],
        texts: Sequence[str],
        metadata: Callable[[], Sequence[Mapping[str, Any]]],
        vectors: np.ndarray,
    ) -> None:
        """Index new rows (slots increasing, past every slot used): BM25, vectors, the live
        mask, ids, and the filter columns built so far (``metadata`` is called only then)."""
        if self._bm25 is None or self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        self._next_slot = int(slots[-1]) + 1
        top = self._next_slot
        self._ids.extend([None] * (top - len(self._ids)))  # slots left empty stay None
        tokenizer = self.tokenizer
        self._bm25.add(slots, [tokenizer(t) for t in texts])
        self._put_vectors(slots, vectors, top)
        self._live.reserve(top)
        self._live.a[self._live.n : top] = False
        self._live.n = top
        self._live.a[slots] = True
        held_ids, slot_of = self._ids, self._slot_of
        for cid, s in zip(ids, slots.tolist()):
            held_ids[s] = cid
            slot_of[cid] = s
        if self._columns:
            metas = metadata()
            for field, col in self._columns.items():
                col.set(slots, [m.get(field, self._missing) for m in metas], self._missing)

    # -- where the rows live (the seam a persistent subclass overrides)
    def _hold(self, slots: list[int], chunks: Sequence[Chunk]) -> Sequence[Chunk]:
        """Keep the rows of new ``slots``; returns the chunks to index (the store's copies)."""
        owned = [_own(c) for c in chunks]  # later changes to the caller's dicts can't leak in
        held, by_doc = self._chunks, self._by_doc
        held.extend([None] * (slots[-1] + 1 - len(held)))
        for c, s in zip(owned, slots):
            held[s] = c
            ids = by_doc.get(c.document_id)
            if ids is None:
                by_doc[c.document_id] = {c.id}
            else:
                ids.add(c.id)
        return owned

    def _release(self, slots: list[int]) -> None:
        """Forget the rows of ``slots`` (deleted or overwritten)."""
        for s in slots:
            c = self._chunks[s]
            if c is None:
                continue
            self._chunks[s] = None
            ids = self._by_doc.get(c.document_id)
            if ids is not None:
                ids.discard(c.id)
                if not ids:
                    del self._by_doc[c.document_id]

    def _fetch(self, slots: list[int]) -> list[Chunk]:
        """The chunks of live ``slots``, in that order."""
        chunks = self._chunks
        return [chunks[s] for s in slots]  # type: ignore[misc]

    def _field_values(self, field: str) -> tuple[list[int], list[Any]]:
        """Every live slot and its value of metadata ``field`` (``self._missing`` if none)."""
        live = [(i, c) for i, c in enumerate(self._chunks) if c is not None]
        return [i for i, _ in live], [c.metadata.get(field, self._missing) for _, c in live]

    def _document_slots(self, document_ids: Sequence[str]) -> list[int]:
        """The live slots of each document in turn, by chunk id within one."""
        slot_of = self._slot_of
        return [slot_of[i] for d in document_ids for i in sorted(self._by_doc.get(d, ()))]

    def _put_vectors(self, slots: np.ndarray, vectors: np.ndarray, top: int) -> None:
        """Make ``vectors`` the rows ``slots`` of ``self._vectors`` (which must then hold at
        least ``top`` rows). Here they are copied into a growing array; the embedded store maps
        its vector file instead (:meth:`vecmem.stores.embedded.EmbeddedStore._put_vectors`)."""
        if top > len(self._vectors):
            dim = self._require_space().dim
            grown = np.zeros((max(top, 2 * len(self._vectors), 256), dim), np.float32)
            grown[: len(self._vectors)] = self._vectors
            self._vectors = grown
        self._vectors[slots] = vectors

    def _drop_slots(self, slots: Sequence[int]) -> None:
        if not slots:
            return
        if self._bm25 is None:
            raise ConfigurationError("the store is used before connect(space)")
        self._bm25.remove(slots)
        gone = []
        for s in slots:
            cid = self._ids[s]
            if cid is None:
                continue
            self._ids[s] = None
            self._live.a[s] = False
            if self._slot_of.get(cid) == s:
                del self._slot_of[cid]
            gone.append(s)
        self._release(gone)

    def _validate_batch(self, chunks: Sequence[Chunk], vectors: Any) -> np.ndarray:
        return validate_batch(chunks, vectors, self._require_space().dim)

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        v = self._validate_batch(chunks, vectors)
        with self._lock:
            self._apply(list(chunks), v, list(delete_ids))

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        with self._lock:
            slots: set[int] = set()
            if ids is not None:
                slots |= {self._slot_of[i] for i in ids if i in self._slot_of}
            if filter is not None:
                slots |= set(np.flatnonzero(self._mask(filter)).tolist())
            if ids is None and filter is None:
                raise InvalidInputError("delete needs ids or a filter (use clear() for all)")
            self._drop_slots(sorted(slots))
            return len(slots)

    # ----------------------------------------------------------------- filters
    def _column(self, field: str) -> _Column:
        col = self._columns.get(field)
        if col is None:
            col = _Column()
            col.set(*self._field_values(field), self._missing)
            self._columns[field] = col
        col.grow(self._next_slot)  # slots never written for this field: missing
        return col

    def _cond_mask(self, c: Cond) -> np.ndarray:
        col = self._column(c.field)
        kind, num, obj = col.kind.view(), col.num.view(), col.obj.view()
        op, v = c.op, c.value

        def eq(x: Any) -> np.ndarray:
            if isinstance(x, bool):
                return (kind == _BOOL) & (num == float(x))
            if isinstance(x, str):
                return col.code.view() == col.codes.get(x, -2)
            return (kind == _NUM) & (num == x)

        if op == "exists":
            return (kind != _MISSING) if v else (kind == _MISSING)
        if op in ("eq", "ne"):
            m = eq(v)
            return m if op == "eq" else ~m
        if op in ("in", "nin"):
            m = np.zeros(len(kind), dtype=bool)
            for x in v:
                m |= eq(x)
            return m if op == "in" else ~m
        if op == "contains":
            m = np.zeros(len(kind), dtype=bool)
            for i in np.flatnonzero(kind == _LIST):
                m[i] = any(_eq(x, v) for x in obj[i])
            return m
        isnum = kind == _NUM
        with np.errstate(invalid="ignore"):
            cmp = {"gt": num > v, "gte": num >= v, "lt": num < v, "lte": num <= v}[op]
        return isnum & cmp

    def _filter_mask(self, f: Filter) -> np.ndarray:
        if isinstance(f, Cond):
            return self._cond_mask(f)
        if isinstance(f, Not):
            return ~self._filter_mask(f.item)
        masks = [self._filter_mask(x) for x in f.items]
        out = masks[0].copy()
        for m in masks[1:]:
            out = (out & m) if isinstance(f, And) else (out | m)
        return out

    def _mask(self, f: Filter | None) -> np.ndarray:
        """Live slots matching ``f``, as a bool array over all slots."""
        live = self._live.view()
        if f is None:
            return live.copy()
        return self._filter_mask(f)[: len(live)] & live

    # ----------------------------------------------------------------- reads
    def query(self, vector: np.ndarray, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        q = validate_query_vector(vector, self._require_space().dim)
        with self._lock:
            return self._scored(*self._vector_top(q, k, self._filtered(filter)))

    def keyword(self, text: str, *, k: int, filter: Filter | None = None) -> list[Scored]:
        if k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k}")
        self._require_space()
        with self._lock:
            return self._scored(*self._keyword_top(text, k, self._filtered(filter)))

    def hybrid(
        self,
        vector: np.ndarray,
        text: str,
        *,
        k: int,
        candidates: int,
        fusion: Fusion,
        filter: Filter | None = None,
    ) -> list[Hit]:
        """Both legs and their fusion in one pass: the filter mask is computed once, the legs stay
        arrays of slots, and only the top ``k`` become hits (:func:`vecmem.fusion.fuse_arrays`).
        The result is :func:`vecmem.fusion.fuse` of :meth:`query` and :meth:`keyword` with
        ``candidates`` each (the conformance suite holds every native hybrid to that)."""
        if k <= 0 or candidates <= 0:
            raise InvalidInputError(f"k and candidates must be > 0, got {k} and {candidates}")
        if not self.capabilities.native_hybrid:  # a subclass with legs of its own
            return fuse(
                self.query(vector, k=candidates, filter=filter),
                self.keyword(text, k=candidates, filter=filter),
                fusion,
                k=k,
            )
        q = validate_query_vector(vector, self._require_space().dim)
        with self._lock:
            mask = self._filtered(filter)
            vslots, vscores = self._vector_top(q, candidates, mask)
            kslots, kscores = self._keyword_top(text, candidates, mask)
            ids = self._ids
            top = fuse_arrays(
                vslots,
                vscores,
                kslots,
                kscores,
                fusion,
                k=k,
                name=ids.__getitem__,  # type: ignore[arg-type]
                distinct=True,  # rows: each leg holds a row once
            )
            keys = top.keys.tolist()
            rows = dict(zip(keys, self._fetch(keys)))
            return top.hits(rows.__getitem__, vscores, kscores)

    def _filtered(self, f: Filter | None) -> np.ndarray | None:
        """The live slots matching ``f`` as a mask; ``None`` for no filter (the legs skip dead
        slots themselves)."""
        return None if f is None else self._mask(f)

    def _vector_top(
        self, q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar live slots (within ``mask``), best first, ties by slot."""
        n = self._next_slot
        if mask is None and len(self._slot_of) < n:  # some slots are dead
            mask = self._live.view()
        if mask is None:
            return _best(None, matvec(self._vectors[:n], q), k)
        cand = np.flatnonzero(mask)
        sims = (
            matvec(self._vectors[cand], q)
            if len(cand) < n // 2
            else matvec(self._vectors[:n], q)[cand]
        )
        return _best(cand, sims, k)

    def _keyword_top(
        self, text: str, k: int, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if self._bm25 is None or self.tokenizer is None:
            raise ConfigurationError("the store is used before connect(space)")
        return self._bm25.top_k(self.tokenizer(text), k, mask)

    def _scored(self, slots: np.ndarray, scores: np.ndarray) -> list[Scored]:
        chunks = self._fetch(slots.tolist())
        return [Scored(c, x) for c, x in zip(chunks, scores.tolist())]

    def _top(self, cand: np.ndarray, scores: np.ndarray, k: int) -> list[Scored]:
        return self._scored(*_best(cand, scores, k))

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        with self._lock:
            slot_of = self._slot_of
            return self._fetch([slot_of[i] for i in ids if i in slot_of])

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = [i for i in ids if i not in self._slot_of]
            if missing:
                raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
            return self._vectors[[self._slot_of[i] for i in ids]].copy()

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        with self._lock:
            return self._fetch(self._document_slots(document_ids))

    def count(self, filter: Filter | None = None) -> int:
        with self._lock:
            if filter is None:
                return len(self._slot_of)
            return int(self._mask(filter).sum())

    def page_ids(self, *, after: str | None = None, limit: int) -> list[str]:
        """Up to ``limit`` ids greater than ``after``, ascending (see
        :class:`~vecmem.stores.base.PagedStore`). Sorts the ids it holds (O(n log n) a page:
        the ids are in memory already)."""
        with self._lock:
            ids = sorted(i for i in self._slot_of if after is None or i > after)
        return ids[:limit]

    def all_chunks(self) -> list[Chunk]:
        """Every live chunk, in insertion order."""
        with self._lock:
            return self._fetch(np.flatnonzero(self._live.view()).tolist())

    def close(self) -> None:
        pass


def _best(cand: np.ndarray | None, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``scores`` (over slots ``cand``; ``None``: slot = position), best first,
    ties by slot."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        slots, scores = (part if cand is None else cand[part]), scores[part]
    else:
        slots = np.arange(len(scores)) if cand is None else cand
    order = np.lexsort((slots, -scores))
    return slots[order], scores[order]
