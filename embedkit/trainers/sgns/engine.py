"""The one skip-gram / CBOW negative-sampling engine (torch, CPU and CUDA), shared by
Word2Vec and Node2Vec.

Implements word2vec (Mikolov et al., "Distributed Representations of Words and Phrases and
their Compositionality", NIPS 2013) with the semantics of word2vec.c and gensim:

- frequency subsampling: a token of frequency ``f`` (share of all tokens) is kept with
  probability ``(sqrt(f / sample) + 1) * sample / f`` (``sample=0`` keeps everything);
  subsampled tokens are removed *before* windows are formed, as in word2vec.c;
- dynamic window: each centre draws its window uniformly from ``1..window``;
- ``negative`` noise words per example from the unigram distribution raised to 0.75
  (a noise word equal to the target is skipped, as in gensim);
- plain SGD whose learning rate decays linearly from ``lr`` to ``min_lr`` over all epochs
  (word2vec's alpha / min_alpha);
- init: input vectors uniform in ``[-1/dim, 1/dim)`` (gensim 4; word2vec.c draws half that
  range), output vectors zero;
- skip-gram: each (centre, context) pair predicts the centre from the context word's input
  vector; CBOW: the mean of the context input vectors predicts the centre and every context
  word receives the full error (word2vec.c, gensim ``cbow_mean=1``).

Public interface (stable; Node2Vec codes against it)::

    train_skipgram(batches, counts, *, mode="skipgram", dim=100, window=5, negative=5,
                   sample=1e-3, epochs=5, lr=0.025, min_lr=0.0001, seed=0, device="cpu",
                   batch_words=None, total_words=None, show_progress=True, callback=None,
                   desc="skipgram", max_row_step=None, return_output=False)
        -> (input_vectors float32 (vocab_size, dim), loss_per_epoch list[float])
           (+ output_vectors float32 (vocab_size, dim) with return_output=True)

``batches`` is re-iterable; each iteration is one epoch and yields ``(tokens, lengths)``:
``tokens`` a 1-D int array (numpy or torch) of vocabulary ids with sentences concatenated,
``lengths`` the 1-D sentence lengths summing to ``len(tokens)``. ``counts`` (numpy, one
frequency per id) drives subsampling and the noise distribution. The loss of an epoch is
the mean, over all training examples of the epoch, of ``-log s(u_o.v) - sum_k log s(-u_k.v)``
(positive term plus the negative terms). ``callback(epoch, loss)`` fires after every epoch
(``epoch`` counts from 1).

Mini-batches and frequent rows. The engine updates many examples at once: it gathers the
rows of a mini-batch of ``batch_words`` tokens, computes every example's gradient from the
same parameters and adds them back with ``index_add_``. A frequent word can occur hundreds
of times in one mini-batch; blindly summing its updates is what makes large-batch word2vec
diverge (docs/gpu.md: NaN with 32k-262k pair batches). The fix (:func:`_apply`): each row's
summed update ``D`` is kept as is when it is no longer than the Newton step along ``D``
(``t* = |D|^2 / (lr * sum_i sigma'(s_i) (x_i . D)^2)``, computed per row and step) and
otherwise scaled to ``max_row_step * t*``. Rare rows and all rows early in training get the
plain SGD sum; only rows whose summed step would overshoot are damped. The default
``max_row_step`` 0.7 stays below 1 because both sides of a pair move at once (at 1.0 runs
diverged now and then; at 0.7 none did). Measured on an H100 (benchmarks/RESULTS.md): with
16,384-token steps skip-gram matches gensim within 0.02 on WS353, SimLex-999 and analogies
at more than 5x gensim's words/s; larger steps are faster but lose quality.

Reproducibility: on CPU the same seed and number of torch threads give identical vectors
(the CPU ``index_add_`` is sequential; :func:`cpu_threads` sets the thread count). On CUDA,
``index_add_`` uses atomic float additions, whose order varies, so runs agree only to rounding.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from typing import Callable, Iterable, Optional

import numpy as np

from ...errors import InputError
from .distributed import NO_SYNC, lr_text

log = logging.getLogger(__name__)

__all__ = ["train_skipgram", "evaluate_loss", "cpu_threads", "MAX_SENTENCE_LEN"]

MAX_SENTENCE_LEN = 10_000   # longer sentences are cut into pieces of this size (as gensim does)
_BATCH_WORDS = 1 << 14   # tokens per step; the same on CPU and CUDA: same algorithm, same vectors' quality
_MIN_STEPS = 500         # small corpora: smaller steps, so that an epoch still makes this many updates
# (small corpora: held-out loss against gensim's, benchmarks/sgns_quality_bench.py: 100 steps per
# epoch and word2vec.c's init left +0.009 (skip-gram) / +0.017 (CBOW); 500 steps and gensim's init
# about halve the skip-gram gap and close CBOW's)
_CHECK_EVERY = 32         # steps between two checks that the loss is still finite (one host sync)
_ROW_STEP = 0.7   # default max_row_step (see _apply): below 1, as both sides of a pair move at once


def _torch():
    import torch
    return torch


@contextlib.contextmanager
def cpu_threads(workers: Optional[int], device):
    """Run torch on ``workers`` CPU threads (None: every core this process may use) inside the
    block when ``device`` is the CPU, and restore the previous count after; on CUDA it does nothing.

    This is what ``workers`` means for the torch paths of Word2Vec and Node2Vec. Same-seed runs
    on CPU are identical for a given ``workers``; another thread count may change the last bits
    of the vectors (parallel reductions split differently), not the walks.
    """
    torch = _torch()
    from ..._device import cpu_count

    if torch.device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(workers or cpu_count()))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Sampler:
    """Random draws of one training run: subsampling, windows, noise words."""

    def __init__(self, counts: np.ndarray, sample: float, device, seed: int):
        torch = _torch()
        self.device = device
        c = counts.astype(np.float64)
        total = c.sum()
        if sample > 0:
            threshold = sample * total
            with np.errstate(divide="ignore", invalid="ignore"):
                keep = (np.sqrt(c / threshold) + 1.0) * threshold / c
            keep = np.where(c > 0, np.minimum(keep, 1.0), 1.0)
        else:
            keep = np.ones_like(c)
        self.keep_prob = torch.as_tensor(keep, dtype=torch.float32, device=device)
        self.subsample = sample > 0 and bool((keep < 1.0).any())
        noise = c ** 0.75
        cum = np.cumsum(noise)
        cum /= cum[-1]
        cum[-1] = 1.0 + 1e-12  # a draw of exactly 1.0 never falls off the end
        self.cum = torch.as_tensor(cum, dtype=torch.float64, device=device)
        self.gen = torch.Generator(device=device)
        self.gen.manual_seed(int(seed))

    def noise(self, shape):
        torch = _torch()
        u = torch.rand(shape, generator=self.gen, device=self.device, dtype=torch.float64)
        return torch.searchsorted(self.cum, u)

    def keep_mask(self, tokens):
        torch = _torch()
        u = torch.rand(tokens.shape, generator=self.gen, device=self.device)
        return u < self.keep_prob[tokens]

    def windows(self, n: int, window: int):
        torch = _torch()
        return torch.randint(1, window + 1, (n,), generator=self.gen, device=self.device)


def _pairs(sid, reduced, window: int):
    """(centre, context) positions of all pairs within each centre's reduced window and sentence.

    One ``nonzero`` for the whole chunk (a single host sync on CUDA).
    """
    torch = _torch()
    n = sid.numel()
    w = min(window, n - 1)
    if w < 1:
        empty = torch.empty(0, dtype=torch.int64, device=sid.device)
        return empty, empty
    dist = torch.arange(1, w + 1, device=sid.device).unsqueeze(1)          # (w, 1)
    pos = torch.arange(n, device=sid.device).unsqueeze(0)                  # (1, n)
    other = (pos + dist).clamp(max=n - 1)                                  # position i + d
    same = (pos + dist < n) & (sid[other] == sid.unsqueeze(0))
    forward = same & (reduced.unsqueeze(0) >= dist)       # centre i, context i + d
    backward = same & (reduced[other] >= dist)            # centre i + d, context i
    side, d_idx, i = torch.nonzero(torch.stack([forward, backward])).unbind(1)
    j = i + d_idx + 1
    back = side.bool()
    return torch.where(back, j, i), torch.where(back, i, j)


def _apply(w, rows, grads, lr: float, tau, curvature_along):
    """``w[rows] += grads`` with each row's summed update capped at ``tau`` times its Newton step.

    A row updated by many examples of one step receives their summed update ``D`` (as
    sequential SGD would, to first order). Along ``D`` the loss changes by
    ``-t |D|^2 / lr + t^2 c / 2`` for a step ``t * D`` where ``c = sum_i sigma'(s_i) (x_i . D)^2``
    (``x_i``: the vector each example pairs the row with), so the best step is
    ``t* = |D|^2 / (lr c)``. Rows with ``t* >= 1`` (nearly all rows: rare words, early training)
    get exactly the summed SGD update; frequent rows get ``min(1, tau * t*) * D``, which
    is what keeps large mini-batches from diverging. ``curvature_along(d)`` returns each
    occurrence's ``sigma' (x . d)^2`` given the per-occurrence row updates ``d``. For a CBOW
    context row, ``x_i`` are the example's target rows, as if the whole context window moved
    by ``D`` (all context words of an example receive the same full error, as in word2vec.c):
    counting the row's 1/n share of the mean instead gave steps n times larger and diverged.
    """
    torch = _torch()
    if tau is None:
        w.index_add_(0, rows, grads)
        return
    uniq, inv = torch.unique(rows, return_inverse=True)
    delta = torch.zeros((uniq.numel(), w.shape[1]), device=w.device, dtype=w.dtype).index_add_(0, inv, grads)
    curv = torch.zeros(uniq.numel(), device=w.device, dtype=w.dtype).index_add_(
        0, inv, curvature_along(delta.index_select(0, inv)))
    newton = (delta * delta).sum(1) / (lr * curv).clamp(min=1e-30)
    scale = (tau * newton).clamp(max=1.0)
    w.index_add_(0, uniq, delta * scale.unsqueeze(1))


def _rows(w, idx):
    """``w[idx]`` for an index tensor of any shape: index_select on the flattened index is
    3-7x faster than advanced indexing on CPU (torch 2.13) and no slower on CUDA."""
    return w.index_select(0, idx.reshape(-1)).view(*idx.shape, w.shape[1])


def _scores(u, x, noise, out):
    """Scores of (1 + K) targets against ``x``; returns (s, sign, valid)."""
    torch = _torch()
    s = torch.bmm(u, x.unsqueeze(2)).squeeze(2)                         # (P, 1+K)
    valid = torch.ones_like(s)
    valid[:, 1:] = (noise != out.unsqueeze(1)).to(s.dtype)
    sign = torch.full_like(s, -1.0)
    sign[:, 0] = 1.0
    return s, sign, valid


def _update_both(w_in, w_out, in_rows, x, u, targets, g, sig, valid, lr, tau, in_pick=None, train=None):
    """Apply one step's updates to output rows (``targets``) and input rows (``in_rows``).

    ``x`` (E, D): the input-side vector of each example (skip-gram: the context word's
    vector; CBOW: the context mean); ``u`` (E, 1+K, D): its target rows; ``g`` the
    lr-scaled coefficients. ``in_pick`` maps each input-row occurrence to its example
    (CBOW: several context words share one example); None means one-to-one. ``train``:
    None, or ``(input mask, output mask)`` float tensors (1: the row learns, 0: frozen).
    """
    torch = _torch()
    dim = x.shape[1]
    curv = sig * (1 - sig) * valid                                      # sigma'(s), (E, 1+K)
    grad_x = torch.bmm(g.unsqueeze(1), u).squeeze(1)                    # (E, D)
    grad_u = (g.unsqueeze(2) * x.unsqueeze(1)).reshape(-1, dim)
    flat = targets.reshape(-1)

    def out_curv(d):
        proj = (d.view(g.shape[0], g.shape[1], dim) * x.unsqueeze(1)).sum(2)
        return (curv * proj * proj).reshape(-1)

    def in_curv(d):
        uu, cc = (u, curv) if in_pick is None else (u.index_select(0, in_pick), curv.index_select(0, in_pick))
        proj = torch.bmm(uu, d.unsqueeze(2)).squeeze(2)
        return (cc * proj * proj).sum(1)

    grad_in = grad_x if in_pick is None else grad_x.index_select(0, in_pick)
    if train is not None:
        grad_u = grad_u * train[1].index_select(0, flat).unsqueeze(1)
        grad_in = grad_in * train[0].index_select(0, in_rows).unsqueeze(1)
    _apply(w_out, flat, grad_u, lr, tau, out_curv)
    _apply(w_in, in_rows, grad_in, lr, tau, in_curv)


def _bags(subwords, words):
    """Input rows of each word's bag (the word's own row and its character n-gram buckets):
    ``(rows, example of each row, bag sizes)`` for the CSR ``subwords = (ptr, idx)``."""
    torch = _torch()
    ptr, idx = subwords
    start = ptr.index_select(0, words)
    size = ptr.index_select(0, words + 1) - start
    pick = torch.repeat_interleave(torch.arange(words.numel(), device=words.device), size)
    first = torch.cumsum(size, 0) - size
    offset = torch.arange(pick.numel(), device=words.device) - first.index_select(0, pick)
    return idx.index_select(0, start.index_select(0, pick) + offset), pick, size


def _sg_step(w_in, w_out, inp, out, noise, lr, tau, update=True, subwords=None, train=None):
    """One skip-gram step on pairs (input row ``inp`` predicts output row ``out``).

    ``subwords``: None, or the CSR ``(ptr, idx)`` of each word's input rows (fastText: the
    word's row and its hashed character n-grams); the input vector is then the mean of the
    bag and every row of the bag receives the full error (fastText, gensim FastText).
    Returns the summed loss of the step (0-dim tensor) and the number of examples.
    """
    torch = _torch()
    targets = torch.cat([out.unsqueeze(1), noise], dim=1)               # (P, 1+K)
    pick = None
    if subwords is None:
        v = w_in.index_select(0, inp)                                   # (P, D)
    else:
        inp, pick, size = _bags(subwords, inp)
        v = torch.zeros((out.numel(), w_in.shape[1]), device=w_in.device, dtype=w_in.dtype)
        v.index_add_(0, pick, w_in.index_select(0, inp))
        v /= size.unsqueeze(1).to(v.dtype)
    u = _rows(w_out, targets)                                           # (P, 1+K, D)
    s, sign, valid = _scores(u, v, noise, out)
    loss = -(torch.nn.functional.logsigmoid(sign * s) * valid).sum()
    if update:
        sig = torch.sigmoid(s)
        g = ((sign > 0).to(s.dtype) - sig) * valid * lr                 # (P, 1+K)
        _update_both(w_in, w_out, inp, v, u, targets, g, sig, valid, lr, tau, in_pick=pick, train=train)
    return loss, out.numel()


def _cbow_step(w_in, w_out, ids, centre_pos, context_pos, noise_fn, lr, tau, update=True, train=None):
    """One CBOW step: the mean of each centre's context input vectors predicts the centre.

    As in word2vec.c, every context word receives the full error of its example.
    """
    torch = _torch()
    n = ids.numel()
    dim = w_in.shape[1]
    cnt = torch.bincount(centre_pos, minlength=n)
    has = cnt > 0
    row_of = torch.cumsum(has.to(torch.int64), 0) - 1                  # position -> centre row
    centres = torch.nonzero(has).squeeze(1)
    m = centres.numel()
    if m == 0:
        return torch.zeros((), device=w_in.device), 0
    ctx_ids = ids.index_select(0, context_pos)
    pair_row = row_of.index_select(0, centre_pos)
    h = torch.zeros((m, dim), device=w_in.device, dtype=w_in.dtype)
    h.index_add_(0, pair_row, w_in.index_select(0, ctx_ids))
    h /= cnt.index_select(0, centres).unsqueeze(1).to(h.dtype)
    out = ids.index_select(0, centres)
    noise = noise_fn((m, noise_fn.negative))
    targets = torch.cat([out.unsqueeze(1), noise], dim=1)
    u = _rows(w_out, targets)
    s, sign, valid = _scores(u, h, noise, out)
    loss = -(torch.nn.functional.logsigmoid(sign * s) * valid).sum()
    if update:
        sig = torch.sigmoid(s)
        g = ((sign > 0).to(s.dtype) - sig) * valid * lr
        _update_both(w_in, w_out, ctx_ids, h, u, targets, g, sig, valid, lr, tau, in_pick=pair_row, train=train)
    return loss, m


class _Noise:
    """Callable noise sampler that remembers ``negative`` (for the CBOW step)."""

    def __init__(self, sampler: _Sampler, negative: int):
        self.sampler = sampler
        self.negative = negative

    def __call__(self, shape):
        return self.sampler.noise(shape)


def _as_long(x, device):
    torch = _torch()
    return torch.as_tensor(x if isinstance(x, torch.Tensor) else np.asarray(x)).to(device=device, dtype=torch.int64)


def _chunks(tokens, lengths, batch_words: int):
    """Split a block into sentence-aligned chunks of about ``batch_words`` tokens.

    Yields (tokens, sentence_ids) with sentences longer than MAX_SENTENCE_LEN cut into pieces.
    """
    torch = _torch()
    n = tokens.numel()
    if n == 0:
        return
    device = tokens.device
    starts = torch.zeros(n, dtype=torch.bool, device=device)
    offsets = torch.cumsum(lengths, 0) - lengths
    offsets = offsets[lengths > 0]
    starts[offsets] = True
    sid = torch.cumsum(starts.to(torch.int64), 0)
    if bool((lengths > MAX_SENTENCE_LEN).any()):
        pos = torch.arange(n, device=device) - offsets[sid - 1]
        starts |= (pos % MAX_SENTENCE_LEN) == 0
        sid = torch.cumsum(starts.to(torch.int64), 0)
    start_pos = torch.nonzero(starts).squeeze(1)
    wanted = torch.arange(batch_words, max(n, batch_words), batch_words, device=device)
    cut = start_pos[torch.searchsorted(start_pos, wanted).clamp(max=start_pos.numel() - 1)]
    bounds = torch.unique(torch.cat([cut, torch.tensor([0, n], device=device)])).tolist()
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            yield tokens[a:b], sid[a:b]


def _check_counts(counts) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise InputError(f"counts must be a non-empty 1-D array of token frequencies; got shape {counts.shape}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise InputError("counts must hold finite, non-negative frequencies")
    if counts.sum() <= 0:
        raise InputError("counts are all zero: there is nothing to train on")
    return counts.astype(np.float64)


def train_skipgram(
    batches: Iterable,
    counts,
    *,
    mode: str = "skipgram",
    dim: int = 100,
    window: int = 5,
    negative: int = 5,
    sample: float = 1e-3,
    epochs: int = 5,
    lr: float = 0.025,
    min_lr: float = 0.0001,
    seed: int = 0,
    device="cpu",
    batch_words: Optional[int] = None,
    total_words: Optional[int] = None,
    show_progress: bool = True,
    callback: Optional[Callable[[int, float], object]] = None,
    desc: str = "skipgram",
    max_row_step: Optional[float] = None, return_output: bool = False,
    init=None, trainable=None, subwords=None, sync=None,
):
    """Train skip-gram or CBOW with negative sampling; return (input vectors, loss per epoch),
    and the output (negative-sampling) vectors third with ``return_output=True``.

    Parameters are those of word2vec (see the module docstring). ``batch_words``: tokens per
    step, cut at sentence ends (default 16,384, or ``total_words / 500`` for small corpora so
    that an epoch still makes about 500 steps). ``total_words``: tokens per epoch, for the
    learning-rate schedule and the progress bar (default ``counts.sum()``). ``max_row_step``
    (default 0.7): the Newton-step limit of frequent rows; ``float("inf")`` disables it.
    ``device``: "auto", "cpu", "cuda", "cuda:N" or a ``torch.device``.

    Continued training and frozen rows: ``init=(input, output)`` starts from these float
    arrays instead of the random/zero init (continued training; the output table has one row
    per id of ``counts``); ``trainable=(input mask, output mask)`` (boolean arrays, one entry
    per row; None for one side: all rows) freezes the rows whose entry is False (new nodes
    embedded beside frozen old ones). ``subwords=(ptr, idx, input_rows)`` (fastText): word
    ``i``'s input vector is the mean of the input rows ``idx[ptr[i]:ptr[i+1]]`` (its own row
    and its character n-gram buckets) out of ``input_rows`` rows; skip-gram only. The input
    table (all ``input_rows`` rows) is then what is returned first. ``sync``: the hook of a distributed fit
    (:mod:`embedkit.trainers.sgns.distributed`: averages over the ranks); None in one process.

    Raises InputError on bad counts, token ids outside ``[0, len(counts))``, an epoch with
    no tokens, or a diverged run (non-finite loss: lower lr, batch_words or max_row_step).
    """
    torch = _torch()
    from tqdm.auto import tqdm

    counts = _check_counts(counts)
    if mode not in ("skipgram", "cbow"):
        raise InputError(f"The 'mode' parameter must be one of 'skipgram', 'cbow'. Got {mode!r} instead.")
    from ..._device import resolve_device

    dev = resolve_device(device, desc)
    tau = _ROW_STEP if max_row_step is None else float(max_row_step)
    if math.isinf(tau):
        tau = None  # no limit: plain summed updates (diverges with large batches; for experiments)
    vocab_size = counts.size
    if total_words is None:
        total_words = int(counts.sum())
    total_words = max(int(total_words), 1)
    if batch_words is None:
        batch_words = min(_BATCH_WORDS, max(16, total_words // _MIN_STEPS))
    batch_words = int(batch_words)
    if batch_words < 1:
        raise InputError(f"batch_words must be >= 1; got {batch_words}")

    sub = None
    in_rows = vocab_size
    if subwords is not None:
        if mode != "skipgram":
            raise InputError("subword (fastText) training on the torch engine is skip-gram only; use mode='skipgram'")
        ptr, idx, in_rows = subwords
        sub = (_as_long(ptr, dev), _as_long(idx, dev))
        in_rows = int(in_rows)
    if init is None:
        init_gen = torch.Generator().manual_seed(int(seed))
        w_in = ((torch.rand((in_rows, dim), generator=init_gen) * 2.0 - 1.0) / dim).to(dev)
        w_out = torch.zeros((vocab_size, dim), device=dev)
    else:
        w_in = torch.as_tensor(np.array(init[0], dtype=np.float32)).to(dev)
        w_out = torch.as_tensor(np.array(init[1], dtype=np.float32)).to(dev)
        if w_in.shape != (in_rows, dim) or w_out.shape != (vocab_size, dim):
            raise InputError(f"init holds input {tuple(w_in.shape)} and output {tuple(w_out.shape)} tables; "
                             f"expected ({in_rows}, {dim}) and ({vocab_size}, {dim})")
    train = None
    if trainable is not None:
        masks = []
        for table, mask in zip((w_in, w_out), trainable):
            m = torch.ones(table.shape[0]) if mask is None else torch.as_tensor(np.asarray(mask, dtype=np.float32))
            if m.shape != (table.shape[0],):
                raise InputError(f"a trainable mask has {m.shape[0]} entries for a table of {table.shape[0]} rows")
            masks.append(m.to(dev))
        train = tuple(masks)
    sync = NO_SYNC if sync is None else sync
    lr, min_lr = sync.start((w_in, w_out), lr, min_lr, -(-total_words // batch_words))   # rank 0 tables; N x the rates
    sampler = _Sampler(counts, sample, dev, seed + 1 + sync.seed_offset)
    noise = _Noise(sampler, negative)

    losses: list[float] = []
    bar = tqdm(total=epochs * total_words, unit="word", unit_scale=True, desc=f"{desc}: training",
               disable=not show_progress, dynamic_ncols=True)
    done_all = 0
    try:
        for epoch in range(1, epochs + 1):
            loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
            examples = 0
            seen = 0
            last_post = time.monotonic()
            steps = 0
            for tokens, lengths in batches:
                tokens = _as_long(tokens, dev)
                lengths = _as_long(lengths, dev)
                _check_block(tokens, lengths, vocab_size)
                for ids, sid in _chunks(tokens, lengths, batch_words):
                    raw = ids.numel()
                    progress = min((done_all + seen) / (epochs * total_words), 1.0)
                    step_lr = max(lr - (lr - min_lr) * progress, min_lr)
                    if sampler.subsample:
                        keep = sampler.keep_mask(ids)
                        ids, sid = ids[keep], sid[keep]
                    if ids.numel() > 1:
                        reduced = sampler.windows(ids.numel(), window)
                        centre, context = _pairs(sid, reduced, window)
                        if centre.numel():
                            if mode == "skipgram":
                                loss, n = _sg_step(w_in, w_out, ids[context], ids[centre],
                                                   noise((centre.numel(), negative)), step_lr, tau,
                                                   subwords=sub, train=train)
                            else:
                                loss, n = _cbow_step(w_in, w_out, ids, centre, context, noise, step_lr, tau,
                                                     train=train)
                            loss_sum += loss
                            examples += n
                            steps += 1
                            if steps % _CHECK_EVERY == 0 and not bool(torch.isfinite(loss_sum)):
                                _diverged(epoch, float(loss_sum.item()), done_all + seen, lr)
                    seen += raw
                    sync.step((w_in, w_out), seen / total_words)     # distributed: average every sync_every
                    bar.update(raw)
                    if show_progress and time.monotonic() - last_post > 1.0 and examples:
                        bar.set_postfix(epoch=epoch, loss=f"{loss_sum.item() / examples:.4f}")
                        last_post = time.monotonic()
            done_all += seen
            loss_sum, examples, seen = sync.end_epoch((w_in, w_out), loss_sum, examples, seen)  # sums over ranks
            if seen == 0:
                raise InputError("the corpus yielded no tokens in this epoch: nothing to train on")
            if examples == 0:
                raise InputError(f"epoch {epoch} formed no training example: no sentence (walk) holds two words "
                                 "within reach of each other after subsampling; give sentences of several words "
                                 "(lower min_count, or sample=0 for a tiny corpus)")
            epoch_loss = float(loss_sum.item() / examples)
            if not math.isfinite(epoch_loss):
                _diverged(epoch, epoch_loss, done_all, lr)
            losses.append(epoch_loss)
            bar.set_postfix(epoch=epoch, loss=f"{epoch_loss:.4f}")
            log.info("%s epoch %d/%d: loss %.4f over %d examples", desc, epoch, epochs, epoch_loss, examples)
            if callback is not None:
                callback(epoch, epoch_loss)
    finally:
        bar.close()
    vectors = w_in.cpu().numpy().astype(np.float32, copy=False)
    if return_output:
        return vectors, losses, w_out.cpu().numpy().astype(np.float32, copy=False)
    return vectors, losses


def _diverged(epoch: int, loss: float, words: int, lr: float):
    """Stop a run whose loss is no longer finite (nothing is returned, so nothing is saved)."""
    raise InputError(f"training diverged in epoch {epoch}: the loss became {loss} after {words:,} words, "
                     f"so the vectors are no longer finite; the learning rate {lr_text(lr)} is too high for this data "
                     "(lower lr, or batch_words / max_row_step)")


def _check_block(tokens, lengths, vocab_size: int) -> None:
    if tokens.ndim != 1 or lengths.ndim != 1:
        raise InputError("each batch must be (tokens, lengths) with 1-D tokens and 1-D lengths")
    if int(lengths.sum()) != tokens.numel():
        raise InputError(f"sentence lengths sum to {int(lengths.sum())} but there are {tokens.numel()} tokens")
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise InputError(f"token ids must lie in [0, {vocab_size}); got ids in "
                         f"[{int(tokens.min())}, {int(tokens.max())}]")


def evaluate_loss(input_vectors, output_vectors, tokens, lengths, counts, *, mode="skipgram",
                  window=5, negative=5, sample=1e-3, seed=0) -> float:
    """Mean word2vec loss of fixed vectors on a sample of text (no update).

    Used to report a real loss for trainers whose own loss counter cannot be trusted
    (gensim's: issues #2617, #2735). Returns NaN when the sample forms no example.
    """
    torch = _torch()
    dev = torch.device("cpu")
    counts = _check_counts(counts)
    w_in = torch.as_tensor(np.asarray(input_vectors, dtype=np.float32))
    w_out = torch.as_tensor(np.asarray(output_vectors, dtype=np.float32))
    sampler = _Sampler(counts, sample, dev, seed)
    noise = _Noise(sampler, negative)
    ids = _as_long(tokens, dev)
    lens = _as_long(lengths, dev)
    total, examples = 0.0, 0
    with torch.no_grad():
        for chunk, sid in _chunks(ids, lens, _BATCH_WORDS):
            if sampler.subsample:
                keep = sampler.keep_mask(chunk)
                chunk, sid = chunk[keep], sid[keep]
            if chunk.numel() < 2:
                continue
            centre, context = _pairs(sid, sampler.windows(chunk.numel(), window), window)
            if not centre.numel():
                continue
            if mode == "skipgram":
                loss, n = _sg_step(w_in, w_out, chunk[context], chunk[centre],
                                   noise((centre.numel(), negative)), 0.0, None, update=False)
            else:
                loss, n = _cbow_step(w_in, w_out, chunk, centre, context, noise, 0.0, None, update=False)
            total += float(loss)
            examples += n
    return total / examples if examples else float("nan")
