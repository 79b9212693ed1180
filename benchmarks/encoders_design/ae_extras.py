"""ae14 design-round helpers (PROTOCOL.md, rounds 3-4), kept out of the library because no candidate that uses
them was shipped: a Gaussian-copula input scaler, multi-k k-NN distances and a subsampled nearest-neighbour
ensemble. Imported by ae_candidates.py and ae_round4.py (run from this folder)."""

import numpy as np

from embedkit.trainers.encoders.base import Standardizer


def knn_multi_k(train: np.ndarray, queries: np.ndarray, ks=(5, 10, 20), exclude_self: bool = False) -> np.ndarray:
    """The mean over ``ks`` of the mean distance to the k nearest training rows (one search with max(ks))."""
    from embedkit.trainers.encoders._anomaly import neighbour_distances

    n = len(train)
    ks = [max(1, min(int(v), n - 1 if exclude_self else n)) for v in ks]
    dist = neighbour_distances(train, queries, max(ks), exclude_self)
    return np.mean([dist[:, :v].mean(axis=1) for v in ks], axis=0)


# --------------------------------------------------------------------------- Gaussian-copula input scaling
_MAX_KNOTS = 1024  # per column; a continuous column's ECDF is kept at this many evenly spaced distinct values


class CopulaScaler(Standardizer):
    """Per-column z-scores, then each column through its training ECDF to normal scores (a Gaussian
    copula / van der Waerden transform): a training value v becomes Phi^-1((#below + #equal / 2) / n),
    between the kept values linearly; outside the training range each further training standard
    deviation adds 1, so values never seen in fit still grow with their distance. Monotone per column,
    so distances no longer hinge on a few heavy-tailed columns."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, knots_x: np.ndarray, knots_z: np.ndarray):
        super().__init__(mean, scale)
        self.knots_x = np.asarray(knots_x, dtype=np.float32)  # (K, d) z-score knots, the last repeated as padding
        self.knots_z = np.asarray(knots_z, dtype=np.float32)  # (K, d) normal scores at those knots

    @classmethod
    def fit(cls, X: np.ndarray, enabled: bool = True) -> "CopulaScaler":
        from scipy.special import ndtri

        base = Standardizer.fit(X, True)
        Z = base.transform(X).astype(np.float64)
        n, d = Z.shape
        cols = []
        for j in range(d):
            values, counts = np.unique(Z[:, j], return_counts=True)
            p = (np.cumsum(counts) - counts / 2.0) / n
            if len(values) > _MAX_KNOTS:
                keep = np.unique(np.linspace(0, len(values) - 1, _MAX_KNOTS).round().astype(int))
                values, p = values[keep], p[keep]
            cols.append((values, ndtri(p)))
        size = max(len(v) for v, _ in cols)
        kx, kz = np.empty((size, d)), np.empty((size, d))
        for j, (v, s) in enumerate(cols):
            kx[:, j] = np.concatenate([v, np.full(size - len(v), v[-1])])
            kz[:, j] = np.concatenate([s, np.full(size - len(s), s[-1])])
        return cls(base.mean, base.scale, kx, kz)

    @staticmethod
    def _map(values: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
        out = np.interp(values, xp, fp)
        lo, hi = values < xp[0], values > xp[-1]
        out[lo] = fp[0] + (values[lo] - xp[0])
        out[hi] = fp[-1] + (values[hi] - xp[-1])
        return out

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = super().transform(X).astype(np.float64)
        out = np.empty_like(Z)
        for j in range(Z.shape[1]):
            out[:, j] = self._map(Z[:, j], self.knots_x[:, j], self.knots_z[:, j])
        return out.astype(np.float32)

    def inverse(self, Y: np.ndarray) -> np.ndarray:
        Y = np.asarray(Y, dtype=np.float64)
        Z = np.empty_like(Y)
        for j in range(Y.shape[1]):
            Z[:, j] = self._map(Y[:, j], self.knots_z[:, j], self.knots_x[:, j])
        return super().inverse(Z.astype(np.float32))


# --------------------------------------------------------------------------- subsampled nearest-neighbour ensemble
def subsample_sizes(kind, n: int, seed: int, members: int = 25) -> list[int]:
    """The subsample size of each ensemble member: a fixed size (an int), or ``"variable"``: drawn
    log-uniformly in [32, 1024] (Aggarwal and Sathe 2015); always capped at ``n``."""
    if kind == "variable":
        rng = np.random.default_rng([int(seed), 1])
        sizes = np.exp(rng.uniform(np.log(32), np.log(1024), members)).round().astype(int)
    else:
        sizes = np.full(members, int(kind))
    return [int(min(s, n)) for s in sizes]


def subsampled_nn(train: np.ndarray, queries: np.ndarray, sizes, seed: int, exclude_self: bool = False) -> np.ndarray:
    """Mean over ensemble members of the distance of each query to the nearest row of a random
    subsample of ``train`` (member m draws ``sizes[m]`` rows; the draws depend on ``seed`` and
    ``len(train)`` only, so scoring new rows reuses the fit's subsamples). Each search is exact,
    through :class:`embedkit.VectorIndex`. ``exclude_self``: the queries are the training rows, in
    order; a row drawn into a subsample does not count as its own neighbour."""
    from embedkit.index import VectorIndex

    n = len(train)
    rng = np.random.default_rng([int(seed), 2])
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    total = np.zeros(len(queries))
    for size in sizes:
        size = max(1, min(int(size), n - 1 if exclude_self else n))
        rows = np.sort(rng.choice(n, size, replace=False))
        index = VectorIndex(train.shape[1], metric="l2", kind="flat")
        index.add([str(i) for i in rows], np.ascontiguousarray(train[rows], dtype=np.float32))
        kk = min(2, size) if exclude_self else 1
        res = index.search(queries, k=kk)
        dist = np.asarray(res.scores, dtype=np.float64).reshape(len(queries), -1)
        if exclude_self and kk == 2:
            first = np.asarray(res.keys, dtype=object).reshape(len(queries), -1)[:, 0]
            own = first == np.array([str(i) for i in range(len(queries))], dtype=object)
            total += np.where(own, dist[:, 1], dist[:, 0])
        else:
            total += dist[:, 0]
    return total / max(1, len(sizes))
