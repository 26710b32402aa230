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
``from_url`` (:func:`parse_url`).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from vecmem.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
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

    def _check_batch(self, chunks: Sequence[Chunk], vectors: Any) -> np.ndarray:
        return validate_batch(chunks, vectors, self._require_space().dim)

    @staticmethod
    def _check_delete(ids: Sequence[str] | None, filter: Filter | None) -> None:
        if ids is None and filter is None:
            raise InvalidInputError("delete needs ids or a filter (use clear() for all)")

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
        tokens = kw.tokenizer(text)
        if not tokens:
            return []
        found = kw.search(tokens, k, fetch, filtered=filtered, matching=matching, widen_to=widen_to)
        return [Scored(c, x) for _, c, x in found]


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


__all__ = ["StoreKit", "StoreUrl", "parse_url"]
