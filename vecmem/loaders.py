"""Reading files into documents: ``.txt``, ``.md``/``.markdown``, ``.json`` and ``.jsonl``.

A text file is one document whose id is its resolved path. A ``.jsonl`` file holds one object per
line and a ``.json`` file an object or a list of objects; each object needs ``text`` (BEIR's
``title`` is prepended when present) and may carry ``id``/``_id`` and ``metadata``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from vecmem.errors import DocumentReadError, InvalidInputError
from vecmem.types import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
JSON_SUFFIXES = {".json", ".jsonl"}
SUFFIXES = TEXT_SUFFIXES | JSON_SUFFIXES


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentReadError(f"{path} is not UTF-8 text: {exc}") from exc
    except OSError as exc:
        raise DocumentReadError(f"cannot read {path}: {exc}") from exc


def _record(obj: Any, path: Path, where: str, base: Mapping[str, Any]) -> Document:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("text"), str):
        raise DocumentReadError(f"{where} of {path}: expected an object with a 'text' string")
    text = obj["text"]
    if obj.get("title"):
        text = f"{obj['title']} {text}"
    doc_id = str(obj.get("id", obj.get("_id", "")) or f"{path.resolve()}:{where}")
    meta = {**base, "source": str(path), **dict(obj.get("metadata") or {})}
    return Document(doc_id, text, meta)


def load_file(path: str | os.PathLike[str], *, metadata: Mapping[str, Any] | None = None
              ) -> list[Document]:
    """Documents of one file (empty files and empty records are left out)."""
    p = Path(path)
    base = dict(metadata or {})
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DocumentReadError(f"{p}: unsupported file type {suffix!r} (use {sorted(SUFFIXES)})")
    raw = _read_text(p)
    if suffix in TEXT_SUFFIXES:
        return [Document(str(p.resolve()), raw, {**base, "source": str(p)})] if raw.strip() else []
    docs: list[Document] = []
    try:
        if suffix == ".jsonl":
            for n, line in enumerate(raw.splitlines(), 1):
                if line.strip():
                    docs.append(_record(json.loads(line), p, f"line {n}", base))
        else:
            data = json.loads(raw)
            items = data if isinstance(data, list) else [data]
            docs = [_record(o, p, f"item {n}", base) for n, o in enumerate(items)]
    except json.JSONDecodeError as exc:
        raise DocumentReadError(f"{p} is not valid JSON: {exc}") from exc
    return [d for d in docs if d.text.strip()]


def iter_files(paths: Sequence[str | os.PathLike[str]], *, recursive: bool = True) -> Iterator[Path]:
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.glob("*")
            yield from sorted(f for f in walker if f.is_file() and f.suffix.lower() in SUFFIXES)
        elif p.exists():
            yield p
        else:
            raise DocumentReadError(f"no such file or directory: {p}")


def load_paths(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    metadata: Mapping[str, Any] | None = None,
    recursive: bool = True,
) -> list[Document]:
    """Documents from files and folders; ids must be unique across them."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    docs: list[Document] = []
    seen: set[str] = set()
    for f in iter_files(paths, recursive=recursive):
        for d in load_file(f, metadata=metadata):
            if d.id in seen:
                raise InvalidInputError(f"document id {d.id!r} appears twice ({f})")
            seen.add(d.id)
            docs.append(d)
    return docs
