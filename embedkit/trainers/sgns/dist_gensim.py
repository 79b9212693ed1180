"""The gensim backend past one process: gensim trains each rank's shard between averages.

Every rank builds gensim's vocabulary from the whole corpus (the same vocabulary and the same
initial vectors everywhere: gensim draws them from the seed and the words; checked, then rank
0's broadcast anyway), writes its shard (every world-size-th sentence; Node2Vec: the walks
from its share of start nodes) into ``ceil(1 / sync_every)`` part files, and trains them with
gensim's fast ``corpus_file`` mode, one ``train`` call per part. After each part the tables
(``wv.vectors`` and ``syn1neg``; FastText: the words' own rows, the n-gram buckets and
``syn1neg``) are averaged over the ranks with ``all_reduce`` on torch tensors that share the
numpy arrays' memory, so the average is written back in place.

The learning rate decays linearly from ``N x lr`` to ``N x min_lr`` over each rank's share of the
run (:func:`~embedkit.trainers.sgns.gensim_backend.train_corpus_file`, which also corrects gensim's
per-thread decay; N x: see :func:`~embedkit.trainers.sgns.distributed.replica_rates`), so the
averaged model follows the one-process schedule as a function of the share of the run done.
A single process keeps gensim's own schedule for Word2Vec (see ``gensim_backend``).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .distributed import check_shards, check_vocab, rank_seed, replica_rates, strided, syncs_per_epoch

log = logging.getLogger(__name__)

__all__ = ["GensimSync", "train_sharded", "reseed"]


class GensimSync:
    """``on_part(words)`` hook of :func:`~embedkit.trainers.sgns.gensim_backend.train_corpus_file`:
    averages ``tables(model)`` over the ranks when this rank has trained each ``1/n`` of its epoch
    (parts' words add up to the epoch's, so every rank makes exactly ``n`` averages per epoch, the
    last at its end); ``after(model)`` runs after each average (FastText: recompose word vectors)."""

    def __init__(self, model, tables, epoch_words: int, sync_every: float, after=None):
        self.model, self.tables, self.after = model, tables, after
        self.total = max(1, int(epoch_words))
        self.n = syncs_per_epoch(sync_every)
        self.words = 0
        self.done = 0
        self.syncs = 0
        self.sync_bytes = 0
        self.sync_seconds = 0.0

    def _tensors(self):
        import torch

        return [torch.from_numpy(a) for a in self.tables(self.model)]   # shares memory: averages land in place

    def start(self) -> None:
        """Every rank takes rank 0's tables (they are equal already when the vocabularies are)."""
        from ... import distributed as ek_dist

        for t in self._tensors():
            ek_dist.broadcast_(t, 0)
        if self.after is not None:
            self.after(self.model)

    def average(self) -> None:
        from ... import distributed as ek_dist

        before = ek_dist.comm_stats()
        for t in self._tensors():
            ek_dist.all_reduce_mean_(t)
        after = ek_dist.comm_stats()
        if self.after is not None:
            self.after(self.model)
        self.syncs += 1
        self.sync_bytes += after["bytes"] - before["bytes"]
        self.sync_seconds += after["seconds"] - before["seconds"]

    def __call__(self, words: int) -> None:
        self.words += int(words)
        while self.done < self.n and self.words * self.n >= (self.done + 1) * self.total:
            self.average()
            self.done += 1
        if self.done == self.n:
            self.words, self.done = 0, 0


@contextmanager
def replica_alpha(model):
    """gensim's ``alpha`` / ``min_alpha`` times the world size while the replicas train (see
    :func:`~embedkit.trainers.sgns.distributed.replica_rates`), restored after."""
    a0, a1, reached = model.alpha, model.min_alpha, getattr(model, "min_alpha_yet_reached", None)
    model.alpha, model.min_alpha = replica_rates(a0, a1)
    if reached is not None:   # gensim warns when alpha exceeds the lowest rate it reached so far
        model.min_alpha_yet_reached = max(float(reached), model.alpha)
    try:
        yield
    finally:
        model.alpha, model.min_alpha = a0, a1


def reseed(model, seed: int) -> None:
    """Give this rank its own stream of gensim's draws (negatives, subsampling, windows): gensim
    seeds each job's stream from ``model.random``; rank 0 keeps its own."""
    from ... import distributed as ek_dist

    rank = ek_dist.world().rank
    if rank:
        model.random = np.random.RandomState(rank_seed(seed, rank) % (2 ** 32))


def mean_loss(loss_of):
    """``loss_of`` averaged over the ranks (each evaluates it on its own sample)."""
    import torch

    from ... import distributed as ek_dist

    def of(model):
        t = torch.tensor([float(loss_of(model))], dtype=torch.float64)
        return float(ek_dist.all_reduce_mean_(t)[0])

    return of


def write_shard(corpus, n_parts: int, expected: int, directory: str):
    """Write this rank's sentences of ``corpus`` into ``n_parts`` files of consecutive sentences
    (``expected``: sentences in the whole corpus, to size the parts). Returns [(path, words, lines)]."""
    from ... import distributed as ek_dist

    w = ek_dist.world()
    local = max(1, -(-(int(expected) - w.rank) // w.size))
    paths = [Path(directory) / f"shard-{k:03d}.txt" for k in range(n_parts)]
    words, lines = [0] * n_parts, [0] * n_parts
    handles = [open(p, "w", encoding="utf-8") for p in paths]
    try:
        for j, sentence in enumerate(strided(corpus)):
            if not sentence:
                continue
            k = min(n_parts - 1, j * n_parts // local)
            handles[k].write(" ".join(sentence) + "\n")
            words[k] += len(sentence)
            lines[k] += 1
    finally:
        for h in handles:
            h.close()
    return [(str(p), n, m) for p, n, m in zip(paths, words, lines)]


def train_sharded(model, corpus, *, tables, after=None, sync_every: float, epochs: int, loss_of, desc: str,
                  seed: int, show_progress: bool = True, callback=None):
    """Train ``model`` (gensim Word2Vec or FastText, vocabulary built from the whole ``corpus``) on this
    rank's shard with periodic averaging. Returns (losses, seconds, this rank's words per epoch, sync)."""
    from .gensim_backend import train

    check_vocab(model.wv.index_to_key, desc.split()[0])
    n = syncs_per_epoch(sync_every)
    tmp = tempfile.mkdtemp(prefix="embedkit-shard-")
    try:
        parts = write_shard(corpus, n, int(model.corpus_count or 0), tmp)
        words = sum(p[1] for p in parts)
        check_shards(words, "sentences")
        reseed(model, seed)
        sync = GensimSync(model, tables, words, sync_every, after)
        sync.start()
        with replica_alpha(model):
            losses, seconds = train(model, dict(corpus_file=parts), epochs=epochs, lr_schedule="exact",
                                    loss_of=mean_loss(loss_of), units_per_epoch=words, desc=desc, unit="word",
                                    show_progress=show_progress, callback=callback, on_part=sync)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: rank's shard %d words in %d part(s), %d averages", desc, words, n, sync.syncs)
    return losses, seconds, words, sync
