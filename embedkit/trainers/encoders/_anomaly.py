"""Anomaly scoring shared by the feature-table encoders: k-NN distances in the latent space
(answered by :class:`embedkit.VectorIndex`), robust score normalisation, PyOD-style thresholds."""

from __future__ import annotations

import numpy as np

from ...errors import InputError


def knn_distances(train_codes: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Mean Euclidean distance of each query to its ``k`` nearest training codes (exact FAISS
    search through :class:`embedkit.VectorIndex`). ``exclude_self``: the queries are the training
    rows themselves, in order; each row's own entry is left out."""
    return neighbour_distances(train_codes, queries, k, exclude_self).mean(axis=1)


def neighbour_distances(train_codes: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """The Euclidean distances of each query to its ``k`` nearest training codes, nearest first: (queries,
    k), with ``k`` capped by the number of training rows (less one with ``exclude_self``, as in knn_distances)."""
    from ...index import VectorIndex

    n = len(train_codes)
    k = max(1, min(int(k), n - 1 if exclude_self else n))
    index = VectorIndex(train_codes.shape[1], metric="l2", kind="flat")
    keys = [str(i) for i in range(n)]
    index.add(keys, np.ascontiguousarray(train_codes, dtype=np.float32))
    kk = min(n, k + 1) if exclude_self else k
    res = index.search(np.ascontiguousarray(queries, dtype=np.float32), k=kk)
    dist = np.asarray(res.scores, dtype=np.float64).reshape(len(queries), -1)
    if exclude_self:
        found = np.asarray(res.keys, dtype=object).reshape(len(queries), -1)
        own = found == np.array(keys[:len(queries)], dtype=object)[:, None]
        # drop the row's own entry (or, with exact duplicates ranked first, the last neighbour)
        drop = np.where(own.any(axis=1), own.argmax(axis=1), kk - 1)
        keep = np.ones_like(own, dtype=bool)
        keep[np.arange(len(queries)), drop] = False
        dist = dist[keep].reshape(len(queries), kk - 1)
    return dist[:, :k]


def robust_scale(train_scores: np.ndarray) -> tuple[float, float]:
    """(median, spread) of the training scores; spread = IQR / 1.349 (the std of a normal), never 0."""
    s = np.asarray(train_scores, dtype=np.float64)
    med = float(np.median(s))
    q1, q3 = np.percentile(s, [25, 75])
    spread = float(q3 - q1) / 1.349
    if not spread > 1e-12:
        spread = float(s.std()) or 1.0
    return med, spread


def threshold_from(train_scores: np.ndarray, contamination: float) -> float:
    """The score above which ``contamination`` of the training rows lie (PyOD's ``threshold_``)."""
    return float(np.percentile(np.asarray(train_scores, dtype=np.float64), 100.0 * (1.0 - contamination)))


def check_threshold(owner: str, threshold) -> float | None:
    if threshold is None:
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise InputError(f"{owner}: threshold must be a finite number (a decision score) or None; got {threshold!r}")
    return value
