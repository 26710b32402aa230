"""SQLite failures as vecmem errors, for the files vecmem keeps in SQLite itself (the embedded
store's ``store.sqlite``, the embedding cache): a full disk, a damaged file, a lock, or other.

>>> import sqlite3
>>> type(sql_error(sqlite3.OperationalError("database or disk is full"), "x.db", "writing"))
<class 'vecmem.errors.StorageFullError'>
"""

from __future__ import annotations

import os
import sqlite3

from vecmem.errors import (
    BackendError,
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
