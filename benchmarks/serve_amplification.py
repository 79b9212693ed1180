# ruff: noqa: E501, E701, E702  (a measurement script kept as it was run)
"""Amplification request against `embedkit serve`: time and the server's peak RSS (VmHWM)."""
import json
import os
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np

import embedkit as ek
from embedkit.store import Store

root = tempfile.mkdtemp() + "/s"
rng = np.random.default_rng(0)
N, D = 20000, 64
Store(root).save("big", ek.Embeddings([f"item-{i:06d}" for i in range(N)], rng.standard_normal((N, D)).astype(np.float32)).to_index())
port = 18900 + os.getpid() % 100
proc = subprocess.Popen([sys.executable, "-m", "embedkit", "--store", root, "serve", "--port", str(port), "--log-level", "error"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
url = f"http://127.0.0.1:{port}"
for _ in range(600):
    try:
        if httpx.get(url + "/health", timeout=1).status_code == 200: break
    except httpx.TransportError: pass
    time.sleep(0.1)
httpx.post(url + "/indexes/big/search", json={"vector": [1.0] * D, "k": 10})  # load the index
def hwm():
    for line in open(f"/proc/{proc.pid}/status"):
        if line.startswith(("VmHWM", "VmRSS")): yield line.split()[1]
base = list(hwm())
for nq, k in ([(100, 1000)] if sys.argv[2:] == ["small"] else [(3000, 1000), (100, 1000)]):
    body = {"vectors": rng.standard_normal((nq, D)).round(4).tolist(), "k": k}
    t = time.perf_counter()
    r = httpx.post(url + "/indexes/big/search", json=body, timeout=600)
    dt = time.perf_counter() - t
    peak = list(hwm())
    print(json.dumps({"code": sys.argv[1], "queries": nq, "k": k, "status": r.status_code, "response_bytes": len(r.content),
                      "seconds": round(dt, 2), "server_rss_before_MiB": int(base[1]) // 1024, "server_peak_MiB": int(peak[0]) // 1024,
                      "error": r.json().get("error") if r.status_code != 200 else None}))
proc.terminate(); proc.wait(30)
