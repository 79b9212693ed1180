"""Ranking metrics for recommenders on held-out interactions, and RMSE for ratings.

Conventions (stated because papers and libraries differ):
- A test user counts when they have at least one held-out item and the model knows them.
  Items they saw in training are excluded from their recommendations (exclude_seen=True).
- precision@k = hits / k.
- recall@k = hits / min(k, n_test): the denominator is capped at k (as implicit's
  ``ranking_metrics_at_k`` does), so a perfect top-k scores 1 even when n_test > k.
- ndcg@k: binary gains, DCG = sum 1/log2(rank + 1), divided by the ideal DCG of min(k, n_test) hits.
- map@k: mean over users of AP@k = sum over hit ranks r of precision@r, divided by min(k, n_test).
All four are averaged over the counted users.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from .._validation import check_int
from ..errors import InputError

log = logging.getLogger(__name__)

__all__ = ["ranking_metrics", "recommended_lists", "rmse", "topk_metrics"]


def topk_metrics(recommended: Sequence[Sequence], relevant: Sequence[set], k: int) -> dict:
    """Metrics from ranked lists (any hashable ids) and each user's set of held-out ids."""
    if len(recommended) != len(relevant):
        raise InputError(f"got {len(recommended)} ranked lists for {len(relevant)} users")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    totals = np.zeros(4)
    n = 0
    for recs, rel in zip(recommended, relevant):
        if not rel:
            continue
        n += 1
        hits = np.array([r in rel for r in list(recs)[:k]], dtype=np.float64)
        cap = min(k, len(rel))
        n_hits = hits.sum()
        dcg = float((hits * discounts[:len(hits)]).sum())
        idcg = float(discounts[:cap].sum())
        ap = float((np.cumsum(hits) / np.arange(1, len(hits) + 1) * hits).sum()) / cap if len(hits) else 0.0
        totals += (n_hits / k, n_hits / cap, dcg / idcg, ap)
    if n == 0:
        raise InputError("no test user has a held-out item; nothing to evaluate")
    p, r, ndcg, m = totals / n
    return {"precision": float(p), "recall": float(r), "ndcg": float(ndcg), "map": float(m)}


def ranking_metrics(model, test, k: int = 10, batch_size: int = 2048) -> dict:
    """precision, recall, NDCG and MAP at ``k`` of a fitted MatrixFactorization (or any model with
    ``has_user(user)`` and ``recommend_batch(users, k=, exclude_seen=)``) on ``test``
    (an Interactions, e.g. from ``Interactions.split``). See the module text for the exact
    definitions; recall divides by min(k, n_test).

    Raises InputError when no test user is known to the model.
    """
    k = check_int("ranking_metrics", "k", k, 1)
    recommended, relevant = recommended_lists(model, test, k, batch_size)
    return topk_metrics(recommended, relevant, k)


def recommended_lists(model, test, k: int, batch_size: int = 2048) -> tuple[list, list]:
    """(top-``k`` item lists, held-out item sets) of the test users known to ``model``, seen items
    excluded: what :func:`ranking_metrics` scores (and ``compare`` measures coverage on)."""
    m = test.matrix
    users, relevant = [], []
    skipped = 0
    for u in np.flatnonzero(np.diff(m.indptr)):
        key = test.user_keys[u]
        if not model.has_user(key):
            skipped += 1
            continue
        users.append(key)
        relevant.append({test.item_keys[i] for i in m.indices[m.indptr[u]:m.indptr[u + 1]]})
    if skipped:
        log.warning("ranking_metrics: %d test users are unknown to the model and were skipped", skipped)
    if not users:
        raise InputError("no test user is known to the model; split one Interactions into train and test "
                         "(Interactions.split) so the ids match")
    recommended = []
    for start in range(0, len(users), batch_size):
        batch = model.recommend_batch(users[start:start + batch_size], k=k, exclude_seen=True)
        recommended.extend([key for key, _ in recs] for recs in batch)
    return recommended, relevant


def rmse(model, test, unknown: str = "skip") -> float:
    """Root mean squared error of ``model.predict`` on the (user, item, value) pairs of ``test``.

    ``unknown="skip"`` (default): pairs whose user or item the model does not know are skipped
    (logged). ``unknown="baseline"``: every pair is scored, unknown ones from the model's
    baseline (``predict(..., unknown="baseline")``: global mean plus the known biases), as
    Surprise's cross-validation does.
    """
    if unknown not in ("skip", "baseline"):
        raise InputError(f"The 'unknown' parameter of rmse must be 'skip' or 'baseline'. Got {unknown!r} instead.")
    users = np.asarray(test.user_keys, dtype=object)[test.users]
    items = np.asarray(test.item_keys, dtype=object)[test.items]
    if unknown == "baseline":
        if len(users) == 0:
            raise InputError("the test set holds no pairs; nothing to score")
        pred = model.predict(list(users), list(items), unknown="baseline").astype(np.float64)
        err = pred - test.values.astype(np.float64)
        return float(np.sqrt(np.mean(err * err)))
    # asked once per distinct user and item, not per pair
    user_known = np.array([model.has_user(u) for u in test.user_keys], dtype=bool)
    item_known = np.array([model.has_item(i) for i in test.item_keys], dtype=bool)
    known = user_known[test.users] & item_known[test.items]
    if not known.any():
        raise InputError("no test pair has a user and item known to the model; nothing to score")
    if not known.all():
        log.warning("rmse: %d of %d test pairs have unknown users or items and were skipped",
                    int((~known).sum()), len(known))
    pred = model.predict(list(users[known]), list(items[known])).astype(np.float64)
    err = pred - test.values[known].astype(np.float64)
    return float(np.sqrt(np.mean(err * err)))
