"""KNNEstimator: classify or regress rows by their nearest neighbours in an encoder's latent space.

The "unsupervised classification" of representation learning: encode labelled rows with a fitted
encoder (or use the rows as they are), index the vectors in an :class:`embedkit.VectorIndex`,
and answer new rows by a vote (classes) or a mean (numbers) of their ``k`` nearest neighbours,
weighted by similarity when ``weights="distance"``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..._validation import check_choice, check_int, shown
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
        if encoder is not None and (isinstance(encoder, (str, bytes, type))
                                    or not callable(getattr(encoder, "encode", None))):
            got = f"the class {encoder.__name__} (pass a fitted instance)" if isinstance(encoder, type) \
                else f"{type(encoder).__name__} {shown(encoder)}"
            raise InputError("The 'encoder' parameter of KNNEstimator must be None (use the rows as they are) or "
                             "a fitted encoder with an encode(X) method, such as a fitted AutoEncoder or "
                             f"SiameseEncoder. Got {got} instead.")

    def _vectors(self, X, n_features: int | None = None) -> np.ndarray:
        if self.encoder is not None:
            return self.encoder.encode(X)
        return as_matrix(X, n_features=n_features)

    def fit(self, X, y) -> "KNNEstimator":
        """Index the vectors of rows ``X`` with their targets ``y`` (one per row).

        Raises InputError (one line) for a ``y`` that is not one finite number or string per row
        (NaN, inf or None targets, numbers mixed with strings); a failed fit keeps the previous state.
        """
        from ...index import VectorIndex

        V = np.ascontiguousarray(self._vectors(X), dtype=np.float32)
        y = _targets(y, len(V), "KNNEstimator.fit")
        task = self.task
        if task == "auto":
            task = "regress" if y.dtype.kind == "f" and len(np.unique(y)) > 20 else "classify"
        classes = None
        if task == "regress":
            if y.dtype.kind not in "biuf":
                raise InputError("KNNEstimator.fit: task='regress' needs numeric targets y; got strings "
                                 f"(e.g. {shown(y[0])}); use task='classify' for class labels")
            targets = y.astype(np.float64)
        else:
            classes, targets = np.unique(y, return_inverse=True)
            targets = targets.reshape(-1)
        index = VectorIndex(V.shape[1], metric=self.metric, kind=self.kind)
        index.add([str(i) for i in range(len(V))], V)
        # set the fitted state only once everything has succeeded
        self.__dict__.pop("classes_", None)
        if classes is not None:
            self.classes_ = classes
        self.targets_, self.task_, self.index_ = targets, task, index
        self.n_features_in_ = int(V.shape[1]) if self.encoder is None else None
        return self

    def _neighbours(self, X):
        if "index_" not in self.__dict__:
            raise NotFittedError("this KNNEstimator is not fitted yet; call fit(X, y) first")
        V = np.ascontiguousarray(self._vectors(X, self.n_features_in_), dtype=np.float32)
        res = self.index_.search(V, k=self.k)
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
        y = _targets(y, len(pred), "KNNEstimator.score")
        if self.task_ == "regress":
            if y.dtype.kind not in "biuf":
                raise InputError("KNNEstimator.score: this estimator regresses, so y must hold numbers; "
                                 f"got strings (e.g. {shown(y[0])})")
            y = y.astype(np.float64)
            return float(1.0 - ((y - pred) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-300))
        return float((pred == y).mean())


def _targets(y, n_rows: int, owner: str) -> np.ndarray:
    """``y`` as a 1-D array of ``n_rows`` finite numbers or of strings, or a one-line InputError."""
    need = f"{owner}: y must be a 1-D sequence of targets, one per row of X ({n_rows} rows)"
    if hasattr(y, "to_numpy") and not isinstance(y, np.ndarray):  # pandas Series / one-column DataFrame
        y = y.to_numpy()
    if y is None or isinstance(y, (str, bytes)) or np.isscalar(y):
        raise InputError(f"{need}; got {type(y).__name__} {shown(y)}")
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{need}; {str(exc).splitlines()[0]}") from None
    if arr.ndim == 2 and 1 in arr.shape:  # a column or row vector
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InputError(f"{need}; got shape {arr.shape}")
    if len(arr) != n_rows:
        raise InputError(f"{owner}: X has {n_rows} rows but y has {len(arr)} targets; give one per row of X")
    if arr.dtype.kind == "O" or (arr.dtype.kind in "US" and not isinstance(y, np.ndarray)):
        # numpy turns a list mixing strings and numbers into strings (1 would silently become "1"): look at each
        obj = np.empty(len(arr), dtype=object)
        obj[:] = list(np.asarray(y, dtype=object).reshape(-1))
        kinds: dict[str, int] = {}
        for i, v in enumerate(obj):
            if v is None or (isinstance(v, numbers.Real) and not math.isfinite(v)):
                raise InputError(f"{owner}: y[{i}] is {'missing (None)' if v is None else shown(v)}; every row "
                                 "needs a finite target (drop or impute those rows first)")
            kind = "text" if isinstance(v, (str, bytes)) else "number" if isinstance(v, (numbers.Number, np.bool_)) \
                else "other"
            kinds.setdefault(kind, i)
            if "text" in kinds and len(kinds) > 1:
                j = kinds["text"] if kind != "text" else min(k for t, k in kinds.items() if t != "text")
                raise InputError(f"{owner}: y mixes strings and other values (y[{j}] is {shown(obj[j])}, y[{i}] is "
                                 f"{shown(v)}); targets must be all strings or all numbers, e.g. convert them "
                                 "with str()")
        arr = np.asarray(obj.tolist()) if "other" not in kinds else obj  # numpy's own dtype where it has one
        try:
            np.unique(arr)
        except TypeError:
            raise InputError(f"{owner}: the targets in y cannot be compared with each other (e.g. y[0] is "
                             f"{shown(obj[0])}); give numbers or strings") from None
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        i = int(np.nonzero(~np.isfinite(arr))[0][0])
        raise InputError(f"{owner}: y[{i}] is {'NaN' if math.isnan(arr[i]) else 'inf'}; every row needs a finite "
                         "target (drop or impute those rows first)")
    return arr
