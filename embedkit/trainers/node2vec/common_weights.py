"""Common-neighbour weights of every edge, for the node2vec walker (:mod:`embedkit.trainers.node2vec.walks`)."""

from __future__ import annotations

import numpy as np


def common_weights(indptr, indices, weights, rows, keys, indeg, *, block: float) -> np.ndarray:
    """Per CSR entry t -> v: C = sum of w(v, x) over x != t that are out-neighbours of both v
    and t (the mass of v's neighbours that node2vec weights by 1 rather than 1/q), float64.

    It is the product A W^T (A: t's out-neighbours without self-loops, W: the weights, None for
    all 1) sampled on the graph's own entries, computed with scipy in row blocks of about
    ``block`` multiply-adds so that memory stays bounded; of each block's product only the
    entries on the graph's own edges (those inside triangles) are kept. ``rows`` and ``keys``
    (row * n + column, sorted) describe the entries; ``indeg`` is the in-degree per node.
    """
    import scipy.sparse as sp

    n, nnz = len(indptr) - 1, len(indices)
    loop = rows == indices
    pattern = sp.csr_matrix((np.ones(nnz), indices, indptr), shape=(n, n))     # every entry t -> v
    a = pattern
    if loop.any():                                    # x = t is the return move, never "common"
        a = sp.csr_matrix((np.where(loop, 0.0, 1.0), indices, indptr), shape=(n, n))
        a.eliminate_zeros()
    w = weights if weights is not None else np.ones(nnz)     # equal weights walk as unweighted
    wt = sp.csr_matrix((w, indices, indptr), shape=(n, n)).T.tocsr()
    out = np.zeros(nnz, dtype=np.float64)
    # row blocks of about ``block`` multiply-adds each (a costly row gets a block of its own)
    per_row = np.cumsum(np.bincount(rows, weights=indeg[indices], minlength=n))
    cuts = np.searchsorted(per_row, np.arange(1, int(per_row[-1] // block) + 1) * block, side="right")
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, n), [n]]))
    for r0, r1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if indptr[r0] == indptr[r1]:
            continue
        hit = (a[r0:r1] @ wt).multiply(pattern[r0:r1]).tocoo()
        if hit.nnz:
            at = np.searchsorted(keys, (hit.row.astype(np.int64) + r0) * n + hit.col)
            out[at] = hit.data
    return out
