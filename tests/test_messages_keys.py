"""Messages of the library for a mistyped kind, key or index name (issue 15, item 9): one line
with the close match, no FAISS internals; int keys get the rule that keys are strings."""

from __future__ import annotations

import numpy as np
import pytest

import embedkit as ek
from embedkit.index import VectorIndex
from embedkit.store import Store

KEYS = ["0", "1", "2", "word", "world", "apple"]


def one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text and text
    return text


@pytest.fixture
def emb():
    return ek.Embeddings(KEYS, np.random.default_rng(0).normal(size=(len(KEYS), 4)))


@pytest.mark.parametrize("typo, close", [("hnws", "hnsw"), ("Flt", "flat"), ("ivfqp", "ivfpq"), ("atuo", "auto")])
def test_kind_typo_names_the_kinds_and_the_close_match(typo, close):
    with pytest.raises(ek.InputError) as err:
        VectorIndex(4, kind=typo)
    text = one_line(err)
    assert f"did you mean {close!r}?" in text and "flat, hnsw, ivf, ivfpq, auto" in text
    assert "Error in" not in text and ".cpp" not in text and "std::" not in text


def test_factory_strings_still_work_and_bad_ones_are_one_line():
    assert VectorIndex(8, kind="PCA4,Flat").kind == "PCA4,Flat"
    assert VectorIndex(8, kind="HNSW16").kind == "HNSW16"
    with pytest.raises(ek.InputError) as err:
        VectorIndex(4, kind="IVF10,PQ3")  # FAISS refuses it: its reason, without its C++ location, no kind guessed
    text = one_line(err)
    assert "subquantizers" in text and ".cpp" not in text and "did you mean" not in text
    with pytest.raises(ek.InputError) as err:
        VectorIndex(4, kind="nonsense,,")
    assert "did you mean" not in one_line(err)


def test_unknown_keys_suggest_close_matches(emb):
    for call in (lambda: emb["wrod"], lambda: emb.most_similar("wrod"), lambda: emb.similarity("apple", "wrod"),
                 lambda: emb.most_similar(positive=["wrod"])):
        with pytest.raises(KeyError) as err:
            call()
        assert "'wrod' is not in these embeddings" in one_line(err) and "did you mean 'word'" in one_line(err)
    idx = emb.to_index()
    for call in (lambda: idx.search_keys(["wrod"]), lambda: idx.search_keys("wrod"), lambda: idx.get_vectors(["wrod"]),
                 lambda: idx.remove(["wrod"]), lambda: idx.search_examples(positive=["wrod"])):
        with pytest.raises(KeyError) as err:
            call()
        assert "'wrod' is not in the index" in one_line(err) and "did you mean 'word'" in one_line(err)
    with pytest.raises(KeyError, match="^remove: key 'wrod'"):
        idx.remove("wrod")
    with pytest.raises(KeyError) as err:
        emb["zzzzzz"]
    assert "did you mean" not in one_line(err)


def test_removed_keys_are_never_suggested(emb):
    idx = emb.to_index(kind="hnsw")
    idx.remove(["word"])
    with pytest.raises(KeyError) as err:
        idx.search_keys(["wrod"])
    assert "did you mean 'world'?" in one_line(err)


def test_int_keys_say_keys_are_strings(emb):
    """One rule everywhere: keys are strings; an int is never converted, the message names the string."""
    idx = emb.to_index()
    calls = [lambda: emb[0], lambda: emb[[0, 1]], lambda: emb[np.int64(0)], lambda: emb.most_similar(0),
             lambda: emb.most_similar(positive=[0]), lambda: emb.similarity(0, "1"), lambda: idx.search_keys([0]),
             lambda: idx.search_keys(0), lambda: idx.get_vectors([0]), lambda: idx.get_vectors(0),
             lambda: idx.remove([0]), lambda: idx.remove(0), lambda: idx.search_examples(positive=[0])]
    for call in calls:
        with pytest.raises(KeyError) as err:
            call()
        assert "key 0 is an int but keys are strings: use '0'" in one_line(err)
    with pytest.raises(KeyError) as err:
        emb[7]
    assert "keys are strings (and '7' is not in these embeddings either)" in one_line(err)
    with pytest.raises(KeyError) as err:
        idx.search_keys([7])
    assert "keys are strings (and '7' is not in the index either)" in one_line(err)
    assert len(idx) == len(KEYS)  # nothing removed


def test_graph_node_ids_are_strings_so_the_hint_applies():
    """The graph trainers key nodes by their string ids: an int id gets the one-line hint."""
    emb = ek.Embeddings([str(i) for i in range(5)], np.eye(5))
    with pytest.raises(KeyError, match="use '3'"):
        emb.most_similar(3)


def test_missing_key_message_is_worked_out_only_when_read(monkeypatch):
    """A loop catching KeyError for unknown words (the gensim idiom) pays no difflib search."""
    import embedkit.embeddings as E

    calls = []
    monkeypatch.setattr(E, "close_matches", lambda *a, **k: calls.append(a) or [])
    emb = ek.Embeddings(KEYS, np.ones((len(KEYS), 2)))
    for _ in range(100):
        try:
            emb["nope"]
        except KeyError:
            pass
    assert calls == []
    with pytest.raises(KeyError) as err:
        emb["nope"]
    str(err.value)
    assert len(calls) == 1


def test_big_collections_still_suggest_within_a_prefix():
    from embedkit.embeddings import close_matches

    keys = [f"w{i}" for i in range(60_000)] + ["Paris", "wolf"]
    assert close_matches("paris", keys) == ["Paris"]  # case first
    assert close_matches("wofl", keys)[0] == "wolf"  # 60,000 keys: difflib among those starting "wo"
    assert "w1" in close_matches("w1x", keys[:100])


def test_store_names_suggest_and_say_where_the_store_is(tmp_path):
    store = Store(tmp_path / "s")
    store.save("good", ek.Embeddings(KEYS, np.ones((len(KEYS), 2))).to_index())
    for call in (lambda: store.load("god"), lambda: store.info("god"), lambda: store.delete("god")):
        with pytest.raises(ek.StoreError) as err:
            call()
        text = one_line(err)
        assert f"in the store {(tmp_path / 's').resolve()}" in text and "did you mean 'good'?" in text
    with pytest.raises(ek.InputError) as err:
        store.save("good", ek.Embeddings(KEYS, np.ones((len(KEYS), 2))).to_index())
    assert f"already exists in the store {(tmp_path / 's').resolve()}" in one_line(err)
    nowhere = Store(tmp_path / "nowhere")
    with pytest.raises(ek.StoreError) as err:
        nowhere.load("good")
    text = one_line(err)
    assert f"the store folder {(tmp_path / 'nowhere').resolve()} does not exist" in text


def test_missing_key_error_pickles_as_its_message(emb):
    import pickle

    with pytest.raises(KeyError) as err:
        emb["wrod"]
    back = pickle.loads(pickle.dumps(err.value))
    assert type(back) is ek.MissingKeyError and str(back) == str(err.value) and "did you mean 'word'" in str(back)
    assert repr(err.value).startswith("MissingKeyError(")


def test_check_kind_refuses_typos_and_keeps_factory_strings():
    from embedkit.index._factory import check_kind

    assert check_kind("HNSW") == "hnsw" and check_kind("PCA16,HNSW32") == "PCA16,HNSW32"
    assert check_kind("IVF64,PQ7") == "IVF64,PQ7"  # parses; whether it builds depends on the dim
    with pytest.raises(ek.InputError, match="did you mean 'ivf'?"):
        check_kind("ivff")
