"""SQLite helpers: failures as vecmem errors, for the files vecmem keeps in SQLite itself (the
embedded store's ``store.sqlite``, the embedding cache): a full disk, a damaged file, a lock, or
other; and :class:`SQLiteOptions`, the tuning of a :class:`vecmem.db.Database` on SQLite.

>>> import sqlite3
>>> type(sql_error(sqlite3.OperationalError("database or disk is full"), "x.db", "writing"))
<class 'vecmem.errors.StorageFullError'>
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

from vecmem.errors import (
    BackendError,
    ConfigurationError,
    IntegrityError,
    StorageFullError,
    StoreLockedError,
    VecmemError,
)

# SQLite's primary result codes (the sqlite3 module names them only from Python 3.11 on)
_BUSY, _LOCKED, _CORRUPT, _FULL, _NOTADB = 5, 6, 11, 13, 26


def sql_error(
    exc: sqlite3.Error,
    file: str | os.PathLike[str],
    what: str,
    *,
    advice: str = "restore it from a backup or rebuild the store from its documents",
) -> VecmemError:
    """vecmem's error for a SQLite failure: full disk, damaged file (with ``advice``), lock,
    or other."""
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    text = str(exc)
    if code == _FULL or "disk is full" in text:
        return StorageFullError(
            f"{what} {file} failed: the disk is full ({text}); free space "
            "and retry, nothing of the write was kept"
        )
    if code in (_CORRUPT, _NOTADB) or "malformed" in text or "not a database" in text:
        return IntegrityError(f"{file} is damaged or is not a vecmem file ({text}); {advice}")
    if code in (_BUSY, _LOCKED) or "locked" in text:
        return StoreLockedError(f"{what} {file} failed: {text}")
    return BackendError(f"{what} {file} failed: {text}")


JournalMode = Literal["wal", "delete", "truncate", "persist", "memory", "off"]
Synchronous = Literal["off", "normal", "full", "extra"]
AutoVacuum = Literal["none", "full", "incremental"]
_CHOICES = {
    "journal_mode": ("wal", "delete", "truncate", "persist", "memory", "off"),
    "synchronous": ("off", "normal", "full", "extra"),
    "auto_vacuum": ("none", "full", "incremental"),
}
_AUTO_VACUUM = {"none": 0, "full": 1, "incremental": 2}


@dataclass(frozen=True)
class SQLiteOptions:
    """Tuning of a SQLite database, applied to every connection of a
    :class:`~vecmem.db.Database` (``Database(url, sqlite=SQLiteOptions(...))``, or
    ``sqlite=`` of the stores' registries).

    ``journal_mode`` (default WAL: readers never wait for the writer), ``synchronous`` (NORMAL
    is durable in WAL mode except for the last commits on power loss; FULL for those too),
    ``cache_size_kib`` (page cache per connection; SQLite's default is 2,000 KiB),
    ``auto_vacuum`` (``full``: the file shrinks on every commit that frees pages;
    ``incremental``: on :meth:`~vecmem.db.Database.incremental_vacuum`; changing it on an
    existing database runs one ``VACUUM`` when the database opens), ``busy_timeout`` (seconds
    a writer waits for another). An in-memory database keeps SQLite's own journal.

    >>> SQLiteOptions(cache_size_kib=64_000, auto_vacuum="incremental").pragmas()[:2]
    ['PRAGMA journal_mode=WAL', 'PRAGMA synchronous=NORMAL']
    """

    journal_mode: JournalMode = "wal"
    synchronous: Synchronous = "normal"
    cache_size_kib: int | None = None
    auto_vacuum: AutoVacuum | None = None
    busy_timeout: float = 30.0

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value is None and name == "auto_vacuum":
                continue
            if value not in allowed:
                raise ConfigurationError(f"{name} must be one of {allowed}, got {value!r}")
        if self.cache_size_kib is not None and (
            isinstance(self.cache_size_kib, bool)
            or not isinstance(self.cache_size_kib, int)
            or self.cache_size_kib <= 0
        ):
            raise ConfigurationError(
                f"cache_size_kib must be a positive int, got {self.cache_size_kib!r}"
            )
        timeout: Any = self.busy_timeout
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ConfigurationError(f"busy_timeout must be seconds >= 0, got {timeout!r}")

    def pragmas(self, *, memory: bool = False) -> list[str]:
        """The statements run on each new connection (``auto_vacuum`` apart: see
        :meth:`auto_vacuum_code`)."""
        out = []
        if not memory:
            out.append(f"PRAGMA journal_mode={self.journal_mode.upper()}")
            out.append(f"PRAGMA synchronous={self.synchronous.upper()}")
        if self.cache_size_kib is not None:
            out.append(f"PRAGMA cache_size=-{self.cache_size_kib}")
        out.append(f"PRAGMA busy_timeout={round(self.busy_timeout * 1000)}")
        return out

    def auto_vacuum_code(self) -> int | None:
        """SQLite's number for ``auto_vacuum`` (None: leave the database's setting)."""
        return None if self.auto_vacuum is None else _AUTO_VACUUM[self.auto_vacuum]
