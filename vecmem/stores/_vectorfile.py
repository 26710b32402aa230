"""``vectors.f32`` of the embedded store: float32 rows at fixed offsets, a CRC-32 per range.

Row ``slot`` lives at byte ``slot * dim * 4``. A writer that holds the store's write lock puts
new rows past the committed end with ``pwrite`` at their own offset (never in append mode:
bytes that a failed write left behind must not shift later rows), then records the rows and a
checksum record per range of them, ``(start, stop, crc)`` with ``crc`` the CRC-32 of rows
``[start, stop)``, in the same SQLite transaction. The committed ranges tile ``[0, next_slot)``
and none is larger than :data:`RANGE_BYTES`; bytes past ``next_slot`` are what a failed or
killed write left, never read, and truncated by the next writer that opens the store. A load
reads each range whole and checks its CRC before any row of it is used (~0.75 GB/s on one core
of this machine, a small part of a load). Compaction (:mod:`vecmem.stores._compact`) writes the
live rows into a new file and names it in the same transaction as its records, so the file of a
store is the one its database names (``vectors.f32`` until the first compaction).

>>> import tempfile, numpy as np
>>> vf = VectorFile(Path(tempfile.mkdtemp()) / "vectors.f32", dim=2)
>>> records = vf.write(0, np.ones((3, 2), np.float32))
>>> [(start, stop) for start, stop, _ in records]
[(0, 3)]
>>> [(lo, rows.shape) for lo, rows in vf.verified(records)]
[(0, (3, 2))]
>>> vf.close()
"""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from vecmem.errors import BackendError, IntegrityError, StorageFullError

RANGE_BYTES = 4 << 20
"""Largest range one checksum covers (4 MiB: 2,730 rows of 384 floats). A write of more rows
records several ranges, so a load never holds more than two ranges' bytes it has not checked."""

Range = tuple[int, int, int]
"""``(start, stop, crc)``: rows ``[start, stop)`` and the CRC-32 of their bytes."""


def crc(data: memoryview | bytes | np.ndarray) -> int:
    """CRC-32 of a buffer (zlib's: in the standard library, as fast as a copy here; a faster
    hash such as xxh3 would need a new dependency for ~1% of a load)."""
    buf = data.data if isinstance(data, np.ndarray) else data
    return zlib.crc32(buf) & 0xFFFFFFFF


def spans(first: int, stop: int, dim: int) -> list[tuple[int, int]]:
    """Rows ``[first, stop)`` cut into ranges of at most :data:`RANGE_BYTES`."""
    step = max(1, RANGE_BYTES // (dim * 4))
    return [(s, min(s + step, stop)) for s in range(first, stop, step)]


def is_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class VectorFile:
    """The rows of one store (see the module docstring). ``hint`` ends every error message
    (how to repair the store)."""

    def __init__(self, path: Path, *, dim: int, hint: str = "", create: bool = True) -> None:
        self.path = path
        self.dim = dim
        self.row = dim * 4
        self.hint = hint
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        try:
            self.fd = os.open(path, flags, 0o644)
        except OSError as exc:
            if not create and isinstance(exc, FileNotFoundError):
                raise  # the caller looks again: a compaction replaced the file
            raise self._error("opening", exc) from exc

    def _error(self, what: str, exc: OSError) -> BackendError:
        if is_full(exc):
            return StorageFullError(
                f"{what} {self.path} failed: the disk is full ({exc}); "
                "free space and retry, nothing of the write was kept"
            )
        return BackendError(f"{what} {self.path} failed: {exc}")

    def sync(self) -> None:
        """fsync the rows (compaction: before the transaction that drops the old file)."""
        try:
            os.fsync(self.fd)
        except OSError as exc:
            raise self._error("syncing", exc) from exc

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def write(self, first: int, vectors: np.ndarray) -> list[Range]:
        """Write rows from slot ``first`` on; returns their range records (to be committed)."""
        data = np.ascontiguousarray(vectors, np.float32)
        self.pwrite(first, data)
        flat = data.data.cast("B")
        return [
            (a, b, crc(flat[(a - first) * self.row : (b - first) * self.row]))
            for a, b in spans(first, first + len(data), self.dim)
        ]

    def pwrite(self, first: int, rows: np.ndarray) -> None:
        view = np.ascontiguousarray(rows, np.float32).data.cast("B")
        offset = first * self.row
        try:
            while view:
                n = os.pwrite(self.fd, view, offset)
                view, offset = view[n:], offset + n
        except OSError as exc:
            raise self._error("writing vectors to", exc) from exc

    def truncate(self, rows: int) -> None:
        """Drop bytes past row ``rows`` (left by failed writes); call under the write lock."""
        try:
            if self.size() > rows * self.row:
                os.ftruncate(self.fd, rows * self.row)
        except OSError as exc:
            raise self._error("truncating", exc) from exc

    def read(self, lo: int, hi: int) -> np.ndarray | None:
        """Rows ``[lo, hi)``, or ``None`` where the file is shorter."""
        out = np.empty((hi - lo, self.dim), np.float32)
        view, offset = out.data.cast("B"), lo * self.row
        try:
            while view:
                n = _pread_into(self.fd, view, offset)
                if n == 0:
                    return None
                view, offset = view[n:], offset + n
        except OSError as exc:
            raise self._error("reading", exc) from exc
        return out

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """Committed rows ``rows`` (any order), one positioned read each, into a new array.
        Nothing is mapped into the process: read through a map, each row also maps the pages
        the kernel faults in around it (64 KiB by default, whatever ``madvise`` says), so at
        1M rows a few hundred HNSW searches made the whole vector file resident in the
        process (1.2 GiB of its peak RSS in ``benchmarks/bench_lean.py``). ~1 µs a row."""
        out = np.empty((len(rows), self.dim), np.float32)
        flat, size = out.data.cast("B"), self.row
        try:
            for i, r in enumerate(rows.tolist()):
                if _pread_into(self.fd, flat[i * size : (i + 1) * size], r * size) != size:
                    raise IntegrityError(
                        f"{self.path} ends before row {r} (it holds {self.size() // size} "
                        f"rows); it was truncated. {self.hint}"
                    )
        except OSError as exc:
            raise self._error("reading", exc) from exc
        return out

    def damaged(self, ranges: Sequence[Range]) -> list[Range]:
        """The ranges whose bytes are missing or do not match their CRC."""
        bad: list[Range] = []
        for block, group in _blocks(ranges, self.row):
            rows = self.read(block[0], block[1])
            for r in group:
                if rows is None or crc(rows[r[0] - block[0] : r[1] - block[0]]) != r[2]:
                    bad.append(r)
        return bad

    def verified(self, ranges: Sequence[Range]) -> Iterator[tuple[int, np.ndarray]]:
        """``(lo, rows)`` for consecutive blocks of ``ranges`` (in order), each range's CRC
        checked before its block is yielded; :class:`IntegrityError` names the first that
        fails."""
        for block, group in _blocks(ranges, self.row):
            rows = self.read(block[0], block[1])
            for r in group:
                if rows is None:
                    raise IntegrityError(
                        f"{self.path} ends before row {r[1]} of its committed rows (it holds "
                        f"{self.size() // self.row} rows); it was truncated. {self.hint}"
                    )
                if crc(rows[r[0] - block[0] : r[1] - block[0]]) != r[2]:
                    raise IntegrityError(
                        f"rows {r[0]}-{r[1] - 1} of {self.path} do not match their checksum: "
                        f"the stored vectors were damaged (a disk fault, a write by another "
                        f"program, or a crash without an fsync). {self.hint}"
                    )
            yield block[0], rows  # type: ignore[misc]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """``os.preadv`` into ``view`` (no copy); ``os.pread`` and a copy where the platform has
    no preadv (macOS before 11). Positioned reads: threads sharing the descriptor never race
    on a file offset."""
    if _PREADV is not None:
        return int(_PREADV(fd, [view], offset))
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


_PREADV = getattr(os, "preadv", None)


def _blocks(ranges: Sequence[Range], row: int) -> Iterator[tuple[tuple[int, int], list[Range]]]:
    """Runs of adjacent ranges read as one block of about :data:`RANGE_BYTES` or more."""
    group: list[Range] = []
    for r in ranges:
        if group and (r[0] != group[-1][1] or (r[1] - group[0][0]) * row > 2 * RANGE_BYTES):
            yield (group[0][0], group[-1][1]), group
            group = []
        group.append(r)
    if group:
        yield (group[0][0], group[-1][1]), group
