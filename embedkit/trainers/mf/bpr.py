"""Bayesian personalised ranking (Rendle et al., "BPR: Bayesian Personalized Ranking from
Implicit Feedback", UAI 2009) in torch, for implicit feedback: training by mini-batch SGD
(:func:`bpr_epoch`, negatives drawn by popularity as in implicit) and fold-in of one user by
Newton's method (:func:`bpr_fold_in`).

Mini-batches as in explicit SGD (:mod:`.sgd`): every sample of a batch reads the current factors
and all updates are added at once with ``index_add_``.
"""

from __future__ import annotations

import numpy as np
import torch


def _uniform_ints(n: int, high: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.randint(0, high, (n,), generator=gen, device=device)


class BPRData:
    """Positive pairs of a users x items CSR matrix, ready for sampling on ``device``."""

    _BITMAP_LIMIT = 2 ** 31  # bits: use a 256 MB bitmap at most, else binary search

    def __init__(self, csr, device):
        self.n_users, self.n_items = csr.shape
        rows = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        self.users = torch.as_tensor(rows, device=device)
        self.items = torch.as_tensor(csr.indices.astype(np.int64), device=device)
        codes = rows * self.n_items + csr.indices  # CSR order: already sorted
        self.device = device
        self.bitmap = None
        if self.n_users * self.n_items <= self._BITMAP_LIMIT:
            # one bit per (user, item): a membership test is a gather, not a binary search
            words = np.zeros((self.n_users * self.n_items + 63) // 64, dtype=np.uint64)
            np.bitwise_or.at(words, codes >> 6, np.left_shift(np.uint64(1), (codes & 63).astype(np.uint64)))
            self.bitmap = torch.as_tensor(words.view(np.int64), device=device)
        else:
            self.codes = torch.as_tensor(codes, device=device)

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        codes = users * self.n_items + items
        if self.bitmap is not None:
            return ((self.bitmap.index_select(0, codes >> 6) >> (codes & 63)) & 1).bool()
        pos = torch.searchsorted(self.codes, codes).clamp_max(len(self.codes) - 1)
        return self.codes[pos] == codes

    def _draw(self, n: int, gen: torch.Generator) -> torch.Tensor:
        # the item of a random stored pair: items in proportion to their popularity
        return self.items.index_select(0, _uniform_ints(n, len(self.items), gen, self.device))

    def negatives(self, users: torch.Tensor, gen: torch.Generator, tries: int = 8) -> torch.Tensor:
        """Items the user has not interacted with, drawn in proportion to item popularity (as
        implicit does; popular items the user skipped are the informative negatives on
        long-tailed data), re-drawn up to ``tries`` times when the draw is a positive."""
        neg = self._draw(len(users), gen)
        for _ in range(tries):
            bad = torch.nonzero(self.is_positive(users, neg)).flatten()
            if len(bad) == 0:
                break
            neg[bad] = self._draw(len(bad), gen)
        return neg


def _bpr_steps(U, V, u, i, j, lr: float, reg: float, keep):
    """SGD steps of BPR for one slice of samples, read from the current U and V (not applied).

    u += lr (z (y_i - y_j) - reg u); y_i += lr (z u - reg y_i); y_j -= lr (z u + reg y_j), with
    z = sigmoid(-x_uij) the derivative of log sigmoid(x_uij). Returns (loss sum, steps for u, i, j).
    """
    xu, yi, yj = U.index_select(0, u), V.index_select(0, i), V.index_select(0, j)
    diff = yi - yj
    x = (xu * diff).sum(1, keepdim=True)
    loss = torch.nn.functional.softplus(-x).sum()
    z = torch.sigmoid(-x)
    step_u = diff.mul_(z).sub_(xu, alpha=reg).mul_(keep)
    zu = xu.mul_(z * lr)
    return loss, step_u, yi.mul_(-lr * reg).add_(zu), yj.mul_(-lr * reg).sub_(zu)


def bpr_epoch(U, V, data: BPRData, lr: float, reg: float, batch_size: int, gen: torch.Generator) -> float:
    """One epoch (nnz samples) of BPR-Opt, updating U and V in place.

    The item bias is V's last column and U's last column is a constant 1 (as in implicit), so
    one dot product scores x_ui = u . v_i + b_i. The epoch's (user, positive, negative) triples
    are drawn up front in one vectorised pass. Returns the epoch's mean -log sigmoid(x_ui - x_uj).
    """
    n = len(data.users)
    pick = torch.randint(0, n, (n,), generator=gen, device=U.device)   # sampled with replacement
    users, pos = data.users.index_select(0, pick), data.items.index_select(0, pick)
    neg = data.negatives(users, gen)
    total = torch.zeros((), dtype=torch.float32, device=U.device)
    keep = torch.full((U.shape[1],), lr, dtype=U.dtype, device=U.device)
    keep[-1] = 0.0                                                     # the user's constant 1 stays
    for start in range(0, n, batch_size):
        u, i, j = users[start:start + batch_size], pos[start:start + batch_size], neg[start:start + batch_size]
        loss, step_u, step_i, step_j = _bpr_steps(U, V, u, i, j, lr, reg, keep)
        total += loss
        U.index_add_(0, u, step_u)
        V.index_add_(0, i, step_i)
        V.index_add_(0, j, step_j)
    return float(total) / max(n, 1)


def bpr_fold_in(V, bias, items: np.ndarray, reg: float, seed: int, negatives: int = 64,
                steps: int = 25) -> torch.Tensor:
    """A user vector for ``items`` with the item factors fixed.

    Minimises the user's BPR objective, mean softplus(-(x.(y_i - y_j) + b_i - b_j)) + reg/2 |x|^2
    over the positives i and ``negatives`` sampled items j each, by Newton's method (the
    objective is convex in x, so this is its unique minimum for that sample).
    """
    d = V.shape[1]
    x = torch.zeros(d, dtype=torch.float64)
    if len(items) == 0:
        return x.to(V.dtype)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    Vc, bc = V.detach().double().cpu(), bias.detach().double().cpu()
    pos = torch.as_tensor(np.asarray(items, dtype=np.int64))
    mask = torch.zeros(V.shape[0], dtype=torch.bool)
    mask[pos] = True
    candidates = torch.nonzero(~mask).flatten()
    if len(candidates) == 0:
        return x.to(V.dtype)
    neg = candidates[torch.randint(0, len(candidates), (len(pos), negatives), generator=gen)]
    diff = (Vc[pos][:, None, :] - Vc[neg]).reshape(-1, d)
    bdiff = (bc[pos][:, None] - bc[neg]).reshape(-1)
    eye = torch.eye(d, dtype=torch.float64)
    for _ in range(steps):
        z = torch.sigmoid(-(diff @ x + bdiff))
        grad = -(z[:, None] * diff).mean(0) + reg * x
        hess = (diff.T * (z * (1 - z))) @ diff / len(z) + reg * eye
        step = torch.linalg.solve(hess, grad)
        x = x - step
        if float(step.norm()) < 1e-8 * (1.0 + float(x.norm())):
            break
    return x.to(V.dtype)
