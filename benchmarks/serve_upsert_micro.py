# ruff: noqa: E401, E402, E501, E701, E702  (a measurement script kept as it was run)
import sys
import tempfile
import time

import numpy as np

import embedkit as ek
from embedkit.serve._registry import Registry
from embedkit.store import Store

root = tempfile.mkdtemp()
rng = np.random.default_rng(0)
Store(root).save("ix", ek.Embeddings([f"k{i}" for i in range(10000)], rng.normal(size=(10000, 64)).astype(np.float32)).to_index())
reg = Registry(Store(root), compact_every=10**9)
vecs = rng.normal(size=(300, 64)).astype(np.float32)
reg.upsert("ix", ["warm"], vecs[:1])
t = time.perf_counter()
for i in range(300):
    reg.upsert("ix", [f"w{i}"], vecs[i:i + 1])
dt = (time.perf_counter() - t) / 300
reg.close()
t = time.perf_counter(); Store(root).load("ix"); lt = time.perf_counter() - t
print(f"{sys.argv[1]} upsert {dt*1e3:.3f} ms/write  load {lt*1e3:.1f} ms")
