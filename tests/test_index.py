import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import embedkit as ek
from embedkit.index import VectorIndex

METRICS = ["cosine", "ip", "l2"]


def brute_force(keys, vecs, q, metric, k):
    """Reference scores, best first (similarity for cosine/ip, Euclidean distance for l2)."""
    vecs = np.asarray(vecs, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    if metric == "cosine":
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
        q = q / np.linalg.norm(q)
    if metric == "l2":
        s = np.sqrt(((vecs - q) ** 2).sum(1))
        order = np.argsort(s)
    else:
        s = vecs @ q
        order = np.argsort(-s)
    return [keys[i] for i in order[:k]], s[order[:k]]


def clustered(n, dim, seed=0, centers=50):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim)) * 3
    return (c[rng.integers(0, centers, n)] + rng.normal(size=(n, dim))).astype(np.float32)


ops = st.lists(st.tuples(st.sampled_from(["add", "upsert", "remove"]), st.lists(st.integers(0, 29), min_size=1,
                                                                                  max_size=6, unique=True)),
               min_size=1, max_size=25)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=ops, seed=st.integers(0, 2**16), k=st.integers(1, 40))
def test_matches_brute_force_over_random_edits(metric, kind, ops, seed, k):
    rng = np.random.default_rng(seed)
    idx = VectorIndex(6, metric=metric, kind=kind)
    model: dict[str, np.ndarray] = {}
    for op, ids in ops:
        keys = [f"k{i}" for i in ids]
        vecs = rng.normal(size=(len(keys), 6)).astype(np.float32)
        if op == "add":
            new = [key for key in keys if key not in model]
            if any(key in model for key in keys):
                with pytest.raises(ValueError, match="already in the index"):
                    idx.add(keys, vecs)
            if new:
                nv = vecs[[keys.index(key) for key in new]]
                idx.add(new, nv)
                model.update(zip(new, nv))
        elif op == "upsert":
            idx.upsert(keys, vecs)
            model.update(zip(keys, vecs))
        else:
            present = [key for key in keys if key in model]
            assert idx.remove(keys, missing_ok=True) == len(present)
            for key in present:
                del model[key]
    assert len(idx) == len(model)
    assert set(idx.keys) == set(model)
    q = rng.normal(size=(3, 6)).astype(np.float32)
    res = idx.search(q, k=k)
    for row in range(3):
        expect_keys, expect_scores = brute_force(list(model), list(model.values()), q[row], metric, k) if model else ([], [])
        assert len(res.keys[row]) == min(k, len(model))
        assert set(res.keys[row]) <= set(model)
        # compare scores (ties make key order ambiguous); HNSW on < 30 items is exhaustive in practice
        np.testing.assert_allclose(res.scores[row], expect_scores, rtol=1e-4, atol=1e-4)
    if model:
        some = list(model)[:2]
        rk = idx.search_keys(some, k=k)
        for key, row in zip(some, rk.keys):
            assert key not in row and len(row) == min(k, len(model) - 1)


@pytest.mark.parametrize("kind", ["hnsw", "ivf", "ivfpq"])
def test_approximate_kinds_reach_recall_at_defaults(kind):
    data = clustered(5200, 24, seed=1)
    x, q = data[:5000], data[5000:]
    keys = [str(i) for i in range(len(x))]
    exact = VectorIndex(24, "cosine", "flat")
    exact.add(keys, x)
    approx = VectorIndex(24, "cosine", kind)
    approx.add(keys, x)
    recall = ek.evaluate.index_recall(approx, exact, q, k=10)
    assert recall >= 0.95, (kind, recall)


def test_auto_kind_by_size():
    idx = VectorIndex(4, kind="auto")
    idx.add(["a", "b"], np.eye(4)[:2])
    assert idx.kind == "flat"


def test_factory_string_and_bad_kind():
    idx = VectorIndex(8, metric="l2", kind="PCA4,Flat")
    x = clustered(300, 8)
    idx.add([str(i) for i in range(300)], x)
    assert len(idx.search(x[0], k=5).keys[0]) == 5
    with pytest.raises(ValueError, match="nor a FAISS factory string that builds for dim=8"):
        VectorIndex(8, kind="NotAnIndex")


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=0), "'dim' parameter of VectorIndex must be an int in the range \\[1, 65536\\]"),
    (dict(dim=4, metric="dot"), "'metric' parameter of VectorIndex must be one of"),
    (dict(dim=4, ef_search=0), "'ef_search'"),
])
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VectorIndex(**kwargs)


def test_search_input_errors_and_conversions():
    idx = VectorIndex(3, metric="cosine")
    idx.add(["a", "b", "c"], [[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    with pytest.raises(ValueError, match="dimension 2 but the index has dim=3"):
        idx.search([1.0, 0.0])
    with pytest.raises(ValueError, match="NaN or inf"):
        idx.search([np.nan, 0, 0])
    with pytest.raises(ValueError, match="'k'"):
        idx.search([1.0, 0, 0], k=0)
    with pytest.raises(ValueError, match="all-zero vector"):
        idx.add(["z"], [[0, 0, 0]])
    with pytest.raises(KeyError, match="'nope' is not in the index"):
        idx.search_keys(["nope"])
    with pytest.raises(KeyError, match="remove: key 'nope'"):
        idx.remove(["nope"])
    with pytest.raises(ValueError, match="appears twice"):
        idx.add(["x", "x"], np.ones((2, 3)))
    # float64, Fortran order, 1-D: all converted
    q64 = np.asfortranarray(np.array([[1.0, 0.1, 0.0], [0.0, 1.0, 0.1]]))
    res = idx.search(q64, k=10)
    assert [len(r) for r in res.keys] == [3, 3]  # k larger than the index: what exists, no padding
    assert res.scores.shape == (2, 3) and res.scores.dtype == np.float32
    assert res.keys[0][0] == "a"
    assert idx.search(np.array([1.0, 0, 0]), k=1).keys == [["a"]]
    assert idx.search_keys(["a"], k=10).keys[0] == ["c", "b"]


def test_l2_scores_are_distances():
    idx = VectorIndex(2, metric="l2")
    idx.add(["o", "p"], [[0, 0], [3, 4]])
    res = idx.search([0, 0], k=2)
    assert res.keys[0] == ["o", "p"]
    np.testing.assert_allclose(res.scores[0], [0, 5], atol=1e-5)


def test_hnsw_remove_and_rebuild():
    x = clustered(2000, 16)
    keys = [str(i) for i in range(2000)]
    idx = VectorIndex(16, kind="hnsw", rebuild_fraction=0.3)
    idx.add(keys, x)
    idx.remove(keys[:500])           # tombstones, below the rebuild threshold
    assert len(idx._storage.tombstones) == 500
    res = idx.search(x[:500], k=10)
    removed = set(keys[:500])
    assert all(not (set(r) & removed) for r in res.keys)
    idx.remove(keys[500:700])        # crosses 30%: rebuilt without tombstones
    assert not idx._storage.tombstones and len(idx) == 1300
    res = idx.search(x[:700], k=10)
    assert all(not (set(r) & set(keys[:700])) for r in res.keys)
    assert all(len(r) == 10 for r in res.keys)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_rebuild_after_removes_matches_brute_force(kind, metric):
    x = clustered(300, 8, seed=2)
    keys = [str(i) for i in range(300)]
    idx = VectorIndex(8, metric=metric, kind=kind, rebuild_fraction=1.0)  # never rebuilt by itself
    idx.add(keys, x)
    idx.remove(keys[:120])
    idx.upsert(keys[120:125], x[:5])
    if kind == "hnsw":
        assert len(idx._storage.tombstones) == 125  # removed and replaced items, still in the graph
    idx.rebuild()
    assert not idx._storage.tombstones and idx._storage.next_id == 180
    assert idx.keys == keys[125:] + keys[120:125]  # live items renumbered in id order (upserts last)
    model = dict(zip(keys[120:], np.concatenate([x[:5], x[125:]])))
    q = clustered(4, 8, seed=3)
    res = idx.search(q, k=10)
    for row in range(len(q)):
        expect_keys, expect_scores = brute_force(list(model), list(model.values()), q[row], metric, 10)
        assert res.keys[row] == expect_keys
        np.testing.assert_allclose(res.scores[row], expect_scores, rtol=1e-4, atol=1e-4)
    rk = idx.search_keys(["130", "299"], k=5)
    for key, row in zip(["130", "299"], rk.keys):
        others = [k_ for k_ in model if k_ != key]
        assert row == brute_force(others, [model[k_] for k_ in others], model[key], metric, 5)[0]
    idx.add(["fresh"], x[:1] + 1)  # still writable, ids continue after the renumbering
    assert "fresh" in idx and idx.search(x[0] + 1, k=1).keys == [["fresh"]]


def test_rebuild_keeps_training_and_works_on_loaded_and_empty_indexes(tmp_path):
    x = clustered(400, 8)
    keys = [str(i) for i in range(400)]
    VectorIndex(8).rebuild()  # nothing added yet: nothing to do
    pca = VectorIndex(8, metric="l2", kind="PCA4,Flat", rebuild_fraction=1.0)
    pca.add(keys, x)
    pca.remove(keys[:50])
    pca.rebuild()  # a new "PCA4,Flat" would need training again: the trained transform is kept
    assert pca.search(x[60], k=1).keys == [["60"]] and len(pca) == 350
    h = VectorIndex(8, kind="hnsw", rebuild_fraction=1.0)
    h.add(keys, x)
    h.remove(keys[:50])
    h.save(tmp_path / "h")
    back = VectorIndex.load(tmp_path / "h", mmap=True)
    back.rebuild()
    assert not back._storage.tombstones and back.keys == keys[50:]
    assert back.search(x[60], k=1).keys == [["60"]]


@pytest.mark.parametrize("metric", METRICS)
def test_short_approximate_rows_are_filled_exactly(metric):
    x = clustered(1000, 8, seed=4)
    keys = [str(i) for i in range(1000)]
    idx = VectorIndex(8, metric=metric, kind="ivf", nlist=64, nprobe=1)  # ~16 items per list probed
    idx.add(keys, x)
    q = clustered(3, 8, seed=5)
    res = idx.search(q, k=100)
    for row in range(len(q)):
        expect_keys, expect_scores = brute_force(keys, x, q[row], metric, 100)
        assert res.keys[row] == expect_keys
        np.testing.assert_allclose(res.scores[row], expect_scores, rtol=1e-4, atol=1e-4)
    for query in ("7", ["7", "8"]):
        rk = idx.search_keys(query, k=100)
        for key, row, scores in zip(["7", "8"], rk.keys, rk.scores):
            others = [k_ for k_ in keys if k_ != key]
            expect_keys, expect_scores = brute_force(others, x[[int(k_) for k_ in others]], x[int(key)], metric, 100)
            assert row == expect_keys
            np.testing.assert_allclose(scores, expect_scores, rtol=1e-4, atol=1e-4)


def test_knobs_settable_and_saved(tmp_path):
    x = clustered(3000, 16)
    idx = VectorIndex(16, kind="ivf", nprobe=3)
    idx.add([str(i) for i in range(3000)], x)
    assert idx.nprobe == 3
    idx.nprobe = 7
    idx.save(tmp_path / "i")
    back = VectorIndex.load(tmp_path / "i")
    assert back.nprobe == 7 and back.params["nlist"] == idx.params["nlist"]
    h = VectorIndex(16, kind="hnsw")
    h.add(["a", "b"], x[:2])
    h.ef_search = 200
    h.save(tmp_path / "h")
    assert VectorIndex.load(tmp_path / "h").ef_search == 200
    with pytest.raises(ValueError, match="unknown search knob"):
        h.set_params(bogus=1)


def test_ivf_training_needs_data():
    with pytest.raises(ValueError, match="needs at least 256 vectors"):
        VectorIndex(8, kind="ivfpq").add([str(i) for i in range(100)], clustered(100, 8))
    with pytest.raises(ValueError, match="nlist=64 needs at least 64 vectors"):
        VectorIndex(8, kind="ivf", nlist=64).add([str(i) for i in range(10)], clustered(10, 8))
    with pytest.raises(ValueError) as err:  # a factory string: FAISS's reason, without its C++ names
        VectorIndex(8, kind="IVF64,Flat").add([str(i) for i in range(40)], clustered(40, 8))
    text = str(err.value)
    assert "Number of training points (40) should be at least as large as number of clusters (64)" in text
    assert "faiss::" not in text and ".cpp" not in text and "\n" not in text


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
@pytest.mark.parametrize("mmap", [False, True])
def test_save_load_round_trip(tmp_path, kind, mmap):
    x = clustered(1500, 16)
    keys = [f"é{i}" for i in range(1500)]
    idx = VectorIndex(16, metric="cosine", kind=kind)
    idx.add(keys, x)
    idx.remove(keys[:10])
    idx.upsert(keys[10:12], x[:2])
    idx.meta = {"trainer": "test"}
    idx.save(tmp_path / "ix")
    back = VectorIndex.load(tmp_path / "ix", mmap=mmap)
    assert len(back) == len(idx) and back.kind == idx.kind and back.meta == {"trainer": "test"}
    a, b = idx.search(x[:20], k=5), back.search(x[:20], k=5)
    assert a.keys == b.keys
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    np.testing.assert_array_equal(back.get_vectors(keys[10:12]), x[:2])
    back.upsert(["new"], x[:1])     # a loaded (even memory-mapped) index stays writable
    assert "new" in back


def test_extras_round_trip_and_checksum(tmp_path):
    idx = VectorIndex(2)
    idx.add(["a"], [[1, 0]])
    idx.save(tmp_path / "ix", extras={"users": {"keys": np.array(["u1", "u2"]), "vectors": np.ones((2, 2))}})
    ex = VectorIndex.load_extra(tmp_path / "ix", "users")
    assert ex["keys"].tolist() == ["u1", "u2"]
    with pytest.raises(ek.StoreError, match="no extra 'nope'"):
        VectorIndex.load_extra(tmp_path / "ix", "nope")
    (tmp_path / "ix" / "extra.users.npz").write_bytes(b"x" * 10)
    with pytest.raises(ek.StoreError, match="extra.users.npz: truncated"):
        VectorIndex.load_extra(tmp_path / "ix", "users")


@pytest.mark.parametrize("damage, match", [
    ("truncate:vectors.npy", "vectors.npy: truncated"),
    ("flip:index.faiss", "index.faiss: checksum mismatch"),
    ("delete:keys.json", "keys.json: missing"),
    ("garble:manifest.json", "manifest.json: damaged manifest"),
    ("newer", "format version 99"),
    ("delete:manifest.json", "manifest.json: missing"),
])
def test_load_refuses_damaged_store(tmp_path, damage, match):
    import json

    idx = VectorIndex(4)
    idx.add(["a", "b", "c"], np.eye(4)[:3])
    d = tmp_path / "ix"
    idx.save(d)
    action, _, fname = damage.partition(":")
    if action == "truncate":
        data = (d / fname).read_bytes()
        (d / fname).write_bytes(data[: len(data) // 2])
    elif action == "flip":
        data = bytearray((d / fname).read_bytes())
        data[-1] ^= 0xFF
        (d / fname).write_bytes(bytes(data))
    elif action == "delete":
        (d / fname).unlink()
    elif action == "garble":
        (d / fname).write_text("{not json")
    elif action == "newer":
        m = json.loads((d / "manifest.json").read_text())
        m["format_version"] = 99
        (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ek.StoreError, match=match) as info:
        VectorIndex.load(d)
    assert "\n" not in str(info.value)


def test_failed_save_keeps_previous_copy(tmp_path, monkeypatch):
    from embedkit.index import _persist

    idx = VectorIndex(2)
    idx.add(["a"], [[1, 0]])
    idx.save(tmp_path / "ix")
    idx.add(["b"], [[0, 1]])

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(_persist, "_fsync_dir", boom)
    with pytest.raises(OSError, match="disk full"):
        idx.save(tmp_path / "ix")
    monkeypatch.undo()
    back = VectorIndex.load(tmp_path / "ix")
    assert back.keys == ["a"]
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["ix"]  # no temporary left behind


def test_interrupted_swap_is_recovered(tmp_path):
    """A crash between the two renames leaves only the aside copy: loading restores it."""
    idx = VectorIndex(2)
    idx.add(["a"], [[1, 0]])
    idx.save(tmp_path / "ix")
    (tmp_path / "ix").rename(tmp_path / ".ix.old-deadbeef")
    assert VectorIndex.load(tmp_path / "ix").keys == ["a"]


def test_read_manifest_and_recover_are_public(tmp_path):
    from embedkit.index import read_manifest, recover

    idx = VectorIndex(3, metric="l2", kind="hnsw")
    idx.add(["a", "b"], np.eye(3)[:2])
    idx.save(tmp_path / "ix", meta={"trainer": "test"})
    m = VectorIndex.read_manifest(tmp_path / "ix")
    assert m == read_manifest(str(tmp_path / "ix"))
    assert (m["format"], m["dim"], m["metric"], m["kind"], m["count"]) == ("embedkit.index", 3, "l2", "hnsw", 2)
    assert m["meta"] == {"trainer": "test"} and "vectors.npy" in m["files"]
    (tmp_path / "ix").rename(tmp_path / ".ix.old-deadbeef")  # a save interrupted between its renames
    recover(tmp_path / "ix")
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["ix"]
    recover(tmp_path / "ix")  # nothing interrupted: nothing to do
    assert VectorIndex.load(tmp_path / "ix").keys == ["a", "b"]
    with pytest.raises(ek.StoreError, match="no saved index here"):
        VectorIndex.read_manifest(tmp_path / "nope")


def test_concurrent_search_and_writes():
    x = clustered(3000, 16)
    keys = [str(i) for i in range(3000)]
    for kind in ("flat", "hnsw"):
        idx = VectorIndex(16, kind=kind)
        idx.add(keys, x)
        removed: set[str] = set()
        errors: list[BaseException] = []
        stop = threading.Event()

        def reader():
            try:
                while not stop.is_set():
                    snapshot = set(removed)  # removed before this search began
                    res = idx.search(x[:50], k=10)
                    for row in res.keys:
                        assert not (set(row) & snapshot), set(row) & snapshot
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        rng = np.random.default_rng(0)
        for step in range(60):
            batch = [keys[i] for i in rng.choice(3000, 20, replace=False) if keys[i] not in removed]
            idx.remove(batch)
            removed.update(batch)
            idx.upsert([f"new{step}-{j}" for j in range(5)], rng.normal(size=(5, 16)))
        stop.set()
        for t in threads:
            t.join()
        assert not errors, errors[0]


def test_cosine_with_huge_values_is_not_zeroed():
    idx = VectorIndex(4)
    idx.add(["a", "b"], [[1e20, 0, 0, 0], [0, 1, 0, 0]])
    res = idx.search(np.array([1.0, 0, 0, 0], dtype=np.float32), k=2)
    assert res.keys[0][0] == "a" and res.scores[0][0] == pytest.approx(1.0)
    assert idx.search_keys("a", k=1).scores[0][0] == pytest.approx(0.0, abs=1e-6)


def test_single_query_fast_path_matches_batch_path():
    x = clustered(500, 8)
    for metric in METRICS:
        for kind in ("flat", "hnsw"):
            idx = VectorIndex(8, metric=metric, kind=kind)
            idx.add([str(i) for i in range(500)], x)
            idx.remove(["3", "4"])
            one = idx.search(x[7], k=5)
            batch = idx.search(x[7:8].astype(np.float64), k=5)
            assert one.keys == batch.keys
            np.testing.assert_allclose(one.scores, batch.scores, rtol=1e-5, atol=1e-6)
            assert idx.search_keys("7", k=5).keys == idx.search_keys(["7", "8"], k=5).keys[:1]
