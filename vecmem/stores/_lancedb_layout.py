"""The LanceDB table layout: chunks and their metadata as Arrow columns, and back.

One row per chunk: ``id`` (the chunk id, the merge key), ``document_id``, ``text``, ``chunk``
(JSON ``[position, content_hash, metadata]``, read back exactly: ints stay ints; the hash is
``null`` when it is the SHA-256 of the text, as for every ``Chunk.create``), ``seq`` (write order),
``vector`` (float32, fixed size) and typed filter columns added as metadata fields appear:
``vm_s_F`` strings, ``vm_n_F`` numbers (float64), ``vm_b_F`` booleans, ``vm_ls_F``/``vm_ln_F``/
``vm_lb_F`` the string/number/boolean elements of a list, and ``vm_keys`` the fields present
without a typed value: null, an object, an empty list (``F`` is the field name, hex-encoded
unless it is a plain lower-case identifier). The schema metadata records the embedding space
and the layout version.

>>> typed_columns([{"lang": "en", "n": 2}, {"n": 3.5}])[0]
{'vm_s_lang': ['en', None], 'vm_n_n': [2.0, 3.5]}
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from vecmem._deps import require
from vecmem.errors import InvalidInputError
from vecmem.stores._json import encoder
from vecmem.types import Chunk, EmbeddingSpace, content_hash

FORMAT = 4
"""The layout written, recorded in the schema; a table of an older layout is read and written in
its own. 1: ``position``, ``content_hash`` and ``metadata`` columns; 2: the three packed into the
JSON ``chunk`` (fewer columns per hit); 3: the hash ``null`` there when it is the text's
(``merge_insert`` 11% faster at 40k rows); 4: ``vm_keys`` only for fields with no typed value, so
``$exists`` reads the typed columns too (listing every field was a quarter of a write's Python)."""
CHUNK_COLS = {
    1: ["id", "document_id", "position", "text", "content_hash", "metadata"],
    2: ["id", "document_id", "text", "chunk"],
    3: ["id", "document_id", "text", "chunk"],
    4: ["id", "document_id", "text", "chunk"],
}  # what a Chunk is read from
KINDS = ("s", "n", "b", "ls", "ln", "lb")  # the typed column kinds (see col)
_IDENT = re.compile(r"[a-z][a-z0-9_]*\Z")


@lru_cache(maxsize=65536)
def col(kind: str, field: str) -> str:
    """The typed column of ``field`` for values of ``kind``."""
    return f"vm_{kind}_{field if _IDENT.match(field) else '_' + field.encode('utf-8').hex()}"


def kind_type(kind: str) -> Any:
    pa = require("pyarrow", "lancedb")
    scalar = {"s": pa.string(), "n": pa.float64(), "b": pa.bool_()}[kind[-1]]
    return pa.list_(scalar) if kind.startswith("l") else scalar


def new_schema(space: EmbeddingSpace) -> Any:
    """The schema of a new table for ``space`` (layout :data:`FORMAT`)."""
    pa = require("pyarrow", "lancedb")
    return pa.schema(
        [
            ("id", pa.string(), False),
            ("document_id", pa.string()),
            ("text", pa.string()),
            ("chunk", pa.string()),
            ("seq", pa.int64()),
            ("vector", pa.list_(pa.float32(), space.dim)),
            ("vm_keys", pa.list_(pa.string())),
        ],
        metadata={"vecmem_space": space.to_json(), "vecmem_format": str(FORMAT)},
    )


def _num(v: Any) -> bool:
    """A finite number, not a bool (an int beyond float64 is not comparable as a number)."""
    try:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    except OverflowError:
        return False


def typed(meta: Any) -> dict[str, Any]:
    """The typed filter columns of one chunk's metadata: column name -> value."""
    out: dict[str, Any] = {}
    for field, v in meta.items():
        if isinstance(v, bool):
            out[col("b", field)] = v
        elif _num(v):
            out[col("n", field)] = float(v)
        elif isinstance(v, str):
            out[col("s", field)] = v
        elif isinstance(v, (list, tuple)):
            for kind, keep in (
                ("lb", lambda x: isinstance(x, bool)),
                ("ln", _num),
                ("ls", lambda x: isinstance(x, str)),
            ):
                items = [float(x) if kind == "ln" else x for x in v if keep(x)]
                if items:
                    out[col(kind, field)] = items
    return out


def typed_columns(metas: Sequence[Any]) -> tuple[dict[str, list[Any]], list[Any] | None]:
    """The typed filter columns of a batch: column name -> one value (or None) per chunk, as
    :func:`typed` gives them, and per chunk the fields it has with no typed value (what layout 4
    keeps in ``vm_keys``), ``None`` for a chunk without such fields, or ``None`` for the whole
    batch when no chunk has one. A field whose values are all strings, all bools or all finite
    numbers (or missing/null) is converted as a whole; other fields value by value."""
    n = len(metas)
    cols: dict[str, list[Any]] = {}
    untyped: list[Any] | None = None

    def bare(i: int, field: str) -> None:  # chunk i holds ``field`` with no typed value
        nonlocal untyped
        if untyped is None:
            untyped = [None] * n
        untyped[i] = [*(untyped[i] or ()), field]

    for field in dict.fromkeys(f for m in metas for f in m):
        vals = [m.get(field) for m in metas]
        kinds = set(map(type, vals))
        if type(None) in kinds:  # a null value (not a missing field) is present, untyped
            kinds.discard(type(None))
            for i, (m, v) in enumerate(zip(metas, vals)):
                if v is None and field in m:
                    bare(i, field)
        if kinds == {str} or kinds == {bool}:
            cols[col("s" if str in kinds else "b", field)] = vals
            continue
        if kinds <= {int, float}:
            try:
                nums = [None if v is None else float(v) for v in vals]
            except OverflowError:  # an int beyond float64: value by value below
                nums = [math.inf]
            if all(x is None or math.isfinite(x) for x in nums):
                cols[col("n", field)] = nums
                continue
        for i, v in enumerate(vals):
            one = {} if v is None else typed({field: v})
            if v is not None and not one:
                bare(i, field)
            for name, x in one.items():
                cols.setdefault(name, [None] * n)[i] = x
    return cols, untyped


_ENCODE = encoder()


def _encoded(values: list[Any], chunks: Sequence[Chunk]) -> list[str]:
    """``values`` (one per chunk, holding its metadata) as JSON; InvalidInputError naming the
    first chunk whose metadata JSON cannot encode."""
    out = []
    for c, v in zip(chunks, values):
        try:
            out.append(_ENCODE(v))
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidInputError(
                f"metadata of chunk {c.id!r} is not JSON-serialisable: {exc}"
            ) from exc
    return out


def arrays(
    chunks: Sequence[Chunk],
    vectors: np.ndarray,
    seq: int,
    typed: dict[str, list[Any]],
    untyped: list[Any] | None,
    layout: int = FORMAT,
) -> dict[str, Any]:
    """A batch's columns as Arrow arrays, by column name, in ``layout``; ``typed`` and
    ``untyped`` from :func:`typed_columns`, ``seq`` the first write-order number."""
    pa = require("pyarrow", "lancedb")
    metas = [c.metadata if type(c.metadata) is dict else dict(c.metadata) for c in chunks]
    n, strings = len(chunks), pa.string()
    cols: dict[str, Any] = {
        "id": pa.array([c.id for c in chunks], strings),
        "document_id": pa.array([c.document_id for c in chunks], strings),
        "text": pa.array([c.text for c in chunks], strings),
        "seq": pa.array(np.arange(seq, seq + n, dtype=np.int64)),
        "vector": pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(vectors, np.float32).reshape(-1)), vectors.shape[1]
        ),
        **{name: pa.array(v, kind_type(name.split("_")[1])) for name, v in typed.items()},
    }
    keys = pa.list_(strings)
    if layout >= 4:  # only fields without a typed value: mostly none
        cols["vm_keys"] = pa.nulls(n, keys) if untyped is None else pa.array(untyped, keys)
    else:
        cols["vm_keys"] = pa.array([list(m) for m in metas], keys)
    if layout >= 2:  # from 3 on, the hash of the text is left out (null)
        packed = [
            (c.position, None if layout >= 3 and c.hash_is_of_text() else c.content_hash, m)
            for c, m in zip(chunks, metas)
        ]
        cols["chunk"] = pa.array(_encoded(packed, chunks), strings)
    else:
        cols["position"] = pa.array([c.position for c in chunks], pa.int64())
        cols["content_hash"] = pa.array([c.content_hash for c in chunks], strings)
        cols["metadata"] = pa.array(_encoded(metas, chunks), strings)
    return cols


def as_table(cols: dict[str, Any], n: int, schema: Any) -> Any:
    """The batch as an Arrow table of the table's current ``schema``: every column, so an
    overwrite also clears the filter columns the new metadata lacks (LanceDB's merge keeps what
    a partial schema leaves out)."""
    pa = require("pyarrow", "lancedb")
    arrays = []
    for field in schema:
        arr = cols.get(field.name)
        if arr is None:  # a filter column no chunk of this batch has
            arr = pa.nulls(n, field.type)
        elif arr.type != field.type:
            arr = arr.cast(field.type)
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=schema)


def chunks_of(data: Any, layout: int) -> list[Chunk]:
    """The rows of the Arrow table ``data`` (with the layout's chunk columns) as Chunks."""
    loads = json.loads
    cols = [data.column(name).to_pylist() for name in CHUNK_COLS[layout]]
    if layout == 1:
        return [
            Chunk(cid, doc, int(position), text, loads(meta), digest)
            for cid, doc, position, text, digest, meta in zip(*cols)
        ]
    out = []
    for cid, doc, text, packed in zip(*cols):
        position, digest, meta = loads(packed)
        out.append(
            Chunk(cid, doc, position, text, meta, content_hash(text) if digest is None else digest)
        )
    return out
