"""The one adapter to gensim's Word2Vec, for :class:`~embedkit.Word2Vec` and
:class:`~embedkit.Node2Vec` (private; use ``backend="gensim"``).

:func:`build_model` is the one place that builds gensim's model from embedkit's parameters,
:func:`train` the one training loop: one epoch-end callback that evaluates the loss of the
epoch with our engine on a fixed sample (gensim's own counter is wrong: gensim issues #2617,
#2735), advances one progress bar and calls ``callback(epoch, loss)`` with epochs from 1.
Its ``lr_schedule`` is the one difference between the two trainers:

* ``"gensim"`` (Word2Vec): one ``train`` call over all epochs, with gensim's own learning
  rate decay (per thread in corpus_file mode, see :func:`train_corpus_file`), kept for parity
  with gensim;
* ``"exact"`` (Node2Vec): one ``train`` call per epoch asking for compensated ranges, so the
  rate decays linearly from ``lr`` to ``min_lr`` whatever the number of threads.

Sources: :func:`fit_corpus` (Word2Vec) sends files through gensim's ``corpus_file`` mode,
several times faster than an iterator: one plain file is read where it lies; several files or
``.gz`` / ``.bz2`` files are first decompressed once into a single temporary file (deleted
afterwards); token lists already in memory go through gensim's iterator mode.
:func:`fit_walks` (Node2Vec) writes epoch 0's walks, as node rows, to a temporary file.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..._device import cpu_count
from ...errors import InputError
from .distributed import lr_text

log = logging.getLogger(__name__)

_LOSS_SAMPLE_TOKENS = 2_000   # Word2Vec: corpus tokens the epoch loss is evaluated on
_LOSS_SAMPLE_STEPS = 5000     # Node2Vec: walk steps the epoch loss is evaluated on
LR_SCHEDULES = ("gensim", "exact")
_REPORT_DELAY = 0.5             # seconds between gensim's progress reports (iterator mode)
_VOCAB_REPORT_EVERY = 1000      # sentences between gensim's vocabulary-scan reports (lines of up to 10,000 words)
_PART_WORDS = 500_000           # Node2Vec: walk steps per train call (the bar moves after each)
_MAX_PARTS = 50


def _part_words(steps: int) -> int:
    """Node2Vec: walk steps per part for ``steps`` in an epoch (_PART_WORDS, or more: at most _MAX_PARTS parts)."""
    return max(_PART_WORDS, -(-int(steps) // _MAX_PARTS))


def _needs_copy(paths) -> bool:
    return len(paths) != 1 or paths[0].name.lower().endswith((".gz", ".bz2"))


def _merge_to_temp(paths, directory: str, desc: str = "word2vec", show_progress: bool = False) -> Path:
    """Decompress/concatenate ``paths`` into one UTF-8 file, checking every line on the way
    (under a "<desc>: reading corpus" bar, in lines)."""
    from ...data.corpus import open_text_lines
    from .progress import bar

    target = Path(directory) / "corpus.txt"
    with open(target, "w", encoding="utf-8") as out, \
            bar(f"{desc}: reading corpus", unit="line", show_progress=show_progress) as pbar:
        for p in paths:
            n = 0
            for _, text in open_text_lines(p):
                out.write(text if text.endswith("\n") else text + "\n")
                n += 1
                if n == 10_000:
                    pbar.update(n)
                    n = 0
            pbar.update(n)
    return target


def _locate_decode_error(path: Path) -> None:
    """Re-read ``path`` to turn gensim's UnicodeDecodeError into a ParseError with the line."""
    from ...data.corpus import open_text_lines

    for _ in open_text_lines(path):
        pass


def _loss_sample(corpus, key_to_index):
    """The first sentences (about _LOSS_SAMPLE_TOKENS tokens) with two or more in-vocabulary
    words, encoded; empty when no sentence of the corpus has two (it forms no example)."""
    ids, lengths, n = [], [], 0
    for sentence in corpus:
        enc = [key_to_index[w] for w in sentence if w in key_to_index]
        if len(enc) >= 2:
            ids.extend(enc)
            lengths.append(len(enc))
            n += len(enc)
        if n >= _LOSS_SAMPLE_TOKENS:
            break
    return np.asarray(ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64)


def gensim_alpha_per_thread() -> bool:
    """Whether the installed gensim decays corpus_file learning rates per thread (see
    :func:`train_corpus_file`): true of every release up to 4.4 (checked by a test against
    the shipped word2vec_corpusfile.pyx); later releases are trusted to have fixed it."""
    import gensim

    try:
        major, minor = (int(x) for x in gensim.__version__.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) < (4, 5)


def train_corpus_file(model, corpus_file, epochs: int, callbacks, *, on_part=None, on_epoch=None) -> None:
    """``model.train(corpus_file=...)`` for ``epochs`` epochs with the learning rate decaying
    linearly from ``model.alpha`` to ``model.min_alpha`` whatever the number of workers.

    gensim's corpus_file mode splits each epoch between its ``workers`` threads, and each
    thread measures its progress as its own words over the whole epoch's words
    (``get_next_alpha`` in gensim's word2vec_corpusfile.pyx, gensim 4.4), so with W threads the
    rate decays only 1/W of the way per epoch: one epoch on 2 threads ends at alpha/2 instead
    of min_alpha (measured: node2vec macro-F1 0.938 instead of 0.955). So each epoch is one
    ``train`` call asking for the range A -> A - W (A - B); the 1/W of it each thread walks
    through is the wanted A -> B. With one worker this is gensim's own schedule.

    ``corpus_file``: one path, or a list of parts ``(path, words, lines)`` that together make
    one epoch (Node2Vec cuts its walks so that the progress bar moves within an epoch: gensim's
    corpus_file mode reports nothing before a ``train`` call ends); each part is then one
    ``train`` call over its share of the epoch's rate range. ``on_part(words)`` runs after each
    part, ``on_epoch(model)`` after each epoch (``callbacks`` then fire once per part).

    Used by Node2Vec (1 epoch by default, where the effect is largest). Word2Vec keeps gensim's
    schedule: over 5 epochs the higher average rate of the per-thread decay scored 0.017 higher
    on WS353 (3 seeds, 2 workers) and Word2Vec's gensim backend is benchmarked for parity.
    """
    if isinstance(corpus_file, (str, Path)):
        parts = [(str(corpus_file), int(model.corpus_total_words), int(model.corpus_count))]
    else:
        parts = [(str(p), int(w), int(n)) for p, w, n in corpus_file]
    a0, a1 = float(model.alpha), float(model.min_alpha)
    threads = max(1, int(model.workers)) if gensim_alpha_per_thread() else 1
    total = max(1, sum(w for _, w, _ in parts))
    for e in range(epochs):
        done = 0
        for path, words, lines in parts:
            start = a0 - (a0 - a1) * (e + done / total) / epochs
            done += words
            end = a0 - (a0 - a1) * (e + done / total) / epochs
            asked = start - threads * (start - end)
            if words == 0:      # a distributed rank's empty part: nothing to train, the averages still happen
                if on_part is not None:
                    on_part(0)
                continue
            # gensim reads a falsy end_alpha as "keep the previous one": never pass exactly 0
            model.train(corpus_file=path, total_examples=lines, total_words=words, epochs=1, start_alpha=start,
                        end_alpha=asked if asked != 0.0 else -1e-12, callbacks=callbacks)
            if on_part is not None:
                on_part(words)
        if on_epoch is not None:
            on_epoch(model)
    model.alpha, model.min_alpha = a0, a1


def build_vocab(model, source: dict, *, desc: str, show_progress: bool = True, **kw) -> None:
    """``model.build_vocab(**source)`` under a labelled "vocabulary" bar that follows gensim's
    scan (sentences read, words in the postfix)."""
    from .progress import advance_to, bar, gensim_log_progress

    with bar(f"{desc}: vocabulary", unit="sentence", show_progress=show_progress) as pbar:
        def on_progress(msg, args):
            if msg.startswith("PROGRESS: at sentence #") and len(args) >= 3:
                advance_to(pbar, int(args[0]))
                pbar.set_postfix(words=f"{int(args[1]):,}", types=f"{int(args[2]):,}", refresh=False)

        with gensim_log_progress(on_progress, show_progress):
            model.build_vocab(**source, progress_per=_VOCAB_REPORT_EVERY, **kw)
        advance_to(pbar, int(model.corpus_count or 0))
        pbar.set_postfix(words=f"{int(model.corpus_total_words or 0):,}", types=f"{len(model.wv):,}")


def build_model(*, sg: bool, dim: int, window: int, negative: int, min_count: int, sample: float, epochs: int,
                lr: float, min_lr: float, seed: int, workers: int | None, max_final_vocab: int | None = None,
                batch_words: int | None = None):
    """gensim's Word2Vec (negative sampling, no hierarchical softmax) for embedkit's parameters;
    ``workers=None`` uses every core this process may run on."""
    from gensim.models import Word2Vec as GensimWord2Vec

    params = dict(vector_size=dim, window=window, negative=negative, hs=0, min_count=min_count, sample=sample,
                  epochs=epochs, alpha=lr, min_alpha=min_lr, seed=seed, sg=1 if sg else 0,
                  workers=workers or cpu_count(), max_final_vocab=max_final_vocab)
    if batch_words is not None:
        params["batch_words"] = batch_words
    return GensimWord2Vec(**params)


def train(model, source: dict, *, epochs: int, lr_schedule: str, loss_of, units_per_epoch: int, desc: str,
          unit: str = "word", show_progress: bool = True, callback=None, on_part=None) -> tuple[list[float], float]:
    """Train ``model`` (vocabulary built) on ``source`` (``corpus_file=`` or ``corpus_iterable=``).

    ``lr_schedule``: "gensim" (one ``train`` call, gensim's own decay) or "exact" (one call per
    epoch through :func:`train_corpus_file`; corpus_file only, which may be a list of parts
    ``(path, words, lines)``: one call per part). ``loss_of(model)`` evaluates the loss after
    each epoch. The "<desc>: training" bar moves within epochs: after each part (exact), or with
    gensim's progress log (iterator mode, about once a second); gensim's corpus_file mode in one
    call reports only at epoch ends. ``on_part(words)`` (exact only) runs after each part: a
    distributed fit averages the ranks' tables there. Returns (loss per epoch, training seconds).
    """
    from gensim.models.callbacks import CallbackAny2Vec

    from .progress import advance_to, bar, gensim_log_progress

    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}; got {lr_schedule!r}")
    if lr_schedule == "exact" and "corpus_file" not in source:
        raise ValueError("lr_schedule='exact' needs a corpus_file source")
    losses: list[float] = []
    rate = float(model.alpha)    # the rate asked for (gensim moves model.alpha while it trains)
    pbar = bar(f"{desc}: training", total=epochs * units_per_epoch, unit=unit, show_progress=show_progress)

    def epoch_end(m):
        epoch = len(losses) + 1
        loss = float(loss_of(m))
        if not np.isfinite(loss):   # stop here: a run whose loss is not finite must not be saved
            if np.isnan(loss) and _subsampled_away(m):  # (an overflow to inf is divergence, whatever sample is)
                raise _no_example_left(m, f"epoch {epoch} formed no training example")
            raise InputError(f"training diverged in epoch {epoch}: the loss became {loss}, so the vectors "
                             f"are no longer finite; the learning rate {lr_text(rate)} is too high for "
                             "this data (lower lr)")
        losses.append(loss)
        advance_to(pbar, epoch * units_per_epoch)
        pbar.set_postfix(epoch=epoch, loss=f"{loss:.4f}")
        log.info("%s epoch %d: sampled loss %.4f", desc, epoch, loss)
        if callback is not None:
            callback(epoch, loss)

    class _EpochEnd(CallbackAny2Vec):
        """Loss, progress and the user's callback after every epoch (epochs counted from 1)."""

        def on_epoch_end(self, m):
            epoch_end(m)

    def on_progress(msg, args):
        """gensim's "EPOCH n - PROGRESS: at x% examples|words" (n counts from 0 in each call)."""
        if msg.startswith("EPOCH") and len(args) >= 3:
            advance_to(pbar, (len(losses) + float(args[1]) / 100.0) * units_per_epoch)
            pbar.set_postfix(epoch=len(losses) + 1, **({"loss": f"{losses[-1]:.4f}"} if losses else {}),
                             refresh=False)

    start = time.perf_counter()
    try:
        if lr_schedule == "exact":
            def part_done(words):
                pbar.update(words)
                if on_part is not None:
                    on_part(words)

            train_corpus_file(model, source["corpus_file"], epochs, (), on_part=part_done, on_epoch=epoch_end)
        else:
            with gensim_log_progress(on_progress, show_progress):
                done = model.train(**source, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                                   epochs=epochs, callbacks=[_EpochEnd()], report_delay=_REPORT_DELAY)
            if rate > 0 and _trained_nothing(model, done):
                raise _no_example_left(model, f"training formed no example in {epochs} epoch(s)")
    finally:
        pbar.close()
    return losses, time.perf_counter() - start


def _subsampled_away(model) -> bool:
    """Whether a NaN epoch loss means "no example left after subsampling", not divergence: the
    loss sample always holds pairs (see :func:`_loss_sample`), so with finite tables only the
    subsampling of the loss evaluation (``sample`` > 0) can have left it without an example."""
    if not float(getattr(model, "sample", 0) or 0) > 0:
        return False
    tables = (model.wv.vectors, getattr(model, "syn1neg", None))
    return all(t is None or bool(np.isfinite(t).all()) for t in tables)


def _trained_nothing(model, done) -> bool:
    """Whether subsampling (``sample`` > 0) left gensim no word (``done``: what ``train`` returned,
    (effective words, raw words)) or no pair in any epoch (a fresh model's output weights start at 0)."""
    if not float(getattr(model, "sample", 0) or 0) > 0:
        return False
    out = getattr(model, "syn1neg", None)
    return bool(isinstance(done, tuple) and done and done[0] == 0) or (out is not None and not np.any(out))


def _no_example_left(model, what: str) -> InputError:
    """The one-line error of a corpus too small for its subsampling (``sample``): the learning
    rate is not the cause, so it is not blamed."""
    return InputError(f"{what}: subsampling (sample={float(model.sample):g}) drops nearly every token of this "
                      f"{int(model.corpus_total_words or 0):,}-token corpus of {len(model.wv):,} distinct words; "
                      "set sample=0 (--sample 0) or give a larger corpus")


def fit_corpus(corpus, *, mode: str, dim: int, window: int, negative: int, min_count: int, sample: float,
               epochs: int, lr: float, min_lr: float, seed: int, workers: int | None, max_vocab: int | None,
               batch_words: int | None, sync_every: float, show_progress: bool = True, callback=None) -> dict:
    """Word2Vec on gensim (its own learning-rate schedule, see :func:`train_corpus_file`).

    Returns a dict: keys (by frequency), vectors, output (negative-sampling weights), counts,
    losses, seconds (training only), words (tokens trained on, all epochs), sync (the averaging
    hook of a distributed fit, else None). Under a process group the vocabulary comes from the
    whole corpus and training from this rank's shard (:mod:`embedkit.trainers.sgns.dist_gensim`).
    """
    from ... import distributed as ek_dist
    from .engine import evaluate_loss

    model = build_model(sg=mode == "skipgram", dim=dim, window=window, negative=negative, min_count=min_count,
                        sample=sample, epochs=epochs, lr=lr, min_lr=min_lr, seed=seed, workers=workers,
                        max_final_vocab=max_vocab, batch_words=batch_words)
    tmpdir = None
    try:
        if corpus.is_files:
            paths = corpus.paths
            if _needs_copy(paths):
                tmpdir = tempfile.mkdtemp(prefix="embedkit-w2v-")
                source = dict(corpus_file=str(_merge_to_temp(paths, tmpdir, f"word2vec {mode} (gensim)", show_progress)))
            else:
                source = dict(corpus_file=str(paths[0]))
        else:
            source = dict(corpus_iterable=corpus)
        try:
            build_vocab(model, source, desc=f"word2vec {mode} (gensim)", show_progress=show_progress)
        except UnicodeDecodeError:
            if "corpus_file" in source:
                _locate_decode_error(Path(source["corpus_file"]))
            raise
        if model.corpus_total_words == 0:
            raise InputError("the corpus is empty: it holds no tokens (one sentence per line, tokens separated by spaces)")
        if len(model.wv) == 0:
            raise InputError(f"no word occurs at least min_count={min_count} times in "
                             f"{model.corpus_total_words} tokens; lower min_count or give a larger corpus")
        keys = list(model.wv.index_to_key)
        counts = np.array([model.wv.get_vecattr(k, "count") for k in keys], dtype=np.int64)
        sample_ids, sample_lengths = _loss_sample(corpus, model.wv.key_to_index)
        if not len(sample_ids):
            raise InputError("the corpus forms no training example: no sentence holds two in-vocabulary words "
                             f"(min_count={min_count}); give sentences of several words, one sentence per line")

        def loss_of(m):
            return evaluate_loss(m.wv.vectors, m.syn1neg, sample_ids, sample_lengths, counts, mode=mode,
                                 window=window, negative=negative, sample=sample, seed=seed)

        if ek_dist.is_distributed():
            from .dist_gensim import train_sharded

            losses, seconds, words, sync = train_sharded(
                model, corpus, tables=lambda m: (m.wv.vectors, m.syn1neg), sync_every=sync_every, epochs=epochs,
                loss_of=loss_of, desc=f"word2vec {mode} (gensim)", seed=seed, show_progress=show_progress,
                callback=callback)
            return dict(keys=keys, vectors=model.wv.vectors, output=model.syn1neg, counts=counts, losses=losses,
                        seconds=seconds, words=words * epochs, sync=sync)
        # gensim's own schedule, on purpose (see train_corpus_file: Node2Vec corrects it, here
        # the correction cost 0.017 WS353 over 3 seeds, 5 epochs, 2 workers; parity with gensim wins)
        losses, seconds = train(model, source, epochs=epochs, lr_schedule="gensim", loss_of=loss_of,
                                units_per_epoch=model.corpus_total_words, desc=f"word2vec {mode} (gensim)",
                                unit="word", show_progress=show_progress, callback=callback)
        return dict(keys=keys, vectors=model.wv.vectors, output=model.syn1neg, counts=counts, losses=losses,
                    seconds=seconds, words=model.corpus_total_words * epochs, sync=None)
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)


def continue_corpus(corpus, keys, counts, vectors, output, *, mode: str, window: int, negative: int,
                    min_count: int, sample: float, epochs: int, lr: float, min_lr: float, seed: int,
                    workers: int | None, batch_words: int | None, show_progress: bool = True,
                    callback=None) -> dict:
    """Continued training on gensim: a gensim model rebuilt from a saved vocabulary (keys, counts)
    and its input/output tables, grown with ``build_vocab(update=True)`` on ``corpus`` and trained
    with the rate decaying from ``lr`` to ``min_lr``. Returns what :func:`fit_corpus` returns."""
    from .engine import evaluate_loss

    vectors = np.asarray(vectors, dtype=np.float32)
    model = build_model(sg=mode == "skipgram", dim=vectors.shape[1], window=window, negative=negative,
                        min_count=min_count, sample=sample, epochs=epochs, lr=lr, min_lr=min_lr, seed=seed,
                        workers=workers, batch_words=batch_words)
    model.build_vocab_from_freq({k: int(c) for k, c in zip(keys, counts)})
    rows = np.fromiter((model.wv.key_to_index[k] for k in keys), dtype=np.int64, count=len(keys))
    model.wv.vectors[rows] = vectors
    model.syn1neg[rows] = np.asarray(output, dtype=np.float32)
    source = dict(corpus_iterable=corpus)
    build_vocab(model, source, desc=f"word2vec {mode} (gensim, update)", show_progress=show_progress, update=True)
    if model.corpus_total_words == 0:
        raise InputError("the corpus is empty: it holds no tokens (one sentence per line, tokens separated by spaces)")
    all_keys = list(model.wv.index_to_key)
    all_counts = np.array([model.wv.get_vecattr(k, "count") for k in all_keys], dtype=np.int64)
    sample_ids, sample_lengths = _loss_sample(corpus, model.wv.key_to_index)
    if not len(sample_ids):
        raise InputError("the corpus forms no training example: no sentence holds two in-vocabulary words "
                         f"(min_count={min_count}); give sentences of several words, one sentence per line")

    def loss_of(m):
        return evaluate_loss(m.wv.vectors, m.syn1neg, sample_ids, sample_lengths, all_counts, mode=mode,
                             window=window, negative=negative, sample=sample, seed=seed)

    losses, seconds = train(model, source, epochs=epochs, lr_schedule="gensim", loss_of=loss_of,
                            units_per_epoch=model.corpus_total_words, desc=f"word2vec {mode} (gensim, update)",
                            unit="word", show_progress=show_progress, callback=callback)
    return dict(keys=all_keys, vectors=model.wv.vectors, output=model.syn1neg, counts=all_counts, losses=losses,
                seconds=seconds, words=model.corpus_total_words * epochs)


def fit_walks(stream, num_nodes: int, *, dim: int, window: int, negative: int, sample: float, epochs: int,
              lr: float, min_lr: float, seed: int, workers: int | None, walk_length: int,
              sync_every: float, show_progress: bool = True, callback=None) -> dict:
    """Node2Vec on gensim: skip-gram over epoch 0's walks (all epochs on the same walks, as
    PecanPy does), with the exact learning-rate schedule.

    Returns a dict: vectors and output weights in node-row order (zero rows for nodes no walk
    visits), counts (visits per node), losses, seconds (training only), sync (the averaging hook
    of a distributed fit, else None). Under a process group ``stream`` walks from this rank's
    share of start nodes; the vocabulary (every visited node) comes from the visits summed over
    the ranks, and the tables are averaged every ``sync_every`` of an epoch (:mod:`.dist_gensim`).
    """
    from ... import distributed as ek_dist
    from .engine import evaluate_loss

    dist = ek_dist.is_distributed()

    model = build_model(sg=True, dim=dim, window=window, negative=negative, min_count=1, sample=sample,
                        epochs=epochs, lr=lr, min_lr=min_lr, seed=seed, workers=workers)

    def in_rows(m):
        """(input, output) vectors of gensim's vocabulary (node rows as strings) in node-row order."""
        rows = np.fromiter((int(k) for k in m.wv.index_to_key), dtype=np.int64, count=len(m.wv))
        w_in = np.zeros((num_nodes, m.wv.vector_size), dtype=np.float32)
        w_out = np.zeros_like(w_in)
        w_in[rows], w_out[rows] = m.wv.vectors, m.syn1neg
        return w_in, w_out

    from .progress import bar

    with tempfile.TemporaryDirectory(prefix="embedkit-node2vec-") as tmp:
        t0 = time.perf_counter()
        walks = stream.walks_per_epoch
        # walks x walk_length: an upper bound (walks stop early at dead ends); only sizes the parts
        with bar("node2vec (gensim): walks", total=walks, unit="walk", show_progress=show_progress) as pbar:
            counts, first, parts = stream.write_parts(tmp, num_nodes, 0, part_words=_part_words(walks * walk_length),
                                                      on_batch=pbar.update)
        tokens, lengths = first if first is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        log.info("node2vec: %d walks written for gensim in %.1fs (%d part(s))", walks, time.perf_counter() - t0,
                 len(parts))
        take = int(min(len(lengths), max(1, _LOSS_SAMPLE_STEPS // walk_length)))
        sample_tokens, sample_lengths = tokens[: int(lengths[:take].sum())], lengths[:take]

        local_steps = int(counts.sum())   # >= this rank's walks (each holds its start node), > 0 (checked)
        if dist:
            from .dist_gensim import resplit
            from .distributed import syncs_per_epoch

            counts = ek_dist.sum_over_ranks(counts)
            # parts from the steps really walked (dead ends stop walks early): <= 1/n of the epoch each
            parts = resplit(parts, max(1, min(_part_words(local_steps), -(-local_steps // syncs_per_epoch(sync_every)))),
                            tmp)

        def loss_of(m):
            w_in, w_out = in_rows(m)
            return evaluate_loss(w_in, w_out, sample_tokens, sample_lengths, counts, window=m.window,
                                 negative=m.negative, sample=m.sample, seed=0)

        if dist:    # the same vocabulary on every rank: every node any rank visits, in row order
            model.build_vocab_from_freq({str(i): int(counts[i]) for i in np.flatnonzero(counts)})
        else:
            build_vocab(model, dict(corpus_iterable=_PartLines([p for p, _, _ in parts])), desc="node2vec (gensim)",
                        show_progress=show_progress)
        from .dist_gensim import train_parts

        # N ranks: N x the rates, this rank's draws, the tables averaged after the parts (nothing in one process)
        losses, seconds, sync = train_parts(model, parts, words=local_steps, epochs=epochs, loss_of=loss_of,
                                            desc="node2vec (gensim)", unit="step", show_progress=show_progress,
                                            callback=callback, seed=seed, tables=lambda m: (m.wv.vectors, m.syn1neg),
                                            sync_every=sync_every)
    vectors, output = in_rows(model)
    return dict(vectors=vectors, output=output, counts=counts, losses=losses, seconds=seconds, sync=sync)


class _PartLines:
    """The sentences of several corpus files in order, as gensim's corpus_file mode reads one
    (``LineSentence``): the vocabulary scan over walk parts gives the vocabulary (and its order)
    that one file holding them all gives."""

    def __init__(self, paths):
        self.paths = list(paths)

    def __iter__(self):
        from gensim.models.word2vec import LineSentence

        for path in self.paths:
            yield from LineSentence(path)
