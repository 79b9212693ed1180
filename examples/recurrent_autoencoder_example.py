"""A recurrent (GRU) autoencoder for fixed-length sequences, passed to ek.AutoEncoder as modules.

Normal rows are sine waves of 24 steps; anomalies have a spike. Runs in seconds on CPU:

    python examples/recurrent_autoencoder_example.py
"""

import numpy as np
import torch
from torch import nn

import embedkit as ek
from embedkit.evaluate.anomaly import anomaly_report

torch.set_num_threads(1)
rng = np.random.default_rng(0)
t = np.linspace(0, 2 * np.pi, 24)
waves = np.stack([np.sin(f * t + p) for f, p in rng.uniform([0.5, 0], [2, 2 * np.pi], (400, 2))])
spiky = waves[:20].copy()
spiky[np.arange(20), rng.integers(0, 24, 20)] += 3.0


class GRUEncoder(nn.Module):  # (batch, 24) -> (batch, 8): the GRU's last hidden state
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(1, 8, batch_first=True)

    def forward(self, x):
        return self.gru(x.unsqueeze(-1))[1][-1]


torch.manual_seed(0)
ae = ek.AutoEncoder(encoder=GRUEncoder(), decoder=nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 24)),
                    epochs=30, batch_size=32, seed=0)
ae.fit(waves[:300].astype(np.float32), show_progress=False)
test = np.vstack([waves[300:], spiky]).astype(np.float32)
labels = np.r_[np.zeros(100), np.ones(20)]
rep = anomaly_report(ae.decision_function(test), labels, threshold=ae.threshold_)
print(f"spikes found: ROC-AUC {rep['roc_auc']:.3f}, AP {rep['average_precision']:.3f}, "
      f"flagged {rep['flagged']} of {len(test)} (recall {rep['recall']:.2f})")
