"""HybridMF (LightFM-style side features) and Features: planted answers where the features
determine taste; cold items recommended to the users of their category; cold users."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import embedkit as ek
from embedkit.errors import InputError, MissingKeyError
from embedkit.trainers.mf.features import Features
from embedkit.trainers.mf.hybrid import HybridMF

CATS = ("a", "b", "c")


def _catalogue():
    """60 items in 3 genres (20 each); items 17-19 of each genre are cold (no interactions).
    60 users, 20 fans per genre with a home country per genre; each fan plays 8 warm items of
    their genre. Taste is fully determined by genre (items) and country (users)."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"item": [f"{c}{i}" for c in CATS for i in range(20)],
                          "genre": [c for c in CATS for _ in range(20)],
                          "tags": [f"{c}-mood|t{i % 4}" for c in CATS for i in range(20)],
                          "price": [float(i) for _ in CATS for i in range(20)]})
    users = pd.DataFrame({"user": [f"{c}-fan{u}" for c in CATS for u in range(20)],
                          "country": [f"land-{c}" for c in CATS for _ in range(20)]})
    us, its = [], []
    for c in CATS:
        for u in range(20):
            us += [f"{c}-fan{u}"] * 8
            its += [f"{c}{p}" for p in rng.choice(17, 8, replace=False)]
    warm = items[items["item"].str[1:].astype(int) < 17]
    cold = items[items["item"].str[1:].astype(int) >= 17]
    return ek.Interactions.from_arrays(us, its), warm, cold, users


@pytest.fixture(scope="module", params=["bpr", "warp"])
def fitted(request):
    inter, warm, cold, users = _catalogue()
    ifeat = Features.from_dataframe(warm, id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    ufeat = Features.from_dataframe(users, id="user", categorical=["country"])
    model = HybridMF(dim=8, loss=request.param, epochs=15, seed=0, device="cpu")
    model.fit(inter, item_features=ifeat, user_features=ufeat, show_progress=False)
    return model, inter, cold


def test_features_encoding():
    _, warm, _, _ = _catalogue()
    f = Features.from_dataframe(warm, id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    assert f.names[:3] == ["genre=a", "genre=b", "genre=c"] and f.names[-1] == "price"
    row = f.matrix[f.keys.index("b5")].toarray()[0]
    assert row[f.names.index("genre=b")] == 1.0
    assert row[f.names.index("tags=b-mood")] == 0.5 and row[f.names.index("tags=t1")] == 0.5
    mean, sd = warm["price"].mean(), warm["price"].std(ddof=0)
    assert row[f.names.index("price")] == pytest.approx((5 - mean) / sd, rel=1e-6)
    keys, m, payload = f.rows({"new": {"genre": "a", "tags": "unknown-tag|t2", "price": 1.0}})
    assert keys == ["new"] and m[0, f.names.index("genre=a")] == 1.0 and m[0, f.names.index("tags=t2")] == 0.5
    assert payload[0] == {"genre": "a", "tags": ["unknown-tag", "t2"], "price": 1.0}
    with pytest.raises(InputError, match="not a number"):
        Features.from_dataframe(pd.DataFrame({"item": ["x"], "price": ["cheap"]}), id="item", numeric=["price"])
    with pytest.raises(InputError, match="no column 'size'"):
        Features.from_dataframe(warm, id="item", categorical=["size"])


def test_features_from_csv(tmp_path):
    _, warm, _, _ = _catalogue()
    path = tmp_path / "items.csv"
    warm.to_csv(path, index=False)
    f = Features.from_csv(path, id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    g = Features.from_dataframe(warm, id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    assert f.names == g.names and (f.matrix != g.matrix).nnz == 0
    with pytest.raises(InputError, match="no such file"):
        Features.from_csv(tmp_path / "none.csv", id="item", categorical=["genre"])


def test_warm_recommendations_stay_in_genre(fitted):
    model, _, _ = fitted
    for c in CATS:
        for u in (0, 7, 13):
            recs = model.recommend(f"{c}-fan{u}", k=5)
            assert sum(k[0] == c for k, _ in recs) >= 4


def test_cold_item_is_recommended_to_its_genre(fitted):
    model, _, cold = fitted
    model.add_items(cold)
    cold_keys = list(cold["item"])
    assert all(model.has_item(k) for k in cold_keys)
    hits = total = 0
    for c in CATS:
        for u in range(20):
            recs = model.recommend(f"{c}-fan{u}", k=3, filter={"$key": {"$in": cold_keys}})
            hits += sum(k[0] == c for k, _ in recs)
            total += len(recs)
    assert total == 180 and hits / total >= 0.9
    # and among all items, a genre's fans see its cold items before other genres' cold items
    full = [k for k, _ in model.recommend("a-fan0", k=60)]
    assert max(full.index(f"a{i}") for i in (17, 18, 19)) < min(full.index(f"b{i}") for i in (17, 18, 19))
    sims = model.similar_items("b18", k=5)
    assert sum(k[0] == "b" for k, _ in sims) >= 4
    # payload filters on the feature values, the cold items included
    recs = model.recommend("c-fan2", k=5, filter={"genre": "c", "price": {"$gte": 17}})
    assert {k for k, _ in recs} == {"c17", "c18", "c19"}


def test_cold_user_gets_their_countrys_genre(fitted):
    model, _, _ = fitted
    model.add_users({"newcomer": {"country": "land-b"}})
    recs = model.recommend("newcomer", k=5)
    assert sum(k[0] == "b" for k, _ in recs) >= 4
    assert not len(model.seen_items("newcomer"))


def test_save_load_keeps_cold_start(tmp_path, fitted):
    model, _, _ = fitted
    back = HybridMF.load(model.save(tmp_path / "h.npz"))
    assert back.recommend("a-fan3", k=5) == model.recommend("a-fan3", k=5)
    back.add_items({"a-late": {"genre": "a", "tags": "a-mood"}})
    model.add_items({"a-late": {"genre": "a", "tags": "a-mood"}})
    np.testing.assert_allclose(back.item_embeddings_["a-late"], model.item_embeddings_["a-late"], rtol=1e-6)


def test_same_seed_same_vectors_and_no_features():
    inter, _, _, _ = _catalogue()
    vecs = []
    for _ in range(2):
        m = HybridMF(dim=4, loss="bpr", epochs=2, seed=3, device="cpu")
        m.fit(inter, show_progress=False)
        vecs.append(m.item_embeddings_.vectors)
    np.testing.assert_array_equal(*vecs)
    with pytest.raises(InputError, match="item_features"):
        m.add_items({"x": {"genre": "a"}})


def test_hybrid_errors():
    inter, warm, _, _ = _catalogue()
    with pytest.raises(InputError, match="loss"):
        HybridMF(loss="hinge").fit(inter)
    with pytest.raises(InputError, match="Features"):
        HybridMF(epochs=1, device="cpu").fit(inter, item_features=warm)
    m = HybridMF(dim=2, epochs=1, device="cpu")
    m.fit(inter, show_progress=False)
    with pytest.raises(MissingKeyError):
        m.recommend("nobody")
    # fault injection: vectors that came out NaN are refused (Adagrad keeps real runs finite)
    bad = m.item_embeddings_.vectors.copy()
    bad[3] = np.nan
    with pytest.raises(InputError, match="diverged"):
        m._set_vectors(m.user_embeddings_.vectors, bad, np.zeros(len(bad)))


def test_cli_trains_hybrid_from_feature_csvs_and_recommends(tmp_path, capsys):
    import json

    from embedkit.cli import main

    inter, warm, _, users = _catalogue()
    inter.to_dataframe().to_csv(tmp_path / "plays.csv", index=False)
    warm.to_csv(tmp_path / "items.csv", index=False)
    users.to_csv(tmp_path / "users.csv", index=False)
    store = str(tmp_path / "store")
    rc = main(["--store", store, "train", "mf", str(tmp_path / "plays.csv"), "--name", "hy",
               "--item-features", str(tmp_path / "items.csv"), "--item-categorical", "genre", "--item-tags", "tags",
               "--user-features", str(tmp_path / "users.csv"), "--user-categorical", "country",
               "--dim", "8", "--epochs", "10", "--device", "cpu", "--no-progress"])
    assert rc == 0 and "trained HybridMF" in capsys.readouterr().out
    assert ek.Store(store).info("hy")["meta"]["trainer"] == "HybridMF"
    rc = main(["--store", store, "recommend", "hy", "b-fan4", "-k", "3", "--json", "--filter", '{"genre": "b"}'])
    recs = json.loads(capsys.readouterr().out)["b-fan4"]
    assert rc == 0 and len(recs) == 3 and all(k.startswith("b") for k, _ in recs)
    assert main(["--store", store, "eval", "mf", "hy", str(tmp_path / "plays.csv"), "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"precision@10", "recall@10", "ndcg@10", "map@10"}
    assert main(["--store", store, "train", "mf", str(tmp_path / "plays.csv"), "--name", "bad",
                 "--item-features", str(tmp_path / "items.csv"), "--no-progress"]) != 0
    assert "--item-categorical" in capsys.readouterr().err
