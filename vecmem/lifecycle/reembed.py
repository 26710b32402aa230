"""Re-embed an embedded store with another embedder, without downtime, then switch at once.

The new space is built beside the old one, in the sibling folder ``<store>.reembed`` (an
embedded store of its own), page by page from the old store's chunks: texts are embedded by
the new embedder (through an :class:`~vecmem.embedders.EmbeddingCache` when given, so a text
embedded before is not embedded again), chunks already there with the same id and content hash
are skipped (a build killed half way resumes). Searches keep answering from the old folder all
along. The switch is one ``renameat2(RENAME_EXCHANGE)`` of the two folders (Linux): atomic, so
at every instant ``<store>`` is one whole, usable space, old or new; after it the old space
lives in ``<store>.reembed`` until ``drop_old=True`` (or :func:`drop_old_space`) deletes it.

Stop writers of the store before the switch (searches may go on): a process that keeps the old
store open keeps writing into the old space, which after the switch is the sibling folder.

A database store (a URL) is re-embedded the same way through the backend kit's
:class:`~vecmem.stores.kit.Switchable`: the new space is built under the collection's other
physical name, and one atomic commit of the engine moves the collection's pointer to it (and
records which is the old one); see :func:`reembed`. Stores without such a commit raise
:class:`~vecmem.errors.SwitchUnsupportedError` before anything is built.

>>> reembed("./kb", "onnx:/models/e5.onnx", cache="./embeddings.db")   # doctest: +SKIP
>>> reembed("postgresql://localhost/db?collection=kb", "hashing-64")   # doctest: +SKIP
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecmem.embedders import CachedEmbedder, Embedder, EmbeddingCache, resolve_embedder
from vecmem.errors import (
    BackendError,
    ConfigurationError,
    ConflictError,
    IntegrityError,
    NotFoundError,
    SwitchUnsupportedError,
)
from vecmem.lifecycle.pages import Pages, progress_bar
from vecmem.types import EmbeddingSpace

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass(frozen=True)
class ReembedReport:
    """What :func:`reembed` did."""

    embedded: int
    skipped: int
    switched: bool
    old_space: str
    """Where the old space is after the switch: the folder, or for a database store the name
    of the table / collection holding it ("" once dropped)."""
    seconds: float


def _fault(point: str) -> None:
    """Fault-injection hook, a no-op ("reembed-page", "reembed-switch": just before the
    exchange, "reembed-switching": a database store's switch before its commit,
    "reembed-switched": just after it)."""


def sibling(path: Path) -> Path:
    return path.with_name(path.name + ".reembed")


def _exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (Linux ``renameat2`` with ``RENAME_EXCHANGE``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        raise ConfigurationError(
            "re-embedding needs renameat2 (Linux, glibc 2.28+) for its atomic switch"
        )
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise BackendError(
            f"cannot swap {a} and {b}: {os.strerror(err)} (errno {err}); nothing was switched"
        )


def reembed(
    store: str | os.PathLike[str],
    embedder: Embedder | str,
    *,
    cache: EmbeddingCache | str | os.PathLike[str] | None = None,
    page: int = 256,
    switch: bool = True,
    drop_old: bool = False,
    progress: bool = False,
) -> ReembedReport:
    """Build ``store`` again with ``embedder`` beside it, then (``switch``) switch to it
    atomically; see the module text. ``store``: an embedded store's folder, a URL or name that
    :func:`~vecmem.stores.open_store` takes, or a store object (not closed here). Run again
    after a crash, it goes on where it stopped; on a store already switched it only drops the
    old space if asked."""
    from vecmem.stores import open_store
    from vecmem.stores.embedded import EmbeddedStore
    from vecmem.stores.kit import StoreKit, Switchable

    t0 = time.perf_counter()
    base = resolve_embedder(embedder)
    if cache is not None and not isinstance(cache, EmbeddingCache):
        cache = EmbeddingCache(Path(cache))
    emb: Embedder = CachedEmbedder(base, cache) if cache is not None else base
    own = not hasattr(store, "connect")
    target: Any = open_store(store) if own else store
    if isinstance(target, EmbeddedStore):
        path = target.path
        if own:
            target.close()
        else:
            raise ConfigurationError(
                "re-embed an embedded store by its folder, not an open store (the folder is "
                "swapped)"
            )
        return _reembed_folder(path, base, emb, page, switch, drop_old, progress, t0)
    try:
        if not isinstance(target, Switchable):
            why = (
                type(target).switch_refusal
                if isinstance(target, StoreKit)
                else "it is not a database store of vecmem's backend kit"
            )
            raise SwitchUnsupportedError(
                f"{type(target).__name__} cannot be re-embedded without downtime: {why}. "
                "Migrate it into a new collection with the new embedder instead"
            )
        return _reembed_kit(target, base, emb, page, switch, drop_old, progress, t0)
    finally:
        if own:
            target.close()


def _new_space(old: EmbeddingSpace, base: Embedder) -> EmbeddingSpace:
    return EmbeddingSpace(
        base.name,
        base.dim,
        old.distance,
        old.tokenizer,
        old.chunker,
        old.bm25_k1,
        old.bm25_b,
        old.bm25_epsilon,
    )


def _foreign(recorded: EmbeddingSpace | None, space: EmbeddingSpace, where: str) -> None:
    if recorded is not None and (recorded.embedder, recorded.dim) != (space.embedder, space.dim):
        raise ConfigurationError(
            f"{where} holds a space made with {recorded.embedder!r}, neither the store's "
            f"nor the new one: move it away (an old space kept by an earlier re-embed? "
            "drop it with drop_old_space / vecmem reembed --drop-old)"
        )


def _build(old: Any, new: Any, emb: Embedder, page: int, progress: bool) -> tuple[int, int]:
    """Embed into ``new`` every chunk of ``old`` it lacks or holds with another content hash,
    and delete what ``old`` no longer holds; ``(embedded, skipped)``."""
    embedded = skipped = 0
    pages = Pages(old, page=page)
    with progress_bar(pages.total(), "re-embed", progress) as bar:
        for chunks, _vectors in pages:
            have = {c.id: c.content_hash for c in new.get([c.id for c in chunks])}
            todo = [c for c in chunks if have.get(c.id) != c.content_hash]
            if todo:
                new.upsert(todo, emb.embed([c.text for c in todo]))
            embedded += len(todo)
            skipped += len(chunks) - len(todo)
            bar.update(len(chunks))
            _fault("reembed-page")
    # chunks deleted from the old store since an interrupted run: not in the new one
    gone = _ids(new) - _ids(old)
    if gone:
        new.delete(ids=sorted(gone))
    return embedded, skipped


def _same(old: Any, new: Any) -> None:
    """:class:`ConflictError` unless both stores hold the same ids with the same hashes."""
    if new.count() != old.count():
        raise ConflictError(
            f"the new space holds {new.count()} chunks, the store {old.count()}: written "
            "meanwhile; nothing was switched"
        )
    for chunks, _ in Pages(old, page=2048):
        have = {c.id: c.content_hash for c in new.get([c.id for c in chunks])}
        if any(have.get(c.id) != c.content_hash for c in chunks):
            raise ConflictError("the store changed while its new space was checked")


def _reembed_kit(
    store: Any,
    base: Embedder,
    emb: Embedder,
    page: int,
    switch: bool,
    drop_old: bool,
    progress: bool,
    t0: float,
) -> ReembedReport:
    """:func:`reembed` of a :class:`~vecmem.stores.kit.Switchable` database store."""
    old_space = store.stored_space()
    if old_space is None:
        raise NotFoundError(f"{store.where} holds no collection to re-embed")
    if old_space.embedder == base.name and old_space.dim == base.dim:  # switched already
        if drop_old:
            store.drop_old_space()
        left = store.old_space() or ""
        return ReembedReport(0, 0, False, left, round(time.perf_counter() - t0, 3))
    space = _new_space(old_space, base)
    store.connect(old_space)
    new = store.space_sibling()
    try:
        _foreign(new.stored_space(), space, new.where)
        new.connect(space)
        embedded, skipped = _build(store, new, emb, page, progress)
        if not switch:
            return ReembedReport(embedded, skipped, False, "", round(time.perf_counter() - t0, 3))
        _fault("reembed-switch")
        for attempt in range(3):
            try:
                moved = store.switch_space(
                    new,
                    verify=lambda: _same(store, new),
                    midway=lambda: _fault("reembed-switching"),
                )
                break
            except ConflictError:
                if attempt == 2:
                    raise
                e, s = _build(store, new, emb, page, False)  # writers wrote meanwhile
                embedded, skipped = embedded + e, skipped + s - e
        _fault("reembed-switched")
        if moved:  # the engine could not keep writers out: what they wrote goes over too
            embedded += _build(store, new, emb, page, False)[0]
        old_name, new_name = store.physical, new.physical
    finally:
        new.close()
    if drop_old:
        current = store._sibling_store(new_name)
        try:
            current.drop_old_space()
        finally:
            current.close()
    return ReembedReport(
        embedded, skipped, True, "" if drop_old else old_name, round(time.perf_counter() - t0, 3)
    )


def _reembed_folder(
    path: Path,
    base: Embedder,
    emb: Embedder,
    page: int,
    switch: bool,
    drop_old: bool,
    progress: bool,
    t0: float,
) -> ReembedReport:
    """:func:`reembed` of an embedded store's folder."""
    from vecmem.stores.embedded import EmbeddedStore

    side = sibling(path)
    old = EmbeddedStore(path)
    try:
        old_space = old.stored_space()
        if old_space is None:
            raise NotFoundError(f"{path} holds no store to re-embed")
        if old_space.embedder == base.name and old_space.dim == base.dim:  # switched already
            if drop_old and side.exists():
                drop_old_space(path)
            return ReembedReport(
                0, 0, False, str(side) if side.exists() else "", round(time.perf_counter() - t0, 3)
            )
        space = _new_space(old_space, base)
        old.connect(old_space)
        new = EmbeddedStore(side)
        try:
            _foreign(new.stored_space(), space, str(side))
            new.connect(space)
            embedded, skipped = _build(old, new, emb, page, progress)
            if new.count() != old.count():
                raise IntegrityError(
                    f"re-embedding check failed: {old.count()} chunks in the "
                    f"store, {new.count()} in the new space"
                )
            new.flush()
        finally:
            new.close()
    finally:
        old.close()
    if not switch:
        return ReembedReport(embedded, skipped, False, "", round(time.perf_counter() - t0, 3))
    _fault("reembed-switch")
    _exchange(path, side)
    _fault("reembed-switched")
    if drop_old:
        drop_old_space(path)
    return ReembedReport(
        embedded, skipped, True, "" if drop_old else str(side), round(time.perf_counter() - t0, 3)
    )


def _ids(store: Any) -> set[str]:
    out: set[str] = set()
    after = None
    while page := store.page_ids(after=after, limit=4096):
        out.update(page)
        after = page[-1]
    return out


def drop_old_space(store: str | os.PathLike[str]) -> bool:
    """Delete the old space a switched :func:`reembed` left beside ``store`` (a folder, or a
    database store's URL); ``False`` when there is none."""
    from vecmem.stores import open_store
    from vecmem.stores.kit import Switchable

    if isinstance(store, str) and "://" in store:
        target = open_store(store)
        try:
            if not isinstance(target, Switchable):
                return False
            return target.drop_old_space()
        finally:
            target.close()
    side = sibling(Path(os.fspath(store)))
    try:
        shutil.rmtree(side)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise BackendError(f"cannot delete the old space {side}: {exc}") from exc
    return True
