"""One reusable C JSON encoder for the stores' write paths.

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder on every call: about 3x the cost
of encoding a small dict, 1.5x for a chunk with its text (5 us a chunk). A store that encodes a
document per chunk keeps one: LanceDB's ``chunk`` column, Pinecone's chunk metadata and BM25
statistics records.

>>> encoder(compact=True)({"a": [1, "é"], "b": 0.5})
'{"a":[1,"é"],"b":0.5}'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _je
from typing import Any


def encoder(*, compact: bool = False, allow_nan: bool = True) -> Callable[[Any], str]:
    """``json.dumps(obj, ensure_ascii=False, allow_nan=allow_nan)`` (``compact``: separators
    ``,`` and ``:``, no spaces) as one reusable encoder. It does not look for circular
    references: one ends in :class:`RecursionError` (callers catch it with the others)."""
    item, key = (",", ":") if compact else (", ", ": ")
    make = _je.c_make_encoder  # type: ignore[attr-defined]
    if make is None:  # no C accelerator: the plain encoder
        plain = json.JSONEncoder(ensure_ascii=False, allow_nan=allow_nan, separators=(item, key))
        return plain.encode
    default = json.JSONEncoder().default
    enc = make(None, default, _je.encode_basestring, None, key, item, False, False, allow_nan)
    return lambda obj: "".join(enc(obj, 0))
