"""PowerPoint ``.pptx`` with python-pptx (MIT): one part per slide (1-based ``slide``) headed by
the slide's title; text frames, tables (rows as lines, cells joined by ``" | "``), grouped shapes
and the speaker notes, in shape order."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, ClassVar

from vecmem._deps import require
from vecmem.errors import CorruptDocumentError, EmptyDocumentError
from vecmem.loaders.base import Loaded, expect_ooxml
from vecmem.types import Element


class PptxLoader:
    """``.pptx``: ``slide`` and the slide title as ``heading``."""

    name: ClassVar[str] = "pptx"
    suffixes: ClassVar[tuple[str, ...]] = (".pptx",)
    mime_types: ClassVar[tuple[str, ...]] = (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    )

    def load(self, data: bytes, *, name: str) -> Loaded:
        pptx = require("pptx", "pptx", "reading PowerPoint files")
        group = require("pptx.shapes.group", "pptx", "reading PowerPoint files").GroupShape
        expect_ooxml(data, name=name, kind="PPTX")
        elements: list[Element] = []
        try:
            deck = pptx.Presentation(io.BytesIO(data))
            slides = list(deck.slides)
            for number, slide in enumerate(slides, 1):
                title_shape = slide.shapes.title
                title = (
                    " ".join(title_shape.text_frame.text.split())
                    if title_shape is not None and title_shape.has_text_frame
                    else ""
                )
                heading = (title,) if title else ()
                for shape in _shapes(slide.shapes, group):
                    if shape.has_text_frame:
                        text = shape.text_frame.text.strip()
                        kind = (
                            "heading"
                            if title_shape is not None and shape.shape_id == title_shape.shape_id
                            else "text"
                        )
                        if text:
                            elements.append(Element(text, kind=kind, slide=number, heading=heading))
                    elif getattr(shape, "has_table", False) and shape.has_table:
                        rows = [
                            " | ".join(" ".join(c.text.split()) for c in row.cells)
                            for row in shape.table.rows
                        ]
                        text = "\n".join(r for r in rows if r.strip(" |"))
                        if text:
                            elements.append(
                                Element(text, kind="table", slide=number, heading=heading)
                            )
                if slide.has_notes_slide:
                    notes = slide.notes_slide.notes_text_frame
                    if notes is not None and notes.text.strip():
                        elements.append(Element(notes.text.strip(), slide=number, heading=heading))
        except Exception as exc:  # python-pptx raises KeyError, BadZipFile, lxml errors ...
            raise CorruptDocumentError(f"{name} is not a readable PPTX file: {exc}") from exc
        if not elements:
            raise EmptyDocumentError(f"{name} holds no text on its {len(slides)} slide(s)")
        return Loaded(elements, pages=len(slides))


def _shapes(shapes: Any, group: Any) -> Iterator[Any]:
    """Shapes in order, group shapes opened."""
    for shape in shapes:
        if isinstance(shape, group):
            yield from _shapes(shape.shapes, group)
        else:
            yield shape
