"""The HTTP side of payloads, filters and example queries (issue 13): every answer equals the
Python API's on the same index."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.serve import create_app  # noqa: E402
from embedkit.store import Store  # noqa: E402
from embedkit.trainers.mf import MatrixFactorization  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DIM = 8
COLOURS = ["red", "green", "blue"]
WORDS = {  # royalty, gender (+ male), person, fruit
    "king": [1.0, 1.0, 0.3, 0.0], "queen": [1.0, -1.0, 0.3, 0.0], "man": [0.0, 1.0, 1.0, 0.0],
    "woman": [0.0, -1.0, 1.0, 0.0], "prince": [0.8, 1.0, 0.5, 0.1], "apple": [0.0, 0.0, 0.1, 1.0],
    "pear": [0.1, 0.1, 0.0, 1.0], "child": [0.1, 0.0, 1.0, 0.1],
}


def payload_of(i: int) -> dict:
    p = {"colour": COLOURS[i % 3], "price": float(i), "in_stock": i % 2 == 0, "tags": [f"t{i % 4}", "all"]}
    if i % 5 == 0:
        del p["tags"]  # some items lack a field
    return p


@pytest.fixture()
def store_root(tmp_path):
    root = tmp_path / "store"
    rng = np.random.default_rng(0)
    keys = [f"item-{i:02d}" for i in range(30)]
    idx = ek.VectorIndex(DIM, metric="cosine")
    idx.add(keys, rng.standard_normal((30, DIM)).astype(np.float32), payload=[payload_of(i) for i in range(30)])
    Store(root).save("shop", idx)
    words = ek.VectorIndex(4, metric="cosine")
    words.add(list(WORDS), np.array(list(WORDS.values()), dtype=np.float32))
    Store(root).save("words", words)
    return root


def client(root, **kw):
    return TestClient(create_app(root, token=TOKEN, **kw), base_url="http://127.0.0.1")


def error_of(r) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and body["error"]
    return body["error"]


def keys_of(rows):
    return [r["key"] for r in rows]


# ----------------------------------------------------------------------------- filters
FILTERS = [
    {"colour": "red"},
    {"price": {"$gte": 10, "$lt": 20}},
    {"tags": {"$in": ["t1", "t3"]}},
    {"$or": [{"colour": "blue"}, {"in_stock": False}]},
    {"$not": {"colour": {"$in": ["red", "green"]}}},
    {"$key": {"$nin": ["item-00", "item-03", "item-06"]}, "colour": "red"},
    {"$and": [{"price": {"$gt": 3}}, {"tags": {"$ne": "t2"}}]},
]


@pytest.mark.parametrize("flt", FILTERS)
def test_filtered_search_equals_the_python_api(store_root, flt):
    idx = Store(store_root).load("shop")
    q = np.random.default_rng(1).standard_normal((3, DIM)).astype(np.float32)
    want = idx.search(q, k=5, filter=flt)
    with client(store_root) as c:
        r = c.post("/indexes/shop/search", json={"vectors": q.tolist(), "k": 5, "filter": flt, "include_payload": True})
        assert r.status_code == 200, r.text
        for row, wk in zip(r.json()["results"], want.keys):
            assert keys_of(row) == list(wk)
            for hit in row:
                assert hit["payload"] == idx.payload(hit["key"])
        one = c.post("/indexes/shop/search", json={"vector": q[0].tolist(), "k": 5, "filter": flt}).json()
        assert keys_of(one["neighbors"]) == list(want.keys[0]) and "payload" not in one["neighbors"][0]
        nb = c.get("/indexes/shop/neighbors", params={"key": "item-01", "k": 4, "filter": json.dumps(flt),
                                                      "include_payload": "true"})
        assert nb.status_code == 200, nb.text
        assert keys_of(nb.json()["neighbors"]) == list(idx.search_keys(["item-01"], k=4, filter=flt).keys[0])


def test_filter_keeps_only_matching_items_and_k_when_enough_match(store_root):
    with client(store_root) as c:
        rows = c.post("/indexes/shop/search", json={"vector": [1.0] * DIM, "k": 20, "filter": {"colour": "green"},
                                                    "include_payload": True}).json()["neighbors"]
        assert len(rows) == 10 and all(h["payload"]["colour"] == "green" for h in rows)  # all 10 green items
        none = c.post("/indexes/shop/search", json={"vector": [1.0] * DIM, "k": 5, "filter": {"colour": "pink"}})
        assert none.status_code == 200 and none.json()["neighbors"] == []


@pytest.mark.parametrize("method,path,kw,words", [
    ("get", "/indexes/shop/neighbors", {"params": {"key": "item-01", "filter": "{colour: red}"}},
     "query parameter 'filter': not valid JSON"),
    ("get", "/indexes/shop/neighbors", {"params": {"key": "item-01", "filter": "[1, 2]"}}, "must be a JSON object"),
    ("post", "/indexes/shop/search", {"json": {"vector": [1.0] * DIM, "filter": {"price": {"$near": 3}}}}, "$near"),
    ("post", "/indexes/shop/search", {"json": {"vector": [1.0] * DIM, "filter": {"price": {"$gt": "x"}}}}, "price"),
    ("post", "/indexes/shop/search", {"json": {"vector": [1.0] * DIM, "filter": {"$or": []}}}, "$or"),
    ("post", "/indexes/shop/search", {"json": {"vector": [1.0] * DIM, "filter": "colour=red"}}, "filter"),
])
def test_bad_filters_get_one_line_errors(store_root, method, path, kw, words):
    with client(store_root) as c:
        r = getattr(c, method)(path, **kw)
        assert r.status_code == 422, r.text
        assert words in error_of(r)


def test_oversized_filter_is_refused(store_root):
    big = {"$or": [{"price": i} for i in range(300)]}
    with client(store_root) as c:
        r = c.post("/indexes/shop/search", json={"vector": [1.0] * DIM, "filter": big})
        assert r.status_code == 413 and "more than 256 operators" in error_of(r)
        allow = {"$key": {"$in": [f"item-{i:02d}" for i in range(0, 30, 2)] + [f"x{i}" for i in range(5000)]}}
        r = c.post("/indexes/shop/search", json={"vector": [1.0] * DIM, "k": 30, "filter": allow})
        assert r.status_code == 200 and len(r.json()["neighbors"]) == 15  # a long allow-list is one part


def test_item_endpoint_and_info_show_payloads(store_root):
    with client(store_root) as c:
        item = c.get("/indexes/shop/items/item-07").json()
        assert item["payload"] == payload_of(7) and len(item["vector"]) == DIM
        assert c.get("/indexes/words/items/king").json()["payload"] == {}
        info = c.get("/indexes/shop").json()
        assert info["payload_fields"] == {"colour": "str", "price": "float", "in_stock": "bool", "tags": "strlist"}
        assert c.get("/indexes/words").json()["payload_fields"] == {}


# ----------------------------------------------------------------------------- example queries
def test_king_minus_man_plus_woman(store_root):
    idx = Store(store_root).load("words")
    with client(store_root) as c:
        r = c.post("/indexes/words/examples", json={"positive": ["king", "woman"], "negative": ["man"], "k": 3})
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["neighbors"][0]["key"] == "queen" and got["method"] == "add"
        assert not {"king", "woman", "man"} & set(keys_of(got["neighbors"]))  # inputs excluded
        want = idx.search_examples(positive=["king", "woman"], negative=["man"], k=3)
        assert keys_of(got["neighbors"]) == list(want.keys[0])
        np.testing.assert_allclose([h["score"] for h in got["neighbors"]], want.scores[0], rtol=1e-6)
        mul = c.post("/indexes/words/examples", json={"positive": ["king", "woman"], "negative": ["man"], "k": 3,
                                                      "method": "mul"}).json()
        want = idx.search_examples(positive=["king", "woman"], negative=["man"], k=3, method="mul")
        assert keys_of(mul["neighbors"]) == list(want.keys[0]) and mul["neighbors"][0]["key"] == "queen"
        vec = c.post("/indexes/words/examples", json={"positive": [WORDS["apple"]], "k": 1}).json()
        assert keys_of(vec["neighbors"]) == ["apple"]  # a vector example is not excluded: only keys are


def test_examples_with_filter_and_payload(store_root):
    idx = Store(store_root).load("shop")
    flt = {"colour": {"$ne": "red"}, "in_stock": True}
    want = idx.search_examples(positive=["item-01", "item-02"], negative=["item-09"], k=4, filter=flt)
    with client(store_root) as c:
        r = c.post("/indexes/shop/examples", json={"positive": ["item-01", "item-02"], "negative": ["item-09"],
                                                   "k": 4, "filter": flt, "include_payload": True})
        assert r.status_code == 200, r.text
        rows = r.json()["neighbors"]
        assert keys_of(rows) == list(want.keys[0])
        assert all(h["payload"]["colour"] != "red" and h["payload"]["in_stock"] for h in rows)


@pytest.mark.parametrize("body,status,words", [
    ({"k": 3}, 422, "at least one example"),
    ({"positive": ["unicorn"]}, 404, "positive[0]: key 'unicorn'"),
    ({"positive": ["king"], "negative": [[1.0, 0.0]]}, 422, "negative[0] has dimension 2"),
    ({"positive": ["king"], "method": "sum"}, 422, "method"),
    ({"positive": ["king"], "k": 0}, 422, "'k'"),
    ({"positive": ["king"], "filter": {"colour": {"$bad": 1}}}, 422, "$bad"),
    ({"positive": ["king"], "colour": 1}, 422, "colour"),
])
def test_bad_example_queries(store_root, body, status, words):
    with client(store_root) as c:
        r = c.post("/indexes/words/examples", json=body)
        assert r.status_code == status, r.text
        assert words in error_of(r)


# ----------------------------------------------------------------------------- writes with payloads
def test_upsert_with_payload_is_journalled_and_filterable(store_root):
    with client(store_root) as c:
        items = [{"key": "new-1", "vector": [1.0] * DIM, "payload": {"colour": "pink", "price": 99}},
                 {"key": "item-03", "vector": [0.5] * DIM, "payload": {"colour": "pink"}}]
        r = c.post("/indexes/shop/items", json={"items": items}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert c.get("/indexes/shop/items/item-03").json()["payload"] == {"colour": "pink"}  # replaced, not merged
        rows = c.post("/indexes/shop/search", json={"vector": [1.0] * DIM, "k": 5,
                                                    "filter": {"colour": "pink"}}).json()["neighbors"]
        assert sorted(keys_of(rows)) == ["item-03", "new-1"]
        kept = c.post("/indexes/shop/items", json={"items": [{"key": "item-04", "vector": [0.1] * DIM}]}, headers=AUTH)
        assert kept.status_code == 200
        assert c.get("/indexes/shop/items/item-04").json()["payload"] == payload_of(4)  # no payload given: kept
        mixed = [{"key": "a", "vector": [1.0] * DIM, "payload": {"colour": "red"}}, {"key": "b", "vector": [1.0] * DIM}]
        r = c.post("/indexes/shop/items", json={"items": mixed}, headers=AUTH)
        assert r.status_code == 422 and "on every item of a request or on none" in error_of(r)
        r = c.post("/indexes/shop/items", json={"items": [{"key": "c", "vector": [1.0] * DIM,
                                                           "payload": {"price": "cheap"}}]}, headers=AUTH)
        assert r.status_code == 422 and "price" in error_of(r)
        assert c.get("/indexes/shop/items/c").status_code == 404
    with client(store_root) as c:  # after a restart (journal replayed or compacted)
        assert c.get("/indexes/shop/items/new-1").json()["payload"] == {"colour": "pink", "price": 99.0}
        assert c.get("/indexes/shop/items/item-03").json()["payload"] == {"colour": "pink"}
        assert c.get("/indexes/shop/items/item-04").json()["payload"] == payload_of(4)


# ----------------------------------------------------------------------------- recommendations
def test_recommend_with_a_filter(tmp_path):
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(30):
        for i in rng.choice(12, 5, replace=False):
            users.append(f"user{u:02d}")
            items.append(f"{'AB'[u % 2]}{i}")
    model = MatrixFactorization(method="als", dim=4, epochs=3, seed=0)
    model.fit(ek.Interactions.from_arrays(users, items), show_progress=False)
    model.set_item_payload({key: {"group": key[0], "n": int(key[1:])} for key in set(items)})
    root = tmp_path / "mf"
    model.to_store("recs", Store(root))
    top = model.recommend("user00", k=3)
    deny = {"$key": {"$nin": [top[0][0]]}}
    allow = {"$key": {"$in": [k for k, _ in top[1:]]}}
    other_group = {"group": "B" if top[0][0].startswith("A") else "A", "n": {"$lt": 8}}
    with client(root) as c:
        r = c.get("/indexes/recs/recommend", params={"user": "user00", "k": 4, "filter": json.dumps(other_group),
                                                     "include_payload": True})
        assert r.status_code == 200, r.text
        got = r.json()["recommendations"]
        assert [x["key"] for x in got] == [k for k, _ in model.recommend("user00", k=4, filter=other_group)]
        assert len(got) == 4 and all(x["payload"]["group"] == other_group["group"] and x["payload"]["n"] < 8 for x in got)
        for flt in (deny, allow):
            r = c.get("/indexes/recs/recommend", params={"user": "user00", "k": 3, "filter": json.dumps(flt)})
            assert r.status_code == 200, r.text
            got = [x["key"] for x in r.json()["recommendations"]]
            assert got == [k for k, _ in model.recommend("user00", k=3, filter=flt)]
            assert r.json()["filter"] == flt
        assert top[0][0] not in [x["key"] for x in c.get("/indexes/recs/recommend", params={
            "user": "user00", "filter": json.dumps(deny)}).json()["recommendations"]]
        r = c.get("/indexes/recs/recommend", params={"user": "user00", "filter": "{"})
        assert r.status_code == 422 and "query parameter 'filter'" in error_of(r)
