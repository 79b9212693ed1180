"""AutoEncoder: undercomplete, denoising, sparse and variational autoencoders for feature rows.

The latent code (the mean for the VAE) is the embedding; the reconstruction error is an anomaly score.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._device import resolve_device
from ..._validation import check_bool, check_choice, check_float, check_int, check_seed
from ...data.features import as_matrix, row_keys
from ...embeddings import Embeddings
from ...errors import InputError
from . import base as _nn

log = logging.getLogger(__name__)

__all__ = ["AutoEncoder", "VARIANTS"]

VARIANTS = ("undercomplete", "denoising", "sparse", "vae")


class AutoEncoder(_nn.TableModel):
    """An MLP autoencoder whose bottleneck gives embeddings and whose reconstruction error scores anomalies.

    Variants: ``undercomplete`` (plain bottleneck, mean squared error); ``denoising`` (Vincent et
    al., ICML 2008: reconstruct clean rows from rows with Gaussian noise added); ``sparse`` (an L1
    penalty on the code, Goodfellow et al., Deep Learning 14.2.1); ``vae`` (Kingma and Welling,
    "Auto-Encoding Variational Bayes", ICLR 2014: Gaussian encoder, unit-variance Gaussian decoder,
    loss = reconstruction + beta * KL, Higgins et al. 2017 for beta). Errors are measured on the
    standardised features.

    Parameters
    ----------
    variant : {"undercomplete", "denoising", "sparse", "vae"}, default "undercomplete"
    dim : int, default 16
        Size of the code (the embedding).
    hidden : tuple of int, default (128, 64)
        Encoder hidden widths; the decoder mirrors them.
    noise : float, default 0.3
        Standard deviation of the Gaussian noise (in standardised units) added in training by
        the ``denoising`` variant.
    sparsity : float, default 1e-3
        Weight of the L1 penalty on the code for the ``sparse`` variant.
    beta : float, default 1.0
        Weight of the KL term for the ``vae`` variant.
    epochs : int, default 50
    batch_size : int, default 128
    lr : float, default 1e-3
        Adam learning rate.
    standardize : bool, default True
        Learn per-column mean/std in fit and apply them to every input (stored with the model).
    seed : int, default 0
    device : "auto", "cpu", "cuda" or "cuda:N", default "auto"

    Raises
    ------
    InputError
        Bad parameter values (in fit) or bad inputs (NaN, wrong shapes, feature counts).
    """

    def __init__(self, variant="undercomplete", dim=16, hidden=(128, 64), noise=0.3, sparsity=1e-3, beta=1.0,
                 epochs=50, batch_size=128, lr=1e-3, standardize=True, seed=0, device="auto"):
        self.variant = variant
        self.dim = dim
        self.hidden = hidden
        self.noise = noise
        self.sparsity = sparsity
        self.beta = beta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.standardize = standardize
        self.seed = seed
        self.device = device

    def _validate(self) -> None:
        owner = "AutoEncoder"
        check_choice(owner, "variant", self.variant, VARIANTS)
        check_int(owner, "dim", self.dim, 1)
        _nn.check_hidden(owner, self.hidden)
        check_float(owner, "noise", self.noise, 0.0)
        check_float(owner, "sparsity", self.sparsity, 0.0)
        check_float(owner, "beta", self.beta, 0.0)
        check_int(owner, "epochs", self.epochs, 1)
        check_int(owner, "batch_size", self.batch_size, 1)
        check_float(owner, "lr", self.lr, 0.0, low_open=True)
        check_bool(owner, "standardize", self.standardize)
        check_seed(owner, self.seed)

    # ------------------------------------------------------------------ model
    def _build_modules(self, n_features: int) -> None:
        hidden = list(_nn.check_hidden("AutoEncoder", self.hidden))
        code = 2 * self.dim if self.variant == "vae" else self.dim  # the VAE encoder emits (mean, log-variance)
        self.model_ = _nn.mlp([n_features, *hidden, code])
        self.decoder_ = _nn.mlp([self.dim, *hidden[::-1], n_features])

    def _saved_modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.model_, "decoder": self.decoder_}

    def _moments(self, x: torch.Tensor):
        h = self.model_(x)
        if self.variant != "vae":
            return h, None
        mean, logvar = h.split(self.dim, dim=1)
        return mean, logvar.clamp(-20.0, 20.0)

    def _embed(self, table: torch.Tensor) -> torch.Tensor:
        return self._moments(table)[0]

    def _train_loss(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        inp = x
        if self.variant == "denoising" and self.noise > 0:
            inp = x + self.noise * torch.randn(x.shape, generator=gen, device=x.device)
        mean, logvar = self._moments(inp)
        if self.variant == "vae":
            z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen, device=x.device)
            recon = 0.5 * (self.decoder_(z) - x).pow(2).sum(dim=1)
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
            return (recon + self.beta * kl).mean()
        loss = F.mse_loss(self.decoder_(mean), x)
        if self.variant == "sparse":
            loss = loss + self.sparsity * mean.abs().mean()
        return loss

    # ------------------------------------------------------------------ fit
    def fit(self, X, keys=None, show_progress=True, callback=None) -> Embeddings:
        """Train on rows ``X`` (n, d); returns the codes of the training rows (latent means for the VAE).

        Keys default to a pandas index, else "0".."n-1". Raises InputError for bad parameters or inputs.
        """
        self._validate()
        self._check_callback("AutoEncoder", callback)
        arr = as_matrix(X)
        names = row_keys(keys, arr.shape[0], X)
        self.device_ = resolve_device(self.device, "AutoEncoder")
        self.scaler_ = _nn.Standardizer.fit(arr, self.standardize)
        self.n_features_ = arr.shape[1]
        table = _nn.to_table(self.scaler_.transform(arr), self.device_)
        gen = _nn.make_generator(self.seed, self.device_)
        with _nn.seeded(self.seed, self.device_):
            self._build_modules(self.n_features_)
            params = []
            for m in self._saved_modules().values():
                m.to(self.device_).train()
                params += list(m.parameters())
            opt = torch.optim.Adam(params, lr=self.lr)

            def one_epoch(epoch):
                total = torch.zeros((), device=self.device_)  # summed on the device: no sync per step
                for idx in _nn.minibatches(len(table), self.batch_size, gen, self.device_):
                    loss = self._train_loss(table[idx], gen)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach() * len(idx)
                return float(total) / len(table)

            self.loss_history_ = _nn.run_epochs("AutoEncoder", self.epochs, one_epoch, show_progress, callback)
        for m in self._saved_modules().values():
            m.eval()
        self.embeddings_ = Embeddings(names, _nn.apply_in_batches(self._embed, table))
        return self.embeddings_

    # ------------------------------------------------------------------ use
    def reconstruct(self, X) -> np.ndarray:
        """Rows rebuilt from their codes (the latent mean for the VAE), in the original units."""
        table = self._prepare(X)
        out = _nn.apply_in_batches(lambda t: self.decoder_(self._moments(t)[0]), table)
        return self.scaler_.inverse(out)

    def anomaly_scores(self, X, method: str = "reconstruction") -> np.ndarray:
        """One score per row, higher = more anomalous.

        ``method="reconstruction"``: mean squared reconstruction error over the standardised
        features. ``method="elbo"`` (VAE only): the negative ELBO with the latent mean as the sample
        (reconstruction + beta * KL, up to a constant).
        """
        check_choice("AutoEncoder.anomaly_scores", "method", method, ("reconstruction", "elbo"))
        if method == "elbo" and self.variant != "vae":
            raise InputError(f"method='elbo' needs variant='vae'; this AutoEncoder is {self.variant!r} "
                             "(use method='reconstruction')")
        table = self._prepare(X)

        def score(t):
            mean, logvar = self._moments(t)
            err = (self.decoder_(mean) - t).pow(2)
            if method == "reconstruction":
                return err.mean(dim=1)
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
            return 0.5 * err.sum(dim=1) + self.beta * kl

        return _nn.apply_in_batches(score, table)

    def sample(self, n: int, seed=None) -> np.ndarray:
        """Draw ``n`` new rows from a fitted VAE (prior samples through the decoder), in original units."""
        self._require_model()
        if self.variant != "vae":
            raise InputError(f"sample() needs variant='vae'; this AutoEncoder is {self.variant!r}")
        n = check_int("AutoEncoder.sample", "n", n, 1)
        gen = _nn.make_generator(self.seed if seed is None else check_seed("AutoEncoder.sample", seed), self.device_)
        z = torch.randn((n, self.dim), generator=gen, device=self.device_)
        return self.scaler_.inverse(_nn.apply_in_batches(self.decoder_, z))

