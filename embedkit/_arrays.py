"""The one validator of vector arrays and the one validator of key lists.

Every public entry point that takes vectors (Embeddings, VectorIndex add/upsert/search, the
feature tables of the encoders, the HTTP service) converts them with :func:`as_vectors`, and
every one that takes a list of keys checks it with :func:`as_keys`, so the same bad input gets
the same one-line :class:`~embedkit.errors.InputError` everywhere.

Key rule (one for the whole package):

* a key is a ``str`` (``numpy.str_`` is converted); anything else is an error that says to
  convert ids with ``str()``;
* a bare ``str``/``bytes`` where a list of keys is expected is an error (``"abc"`` would
  otherwise silently mean the three keys ``"a", "b", "c"`` or one key, depending on the caller).
  Methods that *look up* items (``VectorIndex.remove/get_vectors/search_keys``) still accept one
  key as a plain string: that is a lookup, not a key list;
* the empty string is a valid key (Embeddings, VectorIndex and the store keep it losslessly);
  callers that cannot address it (the HTTP API, whose URLs name keys) pass ``allow_empty=False``;
* keys are unique within one call (``unique=True``);
* a key must be encodable as UTF-8 (no lone surrogates such as ``"\\udc80"``, which
  ``os.fsdecode`` produces for undecodable bytes): every saved form (Embeddings.save, a saved
  index's keys.json, word2vec files, the HTTP API) stores UTF-8, so such a key is refused here,
  once, instead of saving in one path and failing in another. Any other string, including
  NUL characters anywhere, round-trips exactly.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import InputError

__all__ = ["as_vectors", "as_keys"]


def as_vectors(x, *, what: str = "vectors", dim: int | None = None, n: int | None = None,
               allow_1d: bool = False, dim_of: str | None = None) -> np.ndarray:
    """``x`` as a C-contiguous, finite float32 array of shape (rows, dim).

    ``dim``: the required number of columns (``dim_of`` names what holds that dim in the
    message, e.g. "the index"); ``n``: the required number of rows (one per key);
    ``allow_1d``: a 1-D vector is taken as one row. Zero rows are allowed (check ``len`` where
    an empty array is an error). Raises InputError (one line) for non-numeric data, a wrong
    number of dimensions, a column or row count that does not match, or NaN/inf (naming the
    first bad row and column).
    """
    if type(x) is np.ndarray and x.dtype == np.float32:
        arr = x
    else:
        try:
            with np.errstate(over="ignore"):  # values beyond float32 become inf: reported below
                arr = np.asarray(x, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{what} must be a numeric array of shape (n, dim): {exc}") from None
    if arr.ndim == 1 and allow_1d:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        if arr.ndim == 1:
            hint = f". Use {what}.reshape(1, -1) for one row or {what}.reshape(-1, 1) for one column"
        elif arr.ndim > 2:
            hint = f". Flatten each row first, e.g. {what}.reshape(len({what}), -1)"
        else:
            hint = ""
        shape = f"(n, {dim})" if dim is not None else "(n, dim)"
        raise InputError(f"{what} must be 2-D of shape {shape}; got shape {arr.shape}{hint}")
    if dim is not None and arr.shape[1] != dim:
        where = f"but {dim_of} has dim={dim}" if dim_of else f"but dim={dim} is required"
        raise InputError(f"{what} have dimension {arr.shape[1]} {where}")
    if n is not None and arr.shape[0] != n:
        raise InputError(f"{what} has {arr.shape[0]} rows but there are {n} keys; give one row per key")
    if arr.shape[1] < 1:
        raise InputError(f"{what} must have at least one column (dim >= 1); got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        r, c = (int(v[0]) for v in np.nonzero(~finite))
        kind = "NaN" if math.isnan(float(arr[r, c])) else "inf"
        raise InputError(f"{what} row {r}, column {c} is {kind}; every value must be finite (no NaN or inf, "
                         "impute or drop missing values first)")
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def as_keys(keys, *, what: str = "keys", n: int | None = None, unique: bool = True,
            allow_empty: bool = True) -> list[str]:
    """``keys`` as a new list of ``str`` (see the module docstring for the rule).

    ``n``: the required number of keys; ``unique``: reject a key given twice;
    ``allow_empty``: accept ``""``. Raises InputError (one line) naming the first bad key.
    """
    if isinstance(keys, (str, bytes)):
        raise InputError(f"{what} must be a sequence of strings, not a single string; wrap one key in a list")
    try:
        out = list(keys)
    except TypeError:
        raise InputError(f"{what} must be a sequence of strings; got {type(keys).__name__}") from None
    for i, k in enumerate(out):
        if type(k) is not str:
            if isinstance(k, str):  # numpy.str_ and other str subclasses
                out[i] = k = str(k)
            else:
                raise InputError(f"{what} must be strings; key #{i} is {type(k).__name__} {k!r} "
                                 "(convert ids with str())")
        if not k and not allow_empty:
            raise InputError(f"{what} must be non-empty strings; key #{i} is empty")
    try:
        "".join(out).encode("utf-8")  # one pass for the whole list; the loop below names the key
    except UnicodeEncodeError:
        for i, k in enumerate(out):
            try:
                k.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InputError(f"{what}: key #{i} {k!r} holds a lone surrogate {k[exc.start]!r} at position "
                                 f"{exc.start}, which cannot be stored as UTF-8; fix the key (e.g. decode its "
                                 "bytes with errors='replace')") from None
    if n is not None and len(out) != n:
        raise InputError(f"there are {len(out)} {what} but {n} rows; give one key per row")
    if unique and len(set(out)) != len(out):
        first: dict[str, int] = {}
        for i, k in enumerate(out):
            j = first.setdefault(k, i)
            if j != i:
                raise InputError(f"duplicate key {k!r}: it appears twice in {what} (#{j} and #{i}); "
                                 "keys must be unique")
    return out
