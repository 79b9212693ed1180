"""Data-parallel training of the feature-table encoders under ``torch.distributed`` (DDP semantics).

In a single process (no process group) every function here returns its input or does nothing,
so world size 1 is exactly the one-process code path. Under a process group of N ranks:

* every rank holds the whole (standardised) table and the same modules: :func:`broadcast_modules`
  copies rank 0's weights to the others once the modules are built (a custom module built with a
  different seed on each rank starts equal too);
* each global minibatch is drawn from one permutation per epoch, rank 0's (:func:`shared_randperm`
  broadcasts it; the other ranks' generators then continue on streams of their own, so noise,
  sampled partners and corruptions differ between ranks), and each rank computes the loss on its
  part of the batch (:func:`rank_part`: ``ceil(B / N)`` rows each, the last part completed by
  repeating rows from the start of the batch, as torch's DistributedSampler pads), so every rank
  takes the same number of steps;
* before every optimiser step the gradients are averaged over the ranks in one flat all_reduce per
  (device, dtype) (:class:`GradAverage`, an optimiser step pre-hook active only while an epoch runs,
  removed after fit), so every rank applies the same update and ends with the same modules. A
  gradient that no rank has (a parameter unused in the step) stays None, as in one process;
* epoch losses and the autoencoder's validation loss are averaged over the ranks
  (:func:`rank_mean`), so the loss history and the best-epoch choice are the same on every rank.

For a loss that is a mean over rows and a batch split evenly (B a multiple of N) the averaged
gradient is the one-process gradient of the whole batch, up to the order of float additions. Losses
that compare rows within a batch do not have that property: InfoNCE's negatives, and the triplet and
contrastive miners' candidates, are the other rows of the RANK's part of the batch (``ceil(B / N)``
rows), not of the whole batch, as in DDP without a gather of the embeddings. N ranks with batch B
train like one process with batch B / N and N times fewer steps per epoch; a part of one row has no
negatives, so its InfoNCE gradient is zero.
"""

from __future__ import annotations

import logging
import threading
import weakref

import torch

from ... import distributed as ek_dist

log = logging.getLogger(__name__)

__all__ = ["rank_size", "rank_part", "shared_randperm", "broadcast_modules", "rank_mean", "rank_sum",
           "no_loss", "GradAverage", "begin_fit", "record_comm", "warn_small_parts"]

COMM_ATTRS = ek_dist.COMM_ATTRS  # set by a distributed fit only
_LOCAL = threading.local()  # the model whose fit runs in this thread, and the counters when it began
_SPLIT = 0x9E3779B97F4A7C15  # odd constant spreading the rank over the seed space


def rank_size() -> tuple[int, int]:
    """(rank, world size) of the process group; (0, 1) without one (a single process)."""
    if not ek_dist.is_distributed():
        return 0, 1
    import torch.distributed as dist  # called per batch and per step: no environment parsing here

    return dist.get_rank(), dist.get_world_size()


def warn_small_parts(owner: str, batch_rows: int) -> None:
    """At the start of an InfoNCE fit: warn (rank 0) when a rank's part of a batch of ``batch_rows`` rows has
    a single row, which has no negatives (its gradient is zero). Nothing in one process."""
    rank, size = rank_size()
    if size > 1 and rank == 0 and -(-batch_rows // size) < 2:
        log.warning("%s: each rank's part of a batch (%d rows over %d ranks) holds 1 row, which has no InfoNCE "
                    "negatives: its gradient is zero and the model does not train; raise batch_size", owner,
                    batch_rows, size)


def rank_part(idx: torch.Tensor) -> torch.Tensor:
    """This rank's part of the global batch ``idx``: ``ceil(B / N)`` rows, contiguous; the last ranks'
    parts are completed by repeating rows from the start of the batch, so every rank gets the same
    number of rows (at least one) and takes the same steps. ``idx`` itself in a single process."""
    rank, size = rank_size()
    b = len(idx)
    if size == 1 or b == 0:
        return idx
    c = -(-b // size)
    start = rank * c
    if start + c <= b:
        return idx[start:start + c]
    return idx[torch.arange(start, start + c, device=idx.device) % b]


def shared_randperm(n: int, gen: torch.Generator, device) -> torch.Tensor:
    """``torch.randperm(n, generator=gen)``; under a process group rank 0's permutation on every rank.

    Rank 0's generator keeps its stream (so rank 0 draws what one process would draw); the other
    ranks' generators are then reseeded from their own stream and their rank, so whatever they draw
    next (noise, partners, corrupted features) differs from rank 0's."""
    perm = torch.randperm(n, generator=gen, device=device)
    rank, size = rank_size()
    if size == 1:
        return perm
    ek_dist.broadcast_(perm, src=0)
    if rank != 0:
        draw = int(torch.randint(0, 2 ** 62, (1,), generator=gen, device=gen.device).item())
        gen.manual_seed((draw + rank * _SPLIT) % 2 ** 63)
    return perm


@torch.no_grad()
def broadcast_modules(model) -> None:
    """Copy rank 0's parameters and buffers of ``model._saved_modules()`` to every rank (nothing in a
    single process). Call once the modules are built, before the optimiser's first step."""
    if not ek_dist.is_distributed():
        return
    for module in model._saved_modules().values():
        for tensor in [*module.parameters(), *module.buffers()]:
            ek_dist.broadcast_(tensor.data, src=0)


rank_mean = ek_dist.mean_over_ranks  # a number averaged over the ranks (itself in one process)
rank_sum = ek_dist.sum_over_ranks    # a number summed over the ranks (itself in one process)


def no_loss(loss, opt) -> bool:
    """True when a step has no loss (``loss is None``: nothing to mine in the batch) and is skipped.

    Under a process group the other ranks may have a loss: this rank then still takes part in the
    step (with no gradient of its own) so that all ranks apply the same averaged update; when no
    rank has a loss the step changes nothing, as in one process."""
    if loss is not None:
        return False
    if ek_dist.is_distributed():
        opt.zero_grad(set_to_none=True)
        opt.step()
    return True


class GradAverage:
    """Average every optimiser's gradients over the ranks just before its step, while :attr:`active`.

    Registered as a global optimiser step pre-hook (``torch.optim.optimizer.register_optimizer_step_pre_hook``)
    by :meth:`__enter__` under a process group and removed by :meth:`__exit__`; it acts only in the
    thread that entered it. One flat all_reduce per (device, dtype) of the optimiser's parameters,
    with one presence flag per parameter, so a gradient that no rank has stays None."""

    def __init__(self):
        self.active = False
        self.steps = 0
        self._handle = None
        self._thread = threading.get_ident()

    def __enter__(self) -> "GradAverage":
        if ek_dist.is_distributed():
            from torch.optim.optimizer import register_optimizer_step_pre_hook

            self._handle = register_optimizer_step_pre_hook(self._pre_step)
        return self

    def __exit__(self, *exc) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _pre_step(self, opt, args, kwargs):
        if self.active and threading.get_ident() == self._thread:
            average_grads(opt)
            self.steps += 1
        return None


@torch.no_grad()
def average_grads(opt) -> None:
    """Replace the gradients of ``opt``'s parameters by their mean over the ranks (DDP's all_reduce)."""
    size = rank_size()[1]
    groups: dict = {}
    for group in opt.param_groups:
        for p in group["params"]:
            if p.requires_grad:
                groups.setdefault((p.device, p.dtype), []).append(p)
    for (device, dtype), params in groups.items():
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        flat = torch.zeros(total + len(params), dtype=dtype, device=device)
        off = 0
        for p, k in zip(params, sizes):
            if p.grad is not None:
                g = p.grad.to_dense() if p.grad.is_sparse else p.grad
                flat[off:off + k].copy_(g.reshape(-1))
            off += k
        flat[total:] = torch.tensor([p.grad is not None for p in params], dtype=dtype, device=device)
        ek_dist.all_reduce_sum_(flat)
        flat[:total].div_(size)
        present = (flat[total:] > 0).tolist()
        off = 0
        for p, k, has in zip(params, sizes, present):
            if has:
                avg = flat[off:off + k].view_as(p)
                if p.grad is None or p.grad.is_sparse:
                    p.grad = avg.clone()
                else:
                    p.grad.copy_(avg)
            off += k


def begin_fit(model, device) -> None:
    """At the start of a fit: join the process group when launched by torchrun (``setup``), forget the
    previous fit's traffic figures, and remember the counters to measure this fit's."""
    ek_dist.setup(device)
    ek_dist.set_comm(model, None)
    _LOCAL.model = weakref.ref(model)
    _LOCAL.before = ek_dist.comm_mark()


def record_comm(owner: str, grads: GradAverage) -> None:
    """At the end of training: under a process group set ``comm_bytes_`` / ``comm_seconds_`` (what this
    rank sent into collectives since the fit began) on the model and log them."""
    ref = getattr(_LOCAL, "model", None)
    _LOCAL.model = None
    if ref is None or not ek_dist.is_distributed():
        return
    model = ref()
    if model is None:
        return
    ek_dist.record_comm(model, _LOCAL.before)
    log.info("%s: %d averaged steps; %.2f MB sent (%.0f bytes per step), %.2fs in collectives", owner,
             grads.steps, model.comm_bytes_ / 1e6, model.comm_bytes_ / max(grads.steps, 1), model.comm_seconds_)
