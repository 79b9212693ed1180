"""Recall of an approximate index against exact search."""

from __future__ import annotations

import numpy as np

from ..errors import InputError


def index_recall(index, exact_index, queries, k: int = 10) -> float:
    """Mean fraction of the exact top-k keys that ``index`` also returns (recall@k).

    ``exact_index`` is usually a ``kind="flat"`` VectorIndex holding the same items.
    """
    if k < 1:
        raise InputError(f"k must be >= 1; got {k}")
    q = np.asarray(queries, dtype=np.float32)
    got = index.search(q, k=k).keys
    want = exact_index.search(q, k=k).keys
    hits = [len(set(g) & set(w)) / max(1, len(w)) for g, w in zip(got, want)]
    return float(np.mean(hits)) if hits else 0.0
