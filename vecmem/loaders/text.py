"""Plain-text formats, with the standard library only: text, Markdown (heading paths), JSON /
JSON lines (one document per record) and source code.

A ``.jsonl`` file holds one object per line and a ``.json`` file an object or a list of objects;
each object needs ``text`` (BEIR's ``title`` is prepended when present) and may carry
``id``/``_id`` and ``metadata``; a record without an id gets ``<file>:line N`` / ``<file>:item N``.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from vecmem.errors import CorruptDocumentError
from vecmem.loaders.base import Loaded, decode_text
from vecmem.types import Element


class TextLoader:
    """``.txt`` and ``.rst``: the whole file as one element."""

    name: ClassVar[str] = "text"
    suffixes: ClassVar[tuple[str, ...]] = (".txt", ".text", ".rst")
    mime_types: ClassVar[tuple[str, ...]] = ("text/plain",)

    def load(self, data: bytes, *, name: str) -> Loaded:
        return Loaded([Element(decode_text(data, name=name))])


_ATX = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


class MarkdownLoader:
    """``.md``: one element per section, each with its heading path (``#`` lines outside code
    fences)."""

    name: ClassVar[str] = "markdown"
    suffixes: ClassVar[tuple[str, ...]] = (".md", ".markdown")
    mime_types: ClassVar[tuple[str, ...]] = ("text/markdown", "text/x-markdown")

    def load(self, data: bytes, *, name: str) -> Loaded:
        path: list[tuple[int, str]] = []
        elements: list[Element] = []
        lines: list[str] = []
        fenced = False

        def flush() -> None:
            if "".join(lines).strip():
                elements.append(Element("\n".join(lines), heading=tuple(t for _, t in path)))
            lines.clear()

        for line in decode_text(data, name=name).splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            m = None if fenced else _ATX.match(line)
            if m:
                flush()
                level = len(m.group(1))
                path = [(lv, t) for lv, t in path if lv < level] + [(level, m.group(2))]
            lines.append(line)
        flush()
        return Loaded(elements)


class JsonLoader:
    """``.json`` (an object or a list of objects) and ``.jsonl`` (one object per line): each
    record is a document of its own."""

    name: ClassVar[str] = "json"
    suffixes: ClassVar[tuple[str, ...]] = (".json", ".jsonl", ".ndjson")
    mime_types: ClassVar[tuple[str, ...]] = (
        "application/json",
        "application/x-ndjson",
        "application/jsonl",
    )

    def load(self, data: bytes, *, name: str) -> Loaded:
        raw = decode_text(data, name=name)
        records: list[tuple[str, Any]] = []
        try:
            if name.lower().endswith((".jsonl", ".ndjson")) or _looks_like_lines(raw):
                records = [
                    (f"line {n}", json.loads(line))
                    for n, line in enumerate(raw.splitlines(), 1)
                    if line.strip()
                ]
            else:
                parsed = json.loads(raw)
                items = parsed if isinstance(parsed, list) else [parsed]
                records = [(f"item {n}", obj) for n, obj in enumerate(items)]
        except json.JSONDecodeError as exc:
            raise CorruptDocumentError(f"{name} is not valid JSON: {exc}") from exc
        return Loaded([_record(obj, name, where) for where, obj in records])


def _looks_like_lines(raw: str) -> bool:
    head = raw.lstrip()
    return (
        head.startswith("{")
        and "\n" in head.strip()
        and head.split("\n", 1)[0].rstrip().endswith("}")
    )


def _record(obj: Any, name: str, where: str) -> Element:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        raise CorruptDocumentError(f"{where} of {name}: expected an object with a 'text' string")
    text = f"{obj['title']} {obj['text']}" if obj.get("title") else obj["text"]
    doc_id = str(obj.get("id", obj.get("_id", "")) or f"{name}:{where}")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        raise CorruptDocumentError(f"{where} of {name}: 'metadata' must be an object")
    return Element(text, record=doc_id, metadata=meta)


class CodeLoader:
    """Source code as text (one element; the recursive splitter cuts at blank lines first)."""

    name: ClassVar[str] = "code"
    suffixes: ClassVar[tuple[str, ...]] = (
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".jsx",
        ".ts",
        ".tsx",
        ".java",
        ".kt",
        ".scala",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".hpp",
        ".cs",
        ".rb",
        ".php",
        ".swift",
        ".m",
        ".r",
        ".jl",
        ".lua",
        ".pl",
        ".sh",
        ".bash",
        ".zsh",
        ".ps1",
        ".sql",
        ".toml",
        ".yaml",
        ".yml",
        ".ini",
        ".cfg",
        ".css",
        ".scss",
        ".xml",
        ".proto",
        ".tex",
    )
    mime_types: ClassVar[tuple[str, ...]] = (
        "text/x-python",
        "application/javascript",
        "text/javascript",
        "application/x-sh",
    )

    def load(self, data: bytes, *, name: str) -> Loaded:
        return Loaded([Element(decode_text(data, name=name), kind="code")])
