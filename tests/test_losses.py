"""Losses and miners against values computed by hand."""

import math

import pytest
import torch

from embedkit.errors import InputError
from embedkit.trainers.encoders.losses import (
    contrastive_loss,
    info_nce_loss,
    mine_triplets,
    pairwise_distances,
    triplet_margin_loss,
)


def t(x):
    return torch.tensor(x, dtype=torch.float64)


def test_contrastive_hadsell_by_hand():
    # similar pair at distance 5 -> 0.5 * 25; dissimilar pair at distance 0.5 < margin 1 -> 0.5 * 0.5^2
    z1 = t([[0.0, 0.0], [0.0, 0.0]])
    z2 = t([[3.0, 4.0], [0.3, 0.4]])
    loss = contrastive_loss(z1, z2, t([1.0, 0.0]), margin=1.0)
    assert loss.item() == pytest.approx((12.5 + 0.125) / 2)


def test_contrastive_dissimilar_beyond_margin_costs_nothing():
    loss = contrastive_loss(t([[0.0, 0.0]]), t([[0.0, 2.0]]), t([0.0]), margin=1.5)
    assert loss.item() == pytest.approx(0.0)
    loss = contrastive_loss(t([[0.0, 0.0]]), t([[0.0, 2.0]]), t([0.0]), margin=3.0)
    assert loss.item() == pytest.approx(0.5 * 1.0 ** 2)


def test_contrastive_gradient_finite_for_identical_rows():
    z = t([[1.0, 2.0]]).requires_grad_(True)
    contrastive_loss(z, z.detach().clone(), t([0.0]), margin=1.0).backward()
    assert torch.isfinite(z.grad).all()


def test_triplet_by_hand():
    a = t([[0.0, 0.0], [0.0, 0.0]])
    p = t([[1.0, 0.0], [3.0, 4.0]])   # d(a, p) = 1, 5
    n = t([[0.0, 2.0], [1.0, 0.0]])   # d(a, n) = 2, 1
    # max(0, 1 - 2 + 0.2) = 0 ; max(0, 5 - 1 + 0.2) = 4.2
    assert triplet_margin_loss(a, p, n, margin=0.2).item() == pytest.approx(2.1)


def test_triplet_matches_torch():
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(16, 5, generator=g, dtype=torch.float64) for _ in range(3))
    ref = torch.nn.functional.triplet_margin_loss(a, p, n, margin=0.5, eps=0.0)
    assert triplet_margin_loss(a, p, n, margin=0.5).item() == pytest.approx(ref.item(), abs=1e-9)


def test_infonce_by_hand():
    # two pairs of identical unit vectors, orthogonal to each other; temperature 1:
    # each row sees its partner at cosine 1 and two rows at cosine 0
    z = t([[1.0, 0.0], [0.0, 1.0]])
    expected = -math.log(math.e / (math.e + 2.0))
    assert info_nce_loss(z, z.clone(), temperature=1.0).item() == pytest.approx(expected)
    expected_half = -math.log(math.e ** 2 / (math.e ** 2 + 2.0))
    assert info_nce_loss(z, z.clone(), temperature=0.5).item() == pytest.approx(expected_half)


def test_infonce_scale_invariant_and_labels_mask_same_class():
    z = t([[1.0, 0.0], [0.0, 1.0]])
    # cosine similarity: scaling rows changes nothing
    assert info_nce_loss(3 * z, z, 1.0).item() == pytest.approx(info_nce_loss(z, z, 1.0).item())
    # both pairs of the same class: the only candidate left for each row is its partner -> loss 0
    assert info_nce_loss(z, z.clone(), 1.0, labels=torch.tensor([7, 7])).item() == pytest.approx(0.0, abs=1e-12)
    # different classes: same as without labels
    assert info_nce_loss(z, z, 1.0, labels=torch.tensor([0, 1])).item() == pytest.approx(
        info_nce_loss(z, z, 1.0).item())


def test_pairwise_distances_match_cdist():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(9, 4, generator=g, dtype=torch.float64)
    d = pairwise_distances(z)
    assert torch.allclose(d, torch.cdist(z, z), atol=1e-6)


# points on a line: x = 0, 1, 1.5, 3 with classes 0, 0, 1, 1
_X = t([[0.0], [1.0], [1.5], [3.0]])
_LAB = torch.tensor([0, 0, 1, 1])


def test_hard_miner_picks_farthest_positive_and_closest_negative():
    a, p, n = mine_triplets(pairwise_distances(_X), _LAB, "hard")
    assert a.tolist() == [0, 1, 2, 3]
    assert p.tolist() == [1, 0, 3, 2]
    assert n.tolist() == [2, 2, 1, 1]


def test_semihard_miner_by_hand():
    # anchor 1: d(a,p)=1, negatives at 0.5 and 2 -> the closest farther than the positive is row 3;
    # anchor 2: d(a,p)=1.5, no negative farther than that -> FaceNet falls back to the farthest, row 0
    _, p, n = mine_triplets(pairwise_distances(_X), _LAB, "semihard", torch.Generator().manual_seed(0))
    assert p.tolist() == [1, 0, 3, 2]
    assert n.tolist() == [2, 3, 0, 1]


def test_random_miner_valid_and_skips_anchors_without_positive():
    lab = torch.tensor([0, 1, 1, 2, 2, 2])
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    for seed in range(20):
        a, p, n = mine_triplets(pairwise_distances(z), lab, "random", torch.Generator().manual_seed(seed))
        assert 0 not in a.tolist()  # class 0 has a single row
        assert (lab[a] == lab[p]).all() and (a != p).all() and (lab[a] != lab[n]).all()


def test_unknown_miner():
    with pytest.raises(InputError, match="miner"):
        mine_triplets(pairwise_distances(_X), _LAB, "hardest")


def test_random_miner_with_known_positives():
    lab = torch.tensor([0, 0, 1, 1, 2, 2])
    partner = torch.tensor([1, 0, 3, 2, 5, 4])
    a, p, n = mine_triplets(None, lab, "random", torch.Generator().manual_seed(0), positives=partner)
    assert a.tolist() == [0, 1, 2, 3, 4, 5] and p.tolist() == partner.tolist()
    assert (lab[n] != lab[a]).all()
    # a batch of a single class has no negatives: nothing is mined
    a, _, _ = mine_triplets(None, torch.zeros(4, dtype=torch.long), "random", torch.Generator().manual_seed(0),
                            positives=torch.tensor([1, 0, 3, 2]))
    assert len(a) == 0
