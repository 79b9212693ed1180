"""The payload filter language (:mod:`embedkit.index._filter`) translated to Milvus boolean
expressions, for ``VectorIndex(backend="milvus")``.

Items are stored with their payload in a JSON field ``payload`` and a JSON field ``has`` that
maps each present payload field to 1 (Milvus has no ``exists`` test in milvus-lite). Every
operator keeps the in-memory index's semantics (MongoDB's, see the filter module):

==============================  =================================================
filter                          Milvus expression
==============================  =================================================
``{"f": v}``, ``$eq``           ``payload["f"] == v`` (list field: ``json_contains``)
``$ne``                         ``payload["f"] != v`` (true where ``f`` is absent)
``$in`` / ``$nin``              ``payload["f"] in [...]`` / ``not in`` (list field:
                                ``json_contains_any``)
``$gt $gte $lt $lte``           ``payload["f"] > v`` ... (numbers or strings)
``$not`` of an order operator   the opposite operator, or the field absent:
                                ``(payload["f"] <= v or has["f"] != 1)``
``$and`` / ``$or``              ``(a) and (b)`` / ``(a) or (b)``
``$key``                        ``key in [...]`` / ``key not in [...]``
==============================  =================================================

``$not`` is pushed down to the operators (milvus-lite's engine has no NOT node). Untranslatable
parts raise a one-line InputError naming them: an order operator on a list-of-strings field, a
negated ``$eq``/``$in`` on a list field with milvus-lite (a server gets ``not json_contains``),
a value holding a line break (Milvus string literals cannot), and a non-finite number.
A field no item has is absent everywhere, as in the FAISS index (the parts fold to constants).
"""

from __future__ import annotations

import math
import numbers
import types

from ..errors import InputError
from ._filter import _check_type, _err, compile_filter

__all__ = ["to_expression", "literal", "key_list"]

_NEGATE_ORDER = {"$gt": "<=", "$gte": "<", "$lt": ">=", "$lte": ">"}
_ORDER = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


def literal(value, path: str = "") -> str:
    """A Python str / int / float / bool as a Milvus expression literal."""
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise _err(path, f"the value {value[:40]!r} holds a line break, which a Milvus expression cannot hold")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    v = float(value)
    if not math.isfinite(v):
        raise _err(path, f"the number {value!r} is not finite; the milvus backend compares finite numbers only")
    return repr(v)


def key_list(keys) -> str:
    """``[...]`` of keys as string literals."""
    return "[" + ", ".join(literal(k, "$key") for k in keys) + "]"


def _field(root: str, name: str, path: str) -> str:
    return f"{root}[{literal(name, path)}]"


def _numbers(values, kind: str, path: str) -> str:
    """A list of numbers: all ints as ints (an int field), else all as floats (Milvus refuses mixed lists)."""
    if kind == "int" and all(isinstance(v, numbers.Integral) for v in values):
        return "[" + ", ".join(str(int(v)) for v in values) + "]"
    return "[" + ", ".join(literal(float(v), path) for v in values) + "]"


def to_expression(spec, kinds: dict, server: bool = True):
    """``spec`` (a filter dict, JSON text or compiled Filter) as a Milvus expression string;
    True when it matches every item, False when it matches none. ``kinds``: payload field ->
    kind ("int", "float", "bool", "str", "strlist"); ``server``: NOT is available (a Milvus
    server; milvus-lite's engine has none)."""
    flt = compile_filter(spec)
    return _tr(flt._tree, False, kinds, server)


def _join(parts, op: str):
    """Fold constants out of an and / or of translated parts."""
    absorbing, neutral = (False, True) if op == "and" else (True, False)
    out = []
    for p in parts:
        if p is absorbing:
            return absorbing
        if p is not neutral:
            out.append(p)
    if not out:
        return neutral
    if len(out) == 1:
        return out[0]
    return "(" + f") {op} (".join(out) + ")"


def _tr(tree, neg: bool, kinds: dict, server: bool):
    tag = tree[0]
    if tag == "all":
        return not neg
    if tag in ("and", "or"):
        op = tag if not neg else ("or" if tag == "and" else "and")
        return _join([_tr(t, neg, kinds, server) for t in tree[1]], op)
    if tag == "not":
        return _tr(tree[1], not neg, kinds, server)
    if tag == "key":
        _, op, items = tree
        positive = (op in ("$eq", "$in")) != neg
        if not items:
            return not positive
        return f"key {'in' if positive else 'not in'} {key_list(items)}"
    _, field, op, v, path = tree
    kind = kinds.get(field)
    negate = (op in ("$ne", "$nin")) != neg
    base = {"$ne": "$eq", "$nin": "$in"}.get(op, op)
    if kind is None:  # no item has this field: absent everywhere (matches $ne / $nin only)
        return negate
    _check_type(types.SimpleNamespace(kind=kind), op, v, path)
    if kind == "float":  # stored as JSON doubles: compare with double literals
        v = [float(x) for x in v] if isinstance(v, list) else float(v)
    f = _field("payload", field, path)
    if kind == "strlist":
        if base in _ORDER:
            raise _err(path, f"{op} on the list field {field!r} cannot be expressed in Milvus; "
                             "filter list fields with $eq, $in, $ne or $nin")
        if base == "$eq":
            expr = f"json_contains({f}, {literal(v, path)})"
        elif not v:
            return negate
        else:
            expr = f"json_contains_any({f}, {key_list_values(v, path)})"
        if not negate:
            return expr
        if not server:
            raise _err(path, f"{op if op in ('$ne', '$nin') else '$not of ' + op} on the list field {field!r} needs NOT, "
                             "which milvus-lite lacks; use a Milvus server uri, or filter on a str field")
        return f"not ({expr})"
    if base == "$eq":
        return f"{f} {'!=' if negate else '=='} {literal(v, path)}"
    if base == "$in":
        if not v:
            return negate
        vals = _numbers(v, kind, path) if kind in ("int", "float") else key_list_values(v, path)
        return f"{f} {'not in' if negate else 'in'} {vals}"
    lit = literal(v, path)
    if not negate:
        return f"{f} {_ORDER[base]} {lit}"
    return f"({f} {_NEGATE_ORDER[base]} {lit} or {_field('has', field, path)} != 1)"


def key_list_values(values, path: str) -> str:
    return "[" + ", ".join(literal(x, path) for x in values) + "]"


def check_text(s: str, what: str) -> None:
    """Keys and payload field names must be expressible in a Milvus expression."""
    if "\n" in s or "\r" in s:
        raise InputError(f"{what} {s[:40]!r} holds a line break, which Milvus expressions cannot hold "
                         "(the milvus backend looks items up by expression); remove it")
