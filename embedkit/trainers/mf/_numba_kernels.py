"""The numba kernels of :mod:`.numba_backend` (imported only when backend="numba" is used:
numba is optional). Module-level functions, so ``cache=True`` keeps the compiled code on disk."""

import numpy as np
from numba import njit, prange


@njit(inline="always")
def _rand(st):  # xorshift64*: one state per thread chunk
    x = st[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    st[0] = x
    return x * np.uint64(2685821657736338717)


@njit(inline="always")
def _below(st, n):
    """A uniform int in [0, n) for n < 2**32 (Lemire's multiply-shift, no division)."""
    return np.int64(((_rand(st) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))

@njit(inline="always")
def _is_pos(indptr, indices, u, j):
    lo, hi = indptr[u], indptr[u + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < j:
            lo = mid + 1
        else:
            hi = mid
    return lo < indptr[u + 1] and indices[lo] == j

@njit(parallel=True, fastmath=True, cache=True)
def bpr_epoch(U, V, indptr, indices, rows, lr, reg, seed, n_threads, n_samples):
    """``n_samples`` SGD steps (an epoch: ``len(indices)``) on pairs drawn from the CSR (indptr, indices)."""
    n = len(indices)
    d1 = U.shape[1]
    chunk = (n_samples + n_threads - 1) // n_threads
    losses = np.zeros(n_threads)
    one = np.float32(1.0)
    for t in prange(n_threads):
        st = np.empty(1, np.uint64)
        st[0] = np.uint64(seed) * np.uint64(6364136223846793005) + np.uint64(2 * t + 1)
        loss = 0.0
        for _ in range(t * chunk, min(n_samples, (t + 1) * chunk)):
            p = _below(st, n)
            u, i = rows[p], indices[p]
            j = indices[_below(st, n)]  # by popularity: the item of a random pair
            for _try in range(8):
                if not _is_pos(indptr, indices, u, j):
                    break
                j = indices[_below(st, n)]
            uu, vi, vj = U[u], V[i], V[j]
            x = np.float32(0.0)
            for f in range(d1):
                x += uu[f] * (vi[f] - vj[f])
            e = np.exp(-abs(x))
            if x > 0:
                loss += np.log1p(e)
                z = e / (one + e)
            else:
                loss += -x + np.log1p(e)
                z = one / (one + e)
            for f in range(d1 - 1):  # the user's last column is the constant 1 that meets the item bias
                uf, a, b = uu[f], vi[f], vj[f]
                uu[f] = uf + lr * (z * (a - b) - reg * uf)
                vi[f] = a + lr * (z * uf - reg * a)
                vj[f] = b + lr * (-z * uf - reg * b)
            last = d1 - 1
            a, b = vi[last], vj[last]
            vi[last] = a + lr * (z - reg * a)
            vj[last] = b + lr * (-z - reg * b)
        losses[t] = loss
    return losses.sum() / max(n_samples, 1)


@njit(parallel=True, fastmath=True, cache=True)
def sgd_epoch(P, Q, bu, bi, users, items, ratings, order, mu, lr, reg, n_threads):
    n = len(order)
    d = P.shape[1]
    chunk = (n + n_threads - 1) // n_threads
    losses = np.zeros(n_threads)
    for t in prange(n_threads):
        loss = 0.0
        for s in range(t * chunk, min(n, (t + 1) * chunk)):
            k = order[s]
            u, i = users[k], items[k]
            dot = 0.0
            for f in range(d):
                dot += P[u, f] * Q[i, f]
            err = ratings[k] - (mu + bu[u] + bi[i] + dot)
            loss += err * err
            bu[u] += lr * (err - reg * bu[u])
            bi[i] += lr * (err - reg * bi[i])
            for f in range(d):
                pf, qf = P[u, f], Q[i, f]
                P[u, f] = pf + lr * (err * qf - reg * pf)
                Q[i, f] = qf + lr * (err * pf - reg * qf)
        losses[t] = loss
    return losses.sum() / max(n, 1)
