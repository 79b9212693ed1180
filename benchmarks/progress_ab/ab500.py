# ruff: noqa: E401, E402, E501, E701, E702  (a measurement script kept as it was run; writes labelled.edg beside itself)
"""A/B: node2vec gensim backend, walks in one train call per epoch vs cut into parts (progress)."""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import numpy as np
from node2vec_bench import make_sbm

import embedkit as ek
from embedkit.evaluate import node_classification
from embedkit.trainers.sgns import gensim_backend as gb

tmp = Path(__file__).resolve().parent; path = tmp / "labelled.edg"
info = make_sbm(path, 20_000, blocks=5, degree=10.0, p_in=0.6, seed=1)
g = ek.Graph.from_edgelist(path)
configs = {"500k steps/part (default)": 500_000}
seeds = [int(s) for s in sys.argv[1].split(",")] if len(sys.argv) > 1 else [0, 1]
rows = []
for seed in seeds:
    for name, pw in configs.items():
        gb._PART_WORDS = pw
        t0 = time.perf_counter()
        m = ek.Node2Vec(dim=128, walk_length=80, walks_per_node=10, window=10, p=1, q=0.5, sample=1e-3, seed=seed,
                        backend="gensim", workers=2)
        emb = m.fit(g, show_progress=False)
        dt = time.perf_counter() - t0
        res = [node_classification(emb, info["labels"], train_fraction=0.5, seed=s) for s in range(5)]
        mac = float(np.mean([r["macro_f1"] for r in res]))
        rows.append(dict(seed=seed, config=name, seconds=dt, macro_f1=mac, loss=m.loss_history_[-1]))
        print(json.dumps(rows[-1]), flush=True)
for name in configs:
    r = [x for x in rows if x["config"] == name]
    print(f"{name}: macro-F1 mean {np.mean([x['macro_f1'] for x in r]):.4f}, fit s mean {np.mean([x['seconds'] for x in r]):.1f}")
