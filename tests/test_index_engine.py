"""The index as a retrieval engine: example queries (gensim parity), recall tuning, HNSW
upsert rebuilds, the key rule, word2vec header bounds, and the CLI verbs."""

import json

import numpy as np
import pytest

import embedkit as ek
from embedkit.index import VectorIndex


def vocab(n=300, d=16, seed=1):
    rng = np.random.default_rng(seed)
    return [f"w{i}" for i in range(n)], rng.standard_normal((n, d)).astype(np.float32)


CASES = [(["w1", "w2"], ["w3"]), (["w5"], []), ([], ["w7"]), (["w1", "w9", "w11"], ["w4", "w8"])]


@pytest.mark.parametrize("pos, neg", CASES)
def test_most_similar_equals_gensim(pos, neg):
    KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors
    keys, x = vocab()
    kv = KeyedVectors(x.shape[1])
    kv.add_vectors(keys, x)
    emb = ek.Embeddings(keys, x)
    want = kv.most_similar(positive=pos, negative=neg, topn=10)
    got = emb.most_similar(positive=pos, negative=neg, k=10)
    assert [k for k, _ in got] == [k for k, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5, atol=1e-6)
    assert emb.most_similar(positive=pos, negative=neg, topn=10) == got  # gensim's topn=
    if pos:
        want = kv.most_similar_cosmul(positive=pos, negative=neg, topn=10)
        got = emb.most_similar(positive=pos, negative=neg, k=10, method="mul")
        assert [k for k, _ in got] == [k for k, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-4)
        assert emb.most_similar_cosmul(positive=pos, negative=neg, topn=10) == got
        # the index's example search agrees on a flat cosine index
        idx = emb.to_index(kind="flat")
        res = idx.search_examples(positive=pos, negative=neg, k=10, method="mul")
        assert res.keys[0] == [k for k, _ in got]
    idx = emb.to_index(kind="flat")
    res = idx.search_examples(positive=pos, negative=neg, k=10)
    assert res.keys[0] == [k for k, _ in emb.most_similar(positive=pos, negative=neg, k=10)]


def test_doesnt_match_and_gensim_positional_forms():
    KeyedVectors = pytest.importorskip("gensim.models").KeyedVectors
    keys, x = vocab()
    kv = KeyedVectors(x.shape[1])
    kv.add_vectors(keys, x)
    emb = ek.Embeddings(keys, x)
    for group in (["w1", "w2", "w3", "w4"], ["w10", "w20", "w30"], ["w5", "w6", "nope"]):
        assert emb.doesnt_match(group) == kv.doesnt_match(group)
    assert emb.most_similar(["w1", "w2"], ["w3"]) == emb.most_similar(positive=["w1", "w2"], negative=["w3"])
    assert [k for k, _ in emb.most_similar("w1", k=5)] == [k for k, _ in kv.most_similar("w1", topn=5)]
    with pytest.raises(ek.MissingKeyError):
        emb.most_similar(positive=["nope"])
    with pytest.raises(ek.InputError, match="cancel out"):
        emb.most_similar(positive=["w1"], negative=["w1"])
    with pytest.raises(ek.InputError, match="at least one positive"):
        emb.most_similar(negative=["w1"], method="mul")


def test_search_examples_with_filter_vectors_and_errors():
    keys, x = vocab(200, 8)
    idx = VectorIndex(8, kind="hnsw")
    idx.add(keys, x, payload=[{"even": i % 2 == 0} for i in range(200)])
    res = idx.search_examples(positive=["w1", x[3]], negative=["w5"], k=7, filter={"even": True})
    assert len(res.keys[0]) == 7 and all(int(k[1:]) % 2 == 0 for k in res.keys[0])
    assert not {"w1", "w5"} & set(res.keys[0])
    with pytest.raises(ek.InputError, match="at least one positive or negative"):
        idx.search_examples()
    with pytest.raises(ek.InputError, match="method"):
        idx.search_examples(positive=["w1"], method="div")
    l2 = VectorIndex(8, metric="l2")
    l2.add(keys, x)
    with pytest.raises(ek.InputError, match="needs metric='cosine'"):
        l2.search_examples(positive=["w1"], method="mul")
    assert "w1" not in l2.search_examples(positive=["w1"], k=3).keys[0]


@pytest.mark.parametrize("kind, knob", [("hnsw", "ef_search"), ("ivf", "nprobe")])
def test_tune_reaches_target_and_is_saved(tmp_path, kind, knob):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    idx = VectorIndex(16, kind=kind, **({"nlist": 32} if kind == "ivf" else {}))
    idx.add([str(i) for i in range(2000)], x)
    rep = idx.tune(target_recall=0.9, k=10, sample=50)
    assert rep["knob"] == knob and rep["reached"] and rep["recall"] >= 0.9
    assert idx.params[knob] == rep["value"]
    # the cheapest value: the one tried before it (if any) fell short
    assert all(r < 0.9 for v, r in rep["tried"][:-1]) and rep["tried"][-1] == [rep["value"], rep["recall"]]
    idx.save(tmp_path / "ix")
    assert VectorIndex.load(tmp_path / "ix").params[knob] == rep["value"]
    rep2 = idx.tune(target_recall=0.95, queries=x[:20] + 0.1, k=5)
    assert rep2["queries"] == 20 and rep2["recall"] >= 0.95
    flat = VectorIndex(16)
    flat.add(["a", "b"], x[:2])
    assert flat.tune()["knob"] is None


def test_hnsw_upserts_trigger_the_tombstone_rebuild():
    rng = np.random.default_rng(0)
    keys = [str(i) for i in range(100)]
    idx = VectorIndex(4, kind="hnsw", rebuild_fraction=0.3)
    idx.add(keys, rng.standard_normal((100, 4)))
    for _ in range(5):
        idx.upsert(keys[:40], rng.standard_normal((40, 4)))
        st = idx._storage
        assert len(st.tombstones) <= 0.3 * st.faiss.ntotal  # before the fix: 83% after five rounds
    assert len(idx) == 100 and idx.search_keys("0", 5).keys[0]


def test_keys_with_nul_round_trip_and_lone_surrogates_are_refused(tmp_path):
    keys = ["a", "a\x00", "\x00", "b\x00\x00", ""]
    emb = ek.Embeddings(keys, np.arange(10, dtype=np.float32).reshape(5, 2) + 1)
    emb.save(tmp_path / "e.npz")
    assert ek.Embeddings.load(tmp_path / "e.npz").keys == keys
    idx = VectorIndex(2)
    idx.add(keys, emb.vectors)
    idx.save(tmp_path / "ix")
    assert VectorIndex.load(tmp_path / "ix").keys == keys
    for make in (lambda: ek.Embeddings(["ok", "x\udc80"], np.ones((2, 2))),
                 lambda: idx.add(["x\udc80"], np.ones((1, 2))),
                 lambda: idx.upsert(["\ud800"], np.ones((1, 2)))):
        with pytest.raises(ek.InputError, match="lone surrogate") as info:
            make()
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_header_claims_are_bounded_by_the_file(tmp_path, binary):
    p = tmp_path / ("v.bin" if binary else "v.txt")
    p.write_bytes(b"2000000000 100\nw 1 2 3\n")
    with pytest.raises(ek.ParseError, match=r"v\.(bin|txt):1: header claims 2000000000 vectors of dim 100"):
        ek.Embeddings.load_word2vec_format(p, binary=binary)
    p.write_bytes(b"1 1000000000000\nw 1\n")
    with pytest.raises(ek.ParseError, match="header claims 1 vectors of dim 1000000000000"):
        ek.Embeddings.load_word2vec_format(p, binary=binary)
    p.write_bytes(b"1" * 10000)
    with pytest.raises(ek.ParseError, match="no newline within 256 bytes"):
        ek.Embeddings.load_word2vec_format(p, binary=binary)


def test_word2vec_text_line_length_is_bounded(tmp_path):
    p = tmp_path / "v.txt"
    p.write_bytes(b"1 2\nw " + b"1" * 100000 + b" 2\n")
    with pytest.raises(ek.ParseError, match=r"v\.txt:2: line longer than"):
        ek.Embeddings.load_word2vec_format(p)


def test_cli_payload_filter_analogy_and_tune(tmp_path, capsys):
    from embedkit.cli import main

    keys, x = vocab(400, 8)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x[1] = x[0] - x[2] + x[3]
    ek.Embeddings(keys, x).save(tmp_path / "v.npz")
    (tmp_path / "p.csv").write_text("key,group,n\n" + "".join(f"w{i},{'ab'[i % 2]},{i}\n" for i in range(400)))
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"key": f"w{i}", "tags": [str(i % 3)]}) + "\n"
                                              for i in range(0, 400, 2)))
    store = str(tmp_path / "store")
    assert main(["index", "build", str(tmp_path / "v.npz"), "--name", "t", "--kind", "hnsw",
                 "--payload", str(tmp_path / "p.csv"), "--store", store]) == 0
    assert "payload fields: group, n" in capsys.readouterr().out
    assert main(["query", "t", "w0", "w3", "--minus", "w2", "-k", "3", "--json", "--store", store]) == 0
    res = json.loads(capsys.readouterr().out)
    assert list(res.values())[0][0][0] == "w1"
    assert main(["query", "t", "w0", "--filter", '{"group": "b", "n": {"$lt": 20}}', "--json", "--store", store]) == 0
    got = [k for k, _ in json.loads(capsys.readouterr().out)["w0"]]
    assert sorted(got) == sorted(f"w{i}" for i in range(1, 20, 2))
    assert main(["query", "t", "w0", "--filter", '{"n": {"$gt": "x"}}', "--store", store]) == 1
    assert "filter: n: $gt expects a number" in capsys.readouterr().err
    assert main(["query", "t", "w0", "--filter", "{bad", "--store", store]) == 1
    assert main(["index", "tune", "t", "--recall", "0.9", "--sample", "50", "--json", "--store", store]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["reached"] and ek.Store(store).info("t")["knobs"]["ef_search"] == rep["value"]
    assert main(["index", "build", str(tmp_path / "v.npz"), "--name", "j", "--payload", str(tmp_path / "p.jsonl"),
                 "--store", store]) == 0
    assert ek.Store(store).load("j").payload("w4") == {"tags": ["1"]}
    (tmp_path / "bad.jsonl").write_text('{"key": "w1"}\n{"nokey": 1}\n')
    assert main(["index", "build", str(tmp_path / "v.npz"), "--name", "b", "--payload", str(tmp_path / "bad.jsonl"),
                 "--store", store]) == 1
    assert "bad.jsonl:2" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_one_copy_vectors_read_back_from_faiss_exactly(tmp_path, kind, metric):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    keys = [f"k{i}" for i in range(300)]
    idx = VectorIndex(8, metric=metric, kind=kind, rebuild_fraction=0.2)
    idx.add(keys, x)
    assert idx._storage.vecs.size == 0  # no second copy: FAISS's storage is read back
    idx.remove(keys[:40])
    y = rng.standard_normal((30, 8)).astype(np.float32)
    idx.upsert(keys[100:130], y)
    want = {**dict(zip(keys[40:], x[40:])), **dict(zip(keys[100:130], y))}
    np.testing.assert_array_equal(idx.get_vectors(list(want)), np.array(list(want.values())))
    idx.save(tmp_path / "ix")
    for mmap in (False, True):
        back = VectorIndex.load(tmp_path / "ix", mmap=mmap)
        np.testing.assert_array_equal(back.get_vectors(list(want)), np.array(list(want.values())))
        assert back.search_keys("k200", 5).keys == idx.search_keys("k200", 5).keys
        back.remove(["k200"])
        back.upsert(["k201"], x[:1])
        np.testing.assert_array_equal(back.get_vectors(["k201", "k202"]), np.stack([x[0], x[202]]))


@pytest.mark.parametrize("collide", [False, True])
def test_keymap_against_a_dict_under_collisions_and_merges(monkeypatch, collide):
    from embedkit.index import _keymap

    monkeypatch.setattr(_keymap, "_MERGE_MIN", 8)
    if collide:  # every key hashes alike: lookups must still tell keys apart
        monkeypatch.setattr(_keymap, "hash", lambda k: len(k) % 3, raising=False)
    rng = np.random.default_rng(0)
    idx = VectorIndex(2, kind="hnsw", rebuild_fraction=0.9)
    truth: set = set()
    nxt = 0
    for _step in range(30):
        if rng.random() < 0.6 or len(truth) < 5:
            new = [f"k{nxt + j}" for j in range(int(rng.integers(1, 20)))]
            nxt += len(new)
            idx.add(new, rng.standard_normal((len(new), 2)))
            truth.update(new)
        else:
            gone = list(rng.choice(sorted(truth), int(rng.integers(1, len(truth) // 2 + 1)), replace=False))
            idx.remove(gone)
            truth.difference_update(gone)
        again = list(rng.choice(sorted(truth), min(3, len(truth)), replace=False))
        idx.upsert(again, rng.standard_normal((len(again), 2)))  # re-added under new ids
        assert len(idx) == len(truth) and sorted(idx.keys) == sorted(truth)
        probe = [f"k{j}" for j in range(nxt + 3)]
        assert [p in idx for p in probe] == [p in truth for p in probe]
        found = idx._storage.key_to_id.find(probe)
        assert [f >= 0 for f in found.tolist()] == [p in truth for p in probe]
        for p in probe:
            if p in truth:
                assert idx._storage.id_key[idx._storage.key_to_id[p]] == p


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_cosine_one_copy_opt_in(tmp_path, kind):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((300, 8)).astype(np.float32) * 3
    keys = [f"k{i}" for i in range(300)]
    exact = VectorIndex(8, kind=kind, rebuild_fraction=0.2)
    lean = VectorIndex(8, kind=kind, rebuild_fraction=0.2, exact_vectors=False)
    for idx in (exact, lean):
        idx.add(keys, x)
        idx.remove(keys[:80])                 # HNSW: rebuilt past rebuild_fraction
        idx.upsert(keys[100:110], x[:10])
    assert lean._storage.vecs.size == 0 and exact._storage.vecs.size > 0
    want = np.concatenate([x[:10], x[110:]])
    np.testing.assert_allclose(lean.get_vectors(keys[100:]), want, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(exact.get_vectors(keys[100:]), want)
    q = rng.standard_normal((5, 8)).astype(np.float32)
    assert lean.search(q, 5).keys == exact.search(q, 5).keys
    assert lean.search_keys("k150", 5).keys == exact.search_keys("k150", 5).keys
    lean.save(tmp_path / "ix")
    for mmap in (False, True):
        back = VectorIndex.load(tmp_path / "ix", mmap=mmap)
        assert back.params["cosine_one_copy"] == 1 and back._storage.vecs.size == 0
        np.testing.assert_allclose(back.get_vectors(keys[100:]), want, rtol=1e-6, atol=1e-6)
        assert back.search(q, 5).keys == exact.search(q, 5).keys
    with pytest.raises(ek.InputError, match="exact_vectors"):
        VectorIndex(8, exact_vectors="no")
