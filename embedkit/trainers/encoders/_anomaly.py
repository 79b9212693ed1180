"""Anomaly scoring shared by the feature-table encoders: k-NN distances in the latent space
(answered by :class:`embedkit.VectorIndex` on the CPU, by blocked matrix products on a model's CUDA
device), robust score normalisation, PyOD-style thresholds."""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError


def knn_distances(train_codes: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool = False,
                  device=None) -> np.ndarray:
    """Mean Euclidean distance of each query to its ``k`` nearest training codes (exact FAISS
    search through :class:`embedkit.VectorIndex`, or exact search on ``device`` when it is a CUDA
    device). ``exclude_self``: the queries are the training rows themselves, in order; each row's own
    entry is left out."""
    return neighbour_distances(train_codes, queries, k, exclude_self, device).mean(axis=1)


# The k-NN scores compare rows with the training rows. Exactly, scoring the training rows themselves costs
# (rows x rows): a 1M-row fit would search for hours. Above this many training rows the reference set is a
# uniform sample of them (subsampled k-NN, as IsolationForest subsamples its trees; Zimek et al. 2013 found such
# samples as good for outlier detection), so the cost grows linearly with the rows.
KNN_REFERENCE_ROWS = 50_000


def reference_rows(n: int, seed) -> np.ndarray | None:
    """Sorted indices of the training rows that k-NN scores search (None: all ``n`` rows)."""
    if n <= KNN_REFERENCE_ROWS:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, KNN_REFERENCE_ROWS, replace=False))


def training_knn_distances(codes: np.ndarray, k: int, reference: np.ndarray | None, device=None) -> np.ndarray:
    """knn_distances of every training row (``codes``, in order) to the reference rows, its own entry left out:
    to all other rows (``reference`` None) or to the rows ``reference`` indexes."""
    n = len(codes)
    if n < 2:
        return np.zeros(n)
    if reference is None:
        return knn_distances(codes, codes, k, exclude_self=True, device=device)
    ref = codes[reference]
    out = np.empty(n)
    out[reference] = knn_distances(ref, ref, k, exclude_self=True, device=device)
    rest = np.setdiff1d(np.arange(n), reference, assume_unique=True)
    out[rest] = knn_distances(ref, codes[rest], k, device=device)
    return out


def neighbour_distances(train_codes: np.ndarray, queries: np.ndarray, k: int, exclude_self: bool = False,
                        device=None) -> np.ndarray:
    """The Euclidean distances of each query to its ``k`` nearest training codes, nearest first: (queries,
    k), with ``k`` capped by the number of training rows (less one with ``exclude_self``, as in knn_distances).
    On a CUDA ``device`` the search runs there (the same exact search; distances agree to float rounding)."""
    n = len(train_codes)
    k = max(1, min(int(k), n - 1 if exclude_self else n))
    kk = min(n, k + 1) if exclude_self else k
    if _on_device(device):
        dist, found = _device_search(train_codes, queries, kk, torch.device(device))
    else:
        dist, found = _index_search(train_codes, queries, kk)
    if exclude_self:
        own = found == np.arange(len(queries))[:, None]
        # drop the row's own entry (or, with exact duplicates ranked first, the last neighbour)
        drop = np.where(own.any(axis=1), own.argmax(axis=1), kk - 1)
        keep = np.ones_like(own, dtype=bool)
        keep[np.arange(len(queries)), drop] = False
        dist = dist[keep].reshape(len(queries), kk - 1)
    return dist[:, :k]


def _index_search(train_codes: np.ndarray, queries: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, row numbers of the training codes) of each query's ``kk`` nearest, through VectorIndex."""
    from ...index import VectorIndex

    index = VectorIndex(train_codes.shape[1], metric="l2", kind="flat")
    index.add([str(i) for i in range(len(train_codes))], np.ascontiguousarray(train_codes, dtype=np.float32))
    res = index.search(np.ascontiguousarray(queries, dtype=np.float32), k=kk)
    dist = np.asarray(res.scores, dtype=np.float64).reshape(len(queries), -1)
    return dist, np.asarray(res.keys, dtype=np.int64).reshape(len(queries), -1)


def _on_device(device) -> bool:
    """Whether k-NN searches for a model on ``device`` run there (CUDA) rather than through VectorIndex."""
    return device is not None and torch.device(device).type == "cuda"


# floats held on the device at once per block of queries while searching there (128M float32: 512 MB)
DEVICE_BLOCK = 1 << 27


def _device_search(train_codes: np.ndarray, queries: np.ndarray, kk: int,
                   device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The exact search of _index_search on a CUDA device: squared distances ||q||^2 - 2 q.r + ||r||^2 (as FAISS
    computes them) in blocks of queries, the ``kk`` smallest of each row by topk. Full float32 products: TF32,
    if the user enabled it, would lose the precision that ranking near neighbours needs."""
    ref = torch.as_tensor(np.ascontiguousarray(train_codes, dtype=np.float32), device=device)
    ref_sq = (ref * ref).sum(dim=1)
    rows = max(1, DEVICE_BLOCK // max(1, len(ref), ref.shape[1]))  # the distances and the query block each fit
    precision, tf32 = torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        dists, found = _blocks(ref, ref_sq, queries, kk, rows, device)
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cuda.matmul.allow_tf32 = tf32
    if not dists:
        return np.empty((0, kk)), np.empty((0, kk), dtype=np.int64)
    return torch.cat(dists).numpy().astype(np.float64), torch.cat(found).numpy().astype(np.int64)


def _blocks(ref, ref_sq, queries, kk, rows, device):
    """The search of _device_search, ``rows`` queries at a time: lists of (distances, indices) blocks on the CPU."""
    dists, found = [], []
    with torch.no_grad():
        for start in range(0, len(queries), rows):
            q = torch.as_tensor(np.ascontiguousarray(queries[start:start + rows], dtype=np.float32), device=device)
            d = torch.addmm(ref_sq, q, ref.T, alpha=-2.0).add_((q * q).sum(dim=1, keepdim=True))
            value, index = torch.topk(d, kk, dim=1, largest=False)  # sorted, nearest first
            dists.append(value.clamp_min_(0).sqrt_().cpu())
            found.append(index.cpu())
    return dists, found


def robust_scale(train_scores: np.ndarray) -> tuple[float, float]:
    """(median, spread) of the training scores; spread = IQR / 1.349 (the std of a normal), never 0."""
    s = np.asarray(train_scores, dtype=np.float64)
    med = float(np.median(s))
    q1, q3 = np.percentile(s, [25, 75])
    spread = float(q3 - q1) / 1.349
    if not spread > 1e-12:
        spread = float(s.std()) or 1.0
    return med, spread


def threshold_from(train_scores: np.ndarray, contamination: float) -> float:
    """The score above which ``contamination`` of the training rows lie (PyOD's ``threshold_``)."""
    return float(np.percentile(np.asarray(train_scores, dtype=np.float64), 100.0 * (1.0 - contamination)))


def check_threshold(owner: str, threshold) -> float | None:
    if threshold is None:
        return None
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not np.isfinite(value):
        raise InputError(f"{owner}: threshold must be a finite number (a decision score) or None; got {threshold!r}")
    return value
