"""Word ``.docx`` with python-docx (MIT): paragraphs and tables in reading order, with the path of
``Title`` / ``Heading N`` styles above them; table rows as lines, cells joined by ``" | "``.

A ``.docx`` has no fixed pages; ``page`` is given only when the file records page breaks: where
Word last laid the pages out (``lastRenderedPageBreak``), else hard page breaks.
"""

from __future__ import annotations

import io
import re
from typing import Any, ClassVar

from vecmem._deps import require
from vecmem.errors import CorruptDocumentError, EmptyDocumentError
from vecmem.loaders.base import Loaded, expect_ooxml
from vecmem.types import Element

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


class DocxLoader:
    """``.docx``: ``heading`` from heading styles, ``page`` where the file records page breaks."""

    name: ClassVar[str] = "docx"
    suffixes: ClassVar[tuple[str, ...]] = (".docx",)
    mime_types: ClassVar[tuple[str, ...]] = (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",)

    def load(self, data: bytes, *, name: str) -> Loaded:
        docx = require("docx", "docx", "reading Word files")
        expect_ooxml(data, name=name, kind="DOCX")
        try:
            doc = docx.Document(io.BytesIO(data))
            body = doc.element.body
            rendered = bool(body.findall(f".//{_W}lastRenderedPageBreak"))
            paged = rendered or bool(body.xpath(".//w:br[@w:type='page']"))
            breaks = f"{_W}lastRenderedPageBreak" if rendered else f"{_W}br"
            page = 1
            path: list[tuple[int, str]] = []
            elements: list[Element] = []
            for block in doc.iter_inner_content():
                if hasattr(block, "rows"):  # a table
                    text = _table_text(block)
                    if text:
                        elements.append(Element(text, kind="table", page=page if paged else None,
                                                heading=tuple(t for _, t in path)))
                    page += _count_breaks(block._element, breaks, before_text=False)
                    continue
                page += _count_breaks(block._p, breaks, before_text=True)
                text = block.text.strip()
                level = _level(block)
                if text and level is not None:
                    path = [(lv, t) for lv, t in path if lv < level] + [(level, text)]
                if text:
                    elements.append(Element(
                        text, kind="heading" if level is not None else "text",
                        page=page if paged else None, heading=tuple(t for _, t in path)))
                page += _count_breaks(block._p, breaks, before_text=False)
        except Exception as exc:  # python-docx raises KeyError, BadZipFile, lxml errors ...
            raise CorruptDocumentError(f"{name} is not a readable DOCX file: {exc}") from exc
        if not elements:
            raise EmptyDocumentError(f"{name} holds no text")
        return Loaded(elements, pages=page if paged else 0)


def _level(paragraph: Any) -> int | None:
    style = paragraph.style.name if paragraph.style is not None else ""
    if style.lower() == "title":
        return 0
    m = _HEADING_STYLE.match(style)
    return int(m.group(1)) if m else None


def _count_breaks(element: Any, tag: str, *, before_text: bool) -> int:
    """Page breaks in ``element`` that come before any of its text (``before_text``: the
    paragraph starts a page) or after some of it (the next block starts on a later page)."""
    seen_text = False
    n = 0
    for node in element.iter():
        if node.tag == f"{_W}t" and node.text:
            seen_text = True
        elif node.tag == tag and (tag != f"{_W}br" or node.get(f"{_W}type") == "page"):
            if seen_text != before_text:
                n += 1
    return n


def _table_text(table: Any) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        last = None
        for cell in row.cells:
            if cell._tc is last:  # a merged cell is returned once per grid column it spans
                continue
            last = cell._tc
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)
