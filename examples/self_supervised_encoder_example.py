"""Self-supervised SiameseEncoder (no labels) on scikit-learn's digits, then k-NN classification in its latent space.

fit(X) without y trains from two corrupted views of each row (SCARF) or, with
self_supervised="predictive", by predicting an EMA target encoder's embedding of masked features.
The labels are used only afterwards: KNNEstimator classifies held-out images by their nearest
training neighbours in the latent space. Runs in seconds on CPU:

    python examples/self_supervised_encoder_example.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits

import embedkit as ek
from embedkit.evaluate import map_at_r
from embedkit.trainers.encoders import KNNEstimator

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
order = np.random.default_rng(0).permutation(len(X))
train, test = order[:1200], order[1200:]

print(f"raw pixels: MAP@R {map_at_r(X[test], y[test]):.3f}, "
      f"5-NN accuracy {KNNEstimator(None, k=5).fit(X[train], y[train]).score(X[test], y[test]):.3f}")
for mode in ("contrastive", "predictive"):
    enc = ek.SiameseEncoder(self_supervised=mode, standardize=False, epochs=20, seed=0)
    enc.fit(X[train], show_progress=False)  # no labels
    knn = KNNEstimator(enc, k=5).fit(X[train], y[train])
    print(f"self-supervised {mode}: MAP@R {map_at_r(enc.encode(X[test]), y[test]):.3f}, "
          f"5-NN accuracy {knn.score(X[test], y[test]):.3f}")
