"""Synthetic data for the index benchmarks: a Gaussian mixture with a known cluster structure.

Same recipe as the index tests (tests/test_index.py ``clustered``): cluster centres drawn from
N(0, (3*sigma)^2 I), points = centre + N(0, sigma^2 I). Queries are fresh draws from the same
mixture (never items of the index), so recall is measured on unseen points.
"""

from __future__ import annotations

import numpy as np


def clustered(n: int, dim: int, *, n_queries: int = 0, centers: int = 100, spread: float = 3.0,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(data, queries)``: float32 arrays of shape (n, dim) and (n_queries, dim).

    ``centers`` mixture components, centre scale ``spread`` times the unit within-cluster noise.
    Generated in chunks so 1M x 128 needs no float64 copy of the whole matrix.
    """
    rng = np.random.default_rng(seed)
    c = (rng.standard_normal((centers, dim)) * spread).astype(np.float32)
    total = n + n_queries
    out = np.empty((total, dim), dtype=np.float32)
    step = 65536
    for s in range(0, total, step):
        e = min(total, s + step)
        lab = rng.integers(0, centers, e - s)
        out[s:e] = c[lab] + rng.standard_normal((e - s, dim), dtype=np.float32)
    return out[:n], out[n:]


def normalised(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32, C-contiguous): what cosine search sees."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_topk(base_normed: np.ndarray, queries_normed: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k ids by inner product (ground truth for recall), via a FAISS flat index."""
    import faiss

    idx = faiss.IndexFlatIP(base_normed.shape[1])
    idx.add(base_normed)
    _, ids = idx.search(queries_normed, k)
    return ids


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean |found_i[:k] & truth_i[:k]| / k over queries (ids as integers)."""
    hits = 0
    for f, t in zip(found, truth):
        hits += len(set(f[:k].tolist()) & set(t[:k].tolist()))
    return hits / (k * len(truth))
