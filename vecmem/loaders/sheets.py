"""Spreadsheets: ``.xlsx`` with openpyxl (MIT; read-only mode, cached formula values) and
``.csv`` / ``.tsv`` with the standard library. Each sheet is one table element (rows as lines,
cells joined by ``" | "``; empty rows and trailing empty cells dropped) with its ``sheet`` name;
chunks of a long sheet repeat its first row, the header. A formula cell reads as the value
its file last saved (Excel saves them; a file written by a library that never computed its
formulas has none to read, and the cell reads as empty)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from typing import Any, ClassVar

from vecmem._deps import require
from vecmem.errors import CorruptDocumentError, EmptyDocumentError
from vecmem.loaders.base import Loaded, decode_text, expect_ooxml
from vecmem.types import Element


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return " ".join(str(value).split())


def _table(rows: Iterable[Iterable[Any]]) -> str:
    lines: list[str] = []
    for row in rows:
        cells = [_cell(v) for v in row]
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            lines.append(" | ".join(cells))
    return "\n".join(lines)


class XlsxLoader:
    """``.xlsx`` / ``.xlsm``: one table per sheet, with ``sheet``."""

    name: ClassVar[str] = "xlsx"
    suffixes: ClassVar[tuple[str, ...]] = (".xlsx", ".xlsm")
    mime_types: ClassVar[tuple[str, ...]] = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )

    def load(self, data: bytes, *, name: str) -> Loaded:
        openpyxl = require("openpyxl", "xlsx", "reading Excel files")
        expect_ooxml(data, name=name, kind="XLSX")
        elements: list[Element] = []
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                names = list(book.sheetnames)
                for sheet in names:
                    text = _table(book[sheet].iter_rows(values_only=True))
                    if text:
                        elements.append(Element(text, kind="table", sheet=sheet))
            finally:
                book.close()
        except Exception as exc:  # openpyxl raises InvalidFileException, KeyError, BadZipFile ...
            raise CorruptDocumentError(f"{name} is not a readable XLSX file: {exc}") from exc
        if not elements:
            raise EmptyDocumentError(f"{name} holds no values in its {len(names)} sheet(s)")
        return Loaded(elements, pages=len(names))


class CsvLoader:
    """``.csv`` / ``.tsv``: one table (the delimiter is sniffed; ``.tsv`` is tab-separated)."""

    name: ClassVar[str] = "csv"
    suffixes: ClassVar[tuple[str, ...]] = (".csv", ".tsv")
    mime_types: ClassVar[tuple[str, ...]] = ("text/csv", "text/tab-separated-values")

    def load(self, data: bytes, *, name: str) -> Loaded:
        raw = decode_text(data, name=name)
        if name.lower().endswith(".tsv"):
            delimiter = "\t"
        else:
            try:
                delimiter = csv.Sniffer().sniff(raw[:8192], delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
        try:
            text = _table(csv.reader(io.StringIO(raw), delimiter=delimiter))
        except csv.Error as exc:
            raise CorruptDocumentError(f"{name} is not valid CSV: {exc}") from exc
        if not text:
            raise EmptyDocumentError(f"{name} holds no values")
        return Loaded([Element(text, kind="table")])
