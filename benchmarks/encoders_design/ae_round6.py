"""ae14 sixth round (PROTOCOL.md): k = 10 (A), k = 20 (K20), K20 + isolation forest on the codes (K20F) and the
k-th-neighbour distance (KMAX), scored from one AutoEncoder() fit per set and seed; design = the 18 ADBench sets,
held out = the 21 fresh tasks of fresh_anomaly.py. Usage: python ae_round6.py design|heldout [seeds, default 0,1,2]"""
# ruff: noqa: E501
import glob
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split

import embedkit as ek
from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
torch.set_num_threads(1)
AD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "adbench")


def design_sets():
    for path in sorted(glob.glob(AD + "/*.npz")):
        with np.load(path, allow_pickle=False) as d:
            X, y = d["X"].astype(np.float32), d["y"].astype(int)
        if len(X) > 5000:
            X, _, y, _ = train_test_split(X, y, train_size=5000, stratify=y, random_state=0)
        yield os.path.basename(path)[:-4], X, y


def heldout_sets():
    from fresh_anomaly import tasks
    yield from tasks(0)


def kth(ref, q, k, exclude_self=False):
    """Distance to the k-th nearest training row (through VectorIndex, like the library's k-NN terms)."""
    n = len(ref)
    k = max(1, min(k, n - 1 if exclude_self else n))
    # the row itself stays in the search and is skipped by position (column k, not k - 1)
    dist = np.sort(_anomaly.neighbour_distances(ref, q, k + exclude_self), axis=1)
    return dist[:, k] if exclude_self else dist[:, k - 1]


def summarise(res, keys, candidates):
    """Print the overall means, the means per anomaly type (task-name suffix) and each candidate's wins / losses /
    ties against IsolationForest on the unrounded per-set means (over seeds). ``res``: set -> seed -> {key: AUC}."""
    means = {k: float(np.mean([r[k] for s in res.values() for r in s.values()])) for k in keys}
    print("MEAN", {k: round(v, 4) for k, v in means.items()})
    per_set = {n: {k: float(np.mean([r[k] for r in s.values()])) for k in keys} for n, s in res.items()}
    from fresh_anomaly import TYPES, task_type

    for kind in (*TYPES, "patches"):
        names = [n for n in per_set if task_type(n) == kind]
        if names:
            print(f"mean, {kind} ({len(names)})", {k: round(float(np.mean([per_set[n][k] for n in names])), 3) for k in keys})
    for c in candidates:
        d = np.array([per_set[n][c] - per_set[n]["IsolationForest"] for n in per_set])
        print(f"{c} vs IsolationForest: wins {int((d > 0).sum())}, losses {int((d < 0).sum())}, ties {int((d == 0).sum())}")


def main():
    which = sys.argv[1]
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2").split(",")]
    res = {}
    for name, X, y in (design_sets() if which == "design" else heldout_sets()):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
        res[name] = {}
        for seed in seeds:
            t0 = time.perf_counter()
            ae = ek.AutoEncoder(seed=seed, device="cpu")
            ae.fit(Xtr, show_progress=False)
            fit_s = time.perf_counter() - t0
            terms = {}
            for tag, ref, q in (("lat", ae.embeddings_.vectors, ae.encode(Xte)), ("inp", ae._train_rows, ae.scaler_.transform(Xte))):
                for k in (10, 20):
                    terms[f"{tag}{k}"] = (_anomaly.knn_distances(ref, ref, k, exclude_self=True), _anomaly.knn_distances(ref, q, k))
                terms[f"{tag}max10"] = (kth(ref, ref, 10, exclude_self=True), kth(ref, q, 10))
            iso = IsolationForest(random_state=seed).fit(ae.embeddings_.vectors)
            terms["isolat"] = (-iso.score_samples(ae.embeddings_.vectors), -iso.score_samples(ae.encode(Xte)))

            def ens(*tags):
                out = 0.0
                for tg in tags:
                    m, s = _anomaly.robust_scale(terms[tg][0])
                    out = out + (terms[tg][1] - m) / s
                return out / len(tags)

            forest = IsolationForest(random_state=seed).fit(Xtr)
            mu, sd = Xtr.mean(0), Xtr.std(0)
            sd[sd < 1e-8] = 1
            pca = PCA(ae.dim_, random_state=0).fit((Xtr - mu) / sd)
            Z = (Xte - mu) / sd
            cand = {"A": ens("lat10", "inp10"), "K20": ens("lat20", "inp20"), "K20F": ens("lat20", "inp20", "isolat"),
                    "KMAX": ens("latmax10", "inpmax10"), "A_lib": ae.decision_function(Xte),
                    "IsolationForest": -forest.score_samples(Xte),
                    "PCA recon.": ((pca.inverse_transform(pca.transform(Z)) - Z) ** 2).sum(1)}
            res[name][seed] = {**{k: anomaly_auc(v, yte) for k, v in cand.items()}, "fit_s": fit_s}
        mean = {k: float(np.mean([r[k] for r in res[name].values()])) for k in res[name][seeds[0]]}
        print(name, {k: round(v, 3) for k, v in mean.items()}, flush=True)
    keys = [k for k in res[next(iter(res))][seeds[0]] if k != "fit_s"]
    summarise(res, keys, ["A", "K20", "K20F", "KMAX"])
    with open(f"/tmp/ae14_round6_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
