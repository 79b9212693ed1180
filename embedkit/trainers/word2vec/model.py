"""Word2Vec: skip-gram and CBOW with negative sampling, on gensim (CPU) or our torch engine.

Implements Mikolov et al., "Distributed Representations of Words and Phrases and their
Compositionality" (NIPS 2013). Two interchangeable backends with the same semantics:

- ``"gensim"``: a thin wrapper around ``gensim.models.Word2Vec``; files go through gensim's
  fast ``corpus_file`` mode (several files or compressed files are first decompressed once
  into one temporary file); the corpus is never held in memory.
- ``"torch"``: :mod:`embedkit.trainers.sgns.engine`, running on CPU or CUDA (the engine Node2Vec
  shares). It keeps the encoded corpus in memory (4 bytes per in-vocabulary token).
- ``"auto"`` (default): torch when the resolved device is CUDA, else gensim.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from itertools import chain

import numpy as np

from ..._validation import check_choice, check_float, check_int, check_seed
from ...embeddings import Embeddings
from ...errors import InputError
from ..base import Trainer

log = logging.getLogger(__name__)

__all__ = ["Word2Vec", "build_vocab", "encode_corpus"]

_BLOCK_TOKENS = 1 << 22   # tokens per block handed to the torch engine


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


def build_vocab(corpus, min_count: int, max_vocab: int | None = None):
    """Count tokens; return (words ordered by count desc then first appearance, counts, total tokens).

    Raises InputError when the corpus is empty or no word reaches ``min_count``.
    """
    counter: Counter = Counter()
    for sentence in corpus:
        counter.update(sentence)
    total = sum(counter.values())
    if total == 0:
        raise InputError("the corpus is empty: it holds no tokens (one sentence per line, tokens separated by spaces)")
    ranked = sorted(counter.items(), key=lambda kv: -kv[1])  # stable: ties keep first appearance
    words = [w for w, c in ranked if c >= min_count]
    if max_vocab is not None:
        words = words[:max_vocab]
    if not words:
        top, n = ranked[0]
        raise InputError(f"no word occurs at least min_count={min_count} times (the most frequent, {top!r}, "
                         f"occurs {n} times in {total} tokens); lower min_count or give a larger corpus")
    counts = np.fromiter((counter[w] for w in words), dtype=np.int64, count=len(words))
    return words, counts, total


def encode_corpus(corpus, key_to_index: dict, block_tokens: int = _BLOCK_TOKENS):
    """Encode sentences to vocabulary ids (unknown words dropped) in blocks of about ``block_tokens``.

    Returns a list of ``(ids int32, lengths int64)`` blocks, each ids array holding the
    sentences concatenated, ready for :func:`~embedkit.trainers.sgns.engine.train_skipgram`.
    """
    get = key_to_index.get
    blocks, buf, lens, size = [], [], [], 0

    def flush():
        if not lens:
            return
        raw = np.fromiter((get(w, -1) for w in chain.from_iterable(buf)), dtype=np.int64, count=size)
        lengths = np.asarray(lens, dtype=np.int64)
        keep = raw >= 0
        if not keep.all():
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
            lengths = np.add.reduceat(keep.astype(np.int64), starts)
            raw = raw[keep]
        nonzero = lengths > 0
        if raw.size:
            blocks.append((raw.astype(np.int32), lengths[nonzero]))

    for sentence in corpus:
        buf.append(sentence)
        lens.append(len(sentence))
        size += len(sentence)
        if size >= block_tokens:
            flush()
            buf, lens, size = [], [], 0
    flush()
    return blocks


class Word2Vec(Trainer):
    """Word vectors by skip-gram or CBOW with negative sampling (Mikolov et al. 2013).

    Parameters
    ----------
    mode : {"skipgram", "cbow"}, default "skipgram"
    dim : int, default 100            vector size
    window : int, default 5           maximum distance between centre and context word
    negative : int, default 5         noise words per example
    min_count : int, default 5        words rarer than this are dropped
    sample : float, default 1e-3      subsampling threshold of frequent words (0 disables)
    epochs : int, default 5
    alpha, min_alpha : float, default 0.025, 0.0001   learning rate, decayed linearly
    max_vocab : int or None, default None   keep only the most frequent words
    seed : int, default 0
    backend : {"auto", "gensim", "torch"}, default "auto"   auto: torch on CUDA, else gensim
    device : str, default "auto"      "auto", "cpu", "cuda", "cuda:N" (gensim: CPU only)
    workers : int or None, default None   gensim threads / torch CPU threads (None: all cores)
    batch_words : int or None, default None   tokens per torch step (None: 16,384); gensim: its batch_words

    ``fit(corpus)`` returns :class:`~embedkit.Embeddings` ordered by word frequency and sets
    ``embeddings_``, ``loss_history_``, ``backend_`` (the backend used), ``vocab_counts_``
    and ``train_seconds_`` / ``words_per_second_`` (training phase only).

    Loss: torch reports the mean loss over all training examples of each epoch. gensim's
    own running loss is wrong (gensim issues #2617, #2735), so for gensim the loss of an
    epoch is evaluated at the end of the epoch on a fixed sample of the corpus's first
    tokens (same definition, with the epoch's final vectors).

    Reproducibility: the torch backend on CPU gives identical vectors for the same seed;
    gensim does with ``workers=1`` (its threads otherwise race); torch on CUDA agrees only to
    rounding (atomic additions).

    Raises InputError on bad parameters, an empty corpus, no word reaching ``min_count``, a
    missing file, a one-pass generator; ParseError (file:line) on non-UTF-8 input.
    """

    def __init__(self, mode: str = "skipgram", dim: int = 100, window: int = 5, negative: int = 5,
                 min_count: int = 5, sample: float = 1e-3, epochs: int = 5, alpha: float = 0.025,
                 min_alpha: float = 0.0001, max_vocab: int | None = None, seed: int = 0,
                 backend: str = "auto", device: str = "auto", workers: int | None = None,
                 batch_words: int | None = None):
        self.mode = mode
        self.dim = dim
        self.window = window
        self.negative = negative
        self.min_count = min_count
        self.sample = sample
        self.epochs = epochs
        self.alpha = alpha
        self.min_alpha = min_alpha
        self.max_vocab = max_vocab
        self.seed = seed
        self.backend = backend
        self.device = device
        self.workers = workers
        self.batch_words = batch_words
        self.loss_history_ = []

    # ------------------------------------------------------------------ checks
    def _validate(self):
        owner = "Word2Vec"
        check_choice(owner, "mode", self.mode, ["skipgram", "cbow"])
        check_int(owner, "dim", self.dim, 1, 10_000)
        check_int(owner, "window", self.window, 1, 1_000)
        check_int(owner, "negative", self.negative, 1, 1_000)
        check_int(owner, "min_count", self.min_count, 1)
        check_float(owner, "sample", self.sample, 0.0, 1.0)
        check_int(owner, "epochs", self.epochs, 1, 100_000)
        check_float(owner, "alpha", self.alpha, 0.0, 10.0, low_open=True)
        check_float(owner, "min_alpha", self.min_alpha, 0.0, self.alpha)
        if self.max_vocab is not None:
            check_int(owner, "max_vocab", self.max_vocab, 1)
        check_seed(owner, self.seed)
        check_choice(owner, "backend", self.backend, ["auto", "gensim", "torch"])
        if self.workers is not None:
            check_int(owner, "workers", self.workers, 1, 1024)
        if self.batch_words is not None:
            check_int(owner, "batch_words", self.batch_words, 100)

    def _resolve_backend(self):
        from ..._device import resolve_device

        if self.backend == "gensim":
            if self.device not in ("auto", "cpu"):
                if not (isinstance(self.device, str) and self.device.startswith("cuda")):
                    resolve_device(self.device, "Word2Vec")  # reject unknown names with their own message
                raise InputError(f"backend='gensim' runs on CPU only; use backend='torch' for device={self.device!r}")
            return "gensim", None
        dev = resolve_device(self.device, "Word2Vec")
        if self.backend == "torch":
            return "torch", dev
        return ("torch", dev) if dev.type == "cuda" else ("gensim", None)

    # ------------------------------------------------------------------ fit
    def fit(self, corpus, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Train on ``corpus`` (path, list of paths, ek.Corpus or list of token lists); return Embeddings."""
        from ...data.corpus import as_corpus

        self._validate()
        self._check_callback("Word2Vec", callback)
        corpus = as_corpus(corpus, "Word2Vec.fit")
        backend, dev = self._resolve_backend()
        self.backend_ = backend
        if backend == "gensim":
            from ..sgns.gensim_backend import fit_gensim

            keys, vectors, counts, losses, seconds, words = fit_gensim(
                self, corpus, show_progress=show_progress, callback=callback)
        else:
            keys, vectors, counts, losses, seconds, words = self._fit_torch(corpus, dev, show_progress, callback)
        self.vocab_counts_ = counts
        self.loss_history_ = [float(x) for x in losses]
        self.train_seconds_ = seconds
        self.words_per_second_ = words / seconds if seconds > 0 else float("nan")
        self.embeddings_ = Embeddings(keys, vectors, meta={"trainer": "Word2Vec", "backend": backend})
        return self.embeddings_

    def _fit_torch(self, corpus, dev, show_progress, callback):
        import torch

        from ..sgns.engine import train_skipgram

        words, counts, _ = build_vocab(corpus, self.min_count, self.max_vocab)
        blocks = encode_corpus(corpus, {w: i for i, w in enumerate(words)})
        total = int(sum(b[0].size for b in blocks))
        threads = torch.get_num_threads()
        if dev.type == "cpu":
            torch.set_num_threads(self.workers or _cpu_count())
        try:
            start = time.perf_counter()
            vectors, losses = train_skipgram(
                blocks, counts, mode=self.mode, dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=self.epochs, alpha=self.alpha, min_alpha=self.min_alpha,
                seed=self.seed, device=dev, batch_words=self.batch_words, total_words=total,
                show_progress=show_progress, callback=callback, desc=f"word2vec {self.mode}")
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)
        return words, vectors, counts, losses, seconds, total * self.epochs
