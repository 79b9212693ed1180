"""Evaluation of learned encoders: retrieval by class (P@1, MAP@R, k-NN accuracy) and anomaly ROC-AUC.

Retrieval metrics are leave-one-out over the rows given: each row queries all the others by exact
(brute-force) search, so pass only the rows of the classes you evaluate (e.g. classes held out of
training). MAP@R follows Musgrave, Belongie and Lim, "A Metric Learning Reality Check", ECCV 2020.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._knn import METRICS, knn_search, unit_rows
from .._validation import check_choice, check_int
from ..errors import InputError, MissingKeyError
from .anomaly import anomaly_auc  # lives with the other anomaly metrics (inputs checked there); importable here too

__all__ = ["precision_at_1", "map_at_r", "knn_accuracy", "anomaly_auc"]

_CHUNK = 1024


def _vectors_and_labels(emb, labels, owner: str):
    """(vectors (n, d) float32, labels (n,)) from Embeddings or an array, with labels aligned or by key."""
    from ..data.features import as_labels, as_matrix

    if hasattr(emb, "vectors") and hasattr(emb, "keys"):
        vectors, keys = emb.vectors, list(emb.keys)
    else:
        vectors, keys = as_matrix(emb, what=f"{owner}: emb"), None
    if isinstance(labels, Mapping):
        if keys is None:
            raise InputError(f"{owner}: labels given by key need Embeddings (with keys), not a bare array")
        rows = [i for i, k in enumerate(keys) if k in labels]
        if not rows:
            raise MissingKeyError(f"{owner}: none of the {len(keys)} keys has a label; check the label keys")
        vectors = vectors[rows]
        lab = np.asarray([labels[keys[i]] for i in rows])
    else:
        lab = as_labels(labels, len(vectors), what=f"{owner}: labels")
    if len(vectors) < 2:
        raise InputError(f"{owner}: needs at least two labelled rows; got {len(vectors)}")
    return np.asarray(vectors, dtype=np.float32), lab


def _neighbours(vectors: np.ndarray, k: int, metric: str):
    """Yield (rows, top-k neighbour indices sorted best first) per chunk of query rows; each row
    excludes itself. Exact search (:func:`embedkit._knn.knn_search`, on rows normalised once for
    cosine); chunks bound the memory of the (rows, k) answers, which for MAP@R can be as wide as
    the largest class."""
    n = len(vectors)
    base = unit_rows(vectors) if metric == "cosine" else vectors  # finite float32 (checked on the way in)
    for start in range(0, n, _CHUNK):
        rows = np.arange(start, min(start + _CHUNK, n))
        _, top = knn_search(base, base[rows], k, l2=metric == "l2", exclude=rows[:, None], chunk=_CHUNK)
        yield rows, top


def precision_at_1(emb, labels, metric: str = "cosine") -> float:
    """Fraction of rows whose nearest other row has the same label.

    ``emb``: Embeddings or an (n, d) array; ``labels``: one per row, or a mapping key -> label
    (rows without a label are left out). ``metric``: cosine | ip | l2.
    """
    check_choice("precision_at_1", "metric", metric, METRICS)
    v, lab = _vectors_and_labels(emb, labels, "precision_at_1")
    hits = 0
    for rows, top in _neighbours(v, 1, metric):
        hits += int((lab[top[:, 0]] == lab[rows]).sum())
    return hits / len(lab)


def map_at_r(emb, labels, metric: str = "cosine") -> float:
    """Mean average precision at R (Musgrave et al. 2020), R = the number of other rows of the query's class.

    ``MAP@R = mean over queries of (1/R) * sum_{i<=R} P(i) * rel(i)``; rows alone in their class
    are not queries. Arguments as in :func:`precision_at_1`.
    """
    check_choice("map_at_r", "metric", metric, METRICS)
    v, lab = _vectors_and_labels(emb, labels, "map_at_r")
    _, codes, counts = np.unique(lab, return_inverse=True, return_counts=True)
    codes = codes.reshape(-1)
    r_of = counts[codes] - 1
    if r_of.max() < 1:
        raise InputError("map_at_r: every label occurs once; MAP@R needs classes with at least two rows")
    total = 0.0
    for rows, top in _neighbours(v, int(r_of.max()), metric):
        rel = codes[top] == codes[rows][:, None]
        r = r_of[rows]
        within = np.arange(top.shape[1])[None, :] < r[:, None]
        rel &= within
        precision = np.cumsum(rel, axis=1) / np.arange(1, top.shape[1] + 1)[None, :]
        ap = (precision * rel).sum(axis=1) / np.maximum(r, 1)
        total += float(ap[r > 0].sum())
    return total / int((r_of > 0).sum())


def knn_accuracy(emb, labels, k: int = 5, metric: str = "cosine") -> float:
    """Leave-one-out k-nearest-neighbour classification accuracy (majority vote; ties go to the nearer class)."""
    check_int("knn_accuracy", "k", k, 1)
    check_choice("knn_accuracy", "metric", metric, METRICS)
    v, lab = _vectors_and_labels(emb, labels, "knn_accuracy")
    _, codes = np.unique(lab, return_inverse=True)
    codes = codes.reshape(-1)
    n_classes = int(codes.max()) + 1
    correct = 0
    for rows, top in _neighbours(v, k, metric):
        kk = top.shape[1]
        weight = 1.0 - np.arange(kk) / (10.0 * kk)  # a vote each; rank breaks ties toward nearer neighbours
        votes = np.zeros((len(rows), n_classes))
        np.add.at(votes, (np.repeat(np.arange(len(rows)), kk), codes[top].ravel()), np.tile(weight, len(rows)))
        correct += int((votes.argmax(axis=1) == codes[rows]).sum())
    return correct / len(lab)


def scored_sample(mask: np.ndarray, labels: np.ndarray, cap: int, seed) -> np.ndarray:
    """Indices (sorted) of the rows in ``mask`` for MAP@R to score (exact MAP@R compares every scored row with every
    other): all of them, or at most ``cap`` drawn per class: up to the same number ``c`` of each class's rows (all of
    a smaller class), ``c`` as large as the cap allows; where even 2 per class is too many, 2 rows of each of the
    classes drawn at random. Every class in the sample keeps 2 rows or more where it has them, so every scored row
    can find a partner."""
    rows = np.flatnonzero(mask)
    if len(rows) <= cap:
        return rows
    rng = np.random.default_rng(seed)
    _, inverse, sizes = np.unique(labels[rows], return_inverse=True, return_counts=True)
    lo, hi = 1, int(sizes.max())  # the largest per-class quota that fits the cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if np.minimum(sizes, mid).sum() <= cap else (lo, mid - 1)
    if lo >= 2:
        quota = np.minimum(sizes, lo)
    else:  # too many classes: 2 rows each of classes in a random order, up to the cap
        order = rng.permutation(len(sizes))
        two = np.minimum(sizes[order], 2)
        quota = np.zeros_like(sizes)
        quota[order[np.cumsum(two) <= cap]] = two[np.cumsum(two) <= cap]
    order = np.lexsort((rng.random(len(rows)), inverse))  # rows by class, in a random order within each
    rank = np.empty(len(rows), dtype=np.int64)
    rank[order] = np.arange(len(rows)) - (np.cumsum(sizes) - sizes)[inverse[order]]
    return rows[rank < quota[inverse]]
