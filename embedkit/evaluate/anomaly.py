"""Anomaly-detection metrics: ROC-AUC and average precision of scores (higher = more anomalous)."""

from __future__ import annotations

import math

import numpy as np

from .._validation import shown
from ..errors import InputError

__all__ = ["anomaly_auc", "average_precision", "anomaly_report"]


def _ndim(x) -> int:
    try:
        return int(np.ndim(x))
    except (TypeError, ValueError):  # a ragged nested list
        return -1


def _scores(scores, owner: str) -> np.ndarray:
    """``scores`` as a 1-D float64 array of finite numbers, or a one-line InputError naming ``owner``."""
    need = f"{owner}: scores must be a 1-D sequence of numbers (one per row, higher = more anomalous)"
    if scores is None or isinstance(scores, (str, bytes)) or _ndim(scores) == 0:
        raise InputError(f"{need}; got {type(scores).__name__} {shown(scores)}")
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{need}; {str(exc).splitlines()[0]}") from None
    if s.ndim != 1:
        raise InputError(f"{need}; got shape {s.shape}")
    bad = np.nonzero(~np.isfinite(s))[0]
    if len(bad):
        i = int(bad[0])
        kind = "NaN" if math.isnan(s[i]) else "inf"
        raise InputError(f"{owner}: scores[{i}] is {kind}; every score must be a finite number")
    return s


def _checked(scores, labels, owner: str):
    s = _scores(scores, owner)
    if labels is None or isinstance(labels, (str, bytes)) or _ndim(labels) == 0:
        raise InputError(f"{owner}: labels must be a 1-D sequence of 0/1 or bool (1 = anomaly), one per score; "
                         f"got {type(labels).__name__} {shown(labels)}")
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(s):
        raise InputError(f"{owner}: {len(s)} scores but {len(y)} labels; give one label per score")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise InputError(f"{owner}: labels must be 0/1 or bool (1 = anomaly)")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise InputError(f"{owner}: labels hold a single class; it needs both normal (0) and anomalous (1) rows")
    return s, y


def _auc(s: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of checked scores ``s`` against boolean labels ``y`` (Mann-Whitney U, ties count one half)."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(y.sum()), int((~y).sum())
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def anomaly_auc(scores, labels) -> float:
    """ROC-AUC of anomaly ``scores`` (higher = more anomalous) against ``labels`` (1/True = anomaly).

    Ties count one half (the Mann-Whitney U statistic). Raises InputError (one line) when scores
    are not a 1-D sequence of finite numbers, lengths differ, labels are not binary, or only one
    class is present.
    """
    s, y = _checked(scores, labels, "anomaly_auc")
    return _auc(s, y)


def average_precision(scores, labels) -> float:
    """Average precision (area under the precision-recall curve, step-wise as in scikit-learn) of
    anomaly ``scores`` against ``labels`` (1 = anomaly); tied scores form one threshold."""
    s, y = _checked(scores, labels, "average_precision")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # the last row of each block of tied scores
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _flags(threshold, s: np.ndarray) -> np.ndarray:
    """The rows flagged as anomalies: ``s > threshold`` for a number, or predicted 0/1 labels as given."""
    n = len(s)
    need = (f"The 'threshold' parameter of anomaly_report must be None, a number (rows with a score above it are "
            f"flagged; +-inf flags none or all) or predicted 0/1 labels (a 1-D array of {n}, one per score)")
    if isinstance(threshold, (str, bytes, bool, np.bool_)):
        raise InputError(f"{need}. Got {shown(threshold)} instead.")
    nd = _ndim(threshold)
    if nd == 0:  # a number of any kind: float, numpy or 0-d torch scalar, Decimal, Fraction
        try:
            value = float(threshold)
        except (TypeError, ValueError, OverflowError):
            raise InputError(f"{need}. Got {shown(threshold)} instead.") from None
        if math.isnan(value):
            raise InputError(f"{need}. Got NaN instead.")
        return s > value
    if nd != 1:
        raise InputError(f"{need}. Got {shown(threshold)} instead.")
    pred = np.asarray(threshold)
    if len(pred) != n:
        raise InputError(f"{need}; got {len(pred)} predicted labels for {n} scores.")
    if pred.dtype.kind not in "biuf" or not np.isin(pred, (0, 1)).all():
        raise InputError(f"{need}; the array given holds values other than 0/1 (pass one float to flag scores "
                         "above it).")
    return pred.astype(bool)


def anomaly_report(scores, labels, threshold=None) -> dict:
    """ROC-AUC, average precision, and with a ``threshold`` precision/recall/F1/flagged.

    ``threshold``: a finite float (rows with a score above it are flagged as anomalies) or the
    predicted labels themselves (a 1-D 0/1 or bool array, one per score, 1 = flagged).
    """
    s, y = _checked(scores, labels, "anomaly_report")
    flag = _flags(threshold, s) if threshold is not None else None
    out = {"roc_auc": _auc(s, y), "average_precision": average_precision(s, y),
           "n": int(len(y)), "anomalies": int(y.sum())}
    if flag is not None:
        tp = int((flag & y).sum())
        out.update(precision=tp / max(int(flag.sum()), 1), recall=tp / int(y.sum()),
                   f1=2 * tp / max(int(flag.sum()) + int(y.sum()), 1), flagged=int(flag.sum()))
    return out
