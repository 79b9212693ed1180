"""Skip-gram training past one process: Hogwild on each rank + periodic model averaging.

Each rank trains its own replica on its shard of the data (sentences of the corpus, or start
nodes of the walks) and the replicas are averaged with ``all_reduce`` a fixed number of times
per epoch, ``ceil(1 / sync_every)``: when the rank has trained on each ``sync_every`` fraction
of its shard, and once more at the end of the epoch, so the last epoch ends with one model on
every rank. This is the scheme of BlazingText (Gupta & Khare, 2017) and of Ji et al.,
"Parallelizing Word2Vec in Shared and Distributed Memory" (2016): no parameter server, bytes
per sync = the input and output tables (``2 x rows x dim x 4`` bytes for the torch engine).

Every rank starts from the same parameters (rank 0's, broadcast), and draws its own random
stream (``seed_offset``: negatives, subsampling, windows; the walks' seeds likewise), so the
ranks do not repeat each other's noise. Each rank's learning rate decays from ``N x lr`` to
``N x min_lr`` over its own shard (:func:`replica_rates`: averaging N replicas divides each
update by N, so the averaged model follows the one-process schedule ``lr -> min_lr`` as a
function of the share of the run done). The loss of an epoch is summed over the ranks (loss and
example counts), so every rank reports the job's mean loss.

:class:`Sync` is the torch engine's hook (:func:`~embedkit.trainers.sgns.engine.train_skipgram`
``sync=``); :data:`NO_SYNC` is the single-process no-op, which leaves the one-process code path
exactly as it was. The gensim backend's sharded loop lives in
:mod:`embedkit.trainers.sgns.dist_gensim`.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from ...errors import InputError

log = logging.getLogger(__name__)

__all__ = ["Averager", "Sync", "NO_SYNC", "replica_rates", "syncs_per_epoch", "sync_for", "strided", "check_vocab",
           "check_shards", "check_graph", "sum_counts", "refuse", "rank_seed", "comm_mark", "record_comm", "SYNC_EVERY",
           "SYNC_EVERY_MIN", "agreed_syncs", "lr_text"]

SYNC_EVERY = 0.25   # default fraction of an epoch between two averages (4 averages per epoch)
SYNC_EVERY_MIN = 1e-3   # at most 1000 averages per epoch (each sends the whole tables)


def lr_text(replica_lr: float) -> str:
    """"lr=<the user's rate>" for an error message, given the rate a replica trains with (N x lr under
    N ranks, see :func:`replica_rates`); says so under a process group."""
    from ... import distributed as ek_dist

    n = ek_dist.world().size if ek_dist.is_distributed() else 1
    return f"lr={float(replica_lr) / n:g}" + (f" ({n} x that per replica under {n} ranks)" if n > 1 else "")


def agreed_syncs(n: int, steps: int) -> int:
    """``n`` capped at the fewest training steps (batches, parts) any rank makes in an epoch, so that
    every rank averages the same number of times and at most once per step (a collective on every
    rank; ``n`` in a single process)."""
    import torch

    from ... import distributed as ek_dist

    if not ek_dist.is_distributed():
        return n
    w = ek_dist.world()
    every = torch.zeros(w.size, dtype=torch.float64)
    every[w.rank] = float(max(1, int(steps)))
    ek_dist.all_reduce_sum_(every)
    return max(1, min(int(n), int(every.min())))


def replica_rates(lr: float, min_lr: float) -> tuple[float, float]:
    """The learning rates each of N ranks trains its replica with: N x ``lr`` and N x ``min_lr``.

    Averaging N replicas divides every update by N: each example of the job moves the averaged
    model by ``lr / N``, so plain averaging trains as one process at ``lr / N`` would. Measured
    (2 ranks, benchmarks in docs/word2vec.md): at the same rate, 2 ranks learned on a planted-topic
    corpus what one process at ``lr / 2`` learns (neighbour purity 0.005 against 0.30) and
    node2vec on a planted-partition graph fell from 0.998 to 0.31; at 2 x the rate both matched one
    process (0.27, 0.998). This is the linear scaling rule of large-batch SGD (Goyal et al. 2017).
    In a single process the rates are unchanged."""
    from ... import distributed as ek_dist

    n = ek_dist.world().size if ek_dist.is_distributed() else 1
    return float(lr) * n, float(min_lr) * n


def syncs_per_epoch(sync_every: float) -> int:
    """Averages per epoch for a ``sync_every`` fraction in (0, 1]: ``ceil(1 / sync_every)``."""
    return max(1, int(math.ceil(1.0 / float(sync_every) - 1e-9)))


def rank_seed(seed: int, rank: int) -> int:
    """A seed for rank ``rank``'s random draws: ``seed`` itself on rank 0, an independent one elsewhere."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1, np.uint32)[0])


class _NoSync:
    """The single-process hook: does nothing, changes nothing."""

    seed_offset = 0

    def start(self, tables, lr, min_lr, steps=None):
        return lr, min_lr

    def step(self, tables, fraction: float):
        pass

    def end_epoch(self, tables, loss_sum, examples: int, seen: int):
        return loss_sum, examples, seen


NO_SYNC = _NoSync()


class Averager:
    """What both skip-gram engines' hooks share: ``n`` averages per epoch (``ceil(1 / sync_every)``,
    capped on every rank by :func:`agreed_syncs`), rank 0's tables broadcast at the start, and each
    average counted (``syncs``, ``sync_bytes``, ``sync_seconds``)."""

    def __init__(self, sync_every: float):
        self.n = syncs_per_epoch(sync_every)
        self.done = 0
        self.syncs = 0
        self.sync_bytes = 0
        self.sync_seconds = 0.0

    def _begin(self, tensors, steps) -> None:
        """Every rank takes rank 0's ``tensors``; ``steps``: this rank's steps per epoch (caps ``n``)."""
        from ... import distributed as ek_dist

        if steps is not None:
            self.n = agreed_syncs(self.n, steps)
        for t in tensors:
            ek_dist.broadcast_(t, 0)

    def _average(self, tensors) -> None:
        from ... import distributed as ek_dist

        before = ek_dist.comm_stats()
        for t in tensors:
            ek_dist.all_reduce_mean_(t)
        after = ek_dist.comm_stats()
        self.syncs += 1
        self.sync_bytes += after["bytes"] - before["bytes"]
        self.sync_seconds += after["seconds"] - before["seconds"]


class Sync(Averager):
    """Periodic averaging of the torch engine's tables over the ranks of the process group.

    ``step(tables, fraction)`` after each mini-batch (``fraction``: the share of this rank's
    epoch done) averages the tables once when it has passed the next ``k / n`` mark (at most one
    average per batch: a batch that passes several marks averages once and the next batches catch
    up; never the last mark, which ``end_epoch`` does, so every rank makes exactly ``n`` averages
    per epoch whatever the size of its shard). ``start`` caps ``n`` at the fewest batches any rank
    expects (:func:`agreed_syncs`), so a tiny ``sync_every`` does not repeat averages back to back.
    ``end_epoch`` also sums the loss, the examples and the tokens of the epoch over the ranks.
    """

    def __init__(self, sync_every: float, rank: int):
        super().__init__(sync_every)
        self.seed_offset = 0 if rank == 0 else 1_000_003 * rank

    def start(self, tables, lr, min_lr, steps=None):
        """Every rank takes rank 0's tables; returns the replica's learning rates (:func:`replica_rates`).
        ``steps``: the batches this rank expects per epoch (caps the averages per epoch on every rank)."""
        self._begin(tables, steps)
        return replica_rates(lr, min_lr)

    def step(self, tables, fraction: float):
        if self.done < self.n - 1 and fraction >= (self.done + 1) / self.n:
            self._average(tables)
            self.done += 1

    def end_epoch(self, tables, loss_sum, examples: int, seen: int):
        import torch

        from ... import distributed as ek_dist

        while self.done < self.n:
            self._average(tables)
            self.done += 1
        self.done = 0
        t = torch.tensor([float(loss_sum), float(examples), float(seen)], dtype=torch.float64)
        ek_dist.all_reduce_sum_(t)
        return t[0].to(loss_sum.device) if hasattr(loss_sum, "device") else float(t[0]), int(t[1]), int(t[2])


def sync_for(sync_every: float):
    """The engine hook of this process: :class:`Sync` under a process group of 2+ ranks, else NO_SYNC."""
    from ... import distributed as ek_dist

    if not ek_dist.is_distributed():
        return NO_SYNC
    return Sync(sync_every, ek_dist.world().rank)


class _Strided:
    """Every ``size``-th sentence of ``corpus`` from ``rank`` on (re-iterable, as the corpus is)."""

    def __init__(self, corpus, rank: int, size: int):
        self.corpus, self.rank, self.size = corpus, rank, size

    def __iter__(self):
        for i, sentence in enumerate(self.corpus):
            if i % self.size == self.rank:
                yield sentence


def strided(corpus):
    """This rank's sentences of ``corpus`` (sentence ``i`` goes to rank ``i % world size``); the
    corpus itself in a single process. Strided rather than contiguous: a corpus ordered by topic
    or date then gives every rank a bit of everything, which averaging needs."""
    from ... import distributed as ek_dist

    w = ek_dist.world()
    return corpus if w.size == 1 else _Strided(corpus, w.rank, w.size)


def check_vocab(words, owner: str) -> None:
    """Raise on every rank when the ranks built different vocabularies (size and a CRC of the words)."""
    from ... import distributed as ek_dist

    ek_dist.same_data_on_all_ranks(f"the {owner} vocabulary (its size and words)", words)


def check_graph(graph) -> None:
    """Raise on every rank when the ranks were given different graphs (node ids and edges), before any
    collective sized by the graph."""
    from ... import distributed as ek_dist

    ek_dist.same_data_on_all_ranks("the graph (its nodes and edges)", list(graph.nodes),
                                   np.asarray(graph.indptr, dtype=np.int64), np.asarray(graph.indices, dtype=np.int64))


def check_shards(n_local: int, what: str) -> None:
    """Raise on every rank when some rank's shard holds nothing (``what``: 'sentences', 'walks')."""
    import torch

    from ... import distributed as ek_dist

    if not ek_dist.is_distributed():
        return
    w = ek_dist.world()
    t = torch.zeros(w.size, dtype=torch.float64)
    t[w.rank] = float(n_local)
    ek_dist.all_reduce_sum_(t)
    empty = [r for r in range(w.size) if t[r] <= 0]
    if empty:
        raise InputError(f"rank(s) {empty} got no {what} to train on ({int(t.sum())} in all for {w.size} ranks): "
                         "give more data or run fewer processes")


def sum_counts(counts: np.ndarray) -> np.ndarray:
    """``counts`` (int64) summed over the ranks (itself in a single process)."""
    from ... import distributed as ek_dist

    return ek_dist.sum_over_ranks(np.asarray(counts, dtype=np.int64))


def refuse(owner: str, what: str) -> None:
    """One-line InputError for an operation that runs in one process only."""
    from ... import distributed as ek_dist

    if ek_dist.world().size > 1:
        raise InputError(f"{owner}.{what} runs in one process only (it is a small update on a fitted model); "
                         "run it without torchrun / --nproc, then save")


def comm_mark() -> dict:
    """The collective counters now (to measure a fit's traffic with :func:`record_comm`)."""
    from ... import distributed as ek_dist

    return ek_dist.comm_stats()


def record_comm(model, before: dict, sync=None) -> None:
    """Under a process group: set ``model.comm_bytes_`` (bytes this rank sent into collectives since
    ``before``), ``comm_seconds_`` (time in them) and ``comm_syncs_`` (averages made); log bytes and
    seconds per average. Nothing in a single process (no fitted attribute is added)."""
    from ... import distributed as ek_dist

    if not ek_dist.is_distributed():
        return
    now = ek_dist.comm_stats()
    model.comm_bytes_ = int(now["bytes"] - before["bytes"])
    model.comm_seconds_ = float(now["seconds"] - before["seconds"])
    model.comm_syncs_ = int(getattr(sync, "syncs", 0))
    if model.comm_syncs_:
        log.info("%s: %d averages of %.1f MB each (%.3fs each); %.1f MB sent in all", type(model).__name__,
                 sync.syncs, sync.sync_bytes / sync.syncs / 1e6, sync.sync_seconds / sync.syncs,
                 model.comm_bytes_ / 1e6)
