"""What a loader is and returns, and the checks every loader shares (magic bytes, text decoding).

A loader turns a file's bytes into :class:`~vecmem.types.Element` objects in reading order, each
with where it sits (page, slide, sheet, heading path), and raises a typed
:class:`~vecmem.errors.DocumentReadError` subclass when it cannot: the ingestion reports that
file and goes on with the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Protocol, runtime_checkable

from vecmem.errors import DocumentReadError, EncryptedDocumentError, FormatMismatchError
from vecmem.types import Element


@dataclass
class Loaded:
    """A loaded file: its elements, how many pages / slides / sheets it has (0 where the format
    has none) and warnings worth showing (a PDF page without a text layer)."""

    elements: list[Element]
    pages: int = 0
    warnings: list[str] = field(default_factory=list)


@runtime_checkable
class Loader(Protocol):
    """A file format reader, registered in :data:`vecmem.registry.LOADERS` under ``name``.

    ``suffixes`` (``".pdf"``) and ``mime_types`` (``"application/pdf"``, for URLs) say which
    files it reads; a third-party loader claiming a built-in's suffix takes it over. A plugin
    package declares ``[project.entry-points."vecmem.loaders"] rtf = "my_pkg:RtfLoader"``.

    >>> class RtfLoader:
    ...     name = "rtf"
    ...     suffixes = (".rtf",)
    ...     mime_types = ("application/rtf",)
    ...     def load(self, data: bytes, *, name: str) -> Loaded:
    ...         return Loaded([Element(data.decode("ascii"))])
    >>> isinstance(RtfLoader(), Loader)
    True
    """

    name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]
    mime_types: ClassVar[tuple[str, ...]]

    def load(self, data: bytes, *, name: str) -> Loaded:
        """Elements of ``data`` (``name`` is the file's path or URL, for messages)."""
        ...


ZIP_MAGIC = b"PK\x03\x04"


def sniff(data: bytes) -> str:
    """A short word for what ``data`` looks like, for error messages: pdf, zip, html, text,
    binary."""
    head = data[:2048]
    if head.startswith(b"%PDF-"):
        return "PDF"
    if head.startswith(ZIP_MAGIC):
        return "ZIP (DOCX, PPTX, XLSX or EPUB)"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return "an old binary Office file (DOC, PPT, XLS)"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html")) or b"<body" in head.lower():
        return "HTML"
    if b"\x00" in head:
        return "binary data"
    return "text"


def expect(data: bytes, magic: bytes, *, name: str, kind: str) -> None:
    """Raise :class:`FormatMismatchError` unless ``data`` starts with ``magic`` (a ``.pdf``
    holding HTML, a ``.docx`` that is plain text)."""
    if not data.startswith(magic):
        raise FormatMismatchError(
            f"{name} is not a {kind} file: its content looks like {sniff(data)}"
        )


def decode_text(data: bytes, *, name: str) -> str:
    """UTF-8 text (a BOM is dropped); anything else is an error, never a guess."""
    if b"\x00" in data[:8192]:
        raise FormatMismatchError(
            f"{name} is not a text file: its content looks like {sniff(data)}"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentReadError(f"{name} is not UTF-8 text: {exc}") from exc


_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def expect_ooxml(data: bytes, *, name: str, kind: str) -> None:
    """Check that ``data`` is an Office Open XML (zip) file before a library parses it: a
    password-protected DOCX/PPTX/XLSX is an OLE container holding an ``EncryptionInfo`` stream
    (:class:`EncryptedDocumentError`); anything else that is not a zip is a
    :class:`FormatMismatchError` naming what it looks like."""
    if data.startswith(_CFB_MAGIC):
        if "EncryptionInfo".encode("utf-16-le") in data:
            raise EncryptedDocumentError(f"{name} is encrypted (password protected)")
        raise FormatMismatchError(
            f"{name} is an old binary Office file (.doc/.ppt/.xls), not "
            f"{kind}; save it as {kind} first"
        )
    expect(data, ZIP_MAGIC, name=name, kind=kind)
