"""Baseline recommenders, model selection (compare, cross_validate, grid_search, `embedkit tune mf`),
filters in recommendations, predict for unknown users/items, diverged training."""

from __future__ import annotations

import json

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError, MissingKeyError, NotFittedError
from embedkit.evaluate import compare, cross_validate, folds, grid_search
from embedkit.evaluate.ranking import rmse
from embedkit.trainers.mf.baselines import ItemKNN, Popularity, bm25_weight

from conftest import block_ratings, checkerboard


def _fit(model, data):
    model.fit(data, show_progress=False)
    return model


def _groups_data(seed=0):
    """Two taste groups of 30 users over 40 items (items 0-19 / 20-39); items with a lower number
    are more popular inside each group, so popularity and taste disagree across groups."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for g in range(2):
        for u in range(30):
            p = 1.0 / np.arange(1, 21)
            own = rng.choice(20, 8, replace=False, p=p / p.sum()) + 20 * g
            users += [f"g{g}u{u}"] * 8
            items += [f"i{i}" for i in own]
    return ek.Interactions.from_arrays(users, items)


@pytest.fixture(scope="module")
def data():
    inter = _groups_data()
    return inter, *inter.split(test_fraction=0.25, seed=0)


def test_popularity_ranks_by_users(data):
    inter, train, _ = data
    pop = _fit(Popularity(), train)
    counts = np.bincount(train.items, minlength=train.n_items)
    recs = pop.recommend("g0u0", k=5, exclude_seen=False)
    assert [s for _, s in recs] == sorted(counts, reverse=True)[:5]
    assert all(counts[train.item_index[k]] == s for k, s in recs)
    assert not set(pop.seen_items("g0u0")) & {train.item_index[k] for k, _ in pop.recommend("g0u0", k=10)}


@pytest.mark.parametrize("sim", ["cosine", "bm25"])
def test_item_knn_stays_in_group_and_beats_popularity(data, sim):
    inter, train, test = data
    knn = _fit(ItemKNN(similarity=sim, neighbors=20), train)
    for g in range(2):
        for u in range(0, 30, 7):
            recs = knn.recommend(f"g{g}u{u}", k=5)
            assert all(20 * g <= int(k[1:]) < 20 * (g + 1) for k, _ in recs)
    table = compare({"pop": _fit(Popularity(), train), "knn": knn}, test, k=5)
    assert table["knn"]["ndcg"] > table["pop"]["ndcg"] + 0.1
    assert table["knn"]["coverage"] > table["pop"]["coverage"]
    text = str(table)
    assert text.splitlines()[0] == "| model | recall@5 | ndcg@5 | map@5 | coverage@5 |" and "| knn |" in text


def test_item_knn_similar_items_and_neighbors_kept(data):
    _, train, _ = data
    knn = _fit(ItemKNN(neighbors=3), train)
    sims = knn.similar_items("i0", k=10)
    assert len(sims) <= 3 and all(int(k[1:]) < 20 for k, _ in sims)
    assert sims == sorted(sims, key=lambda x: -x[1])


def test_bm25_weight_matches_formula():
    import scipy.sparse as sp

    X = sp.csr_matrix(np.array([[1.0, 0, 2.0], [0, 3.0, 1.0]]))
    w = bm25_weight(X, k1=1.2, b=0.75).toarray()
    length = np.array([1.0, 3.0, 3.0])
    idf = np.log(3) - np.log1p(np.array([2, 2]))
    norm = 0.25 + 0.75 * length / length.mean()
    expect = X.toarray() * 2.2 / (1.2 * norm[None, :] + X.toarray()) * idf[:, None]
    np.testing.assert_allclose(w, np.where(X.toarray() > 0, expect, 0), rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: Popularity(), lambda: ItemKNN(similarity="bm25")])
def test_baselines_save_load(tmp_path, data, make):
    _, train, _ = data
    m = _fit(make(), train)
    m.set_item_payload({k: {"n": int(k[1:])} for k in train.item_keys})
    back = type(m).load(m.save(tmp_path / "m.npz"))
    flt = {"n": {"$gte": 25}}
    assert back.recommend("g1u3", k=4, filter=flt) == m.recommend("g1u3", k=4, filter=flt)
    assert all(int(k[1:]) >= 25 for k, _ in back.recommend("g1u3", k=4, filter=flt))


def test_baseline_errors(data):
    _, train, _ = data
    with pytest.raises(InputError, match="similarity"):
        ItemKNN(similarity="jaccard").fit(train)
    with pytest.raises(InputError, match="Interactions"):
        Popularity().fit([1, 2, 3])
    m = _fit(Popularity(), train)
    with pytest.raises(MissingKeyError, match="unknown user"):
        m.recommend("nobody")
    with pytest.raises(InputError, match="payload"):
        m.set_item_payload({"nope": {}})


# -------------------------------------------------------------- filters (exact top-k among allowed)
@pytest.fixture(scope="module")
def mf():
    board, _ = checkerboard()
    model = ek.MatrixFactorization(dim=4, epochs=5, seed=0, device="cpu")
    model.fit(board, show_progress=False)
    return model, board


def _brute(model, user, allowed, k):
    scores = model.predict([user] * len(allowed), allowed)
    seen = {model.item_embeddings_.keys[i] for i in model.seen_items(user)}
    pairs = sorted(((s, key) for s, key in zip(scores, allowed) if key not in seen), key=lambda x: -x[0])
    return pairs[:k]


@pytest.mark.parametrize("flt, allowed", [
    ({"$key": {"$in": ["i1", "i3", "i10", "i11", "i19"]}}, lambda k: k in {"i1", "i3", "i10", "i11", "i19"}),
    ({"$key": {"$nin": ["i10", "i12", "i1"]}}, lambda k: k not in {"i10", "i12", "i1"}),
    ({"n": {"$gte": 10}}, lambda k: int(k[1:]) >= 10),
    ({"$or": [{"odd": True}, {"n": {"$lt": 4}}]}, lambda k: int(k[1:]) % 2 == 1 or int(k[1:]) < 4),
])
def test_mf_filtered_recommend_is_exact_topk(mf, flt, allowed):
    model, board = mf
    model.set_item_payload({k: {"n": int(k[1:]), "odd": int(k[1:]) % 2 == 1} for k in board.item_keys})
    keys = [k for k in board.item_keys if allowed(k)]
    for user in ("u0", "u13", "u31"):
        got = model.recommend(user, k=4, filter=flt)
        want = _brute(model, user, keys, 4)
        assert all(allowed(k) for k, _ in got) and len(got) == len(want)
        np.testing.assert_allclose([s for _, s in got], [s for s, _ in want], rtol=1e-4, atol=1e-5)
    batch = model.recommend_batch(["u0", "u13"], k=4, filter=flt)
    assert [[k for k, _ in r] for r in batch] == [[k for k, _ in model.recommend(u, k=4, filter=flt)] for u in ("u0", "u13")]
    sims = model.similar_items("i0", k=3, filter=flt)
    assert all(allowed(k) for k, _ in sims) and "i0" not in {k for k, _ in sims}


def test_mf_filter_saved_with_model_and_bad_filter(tmp_path, mf):
    model, board = mf
    model.set_item_payload({k: {"n": int(k[1:])} for k in board.item_keys})
    back = ek.MatrixFactorization.load(model.save(tmp_path / "m.npz"))
    assert back.item_payload_ == model.item_payload_
    flt = {"n": {"$lt": 6}}
    assert [k for k, _ in back.recommend("u2", k=3, filter=flt)] == [k for k, _ in model.recommend("u2", k=3, filter=flt)]
    # the store entry's index carries the payloads: from_store (and the CLI) filter the same way
    model.to_store("pay", ek.Store(tmp_path / "store"))
    served = ek.MatrixFactorization.from_store("pay", ek.Store(tmp_path / "store"))
    assert [k for k, _ in served.recommend("u2", k=3, filter=flt)] == [k for k, _ in model.recommend("u2", k=3, filter=flt)]
    with pytest.raises(InputError, match=r"\$bogus"):
        model.recommend("u0", filter={"n": {"$bogus": 1}})


def test_similar_users_share_the_block(mf):
    model, board = mf
    near = model.similar_users("u0", k=5)
    assert "u0" not in {u for u, _ in near}
    # checkerboard: users u0, u2, ... share one block of items
    assert all(set(board.items_of(u)) == set(board.items_of("u0")) or s > 0.9 for u, s in near)


def test_cli_recommend_filter_and_tune(tmp_path, mf, capsys):
    from embedkit.cli import main

    model, board = mf
    csv = tmp_path / "board.csv"
    board.to_dataframe().to_csv(csv, index=False)
    store = str(tmp_path / "store")
    rc = main(["--store", store, "tune", "mf", str(csv), "--name", "t", "--grid", '{"dim": [2, 4], "reg": [0.01]}',
               "--folds", "2", "--epochs", "3", "--device", "cpu", "--no-progress", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["best"] in ({"dim": 2, "reg": 0.01}, {"dim": 4, "reg": 0.01}) and len(res["results"]) == 2
    tuned = ek.Store(store).info("t")["meta"]["tuned"]
    assert tuned["params"] == res["best"] and tuned["metric"] == "ndcg"
    assert ek.Store(store).info("t")["meta"]["params"]["dim"] == res["best"]["dim"]
    rc = main(["--store", store, "recommend", "t", "u0", "-k", "3", "--json", "--filter", '{"$key": {"$nin": ["i10", "i0"]}}'])
    recs = json.loads(capsys.readouterr().out)["u0"]
    assert rc == 0 and len(recs) == 3 and not {"i10", "i0"} & {k for k, _ in recs}
    assert main(["--store", store, "recommend", "t", "u0", "--filter", "{x"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --filter: not valid JSON") and "\n" not in err


# -------------------------------------------------------------- model selection
def test_folds_partition_the_pairs(data):
    inter, _, _ = data
    parts = list(folds(inter, 4, seed=1))
    assert len(parts) == 4
    assert sum(te.nnz for _, te in parts) == inter.nnz
    for tr, te in parts:
        assert tr.nnz + te.nnz == inter.nnz and tr.item_keys == inter.item_keys


def test_cross_validate_and_grid_search_pick_the_planted_best(data):
    inter, _, _ = data
    cv = cross_validate(ItemKNN(), inter, folds=3, k=5)
    assert len(cv["folds"]) == 3 and 0 < cv["ndcg"] <= 1 and cv["ndcg_sd"] >= 0
    # neighbors=1 throws away most of the signal: the grid must prefer 20
    res = grid_search(ItemKNN(), {"neighbors": [1, 20]}, inter, folds=3, k=5)
    assert res.params == {"neighbors": 20} and res.model.neighbors == 20
    assert res.to_meta()["params"] == {"neighbors": 20} and "best by ndcg" in str(res)
    with pytest.raises(InputError, match="grid"):
        grid_search(ItemKNN(), {"neighbors": []}, inter)
    with pytest.raises(InputError, match="neighbors"):
        grid_search(ItemKNN(), {"neighbors": [0]}, inter)


# -------------------------------------------------------------- explicit ratings: unknown users/items
def test_predict_unknown_answers_from_baseline():
    data, _ = block_ratings()
    model = ek.MatrixFactorization(feedback="explicit", dim=2, epochs=5, device="cpu")
    model.fit(data, show_progress=False)
    u, i = data.user_keys[0], data.item_keys[0]
    mu = model.global_mean_
    bu = model.predict([u], ["nope"])[0]
    bi = model.predict(["nobody"], [i])[0]
    assert model.predict(["nobody"], ["nope"])[0] == pytest.approx(mu, abs=1e-6)
    # unknown item: mean + user bias; unknown user: mean + item bias
    assert bu == pytest.approx(mu + float(model._user_bias[0]), abs=1e-5)
    assert bi == pytest.approx(mu + float(model._item_bias[0]), abs=1e-5)
    with pytest.raises(MissingKeyError, match="unknown user"):
        model.predict(["nobody"], [i], unknown="error")
    with pytest.raises(InputError, match="unknown"):
        model.predict([u], [i], unknown="zero")
    # a fold whose test users were never trained on still scores every pair
    test = ek.Interactions.from_arrays(["nobody", u], [i, "nope"], [3.0, 4.0], allow_negative=True)
    assert rmse(model, test, unknown="baseline") == pytest.approx(
        float(np.sqrt(np.mean((model.predict(["nobody", u], [i, "nope"]) - [3.0, 4.0]) ** 2))), rel=1e-6)


def test_explicit_cross_validation_reports_rmse():
    data, _ = block_ratings()
    cv = cross_validate(ek.MatrixFactorization(feedback="explicit", dim=2, epochs=5, device="cpu"), data, folds=3)
    assert np.isfinite(cv["rmse"]) and cv["rmse"] < float(np.std(data.values))


# -------------------------------------------------------------- diverged training saves nothing
def test_diverged_training_raises_one_line_and_saves_nothing(tmp_path):
    data, _ = block_ratings()
    model = ek.MatrixFactorization(feedback="explicit", method="sgd", lr=10.0, dim=4, epochs=20, device="cpu")
    with pytest.raises(InputError, match=r"diverged .*lower lr \(now 10.0\)") as err:
        model.fit(data, show_progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(NotFittedError):
        model.to_store("x", ek.Store(tmp_path))
    assert not (tmp_path / "x").exists()


# -------------------------------------------------------------- the trainer contract for the new models
@pytest.mark.parametrize("make, epochs", [(lambda: Popularity(), 1), (lambda: ItemKNN(similarity="bm25"), 1),
                                          (lambda: _hybrid()(dim=4, epochs=20, device="cpu"), 20)])
def test_new_models_keep_the_trainer_contract(tmp_path, make, epochs):
    import inspect

    from conftest import neighbour_purity

    board, groups = checkerboard()
    model = make()
    cls = type(model)
    assert set(cls._parameter_constraints) == set(model.get_params())
    for name in ("show_progress", "callback"):
        assert inspect.signature(cls.fit).parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert [a for a in dir(model) if a.endswith("_") and not a.startswith("_") and hasattr(model, a)] == []
    calls = []
    emb = model.fit(board, show_progress=False, callback=lambda e, loss: calls.append(e))
    assert isinstance(emb, ek.Embeddings) and model.embeddings_ is emb and emb.vectors.dtype == np.float32
    assert calls == list(range(1, epochs + 1))
    assert cls(**model.get_params()).get_params() == model.get_params()
    if cls is not Popularity:  # popularity vectors are 1-d counts: no neighbourhoods to find
        assert neighbour_purity(emb, groups, k=3) >= 0.9
    back = cls.load(model.save(tmp_path / "m.npz"))
    assert back.recommend("u3", k=4) == model.recommend("u3", k=4)
    model.to_store("m", ek.Store(tmp_path / "store"))
    again = cls.from_store("m", ek.Store(tmp_path / "store"))
    assert again.recommend("u3", k=4) == model.recommend("u3", k=4)
    with pytest.raises(ValueError, match=f"parameter of {cls.__name__}"):
        cls(**{**model.get_params(), "seed": -1}).fit(board, show_progress=False)


def _hybrid():
    from embedkit.trainers.mf import HybridMF

    return HybridMF
