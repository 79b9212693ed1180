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
           "check_shards", "check_graph", "refuse", "rank_seed", "record_comm", "SYNC_EVERY", "SYNC_EVERY_MIN",
           "agreed_syncs", "lr_text"]

# the skip-gram trainers' (and their CLI verbs') default sync_every: the fraction of an epoch between two
# averages (4 averages per epoch); this module imports neither torch nor gensim, so the CLI may import it
SYNC_EVERY = 0.25
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
    from ... import distributed as ek_dist

    if not ek_dist.is_distributed():
        return n
    return max(1, min(int(n), int(ek_dist.per_rank(max(1, int(steps))).min())))


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

        mark = ek_dist.comm_mark()
        for t in tensors:
            ek_dist.all_reduce_mean_(t)
        sent = ek_dist.comm_since(mark)
        self.syncs += 1
        self.sync_bytes += sent["bytes"]
        self.sync_seconds += sent["seconds"]


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
        from ... import distributed as ek_dist

        while self.done < self.n:
            self._average(tables)
            self.done += 1
        self.done = 0
        t = ek_dist.sum_over_ranks(np.array([float(loss_sum), float(examples), float(seen)], dtype=np.float64))
        if hasattr(loss_sum, "device"):     # the engine's loss: a float64 tensor on its device
            import torch

            return torch.tensor(t[0], dtype=torch.float64, device=loss_sum.device), int(t[1]), int(t[2])
        return float(t[0]), int(t[1]), int(t[2])


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


def check_shards(n_local: int, what: str, every=None) -> None:
    """Raise on every rank when some rank's shard holds nothing (``what``: 'sentences', 'walks');
    ``every``: the ranks' counts (:func:`~embedkit.distributed.per_rank`) when the caller has them already."""
    from ... import distributed as ek_dist

    if not ek_dist.is_distributed():
        return
    every = ek_dist.per_rank(n_local) if every is None else every
    empty = [r for r in range(len(every)) if every[r] <= 0]
    if empty:
        raise InputError(f"rank(s) {empty} got no {what} to train on ({int(every.sum())} in all for {len(every)} "
                         "ranks): give more data or run fewer processes")


def refuse(owner: str, what: str) -> None:
    """One-line InputError for an operation that runs in one process only."""
    from ... import distributed as ek_dist

    if ek_dist.world().size > 1:
        raise InputError(f"{owner}.{what} runs in one process only (it is a small update on a fitted model); "
                         "run it without torchrun / --nproc, then save")


def record_comm(model, mark: dict, sync=None) -> None:
    """At the end of a fit: drop the figures of an earlier fit and, under a process group, set
    ``model.comm_bytes_`` (bytes this rank sent into collectives since ``mark``, an
    :func:`~embedkit.distributed.comm_mark`), ``comm_seconds_`` (time in them) and ``comm_syncs_``
    (averages made); log bytes and seconds per average (:func:`~embedkit.distributed.record_comm`)."""
    from ... import distributed as ek_dist

    if ek_dist.record_comm(model, mark) is None:
        return
    model.comm_syncs_ = int(getattr(sync, "syncs", 0))
    if model.comm_syncs_:
        log.info("%s: %d averages of %.1f MB each (%.3fs each); %.1f MB sent in all", type(model).__name__,
                 sync.syncs, sync.sync_bytes / sync.syncs / 1e6, sync.sync_seconds / sync.syncs,
                 model.comm_bytes_ / 1e6)
