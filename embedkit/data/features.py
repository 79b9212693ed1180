"""Feature tables for the encoders: arrays, pandas frames and .npy / .npz / CSV files.

Everything lands as a finite float32 matrix (n_rows, n_features) with optional labels and row
keys. Bad input (NaN, inf, a wrong shape, a label count that does not match, a non-numeric CSV
field) is reported in one line that names the file and line where there is one.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._arrays import as_vectors
from .._files import not_numpy, numpy_kind, utf8_error
from ..errors import InputError, ParseError
from ._csv import _check_lines, _is_number

__all__ = ["FeatureTable", "as_matrix", "as_labels", "as_pairs", "row_keys", "load_features", "load_labels"]


@dataclass
class FeatureTable:
    """A loaded table: ``X`` (n, d) float32, ``labels`` (n,) or None, ``keys`` (n str), ``columns``."""

    X: np.ndarray
    labels: np.ndarray | None = None
    keys: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)


def as_matrix(X, what: str = "X", n_features: int | None = None) -> np.ndarray:
    """Return ``X`` (numpy array, pandas DataFrame, nested lists) as a finite 2-D float32 array.

    Raises InputError for a non-numeric column, a shape that is not (n_rows, n_features) with
    n_rows >= 1, a feature count other than ``n_features``, or NaN/inf (naming row and column).
    """
    if hasattr(X, "select_dtypes") and hasattr(X, "columns"):  # pandas DataFrame, without importing pandas
        numeric = set(X.select_dtypes(include=["number", "bool"]).columns)
        bad = [c for c in X.columns if c not in numeric]
        if bad:
            raise InputError(f"{what} column {bad[0]!r} is not numeric; drop it or encode it as numbers first")
        X = X.to_numpy()
    elif hasattr(X, "to_numpy") and getattr(X, "ndim", 2) == 1:  # pandas Series
        X = X.to_numpy()
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # a torch tensor
        X = X.detach().cpu().numpy()
    arr = as_vectors(X, what=what)
    if arr.shape[0] < 1:
        raise InputError(f"{what} is empty (shape {arr.shape}); give at least one row and one feature")
    if n_features is not None and arr.shape[1] != n_features:
        raise InputError(f"{what} has {arr.shape[1]} features but the model was fitted on {n_features}; "
                         "give rows with the same columns as in fit()")
    return arr


def as_labels(y, n_rows: int, what: str = "y") -> np.ndarray:
    """Return class labels ``y`` as a 1-D numpy array of length ``n_rows``.

    Raises InputError for a count that does not match, a 2-D array, or missing (NaN/None) labels.
    """
    if hasattr(y, "to_numpy"):
        y = y.to_numpy()
    arr = np.asarray(y)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"{what} must be 1-D with one label per row; got shape {arr.shape}")
    if arr.shape[0] != n_rows:
        raise InputError(f"{what} has {arr.shape[0]} labels but X has {n_rows} rows; give one label per row")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{what}[{int(np.nonzero(~np.isfinite(arr))[0][0])}] is NaN or inf; every row needs a label")
    if arr.dtype.kind == "O":
        for i, v in enumerate(arr):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                raise InputError(f"{what}[{i}] is missing; every row needs a label")
        arr = arr.astype(str)
    return arr


def label_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): the distinct labels and each row's class number 0..n_classes-1."""
    classes, codes = np.unique(labels, return_inverse=True)
    return classes, codes.astype(np.int64).reshape(-1)


def as_pairs(pairs, n_rows: int, what: str = "pairs") -> np.ndarray:
    """Return explicit ``(i, j, similar)`` pairs as an int64 array (m, 3) with similar in {0, 1}.

    Raises InputError for a wrong shape, row numbers outside [0, n_rows), or similar not 0/1.
    """
    try:
        arr = np.asarray(pairs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be numeric rows (i, j, similar): {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise InputError(f"{what} must have shape (m, 3) with rows (i, j, similar) and m >= 1; got shape {arr.shape}")
    if not np.isfinite(arr).all() or (arr != np.round(arr)).any():
        raise InputError(f"{what} must hold whole numbers (row indices and 0/1); found NaN, inf or a fraction")
    out = arr.astype(np.int64)
    bad = np.nonzero((out[:, :2] < 0).any(axis=1) | (out[:, :2] >= n_rows).any(axis=1))[0]
    if len(bad):
        raise InputError(f"{what} row {int(bad[0])} names row {out[bad[0], :2].tolist()} but X has {n_rows} rows "
                         f"(valid indices 0..{n_rows - 1})")
    bad = np.nonzero((out[:, 2] != 0) & (out[:, 2] != 1))[0]
    if len(bad):
        raise InputError(f"{what} row {int(bad[0])}: similar must be 1 (similar) or 0 (dissimilar); got {out[bad[0], 2]}")
    return out


def row_keys(keys, n_rows: int, X=None) -> list[str]:
    """Keys for the rows: ``keys`` as strings, else a pandas index, else "0".."n-1"."""
    if keys is None:
        index = getattr(X, "index", None)
        if index is not None and hasattr(X, "columns") and not _is_default_range(index, n_rows):
            keys = index
        else:
            return [str(i) for i in range(n_rows)]
    if isinstance(keys, (str, bytes)):
        raise InputError("keys must be a sequence with one key per row, not a single string")
    out = [str(k) for k in keys]
    if len(out) != n_rows:
        raise InputError(f"keys has {len(out)} entries but X has {n_rows} rows; give one key per row")
    return out


def _is_default_range(index, n: int) -> bool:
    try:
        return list(index[:3]) == list(range(min(3, n))) and index.is_monotonic_increasing and index[-1] == n - 1
    except Exception:  # any unusual index: treat as meaningful keys
        return False


# --------------------------------------------------------------------------- files
def load_features(path, label_column=None, key_column=None) -> FeatureTable:
    """Read a feature table from ``.npy``, ``.npz`` or CSV (anything else is read as CSV).

    - ``.npy``: one 2-D numeric array.
    - ``.npz``: array ``X`` (or ``features``, or the only array), optional ``y``/``labels`` and ``keys``.
    - CSV: comma-separated; a header row when the first row is not all numbers. ``label_column``
      and ``key_column`` (header name or 0-based position) are taken out of the features.

    Raises InputError / ParseError (``path:line: problem``) on unreadable or non-finite input,
    and on a CSV line longer than ``embedkit._io.MAX_LINE_BYTES`` (64 MiB), found in one
    bounded-memory pass before parsing (so ``/dev/zero`` or a 1 GB single line is refused).
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, expected a .npy, .npz or CSV file")
    suffix = p.suffix.lower()
    if suffix in (".npy", ".npz"):
        if label_column is not None or key_column is not None:
            raise InputError(f"{path}: --label-column/--key-column apply to CSV files; "
                             "put labels in the .npz as 'y' and keys as 'keys', or pass --labels FILE")
        return _load_numpy(p, suffix)
    return _load_csv(p, label_column, key_column)


_NPY_FIX = {"npy": "save the feature rows with np.save(path, rows), or give an .npz or a CSV file",
            "npz": "save the feature rows with np.savez(path, X=rows), or give a .npy or a CSV file"}


def _load_numpy(p: Path, suffix: str) -> FeatureTable:
    want = suffix[1:]
    kind = numpy_kind(p)
    if kind not in (want, "unknown"):
        fix = f"rename it to .{kind}" if kind in ("npy", "npz") else _NPY_FIX[want]
        if kind == "text":
            fix += "; if it is CSV text, name it .csv"
        raise not_numpy(p, want, kind, fix)
    try:
        data = np.load(p, allow_pickle=False)
        labels = keys = None
        if suffix == ".npy":
            X, where = data, "holds"  # np.load gives the array itself
        else:
            with data:
                feat, X, labels, keys = _npz_arrays(p, data)
            where = f"{feat!r} is"
    except ValueError as exc:
        if isinstance(exc, InputError):
            raise
        raise ParseError(p, None, f"cannot read without pickle ({exc}); save plain numeric arrays") from None
    except Exception as exc:  # damaged file
        raise ParseError(p, None, f"not a readable {suffix} file ({type(exc).__name__}: {exc})") from None
    if X.ndim != 2:
        raise ParseError(p, None, f"{where} a {X.ndim}-D array of shape {X.shape}; a feature file holds a 2-D "
                                  "array, one row per example and one column per feature (shape (n_rows, n_features))")
    X = as_matrix(X, what=str(p))  # messages start with the file name
    if labels is not None:
        labels = as_labels(labels, X.shape[0], what=f"{p} labels")
    return FeatureTable(X, labels, row_keys(keys, X.shape[0]), [str(i) for i in range(X.shape[1])])


def _npz_arrays(p: Path, data):
    """(name, X, labels or None, keys or None) of an open .npz: X is 'X', 'features' or a lone 2-D array."""
    names = list(data.files)
    feat = next((n for n in ("X", "features") if n in names), None)
    if feat is None:
        X = data[names[0]] if len(names) == 1 else None
        if X is None or X.ndim != 2:
            shapes = ", ".join(f"{n} {data[n].shape}" for n in names[:8]) or "none"
            raise ParseError(p, None, f"has no 'X' array (arrays: {shapes}); save the feature rows, a 2-D array "
                                      "(n_rows, n_features), as X=...: np.savez(path, X=rows) (optional: y=labels, "
                                      "keys=keys; 'features' is read as X too)")
        feat = names[0]
    else:
        X = data[feat]
    lab = next((n for n in ("y", "labels") if n in names), None)
    return feat, X, data[lab] if lab else None, data["keys"] if "keys" in names else None


_CSV_BINARY_FIX = "give comma-separated text, or name a NumPy file .npy / .npz"


def _column_position(spec, header: list[str] | None, width: int, p: Path, what: str) -> int:
    if isinstance(spec, int) or (isinstance(spec, str) and spec.lstrip("-").isdigit() and
                                 (header is None or spec not in header)):
        pos = int(spec)
        if not -width <= pos < width:
            raise InputError(f"{p}: {what} {spec} is out of range; the file has {width} columns")
        return pos % width
    if header is None:
        raise InputError(f"{p}: {what} {spec!r} given by name but the file has no header row; give its 0-based position")
    if spec not in header:
        raise InputError(f"{p}: {what} {spec!r} is not in the header; columns are {header[:12]}")
    return header.index(spec)


def _load_csv(p: Path, label_column, key_column) -> FeatureTable:
    _check_lines(p)  # a line over the limit is refused before csv would hold it
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            rows = [(i + 1, r) for i, r in enumerate(csv.reader(fh)) if r and any(x.strip() for x in r)]
    except UnicodeDecodeError:
        raise utf8_error(p, _CSV_BINARY_FIX) from None
    except csv.Error as exc:
        raise ParseError(p, None, f"not valid CSV ({exc})") from None
    if not rows:
        raise ParseError(p, None, "the file is empty; expected comma-separated feature rows")
    first = [x.strip() for x in rows[0][1]]
    header = first if not all(_is_number(x) for x in first) else None
    if header is not None:
        rows = rows[1:]
        if not rows:
            raise ParseError(p, None, "the file has a header but no data rows")
    width = len(header) if header is not None else len(rows[0][1])
    label_pos = None if label_column is None else _column_position(label_column, header, width, p, "label column")
    key_pos = None if key_column is None else _column_position(key_column, header, width, p, "key column")
    if label_pos is not None and label_pos == key_pos:
        raise InputError(f"{p}: the label column and the key column are the same column")
    feat_pos = [c for c in range(width) if c not in (label_pos, key_pos)]
    if not feat_pos:
        raise InputError(f"{p}: no feature columns left after taking out the label/key columns")
    X = np.empty((len(rows), len(feat_pos)), dtype=np.float32)
    labels, keys = [], []
    names = header or [str(c) for c in range(width)]
    for r, (line, fields) in enumerate(rows):
        if len(fields) != width:
            raise ParseError(p, line, f"expected {width} comma-separated fields, got {len(fields)}")
        for j, c in enumerate(feat_pos):
            text = fields[c].strip()
            try:
                value = float(text)
            except ValueError:
                what = "is empty (missing value)" if not text else f"{text[:30]!r} is not a number"
                raise ParseError(p, line, f"column {names[c]!r}: {what}") from None
            if not math.isfinite(value):
                raise ParseError(p, line, f"column {names[c]!r}: {text!r} is not finite; impute or drop the row")
            X[r, j] = value
        if label_pos is not None:
            lab = fields[label_pos].strip()
            if not lab:
                raise ParseError(p, line, f"label column {names[label_pos]!r} is empty; every row needs a label")
            labels.append(lab)
        if key_pos is not None:
            keys.append(fields[key_pos].strip())
    lab_arr = np.array(labels, dtype=str) if label_pos is not None else None
    key_list = keys if key_pos is not None else [str(i) for i in range(len(rows))]
    return FeatureTable(X, lab_arr, key_list, [names[c] for c in feat_pos])


def load_labels(path, n_rows: int | None = None) -> np.ndarray:
    """Read labels: one per line from a text file (blank lines are errors), or a 1-D ``.npy``.

    Raises ParseError naming the line of a blank label or of a line longer than
    ``embedkit._io.MAX_LINE_BYTES``, InputError when the count differs from ``n_rows``.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.suffix.lower() == ".npy":
        kind = numpy_kind(p)
        if kind not in ("npy", "unknown"):
            raise not_numpy(p, "npy", kind, "save the labels with np.save(path, labels), or give a text file "
                                            "with one label per line (not named .npy)")
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise ParseError(p, None, f"not a readable .npy file without pickle ({type(exc).__name__})") from None
        labels = as_labels(arr, arr.shape[0] if arr.ndim else -1, what=str(p))
    else:
        _check_lines(p)
        try:
            lines = p.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError:
            raise utf8_error(p, "give a text file with one label per line, or a .npy array") from None
        while lines and not lines[-1].strip():
            lines.pop()
        for i, line in enumerate(lines):
            if not line.strip():
                raise ParseError(p, i + 1, "blank label; give one label per line, one line per feature row")
        labels = np.array([line.strip() for line in lines], dtype=str)
    if n_rows is not None and labels.shape[0] != n_rows:
        raise InputError(f"{path} has {labels.shape[0]} labels but the feature file has {n_rows} rows; "
                         "give one label per row")
    return labels
