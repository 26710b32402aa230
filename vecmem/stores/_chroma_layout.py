"""Chroma's record layout (format 2) and filter translation, for :mod:`vecmem.stores.chroma`.

A chunk is a record: its id, its vector, its text as the document, and flat metadata: ``_vm_doc``
(the document id), ``_vm_sig`` (the metadata shape: its field names in order, each behind a type
letter, as JSON) and a typed copy of each field for filtering (:mod:`._flat`: ``n_F`` numbers as
floats, ``s_F``, ``b_F``, ``l_F`` a list's scalars as tagged strings, ``[""]`` if none). The
metadata is read back from the typed copy and the shape (ints stay ints, key order kept), the
position from the id (``document#position``), the content hash from the text; what cannot be
(null, nested values, -0.0, ints beyond 2**50, floats Chroma may not read back exactly, a custom
id or hash) is kept in ``_vm`` as JSON. Chroma reads every key back as one row per hit, so this
keeps a query's reads close to a raw collection's: two short keys more per chunk. Format 1
(``_vm`` JSON on every chunk, a ``_vm_keys`` list) is refused until :meth:`ChromaDb.upgrade`.

Filters stay exact whatever Chroma does with mixed types. ``$ne``/``$nin`` and negated
``$contains`` use Chroma's own operators, which match records without the key (Chroma 1.x;
probed once per store). Where a Chroma does not, and for ``$exists`` and negated ranges, absence
is read from the shapes: ``_vm_sig $in [shapes]`` over the shapes stored, which a store learns
with ``_vm_sig $nin [known]`` scans and checks against the generation token after each such
operation (a write since its last scan: scan again, and on a new shape run again). ``$not`` is
pushed down to the leaves (:mod:`._flat`).

>>> to_where(None)
True
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256
from typing import Any

from vecmem.errors import (
    BackendError,
    InvalidInputError,
    UnsupportedFilterError,
)
from vecmem.filters import Filter
from vecmem.stores import _flat as flat
from vecmem.types import Chunk

FORMAT = 2
DOC, SIG, _EXTRA = "_vm_doc", "_vm_sig", "_vm"
MAX_SHAPES = 2000  # distinct metadata shapes a shape-dependent filter may list
_EXACT = 2**50  # ints up to this magnitude read back exactly from Chroma's floats (measured)
Where = flat.Where  # a Chroma where dict, or True (everything) / False (nothing)
Shapes = Mapping[str, Mapping[str, str]]  # _vm_sig -> {field: type letter}


# --------------------------------------------------------------------------- metadata
def _reads_back(v: float) -> bool:
    """Whether Chroma reads float ``v`` back exactly: an integer within ±2**50, or at most 15
    significant digits between 1e-5 and 1e15 (and not -0.0). Chroma 1.5 filters on the stored
    double exactly but reads some back one unit in the last place off; measured on 19,206
    floats (random digits 1-17, exponents -8..17): 740 came back off, none that passes this."""
    if v.is_integer():
        return abs(v) <= _EXACT and not (v == 0.0 and math.copysign(1.0, v) < 0.0)
    mantissa = repr(abs(v)).partition("e")[0]
    return len(mantissa.replace(".", "").strip("0")) <= 15 and 1e-5 <= abs(v) < 1e15


def encode(c: Chunk) -> dict[str, Any]:
    """The Chroma metadata of a chunk (see the module docstring): its metadata is JSON with
    string keys and finite numbers (checked by ``validate_batch``, or read from format 1)."""
    meta: dict[str, Any] = {DOC: c.document_id}
    sig: list[str] = []
    exact = True  # the metadata can be read back from the typed keys
    for field, v in c.metadata.items():
        t, val = flat.typed(v)
        if t == "i":  # format 1 may hold an int beyond 2**53 (written before that rule)
            exact = exact and -_EXACT <= v <= _EXACT
            try:
                val = float(v)
            except OverflowError as exc:
                raise InvalidInputError(
                    f"metadata {field!r} of chunk {c.id!r} is too large"
                ) from exc
        elif t == "f":
            exact = exact and _reads_back(v)
        elif t == "s":
            exact = exact and "\x00" not in v
        elif t == "l":  # [""]: present although nothing in it can be compared
            exact, val = False, val or [""]
        elif t == "o":  # None, dicts: present (for $exists), never equal to a scalar
            exact = False
        if t != "o":
            meta[flat.KEY[t] + field] = val
        sig.append(t + field)
    meta[SIG] = json.dumps(sig, ensure_ascii=False, separators=(",", ":"))
    extra: dict[str, Any] = {}
    if not exact:
        extra["m"] = dict(c.metadata)
    if type(c.position) is not int or c.id != f"{c.document_id}#{c.position}":
        extra["p"] = int(c.position)
    if not c.hash_is_of_text():
        extra["h"] = c.content_hash
    if extra:
        meta[_EXTRA] = json.dumps(extra, ensure_ascii=False, separators=(",", ":"))
    return meta


_CONVERT = {"i": int, "f": float, "s": str, "b": bool}


@functools.lru_cache(maxsize=10_000)
def _reader(sig: str) -> tuple[tuple[str, str, Any], ...]:
    """(field, typed key, converter) for each field of a shape whose metadata is read back from
    the typed keys (one without a list or an object)."""
    return tuple((x[1:], flat.KEY[x[0]] + x[1:], _CONVERT[x[0]]) for x in json.loads(sig))


def shape(cid: str, meta: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    """A record's ``_vm_sig`` and its shape, ``{field: type letter}`` (``i f s b l o``)."""
    sig = (meta or {}).get(SIG)
    if not isinstance(sig, str):
        raise BackendError(f"Chroma record {cid!r} was not written by vecmem (format {FORMAT})")
    return sig, {x[1:]: x[0] for x in json.loads(sig)}


def decode(
    ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[Mapping[str, Any] | None]
) -> list[Chunk]:
    """The chunks of Chroma records (hashes first, in one pass: it is the costly part)."""
    docs = [t or "" for t in texts]
    hashes = [sha256(t.encode("utf-8")).hexdigest() for t in docs]
    out = []
    for cid, text, meta, h in zip(ids, docs, metas, hashes):
        try:
            m: Mapping[str, Any] = meta or {}
            doc = m[DOC]
            x = {} if (extra := m.get(_EXTRA)) is None else json.loads(extra)
            if "m" in x:
                md = x["m"]
            else:
                md = {name: conv(m[key]) for name, key, conv in _reader(m[SIG])}
            pos = x["p"] if "p" in x else int(cid[len(doc) + 1 :])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(
                f"Chroma record {cid!r} was not written by vecmem (format "
                f"{FORMAT}): {type(exc).__name__} {exc}"
            ) from exc
        out.append(Chunk(cid, doc, pos, text, md, x.get("h", h)))
    return out


def from_v1(cid: str, text: str | None, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The format-2 metadata of a format-1 record (``_vm``: the chunk as JSON), its other keys
    set to ``None`` (Chroma's ``update`` merges metadata)."""
    d = json.loads(meta["_vm"])
    new = encode(Chunk(cid, d["d"], int(d["p"]), text or "", d["m"], d["h"]))
    return {**dict.fromkeys(meta), **new}


# --------------------------------------------------------------------------- filters
class ShapesNeeded(UnsupportedFilterError):
    """The filter needs the metadata shapes stored (``$exists``, a negated range)."""


class _Conditions(flat.Conditions):
    def __init__(self, complement: bool, shapes: Shapes | None) -> None:
        self.complement, self.shapes = complement, shapes

    def with_shape(self, field: str, keep: Callable[[str | None], bool]) -> Where:
        """Chunks whose shape gives ``field`` a type letter (``None``: absent) that ``keep``s."""
        if self.shapes is None:
            raise ShapesNeeded(
                f"a filter on the presence of {field!r} needs the metadata "
                "shapes stored (ChromaDb learns them)"
            )
        sigs = [s for s, fields in self.shapes.items() if keep(fields.get(field))]
        if len(sigs) == len(self.shapes):
            return True
        return {SIG: {"$in": sigs}} if sigs else False

    def absent(self, key: str) -> Where:
        return self.with_shape(key[2:], lambda t: t is None or flat.KEY.get(t) != key[:2])

    def exists(self, field: str, present: bool) -> Where:
        return self.with_shape(field, lambda t: (t is not None) == present)

    def contains(self, key: str, tag: str, neg: bool) -> Where:
        return self.test(key, "$contains", tag, neg)


def to_where(f: Filter | None, *, complement: bool = True, shapes: Shapes | None = None) -> Where:
    """A parsed vecmem filter as a Chroma ``where`` (``True``: no filter, ``False``: nothing).

    ``complement``: Chroma's ``$ne``/``$nin``/``$not_contains`` match records without the key
    (Chroma 1.x). ``shapes``: the metadata shapes stored (``{_vm_sig: {field: type}}``), needed
    by ``$exists`` and negated ranges; without them those raise :class:`ShapesNeeded`.
    """
    return flat.translate(f, _Conditions(complement, shapes))
