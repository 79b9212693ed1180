"""Interactions: a user x item matrix with string ids, read from CSV, arrays, scipy or pandas.

    inter = ek.Interactions.from_csv("ratings.csv", user="user", item="item", value="rating")
    train, test = inter.split(test_fraction=0.2, seed=0)

Duplicate (user, item) pairs are summed (their latest timestamp is kept). Every split keeps
the full user and item vocabularies, so a model trained on ``train`` knows every id in ``test``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .._validation import check_bool, check_float, check_int, check_seed
from ..errors import InputError, MissingKeyError, ParseError

log = logging.getLogger(__name__)

__all__ = ["Interactions"]


def check_values(values: np.ndarray, *, allow_negative: bool, what: str = "values", where=None) -> np.ndarray:
    """The one rule for interaction values (Interactions builders, MF fold-in): finite and,
    unless ``allow_negative``, >= 0. ``where(i)`` names entry ``i`` in the message (e.g. a CSV
    line); otherwise ``what`` names the whole. Returns ``values``."""
    bad = ~np.isfinite(values)
    if bad.any():
        if where is None:
            raise InputError(f"{what} hold NaN or infinite values; drop or fix them")
        raise InputError(f"{where(int(np.argmax(bad)))}: value is NaN or infinite; drop or fix that row")
    if not allow_negative and (values < 0).any():
        row = int(np.argmax(values < 0))
        head = f"{where(row)}: negative value {values[row]:g}" if where else \
            f"{what} hold a negative value ({values[row]:g})"
        raise InputError(f"{head}; interaction strengths must be >= 0 (pass allow_negative=True or use "
                         "feedback='explicit' for signed ratings)")
    return values


class Interactions:
    """User-item interactions: string keys, a value per pair, optional timestamps.

    Build with :meth:`from_csv`, :meth:`from_arrays`, :meth:`from_sparse` or
    :meth:`from_dataframe`. ``values`` default to 1 (implicit feedback); values must be
    finite and, unless ``allow_negative=True`` (e.g. like/dislike ratings), >= 0.

    Attributes: ``user_keys``, ``item_keys`` (list[str]), ``users``/``items`` (int32 codes per
    pair), ``values`` (float32), ``timestamps`` (float64 seconds or None), ``matrix`` (CSR).
    """

    def __init__(self, user_keys, item_keys, users, items, values, timestamps=None):
        # internal: codes are already valid and (user, item) pairs unique and sorted
        self.user_keys: list[str] = list(user_keys)
        self.item_keys: list[str] = list(item_keys)
        self.users = np.asarray(users, dtype=np.int32)
        self.items = np.asarray(items, dtype=np.int32)
        self.values = np.asarray(values, dtype=np.float32)
        self.timestamps = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
        self._user_index: dict[str, int] | None = None
        self._item_index: dict[str, int] | None = None
        self._csr: sp.csr_matrix | None = None

    # ------------------------------------------------------------------ builders
    @classmethod
    def _build(cls, user_ids, item_ids, values, timestamps, *, allow_negative: bool,
               user_keys=None, item_keys=None, where=None) -> "Interactions":
        """Encode string ids, check values, sum duplicates. ``where(row)`` names a bad row."""
        where = where or (lambda row: f"row {row}")
        users, user_keys = _encode(user_ids, user_keys, "user")
        items, item_keys = _encode(item_ids, item_keys, "item")
        n = len(users)
        if values is None:
            vals = np.ones(n, dtype=np.float32)
        else:
            vals = _as_floats(values, where)
            if vals.shape != (n,):
                raise InputError(f"values has {vals.size} entries but there are {n} (user, item) pairs")
            vals = check_values(vals, allow_negative=allow_negative, where=where).astype(np.float32)
        ts = None
        if timestamps is not None:
            try:
                ts = np.asarray(timestamps, dtype=np.float64)
            except (TypeError, ValueError):  # ISO dates, or a bad entry: named by its row
                ts = _timestamps(np.asarray(timestamps, dtype=object).reshape(-1), where)
            if ts.shape != (n,):
                raise InputError(f"timestamps has {ts.size} entries but there are {n} (user, item) pairs")
            bad = ~np.isfinite(ts)
            if bad.any():
                raise InputError(f"{where(int(np.argmax(bad)))}: timestamp is missing or not a number")
        return cls._from_codes(user_keys, item_keys, users, items, vals, ts)

    @classmethod
    def _from_codes(cls, user_keys, item_keys, users, items, values, timestamps) -> "Interactions":
        """Sort pairs by (user, item) and merge duplicates (values summed, latest timestamp)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        pair = users * max(len(item_keys), 1) + items
        order = np.argsort(pair, kind="stable")
        pair = pair[order]
        first = np.ones(len(pair), dtype=bool)
        first[1:] = pair[1:] != pair[:-1]
        starts = np.flatnonzero(first)
        vals = np.add.reduceat(np.asarray(values, dtype=np.float64)[order], starts) if len(pair) else \
            np.zeros(0)
        ts = None
        if timestamps is not None:
            ts = np.maximum.reduceat(np.asarray(timestamps)[order], starts) if len(pair) else np.zeros(0)
        n_dup = len(pair) - len(starts)
        if n_dup:
            log.info("summed %d duplicate (user, item) pairs", n_dup)
        sel = order[starts]
        return cls(user_keys, item_keys, users[sel], items[sel], vals.astype(np.float32), ts)

    @classmethod
    def from_arrays(cls, users: Sequence, items: Sequence, values=None, timestamps=None, *,
                    allow_negative: bool = False) -> "Interactions":
        """From parallel sequences of user ids, item ids (any type, turned into str) and values.

        Values are numbers (or strings of numbers); timestamps are numbers (e.g. Unix seconds) or
        ISO dates. Raises InputError on mismatched lengths, a missing id (None or NaN), a value
        that is not a number, NaN/inf values, or negative values (unless ``allow_negative=True``).
        """
        users = _as_id_array(users, "users")
        items = _as_id_array(items, "items")
        if len(users) != len(items):
            raise InputError(f"users has {len(users)} entries but items has {len(items)}; give one user per item")
        return cls._build(users, items, values, timestamps, allow_negative=check_bool(
            "Interactions", "allow_negative", allow_negative))

    @classmethod
    def from_sparse(cls, matrix, user_keys=None, item_keys=None, *, allow_negative: bool = False) -> "Interactions":
        """From a scipy sparse (or dense numpy) users x items matrix; explicit zeros are dropped.

        ``user_keys``/``item_keys`` default to "0", "1", ... (the row and column numbers).
        """
        if not sp.issparse(matrix):
            arr = np.asarray(matrix)
            if arr.ndim != 2:
                raise InputError(f"matrix must be 2-D (users x items); got shape {arr.shape}")
            matrix = sp.csr_matrix(arr)
        coo = sp.coo_matrix(matrix)
        coo.eliminate_zeros()
        n_users, n_items = coo.shape
        user_keys = [str(i) for i in range(n_users)] if user_keys is None else [str(k) for k in user_keys]
        item_keys = [str(i) for i in range(n_items)] if item_keys is None else [str(k) for k in item_keys]
        if len(user_keys) != n_users or len(item_keys) != n_items:
            raise InputError(f"matrix is {n_users} x {n_items} but {len(user_keys)} user keys and "
                             f"{len(item_keys)} item keys were given")
        for what, keys in (("user", user_keys), ("item", item_keys)):
            if len(set(keys)) != len(keys):
                raise InputError(f"{what}_keys holds duplicates; give one unique key per {what}")
        vals = check_values(coo.data.astype(np.float64), allow_negative=allow_negative, what="matrix entries")
        return cls._from_codes(user_keys, item_keys, coo.row, coo.col, vals, None)

    @classmethod
    def from_dataframe(cls, df, user: str = "user", item: str = "item", value: str | None = None,
                       timestamp: str | None = None, *, allow_negative: bool = False) -> "Interactions":
        """From a pandas DataFrame with user and item columns (and optional value, timestamp)."""
        for label, col in (("user", user), ("item", item), ("value", value), ("timestamp", timestamp)):
            if col is not None and col not in df.columns:
                raise InputError(f"DataFrame has no {label} column {col!r}; columns are {list(df.columns)}")
        for col in (user, item):
            if df[col].isna().any():
                raise InputError(f"DataFrame row {int(np.argmax(df[col].isna().to_numpy()))}: missing id in "
                                 f"column {col!r}")
        users = _as_id_array(df[user].to_numpy(), user)
        items = _as_id_array(df[item].to_numpy(), item)
        values = None
        if value is not None:
            values = _numeric(df[value].to_numpy(), lambda r: f"DataFrame row {r} ({value})")
        ts = None if timestamp is None else _timestamps(df[timestamp].to_numpy(),
                                                        lambda r: f"DataFrame row {r} ({timestamp})")
        return cls._build(users, items, values, ts, allow_negative=allow_negative,
                          where=lambda r: f"DataFrame row {r}")

    @classmethod
    def from_csv(cls, path, user="user", item="item", value=None, timestamp=None, *,
                 delimiter: str | None = None, header: bool | None = None,
                 allow_negative: bool = False) -> "Interactions":
        """Read a delimited file with one interaction per line.

        Columns are named (``user="user_id"``) or given by 0-based position (``user=0``).
        ``header=None`` detects a header: the first line is one when it holds the named columns,
        or, with positions, when its value/timestamp field is not a number. A headerless file
        with the default names reads users from column 0 and items from column 1. The
        delimiter (comma, tab, semicolon, pipe or whitespace) is detected when not given; a given
        one is one character (``"\\t"``, a backslash and t, is read as a tab). A UTF-8 byte-order
        mark is ignored. Timestamps may be numbers (e.g. Unix seconds) or ISO dates.

        Raises ParseError naming the file and line for a short row, a missing id, bytes that are
        not UTF-8, or a value that is not a number, NaN or (unless ``allow_negative``) negative;
        ParseError naming the file for a header without data rows; InputError for a delimiter
        that is not one character.
        """
        from ._csv import read_columns

        path = Path(path)
        cols = {"user": user, "item": item, "value": value, "timestamp": timestamp}
        data, lines = read_columns(path, cols, delimiter, header)

        def where_row(r):
            return f"{path}:{int(lines[r])}"

        try:
            values = None if "value" not in data else _numeric(data["value"], where_row)
            ts = None if "timestamp" not in data else _timestamps(data["timestamp"], where_row)
            return cls._build(data["user"], data["item"], values, ts,
                              allow_negative=allow_negative, where=where_row)
        except InputError as exc:
            m = re.match(r"^(.*):(\d+): (.*)$", str(exc))
            if m and not isinstance(exc, ParseError):
                raise ParseError(m.group(1), int(m.group(2)), m.group(3)) from None
            raise

    # ---------------------------------------------------------------- accessors
    @property
    def n_users(self) -> int:
        return len(self.user_keys)

    @property
    def n_items(self) -> int:
        return len(self.item_keys)

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    def __len__(self) -> int:
        return self.nnz

    def __repr__(self) -> str:
        ts = ", timestamps" if self.timestamps is not None else ""
        return f"Interactions(users={self.n_users}, items={self.n_items}, pairs={self.nnz}{ts})"

    @property
    def user_index(self) -> dict[str, int]:
        if self._user_index is None:
            self._user_index = {k: i for i, k in enumerate(self.user_keys)}
        return self._user_index

    @property
    def item_index(self) -> dict[str, int]:
        if self._item_index is None:
            self._item_index = {k: i for i, k in enumerate(self.item_keys)}
        return self._item_index

    @property
    def matrix(self) -> sp.csr_matrix:
        """users x items CSR matrix (float32) of the values."""
        if self._csr is None:
            m = sp.csr_matrix((self.values, (self.users, self.items)), shape=(self.n_users, self.n_items),
                              dtype=np.float32)
            m.sort_indices()
            self._csr = m
        return self._csr

    def user_code(self, user: str) -> int:
        try:
            return self.user_index[str(user)]
        except KeyError:
            raise MissingKeyError(f"unknown user {user!r} ({self.n_users} users)") from None

    def items_of(self, user: str) -> list[str]:
        """The item keys a user interacted with."""
        m = self.matrix
        u = self.user_code(user)
        return [self.item_keys[i] for i in m.indices[m.indptr[u]:m.indptr[u + 1]]]

    def to_dataframe(self):
        """A pandas DataFrame with columns user, item, value (and timestamp when present)."""
        import pandas as pd

        cols = {"user": np.asarray(self.user_keys, dtype=object)[self.users],
                "item": np.asarray(self.item_keys, dtype=object)[self.items], "value": self.values}
        if self.timestamps is not None:
            cols["timestamp"] = self.timestamps
        return pd.DataFrame(cols)

    def _subset(self, mask: np.ndarray) -> "Interactions":
        ts = None if self.timestamps is None else self.timestamps[mask]
        return Interactions(self.user_keys, self.item_keys, self.users[mask], self.items[mask],
                            self.values[mask], ts)

    # ------------------------------------------------------------------- splits
    def split(self, test_fraction: float = 0.2, seed: int = 0, min_train: int = 1):
        """Per-user random hold-out: about ``test_fraction`` of each user's pairs go to test.

        Users with at most ``min_train`` pairs stay wholly in train. Returns (train, test);
        both keep the full user and item vocabularies.
        """
        frac = check_float("Interactions.split", "test_fraction", test_fraction, 0.0, 1.0, True, True)
        min_train = check_int("Interactions.split", "min_train", min_train, 0)
        rng = np.random.default_rng(check_seed("Interactions.split", seed))
        counts = np.bincount(self.users, minlength=self.n_users)
        n_test = np.floor(counts * frac + rng.random(self.n_users)).astype(np.int64)  # unbiased rounding
        n_test = np.minimum(n_test, np.maximum(counts - min_train, 0))
        return self._split_by_rank(rng.random(self.nnz), n_test)

    def leave_n_out(self, n: int = 1, seed: int = 0, min_train: int = 1, by_time: bool = False):
        """Hold out ``n`` pairs per user (random, or the latest ones with ``by_time=True``).

        Users with fewer than ``n + min_train`` pairs hold out fewer so that ``min_train`` remain.
        """
        n = check_int("Interactions.leave_n_out", "n", n, 1)
        min_train = check_int("Interactions.leave_n_out", "min_train", min_train, 0)
        rng = np.random.default_rng(check_seed("Interactions.leave_n_out", seed))
        counts = np.bincount(self.users, minlength=self.n_users)
        n_test = np.minimum(n, np.maximum(counts - min_train, 0))
        if check_bool("Interactions.leave_n_out", "by_time", by_time):
            self._need_timestamps("leave_n_out(by_time=True)")
            # larger key = held out first: latest timestamp, ties broken at random
            key = self.timestamps + rng.random(self.nnz) * 1e-6 * (1 + np.abs(self.timestamps))
            return self._split_by_rank(key, n_test)
        return self._split_by_rank(rng.random(self.nnz), n_test)

    def split_by_time(self, test_fraction: float | None = 0.2, cutoff=None):
        """Global temporal split: pairs at or after ``cutoff`` (or the latest ``test_fraction``
        of all pairs) go to test. Needs timestamps."""
        self._need_timestamps("split_by_time")
        if cutoff is None:
            frac = check_float("Interactions.split_by_time", "test_fraction", test_fraction, 0.0, 1.0, True, True)
            cutoff = float(np.quantile(self.timestamps, 1.0 - frac, method="higher")) if self.nnz else 0.0
        else:
            cutoff = _timestamps(np.asarray([cutoff]), lambda r: "cutoff")[0]
        test = self.timestamps >= cutoff
        return self._subset(~test), self._subset(test)

    def _split_by_rank(self, key: np.ndarray, n_test: np.ndarray):
        """Send each user's ``n_test[u]`` pairs with the largest ``key`` to test."""
        order = np.lexsort((-key, self.users))  # by user, then key descending
        starts = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.users, minlength=self.n_users), out=starts[1:])
        rank = np.empty(self.nnz, dtype=np.int64)
        rank[order] = np.arange(self.nnz) - starts[self.users[order]]
        test = rank < n_test[self.users]
        return self._subset(~test), self._subset(test)

    def _need_timestamps(self, what: str):
        if self.timestamps is None:
            raise InputError(f"{what} needs timestamps; load them with from_csv(..., timestamp='COLUMN')")


# ---------------------------------------------------------------------- helpers
def _as_id_array(ids, what: str) -> np.ndarray:
    if isinstance(ids, (str, bytes)):
        raise InputError(f"{what} must be a sequence of ids, not a single string")
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InputError(f"{what} must be 1-D; got shape {arr.shape}")
    if arr.dtype.kind == "O" or (arr.dtype.kind == "U" and not isinstance(ids, np.ndarray)):
        # None, NaN, NaT, pd.NA would turn into ids such as "None" and "nan" (numpy makes a float NaN
        # among strings the string "nan": look at the sequence as given)
        import pandas as pd

        given = arr if arr.dtype.kind == "O" else np.asarray(ids, dtype=object)
        na = np.asarray(pd.isna(given), dtype=bool)
        if na.any():
            _missing_id(what, given, na)
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            _missing_id(what, arr, ~np.isfinite(arr))
        if (arr == np.round(arr)).all():
            arr = arr.astype(np.int64)
    return arr.astype(str)


def _missing_id(what: str, arr: np.ndarray, bad: np.ndarray):
    r, n = int(np.argmax(bad)), int(bad.sum())
    v = arr[r].item() if isinstance(arr[r], np.generic) else arr[r]
    shown = "NaN" if isinstance(v, float) and v != v else repr(v)
    more = f" ({n} rows in all)" if n > 1 else ""
    raise InputError(f"{what} row {r} is {shown}, not an id{more}; every row needs an id: fill it in or "
                     "drop that row")


def _encode(ids, keys, what):
    ids = np.asarray(ids).astype(str)
    if keys is None:
        keys, codes = np.unique(ids, return_inverse=True)
        # keep first-seen order so keys read naturally; unique() sorts, remap
        first = np.full(len(keys), len(ids), dtype=np.int64)
        np.minimum.at(first, codes, np.arange(len(ids)))
        order = np.argsort(first, kind="stable")
        remap = np.empty_like(order)
        remap[order] = np.arange(len(order))
        return remap[codes].astype(np.int64), [str(k) for k in keys[order]]
    index = {k: i for i, k in enumerate(keys)}
    try:
        return np.fromiter((index[x] for x in ids), dtype=np.int64, count=len(ids)), list(keys)
    except KeyError as exc:
        raise MissingKeyError(f"unknown {what} {exc.args[0]!r}") from None


def _as_floats(values, where) -> np.ndarray:
    """``values`` as float64; InputError naming the first row that is not a number."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    flat = np.asarray(values, dtype=object)
    if flat.ndim != 1:
        raise InputError(f"values must be one number per (user, item) pair; got shape {flat.shape}")
    for r, v in enumerate(flat.tolist()):
        try:
            float(v)
        except (TypeError, ValueError):
            raise InputError(f"{where(r)}: value {v!r} is not a number; give numbers (int, float, or strings "
                             "such as '5' or '2.5'), or leave values out to count each pair once") from None
    raise InputError("values must be numbers (int, float, or strings such as '5')")


def _numeric(col, where) -> np.ndarray:
    import pandas as pd

    vals = pd.to_numeric(pd.Series(col), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(vals)
    if bad.any():
        r = int(np.argmax(bad))
        raw = str(col[r])
        problem = {"": "value is missing", "nan": "value is NaN"}.get(raw.strip().lower(),
                                                                      f"value {raw!r} is not a number")
        raise InputError(f"{where(r)}: {problem}; fix or drop that row")
    return vals


def _timestamps(col, where) -> np.ndarray:
    import pandas as pd

    s = pd.Series(col)
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    if not np.isnan(num).any():
        return num
    if not np.isnan(num).all():
        r = int(np.argmax(np.isnan(num)))
        raise InputError(f"{where(r)}: timestamp {str(col[r])!r} is not a number like the others; "
                         "use one format (Unix seconds or ISO dates) for every row")
    parsed = pd.to_datetime(s.astype(str), errors="coerce", utc=True, format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        r = int(np.argmax(bad))
        raise InputError(f"{where(r)}: timestamp {str(col[r])!r} is neither a number nor an ISO date")
    return (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy()
