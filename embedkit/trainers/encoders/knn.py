"""KNNEstimator: classify or regress rows by their nearest neighbours in an encoder's latent space.

The "unsupervised classification" of representation learning: encode labelled rows with a fitted
encoder (or use the rows as they are), index the vectors in an :class:`embedkit.VectorIndex`,
and answer new rows by a vote (classes) or a mean (numbers) of their ``k`` nearest neighbours,
weighted by similarity when ``weights="distance"``.
"""

from __future__ import annotations

import numpy as np

from ..._validation import check_choice, check_int
from ...data.features import as_matrix
from ...errors import InputError, NotFittedError

__all__ = ["KNNEstimator"]


class KNNEstimator:
    """k-nearest-neighbour classifier / regressor over latent vectors, searched through VectorIndex.

    Parameters
    ----------
    encoder : a fitted SiameseEncoder / AutoEncoder (anything with ``encode(X)``), or None
        None: the rows themselves are the vectors.
    k : int, default 5
    task : {"auto", "classify", "regress"}, default "auto"
        auto: regression for float targets with more than 20 distinct values, else classification.
    metric : {"cosine", "l2", "ip"}, default "cosine"
    weights : {"uniform", "distance"}, default "uniform"
        distance: each neighbour counts ``1 / (distance + 1e-9)`` (cosine: ``1 - similarity``).
    kind : str, default "flat"
        VectorIndex kind ("flat" exact; "hnsw" etc. for large sets).
    """

    def __init__(self, encoder=None, k: int = 5, task: str = "auto", metric: str = "cosine",
                 weights: str = "uniform", kind: str = "flat"):
        self.encoder = encoder
        self.k = check_int("KNNEstimator", "k", k, 1)
        self.task = check_choice("KNNEstimator", "task", task, ("auto", "classify", "regress"))
        self.metric = check_choice("KNNEstimator", "metric", metric, ("cosine", "l2", "ip"))
        self.weights = check_choice("KNNEstimator", "weights", weights, ("uniform", "distance"))
        self.kind = kind
        if encoder is not None and not callable(getattr(encoder, "encode", None)):
            raise InputError(f"KNNEstimator: encoder must have an encode(X) method (a fitted SiameseEncoder or "
                             f"AutoEncoder) or be None; got {type(encoder).__name__}")

    def _vectors(self, X) -> np.ndarray:
        return self.encoder.encode(X) if self.encoder is not None else as_matrix(X)

    def fit(self, X, y) -> "KNNEstimator":
        """Index the vectors of rows ``X`` with their targets ``y`` (one per row)."""
        from ...index import VectorIndex

        V = np.ascontiguousarray(self._vectors(X), dtype=np.float32)
        y = np.asarray(y).reshape(-1)
        if len(y) != len(V):
            raise InputError(f"KNNEstimator.fit: {len(V)} rows but {len(y)} targets in y; give one per row")
        task = self.task
        if task == "auto":
            task = "regress" if y.dtype.kind == "f" and len(np.unique(y)) > 20 else "classify"
        if task == "regress":
            if y.dtype.kind not in "biuf":
                raise InputError("KNNEstimator.fit: task='regress' needs numeric targets y")
            self.targets_ = y.astype(np.float64)
        else:
            self.classes_, self.targets_ = np.unique(y, return_inverse=True)
            self.targets_ = self.targets_.reshape(-1)
        self.task_ = task
        self.index_ = VectorIndex(V.shape[1], metric=self.metric, kind=self.kind)
        self.index_.add([str(i) for i in range(len(V))], V)
        return self

    def _neighbours(self, X):
        if "index_" not in self.__dict__:
            raise NotFittedError("this KNNEstimator is not fitted yet; call fit(X, y) first")
        res = self.index_.search(np.ascontiguousarray(self._vectors(X), dtype=np.float32), k=self.k)
        rows = np.array([[int(k) for k in keys] for keys in res.keys], dtype=np.int64)
        scores = np.asarray(res.scores, dtype=np.float64).reshape(rows.shape)
        if self.weights == "uniform":
            w = np.ones_like(scores)
        else:
            dist = scores if self.metric == "l2" else np.maximum(0.0, 1.0 - scores) if self.metric == "cosine" \
                else scores.max(axis=1, keepdims=True) - scores
            w = 1.0 / (dist + 1e-9)
        return rows, w

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), columns in the order of ``classes_`` (classification only)."""
        if "task_" not in self.__dict__:
            raise NotFittedError("this KNNEstimator is not fitted yet; call fit(X, y) first")
        if self.task_ == "regress":
            raise InputError("KNNEstimator: predict_proba needs classification targets; this one regresses")
        rows, w = self._neighbours(X)
        probs = np.zeros((len(rows), len(self.classes_)))
        np.add.at(probs, (np.repeat(np.arange(len(rows)), rows.shape[1]), self.targets_[rows].ravel()), w.ravel())
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        """Majority (or weighted) class, or the (weighted) mean target of the k nearest neighbours."""
        if self.__dict__.get("task_") == "regress":
            rows, w = self._neighbours(X)
            return (self.targets_[rows] * w).sum(axis=1) / w.sum(axis=1)
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]

    def score(self, X, y) -> float:
        """Accuracy (classification) or R^2 (regression) on rows ``X`` with targets ``y``."""
        pred = self.predict(X)
        y = np.asarray(y).reshape(-1)
        if self.task_ == "regress":
            y = y.astype(np.float64)
            return float(1.0 - ((y - pred) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300))
        return float((pred == y).mean())
