"""The HTTP service: reads, writes, validation, tokens, concurrency and durability across restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.cli import main  # noqa: E402
from embedkit.serve import create_app  # noqa: E402
from embedkit.store import Store  # noqa: E402
from embedkit.store.journal import JOURNAL_FILE  # noqa: E402
from embedkit.trainers.mf import MatrixFactorization  # noqa: E402

TOKEN = "s3cret-token"
LOCAL = "http://127.0.0.1"  # the Host header must be an allowed (loopback) name
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DIM = 4


def two_clusters():
    """a0..a4 around e1, b0..b4 around e2: every a's neighbours are the other a's first."""
    rng = np.random.default_rng(0)
    keys = [f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)]
    base = np.repeat(np.eye(DIM, dtype=np.float32)[:2], 5, axis=0)
    return keys, (base + 0.05 * rng.standard_normal((10, DIM))).astype(np.float32)


@pytest.fixture()
def store_root(tmp_path):
    root = tmp_path / "store"
    store = Store(root)
    keys, vecs = two_clusters()
    store.save("toy", ek.Embeddings(keys, vecs).to_index(metric="cosine"),
               meta={"trainer": "Hand", "loss_history": [3.0, 2.0, 1.0]})
    store.save("dist", ek.Embeddings(keys, vecs).to_index(metric="l2"))
    return root


def client(root, token=TOKEN, **kw):
    return TestClient(create_app(root, token=token, **kw), base_url=LOCAL)


def error_of(r) -> str:
    body = r.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and body["error"]
    return body["error"]


# ----------------------------------------------------------------------------- reads
def test_list_info_and_neighbours(store_root):
    with client(store_root) as c:
        names = {ix["name"]: ix for ix in c.get("/indexes").json()["indexes"]}
        assert set(names) == {"toy", "dist"}
        assert names["toy"]["count"] == 10 and names["toy"]["dim"] == DIM and not names["toy"]["recommender"]
        info = c.get("/indexes/toy").json()
        assert info["meta"]["loss_history"] == [3.0, 2.0, 1.0] and info["score"] == "similarity"
        r = c.get("/indexes/toy/neighbors", params={"key": "a0", "k": 4})
        assert r.status_code == 200
        got = r.json()["neighbors"]
        assert sorted(n["key"] for n in got) == ["a1", "a2", "a3", "a4"]
        scores = [n["score"] for n in got]
        assert scores == sorted(scores, reverse=True) and scores[0] <= 1.0001
        assert c.get("/indexes/toy/keys", params={"prefix": "B", "limit": 3}).json()["keys"] == ["b0", "b1", "b2"]
        item = c.get("/indexes/toy/items/a3").json()
        assert len(item["vector"]) == DIM
        assert c.get("/health").json()["writes"] is True
        assert "/indexes/{name}/neighbors" in c.get("/openapi.json").json()["paths"]
        docs = c.get("/docs")
        assert docs.status_code == 200 and "/docs-static/swagger-ui-bundle.js" in docs.text  # no CDN
        assert c.get("/docs-static/swagger-ui-bundle.js").status_code == 200


def test_search_by_vector_single_and_batch(store_root):
    with client(store_root) as c:
        one = c.post("/indexes/toy/search", json={"vector": [0, 1, 0, 0], "k": 5}).json()
        assert {n["key"] for n in one["neighbors"]} == {f"b{i}" for i in range(5)}
        many = c.post("/indexes/dist/search", json={"vectors": [[1, 0, 0, 0], [0, 1, 0, 0]], "k": 2}).json()
        assert many["score"] == "distance"
        assert all(n["key"].startswith("a") for n in many["results"][0])
        assert all(n["key"].startswith("b") for n in many["results"][1])
        d = [n["score"] for n in many["results"][0]]
        assert d == sorted(d)  # distances: closest first


def test_names_served_only(store_root):
    with TestClient(create_app(store_root, names=["toy"]), base_url=LOCAL) as c:
        assert [ix["name"] for ix in c.get("/indexes").json()["indexes"]] == ["toy"]
        r = c.get("/indexes/dist/neighbors", params={"key": "a0"})
        assert r.status_code == 404 and "not served" in error_of(r)
    with pytest.raises(KeyError):
        create_app(store_root, names=["missing"])


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("method,path,kw,status,words", [
    ("get", "/indexes/nope", {}, 404, "no index named 'nope'"),
    ("get", "/indexes/nope/neighbors", {"params": {"key": "a0"}}, 404, "no index named"),
    ("get", "/indexes/toy/neighbors", {"params": {"key": "zz"}}, 404, "key 'zz' is not in index"),
    ("get", "/indexes/toy/items/zz", {}, 404, "key 'zz'"),
    ("get", "/indexes/toy/neighbors", {"params": {"key": "a0", "k": 0}}, 422, "'k'"),
    ("get", "/indexes/toy/neighbors", {"params": {"key": "a0", "k": 1001}}, 422, "'k'"),
    ("get", "/indexes/toy/neighbors", {"params": {"key": "a0", "k": "ten"}}, 422, "'k'"),
    ("get", "/indexes/toy/neighbors", {}, 422, "'key'"),
    ("post", "/indexes/toy/search", {"json": {"vector": [1, 0, 0]}}, 422, "dimension 3"),
    ("post", "/indexes/toy/search", {"json": {"vectors": [[1, 0, 0, 0], [1, 0]]}}, 422, "query 1 has dimension 2"),
    ("post", "/indexes/toy/search", {"json": {"vector": [1, 0, 0, 0], "vectors": [[1, 0, 0, 0]]}}, 422, "exactly one"),
    ("post", "/indexes/toy/search", {"json": {"vector": [1, 0, 0, 0], "k": 0}}, 422, "'k'"),
    ("post", "/indexes/toy/search", {"json": {"vector": [1, 0, 0, 0], "colour": 1}}, 422, "colour"),
    ("post", "/indexes/toy/search", {"json": {"vector": ["x", 0, 0, 0]}}, 422, "vector"),
    ("post", "/indexes/toy/search", {"content": b'{"vector": [1, 0, 0, 0]', "headers": {"content-type": "application/json"}},
     400, "malformed JSON"),
    ("post", "/indexes/toy/search", {"content": b'{"vector": [NaN, 0, 0, 0]}', "headers": {"content-type": "application/json"}},
     422, "NaN"),
    ("get", "/indexes/bad..name/neighbors", {"params": {"key": "a0"}}, 400, "not allowed"),
    ("get", "/indexes/.hidden", {}, 400, "not allowed"),
    ("get", "/indexes/%2e%2e/neighbors", {"params": {"key": "a0"}}, 400, "not allowed"),
    ("get", "/nothing/here", {}, 404, "no such endpoint"),
    ("get", "/indexes/toy/recommend", {"params": {"user": "u1"}}, 422, "no user vectors"),
])
def test_bad_requests_get_one_line_errors(store_root, method, path, kw, status, words):
    with client(store_root) as c:
        r = getattr(c, method)(path, **kw)
        assert r.status_code == status, r.text
        assert words in error_of(r)


def test_oversized_bodies_are_refused(store_root):
    with client(store_root, max_body_bytes=2000) as c:
        big = {"vectors": [[1.0, 0.0, 0.0, 0.0]] * 400}
        r = c.post("/indexes/toy/search", json=big)
        assert r.status_code == 413 and "larger than the limit of 2000 bytes" in error_of(r)

        def chunks():  # no Content-Length: the limit is enforced while the body streams
            yield b'{"vectors": ['
            for _ in range(400):
                yield b"[1.0, 0.0, 0.0, 0.0],"
            yield b"[1.0, 0.0, 0.0, 0.0]]}"

        r = c.post("/indexes/toy/search", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413 and "limit" in error_of(r)
        assert c.post("/indexes/toy/search", json={"vector": [1, 0, 0, 0]}).status_code == 200


# ----------------------------------------------------------------------------- token
def test_writes_disabled_without_token(store_root):
    with client(store_root, token=None) as c:
        r = c.post("/indexes/toy/items", json={"items": [{"key": "n", "vector": [1, 1, 0, 0]}]}, headers=AUTH)
        assert r.status_code == 403 and "--token" in error_of(r)
        assert c.post("/indexes/toy/remove", json={"keys": ["a0"]}).status_code == 403
        assert c.delete("/indexes/toy/items/a0").status_code == 403
        assert c.get("/indexes/toy/neighbors", params={"key": "a0"}).status_code == 200  # reads stay open
    with pytest.raises(ValueError):
        create_app(store_root, token="")
    with pytest.raises(ValueError, match="faiss_threads"):
        create_app(store_root, faiss_threads=0)


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                                     {"Authorization": f"Basic {TOKEN}"}])
def test_writes_need_the_right_token(store_root, headers):
    with client(store_root) as c:
        r = c.post("/indexes/toy/items", json={"items": [{"key": "n", "vector": [1, 1, 0, 0]}]}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert "token" in error_of(r)
        assert "n" not in [k for k in c.get("/indexes/toy/keys", params={"prefix": "n"}).json()["keys"]]


# ----------------------------------------------------------------------------- writes
def test_upsert_remove_and_their_validation(store_root):
    with client(store_root) as c:
        r = c.post("/indexes/toy/items", headers=AUTH,
                   json={"items": [{"key": "new", "vector": [0, 1, 0, 0]}, {"key": "a0", "vector": [0, 1, 0.01, 0]}]})
        assert r.status_code == 200 and r.json()["count"] == 11 and r.json()["durable"] is True
        near = [n["key"] for n in c.get("/indexes/toy/neighbors", params={"key": "new", "k": 2}).json()["neighbors"]]
        assert "a0" in near  # a0 was moved next to "new"
        bad = [
            ({"items": [{"key": "x", "vector": [1, 0]}]}, 422, "dimension 2"),
            ({"items": [{"key": "x", "vector": [0, 0, 0, 0]}]}, 422, "all zeros"),
            ({"items": [{"key": "x", "vector": [1e39, 0, 0, 0]}]}, 422, "finite"),
            ({"items": [{"key": "x", "vector": [1, 0, 0, 0]}, {"key": "x", "vector": [1, 0, 0, 0]}]}, 422, "twice"),
            ({"items": []}, 422, "items"),
            ({"items": [{"key": "", "vector": [1, 0, 0, 0]}]}, 422, "key"),
            ({"things": []}, 422, "items"),
        ]
        for body, status, words in bad:
            r = c.post("/indexes/toy/items", json=body, headers=AUTH)
            assert r.status_code == status, (body, r.text)
            assert words in error_of(r), (body, r.text)
        assert c.get("/indexes/toy").json()["count"] == 11  # nothing half-applied

        r = c.post("/indexes/toy/remove", json={"keys": ["b0", "zz"]}, headers=AUTH)
        assert r.status_code == 404 and "'zz'" in error_of(r)
        assert c.get("/indexes/toy/items/b0").status_code == 200  # all-or-nothing
        r = c.post("/indexes/toy/remove", json={"keys": ["b0", "zz"], "missing_ok": True}, headers=AUTH)
        assert r.json() == {"index": "toy", "removed": 1, "count": 10, "durable": True}
        assert c.delete("/indexes/toy/items/b1", headers=AUTH).json()["count"] == 9
        assert c.delete("/indexes/toy/items/b1", headers=AUTH).status_code == 404
        keys = [n["key"] for n in c.get("/indexes/toy/neighbors", params={"key": "b2", "k": 20}).json()["neighbors"]]
        assert "b0" not in keys and "b1" not in keys and len(keys) == 8


def test_acknowledged_writes_survive_a_crash(store_root):
    """No shutdown (the lifespan never ends): the journal alone must carry the writes."""
    app = create_app(store_root, token=TOKEN)
    c = TestClient(app, base_url=LOCAL)  # not entered: like a process killed before its shutdown hook
    vec = [0.25, -0.5, 0.125, 1.0]
    assert c.post("/indexes/toy/items", json={"items": [{"key": "kept", "vector": vec}]}, headers=AUTH).status_code == 200
    assert c.post("/indexes/toy/remove", json={"keys": ["a1"]}, headers=AUTH).status_code == 200
    assert (store_root / "toy" / JOURNAL_FILE).exists()
    # a torn last line (a crash mid-append; never acknowledged) must not stop the replay
    with open(store_root / "toy" / JOURNAL_FILE, "ab") as fh:
        fh.write(b'{"op":"upsert","keys":["torn"],"vec')
    with client(store_root) as c2:
        assert c2.get("/indexes/toy/items/kept").json()["vector"] == vec  # bit-exact
        assert c2.get("/indexes/toy/items/a1").status_code == 404
        assert c2.get("/indexes/toy/items/torn").status_code == 404
        assert c2.post("/indexes/toy/items", json={"items": [{"key": "after", "vector": [1, 2, 3, 4]}]},
                       headers=AUTH).status_code == 200
    # the graceful shutdown folded the journal into the saved index: plain loads see everything
    assert not (store_root / "toy" / JOURNAL_FILE).exists()
    idx = Store(store_root).load("toy")
    assert "kept" in idx and "after" in idx and "a1" not in idx and "torn" not in idx
    assert idx.meta["trainer"] == "Hand"


def test_compaction_keeps_extras_and_meta(tmp_path):
    root = tmp_path / "s"
    keys, vecs = two_clusters()
    extra = {"users": {"keys": np.array(["x"]), "vectors": np.ones((1, DIM), np.float32)}}
    Store(root).save("e", ek.Embeddings(keys, vecs).to_index(), meta={"note": "keep"}, extras=extra)
    with client(root, compact_every=2) as c:
        for i in range(5):
            assert c.post("/indexes/e/items", json={"items": [{"key": f"k{i}", "vector": [1, i, 0, 0]}]},
                          headers=AUTH).status_code == 200
        c.post("/indexes/e/compact", headers=AUTH)
        assert c.get("/indexes/e").json()["journal_entries"] == 0
    store = Store(root)
    assert len(store.load("e")) == 15 and store.info("e")["meta"] == {"note": "keep"}
    assert store.load_extra("e", "users")["keys"].tolist() == ["x"]


def test_index_replaced_or_deleted_on_disk(store_root):
    with client(store_root) as c:
        assert c.get("/indexes/toy").json()["count"] == 10
        Store(store_root).save("toy", ek.Embeddings(["p", "q", "r"], np.eye(3, DIM, dtype=np.float32)).to_index(),
                               overwrite=True)
        assert c.get("/indexes/toy").json()["count"] == 3
        assert c.get("/indexes/toy/keys").json()["keys"] == ["p", "q", "r"]
        Store(store_root).delete("toy")
        r = c.get("/indexes/toy/neighbors", params={"key": "p"})
        assert r.status_code == 404 and "deleted" in error_of(r)
        r = c.post("/indexes/toy/items", json={"items": [{"key": "z", "vector": [1, 0, 0, 0]}]}, headers=AUTH)
        assert r.status_code == 404 and "no index named 'toy'" in error_of(r)
        assert [ix["name"] for ix in c.get("/indexes").json()["indexes"]] == ["dist"]
    assert not (store_root / "toy").exists()  # the shutdown did not resurrect it


# ----------------------------------------------------------------------------- concurrency
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn in a thread on 127.0.0.1 (real sockets, real thread pool)."""

    def __init__(self, app):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            assert time.time() < deadline, "server did not start"
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(20)


def test_concurrent_readers_and_writers(store_root):
    errors, acked = [], {}
    lock = threading.Lock()

    def reader(url, n):
        with httpx.Client(base_url=url, timeout=30) as h:
            for i in range(n):
                r = h.get("/indexes/toy/neighbors", params={"key": f"a{i % 5}", "k": 3})
                if r.status_code != 200 or len(r.json()["neighbors"]) != 3:
                    errors.append(r.text)

    def writer(url, w, n):
        rng = np.random.default_rng(w)
        with httpx.Client(base_url=url, timeout=30, headers=AUTH) as h:
            for i in range(n):
                key = f"w{w}-{i % 7}"  # replacements as well as inserts
                vec = (rng.standard_normal(DIM) + 0.1).astype(np.float32).tolist()
                r = h.post("/indexes/toy/items", json={"items": [{"key": key, "vector": vec}]})
                if r.status_code == 200:
                    with lock:
                        acked[key] = vec
                else:
                    errors.append(r.text)

    with ServerThread(create_app(store_root, token=TOKEN, compact_every=10)) as url:
        threads = [threading.Thread(target=reader, args=(url, 40)) for _ in range(4)]
        threads += [threading.Thread(target=writer, args=(url, w, 25)) for w in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[:3]
    # restart: every acknowledged write is there, with the last acknowledged vector
    idx = Store(store_root).load("toy")
    assert len(idx) == 10 + len(acked) == 10 + 21
    for key, vec in acked.items():
        np.testing.assert_array_equal(idx.get_vectors([key])[0], np.asarray(vec, np.float32))


def test_cli_server_killed_then_restarted(store_root):
    """The real `embedkit serve` process, SIGKILLed after acknowledged writes, loses none of them."""
    port = free_port()
    env = dict(os.environ, EMBEDKIT_TOKEN=TOKEN)
    proc = subprocess.Popen([sys.executable, "-m", "embedkit", "--store", str(store_root), "serve", "toy",
                             "--port", str(port), "--log-level", "warning"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()
            time.sleep(0.1)
        for i in range(5):
            r = httpx.post(f"{url}/indexes/toy/items", headers=AUTH,
                           json={"items": [{"key": f"cli{i}", "vector": [1, i, 0, 0]}]})
            assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with client(store_root) as c:
        for i in range(5):
            assert c.get(f"/indexes/toy/items/cli{i}").json()["vector"] == [1, i, 0, 0]


def test_cli_serve_rejects_bad_options(store_root, capsys):
    assert main(["--store", str(store_root), "serve", "--port", "70000"]) == 1
    assert "--port" in capsys.readouterr().err
    assert main(["--store", str(store_root), "serve", "missing"]) == 1
    assert "no index named 'missing'" in capsys.readouterr().err
    assert main(["--store", str(store_root), "serve", "../etc"]) == 1
    assert "not allowed" in capsys.readouterr().err


# ----------------------------------------------------------------------------- recommendations
@pytest.fixture()
def mf_store(tmp_path):
    rng = np.random.default_rng(0)
    users, items = [], []
    for u in range(30):  # two groups of users, each interacting with its own items
        for i in rng.choice(12, 5, replace=False):
            users.append(f"user{u:02d}")
            items.append(f"{'AB'[u % 2]}{i}")
    model = MatrixFactorization(method="als", dim=8, epochs=6, seed=0)
    model.fit(ek.Interactions.from_arrays(users, items), show_progress=False)
    root = tmp_path / "mfstore"
    model.to_store("shop", Store(root))
    return root, model, users, items


def test_recommend_matches_the_model(mf_store):
    root, model, users, items = mf_store
    with client(root) as c:
        assert c.get("/indexes/shop").json()["recommender"] is True
        assert c.get("/indexes/shop/users", params={"prefix": "USER0", "limit": 3}).json()["users"] == \
            ["user00", "user01", "user02"]
        for user in ("user00", "user01"):
            for exclude in (True, False):
                r = c.get("/indexes/shop/recommend", params={"user": user, "k": 5, "exclude_seen": exclude}).json()
                want = model.recommend(user, k=5, exclude_seen=exclude)
                assert [x["key"] for x in r["recommendations"]] == [k for k, _ in want]
                np.testing.assert_allclose([x["score"] for x in r["recommendations"]], [s for _, s in want], atol=1e-4)
            hist = {h["key"] for h in r["history"]}
            assert hist == {i for u, i in zip(users, items) if u == user}
            seen_free = c.get("/indexes/shop/recommend", params={"user": user, "k": 5}).json()["recommendations"]
            assert not hist & {x["key"] for x in seen_free}
        r = c.get("/indexes/shop/recommend", params={"user": "nobody"})
        assert r.status_code == 404 and "user 'nobody'" in error_of(r)


def test_recommend_follows_item_writes_and_survives_compaction(mf_store):
    root, model, users, items = mf_store
    with client(root, compact_every=1) as c:
        top = c.get("/indexes/shop/recommend", params={"user": "user00", "k": 1}).json()["recommendations"][0]["key"]
        assert c.post("/indexes/shop/remove", json={"keys": [top]}, headers=AUTH).status_code == 200
        recs = [x["key"] for x in c.get("/indexes/shop/recommend", params={"user": "user00", "k": 5}).json()["recommendations"]]
        assert top not in recs
    with client(root) as c:  # compacted store, extras kept: recommendations still work
        recs = [x["key"] for x in c.get("/indexes/shop/recommend", params={"user": "user00", "k": 5}).json()["recommendations"]]
        assert len(recs) == 5 and top not in recs
    assert json.loads((root / "shop" / "manifest.json").read_text())["extras"] == ["model"]
    back = MatrixFactorization.from_store("shop", Store(root))  # the compacted index: top item gone
    assert top not in [k for k, _ in back.recommend("user00", k=5)]
    assert back.recommend("user01", k=5) == model.recommend("user01", k=5)


def test_recommend_after_item_writes_equals_the_model_without_those_items(mf_store):
    """The service ranks with the model's own recommender on the index it holds."""
    root, model, users, items = mf_store
    with client(root) as c:
        want = model.recommend("user00", k=4)
        vec = c.get(f"/indexes/shop/items/{want[0][0]}").json()["vector"]
        r = c.post("/indexes/shop/items", json={"items": [{"key": "new-item", "vector": [2 * x for x in vec]}]},
                   headers=AUTH)
        assert r.status_code == 200
        got = c.get("/indexes/shop/recommend", params={"user": "user00", "k": 4}).json()["recommendations"]
        assert got[0]["key"] == "new-item"  # counts at once
        assert [x["key"] for x in got[1:]] == [k for k, _ in want[:3]]
        np.testing.assert_allclose([x["score"] for x in got[1:]], [s for _, s in want[:3]], rtol=1e-6)


def test_service_load_replays_the_journal_once(store_root, monkeypatch):
    with client(store_root) as c:
        for i in range(3):
            assert c.post("/indexes/toy/items", json={"items": [{"key": f"j{i}", "vector": [1, i, 0, 1]}]},
                          headers=AUTH).status_code == 200
    # closing compacted the journal: write one again, without the service, to load it
    lines = [json.dumps({"op": "upsert", "keys": ["late"], "vectors": [[0.0, 1.0, 1.0, 0.0]]}),
             json.dumps({"op": "remove", "keys": ["j0"]})]
    (store_root / "toy" / JOURNAL_FILE).write_text("\n".join(lines) + "\n")
    calls = []
    real_upsert, real_remove = ek.VectorIndex.upsert, ek.VectorIndex.remove
    monkeypatch.setattr(ek.VectorIndex, "upsert", lambda self, *a, **kw: (calls.append("upsert"),
                                                                         real_upsert(self, *a, **kw))[1])
    monkeypatch.setattr(ek.VectorIndex, "remove", lambda self, *a, **kw: (calls.append("remove"),
                                                                         real_remove(self, *a, **kw))[1])
    with client(store_root, compact_every=10**6) as c:
        info = c.get("/indexes/toy").json()
        assert calls == ["upsert", "remove"]  # each journalled write applied once
        assert info["journal_entries"] == 2 and info["count"] == 10 + 3 + 1 - 1
        assert c.get("/indexes/toy/items/late").json()["vector"] == [0, 1, 1, 0]
        assert c.get("/indexes/toy/items/j0").status_code == 404


def test_failed_journal_append_leaves_no_torn_line(store_root, monkeypatch):
    """A write that cannot be made durable (disk full) is refused and leaves the journal clean."""
    with TestClient(create_app(store_root, token=TOKEN), raise_server_exceptions=False, base_url=LOCAL) as c:
        assert c.post("/indexes/toy/items", json={"items": [{"key": "ok1", "vector": [1, 0, 0, 1]}]},
                      headers=AUTH).status_code == 200
        import embedkit.store.journal as J

        def full(fd):
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as m:  # the journal's own reference to fsync, where it keeps one
            m.setattr(os, "fsync", full)
            m.setattr(J, "_os_fsync", full, raising=False)
            r = c.post("/indexes/toy/items", json={"items": [{"key": "lost", "vector": [0, 0, 1, 1]}]}, headers=AUTH)
        assert r.status_code == 500 and "the write was not saved" in error_of(r) and "No space" in error_of(r)
        assert c.get("/indexes/toy/items/lost").status_code == 404  # never acknowledged, never applied
        assert c.post("/indexes/toy/items", json={"items": [{"key": "ok2", "vector": [1, 1, 0, 0]}]},
                      headers=AUTH).status_code == 200
        lines = (store_root / "toy" / JOURNAL_FILE).read_text().splitlines()
        assert [json.loads(x)["keys"] for x in lines] == [["ok1"], ["ok2"]]


def test_openapi_is_30_for_the_bundled_swagger_ui_and_nothing_loads_from_a_cdn(store_root):
    """Swagger UI 3.x/4.x (swagger-ui-bundle) cannot render OpenAPI 3.1: the schema is served as 3.0.3."""
    with client(store_root) as c:
        schema = c.get("/openapi.json").json()
        assert schema["openapi"] == "3.0.3"
        text = json.dumps(schema)
        assert '"type": "null"' not in text and '"const"' not in text
        body = schema["components"]["schemas"]["SearchBody"]["properties"]
        assert body["vector"]["nullable"] is True and body["vector"]["type"] == "array"
        assert schema["components"]["schemas"]["HTTPValidationError"]["required"] == ["error"]  # what errors look like
        docs = c.get("/docs").text
        assert "cdn" not in docs.lower() and "https://" not in docs
        r = c.get("/redoc", follow_redirects=False)
        assert r.status_code in (302, 307) and r.headers["location"] == "/docs"


def test_serve_on_a_busy_port_says_so_in_one_line(store_root, capsys):
    import socket

    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["--store", str(store_root), "serve", "--port", str(port)]) != 0
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == 0 and f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err
    assert "Traceback" not in err and "serving" not in captured.out  # refused before announcing anything


def test_deeply_nested_filters_in_a_url_are_one_line_4xx(store_root, mf_store):
    """A filter nested thousands of levels deep: before, GET answered 500 "internal error: RecursionError"
    (a POST body already got 400); now the query string gets the one line of every other filter error."""
    deep = '{"a":' * 2000 + "1" + "}" * 2000
    with client(store_root) as c:
        r = c.get("/indexes/toy/neighbors", params={"key": "a0", "filter": deep})
        assert r.status_code == 422 and "nested more than 100 levels deep" in error_of(r)
        assert error_of(r).startswith("query parameter 'filter': ")
        r = c.get("/indexes/toy/map", params={"include": "[" * 3000 + "]" * 3000})
        assert r.status_code == 422 and "list of keys" in error_of(r)
    root, _, users, _ = mf_store
    with client(root) as c:
        r = c.get("/indexes/shop/recommend", params={"user": users[0], "filter": deep})
        assert r.status_code == 422 and "nested more than 100 levels deep" in error_of(r)


def test_a_body_nested_too_deeply_is_one_line_naming_the_fix(store_root):
    deep = '{"a":' * 5000 + "1" + "}" * 5000
    with client(store_root) as c:
        r = c.post("/indexes/toy/search", content=deep, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "could not be read as JSON" in error_of(r) and "/docs" in error_of(r)
