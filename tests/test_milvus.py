"""VectorIndex(backend="milvus") against the real Milvus engine (milvus-lite 2.x embeds it), compared
with the FAISS backend on the same data: the API, results, every filter operator, push and serve."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

import embedkit as ek  # noqa: E402
from embedkit.cli import main  # noqa: E402
from embedkit.errors import InputError, MissingKeyError, StoreError  # noqa: E402
from embedkit.index._milvus import MilvusIndex  # noqa: E402
from embedkit.index._milvus_client import open_clients, release  # noqa: E402
from embedkit.store import Store  # noqa: E402

DIM = 16
COLOURS = ["red", "green", "blue", "Red"]


@pytest.fixture(scope="module")
def uri(tmp_path_factory):
    """One embedded engine (one .db file) for the module; every test uses its own collection. Closed
    at the end (the indexes the tests leave open are released here)."""
    path = str(tmp_path_factory.mktemp("milvus") / "test.db")
    yield path
    while path in open_clients():
        release(path)


def payload_of(i: int) -> dict:
    p = {"colour": COLOURS[i % 4], "price": float(i % 37) + 0.5, "qty": i % 11, "sale": i % 3 == 0,
         "tags": [f"t{i % 5}", f"t{(i + 2) % 7}"]}
    if i % 6 == 0:
        del p["tags"]
    if i % 10 == 0:
        del p["price"]
    if i % 13 == 0:
        del p["colour"]
    return p


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    keys = [f"item-{i:03d}" for i in range(n)]
    return keys, rng.standard_normal((n, DIM)).astype(np.float32), [payload_of(i) for i in range(n)]


def pair(uri, collection, metric="cosine", n=200, payload=True):
    """The same items in a Milvus index and a FAISS flat index."""
    keys, X, P = data(n)
    m = ek.VectorIndex(DIM, metric=metric, backend="milvus", uri=uri, collection=collection)
    f = ek.VectorIndex(DIM, metric=metric)
    m.add(keys, X, payload=P if payload else None)
    f.add(keys, X, payload=P if payload else None)
    return m, f, keys, X


def test_api(uri):
    keys, X, P = data(20)
    idx = ek.VectorIndex(DIM, metric="cosine", backend="milvus", uri=uri, collection="api")
    assert isinstance(idx, MilvusIndex) and len(idx) == 0
    idx.add(keys[:10], X[:10], payload=P[:10])
    assert len(idx) == 10 and "item-003" in idx and "item-015" not in idx and 3 not in idx
    np.testing.assert_array_equal(idx.get_vectors(["item-004", "item-001"]), X[[4, 1]])  # stored as given
    assert idx.payload("item-001") == P[1]
    assert idx.payload_fields == {"colour": "str", "price": "float", "qty": "int", "sale": "bool", "tags": "strlist"}
    with pytest.raises(InputError, match="already in the index; use upsert"):
        idx.add(["item-000"], X[:1])
    idx.upsert(["item-000", "item-010"], X[[11, 10]])  # replaces one, inserts one; payload None keeps the old
    assert len(idx) == 11 and idx.payload("item-000") == P[0] and idx.payload("item-010") == {}
    np.testing.assert_array_equal(idx.get_vectors(["item-000"])[0], X[11])
    idx.set_payload(["item-010"], [{"colour": "blue"}])
    assert idx.payload("item-010") == {"colour": "blue"}
    assert idx.remove(["item-001", "item-002"]) == 2 and len(idx) == 9 and "item-001" not in idx
    with pytest.raises(KeyError, match="item-001"):
        idx.remove(["item-001"])
    assert idx.remove(["item-001", "item-003"], missing_ok=True) == 1
    with pytest.raises(KeyError):
        idx.get_vectors(["nope"])
    res = idx.search_keys(["item-000"], k=3)
    assert "item-000" not in res.keys[0] and len(res.keys[0]) == 3
    # odd but legal keys: quotes, backslashes, unicode, the empty string
    odd = ['say "hi"', "back\\slash", "ключ ✓", ""]
    idx.add(odd, X[12:16])
    assert all(k in idx for k in odd)
    np.testing.assert_array_equal(idx.get_vectors(odd), X[12:16])
    assert idx.search(X[13], k=1).keys[0] == ["back\\slash"]
    assert idx.remove(odd) == 4


def test_reopen_and_save(uri, tmp_path):
    m, f, keys, X = pair(uri, "reopen", metric="ip", n=50)
    m.set_meta({"trainer": "test"})
    again = MilvusIndex.open(uri, "reopen")
    assert (len(again), again.dim, again.metric, again.meta) == (50, DIM, "ip", {"trainer": "test"})
    assert again.payload_fields == m.payload_fields
    same = ek.VectorIndex(DIM, metric="ip", backend="milvus", uri=uri, collection="reopen")  # opens, does not wipe
    assert len(same) == 50
    with pytest.raises(InputError, match="dim=16, metric='ip'"):
        ek.VectorIndex(8, metric="ip", backend="milvus", uri=uri, collection="reopen")
    with pytest.raises(MissingKeyError, match="no embedkit index in collection 'nothing_here'"):
        MilvusIndex.open(uri, "nothing_here")
    m.save(tmp_path / "copy")  # a FAISS copy of the collection
    copy = ek.VectorIndex.load(tmp_path / "copy")
    assert sorted(copy.keys) == sorted(keys) and copy.meta == {"trainer": "test"}
    np.testing.assert_array_equal(copy.get_vectors(keys), X)
    assert copy.payload("item-007") == payload_of(7)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_agrees_with_faiss_flat(uri, metric):
    m, f, keys, X = pair(uri, f"agree_{metric}", metric=metric, n=2000, payload=False)
    Q = np.random.default_rng(1).standard_normal((50, DIM)).astype(np.float32)
    a, b = m.search(Q, k=10), f.search(Q, k=10)
    agreement = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a.keys, b.keys)])
    assert agreement >= 0.95, agreement
    np.testing.assert_allclose(np.asarray(a.scores), np.asarray(b.scores), rtol=1e-4, atol=1e-4)  # l2: distances
    a, b = m.search_keys(keys[:20], k=10), f.search_keys(keys[:20], k=10)
    assert np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a.keys, b.keys)]) >= 0.95
    assert all(k not in row for k, row in zip(keys[:20], a.keys))
    assert m.search(Q[0], k=5).keys[0] == f.search(Q[0], k=5).keys[0]  # one query given as a 1-D vector
    ex_m = m.search_examples(positive=[keys[0], keys[1]], negative=[keys[2]], k=5)
    ex_f = f.search_examples(positive=[keys[0], keys[1]], negative=[keys[2]], k=5)
    assert ex_m.keys == ex_f.keys


FILTERS = [
    {}, {"colour": "red"}, {"colour": {"$eq": "Red"}}, {"colour": {"$ne": "red"}}, {"colour": {"$in": ["red", "blue"]}},
    {"colour": {"$nin": ["red", "blue"]}}, {"colour": {"$gt": "green"}}, {"colour": {"$lte": "green"}},
    {"price": {"$gte": 10, "$lt": 20}}, {"price": {"$gt": 30.5}}, {"price": {"$lte": 3}}, {"price": {"$ne": 4.5}},
    {"price": {"$in": [1.5, 2.5, 3]}}, {"price": {"$nin": [1.5, 2.5]}},
    {"qty": 3}, {"qty": {"$in": [1, 2, 3]}}, {"qty": {"$nin": [0, 1]}}, {"qty": {"$gt": 7}}, {"qty": {"$in": [2.0, 4.5]}},
    {"sale": True}, {"sale": {"$ne": True}}, {"sale": {"$in": [False]}},
    {"tags": "t1"}, {"tags": {"$in": ["t0", "t6"]}},
    {"$or": [{"colour": "red"}, {"qty": {"$gt": 8}}]}, {"$and": [{"sale": False}, {"tags": "t2"}]},
    {"$not": {"price": {"$gt": 10}}}, {"$not": {"colour": {"$lt": "m"}}}, {"price": {"$not": {"$gte": 20}}},
    {"$not": {"$or": [{"colour": "red"}, {"qty": {"$lte": 4}}]}}, {"$not": {"$and": [{"sale": True}, {"qty": 3}]}},
    {"$not": {"colour": {"$in": ["red"]}}}, {"$not": {}},
    {"$key": "item-005"}, {"$key": {"$in": ["item-001", "item-009", "missing"]}}, {"$key": {"$nin": ["item-001"]}},
    {"$key": {"$ne": "item-002"}}, {"nobody": "x"}, {"nobody": {"$ne": 3}}, {"nobody": {"$nin": ["a"]}},
    {"colour": {"$in": []}}, {"colour": {"$nin": []}}, {"$or": [{"nobody": 1}, {}]},
    '{"colour": "green", "qty": {"$lt": 5}}',
]


def test_every_filter_operator_matches_faiss(uri):
    m, f, keys, X = pair(uri, "filters")
    q = X[:2] + 0.1
    for flt in FILTERS:
        a, b = m.search(q, k=len(keys), filter=flt), f.search(q, k=len(keys), filter=flt)
        for x, y in zip(a.keys, b.keys):
            assert sorted(x) == sorted(y), flt  # the whole matching set (ties may order differently)
        assert a.keys[0][:3] == b.keys[0][:3], flt
    a = m.search_keys(["item-004"], k=5, filter={"colour": "green"})
    b = f.search_keys(["item-004"], k=5, filter={"colour": "green"})
    assert a.keys == b.keys


def test_untranslatable_filters_and_type_errors(uri):
    m, f, keys, X = pair(uri, "badfilters", n=30)
    for flt, msg in (({"tags": {"$gt": "t"}}, "cannot be expressed in Milvus"),
                     ({"tags": {"$ne": "t1"}}, "needs NOT, which milvus-lite lacks"),
                     ({"$not": {"tags": {"$in": ["t1"]}}}, "needs NOT"),
                     ({"colour": "a\nb"}, "line break"),
                     ({"price": {"$gt": float("inf")}}, "not finite")):
        with pytest.raises(InputError, match=msg) as err:
            m.search(X[0], k=3, filter=flt)
        assert "\n" not in str(err.value)
    for flt in ({"price": {"$gt": "x"}}, {"sale": {"$gt": True}}, {"colour": 3}, {"$bad": 1}, {"qty": [1, 2]}):
        with pytest.raises(InputError) as em:
            m.search(X[0], k=3, filter=flt)
        with pytest.raises(InputError) as ef:
            f.search(X[0], k=3, filter=flt)
        assert str(em.value) == str(ef.value)


def test_bad_input_same_errors_as_faiss(uri, monkeypatch, tmp_path):
    m = ek.VectorIndex(4, backend="milvus", uri=uri, collection="badinput")
    f = ek.VectorIndex(4)
    for call in (lambda i: i.add(["a"], np.ones((1, 3))), lambda i: i.add(["a"], [[1, np.nan, 0, 0]]),
                 lambda i: i.add(["a"], [[0, 0, 0, 0]]), lambda i: i.search(np.ones(5), k=1),
                 lambda i: i.add([1], np.ones((1, 4))), lambda i: i.add(["a", "a"], np.ones((2, 4))),
                 lambda i: i.search(np.ones(4), k=0), lambda i: i.add(["a"], np.ones((1, 4)), payload=[{"x": {"y": 1}}])):
        with pytest.raises(InputError) as em:
            call(m)
        with pytest.raises(InputError) as ef:
            call(f)
        assert str(em.value) == str(ef.value)
    assert len(m) == 0
    with pytest.raises(InputError, match="at most 65535 bytes"):
        m.add(["x" * 70000], np.ones((1, 4)))
    with pytest.raises(InputError, match="line break"):
        m.add(["a\nb"], np.ones((1, 4)))
    with pytest.raises(InputError, match="milvus-lite .* supports flat and ivf only"):
        ek.VectorIndex(4, kind="hnsw", backend="milvus", uri=uri, collection="hnsw")
    for bad, msg in (("vectors.txt", "must end in .db"), (str(tmp_path / "no" / "x.db"), "does not exist"),
                     ("ftp://host/x", "give a local file path ending in .db"), (None, "needs uri=")):
        with pytest.raises(InputError, match=msg):
            ek.VectorIndex(4, backend="milvus", uri=bad)
    with pytest.raises(InputError, match="'backend' parameter"):
        ek.VectorIndex(4, backend="milvs")
    with pytest.raises(InputError, match="belong to backend='milvus'"):
        ek.VectorIndex(4, uri=uri)
    with pytest.raises(StoreError, match="cannot open Milvus at http://127.0.0.1:9 "):  # nothing listens there
        ek.VectorIndex(4, backend="milvus", uri="http://127.0.0.1:9", timeout=1)
    monkeypatch.setitem(sys.modules, "pymilvus", None)  # as if the extra were not installed
    with pytest.raises(InputError, match=r"pip install 'embedkit\[milvus\]'"):
        ek.VectorIndex(4, backend="milvus", uri=uri, collection="nopymilvus")


def test_cli_serve_needs_uri(capsys):
    code = main(["serve", "--backend", "milvus"])
    err = capsys.readouterr().err
    assert code != 0 and "--backend milvus needs --uri" in err and err.count("\n") == 1


def test_ivf_kind(uri):
    m = ek.VectorIndex(DIM, "cosine", "ivf", backend="milvus", uri=uri, collection="ivf", nlist=8, nprobe=8)
    f = ek.VectorIndex(DIM, "cosine")
    keys, X, _ = data(300)
    m.add(keys, X)
    f.add(keys, X)
    m.flush()
    assert m.kind == "ivf" and m.params["nprobe"] == 8
    a, b = m.search(X[:20] + 0.05, k=10), f.search(X[:20] + 0.05, k=10)
    # 300 items: Milvus searches the unsealed segment exactly
    assert np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a.keys, b.keys)]) >= 0.95


def run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_push_and_serve(uri, tmp_path, capsys, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from embedkit.serve import create_app

    keys, X, P = data(60)
    root = tmp_path / "store"
    idx = ek.VectorIndex(DIM, metric="cosine")
    idx.add(keys, X, payload=P)
    Store(root).save("shop-v1", idx)
    code, out, err = run(["--store", str(root), "index", "push", "shop-v1", "--to", uri], capsys)
    assert code == 0, err
    assert "pushed 60 items" in out and "'shop_v1'" in out
    # pushing again mirrors the store: items gone from it go from Milvus too
    idx.remove(keys[:5])
    idx.upsert([keys[5]], X[6:7])
    Store(root).save("shop-v1", idx, overwrite=True)
    code, out, err = run(["--store", str(root), "index", "push", "shop-v1", "--to", uri], capsys)
    assert code == 0 and "5 stale items removed; 55 items there now" in out, out + err
    m = MilvusIndex.open(uri, "shop_v1")
    assert len(m) == 55 and keys[0] not in m
    np.testing.assert_array_equal(m.get_vectors([keys[5]])[0], X[6])
    # a failure midway says how far it got; running the push again finishes it
    calls = {"n": 0}
    real = MilvusIndex.upsert

    def flaky(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise StoreError("Milvus: upsert failed (connection reset)")
        return real(self, *a, **kw)

    monkeypatch.setattr(MilvusIndex, "upsert", flaky)
    code, out, err = run(["--store", str(root), "index", "push", "shop-v1", "--to", uri, "--collection", "half",
                          "--batch", "20"], capsys)
    assert code != 0 and "stopped after 20 of 55 items" in err and "run the same push again" in err
    monkeypatch.setattr(MilvusIndex, "upsert", real)
    code, out, err = run(["--store", str(root), "index", "push", "shop-v1", "--to", uri, "--collection", "half"], capsys)
    assert code == 0 and len(MilvusIndex.open(uri, "half")) == 55

    token = "t0ken-for-tests"
    mil = TestClient(create_app(backend="milvus", uri=uri, token=token), base_url="http://127.0.0.1")
    ref = TestClient(create_app(root, token=token), base_url="http://127.0.0.1")
    names = [x["name"] for x in mil.get("/indexes").json()["indexes"]]
    # served under the store's name (the FAISS service's URLs); 'half' (a second copy of shop-v1) by its collection
    assert "shop-v1" in names and "half" in names and "shop_v1" not in names
    info = mil.get("/indexes/shop-v1").json()
    assert info["count"] == 55 and info["payload_fields"]["tags"] == "strlist"
    flt = json.dumps({"colour": {"$in": ["red", "blue"]}, "qty": {"$lt": 8}})
    a = mil.get("/indexes/shop-v1/neighbors", params={"key": keys[7], "k": 5, "filter": flt, "include_payload": True})
    b = ref.get("/indexes/shop-v1/neighbors", params={"key": keys[7], "k": 5, "filter": flt, "include_payload": True})
    assert a.status_code == 200, a.text
    assert [r["key"] for r in a.json()["neighbors"]] == [r["key"] for r in b.json()["neighbors"]]
    assert [r["payload"] for r in a.json()["neighbors"]] == [r["payload"] for r in b.json()["neighbors"]]
    body = {"vector": X[9].tolist(), "k": 4, "filter": {"sale": True}}
    a, b = mil.post("/indexes/shop-v1/search", json=body), ref.post("/indexes/shop-v1/search", json=body)
    assert [r["key"] for r in a.json()["neighbors"]] == [r["key"] for r in b.json()["neighbors"]]
    assert mil.get(f"/indexes/shop-v1/items/{keys[9]}").json()["vector"] == pytest.approx(X[9].tolist())
    assert mil.get("/indexes/shop-v1/keys", params={"prefix": "item-01"}).json()["keys"][:2] == ["item-010", "item-011"]
    assert len(mil.get("/indexes/shop-v1/map", params={"n": 20}).json()["points"]) == 20
    auth = {"Authorization": f"Bearer {token}"}
    r = mil.post("/indexes/shop-v1/items", headers=auth,
                 json={"items": [{"key": "new-item", "vector": X[0].tolist(), "payload": {"colour": "red"}}]})
    assert r.status_code == 200, r.text
    assert "new-item" in m and m.payload("new-item") == {"colour": "red"}
    r = mil.post("/indexes/shop-v1/remove", headers=auth, json={"keys": ["new-item"]})
    assert r.status_code == 200 and r.json()["removed"] == 1 and "new-item" not in m
    r = mil.post("/indexes/shop-v1/examples", json={"positive": [keys[8]], "method": "mul"})
    assert r.status_code == 422 and "not available with backend='milvus'" in r.json()["error"]
    assert mil.get("/indexes/nothing").status_code == 404
    with pytest.raises(MissingKeyError, match="index push"):
        create_app(backend="milvus", uri=uri, names=["absent"])


def test_push_refuses_a_collection_of_another_index(uri, tmp_path, capsys):
    # 'shop-items' and 'shop.items' both map to collection 'shop_items': the second push must not replace the first
    root = tmp_path / "store"
    keys, X, P = data(30)
    a, b = ek.VectorIndex(DIM), ek.VectorIndex(DIM)
    a.add(keys[:20], X[:20], payload=[{"size": i} for i in range(20)])
    b.add(keys[10:], X[10:])
    Store(root).save("shop-items", a)
    Store(root).save("shop.items", b)
    assert run(["--store", str(root), "index", "push", "shop-items", "--to", uri], capsys)[0] == 0
    code, out, err = run(["--store", str(root), "index", "push", "shop.items", "--to", uri], capsys)
    assert code != 0 and err == (f"error: collection 'shop_items' at {uri} holds the index 'shop-items'; 'shop.items' "
                                 "maps to the same collection name: give --collection NAME\n"), err
    m = MilvusIndex.open(uri, "shop_items")
    assert sorted(m.keys) == keys[:20] and m.meta["source_index"] == "shop-items"  # nothing written
    code, out, err = run(["--store", str(root), "index", "push", "shop.items", "--to", uri, "--collection", "shop_items2"],
                         capsys)
    assert code == 0 and len(MilvusIndex.open(uri, "shop_items2")) == 20, err
    # a push mirrors the whole index: a payload field that changed type takes the new type
    a = ek.VectorIndex(DIM)
    a.add(keys[:20], X[:20], payload=[{"size": "SML"[i % 3]} for i in range(20)])
    Store(root).save("shop-items", a, overwrite=True)
    code, out, err = run(["--store", str(root), "index", "push", "shop-items", "--to", uri], capsys)
    assert code == 0, err
    m = MilvusIndex.open(uri, "shop_items")
    assert m.payload_fields == {"size": "str"} and m.payload(keys[4]) == {"size": "M"}
    assert sorted(m.search(X[0], k=30, filter={"size": "M"}).keys[0]) == [keys[i] for i in range(1, 20, 3)]
    names = ek.index._milvus_client.served_names(uri)
    assert names["shop-items"] == "shop_items" and names["shop.items"] == "shop_items2"


PUSH_FAST = """
import sys
from embedkit.cli import main
from embedkit.index import _milvus, _milvus_client
real = _milvus_client.client
_milvus.client = _milvus_client.client = lambda uri, timeout=30.0: real(uri, 1.0)  # give up after 1 s, not 30
sys.exit(main(sys.argv[1:]))
"""


def test_unreachable_server_one_line(tmp_path):
    # pymilvus logs its own ERROR lines to stderr; embedkit's one-line error must be all the user sees
    idx = ek.VectorIndex(4)
    idx.add(["a"], np.ones((1, 4)))
    Store(tmp_path / "store").save("x", idx)
    (tmp_path / "push.py").write_text(PUSH_FAST)
    r = subprocess.run([sys.executable, str(tmp_path / "push.py"), "--store", str(tmp_path / "store"), "index", "push",
                        "x", "--to", "http://127.0.0.1:1"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "EMBEDKIT_NUM_THREADS": "1"})
    assert r.returncode != 0 and r.stdout == "", r.stdout
    assert r.stderr.startswith("error: cannot open Milvus at http://127.0.0.1:1 ") and r.stderr.count("\n") == 1, r.stderr


HOLDER = """
import sys
import numpy as np
import embedkit as ek
idx = ek.VectorIndex(4, backend="milvus", uri=sys.argv[1], collection="held")
idx.add(["a"], np.ones((1, 4)))
print("ready", flush=True)
sys.stdin.read()
idx.add(["b"], np.full((1, 4), 2.0))
idx.close()
"""


def test_a_held_file_stays_refused_and_close_frees_it(tmp_path):
    # milvus-lite deletes its lock after a refused open, so a second try used to open the file a live process holds
    db = str(tmp_path / "held.db")
    (tmp_path / "holder.py").write_text(HOLDER)
    env = {**os.environ, "EMBEDKIT_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, str(tmp_path / "holder.py"), db], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
        for _ in range(2):
            with pytest.raises(StoreError, match="is held by another process") as err:
                ek.VectorIndex(4, backend="milvus", uri=db, collection="held")
            assert "\n" not in str(err.value)
        assert db not in open_clients()
    finally:
        p.stdin.close()
        assert p.wait(timeout=60) == 0
    with MilvusIndex.open(db, "held") as idx:  # the holder's writes are all there
        assert sorted(idx.keys) == ["a", "b"]
        assert open_clients()[db] == 1
    assert db not in open_clients()  # the last user closed it: engine stopped, file unlocked
    with open(db + ".embedkit.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    with pytest.raises(InputError, match="was closed"):
        len(idx)
    idx.close()  # closing twice is fine


def test_close_counts_users(uri):
    before = open_clients()[uri]
    with ek.VectorIndex(DIM, backend="milvus", uri=uri, collection="closing") as idx:
        idx.add(["a"], np.ones((1, DIM)))
        again = MilvusIndex.open(uri, "closing")
        assert open_clients()[uri] == before + 2
    assert open_clients()[uri] == before + 1 and len(again) == 1  # another user keeps the client open
    again.close()
    assert open_clients()[uri] == before
