"""vecmem errors -> HTTP status and a JSON body; never a stack trace.

=============================================  ======
error                                          status
=============================================  ======
bad input, bad filter, bad argument            400
unknown key / missing key                      401
read-only key writing                          403
:class:`~vecmem.errors.NotFoundError`          404
space mismatch, conflict (undo order)          409
too large (body, document)                     413
unsupported file format                        415
missing optional dependency                    501
backend down, locked, full, refused            503
anything else                                  500 (logged; the body says only "internal error")
=============================================  ======

>>> from vecmem.errors import NotFoundError
>>> status_of(NotFoundError("no memory 'x'"))
404
>>> error_body(404, NotFoundError("no memory 'x'"))
{'error': {'status': 404, 'type': 'NotFoundError', 'message': "no memory 'x'"}}
"""

from __future__ import annotations

from typing import Any

from vecmem import errors as e

# most specific first: the first class the error is an instance of decides
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (e.EmbeddingSpaceMismatchError, 409),
    (e.ConflictError, 409),
    (e.DocumentTooLargeError, 413),
    (e.UnsupportedFormatError, 415),
    (e.MissingDependencyError, 501),
    (e.NotFoundError, 404),
    (e.BackendError, 503),  # unavailable, locked, storage full, refused credentials
    (e.IntegrityError, 500),
    (e.DocumentReadError, 400),
    (e.VecmemError, 400),  # InvalidInputError, InvalidFilterError, ConfigurationError, ...
)


def status_of(exc: BaseException) -> int:
    """The HTTP status of a vecmem error (500 for anything that is not one)."""
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(
    status: int,
    exc: BaseException | None = None,
    *,
    message: str | None = None,
    type_: str | None = None,
    detail: Any = None,
) -> dict[str, Any]:
    """``{"error": {"status", "type", "message"[, "detail"]}}``."""
    body: dict[str, Any] = {
        "status": status,
        "type": type_ or (type(exc).__name__ if exc is not None else "Error"),
        "message": message if message is not None else (str(exc) if exc is not None else ""),
    }
    if detail is not None:
        body["detail"] = detail
    return {"error": body}
