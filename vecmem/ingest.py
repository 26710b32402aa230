"""Ingesting files, folders and URLs: find a loader for each, read it into documents that keep
its structure, and add them; a file that cannot be read is reported and the others go on.

What :meth:`VectorMemory.add_files` returns (an :class:`~vecmem.memory.AddResult`) says what
happened to every path: read (``files``, ``pages``), unchanged (``skipped``), of a type no loader
reads (``unsupported``), or failed with a typed error (``failed``, a :class:`FileFailure` each);
``warnings`` holds what was read only in part (a PDF page without a text layer). A failed file
leaves nothing of itself in the store (its chunks from an earlier add stay as they were).

Folders are walked recursively; hidden files and folders (``.git``, ``.venv``) are not entered
and are counted in ``hidden``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vecmem.errors import (
    CorruptDocumentError,
    DocumentReadError,
    DocumentTooLargeError,
    EmptyDocumentError,
    InvalidInputError,
    UnsupportedFormatError,
    VecmemError,
)
from vecmem.loaders import Loaded, Loader, LoaderTable
from vecmem.loaders.fetch import DEFAULT_TIMEOUT, fetch, is_url
from vecmem.memory import DEFAULT_MAX_BYTES
from vecmem.types import Document
from vecmem.validation import check_metadata

if TYPE_CHECKING:
    from vecmem.memory import AddResult, VectorMemory

FILES_PER_WRITE = 32  # files read before their documents are chunked, embedded and written

Source = Path | str  # a file or a URL


@dataclass(frozen=True)
class FileFailure:
    """A file or URL that could not be read: its typed error (a :class:`DocumentReadError`
    subclass, or :class:`~vecmem.errors.MissingDependencyError` naming the extra to install)."""

    source: str
    error: VecmemError

    @property
    def kind(self) -> str:
        return type(self.error).__name__

    def __str__(self) -> str:
        return f"{self.source}: {self.kind}: {self.error}"

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "error": self.kind, "message": str(self.error)}


def walk(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    table: LoaderTable,
    recursive: bool = True,
    strict: bool = False,
) -> tuple[list[Source], list[str], int]:
    """The files (and URLs) to read, the ones no loader reads, and how many hidden entries of
    the folders were not entered. A path that does not exist raises :class:`DocumentReadError`
    before anything is read, and so does a file named explicitly that no loader reads when
    ``strict``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Source] = []
    unsupported: list[str] = []
    hidden = 0
    for raw in paths:
        if is_url(raw):
            files.append(str(raw))
            continue
        p = Path(raw)
        if p.is_dir():
            found: list[Path] = []
            for root, dirs, names in os.walk(p):
                hidden += sum(1 for d in dirs if d.startswith(".")) + sum(
                    1 for n in names if n.startswith(".")
                )
                dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if recursive else []
                found += [Path(root, n) for n in names if not n.startswith(".")]
            for f in sorted(found):
                if table.for_name(f.name):
                    files.append(f)
                else:
                    unsupported.append(str(f))
        elif p.exists():
            if table.for_name(p.name):
                files.append(p)
            elif strict:
                raise UnsupportedFormatError(
                    f"{p}: no loader reads {p.suffix or 'files without a suffix'!r} files "
                    f"(loaders read {', '.join(table.suffixes())})"
                )
            else:
                unsupported.append(str(p))
        else:
            raise DocumentReadError(f"no such file or directory: {p}")
    return files, unsupported, hidden


def _check(docs: list[Document], seen: set[str], source: Source) -> None:
    """What add_documents would refuse for the whole call, refused for this file alone: an id
    seen before (in this file or an earlier one), metadata that is not JSON."""
    ids: set[str] = set()
    for d in docs:
        if d.id in seen or d.id in ids:
            raise InvalidInputError(f"{source}: document id {d.id!r} appears twice")
        ids.add(d.id)
        check_metadata(d.metadata, f"document {d.id!r} of {source}")


def _load(loader: Loader, data: bytes, name: str) -> Loaded:
    if not data:
        raise EmptyDocumentError(f"{name} is empty (0 bytes)")
    try:
        loaded = loader.load(data, name=name)
    except VecmemError:
        raise
    except Exception as exc:  # a plugin loader's own exception: still one file's failure
        raise CorruptDocumentError(f"{name}: the {loader.name!r} loader failed: {exc!r}") from exc
    if not any(e.text.strip() for e in loaded.elements):
        raise EmptyDocumentError(f"{name} holds no text")
    return loaded


def documents_of(loaded: Loaded, *, doc_id: str, metadata: Mapping[str, Any]) -> list[Document]:
    """The documents of a loaded file: one (id ``doc_id``) holding its elements, or one per
    record for files of records (JSON lines)."""
    own = [e for e in loaded.elements if e.record is None and e.text.strip()]
    docs: list[Document] = []
    if own:
        structured = any(e.location() or e.kind == "table" for e in own)
        docs.append(
            Document(
                doc_id,
                "\n\n".join(e.text.strip() for e in own),
                dict(metadata),
                tuple(own) if structured else (),
            )
        )
    for e in loaded.elements:
        if e.record is not None and e.text.strip():
            docs.append(Document(e.record, e.text, {**metadata, **e.metadata}))
    return docs


def read_file(
    path: Path,
    *,
    table: LoaderTable,
    metadata: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[list[Document], Loaded]:
    """Documents of one file (id: its resolved path; ``source``: the path as given)."""
    loader = table.for_name(path.name)
    if loader is None:
        raise UnsupportedFormatError(
            f"{path}: no loader reads {path.suffix or 'files without a suffix'!r} files "
            f"(loaders read {', '.join(table.suffixes())})"
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentTooLargeError(
                f"{path} is {size:,} bytes, over the limit of {max_bytes:,} (max_bytes)"
            )
        data = path.read_bytes()
    except DocumentReadError:
        raise
    except OSError as exc:
        raise DocumentReadError(f"cannot read {path}: {exc}") from exc
    doc_id = str(path.resolve())
    loaded = _load(loader, data, doc_id)
    meta = {**(metadata or {}), "source": str(path)}
    return documents_of(loaded, doc_id=doc_id, metadata=meta), loaded


def read_url(
    url: str,
    *,
    table: LoaderTable,
    metadata: Mapping[str, Any] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> tuple[list[Document], Loaded]:
    """Documents of a URL: the loader is picked by the ``Content-Type`` header, else by the
    URL's suffix; id and ``source`` are the URL as given."""
    got = fetch(url, max_bytes=max_bytes, timeout=timeout)
    loader = table.for_mime(got.mime) if got.mime else None
    loader = loader or table.for_name(got.url) or table.for_name(url)
    if loader is None:
        raise UnsupportedFormatError(f"{url}: no loader reads its type {got.mime or 'unknown'!r}")
    loaded = _load(loader, got.data, url)
    return documents_of(loaded, doc_id=url, metadata={**(metadata or {}), "source": url}), loaded


def ingest(
    memory: VectorMemory,
    paths: Any,
    *,
    metadata: Mapping[str, Any] | None,
    recursive: bool,
    force: bool,
    max_bytes: int,
    timeout: float,
    on_error: Literal["report", "raise"],
) -> AddResult:
    """:meth:`VectorMemory.add_files`' body (see there)."""
    from tqdm.auto import tqdm

    from vecmem.memory import AddResult

    if on_error not in ("report", "raise"):
        raise InvalidInputError(f"on_error must be 'report' or 'raise', not {on_error!r}")
    if max_bytes <= 0:
        raise InvalidInputError("max_bytes must be > 0")
    table = LoaderTable()
    files, unsupported, hidden = walk(
        paths, table=table, recursive=recursive, strict=on_error == "raise"
    )
    result = AddResult(unsupported=unsupported, hidden=hidden)
    pending: list[Document] = []
    seen: set[str] = set()
    pending_files = 0
    with tqdm(
        total=len(files), desc="reading", unit="file", disable=not memory.progress or len(files) < 2
    ) as bar:
        for source in files:
            try:
                if isinstance(source, Path):
                    docs, loaded = read_file(
                        source, table=table, metadata=metadata, max_bytes=max_bytes
                    )
                else:
                    docs, loaded = read_url(
                        source, table=table, metadata=metadata, max_bytes=max_bytes, timeout=timeout
                    )
                _check(docs, seen, source)
            except VecmemError as exc:
                if on_error == "raise":
                    raise
                result.failed.append(FileFailure(str(source), exc))
            else:
                seen.update(d.id for d in docs)
                pending += docs
                pending_files += 1
                result.files += 1
                result.pages += loaded.pages
                result.warnings += loaded.warnings
            bar.update(1)
            bar.set_postfix(pages=result.pages, failed=len(result.failed), refresh=False)
            if on_error == "report" and pending_files >= FILES_PER_WRITE:
                result.merge(memory.add_documents(pending, force=force))
                pending, pending_files = [], 0
    if pending:
        result.merge(memory.add_documents(pending, force=force))
    return result


__all__ = [
    "DEFAULT_MAX_BYTES",
    "FileFailure",
    "documents_of",
    "ingest",
    "read_file",
    "read_url",
    "walk",
]
