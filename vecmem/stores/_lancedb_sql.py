"""The portable filter as LanceDB SQL over the typed columns (see :mod:`._lancedb_layout`).

Separate typed columns make the portable semantics exact in SQL: ``$eq`` never matches a list,
booleans are not numbers, and every atom is ``coalesce(..., false)`` so ``$ne``/``$nin``/``$not``
keep rows without the field. Numbers are compared as float64 (integers beyond 2**53 lose
exactness); ``$exists`` reads ``vm_keys`` and, from layout 4, the typed columns.

>>> from vecmem.filters import parse_filter
>>> SqlFilter({"vm_s_lang"}).build(parse_filter({"lang": "en"}))
"coalesce(vm_s_lang = 'en', false)"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vecmem.errors import UnsupportedFilterError
from vecmem.filters import And, Cond, Filter, Not, Or
from vecmem.stores._lancedb_layout import FORMAT, KINDS, col

IN_BATCH = 2048  # ids per ``id IN (...)`` clause


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return sql_str(v)
    if not math.isfinite(v):
        raise UnsupportedFilterError(f"LanceDB filters cannot compare with {v!r}")
    return repr(float(v))


def in_lists(column: str, values: Sequence[str]) -> Iterator[str]:
    """``column IN (...)`` clauses of at most :data:`IN_BATCH` values each (duplicates once)."""
    unique = list(dict.fromkeys(values))
    for i in range(0, len(unique), IN_BATCH):
        yield f"{column} IN (" + ", ".join(map(sql_str, unique[i : i + IN_BATCH])) + ")"


class SqlFilter:
    """Translates a parsed vecmem filter into a SQL predicate over the typed ``columns``."""

    def __init__(self, columns: set[str], layout: int = FORMAT) -> None:
        self.columns = columns
        self.layout = layout
        self.unknown = False  # a column the filter names is not in ``columns`` (maybe stale)

    def build(self, f: Filter) -> str:
        if isinstance(f, Cond):
            return self._cond(f)
        if isinstance(f, (And, Or)):
            joiner = " AND " if isinstance(f, And) else " OR "
            return "(" + joiner.join(self.build(x) for x in f.items) + ")"
        if isinstance(f, Not):
            return f"(NOT {self.build(f.item)})"
        raise UnsupportedFilterError(f"unknown filter node {f!r}")

    def _atom(self, column: str, expr: Callable[[str], str]) -> str:
        """``expr(column)`` as a never-NULL boolean; ``false`` when no chunk ever had the column.
        A function, not a format template: the expression holds the caller's (quoted) value, and
        ``str.format`` would read ``{c}`` or ``{c:>50000000}`` inside it as fields."""
        if column not in self.columns:
            self.unknown = True
            return "false"
        return f"coalesce({expr(column)}, false)"

    def _eq(self, field: str, v: Any, lists: bool = False) -> str:
        kind = "b" if isinstance(v, bool) else "s" if isinstance(v, str) else "n"
        value = _sql_value(v)
        if lists:
            return self._atom(col("l" + kind, field), lambda c: f"array_has({c}, {value})")
        return self._atom(col(kind, field), lambda c: f"{c} = {value}")

    def _cond(self, c: Cond) -> str:
        op, v = c.op, c.value
        if op == "exists":
            has = [f"coalesce(array_has(vm_keys, {sql_str(c.field)}), false)"]
            if self.layout >= 4:  # vm_keys lists only the fields without a typed value
                typed = [col(kind, c.field) for kind in KINDS]
                # a kind missing here may have been added by another writer: the caller reads
                # the schema again (~1 ms; a field rarely has all six kinds)
                self.unknown |= not all(t in self.columns for t in typed)
                has += [f"{t} IS NOT NULL" for t in typed if t in self.columns]
            either = "(" + " OR ".join(has) + ")" if len(has) > 1 else has[0]
            return either if v else f"(NOT {either})"
        if op in ("eq", "ne", "in", "nin"):
            one = op in ("eq", "ne")
            atoms = [self._eq(c.field, x) for x in ([v] if one else v)]
            atom = atoms[0] if one else "(" + " OR ".join(atoms) + ")" if atoms else "false"
            return atom if op in ("eq", "in") else f"(NOT {atom})"
        if op == "contains":
            return self._eq(c.field, v, lists=True)
        if op in ("gt", "gte", "lt", "lte"):
            sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
            value = _sql_value(v)
            return self._atom(col("n", c.field), lambda column: f"{column} {sym} {value}")
        raise UnsupportedFilterError(f"LanceDB adapter cannot express operator ${op}")
