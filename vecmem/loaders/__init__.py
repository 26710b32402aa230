"""File loaders: a registry of formats, each read with its structure (page, slide, sheet,
heading path, tables).

========  ==========================================  =======================  ==============
loader    files                                       library (extra)          structure
========  ==========================================  =======================  ==============
text      .txt .text .rst                             standard library         --
markdown  .md .markdown                               standard library         heading
json      .json .jsonl .ndjson (a document a record)  standard library         record ids
code      .py .js .ts .go .rs .java .c .cpp ... (40)  standard library         --
csv       .csv .tsv                                   standard library         table
pdf       .pdf                                        pypdfium2 (``pdf``)      page, heading
docx      .docx                                       python-docx (``docx``)   heading, page*
pptx      .pptx                                       python-pptx (``pptx``)   slide, heading
xlsx      .xlsx .xlsm                                 openpyxl (``xlsx``)      sheet, table
html      .html .htm .xhtml (boilerplate dropped)     lxml, trafilatura        heading, table
epub      .epub                                       lxml (``html``)          heading
========  ==========================================  =======================  ==============

(* where the file records page breaks.) The extras: ``pdf``, ``docx``, ``pptx``, ``xlsx``,
``html`` (HTML and EPUB); ``pip install 'vecmem[documents]'`` installs all of them. A third-party loader is a class
with ``name``, ``suffixes``, ``mime_types`` and ``load(data, *, name) -> Loaded`` (see
:class:`~vecmem.loaders.base.Loader`), registered with ``LOADERS.register("rtf", RtfLoader)`` or
an entry point in the group ``vecmem.loaders``; a plugin claiming a built-in's suffix takes it.

>>> from vecmem.loaders import loader_for
>>> loader_for("report.PDF").name
'pdf'
>>> loader_for("data.bin") is None
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vecmem.loaders.base import Loaded, Loader, sniff
from vecmem.loaders.docx import DocxLoader
from vecmem.loaders.epub import EpubLoader
from vecmem.loaders.html import HtmlLoader
from vecmem.loaders.pdf import PdfLoader
from vecmem.loaders.pptx import PptxLoader
from vecmem.loaders.sheets import CsvLoader, XlsxLoader
from vecmem.loaders.text import CodeLoader, JsonLoader, MarkdownLoader, TextLoader
from vecmem.registry import LOADERS
from vecmem.types import Document

BUILTIN = (
    TextLoader,
    MarkdownLoader,
    JsonLoader,
    CodeLoader,
    CsvLoader,
    PdfLoader,
    DocxLoader,
    PptxLoader,
    XlsxLoader,
    HtmlLoader,
    EpubLoader,
)
for _cls in BUILTIN:
    LOADERS.register(_cls.name, _cls)


class LoaderTable:
    """Which loader reads a suffix or a MIME type, built once from :data:`LOADERS` (plugins
    first, so that a plugin claiming ``.pdf`` replaces the built-in PDF loader)."""

    def __init__(self) -> None:
        self.by_suffix: dict[str, Any] = {}
        self.by_mime: dict[str, Any] = {}
        factories = [LOADERS.get_factory(n) for n in LOADERS.list_registered()]
        plugins_first = sorted(factories, key=lambda f: f in BUILTIN)
        for factory in plugins_first:
            for suffix in getattr(factory, "suffixes", ()):
                self.by_suffix.setdefault(suffix.lower(), factory)
            for mime in getattr(factory, "mime_types", ()):
                self.by_mime.setdefault(mime.lower(), factory)
        self._made: dict[Any, Loader] = {}

    def _make(self, factory: Any) -> Loader:
        if factory not in self._made:
            self._made[factory] = factory()
        return self._made[factory]

    def for_name(self, name: str) -> Loader | None:
        """The loader for a file name or URL path, by its suffix (``None``: no loader)."""
        suffix = Path(name.split("?", 1)[0].split("#", 1)[0]).suffix.lower()
        factory = self.by_suffix.get(suffix)
        return self._make(factory) if factory is not None else None

    def for_mime(self, mime: str) -> Loader | None:
        factory = self.by_mime.get(mime.split(";", 1)[0].strip().lower())
        return self._make(factory) if factory is not None else None

    def suffixes(self) -> list[str]:
        return sorted(self.by_suffix)


def loader_for(name: str) -> Loader | None:
    """The loader that reads ``name`` (a path or URL) by its suffix, or ``None``."""
    return LoaderTable().for_name(name)


def load_file(
    path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None
) -> list[Document]:
    """Documents of one file (raises the file's typed error; see :mod:`vecmem.ingest`)."""
    from vecmem.ingest import read_file

    return read_file(Path(path), table=LoaderTable(), metadata=metadata)[0]


def load_paths(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    metadata: Mapping[str, Any] | None = None,
    recursive: bool = True,
) -> list[Document]:
    """Documents of files and folders, raising on the first file that cannot be read (files of
    types no loader reads are left out of folders). :meth:`VectorMemory.add_files` reports
    failures instead and goes on."""
    from vecmem.ingest import walk

    table = LoaderTable()
    files, _, _ = walk(paths, table=table, recursive=recursive)
    return [d for f in files for d in load_file(f, metadata=metadata)]


__all__ = [
    "LOADERS",
    "Loaded",
    "Loader",
    "LoaderTable",
    "load_file",
    "load_paths",
    "loader_for",
    "sniff",
]
