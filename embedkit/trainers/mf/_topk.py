"""Shared pieces of the recommenders beside MatrixFactorization (baselines.py, hybrid.py):
the allowed-item mask of a filter and the exact top-k of dense score rows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..._knn import unit_rows
from ..._validation import check_int
from ...errors import InputError


def allowed_mask(filter, keys, payload=None) -> np.ndarray | None:
    """Bool mask over ``keys`` of the items ``filter`` allows (None: every item).

    ``filter`` is the index filter language (``{"$key": {"$in": [...]}}`` for allow-lists,
    ``$nin`` for deny-lists, payload fields such as ``{"genre": "drama"}``); ``payload`` one
    dict per key (or None). Errors are one-line InputErrors from :mod:`embedkit.index._filter`."""
    if filter is None:
        return None
    from ...index._filter import filter_mask

    return np.asarray(filter_mask(filter, keys, payload), dtype=bool)


def top_k(scores: np.ndarray, keys, k: int, exclude: list, allowed: np.ndarray | None,
          shift=None) -> list[list[tuple[str, float]]]:
    """Exact top-``k`` (key, score) per row of ``scores`` (rows x items, float), best first,
    leaving out the item codes in ``exclude[row]`` and items not in ``allowed``; ties by item order."""
    k = check_int("recommend", "k", k, 1)
    scores = np.array(scores, dtype=np.float64, copy=True)
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    out = []
    for row in range(len(scores)):
        s = scores[row]
        ex = exclude[row]
        if len(ex):
            s[np.asarray(ex, dtype=np.int64)] = -np.inf
        n_ok = int(np.isfinite(s).sum())
        kk = min(k, n_ok)
        if kk == 0:
            out.append([])
            continue
        if kk < len(s):  # every item tied with the k-th, so ties go by item order whatever k is
            kth = np.partition(-s, kk - 1)[kk - 1]
            part = np.flatnonzero(-s <= kth)
        else:
            part = np.arange(len(s))
        part = part[np.isfinite(s[part])]
        order = part[np.lexsort((part, -s[part]))]
        add = 0.0 if shift is None else float(shift[row])
        out.append([(keys[int(i)], float(s[i] + add)) for i in order[:kk]])
    return out


def similar_rows(vecs: np.ndarray, i: int, keys, k: int, allowed) -> list[tuple[str, float]]:
    """The ``k`` rows of ``vecs`` closest to row ``i`` by cosine (row ``i`` itself excluded),
    among the ``allowed`` ones (a bool mask or None), as (key, score) pairs: what every
    recommender's ``similar_items`` answers with a filter."""
    unit = unit_rows(vecs)
    return top_k(unit[i:i + 1] @ unit.T, keys, k, [[i]], allowed)[0]


def as_key_list(keys, what: str, noun: str, hint: str = "") -> list:
    """``keys`` (a list of user or item keys) as a list; a single string or a non-iterable is
    refused in one line (a string would otherwise be read one character per key)."""
    if isinstance(keys, (str, bytes)):
        raise InputError(f"{what} must be a list of {noun} keys; got the string {keys!r} "
                         f"(wrap one {noun} in a list{hint})")
    if not isinstance(keys, Iterable) or isinstance(keys, Mapping):
        raise InputError(f"{what} must be a list of {noun} keys; got {type(keys).__name__}")
    return list(keys)


def as_user_list(users) -> list:
    """The users of ``recommend_batch``: a list (one str is refused: use ``recommend``)."""
    return as_key_list(users, "users", "user", f", or call recommend({users!r})" if isinstance(users, str) else "")

