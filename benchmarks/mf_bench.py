"""Matrix factorisation against its anchors, side by side on the same data and parameters.

Implicit feedback: embedkit ALS / BPR (torch) vs implicit's AlternatingLeastSquares /
BayesianPersonalizedRanking, same factors, regularisation, iterations and threads, on synthetic
long-tailed interactions with planted taste groups at three sizes. Quality: recall@10 and
NDCG@10 on a 20% per-user hold-out, both models scored by the same code
(embedkit.evaluate.ranking_metrics; recall divides by min(10, n_test)).

Explicit ratings: embedkit biased MF (SGD and ALS) vs Surprise SVD (same factors, epochs,
lr 0.005, reg 0.02) on planted low-rank ratings; RMSE on a 20% hold-out.

    python benchmarks/mf_bench.py                       # all sizes, CPU, all cores
    python benchmarks/mf_bench.py --sizes s m --threads 2
    python benchmarks/mf_bench.py --device cuda         # ours on the GPU, anchors on all CPU cores

Issue-18 sections (each alone with its flag; any combination):

    python benchmarks/mf_bench.py --cv          # explicit: 5-fold RMSE vs Surprise BaselineOnly/SVD/SVD++
    python benchmarks/mf_bench.py --baselines   # popularity, item-kNN (cosine, BM25), ALS, BPR: one compare() table
    python benchmarks/mf_bench.py --hybrid      # HybridMF warm and cold-start splits (LightFM if installed)
    python benchmarks/mf_bench.py --speed       # interleaved fit times vs implicit (ALS, BPR) and Surprise (SGD)

No real ratings file is on the benchmark machine (no network; Surprise downloads its builtin
sets), so --cv runs on ML-100k-shaped planted ratings (943 users, 1682 items, ~100k 1-5 star
ratings, long-tailed activity and popularity, users choosing what they like: ``ml100k_like``).

Anchors are optional (pip install implicit scikit-surprise); missing ones are reported as such.
Prints markdown tables; appends nothing anywhere.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import embedkit as ek  # noqa: E402
from embedkit.evaluate.ranking import ranking_metrics, rmse  # noqa: E402

SIZES = {  # users, items, mean interactions per user
    "s": (10_000, 5_000, 20),
    "m": (50_000, 20_000, 20),
    "l": (200_000, 50_000, 20),
}
RATING_SIZES = {"s": (1_000, 1_700, 100), "m": (10_000, 4_000, 50)}


# ------------------------------------------------------------------------ data
def implicit_data(n_users, n_items, per_user, groups=50, seed=0):
    """Long-tailed interactions: Zipf item popularity, log-normal user activity, each user
    drawing 80% of their items from one of ``groups`` taste groups (the planted answer) and the
    rest from global popularity; play counts 1..4. Repeated draws merge (fewer pairs than drawn)."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    item_group = rng.integers(0, groups, n_items)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.9
    rng.shuffle(pop)
    counts = np.maximum(1, rng.lognormal(np.log(per_user) - 0.5, 1.0, n_users).astype(np.int64))
    counts = np.minimum(counts, n_items // 4)
    user_group = rng.integers(0, groups, n_users)
    users = np.repeat(np.arange(n_users), counts)
    own = rng.random(len(users)) < 0.8
    # inverse-CDF sampling within each group: group g's items occupy [g, g + 1) of one CDF
    order = np.argsort(item_group, kind="stable")
    cdf = np.empty(n_items)
    for g in range(groups):
        members = order[item_group[order] == g]
        cdf[np.searchsorted(item_group[order], g):][:len(members)] = g + np.cumsum(pop[members]) / pop[members].sum()
    draw = user_group[users[own]] + rng.random(int(own.sum())) * (1 - 1e-12)
    items = np.empty(len(users), dtype=np.int64)
    items[own] = order[np.minimum(np.searchsorted(cdf, draw, side="right"), n_items - 1)]
    items[~own] = rng.choice(n_items, int((~own).sum()), p=pop / pop.sum())
    values = rng.integers(1, 5, len(users)).astype(np.float32)
    m = sp.csr_matrix((values, (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data = np.minimum(m.data, 4.0)
    return ek.Interactions.from_sparse(m)


def rating_data(n_users, n_items, per_user, rank=10, noise=0.5, seed=0):
    """Planted ratings: 3.5 + biases + U V^T (rank ``rank``) + Gaussian noise, ~per_user each."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank)) / np.sqrt(rank)
    V = rng.normal(size=(n_items, rank))
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.5, n_items)
    n = n_users * per_user
    u = rng.integers(0, n_users, n)
    i = rng.integers(0, n_items, n)
    key = np.unique(u.astype(np.int64) * n_items + i)
    u, i = key // n_items, key % n_items
    r = 3.5 + bu[u] + bi[i] + np.einsum("nd,nd->n", U[u], V[i]) + rng.normal(0, noise, len(u))
    return ek.Interactions.from_arrays(u, i, r, allow_negative=True), noise


def ml100k_like(n_users=943, n_items=1682, n_ratings=100_000, rank=10, signal=0.9, noise=0.8, seed=0):
    """Ratings shaped like MovieLens-100k: integer 1-5 stars, at least 20 per user, log-normal
    activity, Zipf popularity; a user rates the items they are drawn to (popularity x taste x
    item quality), so which items were rated says something about the rating (what SVD++'s
    implicit terms use). rating = round(3.3 + b_u + b_i + signal * <p_u, q_i> + N(0, noise)),
    clipped to 1..5. Returns (users, items, ratings) integer/float arrays."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank)) / np.sqrt(rank)
    V = rng.normal(size=(n_items, rank))
    aff = U @ V.T
    bu, bi = rng.normal(0, 0.35, n_users), rng.normal(0, 0.45, n_items)
    pop = np.log(1.0 / np.arange(1, n_items + 1) ** 1.1)
    rng.shuffle(pop)
    act = rng.lognormal(0, 0.9, n_users)
    act = np.minimum((20 + act / act.sum() * (n_ratings - 20 * n_users)).astype(int), n_items // 2)
    g = pop[None, :] + 0.8 * aff + 0.7 * bi[None, :] + rng.gumbel(size=aff.shape)  # Gumbel top-k = sampling
    us, its = [], []
    for u in range(n_users):
        top = np.argpartition(-g[u], act[u])[:act[u]]
        us.append(np.full(len(top), u))
        its.append(top)
    u, i = np.concatenate(us), np.concatenate(its)
    r = np.clip(np.rint(3.3 + bu[u] + bi[i] + signal * aff[u, i] + rng.normal(0, noise, len(u))), 1, 5)
    return u, i, r


# --------------------------------------------------------------------- runners
def run_ours(train, test, device, **params):
    model = ek.MatrixFactorization(device=device, seed=0, **params)
    t0 = time.perf_counter()
    model.fit(train, show_progress=False)
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    secs = time.perf_counter() - t0
    return model, secs / params["epochs"]


def run_implicit(train, method, threads, dim, reg, epochs, confidence=1.0, lr=0.01):
    """implicit's own fit, timed alone; its factors then go through our scoring code."""
    import warnings

    from threadpoolctl import threadpool_limits

    data = train.matrix.astype(np.float32).tocsr()
    kw = {}
    if method == "als":
        from implicit.cpu.als import AlternatingLeastSquares as Model

        data.data = 1.0 + confidence * data.data  # Hu et al. confidence, as ours
        kw = dict(regularization=reg, alpha=1.0)
    else:
        from implicit.cpu.bpr import BayesianPersonalizedRanking as Model

        data.data[:] = 1.0
        kw = dict(regularization=reg, learning_rate=lr)
    model = Model(factors=dim, iterations=epochs, num_threads=threads, random_state=0, **kw)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model.fit(data, show_progress=False)
        secs = time.perf_counter() - t0
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    extra = {}
    if method == "bpr":
        uf, itf, extra = uf[:, :-1], itf[:, :-1], {"item_bias": itf[:, -1]}
    wrapped = ek.MatrixFactorization.from_factors(train, uf, itf, method=method, dim=dim, **extra)
    return wrapped, secs / epochs


def quality(model, test):
    m = ranking_metrics(model, test, k=10)
    return m["recall"], m["ndcg"]


# ----------------------------------------------------------------------- main
def bench_implicit(args):
    rows = []
    for size in args.sizes:
        n_users, n_items, per_user = SIZES[size]
        inter = implicit_data(n_users, n_items, per_user)
        train, test = inter.split(test_fraction=0.2, seed=0)
        print(f"# size {size}: {n_users} users x {n_items} items, {train.nnz} train / {test.nnz} test "
              f"interactions", flush=True)
        for method in args.methods:
            epochs = args.epochs if method == "als" else args.bpr_epochs
            params = dict(method=method, dim=args.dim, reg=args.reg, epochs=epochs)
            if method == "bpr":
                params.update(lr=args.lr, batch_size=args.batch_size)
            ours, ours_t = run_ours(train, test, args.device, **params)
            r_o, n_o = quality(ours, test)
            row = [size, method, f"{ours_t:.3f}", f"{r_o:.4f}", f"{n_o:.4f}"]
            try:
                anchor, anch_t = run_implicit(train, method, args.threads, args.dim, args.reg, epochs,
                                              lr=args.lr)
                r_a, n_a = quality(anchor, test)
                row += [f"{anch_t:.3f}", f"{ours_t / anch_t:.2f}", f"{r_a:.4f}", f"{n_a:.4f}"]
            except ImportError:
                row += ["n/a (pip install implicit)", "-", "-", "-"]
            except Exception as exc:  # an anchor that cannot run here (e.g. a wheel built for another numpy)
                row += [f"n/a (implicit failed: {type(exc).__name__}: {str(exc)[:80]})", "-", "-", "-"]
            rows.append(row)
            print("| " + " | ".join(row) + " |", flush=True)
    return rows


def bench_explicit(args):
    rows = []
    for size in args.rating_sizes:
        n_users, n_items, per_user = RATING_SIZES[size]
        inter, noise = rating_data(n_users, n_items, per_user)
        train, test = inter.split(test_fraction=0.2, seed=0)
        print(f"# ratings {size}: {n_users} users x {n_items} items, {train.nnz} train / {test.nnz} test, "
              f"noise sd {noise}", flush=True)
        anchor_t = anchor_rmse = None
        try:
            from surprise import SVD, Dataset, Reader

            df = train.to_dataframe()
            data = Dataset.load_from_df(df[["user", "item", "value"]],
                                        Reader(rating_scale=(float(df.value.min()), float(df.value.max()))))
            trainset = data.build_full_trainset()
            algo = SVD(n_factors=args.dim, n_epochs=args.sgd_epochs, lr_all=0.005, reg_all=0.02, random_state=0)
            t0 = time.perf_counter()
            algo.fit(trainset)
            anchor_t = (time.perf_counter() - t0) / args.sgd_epochs
            tdf = test.to_dataframe()
            preds = np.array([algo.predict(u, i, clip=False).est for u, i in zip(tdf.user, tdf.item)])
            anchor_rmse = float(np.sqrt(np.mean((preds - tdf.value.to_numpy()) ** 2)))
        except ImportError:
            pass
        for method, epochs, extra in (("sgd", args.sgd_epochs, dict(lr=0.005, reg=0.02)),
                                      ("als", args.epochs, {})):
            ours, ours_t = run_ours(train, test, args.device, feedback="explicit", method=method, dim=args.dim,
                                    epochs=epochs, **extra)
            err = rmse(ours, test)
            row = [size, method, str(epochs), f"{ours_t:.3f}", f"{err:.4f}"]
            if anchor_t is None:
                row += ["n/a (pip install scikit-surprise)", "-", "-"]
            else:
                row += [f"{anchor_t:.3f}", f"{ours_t / anchor_t:.2f}", f"{anchor_rmse:.4f}"]
            rows.append(row)
            print("| " + " | ".join(row) + " |", flush=True)
    return rows

# ------------------------------------------------------------------ issue 18 sections
def bench_cv(args):
    """5-fold RMSE (same folds) of Surprise's BaselineOnly, SVD, SVD++ (their defaults) and ours."""
    import pandas as pd

    u, i, r = ml100k_like(signal=args.cv_signal, noise=args.cv_noise)
    df = pd.DataFrame({"user": [f"u{x}" for x in u], "item": [f"i{x}" for x in i], "value": r})
    fold = np.random.default_rng(0).permutation(len(df)) % 5
    print(f"# ML-100k-shaped ratings (signal {args.cv_signal}, noise {args.cv_noise}): {df.user.nunique()} users x "
          f"{df.item.nunique()} items, {len(df)} ratings, mean {r.mean():.2f} sd {r.std():.2f}; 5 folds, "
          "predictions clipped to 1..5 for all\n")
    print("| model | 5-fold RMSE | sd | fit s (mean) |")
    print("|---|---|---|---|")

    def ours(**kw):
        def run(tr, te):
            inter = ek.Interactions.from_arrays(tr.user.tolist(), tr.item.tolist(), tr.value.to_numpy(),
                                                allow_negative=True)
            m = ek.MatrixFactorization(feedback="explicit", device="cpu", seed=0, **kw)
            t0 = time.perf_counter()
            m.fit(inter, show_progress=False)
            secs = time.perf_counter() - t0
            return np.clip(m.predict(te.user.tolist(), te.item.tolist()), 1, 5), secs
        return run

    def surprise(make):
        def run(tr, te):
            from surprise import Dataset, Reader

            ts = Dataset.load_from_df(tr[["user", "item", "value"]], Reader(rating_scale=(1, 5))).build_full_trainset()
            algo = make()
            t0 = time.perf_counter()
            algo.fit(ts)
            secs = time.perf_counter() - t0
            return np.array([algo.predict(a, b, clip=True).est for a, b in zip(te.user, te.item)]), secs
        return run

    runs = {"embedkit explicit default (ALS, reg 0.1)": ours(),
            "embedkit explicit ALS reg 0.05 (old default)": ours(method="als", reg=0.05),
            "embedkit explicit ALS reg 0.1 dim 16": ours(method="als", reg=0.1, dim=16),
            "embedkit explicit SGD (lr 0.005, reg 0.02, 15 epochs)": ours(method="sgd")}
    try:
        from surprise import SVD, BaselineOnly, SVDpp

        runs = {"Surprise BaselineOnly": surprise(lambda: BaselineOnly(verbose=False)),
                "Surprise SVD (defaults)": surprise(lambda: SVD(random_state=0)),
                "Surprise SVD++ (defaults)": surprise(lambda: SVDpp(random_state=0, cache_ratings=True)), **runs}
    except ImportError:
        print("| Surprise | n/a (pip install scikit-surprise) | - | - |")
    for name, run in runs.items():
        errs, secs = [], []
        for f in range(5):
            tr, te = df[fold != f], df[fold == f]
            pred, t = run(tr, te)
            errs.append(float(np.sqrt(np.mean((pred - te.value.to_numpy()) ** 2))))
            secs.append(t)
        print(f"| {name} | {np.mean(errs):.4f} | {np.std(errs):.4f} | {np.mean(secs):.2f} |", flush=True)


def bench_baselines(args):
    from embedkit.evaluate import compare
    from embedkit.trainers.mf import ItemKNN, Popularity

    inter = implicit_data(1000, 1700, 55, groups=20)
    train, test = inter.split(test_fraction=0.2, seed=0)
    print(f"# baselines: {inter.n_users} users x {inter.n_items} items, {train.nnz} train / {test.nnz} test\n")
    models = {}
    for name, m in (("popularity", Popularity()), ("item-kNN cosine", ItemKNN()),
                    ("item-kNN BM25", ItemKNN(similarity="bm25")),
                    ("MF ALS dim 64", ek.MatrixFactorization(dim=64, device="cpu")),
                    ("MF BPR dim 64, 50 epochs", ek.MatrixFactorization(method="bpr", dim=64, epochs=50, device="cpu"))):
        t0 = time.perf_counter()
        m.fit(train, show_progress=False)
        print(f"fit {name}: {time.perf_counter() - t0:.2f} s", flush=True)
        models[name] = m
    print()
    print(compare(models, test, k=10))


def hybrid_data(n_users=2000, n_items=1500, genres=15, per_user=20, cold_fraction=0.2, seed=0):
    """Items in ``genres`` genres with 3 tags each (one genre-specific, two random of 30) and a
    price; users with a home genre and a country tied to it (80%); each user plays per_user
    items, 85% of them from their genre by popularity. ``cold_fraction`` of the items get no
    interactions in training (cold), the rest split 80/20 per user (warm)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    genre = rng.integers(0, genres, n_items)
    tags = [f"g{g}-t{rng.integers(0, 3)}|x{rng.integers(0, 30)}|x{rng.integers(0, 30)}" for g in genre]
    items = pd.DataFrame({"item": [f"i{j}" for j in range(n_items)], "genre": [f"g{g}" for g in genre],
                          "tags": tags, "price": rng.lognormal(2, 0.5, n_items)})
    home = rng.integers(0, genres, n_users)
    country = np.where(rng.random(n_users) < 0.8, home, rng.integers(0, genres, n_users))
    users = pd.DataFrame({"user": [f"u{x}" for x in range(n_users)], "country": [f"c{c}" for c in country]})
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rng.shuffle(pop)
    cold = rng.random(n_items) < cold_fraction
    us, its = [], []
    for u in range(n_users):
        own = np.flatnonzero(genre == home[u])
        n_own = int(per_user * 0.85)
        a = rng.choice(own, min(n_own, len(own)), replace=False, p=pop[own] / pop[own].sum())
        b = rng.choice(n_items, per_user - len(a), replace=False, p=pop / pop.sum())
        picked = np.unique(np.concatenate([a, b]))
        us += [f"u{u}"] * len(picked)
        its += [f"i{j}" for j in picked]
    inter = ek.Interactions.from_arrays(us, its)
    cold_keys = {f"i{j}" for j in np.flatnonzero(cold)}
    is_cold = np.array([inter.item_keys[j] in cold_keys for j in inter.items])
    return inter, is_cold, items, users, cold_keys


def bench_hybrid(args):
    from embedkit.data.interactions import Interactions
    from embedkit.evaluate import compare
    from embedkit.trainers.mf import Features, HybridMF, Popularity

    inter, is_cold, items, users, cold_keys = hybrid_data()
    sub = lambda mask: Interactions(inter.user_keys, inter.item_keys, inter.users[mask], inter.items[mask],  # noqa: E731
                                    inter.values[mask])
    warm_all, cold_test = sub(~is_cold), sub(is_cold)
    train, warm_test = warm_all.split(test_fraction=0.2, seed=0)
    print(f"# hybrid: {inter.n_users} users x {inter.n_items} items ({len(cold_keys)} cold), {train.nnz} train, "
          f"{warm_test.nnz} warm test, {cold_test.nnz} cold test pairs\n")
    warm_items = items[~items["item"].isin(cold_keys)]
    ifeat = Features.from_dataframe(warm_items, id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    ufeat = Features.from_dataframe(users, id="user", categorical=["country"])
    rows = {}
    for loss in ("warp", "bpr"):
        m = HybridMF(dim=32, loss=loss, epochs=20, device="cpu")
        t0 = time.perf_counter()
        m.fit(train, item_features=ifeat, user_features=ufeat, show_progress=False)
        secs = time.perf_counter() - t0
        m.add_items(items[items["item"].isin(cold_keys)])
        rows[f"HybridMF {loss} ({secs:.1f} s)"] = m
    als = ek.MatrixFactorization(dim=32, device="cpu")
    als.fit(train, show_progress=False)
    rows["MF ALS dim 32 (ids only)"] = als
    pop = Popularity()
    pop.fit(train, show_progress=False)
    rows["popularity"] = pop
    print("warm split (items seen in training):\n")
    print(compare(rows, warm_test, k=10))
    print("\ncold split (items never seen in training; ranked among the cold items only):\n")

    class ColdOnly:  # restrict every model to the cold catalogue, the same for all
        def __init__(self, m):
            self.m = m

        def has_user(self, u):
            return self.m.has_user(u)

        def recommend_batch(self, users, k=10, exclude_seen=True):
            return self.m.recommend_batch(users, k=k, exclude_seen=exclude_seen,
                                          filter={"$key": {"$in": sorted(cold_keys)}})

    print(compare({name: ColdOnly(m) for name, m in rows.items()}, cold_test, k=10))
    try:
        import lightfm  # noqa: F401

        print("\nLightFM is installed: comparison not wired in this run")
    except ImportError:
        print("\nLightFM: not installed (its build failed on this machine: /tmp/bench_install.log), no comparison")


def _interleave(fns: dict, reps: int) -> dict:
    """Median seconds of each function, runs interleaved A B A B ... so load drifts hit both."""
    times = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


def bench_speed(args):
    import warnings

    from threadpoolctl import threadpool_limits

    th = args.threads
    print(f"# speed: interleaved, median of {args.reps}, {th} threads for every library\n")
    print("| what | data | ours s | anchor s | ratio ours/anchor |")
    print("|---|---|---|---|---|")
    small = implicit_data(1000, 1700, 55, groups=20)
    data = small.matrix.astype(np.float32).tocsr()

    def ours(**kw):
        kw.setdefault("device", "cpu" if kw.get("backend") != "numba" else "auto")
        return lambda: ek.MatrixFactorization(seed=0, **kw).fit(small, show_progress=False)

    try:
        from implicit.cpu.als import AlternatingLeastSquares
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        conf = data.copy()
        conf.data = 1.0 + conf.data

        def imp_als():
            with threadpool_limits(1, "blas"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                AlternatingLeastSquares(factors=64, iterations=15, regularization=0.01, alpha=1.0, num_threads=th,
                                        random_state=0).fit(conf, show_progress=False)

        binary = data.copy()
        binary.data[:] = 1.0

        def imp_bpr():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                BayesianPersonalizedRanking(factors=64, iterations=50, learning_rate=0.05, regularization=0.01,
                                            num_threads=th, random_state=0).fit(binary, show_progress=False)
    except ImportError:
        imp_als = imp_bpr = None
    shape = f"{small.n_users}x{small.n_items}, {small.nnz} pairs"
    if imp_als is not None:
        t = _interleave({"ours": ours(dim=64, epochs=15), "anchor": imp_als}, args.reps)
        print(f"| ALS fit, 15 epochs, dim 64 (vs implicit) | {shape} | {t['ours']:.3f} | {t['anchor']:.3f} | "
              f"{t['ours'] / t['anchor']:.2f} |", flush=True)
        for backend in ("torch", "numba"):
            t = _interleave({"ours": ours(method="bpr", dim=64, epochs=50, backend=backend), "anchor": imp_bpr},
                            args.reps)
            print(f"| BPR fit, 50 epochs, dim 64, backend={backend} (vs implicit) | {shape} | {t['ours']:.3f} | "
                  f"{t['anchor']:.3f} | {t['ours'] / t['anchor']:.2f} |", flush=True)
        train, test = small.split(test_fraction=0.2, seed=0)
        for backend in ("torch", "numba"):
            m = ek.MatrixFactorization(method="bpr", dim=64, epochs=50, backend=backend, device="cpu", seed=0)
            m.fit(train, show_progress=False)
            r, n = quality(m, test)
            print(f"| BPR quality, backend={backend}: recall@10 / ndcg@10 | 80/20 split | {r:.4f} / {n:.4f} | - | - |")
        anchor, _ = run_implicit(train, "bpr", th, 64, 0.01, 50, lr=0.05)
        r, n = quality(anchor, test)
        print(f"| BPR quality, implicit: recall@10 / ndcg@10 | 80/20 split | - | {r:.4f} / {n:.4f} | - |", flush=True)
    try:
        import pandas as pd
        from surprise import SVD, Dataset, Reader

        u, i, r = ml100k_like()
        rat = ek.Interactions.from_arrays(u, i, r, allow_negative=True)
        ts = Dataset.load_from_df(pd.DataFrame({"u": u, "i": i, "r": r}), Reader(rating_scale=(1, 5))).build_full_trainset()
        for backend in ("torch", "numba"):
            t = _interleave({"ours": lambda: ek.MatrixFactorization(feedback="explicit", method="sgd", dim=100, epochs=20,
                                                                    backend=backend).fit(rat, show_progress=False),
                             "anchor": lambda: SVD(n_factors=100, n_epochs=20, random_state=0).fit(ts)}, args.reps)
            print(f"| explicit SGD per epoch, dim 100, backend={backend} (vs Surprise SVD) | ML-100k-shaped, {rat.nnz} "
                  f"ratings | {t['ours'] / 20:.4f} | {t['anchor'] / 20:.4f} | {t['ours'] / t['anchor']:.2f} |", flush=True)
        t = _interleave({"ours": lambda: ek.MatrixFactorization(feedback="explicit", device="cpu").fit(
            rat, show_progress=False), "anchor": lambda: SVD(random_state=0).fit(ts)}, args.reps)
        print(f"| explicit default fit (ALS 15 epochs dim 64 vs Surprise SVD defaults) | ML-100k-shaped | "
              f"{t['ours']:.3f} | {t['anchor']:.3f} | {t['ours'] / t['anchor']:.2f} |", flush=True)
    except ImportError:
        print("| explicit SGD | n/a (pip install scikit-surprise) | - | - | - |")



def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="*", default=["s", "m", "l"], choices=sorted(SIZES))
    p.add_argument("--rating-sizes", nargs="*", default=["s", "m"], choices=sorted(RATING_SIZES))
    p.add_argument("--methods", nargs="+", default=["als", "bpr"], choices=["als", "bpr"])
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--reg", type=float, default=0.01)
    p.add_argument("--lr", type=float, default=0.05, help="BPR learning rate (both)")
    p.add_argument("--epochs", type=int, default=15, help="ALS iterations (both; explicit ALS too)")
    p.add_argument("--bpr-epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=None, help="our BPR mini-batch (default: the library's)")
    p.add_argument("--sgd-epochs", type=int, default=20, help="explicit SGD epochs (ours and Surprise)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads for both (default: all)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (ours); anchors always run on the CPU")
    p.add_argument("--cv", action="store_true", help="only: explicit 5-fold RMSE vs Surprise on ML-100k-shaped data")
    p.add_argument("--cv-signal", type=float, default=0.9, help="--cv taste strength (default 0.9)")
    p.add_argument("--cv-noise", type=float, default=0.8, help="--cv rating noise sd (default 0.8)")
    p.add_argument("--baselines", action="store_true", help="only: popularity / item-kNN / ALS / BPR compare() table")
    p.add_argument("--hybrid", action="store_true", help="only: HybridMF warm and cold-start splits")
    p.add_argument("--speed", action="store_true", help="only: interleaved fit times vs implicit and Surprise")
    p.add_argument("--reps", type=int, default=5, help="--speed repetitions (median)")
    args = p.parse_args(argv)
    chosen = [f for f in ("cv", "baselines", "hybrid", "speed") if getattr(args, f)]
    if chosen:
        import torch

        torch.set_num_threads(args.threads)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads {args.threads}, "
              f"torch {torch.__version__}\n")
        for f in chosen:
            globals()[f"bench_{f}"](args)
            print()
        return

    import torch

    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, threads {args.threads}, "
          f"torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""))
    print(f"dim {args.dim}, reg {args.reg}, ALS epochs {args.epochs}, BPR epochs {args.bpr_epochs} lr {args.lr}\n")
    print("| size | method | ours s/epoch | ours recall@10 | ours ndcg@10 | implicit s/epoch | ratio (ours/implicit) "
          "| implicit recall@10 | implicit ndcg@10 |")
    print("|---|---|---|---|---|---|---|---|---|")
    bench_implicit(args)
    if args.rating_sizes:
        print("\n| ratings | ours method | epochs | ours s/epoch | ours RMSE | Surprise SVD s/epoch | ratio | "
              "Surprise RMSE |")
        print("|---|---|---|---|---|---|---|---|")
        bench_explicit(args)


if __name__ == "__main__":
    main()
