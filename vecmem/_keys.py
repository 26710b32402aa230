"""Validation of the names that key stored data: tenants, user and session ids, namespaces, keys.

Every store checks its keys the same way, so a name accepted by one backend is accepted by all
(MySQL caps indexed strings at 191 characters; NUL bytes break C drivers and file names).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

from vecmem.errors import InvalidInputError

MAX_TENANT = 64
MAX_KEY = 191


def check_name(kind: str, value: object, *, max_len: int = MAX_KEY) -> str:
    """``value`` if it is a non-empty string of at most ``max_len`` characters without NUL."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise InvalidInputError(f"{kind} is longer than {max_len} characters: {value[:40]!r}...")
    if "\x00" in value:
        raise InvalidInputError(f"{kind} contains a NUL byte: {value!r}")
    return value


def check_tenant(value: object) -> str:
    """A tenant (scope) name: like :func:`check_name`, at most 64 characters."""
    return check_name("tenant", value, max_len=MAX_TENANT)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def to_json(kind: str, value: Any) -> str:
    """Compact JSON text of ``value`` or :class:`InvalidInputError` if it is not JSON-able."""
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{kind} must be JSON-serialisable: {exc}") from exc


def check_metadata(value: object) -> dict[str, Any]:
    """A copy of a JSON-serialisable mapping with string keys (``None`` -> ``{}``)."""
    if value is None:
        return {}
    if not isinstance(value, dict) and not hasattr(value, "items"):
        raise InvalidInputError(f"metadata must be a mapping, got {type(value).__name__}")
    out = dict(value)  # type: ignore[call-overload]
    if any(not isinstance(k, str) for k in out):
        raise InvalidInputError("metadata keys must be strings")
    return json.loads(to_json("metadata", out))  # type: ignore[no-any-return]


def check_tags(tags: object) -> tuple[str, ...]:
    """Sorted, de-duplicated tags; each a name of at most 128 characters."""
    if isinstance(tags, str):
        raise InvalidInputError("tags must be a sequence of strings, not one string")
    return tuple(sorted({check_name("tag", t, max_len=128) for t in tags}))  # type: ignore[attr-defined]


_SAFE = "abcdefghijklmnopqrstuvwxyz0123456789_-"


def file_name(part: str) -> str:
    """A file-system-safe name for an id: reversible percent-escaping of everything but
    lower-case letters, digits, ``_`` and ``-`` (so ``..`` cannot escape and ``A``/``a`` differ
    on case-insensitive file systems); long names are shortened with a SHA-256 suffix."""
    name = quote(part, safe=_SAFE)
    if len(name) > 120:
        name = name[:60] + "~" + hashlib.sha256(part.encode()).hexdigest()
    return name
