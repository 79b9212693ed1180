import time

import numpy as np

import embedkit as ek

for n in (1_000, 50_000, 1_000_000):
    emb = ek.Embeddings([f"word{i}" for i in range(n)], np.zeros((n, 2), np.float32) + 1)
    t = time.perf_counter()
    for _ in range(10_000):
        try:
            emb["wrod123"]
        except KeyError:
            pass
    caught = (time.perf_counter() - t) / 10_000 * 1e6
    t = time.perf_counter()
    try:
        emb["wrod123"]
    except KeyError as exc:
        msg = str(exc)
    read = time.perf_counter() - t
    print(f"n={n}: raise+catch {caught:.1f} us/lookup; message read once {read*1000:.0f} ms: {msg}")
