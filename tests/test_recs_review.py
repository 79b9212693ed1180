"""Review of the recommendation prototypes (issue 18): exact filtered top-k for every recommender,
model selection's bad inputs, similar_users on the baselines, HybridMF features through
cross-validation, clipped rating predictions, and the numba backend missing."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

import embedkit as ek
from embedkit.errors import InputError
from embedkit.evaluate import compare, cross_validate, grid_search
from embedkit.trainers.mf import Features, HybridMF, ItemKNN, Popularity


def _blocks(n_blocks=4, users=10, items=10, per_user=6, seed=0):
    """Users of block b interact only with items of block b (``per_user`` of its ``items``)."""
    rng = np.random.default_rng(seed)
    us, its = [], []
    for b in range(n_blocks):
        for u in range(users):
            for i in rng.choice(items, per_user, replace=False):
                us.append(f"b{b}u{u}")
                its.append(f"b{b}i{i}")
    return ek.Interactions.from_arrays(us, its)


def _random(seed=1):
    rng = np.random.default_rng(seed)
    return ek.Interactions.from_arrays([f"u{x}" for x in rng.integers(0, 40, 900)],
                                       [f"i{x}" for x in rng.integers(0, 50, 900)])


@pytest.mark.parametrize("make", [
    lambda: ek.MatrixFactorization(dim=4, epochs=3, device="cpu"),
    lambda: ek.MatrixFactorization(method="bpr", dim=4, epochs=3, device="cpu"),
    lambda: ek.MatrixFactorization(feedback="explicit", dim=4, epochs=3, device="cpu"),
    Popularity, ItemKNN, lambda: ItemKNN(similarity="bm25"),
    lambda: HybridMF(dim=4, epochs=2, device="cpu"),
], ids=["als", "bpr", "explicit", "pop", "knn", "bm25", "hybrid"])
def test_filtered_recommendations_are_the_exact_top_k_of_allowed_unseen_items(make):
    inter = _random()
    model = make()
    model.fit(inter, show_progress=False)
    keys = inter.item_keys
    deny = set(keys[::3])
    flt = {"$key": {"$nin": sorted(deny)}}
    for user in inter.user_keys[:8]:
        if hasattr(model, "_scores"):
            scores = np.asarray(model._scores(np.array([model._user_index[user]])))[0]
        else:
            scores = model.predict([user] * len(keys), keys, clip=False).astype(np.float64)
        seen = {keys[c] for c in model.seen_items(user)}
        ok = [j for j in range(len(keys)) if keys[j] not in deny and keys[j] not in seen]
        for k in (1, 7, 500):
            got = model.recommend(user, k=k, filter=flt)
            want = sorted(ok, key=lambda j: -scores[j])[:k]
            assert len(got) == len(want) == min(k, len(ok))
            assert all(key not in deny and key not in seen for key, _ in got)
            np.testing.assert_allclose([s for _, s in got], scores[want], rtol=1e-4, atol=1e-4)
    batch = model.recommend_batch(inter.user_keys[:4], k=5, filter=flt)
    assert batch == [model.recommend(u, k=5, filter=flt) for u in inter.user_keys[:4]]


def test_model_selection_refuses_bad_inputs_before_training(monkeypatch):
    inter = _blocks()
    pop = Popularity()
    pop.fit(inter, show_progress=False)
    with pytest.raises(InputError, match="test set must be an ek.Interactions"):
        compare({"pop": pop}, "test.csv")
    with pytest.raises(InputError, match="interactions must be an ek.Interactions"):
        cross_validate(Popularity(), [("u", "i")], folds=2)
    with pytest.raises(InputError, match=r"unknown parameters \['nope'\].*neighbors"):
        grid_search(ItemKNN(), {"nope": [1]}, inter)

    def no_fit(self, *a, **kw):
        raise AssertionError("trained before refusing the grid")

    monkeypatch.setattr(ek.MatrixFactorization, "fit", no_fit)
    with pytest.raises(InputError, match="'rmse' needs rating models"):
        grid_search(ek.MatrixFactorization(), {"dim": [4, 8]}, inter, metric="rmse")
    with pytest.raises(InputError, match="dim"):
        grid_search(ek.MatrixFactorization(), {"dim": [4, 0]}, inter)


def test_cross_validate_and_grid_search_take_a_class():
    inter = _blocks()
    cv = cross_validate(ItemKNN, inter, folds=2, k=5, params={"neighbors": 5})
    assert cv["recall"] > 0.5 and len(cv["folds"]) == 2
    best = grid_search(ItemKNN, {"neighbors": [1, 20]}, inter, folds=2, k=5)
    assert isinstance(best.model, ItemKNN) and best.params in ({"neighbors": 1}, {"neighbors": 20})


@pytest.mark.parametrize("make", [Popularity, ItemKNN], ids=["pop", "knn"])
def test_baselines_have_similar_users(make):
    inter = _blocks()
    model = make()
    model.fit(inter, show_progress=False)
    near = model.similar_users("b2u3", k=5)
    assert len(near) == 5 and all(u.startswith("b2u") and u != "b2u3" for u, _ in near)
    assert [s for _, s in near] == sorted((s for _, s in near), reverse=True)
    assert len(model.similar_users("b2u3", k=100)) == 9  # users sharing no item are left out
    with pytest.raises(InputError, match="'k'"):
        model.similar_users("b2u3", k=0)
    with pytest.raises(ek.MissingKeyError):
        model.similar_users("nobody")


def test_hybrid_features_reach_every_fold_through_fit_params():
    inter = _blocks()
    items = pd.DataFrame({"item": [f"b{b}i{i}" for b in range(4) for i in range(10)],
                          "block": [f"g{b}" for b in range(4) for _ in range(10)]})
    feats = Features.from_dataframe(items, id="item", categorical=["block"])
    seen_features = []
    real_fit = HybridMF.fit

    def spy(self, data, **kw):
        seen_features.append(kw.get("item_features"))
        return real_fit(self, data, **kw)

    HybridMF.fit = spy
    try:
        best = grid_search(HybridMF(dim=4, epochs=2, device="cpu"), {"loss": ["bpr"]}, inter, folds=2,
                           fit_params={"item_features": feats})
    finally:
        HybridMF.fit = real_fit
    assert len(seen_features) == 3 and all(f is feats for f in seen_features)  # 2 folds + the refit
    best.model.add_items({"cold": {"block": "g1"}})  # refitted with the features: cold start works
    assert best.model.has_item("cold")
    with pytest.raises(InputError, match="fit_params must be a dict"):
        cross_validate(HybridMF(dim=4, epochs=1), inter, folds=2, fit_params=["item_features"])


def test_explicit_predictions_are_clipped_to_the_training_ratings(tmp_path):
    rng = np.random.default_rng(0)
    users = [f"u{x}" for x in rng.integers(0, 30, 600)]
    items = [f"i{x}" for x in rng.integers(0, 40, 600)]
    inter = ek.Interactions.from_arrays(users, items, rng.integers(1, 6, 600).astype(float))
    lo, hi = float(inter.values.min()), float(inter.values.max())
    model = ek.MatrixFactorization(feedback="explicit", dim=8, reg=0.0, epochs=5, device="cpu")
    model.fit(inter, show_progress=False)
    assert model.rating_range_ == (lo, hi)
    pairs = ([u for u in inter.user_keys for _ in inter.item_keys], list(inter.item_keys) * inter.n_users)
    raw = model.predict(*pairs, clip=False)
    assert raw.min() < lo or raw.max() > hi  # no regularisation: some predictions leave the scale
    np.testing.assert_allclose(model.predict(*pairs), np.clip(raw, lo, hi), rtol=1e-6)
    back = ek.MatrixFactorization.load(model.save(tmp_path / "m.npz"))
    assert back.rating_range_ == (lo, hi)
    np.testing.assert_allclose(back.predict(*pairs), model.predict(*pairs), rtol=1e-6)
    implicit = ek.MatrixFactorization(dim=4, epochs=1, device="cpu")
    implicit.fit(inter, show_progress=False)
    assert implicit.rating_range_ is None
    with pytest.raises(InputError, match="'clip'"):
        model.predict("u1", "i1", clip="yes")


def test_numba_backend_missing_is_one_clear_error(monkeypatch):
    from embedkit.trainers.mf import numba_backend

    monkeypatch.setitem(sys.modules, "numba", None)  # import numba -> ImportError
    monkeypatch.setattr(numba_backend, "_KERNELS", None)
    inter = _blocks()
    for kw in ({"method": "bpr"}, {"feedback": "explicit", "method": "sgd"}):
        model = ek.MatrixFactorization(backend="numba", dim=4, epochs=1, **kw)
        with pytest.raises(InputError, match=r"needs the optional package numba: pip install numba"):
            model.fit(inter, show_progress=False)
        assert not hasattr(model, "params_")
    assert not numba_backend.available()


def test_hybrid_refit_that_diverges_keeps_the_previous_model(monkeypatch):
    import torch

    first = _blocks()
    model = HybridMF(dim=4, epochs=2, device="cpu")
    model.fit(first, show_progress=False)
    before = model.recommend("b1u1", k=3)
    history = list(model.loss_history_)
    other = ek.Interactions.from_arrays([f"x{i % 7}" for i in range(60)], [f"y{i % 11}" for i in range(60)])
    real = torch.nn.functional.logsigmoid
    monkeypatch.setattr(torch.nn.functional, "logsigmoid", lambda x: real(x) * float("nan"))  # fault injection
    with pytest.raises(InputError, match="diverged .*nothing was kept"):
        model.fit(other, show_progress=False)
    monkeypatch.setattr(torch.nn.functional, "logsigmoid", real)
    assert model.has_user("b1u1") and not model.has_user("x1") and model.loss_history_ == history
    assert model.recommend("b1u1", k=3) == before
    fresh = HybridMF(dim=4, epochs=1, device="cpu")
    monkeypatch.setattr(torch.nn.functional, "logsigmoid", lambda x: real(x) * float("nan"))
    with pytest.raises(InputError, match="diverged"):
        fresh.fit(first, show_progress=False)
    with pytest.raises(ek.NotFittedError):
        fresh.recommend("b1u1")


def _hybrid_files(tmp_path):
    inter = _blocks(n_blocks=3, users=8, items=8, per_user=5)
    inter.to_dataframe().to_csv(tmp_path / "plays.csv", index=False)
    pd.DataFrame({"item": [f"b{b}i{i}" for b in range(3) for i in range(8)],
                  "block": [f"g{b}" for b in range(3) for _ in range(8)]}).to_csv(tmp_path / "items.csv", index=False)
    pd.DataFrame({"item": ["new0", "new1", "new2"], "block": ["g0", "g1", "g2"]}).to_csv(tmp_path / "new.csv", index=False)
    return inter


def test_cli_cold_start_adds_items_to_a_stored_hybrid(tmp_path, capsys):
    import json

    from embedkit.cli import main

    _hybrid_files(tmp_path)
    store = str(tmp_path / "store")
    assert main(["--store", store, "train", "mf", str(tmp_path / "plays.csv"), "--name", "hy", "--item-features",
                 str(tmp_path / "items.csv"), "--item-categorical", "block", "--dim", "8", "--epochs", "15",
                 "--device", "cpu", "--no-progress"]) == 0
    capsys.readouterr()
    before = ek.Store(store).info("hy")["count"]
    assert main(["--store", store, "cold-start", "hy", "--items", str(tmp_path / "new.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": ["new0", "new1", "new2"], "users": []}
    assert ek.Store(store).info("hy")["count"] == before + 3
    new = '{"$key": {"$in": ["new0", "new1", "new2"]}}'
    assert main(["--store", store, "recommend", "hy", "b0u1", "b1u1", "b2u1", "-k", "1", "--filter", new, "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert [recs[f"b{b}u1"][0][0] for b in range(3)] == ["new0", "new1", "new2"]  # each block's new item
    # refusals: one line each, the stored entry unchanged
    assert main(["--store", store, "cold-start", "hy"]) != 0
    assert "--items" in capsys.readouterr().err
    assert main(["--store", store, "cold-start", "hy", "--users", str(tmp_path / "new.csv")]) != 0
    assert "user_features" in capsys.readouterr().err
    assert main(["--store", store, "train", "mf", str(tmp_path / "plays.csv"), "--name", "plain", "--dim", "4",
                 "--epochs", "1", "--device", "cpu", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["--store", store, "cold-start", "plain", "--items", str(tmp_path / "new.csv")]) != 0
    assert "needs a HybridMF" in capsys.readouterr().err
    assert ek.Store(store).info("hy")["count"] == before + 3


def test_add_items_refuses_ids_without_any_known_feature():
    inter = _blocks(n_blocks=2, users=5, items=5, per_user=3)
    items = pd.DataFrame({"item": [f"b{b}i{i}" for b in range(2) for i in range(5)],
                          "block": [f"g{b}" for b in range(2) for _ in range(5)]})
    model = HybridMF(dim=4, epochs=1, device="cpu")
    model.fit(inter, item_features=Features.from_dataframe(items, id="item", categorical=["block"]), show_progress=False)
    n = len(model.item_embeddings_)
    with pytest.raises(InputError, match=r"item 'odd' .*none of the training features"):
        model.add_items({"fine": {"block": "g1"}, "odd": {"block": "g9"}})
    assert len(model.item_embeddings_) == n and not model.has_item("fine")  # nothing added
