"""Recommendations over HTTP from every stored recommender (issue 18): HybridMF with cold-start
items added by ``embedkit cold-start`` while the service runs, the Popularity and ItemKNN
baselines answering as in Python, filters exact among the allowed items."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.serve import create_app  # noqa: E402
from embedkit.trainers.mf import ItemKNN, Popularity  # noqa: E402


def _blocks(n_blocks=3, users=8, items=8, per_user=5, seed=0):
    """Users of block b interact only with items of block b (``per_user`` of its ``items``)."""
    rng = np.random.default_rng(seed)
    us, its = [], []
    for b in range(n_blocks):
        for u in range(users):
            for i in rng.choice(items, per_user, replace=False):
                us.append(f"b{b}u{u}")
                its.append(f"b{b}i{i}")
    return ek.Interactions.from_arrays(us, its)


def _client(root):
    return TestClient(create_app(root), base_url="http://127.0.0.1")


def _recs(c, name, user, **params):
    q = {"user": user, **{k: (json.dumps(v) if k == "filter" else v) for k, v in params.items()}}
    r = c.get(f"/indexes/{name}/recommend", params=q)
    assert r.status_code == 200, r.text
    return r.json()


def test_cold_items_added_by_the_cli_are_recommended_over_http(tmp_path, capsys):
    from embedkit.cli import main

    _blocks().to_dataframe().to_csv(tmp_path / "plays.csv", index=False)
    pd.DataFrame({"item": [f"b{b}i{i}" for b in range(3) for i in range(8)],
                  "block": [f"g{b}" for b in range(3) for _ in range(8)]}).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"item": ["new0", "new1", "new2"], "block": ["g0", "g1", "g2"]}).to_csv(tmp_path / "new.csv", index=False)
    store = str(tmp_path / "store")
    assert main(["--store", store, "train", "mf", str(tmp_path / "plays.csv"), "--name", "hy", "--item-features",
                 str(tmp_path / "items.csv"), "--item-categorical", "block", "--dim", "8", "--epochs", "15",
                 "--device", "cpu", "--no-progress"]) == 0
    with _client(store) as c:
        info = c.get("/indexes/hy").json()
        assert info["trainer"] == "HybridMF" and info["recommender"] and info["users"] == 24
        count = info["count"]
        assert info["payload_fields"] == {"block": "str"}
        assert c.get("/indexes/hy/users", params={"prefix": "B1U"}).json()["users"] == [f"b1u{u}" for u in range(8)]
        before = _recs(c, "hy", "b0u1", k=30)
        assert "new0" not in {r["key"] for r in before["recommendations"]}
        assert len(before["history"]) == 5 and all(h["key"].startswith("b0i") for h in before["history"])
        # another process adds cold items to the stored model; the service reloads the replaced index
        assert main(["--store", store, "cold-start", "hy", "--items", str(tmp_path / "new.csv")]) == 0
        capsys.readouterr()
        new = {"$key": {"$in": ["new0", "new1", "new2"]}}
        for b in range(3):
            for u in range(8):
                got = _recs(c, "hy", f"b{b}u{u}", k=1, filter=new, include_payload=True)["recommendations"]
                assert [(r["key"], r["payload"]) for r in got] == [(f"new{b}", {"block": f"g{b}"})]
        # a payload filter on the item features: only that block's items, the cold one among them
        got = _recs(c, "hy", "b0u1", k=30, filter={"block": "g1"})["recommendations"]
        assert {r["key"] for r in got} == {f"b1i{i}" for i in range(8)} | {"new1"}
        assert c.get("/indexes/hy").json()["count"] == count + 3
    # the HTTP answer is the Python one
    model = ek.trainers.mf.load_recommender("hy", store)
    py = model.recommend("b2u3", k=5, filter=new)
    with _client(store) as c:
        got = _recs(c, "hy", "b2u3", k=5, filter=new)["recommendations"]
    assert [r["key"] for r in got] == [k for k, _ in py]
    assert np.allclose([r["score"] for r in got], [s for _, s in py], rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines") / "store"
    inter = _blocks(n_blocks=3, users=8, items=8, per_user=5)
    pop, knn = Popularity(), ItemKNN(similarity="bm25", neighbors=10)
    pop.fit(inter, show_progress=False)
    knn.fit(inter, show_progress=False)
    pop.to_store("pop", root)
    knn.to_store("knn", root)
    return root, {"pop": pop, "knn": knn}, inter


@pytest.mark.parametrize("name", ["pop", "knn"])
def test_baselines_answer_over_http_as_in_python(baselines, name):
    root, models, inter = baselines
    model = models[name]
    with _client(root) as c:
        info = c.get(f"/indexes/{name}").json()
        assert info["recommender"] and info["users"] == 24
        assert c.get(f"/indexes/{name}/users", params={"prefix": "b2u", "limit": 3}).json()["users"] == \
            ["b2u0", "b2u1", "b2u2"]
        for user in ("b0u0", "b1u4", "b2u7"):
            for exclude in (True, False):
                body = _recs(c, name, user, k=7, exclude_seen=exclude)
                py = model.recommend(user, k=7, exclude_seen=exclude)
                assert [r["key"] for r in body["recommendations"]] == [k for k, _ in py]
                assert np.allclose([r["score"] for r in body["recommendations"]], [s for _, s in py], rtol=1e-6)
                seen = set(inter.to_dataframe().query("user == @user")["item"])
                assert {h["key"] for h in body["history"]} == seen
                if exclude:
                    assert not seen & {r["key"] for r in body["recommendations"]}
        r = c.get(f"/indexes/{name}/recommend", params={"user": "nobody"})
        assert r.status_code == 404 and "nobody" in r.json()["error"]


@pytest.mark.parametrize("name", ["pop", "knn"])
def test_filtered_recommendations_are_exact_top_k_among_allowed(baselines, name):
    root, models, _ = baselines
    model = models[name]
    items = sorted(model.embeddings_.keys)
    deny = items[::3]
    allow = items[1::4]
    with _client(root) as c:
        for user in ("b0u2", "b1u0", "b2u5"):
            full = [k for k, _ in model.recommend(user, k=len(items))]  # every unseen item, ranked
            for flt, keep in (({"$key": {"$nin": deny}}, lambda k: k not in deny),
                              ({"$key": {"$in": allow}}, lambda k: k in allow)):
                got = [r["key"] for r in _recs(c, name, user, k=4, filter=flt)["recommendations"]]
                assert got == [k for k in full if keep(k)][:4]
        r = c.get(f"/indexes/{name}/recommend", params={"user": "b0u0", "filter": "{bad"})
        assert r.status_code == 422 and "filter" in r.json()["error"]
