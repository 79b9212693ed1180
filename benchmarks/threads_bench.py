# ruff: noqa: E402, E501  (imports follow the environment set-up on purpose)
"""One small fit timed inside the process.

python benchmarks/threads_bench.py ae|siamese new|old
  new: embedkit as shipped (imported first: OMP_WAIT_POLICY=PASSIVE when unset, one torch thread for small fits)
  old: the behaviour before: torch imported first (OpenMP keeps its default spinning wait policy) and
       EMBEDKIT_NUM_THREADS = torch's default thread count (no thread policy)
Run with OMP_WAIT_POLICY unset (env -u OMP_WAIT_POLICY).
"""
import os
import sys
import time

which, mode = sys.argv[1], sys.argv[2]
if mode == "old":
    import torch
    os.environ["EMBEDKIT_NUM_THREADS"] = str(torch.get_num_threads())
import numpy as np
from sklearn.datasets import load_digits

import embedkit as ek

X, y = load_digits(return_X_y=True)
X = X.astype(np.float32)
if which == "ae":  # the one-class setting of examples/autoencoder_anomaly_example.py
    rows = np.nonzero(y == 3)[0][:90]
    model, args = ek.AutoEncoder(dim=16, epochs=100, batch_size=16, standardize=False, seed=0, device="cpu"), (X[rows],)
else:  # examples/siamese_digits_example.py's MLP
    seen = y <= 6
    model, args = ek.SiameseEncoder(dim=32, loss="infonce", epochs=10, seed=0, device="cpu"), (X[seen], y[seen])
import torch

t0 = time.perf_counter()
model.fit(*args, show_progress=False)
print(f"{which} {mode} fit {time.perf_counter() - t0:.2f}s OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
