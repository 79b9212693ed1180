"""The payload filter language, compiled once and evaluated to a numpy bool mask.

A filter is plain JSON in the MongoDB / Chroma operator style::

    {"category": "shoes"}                                  # field equals value
    {"price": {"$gte": 10, "$lt": 50}}                     # several operators: all must hold
    {"tags": {"$in": ["red", "blue"]}}                     # list fields match when any element does
    {"$or": [{"brand": "acme"}, {"stock": {"$gt": 0}}]}
    {"$not": {"discontinued": True}}
    {"$key": {"$nin": ["item-1", "item-7"]}}               # the item's own key (allow/deny lists)

Several fields in one dict are combined with AND. Operators: ``$eq $ne $gt $gte $lt $lte $in
$nin`` on fields, ``$and $or`` (non-empty lists of filters) and ``$not`` (a filter, or an
operator dict inside a field) as logic. Values are str, int, float or bool; ``$in``/``$nin``
take a list of them. A field holding a list of strings matches ``$eq``/``$in`` when any element
does (and ``$ne``/``$nin`` when none does), as in MongoDB. An item without the field never
matches ``$eq $in $gt $gte $lt $lte`` and always matches ``$ne $nin`` (a field no item has is
absent everywhere, as in MongoDB, not an error). Numbers compare with
numbers, strings with strings (by code point), bools only by (in)equality.

:func:`compile_filter` checks the syntax once; :meth:`Filter.mask` checks the value types
against the payload columns and evaluates vectorised over every row. Every error is one
InputError line naming the part at fault, e.g. ``filter: $and[1].price: $gt expects a number,
got 'x'``.
"""

from __future__ import annotations

import json
import numbers
import re

import numpy as np

from ..errors import InputError
from ._payload import Columns

__all__ = ["Filter", "compile_filter", "filter_mask", "parse_filter_text"]

_FIELD_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin")
_LOGIC_OPS = ("$and", "$or", "$not")
_ORDER_OPS = ("$gt", "$gte", "$lt", "$lte")
_MAX_DEPTH = 32
_MAX_NODES = 10_000
# JSON nesting a filter's text may have: an accepted filter needs at most about 2 levels per $and/$or level
# (an object and a list) plus a few for a field's operators; deeper text is refused before it is parsed,
# since json.loads recurses once per level and a few thousand levels overflow Python's recursion limit.
_MAX_JSON_DEPTH = 2 * _MAX_DEPTH + 36
_JSON_SYNTAX = re.compile(r'[\[\]{}"\\]')


def _err(path: str, msg: str) -> InputError:
    return InputError(f"filter: {path}: {msg}" if path else f"filter: {msg}")


def _show(v) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))


def _scalar_ok(v) -> bool:
    return isinstance(v, (str, bool, np.bool_)) or _is_num(v)


class _Keys:
    """Row lookup by key for ``$key`` (rows_of returns the rows of the keys that exist)."""

    def __init__(self, rows_of, n: int):
        self.rows_of = rows_of
        self.n = n


class Filter:
    """A compiled filter (see the module doc); :meth:`mask` evaluates it over a payload table."""

    def __init__(self, spec, tree):
        self.spec = spec
        self._tree = tree
        self.key = json.dumps(spec, sort_keys=True, default=str)  # identifies the filter (mask caches)

    def __repr__(self) -> str:
        return f"Filter({json.dumps(self.spec, default=str)[:200]})"

    @property
    def uses_payload(self) -> bool:
        return _uses_payload(self._tree)

    def mask(self, table: Columns | None, n: int, rows_of) -> np.ndarray:
        """Bool mask over rows 0..n-1: ``table`` holds the payload columns (or None),
        ``rows_of(list_of_keys)`` gives the rows of those keys (missing keys left out)."""
        table = table if table is not None else Columns(n)
        out = _eval(self._tree, table, _Keys(rows_of, n))
        if out is True:
            return np.ones(n, dtype=bool)
        return out


def compile_filter(spec) -> Filter:
    """Check a filter's syntax once; returns a :class:`Filter` (passes a Filter through)."""
    if isinstance(spec, Filter):
        return spec
    if isinstance(spec, str):
        spec = parse_filter_text(spec)
    if not isinstance(spec, dict):
        raise InputError(f"filter: must be a JSON object such as {{\"field\": value}}; got {type(spec).__name__}")
    count = [0]
    return Filter(spec, _compile(spec, "", 0, count))


def parse_filter_text(text: str, where: str = "filter", hint: str = ""):
    """The JSON value of a filter given as text (a command line's --filter, a URL's ``filter=``).

    Every caller that parses filter text goes through here, so that each gets the same one-line
    InputError, starting with ``where``: for text that is not JSON (``hint`` is appended, e.g. an
    example), and for text nested more than ``_MAX_JSON_DEPTH`` levels deep, which is refused before
    it is parsed (``json.loads`` would overflow Python's recursion limit on a few thousand levels)."""
    depth = _json_depth(text, _MAX_JSON_DEPTH)
    if depth > _MAX_JSON_DEPTH:
        raise InputError(f"{where}: nested more than {_MAX_JSON_DEPTH} levels deep; a filter holds at most "
                         f"{_MAX_DEPTH} levels of $and/$or/$not: flatten it (a long allow- or deny-list is one "
                         "$in / $nin)")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"{where}: not valid JSON ({exc}){hint}") from None


def _json_depth(text: str, stop: int) -> int:
    """Deepest nesting of objects and lists in JSON ``text`` (brackets inside strings not counted),
    in one linear pass over its brackets, quotes and backslashes; stops early once past ``stop``."""
    depth = top = 0
    in_string, skip = False, -1
    for m in _JSON_SYNTAX.finditer(text):
        c, i = m.group(), m.start()
        if in_string:
            if i == skip:  # the character after a backslash
                continue
            if c == "\\":
                skip = i + 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            depth += 1
            if depth > top:
                top = depth
                if top > stop:
                    break
        elif c in "]}":
            depth -= 1
    return top


def _compile(spec, path: str, depth: int, count) -> tuple:
    count[0] += 1
    if depth > _MAX_DEPTH or count[0] > _MAX_NODES:
        raise _err(path, f"nested deeper than {_MAX_DEPTH} levels or more than {_MAX_NODES} parts")
    if not isinstance(spec, dict):
        raise _err(path, f"expected a filter object such as {{\"field\": value}}, got {_show(spec)}")
    parts = []
    for name, value in spec.items():
        if not isinstance(name, str):
            raise _err(path, f"field names must be strings, got {_show(name)}")
        here = f"{path}.{name}" if path else name
        if name in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _err(here, "expects a non-empty list of filters")
            subs = [_compile(v, f"{here}[{i}]", depth + 1, count) for i, v in enumerate(value)]
            parts.append(("and" if name == "$and" else "or", subs))
        elif name == "$not":
            parts.append(("not", _compile(value, here, depth + 1, count)))
        elif name == "$key":
            parts.append(_compile_field(None, value, here, depth, count))
        elif name.startswith("$"):
            known = ", ".join(_LOGIC_OPS + ("$key",))
            raise _err(here, f"unknown operator {name!r} at this level (use {known}, or a field name)")
        else:
            parts.append(_compile_field(name, value, here, depth, count))
    if not parts:
        return ("all",)
    return parts[0] if len(parts) == 1 else ("and", parts)


def _compile_field(field, value, path, depth, count) -> tuple:
    """Operators on one field (field None = the item's key)."""
    if isinstance(value, dict) and value and all(isinstance(k, str) and k.startswith("$") for k in value):
        conds = []
        for op, v in value.items():
            here = f"{path}.{op}"
            if op == "$not":
                count[0] += 1
                if depth + 1 > 2 * _MAX_DEPTH:  # a chain of $not (unbounded recursion before; JSON text is bounded)
                    raise _err(here, f"$not nested more than {2 * _MAX_DEPTH} levels deep; simplify it (two $not "
                                     "cancel out)")
                if not isinstance(v, dict) or not v:
                    raise _err(here, "inside a field expects an operator object such as {\"$gt\": 3}")
                inner = _compile_field(field, v, here, depth + 1, count)
                conds.append(("not", inner))
                continue
            if op not in _FIELD_OPS:
                raise _err(path, f"unknown operator {op!r} (use {', '.join(_FIELD_OPS)} or $not)")
            conds.append(_cond(field, op, v, path))
        return conds[0] if len(conds) == 1 else ("and", conds)
    if isinstance(value, dict):
        raise _err(path, "an object value must hold operators only, e.g. {\"$gte\": 1, \"$lt\": 5}; "
                         "objects are not payload values")
    if isinstance(value, (list, tuple)):
        raise _err(path, f"a list value {_show(value)} is ambiguous; use {{\"$in\": [...]}} to match any of them")
    return _cond(field, "$eq", value, path)


def _cond(field, op, v, path) -> tuple:
    what = "$key" if field is None else path
    if op in ("$in", "$nin"):
        if not isinstance(v, (list, tuple)):
            raise _err(path, f"{op} expects a list of values, got {_show(v)}")
        for i, x in enumerate(v):
            if not _scalar_ok(x) or x != x:  # NaN would match nothing
                raise _err(path, f"{op}[{i}] must be a str, number (not NaN) or bool, got {_show(x)}")
        vals = list(v)
    else:
        if not _scalar_ok(v) or v != v:  # NaN would match nothing
            raise _err(path, f"{op} expects a str, number (not NaN) or bool, got {_show(v)}")
        if op in _ORDER_OPS and isinstance(v, (bool, np.bool_)):
            raise _err(path, f"{op} expects a number or a string, got {_show(v)}")
        vals = v
    if field is None:
        if op in _ORDER_OPS:
            raise _err(what, f"{op} is not supported on $key; use $eq, $ne, $in or $nin")
        items = vals if isinstance(vals, list) else [vals]
        for x in items:
            if not isinstance(x, str):
                raise _err(what, f"{op} expects keys (strings), got {_show(x)}")
        return ("key", op, items)
    return ("cmp", field, op, vals, path)


def _uses_payload(tree) -> bool:
    tag = tree[0]
    if tag in ("and", "or"):
        return any(_uses_payload(t) for t in tree[1])
    if tag == "not":
        return _uses_payload(tree[1])
    return tag == "cmp"


# ------------------------------------------------------------------ evaluation
def _eval(tree, table: Columns, keys: _Keys):
    """Bool mask (n,) of rows matching ``tree``, or True for "every row"."""
    tag = tree[0]
    if tag == "all":
        return True
    if tag == "and":
        out = True
        for t in tree[1]:
            m = _eval(t, table, keys)
            if m is True:
                continue
            out = m if out is True else (out & m)
        return out
    if tag == "or":
        out = None
        for t in tree[1]:
            m = _eval(t, table, keys)
            if m is True:
                return True
            out = m if out is None else (out | m)
        return out
    if tag == "not":
        m = _eval(tree[1], table, keys)
        return np.zeros(keys.n, dtype=bool) if m is True else ~m
    if tag == "key":
        _, op, items = tree
        mask = np.zeros(keys.n, dtype=bool)
        rows = np.asarray(keys.rows_of(items), dtype=np.int64)
        mask[rows] = True
        return ~mask if op in ("$ne", "$nin") else mask
    _, field, op, v, path = tree
    col = table.cols.get(field)
    if col is None:  # no item has this field (MongoDB's rule): absent everywhere
        for x in (v if isinstance(v, list) else [v]):
            if not _scalar_ok(x):
                raise _err(path, f"{op} expects a str, number or bool, got {_show(x)}")
        absent = np.zeros(keys.n, dtype=bool)
        return ~absent if op in ("$ne", "$nin") else absent
    return _eval_cmp(col, op, v, path, keys.n)


def _check_type(col, op, v, path):
    items = v if isinstance(v, list) else [v]
    for x in items:
        if col.kind in ("int", "float"):
            if not _is_num(x):
                raise _err(path, f"{op} expects a number (field is {col.kind}), got {_show(x)}")
        elif col.kind == "bool":
            if not isinstance(x, (bool, np.bool_)):
                raise _err(path, f"{op} expects true or false (field is bool), got {_show(x)}")
            if op in _ORDER_OPS:
                raise _err(path, f"{op} does not apply to a bool field; use $eq or $ne")
        elif not isinstance(x, str):
            kind = "str" if col.kind == "str" else "list of str"
            raise _err(path, f"{op} expects a string (field is {kind}), got {_show(x)}")


def _eval_cmp(col, op, v, path, n) -> np.ndarray:
    _check_type(col, op, v, path)
    negate = op in ("$ne", "$nin")
    base_op = {"$ne": "$eq", "$nin": "$in"}.get(op, op)
    present = col.present[:n]
    if col.kind in ("int", "float", "bool"):
        vals = col.values[:n]
        if base_op == "$eq":
            m = vals == v
        elif base_op == "$in":
            m = np.isin(vals, np.asarray(v, dtype=vals.dtype if col.kind == "bool" else np.float64))
        else:
            m = _order(vals, base_op, v)
        m &= present
        return ~m if negate else m
    # strings: evaluate on the distinct strings, then gather by code
    ncat = len(col.cats)
    cat_mask = np.zeros(ncat + 1, dtype=bool)  # the extra last entry answers code -1 (absent)
    if base_op == "$eq":
        c = col.cat_index.get(v)
        if c is not None:
            cat_mask[c] = True
    elif base_op == "$in":
        codes = [col.cat_index[x] for x in v if x in col.cat_index]
        cat_mask[codes] = True
    else:
        cat_mask[:ncat] = _order(col.cat_array(), base_op, v).astype(bool)
    if col.kind == "str":
        m = cat_mask[col.values[:n]]
    else:
        elem = cat_mask[col.values]
        cs = np.zeros(len(elem) + 1, dtype=np.int64)
        np.cumsum(elem, out=cs[1:])
        start = col.start[:n]
        m = (cs[start + col.length[:n]] - cs[start]) > 0
    m &= present
    return ~m if negate else m


def _order(vals, op, v):
    if op == "$gt":
        return vals > v
    if op == "$gte":
        return vals >= v
    if op == "$lt":
        return vals < v
    return vals <= v


def filter_mask(filter, keys, payload=None) -> np.ndarray:
    """Which of ``keys`` match ``filter``: a bool array aligned with ``keys``.

    ``payload``: one dict per key (or None for none), values str/int/float/bool/list of str;
    ``filter``: a dict in the language of this module (or a :class:`Filter`). Used by
    ``MatrixFactorization.recommend(filter=...)``; raises InputError (one line) for a bad
    filter or payload.
    """
    flt = compile_filter(filter)
    keys = list(keys)
    n = len(keys)
    table = None
    if payload is not None:
        from ._payload import as_payload_rows

        rows = as_payload_rows(payload, n)
        table = Columns.from_dicts(rows, keys)
    index = None

    def rows_of(items):
        nonlocal index
        if index is None:
            index = {}
            for i, k in enumerate(keys):
                index.setdefault(k, []).append(i)
        return [i for k in items for i in index.get(k, ())]

    return flt.mask(table, n, rows_of)
