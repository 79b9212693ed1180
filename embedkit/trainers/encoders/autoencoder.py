"""AutoEncoder: undercomplete, denoising, sparse and variational autoencoders for feature rows.

The latent code (the mean for the VAE) is the embedding; the reconstruction error is an anomaly score.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._validation import (
    BATCH_SIZE,
    DEVICE,
    DIM,
    EPOCHS,
    LR,
    SEED,
    Bool,
    Interval,
    IntTuple,
    Options,
    check_choice,
    check_int,
    check_seed,
)
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

    Warns IgnoredParameterWarning (once, in fit) for a non-default ``noise`` outside
    ``denoising``, ``sparsity`` outside ``sparse`` and ``beta`` outside ``vae``.
    """

    _parameter_constraints = {
        "variant": [Options(*VARIANTS)],
        "dim": DIM,
        "hidden": [IntTuple(1, "an int or a tuple of ints >= 1 (layer widths, e.g. (128, 64))")],
        "noise": [Interval(float, 0.0, None)],
        "sparsity": [Interval(float, 0.0, None)],
        "beta": [Interval(float, 0.0, None)],
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "standardize": [Bool()],
        "seed": SEED,
        "device": DEVICE,
    }
    _fitted_names = (*_nn.TableModel._fitted_names, "decoder_", "_train_scores")

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

    def _ignored_params(self) -> dict:
        used_by = {"noise": "denoising", "sparsity": "sparse", "beta": "vae"}
        return {name: f"with variant={self.variant!r} (used by {variant!r})"
                for name, variant in used_by.items() if self.variant != variant}

    # ------------------------------------------------------------------ model
    def _build_modules(self, n_features: int) -> None:
        hidden = list(_nn.hidden_widths(self.hidden))
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
    def fit(self, X, keys=None, *, show_progress=True, callback=None) -> Embeddings:
        """Train on rows ``X`` (n, d); returns the codes of the training rows (latent means for the VAE).

        Keys default to a pandas index, else "0".."n-1". ``callback(epoch, loss)`` runs after each
        epoch (epochs count from 1). Raises InputError for bad parameters or inputs.
        """
        self._validate_params()
        self._check_callback("AutoEncoder", callback)
        try:
            return self._fit(X, keys, show_progress, callback)
        except BaseException:
            self._forget_fit()
            raise

    def _fit(self, X, keys, show_progress, callback) -> Embeddings:
        _, names, table = self._start_fit(X, keys)
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

            history = _nn.run_epochs("AutoEncoder", self.epochs, one_epoch, show_progress, callback)
        for m in self._saved_modules().values():
            m.eval()
        self.loss_history_ = history

        def codes_and_errors(t):  # one pass: the codes, and the reconstruction error that to_store keeps
            code = self._embed(t)
            return torch.cat([code, (self.decoder_(code) - t).pow(2).mean(dim=1, keepdim=True)], dim=1)

        out = _nn.apply_in_batches(codes_and_errors, table)
        self.embeddings_ = Embeddings(names, np.ascontiguousarray(out[:, :-1]))
        self._train_scores = np.ascontiguousarray(out[:, -1])
        return self.embeddings_

    # ------------------------------------------------------------------ the model as arrays
    def _state_arrays(self) -> dict:
        arrays = super()._state_arrays()
        if "_train_scores" in self.__dict__:
            arrays["train_scores"] = self._train_scores
        return arrays

    def _load_state(self, arrays: dict, config: dict) -> None:
        super()._load_state(arrays, config)
        if "train_scores" in arrays:
            self._train_scores = np.asarray(arrays["train_scores"], dtype=np.float32)

    def _store_extras(self) -> dict:
        extras = super()._store_extras()
        if "_train_scores" in self.__dict__ and "embeddings_" in self.__dict__:
            extras["anomaly_scores"] = {"keys": np.array(self.embeddings_.keys, dtype=str),
                                        "scores": self._train_scores.astype(np.float32)}
        return extras

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
        return _nn.apply_in_batches(lambda t: self._scores(t, method), self._prepare(X))

    def _scores(self, t: torch.Tensor, method: str) -> torch.Tensor:
        mean, logvar = self._moments(t)
        err = (self.decoder_(mean) - t).pow(2)
        if method == "reconstruction":
            return err.mean(dim=1)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return 0.5 * err.sum(dim=1) + self.beta * kl

    def sample(self, n: int, seed=None) -> np.ndarray:
        """Draw ``n`` new rows from a fitted VAE (prior samples through the decoder), in original units."""
        self._check_fitted()
        if self.variant != "vae":
            raise InputError(f"sample() needs variant='vae'; this AutoEncoder is {self.variant!r}")
        n = check_int("AutoEncoder.sample", "n", n, 1)
        gen = _nn.make_generator(self.seed if seed is None else check_seed("AutoEncoder.sample", seed), self.device_)
        z = torch.randn((n, self.dim), generator=gen, device=self.device_)
        return self.scaler_.inverse(_nn.apply_in_batches(self.decoder_, z))

