"""Searching FAISS and post-processing its answers: exact re-ranking, filling short rows,
dropping the query itself, and the result type.

Functions take the index's :class:`~embedkit.index._storage.Storage` (they read ``vecs``,
``metric``, ``live_ids()`` and ``for_faiss()``; callers hold the index's read lock).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._knn import knn_search, unit_rows

_swig_ptr = None


@dataclass
class SearchResult:
    """Neighbours of m queries: ``keys[i]`` is a list of keys, ``scores[i]`` their scores.

    Scores are similarities for cosine/ip (higher is closer) and Euclidean distances for l2
    (lower is closer).
    """

    keys: list
    scores: np.ndarray

    def __iter__(self):  # for i, (keys, scores) in enumerate(res)
        return iter(zip(self.keys, self.scores))

    def __len__(self) -> int:
        return len(self.keys)


def faiss_search(index, fq: np.ndarray, k: int, params):
    """``index.search(fq, k, params=params)`` minus faiss's Python wrapper (its shape asserts and
    array conversions; our callers already hold (m, dim) float32 queries): the same C++ call
    (``search_c``), a few microseconds less per single-query search."""
    global _swig_ptr
    if _swig_ptr is None:
        from faiss import swig_ptr as _swig_ptr
    if fq.dtype != np.float32 or not fq.flags.c_contiguous:
        fq = np.ascontiguousarray(fq, dtype=np.float32)
    m = fq.shape[0]
    D = np.empty((m, k), dtype=np.float32)
    I = np.empty((m, k), dtype=np.int64)
    index.search_c(m, _swig_ptr(fq), k, _swig_ptr(D), _swig_ptr(I), params)
    return D, I


def rerank(storage, fq, I):
    """Exact re-ranking of PQ candidates with the stored vectors."""
    valid = I >= 0
    safe = np.where(valid, I, 0)
    cand = storage.vecs[safe]                                   # (m, c, dim)
    if storage.metric == "cosine":  # stored cosine vectors are never zero: tiny only avoids 0/0
        cand = unit_rows(cand, tiny=1e-30)
    if storage.metric == "l2":
        D = ((cand - fq[:, None, :]) ** 2).sum(-1)
        D[~valid] = np.inf
        order = np.argsort(D, axis=1, kind="stable")
    else:
        D = np.einsum("mcd,md->mc", cand, fq)
        D[~valid] = -np.inf
        order = np.argsort(-D, axis=1, kind="stable")
    D = np.take_along_axis(D, order, 1)
    I = np.take_along_axis(np.where(valid, I, -1), order, 1)
    return D.astype(np.float32), I


def fill_missing(storage, fq, D, I, want, exclude):
    """Rows the approximate search left short (e.g. few IVF lists probed) get exact answers.

    Each short row is replaced whole by :func:`embedkit._knn.knn_search` over the live items
    (``exclude``: each query's own id, or None), so exact and FAISS scores are never mixed in
    one row. ``D`` must already hold scores as reported (for l2: Euclidean distances, not
    FAISS's squared ones), which is what knn_search returns. ``fq`` is FAISS-ready (unit rows
    for cosine), so cosine is searched as an inner product with the stored vectors made unit
    the way FAISS holds them.
    """
    short = np.nonzero((I < 0).any(axis=1))[0]
    live = storage.live_ids()
    vecs = storage.for_faiss(storage.vecs[live])
    rows = None if exclude is None else np.searchsorted(live, exclude[short])[:, None]  # id -> row of vecs
    s, top = knn_search(vecs, fq[short], want, l2=storage.metric == "l2", exclude=rows)
    D = D.copy()
    I = I.copy()
    D[short], I[short] = s, live[top]
    return D, I


def drop_self(D, I, exclude):
    """Remove each query's own id from its row, keeping rows the same length."""
    m, c = I.shape
    if m == 1:  # one query (search_keys("key")): Python list search beats numpy on ~10 entries
        row = I[0].tolist()
        me = int(exclude[0])
        if me not in row:
            return D[:, :c - 1], I[:, :c - 1]
        hit = row.index(me)
        return (np.concatenate((D[:, :hit], D[:, hit + 1:]), axis=1),
                np.concatenate((I[:, :hit], I[:, hit + 1:]), axis=1))
    is_self = I == exclude[:, None]
    if not is_self.any():
        return D[:, :c - 1], I[:, :c - 1]
    # output column j is input column j before the row's self entry and j + 1 from it on
    pos = np.where(is_self.any(axis=1), is_self.argmax(axis=1), c - 1)
    cols = np.arange(c - 1)[None, :]
    cols = cols + (cols >= pos[:, None])
    rows = np.arange(m)[:, None]
    return D[rows, cols], I[rows, cols]
