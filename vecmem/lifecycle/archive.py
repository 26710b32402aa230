"""The portable archive of a vector store: export, verify, import, each a stream.

Format ``vecmem-archive`` version 1 is a POSIX tar stream (``tarfile``, no compression) whose
members come in this order::

    archive.json        {"format": "vecmem-archive", "version": 1, "id": hex, "cipher": null |
                         "aes-gcm" | "fernet"}                       (never encrypted)
    space.json          the embedding-space record (EmbeddingSpace.to_json)
    parts/000000.jsonl  one page of chunks, one JSON object a line (Chunk.to_dict)
    parts/000000.npy    their vectors, float32, shape (rows, dim), NumPy .npy
    ...                 (more pages)
    manifest.json       {"format", "version", "id", "chunks": N, "dim": d, "filter": spec,
                         "members": {name: {"sha256": hex, "size": bytes, "rows": n}}}

The manifest comes last (counts and checksums are known only then) and lists every member
before it, with the SHA-256 of the member's bytes as stored. With a key (the checkpoints' key
handling, :class:`~vecmem.checkpoints.codec.Codec`) every member but ``archive.json`` is sealed:
AES-GCM binds it to the archive id and its own name, so members cannot be swapped between
archives or within one. Import reads the archive twice: the first pass checks everything
(checksums, counts, shapes, JSON, decryption) and only then the second pass writes, so a damaged,
truncated or wrongly-keyed archive raises :class:`~vecmem.errors.IntegrityError` and leaves the
target unchanged. Writes are upserts by chunk id: an import killed half way and run again ends
with exactly one copy of everything.

>>> from vecmem.lifecycle import export_store, import_store       # doctest: +SKIP
>>> export_store("./kb", "kb.vmar", filter={"source": "a.md"})    # doctest: +SKIP
>>> import_store("kb.vmar", "postgresql://localhost/db")          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import secrets
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from vecmem.checkpoints.codec import Cipher, Codec
from vecmem.errors import IntegrityError, StorageFullError
from vecmem.filters import FilterLike
from vecmem.lifecycle.pages import Pages, loading, opened, progress_bar
from vecmem.types import Chunk, EmbeddingSpace

FORMAT = "vecmem-archive"
VERSION = 1
PAGE = 2048
MAX_MEMBER = 1 << 30  # a member is one page; anything larger is not an archive this wrote
_PART = re.compile(r"parts/(\d{6})\.(jsonl|npy)")


@dataclass(frozen=True)
class ArchiveReport:
    """What an export or import did."""

    path: str
    chunks: int
    parts: int
    bytes: int
    seconds: float


def _fault(point: str) -> None:
    """Fault-injection hook, a no-op: the fault tests replace it in a child process to kill it
    at ``point`` ("export-part", "import-part")."""


# ----------------------------------------------------------------------------- export
def _open_output(path: Path) -> IO[bytes]:
    """The file an export writes (the full-disk tests replace it)."""
    return open(path, "wb")


def export_store(
    store: Any,
    path: str | os.PathLike[str],
    *,
    filter: FilterLike = None,
    key: bytes | str | None = None,
    cipher: Cipher = "aes-gcm",
    page: int = PAGE,
    progress: bool = False,
) -> ArchiveReport:
    """Write ``store`` (a store object, or a folder / name / URL :func:`vecmem.stores.open_store`
    takes) to the archive ``path``, only the chunks matching ``filter`` if one is given.

    The archive is written to ``path + ".partial"`` and renamed at the end: ``path`` is either
    absent or a whole archive, whatever happens (kill -9, full disk:
    :class:`~vecmem.errors.StorageFullError`).
    """
    import time

    t0 = time.perf_counter()
    codec = Codec(key=key, cipher=cipher) if key is not None else None
    out = Path(os.fspath(path))
    partial = out.with_name(out.name + ".partial")
    with opened(store) as (s, space):
        pages = Pages(s, filter=filter, page=page)
        members: dict[str, dict[str, Any]] = {}
        archive_id = secrets.token_hex(16)
        total = 0
        try:
            with _open_output(partial) as f:
                # closed by hand: a failed export must not end the tar as if whole
                tar = tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT)
                head = {
                    "format": FORMAT,
                    "version": VERSION,
                    "id": archive_id,
                    "cipher": codec.cipher if codec else None,
                }
                _add(tar, "archive.json", _json(head), members)
                w = _Writer(tar, codec, archive_id, members)
                w.add("space.json", space.to_json().encode())
                with progress_bar(pages.total(), "export", progress) as bar:
                    for n, (chunks, vectors) in enumerate(pages):
                        name = f"parts/{n:06d}"
                        lines = "".join(
                            json.dumps(c.to_dict(), ensure_ascii=False, separators=(",", ":"))
                            + "\n"
                            for c in chunks
                        )
                        w.add(name + ".jsonl", lines.encode("utf-8"), rows=len(chunks))
                        w.add(name + ".npy", _npy(vectors), rows=len(chunks))
                        total += len(chunks)
                        bar.update(len(chunks))
                        _fault("export-part")
                manifest = {
                    "format": FORMAT,
                    "version": VERSION,
                    "id": archive_id,
                    "chunks": total,
                    "dim": space.dim,
                    "filter": filter,
                    "members": dict(members),
                }
                w.add("manifest.json", _json(manifest), listed=False)
                tar.close()
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, out)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageFullError(
                    f"no space left to write the archive {out}: {exc}; nothing was written there"
                ) from exc
            raise
    return ArchiveReport(
        str(out),
        total,
        (len(members) - 2) // 2,
        out.stat().st_size,
        round(time.perf_counter() - t0, 3),
    )


class _Writer:
    def __init__(
        self,
        tar: tarfile.TarFile,
        codec: Codec | None,
        archive_id: str,
        members: dict[str, dict[str, Any]],
    ) -> None:
        self.tar, self.codec, self.id, self.members = tar, codec, archive_id, members

    def add(self, name: str, data: bytes, *, rows: int | None = None, listed: bool = True) -> None:
        if self.codec is not None:
            data = self.codec.seal(data, aad=_aad(self.id, name))
        _add(self.tar, name, data, self.members if listed else None, rows)


def _add(
    tar: tarfile.TarFile,
    name: str,
    data: bytes,
    members: dict[str, dict[str, Any]] | None,
    rows: int | None = None,
) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))
    if members is not None:
        entry: dict[str, Any] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        if rows is not None:
            entry["rows"] = rows
        members[name] = entry


def _aad(archive_id: str, name: str) -> bytes:
    return f"{FORMAT}/{VERSION}/{archive_id}/{name}".encode()


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True).encode("utf-8")


def _npy(vectors: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


# ----------------------------------------------------------------------------- read
@dataclass(frozen=True)
class _Head:
    archive_id: str
    cipher: str | None
    space: EmbeddingSpace
    manifest: dict[str, Any]


def _members(path: Path, what: str) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of each member, in order; IntegrityError for a damaged tar stream."""
    try:
        with open(path, "rb") as f, tarfile.open(fileobj=f, mode="r|") as tar:
            for m in tar:
                if not m.isfile() or m.size > MAX_MEMBER:
                    raise IntegrityError(f"{what} holds an unexpected member {m.name!r}")
                data = tar.extractfile(m)
                if data is None:
                    raise IntegrityError(f"{what}: member {m.name!r} cannot be read")
                raw = data.read()
                if len(raw) != m.size:
                    raise IntegrityError(f"{what} is truncated (in member {m.name!r})")
                yield m.name, raw
    except (tarfile.TarError, EOFError) as exc:
        raise IntegrityError(f"{what} is damaged or truncated ({exc})") from exc


def _decode_part(codec: Codec | None, head_id: str, name: str, raw: bytes, what: str) -> bytes:
    if codec is None:
        return raw
    return codec.unseal(raw, aad=_aad(head_id, name), what=f"{what} member {name!r}")


def _parse_chunks(data: bytes, name: str, what: str) -> list[Chunk]:
    try:
        return [
            Chunk(
                id=d["id"],
                document_id=d["document_id"],
                position=int(d["position"]),
                text=d["text"],
                metadata=d["metadata"],
                content_hash=d["content_hash"],
            )
            for d in map(json.loads, data.decode("utf-8").splitlines())
        ]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{what}: member {name!r} is not valid chunk JSON ({exc})") from exc


def _parse_vectors(data: bytes, name: str, what: str, rows: int, dim: int) -> np.ndarray:
    try:
        v = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise IntegrityError(f"{what}: member {name!r} is not a .npy array ({exc})") from exc
    if v.dtype != np.float32 or v.shape != (rows, dim):
        raise IntegrityError(
            f"{what}: member {name!r} holds {v.dtype} {v.shape}, expected float32 ({rows}, {dim})"
        )
    return v


def _read(path: Path, key: bytes | str | None, *, write: Any = None) -> _Head:
    """Read the archive once, checking everything; ``write(chunks, vectors)`` gets each page
    (after that page's own checks) when given."""
    what = f"archive {str(path)!r}"
    stream = _members(path, what)
    first = next(stream, None)
    if first is None or first[0] != "archive.json":
        raise IntegrityError(f"{what} is not a vecmem archive (no archive.json first)")
    try:
        head = json.loads(first[1])
        ok = head.get("format") == FORMAT and isinstance(head.get("id"), str)
    except (ValueError, AttributeError) as exc:
        raise IntegrityError(f"{what}: archive.json is damaged ({exc})") from exc
    if not ok:
        raise IntegrityError(f"{what} is not a vecmem archive")
    if head.get("version") != VERSION:
        raise IntegrityError(
            f"{what} has format version {head.get('version')!r}; this vecmem "
            f"reads version {VERSION}"
        )
    cipher = head.get("cipher")
    codec: Codec | None = None
    if cipher is not None:
        if key is None:
            raise IntegrityError(f"{what} is encrypted ({cipher}) but no key was given")
        codec = Codec(key=key, cipher=cipher)
    seen = {"archive.json": hashlib.sha256(first[1]).hexdigest()}
    space: EmbeddingSpace | None = None
    manifest: dict[str, Any] | None = None
    pending: tuple[str, list[Chunk]] | None = None
    rows_seen = 0
    for name, raw in stream:
        if manifest is not None:
            raise IntegrityError(f"{what} has a member {name!r} after its manifest")
        if name in seen:
            raise IntegrityError(f"{what} holds member {name!r} twice")
        data = _decode_part(codec, head["id"], name, raw, what)
        if name == "manifest.json":
            try:
                manifest = json.loads(data)
            except ValueError as exc:
                raise IntegrityError(f"{what}: manifest.json is damaged ({exc})") from exc
            continue
        seen[name] = hashlib.sha256(raw).hexdigest()
        if name == "space.json":
            try:
                space = EmbeddingSpace.from_json(data.decode("utf-8"))
            except (ValueError, TypeError) as exc:
                raise IntegrityError(f"{what}: space.json is damaged ({exc})") from exc
            continue
        m = _PART.fullmatch(name)
        if m is None or space is None:
            raise IntegrityError(f"{what} holds an unexpected member {name!r}")
        if m.group(2) == "jsonl":
            if pending is not None:
                raise IntegrityError(f"{what}: {pending[0]} has no vectors")
            pending = (name, _parse_chunks(data, name, what))
            continue
        if pending is None or pending[0] != name[:-4] + ".jsonl":
            raise IntegrityError(f"{what}: {name} has no chunks before it")
        chunks = pending[1]
        vectors = _parse_vectors(data, name, what, len(chunks), space.dim)
        pending = None
        rows_seen += len(chunks)
        if write is not None:
            write(chunks, vectors)
    if manifest is None or space is None:
        raise IntegrityError(f"{what} is truncated: it ends before its manifest")
    if pending is not None:
        raise IntegrityError(f"{what}: {pending[0]} has no vectors")
    listed = manifest.get("members")
    if not isinstance(listed, dict) or set(listed) != set(seen):
        raise IntegrityError(f"{what}: its members do not match its manifest")
    for name, digest in seen.items():
        if not isinstance(listed[name], dict) or listed[name].get("sha256") != digest:
            raise IntegrityError(f"{what}: member {name!r} fails its SHA-256 checksum")
    if manifest.get("chunks") != rows_seen or manifest.get("id") != head["id"]:
        raise IntegrityError(
            f"{what}: manifest says {manifest.get('chunks')} chunks, the archive holds {rows_seen}"
        )
    return _Head(head["id"], cipher, space, manifest)


def verify_archive(
    path: str | os.PathLike[str], *, key: bytes | str | None = None
) -> dict[str, Any]:
    """The manifest of the archive at ``path`` once every member has been checked;
    :class:`~vecmem.errors.IntegrityError` if anything is damaged, missing or undecryptable."""
    return _read(Path(os.fspath(path)), key).manifest


def import_store(
    path: str | os.PathLike[str],
    store: Any,
    *,
    key: bytes | str | None = None,
    progress: bool = False,
) -> ArchiveReport:
    """Load the archive at ``path`` into ``store`` (an object, or what
    :func:`~vecmem.stores.open_store` takes), after checking all of it (see the module text).

    The store must be new or hold the archive's embedding space
    (:class:`~vecmem.errors.EmbeddingSpaceMismatchError` otherwise, before anything is written).
    """
    import time

    t0 = time.perf_counter()
    src = Path(os.fspath(path))
    head = _read(src, key)  # pass 1: everything checked, nothing written
    with opened(store, space=head.space) as (s, _space):
        total = int(head.manifest["chunks"])
        with loading(s, total), progress_bar(total, "import", progress) as bar:

            def write(chunks: list[Chunk], vectors: np.ndarray) -> None:
                s.upsert(chunks, vectors)
                bar.update(len(chunks))
                _fault("import-part")

            again = _read(src, key, write=write)  # pass 2: written as it is read
        if again.archive_id != head.archive_id:
            raise IntegrityError(f"archive {str(src)!r} changed while it was imported")
    return ArchiveReport(
        str(src),
        int(head.manifest["chunks"]),
        (len(head.manifest["members"]) - 2) // 2,
        src.stat().st_size,
        round(time.perf_counter() - t0, 3),
    )
