"""A convolutional autoencoder for scikit-learn's 8x8 digits, passed to ek.AutoEncoder as two modules.

Trains in seconds on CPU; prints how well its anomaly score (the default, "auto") separates digits it saw
from digits it did not, interpolates between two images through the latent space, and saves/loads the weights (the
modules' architecture is code: pass the same modules to load).

    python examples/conv_autoencoder_example.py
"""

import tempfile

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import nn

import embedkit as ek
from embedkit.evaluate.anomaly import anomaly_report

torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)  # pixels in [0, 1] for the binary cross-entropy loss


def modules():
    encoder = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(16 * 4 * 4, 8))
    decoder = nn.Sequential(nn.Linear(8, 16 * 4 * 4), nn.ReLU(), nn.Unflatten(1, (16, 4, 4)),
                            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1), nn.Flatten())
    return encoder, decoder


torch.manual_seed(0)
enc, dec = modules()
ae = ek.AutoEncoder(encoder=enc, decoder=dec, loss="bce", epochs=20, batch_size=64, seed=0)
seen = y <= 4
ae.fit(X[seen], show_progress=False)
report = anomaly_report(ae.decision_function(X[~seen][:300].tolist() + X[seen][:300].tolist()),
                        np.r_[np.ones(300), np.zeros(300)])
print(f"digits 5-9 as anomalies of a model of 0-4: ROC-AUC {report['roc_auc']:.3f}, "
      f"average precision {report['average_precision']:.3f}")
path_rows = ae.interpolate(X[y == 0][0], X[y == 1][0], steps=5)
print("interpolation 0 -> 1, ink per step:", np.round(path_rows.sum(axis=1), 1))
with tempfile.TemporaryDirectory() as tmp:
    saved = ae.save(f"{tmp}/conv_ae.npz")
    back = ek.AutoEncoder.load(saved, encoder=modules()[0], decoder=modules()[1])
    print("reloaded codes equal:", np.allclose(back.encode(X[:5]), ae.encode(X[:5]), atol=1e-5))
