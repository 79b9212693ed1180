"""1 vs N processes for MatrixFactorization (implicit ALS, BPR) on the long-tailed data of benchmarks/mf_bench.py.

    EMBEDKIT_NUM_THREADS=1 nice -n 10 python benchmarks/mf_dist_bench.py OUT.json USERS ITEMS PER_USER METHOD EPOCHS [SYNC_EVERY]
    (under embedkit.distributed.launch for N processes). Writes rank 0's figures to OUT.json.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))
from mf_bench import implicit_data  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit import distributed as ek_dist  # noqa: E402
from embedkit.evaluate.ranking import ranking_metrics  # noqa: E402

if os.environ.get("MF_SYNC_MEAN"):  # for comparison only: average the item replicas instead of summing changes
    from embedkit.trainers.mf import distributed as _mfd

    def _mean_sync(self):
        for t in self.tensors:
            ek_dist.all_reduce_mean_(t)

    _mfd._ItemSync.__call__ = _mean_sync
out, nu, ni, per, method, epochs = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5], int(sys.argv[6])
sync = float(sys.argv[7]) if len(sys.argv) > 7 else 0.1
t0 = time.perf_counter()
train, test = implicit_data(nu, ni, per, seed=0).split(test_fraction=0.2, seed=0)
load_s = time.perf_counter() - t0
marks = []
lr = float(os.environ["MF_LR"]) if os.environ.get("MF_LR") else None  # None: the method's default
m = ek.MatrixFactorization(method=method, dim=64, epochs=epochs, seed=0, device="cpu", sync_every=sync, lr=lr)
c0, w0 = time.process_time(), time.perf_counter()
m.fit(train, show_progress=False, callback=lambda e, loss: marks.append((time.perf_counter(), time.process_time(), loss)))
wall, cpu = time.perf_counter() - w0, time.process_time() - c0
per_epoch = np.diff([w0] + [w for w, _, _ in marks])
rank = ek_dist.world().rank
with open(f"{out}.rank{rank}", "w") as fh:  # every rank: its own CPU time and collectives
    json.dump({"rank": rank, "fit_wall_s": wall, "fit_cpu_s": cpu, "cpu_s_per_epoch": [float(x) for x in
               np.diff([c0] + [c for _, c, _ in marks])], "comm_bytes": getattr(m, "comm_bytes_", 0),
               "comm_seconds": getattr(m, "comm_seconds_", 0.0)}, fh)
if ek_dist.is_main():
    q = ranking_metrics(m, test, k=10)
    res = {"world": ek_dist.world().size, "method": method, "users": nu, "items": ni, "nnz": int(train.nnz),
           "epochs": epochs, "sync_every": sync, "load_s": load_s, "fit_wall_s": wall, "fit_cpu_s": cpu,
           "wall_s_per_epoch": [float(x) for x in per_epoch], "loss": [x for _, _, x in marks],
           "recall@10": q["recall"], "ndcg@10": q["ndcg"],
           "comm_bytes": getattr(m, "comm_bytes_", 0), "comm_seconds": getattr(m, "comm_seconds_", 0.0)}
    with open(out, "w") as fh:
        json.dump(res, fh, indent=1)
