"""Per-item payloads as typed columns (no Python objects on disk, no pickle).

A :class:`Columns` table holds one :class:`Column` per field, each aligned with a row space
(a VectorIndex's ids, or the rows of one :func:`~embedkit.index.filter_mask` call). Values
are ``str``, ``int``, ``float``, ``bool`` or a list of ``str``; ``None`` or a missing field
means "absent" (the column's ``present`` mask is False there). One field has one type: ints
and floats mix into a float column, anything else mixed is an InputError naming the field.

In memory:

- int / float / bool: ``values`` (int64 / float64 / bool) by row;
- str: ``values`` are int32 codes into ``cats`` (the distinct strings, -1 = absent);
- list of str: row r holds the codes ``values[start[r]:start[r] + length[r]]`` (an update
  appends; the old elements stay as garbage until the table is encoded for saving).

On disk (:mod:`._payload_disk`: :meth:`Columns.encode`, a flat dict of arrays saved by
``_persist`` as payload.npz) strings are UTF-8 bytes with int64 offsets, lists are offsets +
codes, and every column has a presence mask; :meth:`Columns.decode` validates every array and
raises a one-line StoreError for damaged or inconsistent content.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..errors import InputError

KINDS = ("int", "float", "bool", "str", "strlist")
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
_FORMAT_VERSION = 1
_SCALAR_DTYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_}
_INT_MAX = 2 ** 63


def _fast_kind(value) -> str | None:
    """The kind of a plain, valid Python value (ASCII strings, 64-bit ints, finite floats...),
    or None when :func:`_kind_of` must look closer (the ABC checks there cost ~1 us each)."""
    t = type(value)
    if t is str:
        return "str" if value.isascii() else None
    if t is int:
        return "int" if -_INT_MAX <= value < _INT_MAX else None
    if t is float:
        return "float" if math.isfinite(value) else None
    if t is bool:
        return "bool"
    if t is list and all(type(v) is str and v.isascii() for v in value):
        return "strlist"
    return None


def _kind_of(value, field: str, where: str) -> str | None:
    """The column kind of one payload value (None for None)."""
    if value is None:
        return None
    k = _fast_kind(value)
    if k is not None:
        return k
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (numbers.Integral,)):
        if not -_INT_MAX <= int(value) < _INT_MAX:
            raise InputError(f"payload {where}: field {field!r}: int {value} does not fit in 64 bits")
        return "int"
    if isinstance(value, numbers.Real):
        if not math.isfinite(float(value)):
            raise InputError(f"payload {where}: field {field!r} is {value!r}; numbers must be finite (use None for missing)")
        return "float"
    if isinstance(value, str):
        check_text(value, f"payload {where}: field {field!r}")
        return "str"
    if isinstance(value, (list, tuple, np.ndarray)):
        for j, v in enumerate(value):
            if not isinstance(v, str):
                raise InputError(f"payload {where}: field {field!r}[{j}] is {type(v).__name__} {v!r}; "
                                 "lists may hold strings only")
            check_text(v, f"payload {where}: field {field!r}[{j}]")
        return "strlist"
    raise InputError(f"payload {where}: field {field!r} is {type(value).__name__} {value!r}; "
                     "values must be str, int, float, bool, a list of str, or None")


def check_text(s: str, what: str) -> None:
    """Refuse strings that cannot be stored as UTF-8 (lone surrogates), with one line."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"{what} holds a lone surrogate {s[exc.start]!r} at position {exc.start}, which "
                         "cannot be stored as UTF-8; fix the text (e.g. decode it with errors='replace')") from None


class Column:
    """One payload field over a row space (see the module doc)."""

    __slots__ = ("kind", "present", "values", "cats", "cat_index", "start", "length", "_cat_arr")

    def __init__(self, kind: str, capacity: int):
        self.kind = kind
        self.present = np.zeros(capacity, dtype=bool)
        self.cats: list[str] = []
        self.cat_index: dict[str, int] = {}
        self._cat_arr = None
        self.start = self.length = None
        if kind in _SCALAR_DTYPES:
            self.values = np.zeros(capacity, dtype=_SCALAR_DTYPES[kind])
        elif kind == "str":
            self.values = np.full(capacity, -1, dtype=np.int32)
        else:
            self.values = np.zeros(0, dtype=np.int32)
            self.start = np.zeros(capacity, dtype=np.int64)
            self.length = np.zeros(capacity, dtype=np.int64)

    # -------------------------------------------------------------- sizes
    @property
    def capacity(self) -> int:
        return self.present.shape[0]

    def grow(self, capacity: int) -> None:
        def g(a, fill):
            out = np.full(capacity, fill, dtype=a.dtype)
            out[:a.shape[0]] = a
            return out

        self.present = g(self.present, False)
        if self.kind == "strlist":
            self.start, self.length = g(self.start, 0), g(self.length, 0)
        else:
            self.values = g(self.values, -1 if self.kind == "str" else 0)

    def nbytes(self) -> int:
        n = self.present.nbytes + self.values.nbytes
        if self.kind == "strlist":
            n += self.start.nbytes + self.length.nbytes
        return n + sum(len(c) + 49 for c in self.cats) + (len(self.cats) * 100 if self.cats else 0)

    # -------------------------------------------------------------- codes
    def code(self, s: str) -> int:
        c = self.cat_index.get(s)
        if c is None:
            c = self.cat_index[s] = len(self.cats)
            self.cats.append(s)
            self._cat_arr = None
        return c

    def cat_array(self) -> np.ndarray:
        """The distinct strings as an object array (cached), for vectorised comparisons."""
        if self._cat_arr is None or len(self._cat_arr) != len(self.cats):
            arr = np.empty(len(self.cats), dtype=object)
            arr[:] = self.cats
            self._cat_arr = arr
        return self._cat_arr

    # -------------------------------------------------------------- rows
    def to_float(self) -> None:
        """Promote an int column to float (an int and a float value met in one field)."""
        self.values = self.values.astype(np.float64)
        self.kind = "float"

    def set(self, row: int, value) -> None:
        if value is None:
            self.clear(row)
            return
        self.present[row] = True
        if self.kind == "str":
            self.values[row] = self.code(value)
        elif self.kind == "strlist":
            codes = np.fromiter((self.code(v) for v in value), dtype=np.int32, count=len(value))
            self.start[row] = self.values.shape[0]
            self.length[row] = len(codes)
            self.values = np.concatenate((self.values, codes))
        else:
            self.values[row] = value

    def set_many(self, rows: np.ndarray, values: list) -> None:
        """Set non-None values (of this column's kind, or ints in a float column) at rows."""
        self.present[rows] = True
        if self.kind == "str":
            code = self.code
            self.values[rows] = np.fromiter((code(v) for v in values), dtype=np.int32, count=len(values))
        elif self.kind == "strlist":
            code = self.code
            lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
            codes = np.fromiter((code(x) for v in values for x in v), dtype=np.int32, count=int(lengths.sum()))
            starts = np.zeros(len(values), dtype=np.int64)
            if len(values) > 1:
                np.cumsum(lengths[:-1], out=starts[1:])
            self.start[rows] = starts + self.values.shape[0]
            self.length[rows] = lengths
            self.values = np.concatenate((self.values, codes))
        else:
            self.values[rows] = np.asarray(values, dtype=self.values.dtype)

    def clear(self, row) -> None:
        self.present[row] = False
        if self.kind == "str":
            self.values[row] = -1
        elif self.kind == "strlist":
            self.start[row] = 0
            self.length[row] = 0
        else:
            self.values[row] = 0

    def get(self, row: int):
        if not self.present[row]:
            return None
        if self.kind == "str":
            return self.cats[int(self.values[row])]
        if self.kind == "strlist":
            s, n = int(self.start[row]), int(self.length[row])
            return [self.cats[int(c)] for c in self.values[s:s + n]]
        return self.values[row].item()

    def take(self, rows: np.ndarray) -> "Column":
        """A new column holding ``rows`` (in that order) as rows 0..len(rows)-1, strings re-coded."""
        out = Column(self.kind, len(rows))
        out.present = self.present[rows].copy()
        if self.kind in _SCALAR_DTYPES:
            out.values = self.values[rows].copy()
            return out
        if self.kind == "str":
            codes = self.values[rows]
            used = np.unique(codes[codes >= 0])
            remap = np.full(len(self.cats) + 1, -1, dtype=np.int32)
            remap[used] = np.arange(len(used), dtype=np.int32)
            out.values = remap[codes]
            out.cats = [self.cats[i] for i in used.tolist()]
        else:
            lengths = self.length[rows]
            starts = self.start[rows]
            total = int(lengths.sum())
            # element positions of every kept row, in row order
            offs = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offs[1:])
            pos = np.repeat(starts - offs[:-1], lengths) + np.arange(total, dtype=np.int64)
            codes = self.values[pos] if total else np.zeros(0, dtype=np.int32)
            used = np.unique(codes)
            remap = np.zeros(len(self.cats) + 1, dtype=np.int32)
            remap[used] = np.arange(len(used), dtype=np.int32)
            out.values = remap[codes].astype(np.int32)
            out.start, out.length = offs[:-1].copy(), lengths.astype(np.int64)
            out.cats = [self.cats[i] for i in used.tolist()]
        out.cat_index = {c: i for i, c in enumerate(out.cats)}
        return out


class Columns:
    """A payload table: named :class:`Column` objects over one row space of ``capacity`` rows."""

    def __init__(self, capacity: int = 0):
        self.capacity = capacity
        self.cols: dict[str, Column] = {}

    def __bool__(self) -> bool:
        return bool(self.cols)

    def grow(self, capacity: int) -> None:
        if capacity > self.capacity:
            for col in self.cols.values():
                col.grow(capacity)
            self.capacity = capacity

    def nbytes(self) -> int:
        return sum(c.nbytes() for c in self.cols.values())

    # -------------------------------------------------------------- writing
    def check_rows(self, dicts, keys=None) -> list[dict]:
        """Validate a list of payload dicts (or None) before anything is written; returns the dicts."""
        out = []
        kinds: dict[str, str] = {f: c.kind for f, c in self.cols.items()}
        names_ok: set = set()

        def where(i):
            return f"#{i}" if keys is None else f"of key {keys[i]!r}"

        for i, d in enumerate(dicts):
            if d is None:
                out.append({})
                continue
            if not isinstance(d, dict):
                raise InputError(f"payload {where(i)} is {type(d).__name__}; give one dict (or None) per key")
            for f, v in d.items():
                if f not in names_ok:
                    if not isinstance(f, str) or not f:
                        raise InputError(f"payload {where(i)}: field names must be non-empty strings; got {f!r}")
                    check_text(f, f"payload {where(i)}: field name")
                    if f.startswith("$"):
                        raise InputError(f"payload {where(i)}: field {f!r} starts with '$', which filters reserve "
                                         "for operators")
                    names_ok.add(f)
                if v is None:
                    continue
                k = _fast_kind(v) or _kind_of(v, f, where(i))  # the checked path names the item in errors
                have = kinds.get(f)
                if have != k:
                    if have is not None and {have, k} != {"int", "float"}:
                        raise InputError(f"payload {where(i)}: field {f!r} is {k} but earlier values of {f!r} are "
                                         f"{have}; one field holds one type (ints and floats mix)")
                    kinds[f] = "float" if have is not None else k
            out.append(d)
        return out

    def write(self, rows, dicts, replace: bool = True) -> None:
        """Set the payload of ``rows`` (checked dicts from :meth:`check_rows`); ``replace``:
        fields a dict does not name become absent (else they are kept). Column by column:
        one numpy assignment per field, not one per value."""
        rows = np.asarray(rows, dtype=np.int64)
        if replace and len(rows):
            for col in self.cols.values():
                col.clear(rows)
        by_field: dict[str, tuple[list, list]] = {}
        for j, d in enumerate(dicts):
            for f, v in d.items():
                js, vs = by_field.setdefault(f, ([], []))
                js.append(j)
                vs.append(v)
        for f, (js, vs) in by_field.items():
            target = rows[js]
            gone = [v is None for v in vs]
            if any(gone):
                if f in self.cols:
                    self.cols[f].clear(target[np.array(gone)])
                keep = [not g for g in gone]
                target = target[np.array(keep)]
                vs = [v for v in vs if v is not None]
            if not vs:
                continue
            kinds = {_fast_kind(v) or _kind_of(v, f, "") for v in vs}
            kind = "float" if kinds == {"int", "float"} else kinds.pop()
            col = self.cols.get(f)
            if col is None:
                col = self.cols[f] = Column(kind, self.capacity)
            elif col.kind == "int" and kind == "float":
                col.to_float()
            col.set_many(target, vs)

    def clear_rows(self, rows) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        for col in self.cols.values():
            col.clear(rows)

    def get(self, row: int) -> dict:
        out = {}
        for f, col in self.cols.items():
            v = col.get(row)
            if v is not None:
                out[f] = v
        return out

    def take(self, rows) -> "Columns":
        rows = np.asarray(rows, dtype=np.int64)
        out = Columns(len(rows))
        for f, col in self.cols.items():
            sub = col.take(rows)
            if sub.present.any():
                out.cols[f] = sub
        return out

    def scatter(self, rows, capacity: int) -> "Columns":
        """A table of ``capacity`` rows where row ``rows[i]`` holds this table's row i."""
        rows = np.asarray(rows, dtype=np.int64)
        out = Columns(capacity)
        for f, col in self.cols.items():
            new = Column(col.kind, capacity)
            new.present[rows] = col.present
            new.cats, new.cat_index = col.cats, col.cat_index
            if col.kind == "strlist":
                new.values = col.values
                new.start[rows], new.length[rows] = col.start, col.length
            else:
                new.values[rows] = col.values
            out.cols[f] = new
        return out

    @classmethod
    def from_dicts(cls, dicts, keys=None) -> "Columns":
        dicts = list(dicts)
        t = cls(len(dicts))
        checked = t.check_rows(dicts, keys)
        t.write(np.arange(len(dicts)), checked, replace=False)
        return t

    # -------------------------------------------------------------- disk
    def encode(self, rows) -> dict:
        """Flat dict of arrays for ``rows`` (the saved items, in saved order); {} when empty
        (the on-disk form: :mod:`._payload_disk`)."""
        from ._payload_disk import encode

        return encode(self, rows)

    @classmethod
    def decode(cls, arrays: dict | None, n: int) -> "Columns":
        """The table saved by :meth:`encode` for ``n`` items; StoreError (one line) if damaged."""
        from ._payload_disk import decode

        return decode(cls, arrays, n)

def from_frame(df) -> list[dict]:
    """Rows of a pandas DataFrame as payload dicts (NaN/None/NA -> absent)."""
    import pandas as pd

    rows = []
    cols = [str(c) for c in df.columns]
    for rec in df.itertuples(index=False, name=None):
        d = {}
        for f, v in zip(cols, rec):
            if v is None or (not isinstance(v, (list, tuple, np.ndarray, str)) and pd.isna(v)):
                continue
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, np.ndarray):
                v = v.tolist()
            d[f] = v
        rows.append(d)
    return rows


def as_payload_rows(payload, n: int, what: str = "payload") -> list | None:
    """``payload`` (None, a list of dicts or a pandas DataFrame) as a list of n dicts, or None."""
    if payload is None:
        return None
    if type(payload).__name__ == "DataFrame" and hasattr(payload, "itertuples"):
        rows = from_frame(payload)
    elif isinstance(payload, dict):
        raise InputError(f"{what} must be a list of dicts (one per key) or a pandas DataFrame, not one dict; "
                         "wrap it in a list")
    else:
        try:
            rows = list(payload)
        except TypeError:
            raise InputError(f"{what} must be a list of dicts (one per key) or a pandas DataFrame; "
                             f"got {type(payload).__name__}") from None
    if len(rows) != n:
        raise InputError(f"{what} has {len(rows)} entries but there are {n} keys; give one dict per key")
    return rows
