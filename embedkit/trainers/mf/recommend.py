"""The one recommender of matrix factorisation, used by ``MatrixFactorization.recommend`` /
``recommend_batch`` and by the HTTP service.

It ranks the items of an inner-product :class:`~embedkit.VectorIndex` (item factors, plus the
item bias as a last column when the model has biases) for the user queries (user factors, plus
a 1), skips each user's seen items and adds the user's score shift (global mean + user bias for
ratings). The model passes its own index (``index_``); the service passes the index it holds, so items
upserted or removed through the service count at once.
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_bool, check_int
from ...errors import StoreError


def recommend_users(model, users, *, k: int = 10, exclude_seen: bool = True,
                    index=None, filter=None) -> list[list[tuple[str, float]]]:
    """Top-``k`` (item, score) lists, best first, one per user of ``users`` (known to ``model``),
    searched in ``index`` (default: ``model.index_``). Uses the model's public query side only:
    ``query_vectors``, ``score_offsets``, ``seen_items`` and ``item_embeddings_.keys``.

    ``filter`` (the index filter language: ``$key`` allow/deny lists, payload fields of the
    index's items) keeps only matching items; the index answers exactly the top-k among them
    (flat; its own recall target for approximate kinds), seen items skipped after."""
    k = check_int("MatrixFactorization.recommend", "k", k, 1)
    exclude_seen = check_bool("MatrixFactorization.recommend", "exclude_seen", exclude_seen)
    users = list(users)  # callers pass a checked list (recommend_batch: as_user_list; the service: [user])
    queries = model.query_vectors(users)
    index = model.index_ if index is None else index
    if queries.shape[1] != index.dim:
        raise StoreError(f"user queries have dim {queries.shape[1]} but the index has dim={index.dim}; "
                         "retrain the MF index")
    item_keys = model.item_embeddings_.keys
    seen = [{item_keys[int(c)] for c in model.seen_items(u)} if exclude_seen else set() for u in users]
    return rank(index, queries, seen, model.score_offsets(users), k, filter=filter)


def rank(index, queries: np.ndarray, seen: list[set], shift: np.ndarray, k: int,
         filter=None) -> list[list[tuple[str, float]]]:
    """For each query row: the top ``k`` keys of ``index`` by inner product that are not in
    ``seen[row]`` (and match ``filter``), with ``shift[row]`` added to their scores."""
    n_items = len(index)
    out: list = [[] for _ in range(len(queries))]
    if n_items == 0:
        return out
    # over-fetch by each user's seen count; users grouped by that size (powers of two)
    # so one heavy user does not make every query of the batch fetch thousands
    fetch = np.minimum(n_items, k + np.array([len(x) for x in seen], dtype=np.int64))
    bucket = np.ceil(np.log2(np.maximum(fetch, 1))).astype(np.int64)
    for b in np.unique(bucket):
        rows = np.flatnonzero(bucket == b)
        fetch_k = int(min(n_items, 2 ** b))
        res = index.search(queries[rows], k=fetch_k) if filter is None else \
            index.search(queries[rows], k=fetch_k, filter=filter)
        for row, keys, scores in zip(rows, res.keys, res.scores):
            picked = []
            for key, score in zip(keys, scores):
                if key in seen[row]:
                    continue
                picked.append((key, float(score + shift[row])))
                if len(picked) == k:
                    break
            out[row] = picked
    return out
