"""Answers of a fitted MatrixFactorization that need no index: ``predict`` for (user, item)
pairs (unknown users and items answered from the baseline) and ``fold_in`` for a new or changed
user. A mixin of :class:`~embedkit.trainers.mf.model.MatrixFactorization`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ...errors import InputError
from .fit import fold_in_user


class PredictFoldIn:
    """``predict``, ``rating_range_`` and ``fold_in`` over the model's factors and biases."""

    @property
    def rating_range_(self) -> tuple[float, float] | None:
        """(lowest, highest) rating of the training data for explicit feedback (what ``predict``
        clips to), else None."""
        self._check_fitted()
        return self.__dict__.get("_rating_range")

    def predict(self, users, items, unknown: str = "baseline", clip: bool = True) -> np.ndarray:
        """Scores of (user, item) pairs: predicted ratings for explicit feedback, else x_u . y_i
        (+ item bias for BPR). ``users`` and ``items`` are equal-length sequences (or one str).

        ``unknown="baseline"`` (default, as Surprise does): a pair whose user or item was never
        seen in training is answered from the baseline, the global mean plus the biases that are
        known (explicit feedback; the item bias alone, or 0, for implicit feedback), so a
        cross-validation over real ratings runs through every fold. ``unknown="error"`` raises
        MissingKeyError for them instead.

        ``clip`` (default True, as Surprise's ``predict``): explicit-feedback predictions are
        clipped to the range of the training ratings (``rating_range_``), which lowers RMSE."""
        if unknown not in ("baseline", "error"):
            raise InputError(f"The 'unknown' parameter of predict must be 'baseline' or 'error'. Got {unknown!r} instead.")
        self._check_fitted()
        users, items = as_pairs(users, items)
        if unknown == "error":
            u, i = self._user_codes(users), self._item_codes(items)
        else:
            u = np.array([self._user_index.get(x, -1) if isinstance(x, str) else -1 for x in users], dtype=np.int64)
            i = np.array([self._item_index.get(x, -1) if isinstance(x, str) else -1 for x in items], dtype=np.int64)
        ku, ki = u >= 0, i >= 0
        both = ku & ki
        score = np.zeros(len(u), dtype=np.float64)
        score[both] = np.einsum("nd,nd->n", self._user_factors[u[both]], self._item_factors[i[both]])
        if self._item_bias is not None:
            score[ki] += self._item_bias[i[ki]]
        if self._user_bias is not None:
            score[ku] += self._user_bias[u[ku]]
            score += self.global_mean_
        if not isinstance(clip, (bool, np.bool_)):
            raise InputError(f"The 'clip' parameter of predict must be True or False. Got {clip!r} instead.")
        if clip and self.rating_range_ is not None:
            score = np.clip(score, *self.rating_range_)
        return score.astype(np.float32)

    # --------------------------------------------------------------- fold-in
    def fold_in(self, user: str, items, values=None) -> np.ndarray:
        """Compute (or recompute) a user's vector from their items with the item factors fixed.

        A new user is added; a known user is replaced (their seen items become ``items``).
        ``values`` are counts (implicit) or ratings (explicit; required). Returns the vector.
        Implicit and explicit ALS solve the user's least-squares problem exactly, which is the
        user step of one more ALS epoch; BPR minimises the user's BPR loss by Newton's method.
        """
        self._check_fitted()
        if not isinstance(user, str) or not user:
            raise InputError(f"fold_in() needs a non-empty string user id; got {user!r}")
        from ._topk import as_key_list

        items = as_key_list(items, "items", "item")
        if not items:
            raise InputError(f"fold_in({user!r}, []) got no items, and an empty item list cannot place a user; give "
                             "at least one item the user interacted with (nothing was changed)")
        codes = self._item_codes(items)
        vals = _fold_in_values(self.params_["feedback"], values, len(codes))
        if len(np.unique(codes)) != len(codes):  # duplicates summed, as in Interactions
            uniq, inv = np.unique(codes, return_inverse=True)
            vals = np.bincount(inv, weights=vals).astype(np.float64)
            codes = uniq
        vec, bias = fold_in_user(self.params_, self._fold_state(), codes, vals)
        u = self._user_index.get(user)
        if u is None:
            u = len(self._user_keys)
            self._user_keys.append(user)
            self._user_index[user] = u
            self._user_factors = np.vstack([self._user_factors, vec[None, :]])
            if self._user_bias is not None:
                self._user_bias = np.append(self._user_bias, np.float32(bias))
        else:
            self._user_factors[u] = vec
            if self._user_bias is not None:
                self._user_bias[u] = bias
        order = np.argsort(codes, kind="stable")
        self._seen_changed[u] = (codes[order], vals[order].astype(np.float32))
        self._user_emb = None
        return vec.copy()

    def _fold_state(self) -> dict:
        if getattr(self, "_gram", None) is None or self._gram[0] is not self._item_factors:
            self._gram = (self._item_factors, self._item_factors.T.astype(np.float64) @ self._item_factors)
        return {"item_factors": self._item_factors, "item_bias": self._item_bias, "gram": self._gram[1],
                "global_mean": self.global_mean_}


def as_pairs(users, items) -> tuple[list, list]:
    """The (user, item) pairs of ``predict``: equal-length lists of keys, a str standing for a list of
    one, one user repeated for many items; InputError (one line) for anything else (None, a number, a dict)."""
    if isinstance(users, str):
        users = [users]
    if isinstance(items, str):
        items = [items]
    for what, x in (("users", users), ("items", items)):
        if not isinstance(x, Iterable) or isinstance(x, Mapping):
            raise InputError(f"predict() needs users and items as equal-length lists of keys (or one str each); "
                             f"{what} is {type(x).__name__}")
    users, items = list(users), list(items)
    if len(users) == 1 and len(items) > 1:
        users = users * len(items)
    if len(users) != len(items):
        raise InputError(f"predict() got {len(users)} users and {len(items)} items; give one user per item")
    return users, items


def _fold_in_values(feedback: str, values, n: int) -> np.ndarray:
    from ...data.interactions import check_values

    if values is None:
        if feedback == "explicit":
            raise InputError("fold_in() for explicit feedback needs the user's ratings: values=[...]")
        return np.ones(n, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(vals) != n:
        raise InputError(f"fold_in() got {n} items but {len(vals)} values; give one value per item")
    return check_values(vals, allow_negative=feedback != "implicit", what="fold_in() values")
