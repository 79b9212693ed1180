"""On-disk form of payload columns (see :mod:`._payload`): a flat dict of arrays that
``_persist`` saves as payload.npz, every array with one row per saved item; the variable-length
parts (field names, string dictionaries, list offsets) packed into one (n, w) uint8 array.
Decoding validates every array and raises a one-line StoreError for damaged content."""

from __future__ import annotations

import json

import numpy as np

from ..errors import StoreError
from ._payload import _FORMAT_VERSION, _KIND_CODE, _SCALAR_DTYPES, KINDS, Column


def encode(table, rows) -> dict:
    """Flat dict of arrays for ``rows`` (the saved items, in saved order); {} when empty.

    Every array has ``len(rows)`` rows (what the index's loader checks): per-row arrays as
    they are, the variable-length ones (names, string dictionaries, list offsets) packed by
    :func:`_pack_parts` into one (n, w) uint8 array.
    """
    logical = _encode(table, rows)
    return _pack_parts(logical, len(rows)) if logical else {}


def decode(cls, arrays: dict | None, n: int):
    """The table saved by :meth:`encode` for ``n`` items; StoreError (one line) if damaged."""
    if not arrays:
        return cls(n)
    return _decode(cls, _unpack_parts(arrays, n), n)


def _encode(table, rows) -> dict:
    t = table.take(rows)
    if not t.cols:
        return {}
    names = list(t.cols)
    out = {"version": np.array([_FORMAT_VERSION], dtype=np.int64),
           "kinds": np.array([_KIND_CODE[t.cols[f].kind] for f in names], dtype=np.int8)}
    out["names"], out["names_off"] = _pack(names)
    for i, f in enumerate(names):
        col = t.cols[f]
        out[f"c{i}_present"] = col.present
        if col.kind == "strlist":
            offs = np.zeros(len(rows) + 1, dtype=np.int64)
            np.cumsum(col.length, out=offs[1:])
            out[f"c{i}_offsets"] = offs
        out[f"c{i}_values"] = col.values
        if col.kind in ("str", "strlist"):
            out[f"c{i}_cats"], out[f"c{i}_cats_off"] = _pack(col.cats)
    return out

def _decode(cls, arrays: dict, n: int):
    t = cls(n)
    if not arrays:
        return t

    bad = _damaged

    def arr(name, dtype, shape=None):
        a = arrays.get(name)
        if a is None:
            raise bad(f"array {name!r} is missing")
        if not isinstance(a, np.ndarray) or a.dtype != np.dtype(dtype) or a.ndim != 1:
            raise bad(f"array {name!r} has dtype {getattr(a, 'dtype', type(a).__name__)} "
                      f"shape {getattr(a, 'shape', '?')}, expected 1-D {np.dtype(dtype)}")
        if shape is not None and a.shape[0] != shape:
            raise bad(f"array {name!r} has {a.shape[0]} entries, expected {shape}")
        return a

    version = arr("version", np.int64, 1)
    if int(version[0]) != _FORMAT_VERSION:
        raise bad(f"payload format version {int(version[0])} is not {_FORMAT_VERSION}")
    kinds = arr("kinds", np.int8)
    names = _unpack(arr("names", np.uint8), arr("names_off", np.int64), bad, "names")
    if len(names) != len(kinds):
        raise bad(f"{len(names)} names but {len(kinds)} kinds")
    if len(set(names)) != len(names) or any(not f for f in names):
        raise bad("field names are empty or repeated")
    expected = {"version", "kinds", "names", "names_off"}
    for i, (f, kc) in enumerate(zip(names, kinds.tolist())):
        if not 0 <= kc < len(KINDS):
            raise bad(f"field {f!r} has unknown type code {kc}")
        kind = KINDS[kc]
        col = Column(kind, 0)
        col.present = arr(f"c{i}_present", np.bool_, n).copy()
        expected.update({f"c{i}_present", f"c{i}_values"})
        if kind in _SCALAR_DTYPES:
            col.values = arr(f"c{i}_values", _SCALAR_DTYPES[kind], n).copy()
            if kind == "float" and not np.isfinite(col.values).all():
                raise bad(f"field {f!r} holds NaN or inf")
        else:
            expected.update({f"c{i}_cats", f"c{i}_cats_off"})
            col.cats = _unpack(arr(f"c{i}_cats", np.uint8), arr(f"c{i}_cats_off", np.int64), bad, f"field {f!r}")
            if len(set(col.cats)) != len(col.cats):
                raise bad(f"field {f!r} repeats a string in its dictionary")
            col.cat_index = {c: j for j, c in enumerate(col.cats)}
            nc = len(col.cats)
            if kind == "str":
                codes = arr(f"c{i}_values", np.int32, n).copy()
                if ((codes < -1) | (codes >= nc)).any() or ((codes >= 0) != col.present).any():
                    raise bad(f"field {f!r} has string codes out of range or disagreeing with its presence mask")
                col.values = codes
            else:
                expected.add(f"c{i}_offsets")
                offs = arr(f"c{i}_offsets", np.int64, n + 1)
                codes = arr(f"c{i}_values", np.int32).copy()
                if offs[0] != 0 or (np.diff(offs) < 0).any() or offs[-1] != len(codes):
                    raise bad(f"field {f!r} has list offsets that are not increasing from 0 to {len(codes)}")
                if len(codes) and ((codes < 0) | (codes >= nc)).any():
                    raise bad(f"field {f!r} has list element codes out of range")
                col.start, col.length = offs[:-1].copy(), np.diff(offs)
                if (col.length[~col.present] != 0).any():
                    raise bad(f"field {f!r} has list elements on rows marked absent")
                col.values = codes
        if kind in _SCALAR_DTYPES and (col.values[~col.present] != 0).any():
            raise bad(f"field {f!r} has values on rows marked absent")
        t.cols[f] = col
    extra = set(arrays) - expected
    if extra:
        raise bad(f"unexpected array {sorted(extra)[0]!r}")
    return t

def _damaged(what) -> StoreError:
    return StoreError(f"payload.npz: {what}; the index payload is damaged, restore or rebuild the index")


_PACKED = "packed"


def _pack_parts(arrays: dict, n: int) -> dict:
    """Keep arrays of n rows; put the others into one (n, w) uint8 array: 16 bytes (two
    little-endian int64: directory length, body length), a JSON directory of the parts (name,
    dtype, length), then their bytes."""
    out, parts, body = {}, [], []
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.ndim == 1 and a.shape[0] == n and (name.endswith("_present") or name.endswith("_values")):
            out[name] = a
            continue
        parts.append({"name": name, "dtype": a.dtype.str, "len": int(a.shape[0])})
        body.append(a.tobytes())
    head = json.dumps(parts).encode("utf-8")
    data = b"".join(body)
    blob = np.frombuffer(len(head).to_bytes(8, "little") + len(data).to_bytes(8, "little") + head + data, dtype=np.uint8)
    w = max(1, -(-len(blob) // n))
    packed = np.zeros(n * w, dtype=np.uint8)
    packed[:len(blob)] = blob
    out[_PACKED] = packed.reshape(n, w)
    return out


def _unpack_parts(arrays: dict, n: int) -> dict:
    packed = arrays.get(_PACKED)
    if not isinstance(packed, np.ndarray) or packed.dtype != np.uint8 or packed.ndim != 2 or packed.shape[0] != n:
        raise _damaged(f"array {_PACKED!r} is missing or not an ({n}, w) uint8 array")
    raw = packed.tobytes()
    if len(raw) < 16:
        raise _damaged(f"array {_PACKED!r} is too short")
    hlen, blen = int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:16], "little")
    if 16 + hlen + blen > len(raw) or raw[16 + hlen + blen:].strip(b"\0"):
        raise _damaged(f"array {_PACKED!r} has inconsistent lengths")
    try:
        parts = json.loads(raw[16:16 + hlen].decode("utf-8"))
        out = {k: v for k, v in arrays.items() if k != _PACKED}
        pos = 16 + hlen
        for p in parts:
            dt = np.dtype(p["dtype"])
            if dt.kind not in "biuf" or not isinstance(p["len"], int) or p["len"] < 0 or p["name"] in out:
                raise ValueError("bad part")
            size = dt.itemsize * p["len"]
            if pos + size > 16 + hlen + blen:
                raise ValueError("part beyond the end")
            out[str(p["name"])] = np.frombuffer(raw[pos:pos + size], dtype=dt).astype(dt.newbyteorder("="))
            pos += size
    except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
        raise _damaged(f"array {_PACKED!r} has a damaged directory ({exc})") from None
    if pos != 16 + hlen + blen:
        raise _damaged(f"array {_PACKED!r} holds bytes its directory does not describe")
    return out


def _pack(strings) -> tuple[np.ndarray, np.ndarray]:
    """Strings as UTF-8 bytes + int64 offsets (exact: NULs and any code point kept)."""
    blobs = [s.encode("utf-8") for s in strings]
    offs = np.zeros(len(blobs) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blobs], out=offs[1:]) if blobs else None
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8).copy()
    return data, offs


def _unpack(data: np.ndarray, offs: np.ndarray, bad, what: str) -> list[str]:
    if len(offs) < 1 or offs[0] != 0 or (np.diff(offs) < 0).any() or offs[-1] != len(data):
        raise bad(f"{what}: string offsets are not increasing from 0 to {len(data)}")
    raw = data.tobytes()
    try:
        return [raw[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise bad(f"{what}: strings are not valid UTF-8") from None


