"""One portable filter grammar over chunk metadata.

Written as a dict, Mongo/Chroma style::

    {"source": "a.md"}                                  # equality shorthand
    {"year": {"$gte": 2020, "$lt": 2024}}               # several operators on one field: AND
    {"$or": [{"lang": "en"}, {"tags": {"$contains": "x"}}]}
    {"$not": {"draft": True}}

Operators: ``$eq $ne $gt $gte $lt $lte $in $nin $contains $exists`` and ``$and $or $not``.
Keys address top-level metadata fields. Semantics, which every backend must reproduce:

* ``$eq``/``$in``: the field exists and equals (one of) the value(s). Booleans are not numbers.
* ``$ne``/``$nin``: the negation of ``$eq``/``$in`` -- a chunk *without* the field matches.
* ``$gt $gte $lt $lte``: the field is a number (not bool) and compares; values must be numbers.
* ``$contains``: the field is a list holding the value.
* ``$exists``: the field is present (``True``) or absent (``False``).

Numbers in filters are finite, and integers lie within ``±2**53`` (the range float64 holds
exactly, :data:`vecmem.validation.MAX_EXACT_INT`, the same bound as metadata): then comparing as
float64 is exact on every backend. ``NaN``, ``±inf`` and larger integers raise
:class:`~vecmem.errors.InvalidFilterError`; compare such values as strings.

Parsing validates everything up front: an unknown operator or a malformed value raises
:class:`~vecmem.errors.InvalidFilterError`, it is never ignored. Adapters translate the parsed
tree (:class:`Cond`, :class:`And`, :class:`Or`, :class:`Not`) or raise
:class:`~vecmem.errors.UnsupportedFilterError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from vecmem.errors import InvalidFilterError, UnsupportedFilterError
from vecmem.validation import int_problem, is_valid_unicode, show

Scalar = str | int | float | bool

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$exists")
LOGICAL = ("$and", "$or", "$not")


@dataclass(frozen=True)
class Cond:
    field: str
    op: str  # one of COMPARISONS, without the '$'
    value: Any


@dataclass(frozen=True)
class And:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Not:
    item: Filter


Filter = Cond | And | Or | Not
FilterLike = Mapping[str, Any] | Cond | And | Or | Not | None


def _is_scalar(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool)) and not (isinstance(v, float) and v != v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v


def _check_value(field: str, op: str, v: Any) -> None:
    """Refuse a scalar no backend can compare exactly (see the module docstring)."""
    if isinstance(v, str):
        if not is_valid_unicode(v):
            raise InvalidFilterError(
                f"{op} on {field!r}: the value {v!r} holds a lone "
                "surrogate; it is not valid Unicode"
            )
        return
    if isinstance(v, bool):
        return
    if isinstance(v, float) and not math.isfinite(v):
        raise InvalidFilterError(f"{op} on {field!r} needs a finite number, got {v!r}")
    if isinstance(v, int) and (why := int_problem(v)) is not None:
        raise InvalidFilterError(f"{op} on {field!r}: {show(v)} is {why}")


def _check_field(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidFilterError(f"filter keys must be non-empty strings, got {show(name)}")
    if not is_valid_unicode(name):
        raise InvalidFilterError(
            f"filter key {name!r} holds a lone surrogate; it is not valid Unicode"
        )
    if name.startswith("$"):
        raise InvalidFilterError(
            f"unknown logical operator {name!r}; use one of {', '.join(LOGICAL)}"
        )
    return name


def _cond(field: str, op: str, value: Any) -> Cond:
    if op not in COMPARISONS:
        raise InvalidFilterError(
            f"unknown filter operator {op!r} on field {field!r}; use one of {', '.join(COMPARISONS)}"
        )
    name = op[1:]
    if name in ("in", "nin"):
        if not isinstance(value, (list, tuple)) or not all(_is_scalar(v) for v in value):
            raise InvalidFilterError(
                f"{op} on {field!r} needs a list of scalars, got {show(value)}"
            )
        value = tuple(value)
    elif name in ("gt", "gte", "lt", "lte"):
        if not _is_number(value):
            raise InvalidFilterError(f"{op} on {field!r} needs a number, got {show(value)}")
    elif name == "exists":
        if not isinstance(value, bool):
            raise InvalidFilterError(f"$exists on {field!r} needs true or false, got {show(value)}")
    elif not _is_scalar(value):
        raise InvalidFilterError(
            f"{op} on {field!r} needs a string, number or bool, got {show(value)}"
        )
    if name != "exists":
        for v in value if name in ("in", "nin") else (value,):
            _check_value(field, op, v)
    return Cond(field, name, value)


MAX_DEPTH = 32
"""Logical operators nested deeper than this are refused (every adapter translates the tree
recursively; 5,000 nested ``$not`` would raise RecursionError)."""


def _parse(node: Any, depth: int = 1) -> Filter:
    if isinstance(node, (Cond, And, Or, Not)):
        return node
    if depth > MAX_DEPTH:
        raise InvalidFilterError(f"filter nested deeper than {MAX_DEPTH} $and/$or/$not levels")
    if not isinstance(node, Mapping):
        raise InvalidFilterError(f"a filter must be a dict, got {type(node).__name__}")
    if not node:
        raise InvalidFilterError("empty filter clause {}")
    parts: list[Filter] = []
    for key, value in node.items():
        if key in ("$and", "$or"):
            if not isinstance(value, (list, tuple)) or not value:
                raise InvalidFilterError(f"{key} needs a non-empty list of filters")
            items = tuple(_parse(v, depth + 1) for v in value)
            parts.append(And(items) if key == "$and" else Or(items))
        elif key == "$not":
            parts.append(Not(_parse(value, depth + 1)))
        else:
            field = _check_field(key)
            if isinstance(value, Mapping):
                if not value:
                    raise InvalidFilterError(f"empty operator dict for field {field!r}")
                for op, operand in value.items():
                    parts.append(_cond(field, op, operand))
            else:
                parts.append(_cond(field, "$eq", value))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def parse_filter(spec: FilterLike) -> Filter | None:
    """Validate a filter dict and return its tree (``None`` for no filter).

    >>> parse_filter({"source": "a.md"})
    Cond(field='source', op='eq', value='a.md')
    """
    if spec is None:
        return None
    return _parse(spec)


_MISSING = object()


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return _is_number(a) and _is_number(b) and a == b


def _cond_match(c: Cond, meta: Mapping[str, Any]) -> bool:
    v = meta.get(c.field, _MISSING)
    op = c.op
    if op == "exists":
        return (v is not _MISSING) == c.value
    if op == "eq":
        return v is not _MISSING and _eq(v, c.value)
    if op == "ne":
        return not (v is not _MISSING and _eq(v, c.value))
    if op == "in":
        return v is not _MISSING and any(_eq(v, x) for x in c.value)
    if op == "nin":
        return not (v is not _MISSING and any(_eq(v, x) for x in c.value))
    if op == "contains":
        return isinstance(v, (list, tuple)) and any(_eq(x, c.value) for x in v)
    if not _is_number(v):
        return False
    if op == "gt":
        return v > c.value
    if op == "gte":
        return v >= c.value
    if op == "lt":
        return v < c.value
    return v <= c.value  # lte


def matches(f: Filter | None, meta: Mapping[str, Any]) -> bool:
    """Evaluate a parsed filter against one metadata dict (the reference semantics)."""
    if f is None:
        return True
    if isinstance(f, Cond):
        return _cond_match(f, meta)
    if isinstance(f, And):
        return all(matches(x, meta) for x in f.items)
    if isinstance(f, Or):
        return any(matches(x, meta) for x in f.items)
    return not matches(f.item, meta)


def compile_filter(f: Filter | None) -> Callable[[Mapping[str, Any]], bool]:
    """A predicate for ``f``; ``lambda meta: True`` when there is no filter."""
    if f is None:
        return lambda meta: True
    return lambda meta: matches(f, meta)


def fields(f: Filter | None) -> set[str]:
    """The metadata fields a filter reads."""
    if f is None:
        return set()
    if isinstance(f, Cond):
        return {f.field}
    if isinstance(f, Not):
        return fields(f.item)
    out: set[str] = set()
    for x in f.items:
        out |= fields(x)
    return out


T = TypeVar("T")


class Translator(Generic[T]):
    """The walk every adapter makes over a parsed filter, its query language left to hooks:
    the joins (:meth:`and_`, :meth:`or_`, :meth:`not_`) and the leaves (:meth:`eq`,
    :meth:`exists`, :meth:`contains`, :meth:`compare`; :meth:`in_` is an :meth:`or_` of
    :meth:`eq` unless overridden). ``$ne``, ``$nin`` and ``$exists: false`` arrive as
    :meth:`not_` of ``$eq``, ``$in`` and ``$exists: true``.

    >>> class Text(Translator[str]):
    ...     def and_(self, items): return "(" + " AND ".join(items) + ")"
    ...     def or_(self, items): return "(" + " OR ".join(items) + ")"
    ...     def not_(self, item): return f"NOT {item}"
    ...     def eq(self, field, value): return f"{field} = {value!r}"
    >>> Text()(parse_filter({"a": {"$nin": [1, 2]}, "b": "x"}))
    "(NOT (a = 1 OR a = 2) AND b = 'x')"
    """

    def __call__(self, f: Filter) -> T:
        if isinstance(f, Not):
            return self.not_(self(f.item))
        if isinstance(f, And):
            return self.and_([self(x) for x in f.items])
        if isinstance(f, Or):
            return self.or_([self(x) for x in f.items])
        op, v, name = f.op, f.value, f.field
        if op in ("ne", "nin") or (op == "exists" and not v):
            return self.not_(self(Cond(name, _POSITIVE[op], True if op == "exists" else v)))
        if op == "eq":
            return self.eq(name, v)
        if op == "in":
            return self.in_(name, v)
        if op == "exists":
            return self.exists(name)
        if op == "contains":
            return self.contains(name, v)
        if op in ("gt", "gte", "lt", "lte"):
            return self.compare(name, op, v)
        raise UnsupportedFilterError(f"unknown filter operator ${op}")

    def and_(self, items: list[T]) -> T:
        raise NotImplementedError

    def or_(self, items: list[T]) -> T:
        raise NotImplementedError

    def not_(self, item: T) -> T:
        raise NotImplementedError

    def eq(self, field: str, value: Scalar) -> T:
        """``field`` exists and equals ``value`` (types apart: booleans are not numbers)."""
        raise NotImplementedError

    def in_(self, field: str, values: Sequence[Scalar]) -> T:
        """``field`` equals one of ``values`` (none: nothing passes)."""
        unique = dict.fromkeys((type(x), x) for x in values)
        return self.or_([self.eq(field, x) for _, x in unique])

    def exists(self, field: str) -> T:
        raise UnsupportedFilterError(f"{type(self).__name__} cannot express $exists")

    def contains(self, field: str, value: Scalar) -> T:
        """``field`` is a list holding ``value``."""
        raise UnsupportedFilterError(f"{type(self).__name__} cannot express $contains")

    def compare(self, field: str, op: str, value: float) -> T:
        """``field`` is a number (not a bool) and ``field op value`` (``gt gte lt lte``)."""
        raise UnsupportedFilterError(f"{type(self).__name__} cannot express ${op}")


_POSITIVE = {"ne": "eq", "nin": "in", "exists": "exists"}


class SqlTranslator(Translator[str]):
    """A :class:`Translator` to SQL text (pgvector, LanceDB): the joins written once, the leaves
    left to the dialect. Every leaf must be a non-NULL boolean, so ``AND``, ``OR`` and ``NOT``
    act as in Python."""

    def and_(self, items: list[str]) -> str:
        return "(" + " AND ".join(items) + ")"

    def or_(self, items: list[str]) -> str:
        return "(" + " OR ".join(items) + ")" if items else "FALSE"

    def not_(self, item: str) -> str:
        return f"(NOT {item})"
