"""Training loops behind MatrixFactorization: pick the algorithm (``als.py``, ``bpr.py``, ``sgd.py``),
run the epochs, report progress; and the fold-in of one user with the item side fixed."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import numpy as np

from ..._device import resolve_device

log = logging.getLogger(__name__)


def train_factors(params: dict, csr, show_progress: bool, callback) -> dict:
    """Fit factors on a users x items CSR matrix. Returns numpy factors, biases and loss history.
    ``callback(epoch, loss)`` after every epoch, epochs counted from 1. Under torch.distributed
    (world size > 1) the ranks train together (:mod:`.distributed`); the state then also holds
    ``comm``, what this rank sent into collectives."""
    from ...distributed import world

    if world().size > 1:
        from .distributed import train_distributed

        return train_distributed(params, csr, show_progress, callback)
    if params["backend"] == "implicit":
        from .implicit_backend import train_implicit

        out = train_implicit(params, csr, show_progress, callback)
        check_finite(params, out)
        return out
    import torch

    device = resolve_device(params["device"], "MatrixFactorization")
    if params["batch_size"] == "auto":
        params["batch_size"] = 1024 if device.type == "cpu" else 8192
    gen = torch.Generator(device="cpu").manual_seed(params["seed"])
    if params["backend"] == "numba":
        return _train_numba(params, csr, gen, show_progress, callback)
    run = {("implicit", "als"): _implicit_als, ("implicit", "bpr"): _bpr,
           ("explicit", "als"): _explicit_als, ("explicit", "sgd"): _explicit_sgd}
    with _cpu_workers(device, csr.nnz) as pool, _progress(params, show_progress) as bar:
        epoch_fn, finish = run[(params["feedback"], params["method"])](params, csr, device, gen, pool)
        history = run_epochs(params, epoch_fn, bar, callback)
    out = {k: (v.detach().cpu().numpy().astype(np.float32) if isinstance(v, torch.Tensor) else v)
           for k, v in finish().items()}
    check_finite(params, out)
    out["loss_history"] = history
    return out


def _train_numba(params, csr, gen, show_progress, callback) -> dict:
    """BPR / explicit SGD with the compiled kernels of :mod:`.numba_backend` (CPU)."""
    from . import numba_backend

    make = numba_backend.bpr if params["method"] == "bpr" else numba_backend.sgd
    epoch_fn, finish = make(params, csr, gen)
    with _progress(params, show_progress) as bar:
        history = run_epochs(params, epoch_fn, bar, callback)
    out = {k: (np.asarray(v, dtype=np.float32) if isinstance(v, np.ndarray) else v) for k, v in finish().items()}
    check_finite(params, out)
    out["loss_history"] = history
    return out


def run_epochs(params: dict, epoch_fn, bar, callback) -> list[float]:
    """Call ``epoch_fn() -> loss`` for every epoch: stop on a loss that is not finite (under
    torch.distributed the loss is summed over the ranks, so every rank stops together), advance the
    bar, log, call ``callback(epoch, loss)``. Returns the loss history."""
    history = []
    for epoch in range(1, params["epochs"] + 1):
        loss = float(epoch_fn())
        if not np.isfinite(loss):
            raise diverged(params, f"epoch {epoch} loss is {loss}")
        history.append(loss)
        bar.update(1)
        bar.set_postfix(loss=f"{loss:.5g}")
        log.info("epoch %d/%d loss %.6g", epoch, params["epochs"], loss)
        if callback is not None:
            callback(epoch, loss)
    return history


def diverged(params: dict, what: str):
    """The one-line error of a training run that diverged (nothing is kept or saved)."""
    from ...errors import InputError

    if params.get("lr") is not None:
        fix = f"lower lr (now {params['lr']}) or raise reg (now {params['reg']})"
    else:
        fix = f"raise reg (now {params['reg']}) or scale the values down (confidence {params.get('confidence')})"
    return InputError(f"MatrixFactorization training diverged ({what}); nothing was kept: {fix}")


def check_finite(params: dict, state: dict) -> None:
    """InputError (see :func:`diverged`) when a trained factor or bias holds NaN or inf."""
    for name, value in state.items():
        if isinstance(value, np.ndarray) and not np.isfinite(value).all():
            rows = np.flatnonzero(~np.isfinite(value.reshape(len(value), -1)).all(1))
            raise diverged(params, f"{name} row {int(rows[0])} holds NaN/inf, {len(rows)} rows in all")


@contextmanager
def _cpu_workers(device, nnz: int):
    """On the CPU, yield a pool of ``torch.get_num_threads()`` Python threads (None for one)
    and run torch single-threaded meanwhile; restored afterwards.

    ALS hands each pool thread its own block of rows for a whole half-step, one parallel region
    instead of a dozen short OpenMP regions per CG step, whose barriers cost most of the time
    on a busy machine. SGD runs single-threaded: its batches are too small to gain from
    intra-op threads. Small problems (under 10k pairs) use one thread.
    """
    import torch

    if device.type != "cpu":
        yield None
        return
    from concurrent.futures import ThreadPoolExecutor

    old = torch.get_num_threads()
    # 10k, not 50k: on ML-100k-sized data (28k pairs) the pool took ALS from 1.5x/0.85x implicit's
    # fit time to 0.58x/0.75x (interleaved medians of 9, 2 threads, loaded machine: benchmarks/mf_bench.py --speed)
    workers = old if nnz >= 10_000 else 1
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(workers, thread_name_prefix="embedkit-mf") if workers > 1 else None
    if pool is not None:
        pool.workers = workers
    try:
        yield pool
    finally:
        if pool is not None:
            pool.shutdown()
        torch.set_num_threads(old)


def _progress(params, show_progress):
    from tqdm.auto import tqdm

    name = f"MF {params['feedback']} {params['method']}"
    return tqdm(total=params["epochs"], desc=name, unit="epoch", disable=not show_progress, leave=False)


def _generator_for(device, gen):
    """A generator on ``device`` seeded from ``gen`` (torch samples on the tensor's device)."""
    import torch

    if device.type == "cpu":
        return gen
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return torch.Generator(device=device).manual_seed(seed)


# --------------------------------------------------------------------- ALS
def _parts(pool) -> int:
    return 1 if pool is None else pool.workers


def _implicit_als(params, csr, device, gen, pool):
    import torch

    from .als import ImplicitSide, implicit_half_step

    n_users, n_items = csr.shape
    d, reg, steps = params["dim"], params["reg"], params["cg_steps"]
    users = ImplicitSide(csr, params["confidence"], device, _parts(pool))
    items = ImplicitSide(csr.T.tocsr(), params["confidence"], device, _parts(pool))
    # small positive start, as implicit does; items are solved first, so users end each epoch
    # as the exact least-squares answer to the final item factors (what fold_in computes)
    X = (torch.rand(n_users, d, generator=gen) * 0.01).to(device)
    Y = (torch.rand(n_items, d, generator=gen) * 0.01).to(device)
    weight = float(n_users) * float(n_items) + (users.const - csr.nnz)  # sum of all confidences

    def epoch():
        implicit_half_step(Y, X, items, reg, steps, pool)
        f = implicit_half_step(X, Y, users, reg, steps, pool)
        return (f + reg * float((Y * Y).sum())) / weight

    return epoch, lambda: {"user_factors": X, "item_factors": Y}


def _explicit_als(params, csr, device, gen, pool):
    import torch

    from .als import ExplicitSide, explicit_half_step

    n_users, n_items = csr.shape
    d, reg, steps = params["dim"], params["reg"], params["cg_steps"]
    mu = float(csr.data.mean())
    users = ExplicitSide(csr, device, _parts(pool))
    items = ExplicitSide(csr.T.tocsr(), device, _parts(pool))
    # rows are [factors | bias]
    P = torch.cat([torch.randn(n_users, d, generator=gen) * 0.1, torch.zeros(n_users, 1)], 1).to(device)
    Q = torch.cat([torch.randn(n_items, d, generator=gen) * 0.1, torch.zeros(n_items, 1)], 1).to(device)

    def epoch():
        explicit_half_step(Q, P, items, mu, reg, steps, pool)
        f = explicit_half_step(P, Q, users, mu, reg, steps, pool)
        return f / max(csr.nnz, 1)

    return epoch, lambda: {"user_factors": P[:, :-1], "item_factors": Q[:, :-1],
                           "user_bias": P[:, -1], "item_bias": Q[:, -1], "global_mean": mu}


# --------------------------------------------------------------------- SGD (bpr.py, sgd.py)
def _bpr(params, csr, device, gen, pool):
    import torch

    from .bpr import BPRData, bpr_epoch

    n_users, n_items = csr.shape
    d = params["dim"]
    data = BPRData(csr, device)
    # [factors | 1] for users and [factors | bias] for items
    U = torch.cat([(torch.rand(n_users, d, generator=gen) - 0.5) / d, torch.ones(n_users, 1)], 1).to(device)
    V = torch.cat([(torch.rand(n_items, d, generator=gen) - 0.5) / d, torch.zeros(n_items, 1)], 1).to(device)
    dgen = _generator_for(device, gen)

    def epoch():
        return bpr_epoch(U, V, data, params["lr"], params["reg"], params["batch_size"], dgen)

    return epoch, lambda: {"user_factors": U[:, :-1], "item_factors": V[:, :-1], "item_bias": V[:, -1]}


def _explicit_sgd(params, csr, device, gen, pool):
    import torch

    from .sgd import sgd_epoch

    n_users, n_items = csr.shape
    d = params["dim"]
    mu = float(csr.data.mean())
    users = torch.as_tensor(np.repeat(np.arange(n_users), np.diff(csr.indptr)), device=device)
    items = torch.as_tensor(csr.indices.astype(np.int64), device=device)
    ratings = torch.as_tensor(csr.data.astype(np.float32), device=device)
    P = (torch.randn(n_users, d, generator=gen) * 0.1).to(device)
    Q = (torch.randn(n_items, d, generator=gen) * 0.1).to(device)
    bu = torch.zeros(n_users, device=device)
    bi = torch.zeros(n_items, device=device)
    dgen = _generator_for(device, gen)

    def epoch():
        return sgd_epoch(P, Q, bu, bi, users, items, ratings, mu, params["lr"], params["reg"],
                         params["batch_size"], dgen)

    return epoch, lambda: {"user_factors": P, "item_factors": Q, "user_bias": bu, "item_bias": bi,
                           "global_mean": mu}


# ----------------------------------------------------------------- fold-in
def fold_in_user(params: dict, state: dict, codes: np.ndarray, values: np.ndarray):
    """(vector, bias) of one user from their item codes and values, item side fixed."""
    import torch

    Y = torch.from_numpy(state["item_factors"])
    if params["feedback"] == "implicit" and params["method"] == "als":
        from .als import implicit_fold_in

        gram = torch.from_numpy(state["gram"])
        return implicit_fold_in(Y, gram, codes, values, params["reg"], params["confidence"]).numpy(), 0.0
    if params["feedback"] == "implicit":
        from .bpr import bpr_fold_in

        bias = torch.from_numpy(state["item_bias"])
        return bpr_fold_in(Y, bias, codes, params["reg"], params["seed"]).numpy(), 0.0
    from .als import explicit_fold_in

    Q = torch.cat([Y, torch.from_numpy(state["item_bias"])[:, None]], 1)
    vec = explicit_fold_in(Q, codes, values, state["global_mean"], params["reg"]).numpy()
    return vec[:-1], float(vec[-1])
