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
import time
from collections import Counter
from itertools import chain

import numpy as np

from ..._validation import DEVICE, DIM, EPOCHS, LR, MIN_LR, NEGATIVE, SEED, WINDOW, WORKERS, Interval, NoneOk, Options
from ...embeddings import Embeddings
from ...errors import InputError
from ..base import Trainer
from ..sgns import choose_backend, ignored_by, single_process
from ..sgns.distributed import SYNC_EVERY, SYNC_EVERY_MIN

log = logging.getLogger(__name__)

__all__ = ["Word2Vec", "build_vocab", "encode_corpus", "vocab_and_blocks"]

_BLOCK_TOKENS = 1 << 22   # tokens per block handed to the torch engine


def _counted(corpus, progress):
    """The sentences of ``corpus``, advancing the ``progress`` bar (if any) every 10,000 sentences."""
    if progress is None:
        yield from corpus
        return
    n = 0
    for sentence in corpus:
        yield sentence
        n += 1
        if n == 10_000:
            progress.update(n)
            n = 0
    progress.update(n)


def build_vocab(corpus, min_count: int, max_vocab: int | None = None, *, progress=None):
    """Count tokens; return (words ordered by count desc then first appearance, counts, total tokens).

    ``progress``: a tqdm bar advanced by sentences read. Raises InputError when the corpus is
    empty or no word reaches ``min_count``.
    """
    counter: Counter = Counter()
    for sentence in _counted(corpus, progress):
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


def encode_corpus(corpus, key_to_index: dict, block_tokens: int = _BLOCK_TOKENS, *, progress=None):
    """Encode sentences to vocabulary ids (unknown words dropped) in blocks of about ``block_tokens``
    (``progress``: a tqdm bar advanced by sentences read).

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

    for sentence in _counted(corpus, progress):
        buf.append(sentence)
        lens.append(len(sentence))
        size += len(sentence)
        if size >= block_tokens:
            flush()
            buf, lens, size = [], [], 0
    flush()
    return blocks


def vocab_and_blocks(corpus, min_count: int, max_vocab: int | None, desc: str, show_progress: bool = True):
    """:func:`build_vocab` then :func:`encode_corpus`, under "<desc>: vocabulary" and "<desc>: encoding"
    bars (sentences; the encoding bar knows its total). Returns (words, counts, blocks).

    Under a process group every rank counts the whole corpus (the same vocabulary and counts
    everywhere, checked) and encodes only its shard: every world-size-th sentence."""
    from ..sgns.distributed import check_shards, check_vocab, strided
    from ..sgns.progress import bar

    with bar(f"{desc}: vocabulary", unit="sentence", show_progress=show_progress) as pb:
        words, counts, _ = build_vocab(corpus, min_count, max_vocab, progress=pb)
        sentences = pb.n
    check_vocab(words, desc.split()[0])
    with bar(f"{desc}: encoding", total=sentences or None, unit="sentence", show_progress=show_progress) as pb:
        blocks = encode_corpus(strided(corpus), {w: i for i, w in enumerate(words)}, progress=pb)
    check_shards(sum(b[0].size for b in blocks), "in-vocabulary tokens")
    return words, counts, blocks


class Word2Vec(Trainer):
    """Word vectors by skip-gram or CBOW with negative sampling (Mikolov et al. 2013).

    Parameters
    ----------
    mode : {"skipgram", "cbow"}, default "skipgram"
    dim : int, default 100            vector size (1..10,000)
    window : int, default 5           maximum distance between centre and context word (1..1,000)
    negative : int, default 5         noise words per example (1..1,000)
    min_count : int, default 5        words rarer than this are dropped
    sample : float, default 1e-3      subsampling threshold of frequent words (0 disables)
    epochs : int, default 5
    lr, min_lr : float, default 0.025, 0.0001   learning rate, decayed linearly from lr to min_lr
        (word2vec's alpha / min_alpha; ``alpha=`` and ``min_alpha=`` still work, with a FutureWarning)
    max_vocab : int or None, default None   keep only the most frequent words
    seed : int, default 0
    backend : {"auto", "gensim", "torch"}, default "auto"   auto: torch on CUDA, else gensim
    device : str, default "auto"      "auto", "cpu", "cuda", "cuda:N" (gensim: CPU only)
    workers : int or None, default None   CPU threads: gensim's threads, or torch's threads
        while the torch backend trains on CPU (set during fit, restored after); None: all
        cores. Ignored (with a warning) by torch on CUDA. (Node2Vec's ``workers`` means the same.)
    batch_words : int or None, default None   tokens per torch step (None: 16,384); gensim: its
        job size for token lists in memory (ignored for files, which gensim reads without jobs)
    sync_every : float, default 0.25   distributed fits only (torchrun, ``--nproc``): the fraction of
        an epoch between two averages of the ranks' replicas, in [0.001, 1]; ignored in one process

    ``fit(corpus)`` returns :class:`~embedkit.Embeddings` ordered by word frequency and sets
    ``embeddings_``, ``loss_history_``, ``backend_`` (the backend used), ``vocab_counts_``
    and ``train_seconds_`` / ``words_per_second_`` (training phase only). The fitted model
    saves without pickle (``save`` / ``load``, ``to_store`` / ``from_store``): vocabulary with
    counts, input vectors and output (negative-sampling) weights.

    Loss: torch reports the mean loss over all training examples of each epoch. gensim's
    own running loss is wrong (gensim issues #2617, #2735), so for gensim the loss of an
    epoch is evaluated at the end of the epoch on a fixed sample of the corpus's first
    tokens (same definition, with the epoch's final vectors).

    Reproducibility: the torch backend on CPU gives identical vectors for the same seed and
    ``workers`` (another thread count may change the last bits); gensim does with ``workers=1``
    (its threads otherwise race); torch on CUDA agrees only to rounding (atomic additions).

    Continued training: ``partial_fit(more_sentences)`` on a fitted or loaded model grows the
    vocabulary and keeps training from the current vectors (learning rate from ``lr / 4``).

    Distributed (under ``torchrun`` or ``embedkit train word2vec --nproc N``; both backends):
    every rank builds the vocabulary from the whole corpus, trains its replica on every N-th
    sentence at N x ``lr`` (averaging divides each update by N) and the replicas are averaged
    (``all_reduce``) every ``sync_every`` of an epoch and at its end, so every rank ends with the
    same vectors; ``loss_history_`` is the job's loss.
    Also set then: ``comm_bytes_`` (bytes this rank sent), ``comm_seconds_``, ``comm_syncs_``.
    ``partial_fit`` runs in one process only (InputError under a process group).

    Raises InputError on bad parameters, an empty corpus, no word reaching ``min_count``, a
    corpus that forms no (centre, context) pair, a diverged run (non-finite loss: nothing is
    fitted, so nothing can be saved), a missing file, a one-pass generator; ParseError
    (file:line) on non-UTF-8 input.
    """

    _parameter_constraints = {
        "mode": [Options("skipgram", "cbow")],
        "dim": DIM,
        "window": WINDOW,
        "negative": NEGATIVE,
        "min_count": [Interval(int, 1, None)],
        "sample": [Interval(float, 0.0, 1.0)],
        "epochs": EPOCHS,
        "lr": LR,
        "min_lr": MIN_LR,
        "max_vocab": [Interval(int, 1, None), NoneOk()],
        "seed": SEED,
        "backend": [Options("auto", "gensim", "torch")],
        "device": DEVICE,
        "workers": WORKERS,
        "batch_words": [Interval(int, 100, None), NoneOk()],
        "sync_every": [Interval(float, SYNC_EVERY_MIN, 1.0, closed="both")],
    }
    _param_aliases = {"alpha": "lr", "min_alpha": "min_lr"}

    def __init__(self, mode: str = "skipgram", dim: int = 100, window: int = 5, negative: int = 5,
                 min_count: int = 5, sample: float = 1e-3, epochs: int = 5, lr: float = 0.025,
                 min_lr: float = 0.0001, max_vocab: int | None = None, seed: int = 0,
                 backend: str = "auto", device: str = "auto", workers: int | None = None,
                 batch_words: int | None = None, sync_every: float = SYNC_EVERY, *, alpha: float | None = None,
                 min_alpha: float | None = None):
        self.mode = mode
        self.dim = dim
        self.window = window
        self.negative = negative
        self.min_count = min_count
        self.sample = sample
        self.epochs = epochs
        self.lr = lr
        self.min_lr = min_lr
        self.max_vocab = max_vocab
        self.seed = seed
        self.backend = backend
        self.device = device
        self.workers = workers
        self.batch_words = batch_words
        self.sync_every = sync_every
        self._take_aliases(alpha=alpha, min_alpha=min_alpha)

    # ------------------------------------------------------------------ checks
    def _resolve_backend(self):
        """("gensim" | "torch", torch.device): auto is torch on CUDA, else gensim (CPU only)."""
        return choose_backend(self.backend, self.device, "Word2Vec")

    @staticmethod
    def _ignored(backend: str, dev, files: bool) -> dict:
        out = ignored_by(backend, dev)
        out.update(single_process())
        if backend == "gensim" and files:
            out["batch_words"] = ("by the gensim backend on files (gensim's corpus_file mode reads them without "
                                  "jobs; used by the torch backend and by gensim on token lists)")
        return out

    def _ignored_params(self) -> dict:
        # check_params(): before the corpus is known (fit also names batch_words for files)
        try:
            return self._ignored(*self._resolve_backend(), files=False)
        except InputError:
            return {}  # fit raises on the device

    # ------------------------------------------------------------------ fit
    def fit(self, corpus, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Train on ``corpus`` (path, list of paths, ek.Corpus or list of token lists); return Embeddings."""
        from ... import distributed as ek_dist
        from ...data.corpus import as_corpus
        from ..sgns.distributed import record_comm

        params = self._validate_params(warn=False)
        self._check_callback("Word2Vec", callback)
        corpus = as_corpus(corpus, "Word2Vec.fit")
        backend, dev = self._resolve_backend()
        ek_dist.setup(dev)    # joins the process group under torchrun; nothing in one process
        self._warn_ignored(params, self._ignored(backend, dev, corpus.is_files))
        show_progress = show_progress and ek_dist.is_main()
        mark = ek_dist.comm_mark()
        if backend == "gensim":
            from ..sgns.gensim_backend import fit_corpus

            res = fit_corpus(corpus, mode=self.mode, dim=self.dim, window=self.window, negative=self.negative,
                             min_count=self.min_count, sample=self.sample, epochs=self.epochs, lr=self.lr,
                             min_lr=self.min_lr, seed=self.seed, workers=self.workers, max_vocab=self.max_vocab,
                             batch_words=self.batch_words, show_progress=show_progress, callback=callback,
                             sync_every=self.sync_every)
        else:
            res = self._fit_torch(corpus, dev, show_progress, callback)
        record_comm(self, mark, res.get("sync"))
        self.backend_ = backend
        self.vocab_counts_ = res["counts"]
        self.loss_history_ = [float(x) for x in res["losses"]]
        self.train_seconds_ = res["seconds"]
        self.words_per_second_ = res["words"] / res["seconds"] if res["seconds"] > 0 else float("nan")
        self._output = np.asarray(res["output"], dtype=np.float32)
        self.embeddings_ = Embeddings(res["keys"], res["vectors"], meta={"trainer": "Word2Vec", "backend": backend})
        return self.embeddings_

    def _fit_torch(self, corpus, dev, show_progress, callback) -> dict:
        import torch

        from ..sgns.distributed import sync_for
        from ..sgns.engine import cpu_threads, train_skipgram

        words, counts, blocks = vocab_and_blocks(corpus, self.min_count, self.max_vocab, f"word2vec {self.mode}",
                                                 show_progress)
        total = int(sum(b[0].size for b in blocks))    # this rank's tokens (all of them in one process)
        sync = sync_for(self.sync_every)
        with cpu_threads(self.workers, dev):    # on CPU: `workers` torch threads, restored after
            start = time.perf_counter()
            vectors, losses, output = train_skipgram(
                blocks, counts, mode=self.mode, dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=self.epochs, lr=self.lr, min_lr=self.min_lr,
                seed=self.seed, device=dev, batch_words=self.batch_words, total_words=total,
                show_progress=show_progress, callback=callback, desc=f"word2vec {self.mode}", return_output=True,
                sync=sync)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - start
        return dict(keys=words, vectors=vectors, output=output, counts=counts, losses=losses, seconds=seconds,
                    words=total * self.epochs, sync=sync)

    # ------------------------------------------------------------------ continued training
    def partial_fit(self, corpus, *, lr: float | None = None, epochs: int | None = None,
                    show_progress: bool = True, callback=None) -> Embeddings:
        """Continue training a fitted (or loaded) model on more sentences; returns the new Embeddings.

        The vocabulary grows: words of ``corpus`` reaching ``min_count`` in it that the model
        does not know are appended after the old ones (input vectors drawn as at the start of a
        fit, output weights zero, as gensim's ``build_vocab(update=True)`` does) and the counts
        of known words add up (they drive subsampling and the noise distribution). Old vectors
        start from where they are; the learning rate decays linearly from ``lr`` (default: the
        model's ``lr / 4``) to ``min_lr`` over ``epochs`` (default: the model's ``epochs``).
        A lower start than a fresh fit keeps the old vectors from drifting away while the new
        words settle (benchmarks/RESULTS.md: old-data quality before and after an update).

        Backends as for ``fit``: gensim on CPU (its ``build_vocab(update=True)``), the torch
        engine on CUDA or with ``backend="torch"``. ``loss_history_`` gains one entry per epoch.
        """
        from ..._validation import check_float, check_int
        from ...data.corpus import as_corpus
        from ..sgns.distributed import refuse

        self._check_fitted()
        refuse("Word2Vec", "partial_fit")
        params = self._validate_params(warn=False)
        self._check_callback("Word2Vec", callback)
        lr = self.lr / 4 if lr is None else check_float("Word2Vec.partial_fit", "lr", lr, 0.0, 10.0, low_open=True)
        epochs = self.epochs if epochs is None else check_int("Word2Vec.partial_fit", "epochs", epochs, 1)
        min_lr = min(self.min_lr, lr)
        corpus = as_corpus(corpus, "Word2Vec.partial_fit")
        backend, dev = self._resolve_backend()
        self._warn_ignored(params, self._ignored(backend, dev, False))
        keys = list(self.embeddings_.keys)
        if backend == "gensim":
            from ..sgns.gensim_backend import continue_corpus

            res = continue_corpus(corpus, keys, self.vocab_counts_, self.embeddings_.vectors, self._output,
                                  mode=self.mode, window=self.window, negative=self.negative,
                                  min_count=self.min_count, sample=self.sample, epochs=epochs, lr=lr,
                                  min_lr=min_lr, seed=self.seed, workers=self.workers,
                                  batch_words=self.batch_words, show_progress=show_progress, callback=callback)
        else:
            res = self._continue_torch(corpus, keys, dev, lr, min_lr, epochs, show_progress, callback)
        log.info("Word2Vec.partial_fit: %d new words (vocabulary %d -> %d)", len(res["keys"]) - len(keys),
                 len(keys), len(res["keys"]))
        self.backend_ = backend
        self.vocab_counts_ = np.asarray(res["counts"], dtype=np.int64)
        self.loss_history_ = self._loss_history() + [float(x) for x in res["losses"]]
        self.train_seconds_ = res["seconds"]
        self.words_per_second_ = res["words"] / res["seconds"] if res["seconds"] > 0 else float("nan")
        self._output = np.asarray(res["output"], dtype=np.float32)
        self.embeddings_ = Embeddings(res["keys"], res["vectors"], meta={"trainer": "Word2Vec", "backend": backend})
        return self.embeddings_

    def _continue_torch(self, corpus, keys, dev, lr, min_lr, epochs, show_progress, callback) -> dict:
        import torch

        from ..sgns.engine import cpu_threads, train_skipgram
        from ..sgns.progress import bar

        counter: Counter = Counter()
        with bar(f"word2vec {self.mode} (update): vocabulary", unit="sentence", show_progress=show_progress) as pb:
            for sentence in _counted(corpus, pb):
                counter.update(sentence)
        if not counter:
            raise InputError("the corpus is empty: it holds no tokens (one sentence per line, tokens separated by spaces)")
        index = {w: i for i, w in enumerate(keys)}
        new = [w for w, c in sorted(counter.items(), key=lambda kv: -kv[1]) if c >= self.min_count and w not in index]
        all_keys = keys + new
        index.update({w: len(keys) + i for i, w in enumerate(new)})
        counts = np.concatenate([self.vocab_counts_, np.zeros(len(new), dtype=np.int64)])
        for w, c in counter.items():
            i = index.get(w)
            if i is not None:
                counts[i] += c
        with bar(f"word2vec {self.mode} (update): encoding", unit="sentence", show_progress=show_progress) as pb:
            blocks = encode_corpus(corpus, index, progress=pb)
        total = int(sum(b[0].size for b in blocks))
        if total == 0:
            raise InputError("none of the corpus's words is in the vocabulary or reaches min_count; nothing to train on")
        gen = np.random.default_rng([self.seed, len(keys)])
        fresh = ((gen.random((len(new), self.dim), dtype=np.float32) * 2 - 1) / self.dim).astype(np.float32)
        w_in = np.concatenate([self.embeddings_.vectors, fresh])
        w_out = np.concatenate([self._output, np.zeros_like(fresh)])
        with cpu_threads(self.workers, dev):
            start = time.perf_counter()
            vectors, losses, output = train_skipgram(
                blocks, counts, mode=self.mode, dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=epochs, lr=lr, min_lr=min_lr, seed=self.seed + len(self.loss_history_),
                device=dev, batch_words=self.batch_words, total_words=total, show_progress=show_progress,
                callback=callback, desc=f"word2vec {self.mode} (update)", return_output=True, init=(w_in, w_out))
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - start
        return dict(keys=all_keys, vectors=vectors, output=output, counts=counts, losses=losses, seconds=seconds,
                    words=total * epochs)

    # ------------------------------------------------------------------ model persistence
    def _state_arrays(self) -> dict:
        """Vocabulary (by frequency) with counts, input vectors, output (negative-sampling) weights."""
        return {"keys": np.asarray(self.embeddings_.keys, dtype=str), "counts": self.vocab_counts_,
                "vectors": self.embeddings_.vectors, "output": self._output}

    def _state_config(self) -> dict:
        return {"backend": self.backend_, "vocab_size": len(self.embeddings_),
                "train_seconds": float(self.train_seconds_), "words_per_second": float(self.words_per_second_)}

    def _load_state(self, arrays: dict, config: dict) -> None:
        keys = [str(k) for k in np.asarray(arrays["keys"]).tolist()]
        vectors = np.asarray(arrays["vectors"], dtype=np.float32)
        output = np.asarray(arrays["output"], dtype=np.float32)
        counts = np.asarray(arrays["counts"], dtype=np.int64)
        if not (vectors.ndim == 2 and output.shape == vectors.shape and counts.shape == (len(keys),)
                and len(vectors) == len(keys)):
            raise ValueError(f"{len(keys)} keys, {counts.shape} counts, input {vectors.shape} and output "
                             f"{output.shape} vectors do not match")
        backend = str(config["backend"])
        self.backend_ = backend
        self.vocab_counts_ = counts
        self.train_seconds_ = float(config.get("train_seconds", float("nan")))
        self.words_per_second_ = float(config.get("words_per_second", float("nan")))
        self._output = output
        self.embeddings_ = Embeddings(keys, vectors, meta={"trainer": "Word2Vec", "backend": backend})
