"""Registries of store backends: built-ins and third-party plugins, picked by name or by URL.

Three registries exist: :data:`KNOWLEDGE_STORES` (path-based knowledge stores),
:data:`CONVERSATION_STORES` and :data:`STATE_STORES`. Built-in backends register themselves
exactly as a plugin would, when their module is first needed, so ``import vecmem`` stays fast.
Third-party packages declare an entry point in the group named by the registry
(``vecmem.knowledge_stores``, ``vecmem.conversation_stores``, ``vecmem.state_stores``) whose
value is the factory; entry points are discovered lazily and loaded only when created.

A URL picks the backend by its scheme (``sqlite:///path``, ``postgresql://...``, ``mysql://...``,
``redis://...``, ``memory://``, ``file:///dir``); the factory then receives ``url=`` plus the
keyword arguments given to :meth:`Registry.create`.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Generic, Iterable, TypeVar

from vecmem.errors import ConfigurationError

T = TypeVar("T")
Factory = Callable[..., Any]


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Factory | None
    entry_point: metadata.EntryPoint | None
    builtin: bool
    aliases: tuple[str, ...]


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
        scheme = _scheme(name_or_url)
        factory = self._factory(scheme if scheme is not None else name_or_url)
        if scheme is not None:
            kwargs["url"] = name_or_url
        try:
            inspect.signature(factory).bind(**kwargs)
        except TypeError as exc:
            raise ConfigurationError(f"cannot create {self.kind} {name_or_url!r}: {exc}") from exc
        except ValueError:  # no signature available (some builtins): let the call decide
            pass
        return factory(**kwargs)  # type: ignore[no-any-return]

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
        except Exception as exc:  # a broken distribution must not break every registry lookup
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


KNOWLEDGE_STORES: Registry[Any] = Registry(
    "knowledge store",
    entry_point_group="vecmem.knowledge_stores",
    builtin_modules=("vecmem.knowledge_fs",),
)
"""Path-based knowledge stores: memory, sqlite, postgres, mysql, disk (``file://``), redis."""

CONVERSATION_STORES: Registry[Any] = Registry(
    "conversation store",
    entry_point_group="vecmem.conversation_stores",
    builtin_modules=("vecmem.conversations",),
)
"""Conversation stores: memory, file (JSON files), sqlite, postgres, mysql."""

STATE_STORES: Registry[Any] = Registry(
    "state store",
    entry_point_group="vecmem.state_stores",
    builtin_modules=("vecmem.state",),
)
"""Key/value state stores: memory, sqlite, postgres, mysql, redis."""

__all__ = ["CONVERSATION_STORES", "KNOWLEDGE_STORES", "STATE_STORES", "Registry"]
