"""Alternating least squares in torch: implicit feedback (Hu, Koren and Volinsky 2008) and
biased explicit ratings, on CPU or CUDA.

Each half-step solves, for every row u of one side with the other side Y fixed,

    (G + lam_u I + Y_u^T W_u Y_u) x_u = b_u

by a few conjugate-gradient steps warm-started from the previous x_u (Takacs, Pilaszy and
Tikk 2011, as in implicit). G is Y^T Y for implicit feedback (the "Y^T Y trick": the
unobserved items enter through one dense d x d matrix) and 0 for explicit ratings.
The sparse term never forms an (nnz, d) array: ``torch.sparse.sampled_addmm`` computes
the dot products y_i . v_u at the observed pairs (SDDMM) and a CSR matrix product scatters
them back (SpMM), both multithreaded library kernels.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def csr_tensor(indptr, indices, values, shape, device) -> torch.Tensor:
    """A torch CSR tensor (int64 indices, float32 values) on ``device``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(
            torch.as_tensor(np.asarray(indptr, dtype=np.int64), device=device),
            torch.as_tensor(np.asarray(indices, dtype=np.int64), device=device),
            torch.as_tensor(np.asarray(values, dtype=np.float32), device=device),
            size=tuple(shape))


def with_values(csr: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The same sparsity pattern as ``csr`` holding ``values``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(csr.crow_indices(), csr.col_indices(), values, size=csr.shape)


def sddmm(pattern: torch.Tensor, X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Values of (X @ Y.T) at the stored positions of ``pattern`` (rows of X, rows of Y)."""
    return torch.sparse.sampled_addmm(pattern, X, Y.T, beta=0.0).values()


class SparseTerm:
    """The observed part of the normal equations: v -> Y^T W (Y v) for every row at once."""

    def __init__(self, pattern: torch.Tensor, weights: torch.Tensor | None):
        self.pattern = pattern        # CSR rows x cols (values unused)
        self.weights = weights        # per stored pair; None means all ones

    def apply(self, V: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
        s = sddmm(self.pattern, V, Y)
        if self.weights is not None:
            s = s * self.weights
        return with_values(self.pattern, s) @ Y


def cg_solve(X: torch.Tensor, Y: torch.Tensor, term: SparseTerm, r: torch.Tensor,
             gram: torch.Tensor | None, lam: torch.Tensor, steps: int) -> None:
    """Improve every row of X in place by ``steps`` conjugate-gradient steps.

    ``r`` is the starting residual b - A X (the callers fold b into the same sparse product);
    lam is (n, 1): the ridge added to each row's diagonal. An empty block (no rows: a rank of a
    distributed fit with fewer users or items than ranks) has nothing to solve.
    """
    if X.shape[0] == 0:
        return
    p = r.clone()
    rs_old = (r * r).sum(1, keepdim=True)
    tiny = torch.finfo(X.dtype).tiny
    for _ in range(steps):
        if float(rs_old.max()) < 1e-20:
            break
        Ap = term.apply(p, Y).addcmul_(lam, p)
        if gram is not None:
            Ap.addmm_(p, gram)
        pAp = (p * Ap).sum(1, keepdim=True)
        alpha = torch.where(pAp > tiny, rs_old / pAp.clamp_min(tiny), torch.zeros_like(pAp))
        X.addcmul_(alpha, p)
        r.addcmul_(alpha, Ap, value=-1.0)
        rs_new = (r * r).sum(1, keepdim=True)
        beta = torch.where(rs_old > tiny, rs_new / rs_old.clamp_min(tiny), torch.zeros_like(rs_old))
        p.mul_(beta).add_(r)
        rs_old = rs_new


# --------------------------------------------------------------- row chunks
def row_chunks(indptr: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split rows into ``parts`` contiguous ranges of about equal work (stored pairs + rows)."""
    n = len(indptr) - 1
    if parts <= 1 or n < 4 * parts:
        return [(0, n)]
    cost = np.asarray(indptr, dtype=np.float64) + np.arange(n + 1)
    bounds = np.searchsorted(cost, np.linspace(0.0, cost[-1], parts + 1)[1:-1])
    edges = [0, *sorted(set(int(b) for b in bounds if 0 < b < n)), n]
    return list(zip(edges[:-1], edges[1:]))


def run_chunks(work, chunks, pool) -> float:
    """Sum of ``work(chunk)``; chunks run on the thread pool when there is one. Rows of
    different chunks are independent, so threads never touch the same rows, and torch
    kernels release the GIL: one parallel region per half-step instead of one per operation."""
    if pool is None or len(chunks) == 1:
        return float(sum(work(c) for c in chunks))
    return float(sum(pool.map(work, chunks)))


# ----------------------------------------------------------------- implicit ALS
class _ImplicitChunk:
    def __init__(self, csr, alpha: float, device, lo: int, hi: int):
        # Hu et al.: preference p = 1 where r > 0, confidence c = 1 + alpha * r
        conf = 1.0 + alpha * csr.data.astype(np.float64)
        self.lo, self.hi = lo, hi
        self.pattern = csr_tensor(csr.indptr, csr.indices, conf, csr.shape, device)
        self.conf = self.pattern.values()
        self.term = SparseTerm(self.pattern, self.conf - 1.0)
        self.const = float(conf.sum())  # sum of c * p^2 over observed pairs


class ImplicitSide:
    """One direction (users x items or items x users) of confidence-weighted data, in row chunks."""

    def __init__(self, csr, alpha: float, device, parts: int = 1):
        self.chunks = [_ImplicitChunk(csr[lo:hi], alpha, device, lo, hi) for lo, hi in row_chunks(csr.indptr, parts)]
        self.const = sum(c.const for c in self.chunks)


def implicit_half_step(X, Y, side: ImplicitSide, reg: float, steps: int, pool=None) -> float:
    """Update X given Y. Returns sum_u f_u(x_u) at the starting X (the data term plus
    reg |x_u|^2 summed over rows), which costs nothing extra to compute."""
    gram = Y.T @ Y

    def work(chunk):
        Xc = X[chunk.lo:chunk.hi]
        s = sddmm(chunk.pattern, Xc, Y)                      # x_u . y_i at observed pairs
        # r = b - A x with b = sum_i c_ui y_i (p_ui = 1): one sparse product for both terms
        r = with_values(chunk.pattern, chunk.conf - (chunk.conf - 1.0) * s) @ Y
        r.addmm_(Xc, gram, alpha=-1.0).add_(Xc, alpha=-reg)
        # f(x) = x^T A x - 2 b^T x + const = const - b^T x - x^T r, and b^T x = sum c_ui s_ui
        loss = chunk.const - float((chunk.conf * s).sum()) - float((Xc * r).sum())
        lam = torch.full((Xc.shape[0], 1), reg, dtype=X.dtype, device=X.device)
        cg_solve(Xc, Y, chunk.term, r, gram, lam, steps)
        return loss

    return run_chunks(work, side.chunks, pool)


def implicit_fold_in(Y, gram, items: np.ndarray, values: np.ndarray, reg: float, alpha: float) -> torch.Tensor:
    """Exact least-squares user vector for one user's items (no retraining)."""
    d = Y.shape[1]
    if len(items) == 0:
        return torch.zeros(d, dtype=Y.dtype, device=Y.device)
    idx = torch.as_tensor(items, dtype=torch.long, device=Y.device)
    conf = torch.as_tensor(1.0 + alpha * np.asarray(values, dtype=np.float64), dtype=torch.float64, device=Y.device)
    Yu = Y[idx].double()
    A = gram.double() + Yu.T @ ((conf - 1.0)[:, None] * Yu) + reg * torch.eye(d, dtype=torch.float64, device=Y.device)
    b = Yu.T @ conf
    return torch.linalg.solve(A, b).to(Y.dtype)


# ----------------------------------------------------------------- explicit ALS
class _ExplicitChunk:
    def __init__(self, csr, device, lo: int, hi: int):
        self.lo, self.hi = lo, hi
        self.pattern = csr_tensor(csr.indptr, csr.indices, csr.data, csr.shape, device)
        self.ratings = self.pattern.values()
        self.term = SparseTerm(self.pattern, None)
        self.counts = torch.as_tensor(np.diff(csr.indptr).astype(np.float32), device=device)[:, None]
        self.cols = self.pattern.col_indices()


class ExplicitSide:
    """One direction of a ratings matrix for biased ALS, in row chunks."""

    def __init__(self, csr, device, parts: int = 1):
        self.chunks = [_ExplicitChunk(csr[lo:hi], device, lo, hi) for lo, hi in row_chunks(csr.indptr, parts)]


def explicit_half_step(P, Q, side: ExplicitSide, mu: float, reg: float, steps: int, pool=None) -> float:
    """Update P = [x | b] (rows of this side) given Q = [y | b] of the other side.

    Minimises sum (r - mu - b_u - b_i - x.y)^2 + reg * n_u * (|x|^2 + b_u^2) per row
    (weighted-lambda regularisation, Zhou et al. 2008). Returns the summed objective at the
    starting P.
    """
    feats = torch.cat([Q[:, :-1], torch.ones_like(Q[:, -1:])], dim=1)   # [y_i, 1]

    def work(chunk):
        Pc = P[chunk.lo:chunk.hi]
        target = chunk.ratings - mu - Q[chunk.cols, -1]                  # r - mu - b_i
        s = sddmm(chunk.pattern, Pc, feats)
        lam = reg * chunk.counts.clamp_min(1.0)
        r = (with_values(chunk.pattern, target - s) @ feats).addcmul_(lam, Pc, value=-1.0)   # b - A p
        loss = float((target * target).sum()) - float((target * s).sum()) - float((Pc * r).sum())
        cg_solve(Pc, feats, chunk.term, r, None, lam, steps)
        return loss

    return run_chunks(work, side.chunks, pool)


def explicit_fold_in(Q, items: np.ndarray, ratings: np.ndarray, mu: float, reg: float) -> torch.Tensor:
    """Exact [x, b_u] for one user's ratings given item rows Q = [y | b]."""
    d1 = Q.shape[1]
    if len(items) == 0:
        return torch.zeros(d1, dtype=Q.dtype, device=Q.device)
    idx = torch.as_tensor(items, dtype=torch.long, device=Q.device)
    Qu = Q[idx].double()
    feats = torch.cat([Qu[:, :-1], torch.ones_like(Qu[:, -1:])], dim=1)
    t = torch.as_tensor(np.asarray(ratings, dtype=np.float64), device=Q.device) - mu - Qu[:, -1]
    A = feats.T @ feats + reg * len(items) * torch.eye(d1, dtype=torch.float64, device=Q.device)
    return torch.linalg.solve(A, feats.T @ t).to(Q.dtype)
