"""The portable filter as LanceDB SQL over the typed columns (see :mod:`._lancedb_layout`).

Separate typed columns make the portable semantics exact in SQL: ``$eq`` never matches a list,
booleans are not numbers, and every atom is ``coalesce(..., false)`` so ``$ne``/``$nin``/``$not``
keep rows without the field. Numbers are compared as float64 (integers beyond 2**53 lose
exactness); ``$exists`` reads ``vm_keys`` and, from layout 4, the typed columns.

>>> from vecmem.filters import parse_filter
>>> SqlFilter({"vm_s_lang"})(parse_filter({"lang": "en"}))
"coalesce(vm_s_lang = 'en', false)"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from vecmem.errors import UnsupportedFilterError
from vecmem.filters import Scalar, SqlTranslator
from vecmem.stores._lancedb_layout import FORMAT, KINDS, col

IN_BATCH = 2048  # ids per ``id IN (...)`` clause
_SYMBOLS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_value(v: Scalar) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return sql_str(v)
    if not math.isfinite(v):
        raise UnsupportedFilterError(f"LanceDB filters cannot compare with {v!r}")
    return repr(float(v))


def _kind(v: Scalar) -> str:
    return "b" if isinstance(v, bool) else "s" if isinstance(v, str) else "n"


def in_lists(column: str, values: Sequence[str]) -> Iterator[str]:
    """``column IN (...)`` clauses of at most :data:`IN_BATCH` values each (duplicates once)."""
    unique = list(dict.fromkeys(values))
    for i in range(0, len(unique), IN_BATCH):
        yield f"{column} IN (" + ", ".join(map(sql_str, unique[i : i + IN_BATCH])) + ")"


class SqlFilter(SqlTranslator):
    """Translates a parsed vecmem filter into a SQL predicate over the typed ``columns``."""

    def __init__(self, columns: set[str], layout: int = FORMAT) -> None:
        self.columns = columns
        self.layout = layout
        self.unknown = False  # a column the filter names is not in ``columns`` (maybe stale)

    def _atom(self, column: str, expr: Callable[[str], str]) -> str:
        """``expr(column)`` as a never-NULL boolean; ``false`` when no chunk ever had the column.
        A function, not a format template: the expression holds the caller's (quoted) value, and
        ``str.format`` would read ``{c}`` or ``{c:>50000000}`` inside it as fields."""
        if column not in self.columns:
            self.unknown = True
            return "false"
        return f"coalesce({expr(column)}, false)"

    def eq(self, field: str, value: Scalar) -> str:
        v = _sql_value(value)
        return self._atom(col(_kind(value), field), lambda c: f"{c} = {v}")

    def contains(self, field: str, value: Scalar) -> str:
        v = _sql_value(value)
        return self._atom(col("l" + _kind(value), field), lambda c: f"array_has({c}, {v})")

    def compare(self, field: str, op: str, value: float) -> str:
        v, symbol = _sql_value(value), _SYMBOLS[op]
        return self._atom(col("n", field), lambda c: f"{c} {symbol} {v}")

    def exists(self, field: str) -> str:
        has = [f"coalesce(array_has(vm_keys, {sql_str(field)}), false)"]
        if self.layout >= 4:  # vm_keys lists only the fields without a typed value
            typed = [col(kind, field) for kind in KINDS]
            # a kind missing here may have been added by another writer: the caller reads the
            # schema again (~1 ms; a field rarely has all six kinds)
            self.unknown |= not all(t in self.columns for t in typed)
            has += [f"{t} IS NOT NULL" for t in typed if t in self.columns]
        return self.or_(has) if len(has) > 1 else has[0]
