"""Serve a small index over HTTP and query it, all in-process (runs in a few seconds).

    python examples/serve_example.py

To serve a real store instead:  embedkit serve --store indexes --port 8000   (then open http://127.0.0.1:8000/)
"""

import tempfile

import numpy as np
from fastapi.testclient import TestClient

import embedkit as ek
from embedkit.serve import create_app

rng = np.random.default_rng(0)
centers = rng.normal(size=(2, 16)) * 5
keys = [f"red{i}" for i in range(50)] + [f"blue{i}" for i in range(50)]
vectors = np.vstack([centers[0] + rng.normal(size=(50, 16)), centers[1] + rng.normal(size=(50, 16))])

with tempfile.TemporaryDirectory() as root:
    ek.Store(root).save("colours", ek.Embeddings(keys, vectors).to_index(metric="cosine"))
    with TestClient(create_app(root, token="secret"), base_url="http://127.0.0.1") as client:
        print(client.get("/indexes").json())
        print(client.get("/indexes/colours/neighbors", params={"key": "red0", "k": 3}).json())
        auth = {"Authorization": "Bearer secret"}
        new = (centers[1] + rng.normal(size=16)).tolist()
        print(client.post("/indexes/colours/items", json={"items": [{"key": "navy", "vector": new}]},
                          headers=auth).json())
        print(client.post("/indexes/colours/search", json={"vector": new, "k": 3}).json())
