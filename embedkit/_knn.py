"""The one exact (brute-force) k-nearest-neighbour routine, in numpy, chunked over queries.

Used wherever a few thousand vectors are compared exactly and the query item itself must not
answer: ``Embeddings.most_similar`` (so ``MatrixFactorization.similar_items``), the analogy test
(three excluded words per question), the encoder metrics, the index's exact fill of short rows.
:func:`exact_knn` checks and normalises its input; :func:`knn_search` is the same search for
arrays already checked (a cached unit matrix searched once per call). Scores follow :class:`VectorIndex`:
cosine similarity (higher is closer; zero vectors score 0 here instead of being refused), inner
product (higher is closer), Euclidean distance for ``"l2"`` (lower is closer). Rows come
best-first; equal scores are ordered by row number (lowest first), so results are deterministic.
"""

from __future__ import annotations

import numpy as np

from ._validation import check_choice, check_int

__all__ = ["exact_knn", "knn_search", "unit_rows", "METRICS"]

METRICS = ("cosine", "ip", "l2")
_MAX_CELLS = 1 << 25  # scores held at once per chunk (128 MiB of float32)


def unit_rows(x: np.ndarray, *, tiny: float = 1e-12) -> np.ndarray:
    """``x`` scaled to unit length along its last axis (the one unit normalisation for cosine).

    A row whose norm is below ``tiny`` is divided by ``tiny`` instead, so an all-zero row stays
    zero (and scores 0 against everything) rather than becoming NaN.
    """
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), tiny)


def exact_knn(vectors, k: int, *, metric: str = "cosine", queries=None, exclude_self: bool = True,
              exclude=None, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest rows of ``vectors`` for each query: ``(scores, indices)``, both (m, k').

    ``queries``: (m, dim) vectors; default ``vectors`` itself, and then ``exclude_self`` means
    query row i never returns row i. ``exclude``: row numbers a query must not return, an int
    array of shape (m,) or (m, e) (-1 = nothing), e.g. the three words of an analogy question;
    it replaces ``exclude_self``. ``k' = min(k, n - e)`` where e is the number of excluded rows per
    query (1 for self), so k >= n gives every remaining row, with no padding.
    ``chunk``: query rows scored at once (fewer when ``n`` is large, to bound memory).
    """
    from ._arrays import as_vectors

    metric = check_choice("exact_knn", "metric", metric, METRICS)
    k = check_int("exact_knn", "k", k, 1, None)
    chunk = check_int("exact_knn", "chunk", chunk, 1, None)
    base = as_vectors(vectors, what="vectors")
    n, dim = base.shape
    if queries is None:
        q = base
        if exclude is None and exclude_self:
            exclude = np.arange(n, dtype=np.int64)
    else:
        q = as_vectors(queries, what="queries", dim=dim, allow_1d=True)
    m = q.shape[0]
    if exclude is not None:
        exclude = np.asarray(exclude, dtype=np.int64)
        if exclude.ndim == 1:
            exclude = exclude[:, None]
        if exclude.ndim != 2 or exclude.shape[0] != m:
            raise ValueError(f"exclude must have shape ({m},) or ({m}, e); got {exclude.shape}")
    if metric == "cosine":
        base = unit_rows(base)
        q = base if queries is None else unit_rows(q)
    return knn_search(base, q, k, l2=metric == "l2", exclude=exclude, chunk=chunk)


def knn_search(base: np.ndarray, queries: np.ndarray, k: int, *, l2: bool = False, exclude=None,
               chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """The search of :func:`exact_knn` without its checks, for callers whose arrays are already
    valid and are searched repeatedly (a cached unit matrix, chunks of one table): ``base``
    (n, dim) and ``queries`` (m, dim) finite float32 (unit rows for cosine, searched as an inner
    product), ``k >= 1``, ``exclude`` None or an int64 array (m, e) (-1 = nothing); ``l2``:
    Euclidean distance instead of inner product. Same results and tie order as exact_knn.
    """
    n = base.shape[0]
    m = queries.shape[0]
    e = 0 if exclude is None else exclude.shape[1]
    kk = max(0, min(k, n - e))
    scores = np.empty((m, kk), dtype=np.float32)
    indices = np.empty((m, kk), dtype=np.int64)
    if m == 0 or kk == 0:
        return scores, indices
    if m == 1 and not l2:  # one query (most_similar): 1-D arrays, a few numpy calls
        s = base @ queries[0]
        if exclude is not None:
            s[exclude[0][exclude[0] >= 0]] = -np.inf
        top = _top_1d(s, kk)
        return s[top][None, :], top[None, :]
    # l2 ranks by 2 q.v - |v|^2 (same order as -|q - v|^2), then computes exact distances
    sq = (base * base).sum(axis=1) if l2 else None
    step = max(1, min(chunk, _MAX_CELLS // max(n, 1)))
    for lo in range(0, m, step):
        hi = min(m, lo + step)
        # one query: a matrix-vector product (BLAS gemv), faster than a 1-row matrix product
        s = (base @ queries[lo])[None, :] if hi - lo == 1 else queries[lo:hi] @ base.T
        if sq is not None:
            s *= 2
            s -= sq
        if exclude is not None:
            ex = exclude[lo:hi]
            r, c = np.nonzero(ex >= 0)
            s[r, ex[r, c]] = -np.inf
        top = _top(s, kk)
        if l2:
            d = np.sqrt(((base[top] - queries[lo:hi, None, :]) ** 2).sum(axis=2))
            order = np.lexsort((top, d), axis=1)
            indices[lo:hi] = np.take_along_axis(top, order, 1)
            scores[lo:hi] = np.take_along_axis(d, order, 1)
        else:
            indices[lo:hi] = top
            scores[lo:hi] = s[np.arange(hi - lo)[:, None], top]
    return scores, indices


def _top_1d(s: np.ndarray, k: int) -> np.ndarray:
    """:func:`_top` for one row (a 1-D array of scores)."""
    n = s.shape[0]
    if k >= n:
        return np.argsort(-s, kind="stable")
    top = np.argpartition(s, n - k)[n - k:]
    kth = s[top[0]]
    if np.count_nonzero(s >= kth) > k:  # the k-th best is tied with an entry left out
        above = np.flatnonzero(s > kth)
        top = np.concatenate((above, np.flatnonzero(s == kth)[:k - len(above)]))
    top.sort()
    return top[np.argsort(-s[top], kind="stable")]


def _top(s: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the k largest entries of each row, best first, ties by lowest column."""
    r, n = s.shape
    if k >= n:
        return np.argsort(-s, axis=1, kind="stable")
    rows = np.arange(r)[:, None]  # fancy indexing: cheaper than take_along_axis for one query
    # the top k land in the last k columns, the k-th best at column n - k (one pivot: numpy's
    # partition with two pivots is several times slower; partitioning s, not -s, saves a copy)
    part = np.argpartition(s, n - k, axis=1)
    top = part[:, n - k:]
    kth = s[rows[:, 0], part[:, n - k]]
    # argpartition picks an arbitrary member among entries tied with the k-th best: redo those rows
    tied = np.nonzero(np.count_nonzero(s >= kth[:, None], axis=1) > k)[0]
    for i in tied.tolist():
        above = np.nonzero(s[i] > kth[i])[0]
        equal = np.nonzero(s[i] == kth[i])[0][:k - len(above)]
        top[i] = np.concatenate((above, equal))
    top.sort(axis=1)  # ascending column: the stable sort below then breaks ties by column
    return top[rows, np.argsort(-s[rows, top], axis=1, kind="stable")]
