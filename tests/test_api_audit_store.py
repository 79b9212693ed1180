"""Bad input to Embeddings and Store: one-line errors naming the problem and the fix (API audit)."""

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError, StoreError


def one_line(exc_info, *words):
    text = str(exc_info.value)
    assert "\n" not in text
    for w in words:
        assert w in text, (w, text)
    return text


@pytest.fixture
def emb():
    keys = ["a", "b", "c", "d", "e"]
    return ek.Embeddings(keys, np.random.RandomState(0).randn(5, 4).astype("float32"))


def small_index(dim=4):
    idx = ek.VectorIndex(dim)
    idx.add(["a", "b"], np.eye(2, dim, dtype="float32"))
    return idx


# 1. text word2vec read with binary=True
def test_text_word2vec_read_as_binary_is_refused(emb, tmp_path):
    path = tmp_path / "w.txt"
    emb.save_word2vec_format(path)
    with pytest.raises(InputError) as ei:
        ek.Embeddings.load_word2vec_format(path, binary=True)
    one_line(ei, "w.txt", "looks like the text word2vec format", "drop binary=True")


def test_text_word2vec_short_values_read_as_binary_is_refused(tmp_path):
    path = tmp_path / "w.txt"
    path.write_text("2 4\nä 0 0 0 1\nb 1 0 0 0\n", encoding="utf-8")
    with pytest.raises(InputError) as ei:
        ek.Embeddings.load_word2vec_format(path, binary=True)
    one_line(ei, "text word2vec format", "drop binary=True")


@pytest.mark.parametrize("dim", [1, 2, 4, 50])
def test_binary_word2vec_still_round_trips(tmp_path, dim):
    rng = np.random.default_rng(dim)
    e = ek.Embeddings([f"w{i}" for i in range(20)], rng.normal(size=(20, dim)))
    path = tmp_path / "w.bin"
    e.save_word2vec_format(path, binary=True)
    back = ek.Embeddings.load_word2vec_format(path, binary=True)
    assert back.keys == e.keys
    np.testing.assert_array_equal(back.vectors, e.vectors)


# 2. overwrite (and mmap) must be a bool
@pytest.mark.parametrize("value", ["no", 0, 1, None])
def test_store_save_overwrite_must_be_bool(tmp_path, value):
    s = ek.Store(tmp_path / "st")
    s.save("good", small_index())
    with pytest.raises(InputError) as ei:
        s.save("good", small_index(), overwrite=value)
    one_line(ei, "overwrite must be True or False", repr(value))


def test_store_load_mmap_must_be_bool(tmp_path):
    s = ek.Store(tmp_path / "st")
    s.save("good", small_index())
    with pytest.raises(InputError) as ei:
        s.load("good", mmap="no")
    one_line(ei, "mmap must be True or False")
    assert len(s.load("good", mmap=True)) == 2


# 3. extras are validated before anything is written
def test_store_save_object_extra_is_refused(tmp_path):
    s = ek.Store(tmp_path / "st")
    with pytest.raises(InputError) as ei:
        s.save("ex", small_index(), extras={"a": {"b": object()}})
    one_line(ei, "extras['a']['b'] is an array of Python objects", "numeric or string arrays")
    assert not s.exists("ex")


def test_store_save_good_extras_load_back(tmp_path):
    s = ek.Store(tmp_path / "st")
    s.save("ex", small_index(), extras={"a": {"n": np.arange(3), "s": np.array(["x", "y"]), "f": [True, False]}})
    got = s.load_extra("ex", "a")
    assert got["n"].tolist() == [0, 1, 2] and got["s"].tolist() == ["x", "y"]


def test_damaged_extra_message_is_one_line(tmp_path):
    s = ek.Store(tmp_path / "st")
    s.save("ex", small_index(), extras={"model": {"n": np.arange(3)}})
    (s.path("ex") / "extra.model.npz").write_bytes(b"garbage")
    with pytest.raises(StoreError) as ei:
        s.load_extra("ex", "model")
    one_line(ei, "extra.model.npz", "restore it from a backup or retrain")


# 4. meta must be a dict
def test_embeddings_meta_must_be_dict(emb):
    with pytest.raises(InputError) as ei:
        ek.Embeddings(emb.keys, emb.vectors, meta=[1])
    one_line(ei, "meta must be a dict", "got list")


# 5. non-string keys
@pytest.mark.parametrize("call", [lambda e: e[0:2], lambda e: e.similarity(["a"], "b"),
                                  lambda e: e.index_of(["a"])])
def test_unhashable_key_is_one_line(emb, call):
    with pytest.raises(InputError) as ei:
        call(emb)
    one_line(ei, "key must be a string")


def test_contains_non_string_is_false(emb):
    assert ["a"] not in emb
    assert 0 not in emb
    assert "a" in emb


# 6. paths
@pytest.mark.parametrize("call", [lambda e: e.save(None), lambda e: e.save_word2vec_format(5),
                                  lambda e: ek.Embeddings.load(None),
                                  lambda e: ek.Embeddings.load_word2vec_format(None)])
def test_embeddings_path_type(emb, call):
    with pytest.raises(InputError) as ei:
        call(emb)
    one_line(ei, "path must be a str or Path")


def test_store_root_type():
    with pytest.raises(InputError) as ei:
        ek.Store(5).names()
    one_line(ei, "Store root must be a str or Path", "got int")


# 7. delete with a root that is a file (or missing)
def test_store_delete_root_is_file(tmp_path):
    root = tmp_path / "rootfile"
    root.write_text("x")
    with pytest.raises(StoreError) as ei:
        ek.Store(root).delete("a")
    one_line(ei, "is a file, not a folder")


def test_store_delete_missing_root_creates_nothing(tmp_path):
    with pytest.raises(StoreError) as ei:
        ek.Store(tmp_path / "none").delete("a")
    one_line(ei, "does not exist")
    assert not (tmp_path / "none").exists()


# 8. Store.save of something that is not a VectorIndex
def test_store_save_embeddings_says_to_index(tmp_path, emb):
    s = ek.Store(tmp_path / "st")
    with pytest.raises(InputError) as ei:
        s.save("emb", emb)
    one_line(ei, "index must be a VectorIndex", "got Embeddings", "emb.to_index()")
    with pytest.raises(InputError) as ei:
        s.save("n", None)
    one_line(ei, "index must be a VectorIndex", "got NoneType")


# 9. to_index options
def test_to_index_unknown_option(emb):
    with pytest.raises(InputError) as ei:
        emb.to_index(foo=1)
    one_line(ei, "unknown option 'foo'", "hnsw_m", "nprobe")
    assert len(emb.to_index(ef_search=32)) == 5


def test_a_real_binary_file_whose_bytes_look_like_text_still_loads(tmp_path):
    """dim 1, first value 1.0003115: its float32 bytes are '5', '\\n', 0x80, '?', so a first 'line' reads as
    'cat 5'; the file is binary all the same (it holds a byte no UTF-8 text has) and loads."""
    from gensim.models import KeyedVectors

    for first in (b"5\n\x80?", b"0001"):
        kv = KeyedVectors(1)
        kv.add_vectors(["cat", "dog"], np.array([[np.frombuffer(first, np.float32)[0]], [0.5]], dtype=np.float32))
        path = tmp_path / "b.bin"
        kv.save_word2vec_format(str(path), binary=True)
        emb = ek.Embeddings.load_word2vec_format(path, binary=True)
        assert emb.keys == ["cat", "dog"] and emb.vectors[0, 0] == np.frombuffer(first, np.float32)[0]


def test_structured_extras_are_kept_and_objects_refused(tmp_path):
    store = ek.Store(tmp_path / "st")
    index = ek.Embeddings(["a", "b"], np.eye(2)).to_index()
    rec = np.zeros(2, dtype=[("x", "f4"), ("n", "i8")])
    store.save("s", index, extras={"t": {"rec": rec}})
    assert store.load_extra("s", "t")["rec"].dtype == rec.dtype
