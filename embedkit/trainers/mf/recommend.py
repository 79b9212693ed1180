"""Recommendations from a matrix-factorisation index in the store (the service's MF adapter).

This module is the one place in the service that knows how :mod:`embedkit.trainers.mf` lays
a model out in the store (documented in ``embedkit/trainers/_mf_store.py``):

* the index (metric "ip") holds one vector per item: item factors, plus the item bias as a
  last column when the model has biases; the query is the user factors, plus a 1;
* extra ``users``: ``keys``, ``vectors`` and, for explicit feedback, ``bias``;
* extra ``items``: ``keys`` (rows that ``seen`` refers to);
* extra ``seen``: CSR ``indptr`` / ``indices`` / ``values``: each user's training interactions;
* meta ``mf``: ``global_mean`` and ``query`` ("user factors" or "user factors + [1]").

Scores are the model's own (``MatrixFactorization.recommend`` gives the same list; a test checks
it) but the search runs on the index the service holds, so items upserted or removed through the
service count at once. The service depends only on :func:`load_recommender`.
"""

from __future__ import annotations

import bisect

import numpy as np

from ...errors import MissingKeyError, StoreError

MF_TRAINER = "MatrixFactorization"


class Recommender:
    """User side of one MF index: vectors, biases, histories; ranks the items of a VectorIndex."""

    def __init__(self, user_keys, user_vectors, *, user_bias=None, global_mean: float = 0.0,
                 append_one: bool = False, history=None):
        self.user_keys = [str(k) for k in user_keys]
        self.user_vectors = np.asarray(user_vectors, dtype=np.float32)
        if self.user_vectors.ndim != 2 or self.user_vectors.shape[0] != len(self.user_keys):
            raise StoreError(f"user vectors of shape {self.user_vectors.shape} do not match "
                             f"{len(self.user_keys)} user keys; retrain the MF index")
        self.user_bias = None if user_bias is None else np.asarray(user_bias, dtype=np.float64)
        self.global_mean = float(global_mean)
        self.append_one = bool(append_one)
        self._row = {k: i for i, k in enumerate(self.user_keys)}
        self._sorted = sorted(self.user_keys, key=lambda s: (s.lower(), s))
        self._sorted_lower = [s.lower() for s in self._sorted]
        self._history = history or (lambda row: [])

    def __len__(self) -> int:
        return len(self.user_keys)

    def __contains__(self, user) -> bool:
        return user in self._row

    def complete(self, prefix: str, limit: int) -> list[str]:
        """Users whose key starts with ``prefix`` (case-insensitive), in sorted order."""
        p = prefix.lower()
        i = bisect.bisect_left(self._sorted_lower, p)
        out = []
        while i < len(self._sorted) and len(out) < limit and self._sorted_lower[i].startswith(p):
            out.append(self._sorted[i])
            i += 1
        return out

    def _row_of(self, user: str) -> int:
        row = self._row.get(user)
        if row is None:
            raise MissingKeyError(f"user {user!r} is not in this index ({len(self)} users)")
        return row

    def history(self, user: str) -> list[tuple[str, float]]:
        """The user's training interactions as (item, value), strongest first."""
        return self._history(self._row_of(user))

    def query(self, user: str) -> np.ndarray:
        u = self.user_vectors[self._row_of(user)]
        return np.append(u, np.float32(1.0)) if self.append_one else u

    def recommend(self, index, user: str, k: int, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top-``k`` items of ``index`` for ``user``, best first, as (item, score)."""
        q = self.query(user)
        if q.shape[0] != index.dim:
            raise StoreError(f"user queries have dim {q.shape[0]} but the index has dim={index.dim}; "
                             "retrain the MF index")
        seen = {key for key, _ in self.history(user)} if exclude_seen else set()
        fetch = min(len(index), k + len(seen))
        if fetch <= 0:
            return []
        res = index.search(q, k=fetch)
        row = self._row_of(user)
        shift = self.global_mean + (float(self.user_bias[row]) if self.user_bias is not None else 0.0)
        out = []
        for key, score in zip(res.keys[0], res.scores[0]):
            if key in seen:
                continue
            out.append((key, float(score) + shift))
            if len(out) == k:
                break
        return out


def _history_reader(seen: dict, item_keys: list[str], n_users: int):
    indptr = np.asarray(seen["indptr"], dtype=np.int64)
    indices = np.asarray(seen["indices"], dtype=np.int64)
    values = np.asarray(seen.get("values", np.ones(len(indices))), dtype=np.float64)
    if len(indptr) != n_users + 1 or (len(indices) and indices.max() >= len(item_keys)):
        raise StoreError("the 'seen' extra does not match the users and items of this index; retrain it")

    def history(row: int) -> list[tuple[str, float]]:
        lo, hi = indptr[row], indptr[row + 1]
        order = np.argsort(-values[lo:hi], kind="stable")
        return [(item_keys[indices[lo + i]], float(values[lo + i])) for i in order]

    return history


def load_recommender(store, name: str, manifest: dict) -> Recommender | None:
    """The Recommender of index ``name``, or None when it was not written by MatrixFactorization."""
    meta = manifest.get("meta") or {}
    extras = manifest.get("extras") or []
    if meta.get("trainer") != MF_TRAINER or "users" not in extras:
        return None
    mf = meta.get("mf") or {}
    users = store.load_extra(name, "users")
    if "keys" not in users or "vectors" not in users:
        raise StoreError(f"index {name!r}: the 'users' extra needs 'keys' and 'vectors'; retrain the MF index")
    user_keys = [str(k) for k in users["keys"].tolist()]
    history = None
    if "seen" in extras and "items" in extras:
        item_keys = [str(k) for k in store.load_extra(name, "items")["keys"].tolist()]
        history = _history_reader(store.load_extra(name, "seen"), item_keys, len(user_keys))
    return Recommender(user_keys, users["vectors"], user_bias=users.get("bias"),
                       global_mean=mf.get("global_mean", 0.0), append_one=mf.get("query") == "user factors + [1]",
                       history=history)
