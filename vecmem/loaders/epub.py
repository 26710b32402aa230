"""EPUB with the standard library's zipfile and lxml: the chapters in spine order, each read as
XHTML with its heading path.

Hand-written (about 40 lines) rather than on EbookLib, the usual EPUB library, because EbookLib is
AGPL-licensed; an EPUB is a zip whose ``content.opf`` lists the chapters in reading order.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import ClassVar

from vecmem._deps import require
from vecmem.errors import CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError
from vecmem.loaders.base import ZIP_MAGIC, Loaded, expect
from vecmem.loaders.html import html_elements
from vecmem.types import Element

_OPF = "{http://www.idpf.org/2007/opf}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_XHTML = ("application/xhtml+xml", "text/html")


class EpubLoader:
    """``.epub``: chapter text in spine order with ``heading`` paths."""

    name: ClassVar[str] = "epub"
    suffixes: ClassVar[tuple[str, ...]] = (".epub",)
    mime_types: ClassVar[tuple[str, ...]] = ("application/epub+zip",)

    def load(self, data: bytes, *, name: str) -> Loaded:
        etree = require("lxml.etree", "html", "reading EPUB files")
        expect(data, ZIP_MAGIC, name=name, kind="EPUB")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                files = set(z.namelist())
                container = etree.fromstring(z.read("META-INF/container.xml"))
                opf_path = container.find(f".//{_CONTAINER}rootfile").get("full-path")
                opf = etree.fromstring(z.read(opf_path))
                base = posixpath.dirname(opf_path)
                manifest = {item.get("id"): item for item in opf.iter(f"{_OPF}item")}
                chapters = []
                for ref in opf.iter(f"{_OPF}itemref"):
                    item = manifest.get(ref.get("idref"))
                    if item is not None and item.get("media-type") in _XHTML:
                        chapters.append(posixpath.normpath(posixpath.join(base, item.get("href"))))
                if "META-INF/encryption.xml" in files:
                    locked = z.read("META-INF/encryption.xml").decode("utf-8", "replace")
                    if any(c in locked for c in chapters):
                        raise EncryptedDocumentError(f"{name} is encrypted (DRM)")
                elements: list[Element] = []
                for chapter in chapters:
                    try:
                        elements += html_elements(z.read(chapter), name=f"{name}:{chapter}")
                    except EmptyDocumentError:
                        continue  # a cover or a blank page
        except (KeyError, AttributeError, zipfile.BadZipFile, etree.XMLSyntaxError) as exc:
            raise CorruptDocumentError(f"{name} is not a readable EPUB file: {exc}") from exc
        if not elements:
            raise EmptyDocumentError(f"{name} holds no text")
        return Loaded(elements)
