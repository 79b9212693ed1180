"""Leftovers of the API audit: store meta and names, search knobs of other kinds, word evaluation
on empty embeddings, doesnt_match with unknown words, fold_in with no items, HybridMF's inputs."""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from test_api_audit_store import one_line  # one checker of one-line messages

import embedkit as ek
from embedkit.errors import IgnoredParameterWarning, InputError, MissingKeyError, NotFittedError
from embedkit.store import Store, check_name
from embedkit.trainers.mf.features import Features
from embedkit.trainers.mf.hybrid import HybridMF


def small_index(kind="flat", n=2, dim=4):
    idx = ek.VectorIndex(dim, kind=kind)
    if n:
        idx.add([str(i) for i in range(n)], np.random.RandomState(0).randn(n, dim).astype("float32"))
    return idx


# 1. Store.save: meta values JSON cannot hold, and names Windows reserves
@pytest.mark.parametrize("meta, where", [({"score": math.nan}, "'score'"),
                                         ({"run": {"losses": [1.0, math.inf]}}, "'losses'"),
                                         ({"low": np.float64(-np.inf)}, "'low'")])
def test_store_save_refuses_non_finite_meta_and_writes_nothing(tmp_path, meta, where):
    store = Store(tmp_path / "store")
    with pytest.raises(InputError) as ei:
        store.save("x", small_index(), meta=meta)
    one_line(ei, "meta", where, "finite")
    assert not (tmp_path / "store").exists()
    with pytest.raises(InputError) as ei:
        small_index().save(tmp_path / "direct", meta=meta)
    one_line(ei, where)
    assert not (tmp_path / "direct").exists()


def test_store_save_over_an_index_with_bad_meta_keeps_the_old_copy(tmp_path):
    store = Store(tmp_path)
    store.save("x", small_index(n=2), meta={"v": 1})
    with pytest.raises(InputError):
        store.save("x", small_index(n=3), meta={"v": math.nan}, overwrite=True)
    assert len(store.load("x")) == 2 and store.info("x")["meta"] == {"v": 1}
    json.loads((tmp_path / "x" / "manifest.json").read_text(), parse_constant=pytest.fail)


@pytest.mark.parametrize("name", ["CON", "con", "Nul", "aux.idx", "PRN.tar.gz", "com1", "COM9.x", "lpt1", "LPT9"])
def test_store_save_refuses_windows_reserved_names(tmp_path, name):
    store = Store(tmp_path / "store")
    with pytest.raises(InputError) as ei:
        store.save(name, small_index())
    one_line(ei, repr(name), "Windows", "another name")
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


@pytest.mark.parametrize("name", ["console", "com10", "com0x", "lpt", "nul_data", "conx.txt", "my.con"])
def test_names_close_to_windows_reserved_ones_are_kept(tmp_path, name):
    assert check_name(name) == name
    Store(tmp_path).save(name, small_index())
    assert Store(tmp_path).exists(name)


def test_cli_index_build_refuses_a_windows_reserved_name_before_reading(run, tmp_path):
    # the vectors file does not exist: only a name check before reading can answer about the name
    code, out, err = run("index", "build", tmp_path / "missing.npz", "--name", "aux", "--store", tmp_path / "s")
    assert code != 0 and "Windows" in err and "another name" in err and "Traceback" not in err
    assert not (tmp_path / "s" / "aux").exists()


def test_trainer_to_store_checks_name_and_meta_before_building_the_index(tmp_path, monkeypatch):
    from embedkit.index import VectorIndex

    model = ek.AutoEncoder(dim=2, hidden=(8,), epochs=1, device="cpu")
    model.fit(np.random.RandomState(0).randn(40, 4).astype("float32"), show_progress=False)
    built = []
    monkeypatch.setattr(VectorIndex, "add", lambda self, *a, **k: built.append(1))
    with pytest.raises(InputError, match="reserved on Windows"):
        model.to_store("con", str(tmp_path))
    with pytest.raises(InputError, match="JSON cannot hold"):
        model.to_store("fine", str(tmp_path), meta={"x": math.inf})
    assert not built


def test_a_nan_training_loss_is_stored_as_none(tmp_path):
    model = ek.AutoEncoder(dim=2, hidden=(8,), epochs=2, device="cpu")
    model.fit(np.random.RandomState(0).randn(40, 4).astype("float32"), show_progress=False)
    model.loss_history_ = [math.nan, 0.5]  # a diverged epoch
    model.to_store("m", str(tmp_path))
    assert Store(tmp_path).info("m")["meta"]["loss_history"] == [None, 0.5]


# 2. set_params: a search knob the index kind does not have
@pytest.mark.parametrize("kind, knob, applies", [("flat", "nprobe", "ivf"), ("hnsw", "nprobe", "ivf"),
                                                  ("flat", "ef_search", "hnsw"), ("flat", "refine", "ivfpq"),
                                                  ("hnsw", "refine", "ivfpq")])
def test_set_params_warns_for_a_knob_of_other_kinds(kind, knob, applies):
    idx = small_index(kind)
    before = idx.params
    with pytest.warns(IgnoredParameterWarning) as rec:
        idx.set_params(**{knob: 5})
    text = str(rec[0].message)
    assert "\n" not in text and knob in text and applies in text and kind in text
    assert idx.params == before


def test_set_params_is_quiet_for_the_knobs_of_the_kind():
    x = np.random.RandomState(0).randn(400, 8).astype("float32")
    ivf = ek.VectorIndex(8, kind="ivf", nlist=4)
    ivf.add([str(i) for i in range(400)], x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ivf.set_params(nprobe=3)
        small_index("hnsw").set_params(ef_search=100)
        ek.VectorIndex(8, kind="auto").set_params(ef_search=100)  # may become HNSW at the first add
    assert ivf.nprobe == 3
    with pytest.warns(IgnoredParameterWarning, match="ef_search"):
        ivf.ef_search = 50


# 3. similarity_report on empty embeddings
def test_similarity_report_on_empty_embeddings_is_refused(tmp_path):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a b 1\nc d 2\n")
    empty = ek.Embeddings([], np.zeros((0, 4), dtype="float32"))
    from embedkit.evaluate.words import analogy_report, similarity_report

    with pytest.raises(InputError) as ei:
        similarity_report(empty, pairs)
    one_line(ei, "no vectors")
    (tmp_path / "q.txt").write_text("a b c d\n")
    with pytest.raises(InputError):
        analogy_report(empty, tmp_path / "q.txt")


# 4. doesnt_match with unknown words
@pytest.fixture
def words():
    return ek.Embeddings(["a", "b", "c", "d"], np.random.RandomState(0).randn(4, 5).astype("float32"))


def test_doesnt_match_warns_naming_the_unknown_words(words):
    with pytest.warns(UserWarning, match="zz") as rec:
        assert words.doesnt_match(["a", "zz", "b", "c"]) in ("a", "b", "c")
    assert "\n" not in str(rec[0].message)


@pytest.mark.parametrize("keys, error", [(["a", "zz"], MissingKeyError), (["zz", "yy"], MissingKeyError),
                                         (["a"], InputError), ([], InputError)])
def test_doesnt_match_needs_two_known_words(words, keys, error):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as ei:
            words.doesnt_match(keys)
    one_line(ei, "at least 2")


# 5. MatrixFactorization.fold_in with no items
@pytest.fixture(scope="module")
def mf():
    inter = ek.Interactions.from_arrays(["u1", "u1", "u2", "u2", "u3"], ["a", "b", "b", "c", "a"])
    model = ek.MatrixFactorization(dim=4, epochs=2, device="cpu")
    model.fit(inter, show_progress=False)
    return model


def test_fold_in_with_no_items_is_refused_and_changes_nothing(mf):
    before = mf.user_embeddings_.vectors.copy()
    for user in ("new", "u1"):
        with pytest.raises(InputError) as ei:
            mf.fold_in(user, [])
        one_line(ei, "fold_in", "no items")
    assert not mf.has_user("new")
    np.testing.assert_array_equal(mf.user_embeddings_.vectors, before)
    assert sorted(i for i, _ in mf.history("u1")) == ["a", "b"]


# 6. HybridMF: predict and recommend_batch with bad input
@pytest.fixture(scope="module")
def hybrid():
    inter = ek.Interactions.from_arrays(["u1", "u1", "u2", "u2", "u3"], ["a", "b", "b", "c", "a"])
    items = pd.DataFrame({"item": ["a", "b", "c"], "genre": ["x", "y", "x"], "price": [1.0, 2.0, 3.0]})
    feats = Features.from_dataframe(items, id="item", categorical=["genre"], numeric=["price"])
    model = HybridMF(dim=4, epochs=2, device="cpu")
    model.fit(inter, item_features=feats, show_progress=False)
    return model


@pytest.mark.parametrize("users, items", [(None, ["a"]), (["u1"], None), (5, ["a"]), ({"u1": 1}, ["a"]),
                                          (["u1"], {"a": 1})])
def test_hybrid_predict_refuses_what_is_not_a_list(hybrid, users, items):
    with pytest.raises(InputError) as ei:
        hybrid.predict(users, items)
    one_line(ei, "predict", "list")


def test_hybrid_predict_unfitted_says_fit_first():
    with pytest.raises(NotFittedError):
        HybridMF().predict(None, ["a"])


def test_hybrid_predict_one_user_many_items_as_matrix_factorization(hybrid):
    both = hybrid.predict(["u1", "u1"], ["a", "b"])
    np.testing.assert_allclose(hybrid.predict("u1", ["a", "b"]), both)
    np.testing.assert_allclose(hybrid.predict(["u1"], ["a", "b"]), both)


@pytest.mark.parametrize("users, items", [(["zz"], ["a"]), ([None], ["a"]), ([math.nan], ["a"]), (["u1"], ["zz"]),
                                          ([["u1"]], ["a"])])
def test_hybrid_predict_unknown_keys_one_line(hybrid, users, items):
    with pytest.raises(MissingKeyError) as ei:
        hybrid.predict(users, items)
    one_line(ei, "unknown")


@pytest.mark.parametrize("call, error", [
    (lambda m: m.recommend_batch(["zz"]), MissingKeyError), (lambda m: m.recommend_batch([None]), MissingKeyError),
    (lambda m: m.recommend_batch(["u1"], k=0), InputError), (lambda m: m.recommend_batch(["u1"], k=True), InputError),
    (lambda m: m.recommend_batch(None), InputError), (lambda m: m.recommend_batch("u1"), InputError),
    (lambda m: m.recommend_batch(["u1"], exclude_seen="no"), InputError)])
def test_hybrid_recommend_batch_bad_input_one_line(hybrid, call, error):
    with pytest.raises(error) as ei:
        call(hybrid)
    one_line(ei)


def test_hybrid_recommend_batch_of_no_users_is_empty(hybrid):
    assert hybrid.recommend_batch([]) == []


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_hybrid_infinite_numeric_feature_is_refused(hybrid, value):
    before = len(hybrid.embeddings_)
    with pytest.raises(InputError) as ei:
        hybrid.add_items({"d": {"genre": "x", "price": value}})
    one_line(ei, "'price'", "finite")
    assert len(hybrid.embeddings_) == before and not hybrid.has_item("d")


def test_an_index_saved_with_nan_meta_before_loads_and_saves_again(tmp_path):
    store = Store(tmp_path)
    store.save("old", small_index(), meta={"score": 1.5, "n": 2})
    manifest = tmp_path / "old" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("1.5", "NaN"))  # as saves before the check wrote it
    index = store.load("old")
    assert index.meta == {"score": None, "n": 2}
    assert store.info("old")["meta"] == {"score": None, "n": 2}  # every reader of the manifest, before re-saving
    store.save("old", index, meta=store.info("old")["meta"], overwrite=True)  # compaction, tune, mf cold-start
    assert store.info("old")["meta"] == {"score": None, "n": 2}


@pytest.mark.parametrize("kind, knob, warns_before, warns_after", [
    ("IMI2x4,Flat", "nprobe", False, False), ("IVF4_HNSW8,Flat", "ef_search", True, True),
    ("IVF4,Flat", "nprobe", False, False), ("HNSW8", "ef_search", False, False), ("HNSW8", "nprobe", True, True)])
def test_factory_strings_get_the_same_knob_rule_before_and_after_the_first_add(kind, knob, warns_before, warns_after):
    idx = ek.VectorIndex(4, metric="l2", kind=kind)
    for expected in (warns_before, warns_after):
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            idx.set_params(**{knob: 3})
        assert any(issubclass(w.category, IgnoredParameterWarning) for w in rec) == expected, (kind, knob)
        if not len(idx):
            idx.add([str(i) for i in range(300)], np.random.RandomState(0).randn(300, 4).astype("float32"))


def test_constructor_nprobe_on_a_kind_without_it_warns():
    with pytest.warns(IgnoredParameterWarning, match="nprobe has no effect on an index of kind 'hnsw'"):
        ek.VectorIndex(4, kind="hnsw", nprobe=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ek.VectorIndex(4, kind="ivf", nprobe=5)


def test_a_none_loss_in_the_manifest_is_shown_as_nan_by_info(tmp_path, capsys):
    from embedkit.cli import main

    store = Store(tmp_path)
    store.save("x", small_index(), meta={"trainer": "Word2Vec", "loss_history": [1.0, 2.0]})
    manifest = tmp_path / "x" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("2.0", "NaN"))  # as saves before the meta check wrote it
    assert main(["info", "x", "--store", str(tmp_path)]) == 0
    assert "loss:     1 nan" in capsys.readouterr().out


def test_constructor_nprobe_dropped_on_a_kind_without_it():
    with pytest.warns(IgnoredParameterWarning):
        idx = ek.VectorIndex(4, kind="hnsw", nprobe=5)
    assert idx.nprobe is None


@pytest.mark.parametrize("kind, option", [("flat", "nlist"), ("hnsw", "pq_m"), ("ivf", "pq_m"), ("IVF4,Flat", "nlist")])
def test_constructor_build_options_of_other_kinds_warn(kind, option):
    with pytest.warns(IgnoredParameterWarning, match=f"{option} has no effect on an index of kind"):
        ek.VectorIndex(4, metric="l2", kind=kind, **{option: 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ek.VectorIndex(4, kind="ivfpq", nlist=2, pq_m=2)
