"""ae14: one-class digits (as oneclass.py: fit on half of one digit's images, score the rest, mean ROC-AUC over
the 10 digits) for AutoEncoder() (50 epochs) and the data-size rule of PROTOCOL.md item 4 (about 1000 optimiser
steps, early stopping) and round 6's K20 (n_neighbors=20), all on the same splits (the same rng stream as oneclass.py's first row). Every score
method is reported."""
# ruff: noqa: E501
import os
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

import embedkit as ek
from embedkit.evaluate import anomaly_auc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from encoders_bench import steps_schedule  # noqa: E402

torch.set_num_threads(1)
METHODS = ("auto", "ensemble", "combined", "reconstruction", "knn", "input_knn", "hybrid")


def main():
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    rng = np.random.default_rng(0)
    configs = {"~1000 steps + early stop": None, "AutoEncoder() (epochs=50)": {},
               "AutoEncoder(n_neighbors=20) (round 6's K20)": {"n_neighbors": 20}}
    res = {c: [] for c in configs}
    secs = {c: 0.0 for c in configs}
    base = {"PCA reconstruction (16 components, z-scored)": [], "IsolationForest (random_state=0)": []}
    for digit in range(10):
        rows = rng.permutation(np.nonzero(y == digit)[0])
        train = rows[: len(rows) // 2]
        test = np.setdiff1d(np.arange(len(y)), train)
        an = y[test] != digit
        for c, kw in configs.items():
            t = time.perf_counter()
            ae = ek.AutoEncoder(seed=0, device="cpu", **(steps_schedule(len(train)) if kw is None else kw))
            ae.fit(X[train], show_progress=False)
            secs[c] += time.perf_counter() - t
            res[c].append([anomaly_auc(ae.anomaly_scores(X[test], m), an) for m in METHODS])
        mu, sd = X[train].mean(0), X[train].std(0)
        sd[sd < 1e-8] = 1
        pca = PCA(16, random_state=0).fit((X[train] - mu) / sd)
        P = (X[test] - mu) / sd
        base["PCA reconstruction (16 components, z-scored)"].append(
            anomaly_auc(((pca.inverse_transform(pca.transform(P)) - P) ** 2).sum(1), an))
        base["IsolationForest (random_state=0)"].append(
            anomaly_auc(-IsolationForest(random_state=0).fit(X[train]).score_samples(X[test]), an))
    print("| setting | " + " | ".join(METHODS) + " | fit s (mean) |")
    print("|---" * (len(METHODS) + 2) + "|")
    for c in configs:
        print(f"| {c} | " + " | ".join(f"{v:.3f}" for v in np.mean(res[c], 0)) + f" | {secs[c] / 10:.2f} |")
    for b, v in base.items():
        print(f"baseline on the same splits, {b}: {np.mean(v):.3f}")


if __name__ == "__main__":
    main()
