"""GET /indexes/{name}/map: the page's 2-D map (PCA of a fixed sample), deterministic, with
asked-for keys projected onto the same axes."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.serve import create_app  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("map") / "store"
    rng = np.random.default_rng(0)
    # two planted directions with most of the variance: PC1 along e0, PC2 along e1
    vecs = np.zeros((200, 6), dtype=np.float32)
    vecs[:, 0] = 10 * rng.standard_normal(200)
    vecs[:, 1] = 3 * rng.standard_normal(200)
    vecs[:, 2:] = 0.1 * rng.standard_normal((200, 4))
    idx = ek.VectorIndex(6, metric="l2")
    idx.add([f"k{i:03d}" for i in range(200)], vecs)
    ek.Store(root).save("planted", idx)
    return root, vecs


def test_map_is_the_pca_of_a_fixed_sample(root):
    root, vecs = root
    with TestClient(create_app(root), base_url="http://127.0.0.1") as c:
        full = c.get("/indexes/planted/map", params={"n": 500}).json()
        assert full["sampled"] == full["count"] == 200 and full["added"] == [] and len(full["points"]) == 200
        centred = vecs.astype(np.float64) - vecs.mean(0)
        s = np.linalg.svd(centred, compute_uv=False)
        assert full["explained"] == pytest.approx((s[:2] ** 2 / (s ** 2).sum()).tolist(), abs=1e-4)
        xy = np.array([p[1:] for p in full["points"]])
        # axes along the planted directions, sign-fixed (largest loading positive)
        assert np.corrcoef(xy[:, 0], vecs[:, 0])[0, 1] > 0.999 and np.corrcoef(xy[:, 1], vecs[:, 1])[0, 1] > 0.99
        small = c.get("/indexes/planted/map", params={"n": 50}).json()
        assert small["sampled"] == 50 and len({p[0] for p in small["points"]}) == 50
        assert c.get("/indexes/planted/map", params={"n": 50}).json() == small  # deterministic
        # keys left out of the sample are projected onto the same axes; sampled points do not move
        sampled = {p[0] for p in small["points"]}
        out = sorted(set(f"k{i:03d}" for i in range(200)) - sampled)[:3]
        more = c.get("/indexes/planted/map", params={"n": 50, "include": json.dumps(out + ["k000"] * ("k000" in sampled))})
        more = more.json()
        assert more["added"] == out and more["points"][:50] == small["points"] and len(more["points"]) == 53
        m0 = np.mean([vecs[int(k[1:]), 0] for k in sampled])
        for key, x, _ in more["points"][50:]:  # PC1 is the planted direction e0 (spread 10, the rest < 3.2)
            assert x == pytest.approx(vecs[int(key[1:]), 0] - m0, abs=0.5)
        r = c.get("/indexes/planted/map", params={"include": '["nope"]'})
        assert r.status_code == 404 and "nope" in r.json()["error"]
        r = c.get("/indexes/planted/map", params={"include": "[1, 2]"})
        assert r.status_code == 422 and "include" in r.json()["error"]
        assert c.get("/indexes/planted/map", params={"n": 1}).status_code == 422
