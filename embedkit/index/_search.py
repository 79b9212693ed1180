"""Post-processing of FAISS answers: exact re-ranking, filling short rows, dropping the query itself.

Functions take the VectorIndex as ``self`` (they read its stored vectors under its read lock).
"""

from __future__ import annotations

import numpy as np


def rerank(self, fq, I):
    """Exact re-ranking of PQ candidates with the stored vectors."""
    valid = I >= 0
    safe = np.where(valid, I, 0)
    cand = self._vecs[safe]                                   # (m, c, dim)
    if self._metric == "cosine":
        cand = cand / np.maximum(np.linalg.norm(cand, axis=2, keepdims=True), 1e-30)
    if self._metric == "l2":
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

def fill_missing(self, fq, D, I, want, exclude):
    """Rows the approximate search left short (e.g. few IVF lists probed) get exact answers."""
    live = self._live_ids()
    vecs = self._vecs[live]
    if self._metric == "cosine":
        vecs = self._for_faiss(vecs)
    D = D.copy()
    I = I.copy()
    for r in np.where((I < 0).any(axis=1))[0]:
        if self._metric == "l2":
            s = ((vecs - fq[r]) ** 2).sum(1)
            if exclude is not None:
                s[live == exclude[r]] = np.inf
            top = np.argsort(s, kind="stable")[:want]
        else:
            s = vecs @ fq[r]
            if exclude is not None:
                s[live == exclude[r]] = -np.inf
            top = np.argsort(-s, kind="stable")[:want]
        D[r], I[r] = s[top], live[top]
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
