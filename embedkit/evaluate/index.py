"""Recall of an approximate index against exact search."""

from __future__ import annotations

import numpy as np

from .._arrays import as_vectors
from .._validation import check_int


def index_recall(index, exact_index, queries, k: int = 10) -> float:
    """Mean fraction of the exact top-k keys that ``index`` also returns (recall@k).

    ``exact_index`` is usually a ``kind="flat"`` VectorIndex holding the same items.
    """
    k = check_int("index_recall", "k", k, 1, None)
    q = as_vectors(queries, what="queries", dim=exact_index.dim, allow_1d=True, dim_of="the index")
    got = index.search(q, k=k).keys
    want = exact_index.search(q, k=k).keys
    hits = [len(set(g) & set(w)) / max(1, len(w)) for g, w in zip(got, want)]
    return float(np.mean(hits)) if hits else 0.0
