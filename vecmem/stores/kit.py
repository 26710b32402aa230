"""The backend kit: what every database adapter shares, written once.

A backend subclasses :class:`StoreKit` and supplies translation only: how to open its client
(:meth:`StoreKit._open`), how to read and record the embedding space (:meth:`StoreKit._read_space`,
:meth:`StoreKit._create`), which client exceptions mean what (:meth:`StoreKit._classify`), and its
calls for the :class:`~vecmem.stores.base.VectorStore` methods. The kit carries the lifecycle
(lazy connect under a lock, a closed flag, ``connect`` checking the recorded space,
``stored_space`` reading without creating), error translation into vecmem's types
(``with self._errors("upsert"):``), the argument checks every store makes
(:meth:`StoreKit._check_k`, :meth:`StoreKit._check_query`, :meth:`StoreKit._check_batch`), the
exact BM25 kept beside a database (:meth:`StoreKit._keyword_index`) and URL parsing for
``from_url`` (:func:`parse_url`). ``upsert``, ``delete``, ``get``, ``get_vectors`` and
``get_by_document`` make their checks and bookkeeping and leave the database's part to a hook
(:meth:`StoreKit._write_chunks`, ``_delete_chunks``, ``_read_chunks``, ``_read_vectors``,
``_read_documents``); a backend overrides the method itself where it does more.

Modelled on qdrant-client's ``client_base``: one base, each engine its calls.

>>> class Tiny(StoreKit):
...     name = "tiny"
...     def _open(self): return {}
...     def _read_space(self): return self._client.get("space")
...     def _create(self, space): self._client["space"] = space
>>> t = Tiny()
>>> t.connect(EmbeddingSpace(embedder="e", dim=2)).dim
2
>>> t.close(); t.stored_space()
Traceback (most recent call last):
...
vecmem.errors.ConfigurationError: the tiny store is closed
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from vecmem.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    SpaceReplacedError,
    VecmemError,
)
from vecmem.filters import Filter
from vecmem.stores._beside import KeywordBeside
from vecmem.stores.base import Capabilities, validate_batch, validate_query_vector
from vecmem.tokenize import Tokenizer, get_tokenizer
from vecmem.types import Chunk, EmbeddingSpace, Scored

T = TypeVar("T")
_UNREACHABLE = ("connect", "timeout", "timed out", "unreachable", "refused", "unavailable")


class StoreKit:
    """The shared skeleton of a database adapter (see the module docstring).

    Subclasses set ``name`` and supply ``_open``, ``_read_space`` and ``_create``; they may
    override ``_classify`` (client exception -> vecmem error class), ``_adopt`` (checks on an
    existing collection), ``_connected`` (after the space is known) and ``_release`` (on close).
    ``self._client`` is the opened client, ``self.space`` the recorded space once connected,
    ``self.tokenizer`` its tokenizer, ``self._lock`` a re-entrant lock for the store's state.
    """

    name: ClassVar[str] = "store"
    distances: ClassVar[tuple[str, ...]] = ("cosine",)
    """The ``EmbeddingSpace.distance`` values this backend can store."""
    capabilities: Capabilities = Capabilities()
    detail_limit: ClassVar[int | None] = None
    """Cut a client error's text to this many characters in vecmem's message (``None``: whole)."""
    pool_size: ClassVar[int] = 4
    """Threads of :meth:`StoreKit._submit` (requests sent at once)."""
    switch_refusal: ClassVar[str] = (
        "vecmem has no atomic switch to a space built beside it for this backend"
    )
    """Why this backend cannot be re-embedded without downtime (those that can derive from
    :class:`Switchable`)."""

    def __init__(self) -> None:
        self.space: EmbeddingSpace | None = None
        self.tokenizer: Tokenizer | None = None
        self._client: Any = None
        self._closed = False
        self._lock = threading.RLock()
        self._threads: ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------- hooks
    def _open(self) -> Any:
        """Open the database client (called once, lazily, inside ``_errors("open")``)."""
        raise NotImplementedError

    def _read_space(self) -> EmbeddingSpace | None:
        """The space recorded by the existing collection, or ``None`` (creating nothing)."""
        raise NotImplementedError

    def _create(self, space: EmbeddingSpace) -> EmbeddingSpace | None:
        """Create the collection for ``space``, recording it. May return the space found
        recorded instead (another writer created the collection first); ``None``: ``space``."""
        raise NotImplementedError

    def _adopt(self, stored: EmbeddingSpace, space: EmbeddingSpace) -> EmbeddingSpace:
        """Check an existing collection recorded as ``stored`` against ``space``."""
        stored.check_compatible(space, where=self.where)
        return stored

    def _connected(self, space: EmbeddingSpace) -> None:
        """Called once the space is known (prepare statements, load indexes...)."""

    def _release(self) -> None:
        """Release the client on :meth:`close` (default: drop the reference)."""

    def _classify(self, exc: Exception) -> type[VecmemError] | None:
        """The vecmem error class for a client exception (``None``: let the kit guess from its
        text: a connection failure is :class:`BackendUnavailableError`, the rest
        :class:`BackendError`)."""
        return None

    @property
    def where(self) -> str:
        """Where this store's data lives, for error messages."""
        return f"{self.name} store"

    # ----------------------------------------------------------------- plumbing
    def _error(self, exc: Exception, what: str) -> VecmemError:
        """The vecmem error for client exception ``exc`` raised while doing ``what``."""
        cls = self._classify(exc)
        if cls is None:
            text = f"{type(exc).__name__} {exc}".lower()
            unreachable = isinstance(exc, OSError) or any(w in text for w in _UNREACHABLE)
            cls = BackendUnavailableError if unreachable else BackendError
        if cls is BackendUnavailableError:
            return cls(f"cannot reach {self.where}: {exc}")
        if cls is NotFoundError:
            return cls(f"{self.where} does not exist ({what})")
        return cls(f"{self.where}: {what} failed: {str(exc)[: self.detail_limit]}")

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate client exceptions raised inside into vecmem errors (``raise ... from``)."""
        try:
            yield
        except VecmemError:
            raise
        except Exception as exc:
            raise self._error(exc, what) from exc

    def _c(self) -> Any:
        """The client, opened on first use; raises once the store is closed."""
        self._check_open()
        if self._client is None:
            with self._lock:
                if self._client is None:
                    with self._errors("open"):
                        self._client = self._open()
        return self._client

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the store's threads (started on first use, ended by ``close``)."""
        if self._threads is None:
            with self._lock:
                if self._threads is None:
                    self._threads = ThreadPoolExecutor(
                        self.pool_size, thread_name_prefix=f"vecmem-{self.name}"
                    )
        return self._threads.submit(fn, *args)

    def _require_space(self) -> EmbeddingSpace:
        self._check_open()
        if self.space is None:
            raise ConfigurationError(f"{self.name} store used before connect(space)")
        return self.space

    # ----------------------------------------------------------------- lifecycle
    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(f"the {self.name} store is closed")

    def stored_space(self) -> EmbeddingSpace | None:
        self._check_open()
        if self.space is not None:
            return self.space
        with self._lock:
            self._c()
            return self._read_space()

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        self._check_open()
        with self._lock:
            if self.space is not None:
                self.space.check_compatible(space, where=self.where)
                return self.space
            if space.distance not in self.distances:
                raise ConfigurationError(
                    f"{self.name} stores {', '.join(self.distances)}, not {space.distance!r}"
                )
            self._c()
            stored = self._read_space()
            if stored is None:
                stored = self._create(space) or space
            else:
                stored = self._adopt(stored, space)
            self.space = stored
            try:
                self.tokenizer = get_tokenizer(stored.tokenizer)
                self._connected(stored)
            except BaseException:  # a collection refused after reading it: not connected
                self.space = None
                raise
            return stored

    @contextmanager
    def bulk_load(self) -> Iterator[Any]:
        """A block of many writes (an import, a migration, a first load), made the fastest way
        the engine has; this default does nothing special. PgVector drops its HNSW index on
        entry and builds it once on exit (many times faster than inserting into it)."""
        yield self

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._client is not None:
                    self._release()
            finally:
                self._client = None
                if self._threads is not None:
                    self._threads.shutdown(wait=False)
                    self._threads = None

    # ----------------------------------------------------------------- checks
    @staticmethod
    def _check_k(k: int, candidates: int | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise InvalidInputError(f"k must be > 0, got {k!r}")
        if candidates is not None and (not isinstance(candidates, int) or candidates <= 0):
            raise InvalidInputError(f"candidates must be > 0, got {candidates!r}")

    def _check_query(self, vector: Any, k: int) -> np.ndarray:
        """A valid ``k`` and query vector (float32, the store's dimension, finite)."""
        self._check_k(k)
        return validate_query_vector(vector, self._require_space().dim)

    @staticmethod
    def _check_text(text: Any) -> str:
        """A query text, checked to be a str."""
        if not isinstance(text, str):
            raise InvalidInputError(f"query text must be a str, got {type(text).__name__}")
        return text

    def _tokens(self, text: str) -> list[str]:
        """``text``'s tokens by the space's tokenizer (a query text is checked to be a str)."""
        self._check_text(text)
        if self.tokenizer is None:
            raise ConfigurationError(f"{self.name} store used before connect(space)")
        return self.tokenizer(text)

    def _check_batch(self, chunks: Sequence[Chunk], vectors: Any) -> np.ndarray:
        return validate_batch(chunks, vectors, self._require_space().dim)

    @staticmethod
    def _check_delete(ids: Sequence[str] | None, filter: Filter | None) -> None:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")

    # ----------------------------------------------------------------- store methods
    # The checks and bookkeeping of the VectorStore methods, the backend's part left to a hook.
    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        chunks = list(chunks)
        v = self._check_batch(chunks, vectors)
        deletes = other_deletes(chunks, delete_ids)
        if chunks or deletes:
            self._write_chunks(chunks, v, deletes)

    def _write_chunks(self, chunks: list[Chunk], vectors: np.ndarray, deletes: list[str]) -> None:
        """Write checked ``chunks`` (``vectors``: float32) and delete ``deletes`` (ids that
        ``chunks`` do not write, once each); called only when there is something to do."""
        raise NotImplementedError

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        self._check_delete(ids, filter)
        self._require_space()
        return self._delete_chunks(None if ids is None else list(dict.fromkeys(ids)), filter)

    def _delete_chunks(self, ids: list[str] | None, filter: Filter | None) -> int:
        """Delete the chunks of ``ids`` (once each; ``None``: none named) and those matching
        ``filter``; returns how many were removed."""
        raise NotImplementedError

    def get(self, ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        return in_order(ids, self._read_chunks(list(dict.fromkeys(ids))))

    def _read_chunks(self, ids: list[str]) -> Mapping[str, Chunk]:
        """``{id: Chunk}`` for those of ``ids`` (distinct) that exist."""
        raise NotImplementedError

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        dim = self._require_space().dim
        return vectors_in_order(ids, self._read_vectors(list(dict.fromkeys(ids))), dim)

    def _read_vectors(self, ids: list[str]) -> Mapping[str, Any]:
        """``{id: vector}`` for those of ``ids`` (distinct) that exist."""
        raise NotImplementedError

    def get_by_document(self, document_ids: Sequence[str]) -> list[Chunk]:
        self._require_space()
        docs = list(dict.fromkeys(document_ids))
        return by_document(docs, self._read_documents(docs)) if docs else []

    def _read_documents(self, docs: list[str]) -> Iterable[Chunk]:
        """Every chunk of the documents ``docs`` (distinct, at least one), in any order."""
        raise NotImplementedError

    # ----------------------------------------------------------------- keyword beside
    def _keyword_index(self) -> KeywordBeside:
        """An empty exact BM25 index for this store's space (rank_bm25's scores)."""
        space = self._require_space()
        if self.tokenizer is None:
            raise ConfigurationError(f"{self.name} store used before connect(space)")
        k1, b, eps = space.keyword_params()
        return KeywordBeside(k1=k1, b=b, epsilon=eps, tokenizer=self.tokenizer)

    def _keyword_search(
        self,
        kw: KeywordBeside,
        text: str,
        k: int,
        fetch: Any,
        filtered: bool,
        *,
        matching: Any = None,
        widen_to: int = 0,
    ) -> list[Scored]:
        """The BM25 leg over ``kw``: ``fetch(ids, apply_filter) -> {id: Chunk}``; ``matching``
        and ``widen_to`` as in :meth:`KeywordBeside.search`."""
        tokens = kw.tokenizer(self._check_text(text))
        if not tokens:
            return []
        found = kw.search(tokens, k, fetch, filtered=filtered, matching=matching, widen_to=widen_to)
        return [Scored(c, x) for _, c, x in found]


class BesideKit(StoreKit):
    """A :class:`StoreKit` whose exact BM25 index lives beside a database other clients write
    too (Chroma, Milvus, DuckDB, Qdrant's exact mode). Every write records a fresh generation
    token in the collection (:meth:`_write_gen`); a store that reads a token it did not write
    (:meth:`_read_gen`) rebuilds its index from :meth:`_texts` on its next keyword search.
    Writes go through ``with self._writing(chunks, deleted):``, keyword searches through
    :meth:`_beside`; ``delete`` is made of :meth:`_existing`, :meth:`_matching` and
    :meth:`_delete_ids`."""

    def __init__(self) -> None:
        super().__init__()
        self._kw: KeywordBeside | None = None
        self._gen: str | None = None  # the token the index reflects

    def _read_gen(self) -> str | None:
        """The generation token recorded in the collection."""
        raise NotImplementedError

    def _write_gen(self, gen: str) -> None:
        """Record ``gen`` as the collection's generation token."""
        raise NotImplementedError

    def _texts(self) -> Iterable[tuple[str, str]]:
        """Every chunk's ``(id, text)``."""
        raise NotImplementedError

    def _existing(self, ids: list[str]) -> Iterable[str]:
        """Those of ``ids`` (distinct) that are stored."""
        raise NotImplementedError

    def _matching(self, filter: Filter) -> Iterable[str]:
        """The ids of the chunks that pass ``filter``."""
        raise NotImplementedError

    def _delete_ids(self, ids: list[str]) -> None:
        """Delete the chunks of ``ids`` (stored ones)."""
        raise NotImplementedError

    def _delete_chunks(self, ids: list[str] | None, filter: Filter | None) -> int:
        with self._lock:
            doomed = set(self._existing(ids)) if ids else set()
            if filter is not None:
                doomed.update(self._matching(filter))
            if doomed:
                with self._writing((), sorted(doomed)):
                    self._delete_ids(sorted(doomed))
            return len(doomed)

    def _beside(self) -> KeywordBeside:
        """The BM25 index, rebuilt first when another client wrote (call under the lock)."""
        gen = self._read_gen()  # read before the scan: a later write means another rebuild
        if self._kw is None or gen != self._gen:
            kw = self._keyword_index()
            # one add for all: one add per chunk took 7.5 s for 5k chunks, this 0.04 s
            texts = dict(self._texts())
            kw.add(list(texts), [kw.tokenizer(t) for t in texts.values()])
            self._kw, self._gen = kw, gen
        return self._kw

    def refresh(self) -> None:
        """Rebuild the keyword index from the collection now (after other clients' writes)."""
        with self._lock:
            self._require_space()
            self._kw = None
            self._beside()

    @contextmanager
    def _writing(self, chunks: Sequence[Chunk] = (), deleted: Sequence[str] = ()) -> Iterator[None]:
        """Wrap a write of ``chunks`` and ``deleted`` (under the lock): the index follows it and
        a new token is recorded, also when it failed (the index is then rebuilt)."""
        if self._read_gen() != self._gen:
            self._kw = None  # another client wrote: rebuild on the next keyword search
        self._check_writable()
        try:
            yield
        except BaseException:
            self._kw = None  # perhaps partly written: rebuild from what is there
            with suppress(VecmemError):  # the original error says more
                self._publish()
            raise
        self._publish()
        if self._kw is not None:
            self._kw.write(chunks, deleted)

    def _check_writable(self) -> None:
        """Raise before a write the collection refuses (called just after :meth:`_read_gen`;
        a :class:`Switchable` one refuses a space a switch replaced)."""

    def _publish(self) -> None:
        gen = uuid.uuid4().hex
        self._write_gen(gen)
        self._gen = gen


class Switchable(StoreKit):
    """A :class:`StoreKit` whose engine can switch a collection to an embedding space built
    beside it in one atomic step: how :func:`vecmem.lifecycle.reembed.reembed` re-embeds it
    without downtime.

    A collection's space lives under a *physical* name: the collection's own at first, then
    alternately ``<collection>__b`` and the collection's own. A pointer (one record per
    collection, written in one atomic commit of the engine) says which is current; a store
    reads it once, on first use, and keeps that space for its whole life, so a reader in another
    process answers from the old space or the new, never a mix. ``_pin`` fixes the name.

    Backends supply ``_pointer`` and ``_set_pointer`` (the record), ``_space_stamp`` (what a write
    of the space changes), ``_mark_replaced`` (so that the old space's writers are refused from
    then on) and ``_drop_named``; the switch itself (:meth:`_switch_pointer`), the store over the
    other name (:meth:`_sibling_store`: the same constructor arguments), :meth:`space_sibling`,
    :meth:`switch_space` and :meth:`drop_old_space` are written here once. An engine with
    transactions (pgvector, DuckDB) overrides ``_switch_pointer`` and ``_drop_physical`` to make
    each one transaction.

    >>> store = PgVector(url, table="kb")                          # doctest: +SKIP
    >>> new = store.space_sibling(); new.connect(space)             # doctest: +SKIP
    >>> store.switch_space(new, verify=check)                       # doctest: +SKIP
    """

    SIBLING: ClassVar[str] = "__b"
    collection: str
    """The collection's (logical) name."""
    _arguments: tuple[tuple[Any, ...], dict[str, Any]]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # the constructor's arguments, for the store over the other physical name
        self = super().__new__(cls)
        self._arguments = (args, kwargs)
        return self

    def __init__(self) -> None:
        super().__init__()
        self._physical: str | None = None

    # ----------------------------------------------------------------- backend hooks
    def _pointer(self, client: Any) -> tuple[str, str | None] | None:
        """The collection's pointer, read through the opened ``client``: the physical name of
        its space and that of the old space the last switch left (``None`` once dropped);
        ``None``: no pointer yet."""
        raise NotImplementedError

    def _set_pointer(self, client: Any, physical: str, replaced: str | None) -> None:
        """Write the collection's pointer in one atomic commit (creating its home if needed)."""
        raise NotImplementedError

    def _space_stamp(self) -> Any:
        """A value every write of this store's space changes (a generation, a table version)."""
        raise NotImplementedError

    def _mark_replaced(self, client: Any, by: str) -> None:
        """Record in this store's space that a switch replaced it by ``by`` (default: nothing;
        its writers then cannot be refused)."""

    def _drop_named(self, physical: str) -> None:
        """Delete the space stored under ``physical`` (nothing if there is none)."""
        raise NotImplementedError

    def _delete_pointer(self) -> None:
        """Delete the collection's pointer (:meth:`drop`; there is one)."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Forget what this store knew of the collection (:meth:`drop` deleted it)."""
        self.space = None

    # ----------------------------------------------------------------- written once
    def _switch_pointer(
        self, new: Switchable, verify: Callable[[], None], midway: Callable[[], None]
    ) -> bool:
        """Point the collection at ``new``'s space in one atomic commit, after ``verify()``
        (which raises when the two spaces differ); :class:`ConflictError` when the pointer no
        longer names this store's space. ``midway()`` runs just before the commit (fault
        tests). Returns whether writers may have written the old space between the check and
        the commit (the engine has no lock that keeps them out): the caller copies what
        changed."""
        with self._errors("switch the space"):
            before = self._space_stamp()
            verify()
            client, here = self._c(), self.physical
            pointer = self._pointer(client)
            self._refuse_moved(pointer[0] if pointer else None, here)
            midway()
            self._set_pointer(client, new.physical, here)
            self._mark_replaced(client, new.physical)
            return bool(self._space_stamp() != before)

    def _drop_physical(self, physical: str) -> None:
        """Delete the old space stored under ``physical`` and clear it from the pointer."""
        with self._lock, self._errors("drop the old space"):
            self._drop_named(physical)
            self._set_pointer(self._c(), self.physical, None)

    def drop(self) -> None:
        """Delete the collection: its space, the old space a re-embedding left beside it, and
        its pointer; a no-op when absent."""
        with self._lock, self._errors("drop"):
            pointer = self._pointer(self._c())
            for name in dict.fromkeys([self.physical, *(p for p in pointer or () if p)]):
                self._drop_named(name)
            if pointer is not None:
                self._delete_pointer()
            self._forget()

    def _sibling_store(self, physical: str) -> Switchable:
        """A new store made with this one's constructor arguments, over the space named
        ``physical``."""
        args, kwargs = self._arguments
        other = type(self)(*args, **kwargs)
        other._pin(physical)
        return other

    def _refuse_moved(self, current: str | None, here: str) -> None:
        """:class:`ConflictError` unless the pointer (``current``: the physical name it names,
        ``None``: no pointer yet, the collection's own name) still names ``here``: another
        client switched the collection since this store pinned its space."""
        if (current or self.collection) != here:
            raise ConflictError(
                f"collection {self.collection!r} was switched to {current!r} by another client "
                "meanwhile; nothing was switched"
            )

    def _refuse_differing(self, n_old: int, n_new: int, differ: int) -> None:
        """:class:`ConflictError` when ``differ`` chunks differ between the two spaces (counted
        in the switch's transaction: written meanwhile)."""
        if differ:
            raise ConflictError(
                f"the new space differs from {self.where} in {differ} chunks ({n_old} there, "
                f"{n_new} in the new one): written meanwhile; nothing was switched"
            )

    def _refuse_replaced(self, by: str | None) -> None:
        """:class:`SpaceReplacedError` when a switch replaced this store's space by ``by``
        (read from the space just before a write)."""
        if by:
            raise SpaceReplacedError(
                f"{self.where} was replaced by a re-embedded space ({by}) after this store "
                "opened it; nothing was written: reopen the store"
            )

    def _c(self) -> Any:
        client = super()._c()
        if self._physical is None:  # once: the store keeps that space for its life
            with self._lock, self._errors("read the collection's pointer"):
                if self._physical is None:
                    pointer = self._pointer(client)
                    self._pin(pointer[0] if pointer else self.collection)
        return client

    def _read_pointer(self) -> tuple[str, str | None] | None:
        """The collection's pointer as it is now (see :meth:`_pointer`)."""
        with self._lock, self._errors("read the collection's pointer"):
            return self._pointer(self._c())

    def _pin(self, physical: str) -> None:
        """Use the space stored under ``physical`` from now on (before the client opens)."""
        self._physical = physical

    def _resolve(self) -> str:
        """The physical name, read from the pointer on first use, then fixed."""
        if self._physical is None:
            pointer = self._read_pointer()
            self._pin(pointer[0] if pointer else self.collection)
        return self._physical  # type: ignore[return-value]

    @property
    def physical(self) -> str:
        """The name the space this store uses is stored under."""
        with self._lock:
            self._c()
            return self._resolve()

    def _other(self) -> str:
        here = self.physical
        return self.collection + self.SIBLING if here == self.collection else self.collection

    def space_sibling(self) -> Switchable:
        """A store over the collection's other physical name, where a new space is built while
        this one keeps answering."""
        return self._sibling_store(self._other())

    def switch_space(
        self,
        new: Switchable,
        *,
        verify: Callable[[], None],
        midway: Callable[[], None] = lambda: None,
    ) -> bool:
        """Make ``new`` (from :meth:`space_sibling`, connected and filled) the collection's
        space, atomically; this store keeps the old one (its writes are refused from then on
        where the engine can tell, see the backend). Returns ``True`` when writers may have
        changed the old space during the switch (copy those changes over)."""
        if type(new) is not type(self) or new.collection != self.collection:
            raise ConfigurationError("switch_space takes this collection's space_sibling()")
        if new.physical != self._other():
            raise ConfigurationError(f"{new.where} is not beside {self.where}")
        new._require_space()
        with self._lock:
            return self._switch_pointer(new, verify, midway)

    def old_space(self) -> str | None:
        """The physical name of the old space the last switch left beside this one (``None``
        when there is none or it was dropped)."""
        with self._lock:
            pointer = self._read_pointer()
        return pointer[1] if pointer is not None and pointer[1] != self.physical else None

    def drop_old_space(self) -> bool:
        """Delete the old space a switch left beside the collection's current one; ``False``
        when there is none (a space being built there is not touched)."""
        other = self._other()
        if self.old_space() != other:
            return False
        self._drop_physical(other)
        return True


# --------------------------------------------------------------------------- reads
def in_order(ids: Sequence[str], found: Mapping[str, T]) -> list[T]:
    """What ``found`` holds for ``ids``, in their order, unknown ids left out (``get``)."""
    return [found[i] for i in ids if i in found]


def vectors_in_order(ids: Sequence[str], found: Mapping[str, Any], dim: int) -> np.ndarray:
    """The vectors ``found`` holds for ``ids``, in their order, as one float32 array
    (``get_vectors``); an unknown id is :class:`InvalidInputError`."""
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInputError(f"unknown chunk ids: {missing[:5]}")
    return np.asarray([found[i] for i in ids], dtype=np.float32).reshape(len(ids), dim)


def by_document(document_ids: Sequence[str], chunks: Iterable[Chunk]) -> list[Chunk]:
    """``chunks`` grouped by document in the order of ``document_ids``, each document's by
    chunk id (``get_by_document``)."""
    grouped: dict[str, list[Chunk]] = {}
    for c in chunks:
        grouped.setdefault(c.document_id, []).append(c)
    docs = dict.fromkeys(document_ids)
    return [c for d in docs for c in sorted(grouped.get(d, ()), key=lambda c: c.id)]


def id_page(ids: Iterable[str], after: str | None, limit: int) -> list[str]:
    """Up to ``limit`` of ``ids`` greater than ``after``, ascending (``page_ids`` of a database
    that lists ids only in its own order)."""
    return sorted(i for i in ids if after is None or i > after)[:limit]


def other_deletes(chunks: Sequence[Chunk], delete_ids: Sequence[str]) -> list[str]:
    """``delete_ids`` once each, without the ids ``chunks`` write (``upsert``)."""
    written = {c.id for c in chunks}
    return [i for i in dict.fromkeys(delete_ids) if i not in written]


# --------------------------------------------------------------------------- URLs
@dataclass(frozen=True)
class StoreUrl:
    """A store URL taken apart: ``scheme://host:port/path?name=value``."""

    scheme: str
    host: str | None
    port: int | None
    path: str
    """Host and path joined, unquoted (``:memory:``, ``./rel``, ``/abs``) for file URLs."""
    query: Mapping[str, str] = field(default_factory=dict)


def parse_url(url: str, *, schemes: Sequence[str], params: Sequence[str] = ()) -> StoreUrl:
    """Take a store URL apart, refusing another scheme or an unknown ``?parameter``.

    >>> parse_url("duckdb:///srv/kb.db?table=kb", schemes=("duckdb",), params=("table",)).path
    '/srv/kb.db'
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        raise ConfigurationError(f"not a {' / '.join(schemes)} URL: {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - set(params)
    if unknown:
        raise ConfigurationError(
            f"unknown URL parameters {sorted(unknown)} in {url!r}; known: {sorted(params)}"
        )
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # no host:port (``:memory:``): a file URL, or a host URL with a bad port
        host, port = None, None
    return StoreUrl(scheme, host, port, unquote(parts.netloc + parts.path), query)


__all__ = [
    "BesideKit",
    "StoreKit",
    "StoreUrl",
    "Switchable",
    "by_document",
    "id_page",
    "in_order",
    "other_deletes",
    "parse_url",
    "vectors_in_order",
]
