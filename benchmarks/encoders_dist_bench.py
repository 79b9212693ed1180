"""Epoch time, bytes per step and quality of AutoEncoder and SiameseEncoder, 1 process or N ranks.

python benchmarks/encoders_dist_bench.py OUT.json   # one process
(launched as N ranks it writes OUT.json from rank 0)
Table: 20,000 rows x 64 features, 20 Gaussian classes (rank-8 structure + noise); AE on all rows,
Siamese on classes 0-14, MAP@R on the 5 unseen classes."""
import json
import sys
import time

import numpy as np

import embedkit.distributed as ek_dist
from embedkit.evaluate.encoders import map_at_r
from embedkit.trainers.encoders import AutoEncoder, SiameseEncoder

rng = np.random.default_rng(0)
n, d, k = 20_000, 64, 20
y = rng.integers(0, k, n)
centres = rng.normal(size=(k, 8)) * 1.5
X = ((centres[y] + rng.normal(size=(n, 8))) @ rng.normal(size=(8, d)) + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
res = {"world_size": ek_dist.world().size}
for name, model, args in [
        ("autoencoder", AutoEncoder(epochs=4, device="cpu", score="reconstruction"), (X,)),
        ("siamese", SiameseEncoder(dim=32, hidden=(256, 128), loss="infonce", batch_size=256, epochs=4, input_share=0.5,
                               device="cpu"), (X[y < 15], y[y < 15]))]:
    stamps = []
    t0 = time.perf_counter()
    model.fit(*args, show_progress=False, callback=lambda e, loss: stamps.append(time.perf_counter()))
    epoch_times = np.diff([t0] + stamps)
    ek_dist.reset_comm_stats()
    r = {"epoch_seconds": [round(float(t), 3) for t in epoch_times],
         "median_epoch_s_after_first": float(np.median(epoch_times[1:])),
         "comm_bytes": int(getattr(model, "comm_bytes_", 0)),
         "comm_seconds": float(getattr(model, "comm_seconds_", 0.0)),
         "params": int(sum(p.numel() for m in model._saved_modules().values() for p in m.parameters()
                           if p.requires_grad)),
         "final_loss": float(model.loss_history_[-1])}
    if name == "autoencoder":
        r["train_recon_mse"] = float(model.anomaly_scores(X, method="reconstruction").mean())
        r["best_epoch"] = int(model.best_epoch_)
    else:
        r["unseen_map_at_r"] = float(map_at_r(model.encode(X[y >= 15]), y[y >= 15]))
    res[name] = r
if ek_dist.is_distributed():  # the gradient all_reduce of the default AutoEncoder alone, 300 times
    import torch

    flat = torch.zeros(res["autoencoder"]["params"] + 12)
    times = []
    for _ in range(300):
        t = time.perf_counter()
        ek_dist.all_reduce_sum_(flat)
        times.append(time.perf_counter() - t)
    res["allreduce_141kB_ms"] = {"median": 1e3 * float(np.median(times)), "p10": 1e3 * float(np.percentile(times, 10))}
if ek_dist.is_main():
    with open(sys.argv[1], "w") as fh:
        json.dump(res, fh, indent=1)
