"""MatrixFactorization on ``torch.distributed`` (world size > 1; see :mod:`embedkit.distributed`).

Every rank reads the whole interactions input (the same file, the same options: checked) and
keeps its part. Users and items are split into contiguous blocks, one per rank
(:func:`~embedkit.distributed.shard_slice`). At scale each rank would read only its block's rows;
at the sizes one machine holds, reading everything is simpler and costs little.

ALS (implicit and explicit): the block-partitioned ALS of Spark MLlib. Each half-step, a rank
solves the least-squares problems of its block of rows with the other side's factors fixed (the
same conjugate-gradient solves as one process, :mod:`.als`), then the blocks are exchanged with
``all_gather_rows`` so every rank holds all the factors again. The implicit Gram matrix Y^T Y is
computed on every rank from the gathered factors. The result equals one process's to within float
rounding (the same solves, in blocks). ``backend="implicit"`` (which cannot solve a block of rows)
runs this torch solver under world size > 1.

BPR and explicit SGD: data parallel. A rank trains on the interactions of its block of users
(so it alone updates those users' vectors, as one process would) and holds a replica of the item
table. Every ``sync_every`` fraction of an epoch the ranks add up the changes they made to the
item table since the last sync (one ``all_reduce`` of an items x (dim + 1) table); at the end the
user blocks are gathered. Summing the changes (not averaging the tables) gives each item the
updates of all its interactions per epoch, as in one process; it is Hogwild's lock-free SGD with a
delay of ``sync_every`` epoch (averaging would give each item 1/N of its updates per epoch on N
ranks). ``backend="numba"`` runs its compiled kernels between the syncs (BPR: steps drawn from the
rank's block of pairs; SGD: the rank's shuffled order, part by part).

Parameters start equal on every rank (the same seed draws the same factors); each rank samples
its own stream (the seed plus its rank), so a 2-process BPR/SGD model differs from a 1-process one
by sampling, not by quality (tests/test_dist_mf.py states the tolerance).
"""

from __future__ import annotations

import logging

import numpy as np

from ... import distributed as ek_dist
from ..._device import resolve_device

log = logging.getLogger(__name__)


def train_distributed(params: dict, csr, show_progress: bool, callback) -> dict:
    """:func:`.fit.train_factors` for world size > 1: the same state dict, plus ``comm``
    (bytes and seconds this rank spent in collectives during the fit)."""
    import torch

    from .fit import _cpu_workers, _progress, check_finite, run_epochs

    numba = params["backend"] == "numba"
    # numba's kernels run on the CPU whatever the device parameter says (it warns that it is ignored)
    device = torch.device("cpu") if numba else resolve_device(params["device"], "MatrixFactorization")
    w = ek_dist.setup(device)
    if params["backend"] == "implicit":
        log.info("backend='implicit' under %d processes: training with embedkit's torch %s instead (the implicit "
                 "package cannot solve one block of rows)", w.size, params["method"].upper())
    if params["batch_size"] == "auto":
        params["batch_size"] = 1024 if device.type == "cpu" else 8192
    csr = csr.tocsr()
    ek_dist.same_on_all_ranks(np.array([csr.shape[0], csr.shape[1], csr.nnz, float(csr.data.sum())]),
                              "the interactions (users, items, pairs, sum of values)")
    start = ek_dist.comm_mark()
    gen = torch.Generator(device="cpu").manual_seed(params["seed"])  # the same start on every rank
    run = {("implicit", "als"): _implicit_als, ("implicit", "bpr"): _bpr,
           ("explicit", "als"): _explicit_als, ("explicit", "sgd"): _explicit_sgd}[(params["feedback"], params["method"])]
    us = ek_dist.shard_slice(csr.shape[0], w)
    with _cpu_workers(device, int(csr.indptr[us.stop] - csr.indptr[us.start])) as pool, \
            _progress(params, show_progress and w.main) as bar:
        epoch_fn, finish = run(params, csr, device, gen, pool, w, numba)
        history = run_epochs(params, epoch_fn, bar, callback)  # the loss is summed over the ranks
        state = finish()
    out = {k: (v.detach().cpu().numpy().astype(np.float32) if isinstance(v, torch.Tensor) else v)
           for k, v in state.items()}
    check_finite(params, out)
    out["comm"] = ek_dist.comm_since(start)
    out["loss_history"] = history
    return out


def _parts(pool) -> int:
    return 1 if pool is None else pool.workers


# --------------------------------------------------------------------- ALS
def _implicit_als(params, csr, device, gen, pool, w, _numba):
    import torch

    from .als import ImplicitSide, implicit_half_step

    n_users, n_items = csr.shape
    d, reg, steps, alpha = params["dim"], params["reg"], params["cg_steps"], params["confidence"]
    us, its = ek_dist.shard_slice(n_users, w), ek_dist.shard_slice(n_items, w)
    users = ImplicitSide(csr[us], alpha, device, _parts(pool))
    items = ImplicitSide(csr.T.tocsr()[its], alpha, device, _parts(pool))
    # the same start as one process (fit._implicit_als): every rank draws the full tables
    X = (torch.rand(n_users, d, generator=gen) * 0.01).to(device)
    Y = (torch.rand(n_items, d, generator=gen) * 0.01).to(device)
    const = float((1.0 + alpha * csr.data.astype(np.float64)).sum())
    weight = float(n_users) * float(n_items) + (const - csr.nnz)  # sum of all confidences

    def epoch():
        # solve this rank's items given all users (Gram X^T X from the full X), then share the blocks
        implicit_half_step(Y[its], X, items, reg, steps, pool)
        Y.copy_(ek_dist.all_gather_rows(Y[its]))
        f = implicit_half_step(X[us], Y, users, reg, steps, pool)
        X.copy_(ek_dist.all_gather_rows(X[us]))
        return (ek_dist.sum_over_ranks(float(f)) + reg * float((Y * Y).sum())) / weight

    return epoch, lambda: {"user_factors": X, "item_factors": Y}


def _explicit_als(params, csr, device, gen, pool, w, _numba):
    import torch

    from .als import ExplicitSide, explicit_half_step

    n_users, n_items = csr.shape
    d, reg, steps = params["dim"], params["reg"], params["cg_steps"]
    mu = float(csr.data.mean())
    us, its = ek_dist.shard_slice(n_users, w), ek_dist.shard_slice(n_items, w)
    users = ExplicitSide(csr[us], device, _parts(pool))
    items = ExplicitSide(csr.T.tocsr()[its], device, _parts(pool))
    P = torch.cat([torch.randn(n_users, d, generator=gen) * 0.1, torch.zeros(n_users, 1)], 1).to(device)
    Q = torch.cat([torch.randn(n_items, d, generator=gen) * 0.1, torch.zeros(n_items, 1)], 1).to(device)

    def epoch():
        explicit_half_step(Q[its], P, items, mu, reg, steps, pool)
        Q.copy_(ek_dist.all_gather_rows(Q[its]))
        f = explicit_half_step(P[us], Q, users, mu, reg, steps, pool)
        P.copy_(ek_dist.all_gather_rows(P[us]))
        return ek_dist.sum_over_ranks(float(f)) / max(csr.nnz, 1)

    return epoch, lambda: {"user_factors": P[:, :-1], "item_factors": Q[:, :-1],
                           "user_bias": P[:, -1], "item_bias": Q[:, -1], "global_mean": mu}


# ----------------------------------------------------------- data parallel SGD
class _ItemSync:
    """Sums the changes every rank made to the item-side tensors since the last sync."""

    def __init__(self, tensors):
        self.tensors = tensors
        self.base = [t.clone() for t in tensors]

    def __call__(self) -> None:
        for t, base in zip(self.tensors, self.base):
            ek_dist.all_reduce_sum_(t.sub_(base))  # t holds this rank's change, then the sum of everyone's
            t.add_(base)
            base.copy_(t)


def _segments(n: int, sync_every: float) -> np.ndarray:
    """Bounds of the ``ceil(1 / sync_every)`` parts of an epoch of ``n`` samples (the same count on every rank)."""
    from ..sgns.distributed import syncs_per_epoch

    return np.linspace(0, n, syncs_per_epoch(sync_every) + 1).round().astype(np.int64)


def _rank_generator(gen, w, device):
    """A sampling stream of its own for this rank: a seed drawn from ``gen`` plus the rank."""
    import torch

    seed = int(torch.randint(0, 2**62, (1,), generator=gen)) + w.rank
    return torch.Generator(device=device).manual_seed(seed)


class _Part:
    """The samples of one part of an epoch, with the block's negatives: what :func:`.bpr.bpr_epoch` reads."""

    def __init__(self, data, users, items):
        self.data, self.users, self.items = data, users, items

    def negatives(self, users, gen):
        return self.data.negatives(users, gen)


def _bpr(params, csr, device, gen, pool, w, numba):
    import torch

    from .bpr import BPRData, bpr_epoch

    n_users, n_items = csr.shape
    d = params["dim"]
    us = ek_dist.shard_slice(n_users, w)
    data = BPRData(csr[us], device)  # this rank's users (rows from 0), all items; negatives by popularity
    U = torch.cat([(torch.rand(n_users, d, generator=gen) - 0.5) / d, torch.ones(n_users, 1)], 1).to(device)
    V = torch.cat([(torch.rand(n_items, d, generator=gen) - 0.5) / d, torch.zeros(n_items, 1)], 1).to(device)
    Ub = U[us].clone()
    dgen = _rank_generator(gen, w, device)
    sync = _ItemSync([V])
    n = len(data.users)
    bounds = _segments(n, params["sync_every"])
    kernel = _numba_bpr(params, csr[us], Ub, V, w) if numba else None

    def epoch():
        order = torch.randperm(n, generator=dgen, device=device)
        total = 0.0
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi > lo and kernel is not None:
                total += kernel(int(hi - lo)) * (hi - lo)
            elif hi > lo:
                part = order[lo:hi]
                sub = _Part(data, data.users.index_select(0, part), data.items.index_select(0, part))
                total += bpr_epoch(Ub, V, sub, params["lr"], params["reg"], params["batch_size"], dgen) * (hi - lo)
            sync()
        return ek_dist.sum_over_ranks(float(total)) / max(csr.nnz, 1)

    def finish():
        U.copy_(ek_dist.all_gather_rows(Ub))
        return {"user_factors": U[:, :-1], "item_factors": V[:, :-1], "item_bias": V[:, -1]}

    return epoch, finish


def _explicit_sgd(params, csr, device, gen, pool, w, numba):
    import torch

    from .sgd import sgd_epoch

    n_users, n_items = csr.shape
    d = params["dim"]
    mu = float(csr.data.mean())
    us = ek_dist.shard_slice(n_users, w)
    block = csr[us]
    P = (torch.randn(n_users, d, generator=gen) * 0.1).to(device)
    Q = (torch.randn(n_items, d, generator=gen) * 0.1).to(device)
    bu = torch.zeros(n_users, device=device)
    bi = torch.zeros(n_items, device=device)
    Pb, bub = P[us].clone(), bu[us].clone()
    users = torch.as_tensor(np.repeat(np.arange(block.shape[0]), np.diff(block.indptr)), device=device)
    items = torch.as_tensor(block.indices.astype(np.int64), device=device)
    ratings = torch.as_tensor(block.data.astype(np.float32), device=device)
    dgen = _rank_generator(gen, w, device)
    sync = _ItemSync([Q, bi])
    n = len(ratings)
    bounds = _segments(n, params["sync_every"])
    kernel = _numba_sgd(params, mu, Pb, Q, bub, bi, users, items, ratings) if numba else None

    def epoch():
        order = torch.randperm(n, generator=dgen, device=device)
        total = 0.0
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            if hi > lo:
                part = order[lo:hi]
                if kernel is not None:
                    total += kernel(part.numpy()) * (hi - lo)
                else:
                    total += sgd_epoch(Pb, Q, bub, bi, users.index_select(0, part), items.index_select(0, part),
                                       ratings.index_select(0, part), mu, params["lr"], params["reg"],
                                       params["batch_size"], dgen) * (hi - lo)
            sync()
        return ek_dist.sum_over_ranks(float(total)) / max(csr.nnz, 1)

    def finish():
        P.copy_(ek_dist.all_gather_rows(Pb))
        bu.copy_(ek_dist.all_gather_rows(bub))
        return {"user_factors": P, "item_factors": Q, "user_bias": bu, "item_bias": bi, "global_mean": mu}

    return epoch, finish


def _numba_sgd(params, mu, Pb, Q, bub, bi, users, items, ratings):
    """The compiled SGD kernel of :mod:`.numba_backend` over one part of an epoch (a slice of the
    rank's shuffled order), updating the torch tensors in place through numpy views."""
    from .numba_backend import _kernels, _threads

    sgd_epoch = _kernels()[2]
    arrays = [t.numpy() for t in (Pb, Q, bub, bi, users, items, ratings)]
    threads = _threads()

    def run(order: np.ndarray) -> float:
        return float(sgd_epoch(*arrays, order.astype(np.int64), np.float32(mu), np.float32(params["lr"]),
                               np.float32(params["reg"]), threads))

    return run


def _numba_bpr(params, block, Ub, V, w):
    """The compiled BPR kernel of :mod:`.numba_backend` for ``n`` steps drawn from this rank's block
    of pairs (users numbered from 0 in the block), updating the torch tensors in place."""
    from .numba_backend import _kernels, _threads

    bpr_epoch = _kernels()[1]
    block = block.tocsr()
    block.sort_indices()
    indptr, indices = block.indptr.astype(np.int64), block.indices.astype(np.int64)
    rows = np.repeat(np.arange(block.shape[0], dtype=np.int64), np.diff(indptr))
    Un, Vn = Ub.numpy(), V.numpy()
    threads = _threads()
    rng = np.random.default_rng([params["seed"], w.rank])  # a stream of its own per rank

    def run(n: int) -> float:
        if len(indices) == 0:
            return 0.0
        return float(bpr_epoch(Un, Vn, indptr, indices, rows, np.float32(params["lr"]), np.float32(params["reg"]),
                               np.uint64(rng.integers(0, 2**62)), threads, n))

    return run
