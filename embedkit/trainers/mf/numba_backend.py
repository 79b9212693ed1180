"""Compiled CPU kernels (numba, optional) for the per-sample SGD methods: BPR and explicit SGD.

``MatrixFactorization(method="bpr" | "sgd", backend="numba")``. Torch's mini-batch SGD pays a
fixed cost per batch (a dozen kernel launches of a few thousand rows each); implicit's BPR and
Surprise's SVD are compiled loops over single samples. These kernels are those loops: the same
updates as :mod:`.bpr` and :mod:`.sgd` with a batch of one, in parallel chunks that update the
shared factors without locks (Hogwild, as implicit's BPR does). With one thread
(``NUMBA_NUM_THREADS=1`` or ``torch.set_num_threads(1)``) the same seed gives the same vectors;
with several, races between threads make runs differ slightly, as with implicit.

numba is not a dependency of embedkit: ``pip install numba`` to use this backend. The kernels
compile on first use (a few seconds, cached on disk when the package folder is writable).
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError

_KERNELS = None


def available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _kernels():
    global _KERNELS
    if _KERNELS is None:
        try:
            import numba
        except ImportError:
            raise InputError("backend='numba' needs the optional package numba: pip install numba "
                             "(or use backend='torch')") from None
        from . import _numba_kernels as k  # compiled at module level, so numba can cache them on disk

        _KERNELS = (numba, k.bpr_epoch, k.sgd_epoch)
    return _KERNELS


def _threads() -> int:
    import torch

    numba = _kernels()[0]
    return max(1, min(numba.get_num_threads(), torch.get_num_threads()))


def bpr(params, csr, gen):
    """(epoch function, finish) for BPR on numpy factors; factors initialised as the torch path does."""
    import torch

    _, bpr_epoch, _ = _kernels()
    n_users, n_items = csr.shape
    d = params["dim"]
    csr = csr.tocsr()
    csr.sort_indices()
    U = torch.cat([(torch.rand(n_users, d, generator=gen) - 0.5) / d, torch.ones(n_users, 1)], 1).numpy().copy()
    V = torch.cat([(torch.rand(n_items, d, generator=gen) - 0.5) / d, torch.zeros(n_items, 1)], 1).numpy().copy()
    indptr, indices = csr.indptr.astype(np.int64), csr.indices.astype(np.int64)
    rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
    threads = _threads()
    seeds = np.random.default_rng(params["seed"]).integers(0, 2**62, params["epochs"] + 1)
    epoch_no = [0]

    def epoch():
        epoch_no[0] += 1
        return bpr_epoch(U, V, indptr, indices, rows, np.float32(params["lr"]), np.float32(params["reg"]),
                         np.uint64(seeds[epoch_no[0]]), threads, len(indices))

    return epoch, lambda: {"user_factors": U[:, :-1].copy(), "item_factors": V[:, :-1].copy(),
                           "item_bias": V[:, -1].copy()}


def sgd(params, csr, gen):
    """(epoch function, finish) for explicit biased-MF SGD (Surprise's SVD updates)."""
    import torch

    _, _, sgd_epoch = _kernels()
    n_users, n_items = csr.shape
    d = params["dim"]
    mu = float(csr.data.mean())
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(csr.indptr))
    items = csr.indices.astype(np.int64)
    ratings = csr.data.astype(np.float32)
    P = (torch.randn(n_users, d, generator=gen) * 0.1).numpy().copy()
    Q = (torch.randn(n_items, d, generator=gen) * 0.1).numpy().copy()
    bu, bi = np.zeros(n_users, np.float32), np.zeros(n_items, np.float32)
    rng = np.random.default_rng(params["seed"])
    threads = _threads()

    def epoch():
        order = rng.permutation(len(ratings))
        return sgd_epoch(P, Q, bu, bi, users, items, ratings, order, np.float32(mu), np.float32(params["lr"]),
                         np.float32(params["reg"]), threads)

    return epoch, lambda: {"user_factors": P, "item_factors": Q, "user_bias": bu, "item_bias": bi,
                           "global_mean": mu}
