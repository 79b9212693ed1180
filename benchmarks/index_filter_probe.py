# ruff: noqa: E402, E501, E701, E702  (a measurement script kept as it was run)
import sys
import time

import numpy as np

sys.path.insert(0, "benchmarks")
from _data import clustered, exact_topk, normalised

import embedkit.index._search as S
from embedkit.index import VectorIndex

n = 100000
x, q = clustered(n, 128, n_queries=300, seed=0)
rng = np.random.default_rng(1)
b = rng.integers(0, 100000, n)
idx = VectorIndex(128, "cosine", "hnsw")
idx.add([str(i) for i in range(n)], x, payload=[{"b": int(v)} for v in b])
idx.tune(0.95, queries=q[200:], k=10)
print("ef", idx.ef_search)
xn, qn = normalised(x), normalised(q[:100])
for sel in (0.02, 0.05, 0.1, 0.2):
    f = {"b": {"$lt": int(sel * 100000)}}
    m = b < int(sel * 100000); sub = np.flatnonzero(m)
    truth = sub[exact_topk(xn[sub], qn, 10)]
    for fac in (1e9, 0.0):
        S.HNSW_EXACT_FACTOR = fac; S.EXACT_MIN = 4096 if fac else 0
        idx.search(q[0], 10, filter=f)
        t = time.perf_counter()
        rows = [idx.search(q[i], 10, filter=f).keys[0] for i in range(100)]
        dt = time.perf_counter() - t
        rec = np.mean([len(set(map(int, r)) & set(t_.tolist())) / 10 for r, t_ in zip(rows, truth)])
        print(f"sel {sel}: {'exact' if fac else 'hnsw+bitmap'} single q/s {100/dt:.0f} recall {rec:.3f}")
