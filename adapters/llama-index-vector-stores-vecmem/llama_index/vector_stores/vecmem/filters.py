"""LlamaIndex ``MetadataFilters`` -> vecmem's portable filter grammar (:mod:`vecmem.filters`).

Every operator is either translated exactly or refused with
:class:`~vecmem.errors.UnsupportedFilterError`; a condition is never dropped.

============================ =========================================================
LlamaIndex                   vecmem
============================ =========================================================
EQ NE IN NIN                 ``$eq $ne $in $nin`` (a missing field matches NE and NIN)
GT GTE LT LTE                ``$gt $gte $lt $lte`` -- numbers only; a string bound raises
CONTAINS                     ``$contains`` (the field is a list holding the value)
ANY / ALL                    ``$or`` / ``$and`` of ``$contains``, one per value
condition AND / OR           ``$and`` / ``$or``
condition NOT                ``$not`` of ``$or``: no sub-filter matches (as LlamaIndex's
                             SimpleVectorStore)
TEXT_MATCH(_INSENSITIVE)     raises: vecmem has no substring operator
IS_EMPTY                     raises: the grammar cannot test null or an empty list
============================ =========================================================

>>> from llama_index.core.vector_stores import MetadataFilter, MetadataFilters
>>> to_vecmem_filter(MetadataFilters(filters=[
...     MetadataFilter(key="year", value=2020, operator=">="),
...     MetadataFilter(key="tags", value=["a", "b"], operator="any")], condition="or"))
... # doctest: +NORMALIZE_WHITESPACE
{'$or': [{'year': {'$gte': 2020}},
         {'$or': [{'tags': {'$contains': 'a'}}, {'tags': {'$contains': 'b'}}]}]}
"""

from __future__ import annotations

from typing import Any

from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)

from vecmem.errors import InvalidFilterError, UnsupportedFilterError

_SIMPLE = {
    FilterOperator.EQ: "$eq",
    FilterOperator.NE: "$ne",
    FilterOperator.IN: "$in",
    FilterOperator.NIN: "$nin",
    FilterOperator.CONTAINS: "$contains",
}
_NUMERIC = {
    FilterOperator.GT: "$gt",
    FilterOperator.GTE: "$gte",
    FilterOperator.LT: "$lt",
    FilterOperator.LTE: "$lte",
}


def _values(f: MetadataFilter) -> list[Any]:
    if not isinstance(f.value, list) or not f.value:
        raise InvalidFilterError(
            f"{f.operator.name} on {f.key!r} needs a non-empty list of values, got {f.value!r}"
        )
    return list(f.value)


def _one(f: MetadataFilter) -> dict[str, Any]:
    op = FilterOperator(f.operator)
    if op in _SIMPLE:
        if op in (FilterOperator.IN, FilterOperator.NIN):
            return {f.key: {_SIMPLE[op]: _values(f)}}
        return {f.key: {_SIMPLE[op]: f.value}}
    if op in _NUMERIC:
        if isinstance(f.value, bool) or not isinstance(f.value, (int, float)):
            raise UnsupportedFilterError(
                f"{op.name} on {f.key!r} with {f.value!r}: vecmem compares numbers only "
                "(store dates as numbers, e.g. a year or a Unix time)"
            )
        return {f.key: {_NUMERIC[op]: f.value}}
    if op in (FilterOperator.ANY, FilterOperator.ALL):
        parts = [{f.key: {"$contains": v}} for v in _values(f)]
        return {"$or" if op is FilterOperator.ANY else "$and": parts}
    raise UnsupportedFilterError(
        f"vecmem cannot express the {op.name} filter on {f.key!r}"
        + (" (no substring matching)" if op.name.startswith("TEXT_MATCH") else "")
        + (" (it cannot test for null or an empty list)" if op is FilterOperator.IS_EMPTY else "")
    )


def to_vecmem_filter(filters: MetadataFilters | MetadataFilter | None) -> dict[str, Any] | None:
    """The vecmem filter dict for LlamaIndex filters (``None`` for no filter or an empty list)."""
    if filters is None:
        return None
    if isinstance(filters, MetadataFilters) and not filters.filters:
        return None
    return _tree(filters)


def _tree(filters: Any) -> dict[str, Any]:
    if isinstance(filters, MetadataFilter):
        return _one(filters)
    if not isinstance(filters, MetadataFilters):
        raise InvalidFilterError(f"expected MetadataFilters, got {type(filters).__name__}")
    if not filters.filters:
        raise InvalidFilterError("a nested MetadataFilters has no filters")
    items = [_tree(f) for f in filters.filters]
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition is FilterCondition.NOT:
        return {"$not": items[0] if len(items) == 1 else {"$or": items}}
    if len(items) == 1:
        return items[0]
    return {"$and" if condition is FilterCondition.AND else "$or": items}
