"""Anomaly-detection metrics: ROC-AUC and average precision of scores (higher = more anomalous)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .encoders import anomaly_auc

__all__ = ["anomaly_auc", "average_precision", "anomaly_report"]


def _checked(scores, labels, owner: str):
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 1:
        raise InputError(f"{owner}: scores must be 1-D (one per row); got shape {s.shape}")
    if not np.isfinite(s).all():
        raise InputError(f"{owner}: scores[{int(np.nonzero(~np.isfinite(s))[0][0])}] is NaN or inf")
    y = np.asarray(labels).reshape(-1)
    if len(y) != len(s):
        raise InputError(f"{owner}: {len(s)} scores but {len(y)} labels; give one label per score")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise InputError(f"{owner}: labels must be 0/1 or bool (1 = anomaly)")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise InputError(f"{owner}: labels hold a single class; it needs both normal (0) and anomalous (1) rows")
    return s, y


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


def anomaly_report(scores, labels, threshold=None) -> dict:
    """ROC-AUC, average precision, and with a ``threshold`` (or predicted 0/1 labels) precision/recall/F1."""
    s, y = _checked(scores, labels, "anomaly_report")
    out = {"roc_auc": anomaly_auc(s, y), "average_precision": average_precision(s, y),
           "n": int(len(y)), "anomalies": int(y.sum())}
    if threshold is not None:
        flag = s > float(threshold)
        tp = int((flag & y).sum())
        out.update(precision=tp / max(int(flag.sum()), 1), recall=tp / int(y.sum()),
                   f1=2 * tp / max(int(flag.sum()) + int(y.sum()), 1), flagged=int(flag.sum()))
    return out
