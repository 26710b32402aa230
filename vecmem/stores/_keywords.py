"""A snapshot of the embedded store's BM25 index beside it (``bm25.npz``), so that a fresh process
opens a large store without reading and tokenizing every chunk's text again.

Opening a store used to rebuild BM25 from the text of every chunk (at 100k synthetic chunks
about 4 s of CPU, 40 s at 1M: most of an open). The snapshot is a cache, never the truth:

* :func:`save` writes the index's arrays, the chunk id of each of its slots and a stamp (the
  store's ``generation`` and the log ``seq`` the index reflects, the tokenizer, BM25's
  parameters) to a temporary file of this process and renames it into place: a torn file is
  never named ``bm25.npz``, and processes saving at once each rename a whole file;
* :func:`load` returns ``None`` for a missing, torn or damaged file (the zip's CRC-32 of each
  array is checked as it is read), one of another generation, tokenizer or parameters;
* the store then checks the ids against its table (the rows the snapshot holds must be the
  table's rows, but for those the log changed since its ``seq``) before it uses the index, and
  replays the log from that ``seq`` on; anything else is a full load, and the next close saves
  a fresh snapshot (:meth:`vecmem.stores.embedded.EmbeddedStore.close`).

A compaction renumbers the slots and bumps the generation, so its store's snapshot is not used
until a process saves a new one.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from vecmem.bm25 import BM25Index

FILE = "bm25.npz"
VERSION = 1
MIN_CHUNKS = 20_000
"""Stores with fewer live chunks save no snapshot (their text is tokenized in well under a
second)."""


def save(
    folder: Path,
    bm25: BM25Index,
    ids: Sequence[str | None],
    *,
    generation: int,
    seq: int,
    tokenizer: str,
) -> None:
    """Write the snapshot (see the module docstring); ``ids[slot]`` is each live slot's chunk."""
    st = bm25.state()
    live = [ids[s] for s in st["slots"].tolist()]
    st["vocab"] = np.frombuffer(json.dumps(list(st["vocab"])).encode(), dtype=np.uint8)
    st["ids"] = np.frombuffer(json.dumps(live).encode(), dtype=np.uint8)
    st["stamp"] = np.array([VERSION, generation, seq], dtype=np.int64)
    st["tokenizer"] = np.frombuffer(tokenizer.encode(), dtype=np.uint8)
    tmp = folder / f"{FILE}.{os.getpid()}-{threading.get_ident()}.tmp.npz"
    try:
        np.savez(tmp, **st)  # type: ignore[arg-type]  # numpy's stub types **kwds loosely
        os.replace(tmp, folder / FILE)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(
    folder: Path,
    *,
    generation: int,
    tokenizer: str,
    params: tuple[float, float, float],
) -> tuple[BM25Index, np.ndarray, list[str], int, int] | None:
    """``(index, live slots, their ids, slots used, seq)`` from the snapshot, or ``None`` (see the module
    docstring)."""
    try:
        with np.load(folder / FILE, allow_pickle=False) as z:
            version, gen, seq = (int(x) for x in z["stamp"])
            if version != VERSION or gen != generation:
                return None
            if bytes(z["tokenizer"]).decode() != tokenizer:
                return None
            st = {k: z[k] for k in z.files}
        if tuple(float(x) for x in st["params"]) != tuple(float(x) for x in params):
            return None
        st["vocab"] = np.array(json.loads(bytes(st["vocab"]).decode()), dtype=object)
        ids = json.loads(bytes(st["ids"]).decode())
        slots = st["slots"].astype(np.int64)
        if not isinstance(ids, list) or len(ids) != len(slots):
            return None
        bm25 = BM25Index.from_state(st)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None
    return bm25, slots, ids, int(st["used"][0]), seq


def drop(folder: Path) -> None:
    """Remove the snapshot (it no longer matches, and is large)."""
    (folder / FILE).unlink(missing_ok=True)
