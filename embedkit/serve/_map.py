"""The 2-D map of an index for the web page (a small embedding projector): PCA of a fixed sample.

The sample is every item when the index holds at most ``n``, else ``n`` items drawn with a fixed
seed (the same sample for the same index contents); cosine indexes are mapped by direction (unit
vectors). Components are sign-fixed (largest loading positive), so the map is deterministic.
Keys asked for by name (``include``: a query and its neighbours) are projected onto the same
axes and added when the sample left them out, so they are never sampled away.
"""

from __future__ import annotations

import numpy as np

from ..errors import MissingKeyError

MAX_MAP = 5000
SEED = 0


def _prepared(index, keys) -> np.ndarray:
    x = np.asarray(index.get_vectors(keys), dtype=np.float64)
    if index.metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def basis(index, n: int) -> dict:
    """The sample of at most ``n`` items and its PCA: keys, 2-D coordinates, mean, the two axes
    (rows of ``axes``; a zero row when the vectors span fewer dimensions) and each axis's share
    of the sample's variance."""
    keys = index.keys
    if len(keys) > n:
        pick = np.sort(np.random.default_rng(SEED).choice(len(keys), n, replace=False))
        keys = [keys[i] for i in pick]
    x = _prepared(index, keys) if keys else np.zeros((0, index.dim))
    mean = x.mean(axis=0) if len(x) else np.zeros(index.dim)
    centred = x - mean
    axes = np.zeros((2, index.dim))
    explained = [0.0, 0.0]
    if len(x) > 1:
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        total = float((s ** 2).sum())
        for j in range(min(2, len(vt))):
            v = vt[j]
            axes[j] = v if v[np.argmax(np.abs(v))] >= 0 else -v
            explained[j] = float(s[j] ** 2 / total) if total > 0 else 0.0
    return {"keys": keys, "xy": centred @ axes.T, "mean": mean, "axes": axes, "explained": explained}


def index_map(index, cache: dict, version: int, n: int, include=()) -> dict:
    """The map's JSON: ``points`` [[key, x, y], ...] of the sample, then the ``include`` keys it
    left out (flagged in ``added``), ``explained`` (variance share of each axis), sizes."""
    b = cache.get((version, n))
    if b is None:
        cache.clear()  # one map per index version and n: a write makes the old ones stale
        b = cache[(version, n)] = basis(index, n)
    missing = [k for k in include if k not in index]
    if missing:
        raise MissingKeyError(f"key {missing[0]!r} (query parameter 'include') is not in the index")
    have = set(b["keys"])
    extra = [k for k in dict.fromkeys(include) if k not in have]
    points = [[k, round(float(x), 5), round(float(y), 5)] for k, (x, y) in zip(b["keys"], b["xy"])]
    if extra:
        xy = (_prepared(index, extra) - b["mean"]) @ b["axes"].T
        points += [[k, round(float(x), 5), round(float(y), 5)] for k, (x, y) in zip(extra, xy)]
    return {"count": len(index), "sampled": len(b["keys"]), "added": extra, "metric": index.metric,
            "explained": [round(e, 5) for e in b["explained"]], "points": points}
