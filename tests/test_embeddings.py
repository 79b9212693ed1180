import numpy as np
import pytest

import embedkit as ek


def make(n=20, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    return ek.Embeddings([f"w{i}" for i in range(n)], rng.normal(size=(n, dim)))


def test_basics_and_dtype():
    emb = make()
    assert len(emb) == 20 and emb.dim == 4
    assert emb.vectors.dtype == np.float32 and emb.vectors.flags.c_contiguous
    assert "w3" in emb and "zz" not in emb
    np.testing.assert_array_equal(emb["w3"], emb.vectors[3])
    assert emb[["w1", "w2"]].shape == (2, 4)


@pytest.mark.parametrize("keys, vectors, match", [
    (["a", "a"], np.ones((2, 2)), "duplicate key 'a'"),
    (["a", 1], np.ones((2, 2)), "keys must be strings"),
    (["a", "b"], np.ones((3, 2)), "3 rows but there are 2 keys"),
    (["a"], np.array([[np.nan, 1.0]]), "NaN or inf"),
    (["a"], np.ones(2), "2-D"),
    ("ab", np.ones((2, 2)), "not a single string"),
])
def test_invalid_input_one_line(keys, vectors, match):
    with pytest.raises(ValueError, match=match) as info:
        ek.Embeddings(keys, vectors)
    assert "\n" not in str(info.value)


def test_similarity_and_most_similar_by_key_and_vector():
    emb = ek.Embeddings(["a", "b", "c", "d"], [[1, 0], [0.9, 0.1], [0, 1], [-1, 0]])
    assert emb.similarity("a", "a") == pytest.approx(1.0)
    assert emb.similarity("a", "d") == pytest.approx(-1.0)
    res = emb.most_similar("a", k=10)
    assert [k for k, _ in res] == ["b", "c", "d"]  # itself excluded, k clipped
    assert res[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    assert emb.most_similar([1.0, 0.0], k=1)[0][0] == "a"  # by vector: itself included
    with pytest.raises(KeyError, match="'zz' is not in"):
        emb.most_similar("zz")
    with pytest.raises(ValueError, match="dim 3"):
        emb.most_similar([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="all zeros"):
        emb.most_similar([0.0, 0.0])
    with pytest.raises(ValueError, match="k must be"):
        emb.most_similar("a", k=0)


def test_save_load_lossless(tmp_path):
    emb = ek.Embeddings(["α", "b c", "d"], np.random.default_rng(1).normal(size=(3, 7)))
    emb.save(tmp_path / "e.npz")
    back = ek.Embeddings.load(tmp_path / "e.npz")
    assert back.keys == emb.keys
    np.testing.assert_array_equal(back.vectors, emb.vectors)
    with np.load(tmp_path / "e.npz", allow_pickle=False) as data:  # readable with pickle disabled
        assert set(data.files) >= {"keys_utf8", "keys_offsets", "vectors"}


def test_load_damaged_file(tmp_path):
    p = tmp_path / "bad.npz"
    p.write_bytes(b"not a zip")
    with pytest.raises(ek.StoreError, match="cannot read embeddings"):
        ek.Embeddings.load(p)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_round_trip_with_gensim(tmp_path, binary):
    from gensim.models import KeyedVectors

    emb = make(30, 8)
    p = tmp_path / ("v.bin" if binary else "v.txt")
    emb.save_word2vec_format(p, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(p), binary=binary)
    assert list(kv.index_to_key) == emb.keys
    np.testing.assert_allclose(kv.vectors, emb.vectors, rtol=1e-6)
    # and the other way: gensim writes, we read
    p2 = tmp_path / ("g.bin" if binary else "g.txt")
    kv.save_word2vec_format(str(p2), binary=binary)
    back = ek.Embeddings.load_word2vec_format(p2, binary=binary)
    assert back.keys == emb.keys
    np.testing.assert_allclose(back.vectors, emb.vectors, rtol=1e-6)


def test_word2vec_format_errors(tmp_path):
    p = tmp_path / "v.txt"
    p.write_text("2 3\na 1 2 3\nb 1 x 3\n")
    with pytest.raises(ek.ParseError, match=r"v.txt:3: non-numeric"):
        ek.Embeddings.load_word2vec_format(p)
    p.write_text("3 3\na 1.0000 2.0000 3.0000\nb 1.0000 2.0000 3.0000\n")
    with pytest.raises(ek.ParseError, match=r"v.txt:4: file ends after 2 of 3"):
        ek.Embeddings.load_word2vec_format(p)
    p.write_text("3 3\na 1 2 3\n")
    with pytest.raises(ek.ParseError, match=r"v.txt:1: header claims 3 vectors of dim 3"):
        ek.Embeddings.load_word2vec_format(p)
    p.write_text("hello\n")
    with pytest.raises(ek.ParseError, match=r"v.txt:1: expected a header"):
        ek.Embeddings.load_word2vec_format(p)
    with pytest.raises(ValueError, match="whitespace"):
        ek.Embeddings(["a b"], [[1.0]]).save_word2vec_format(tmp_path / "x.txt")


def test_to_index():
    emb = make(50, 6)
    idx = emb.to_index(metric="cosine", kind="flat")
    assert len(idx) == 50 and idx.dim == 6
    res = idx.search_keys(["w0"], k=3)
    assert res.keys[0] == [k for k, _ in emb.most_similar("w0", k=3)]
    np.testing.assert_allclose(res.scores[0], [s for _, s in emb.most_similar("w0", k=3)], rtol=1e-5)


# ------------------------------------------------------------------ the shared validators
def test_as_vectors_one_line_errors_and_conversions():
    from embedkit._arrays import as_vectors

    out = as_vectors(np.asfortranarray(np.ones((3, 2))))
    assert out.dtype == np.float32 and out.flags.c_contiguous and out.shape == (3, 2)
    x = np.ones((2, 3), np.float32)
    assert as_vectors(x) is x  # already right: no copy
    assert as_vectors([1.0, 2.0], allow_1d=True).shape == (1, 2)
    assert as_vectors(np.empty((0, 4))).shape == (0, 4)
    for value, kwargs, match in [
        ([1.0, 2.0], {}, r"2-D of shape \(n, dim\); got shape \(2,\)"),
        (np.ones((2, 2, 2)), {}, "Flatten each row"),
        ([["a", "b"]], {}, "numeric array"),
        (np.ones((2, 3)), {"dim": 4, "dim_of": "the index"}, "dimension 3 but the index has dim=4"),
        (np.ones((2, 3)), {"n": 3}, "2 rows but there are 3 keys"),
        (np.ones((2, 0)), {}, "at least one column"),
        ([[0.0, 1.0], [1.0, np.nan]], {}, "row 1, column 1 is NaN"),
        ([[1e39, 0.0]], {}, "row 0, column 0 is inf"),  # beyond float32
    ]:
        with pytest.raises(ek.InputError, match=match) as info:
            as_vectors(value, **kwargs)
        assert "\n" not in str(info.value)


def test_as_keys_rule():
    from embedkit._arrays import as_keys

    assert as_keys(np.array(["a", "b"])) == ["a", "b"] and type(as_keys(np.array(["a"]))[0]) is str
    assert as_keys(["", "x"]) == ["", "x"]  # the empty string is a key
    assert as_keys(["a", "a"], unique=False) == ["a", "a"]
    for keys, kwargs, match in [
        ("ab", {}, "not a single string"),
        (["a", 3], {}, "key #1 is int 3"),
        (["a", "b", "a"], {}, "duplicate key 'a': it appears twice"),
        (["a", ""], {"allow_empty": False}, "key #1 is empty"),
        (["a"], {"n": 2}, "1 keys but 2 rows"),
    ]:
        with pytest.raises(ek.InputError, match=match):
            as_keys(keys, **kwargs)


# ------------------------------------------------------------------ exact k-NN
def brute_knn(x, q, k, metric, exclude):
    """Reference: float64 scores, sorted best-first with ties by row number."""
    x, q = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    rows_i, rows_s = [], []
    for r in range(len(q)):
        if metric == "l2":
            s = np.sqrt(((x - q[r]) ** 2).sum(1))
            key = lambda j: (s[j], j)  # noqa: E731
        else:
            s = x @ q[r]
            key = lambda j: (-s[j], j)  # noqa: E731
        cand = sorted((j for j in range(len(x)) if j not in exclude[r]), key=key)[:k]
        rows_i.append(cand)
        rows_s.append(s[cand])
    return np.array(rows_s), np.array(rows_i)


def check_same(metric, x, q, s, i, ws, wi):
    np.testing.assert_allclose(s, ws, rtol=1e-5, atol=1e-5)
    assert s.dtype == np.float32 and i.shape == wi.shape
    if metric != "cosine":  # integer data: exact scores, so exact tie order (lowest row first)
        np.testing.assert_array_equal(i, wi)
        return
    # cosine of different vectors ties only up to rounding: each returned row must hold the
    # claimed score; rows 2 and 5 are the same vector, so they tie exactly: 2 comes first
    full, _ = brute_knn(x, q, len(x), metric, [set()] * len(q))
    order = brute_knn(x, q, len(x), metric, [set()] * len(q))[1]
    ref = np.empty_like(full)
    np.put_along_axis(ref, order, full, 1)
    np.testing.assert_allclose(np.take_along_axis(ref, i, 1), ws, rtol=1e-5, atol=1e-5)
    for row in i.tolist():
        if 2 in row and 5 in row:
            assert row.index(2) < row.index(5)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("k", [1, 3, 12, 50])
def test_exact_knn_matches_brute_force_with_ties(metric, k):
    from embedkit._knn import exact_knn

    rng = np.random.default_rng(k)
    # small integers: many exact ties, duplicated rows and a zero vector
    x = rng.integers(-2, 3, size=(12, 3)).astype(np.float32)
    x[5] = x[2]
    x[7] = 0
    s, i = exact_knn(x, k, metric=metric, chunk=5)  # several chunks
    ws, wi = brute_knn(x, x, min(k, 11), metric, [{r} for r in range(12)])
    check_same(metric, x, x, s, i, ws, wi)
    assert s.dtype == np.float32 and i.shape == (12, min(k, 11))
    assert all(r not in row for r, row in enumerate(i))  # never itself
    # explicit queries: nothing excluded unless asked; k >= n gives every row, no padding
    q = rng.integers(-2, 3, size=(4, 3)).astype(np.float32)
    s, i = exact_knn(x, k, metric=metric, queries=q)
    ws, wi = brute_knn(x, q, min(k, 12), metric, [set()] * 4)
    check_same(metric, x, q, s, i, ws, wi)
    ex = np.array([[0, 1, -1], [2, 2, 3], [4, 5, 6], [7, 8, 9]])
    s, i = exact_knn(x, k, metric=metric, queries=q, exclude=ex)
    ws, wi = brute_knn(x, q, min(k, 9), metric, [set(r) for r in ex.tolist()])
    check_same(metric, x, q, s, i, ws, wi)
    assert not any(set(row) & set(e) for row, e in zip(i.tolist(), ex.tolist()))


def test_exact_knn_edges():
    from embedkit._knn import exact_knn

    s, i = exact_knn(np.ones((1, 2)), 5)  # only itself: nothing to return
    assert s.shape == i.shape == (1, 0)
    s, i = exact_knn(np.ones((3, 2)), 2, exclude_self=False)
    assert i.tolist() == [[0, 1]] * 3
    with pytest.raises(ValueError, match="'k'"):
        exact_knn(np.ones((3, 2)), 0)
    with pytest.raises(ValueError, match="dimension 3"):
        exact_knn(np.ones((3, 2)), 1, queries=np.ones((1, 3)))


def test_most_similar_ties_are_deterministic():
    emb = ek.Embeddings(["a", "b", "c", "d"], [[1, 0], [1, 0], [1, 0], [0, 1]])
    assert [k for k, _ in emb.most_similar("b", k=2)] == ["a", "c"]
    assert [k for k, _ in emb.most_similar([1.0, 0.0], k=3)] == ["a", "b", "c"]


def test_unit_rows_is_the_one_normalisation():
    from embedkit._knn import unit_rows

    x = np.array([[3, 4], [0, 0], [1e-13, 0]], dtype=np.float32)
    u = unit_rows(x)
    np.testing.assert_allclose(u, [[0.6, 0.8], [0, 0], [0.1, 0]], rtol=1e-6)  # norms below 1e-12 divide by it
    np.testing.assert_allclose(unit_rows(np.stack([x, 2 * x]))[1, 0], [0.6, 0.8], rtol=1e-6)  # last axis of 3-D
    np.testing.assert_allclose(unit_rows(x[2:], tiny=1e-30), [[1, 0]], rtol=1e-6)
    emb = ek.Embeddings(["a", "zero"], x[:2] * 5)
    assert emb.similarity("a", "zero") == 0.0 and emb.similarity("a", "a") == pytest.approx(1.0)


def test_key_to_index_maps_every_key_to_its_row():
    emb = ek.Embeddings(["a", "b", "c"], np.eye(3, dtype=np.float32))
    assert emb.key_to_index == {"a": 0, "b": 1, "c": 2}
    assert all(emb.index_of(k) == i for k, i in emb.key_to_index.items())


def test_one_query_path_ranks_like_the_batch_path_on_ties_and_exclusions():
    from embedkit._knn import _top, _top_1d, knn_search

    rng = np.random.default_rng(3)
    base = np.round(rng.normal(size=(300, 4)), 1).astype(np.float32)  # rounded: many tied scores
    base[7] = base[8] = base[9]
    for row in (0, 7, 150):
        scores = (base @ base[row]).astype(np.float32)
        for k in (1, 5, 40, 299, 300, 400):
            # the same scores ranked by the one-row and the many-row selection: same order, ties by row
            np.testing.assert_array_equal(_top_1d(scores, min(k, 300)), _top(scores[None, :], min(k, 300))[0])
        for ex in (np.array([[row]]), np.array([[row, 8]])):
            got_scores, got = knn_search(base, base[row:row + 1], 20, exclude=ex)
            assert not set(ex[0].tolist()) & set(got[0].tolist())
            assert list(got_scores[0]) == sorted(got_scores[0], reverse=True)
