# ruff: noqa: E402, E501, E701, E702  (a measurement script kept as it was run)
import statistics
import sys
import time

root = sys.argv[1]
sys.path.insert(0, root)
import faiss
import numpy as np

from embedkit.index import VectorIndex

rng = np.random.default_rng(0)
x = rng.standard_normal((30000, 128)).astype(np.float32)
q = rng.standard_normal((300, 128)).astype(np.float32)
idx = VectorIndex(128, "cosine", "hnsw")
idx.add([str(i) for i in range(30000)], x)
raw = idx._storage.faiss
keys = [str(i) for i in range(0, 30000, 100)]
def ek():
    for i in range(300):
        idx.search(q[i], 10)
def rw():
    for i in range(300):
        v = q[i:i + 1].copy(); faiss.normalize_L2(v); raw.search(v, 10)
def ekk():
    for k in keys:
        idx.search_keys(k, 10)
t = {"ek": [], "raw": [], "ekk": []}
for f in (ek, rw, ekk):
    f()
for _ in range(15):
    for name, f in (("ek", ek), ("raw", rw), ("ekk", ekk)):
        s = time.perf_counter(); f(); t[name].append(time.perf_counter() - s)
m = {k: statistics.median(v) for k, v in t.items()}
print(root, f"search {m['ek'] / m['raw'] - 1:+.1%}  search_keys {m['ekk'] / m['raw'] - 1:+.1%}  raw {300 / m['raw']:.0f} q/s")
