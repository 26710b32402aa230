"""Paths of the knowledge store: absolute Unix paths, checked the same way on every backend.

A path starts with ``/``; its names are non-empty, at most 255 UTF-8 bytes, not ``.`` or
``..``, without NUL; the whole path is at most 1024 characters. Directories are implicit: one
exists while a file lies under it. ``/`` is the root directory.
"""

from __future__ import annotations

from vecmem.errors import InvalidInputError

MAX_PATH = 1024
MAX_NAME_BYTES = 255


def _parts(path: object, what: str) -> list[str]:
    if not isinstance(path, str):
        raise InvalidInputError(f"{what} must be a string, got {type(path).__name__}")
    if "\x00" in path:
        raise InvalidInputError(f"{what} contains a NUL byte: {path!r}")
    if not path.startswith("/"):
        raise InvalidInputError(f"{what} must be absolute (start with '/'): {path!r}")
    if len(path) > MAX_PATH:
        raise InvalidInputError(f"{what} is longer than {MAX_PATH} characters")
    if path == "/":
        return []
    parts = path[1:].split("/")
    for name in parts:
        if name == "":
            raise InvalidInputError(f"{what} has an empty name: {path!r}")
        if name in (".", ".."):
            raise InvalidInputError(
                f"{what} may not contain '.' or '..' (it would escape): {path!r}"
            )
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidInputError(f"a name in {what} is longer than {MAX_NAME_BYTES} bytes")
    return parts


def file_path(path: object) -> str:
    """``path`` checked as a file path (no trailing slash, not the root)."""
    parts = _parts(path, "path")
    if not parts:
        raise InvalidInputError("'/' is the root directory, not a file")
    return "/" + "/".join(parts)


def dir_path(path: object) -> str:
    """``path`` checked as a directory path; a trailing slash is allowed and dropped
    (``/`` stays ``/``)."""
    if isinstance(path, str) and len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    parts = _parts(path, "path")
    return "/" + "/".join(parts)


def any_path(path: object) -> str:
    """A path that may name a file or a directory (trailing slash dropped)."""
    return dir_path(path)


def parent(path: str) -> str:
    """The directory holding ``path`` (``/`` for top-level names)."""
    head = path.rsplit("/", 1)[0]
    return head or "/"


def name(path: str) -> str:
    """The last name of ``path``."""
    return path.rsplit("/", 1)[1]


def ancestors(path: str) -> list[str]:
    """Directories above ``path``, nearest first, without the root: ``/a/b/c`` -> ``/a/b, /a``."""
    out = []
    p = parent(path)
    while p != "/":
        out.append(p)
        p = parent(p)
    return out


def child(directory: str, entry: str) -> str:
    """``directory`` joined with one name."""
    return directory.rstrip("/") + "/" + entry
