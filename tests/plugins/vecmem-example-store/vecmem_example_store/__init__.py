"""A vecmem vector store from outside vecmem: exact search in memory, the whole collection saved
to one folder (``store.pickle``, replaced atomically after every write) and read back on open.

It builds on vecmem's public pieces only (``MemoryStore`` for search, filters and BM25;
``Capabilities``; ``ConfigurationError``) and plugs in through the ``vecmem.knowledge_stores``
entry point ``examplestore``, which is also its URL scheme::

    VectorMemory("examplestore:///data/kb")
    KNOWLEDGE_STORES.create("examplestore", path="/data/kb")
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vecmem.errors import ConfigurationError
from vecmem.filters import Filter
from vecmem.stores import Capabilities, MemoryStore
from vecmem.types import Chunk, EmbeddingSpace

FILE = "store.pickle"


class ExampleStore(MemoryStore):
    """A folder-backed store: one process writes; reopening reads what was written.

    >>> store = ExampleStore("/tmp/kb")            # doctest: +SKIP
    """

    name = "examplestore"
    capabilities = Capabilities(persistent=True, native_keyword=True, transactions=True)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ConfigurationError(f"{self.path} exists and is not a folder")
        self._rows: dict[str, tuple[Chunk, np.ndarray]] = {}
        self._saved_space: EmbeddingSpace | None = None
        self._io = threading.RLock()  # the snapshot and what it is made of change together
        snapshot = self.path / FILE
        if snapshot.exists():
            with snapshot.open("rb") as f:
                data = pickle.load(f)
            self._saved_space = data["space"]
            self._rows = data["rows"]

    def stored_space(self) -> EmbeddingSpace | None:
        return self.space or self._saved_space

    def connect(self, space: EmbeddingSpace) -> EmbeddingSpace:
        with self._io:
            if self._saved_space is not None:
                self._saved_space.check_compatible(space, where=f"store {self.path}")
                space = self._saved_space
            out = super().connect(space)
            if self._rows and self.count() == 0:
                ids = list(self._rows)
                super().upsert(
                    [self._rows[i][0] for i in ids], np.stack([self._rows[i][1] for i in ids])
                )
            self._saved_space = out
            self._save()
            return out

    def upsert(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, *, delete_ids: Sequence[str] = ()
    ) -> None:
        with self._io:
            super().upsert(chunks, vectors, delete_ids=delete_ids)  # validates, or raises first
            for i in delete_ids:
                self._rows.pop(str(i), None)
            for c, v in zip(chunks, np.asarray(vectors, np.float32)):
                self._rows[c.id] = (c, v.copy())
            self._save()

    def delete(self, *, ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        with self._io:
            n = super().delete(ids=ids, filter=filter)
            if n:
                alive = {c.id for c in self.get(list(self._rows))}
                self._rows = {i: r for i, r in self._rows.items() if i in alive}
                self._save()
            return n

    def _save(self) -> None:
        with self._io:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".store-")
            with os.fdopen(fd, "wb") as f:
                pickle.dump({"space": self._saved_space, "rows": self._rows}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path / FILE)


def open_store(*, url: str | None = None, path: str | os.PathLike[str] | None = None) -> Any:
    """The factory vecmem calls: ``url="examplestore:///dir"`` or ``path=``."""
    if url is not None:
        if path is not None:
            raise ConfigurationError("give the folder in the URL or as path=, not both")
        scheme, _, rest = url.partition("://")
        if scheme.lower() != "examplestore" or not rest:
            raise ConfigurationError(f"expected examplestore:///path/to/dir, got {url!r}")
        path = rest
    if path is None:
        raise ConfigurationError("examplestore needs a folder: url='examplestore:///dir' or path=")
    return ExampleStore(path)


__all__ = ["ExampleStore", "open_store"]
