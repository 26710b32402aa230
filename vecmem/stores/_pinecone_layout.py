"""Pinecone's record layout: vector ids, a chunk as metadata, and filters.

A chunk is a vector: id = the chunk id (:func:`vector_id`), dense values = the embedding, sparse
values = its BM25 weights (:mod:`._sparse`), metadata = ``_vm`` (the chunk as JSON, read back
exactly), ``_vm_doc`` (its document id) and typed flat copies for filtering (:mod:`._flat`:
``s_F n_F b_F l_F``), with ``_vm_keys`` the typed keys present (``o_F``: a field holding nothing
filterable). Pinecone's operators say nothing of fields a record lacks; with the typed keys every
vecmem operator is exact without relying on that: ``$ne``/``$nin`` are ``$or`` with "the typed
key is absent" (``_vm_keys $nin``), booleans never meet numbers, ``$eq`` never matches a list.

>>> vector_id("doc#0"), vector_id("文書#0")[:1]
('doc#0', '~')
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from vecmem.errors import BackendError, InvalidInputError
from vecmem.filters import Filter
from vecmem.stores import _flat as flat
from vecmem.stores._json import encoder
from vecmem.types import Chunk

MAX_METADATA = 40 * 1024  # bytes of metadata per vector (Pinecone's limit)
_KEYS = "_vm_keys"
_PREFIXES = ("n_", "s_", "b_", "l_", "o_")
_Pc = Any  # a Pinecone filter dict, or True (everything) / False (nothing)


def vector_id(chunk_id: str) -> str:
    """The Pinecone id of a chunk: the chunk id itself when Pinecone accepts it (printable
    ASCII, at most 512 bytes), else ``~`` + a 128-bit BLAKE2b hex digest of it."""
    if chunk_id.isascii() and chunk_id.isprintable() and len(chunk_id) <= 512:
        if not chunk_id.startswith("~"):
            return chunk_id
    return "~" + hashlib.blake2b(chunk_id.encode("utf-8"), digest_size=16).hexdigest()


_dumps = encoder(compact=True, allow_nan=False)
_dumps_spaced = encoder()  # sizes as Pinecone's docs count


def encode(c: Chunk) -> tuple[dict[str, Any], int]:
    """The Pinecone metadata of a chunk and its size in JSON (checked against Pinecone's limit;
    the metadata is JSON with non-empty string keys, checked by ``validate_batch``)."""
    raw = _dumps(
        dict(
            i=c.id,
            d=c.document_id,
            p=int(c.position),
            t=c.text,
            h=c.content_hash,
            m=dict(c.metadata),
        )
    )
    meta: dict[str, Any] = {"_vm": raw, "_vm_doc": c.document_id}
    keys: list[str] = []
    for field, v in c.metadata.items():
        t, val = flat.typed(v)
        if t == "o" or val == []:  # None, objects, [...] of neither: only present ($exists)
            keys.append("o_" + field)
        else:
            keys.append(flat.KEY[t] + field)
            meta[flat.KEY[t] + field] = val
    meta[_KEYS] = keys or [""]
    # ``raw`` is JSON itself (no control characters left), so as a JSON string it only gains its
    # quotes and a backslash before each '"' and '\\': its size without a second dumps
    rest = _dumps_spaced({k: x for k, x in meta.items() if k != "_vm"})
    size = len(rest.encode()) + len(raw.encode()) + raw.count('"') + raw.count("\\") + 11
    if size > MAX_METADATA:
        raise InvalidInputError(
            f"chunk {c.id!r} needs {size} bytes of Pinecone metadata (text, metadata and their "
            f"filterable copy); Pinecone allows {MAX_METADATA}: use smaller chunks"
        )
    return meta, size


def decode(vid: str, meta: dict[str, Any] | None) -> Chunk:
    """The chunk stored as vector ``vid`` with metadata ``meta``."""
    if not meta or "_vm" not in meta:
        raise BackendError(f"Pinecone vector {vid!r} was not written by vecmem (no _vm metadata)")
    d = json.loads(meta["_vm"])
    return Chunk(d.get("i", vid), d["d"], int(d["p"]), d["t"], d["m"], d["h"])


class _Conditions(flat.Conditions):
    def absent(self, key: str) -> _Pc:
        return {_KEYS: {"$nin": [key]}}

    def exists(self, field: str, present: bool) -> _Pc:  # a typed key or the o_ marker listed
        return {_KEYS: {"$in" if present else "$nin": [p + field for p in _PREFIXES]}}


def to_filter(f: Filter | None) -> _Pc:
    """A parsed vecmem filter as a Pinecone metadata filter (``True``: none, ``False``: nothing)."""
    return flat.translate(f, _Conditions())
