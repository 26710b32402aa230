"""Checkpoints: save an agent's state per thread, go back to it, branch from it, compare them.

States are JSON values, compressed with zstd and, when a ``key`` is given, encrypted at rest
(AES-GCM, or Fernet with ``cipher="fernet"``). A corrupted or wrongly keyed checkpoint raises
:class:`~vecmem.errors.IntegrityError`. Backends: :class:`MemoryCheckpointStore` and
:class:`SQLCheckpointStore` (SQLite, PostgreSQL, MySQL/MariaDB); :func:`open_checkpoints`
picks one from a URL.

>>> store = open_checkpoints("memory://", tenant="acme", retention=Retention(keep_last=10))
>>> ck = store.save("thread-1", {"todo": ["write"]}, tags=["v1"])
>>> store.branch(ck.id, "thread-2").parent_id == ck.id
True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from vecmem.checkpoints.base import (
    Checkpoint,
    CheckpointInfo,
    CheckpointStoreBase,
    Retention,
    StateDiff,
    diff_states,
)
from vecmem.checkpoints.codec import Cipher, Codec, generate_key
from vecmem.checkpoints.memory import MemoryCheckpointStore
from vecmem.errors import ConfigurationError


def __getattr__(name: str) -> Any:  # SQLAlchemy loads on first use
    if name == "SQLCheckpointStore":
        from vecmem.checkpoints.sql import SQLCheckpointStore

        return SQLCheckpointStore
    raise AttributeError(name)


def open_checkpoints(
    url: str,
    *,
    tenant: str = "default",
    key: bytes | str | None = None,
    cipher: Cipher = "aes-gcm",
    compression: bool = True,
    retention: Retention | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckpointStoreBase:
    """A checkpoint store for ``memory://``, ``sqlite:///path``, ``postgresql://...`` or
    ``mysql://...`` (a :class:`~vecmem.db.Database` can be given to the SQL class directly)."""
    options: dict[str, Any] = {
        "tenant": tenant,
        "key": key,
        "cipher": cipher,
        "compression": compression,
        "retention": retention,
        "clock": clock,
    }
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
    if scheme == "memory":
        return MemoryCheckpointStore(**options)
    if scheme in ("sqlite", "postgresql", "postgres", "mysql", "mariadb"):
        from vecmem.checkpoints.sql import SQLCheckpointStore

        return SQLCheckpointStore(url, **options)
    raise ConfigurationError(
        f"no checkpoint backend for {url!r}: use memory://, sqlite://, postgresql:// or mysql://"
    )


__all__ = [
    "Checkpoint",
    "CheckpointInfo",
    "CheckpointStoreBase",
    "Cipher",
    "Codec",
    "MemoryCheckpointStore",
    "Retention",
    "SQLCheckpointStore",
    "StateDiff",
    "diff_states",
    "generate_key",
    "open_checkpoints",
]
