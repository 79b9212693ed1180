"""Metric-learning losses and in-batch miners used by :class:`~embedkit.SiameseEncoder`.

Losses (mean over the batch; distances are Euclidean):

- contrastive: Hadsell, Chopra and LeCun, "Dimensionality Reduction by Learning an Invariant
  Mapping", CVPR 2006: ``s * d^2 / 2 + (1 - s) * max(0, margin - d)^2 / 2``.
- triplet margin: Weinberger and Saul 2009; Schroff et al. (FaceNet) 2015:
  ``max(0, d(a, p) - d(a, n) + margin)``.
- InfoNCE / NT-Xent: van den Oord et al. 2018; Chen et al. (SimCLR) 2020: cross-entropy of each
  row against its partner among all other rows of the batch, cosine similarity / temperature.

Miners (given in-batch distances and labels) pick one positive and one negative per anchor:
random (uniform); hard ("batch hard", Hermans et al. 2017: farthest positive, closest negative);
semihard (FaceNet: a random positive and the closest negative farther away than it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import InputError

__all__ = ["pairwise_distances", "contrastive_loss", "triplet_margin_loss", "info_nce_loss",
           "mine_triplets", "MINERS"]

MINERS = ("random", "hard", "semihard")
_EPS = 1e-12


def _distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # sqrt with a floor: the gradient of sqrt at 0 is inf
    return (a - b).pow(2).sum(dim=1).clamp_min(_EPS).sqrt()


def pairwise_distances(z: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between all rows of ``z`` (B, d) -> (B, B)."""
    sq = z.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.T)).clamp_min(0.0)
    return d2.clamp_min(_EPS).sqrt()


def contrastive_loss(z1: torch.Tensor, z2: torch.Tensor, similar: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Contrastive loss of Hadsell, Chopra and LeCun (2006), averaged over pairs.

    ``similar`` is 1 for a similar pair (pulled together) and 0 for a dissimilar one (pushed
    beyond ``margin``).
    """
    d = _distance(z1, z2)
    s = similar.to(d.dtype)
    return (0.5 * s * d.pow(2) + 0.5 * (1.0 - s) * F.relu(margin - d).pow(2)).mean()


def triplet_margin_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                        margin: float = 0.2) -> torch.Tensor:
    """Triplet margin loss ``mean(max(0, d(a, p) - d(a, n) + margin))``."""
    return F.relu(_distance(anchor, positive) - _distance(anchor, negative) + margin).mean()


def info_nce_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1,
                  labels: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE / NT-Xent over ``2B`` rows: row ``i`` of ``z1`` and of ``z2`` are each other's positive.

    The other ``2B - 2`` rows are negatives. With ``labels`` (B,) (the class of pair ``i``), rows
    of the same class are left out of the denominator instead of being treated as negatives.
    """
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T) / temperature
    n = 2 * b
    idx = torch.arange(n, device=z.device)
    partner = (idx + b) % n
    exclude = torch.eye(n, dtype=torch.bool, device=z.device)
    if labels is not None:
        lab = torch.cat([labels, labels])
        exclude = exclude | (lab[:, None] == lab[None, :])
        exclude[idx, partner] = False
    logits = logits.masked_fill(exclude, float("-inf"))
    return F.cross_entropy(logits, partner)


def _random_choice(mask: torch.Tensor, generator) -> torch.Tensor:
    """For each row, a uniformly random column where ``mask`` is True (rows must have one)."""
    r = torch.rand(mask.shape, generator=generator, device=mask.device)
    return r.masked_fill(~mask, -1.0).argmax(dim=1)


def _random_negatives(labels: torch.Tensor, positives: torch.Tensor, generator, tries: int = 16):
    """O(B) random miner when each row's positive is known: negatives by rejection sampling.

    Rows whose ``tries`` draws all hit their own class (a batch of nearly one class) are dropped.
    """
    b = len(labels)
    draws = torch.randint(b, (b, tries), generator=generator, device=labels.device)
    ok = labels[draws] != labels[:, None]
    first = ok.float().argmax(dim=1)
    found = ok.any(dim=1)
    anchors = torch.nonzero(found).reshape(-1)
    return anchors, positives[anchors], draws[anchors, first[anchors]]


@torch.no_grad()
def mine_triplets(dist: torch.Tensor | None, labels: torch.Tensor, miner: str = "random",
                  generator: torch.Generator | None = None, positives: torch.Tensor | None = None):
    """Choose (anchor, positive, negative) row indices from in-batch distances (B, B) and labels (B,).

    Every row with at least one other row of its class and one of another class is an anchor.
    With ``positives`` (one known same-class row per row) the random miner uses them and draws
    negatives without building (B, B) matrices (``dist`` may then be None). Returns three index
    tensors of equal length (possibly empty).
    """
    if miner not in MINERS:
        raise InputError(f"The 'miner' parameter must be one of {', '.join(repr(m) for m in MINERS)}. "
                         f"Got {miner!r} instead.")
    if miner == "random" and positives is not None:
        return _random_negatives(labels, positives, generator)
    same = labels[:, None] == labels[None, :]
    pos_mask = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    neg_mask = ~same
    anchors = torch.nonzero(pos_mask.any(1) & neg_mask.any(1)).reshape(-1)
    pos_mask, neg_mask, d = pos_mask[anchors], neg_mask[anchors], dist[anchors]
    if miner == "hard":
        pos = d.masked_fill(~pos_mask, float("-inf")).argmax(dim=1)
        neg = d.masked_fill(~neg_mask, float("inf")).argmin(dim=1)
    else:
        pos = _random_choice(pos_mask, generator)
        if miner == "random":
            neg = _random_choice(neg_mask, generator)
        else:
            d_ap = d.gather(1, pos[:, None])
            semi = neg_mask & (d > d_ap)
            closest_semi = d.masked_fill(~semi, float("inf")).argmin(dim=1)
            farthest = d.masked_fill(~neg_mask, float("-inf")).argmax(dim=1)  # FaceNet's fallback
            neg = torch.where(semi.any(dim=1), closest_semi, farthest)
    return anchors, pos, neg
