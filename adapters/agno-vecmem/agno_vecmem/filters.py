"""agno's search filters -> vecmem's portable filter grammar.

A dict is ANDed equality per key, as agno's stores read it (``{"kind": "faq"}``); a list value
means "one of" (``$in``); a dict value that is already a vecmem operator dict
(``{"year": {"$gte": 2020}}``) is passed through. A list of agno ``FilterExpr`` is ANDed:
``EQ NEQ GT GTE LT LTE IN AND OR NOT`` translate exactly; ``CONTAINS`` and ``STARTSWITH``
(substring matches) have no equivalent and raise :class:`~vecmem.errors.UnsupportedFilterError`
rather than being dropped.

>>> from agno.filters import AND, EQ, GT
>>> to_vecmem_filter([AND(EQ("kind", "faq"), GT("year", 2020))])
{'$and': [{'kind': {'$eq': 'faq'}}, {'year': {'$gt': 2020}}]}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agno.filters import (
    AND,
    CONTAINS,
    EQ,
    GT,
    GTE,
    IN,
    LT,
    LTE,
    NEQ,
    NOT,
    OR,
    STARTSWITH,
    FilterExpr,
)

from vecmem.errors import InvalidFilterError, UnsupportedFilterError
from vecmem.filters import parse_filter

_COMPARISONS: dict[type, str] = {
    EQ: "$eq",
    NEQ: "$ne",
    GT: "$gt",
    GTE: "$gte",
    LT: "$lt",
    LTE: "$lte",
}


def _expr(e: Any) -> dict[str, Any]:
    if isinstance(e, (AND, OR)):
        if not e.expressions:
            raise InvalidFilterError(f"{type(e).__name__}() needs at least one expression")
        return {"$and" if isinstance(e, AND) else "$or": [_expr(x) for x in e.expressions]}
    if isinstance(e, NOT):
        return {"$not": _expr(e.expression)}
    if isinstance(e, IN):
        return {e.key: {"$in": list(e.values)}}
    if isinstance(e, (CONTAINS, STARTSWITH)):
        raise UnsupportedFilterError(
            f"{type(e).__name__}({e.key!r}, ...) is a substring match, which vecmem's filters do "
            "not have; use EQ/IN on the field, or keyword search for the text"
        )
    op = _COMPARISONS.get(type(e))
    if op is None:
        raise InvalidFilterError(f"unsupported agno filter {e!r}")
    return {e.key: {op: e.value}}


def to_vecmem_filter(filters: Mapping[str, Any] | list[Any] | None) -> dict[str, Any] | None:
    """The vecmem filter dict for agno ``filters`` (``None`` when there is nothing to filter);
    validated, so a malformed filter raises :class:`~vecmem.errors.InvalidFilterError`."""
    if filters is None or (not filters and isinstance(filters, (Mapping, list))):
        return None
    if isinstance(filters, Mapping):
        out: dict[str, Any] = {}
        for key, value in filters.items():
            if isinstance(value, (list, tuple)):
                out[key] = {"$in": list(value)}
            else:
                out[key] = value
    elif isinstance(filters, list):
        if not all(isinstance(f, FilterExpr) for f in filters):
            raise InvalidFilterError("a filter list must hold agno FilterExpr objects (EQ, AND...)")
        parts = [_expr(f) for f in filters]
        out = parts[0] if len(parts) == 1 else {"$and": parts}
    else:
        raise InvalidFilterError(
            f"filters must be a dict or a list of agno FilterExpr, got {type(filters).__name__}"
        )
    parse_filter(out)
    return out
