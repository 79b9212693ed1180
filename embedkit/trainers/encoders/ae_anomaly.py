"""The anomaly detector half of :class:`AutoEncoder` (PyOD's conventions): the scores a fitted model
gives rows, the training-time state they need, and how that state is saved.

Scores (``SCORES``): reconstruction error; latent and input-space k-NN distance (searched through
:class:`embedkit.VectorIndex`); ``"combined"`` and ``"ensemble"``, two of those put on the scale of their
training scores (median / IQR) and averaged; ``"hybrid"``, an isolation forest on the scaled rows, the input
k-NN distance and an isolation forest on the rows beside their per-feature reconstruction residuals,
scaled and averaged the same way. The forests are rebuilt from arrays stored with the model (the scaled
training rows, their residuals and the seed of the fit), so nothing is pickled.
"""

from __future__ import annotations

import numpy as np
import torch

from ..._validation import check_choice
from ...errors import InputError
from . import _anomaly
from . import base as _nn

SCORES = ("ensemble", "combined", "reconstruction", "knn", "input_knn", "hybrid")

# what the detector keeps after fit: attribute -> array name in the saved model
_SAVED = (("_train_scores", "train_scores"), ("decision_scores_", "decision_scores"), ("_score_stats", "score_stats"),
          ("_train_rows", "train_rows"), ("_train_residuals", "train_residuals"))
FITTED = ("threshold_", "decision_scores_", "labels_", "_train_scores", "_score_stats", "_train_rows",
          "_train_residuals", "_hybrid", "_forest_seed")


class AnomalyDetector:
    """Mixin for :class:`AutoEncoder`: ``anomaly_scores``, ``decision_function``, ``predict``, ``fit_predict``
    and the state behind them (``threshold_``, ``decision_scores_``, ``labels_``)."""

    # ------------------------------------------------------------------ fit
    def _fit_anomaly(self, table: torch.Tensor, recon: np.ndarray) -> None:
        """Keep what the scores need from the fitted model's training rows (``table``, scaled, with their
        reconstruction errors ``recon``) and set ``decision_scores_``, ``threshold_`` and ``labels_``."""
        n = len(table)
        self._train_scores = np.ascontiguousarray(recon)
        self._train_rows = np.ascontiguousarray(table.detach().cpu().numpy(), dtype=np.float32)  # scaled rows
        knn, inp = ((_anomaly.knn_distances(ref, ref, self.n_neighbors, exclude_self=True) if n > 1 else np.zeros(n))
                    for ref in (self.embeddings_.vectors, self._train_rows))
        self._score_stats = np.array([*_anomaly.robust_scale(self._train_scores), *_anomaly.robust_scale(knn),
                                      *_anomaly.robust_scale(inp)])
        self._forest_seed = int(self.seed)  # saved: set_params(seed=...) or load(..., seed=...) keep these forests
        if self.score == "hybrid":
            tx, tr = self._hybrid_parts()["train"]
            self.decision_scores_ = self._hybrid_combine(tx, inp, tr).astype(np.float32)
        else:
            self.decision_scores_ = self._combine(self._train_scores, knn, inp).astype(np.float32)
        self.threshold_ = _anomaly.threshold_from(self.decision_scores_, self.contamination)
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

    # ------------------------------------------------------------------ saved state
    def _anomaly_config(self) -> dict:
        config = {"threshold": float(self.threshold_)}
        if "_forest_seed" in self.__dict__:
            config["forest_seed"] = int(self._forest_seed)
        return config

    def _anomaly_arrays(self) -> dict:
        return {name: getattr(self, attr) for attr, name in _SAVED if attr in self.__dict__}

    def _load_anomaly(self, arrays: dict, config: dict) -> None:
        for attr, name in (("_train_scores", "train_scores"), ("_train_rows", "train_rows"),
                           ("_train_residuals", "train_residuals")):
            if name in arrays:
                setattr(self, attr, np.asarray(arrays[name], dtype=np.float32))
        if "forest_seed" in config:  # absent in files written before score="hybrid": the model's seed is used
            self._forest_seed = int(config["forest_seed"])
        if "score_stats" in arrays and "decision_scores" in arrays:
            stats = np.asarray(arrays["score_stats"], dtype=np.float64)
            # files written before the input k-NN score kept 4 statistics (no input-space scale)
            self._score_stats = np.concatenate([stats, [np.nan, np.nan]])[:6] if len(stats) < 6 else stats
            self.decision_scores_ = np.asarray(arrays["decision_scores"], dtype=np.float32)
            self.threshold_ = float(config.get("threshold", _anomaly.threshold_from(self.decision_scores_,
                                                                                    self.contamination)))
            self.labels_ = (self.decision_scores_ > self.threshold_).astype(np.int64)

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
        averaged) or ``"elbo"`` (VAE only: the negative ELBO
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
        if method == "hybrid":
            parts = self._hybrid_parts()
            rows = table.detach().cpu().numpy()
            inp = _anomaly.knn_distances(self._train_rows, rows, self.n_neighbors)
            tx = -parts["forest"].score_samples(rows)
            tr = -parts["residual_forest"].score_samples(np.hstack([rows, self._residuals(table)]))
            return self._hybrid_combine(tx, inp, tr).astype(np.float32)
        out = _nn.apply_in_batches(lambda t: torch.cat([self._embed(t), self._scores(t, "reconstruction")[:, None]], 1),
                                   table)
        inp = None
        if method in ("input_knn", "ensemble"):
            self._need_train_rows(method)
            inp = _anomaly.knn_distances(self._train_rows, table.detach().cpu().numpy(), self.n_neighbors)
            if method == "input_knn":
                return inp.astype(np.float32)
        knn = _anomaly.knn_distances(self.embeddings_.vectors, out[:, :-1], self.n_neighbors)
        if method == "knn":
            return knn.astype(np.float32)
        return self._combine(out[:, -1], knn, inp, method).astype(np.float32)

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

    def _combine(self, recon: np.ndarray, knn: np.ndarray, inp: np.ndarray | None, score: str | None = None) -> np.ndarray:
        score = score or self.score
        raw = {"reconstruction": recon, "knn": knn, "input_knn": inp}
        if score in raw:
            return np.asarray(raw[score], dtype=np.float64)
        mr, sr, mk, sk, mi, si = (float(v) for v in self._score_stats)
        if score == "combined":
            return 0.5 * ((recon - mr) / sr + (knn - mk) / sk)
        return 0.5 * ((knn - mk) / sk + (inp - mi) / si)

    def _residuals(self, table: torch.Tensor) -> np.ndarray:
        """Scaled rows minus their reconstructions (from the code, or the latent mean for the VAE), per feature."""
        for m in self._saved_modules().values():
            m.eval()
        return _nn.apply_in_batches(lambda t: t - self._decode_t(self._moments(t)[0]), table)

    def _hybrid_parts(self) -> dict:
        """The two isolation forests of ``score="hybrid"``, their training rows' scores and the robust scale
        (median, spread) of those scores. Built once per fitted or loaded model from the scaled training rows
        and their residuals (both stored with the model), with ``random_state`` = the seed of the fit (stored
        too): the same forests after ``load``, and no pickle."""
        if "_hybrid" in self.__dict__:
            return self._hybrid
        self._need_train_rows("hybrid")
        from sklearn.ensemble import IsolationForest

        rows = self._train_rows
        if "_train_residuals" not in self.__dict__:
            self._train_residuals = np.ascontiguousarray(self._residuals(torch.as_tensor(rows, device=self.device_)),
                                                         dtype=np.float32)
        both = np.hstack([rows, self._train_residuals])
        seed = int(self.__dict__.get("_forest_seed", self.seed))
        forest = IsolationForest(random_state=seed).fit(rows)
        residual_forest = IsolationForest(random_state=seed).fit(both)
        tx, tr = -forest.score_samples(rows), -residual_forest.score_samples(both)
        self._hybrid = {"forest": forest, "residual_forest": residual_forest, "train": (tx, tr),
                        "stats": (*_anomaly.robust_scale(tx), *_anomaly.robust_scale(tr))}
        return self._hybrid

    def _hybrid_combine(self, tx: np.ndarray, inp: np.ndarray, tr: np.ndarray) -> np.ndarray:
        mx, sx, mr, sr = self._hybrid["stats"]
        mi, si = (float(v) for v in self._score_stats[4:6])
        return ((tx - mx) / sx + (inp - mi) / si + (tr - mr) / sr) / 3.0

    def _need_train_rows(self, method: str) -> None:
        """The input-space scores need the scaled training rows (and their scale), which files written before
        ``"input_knn"`` lack."""
        if "_train_rows" not in self.__dict__ or not np.isfinite(self._score_stats).all():
            raise InputError(f"this AutoEncoder was saved without its scaled training rows, which method={method!r} "
                             "needs; use method='combined' or 'reconstruction', or refit")
