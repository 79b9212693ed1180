"""Bad input to the index, evaluation, plotting and MF answers gets one-line errors that name
the problem and the fix (an API audit)."""

from __future__ import annotations

import numpy as np
import pytest

import embedkit as ek
import embedkit.evaluate as ev
from embedkit import plot as P
from embedkit.errors import InputError, MissingKeyError

KEYS = [f"k{i}" for i in range(6)]
V = np.random.RandomState(0).randn(6, 4).astype("float32")


def _one_line(exc_info, *words):
    msg = str(exc_info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def _index(kind="flat"):
    x = ek.VectorIndex(4, kind=kind)
    x.add(KEYS, V, payload=[{"cat": "a", "price": i} for i in range(6)])
    return x


def _inter():
    u = ["u0", "u0", "u1", "u1", "u2", "u3"]
    it = ["i0", "i1", "i1", "i2", "i0", "i3"]
    return ek.Interactions.from_arrays(u, it)


@pytest.fixture(scope="module")
def mf():
    m = ek.MatrixFactorization(method="als", dim=4, epochs=2, seed=0, device="cpu")
    m.fit(_inter(), show_progress=False)
    return m


# ------------------------------------------------------------------ VectorIndex
def test_tune_refuses_empty_queries_and_leaves_the_index_alone():
    h = _index("hnsw")
    before = h.ef_search
    with pytest.raises(InputError) as e:
        h.tune(queries=np.zeros((0, 4)))
    _one_line(e, "queries is empty", "leave queries out")
    assert h.ef_search == before


def test_tune_checks_seed():
    with pytest.raises(InputError) as e:
        _index("hnsw").tune(seed="x")
    _one_line(e, "seed", "tune")


def test_payload_of_a_list_says_one_key():
    with pytest.raises(InputError) as e:
        _index().payload(["k0"])
    _one_line(e, "key must be a string", "list", "idx.payload(k) for k in keys")


def test_search_examples_none():
    with pytest.raises(InputError) as e:
        _index().search_examples(positive=None)
    _one_line(e, "positive", "NoneType")


@pytest.mark.parametrize("method", ["search", "search_keys"])
def test_search_refuses_bool_k(method):
    x = _index()
    arg = V[0] if method == "search" else ["k0"]
    with pytest.raises(InputError) as e:
        getattr(x, method)(arg, k=True)
    _one_line(e, "'k'", "True")
    assert getattr(x, method)(arg, k=np.int64(2)).keys[0]  # numpy ints still pass


# ------------------------------------------------------------------ evaluate
def _ring():
    n = 20
    return ek.Graph.from_arrays([f"a{i}" for i in range(n)], [f"a{(i + 1) % n}" for i in range(n)])


def test_link_prediction_fit_returns_none():
    with pytest.raises(InputError) as e:
        ev.link_prediction(_ring(), lambda g: None, keep_connected=False, test_fraction=0.2)
    _one_line(e, "fit must return Embeddings", "NoneType")


def test_link_prediction_embeddings_of_other_keys():
    fit = lambda g: ek.Embeddings(["x", "y"], np.ones((2, 4), dtype=np.float32))  # noqa: E731
    with pytest.raises(InputError) as e:
        ev.link_prediction(_ring(), fit, keep_connected=False, test_fraction=0.2)
    _one_line(e, "none of the graph's nodes", "'x'")


def test_analogy_report_batch_size(tmp_path):
    e = ek.Embeddings(KEYS, V)
    with pytest.raises(InputError) as exc:
        ev.analogy_report(e, batch_size=0)
    _one_line(exc, "batch_size", "analogy_report")
    with pytest.raises(InputError) as exc:
        ev.analogy_report(e, restrict_vocab=True)
    _one_line(exc, "restrict_vocab")


def test_word_analogy_needs_embeddings():
    with pytest.raises(InputError) as e:
        ev.word_analogy([1, 2, 3])
    _one_line(e, "ek.Embeddings", "list", "ek.Embeddings(keys, vectors)")


def test_plot_map_needs_embeddings_and_dict_labels(tmp_path):
    with pytest.raises(InputError) as e:
        P.plot_map(np.ones((5, 4)), tmp_path / "m.png")
    _one_line(e, "ek.Embeddings", "ndarray")
    emb = ek.Embeddings(KEYS, V)
    with pytest.raises(InputError) as e:
        P.plot_map(emb, tmp_path / "m.png", labels=["a"] * 6)
    _one_line(e, "labels must be a dict", "list")


# ------------------------------------------------------------------ recommenders
@pytest.mark.parametrize("cls", ["Popularity", "ItemKNN"])
def test_baseline_similar_items_of_a_list(cls):
    m = getattr(ek, cls)()
    m.fit(_inter(), show_progress=False)
    with pytest.raises(MissingKeyError) as e:
        m.similar_items(["i0"])
    _one_line(e, "unknown item", "['i0']")
    with pytest.raises(InputError) as e:
        m.similar_items("i0", k=0)
    _one_line(e, f"{cls}.similar_items")


def test_mf_predict_none(mf):
    with pytest.raises(InputError) as e:
        mf.predict(None, None)
    _one_line(e, "users", "items", "NoneType")


def test_mf_fold_in_one_string(mf):
    with pytest.raises(InputError) as e:
        mf.fold_in("new", "i0")
    _one_line(e, "items must be a list", "'i0'", "wrap one item in a list")


@pytest.mark.parametrize("which", ["mf", "Popularity", "ItemKNN"])
def test_recommend_batch_one_string(which, mf):
    if which == "mf":
        m = mf
    else:
        m = getattr(ek, which)()
        m.fit(_inter(), show_progress=False)
    with pytest.raises(InputError) as e:
        m.recommend_batch("u0")
    _one_line(e, "users must be a list", "'u0'", "recommend('u0')")
    assert len(m.recommend_batch(["u0"], k=1)) == 1


def test_exclude_seen_must_be_a_bool_and_nan_filter_values_are_refused():
    inter = ek.Interactions.from_arrays(["u0", "u0", "u1", "u2"], ["i0", "i1", "i1", "i2"])
    models = [ek.MatrixFactorization(dim=2, epochs=1, seed=0), ek.Popularity()]
    for model in models:
        model.fit(inter, show_progress=False) if isinstance(model, ek.MatrixFactorization) else model.fit(inter)
        with pytest.raises(ek.InputError) as err:
            model.recommend_batch(["u0"], exclude_seen="no")  # a truthy string used to mean True
        assert "exclude_seen" in str(err.value) and "\n" not in str(err.value)
        assert model.recommend_batch(["u0"], exclude_seen=np.bool_(False))
    idx = ek.VectorIndex(2)
    idx.add(["a", "b"], np.eye(2), payload=[{"price": 1.0}, {"price": 2.0}])
    for flt in ({"price": {"$gt": float("nan")}}, {"price": {"$in": [1.0, np.nan]}}, {"price": float("nan")}):
        with pytest.raises(ek.InputError, match="not NaN") as err:  # it matched nothing, silently
            idx.search_keys(["a"], k=2, filter=flt)
        assert "\n" not in str(err.value)
