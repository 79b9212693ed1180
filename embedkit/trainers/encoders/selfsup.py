"""Self-supervised training of :class:`~embedkit.SiameseEncoder` (``fit(X)`` with neither labels nor pairs).

contrastive: SCARF (Bahri, Jiang, Tay and Metzler, "SCARF: Self-Supervised Contrastive Learning
using Random Feature Corruption", ICLR 2022): each view replaces a random ``corruption`` share of
a row's features with the same feature of random training rows (draws from the feature's
empirical marginal); InfoNCE between the two views of each row, the batch's other rows being the
negatives. Rows that are flattened images (``image_shape``) are also shifted by up to one pixel.

predictive: in the spirit of I-JEPA (Assran et al., "Self-Supervised Learning from Images with a
Joint-Embedding Predictive Architecture", CVPR 2023): a context encoder sees the row with a
``corruption`` share of its features masked (set to the training mean, i.e. 0 after scaling); a
small predictor, told which features were masked, predicts the target encoder's (unit-length)
embedding of the full row; the target encoder is an exponential moving average of the context
encoder and is the encoder kept. No negatives; the EMA target and the predictor avoid collapse.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from . import base as _nn
from .losses import info_nce_loss


class SelfSupervised:
    """One epoch at a time of the chosen self-supervised objective, on ``model``'s learned part."""

    def __init__(self, model, table: torch.Tensor, gen: torch.Generator):
        self.m, self.table, self.gen = model, table, gen
        self.n, self.d = table.shape
        self.device = table.device
        self.mode = model.self_supervised
        self.batch = max(2, min(int(model.batch_size), self.n))
        params = list(model.model_.parameters())
        if self.mode == "predictive":
            out = model.dim - model.__dict__.get("skip_dims_", 0)
            width = max(64, 2 * out)
            self.target = copy.deepcopy(model.model_).requires_grad_(False)
            self.predictor = _nn.mlp([out + self.d, width, out]).to(self.device)
            params += list(self.predictor.parameters())
        self.opt = torch.optim.Adam(params, lr=model.lr, weight_decay=model.weight_decay)

    # -- views
    def _corrupt(self, x: torch.Tensor) -> torch.Tensor:
        mask = torch.rand(x.shape, generator=self.gen, device=self.device) < self.m.corruption
        donors = torch.randint(self.n, x.shape, generator=self.gen, device=self.device)
        cols = torch.arange(self.d, device=self.device).expand_as(donors)
        return torch.where(mask, self.table[donors, cols], x)

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(self.m.image_shape)
        img = x.reshape(len(x), *((1,) + shape if len(shape) == 2 else shape))
        dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=self.gen, device=self.device))
        return torch.roll(img, shifts=(dy, dx), dims=(-2, -1)).reshape(len(x), -1)

    def _view(self, x: torch.Tensor) -> torch.Tensor:
        if self.m.image_shape is not None:
            x = self._shift(x)
        return self._corrupt(x)

    # -- training
    def one_epoch(self, epoch: int) -> float:
        self.m.model_.train()
        total, count = torch.zeros((), device=self.device), 0
        for idx in _nn.minibatches(self.n, self.batch, self.gen, self.device):
            if len(idx) < 2:
                continue
            x = self.table[idx]
            loss = self._contrastive(x) if self.mode == "contrastive" else self._predictive(x)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if self.mode == "predictive":
                self._update_target()
            total += loss.detach()
            count += 1
        return float(total) / max(count, 1)

    def _contrastive(self, x: torch.Tensor) -> torch.Tensor:
        return info_nce_loss(self.m._learned(self._view(x)), self.m._learned(self._view(x)), self.m.temperature)

    def _predictive(self, x: torch.Tensor) -> torch.Tensor:
        mask = (torch.rand(x.shape, generator=self.gen, device=self.device) < self.m.corruption).float()
        context = self.m.model_(x * (1.0 - mask))
        pred = F.normalize(self.predictor(torch.cat([context, mask], dim=1)), dim=1)
        with torch.no_grad():
            target = F.normalize(self.target(x), dim=1)
        return (pred - target).pow(2).sum(dim=1).mean()

    @torch.no_grad()
    def _update_target(self) -> None:
        for t, c in zip(self.target.parameters(), self.m.model_.parameters()):
            t.mul_(self.m.ema).add_(c.detach(), alpha=1.0 - self.m.ema)

    def finish(self) -> None:
        """Predictive mode keeps the target (EMA) encoder as the model."""
        if self.mode == "predictive":
            self.m.model_.load_state_dict(self.target.state_dict())


__all__ = ["SelfSupervised"]
