"""ae14 seventh round (PROTOCOL.md): A (the default) against MS = max(input k-NN mean k=10, input 20th-neighbour
distance, latent 20th-neighbour distance), each robust-scaled; MSI (input terms only) reported beside them.
Usage: python ae_round7.py heldout|adbench|sklearn [seeds, default 0,1,2]
  heldout = fresh_anomaly.tasks(0, suite="statsmodels") (24 tasks; needs statsmodels), adbench = the 18 ADBench sets,
  sklearn = fresh_anomaly.tasks(0) (21 tasks)."""
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
from ae_round6 import design_sets, kth, summarise  # noqa: E402
from fresh_anomaly import tasks  # noqa: E402

torch.set_num_threads(1)


def main():
    which = sys.argv[1]
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2").split(",")]
    sets = {"heldout": lambda: tasks(0, suite="statsmodels"), "adbench": design_sets, "sklearn": lambda: tasks(0)}[which]()
    res = {}
    for name, X, y in sets:
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
        res[name] = {}
        for seed in seeds:
            ae = ek.AutoEncoder(seed=seed, device="cpu")
            ae.fit(Xtr, show_progress=False)
            Ztr, Zte = ae.embeddings_.vectors, ae.encode(Xte)
            Str, Ste = ae._train_rows, ae.scaler_.transform(Xte)
            raw = {"z5": (_anomaly.knn_distances(Str, Str, 5, exclude_self=True), _anomaly.knn_distances(Str, Ste, 5)),
                   "z10": (_anomaly.knn_distances(Str, Str, 10, exclude_self=True), _anomaly.knn_distances(Str, Ste, 10)),
                   "z20": (_anomaly.knn_distances(Str, Str, 20, exclude_self=True), _anomaly.knn_distances(Str, Ste, 20)),
                   "lat10": (_anomaly.knn_distances(Ztr, Ztr, 10, exclude_self=True), _anomaly.knn_distances(Ztr, Zte, 10)),
                   "zmax20": (kth(Str, Str, 20, exclude_self=True), kth(Str, Ste, 20)),
                   "latmax20": (kth(Ztr, Ztr, 20, exclude_self=True), kth(Ztr, Zte, 20))}
            sc = {}
            for k, (tr, te) in raw.items():
                m, s = _anomaly.robust_scale(tr)
                sc[k] = (te - m) / s
            forest = IsolationForest(random_state=seed).fit(Xtr)
            mu, sd = Xtr.mean(0), Xtr.std(0)
            sd[sd < 1e-8] = 1
            pca = PCA(ae.dim_, random_state=0).fit((Xtr - mu) / sd)
            Z = (Xte - mu) / sd
            cand = {"A": (sc["lat10"] + sc["z10"]) / 2, "MS": np.max([sc["z10"], sc["zmax20"], sc["latmax20"]], axis=0),
                    "MSI": np.max([sc["z5"], sc["z20"], sc["zmax20"]], axis=0), "A_lib": ae.decision_function(Xte),
                    "IsolationForest": -forest.score_samples(Xte),
                    "PCA recon.": ((pca.inverse_transform(pca.transform(Z)) - Z) ** 2).sum(1)}
            res[name][seed] = {k: anomaly_auc(v, yte) for k, v in cand.items()}
        mean = {k: float(np.mean([r[k] for r in res[name].values()])) for k in res[name][seeds[0]]}
        print(name, {k: round(v, 3) for k, v in mean.items()}, flush=True)
    summarise(res, list(res[next(iter(res))][seeds[0]]), ["A", "MS", "MSI"])
    with open(f"/tmp/ae14_round7_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
