"""AutoEncoder: undercomplete, denoising, sparse, variational and linear autoencoders for feature
rows, with any torch modules as encoder/decoder, and a PyOD-style anomaly detector.

The latent code (the mean for the VAE) is the embedding. Anomaly scores (``decision_function``)
are by default (``score="auto"``) a weighted mean of four detectors, each put on the scale of its
training scores (median / IQR): an isolation forest on the (standardised) inputs and the mean distance
to the ``n_neighbors`` nearest training rows in the input space (weight 1 each), the same distance in
the latent space and an isolation forest on the inputs beside the autoencoder's per-feature
reconstruction residuals (weight 0.25 each); k-NN searches go through :class:`embedkit.VectorIndex`.
``score="ensemble"`` averages latent and input k-NN, ``score="combined"`` reconstruction error and latent
k-NN, ``score="hybrid"`` the two forests and input k-NN.
The detector (scores, ``predict``, thresholds and their saved state) lives in ``ae_anomaly.py``; this
module holds the model: variants, training, decoding and sampling.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._arrays import as_vectors
from ..._validation import (
    BATCH_SIZE,
    DEVICE,
    DIM,
    EPOCHS,
    LR,
    SEED,
    Bool,
    InstanceOf,
    Interval,
    IntTuple,
    NoneOk,
    Options,
    check_int,
    check_seed,
)
from ...data.features import as_matrix
from ...embeddings import Embeddings
from ...errors import IgnoredParameterWarning, InputError
from . import base as _nn
from .ae_anomaly import FITTED, SCORES, AnomalyDetector, uses_residuals

log = logging.getLogger(__name__)

__all__ = ["AutoEncoder", "VARIANTS", "SCORES"]

VARIANTS = ("undercomplete", "denoising", "sparse", "vae", "linear")
_MIN_VALIDATION = 16  # rows: below this many held-out rows there is no validation split


class _EarlyStop(Exception):
    """Raised from the per-epoch callback to end training early (the validation loss stopped improving)."""


def code_size(dim: int, n_features: int) -> int:
    """The code size of the MLP variants: ``dim``, at most half the features (at least 1), so the
    code stays a bottleneck on narrow tables."""
    return max(1, min(int(dim), n_features // 2))


class AutoEncoder(AnomalyDetector, _nn.TableModel):
    """An autoencoder whose bottleneck gives embeddings and whose reconstruction error and latent
    k-NN distance score anomalies (PyOD's conventions: ``decision_function``, ``predict``,
    ``threshold_``, ``decision_scores_``, ``labels_``, ``fit_predict``).

    Variants: ``undercomplete`` (plain bottleneck); ``denoising`` (Vincent et al., ICML 2008:
    reconstruct clean rows from rows with Gaussian noise added); ``sparse`` (an L1 penalty on the
    code, Goodfellow et al., Deep Learning 14.2.1); ``vae`` (Kingma and Welling, ICLR 2014:
    Gaussian encoder, loss = reconstruction + beta * KL, Higgins et al. 2017 for beta); ``linear``
    (one linear layer each way, no activation: the PCA-equivalent baseline, Baldi and Hornik 1989).

    Parameters
    ----------
    variant : {"undercomplete", "denoising", "sparse", "vae", "linear"}, default "undercomplete"
    dim : int, default 16
        Size of the code, at most half the features (narrower tables get ``n_features // 2``,
        at least 1, so the code stays a bottleneck; the size used is ``dim_``). With custom
        modules: the encoder's output size, whatever ``dim`` says.
    hidden : tuple of int, default (128, 64)
        Encoder hidden widths; the decoder mirrors them. Unused by ``linear`` and custom modules.
    encoder, decoder : torch.nn.Module or None, default None
        Any modules mapping (batch, n_features) float32 rows to (batch, dim) codes (``2 * dim``
        for the VAE: mean and log-variance) and codes back to (batch, n_features) rows (logits
        with ``loss="bce"``); give both or neither. They are copied in fit. Saving stores their
        state_dict tensors as arrays: load with modules of the same architecture,
        ``AutoEncoder.load(path, encoder=..., decoder=...)``; the architecture itself (code) is
        never saved, since that would need pickle.
    loss : {"mse", "bce"}, default "mse"
        Reconstruction loss. ``"bce"`` (binary cross-entropy on the decoder's logits) scales each
        column to [0, 1] by its training min and max (with ``standardize=False`` the features
        must already lie in [0, 1]); ``"mse"`` works on z-scores.
    noise : float, default 0.3
        Standard deviation of the Gaussian noise (in scaled units) added by ``denoising``.
    sparsity : float, default 1e-3
        Weight of the L1 penalty on the code for ``sparse``.
    beta : float, default 1.0
        Weight of the KL term for ``vae``.
    score : {"auto", "ensemble", "combined", "reconstruction", "knn", "input_knn", "hybrid"}, default "auto"
        What ``decision_function`` returns: ``"reconstruction"`` error; ``"knn"``, the mean latent
        distance to the ``n_neighbors`` nearest training rows; ``"input_knn"``, the same distance
        between the scaled input rows (the model keeps its scaled training rows for it);
        ``"combined"``, reconstruction and latent k-NN averaged after robust scaling (each by the
        median and IQR of its training scores); ``"ensemble"``, latent and input k-NN averaged
        the same way; ``"hybrid"``, three robust-scaled parts averaged: an isolation forest
        (scikit-learn's, ``random_state=seed``) on the scaled rows, the input k-NN distance, and a second
        isolation forest on the scaled rows beside their per-feature reconstruction residuals, which lets it
        isolate rows whose columns disagree with each other; ``"auto"`` (the default), the hybrid's three
        parts and the latent k-NN distance in a weighted mean (1, 1, 0.25, 0.25): the classic pair of
        isolation forest and input k-NN (ADBench, Han et al., NeurIPS 2022: among the strongest
        unsupervised detectors) kept beside the autoencoder's two parts. It was chosen on seen suites and
        passed two held-out ones against IsolationForest (round 10 of
        benchmarks/encoders_design/PROTOCOL.md; figures per set in benchmarks/RESULTS.md). For anomalies that
        break the dependence between columns, ``"reconstruction"`` scored best of these options.
    n_neighbors : int, default 10
        Neighbours of the k-NN scores (latent and input space).
    contamination : float, default 0.1
        Expected share of anomalies in the training rows; sets ``threshold_`` (the decision
        score above which that share of training rows lie) for ``predict``.
    validation_fraction : float, default 0.1
        Share of the rows held out to pick the epoch with the lowest validation reconstruction
        loss (its weights are kept); 0 or fewer than 16 held-out rows: the last epoch's weights.
    epochs : int, default 50
        Passes over the rows (fewer with ``patience``; the number run is ``len(loss_history_)``).
        Epochs set from the data size (about 1000 optimiser steps) with early stopping scored a
        lower mean ROC-AUC on the 18 ADBench sets (0.729 vs 0.734: the smallest tables over-fit),
        so the default stays fixed (benchmarks/RESULTS.md).
    patience : int or None, default None
        Early stopping: end training when the validation loss has not improved for this many
        epochs (the best epoch's weights are kept either way); None: run every epoch. Needs a
        validation split (see ``validation_fraction``).
    batch_size : int, default 128
    lr : float, default 1e-3
        Adam learning rate.
    standardize : bool, default True
        Learn the per-column scaling in fit and apply it to every input (stored with the model).
    seed : int, default 0
    device : "auto", "cpu", "cuda" or "cuda:N", default "auto"

    Raises
    ------
    InputError
        Bad parameter values (in fit), bad inputs (NaN, wrong shapes, feature counts) or custom
        modules with the wrong input/output shapes.

    Warns IgnoredParameterWarning (once, in fit) for a non-default ``noise`` outside
    ``denoising``, ``sparsity`` outside ``sparse``, ``beta`` outside ``vae``, and ``hidden``
    with ``linear`` or custom modules.
    """

    _module_params = ("encoder", "decoder")
    _parameter_constraints = {
        "variant": [Options(*VARIANTS)],
        "dim": DIM,
        "hidden": [IntTuple(1, "an int or a tuple of ints >= 1 (layer widths, e.g. (128, 64))")],
        "encoder": [InstanceOf("torch.nn.Module"), NoneOk()],
        "decoder": [InstanceOf("torch.nn.Module"), NoneOk()],
        "loss": [Options("mse", "bce")],
        "noise": [Interval(float, 0.0, None)],
        "sparsity": [Interval(float, 0.0, None)],
        "beta": [Interval(float, 0.0, None)],
        "score": [Options(*SCORES)],
        "n_neighbors": [Interval(int, 1, 10_000)],
        "contamination": [Interval(float, 0.0, 0.5, closed="right")],
        "validation_fraction": [Interval(float, 0.0, 0.5, closed="left")],
        "epochs": EPOCHS,
        "patience": [Interval(int, 1, 100_000), NoneOk()],
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "standardize": [Bool()],
        "seed": SEED,
        "device": DEVICE,
    }
    _fitted_names = (*_nn.TableModel._fitted_names, "decoder_", "dim_", "best_epoch_", *FITTED)

    def __init__(self, variant="undercomplete", dim=16, hidden=(128, 64), encoder=None, decoder=None, loss="mse",
                 noise=0.3, sparsity=1e-3, beta=1.0, score="auto", n_neighbors=10, contamination=0.1,
                 validation_fraction=0.1, epochs=50, patience=None, batch_size=128, lr=1e-3, standardize=True,
                 seed=0, device="auto"):
        self.variant = variant
        self.dim = dim
        self.hidden = hidden
        self.encoder = encoder
        self.decoder = decoder
        self.loss = loss
        self.noise = noise
        self.sparsity = sparsity
        self.beta = beta
        self.score = score
        self.n_neighbors = n_neighbors
        self.contamination = contamination
        self.validation_fraction = validation_fraction
        self.epochs = epochs
        self.patience = patience
        self.batch_size = batch_size
        self.lr = lr
        self.standardize = standardize
        self.seed = seed
        self.device = device

    def _ignored_params(self) -> dict:
        used_by = {"noise": "denoising", "sparsity": "sparse", "beta": "vae"}
        ignored = {name: f"with variant={self.variant!r} (used by {variant!r})"
                   for name, variant in used_by.items() if self.variant != variant}
        if self.encoder is not None:
            ignored["hidden"] = "when custom encoder/decoder modules are given (they replace the MLPs)"
        elif self.variant == "linear":
            ignored["hidden"] = "with variant='linear' (one linear layer each way)"
        if not self.validation_fraction:
            ignored["patience"] = "with validation_fraction=0 (early stopping needs a validation split)"
        return ignored

    # ------------------------------------------------------------------ model
    def _check_range(self, arr: np.ndarray) -> None:
        if self.loss == "bce" and not self.standardize and (arr.min() < 0 or arr.max() > 1):
            raise InputError("AutoEncoder: loss='bce' with standardize=False needs features in [0, 1]; got "
                             f"values from {arr.min():.3g} to {arr.max():.3g} (set standardize=True to scale "
                             "each column by its min and max)")

    def _fit_scaler(self, arr: np.ndarray) -> _nn.Standardizer:
        if self.loss != "bce":
            return super()._fit_scaler(arr)
        if not self.standardize:  # (fit has checked the range)
            return _nn.Standardizer(np.zeros(arr.shape[1]), np.ones(arr.shape[1]))
        lo, hi = arr.min(axis=0).astype(np.float64), arr.max(axis=0).astype(np.float64)
        span = hi - lo
        span[span <= 0] = 1.0
        return _nn.Standardizer(lo, span)

    def _build_modules(self, n_features: int) -> None:
        code = 2 * self.dim_ if self.variant == "vae" else self.dim_  # the VAE encoder emits (mean, log-variance)
        if self.encoder is not None:
            self.model_ = copy.deepcopy(self.encoder)
            self.decoder_ = copy.deepcopy(self.decoder)
        elif self.variant == "linear":
            self.model_ = _nn.mlp([n_features, code])
            self.decoder_ = _nn.mlp([self.dim_, n_features])
        else:
            hidden = list(_nn.hidden_widths(self.hidden))
            self.model_ = _nn.mlp([n_features, *hidden, code])
            self.decoder_ = _nn.mlp([self.dim_, *hidden[::-1], n_features])

    def _saved_modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.model_, "decoder": self.decoder_}

    def _moments(self, x: torch.Tensor):
        h = self.model_(x)
        if self.variant != "vae":
            return h, None
        mean, logvar = h.split(self.dim_, dim=1)
        return mean, logvar.clamp(-20.0, 20.0)

    def _embed(self, table: torch.Tensor) -> torch.Tensor:
        return self._moments(table)[0]

    def _row_error(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-row mean reconstruction error (squared error, or BCE on logits)."""
        if self.loss == "bce":
            return F.binary_cross_entropy_with_logits(out, x, reduction="none").mean(dim=1)
        return (out - x).pow(2).mean(dim=1)

    def _train_loss(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        inp = x
        if self.variant == "denoising" and self.noise > 0:
            inp = x + self.noise * torch.randn(x.shape, generator=gen, device=x.device)
        mean, logvar = self._moments(inp)
        if self.variant == "vae":
            z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen, device=x.device)
            recon = self._row_error(self.decoder_(z), x) * x.shape[1] * (1.0 if self.loss == "bce" else 0.5)
            kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
            return (recon + self.beta * kl).mean()
        loss = self._row_error(self.decoder_(mean), x).mean()
        if self.variant == "sparse":
            loss = loss + self.sparsity * mean.abs().mean()
        return loss

    # ------------------------------------------------------------------ fit
    def fit(self, X, keys=None, *, show_progress=True, callback=None) -> Embeddings:
        """Train on rows ``X`` (n, d); returns the codes of the training rows (latent means for the VAE).

        Also sets the anomaly attributes: ``decision_scores_`` (the training rows' scores),
        ``threshold_`` and ``labels_`` (1 = anomaly). ``keys``: strings, one per row (ints are refused:
        pass ``[str(k) for k in keys]``); default a pandas index, else "0".."n-1". ``callback(epoch, loss)``
        runs after each epoch (epochs count from 1).
        Raises InputError for bad parameters or inputs; a fit that fails (bad input, an error or interrupt during
        training) leaves a previous fit as it was.
        """
        self._validate_params()
        self._check_callback("AutoEncoder", callback)
        if (self.encoder is None) != (self.decoder is None):
            raise InputError("AutoEncoder: give both encoder= and decoder= modules, or neither (the MLPs)")
        arr, keys = self._check_rows(X, keys)  # before the previous fit is dropped (keys: checked, as strings)
        self._check_range(arr)
        self._warn_capped_dim(arr.shape[1])
        scaler = None
        if self.encoder is not None:  # custom modules that cannot run fail now, with the previous fit in place
            scaler = self._try_modules(arr, lambda rows, copy_of: self._check_modules(
                rows, copy_of(self.encoder), copy_of(self.decoder).eval()))
        return self._train_keeping_fit(lambda: self._fit(X, keys, show_progress, callback, arr, scaler))

    def _warn_capped_dim(self, n_features: int) -> None:
        """UserWarning (stacklevel 4: at the caller of the wrapped fit) when an explicit ``dim`` exceeds what the MLP
        variants allow on ``n_features`` (the default ``dim`` is capped silently)."""
        size = code_size(self.dim, n_features)
        if self.encoder is None and size < self.dim and self.dim != self._defaults().get("dim"):
            warnings.warn(f"AutoEncoder: dim={self.dim} is capped at {size}, half of the {n_features} features, so the "
                          f"code stays a bottleneck (a wider code could copy the rows); pass dim={size} or less to "
                          "choose the size yourself", UserWarning, stacklevel=4)

    def _resolve_dim(self, table: torch.Tensor) -> int:
        if self.encoder is None:
            return code_size(self.dim, table.shape[1])  # capped: fit warned (_warn_capped_dim)
        with torch.no_grad():
            probe = copy.deepcopy(self.encoder).to(table.device).eval()
            try:
                width = int(probe(table[:2]).shape[-1])
            except Exception:
                width = 2
        return max(1, width // 2) if self.variant == "vae" else width

    def _fit(self, X, keys, show_progress, callback, checked, scaler=None) -> Embeddings:
        _, names, table = self._start_fit(X, keys, checked, scaler)
        n = len(table)
        gen = _nn.make_generator(self.seed, self.device_)
        with _nn.seeded(self.seed, self.device_):
            self.dim_ = self._resolve_dim(table)
            self._build_modules(self.n_features_)
            params = []
            for m in self._saved_modules().values():
                m.to(self.device_).train()
                params += list(m.parameters())
            if self.encoder is not None:
                self._check_modules(table)
            _nn.broadcast_modules(self)  # under a process group: rank 0's weights everywhere (no-op in one process)
            n_val = int(n * self.validation_fraction)
            order = torch.randperm(n, generator=gen, device=self.device_)
            if n_val >= _MIN_VALIDATION:
                val, train = table[order[:n_val]], table[order[n_val:]]
            else:
                val, train = None, table
                if self.patience is not None and self.validation_fraction:
                    warnings.warn(f"AutoEncoder: the 'patience' parameter ({self.patience!r}) is ignored: early stopping "
                                  f"is off, since validation_fraction={self.validation_fraction!r} of {n} rows holds "
                                  f"{n_val} (at least {_MIN_VALIDATION} needed; raise validation_fraction or give "
                                  "more rows)", IgnoredParameterWarning, stacklevel=6)  # at the caller of the wrapped fit
            opt = torch.optim.Adam(params, lr=self.lr)
            best = {"loss": math.inf, "epoch": 0, "state": None}
            patience = int(self.patience) if self.patience is not None and val is not None else None

            def one_epoch(epoch):
                for m in self._saved_modules().values():
                    m.train()
                total = torch.zeros((), device=self.device_)  # summed on the device: no sync per step
                for idx in _nn.minibatches(len(train), self.batch_size, gen, self.device_, min_rows=2):
                    loss = self._train_loss(train[idx], gen)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach() * len(idx)
                if val is not None:
                    for m in self._saved_modules().values():
                        m.eval()
                    v = _nn.rank_mean(float(_nn.apply_in_batches(lambda t: self._row_error(self.decoder_(self._embed(t)), t),
                                                                 val).mean()))  # equal on every rank: the same best epoch
                    if v < best["loss"]:
                        best.update(loss=v, epoch=epoch, state=copy.deepcopy(
                            {k: m.state_dict() for k, m in self._saved_modules().items()}))
                return _nn.rank_sum(float(total)) / len(train)  # each rank summed its part of every batch

            history: list[float] = []

            def after_epoch(epoch, loss):  # the losses as run_epochs reports them; stops early on a stalled validation
                history.append(loss)
                if callback is not None:
                    callback(epoch, loss)
                if patience is not None and epoch < self.epochs and epoch - best["epoch"] >= patience:
                    raise _EarlyStop

            try:
                _nn.run_epochs("AutoEncoder", self.epochs, one_epoch, show_progress, after_epoch)
            except _EarlyStop:
                log.info("AutoEncoder: early stop after epoch %d (best validation epoch %d of %d planned)",
                         len(history), best["epoch"], self.epochs)
        if best["state"] is not None:
            for k, m in self._saved_modules().items():
                m.load_state_dict(best["state"][k])
        for m in self._saved_modules().values():
            m.eval()
        self.loss_history_ = history
        self.best_epoch_ = int(best["epoch"]) if best["state"] is not None else len(history)

        codes, errors, residuals = self._network_pass(table, uses_residuals(self.score))
        self.embeddings_ = Embeddings(names, np.ascontiguousarray(codes))
        self._fit_anomaly(table, errors, residuals)
        return self.embeddings_

    def _check_modules(self, table: torch.Tensor, encoder=None, decoder=None) -> None:
        """The custom encoder and decoder (the fitted ones, or the copies given) map rows to one code tensor and
        codes back to rows of the table's width (one-line InputError otherwise)."""
        fitted = encoder is None
        if fitted:  # the fitted modules, with the code size the fit resolved
            encoder, decoder = self.model_, self.decoder_
        width = _nn.check_encoder_output("AutoEncoder", encoder, table, None, vae=self.variant == "vae")
        dim = self.dim_ if fitted else max(1, width // 2) if self.variant == "vae" else width
        with torch.no_grad():
            z = torch.zeros((2, dim), device=table.device)
            try:
                out = decoder(z)
            except Exception as exc:
                raise InputError(f"AutoEncoder: the decoder module fails on codes of shape (2, {dim}) "
                                 f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
        _nn.check_module_output("AutoEncoder", "decoder", out, 2)
        if tuple(out.shape) != (2, table.shape[1]):
            raise InputError(f"AutoEncoder: the decoder returns shape {tuple(out.shape)} for codes of shape "
                             f"(2, {dim}); it must return (batch, {table.shape[1]}) rows "
                             "(end it with nn.Flatten() for images)")

    # ------------------------------------------------------------------ the model as arrays
    def _state_config(self) -> dict:
        return {**super()._state_config(), "dim": int(self.dim_), "best_epoch": int(self.best_epoch_),
                **self._anomaly_config()}

    def _state_arrays(self) -> dict:
        return {**super()._state_arrays(), **self._anomaly_arrays()}

    def _load_state(self, arrays: dict, config: dict) -> None:
        # files written before dim_ existed used ``dim`` as given
        self.dim_ = int(config.get("dim", self.dim))
        super()._load_state(arrays, config)
        self.best_epoch_ = int(config.get("best_epoch", len(self.loss_history_)))
        self._load_anomaly(arrays, config)

    def _store_extras(self) -> dict:
        return {**super()._store_extras(), **self._anomaly_extras()}

    # ------------------------------------------------------------------ use
    def decode(self, Z) -> np.ndarray:
        """Rows (original units) decoded from latent codes ``Z`` (n, dim) (probabilities for ``loss="bce"``
        before the inverse scaling)."""
        self._check_fitted()
        z = _nn.to_table(as_matrix(Z, what="Z", n_features=self.dim_), self.device_)
        for m in self._saved_modules().values():
            m.eval()
        return self.scaler_.inverse(_nn.apply_in_batches(self._decode_t, z))

    def _decode_t(self, z: torch.Tensor) -> torch.Tensor:
        return self._output(self.decoder_(z))

    def _output(self, out: torch.Tensor) -> torch.Tensor:
        """The decoder's output as rows: probabilities for ``loss="bce"`` (it returns logits), else as is."""
        return torch.sigmoid(out) if self.loss == "bce" else out

    def reconstruct(self, X) -> np.ndarray:
        """Rows rebuilt from their codes (the latent mean for the VAE), in the original units."""
        table = self._prepare(X)
        out = _nn.apply_in_batches(lambda t: self._decode_t(self._moments(t)[0]), table)
        return self.scaler_.inverse(out)

    def interpolate(self, a, b, steps: int = 8) -> np.ndarray:
        """``steps`` rows decoded along the straight line between the codes of rows ``a`` and ``b``
        (both ends included), in the original units: shape (steps, n_features)."""
        steps = check_int("AutoEncoder.interpolate", "steps", steps, 2)
        self._check_fitted()
        ends = self.encode(np.vstack([self._one_row(a, "a"), self._one_row(b, "b")]))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[:, None]
        return self.decode((1 - t) * ends[0] + t * ends[1])

    def _one_row(self, row, what: str) -> np.ndarray:
        """``row`` (n_features values, or one row of them) as a (1, n_features) array; InputError otherwise."""
        arr = as_vectors(row, what=f"AutoEncoder.interpolate: {what}", allow_1d=True)
        if arr.shape != (1, self.n_features_):
            raise InputError(f"AutoEncoder.interpolate: {what} must be one row of {self.n_features_} features "
                             f"(as in fit); got shape {np.shape(row)}")
        return arr

    def sample(self, n: int, seed=None) -> np.ndarray:
        """Draw ``n`` new rows from a fitted VAE (prior samples through the decoder), in original units."""
        self._check_fitted()
        if self.variant != "vae":
            raise InputError(f"sample() needs variant='vae'; this AutoEncoder is {self.variant!r}")
        n = check_int("AutoEncoder.sample", "n", n, 1)
        gen = _nn.make_generator(self.seed if seed is None else check_seed("AutoEncoder.sample", seed), self.device_)
        z = torch.randn((n, self.dim_), generator=gen, device=self.device_)
        return self.scaler_.inverse(_nn.apply_in_batches(self._decode_t, z))
