"""Validation of the names that key stored data (tenants, user and session ids, namespaces,
keys) and the file names they get on disk.

Every store checks its keys the same way, so a name accepted by one backend is accepted by all
(MySQL caps indexed strings at 191 characters; NUL bytes break C drivers and file names).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

from vecmem.errors import BackendError, InvalidInputError, ScopeEscapeError
from vecmem.validation import check_text

MAX_TENANT = 64
MAX_KEY = 191


def check_name(kind: str, value: object, *, max_len: int = MAX_KEY) -> str:
    """``value`` if it is a non-empty string of at most ``max_len`` characters without NUL or
    lone surrogates (which no database or file system can store)."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise InvalidInputError(f"{kind} is longer than {max_len} characters: {value[:40]!r}...")
    if "\x00" in value:
        raise InvalidInputError(f"{kind} contains a NUL byte: {value!r}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInputError(
                f"{kind} is not valid Unicode (a lone surrogate): {value!r}"
            ) from exc
    return value


def check_tenant(value: object) -> str:
    """A tenant (scope) name: like :func:`check_name`, at most 64 characters."""
    return check_name("tenant", value, max_len=MAX_TENANT)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def to_json(kind: str, value: Any) -> str:
    """Compact JSON text of ``value`` or :class:`InvalidInputError` if it is not JSON-able."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidInputError(f"{kind} must be JSON-serialisable: {exc}") from exc
    return check_text(kind, text)  # a lone surrogate in a key or string


def check_metadata(value: object) -> dict[str, Any]:
    """A copy of a JSON-serialisable mapping with string keys (``None`` -> ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict) and not hasattr(value, "items"):
        raise InvalidInputError(f"metadata must be a mapping, got {type(value).__name__}")
    out = dict(value)  # type: ignore[call-overload]
    if any(not isinstance(k, str) for k in out):
        raise InvalidInputError("metadata keys must be strings")
    return json.loads(to_json("metadata", out))


def check_tags(tags: object) -> tuple[str, ...]:
    """Sorted, de-duplicated tags; each a name of at most 128 characters."""
    if isinstance(tags, str):
        raise InvalidInputError("tags must be a sequence of strings, not one string")
    return tuple(sorted({check_name("tag", t, max_len=128) for t in tags}))  # type: ignore[attr-defined]


def check_epoch(kind: str, value: object) -> None:
    """``value`` is ``None`` or epoch seconds: a finite int or float, not a bool."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
    ):
        raise InvalidInputError(
            f"{kind} must be epoch seconds (a finite number) or None, got {value!r}"
        )


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_LONG = 120  # longer encodings are cut to 60 characters + "~" + SHA-256 (file names: 255 bytes)


def file_name(part: str) -> str:
    """The file-system name of a tenant, user or session id.

    Every character but lower-case ASCII letters, digits, ``_`` and ``-`` is written as ``%XX``
    per UTF-8 byte (upper-case hex), so a name is never ``.``, ``..`` or empty, never holds a
    separator (``/``, ``\\``) or NUL, and two ids never differ only by case (``A`` is
    ``%41``): distinct ids get distinct names even on a case-insensitive file system.
    Reversible (``urllib.parse.unquote``) except for encodings over 120 characters, which are
    cut to 60 and suffixed with ``~`` and the id's SHA-256 (``~`` is never escaped output).
    Hand-written: ``urllib.parse.quote`` always keeps ``.``, ``~`` and upper case.

    >>> file_name("Acme.corp"), file_name(".."), file_name("a/b")
    ('%41cme%2Ecorp', '%2E%2E', 'a%2Fb')
    """
    try:
        raw = part.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"name {part!r} is not valid Unicode (lone surrogate)") from exc
    if all(c in _SAFE for c in part):
        name = part
    else:
        name = "".join(chr(b) if chr(b) in _SAFE else f"%{b:02X}" for b in raw)
    if len(name) > _LONG:
        name = name[:60] + "~" + hashlib.sha256(raw).hexdigest()
    if not name or name in (".", ".."):  # cannot happen for a non-empty id: defence in depth
        raise InvalidInputError(f"name {part!r} has no safe file name")
    return name


def legacy_file_name(part: str) -> str:
    """The name an id had before December 2026 (``quote`` kept ``.``, ``~`` and upper case);
    used only to find and migrate stores written then."""
    name = quote(part, safe="abcdefghijklmnopqrstuvwxyz0123456789_-")
    if len(name) > _LONG:
        name = name[:60] + "~" + hashlib.sha256(part.encode()).hexdigest()
    return name


def inside(root: str | os.PathLike[str], path: str | os.PathLike[str], what: str) -> None:
    """Raise :class:`~vecmem.errors.ScopeEscapeError` unless ``path`` lies under ``root``
    (lexically, after ``..`` is resolved; symbolic links are the caller's concern)."""
    r, p = os.path.abspath(root), os.path.abspath(path)
    if p != r and not p.startswith(r.rstrip(os.sep) + os.sep):
        raise ScopeEscapeError(f"{what} resolves to {p!r}, outside {r!r}")


def child_path(parent: Path, part: str, *, suffix: str = "", what: str = "name") -> Path:
    """``parent / (file_name(part) + suffix)``, checked to lie under ``parent``.

    A store written before names were fully escaped kept ``.``, ``~`` and upper case
    (``Acme`` rather than ``%41cme``): when only that old name exists (spelled exactly so, and
    not ``.`` or ``..``), it is renamed to the new one first, so old stores stay readable and
    are migrated on first use. The rename never replaces data: a file is linked to its new
    name (refused if that exists) before its old name goes; a directory rename only replaces an
    empty directory.
    """
    name = file_name(part) + suffix
    path = parent / name
    inside(parent, path, f"{what} {part!r}")
    _migrate(parent, part, suffix, path, what)
    # defence in depth: a link planted in the store must not lead out of it either
    inside(os.path.realpath(parent), os.path.realpath(path), f"{what} {part!r}")
    return path


def _migrate(parent: Path, part: str, suffix: str, path: Path, what: str) -> None:
    """Rename ``part``'s entry from its old spelling to ``path`` (see :func:`child_path`)."""
    old_name = legacy_file_name(part) + suffix
    if old_name == path.name or legacy_file_name(part) in (".", "..") or os.path.lexists(path):
        return
    old = parent / old_name
    if not os.path.lexists(old):
        return
    try:
        if os.path.islink(old) or old_name not in os.listdir(parent):  # exact spelling only
            return
        if old.is_dir():
            os.rename(old, path)
        else:
            os.link(old, path)
            os.unlink(old)
    except FileNotFoundError:  # another process migrated it (or nothing to migrate)
        pass
    except FileExistsError:  # another process wrote the new name first: it wins
        pass
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise BackendError(
                f"cannot rename {old} to {path} (the escaped name of {what} {part!r}): {exc}"
            ) from exc
