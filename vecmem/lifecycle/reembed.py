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

>>> reembed("./kb", "onnx:/models/e5.onnx", cache="./embeddings.db")   # doctest: +SKIP
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
    IntegrityError,
    NotFoundError,
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
    """The folder holding the old space after the switch ("" once dropped)."""
    seconds: float


def _fault(point: str) -> None:
    """Fault-injection hook, a no-op ("reembed-page", "reembed-switch": just before the
    exchange, "reembed-switched": just after it)."""


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
    """Build ``store`` (an embedded store's folder) again with ``embedder`` beside it, then
    (``switch``) swap it in atomically; see the module text. Run again after a crash, it goes
    on where it stopped; on a store already switched it only drops the old space if asked."""
    from vecmem.stores.embedded import EmbeddedStore

    t0 = time.perf_counter()
    path = Path(os.fspath(store))
    side = sibling(path)
    base = resolve_embedder(embedder)
    if cache is not None and not isinstance(cache, EmbeddingCache):
        cache = EmbeddingCache(Path(cache))
    emb: Embedder = CachedEmbedder(base, cache) if cache is not None else base
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
        space = EmbeddingSpace(
            base.name,
            base.dim,
            old_space.distance,
            old_space.tokenizer,
            old_space.chunker,
            old_space.bm25_k1,
            old_space.bm25_b,
            old_space.bm25_epsilon,
        )
        old.connect(old_space)
        new = EmbeddedStore(side)
        try:
            recorded = new.stored_space()
            if recorded is not None and (recorded.embedder, recorded.dim) != (
                space.embedder,
                space.dim,
            ):
                raise ConfigurationError(
                    f"{side} holds a space made with {recorded.embedder!r}, neither the store's "
                    f"nor the new one: move it away (an old space kept by an earlier re-embed?)"
                )
            new.connect(space)
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
    """Delete the old space a switched :func:`reembed` left beside ``store``; ``False`` when
    there is none."""
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
