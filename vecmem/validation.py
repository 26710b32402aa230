"""Checks on the data a caller hands vecmem: texts, ids and metadata values.

One rule for every backend, applied before anything is written, so a bad value is refused with a
typed error naming it instead of failing half-way inside a database (or being stored and then
breaking every filter on its field):

* **Text** (document text, ids, metadata keys and string values) must be valid Unicode: a lone
  surrogate such as ``"\\ud800"`` cannot be encoded as UTF-8, so no database can store it.
* **Metadata** is JSON: dicts with string keys, lists, strings, booleans, ``None``, finite floats
  and integers with ``|n| <= 2**53`` (:data:`MAX_EXACT_INT`), nested at most :data:`MAX_DEPTH`
  containers deep.

Why ``2**53``: Pinecone, Chroma, Qdrant's range filters, LanceDB's typed columns and JavaScript
clients hold numbers as float64, which represents every integer up to ``2**53`` exactly and none
beyond it reliably (``2**53 + 1`` reads back as ``2**53``). Inside that range a comparison as
float64 is exact, so every backend and the in-memory reference give the same answer; an id-like
number beyond it belongs in a string (``{"order": "12345678901234567890"}``). Filter values obey
the same bound (see :mod:`vecmem.filters`).

>>> check_metadata({"year": 2024, "tags": ["a"]}, "text 0")
{'year': 2024, 'tags': ['a']}
>>> check_metadata({"id": 2**60}, "text 0")
Traceback (most recent call last):
...
vecmem.errors.InvalidInputError: metadata of text 0: metadata['id'] is 1152921504606846976, an integer beyond ±2**53 (the float64-exact range every backend compares in); store it as a string (e.g. "1152921504606846976")
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from vecmem.errors import InvalidInputError

MAX_EXACT_INT = 2**53
"""Integers in metadata and in filter values must satisfy ``-2**53 <= n <= 2**53``."""
MAX_DEPTH = 64
"""Containers (dicts and lists) nested deeper than this are refused: deeper JSON overflows the
recursion of the JSON encoders and copies the backends use (5,000 levels raise RecursionError)."""


def is_valid_unicode(s: str) -> bool:
    """``s`` encodes as UTF-8 (it holds no lone surrogate)."""
    if s.isascii():
        return True
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(kind: str, value: str) -> str:
    """``value`` if it is valid Unicode, else :class:`InvalidInputError` naming ``kind``."""
    if not is_valid_unicode(value):
        bad = next(i for i, ch in enumerate(value) if "\ud800" <= ch <= "\udfff")
        raise InvalidInputError(
            f"{kind} holds a lone surrogate {value[bad]!r} at position {bad}: it is not valid "
            "Unicode and cannot be stored (decode bytes with errors='replace' to clean it)"
        )
    return value


def int_problem(v: int) -> str | None:
    """Why integer ``v`` cannot be stored or compared (``None`` when it can)."""
    if -MAX_EXACT_INT <= v <= MAX_EXACT_INT:
        return None
    example = f' (e.g. "{v}")' if v.bit_length() < 256 else ""
    return (
        "an integer beyond ±2**53 (the float64-exact range every backend compares in); "
        f"store it as a string{example}"
    )


def show(v: Any) -> str:
    """A short, always printable rendering of a caller's value for an error message (``repr``
    of a container nested 5,000 deep raises RecursionError, of a huge int ValueError)."""
    if isinstance(v, (dict, list, tuple)):
        return f"a {type(v).__name__} of {len(v)}"
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() >= 256:
        return f"an integer of {v.bit_length()} bits"
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _plain(v: Any) -> bool:
    """``v`` is a scalar that needs no further check (ASCII text, a bool, None, an int within
    the bound, a finite float)."""
    t = type(v)
    return (
        (t is str and v.isascii())
        or t is bool
        or v is None
        or (t is int and -MAX_EXACT_INT <= v <= MAX_EXACT_INT)
        or (t is float and math.isfinite(v))
    )


def _path(parent: str, key: Any) -> str:
    if parent.endswith("[...]"):
        return parent
    return parent + "[...]" if len(parent) > 80 else f"{parent}[{show(key)}]"


def check_metadata(meta: Any, where: str) -> dict[str, Any]:
    """A shallow copy of ``meta`` (``None`` -> ``{}``) after checking it against the rule above;
    :class:`InvalidInputError` naming ``where`` and the offending path otherwise.

    Walked with an explicit stack, so a hostile nesting depth cannot raise RecursionError.
    """
    if meta is None:
        return {}
    if not isinstance(meta, Mapping):
        raise InvalidInputError(
            f"metadata of {where} must be a dict, got {type(meta).__name__}: {show(meta)}"
        )
    out = dict(meta)
    for key in out:
        if not isinstance(key, str) or not key:
            raise InvalidInputError(
                f"metadata keys of {where} must be non-empty strings, got {show(key)}"
            )
    for key, v in out.items():  # the common case (scalars, lists of scalars) without the walk
        if not (key.isascii() and (_plain(v) or (type(v) is list and all(map(_plain, v))))):
            break
    else:
        return out
    stack: list[tuple[Any, str, int]] = [(out, "metadata", 1)]
    while stack:
        node, path, depth = stack.pop()
        is_dict = isinstance(node, dict)
        for key, v in node.items() if is_dict else enumerate(node):
            if is_dict and (type(key) is not str or not key.isascii()):
                if not isinstance(key, str):
                    raise InvalidInputError(
                        f"metadata of {where}: {path} has the key {show(key)}, not a string "
                        "(JSON would turn it into one)"
                    )
                check_text(f"metadata of {where}: the key {_path(path, key)}", key)
            if isinstance(v, str):
                if not v.isascii():
                    check_text(f"metadata of {where}: {_path(path, key)}", v)
                continue
            if v is None or isinstance(v, bool):
                continue
            problem = None
            if isinstance(v, int):
                problem = int_problem(v)
            elif isinstance(v, float):
                if not math.isfinite(v):
                    problem = "not a finite number (JSON has no NaN or infinity)"
            elif isinstance(v, (dict, list, tuple)):
                if depth >= MAX_DEPTH:
                    problem = f"nested deeper than {MAX_DEPTH} dicts/lists"
                else:
                    stack.append((v, _path(path, key), depth + 1))
            else:
                problem = (
                    f"a {type(v).__name__}, which is not JSON (use str, int, float, "
                    "bool, None, list or dict)"
                )
            if problem is not None:
                raise InvalidInputError(
                    f"metadata of {where}: {_path(path, key)} is {show(v)}, {problem}"
                )
    return out


__all__ = [
    "MAX_DEPTH",
    "MAX_EXACT_INT",
    "check_metadata",
    "check_text",
    "int_problem",
    "is_valid_unicode",
    "show",
]
