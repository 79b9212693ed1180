"""Siamese encoder on scikit-learn's digits: train on digits 0-6, retrieve digits 7-9 it never saw.

Compares MAP@R and precision@1 on the unseen classes against raw pixels and PCA at the same
dimension, for the default encoder (a linear map started at PCA), an MLP alone, and a small CNN
passed in as one line. Runs on CPU in about a minute:  python examples/siamese_digits_example.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from torch import nn

import embedkit as ek
from embedkit.evaluate import map_at_r, precision_at_1

torch.set_num_threads(1)  # models this small run faster on one thread than on several competing ones
DIM = 32
X, y = load_digits(return_X_y=True)
seen, unseen = y <= 6, y >= 7

vectors = {
    "raw pixels (64-d)": X[unseen],
    f"PCA {DIM} (fit on 0-6)": PCA(DIM, random_state=0).fit(X[seen]).transform(X[unseen]),
}

# the default: a linear map that starts at PCA and trains (InfoNCE) only as many epochs as help classes
# held out of probe runs (epochs_; 0 keeps the PCA: on digits, training on some digits rarely helps others)
default = ek.SiameseEncoder(dim=DIM, seed=0)
default.fit(X[seen], y[seen], show_progress=False)
vectors[f"Siamese default ({default.epochs_} epochs, {default.skip_space_})"] = default.encode(X[unseen])
# the metric network alone (input_share=0) keeps only what separates 0-6: the unseen digits collapse
mlp = ek.SiameseEncoder(dim=DIM, loss="infonce", hidden=(256, 128), epochs=10, input_share=0.0, seed=0)
mlp.fit(X[seen], y[seen], show_progress=False)
vectors["Siamese MLP only (InfoNCE)"] = mlp.encode(X[unseen])

# any torch module can be the encoder; here a small CNN on the 8x8 images, in one line
# (it keeps the weights it is built with, so seed torch first for a reproducible run)
torch.manual_seed(0)
cnn = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(64 * 16, DIM))  # noqa: E501
siamese_cnn = ek.SiameseEncoder(dim=DIM, loss="infonce", encoder=cnn, lr=3e-4, epochs=30, standardize=False, seed=0)
siamese_cnn.fit(X[seen], y[seen], show_progress=False)
vectors["Siamese CNN (InfoNCE)"] = siamese_cnn.encode(X[unseen])

print(f"retrieval among {unseen.sum()} images of digits 7-9 (never seen in training), cosine:")
print(f"{'vectors':<36}{'MAP@R':>8}{'P@1':>8}")
for name, v in vectors.items():
    print(f"{name:<36}{map_at_r(v, y[unseen]):>8.3f}{precision_at_1(v, y[unseen]):>8.3f}")

# the unseen digits go into an index like any other embeddings
emb = ek.Embeddings([f"img{i}:{d}" for i, d in zip(np.nonzero(unseen)[0], y[unseen])], vectors["Siamese CNN (InfoNCE)"])
idx = emb.to_index(metric="cosine")
query = emb.keys[0]
print(f"neighbours of {query}:", ", ".join(idx.search_keys([query], k=5).keys[0]))
