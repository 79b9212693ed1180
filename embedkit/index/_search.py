"""Searching FAISS and post-processing its answers: exact re-ranking, filling short rows,
dropping the query itself, and the result type.

Functions take the index's :class:`~embedkit.index._storage.Storage` (they read vectors through
``ready()``, ``metric``, ``live_ids()`` and ``for_faiss()``; callers hold the index's read lock).
:func:`filtered_search` is the payload-filtered search (cardinality-based planning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._knn import knn_search

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


def search_skipping_tombstones(storage, fq, fetch: int):
    """FAISS's top-``fetch`` (scores, ids) of the live items for FAISS-ready queries: searched with the
    tombstone selector, or, for an index that refuses search parameters, by :func:`search_live` (from the
    first refusal on). A FAISS error without any parameters is a one-line InputError naming the kind."""
    if storage.params_refused and storage.tombstones:
        return search_live(storage, fq, fetch)
    held = storage._params()  # (holds the SWIG selector objects until the search returns)
    try:
        return faiss_search(storage.faiss, fq, fetch, None if held is None else held[0])
    except RuntimeError as exc:
        if held is None:  # no parameters to refuse: FAISS cannot search this index at all
            from . import _factory as F

            raise F.faiss_error(storage.kind, f"search this index (dim={storage.dim})", exc) from None
        storage.params_refused = True
        return search_live(storage, fq, fetch)


def search_live(storage, fq, fetch: int):
    """Top-``fetch`` live ids for an index that refuses search parameters (IndexPQ, NSG, LSH,
    IndexRefine... cannot take the tombstone selector): FAISS searches without them for ``fetch``
    plus the number of tombstones, and tombstoned ids are dropped. Rows keep ``fetch`` columns,
    short ones ending in -1 (the caller's :func:`fill_missing` answers them exactly). A FAISS error
    here is a one-line InputError naming the kind."""
    from . import _factory as F

    k = max(fetch, min(fetch + len(storage.tombstones), int(storage.faiss.ntotal)))
    try:
        D, I = faiss_search(storage.faiss, fq, k, None)
    except RuntimeError as again:
        raise F.faiss_error(storage.kind, f"search this index (dim={storage.dim})", again) from None
    ok = I >= 0
    ok[ok] = storage.alive[I[ok]]
    if not ok.all():  # live answers first, in FAISS's order; the rest become -1
        order = np.argsort(~ok, axis=1, kind="stable")
        D = np.take_along_axis(D, order, 1)
        I = np.where(np.take_along_axis(ok, order, 1), np.take_along_axis(I, order, 1), -1)
    return D[:, :fetch], I[:, :fetch]


def rerank(storage, fq, I):
    """Exact re-ranking of PQ candidates with the stored vectors."""
    valid = I >= 0
    safe = np.where(valid, I, 0)
    cand = storage.ready(safe.ravel()).reshape(*safe.shape, -1)  # (m, c, dim), as FAISS compares them
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
    vecs = storage.ready_all(live)
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


# ------------------------------------------------------------------ filtered search
EXACT_MIN = 4096        # matching items at or below which a filtered search is always exact
FLAT_EXACT_SHARE = 0.25  # flat: exact over the subset below this share of the index, else FAISS + bitmap
HNSW_EXACT_FACTOR = 0.25  # hnsw: exact while c * c <= factor * ef_search * M * n (the measured crossover at 100k)
IVF_EXACT_FACTOR = 2.0   # ivf: exact while c <= factor * (nprobe / nlist) * n


class Allowed:
    """The items a filtered search may return: a bool mask by id (live items only), with its
    count, FAISS bitmap and id list computed once (a cached filter is searched many times)."""

    __slots__ = ("mask", "_count", "_bits", "_ids")

    def __init__(self, mask: np.ndarray):
        self.mask = mask
        self._count = self._bits = self._ids = None

    @property
    def count(self) -> int:
        if self._count is None:
            self._count = int(np.count_nonzero(self.mask))
        return self._count

    @property
    def bits(self) -> np.ndarray:
        if self._bits is None:
            self._bits = np.packbits(self.mask, bitorder="little")
        return self._bits

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            ids = np.flatnonzero(self.mask).astype(np.int64, copy=False)
            ids.flags.writeable = False
            self._ids = ids
        return self._ids


def _plan_exact(st, c: int, n_live: int, m: int = 1) -> bool:
    """Cardinality-based planning (Qdrant's model): search the matching subset exactly when it is
    small enough that scanning it costs less than the approximate search it replaces."""
    if c <= EXACT_MIN:
        return True
    if st.kind == "flat":  # FAISS's filtered flat scan skips BLAS: batches go to numpy's matrix product
        return m > 1 or c <= FLAT_EXACT_SHARE * n_live
    if st.hnsw:
        # a filtered HNSW walk visits about ef * M / selectivity nodes; the exact scan visits c
        ef, m = int(st.knobs.get("ef_search") or 64), int(st.knobs.get("hnsw_m") or 32)
        return c * c <= HNSW_EXACT_FACTOR * ef * m * n_live
    from . import _factory as F

    ivf = F.find_ivf(st.faiss)
    if ivf is not None:  # IVF scans nprobe / nlist of the items: exact is cheaper below that
        share = min(1.0, int(st.knobs.get("nprobe") or 1) / max(1, ivf.nlist))
        return c <= IVF_EXACT_FACTOR * share * n_live
    return False


def _exact_rows(st, fq, sub, want, exclude):
    """Exact top-``want`` of queries ``fq`` among ids ``sub`` (ascending), each query's own id excluded.

    FAISS's exhaustive search (``faiss.knn``) rather than numpy: numpy's OpenBLAS thread pool
    and FAISS's OpenMP pool oversubscribe the cores when both run in one process (a 5,000 x 128
    matrix-vector product measured 20x slower right after HNSW searches).
    """
    import faiss

    base = st.ready(sub)
    self_in = None
    if exclude is not None:
        pos = np.searchsorted(sub, exclude)
        self_in = (pos < len(sub)) & (sub[np.minimum(pos, len(sub) - 1)] == exclude)
    fetch = min(len(sub), want + (1 if self_in is not None and self_in.any() else 0))
    metric = faiss.METRIC_L2 if st.metric == "l2" else faiss.METRIC_INNER_PRODUCT
    D, I = faiss.knn(np.ascontiguousarray(fq, dtype=np.float32), base, fetch, metric=metric)
    ids = np.where(I >= 0, sub[np.maximum(I, 0)], -1)
    if fetch > want:
        D, ids = drop_self(D, ids, exclude)
    D, ids = D[:, :want], ids[:, :want]
    if st.metric == "l2":
        D = np.sqrt(np.maximum(D, 0))
    if (ids < 0).any():
        raise RuntimeError("internal: exact filtered search returned short rows")
    return D.astype(np.float32, copy=False), ids


def filtered_search(st, fq, k: int, exclude, allowed: Allowed):
    """Top-k among the ``allowed`` items (:class:`Allowed`) for FAISS-ready queries.

    Exact over the matching subset when it is small (see :func:`_plan_exact`); otherwise FAISS
    searches with an IDSelectorBitmap so only matching items are returned, with HNSW's beam and
    IVF's probes widened as the filter gets more selective, and any row left short is redone
    exactly. Returns ``(scores, ids)`` of shape (m, want) where want = min(k, matching items
    other than the query itself).
    """
    m = fq.shape[0]
    mask = allowed.mask
    c = allowed.count
    if exclude is not None and c:
        want = min(k, c - int(mask[exclude].max()))
    else:
        want = min(k, c)
    if m == 0 or want <= 0:
        return np.empty((m, 0), dtype=np.float32), np.empty((m, 0), dtype=np.int64)
    n_live = max(1, len(st.key_to_id))
    if _plan_exact(st, c, n_live, m):
        return _exact_rows(st, fq, allowed.ids, want, exclude)
    import faiss

    sel_share = c / n_live
    bits = allowed.bits
    sel = faiss.IDSelectorBitmap(bits)
    self_in = exclude is not None and bool(mask[exclude].any())
    fetch = want + (1 if self_in else 0)
    if st.kind == "ivfpq":
        fetch = min(c, fetch * int(st.knobs["refine"]))
    if st.hnsw:
        ef = int(st.knobs.get("ef_search") or 64)
        ef = int(min(max(fetch, ef / sel_share), max(fetch, 8 * ef)))
        params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(ef, fetch))
    else:
        from . import _factory as F

        ivf = F.find_ivf(st.faiss)
        if ivf is not None:
            nprobe = int(st.knobs.get("nprobe") or 1)
            nprobe = int(min(ivf.nlist, np.ceil(nprobe / min(1.0, sel_share * 2))))
            params = faiss.SearchParametersIVF(sel=sel, nprobe=nprobe)
        else:
            params = faiss.SearchParameters(sel=sel)
    try:
        D, I = faiss_search(st.faiss, fq, fetch, params)
    except RuntimeError:  # an index type that cannot take a selector: search the subset exactly
        return _exact_rows(st, fq, allowed.ids, want, exclude)
    finally:
        del params, sel
    if st.kind == "ivfpq":
        D, I = rerank(st, fq, I)
    if self_in:
        D, I = drop_self(D, I, exclude)
    D, I = D[:, :want], I[:, :want]
    if st.metric == "l2":
        D = np.sqrt(np.maximum(D, 0))
    short = np.nonzero((I < 0).any(axis=1))[0]
    if len(short):
        D, I = D.copy(), I.copy()
        D[short], I[short] = _exact_rows(st, fq[short], allowed.ids, want, None if exclude is None else exclude[short])
    return D.astype(np.float32, copy=False), I
