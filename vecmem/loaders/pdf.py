"""PDF with pypdfium2 (PDFium's text layer; BSD-3/Apache-2.0): one element per page and section.

Chosen by measurement (benchmarks/bench_documents.py, BENCHMARKS.md "documents"): on 380 pages of
man pages typeset by groff, pypdfium2 recovered 99.4% of the text's characters at ~230 pages/s,
pypdf 94.2% (it splits kerned words: "archi ve") at ~40-80 pages/s, pdfplumber 87.3% at ~5
pages/s; PyMuPDF recovered 99.8% at a similar speed but is AGPL-licensed, so it is not used.

A page's ``heading`` is the document outline (bookmarks) entry in force there; when an entry
starts part-way down a page and its title is found in the page's text, the page is split there.
A PDF without an outline gets its headings from font sizes: short lines set at least 15% larger
than the body text, the largest size the top level.
A page without a text layer (a scan) is reported in the warnings: OCR is out of scope.
"""

from __future__ import annotations

import collections
import re
import threading
from typing import Any, ClassVar

from vecmem._deps import require
from vecmem.errors import CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError
from vecmem.loaders.base import Loaded, expect
from vecmem.types import Element

_SOFT_HYPHEN = re.compile("\ufffe\\s*")  # PDFium marks a hyphen that breaks a word at line end

# PDFium is not thread-safe, not even across documents (pypdfium2's docs: "it is not allowed to
# call pdfium functions simultaneously across different threads"): one PDF is read at a time
_PDFIUM = threading.Lock()

# PDFium's FPDF_GetLastError codes (fpdfview.h)
_ERR_PASSWORD = 4
_ERR_SECURITY = 5


class PdfLoader:
    """``.pdf``: pages (1-based ``page``) with the outline's heading path."""

    name: ClassVar[str] = "pdf"
    suffixes: ClassVar[tuple[str, ...]] = (".pdf",)
    mime_types: ClassVar[tuple[str, ...]] = ("application/pdf", "application/x-pdf")

    def load(self, data: bytes, *, name: str) -> Loaded:
        pdfium = require("pypdfium2", "pdf", "reading PDF files")
        if b"%PDF-" not in data[:1024]:  # the header may follow a little junk
            expect(data, b"%PDF-", name=name, kind="PDF")
        with _PDFIUM:
            return self._load(pdfium, data, name)

    def _load(self, pdfium: Any, data: bytes, name: str) -> Loaded:
        try:
            doc = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            code = getattr(exc, "err_code", None)
            if code in (_ERR_PASSWORD, _ERR_SECURITY):
                raise EncryptedDocumentError(
                    f"{name} is encrypted (password protected): {exc}"
                ) from exc
            raise CorruptDocumentError(f"{name} is not a readable PDF: {exc}") from exc
        try:
            starts = _outline(doc)
            elements: list[Element] = []
            empty: list[int] = []
            path: tuple[str, ...] = ()
            by_font: list[tuple[int, list[str], list[float]]] = []  # without an outline
            for index in range(len(doc)):
                page = doc[index]
                try:
                    textpage = page.get_textpage()
                    raw_text = textpage.get_text_range()
                    if not starts and raw_text.strip():
                        lines = raw_text.split("\r\n")
                        by_font.append((index + 1, lines, _line_sizes(textpage, lines)))
                    textpage.close()
                finally:
                    page.close()
                if not raw_text.strip():
                    empty.append(index + 1)
                    path = starts.get(index, [(0, path)])[-1][1]
                    continue
                if not starts:
                    continue
                text = raw_text.replace("\r\n", "\n")
                if "\ufffe" in text:
                    text = _SOFT_HYPHEN.sub("", text)
                pos = 0
                for title, new_path in starts.get(index, []):
                    at = text.find(title, pos) if title else -1
                    if at > pos and text[pos:at].strip():
                        elements.append(Element(text[pos:at], page=index + 1, heading=path))
                        pos = at
                    path = new_path
                elements.append(Element(text[pos:], page=index + 1, heading=path))
            pages = len(doc)
            if by_font:
                elements = _font_elements(by_font)
        except pdfium.PdfiumError as exc:
            raise CorruptDocumentError(f"{name}: cannot read its pages: {exc}") from exc
        finally:
            doc.close()
        warnings = (
            [
                f"{name}: {_pages(empty)} no text layer (a scan?); OCR is not supported, "
                "nothing was read from " + ("it" if len(empty) == 1 else "them")
            ]
            if empty
            else []
        )
        if not elements:
            raise EmptyDocumentError(
                f"{name} has no text layer on any of its {pages} page(s) (scanned?); OCR is not "
                "supported"
                if pages
                else f"{name} has no pages"
            )
        return Loaded(elements, pages=pages, warnings=warnings)


def _line_sizes(textpage: Any, lines: list[str]) -> list[float]:
    """The font size (to 0.5 pt) of each line's first character; 0 for a blank line. One
    PDFium call per line: ~1% of the page's extraction time (groff's bash manual, 3,913 lines)."""
    from pypdfium2 import raw

    size_of, handle = raw.FPDFText_GetFontSize, textpage.raw
    sizes: list[float] = []
    pos = 0
    for line in lines:
        lead = len(line) - len(line.lstrip())
        sizes.append(round(size_of(handle, pos + lead) * 2) / 2 if lead < len(line) else 0.0)
        pos += len(line) + 2  # PDFium ends lines with \r\n, two characters
    return sizes


def _is_title(line: str) -> bool:
    text = line.strip()
    return len(text) <= 120 and sum(c.isalpha() for c in text) >= 2  # not a lone big symbol


def _heading_levels(pages: list[tuple[int, list[str], list[float]]]) -> dict[float, int]:
    """Font size -> heading level, for a PDF without an outline: sizes at least 15% above the
    body's (the size with the most characters) whose lines are short, largest first; a size
    that more than a fifth of the lines use is text, not headings."""
    chars: collections.Counter[float] = collections.Counter()
    titles: collections.Counter[float] = collections.Counter()
    for _, lines, sizes in pages:
        for line, size in zip(lines, sizes):
            if size:
                chars[size] += len(line.strip())
    if not chars:
        return {}
    body = max(chars, key=lambda k: chars[k])
    n_lines = sum(1 for _, _, sizes in pages for size in sizes if size)
    for _, lines, sizes in pages:
        for line, size in zip(lines, sizes):
            if size >= body * 1.15 and _is_title(line):
                titles[size] += 1
    big = sorted((s for s, n in titles.items() if n <= max(3, n_lines // 5)), reverse=True)
    return {size: min(i + 1, 4) for i, size in enumerate(big)}


def _font_elements(pages: list[tuple[int, list[str], list[float]]]) -> list[Element]:
    """Elements of a PDF without an outline: headings told by their font size (see
    :func:`_heading_levels`); a heading wrapped over lines is joined."""
    levels = _heading_levels(pages)
    if not levels:  # no larger type: a page is one element, as with an outline of no entries
        return [
            Element(_SOFT_HYPHEN.sub("", "\n".join(lines)), page=number)
            for number, lines, _ in pages
        ]
    out: list[Element] = []
    path: list[tuple[int, str]] = []
    for number, lines, sizes in pages:
        body: list[str] = []
        title: list[str] = []
        title_level = 0

        def flush_body() -> None:
            text = "".join(body).strip()
            if text:
                out.append(Element(text, page=number, heading=tuple(t for _, t in path)))
            body.clear()

        def flush_title() -> None:
            nonlocal path
            if title:
                text = " ".join(title)
                path = [(lv, t) for lv, t in path if lv < title_level] + [(title_level, text)]
                out.append(
                    Element(text, kind="heading", page=number, heading=tuple(t for _, t in path))
                )
                title.clear()

        for line, size in zip(lines, sizes):
            level = levels.get(size)
            if level is not None and not _is_title(line):
                level = None
            if level is not None:
                if title and level != title_level:
                    flush_title()
                flush_body()
                title.append(" ".join(line.split()).rstrip("\ufffe"))
                title_level = level
                continue
            flush_title()
            body.append((_SOFT_HYPHEN.sub("", line) if "\ufffe" in line else line) + "\n")
        flush_title()
        flush_body()
    return out


def _outline(doc: Any) -> dict[int, list[tuple[str, tuple[str, ...]]]]:
    """Page index -> the outline entries starting there, in order: (title, heading path)."""
    starts: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
    stack: list[str] = []
    try:
        for item in doc.get_toc():
            title = " ".join((item.get_title() or "").split())
            dest = item.get_dest()
            index = dest.get_index() if dest is not None else None
            del stack[item.level :]
            stack.append(title)
            if index is not None and index >= 0 and title:
                starts.setdefault(index, []).append((title, tuple(stack)))
    except Exception:  # noqa: BLE001 - a broken outline must not cost the text: pages then carry no heading
        return {}
    return starts


def _pages(numbers: list[int]) -> str:
    """``page 3 has`` / ``pages 2, 5-9 have`` (one warning per file, not one per page).

    >>> _pages([3]), _pages([2, 5, 6, 7, 9])
    ('page 3 has', 'pages 2, 5-7, 9 have')
    """
    if len(numbers) == 1:
        return f"page {numbers[0]} has"
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return (
        "pages " + ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) + " have"
    )
