"""Matrix factorisation end to end: interactions -> ALS -> metrics -> recommend -> fold-in -> store.

Runs in a few seconds on 2 CPU cores:

    python examples/mf_example.py
"""

import tempfile

import numpy as np

import embedkit as ek
from embedkit.evaluate import ranking_metrics


def synthetic_plays(n_users=2000, n_items=600, groups=8, seed=0):
    """Each user plays ~25 films, mostly from their favourite of ``groups`` genres."""
    rng = np.random.default_rng(seed)
    genre = np.arange(n_items) % groups
    users, items, counts = [], [], []
    for u in range(n_users):
        fav = rng.integers(groups)
        own = rng.choice(np.flatnonzero(genre == fav), size=20, replace=False)
        other = rng.choice(n_items, size=5, replace=False)
        for i in np.concatenate([own, other]):
            users.append(f"user{u}")
            items.append(f"film{i:03d}-g{genre[i]}")
            counts.append(int(rng.integers(1, 4)))
    return ek.Interactions.from_arrays(users, items, counts)


def main():
    plays = synthetic_plays()
    train, test = plays.split(test_fraction=0.2, seed=0)       # per-user hold-out
    print(plays)

    model = ek.MatrixFactorization(feedback="implicit", method="als", dim=32, epochs=10, seed=0)
    items = model.fit(train, show_progress=False)              # item Embeddings
    print(f"loss per epoch: {[round(x, 4) for x in model.loss_history_]}")
    print("ranking @10:", {k: round(v, 3) for k, v in ranking_metrics(model, test, k=10).items()})

    print("user0 ->", [(i, round(s, 2)) for i, s in model.recommend("user0", k=5)])
    print("similar to", items.keys[0], "->", [i for i, _ in model.similar_items(items.keys[0], k=5)])

    # a new user, folded in from three plays without retraining
    model.fold_in("newcomer", ["film000-g0", "film008-g0", "film016-g0"])
    print("newcomer ->", [i for i, _ in model.recommend("newcomer", k=5)])

    # save into a store (what `embedkit recommend` and the HTTP service read) and load back
    with tempfile.TemporaryDirectory() as root:
        store = ek.Store(root)
        model.to_store("films", store)
        loaded = ek.MatrixFactorization.from_store("films", store)
        assert loaded.recommend("newcomer", k=5) == model.recommend("newcomer", k=5)
        print(f"saved and reloaded from {store.root}/films: {store.info('films')['count']} items")
        print(f"CLI: embedkit --store {root} recommend films user0 -k 5")
        # or one model file, without a store
        path = model.save(f"{root}/films.npz")
        assert ek.MatrixFactorization.load(path).recommend("newcomer", k=5) == model.recommend("newcomer", k=5)


if __name__ == "__main__":
    main()
