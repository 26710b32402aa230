"""Fetching a URL for ingestion with the standard library (no new dependency): bounded size and
time, the type from the ``Content-Type`` header, typed errors."""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass

from vecmem import __version__
from vecmem.errors import DocumentTooLargeError, FetchError

DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Fetched:
    """A downloaded body, its MIME type (without parameters) and the URL after redirects."""

    data: bytes
    mime: str
    url: str


def is_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://"))


def fetch(url: str, *, max_bytes: int, timeout: float = DEFAULT_TIMEOUT) -> Fetched:
    """GET ``url``; :class:`FetchError` on a network error or an HTTP error status,
    :class:`DocumentTooLargeError` past ``max_bytes`` (the body is not read further)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"vecmem/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise DocumentTooLargeError(
                    f"{url} is {int(length):,} bytes, over the limit of {max_bytes:,}"
                )
            data = response.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise DocumentTooLargeError(f"{url} is over the limit of {max_bytes:,} bytes")
            mime = (
                response.headers.get_content_type() if response.headers.get("Content-Type") else ""
            )
            return Fetched(data, mime, response.geturl())
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        if isinstance(exc, DocumentTooLargeError):
            raise
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise FetchError(f"cannot fetch {url}: {reason}") from exc
