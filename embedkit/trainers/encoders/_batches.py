"""Minibatch sources of SiameseEncoder: anchors with a same-class partner (labels), or given pairs.

Each rank takes its part of every global batch (``rank_part``) from a permutation shared by the ranks."""

from __future__ import annotations

import numpy as np
import torch

from ...data.features import label_codes
from ...errors import InputError
from . import base as _nn


def check_labels(labels: np.ndarray, batch_size: int):
    """What label mode needs of ``y`` and ``batch_size`` (checked before a fit starts, so that a refit with bad
    labels keeps the previous fit): (classes, codes, rows per class)."""
    if batch_size < 4:
        raise InputError(f"SiameseEncoder: with class labels y each step needs at least 4 rows (2 anchors "
                         f"and a positive of each); set batch_size >= 4 (got {batch_size})")
    classes, codes = label_codes(labels)
    counts = np.bincount(codes, minlength=len(classes))
    if len(classes) < 2:
        raise InputError(f"y holds a single class ({classes[0]!r}); metric learning needs at least two classes")
    if not (counts >= 2).any():
        raise InputError("every class in y has a single row; give at least two rows of some class")
    return classes, codes, counts


class _LabelBatches:
    """Label mode: each step takes ``batch_size // 2`` anchors and one random same-class partner each.

    So every anchor has a positive in its batch and mining always finds one; all sampling happens
    on the device from index tensors.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, device, gen):
        classes, codes, counts = check_labels(labels, batch_size)
        usable = np.nonzero(counts[codes] >= 2)[0]
        order = np.argsort(codes, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(len(codes), dtype=np.int64)
        rank[order] = np.arange(len(codes)) - starts[codes[order]]
        t = lambda a: torch.as_tensor(a, dtype=torch.int64, device=device)  # noqa: E731
        self.codes, self.order, self.starts, self.counts, self.rank = (
            t(codes), t(order), t(starts), t(counts), t(rank))
        self.usable = t(usable)
        self.half = batch_size // 2
        self.device, self.gen = device, gen

    def epoch(self):
        perm = self.usable[_nn.shared_randperm(len(self.usable), self.gen, self.device)]
        for start in range(0, len(perm), self.half):
            anchors = perm[start:start + self.half]
            if len(anchors) < 2:
                continue
            anchors = _nn.rank_part(anchors)  # distributed: this rank's part of the batch
            c = self.codes[anchors]
            # a uniform pick among the class's other rows: draw from count-1 slots, skip the anchor's own
            r = (torch.rand(len(anchors), generator=self.gen, device=self.device) * (self.counts[c] - 1)).long()
            r = r + (r >= self.rank[anchors]).long()
            partners = self.order[self.starts[c] + r]
            yield ("labels", anchors, partners, c)


def check_pairs(pairs: np.ndarray, loss: str, miner: str, batch_size: int) -> None:
    """What pair mode needs of the pairs, the (resolved) loss, the miner and ``batch_size`` (checked before a fit
    starts, so that a refit with bad pairs keeps the previous fit)."""
    if miner != "random" and loss != "infonce":  # InfoNCE ignores the miner (warned in fit)
        raise InputError(f"SiameseEncoder: miner={miner!r} needs class labels y; with explicit pairs use "
                         "miner='random'")
    if loss == "infonce" and batch_size < 2:
        raise InputError("SiameseEncoder: loss='infonce' contrasts each pair with the other pairs of its "
                         f"batch; set batch_size >= 2 (got {batch_size})")
    if loss != "contrastive" and not (pairs[:, 2] == 1).any():
        raise InputError(f"SiameseEncoder: loss={loss!r} needs at least one similar pair (similar=1) in pairs; add "
                         "one, or use loss='contrastive', which also learns from dissimilar pairs alone")


class _PairBatches:
    """Pair mode: explicit (i, j, similar) rows, shuffled each epoch.

    contrastive uses every pair; triplet and InfoNCE use the similar pairs as (anchor, positive),
    and triplet draws the negative from the anchor's listed dissimilar partners (uniformly from
    all rows when it has none).
    """

    def __init__(self, pairs: np.ndarray, n_rows: int, batch_size: int, loss: str, device, gen):
        # (pairs, loss, miner and batch_size were checked before the fit: check_pairs in SiameseEncoder._check_inputs)
        self.loss, self.n_rows, self.batch_size, self.device, self.gen = loss, n_rows, batch_size, device, gen
        similar = pairs[pairs[:, 2] == 1]
        use = pairs if loss == "contrastive" else similar
        self.pairs = torch.as_tensor(use, dtype=torch.int64, device=device)
        if loss == "triplet":
            dis = pairs[pairs[:, 2] == 0]
            both = np.concatenate([dis[:, :2], dis[:, 1::-1]]) if len(dis) else np.zeros((0, 2), np.int64)
            both = both[np.argsort(both[:, 0], kind="stable")]
            counts = np.bincount(both[:, 0], minlength=n_rows)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            t = lambda a: torch.as_tensor(a, dtype=torch.int64, device=device)  # noqa: E731
            self.neg_partner, self.neg_count, self.neg_start = t(both[:, 1]), t(counts), t(starts)

    def epoch(self):
        perm = _nn.shared_randperm(len(self.pairs), self.gen, self.device)
        for start, stop in _nn.chunk_bounds(len(perm), self.batch_size, min_rows=2):  # no one-pair step
            p = self.pairs[_nn.rank_part(perm[start:stop])]
            i, j = p[:, 0], p[:, 1]
            if self.loss == "contrastive":
                yield ("pairs", i, j, p[:, 2].float())
            elif self.loss == "triplet":
                yield ("pairs", i, j, self._negatives(i))
            else:
                yield ("pairs", i, j, None)

    def _negatives(self, anchors):
        anywhere = torch.randint(self.n_rows, (len(anchors),), generator=self.gen, device=self.device)
        if len(self.neg_partner) == 0:
            return anywhere
        count = self.neg_count[anchors]
        u = torch.rand(len(anchors), generator=self.gen, device=self.device)
        slot = (self.neg_start[anchors] + (u * count).long()).clamp_max(len(self.neg_partner) - 1)
        return torch.where(count > 0, self.neg_partner[slot], anywhere)
