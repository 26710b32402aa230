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
_PSTYLE = f"{_W}pPr/{_W}pStyle"


class DocxLoader:
    """``.docx``: ``heading`` from heading styles, ``page`` where the file records page breaks."""

    name: ClassVar[str] = "docx"
    suffixes: ClassVar[tuple[str, ...]] = (".docx",)
    mime_types: ClassVar[tuple[str, ...]] = (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    )

    def load(self, data: bytes, *, name: str) -> Loaded:
        docx = require("docx", "docx", "reading Word files")
        expect_ooxml(data, name=name, kind="DOCX")
        try:
            doc = docx.Document(io.BytesIO(data))
            body = doc.element.body
            rendered, hard = [], []
            for b in body.iter(f"{_W}lastRenderedPageBreak", f"{_W}br"):
                if b.tag != f"{_W}br":
                    rendered.append(b)
                elif b.get(f"{_W}type") == "page":
                    hard.append(b)
            paged = bool(rendered or hard)
            breaks = f"{_W}lastRenderedPageBreak" if rendered else f"{_W}br"
            holders = {_block_of(b, body) for b in (rendered or hard)}  # blocks with a break
            # paragraph.style looks the default style up among all styles on every call (7x
            # the whole load's time); the levels of the heading styles are read once instead
            styles = doc.styles.element
            levels: dict[str, int | None] = {}
            page = 1
            path: list[tuple[int, str]] = []
            elements: list[Element] = []
            for block in doc.iter_inner_content():
                if hasattr(block, "rows"):  # a table
                    text = _table_text(block)
                    if text:
                        elements.append(
                            Element(
                                text,
                                kind="table",
                                page=page if paged else None,
                                heading=tuple(t for _, t in path),
                            )
                        )
                    if block._element in holders:
                        page += _count_breaks(block._element, breaks, before_text=False)
                    continue
                broken = block._p in holders
                if broken:
                    page += _count_breaks(block._p, breaks, before_text=True)
                text = _paragraph_text(block._p).strip()
                style = block._p.find(_PSTYLE)
                style_id = style.get(f"{_W}val") if style is not None else None
                if style_id is not None and style_id not in levels:
                    found = styles.find(f'{_W}style[@{_W}styleId="{style_id}"]')
                    levels[style_id] = _level(_name(found)) if found is not None else None
                level = levels.get(style_id) if style_id is not None else None
                if text and level is not None:
                    path = [(lv, t) for lv, t in path if lv < level] + [(level, text)]
                if text:
                    elements.append(
                        Element(
                            text,
                            kind="heading" if level is not None else "text",
                            page=page if paged else None,
                            heading=tuple(t for _, t in path),
                        )
                    )
                if broken:
                    page += _count_breaks(block._p, breaks, before_text=False)
        except Exception as exc:  # python-docx raises KeyError, BadZipFile, lxml errors ...
            raise CorruptDocumentError(f"{name} is not a readable DOCX file: {exc}") from exc
        if not elements:
            raise EmptyDocumentError(f"{name} holds no text")
        return Loaded(elements, pages=page if paged else 0)


_R, _T = f"{_W}r", f"{_W}t"
_RUN_HOLDERS = {f"{_W}hyperlink", f"{_W}ins", f"{_W}smartTag", f"{_W}fldSimple"}
_RUN_CHARS = {f"{_W}tab": "\t", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


def _paragraph_text(p: Any) -> str:
    """A paragraph's text as python-docx's ``Paragraph.text`` reads it (runs and hyperlinks;
    tabs, line breaks), plus tracked insertions, which python-docx leaves out; text boxes inside
    runs are not read. Hand-written: ``Paragraph.text`` runs an XPath query per run, and with it
    loading took 20% more CPU than python-docx's own text extraction alone; walking the runs
    with lxml brings that to the benchmark's target (BENCHMARKS.md, "Document loading")."""
    out: list[str] = []
    for node in p:
        runs = (
            (node,) if node.tag == _R else node.iterchildren(_R) if node.tag in _RUN_HOLDERS else ()
        )
        for run in runs:
            for c in run:
                if c.tag == _T:
                    out.append(c.text or "")
                elif c.tag == f"{_W}br":
                    if c.get(f"{_W}type") in (None, "textWrapping"):
                        out.append("\n")
                elif c.tag in _RUN_CHARS:
                    out.append(_RUN_CHARS[c.tag])
    return "".join(out)


def _name(style: Any) -> str:
    node = style.find(f"{_W}name")
    return node.get(f"{_W}val", "") if node is not None else ""


def _level(style_name: str) -> int | None:
    """0 for ``Title``, N for ``Heading N`` (Word's names are ``heading 1``), else None."""
    if style_name.lower() == "title":
        return 0
    m = _HEADING_STYLE.match(style_name)
    return int(m.group(1)) if m else None


def _block_of(node: Any, body: Any) -> Any:
    """The body-level paragraph or table holding ``node``."""
    while node.getparent() is not None and node.getparent() is not body:
        node = node.getparent()
    return node


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
