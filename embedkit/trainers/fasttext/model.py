"""FastText: skip-gram / CBOW word vectors with hashed character n-grams (Bojanowski, Grave,
Joulin & Mikolov, "Enriching Word Vectors with Subword Information", TACL 2017).

Two backends with the same model: ``"gensim"`` (``gensim.models.FastText``, CPU) and
``"torch"`` (the shared skip-gram engine with n-gram bags, CPU or CUDA; skip-gram only): each
word's input vector is the mean of its own row and the rows of its n-grams' hash buckets, and
every row of the bag receives the full error. ``"auto"``: torch on CUDA, else gensim. Both hash
n-grams as gensim does, so the result (:class:`FastTextEmbeddings`) answers unknown words alike.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ..._validation import DEVICE, DIM, EPOCHS, LR, MIN_LR, NEGATIVE, SEED, WINDOW, WORKERS, Interval, NoneOk, Options
from ...errors import InputError
from ..base import Trainer
from ..sgns import choose_backend, ignored_by, single_process
from ..sgns.distributed import SYNC_EVERY, SYNC_EVERY_MIN
from .embeddings import FastTextEmbeddings, ngram_hashes

__all__ = ["FastText"]

log = logging.getLogger(__name__)
_OWNER = "FastText"


class FastText(Trainer):
    """Word vectors from words and their character n-grams (fastText), for unknown words too.

    Parameters: those of :class:`~embedkit.Word2Vec` (``mode``, ``dim``, ``window``,
    ``negative``, ``min_count``, ``sample``, ``epochs``, ``lr``, ``min_lr``, ``max_vocab``,
    ``seed``, ``backend``, ``device``, ``workers``, ``batch_words``, ``sync_every``) plus

    min_n, max_n : int, default 3, 6     character n-gram lengths (``max_n < min_n``: no n-grams,
        plain word2vec)
    bucket : int, default 2,000,000      hash buckets of the n-gram matrix (its memory:
        bucket x dim x 4 bytes, 800 MB at dim 100; lower it for small corpora)

    ``fit(corpus)`` returns :class:`FastTextEmbeddings` (``emb["unseenword"]`` works). The
    torch backend trains skip-gram only (``mode="cbow"`` with it is an error; gensim does both).
    Fitted: ``embeddings_``, ``loss_history_``, ``backend_``, ``vocab_counts_``,
    ``train_seconds_``, ``words_per_second_``. Saves without pickle (n-gram matrix included),
    also through the store (the model extra).

    Distributed (torchrun, ``--nproc N``; both backends) as Word2Vec: the vocabulary from the
    whole corpus on every rank, every N-th sentence per rank, the word rows, the n-gram buckets
    and the output weights averaged every ``sync_every`` of an epoch (each average sends the
    whole bucket matrix: lower ``bucket`` for many syncs); ``comm_bytes_`` etc. as Word2Vec.
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
        "min_n": [Interval(int, 1, 100)],
        "max_n": [Interval(int, 0, 100)],
        "bucket": [Interval(int, 1, 1 << 28)],
        "max_vocab": [Interval(int, 1, None), NoneOk()],
        "seed": SEED,
        "backend": [Options("auto", "gensim", "torch")],
        "device": DEVICE,
        "workers": WORKERS,
        "batch_words": [Interval(int, 100, None), NoneOk()],
        "sync_every": [Interval(float, SYNC_EVERY_MIN, 1.0, closed="both")],
    }

    def __init__(self, mode: str = "skipgram", dim: int = 100, window: int = 5, negative: int = 5,
                 min_count: int = 5, sample: float = 1e-3, epochs: int = 5, lr: float = 0.025,
                 min_lr: float = 0.0001, min_n: int = 3, max_n: int = 6, bucket: int = 2_000_000,
                 max_vocab: int | None = None, seed: int = 0, backend: str = "auto", device: str = "auto",
                 workers: int | None = None, batch_words: int | None = None, sync_every: float = SYNC_EVERY):
        self.mode = mode
        self.dim = dim
        self.window = window
        self.negative = negative
        self.min_count = min_count
        self.sample = sample
        self.epochs = epochs
        self.lr = lr
        self.min_lr = min_lr
        self.min_n = min_n
        self.max_n = max_n
        self.bucket = bucket
        self.max_vocab = max_vocab
        self.seed = seed
        self.backend = backend
        self.device = device
        self.workers = workers
        self.batch_words = batch_words
        self.sync_every = sync_every

    def _ignored_params(self) -> dict:
        try:
            return {**ignored_by(*choose_backend(self.backend, self.device, _OWNER)), **single_process()}
        except InputError:
            return {}

    def fit(self, corpus, *, show_progress: bool = True, callback=None) -> FastTextEmbeddings:
        """Train on ``corpus`` (path, list of paths, ek.Corpus or list of token lists)."""
        from ... import distributed as ek_dist
        from ...data.corpus import as_corpus
        from ..sgns.distributed import record_comm

        params = self._validate_params(warn=False)
        self._check_callback(_OWNER, callback)
        corpus = as_corpus(corpus, "FastText.fit")
        backend, dev = choose_backend(self.backend, self.device, _OWNER)
        ek_dist.setup(dev)    # joins the process group under torchrun; nothing in one process
        self._warn_ignored(params, {**ignored_by(backend, dev), **single_process()})
        show_progress = show_progress and ek_dist.is_main()
        mark = ek_dist.comm_mark()
        if backend == "torch" and self.mode != "skipgram":
            raise InputError("FastText: the torch backend trains skip-gram only; use mode='skipgram' or "
                             "backend='gensim' for CBOW")
        res = self._fit_gensim(corpus, show_progress, callback) if backend == "gensim" else \
            self._fit_torch(corpus, dev, show_progress, callback)
        record_comm(self, mark, res.get("sync"))
        self.backend_ = backend
        self.vocab_counts_ = np.asarray(res["counts"], dtype=np.int64)
        self.loss_history_ = [float(x) for x in res["losses"]]
        self.train_seconds_ = res["seconds"]
        self.words_per_second_ = res["words"] / res["seconds"] if res["seconds"] > 0 else float("nan")
        self._set(res["keys"], res["word_rows"], res["ngrams"], res["output"], backend)
        return self.embeddings_

    def _set(self, keys, word_rows, ngrams, output, backend):
        self._word_rows = np.asarray(word_rows, dtype=np.float32)
        self._output = np.asarray(output, dtype=np.float32)
        ngrams = np.asarray(ngrams, dtype=np.float32)
        vectors = self._word_rows.copy()
        for i, w in enumerate(keys):    # a known word: the mean of its own row and its n-gram rows
            rows = ngram_hashes(w, self.min_n, self.max_n, len(ngrams))
            if rows:
                vectors[i] = (vectors[i] + ngrams[rows].sum(axis=0)) / (len(rows) + 1)
        self.embeddings_ = FastTextEmbeddings(keys, vectors, ngrams, min_n=self.min_n, max_n=self.max_n,
                                              meta={"trainer": _OWNER, "backend": backend})

    # ------------------------------------------------------------------ backends
    def _fit_gensim(self, corpus, show_progress, callback) -> dict:
        from gensim.models import FastText as GensimFastText

        from ..._device import cpu_count
        from ..sgns.engine import evaluate_loss
        from ..sgns.gensim_backend import _loss_sample, build_vocab, train

        params = dict(vector_size=self.dim, window=self.window, negative=self.negative, hs=0,
                      min_count=self.min_count, sample=self.sample, epochs=self.epochs, alpha=self.lr,
                      min_alpha=self.min_lr, seed=self.seed, sg=1 if self.mode == "skipgram" else 0,
                      workers=self.workers or cpu_count(), min_n=self.min_n, max_n=self.max_n, bucket=self.bucket,
                      max_final_vocab=self.max_vocab)
        if self.batch_words is not None:
            params["batch_words"] = self.batch_words
        model = GensimFastText(**params)
        source = dict(corpus_iterable=corpus)
        build_vocab(model, source, desc=f"fasttext {self.mode} (gensim)", show_progress=show_progress)
        if model.corpus_total_words == 0:
            raise InputError("the corpus is empty: it holds no tokens (one sentence per line, tokens separated by spaces)")
        if len(model.wv) == 0:
            raise InputError(f"no word occurs at least min_count={self.min_count} times; lower min_count")
        keys = list(model.wv.index_to_key)
        counts = np.array([model.wv.get_vecattr(k, "count") for k in keys], dtype=np.int64)
        ids, lengths = _loss_sample(corpus, model.wv.key_to_index)
        if not len(ids):
            raise InputError("the corpus forms no training example: no sentence holds two in-vocabulary words")

        def loss_of(m):
            m.wv.adjust_vectors()   # gensim composes word vectors from the n-gram rows only at the end of train
            return evaluate_loss(m.wv.vectors, m.syn1neg, ids, lengths, counts, mode=self.mode, window=self.window,
                                 negative=self.negative, sample=self.sample, seed=self.seed)

        from ... import distributed as ek_dist

        sync, words = None, model.corpus_total_words
        if ek_dist.is_distributed():
            from ..sgns.dist_gensim import train_sharded

            losses, seconds, words, sync = train_sharded(
                model, corpus, tables=lambda m: (m.wv.vectors_vocab, m.wv.vectors_ngrams, m.syn1neg),
                after=lambda m: m.wv.adjust_vectors(), sync_every=self.sync_every, epochs=self.epochs,
                loss_of=loss_of, desc=f"fasttext {self.mode} (gensim)", seed=self.seed,
                show_progress=show_progress, callback=callback)
        else:
            losses, seconds = train(model, source, epochs=self.epochs, lr_schedule="gensim", loss_of=loss_of,
                                    units_per_epoch=model.corpus_total_words, desc=f"fasttext {self.mode} (gensim)",
                                    show_progress=show_progress, callback=callback)
        ngrams = model.wv.vectors_ngrams
        if self.max_n < self.min_n:
            ngrams = np.zeros((0, self.dim), dtype=np.float32)
        return dict(keys=keys, counts=counts, word_rows=model.wv.vectors_vocab, ngrams=ngrams,
                    output=model.syn1neg, losses=losses, seconds=seconds, words=words * self.epochs, sync=sync)

    def subword_table(self, keys):
        """CSR ``(ptr, idx)`` of each word's input rows: its own row, then ``len(keys) + h`` for
        each n-gram hash ``h`` (the bag the torch backend averages)."""
        v = len(keys)
        ptr = np.zeros(v + 1, dtype=np.int64)
        idx: list[int] = []
        for i, w in enumerate(keys):
            idx.append(i)
            idx.extend(v + h for h in ngram_hashes(w, self.min_n, self.max_n, self.bucket))
            ptr[i + 1] = len(idx)
        return ptr, np.asarray(idx, dtype=np.int64)

    def _fit_torch(self, corpus, dev, show_progress, callback) -> dict:
        import torch

        from ..sgns.distributed import sync_for
        from ..sgns.engine import cpu_threads, train_skipgram
        from ..word2vec.model import vocab_and_blocks

        words, counts, blocks = vocab_and_blocks(corpus, self.min_count, self.max_vocab, "fasttext skipgram",
                                                 show_progress)
        total = int(sum(b[0].size for b in blocks))
        ptr, idx = self.subword_table(words)
        buckets = self.bucket if self.max_n >= self.min_n else 0
        sync = sync_for(self.sync_every)
        with cpu_threads(self.workers, dev):
            start = time.perf_counter()
            table, losses, output = train_skipgram(
                blocks, counts, mode="skipgram", dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=self.epochs, lr=self.lr, min_lr=self.min_lr, seed=self.seed,
                device=dev, batch_words=self.batch_words, total_words=total, show_progress=show_progress,
                callback=callback, desc="fasttext skipgram", return_output=True,
                subwords=(ptr, idx, len(words) + buckets), sync=sync)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - start
        return dict(keys=words, counts=counts, word_rows=table[:len(words)], ngrams=table[len(words):],
                    output=output, losses=losses, seconds=seconds, words=total * self.epochs, sync=sync)

    # ------------------------------------------------------------------ persistence
    def _state_arrays(self) -> dict:
        """Vocabulary with counts, the words' own rows, the n-gram bucket matrix, output weights."""
        return {"keys": np.asarray(self.embeddings_.keys, dtype=str), "counts": self.vocab_counts_,
                "word_rows": self._word_rows, "ngrams": self.embeddings_.ngrams, "output": self._output}

    def _state_config(self) -> dict:
        return {"backend": self.backend_, "vocab_size": len(self.embeddings_),
                "train_seconds": float(self.train_seconds_), "words_per_second": float(self.words_per_second_)}

    def _load_state(self, arrays: dict, config: dict) -> None:
        keys = [str(k) for k in np.asarray(arrays["keys"]).tolist()]
        rows = np.asarray(arrays["word_rows"], dtype=np.float32)
        output = np.asarray(arrays["output"], dtype=np.float32)
        counts = np.asarray(arrays["counts"], dtype=np.int64)
        ngrams = np.asarray(arrays["ngrams"], dtype=np.float32)
        if not (rows.ndim == 2 and rows.shape == output.shape and len(rows) == len(keys) == len(counts)
                and ngrams.ndim == 2 and (not len(ngrams) or ngrams.shape[1] == rows.shape[1])):
            raise ValueError(f"{len(keys)} keys, {counts.shape} counts, word rows {rows.shape}, output {output.shape} "
                             f"and n-grams {ngrams.shape} do not match")
        self.backend_ = str(config["backend"])
        self.vocab_counts_ = counts
        self.train_seconds_ = float(config.get("train_seconds", float("nan")))
        self.words_per_second_ = float(config.get("words_per_second", float("nan")))
        self._set(keys, rows, ngrams, output, self.backend_)
