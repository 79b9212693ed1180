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

from .distributed import Averager, check_shards, check_vocab, rank_seed, replica_rates, strided, syncs_per_epoch

log = logging.getLogger(__name__)

__all__ = ["GensimSync", "train_sharded", "train_parts", "reseed", "resplit"]


class GensimSync(Averager):
    """``on_part(words)`` hook of :func:`~embedkit.trainers.sgns.gensim_backend.train_corpus_file`:
    averages ``tables(model)`` over the ranks after the part that ends nearest each ``k/n`` of this
    rank's epoch, at most once per part (a part past several marks averages once, the next parts
    catch up), and at the epoch's end as many times as it takes to make ``n``: every rank makes
    exactly ``n`` averages per epoch. ``start(steps)`` caps ``n`` at the fewest non-empty parts any
    rank has (:func:`~embedkit.trainers.sgns.distributed.agreed_syncs`). ``after(model)`` runs once
    per epoch, after its last average (FastText: recompose word vectors; training reads only the
    tables, so no reader needs them between the averages)."""

    def __init__(self, model, tables, epoch_words: int, sync_every: float, after=None):
        super().__init__(sync_every)
        self.model, self.tables, self.after = model, tables, after
        self.total = max(1, int(epoch_words))
        self.words = 0

    def _tensors(self):
        import torch

        return [torch.from_numpy(a) for a in self.tables(self.model)]   # shares memory: averages land in place

    def start(self, steps: int | None = None) -> None:
        """Every rank takes rank 0's tables (they are equal already when the vocabularies are);
        ``steps``: this rank's non-empty parts per epoch (caps the averages per epoch on every rank)."""
        self._begin(self._tensors(), steps)

    def average(self) -> None:
        self._average(self._tensors())

    def __call__(self, words: int) -> None:
        self.words += int(words)
        if self.words >= self.total:        # the epoch's end: make up the rest of the n averages
            while self.done < self.n:
                self.average()
                self.done += 1
            self.words, self.done = 0, 0
            if self.after is not None:
                self.after(self.model)
        elif words and self.done < min(self.n - 1, int(self.words * self.n / self.total + 0.5)):
            self.average()
            self.done += 1


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


def resplit(parts, part_words: int, directory: str):
    """Cut the walk files ``parts`` [(path, words, lines)] anew, in order and at line ends, into files
    of about ``part_words`` words each (Node2Vec sizes its parts before walking, from an upper bound
    that dead ends can make far too high). The old files are removed. Returns the new parts."""
    import os

    out: list[tuple[str, int, int]] = []
    state = {"fh": None, "words": 0, "lines": 0, "path": None}

    def close():
        if state["fh"] is not None:
            state["fh"].close()
            out.append((state["path"], state["words"], state["lines"]))
            state.update(fh=None, words=0, lines=0)

    try:
        for path, words, _lines in parts:
            data = Path(path).read_bytes()
            arr = np.frombuffer(data, dtype=np.uint8)
            ends = np.flatnonzero(arr == 10) + 1                     # byte offset past each line
            starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
            spaces = np.concatenate([[0], np.cumsum(arr == 32)])
            cum = np.cumsum(spaces[ends] - spaces[starts] + 1)      # words up to each line's end
            if len(cum) and int(cum[-1]) != int(words):
                raise ValueError(f"walk file {path} holds {int(cum[-1])} words, expected {words}")
            lo = 0
            while lo < len(cum):
                if state["fh"] is None:
                    state["path"] = str(Path(directory) / f"part-{len(out):05d}.txt")
                    state["fh"] = open(state["path"], "wb")
                base = int(cum[lo - 1]) if lo else 0
                hi = int(np.searchsorted(cum, base + part_words - state["words"], side="left")) + 1
                hi = min(max(hi, lo + 1), len(cum))
                state["fh"].write(data[int(starts[lo]):int(ends[hi - 1])])
                state["words"] += int(cum[hi - 1]) - base
                state["lines"] += hi - lo
                if state["words"] >= part_words:
                    close()
                lo = hi
            os.remove(path)
        close()
    finally:
        if state["fh"] is not None:
            state["fh"].close()
    return out


def train_parts(model, parts, *, words: int, epochs: int, loss_of, desc: str, unit: str, show_progress: bool,
                callback, seed: int, tables, sync_every: float, after=None):
    """Train ``model`` (vocabulary built) on the corpus-file ``parts`` [(path, words, lines)] with the exact
    schedule (``train(lr_schedule="exact")``, ``words`` per epoch) at the replica's rates (:func:`replica_alpha`,
    the user's rates in a single process). Under a process group, first: this rank's own draws
    (:func:`reseed`), rank 0's tables (:class:`GensimSync` ``start``), the loss averaged over the ranks; then
    the tables averaged after the parts. Returns (losses, seconds, sync: None in a single process)."""
    from ... import distributed as ek_dist
    from .gensim_backend import train

    sync = None
    if ek_dist.is_distributed():
        reseed(model, seed)
        sync = GensimSync(model, tables, words, sync_every, after)
        sync.start(sum(1 for p in parts if p[1]))
        loss_of = _mean_over_ranks(loss_of)
    with replica_alpha(model):
        losses, seconds = train(model, dict(corpus_file=parts), epochs=epochs, lr_schedule="exact", loss_of=loss_of,
                                units_per_epoch=words, desc=desc, unit=unit, show_progress=show_progress,
                                callback=callback, on_part=sync)
    return losses, seconds, sync


def _mean_over_ranks(loss_of):
    """``loss_of`` averaged over the ranks (each evaluates it on its own sample)."""
    from ... import distributed as ek_dist

    return lambda model: ek_dist.mean_over_ranks(float(loss_of(model)))


def train_sharded(model, corpus, *, tables, after=None, sync_every: float, epochs: int, loss_of, desc: str,
                  seed: int, show_progress: bool = True, callback=None):
    """Train ``model`` (gensim Word2Vec or FastText, vocabulary built from the whole ``corpus``) on this
    rank's shard with periodic averaging. Returns (losses, seconds, this rank's words per epoch, sync)."""
    check_vocab(model.wv.index_to_key, desc.split()[0])
    n = syncs_per_epoch(sync_every)
    tmp = tempfile.mkdtemp(prefix="embedkit-shard-")
    try:
        parts = write_shard(corpus, n, int(model.corpus_count or 0), tmp)
        words = sum(p[1] for p in parts)
        check_shards(words, "sentences")
        losses, seconds, sync = train_parts(model, parts, words=words, epochs=epochs, loss_of=loss_of, desc=desc,
                                            unit="word", show_progress=show_progress, callback=callback, seed=seed,
                                            tables=tables, sync_every=sync_every, after=after)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: rank's shard %d words in %d part(s), %d averages", desc, words, n, sync.syncs)
    return losses, seconds, words, sync
