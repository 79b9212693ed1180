# ruff: noqa: E402, E501, E701, E702  (a one-off measurement script kept as it was run)
import glob
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from sklearn.model_selection import train_test_split

import embedkit as ek
from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

AD = str(__import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "data" / "adbench")
names = sorted(os.path.basename(p)[:-4] for p in glob.glob(AD + "/*.npz"))
design = names[::3]
which = sys.argv[1]
sets = design if which == "design" else [n for n in names if n not in design]
res = {}
for name in sets:
    with np.load(f"{AD}/{name}.npz", allow_pickle=False) as d:
        X, y = d["X"].astype(np.float32), d["y"].astype(int)
    if len(X) > 5000:
        X, _, y, _ = train_test_split(X, y, train_size=5000, stratify=y, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    t = time.perf_counter()
    ae = ek.AutoEncoder(seed=0, device="cpu"); ae.fit(Xtr, show_progress=False)
    rec = ae.anomaly_scores(Xte, "reconstruction"); lat = ae.anomaly_scores(Xte, "knn")
    sc = ae.scaler_
    Ztr = ((Xtr - sc.mean) / sc.scale).astype(np.float32); Zte = ((Xte - sc.mean) / sc.scale).astype(np.float32)
    itr = _anomaly.knn_distances(Ztr, Ztr, 10, exclude_self=True); ite = _anomaly.knn_distances(Ztr, Zte, 10)
    ltr = _anomaly.knn_distances(ae.embeddings_.vectors, ae.embeddings_.vectors, 10, exclude_self=True)
    rtr = ae._train_scores
    def z(tr, te):
        m, s = _anomaly.robust_scale(tr); return (te - m) / s
    cand = {"A": (z(rtr, rec) + z(ltr, lat)) / 2, "B": (z(rtr, rec) + z(ltr, lat) + z(itr, ite)) / 3,
            "C": (z(ltr, lat) + z(itr, ite)) / 2, "inputkNN": ite}
    res[name] = {k: anomaly_auc(v, yte) for k, v in cand.items()}
    print(name, {k: round(v, 3) for k, v in res[name].items()}, f"{time.perf_counter()-t:.1f}s", flush=True)
means = {k: float(np.mean([r[k] for r in res.values()])) for k in next(iter(res.values()))}
print("MEAN", {k: round(v, 4) for k, v in means.items()})
json.dump(res, open(f"anom_{which}.json", "w"))
