"""ae14 fifth round (PROTOCOL.md): A plus Mahalanobis (global Gaussian) terms on the codes and/or the z-scored
rows, scored from one AutoEncoder() fit per set. Usage: python ae_round5.py design|heldout|all"""
# ruff: noqa: E501
import glob
import json
import os
import sys

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.model_selection import train_test_split

import embedkit as ek
from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

torch.set_num_threads(1)
AD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "adbench")


def main():
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(AD + "/*.npz"))
    design = names[::3]
    which = sys.argv[1]
    sets = design if which == "design" else names if which == "all" else [n for n in names if n not in design]
    res = {}
    for name in sets:
        with np.load(f"{AD}/{name}.npz", allow_pickle=False) as d:
            X, y = d["X"].astype(np.float32), d["y"].astype(int)
        if len(X) > 5000:
            X, _, y, _ = train_test_split(X, y, train_size=5000, stratify=y, random_state=0)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
        ae = ek.AutoEncoder(seed=0, device="cpu", score="ensemble", epochs=50)  # the default when run (before epochs="auto")
        ae.fit(Xtr, show_progress=False)
        terms = {}
        for tag, ref, q in (("lat", ae.embeddings_.vectors, ae.encode(Xte)), ("inp", ae._train_rows, ae.scaler_.transform(Xte))):
            terms["knn_" + tag] = (_anomaly.knn_distances(ref, ref, 10, exclude_self=True), _anomaly.knn_distances(ref, q, 10))
            lw = LedoitWolf().fit(ref.astype(np.float64))
            terms["mah_" + tag] = (np.sqrt(lw.mahalanobis(ref.astype(np.float64))), np.sqrt(lw.mahalanobis(q.astype(np.float64))))

        def ens(*tags):
            out = 0.0
            for tg in tags:
                m, s = _anomaly.robust_scale(terms[tg][0])
                out = out + (terms[tg][1] - m) / s
            return out / len(tags)

        cand = {"A": ens("knn_lat", "knn_inp"), "M1": ens("knn_lat", "knn_inp", "mah_lat"),
                "M2": ens("knn_lat", "knn_inp", "mah_inp"), "M3": ens("knn_lat", "knn_inp", "mah_lat", "mah_inp"),
                "diag_mah_lat": terms["mah_lat"][1], "diag_mah_inp": terms["mah_inp"][1], "diag_A_lib": ae.decision_function(Xte)}
        res[name] = {k: anomaly_auc(v, yte) for k, v in cand.items()}
        print(name, {k: round(v, 3) for k, v in res[name].items()}, flush=True)
    means = {k: float(np.mean([r[k] for r in res.values()])) for k in next(iter(res.values()))}
    print("MEAN", {k: round(v, 4) for k, v in means.items()})
    with open(f"/tmp/ae14_round5_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
