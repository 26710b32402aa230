"""Typed flat metadata: how stores with flat metadata (Chroma, Pinecone) filter exactly.

Each metadata field ``F`` is filtered through a key naming its type: ``n_F`` numbers, ``s_F``
strings, ``b_F`` booleans, ``l_F`` the scalar elements of a list as tagged strings (``s:x``,
``n:1``, ``b:1``: equal exactly when :func:`vecmem.filters.matches` calls the values equal).
With types apart ``$eq`` never matches a list and booleans never meet numbers, whatever the
database does with mixed types. :func:`translate` pushes ``$not`` down to the conditions
(neither database has it) and turns ``$ne``/``$nin`` into negated ``$eq``/``$in``;
:class:`Conditions` writes them as a Mongo-like where (Chroma, Pinecone), leaving each database
how it says "the key is absent", "the field exists" and "the list holds".

>>> from vecmem.filters import parse_filter
>>> translate(parse_filter({"$not": {"a": {"$ne": 1}}}), lambda c, neg: (c.op, neg))
('eq', False)
>>> typed(3), typed([1, "x", None]), KEY["i"]
(('i', 3), ('l', ['n:1', 's:x']), 'n_')
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from vecmem.filters import Cond, Filter, Not, Or

KEY = {"b": "b_", "i": "n_", "f": "n_", "s": "s_", "l": "l_"}  # type letter -> key prefix
FLIP = {"gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}  # the operator of the negation
Where = Any  # a database's filter dict, or True (everything) / False (nothing)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def tag(v: Any) -> str | None:
    """A list element as a tagged string (``None``: not a filterable scalar)."""
    if isinstance(v, bool):
        return "b:1" if v else "b:0"
    if isinstance(v, str):
        return "s:" + v
    if is_number(v) and math.isfinite(v):
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return f"n:{v!r}"
    return None


def typed(v: Any) -> tuple[str, Any]:
    """A metadata value's type letter and what its typed key holds: ``b`` a bool, ``i``/``f``
    an int/float (key ``n_``), ``s`` a string, ``l`` a list (its tags, perhaps none), ``o``
    anything else (null, an object: no key, nothing to compare)."""
    if isinstance(v, bool):
        return "b", v
    if isinstance(v, int):
        return "i", v
    if isinstance(v, float):
        return "f", v
    if isinstance(v, str):
        return "s", v
    if isinstance(v, (list, tuple)):
        return "l", [t for t in map(tag, v) if t is not None]
    return "o", None


def groups(field: str, values: Iterable[Any]) -> dict[str, list[Any]]:
    """Scalar filter values by the typed key they compare with, without duplicates."""
    out: dict[str, list[Any]] = {}
    for x in values:
        vals = out.setdefault(KEY[typed(x)[0]] + field, [])
        if not any(type(y) is type(x) and y == x for y in vals):
            vals.append(x)
    return out


def and_(items: list[Where]) -> Where:
    if any(x is False for x in items):
        return False
    items = [x for x in items if x is not True]
    if not items:
        return True
    return items[0] if len(items) == 1 else {"$and": items}


def or_(items: list[Where]) -> Where:
    if any(x is True for x in items):
        return True
    items = [x for x in items if x is not False]
    if not items:
        return False
    return items[0] if len(items) == 1 else {"$or": items}


def translate(f: Filter | None, leaf: Callable[[Cond, bool], Where], neg: bool = False) -> Where:
    """``f`` with ``$not`` pushed down: ``leaf(condition, negated)`` for each condition
    (``$ne``/``$nin`` arrive as negated ``$eq``/``$in``), joined with :func:`and_` and
    :func:`or_`. ``True`` stands for no filter, ``False`` for one nothing passes."""
    if f is None:
        return True
    if isinstance(f, Cond):
        if f.op in ("ne", "nin"):
            return leaf(Cond(f.field, "eq" if f.op == "ne" else "in", f.value), not neg)
        return leaf(f, neg)
    if isinstance(f, Not):
        return translate(f.item, leaf, not neg)
    parts = [translate(x, leaf, neg) for x in f.items]
    return or_(parts) if isinstance(f, Or) != neg else and_(parts)


_NEGATED = {"$eq": "$ne", "$in": "$nin", "$contains": "$not_contains"}
_NEGATED.update({"$" + op: "$" + FLIP[op] for op in FLIP})


class Conditions:
    """Conditions as a Mongo-like where over the typed keys (``$eq $ne $in $nin $gt $gte $lt
    $lte``, ``$and``, ``$or``), the ``leaf`` of :func:`translate`; numbers are compared as floats.
    A database supplies :meth:`absent` and :meth:`exists`, and :meth:`contains` where it has no
    ``$in`` on lists; ``complement``: its ``$ne``/``$nin`` (and ``$not_contains``) match records
    without the key."""

    complement = False

    def absent(self, key: str) -> Where:
        """The records without the typed key ``key``."""
        raise NotImplementedError

    def exists(self, field: str, present: bool) -> Where:
        """The records holding ``field`` (``present``) or not, whatever its type."""
        raise NotImplementedError

    def contains(self, key: str, tag: str, neg: bool) -> Where:
        """The records whose list ``key`` holds ``tag`` (``neg``: all the others)."""
        return self.test(key, "$in", [tag], neg)

    def test(self, key: str, op: str, value: Any, neg: bool) -> Where:
        """``key op value``; negated: the negated operator, or the key absent (left out where
        ``complement`` says the database's negation matches those already; never for a range)."""
        if not neg:
            return {key: {op: value}}
        where = {key: {_NEGATED[op]: value}}
        if self.complement and op in ("$eq", "$in", "$contains"):
            return where
        return or_([self.absent(key), where])

    def __call__(self, c: Cond, neg: bool) -> Where:
        op, v, f = c.op, c.value, c.field
        if op == "exists":
            return self.exists(f, v != neg)
        if op == "contains":
            t = tag(v)
            return neg if t is None else self.contains("l_" + f, t, neg)
        if op in FLIP:  # gt gte lt lte
            return self.test("n_" + f, "$" + op, float(v), neg)
        parts: list[Where] = []
        for key, vals in groups(f, (v,) if op == "eq" else v).items():
            if key.startswith("n_"):
                vals = list(dict.fromkeys(map(float, vals)))
            if len(vals) == 1 or key.startswith("b_"):  # some take only strings, numbers in $in
                parts += [self.test(key, "$eq", x, neg) for x in vals]
            else:
                parts.append(self.test(key, "$in", vals, neg))
        return and_(parts) if neg else or_(parts)
