"""Autoencoder anomaly detection on scikit-learn's digits: train on one digit, score every digit.

For each digit d: fit on half of the images of d, score the other half plus all other digits, and
report the ROC-AUC of "not d" against PCA reconstruction error (same dimension) and an isolation
forest. Runs on CPU in under a minute:  python examples/autoencoder_anomaly_example.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest

import embedkit as ek
from embedkit.evaluate import anomaly_auc

torch.set_num_threads(1)  # models this small run faster on one thread than on several competing ones
DIM = 16
X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
rng = np.random.default_rng(0)

print(f"{'digit':>5}{'AE':>8}{'PCA':>8}{'IForest':>9}")
aucs = []
for digit in range(10):
    rows = rng.permutation(np.nonzero(y == digit)[0])
    train = rows[: len(rows) // 2]
    test = np.setdiff1d(np.arange(len(y)), train)
    is_anomaly = y[test] != digit

    # pixels: keep raw units (standardising near-constant pixels of one digit amplifies noise)
    ae = ek.AutoEncoder(variant="undercomplete", dim=DIM, epochs=100, batch_size=16, standardize=False, seed=0)
    ae.fit(X[train], show_progress=False)
    ae_auc = anomaly_auc(ae.decision_function(X[test]), is_anomaly)  # default score "auto": forests + k-NN

    pca = PCA(DIM, random_state=0).fit(X[train])
    pca_err = ((pca.inverse_transform(pca.transform(X[test])) - X[test]) ** 2).mean(axis=1)
    forest = IsolationForest(random_state=0).fit(X[train])
    row = (ae_auc, anomaly_auc(pca_err, is_anomaly), anomaly_auc(-forest.score_samples(X[test]), is_anomaly))
    aucs.append(row)
    print(f"{digit:>5}" + "".join(f"{v:>{w}.3f}" for v, w in zip(row, (8, 8, 9))))
mean = np.mean(aucs, axis=0)
print(f"{'mean':>5}{mean[0]:>8.3f}{mean[1]:>8.3f}{mean[2]:>9.3f}")

# PyOD's conventions: threshold_ from contamination, predict() -> 0/1, fit_predict on the training rows
ae = ek.AutoEncoder(contamination=0.05, standardize=False, seed=0)
train_labels = ae.fit_predict(np.vstack([X[y == 0], X[y == 1][:9]]), show_progress=False)
print(f"fit_predict on 178 zeros + 9 ones (contamination 0.05): {train_labels.sum()} flagged, "
      f"{train_labels[-9:].sum()} of the 9 ones among them; threshold_ {ae.threshold_:.3f}")
print("predict on five 7s:", ae.predict(X[y == 7][:5]))
