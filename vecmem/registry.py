"""Registries of vecmem's extension points: built-ins and third-party plugins, by name or URL.

- :data:`KNOWLEDGE_STORES`: vector / RAG stores (pgvector, qdrant, chroma, embedded, ...),
  entry-point group ``vecmem.knowledge_stores``;
- :data:`EMBEDDERS`: embedders by kind (sentence-transformers, onnx, hashing), ``vecmem.embedders``;
- :data:`RERANKERS`: rerankers (cross-encoder, mmr), ``vecmem.rerankers``;
- :data:`FILE_STORES`: path-based file stores (memory, sqlite, postgres, disk, redis),
  ``vecmem.file_stores``;
- :data:`CONVERSATION_STORES` and :data:`STATE_STORES`: ``vecmem.conversation_stores``,
  ``vecmem.state_stores``;
- :data:`LOADERS`: file formats (pdf, docx, html, pptx, xlsx, ...), ``vecmem.loaders``.

Built-in backends register themselves exactly as a plugin would, when the registry is first
used, so ``import vecmem`` stays fast. Third-party packages declare an entry point in the
registry's group whose value is the factory; entry points are discovered lazily and loaded only
when created.

A URL picks the backend by its scheme, which is a registered name or alias (``sqlite:///path``,
``postgresql://...``, ``qdrant+http://host`` -> ``qdrant``: a ``+driver`` suffix is dropped), so a
plugin claims a scheme by its name; the factory then receives ``url=`` plus the keyword arguments
given to :meth:`Registry.create`.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Generic, TypeVar

from vecmem.errors import ConfigurationError

T = TypeVar("T")

POSTGRES_HOSTED = ("neon", "xata")
"""URL schemes of hosted PostgreSQL services, opened as ``postgresql://``."""
COCKROACH_SCHEMES = ("cockroachdb", "cockroach", "crdb")
"""URL schemes of CockroachDB, opened with sqlalchemy-cockroachdb's dialect (extra ``cockroachdb``)."""
PG_COMPATIBLE = POSTGRES_HOSTED + COCKROACH_SCHEMES
"""Aliases of the ``postgres`` stores for PostgreSQL-compatible databases."""
Factory = Callable[..., Any]


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Factory | None
    entry_point: metadata.EntryPoint | None
    builtin: bool
    aliases: tuple[str, ...]


def _bind_problem(factory: Factory, kwargs: dict[str, Any]) -> str | None:
    """Why ``factory(**kwargs)`` cannot be called (unknown/missing arguments), or None."""
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as exc:
        return str(exc)
    except ValueError:  # no signature available (some builtins): let the call decide
        pass
    return None


def _scheme(name_or_url: str) -> str | None:
    """The backend name of a URL's scheme (driver suffix dropped), or None if not a URL."""
    if "://" not in name_or_url:
        return None
    scheme = name_or_url.split("://", 1)[0].lower()
    return scheme.split("+", 1)[0]


class Registry(Generic[T]):
    """A thread-safe name -> factory table with aliases and entry-point discovery.

    >>> reg: Registry[object] = Registry("widgets", entry_point_group="example.widgets")
    >>> reg.register("plain", lambda *, url=None, size=1: {"size": size}, aliases=("basic",))
    >>> reg.create("basic", size=3)
    {'size': 3}
    >>> reg.list_registered()
    ['plain']
    """

    def __init__(
        self, kind: str, *, entry_point_group: str, builtin_modules: Iterable[str] = ()
    ) -> None:
        # ``builtin_modules`` are imported on first use; what they register (and any factory
        # defined in them) is a built-in, protected from being replaced by a plugin.
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, _Entry] = {}
        self._aliases: dict[str, str] = {}
        self._lock = threading.RLock()
        self._loading_builtins = False
        self._builtins_loaded = not self._builtin_modules
        self._seen_entry_points: set[tuple[str, str]] = set()
        self._discovered = False

    # -- registration -------------------------------------------------------------------------
    def register(
        self,
        name: str,
        factory: Factory,
        *,
        aliases: Iterable[str] = (),
        replace: bool = False,
    ) -> None:
        """Register ``factory`` under ``name`` (and ``aliases``), all case-insensitive.

        Raises :class:`ConfigurationError` if a name or alias is taken, unless ``replace=True``
        and the taken name is not a built-in: built-ins can only be removed with
        :meth:`unregister` first, never replaced in passing.
        """
        if not callable(factory):
            raise ConfigurationError(f"factory for {self.kind} {name!r} is not callable")
        module = getattr(factory, "__module__", None) or ""
        builtin = any(module == m or module.startswith(m + ".") for m in self._builtin_modules)
        with self._lock:
            self._load_builtins()
            self._add(_Entry(name.lower(), factory, None, builtin, ()), aliases, replace=replace)

    def _add(self, entry: _Entry, aliases: Iterable[str], *, replace: bool) -> None:
        names = [entry.name, *(a.lower() for a in aliases)]
        if not entry.name or any(not n or "://" in n for n in names):
            raise ConfigurationError(f"invalid {self.kind} name or alias in {names!r}")
        for n in names:
            owner = self._aliases.get(n, n if n in self._entries else None)
            if owner is None:
                continue
            if self._entries[owner].builtin:
                raise ConfigurationError(
                    f"{n!r} is a built-in {self.kind} name and cannot be replaced; "
                    f"unregister({owner!r}) first if you really mean to"
                )
            if not replace:
                raise ConfigurationError(
                    f"{self.kind} {n!r} is already registered; pass replace=True to replace it"
                )
            self._remove(owner)
        self._entries[entry.name] = _Entry(
            entry.name, entry.factory, entry.entry_point, entry.builtin, tuple(names[1:])
        )
        for alias in names[1:]:
            self._aliases[alias] = entry.name

    def unregister(self, name: str) -> None:
        """Remove ``name`` (or the entry an alias points to) and its aliases."""
        with self._lock:
            self._load_builtins()
            key = self._aliases.get(name.lower(), name.lower())
            if key not in self._entries:
                raise ConfigurationError(self._unknown(name))
            self._remove(key)

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key)
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    # -- lookup -------------------------------------------------------------------------------
    def create(self, name_or_url: str, **kwargs: Any) -> T:
        """Create a store by registered name, alias or URL (``url=`` is passed to the factory)."""
        if not isinstance(name_or_url, str):
            raise ConfigurationError(
                f"a {self.kind} is named by a str, got {type(name_or_url).__name__}"
            )
        scheme = _scheme(name_or_url)
        factory = self._factory(scheme if scheme is not None else name_or_url)
        if scheme is not None:
            kwargs["url"] = name_or_url
        problem = _bind_problem(factory, kwargs)
        if problem is not None:
            raise ConfigurationError(f"cannot create {self.kind} {name_or_url!r}: {problem}")
        return factory(**kwargs)

    def key_of(self, name_or_url: str) -> str | None:
        """The registered name that ``name_or_url`` (a name, alias or URL) resolves to, or None.

        Looks only; nothing is created or loaded except the built-ins and entry-point names.
        """
        scheme = _scheme(name_or_url)
        key = (scheme if scheme is not None else name_or_url).lower()
        with self._lock:
            self._load_builtins()
            entry = self._lookup(key)
            if entry is None:
                self._discover(force=True)
                entry = self._lookup(key)
            return None if entry is None else entry.name

    def get_factory(self, name: str) -> Factory:
        """The factory registered under ``name`` or an alias (loading a plugin if needed)."""
        return self._factory(name)

    def _factory(self, name: str) -> Factory:
        key = name.lower()
        with self._lock:
            self._load_builtins()
            entry = self._lookup(key)
            if entry is None:
                self._discover(force=True)  # a plugin installed since the last look
                entry = self._lookup(key)
            if entry is None:
                raise ConfigurationError(self._unknown(name))
            if entry.factory is None:
                if entry.entry_point is None:
                    raise ConfigurationError("vecmem internal error: no entry point")
                try:
                    factory = entry.entry_point.load()
                except Exception as exc:
                    raise ConfigurationError(
                        f"cannot load {self.kind} plugin {entry.name!r} "
                        f"({entry.entry_point.value}): {exc}"
                    ) from exc
                entry = _Entry(entry.name, factory, entry.entry_point, False, entry.aliases)
                self._entries[entry.name] = entry
            if entry.factory is None:
                raise ConfigurationError("vecmem internal error: no factory")
            return entry.factory

    def _lookup(self, key: str) -> _Entry | None:
        self._discover()
        return self._entries.get(self._aliases.get(key, key))

    def list_registered(self) -> list[str]:
        """Sorted names of every backend (built-in and discovered plugins), without aliases."""
        with self._lock:
            self._load_builtins()
            self._discover(force=True)
            return sorted(self._entries)

    def list_aliases(self) -> dict[str, str]:
        """Alias -> name for every registered alias."""
        with self._lock:
            self._load_builtins()
            self._discover()
            return dict(sorted(self._aliases.items()))

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        with self._lock:
            self._load_builtins()
            return self._lookup(name.lower()) is not None

    def _unknown(self, name: str) -> str:
        names = ", ".join(sorted(self._entries)) or "none"
        aliases = ", ".join(f"{a} -> {n}" for a, n in sorted(self._aliases.items()))
        return (
            f"unknown {self.kind} {name!r}; available: {names}"
            + (f" (aliases: {aliases})" if aliases else "")
            + f"; plugins register through the entry-point group {self.entry_point_group!r}"
        )

    # -- lazy loading -------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        if self._builtins_loaded or self._loading_builtins:
            return
        self._loading_builtins = True
        try:
            for module in self._builtin_modules:
                importlib.import_module(module)
            self._builtins_loaded = True
        finally:
            self._loading_builtins = False

    def _discover(self, *, force: bool = False) -> None:
        if self._discovered and not force:
            return
        self._discovered = True
        try:
            found = metadata.entry_points(group=self.entry_point_group)
        except Exception as exc:  # noqa: BLE001 - a broken distribution must not break every lookup
            warnings.warn(f"cannot scan entry points: {exc}", RuntimeWarning, stacklevel=3)
            return
        for ep in found:
            ident = (ep.name, ep.value)
            if ident in self._seen_entry_points:
                continue
            self._seen_entry_points.add(ident)
            key = ep.name.lower()
            owner = self._aliases.get(key, key)
            if owner in self._entries:
                warnings.warn(
                    f"ignoring {self.kind} plugin {ep.name!r} ({ep.value}): the name is taken "
                    f"by {'a built-in' if self._entries[owner].builtin else 'another backend'}",
                    RuntimeWarning,
                    stacklevel=3,
                )
                continue
            self._add(_Entry(key, None, ep, False, ()), (), replace=False)


class LazyFactory:
    """A factory named ``"module:attr"``, imported on first use, that opens by options or by URL.

    Built-ins and plugins register with it without importing their (optional, maybe heavy)
    client: ``create("name", **options)`` calls ``target(**options)``; ``create("scheme://...")``
    calls ``from_url(url, **options)`` (default: the ``from_url`` function of the target's module).
    Unknown or missing options are a :class:`ConfigurationError` naming them.

    >>> from vecmem.registry import KNOWLEDGE_STORES, LazyFactory
    >>> KNOWLEDGE_STORES.register("milvus", LazyFactory("vecmem.stores.milvus:Milvus"))
    ... # doctest: +SKIP
    """

    def __init__(self, target: str, *, from_url: str | None = None) -> None:
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ConfigurationError(f"LazyFactory target must be 'module:attr', got {target!r}")
        self.target = target
        self.from_url = from_url if from_url is not None else f"{module}:from_url"
        # the registry tells built-ins from plugins by the module a factory comes from
        self.__module__ = module

    def __repr__(self) -> str:
        return f"LazyFactory({self.target!r}, from_url={self.from_url!r})"

    @staticmethod
    def _load(ref: str) -> Callable[..., Any]:
        module, _, attr = ref.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError as exc:
                raise ConfigurationError(f"{ref!r} does not exist") from exc
        return obj

    @property
    def __signature__(self) -> inspect.Signature:
        """``url`` plus the target's parameters, all keyword-only and all optional here (the
        target's own required ones are checked when it is called), so unknown names are caught
        before anything is opened."""
        params = [inspect.Parameter("url", inspect.Parameter.KEYWORD_ONLY, default=None)]
        var_kw: list[inspect.Parameter] = []
        for p in inspect.signature(self._load(self.target)).parameters.values():
            if p.kind is inspect.Parameter.VAR_KEYWORD:
                var_kw.append(p)
            elif p.kind is not inspect.Parameter.VAR_POSITIONAL and p.name != "url":
                params.append(
                    p.replace(
                        kind=inspect.Parameter.KEYWORD_ONLY,
                        default=p.default if p.default is not p.empty else None,
                    )
                )
        return inspect.Signature(params + var_kw)

    def __call__(self, *, url: str | None = None, **options: Any) -> Any:
        # **options is forwarded as is; __signature__ states which names are accepted
        if url is None:
            target = self._load(self.target)
            problem = _bind_problem(target, options)
            if problem is not None:
                raise ConfigurationError(
                    f"cannot create {self.target.rpartition(':')[2]}: {problem}"
                )
            return target(**options)
        opener = self._load(self.from_url)
        try:
            inspect.signature(opener).bind(url, **options)
        except TypeError as exc:
            raise ConfigurationError(
                f"{sorted(options)} cannot be given with a URL here ({exc}); put them in the "
                "URL's query, or create the store by name with keyword options"
            ) from exc
        return opener(url, **options)


class _KnowledgeStores(Registry[Any]):
    """:data:`KNOWLEDGE_STORES`, which held the file stores in vecmem 0.1 (now
    :data:`FILE_STORES`). For one release, a name or URL only :data:`FILE_STORES` knows
    (``sqlite:///agent.db``, ``disk``, ``redis://``...), or options only a file store accepts
    (``memory://`` with ``tenant=``), still create the file store, with a DeprecationWarning."""

    def __init__(
        self, *, files: Registry[Any], entry_point_group: str, builtin_modules: Iterable[str]
    ) -> None:
        super().__init__(
            "knowledge store", entry_point_group=entry_point_group, builtin_modules=builtin_modules
        )
        self._files = files

    def create(self, name_or_url: str, **kwargs: Any) -> Any:
        if isinstance(name_or_url, str) and self._means_a_file_store(name_or_url, kwargs):
            warnings.warn(
                f"KNOWLEDGE_STORES now holds vector stores; create the file store "
                f"{name_or_url!r} with vecmem.registry.FILE_STORES.create(...) instead (the "
                "old spelling stops working in the next release)",
                DeprecationWarning,
                stacklevel=2,
            )
            return self._files.create(name_or_url, **kwargs)
        return super().create(name_or_url, **kwargs)

    def _means_a_file_store(self, name_or_url: str, kwargs: dict[str, Any]) -> bool:
        files_key = self._files.key_of(name_or_url)
        if files_key is None:
            return False
        own_key = self.key_of(name_or_url)
        if own_key is None:
            return True
        if not kwargs:
            return False  # a name both know (memory, postgresql, file) means the vector store
        given = dict(kwargs, url=name_or_url) if _scheme(name_or_url) else kwargs
        try:
            fits_own = _bind_problem(self.get_factory(own_key), given) is None
        except ImportError:  # its client is not installed: the options decide
            fits_own = False
        return not fits_own and _bind_problem(self._files.get_factory(files_key), given) is None


FILE_STORES: Registry[Any] = Registry(
    "file store",
    entry_point_group="vecmem.file_stores",
    builtin_modules=("vecmem.knowledge_fs",),
)
"""Path-based file stores (read/write/append/list by path): memory, sqlite, postgres, mysql, disk
(``file://``), redis."""

KNOWLEDGE_STORES: Registry[Any] = _KnowledgeStores(
    files=FILE_STORES,
    entry_point_group="vecmem.knowledge_stores",
    builtin_modules=("vecmem.stores",),
)
"""Vector / RAG stores: pgvector (``postgresql://``), qdrant, chroma (``chromadb``), lancedb,
pinecone, embedded (a folder, ``file://``), memory. ``VectorMemory(...)`` and
``Knowledge(vector_db=...)`` accept any name, alias or URL it accepts."""

EMBEDDERS: Registry[Any] = Registry(
    "embedder",
    entry_point_group="vecmem.embedders",
    builtin_modules=("vecmem.embedders",),
)
"""Embedders by kind: sentence-transformers (``st``), onnx (int8 MiniLM, no PyTorch), hashing.
A factory takes ``model=`` (optional) plus its options; an embedder made by one is named
``kind`` or ``kind:model`` so that :func:`vecmem.embedders.resolve_embedder` reopens it from the
name a store recorded (see there)."""

RERANKERS: Registry[Any] = Registry(
    "reranker",
    entry_point_group="vecmem.rerankers",
    builtin_modules=("vecmem.rerank",),
)
"""Rerankers: cross-encoder, mmr. ``VectorMemory(reranker="cross-encoder")`` and
``"cross-encoder:MODEL"`` resolve through it (:func:`vecmem.rerank.resolve_reranker`)."""

CONVERSATION_STORES: Registry[Any] = Registry(
    "conversation store",
    entry_point_group="vecmem.conversation_stores",
    builtin_modules=("vecmem.conversations",),
)
"""Conversation stores: memory, file (JSON files), sqlite, postgres, mysql, and async_sqlite,
async_postgres, async_mysql on native async drivers (aiosqlite, psycopg's async API, asyncmy)."""

STATE_STORES: Registry[Any] = Registry(
    "state store",
    entry_point_group="vecmem.state_stores",
    builtin_modules=("vecmem.state",),
)
"""Key/value state stores: memory, sqlite, postgres, mysql, redis."""

LOADERS: Registry[Any] = Registry(
    "loader", entry_point_group="vecmem.loaders", builtin_modules=("vecmem.loaders",)
)
"""File loaders (a factory is a class with ``name``, ``suffixes``, ``mime_types`` and ``load``;
see :mod:`vecmem.loaders`): text, markdown, json, code, csv, pdf, docx, pptx, xlsx, html, epub."""

__all__ = [
    "COCKROACH_SCHEMES",
    "CONVERSATION_STORES",
    "EMBEDDERS",
    "FILE_STORES",
    "KNOWLEDGE_STORES",
    "LOADERS",
    "PG_COMPATIBLE",
    "POSTGRES_HOSTED",
    "RERANKERS",
    "STATE_STORES",
    "LazyFactory",
    "Registry",
]
