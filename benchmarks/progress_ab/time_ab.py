# ruff: noqa: E401, E402, E501, E701, E702  (a measurement script kept as it was run; writes labelled.edg beside itself)
"""Interleaved timing: node2vec gensim fit, walks in one train call vs parts of N steps."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np

import embedkit as ek
from embedkit.trainers.sgns import gensim_backend as gb

g = ek.Graph.from_edgelist(Path(__file__).resolve().parent / "labelled.edg")
configs = {"one call": 10**12, "500k/part": 500_000}
times = {k: [] for k in configs}
for rnd in range(int(sys.argv[1])):
    for name, pw in (configs.items() if rnd % 2 == 0 else reversed(list(configs.items()))):
        gb._PART_WORDS = pw
        m = ek.Node2Vec(dim=128, walk_length=80, walks_per_node=10, window=10, p=1, q=0.5, seed=0, backend="gensim", workers=1)
        t0 = time.perf_counter(); m.fit(g, show_progress=False); times[name].append(time.perf_counter() - t0)
        print(name, round(times[name][-1], 2), flush=True)
for k, v in times.items():
    print(k, "median", round(float(np.median(v)), 2), "all", [round(x, 1) for x in v])
r = np.array(times["500k/part"]) / np.array(times["one call"])
print("ratio parts/one-call per round:", [round(x, 3) for x in r], "median", round(float(np.median(r)), 3))
