"""The gensim backend of :class:`~embedkit.Word2Vec` (private; use ``Word2Vec(backend="gensim")``).

Files go through gensim's ``corpus_file`` mode, several times faster than an iterator:
one plain file is read where it lies; several files or ``.gz`` / ``.bz2`` files are first
decompressed once into a single temporary file (deleted afterwards). Token lists already
in memory go through gensim's iterator mode. The loss of each epoch is evaluated by our
engine on a fixed sample (gensim's own counter is wrong: gensim issues #2617, #2735).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ...errors import InputError

log = logging.getLogger(__name__)

_LOSS_SAMPLE_TOKENS = 2_000


def _needs_copy(paths) -> bool:
    return len(paths) != 1 or paths[0].name.lower().endswith((".gz", ".bz2"))


def _merge_to_temp(paths, directory: str) -> Path:
    """Decompress/concatenate ``paths`` into one UTF-8 file, checking every line on the way."""
    from ...data.corpus import open_text_lines

    target = Path(directory) / "corpus.txt"
    with open(target, "w", encoding="utf-8") as out:
        for p in paths:
            for _, text in open_text_lines(p):
                out.write(text if text.endswith("\n") else text + "\n")
    return target


def _locate_decode_error(path: Path) -> None:
    """Re-read ``path`` to turn gensim's UnicodeDecodeError into a ParseError with the line."""
    from ...data.corpus import open_text_lines

    for _ in open_text_lines(path):
        pass


def _loss_sample(corpus, key_to_index):
    ids, lengths, n = [], [], 0
    for sentence in corpus:
        enc = [key_to_index[w] for w in sentence if w in key_to_index]
        if enc:
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


def train_corpus_file(model, corpus_file: str, epochs: int, callbacks) -> None:
    """``model.train(corpus_file=...)`` for ``epochs`` epochs with the learning rate decaying
    linearly from ``model.alpha`` to ``model.min_alpha`` whatever the number of workers.

    gensim's corpus_file mode splits each epoch between its ``workers`` threads, and each
    thread measures its progress as its own words over the whole epoch's words
    (``get_next_alpha`` in gensim's word2vec_corpusfile.pyx, gensim 4.4), so with W threads the
    rate decays only 1/W of the way per epoch: one epoch on 2 threads ends at alpha/2 instead
    of min_alpha (measured: node2vec macro-F1 0.938 instead of 0.955). So each epoch is one
    ``train`` call asking for the range A -> A - W (A - B); the 1/W of it each thread walks
    through is the wanted A -> B. With one worker this is gensim's own schedule.

    Used by Node2Vec (1 epoch by default, where the effect is largest). Word2Vec keeps gensim's
    schedule: over 5 epochs the higher average rate of the per-thread decay scored 0.017 higher
    on WS353 (3 seeds, 2 workers) and Word2Vec's gensim backend is benchmarked for parity.
    """
    a0, a1 = float(model.alpha), float(model.min_alpha)
    threads = max(1, int(model.workers)) if gensim_alpha_per_thread() else 1
    for e in range(epochs):
        start = a0 - (a0 - a1) * e / epochs
        end = a0 - (a0 - a1) * (e + 1) / epochs
        asked = start - threads * (start - end)
        # gensim reads a falsy end_alpha as "keep the previous one": never pass exactly 0
        model.train(corpus_file=corpus_file, total_examples=model.corpus_count,
                    total_words=model.corpus_total_words, epochs=1, start_alpha=start,
                    end_alpha=asked if asked != 0.0 else -1e-12, callbacks=callbacks)
    model.alpha, model.min_alpha = a0, a1


def fit_gensim(trainer, corpus, *, show_progress=True, callback=None):
    """Train with gensim; return (keys, vectors, counts, losses, train_seconds, words_trained)."""
    from gensim.models import Word2Vec as GensimWord2Vec
    from gensim.models.callbacks import CallbackAny2Vec
    from tqdm.auto import tqdm

    from ..word2vec.model import _cpu_count
    from .engine import evaluate_loss

    params = dict(
        vector_size=trainer.dim, window=trainer.window, negative=trainer.negative, hs=0,
        min_count=trainer.min_count, sample=trainer.sample, epochs=trainer.epochs,
        alpha=trainer.alpha, min_alpha=trainer.min_alpha, seed=trainer.seed,
        sg=1 if trainer.mode == "skipgram" else 0, workers=trainer.workers or _cpu_count(),
        max_final_vocab=trainer.max_vocab,
    )
    if trainer.batch_words is not None:
        params["batch_words"] = trainer.batch_words
    tmpdir = None
    try:
        if corpus.is_files:
            paths = corpus.paths
            if _needs_copy(paths):
                tmpdir = tempfile.mkdtemp(prefix="embedkit-w2v-")
                source = dict(corpus_file=str(_merge_to_temp(paths, tmpdir)))
            else:
                source = dict(corpus_file=str(paths[0]))
        else:
            source = dict(corpus_iterable=corpus)
        model = GensimWord2Vec(**params)
        try:
            model.build_vocab(**source)
        except UnicodeDecodeError:
            if "corpus_file" in source:
                _locate_decode_error(Path(source["corpus_file"]))
            raise
        if model.corpus_total_words == 0:
            raise InputError("the corpus is empty: it holds no tokens (one sentence per line, tokens separated by spaces)")
        if len(model.wv) == 0:
            raise InputError(f"no word occurs at least min_count={trainer.min_count} times in "
                             f"{model.corpus_total_words} tokens; lower min_count or give a larger corpus")
        keys = list(model.wv.index_to_key)
        counts = np.array([model.wv.get_vecattr(k, "count") for k in keys], dtype=np.int64)
        sample_ids, sample_lengths = _loss_sample(corpus, model.wv.key_to_index)
        losses: list[float] = []
        bar = tqdm(total=trainer.epochs * model.corpus_total_words, unit="word", unit_scale=True,
                   desc=f"word2vec {trainer.mode} (gensim)", disable=not show_progress, dynamic_ncols=True)

        class _EpochEnd(CallbackAny2Vec):
            def __init__(self):
                self.epoch = 0

            def on_epoch_end(self, m):
                self.epoch += 1
                loss = evaluate_loss(m.wv.vectors, m.syn1neg, sample_ids, sample_lengths, counts,
                                     mode=trainer.mode, window=trainer.window, negative=trainer.negative,
                                     sample=trainer.sample, seed=trainer.seed) if len(sample_ids) else float("nan")
                losses.append(loss)
                bar.update(m.corpus_total_words)
                bar.set_postfix(epoch=self.epoch, loss=f"{loss:.4f}")
                log.info("gensim word2vec epoch %d: sampled loss %.4f", self.epoch, loss)
                if callback is not None:
                    callback(self.epoch, loss)

        start = time.perf_counter()
        try:
            # gensim's own schedule, on purpose (see train_corpus_file: Node2Vec corrects it, here
            # the correction cost 0.017 WS353 over 3 seeds, 5 epochs, 2 workers; parity with gensim wins)
            model.train(**source, total_examples=model.corpus_count, total_words=model.corpus_total_words,
                        epochs=trainer.epochs, callbacks=[_EpochEnd()])
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        return keys, model.wv.vectors, counts, losses, seconds, model.corpus_total_words * trainer.epochs
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
