"""The vecmem error hierarchy.

Every error vecmem raises derives from :class:`VecmemError`, and each subclass also derives from
the matching built-in, so ``except ValueError`` keeps working for callers who do not know vecmem.
Backend adapters wrap client errors with ``raise BackendError(...) from exc``: callers catch one
type whatever database sits underneath.
"""

from __future__ import annotations

import errno


class VecmemError(Exception):
    """Base class of every vecmem error."""


class ConfigurationError(VecmemError, ValueError):
    """An argument, URL or setting is invalid."""


class InvalidInputError(VecmemError, ValueError):
    """Bad data given to an operation: empty text or query, k <= 0, NaN vectors, ..."""


class ScopeEscapeError(InvalidInputError):
    """A name or path would reach outside its tenant's, user's or store's scope."""


class MissingDependencyError(VecmemError, ImportError):
    """An optional dependency is not installed; the message names the pip extra that adds it."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"{package!r} is required{what} but is not installed: pip install 'vecmem[{extra}]'"
        )
        self.package = package
        self.extra = extra


class DimensionMismatchError(VecmemError, ValueError):
    """A vector's dimension differs from the store's."""


class EmbeddingSpaceMismatchError(VecmemError, ValueError):
    """A store was built with another embedder, dimension, distance or tokenizer."""


class InvalidFilterError(VecmemError, ValueError):
    """A filter is malformed or uses an unknown operator."""


class UnsupportedFilterError(InvalidFilterError):
    """A backend cannot express a (valid) filter; raised instead of silently dropping it."""


class NotFoundError(VecmemError, KeyError):
    """A named thing (collection, session, checkpoint, path) does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class DocumentReadError(VecmemError, OSError):
    """A file could not be read or decoded."""


class UnsupportedFormatError(DocumentReadError):
    """No registered loader reads this type of file (see :data:`vecmem.registry.LOADERS`)."""


class EmptyDocumentError(DocumentReadError):
    """A file has zero bytes, or no text at all (a PDF without a text layer: OCR is out of
    scope)."""


class DocumentTooLargeError(DocumentReadError):
    """A file or download is larger than the configured limit (``max_bytes``)."""


class CorruptDocumentError(DocumentReadError):
    """A file cannot be parsed as its type: corrupt, truncated or malformed."""


class FormatMismatchError(CorruptDocumentError):
    """A file's content is another format than its extension says (``report.pdf`` holding HTML)."""


class EncryptedDocumentError(DocumentReadError, PermissionError):
    """A file is encrypted or password-protected."""


class FetchError(DocumentReadError, ConnectionError):
    """A URL could not be fetched (network error or an HTTP error status)."""


class BackendError(VecmemError, RuntimeError):
    """A database or service failed; the client's exception is chained as ``__cause__``."""


class BackendUnavailableError(BackendError, ConnectionError):
    """The server cannot be reached."""


class StorageFullError(BackendError, OSError):
    """The disk (or the database's storage) is full; nothing of the failed write was kept.

    ``errno`` is ``ENOSPC``, so ``except OSError`` code that checks it keeps working. Free
    space and retry: the store stays readable and accepts writes again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.errno = errno.ENOSPC
        self.strerror = message

    def __str__(self) -> str:  # OSError would print "[Errno 28] ..." only with two arguments
        return self.strerror or ""


class AuthenticationError(BackendError, PermissionError):
    """The server refused the credentials."""


class StoreLockedError(BackendError, TimeoutError):
    """Another writer holds the store's write lock."""


class ConflictError(VecmemError, RuntimeError):
    """A compare-and-set or version check failed."""


class SpaceReplacedError(ConflictError):
    """The collection's embedding space was replaced (re-embedded, then switched) after this
    store opened it: a write into the old space is refused (it would be lost); reopen the store."""


class SwitchUnsupportedError(ConfigurationError):
    """A store cannot switch a collection to a space built beside it in one atomic step, so it
    cannot be re-embedded without downtime; the message says why. Nothing was built or switched."""


class PermissionDeniedError(VecmemError, PermissionError):
    """The caller (a session participant) lacks the permission an operation needs; nothing was
    read or written."""


class QuotaExceededError(VecmemError, RuntimeError):
    """A limit (a tenant's quota, a request rate) would be exceeded; nothing was written."""


class RateLimitedError(QuotaExceededError):
    """Too many requests in the last minute; ``retry_after`` says in how many seconds one frees."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SessionFullError(QuotaExceededError):
    """A session holds its ``max_messages`` and refuses more (overflow policy ``"refuse"``)."""


class IntegrityError(VecmemError, ValueError):
    """Stored data is corrupted or cannot be decrypted with the given key."""


__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "CorruptDocumentError",
    "DimensionMismatchError",
    "DocumentReadError",
    "DocumentTooLargeError",
    "EmbeddingSpaceMismatchError",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "FetchError",
    "FormatMismatchError",
    "IntegrityError",
    "InvalidFilterError",
    "InvalidInputError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitedError",
    "ScopeEscapeError",
    "SessionFullError",
    "SpaceReplacedError",
    "StorageFullError",
    "StoreLockedError",
    "SwitchUnsupportedError",
    "UnsupportedFilterError",
    "UnsupportedFormatError",
    "VecmemError",
]
