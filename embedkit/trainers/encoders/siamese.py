"""SiameseEncoder: learn a metric space for feature rows from class labels or similar/dissimilar pairs."""

from __future__ import annotations

import copy
import logging
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ... import distributed as ek_dist
from ..._device import resolve_device
from ..._validation import BATCH_SIZE, DEVICE, DIM, EPOCHS, LR, SEED, Bool, InstanceOf, Interval, IntTuple, NoneOk, Options
from ...data.features import as_labels, as_matrix, as_pairs
from ...embeddings import Embeddings
from ...errors import IgnoredParameterWarning, InputError
from . import base as _nn
from ._batches import _LabelBatches, _PairBatches, check_labels, check_pairs
from .losses import MINERS, contrastive_loss, info_nce_loss, mine_triplets, pairwise_distances, triplet_margin_loss

log = logging.getLogger(__name__)

__all__ = ["SiameseEncoder", "LOSSES"]

LOSSES = ("contrastive", "triplet", "infonce")
SELF_SUPERVISED = ("contrastive", "predictive")
_DEFAULT_MARGIN = {"contrastive": 1.0, "triplet": 0.2, "infonce": None}
# Held-out rows that the default's validation (PCA space, early stopping, input_share) scores by MAP@R: exact
# MAP@R costs (rows x rows) and ranks up to a class's size per row, so a larger held-out fold is scored on at
# most this many of its rows, drawn per class (embedkit.evaluate.encoders.scored_sample).
SCORED_ROWS = 5000


class SiameseEncoder(_nn.TableModel):
    """A Siamese network: one encoder applied to both sides of a pair, trained so similar rows land close.

    Implements the contrastive loss of Hadsell, Chopra and LeCun (CVPR 2006), the triplet margin
    loss (Schroff et al., FaceNet 2015) and InfoNCE / NT-Xent (van den Oord et al. 2018; Chen et al.
    2020); see :mod:`embedkit.trainers.encoders.losses`. Inductive: :meth:`encode` maps rows never seen in fit.

    Parameters
    ----------
    dim : int, default 32
        Size of the embedding.
    loss : {"auto", "contrastive", "triplet", "infonce"}, default "auto"
        "auto": InfoNCE with class labels ``y`` (rows of the anchor's class are left out of the
        denominator; softmax losses keep more of the feature space than margin losses and
        retrieve unseen classes better, see benchmarks/RESULTS.md), the contrastive loss with
        explicit ``pairs`` (it is the one that uses the dissimilar pairs). The loss used is ``loss_``.
    margin : float or None, default None
        Margin of the contrastive (default 1.0) or triplet (default 0.2) loss; unused by InfoNCE.
    temperature : float, default 0.1
        Softmax temperature of InfoNCE; unused by the other losses.
    hidden : tuple of int or "auto", default "auto"
        Hidden layer widths of the built-in encoder (ReLU between layers; () = one linear map).
        "auto": () with class labels ``y`` (a linear map started at PCA, see ``input_share``; it
        transfers to unseen classes better than an MLP, see benchmarks/RESULTS.md), (256, 128)
        with ``pairs`` or self-supervised. The widths used are ``hidden_``.
    encoder : torch.nn.Module or None, default None
        Any module mapping (batch, n_features) float32 rows to (batch, dim); replaces the MLP.
        It is copied in fit, so the module passed in keeps its initial weights; those weights
        (pre-trained or freshly initialised) are the starting point, so ``seed`` does not set
        them: call ``torch.manual_seed`` before building the module for a reproducible run.
    epochs : int, default 20
        Passes over the rows (label mode: every row is an anchor once) or over the pairs; with
        ``early_stopping`` the most tried. The number trained is ``epochs_``.
    batch_size : int, default 256
        Rows per step (label mode: half anchors, half their sampled positives; at least 4) or
        pairs per step (InfoNCE: at least 2, the other pairs of the batch are the negatives).
    lr : float, default 1e-3
        Adam learning rate.
    miner : {"random", "hard", "semihard"}, default "random"
        How positives/negatives are chosen inside a batch (contrastive and triplet losses, label
        mode): random = each row's sampled same-class partner and a random other-class row;
        hard = farthest positive and closest negative in the batch (Hermans et al. 2017);
        semihard = the closest negative farther than the positive (Schroff et al. 2015).
        InfoNCE uses every other row of the batch and ignores it; explicit pairs need "random".
    normalize : bool, default True
        L2-normalise the embeddings (distances on the unit sphere; cosine search fits them).
    standardize : bool, default True
        Learn per-column mean/std in fit and apply them to every input (stored with the model).
    weight_decay : float, default 0.0
        Adam weight decay (L2 penalty).
    input_share : float or "auto", default "auto"
        How the model keeps what the input knows. "auto" with a linear encoder (``hidden_ == ()``,
        the default with labels): the linear map starts at the input's top ``dim`` principal axes
        (before training the embedding is PCA) of the scaled rows or the rows in their own units
        (``skip_space_``), whichever retrieves held-out classes better (class-disjoint
        cross-validation as ``early_stopping``; scaled below 4 classes). Otherwise, the weight w
        (0..1) of a skip path: part of the embedding is the input's top principal components (fixed
        in fit, saved), the rest the trained encoder (at least 2 coordinates); with ``normalize``
        cosine is ``w * cos(PCA part) + (1 - w) * cos(learned part)``. A float w uses ``round(w * dim)``
        PCA coordinates; "auto" (with an MLP): ``dim // 2``, w (0, 0.25, 0.5, 0.75, 0.9) and the
        PCA's space chosen by MAP@R on a third of the classes held out of a first run (else 0.5,
        scaled). A metric loss alone keeps only the directions that separate the training classes,
        which loses classes never seen in fit. 0 turns the skip path and the PCA start off;
        unused with a custom ``encoder``. Used: ``input_share_`` (0 with the PCA start, ``pca_start_``).
    early_stopping : bool, default True
        With labels of at least 4 classes and the PCA-started linear encoder (the default), the
        epochs (0 to ``epochs``; 0 keeps the PCA) are chosen by class-disjoint cross-validation:
        3 folds of classes (2 below 6 classes), a probe run per fold trains on the others and
        scores MAP@R of the fold's unseen classes after every epoch; the model then trains on all
        rows for the best mean (``validation_curve_`` from epoch 0; a fit takes up to 3x longer).
    self_supervised : {"contrastive", "predictive"}, default "contrastive"
        Training without labels or pairs (``fit(X)``): "contrastive" = InfoNCE between two
        corrupted views of each row (SCARF, Bahri et al., ICLR 2022: a random ``corruption``
        share of the features replaced by values of the same feature from random rows; with
        ``image_shape`` also a random shift of up to one pixel); "predictive" = a joint-embedding
        predictive objective in the spirit of I-JEPA (Assran et al., CVPR 2023): a context
        encoder sees the row with a ``corruption`` share of features masked and a predictor maps
        its output to the embedding of the full row by a target encoder, an exponential moving
        average (momentum ``ema``) of the context encoder; the target encoder gives the vectors.
    corruption : float, default 0.6
        Share of features corrupted (contrastive) or masked (predictive) per view.
    ema : float, default 0.99
        Momentum of the target encoder (predictive mode).
    image_shape : tuple of int or None, default None
        (H, W) or (C, H, W) of rows that are flattened images: the contrastive views also shift.
    seed : int, default 0
    device : "auto", "cpu", "cuda" or "cuda:N", default "auto"

    Raises
    ------
    InputError
        Bad parameter values (in fit), bad inputs (NaN, wrong shapes, label counts), or a custom
        encoder that does not map (batch, n_features) to (batch, dim).

    Warns IgnoredParameterWarning (once, in fit) for a non-default parameter the settings do not use.
    """

    _module_params = ("encoder",)
    _parameter_constraints = {
        "dim": DIM,
        "loss": [Options("auto", *LOSSES)],
        "margin": [Interval(float, 0.0, None, closed="neither"), NoneOk()],
        "temperature": [Interval(float, 0.0, None, closed="neither")],
        "hidden": [IntTuple(1, "an int or a tuple of ints >= 1 (layer widths, e.g. (256, 128))"), Options("auto")],
        "encoder": [InstanceOf("torch.nn.Module"), NoneOk()],
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "lr": LR,
        "miner": [Options(*MINERS)],
        "normalize": [Bool()],
        "standardize": [Bool()],
        "weight_decay": [Interval(float, 0.0, None)],
        "input_share": [Interval(float, 0.0, 1.0, closed="left"), Options("auto")],
        "early_stopping": [Bool()],
        "self_supervised": [Options(*SELF_SUPERVISED)],
        "corruption": [Interval(float, 0.0, 1.0, closed="right")],
        "ema": [Interval(float, 0.0, 1.0, closed="left")],
        "image_shape": [IntTuple(1, "(H, W) or (C, H, W) ints >= 1"), NoneOk()],
        "seed": SEED,
        "device": DEVICE,
    }

    def __init__(self, dim=32, loss="auto", margin=None, temperature=0.1, hidden="auto", encoder=None,
                 epochs=20, batch_size=256, lr=1e-3, miner="random", normalize=True, standardize=True,
                 weight_decay=0.0, input_share="auto", early_stopping=True, self_supervised="contrastive",
                 corruption=0.6, ema=0.99, image_shape=None, seed=0, device="auto"):
        self.dim = dim
        self.loss = loss
        self.margin = margin
        self.temperature = temperature
        self.hidden = hidden
        self.encoder = encoder
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.miner = miner
        self.normalize = normalize
        self.standardize = standardize
        self.weight_decay = weight_decay
        self.input_share = input_share
        self.early_stopping = early_stopping
        self.self_supervised = self_supervised
        self.corruption = corruption
        self.ema = ema
        self.image_shape = image_shape
        self.seed = seed
        self.device = device

    # ------------------------------------------------------------------ checks
    def _resolved_loss(self, labelled: bool | None = None) -> str:
        """The loss in use: ``loss_`` once fitted; "auto" is InfoNCE with labels, contrastive with pairs."""
        if labelled is None and "loss_" in self.__dict__:  # fitted: what it was trained with, whatever set_params did
            return self.loss_
        if self.loss != "auto":
            return self.loss
        return "contrastive" if labelled is None else "infonce" if labelled else "contrastive"

    def _ignored_params(self) -> dict:
        ignored = {}
        loss = self._resolved_loss()
        how = f"loss={self.loss!r}" + (f" ({loss} here)" if self.loss == "auto" else "")
        if loss == "infonce":
            ignored["margin"] = f"with {how} (used by 'contrastive' and 'triplet')"
            ignored["miner"] = f"with {how} (InfoNCE uses every other row of the batch as a negative)"
        else:
            ignored["temperature"] = f"with {how} (used by 'infonce')"
        if self.encoder is not None:
            ignored["hidden"] = "when a custom encoder module is given (it replaces the MLP)"
            if self.input_share != 0:
                ignored["input_share"] = "when a custom encoder module is given (its output is the embedding)"
        if self.encoder is not None or not self.__dict__.get("pca_start_", True):
            ignored["early_stopping"] = "unless the encoder is the linear map started at PCA (hidden=(), input_share='auto')"
        if self.self_supervised != "predictive":
            ignored["ema"] = "unless self_supervised='predictive' (the target encoder's momentum)"
        return ignored

    def _margin(self) -> float | None:
        return _DEFAULT_MARGIN[self._resolved_loss()] if self.margin is None else float(self.margin)

    @property
    def margin_(self) -> float | None:
        """The margin in use (the loss's default when ``margin`` is None; None for InfoNCE)."""
        self._check_fitted()
        return self._margin()

    # ------------------------------------------------------------------ model
    _fitted_names = (*_nn.TableModel._fitted_names, "skip_dims_", "skip_", "input_share_", "skip_space_", "loss_",
                     "hidden_", "pca_start_", "epochs_", "validation_curve_")

    def _hidden(self, labelled: bool) -> tuple[int, ...]:
        """The hidden widths in use: ``hidden``, or for "auto" () with labels and (256, 128) otherwise."""
        if self.hidden == "auto":
            return () if labelled else (256, 128)
        return _nn.hidden_widths(self.hidden)

    def _work_per_step(self, args: tuple, kwargs: dict) -> int | None:  # the base's estimate, hidden="auto" resolved
        model = copy.copy(self)
        model.hidden = self._hidden(labelled=(args[1] if len(args) > 1 else kwargs.get("y")) is not None)
        return super(SiameseEncoder, model)._work_per_step(args, kwargs)

    def _skip_dims(self, n_features: int, n_rows: int | None = None) -> int:
        if self.encoder is not None or self.input_share == 0 or self.__dict__.get("pca_start_"):
            return 0
        share = 0.5 if self.input_share == "auto" else float(self.input_share)
        k = min(int(round(share * self.dim)), self.dim - 2, n_features)  # >= 2 learned coordinates
        return max(0, k if n_rows is None else min(k, n_rows))

    def _build_modules(self, n_features: int) -> None:
        k = self.__dict__.get("skip_dims_", 0)
        if self.encoder is not None:
            self.model_ = copy.deepcopy(self.encoder)
        elif self.__dict__.get("pca_start_"):  # a linear map without bias, started at the principal axes
            self.model_ = nn.Sequential(nn.Linear(n_features, self.dim, bias=False))
        else:
            self.model_ = _nn.mlp([n_features, *self.__dict__.get("hidden_", self._hidden(False)), self.dim - k])
        if k:
            self.skip_ = nn.Linear(n_features, k, bias=False).requires_grad_(False)

    def _saved_modules(self) -> dict[str, nn.Module]:
        mods = {"encoder": self.model_}
        if self.__dict__.get("skip_dims_", 0):
            mods["skip"] = self.skip_
        return mods

    def _learned(self, table: torch.Tensor, module=None) -> torch.Tensor:
        z = (module or self.model_)(table)
        return F.normalize(z, dim=1) if self.normalize else z

    def _embed(self, table: torch.Tensor) -> torch.Tensor:
        z = self._learned(table)
        if not self.__dict__.get("skip_dims_", 0):
            return z
        p = self.skip_(table)
        if not self.normalize:
            return torch.cat([p, z], dim=1)
        w = float(self.input_share_)
        return torch.cat([math.sqrt(w) * F.normalize(p, dim=1), math.sqrt(1.0 - w) * z], dim=1)

    def _init_skip(self, table: torch.Tensor, space: str = "scaled") -> None:
        """The skip path's weights: the top principal axes of the training rows, in the scaled
        space or (``space="raw"``) in the input's own units (applied to the scaled rows)."""
        scale = torch.as_tensor(self.scaler_.scale, dtype=torch.float64, device=table.device)
        x = table.double() * (scale if space == "raw" else 1.0)
        self.skip_.weight.copy_(_principal_axes(x, self.skip_dims_) * (scale if space == "raw" else 1.0))

    def _state_config(self) -> dict:
        return {**super()._state_config(), "skip_dims": int(self.__dict__.get("skip_dims_", 0)),
                "input_share": float(self.__dict__.get("input_share_", 0.0)),
                "skip_space": self.__dict__.get("skip_space_", "scaled"), "loss": self._resolved_loss(),
                "hidden": list(self.hidden_), "pca_start": bool(self.pca_start_), "epochs": int(self.epochs_),
                "validation_curve": [float(v) for v in self.validation_curve_]}

    def _load_state(self, arrays: dict, config: dict) -> None:
        self.skip_dims_ = int(config.get("skip_dims", 0))
        self.input_share_ = float(config.get("input_share", 0.0))
        self.skip_space_ = str(config.get("skip_space", "scaled"))
        # files written before loss="auto" existed used the loss given as a parameter
        self.loss_ = str(config.get("loss", self.loss if self.loss != "auto" else "contrastive"))
        # files written before hidden="auto" and the PCA start: the hidden widths given as a parameter
        self.hidden_ = tuple(config["hidden"]) if "hidden" in config else self._hidden(False)
        self.pca_start_ = bool(config.get("pca_start", False))
        self.epochs_ = int(config.get("epochs", len(self.__dict__.get("loss_history_", ())) or self.epochs))
        self.validation_curve_ = [float(v) for v in config.get("validation_curve", [])]
        super()._load_state(arrays, config)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, pairs=None, keys=None, *, show_progress=True, callback=None) -> Embeddings:
        """Train on rows ``X`` (n, d) with class labels ``y``, explicit ``(i, j, similar)`` ``pairs``,
        or neither: self-supervised (``self_supervised``: SCARF contrastive views or the predictive,
        I-JEPA-like objective).

        Returns the :class:`~embedkit.Embeddings` of the training rows, keyed by ``keys`` (strings;
        default: a pandas index, else "0".."n-1"). ``callback(epoch, loss)`` runs after each epoch
        (epochs count from 1). Raises InputError for bad parameters or inputs; a fit that fails (bad rows, keys,
        labels or pairs, an error or interrupt during training) leaves a previous fit as it was.
        """
        self._validate_params(warn=False)  # what is ignored depends on the loss "auto" resolves to (in _fit)
        self._check_callback("SiameseEncoder", callback)
        if y is not None and pairs is not None:
            raise InputError("SiameseEncoder.fit needs at most one of y (a class label per row) or "
                             "pairs (rows (i, j, similar)); got both (give neither to train self-supervised)")
        checked = scaler = None  # a probe's inputs were checked by the fit that made it
        if self.__dict__.get("_preset_space") is None:
            checked, keys = self._check_inputs(X, y, pairs, keys)  # before the previous fit is dropped
            if self.encoder is not None:  # a custom module that cannot run fails now, with the previous fit in place
                scaler = self._try_modules(checked, lambda rows, copy_of: _nn.check_encoder_output(
                    "SiameseEncoder", copy_of(self.encoder), rows, self.dim))
        return self._train_keeping_fit(lambda: self._fit(X, y, pairs, keys, show_progress, callback, checked, scaler))

    def _choose_share(self, X, y) -> tuple[float, str]:
        """input_share="auto": the skip-path weight, and whether its PCA runs on the scaled rows or
        in the input's own units, that retrieve held-out classes best (see the class doc)."""
        from ...evaluate.encoders import map_at_r, scored_sample

        if self.input_share != "auto":
            return float(self.input_share), "scaled"
        if y is None or self.encoder is not None or not self.normalize:
            return 0.5, "scaled"
        arr, lab = as_matrix(X), as_labels(y, len(X))
        classes = np.unique(lab)
        if len(classes) < 4:
            return 0.5, "scaled"
        rng = np.random.default_rng(self.seed)
        held = rng.choice(classes, max(2, len(classes) // 3), replace=False)
        val = np.isin(lab, held)
        scored = scored_sample(val, lab, SCORED_ROWS, self.seed)
        probe = SiameseEncoder(**{**self.get_params(), "input_share": 0.5})
        with warnings.catch_warnings():  # the model itself has warned about ignored parameters
            warnings.simplefilter("ignore", IgnoredParameterWarning)
            probe.fit(arr[~val], lab[~val], show_progress=False)
        k = probe.skip_dims_
        if not k:
            return 0.5, "scaled"
        learned = probe.encode(arr[scored])[:, k:] * math.sqrt(2.0)  # unit rows (the probe weighs them sqrt(0.5))
        best, best_map = (0.5, "scaled"), -1.0
        try:
            for space in ("scaled", "raw") if self.standardize else ("scaled",):  # the same without standardize
                p = self._pca_rows(arr[~val], arr[scored], space, k)
                p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
                for w in (0.0, 0.25, 0.5, 0.75, 0.9):
                    score = map_at_r(np.hstack([math.sqrt(w) * p, math.sqrt(1 - w) * learned]).astype(np.float32),
                                     lab[scored])
                    if score > best_map + 1e-9:
                        best, best_map = (w, space), score
        except InputError as err:  # e.g. every held-out class has one row: nothing to score
            log.warning("SiameseEncoder: input_share='auto' cannot score the held-out classes (%s); using 0.5", err)
            return 0.5, "scaled"
        log.info("SiameseEncoder: input_share='auto' chose %.2f on %s rows (MAP@R %.3f on %d held-out classes)",
                 best[0], best[1], best_map, len(held))
        return best

    def _plan(self, X, y) -> tuple[str, int, list]:
        """The PCA start's space and the epochs to train, by class-disjoint cross-validation (see the class doc)."""
        from ...evaluate.encoders import map_at_r, scored_sample

        if self.__dict__.get("_preset_space") is not None:  # a probe run of _plan: its space is given
            return self._preset_space, self.epochs, []
        arr, lab = as_matrix(X), as_labels(y, len(X)) if y is not None else np.zeros(0)
        classes, counts = np.unique(lab, return_counts=True)
        classes = classes[counts >= 2]  # the folds hold classes of 2 rows or more; single rows always train
        k = min(3, len(classes) // 2)  # folds of at least 2 classes
        if k < 2:  # no labels or too few classes
            if y is not None and len(counts) >= 4:
                _fallback(f"only {len(classes)} classes have 2 rows or more (4 needed)")
            return "scaled", self.epochs, []
        folds = [np.isin(lab, part) for part in np.array_split(np.random.default_rng(self.seed).permutation(classes), k)]
        scored = [scored_sample(v, lab, SCORED_ROWS, self.seed) for v in folds]  # each fold's rows that MAP@R scores
        spaces, curves = ("scaled", "raw") if self.standardize else ("scaled",), []
        try:
            start = {s: [map_at_r(self._pca_rows(arr[~v], arr[i], s), lab[i]) for v, i in zip(folds, scored)]
                     for s in spaces}
        except InputError as err:  # e.g. too few training rows left beside a fold
            _fallback(str(err))
            return "scaled", self.epochs, []
        space = max(spaces, key=lambda s: np.mean(start[s]))
        if not self.early_stopping:
            return space, self.epochs, []
        for v, i, first in zip(folds, scored, start[space]):
            probe = SiameseEncoder(**{**self.get_params(), "early_stopping": False})
            probe._preset_space, curve = space, [first]
            with warnings.catch_warnings():  # the model itself has warned about ignored parameters
                warnings.simplefilter("ignore", IgnoredParameterWarning)
                probe.fit(arr[~v], lab[~v], show_progress=False, callback=lambda e, loss, p=probe, i=i, c=curve:
                          c.append(map_at_r(p.encode(arr[i]), lab[i])))
            curves.append(curve)
        mean, epochs = np.mean(curves, axis=0), int(np.argmax(np.mean(curves, axis=0)))
        log.info("SiameseEncoder: early stopping chose %d epochs, %s rows (MAP@R %.3f; %.3f at 0)", epochs, space,
                 mean[epochs], mean[0])
        return space, epochs, [float(m) for m in mean]

    def _pca_rows(self, fit_rows: np.ndarray, rows: np.ndarray, space: str, k: int | None = None) -> np.ndarray:
        """``rows`` through the top ``k`` (default dim) principal axes of ``fit_rows`` (a probe's epoch 0)."""
        scaler = _nn.Standardizer.fit(fit_rows, self.standardize)
        t = torch.as_tensor(scaler.transform(fit_rows), dtype=torch.float64)
        axes = _pca_start(t, scaler.scale, space, k or self.dim)
        return (scaler.transform(rows).astype(np.float64) @ axes.double().numpy().T).astype(np.float32)

    def _check_inputs(self, X, y, pairs, keys) -> tuple[np.ndarray, list[str]]:
        """Bad rows, keys, labels, pairs or device fail here, before the cross-validation probes; distributed,
        every rank must hold the same rows, labels and pairs (one clear error on every rank otherwise).
        Returns the rows and the row keys, checked, for _start_fit."""
        ek_dist.setup(resolve_device(self.device, "SiameseEncoder"))  # joins the group under torchrun, else no-op

        def parsed():
            arr = as_matrix(X)
            return (arr, as_labels(y, arr.shape[0]) if y is not None else None,
                    as_pairs(pairs, arr.shape[0]) if pairs is not None else None)

        # a rank whose input fails raises its error; every other rank says which rank failed (none waits)
        arr, lab, prs = ek_dist.checked_on_all_ranks(parsed, "its rows, labels or pairs")
        _nn.same_input(arr, "the feature table X")
        if lab is not None:
            _nn.same_input(lab, "the labels y")
        if prs is not None:
            _nn.same_input(prs, "the pairs")

        def checked():  # the same data on every rank now (compared above), so these fail alike, except the keys
            if lab is not None:
                check_labels(lab, self.batch_size)
            if prs is not None:
                check_pairs(prs, self._resolved_loss(labelled=False), self.miner, self.batch_size)
            if self.image_shape is not None:
                shape = _nn.hidden_widths(self.image_shape)
                if len(shape) not in (2, 3) or math.prod(shape) != arr.shape[1]:
                    raise InputError(f"SiameseEncoder: image_shape={shape} must be (H, W) or (C, H, W) with as many "
                                     f"pixels as X has features ({arr.shape[1]}); fix image_shape or set it to None")
            return _nn.fit_keys("SiameseEncoder", keys, arr.shape[0], X)  # unique strings: the fit's Embeddings need them

        return arr, ek_dist.checked_on_all_ranks(checked, "its labels, pairs, options or row keys")

    def _fit(self, X, y, pairs, keys, show_progress, callback, checked, scaler=None) -> Embeddings:
        loss = self._resolved_loss(labelled=pairs is None)
        hidden = self._hidden(labelled=y is not None)
        pca_start = self.encoder is None and hidden == () and self.input_share == "auto"
        self.__dict__.update(loss_=loss, pca_start_=pca_start)  # for _ignored_params; _start_fit forgets them
        # stacklevel 7: _warn_ignored, _fit, the lambda, _train_keeping_fit, fit, its thread-policy wrapper, caller
        self._warn_ignored(self.get_params(), {**self._ignored_params(), **_self_supervised_only(y, pairs)},
                           stacklevel=7)
        if pca_start:
            (space, epochs, curve), share = self._plan(X, y), 0.0
        else:
            (share, space), epochs, curve = self._choose_share(X, y), self.epochs, []
        arr, names, table = self._start_fit(X, keys, checked, scaler)
        self.loss_, self.hidden_, self.pca_start_, self.epochs_, self.validation_curve_ = (
            loss, hidden, pca_start, epochs, curve)
        n = arr.shape[0]
        if loss == "infonce" if y is not None or pairs is not None else self.self_supervised == "contrastive":
            _nn._dist.warn_small_parts("SiameseEncoder", self.batch_size // 2 if y is not None else min(self.batch_size, n))
        gen = _nn.make_generator(self.seed, self.device_)
        self.skip_dims_ = self._skip_dims(self.n_features_, n)
        self.input_share_ = share if self.skip_dims_ else 0.0
        self.skip_space_ = space
        with _nn.seeded(self.seed, self.device_):
            self._build_modules(self.n_features_)
            for m in self._saved_modules().values():
                m.to(self.device_)
            if self.skip_dims_:
                self._init_skip(table, space)
            if pca_start:
                with torch.no_grad():
                    self.model_[0].weight.copy_(_pca_start(table, self.scaler_.scale, space, self.dim))
            if self.encoder is not None:
                _nn.check_encoder_output("SiameseEncoder", self.model_, table, self.dim)
            _nn.broadcast_modules(self)  # distributed: every rank starts from rank 0's weights
            if y is None and pairs is None:
                from .selfsup import SelfSupervised

                trainer = SelfSupervised(self, table, gen)
                history = _nn.run_epochs("SiameseEncoder", self.epochs_, trainer.one_epoch, show_progress, callback)
                trainer.finish()
                self.model_.eval()
                self.loss_history_ = history
                self.embeddings_ = Embeddings(names, _nn.apply_in_batches(self._embed, table))
                return self.embeddings_
            if y is not None:
                step_source = _LabelBatches(as_labels(y, n), self.batch_size, self.device_, gen)
            else:
                step_source = _PairBatches(as_pairs(pairs, n), n, self.batch_size, self.loss_, self.device_,
                                           gen)
            opt = torch.optim.Adam(self.model_.parameters(), lr=self.lr, weight_decay=self.weight_decay)

            def one_epoch(epoch):
                self.model_.train()
                total, count = torch.zeros((), device=self.device_), 0  # summed on the device: no sync per step
                for batch in step_source.epoch():
                    loss = self._batch_loss(table, batch, gen)
                    if _nn.no_loss(loss, opt):
                        continue
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.detach()
                    count += 1
                return float(total) / max(count, 1)

            history = _nn.run_epochs("SiameseEncoder", self.epochs_, one_epoch, show_progress, callback)
        self.model_.eval()
        self.loss_history_ = history
        self.embeddings_ = Embeddings(names, _nn.apply_in_batches(self._embed, table))
        return self.embeddings_

    def _batch_loss(self, table, batch, gen):
        kind = batch[0]
        if kind == "labels":
            _, anchors, partners, labels = batch
            if self.loss_ == "infonce":
                return info_nce_loss(self._learned(table[anchors]), self._learned(table[partners]),
                                     self.temperature, labels=labels)
            z = self._learned(table[torch.cat([anchors, partners])])
            lab = torch.cat([labels, labels])
            if self.miner == "random":  # row i and row i + h are each other's sampled positive
                h = len(anchors)
                partner_of = (torch.arange(2 * h, device=lab.device) + h) % (2 * h)
                a, p, q = mine_triplets(None, lab, "random", gen, positives=partner_of)
            else:
                a, p, q = mine_triplets(pairwise_distances(z.detach()), lab, self.miner, gen)
            if len(a) == 0:
                return None
            if self.loss_ == "triplet":
                return triplet_margin_loss(z[a], z[p], z[q], self._margin())
            ones = torch.ones(len(a), device=z.device)
            return contrastive_loss(z[torch.cat([a, a])], z[torch.cat([p, q])], torch.cat([ones, 0 * ones]),
                                    self._margin())
        _, i, j, extra = batch
        if self.loss_ == "contrastive":
            return contrastive_loss(self._learned(table[i]), self._learned(table[j]), extra, self._margin())
        if self.loss_ == "triplet":
            return triplet_margin_loss(self._learned(table[i]), self._learned(table[j]), self._learned(table[extra]),
                                       self._margin())
        return info_nce_loss(self._learned(table[i]), self._learned(table[j]), self.temperature)


def _fallback(why: str) -> None:
    log.warning("SiameseEncoder: no class-disjoint cross-validation (%s): the PCA start uses the scaled rows "
                "and early stopping is off (all epochs train)", why)


def _principal_axes(x: torch.Tensor, k: int) -> torch.Tensor:
    """The top ``k`` principal axes (k, d) of the rows of ``x`` (float64), largest variance first, as float32."""
    x = x - x.mean(dim=0, keepdim=True)
    _, vecs = torch.linalg.eigh(x.T @ x)
    return vecs[:, -k:].flip(1).T.float()


def _pca_start(table: torch.Tensor, scale, space: str, dim: int) -> torch.Tensor:
    """The linear map's start (dim, d) on scaled rows: their top principal axes (or, "raw", those of the rows in
    their own units), scaled to a mean squared output norm of 1 (cosines unchanged). Rows past d are 0."""
    t = table.double()
    s = torch.as_tensor(scale, dtype=torch.float64, device=t.device) if space == "raw" else 1.0
    k = min(dim, t.shape[1])
    axes = _principal_axes(t * s, k).double() * s
    axes = axes / (t @ axes.T).pow(2).sum(dim=1).mean().sqrt().clamp_min(1e-12)
    return torch.cat([axes, axes.new_zeros(dim - k, t.shape[1])]).float()


def _self_supervised_only(y, pairs) -> dict:
    """``{parameter: why}`` for the self-supervised options, which a fit given labels or pairs does not use."""
    if y is None and pairs is None:
        return {}
    why = f"when fit is given {'labels y' if y is not None else 'pairs'} (used only by fit(X) without labels or pairs)"
    return {name: why for name in ("self_supervised", "corruption", "ema", "image_shape")}
