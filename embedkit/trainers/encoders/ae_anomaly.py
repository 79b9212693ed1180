"""The anomaly detector half of :class:`AutoEncoder` (PyOD's conventions): the scores a fitted model
gives rows, the training-time state they need, and how that state is saved.

Scores (``SCORES``): reconstruction error; latent and input-space k-NN distance (searched through
:class:`embedkit.VectorIndex`, or on the model's CUDA device); ``"combined"`` and ``"ensemble"``, two of
those put on the scale of their training scores (median / IQR) and averaged; ``"hybrid"``, an isolation forest
on the scaled rows, the input k-NN distance and an isolation forest on the rows beside their per-feature
reconstruction residuals, scaled and averaged the same way; ``"auto"`` (the default), those three and the
latent k-NN distance in a weighted mean (weights 1, 1, 0.25, 0.25: the autoencoder's two parts a quarter each).
The forests are rebuilt from arrays stored with the model (the scaled training rows, their residuals and the
seed of the fit), so nothing is pickled.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from ..._validation import check_choice
from ...errors import InputError
from . import _anomaly
from . import base as _nn

SCORES = ("auto", "ensemble", "combined", "reconstruction", "knn", "input_knn", "hybrid")
# the parts each combined score averages, in this order, each put on the scale of its training scores
PARTS = {"combined": ("reconstruction", "knn"), "ensemble": ("knn", "input_knn"),
         "hybrid": ("forest", "input_knn", "residual_forest"),
         "auto": ("forest", "input_knn", "knn", "residual_forest")}
# weights of a weighted mean of parts (others: equal); "auto" was chosen in round 10 of
# benchmarks/encoders_design/PROTOCOL.md and passed its two held-out suites
WEIGHTS = {"auto": (1.0, 1.0, 0.25, 0.25)}
_STATS = ("reconstruction", "knn", "input_knn")  # the parts whose (median, spread) pairs _score_stats holds


def uses_residuals(score: str) -> bool:
    """Whether ``score`` needs the training rows' reconstruction residuals (its residual forest)."""
    return "residual_forest" in PARTS.get(score, ())



# what the detector keeps after fit: attribute -> array name in the saved model
_SAVED = (("_train_scores", "train_scores"), ("decision_scores_", "decision_scores"), ("_score_stats", "score_stats"),
          ("_train_rows", "train_rows"), ("_train_residuals", "train_residuals"), ("_knn_reference", "knn_reference"))
_FILL = threading.RLock()  # one thread computes a missing k-NN scale; the others then read it
_SCORING = ("score", "n_neighbors", "contamination")  # parameters the training rows' scores depend on
_TRAINED_AS = ("variant", "loss")  # parameters a trained network's outputs depend on
FITTED = ("threshold_", "decision_scores_", "labels_", "_train_scores", "_score_stats", "_train_rows",
          "_train_residuals", "_hybrid", "_forest_seed", "_knn_reference")


class AnomalyDetector:
    """Mixin for :class:`AutoEncoder`: ``anomaly_scores``, ``decision_function``, ``predict``, ``fit_predict``
    and the state behind them (``threshold_``, ``decision_scores_``, ``labels_``)."""

    # ------------------------------------------------------------------ fit
    def _fit_anomaly(self, table: torch.Tensor, recon: np.ndarray, residuals: np.ndarray | None) -> None:
        """Keep what the scores need from the fitted model's training rows (``table``, scaled, with their
        reconstruction errors ``recon`` and, for the scores with forests, their ``residuals``) and set
        ``decision_scores_``, ``threshold_`` and ``labels_``."""
        self._train_scores = np.ascontiguousarray(recon)
        self._train_rows = np.ascontiguousarray(table.detach().cpu().numpy(), dtype=np.float32)  # scaled rows
        self._forest_seed = int(self.seed)  # saved: set_params(seed=...) or load(..., seed=...) keep these forests
        self.__dict__.pop("_knn_reference", None)
        reference = _anomaly.reference_rows(len(recon), self._forest_seed)  # above 50,000 rows: a sample
        if reference is not None:
            self._knn_reference = reference
        if uses_residuals(self.score):
            self._train_residuals = np.ascontiguousarray(residuals, dtype=np.float32)
        self._score_training_rows()

    def _score_training_rows(self) -> None:
        """``decision_scores_``, the robust scales, ``threshold_`` and ``labels_`` of the training rows for the
        current ``score``, ``n_neighbors`` and ``contamination``, from the stored training state. Only the parts
        ``score`` averages are computed; another part's scale is computed when a score first needs it."""
        self._score_stats = np.full(2 * len(_STATS), np.nan)
        self._score_stats[:2] = _anomaly.robust_scale(self._train_scores)
        need = PARTS.get(self.score, (self.score,))
        raw = {"reconstruction": self._train_scores}
        raw.update({part: self._training_part(part) for part in ("knn", "input_knn") if part in need})
        if "forest" in need:  # the forests depend on neither n_neighbors nor contamination: built once
            raw.update(self._hybrid["train"] if "_hybrid" in self.__dict__ else self._build_forests())
        self.decision_scores_ = self._combine(raw, self.score).astype(np.float32)
        self._set_threshold()

    def _training_part(self, part: str) -> np.ndarray:
        """The k-NN part ``part`` ("knn": latent codes; "input_knn": scaled rows) of every training row, which
        also sets that part's (median, spread) in ``_score_stats``."""
        if part == "input_knn":
            self._need_train_rows(part)
        codes = self.embeddings_.vectors if part == "knn" else self._train_rows
        scores = _anomaly.training_knn_distances(codes, self.n_neighbors, self.__dict__.get("_knn_reference"),
                                                 self.__dict__.get("device_"))
        stats = self._score_stats.copy()  # a new array: arrays handed out before (to_arrays) keep their values
        i = 2 * _STATS.index(part)
        stats[i:i + 2] = _anomaly.robust_scale(scores)
        self._score_stats = stats
        return scores

    def _fill_scales(self, parts) -> None:
        """Compute the scales of the k-NN ``parts`` not computed yet (once, also when threads ask together)."""
        with _FILL:
            for part in parts:
                if not np.isfinite(self._score_stats[2 * _STATS.index(part)]):
                    self._training_part(part)

    def _set_threshold(self, threshold: float | None = None) -> None:
        """``threshold_`` (given, or from ``contamination``) and the training rows' ``labels_``."""
        self.threshold_ = _anomaly.threshold_from(self.decision_scores_, self.contamination) if threshold is None \
            else float(threshold)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    # ------------------------------------------------------------------ scoring parameters changed after fit
    def set_params(self, **params):
        """Set constructor parameters (checked now); returns self. On a fitted model, a new ``score``,
        ``n_neighbors`` or ``contamination`` rescores the training rows from the stored training state:
        ``decision_scores_``, ``threshold_`` and ``labels_`` are then what a fit with them would give (the
        network is not retrained). A new ``variant`` or ``loss`` drops the fit (the network was trained for
        the old one): fit again. Other parameters apply to the next fit."""
        retrain = [k for k in _TRAINED_AS if k in params and params[k] != getattr(self, k)]
        before_trained = {k: getattr(self, k) for k in _TRAINED_AS}
        before = {k: getattr(self, k) for k in _SCORING}
        super().set_params(**params)
        if retrain and self._is_fitted():  # the network was trained for the old value: its fit no longer applies
            warnings.warn(f"AutoEncoder.set_params: the model was fitted with {retrain[0]}={before_trained[retrain[0]]!r}, "
                          f"so its fit is dropped; call fit again", UserWarning, stacklevel=2)
            self._forget_fit()
            return self
        self._rescore({k for k in _SCORING if getattr(self, k) != before[k]})
        return self

    @classmethod
    def _check_load_overrides(cls, params: dict, saved: dict, source: str) -> None:
        for name in _TRAINED_AS:
            if name in params and params[name] != saved.get(name, cls._defaults().get(name)):
                raise InputError(f"{source}: {name}={params[name]!r} cannot override the saved {saved[name]!r} (the "
                                 f"network was trained with it); load without {name}=, or fit a new AutoEncoder")

    def _after_load(self, changed: set) -> None:
        super()._after_load(changed)
        self._rescore(changed & set(_SCORING))

    def _rescore(self, changed: set) -> None:
        if not changed or "decision_scores_" not in self.__dict__:
            return
        if changed - {"contamination"}:
            if all(k in self.__dict__ for k in ("_train_scores", "_train_rows", "embeddings_")):
                self._score_training_rows()
            else:  # a file written without the training rows: the saved scores belong to the old settings
                for name in ("decision_scores_", "threshold_", "labels_"):
                    self.__dict__.pop(name, None)
                if "_score_stats" in self.__dict__:  # k-NN scales for the new n_neighbors, when first needed
                    self._score_stats = np.concatenate([self._score_stats[:2], np.full(len(self._score_stats) - 2, np.nan)])
            return
        self._set_threshold()

    # ------------------------------------------------------------------ saved state
    def _anomaly_config(self) -> dict:
        config = {"threshold": float(self.threshold_)} if "threshold_" in self.__dict__ else {}
        if "_forest_seed" in self.__dict__:
            config["forest_seed"] = int(self._forest_seed)
        return config

    def _anomaly_arrays(self) -> dict:
        if "_score_stats" in self.__dict__ and "embeddings_" in self.__dict__:  # every scale, so that any score
            self._fill_scales(["knn", "input_knn"] if "_train_rows" in self.__dict__ else ["knn"])  # reads back
        return {name: getattr(self, attr) for attr, name in _SAVED if attr in self.__dict__}

    def _load_anomaly(self, arrays: dict, config: dict) -> None:
        for attr, name in _SAVED:
            if name in ("train_scores", "train_rows", "train_residuals") and name in arrays:
                setattr(self, attr, np.asarray(arrays[name], dtype=np.float32))
        if "knn_reference" in arrays:  # a fit on more than 50,000 rows: the k-NN scores' sample of them
            ref, n = np.asarray(arrays["knn_reference"]), len(arrays.get("decision_scores", ()))
            if ref.ndim != 1 or ref.dtype.kind not in "iu" or not len(ref) or ref[0] < 0 or ref[-1] >= n \
                    or np.any(np.diff(ref) <= 0):
                raise ValueError(f"its k-NN reference rows are damaged (need increasing row numbers below {n})")
            self._knn_reference = ref.astype(np.int64)
        if "forest_seed" in config:  # absent in files written before score="hybrid": the model's seed is used
            self._forest_seed = int(config["forest_seed"])
        if "score_stats" in arrays and "decision_scores" in arrays:
            stats = np.array(arrays["score_stats"], dtype=np.float64)  # a copy: parts' scales are filled in when needed
            # files written before the input k-NN score kept 4 statistics (no input-space scale); NaN: not computed
            self._score_stats = np.concatenate([stats, [np.nan, np.nan]])[:6] if len(stats) < 6 else stats
            self.decision_scores_ = np.asarray(arrays["decision_scores"], dtype=np.float32)
            self._set_threshold(config.get("threshold"))

    def _anomaly_extras(self) -> dict:
        if "decision_scores_" in self.__dict__ and "embeddings_" in self.__dict__:
            return {"anomaly_scores": {"keys": np.array(self.embeddings_.keys, dtype=str),
                                       "scores": self._train_scores.astype(np.float32),
                                       "decision_scores": self.decision_scores_.astype(np.float32)}}
        return {}

    # ------------------------------------------------------------------ scores
    def anomaly_scores(self, X, method: str = "reconstruction") -> np.ndarray:
        """One score per row, higher = more anomalous.

        ``method``: ``"reconstruction"`` (mean reconstruction error over the scaled features),
        ``"knn"`` (mean latent distance to the ``n_neighbors`` nearest training rows),
        ``"input_knn"`` (the same between the scaled input rows), ``"combined"`` (reconstruction
        and latent k-NN on the scale of their training scores, averaged), ``"ensemble"`` (latent
        and input k-NN, scaled the same way, averaged), ``"hybrid"`` (isolation forests on the inputs and
        on the inputs beside their reconstruction residuals, and input k-NN, scaled the same way,
        averaged), ``"auto"`` (the hybrid's three parts and latent k-NN, scaled the same way, weighted 1, 1,
        0.25 and 0.25) or ``"elbo"`` (VAE only: the negative ELBO
        with the latent mean as the sample, up to a constant).
        """
        check_choice("AutoEncoder.anomaly_scores", "method", method, (*SCORES, "elbo"))
        if method == "elbo" and self.variant != "vae":
            raise InputError(f"method='elbo' needs variant='vae'; this AutoEncoder is {self.variant!r} "
                             "(use method='reconstruction')")
        table = self._prepare(X)
        for m in self._saved_modules().values():
            m.eval()
        if method in ("reconstruction", "elbo"):
            return _nn.apply_in_batches(lambda t: self._scores(t, method), table)
        if "embeddings_" not in self.__dict__ or "_score_stats" not in self.__dict__:
            raise InputError("this AutoEncoder was loaded without its training rows' codes, which the k-NN score "
                             "needs; use method='reconstruction' or refit")
        need = PARTS.get(method, (method,))
        rows = table.detach().cpu().numpy()
        raw = {}
        if {"reconstruction", "knn", "residual_forest"} & set(need):  # one pass of the network for all three
            codes, raw["reconstruction"], residuals = self._network_pass(table, "residual_forest" in need)
        if "forest" in need:
            parts = self._hybrid_parts(method)
            raw["forest"] = -parts["forest"].score_samples(rows)
            raw["residual_forest"] = -parts["residual_forest"].score_samples(np.hstack([rows, residuals]))
        reference = self.__dict__.get("_knn_reference")
        searched = (lambda codes: codes) if reference is None else (lambda codes: codes[reference])
        if "input_knn" in need:
            self._need_train_rows(method)
            raw["input_knn"] = _anomaly.knn_distances(searched(self._train_rows), rows, self.n_neighbors,
                                                      device=self.device_)
        if "knn" in need:
            raw["knn"] = _anomaly.knn_distances(searched(self.embeddings_.vectors), codes, self.n_neighbors,
                                                device=self.device_)
        return self._combine(raw, method).astype(np.float32)

    def _network_pass(self, table: torch.Tensor, residuals: bool) -> tuple:
        """One pass of the fitted network (modules in eval mode) over the scaled ``table``: the codes (the latent
        mean for the VAE), each row's reconstruction error and, with ``residuals``, the rows minus their
        reconstructions (else None), as numpy arrays."""
        d = self.dim_

        def one(t):
            code = self._embed(t)
            out = self.decoder_(code)
            parts = [code, self._row_error(out, t)[:, None]]
            return torch.cat([*parts, t - self._output(out)] if residuals else parts, dim=1)

        out = _nn.apply_in_batches(one, table)
        return out[:, :d], out[:, d], (out[:, d + 1:] if residuals else None)

    def _scores(self, t: torch.Tensor, method: str) -> torch.Tensor:
        mean, logvar = self._moments(t)
        out = self.decoder_(mean)
        err = self._row_error(out, t)
        if method == "reconstruction":
            return err
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
        return err * t.shape[1] * (1.0 if self.loss == "bce" else 0.5) + self.beta * kl

    def decision_function(self, X) -> np.ndarray:
        """Anomaly scores of rows ``X`` (higher = more anomalous), as chosen by ``score``."""
        return self.anomaly_scores(X, method=self.score)

    def predict(self, X, threshold=None) -> np.ndarray:
        """1 for rows scored above ``threshold`` (default ``threshold_``, set by ``contamination``), else 0."""
        self._check_fitted()
        cut = _anomaly.check_threshold("AutoEncoder.predict", threshold)
        if cut is None:
            if "threshold_" not in self.__dict__:
                raise InputError("this AutoEncoder was loaded without its training scores; pass threshold=")
            cut = self.threshold_
        return (self.decision_function(X) > cut).astype(np.int64)

    def fit_predict(self, X, keys=None, *, show_progress=True, callback=None) -> np.ndarray:
        """Fit on ``X`` and return its rows' labels (1 = anomaly), i.e. ``labels_``."""
        self.fit(X, keys, show_progress=show_progress, callback=callback)
        return self.labels_

    def _combine(self, raw: dict, score: str) -> np.ndarray:
        """Score ``score`` from the raw parts in ``raw``: a part alone as it is, or the (``WEIGHTS``-weighted) mean
        of ``PARTS[score]``, each scaled by the median and spread of its training scores."""
        if score not in PARTS:
            return np.asarray(raw[score], dtype=np.float64)
        weights = WEIGHTS.get(score, (1.0,) * len(PARTS[score]))
        total = None
        for part, w in zip(PARTS[score], weights):
            m, s = self._scale(part)
            v = w * (raw[part] - m) / s
            total = v if total is None else total + v
        return total / sum(weights)

    def _scale(self, part: str) -> tuple[float, float]:
        if part in _STATS:
            i = 2 * _STATS.index(part)
            if not np.isfinite(self._score_stats[i]):  # not needed by the score the training rows were scored with
                self._fill_scales([part])
            return float(self._score_stats[i]), float(self._score_stats[i + 1])
        return self._hybrid_parts()["stats"][part]

    def _residuals(self, table: torch.Tensor) -> np.ndarray:
        """Scaled rows minus their reconstructions (from the code, or the latent mean for the VAE), per feature."""
        return self._network_pass(table, True)[2]

    def _hybrid_parts(self, method: str = "hybrid") -> dict:
        """The two isolation forests of ``score="hybrid"`` and ``"auto"`` and the robust scale (median, spread) of their
        training rows' scores, built once per fitted or loaded model (see ``_build_forests``)."""
        with _FILL:  # built once, also when threads ask together
            if "_hybrid" not in self.__dict__:
                self._need_train_rows(method)
                self._build_forests()
        return self._hybrid

    def _build_forests(self) -> dict:
        """Fit the hybrid score's forests on the scaled training rows and their residuals (both stored with the
        model; the residuals computed here when absent), with ``random_state`` = the seed of the fit (stored
        too): the same forests after ``load``, and no pickle. Returns the training rows' forest scores."""
        from sklearn.ensemble import IsolationForest

        rows = self._train_rows
        if "_train_residuals" not in self.__dict__:
            self._train_residuals = np.ascontiguousarray(self._residuals(torch.as_tensor(rows, device=self.device_)),
                                                         dtype=np.float32)
        both = np.hstack([rows, self._train_residuals])
        seed = int(self.__dict__.get("_forest_seed", self.seed))
        forest = IsolationForest(random_state=seed).fit(rows)
        residual_forest = IsolationForest(random_state=seed).fit(both)
        train = {"forest": -forest.score_samples(rows), "residual_forest": -residual_forest.score_samples(both)}
        self._hybrid = {"forest": forest, "residual_forest": residual_forest, "train": train,
                        "stats": {k: _anomaly.robust_scale(v) for k, v in train.items()}}
        return train

    def _need_train_rows(self, method: str) -> None:
        """The input-space scores need the scaled training rows, which files written before ``"input_knn"``
        lack."""
        if "_train_rows" not in self.__dict__:
            raise InputError(f"this AutoEncoder was saved without its scaled training rows, which method={method!r} "
                             "needs; use method='combined' or 'reconstruction', or refit")
