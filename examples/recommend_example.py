"""A recommendation prototype's first week, on data built inline (runs in well under a minute):

1. baselines first: does matrix factorisation beat popularity and item-kNN on this data?
2. model selection: a small grid search by cross-validation
3. filtered recommendations: allow/deny lists and payload fields
4. cold start: a new item described only by its genre and tags, recommended to the right users
5. ratings: predictions for users never seen in training come from the baseline

    python examples/recommend_example.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import embedkit as ek
from embedkit.evaluate import compare, grid_search
from embedkit.trainers.mf import Features, HybridMF, ItemKNN, Popularity

GENRES = ("scifi", "drama", "comedy")


def catalogue(seed: int = 0):
    """300 users (100 fans per genre), 90 films (30 per genre), films 27-29 of each genre unreleased."""
    rng = np.random.default_rng(seed)
    films = pd.DataFrame({"item": [f"{g}-{i:02d}" for g in GENRES for i in range(30)],
                          "genre": [g for g in GENRES for _ in range(30)],
                          "tags": [f"{g}-classic|mood{i % 5}" if i % 3 == 0 else f"mood{i % 5}"
                                   for g in GENRES for i in range(30)],
                          "price": [float(5 + i % 10) for _ in GENRES for i in range(30)]})
    users, items = [], []
    pop = 1.0 / np.arange(1, 28) ** 0.7
    for g in GENRES:
        for u in range(100):
            own = rng.choice(27, 10, replace=False, p=pop / pop.sum())
            users += [f"{g}-fan-{u}"] * 10
            items += [f"{g}-{i:02d}" for i in own]
    return ek.Interactions.from_arrays(users, items), films


def main() -> None:
    inter, films = catalogue()
    train, test = inter.split(test_fraction=0.2, seed=0)

    # 1. baselines beside MF, one table
    models = {"popularity": Popularity(), "item-kNN (BM25)": ItemKNN(similarity="bm25"),
              "MF ALS": ek.MatrixFactorization(dim=16, epochs=10, device="cpu")}
    for m in models.values():
        m.fit(train, show_progress=False)
    print(compare(models, test, k=5), "\n")

    # 2. grid search by 3-fold cross-validation (the CLI: embedkit tune mf plays.csv --grid '{...}')
    best = grid_search(ek.MatrixFactorization(epochs=10, device="cpu"), {"dim": [8, 16], "reg": [0.01, 0.1]},
                       train, folds=3, k=5)
    print(best, "\n")
    als = best.model

    # 3. filters: a deny-list and a payload filter (exact top-k among the allowed films)
    als.set_item_payload(films.set_index("item").loc[als.item_embeddings_.keys].to_dict("records"))
    print("scifi-fan-0, no scifi-00/01:", als.recommend("scifi-fan-0", k=3, filter={"$key": {"$nin": ["scifi-00", "scifi-01"]}}))
    print("scifi-fan-0, price < 8:     ", als.recommend("scifi-fan-0", k=3, filter={"price": {"$lt": 8}}))
    print("users like drama-fan-0:     ", [u for u, _ in als.similar_users("drama-fan-0", k=3)], "\n")

    # 4. cold start: unreleased films have no plays, only features
    released = films[films["item"].str[-2:].astype(int) < 27]
    feats = Features.from_dataframe(released, id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    hybrid = HybridMF(dim=16, epochs=15, device="cpu")
    hybrid.fit(train, item_features=feats, show_progress=False)
    new = films[films["item"].str[-2:].astype(int) >= 27]
    hybrid.add_items(new)
    unreleased = {"$key": {"$in": list(new["item"])}}
    for user in ("scifi-fan-3", "comedy-fan-7"):
        print(f"{user}: unreleased picks", [k for k, _ in hybrid.recommend(user, k=3, filter=unreleased)])
    print("like comedy-28:", [k for k, _ in hybrid.similar_items("comedy-28", k=3)], "\n")

    # 5. ratings: unknown users and items are answered from the baseline
    rng = np.random.default_rng(1)
    cells = rng.choice(200 * 100, 5000, replace=False)  # one rating per (user, film): duplicates would be summed
    u, i = cells // 100, cells % 100
    r = np.clip(np.rint(3.5 + 0.5 * np.sign((u % 2) - 0.5) * np.sign((i % 2) - 0.5) + rng.normal(0, 0.5, 5000)), 1, 5)
    ratings = ek.Interactions.from_arrays([f"u{x}" for x in u], [f"m{x}" for x in i], r, allow_negative=True)
    mf = ek.MatrixFactorization(feedback="explicit", dim=8, device="cpu")
    mf.fit(ratings, show_progress=False)
    print("known pair:", mf.predict(["u0"], ["m1"]), " new user:", mf.predict(["nobody"], ["m1"]),
          " global mean:", round(mf.global_mean_, 3), " clipped to:", mf.rating_range_)


if __name__ == "__main__":
    main()
