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
    args = p.parse_args(argv)

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
