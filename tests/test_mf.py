"""MatrixFactorization: known answers on a checkerboard and a planted low-rank matrix, fold-in,
seen-item exclusion, store round trip, ranking metrics, CLI."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError, MissingKeyError, NotFittedError
from embedkit.evaluate.ranking import ranking_metrics, rmse, topk_metrics
from embedkit.trainers import IgnoredParameterWarning

try:
    import implicit  # noqa: F401
    HAVE_IMPLICIT = True
except ImportError:
    HAVE_IMPLICIT = False


def checker_split(n_users=40, n_items=30, held_out=3, seed=0):
    """(train, test): two contiguous blocks (not conftest's interleaved ``checkerboard``): users
    u0..u19 play every item i0..i14, the others every item i15..i29, except ``held_out`` items
    per user, which form the test set (the known answer)."""
    users, items = [], []
    half_u, half_i = n_users // 2, n_items // 2
    for u in range(n_users):
        block = range(half_i) if u < half_u else range(half_i, n_items)
        users += [f"u{u}"] * len(block)
        items += [f"i{i}" for i in block]
    full = ek.Interactions.from_arrays(users, items)
    return full.leave_n_out(n=held_out, seed=seed)


def block_of_user(user):
    return int(user[1:]) < 20


def block_of_item(item):
    return int(item[1:]) < 15


CONFIGS = {
    "als": dict(method="als", epochs=10),
    "bpr": dict(method="bpr", epochs=150, lr=0.05),
}
if HAVE_IMPLICIT:
    CONFIGS["implicit-als"] = dict(method="als", epochs=10, backend="implicit")


@pytest.fixture(scope="module")
def split_board():
    return checker_split()


@pytest.fixture(scope="module")
def board(split_board):
    return split_board[0]


@pytest.fixture(scope="module")
def held(split_board):
    return split_board[1]


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def fitted(request, board):
    model = ek.MatrixFactorization(dim=2, seed=0, device="cpu", **CONFIGS[request.param])
    model.fit(board, show_progress=False)
    return model


# ------------------------------------------------------------ known answers
def test_checkerboard_recommendations_stay_in_block(fitted, held):
    users = [f"u{u}" for u in range(40)]
    for user, recs in zip(users, fitted.recommend_batch(users, k=5)):
        assert len(recs) == 5
        # the three unseen items of the user's block come first, then the other block
        assert {item for item, _ in recs[:3]} == set(held.items_of(user)), (user, recs)
        assert all(block_of_item(item) != block_of_user(user) for item, _ in recs[3:])
        scores = [s for _, s in recs]
        assert scores == sorted(scores, reverse=True)


def test_similar_items_by_cosine_stay_in_block(fitted):
    for item in ("i0", "i20"):
        sims = fitted.similar_items(item, k=5)
        assert item not in [k for k, _ in sims]
        assert all(block_of_item(k) == block_of_item(item) for k, _ in sims)
        assert all(-1.0 - 1e-5 <= s <= 1.0 + 1e-5 for _, s in sims)


def test_seen_items_excluded_and_included(fitted, board):
    for user in ("u0", "u25"):
        seen = set(board.items_of(user))
        recs = [k for k, _ in fitted.recommend(user, k=15)]
        assert not seen & set(recs)
        every = [k for k, _ in fitted.recommend(user, k=30, exclude_seen=False)]
        assert sorted(every) == sorted(board.item_keys)
        assert len(fitted.recommend(user, k=100)) == 30 - len(seen)


def test_outputs_shapes_and_types(fitted, board):
    assert fitted.item_embeddings_.vectors.shape == (30, 2)
    assert fitted.user_embeddings_.vectors.shape == (40, 2)
    assert fitted.embeddings_ is fitted.item_embeddings_
    assert fitted.item_embeddings_.keys == board.item_keys
    assert np.isfinite(fitted.user_embeddings_.vectors).all()
    pred = fitted.predict(["u0", "u0"], [fitted.recommend("u0", k=1)[0][0], "i20"])
    assert pred.dtype == np.float32 and pred[0] > pred[1]
    score = dict(fitted.recommend("u0", k=30, exclude_seen=False))
    assert score[fitted.recommend("u0", k=1)[0][0]] == pytest.approx(float(pred[0]), rel=1e-4, abs=1e-4)


def test_batch_equals_single(fitted):
    batch = fitted.recommend_batch(["u3", "u33"], k=4)
    assert batch == [fitted.recommend("u3", k=4), fitted.recommend("u33", k=4)]


def test_errors(fitted):
    with pytest.raises(MissingKeyError, match="unknown user"):
        fitted.recommend("nobody")
    with pytest.raises(MissingKeyError, match="unknown item"):
        fitted.similar_items("nothing")
    with pytest.raises(MissingKeyError, match="unknown item"):
        fitted.predict(["u0"], ["nothing"], unknown="error")
    with pytest.raises(MissingKeyError, match="unknown item"):
        fitted.fold_in("new", ["i0", "nothing"])
    with pytest.raises(InputError):
        fitted.recommend("u0", k=0)


@pytest.mark.parametrize("kwargs, match", [
    (dict(method="sgd"), "method"),
    (dict(feedback="explicit", method="bpr"), "method"),
    (dict(dim=0), "dim"),
    (dict(reg=-1.0), "reg"),
    (dict(device="tpu"), "device"),
    (dict(backend="spark"), "backend"),
])
def test_bad_parameters(board, kwargs, match):
    with pytest.raises(InputError, match=match):
        ek.MatrixFactorization(**kwargs).fit(board, show_progress=False)


def test_not_fitted_and_bad_data():
    model = ek.MatrixFactorization()
    assert not [name for name in vars(model) if name.endswith("_")]
    for name in ("item_embeddings_", "embeddings_", "loss_history_", "params_", "global_mean_"):
        assert name not in vars(model) and name not in vars(type(model)), name
    for name in ("user_embeddings_", "index_"):
        with pytest.raises(NotFittedError):
            getattr(model, name)
        assert not hasattr(model, name)
    with pytest.raises(NotFittedError):
        model.recommend("u0")
    with pytest.raises(NotFittedError):
        model.save(Path("never.npz"))
    with pytest.raises(InputError, match="Interactions"):
        model.fit([("a", "b")], show_progress=False)


# -------------------------------------------------------- training contract
@pytest.mark.parametrize("kwargs", [dict(method="als"), dict(method="bpr"),
                                    dict(feedback="explicit", method="als"),
                                    dict(feedback="explicit", method="sgd")])
def test_seed_determinism_loss_history_and_callback(board, kwargs):
    calls = []
    a = ek.MatrixFactorization(dim=4, epochs=3, seed=7, device="cpu", **kwargs)
    a.fit(board, show_progress=False, callback=lambda e, loss: calls.append((e, loss)))
    b = ek.MatrixFactorization(dim=4, epochs=3, seed=7, device="cpu", **kwargs).fit(board, show_progress=False)
    c = ek.MatrixFactorization(dim=4, epochs=3, seed=8, device="cpu", **kwargs).fit(board, show_progress=False)
    np.testing.assert_array_equal(a.item_embeddings_.vectors, b.vectors)
    assert not np.array_equal(b.vectors, c.vectors)
    assert [e for e, _ in calls] == [1, 2, 3] and [x for _, x in calls] == a.loss_history_
    assert all(np.isfinite(a.loss_history_))


def test_fit_takes_interactions_by_keyword(board):
    import inspect

    assert list(inspect.signature(ek.MatrixFactorization.fit).parameters)[:2] == ["self", "interactions"]
    a = ek.MatrixFactorization(dim=2, epochs=2, device="cpu").fit(interactions=board, show_progress=False)
    b = ek.MatrixFactorization(dim=2, epochs=2, device="cpu").fit(board, show_progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_als_loss_decreases(board):
    model = ek.MatrixFactorization(dim=8, epochs=8, device="cpu")
    model.fit(board, show_progress=False)
    h = model.loss_history_
    assert all(later <= earlier + 1e-9 for earlier, later in zip(h, h[1:])) and h[-1] < h[0]


# ------------------------------------------------------------ parameters
def test_every_parameter_has_a_constraint():
    model = ek.MatrixFactorization()
    assert set(model._parameter_constraints) == set(model.get_params())
    assert "alpha" not in model.get_params()
    assert type(model)(**model.get_params()).get_params() == model.get_params()


@pytest.mark.parametrize("kwargs, match", [
    (dict(lr=-5), "'lr'"),              # ALS does not use lr, but a bad value is still an error
    (dict(batch_size=0), "'batch_size'"),
    (dict(dim=10_001), "'dim'"),
    (dict(confidence=-1.0), "'confidence'"),
    (dict(cg_steps=0), "'cg_steps'"),
    (dict(epochs=0), "'epochs'"),
    (dict(seed=-1), "'seed'"),
    (dict(feedback="ratings"), "'feedback'"),
    (dict(backend="implicit", feedback="explicit"), "backend='implicit'"),
])
def test_every_parameter_is_checked_whatever_the_method(board, kwargs, match):
    with pytest.raises(InputError, match=match) as info:
        ek.MatrixFactorization(device="cpu", **{"epochs": 1, **kwargs}).fit(board, show_progress=False)
    assert "\n" not in str(info.value)


def test_lr_with_als_warns_once_as_ignored(board):
    model = ek.MatrixFactorization(method="als", lr=0.1, dim=2, epochs=1, device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(board, show_progress=False)
        model.fit(board, show_progress=False)
    ignored = [w for w in caught if issubclass(w.category, IgnoredParameterWarning)]
    assert len(ignored) == 1 and "'lr'" in str(ignored[0].message) and "als" in str(ignored[0].message)


@pytest.mark.parametrize("kwargs, ignored", [
    (dict(method="als", batch_size=64), {"batch_size"}),
    (dict(method="als", cg_steps=5, confidence=2.0), set()),
    (dict(method="bpr", cg_steps=5, lr=0.01, batch_size=64), {"cg_steps"}),
    (dict(method="bpr", confidence=2.0), {"confidence"}),
    (dict(feedback="explicit", method="als", confidence=2.0), {"confidence"}),
    (dict(feedback="explicit", method="sgd", cg_steps=5, confidence=2.0), {"cg_steps", "confidence"}),
])
def test_ignored_parameters_warn(board, kwargs, ignored):
    model = ek.MatrixFactorization(dim=2, epochs=1, device="cpu", **kwargs)
    data = board if kwargs.get("feedback") != "explicit" else planted(n_users=10, n_items=8)[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(data, show_progress=False)
    got = {str(w.message).split("'")[1] for w in caught if issubclass(w.category, IgnoredParameterWarning)}
    assert got == ignored


@pytest.mark.parametrize("kwargs, ignored", [
    (dict(method="als", cg_steps=5, lr=0.1, batch_size=64, confidence=2.0), {"cg_steps", "lr", "batch_size"}),
    (dict(method="bpr", cg_steps=5, lr=0.1, batch_size=64, confidence=2.0), {"cg_steps", "confidence", "batch_size"}),
])
def test_implicit_backend_ignores_cg_steps_and_batch_size(kwargs, ignored):
    # check_params() warns as fit() does, without training (so without the implicit package)
    model = ek.MatrixFactorization(backend="implicit", **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert model.check_params() == model.get_params()
    got = {str(w.message).split("'")[1] for w in caught if issubclass(w.category, IgnoredParameterWarning)}
    assert got == ignored


def test_alpha_is_the_old_name_of_confidence(board):
    with pytest.warns(FutureWarning, match="'alpha' is renamed 'confidence'"):
        old = ek.MatrixFactorization(alpha=3.0, dim=2, epochs=2, device="cpu")
    assert old.confidence == 3.0 and "alpha" not in old.get_params()
    new = ek.MatrixFactorization(confidence=3.0, dim=2, epochs=2, device="cpu")
    np.testing.assert_array_equal(old.fit(board, show_progress=False).vectors,
                                  new.fit(board, show_progress=False).vectors)
    # the weight is used: another confidence gives other vectors
    other = ek.MatrixFactorization(confidence=1.0, dim=2, epochs=2, device="cpu").fit(board, show_progress=False)
    assert not np.array_equal(other.vectors, new.item_embeddings_.vectors)


# ------------------------------------------------------------------ fold-in
def test_fold_in_of_known_user_reproduces_training(board):
    # users are solved last in each ALS epoch, so folding a user in from their own items is the
    # same least-squares problem; enough CG steps make training solve it exactly too
    model = ek.MatrixFactorization(dim=8, epochs=10, cg_steps=20, device="cpu")
    model.fit(board, show_progress=False)
    model_u = model.user_embeddings_["u5"].copy()
    vec = model.fold_in("u5", board.items_of("u5"))
    np.testing.assert_allclose(vec, model_u, rtol=1e-3, atol=1e-4)


def test_fold_in_new_user_matches_refit(board):
    items = ["i0", "i2", "i4", "i6", "i8", "i10"]
    model = ek.MatrixFactorization(dim=2, epochs=15, cg_steps=10, device="cpu")
    model.fit(board, show_progress=False)
    folded = model.fold_in("newbie", items)
    assert folded.shape == (2,) and "newbie" in model.user_embeddings_
    refit_data = ek.Interactions.from_arrays(
        [board.user_keys[u] for u in board.users] + ["newbie"] * len(items),
        [board.item_keys[i] for i in board.items] + items)
    refit = ek.MatrixFactorization(dim=2, epochs=15, cg_steps=10, device="cpu")
    refit.fit(refit_data, show_progress=False)
    a = [k for k, _ in model.recommend("newbie", k=5)]
    b = [k for k, _ in refit.recommend("newbie", k=5)]
    assert all(block_of_item(k) for k in a) and not set(a) & set(items)
    assert len(set(a) & set(b)) >= 3
    # every item's score for the user agrees closely between fold-in and a full refit
    s_fold = model.predict(["newbie"], board.item_keys)
    s_refit = refit.predict(["newbie"], board.item_keys)
    assert np.corrcoef(s_fold, s_refit)[0, 1] > 0.95


def test_fold_in_replaces_a_changed_user(board):
    model = ek.MatrixFactorization(dim=2, epochs=10, device="cpu")
    model.fit(board, show_progress=False)
    # u0 (first block) now only plays second-block items: recommendations follow, seen updated
    model.fold_in("u0", ["i15", "i16", "i17", "i18", "i19", "i20"])
    recs = [k for k, _ in model.recommend("u0", k=5)]
    assert all(not block_of_item(k) for k in recs)
    assert not {"i15", "i16", "i17", "i18", "i19", "i20"} & set(recs)
    assert len(model.user_embeddings_) == 40


def test_bpr_fold_in_lands_in_block(board):
    model = ek.MatrixFactorization(method="bpr", dim=2, epochs=150, lr=0.05, device="cpu")
    model.fit(board, show_progress=False)
    model.fold_in("newbie", ["i16", "i18", "i20", "i22"])
    assert all(not block_of_item(k) for k, _ in model.recommend("newbie", k=5))


# ---------------------------------------------------------- explicit ratings
def planted(n_users=120, n_items=80, rank=3, noise=0.1, density=0.35, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank)) / np.sqrt(rank)
    V = rng.normal(size=(n_items, rank))
    bu, bi = rng.normal(scale=0.3, size=n_users), rng.normal(scale=0.3, size=n_items)
    full = 3.0 + bu[:, None] + bi[None, :] + U @ V.T
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    ratings = full[u, i] + rng.normal(scale=noise, size=len(u))
    inter = ek.Interactions.from_arrays([f"u{x}" for x in u], [f"i{x}" for x in i], ratings,
                                        allow_negative=True)
    return inter, full


@pytest.mark.parametrize("method, epochs", [("als", 15), ("sgd", 60)])
def test_explicit_recovers_planted_low_rank(method, epochs):
    noise = 0.1
    inter, full = planted(noise=noise)
    train, test = inter.split(test_fraction=0.2, seed=0)
    kwargs = dict(lr=0.02) if method == "sgd" else {}
    model = ek.MatrixFactorization(feedback="explicit", method=method, dim=3, epochs=epochs, reg=0.01,
                                   device="cpu", **kwargs)
    model.fit(train, show_progress=False)
    err = rmse(model, test)
    baseline = float(np.std(test.values))  # predicting a constant
    assert err < 2.0 * noise < baseline / 3, (err, baseline)
    # recommend returns predicted ratings, the top unseen items first
    recs = model.recommend("u0", k=3)
    pred = model.predict(["u0"] * 3, [k for k, _ in recs])
    np.testing.assert_allclose([s for _, s in recs], pred, rtol=1e-4, atol=1e-4)
    # fold-in from the user's ratings predicts their held-out ratings about as well
    m = train.matrix
    items = [train.item_keys[i] for i in m.indices[m.indptr[0]:m.indptr[1]]]
    model.fold_in("u0-again", items, values=m.data[m.indptr[0]:m.indptr[1]])
    t = test.matrix
    held = [test.item_keys[i] for i in t.indices[t.indptr[0]:t.indptr[1]]]
    if held:
        got = model.predict(["u0-again"] * len(held), held)
        assert np.sqrt(np.mean((got - t.data[t.indptr[0]:t.indptr[1]]) ** 2)) < 4 * noise
    with pytest.raises(InputError, match="ratings"):
        model.fold_in("x", items)


# ------------------------------------------------------------------- store
@pytest.mark.parametrize("kwargs", [dict(method="als"), dict(method="bpr", epochs=20),
                                    dict(feedback="explicit", method="sgd", epochs=5)])
def test_store_round_trip(tmp_path, board, kwargs):
    store = ek.Store(tmp_path)
    model = ek.MatrixFactorization(dim=6, device="cpu", **{"epochs": 5, **kwargs})
    model.fit(board, show_progress=False)
    model.fold_in("late", ["i1", "i3"], values=[4.0, 5.0] if "feedback" in kwargs else None)
    model.to_store("recs", store)
    loaded = ek.MatrixFactorization.from_store("recs", store)
    users = ["u0", "u30", "late"]
    for got, want in zip(loaded.recommend_batch(users, k=6), model.recommend_batch(users, k=6)):
        assert [k for k, _ in got] == [k for k, _ in want]
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=1e-5)
    np.testing.assert_allclose(loaded.predict(["u0", "late"], ["i2", "i2"]), model.predict(["u0", "late"], ["i2", "i2"]),
                               rtol=1e-5)
    assert loaded.similar_items("i0", k=3) == model.similar_items("i0", k=3)
    assert [loaded.item_embeddings_.keys[i] for i in loaded.seen_items("late")] == ["i1", "i3"]
    assert sorted(item for item, _ in loaded.history("late")) == ["i1", "i3"]
    info = store.info("recs")
    assert info["metric"] == "ip" and info["meta"]["trainer"] == "MatrixFactorization"
    assert info["meta"]["params"]["method"] == model.method
    loaded.fold_in("later", ["i20"], values=[3.0] if "feedback" in kwargs else None)
    with pytest.raises(InputError, match="exists"):
        model.to_store("recs", store)


@pytest.mark.parametrize("kwargs", [dict(method="als"), dict(method="bpr", epochs=20),
                                    dict(feedback="explicit", method="als")])
def test_model_file_and_store_give_identical_recommendations(tmp_path, board, kwargs):
    model = ek.MatrixFactorization(dim=4, seed=3, device="cpu", **{"epochs": 5, **kwargs})
    data = board if kwargs.get("feedback") != "explicit" else planted(n_users=40, n_items=30)[0]
    model.fit(data, show_progress=False)
    model.fold_in("late", ["i1", "i3"], values=[4.0, 5.0] if "feedback" in kwargs else None)
    users = ["u0", "u30", "late"]
    want = model.recommend_batch(users, k=7)
    path = model.save(tmp_path / "m.npz")
    assert path == tmp_path / "m.npz" and path.is_file()
    assert model.save(str(tmp_path / "again.npz")).is_file()
    store = ek.Store(tmp_path / "store")
    model.to_store("m", store)
    for loaded in (ek.MatrixFactorization.load(path), ek.MatrixFactorization.from_store("m", store),
                   ek.trainers.load_from_store("m", store)):
        assert type(loaded) is ek.MatrixFactorization
        assert loaded.recommend_batch(users, k=7) == want
        assert loaded.get_params() == model.get_params() and loaded.params_ == {**model.params_}
        assert loaded.loss_history_ == pytest.approx(model.loss_history_)
        assert loaded.history("late") == model.history("late")
        np.testing.assert_array_equal(loaded.user_embeddings_.vectors, model.user_embeddings_.vectors)
        assert loaded.similar_items("i2", k=4) == model.similar_items("i2", k=4)
        loaded.fold_in("later", ["i20"], values=[3.0] if "feedback" in kwargs else None)
    # the index the store holds is the one recommendations search: inner product, bias column
    info = store.info("m")
    assert info["metric"] == "ip" and info["extras"] == ["model"] and info["meta"]["mf"]["n_users"] == 41
    assert info["dim"] == 4 + (model.params_["method"] != "als" or model.params_["feedback"] == "explicit")
    with pytest.raises(InputError, match="'ip'"):
        model.to_store("cos", store, metric="cosine")


def test_save_follows_the_one_rule_name_to_store_path_to_file(tmp_path, board, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBEDKIT_STORE", str(tmp_path / "default"))
    model = ek.MatrixFactorization(dim=2, epochs=3, device="cpu")
    model.fit(board, show_progress=False)
    want = model.recommend_batch(["u0", "u30"], k=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no form warns any more
        # a path ending in .npz (or a Path): one file, as every trainer's save()
        path = model.save("m.npz")
        assert model.save(tmp_path / "p") == tmp_path / "p.npz"
        assert path.is_file() and ek.MatrixFactorization.load(path).recommend_batch(["u0", "u30"], k=4) == want
        assert not (tmp_path / "default").exists()
        # a plain name: a store entry (the given store, else $EMBEDKIT_STORE)
        store = ek.Store(tmp_path / "s")
        model.save("plays", store)
        assert ek.MatrixFactorization.from_store("plays", store).recommend_batch(["u0", "u30"], k=4) == want
        model.save(name="plays")
        assert ek.MatrixFactorization.from_store("plays", ek.Store()).recommend_batch(["u0", "u30"], k=4) == want
        assert not (tmp_path / "plays.npz").exists()
        with pytest.raises(ek.InputError, match="already exists.*overwrite=True"):
            model.save("plays")
        model.save("plays", overwrite=True)
    # name= is the old keyword of the first argument
    assert model.save(name="n.npz").is_file()
    with pytest.raises(InputError, match="only the path"):
        model.save("a.npz", name="b.npz")


def test_query_side_and_use_index():
    # recommend() = index inner product of query_vectors + score_offsets: the model's predict()
    inter, _ = planted(n_users=30, n_items=20)
    model = ek.MatrixFactorization(feedback="explicit", dim=3, epochs=3, device="cpu")
    model.fit(inter, show_progress=False)
    queries, offsets = model.query_vectors(["u0", "u1"]), model.score_offsets(["u0", "u1"])
    assert queries.shape == (2, model.index_.dim) == (2, 4) and offsets.shape == (2,)
    items = model.item_embeddings_.keys
    scores = queries @ model.index_.get_vectors(items).T + offsets[:, None]
    np.testing.assert_allclose(scores[0], model.predict(["u0"] * len(items), items), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(scores[1], model.predict(["u1"] * len(items), items), rtol=1e-4, atol=1e-4)
    with pytest.raises(MissingKeyError, match="unknown user"):
        model.query_vectors(["nobody"])
    # another index of the same shape is searched from then on; a wrong one is refused
    keys = model.item_embeddings_.keys[:5]
    small = ek.VectorIndex(4, metric="ip", kind="flat")
    small.add(keys, np.hstack([model.item_embeddings_.vectors[:5], np.zeros((5, 1), np.float32)]))
    model.use_index(small)
    assert model.index_ is small
    assert {k for k, _ in model.recommend("u0", k=20, exclude_seen=False)} == set(keys)
    for bad in (ek.VectorIndex(3, metric="ip"), ek.VectorIndex(4, metric="cosine")):
        with pytest.raises(InputError, match="inner-product index of dim 4"):
            model.use_index(bad)
    assert model.index_ is small


def test_store_and_recommender_use_only_the_models_public_side():
    """mf/store.py takes plain arrays and the class (it imports nothing from model.py), and
    mf/recommend.py reads no private attribute of the model."""
    import ast

    import embedkit.trainers.mf as mf

    root = Path(mf.__file__).parent
    for name in ("store.py", "recommend.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        private = [n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr.startswith("_")
                   and not n.attr.startswith("__") and isinstance(n.value, ast.Name) and n.value.id in ("model", "cls")]
        assert not private, (name, private)
        imports = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert "model" not in imports, name


def test_similar_items_are_the_exact_cosine_neighbours():
    # what a cosine flat index (the former route) answers: same keys, same order, same scores
    model = ek.MatrixFactorization(feedback="explicit", dim=6, epochs=3, device="cpu")
    model.fit(planted(n_users=60, n_items=50)[0], show_progress=False)
    index = model.item_embeddings_.to_index(metric="cosine", kind="flat")
    for item in ("i0", "i17", "i49"):
        got = model.similar_items(item, k=8)
        assert got == model.item_embeddings_.most_similar(item, k=8)
        res = index.search_keys([item], k=8)
        assert [k for k, _ in got] == res.keys[0] and item not in res.keys[0]
        np.testing.assert_allclose([s for _, s in got], res.scores[0], atol=1e-5)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)


def test_from_store_refuses_other_indexes(tmp_path):
    store = ek.Store(tmp_path)
    emb = ek.Embeddings(["a", "b"], np.eye(2))
    store.save("plain", emb.to_index())
    with pytest.raises(ek.StoreError, match="MatrixFactorization"):
        ek.MatrixFactorization.from_store("plain", store)


# ------------------------------------------------------------------ metrics
def test_topk_metrics_hand_computed():
    # user A: hits at ranks 1 and 3 of k=3, 2 relevant; user B: 5 relevant, one hit at rank 2
    m = topk_metrics([["a", "x", "b"], ["y", "c", "z"]], [{"a", "b"}, {"c", "d", "e", "f", "g"}], k=3)
    d = 1 / np.log2([2, 3, 4])
    assert m["precision"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert m["recall"] == pytest.approx((2 / 2 + 1 / 3) / 2)      # denominator min(k, n_test)
    assert m["ndcg"] == pytest.approx(((d[0] + d[2]) / (d[0] + d[1]) + d[1] / d.sum()) / 2)
    assert m["map"] == pytest.approx(((1 + 2 / 3) / 2 + (1 / 2) / 3) / 2)
    assert topk_metrics([["a"]], [{"a"}], k=10)["recall"] == 1.0


def test_ranking_metrics_on_checkerboard(fitted, held):
    perfect = ranking_metrics(fitted, held, k=5)
    assert set(perfect) == {"recall", "ndcg", "precision", "map"}
    # the 3 held-out items fill the top 3 of 5: recall, ndcg and map are 1, precision 3/5
    assert perfect == pytest.approx({"recall": 1.0, "ndcg": 1.0, "map": 1.0, "precision": 0.6})
    assert ranking_metrics(fitted, held, k=2)["recall"] == pytest.approx(1.0)   # min(k, n_test)
    assert ranking_metrics(fitted, held, k=1)["precision"] == pytest.approx(1.0)


def test_ranking_metrics_needs_known_users(fitted):
    model = fitted
    with pytest.raises(InputError, match="known"):
        ranking_metrics(model, ek.Interactions.from_arrays(["stranger"], ["i0"]))


# --------------------------------------------------------------------- CLI
@pytest.fixture()
def csv_files(tmp_path, board, held):
    train, test = board, held
    train.to_dataframe().to_csv(tmp_path / "train.csv", index=False)
    test.to_dataframe().to_csv(tmp_path / "test.csv", index=False)
    return tmp_path


def test_cli_train_recommend_eval(csv_files, capsys):
    from embedkit.cli import main

    d = csv_files
    store = str(d / "store")
    assert main(["train", "mf", str(d / "train.csv"), "--name", "m", "--dim", "2", "--epochs", "8",
                 "--no-progress", "--device", "cpu", "--store", store]) == 0
    assert "trained implicit als" in capsys.readouterr().out
    assert main(["recommend", "m", "u0", "u30", "-k", "3", "--json", "--store", store]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs["u0"]) == 3 and all(block_of_item(i) for i, _ in recs["u0"])
    assert all(not block_of_item(i) for i, _ in recs["u30"])
    assert main(["eval", "mf", "m", str(d / "test.csv"), "-k", "5", "--json", "--store", store]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["recall@5"] == pytest.approx(1.0)
    assert main(["recommend", "m", "nobody", "--store", store]) == 1
    assert "unknown user 'nobody'" in capsys.readouterr().err
    assert main(["train", "mf", str(d / "train.csv"), "--name", "m", "--no-progress", "--store", store]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["train", "mf", str(d / "train.csv"), "--name", "x", "--metric", "cosine", "--store", store]) == 1
    assert main(["train", "mf", str(d / "train.csv"), "--name", "x", "--feedback", "explicit", "--store", store]) == 1
    assert "--value" in capsys.readouterr().err
    assert main(["train", "mf", str(d / "missing.csv"), "--name", "x", "--store", store]) == 1


def test_cli_confidence_and_its_old_name(csv_files, capsys):
    from embedkit.cli import main

    d, store = csv_files, str(csv_files / "store")
    base = ["train", "mf", str(d / "train.csv"), "--dim", "2", "--epochs", "2", "--no-progress", "--device", "cpu",
            "--store", store]
    assert main(base + ["--name", "new", "--confidence", "4"]) == 0
    assert "--alpha" not in capsys.readouterr().err
    assert main(base + ["--name", "old", "--alpha", "4"]) == 0
    assert "--alpha is renamed --confidence" in capsys.readouterr().err
    a, b = (ek.MatrixFactorization.from_store(n, ek.Store(store)) for n in ("new", "old"))
    assert a.confidence == b.confidence == 4.0 and a.recommend("u0", k=5) == b.recommend("u0", k=5)
    assert ek.Store(store).info("new")["meta"]["params"]["confidence"] == 4.0
    assert main(base + ["--name", "both", "--alpha", "4", "--confidence", "4"]) == 1
    err = capsys.readouterr().err
    assert "--alpha is the old name of --confidence; give only --confidence" in err and "\n" not in err.strip()
    assert not ek.Store(store).exists("both")
    # a bad option fails before the file is read
    assert main(base + ["--name", "bad", "--confidence", "-1"]) == 1
    assert "'confidence'" in capsys.readouterr().err


def test_cli_explicit_and_demo(tmp_path, capsys):
    from embedkit.cli import main
    from embedkit.cli.mf import demo

    inter, _ = planted(n_users=40, n_items=30)
    inter.to_dataframe().to_csv(tmp_path / "r.csv", index=False)
    store = str(tmp_path / "store")
    assert main(["train", "mf", str(tmp_path / "r.csv"), "--name", "r", "--feedback", "explicit", "--value", "value",
                 "--dim", "3", "--no-progress", "--device", "cpu", "--store", store]) == 0
    assert "trained explicit als" in capsys.readouterr().out
    assert main(["eval", "mf", "r", str(tmp_path / "r.csv"), "--value", "value", "--json", "--store", store]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["rmse"] < 0.3 and scores["recall@10"] == 0.0  # every test pair was seen in training

    class Args:
        no_progress = True
        seed = 0

    Args.store = store
    demo(Args)
    text = capsys.readouterr().out
    assert "scifi-fan-0" in text and "demo-mf" in text
    model = ek.MatrixFactorization.from_store("demo-mf", ek.Store(store))
    assert all(k.startswith("scifi") for k, _ in model.recommend("scifi-fan-0", k=4))


# ---------------------------------------------------------------------- GPU
def _cuda():
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA device")
@pytest.mark.parametrize("kwargs", [dict(method="als"), dict(method="bpr", epochs=150, lr=0.05),
                                    dict(feedback="explicit", method="als"), dict(feedback="explicit", method="sgd")])
def test_cuda_agrees_with_cpu(board, held, kwargs):
    params = {"dim": 2, "epochs": 10, **kwargs}
    if kwargs.get("feedback") == "explicit":
        inter, _ = planted(n_users=60, n_items=40)
        train, test = inter.split(test_fraction=0.2, seed=0)
        cpu = ek.MatrixFactorization(device="cpu", **{**params, "dim": 3, "epochs": 30})
        gpu = ek.MatrixFactorization(device="cuda", **{**params, "dim": 3, "epochs": 30})
        cpu.fit(train, show_progress=False)
        gpu.fit(train, show_progress=False)
        assert rmse(gpu, test) < 1.2 * rmse(cpu, test) + 0.02
        return
    gpu = ek.MatrixFactorization(device="cuda", **params)
    gpu.fit(board, show_progress=False)
    assert ranking_metrics(gpu, held, k=3)["recall"] == pytest.approx(1.0)


# ------------------------------------------------------- format-1 stores (released before the model extra)
def _write_format1(store, name, model):
    """What embedkit's format-1 writer (trainers/_mf_store.py, save_model) left on disk for ``model``."""
    a = model.to_arrays()
    item_factors, user_factors = a["item_factors"], a["user_factors"]
    vecs = item_factors if "item_bias" not in a else np.hstack([item_factors, a["item_bias"][:, None]])
    index = ek.VectorIndex(vecs.shape[1], metric="ip", kind="flat")
    index.add([str(k) for k in a["item_keys"]], vecs)
    items = {"keys": a["item_keys"], "vectors": item_factors}
    users = {"keys": a["user_keys"], "vectors": user_factors}
    if "item_bias" in a:
        items["bias"] = a["item_bias"]
    if "user_bias" in a:
        users["bias"] = a["user_bias"]
    extras = {"items": items, "users": users,
              "seen": {"indptr": a["seen_indptr"].astype(np.int64), "indices": a["seen_indices"].astype(np.int32),
                       "values": a["seen_values"].astype(np.float32)}}

    def old_names(params):  # format 1 called the confidence weight "alpha"
        return {("alpha" if k == "confidence" else k): v for k, v in params.items()}

    meta = {"trainer": "MatrixFactorization", "params": old_names(model.json_params()),
            "resolved": old_names({k: v for k, v in model.params_.items() if k != "device"}),
            "loss_history": [float(x) for x in model.loss_history_],
            "mf": {"format": 1, "global_mean": model.global_mean_, "n_users": len(a["user_keys"]),
                   "n_items": len(a["item_keys"]), "nnz": len(a["seen_indices"]),
                   "query": "user factors + [1]" if "item_bias" in a else "user factors"}}
    store.save(name, index, meta=meta, extras=extras)
    return extras, meta


@pytest.mark.parametrize("kwargs", [dict(method="als", confidence=2.5), dict(method="bpr", epochs=20),
                                    dict(feedback="explicit", method="sgd")])
def test_format1_store_still_loads(tmp_path, board, kwargs):
    model = ek.MatrixFactorization(dim=4, seed=1, device="cpu", **{"epochs": 5, **kwargs})
    data = board if kwargs.get("feedback") != "explicit" else planted(n_users=40, n_items=30)[0]
    model.fit(data, show_progress=False)
    model.fold_in("late", ["i1", "i3"], values=[4.0, 5.0] if "feedback" in kwargs else None)
    store = ek.Store(tmp_path / "store")
    _write_format1(store, "old", model)
    assert store.info("old")["extras"] == ["items", "seen", "users"]
    users = ["u0", "u30", "late"]
    want = model.recommend_batch(users, k=6)
    loaded = ek.MatrixFactorization.from_store("old", store)
    assert loaded.recommend_batch(users, k=6) == want
    assert loaded.get_params() == model.get_params() and loaded.confidence == model.confidence
    assert loaded.params_ == {**model.params_, "device": "cpu"}
    assert loaded.loss_history_ == pytest.approx(model.loss_history_)
    assert loaded.global_mean_ == pytest.approx(model.global_mean_)
    assert loaded.history("late") == model.history("late")
    assert loaded.similar_items("i2", k=4) == model.similar_items("i2", k=4)
    np.testing.assert_array_equal(loaded.user_embeddings_.vectors, model.user_embeddings_.vectors)
    np.testing.assert_allclose(loaded.predict(["u0", "late"], ["i2", "i2"]), model.predict(["u0", "late"], ["i2", "i2"]),
                               rtol=1e-5)
    loaded.fold_in("later", ["i20"], values=[3.0] if "feedback" in kwargs else None)
    # saved again, it is a format-2 store with the same answers
    loaded.to_store("new", store)
    assert store.info("new")["meta"]["mf"]["format"] == 2
    assert ek.MatrixFactorization.from_store("new", store).recommend_batch(users, k=6) == want


def test_format1_store_is_served(tmp_path, board):
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    from fastapi.testclient import TestClient

    from embedkit.serve import create_app

    model = ek.MatrixFactorization(method="bpr", dim=4, epochs=20, seed=2, device="cpu")
    model.fit(board, show_progress=False)
    root = tmp_path / "store"
    _write_format1(ek.Store(root), "old", model)
    with TestClient(create_app(root, token="t0ken"), base_url="http://127.0.0.1") as c:
        listed = {ix["name"]: ix for ix in c.get("/indexes").json()["indexes"]}
        assert listed["old"]["recommender"] is True
        for user in ("u0", "u25"):
            for exclude in (True, False):
                r = c.get("/indexes/old/recommend", params={"user": user, "k": 5, "exclude_seen": exclude})
                assert r.status_code == 200, r.text
                got = r.json()["recommendations"]
                want = model.recommend(user, k=5, exclude_seen=exclude)
                assert [x["key"] for x in got] == [k for k, _ in want]
                np.testing.assert_allclose([x["score"] for x in got], [s for _, s in want], atol=1e-4)


def test_format1_newer_and_damaged_stores_are_refused(tmp_path, board):
    model = ek.MatrixFactorization(dim=3, epochs=3, device="cpu")
    model.fit(board, show_progress=False)
    store = ek.Store(tmp_path)
    extras, meta = _write_format1(store, "old", model)
    # a future format: refused, naming the index and the fix
    store.save("future", store.load("old"), meta={**meta, "mf": {**meta["mf"], "format": 3}}, extras=extras)
    with pytest.raises(ek.StoreError, match=r"'future'.*format 3.*upgrade embedkit") as err:
        ek.MatrixFactorization.from_store("future", store)
    assert "\n" not in str(err.value)
    # user vectors that do not match the user keys; an extra missing its arrays
    short = {**extras, "users": {**extras["users"], "vectors": extras["users"]["vectors"][:-1]}}
    store.save("short", store.load("old"), meta=meta, extras=short)
    bare = {**extras, "seen": {"indptr": extras["seen"]["indptr"]}}
    store.save("bare", store.load("old"), meta=meta, extras=bare)
    for name in ("short", "bare"):
        with pytest.raises(ek.StoreError, match=name) as err:
            ek.MatrixFactorization.from_store(name, store)
        assert "\n" not in str(err.value) and "damaged" in str(err.value)
    # format 1 without its extras: refused with the fix
    store.save("hollow", store.load("old"), meta=meta)
    with pytest.raises(ek.StoreError, match=r"'hollow'.*retrain"):
        ek.MatrixFactorization.from_store("hollow", store)
