# ruff: noqa: E402, E501, E701, E702  (a one-off measurement script kept as it was run)
import numpy as np
import torch

torch.set_num_threads(1)
from sklearn.datasets import load_digits

import embedkit as ek
from embedkit.evaluate import anomaly_auc

X, y = load_digits(return_X_y=True); X = X.astype(np.float32)
rng = np.random.default_rng(0)
for kw in ({}, {"standardize": False, "epochs": 100, "batch_size": 16}):
    res = []
    for digit in range(10):
        rows = rng.permutation(np.nonzero(y == digit)[0]); train = rows[: len(rows) // 2]
        test = np.setdiff1d(np.arange(len(y)), train); an = y[test] != digit
        ae = ek.AutoEncoder(seed=0, device="cpu", **kw); ae.fit(X[train], show_progress=False)
        res.append([anomaly_auc(ae.anomaly_scores(X[test], m), an) for m in ("ensemble", "combined", "reconstruction", "knn", "input_knn")])
    print(kw, "ensemble/combined/recon/knn/input_knn", np.round(np.mean(res, 0), 3))
