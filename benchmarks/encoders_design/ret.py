# ruff: noqa: E402, E501, E701, E702  (a one-off measurement script kept as it was run)
import json
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

import embedkit as ek
from embedkit.evaluate import map_at_r, precision_at_1
from embedkit.trainers.encoders import siamese


def synth(seed):
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(64, 64)))[0]
    centres = rng.normal(0, 1, (20, 16))
    ys = rng.integers(0, 20, 4000)
    S = np.hstack([centres[ys] + rng.normal(0, 0.6, (4000, 16)),
                   rng.normal(0, 1.0, (4000, 48)) * np.linspace(2, 0.2, 48)]) @ basis.T
    return S.astype(np.float32), ys
X, y = load_digits(return_X_y=True); X = X.astype(np.float32)
which = sys.argv[1]
designs = {"S0": (0.5,), "S1": (0.75,), "S2": (0.5, 0.75), "S3": "infonce"}
if len(sys.argv) > 2:
    designs = {k: designs[k] for k in sys.argv[2].split(",")}
if which == "design":
    S, ys = synth(1)
    tasks = {"digits 3-9 -> 0-2": (X, y, y >= 3), "synthetic(seed1) 14->6": (S, ys, ys < 14)}
else:
    S, ys = synth(0)
    tasks = {"digits 0-6 -> 7-9": (X, y, y <= 6), "synthetic(seed0) 14->6": (S, ys, ys < 14)}
res = {}
for task, (A, lab, tr) in tasks.items():
    te = ~tr
    base = {"raw": A[te], "PCA32 raw": PCA(32, random_state=0).fit(A[tr]).transform(A[te])}
    for b, v in base.items():
        print(task, b, round(map_at_r(v, lab[te]), 3), round(precision_at_1(v, lab[te]), 3), flush=True)
    for d, fr in designs.items():
        kw = {"loss": fr} if isinstance(fr, str) else {}
        if not kw: siamese.AUTO_SKIP_FRACTIONS = fr
        for seed in (0, 1):
            t = time.perf_counter()
            m = ek.SiameseEncoder(seed=seed, device="cpu", **kw); m.fit(A[tr], lab[tr], show_progress=False)
            V = m.encode(A[te])
            r = (map_at_r(V, lab[te]), precision_at_1(V, lab[te]), time.perf_counter() - t, m.input_share_, m.skip_space_, m.skip_dims_)
            res.setdefault(d, []).append((task, seed, *r))
            print(task, d, seed, f"MAP {r[0]:.3f} P1 {r[1]:.3f} {r[2]:.1f}s w={r[3]} {r[4]} k={r[5]}", flush=True)
for d, rows in res.items():
    print("MEAN", d, f"MAP {np.mean([r[2] for r in rows]):.4f} P1 {np.mean([r[3] for r in rows]):.4f} s {np.mean([r[4] for r in rows]):.1f}")
json.dump(res, open(f"ret_{which}.json", "w"))
