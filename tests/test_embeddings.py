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
        assert set(data.files) >= {"keys", "vectors"}


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
    p.write_text("3 3\na 1 2 3\n")
    with pytest.raises(ek.ParseError, match=r"v.txt:3: file ends after 1 of 3"):
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
