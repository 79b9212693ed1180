"""Model selection for recommenders: one table over several models, k-fold cross-validation and
a small grid search.

    table = compare({"popularity": pop, "item-knn": knn, "als": als}, test, k=10)
    str(table)                            # recall, NDCG, MAP, coverage (and RMSE with ratings)
    cv = cross_validate(ek.MatrixFactorization(dim=32), inter, folds=5)   # mean and sd per metric
    best = grid_search(ek.MatrixFactorization(), {"dim": [32, 64], "reg": [0.01, 0.1]}, inter)
    best.params, best.score, str(best)    # the winner and every setting's scores

Metrics are those of :mod:`embedkit.evaluate.ranking` (recall divides by min(k, n_test); seen
items excluded). coverage@k = distinct items in anyone's top-k / items in the catalogue
(``test.item_keys``). Folds split the (user, item) pairs at random (seeded) into ``folds`` parts,
each the test set once; every fold keeps the full user and item vocabularies, so an item or user
with no training pair is still known (its scores come from the model's baseline). RMSE, for models
whose ``feedback`` is "explicit", scores every test pair (unknown ones from the baseline, as
Surprise's ``cross_validate`` does).
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np

from .._validation import check_int
from ..errors import InputError
from .ranking import recommended_lists, rmse, topk_metrics

log = logging.getLogger(__name__)

__all__ = ["Comparison", "GridResult", "compare", "cross_validate", "folds", "grid_search"]

_METRICS = ("recall", "ndcg", "map", "coverage")


class Comparison:
    """The result of :func:`compare`: ``rows`` ({"model", metric: value}), printed as a table."""

    def __init__(self, rows: list[dict], k: int):
        self.rows = rows
        self.k = k

    def __getitem__(self, name: str) -> dict:
        for row in self.rows:
            if row["model"] == name:
                return row
        raise KeyError(name)

    def to_markdown(self) -> str:
        cols = [c for c in self.rows[0] if c != "model"]
        head = "| model | " + " | ".join(f"{c}@{self.k}" if c in _METRICS else c for c in cols) + " |"
        lines = [head, "|---" * (len(cols) + 1) + "|"]
        for row in self.rows:
            cells = [("-" if row[c] is None else f"{row[c]:.4f}") for c in cols]
            lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    __str__ = to_markdown

    def __repr__(self) -> str:
        return f"Comparison(k={self.k}, models={[r['model'] for r in self.rows]})"


def _is_explicit(model) -> bool:
    params = getattr(model, "params_", None) or {}
    return params.get("feedback") == "explicit" and hasattr(model, "predict")


def _check_data(data, what: str) -> None:
    from ..data.interactions import Interactions

    if not isinstance(data, Interactions):
        raise InputError(f"{what} must be an ek.Interactions (e.g. from Interactions.split or from_csv); "
                         f"got {type(data).__name__}")


def score(model, test, k: int = 10) -> dict:
    """recall, ndcg, map and coverage at ``k`` of one fitted model on ``test`` (and rmse for ratings)."""
    k = check_int("compare", "k", k, 1)
    _check_data(test, "compare(): the test set")
    recommended, relevant = recommended_lists(model, test, k)
    out = {m: v for m, v in topk_metrics(recommended, relevant, k).items() if m in _METRICS}
    out["coverage"] = len({i for recs in recommended for i in recs}) / max(len(test.item_keys), 1)
    out["rmse"] = rmse(model, test, unknown="baseline") if _is_explicit(model) else None
    return out


def compare(models: dict, test, k: int = 10) -> Comparison:
    """One row per fitted model of ``models`` ({name: model}) with recall, NDCG, MAP and coverage
    at ``k`` on ``test`` (and RMSE for explicit-feedback models); ``print`` it for a table.
    Every model needs ``has_user`` and ``recommend_batch`` (MatrixFactorization, Popularity,
    ItemKNN, HybridMF...)."""
    if not isinstance(models, dict) or not models:
        raise InputError("compare() takes a non-empty dict {name: fitted model}")
    rows = []
    for name, model in models.items():
        rows.append({"model": str(name), **score(model, test, k)})
    if all(r["rmse"] is None for r in rows):
        for r in rows:
            r.pop("rmse")
    return Comparison(rows, k)


def folds(interactions, n_folds: int = 5, seed: int = 0):
    """``n_folds`` (train, test) pairs of Interactions: the pairs shuffled (seeded) and dealt into
    ``n_folds`` parts, each the test set once; both sides keep the full vocabularies."""
    from ..data.interactions import Interactions

    n_folds = check_int("cross_validate", "folds", n_folds, 2)
    _check_data(interactions, "cross_validate(): the interactions")
    if interactions.nnz < n_folds:
        raise InputError(f"cross_validate needs at least {n_folds} interactions for {n_folds} folds; "
                         f"got {interactions.nnz}")
    part = np.random.default_rng(seed).permutation(interactions.nnz) % n_folds
    ts = interactions.timestamps
    for f in range(n_folds):
        sides = []
        for mask in (part != f, part == f):
            sides.append(Interactions(interactions.user_keys, interactions.item_keys, interactions.users[mask],
                                      interactions.items[mask], interactions.values[mask],
                                      None if ts is None else ts[mask]))
        yield sides[0], sides[1]


def _fresh(model, params: dict | None = None):
    """A new, unfitted model: ``model``'s class with its parameters plus ``params``; a class or
    another factory (any callable that is not a model) is called with ``params``."""
    if isinstance(model, type) or (callable(model) and not hasattr(model, "get_params")):
        return model(**(params or {}))
    return type(model)(**{**model.get_params(), **(params or {})})


def _param_names(model) -> set | None:
    """The constructor parameters of ``model`` (an instance or a trainer class), None when unknown."""
    import inspect

    target = model if isinstance(model, type) else type(model) if hasattr(model, "get_params") else None
    if target is None:
        return None
    try:
        sig = inspect.signature(target.__init__)
    except (TypeError, ValueError):
        return None
    return {n for n, p in sig.parameters.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _fit(model, train, fit_params: dict | None) -> None:
    model.fit(train, show_progress=False, **(fit_params or {}))


def cross_validate(model, interactions, folds: int = 5, k: int = 10, seed: int = 0,
                   params: dict | None = None, fit_params: dict | None = None) -> dict:
    """k-fold cross-validation of an (unfitted) model: a fresh copy of ``model`` (its class
    with its parameters, plus ``params``; or ``model(**params)`` for a class or factory) is
    fitted on each fold's train side (``fit(train, **fit_params)``, e.g. ``{"item_features":
    feats}`` for HybridMF) and scored on its test side. Returns {metric: mean, metric + "_sd":
    sd, "folds": [per-fold dicts]}."""
    if fit_params is not None and not isinstance(fit_params, dict):
        raise InputError(f"fit_params must be a dict of fit() keyword arguments, e.g. {{'item_features': feats}}; "
                         f"got {type(fit_params).__name__}")
    per_fold = []
    for f, (train, test) in enumerate(_folds(interactions, folds, seed), 1):
        m = _fresh(model, params)
        _fit(m, train, fit_params)
        res = score(m, test, k)
        per_fold.append(res)
        log.info("fold %d/%d: %s", f, folds, res)
    out: dict = {}
    for key in per_fold[0]:
        vals = [r[key] for r in per_fold]
        if vals[0] is None:
            continue
        out[key] = float(np.mean(vals))
        out[key + "_sd"] = float(np.std(vals))
    out["folds"] = per_fold
    return out


_folds = folds


class GridResult:
    """What :func:`grid_search` found: ``params`` (the winner), ``score``, ``metric``, ``results``
    (every setting with its mean scores), ``model`` (the winner refitted on all data, or None)."""

    def __init__(self, params, score, metric, results, model=None):
        self.params, self.score, self.metric, self.results, self.model = params, score, metric, results, model

    def to_markdown(self) -> str:
        keys = sorted({k for r in self.results for k in r["params"]})
        metrics = [m for m in ("recall", "ndcg", "map", "coverage", "rmse") if m in self.results[0]["scores"]]
        lines = ["| " + " | ".join(keys + metrics) + " |", "|---" * (len(keys) + len(metrics)) + "|"]
        for r in self.results:
            cells = [str(r["params"].get(k)) for k in keys] + [f"{r['scores'][m]:.4f}" for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + f"\nbest by {self.metric}: {self.params} ({self.score:.4f})"

    __str__ = to_markdown

    def to_meta(self) -> dict:
        """JSON-able record for a store manifest's meta ("tuned")."""
        return {"metric": self.metric, "score": self.score, "params": self.params,
                "results": [{"params": r["params"], **{m: v for m, v in r["scores"].items()}} for r in self.results]}


def grid_search(model, grid: dict, interactions, folds: int = 3, k: int = 10, metric: str | None = None,
                seed: int = 0, refit: bool = True, fit_params: dict | None = None) -> GridResult:
    """Cross-validate every combination of ``grid`` ({parameter: [values]}) and keep the best
    by ``metric`` (default "ndcg"; "rmse" for explicit feedback, lower is better). With
    ``refit`` the winner is fitted on all of ``interactions`` (``result.model``); ``fit_params``
    go to every ``fit`` (as in :func:`cross_validate`)."""
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, (list, tuple)) and v for v in grid.values()):
        raise InputError('grid_search needs a grid {parameter: [values, ...]}, e.g. {"dim": [32, 64], "reg": [0.01, 0.1]}')
    _check_data(interactions, "grid_search(): the interactions")
    names = list(grid)
    valid = _param_names(model)
    unknown = sorted(n for n in names if valid is not None and n not in valid)
    if unknown:
        raise InputError(f"grid_search: the grid names unknown parameters {unknown} of "
                         f"{getattr(model, '__name__', type(model).__name__)}; valid: {', '.join(sorted(valid))}")
    combos = [dict(zip(names, vals)) for vals in itertools.product(*(grid[n] for n in names))]
    for combo in combos:  # a bad value fails before any training
        m = _fresh(model, combo)
        if hasattr(m, "check_params"):
            m.check_params()
    feedbacks = {_fresh(model, combo).get_params().get("feedback") for combo in combos} \
        if hasattr(_fresh(model, combos[0]), "get_params") else {None}
    explicit = feedbacks == {"explicit"}
    metric = metric or ("rmse" if explicit else "ndcg")
    if metric not in ("recall", "ndcg", "map", "coverage", "rmse"):
        raise InputError(f"grid_search metric must be one of recall, ndcg, map, coverage, rmse; got {metric!r}")
    if metric == "rmse" and not explicit:
        raise InputError("grid_search metric 'rmse' needs rating models (feedback='explicit' in every setting); "
                         "use recall, ndcg, map or coverage")
    results = []
    for combo in combos:
        cv = cross_validate(model, interactions, folds=folds, k=k, seed=seed, params=combo, fit_params=fit_params)
        if metric not in cv:
            raise InputError(f"grid_search metric {metric!r} is not measured for this model (rmse needs "
                             "feedback='explicit')")
        results.append({"params": combo, "scores": {m: cv[m] for m in cv if m != "folds" and not m.endswith("_sd")}})
        log.info("grid %s: %s %.4f", combo, metric, cv[metric])
    sign = 1.0 if metric == "rmse" else -1.0
    best = min(results, key=lambda r: (sign * r["scores"][metric], combos.index(r["params"])))
    value = best["scores"][metric]
    fitted = None
    if refit:
        fitted = _fresh(model, best["params"])
        _fit(fitted, interactions, fit_params)
    return GridResult(best["params"], float(value) if not math.isnan(value) else value, metric, results, fitted)
