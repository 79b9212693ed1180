"""CLI verbs for matrix factorisation: ``train mf``, ``recommend``, ``eval mf`` and the MF demo."""

from __future__ import annotations

import json

from ..errors import InputError
from .common import (
    add_renamed_option,
    add_store_option,
    add_train_options,
    check_k,
    existing_file,
    get_store,
    out,
    refuse_existing,
    renamed_option,
    save_trained,
)


def register(groups) -> None:
    train = groups.train.add_parser(
        "mf", help="matrix factorisation of user-item interactions (implicit ALS/BPR, explicit ratings)",
        description="Train user and item vectors from a CSV of interactions and save them as an "
                    "inner-product index (items) with the users beside it, ready for 'embedkit recommend'.")
    train.add_argument("interactions", metavar="INTERACTIONS.csv",
                       help="one interaction per line: user, item[, value][, timestamp]; header detected")
    _add_column_options(train)
    train.add_argument("--feedback", default="implicit", choices=["implicit", "explicit"],
                       help="implicit: counts/clicks; explicit: ratings (default: implicit)")
    train.add_argument("--method", default="als", choices=["als", "bpr", "sgd"],
                       help="als or bpr for implicit, als or sgd for explicit (default: als)")
    add_train_options(train, epochs=15, dim=64)
    train.set_defaults(metric="ip")
    train.add_argument("--reg", type=float, default=None, help="L2 regularisation (default: per method)")
    train.add_argument("--confidence", type=float, default=None,
                       help="implicit ALS confidence weight: c = 1 + confidence*value (default: 1)")
    add_renamed_option(train, "--alpha", "--confidence")
    train.add_argument("--lr", type=float, default=None, help="SGD learning rate for bpr/sgd (default: per method)")
    train.add_argument("--batch-size", type=int, default=None, help="SGD mini-batch for bpr/sgd (default: per method)")
    train.add_argument("--cg-steps", type=int, default=3, help="conjugate-gradient steps per ALS half-epoch (default: 3)")
    train.add_argument("--backend", default="torch", choices=["torch", "implicit"],
                       help="torch (CPU/CUDA) or the optional 'implicit' package on CPU (default: torch)")
    train.set_defaults(func=cmd_train)

    rec = groups.top.add_parser("recommend", help="top-k items for users of a saved MF model")
    rec.add_argument("name", metavar="NAME")
    rec.add_argument("users", metavar="USER", nargs="+")
    rec.add_argument("-k", type=int, default=10, help="items per user (default: 10)")
    rec.add_argument("--include-seen", action="store_true", help="also recommend items the user already has")
    rec.add_argument("--json", action="store_true", help="print JSON {user: [[item, score], ...]}")
    add_store_option(rec)
    rec.set_defaults(func=cmd_recommend)

    ev = groups.eval.add_parser("mf", help="recall/NDCG/precision/MAP@k (and RMSE for ratings) of a saved MF model",
                                description="Score a saved MF model on held-out interactions whose ids match "
                                            "the training data. Items seen in training are excluded.")
    ev.add_argument("name", metavar="NAME")
    ev.add_argument("test", metavar="TEST.csv")
    _add_column_options(ev)
    ev.add_argument("-k", type=int, default=10, help="cut-off (default: 10)")
    ev.add_argument("--json", action="store_true")
    add_store_option(ev)
    ev.set_defaults(func=cmd_eval)


def _add_column_options(p) -> None:
    p.add_argument("--user", default="user", help="user column name or 0-based position (default: user)")
    p.add_argument("--item", default="item", help="item column name or 0-based position (default: item)")
    p.add_argument("--value", default=None, help="value column (count or rating); default: each row counts 1")
    p.add_argument("--timestamp", default=None, help="timestamp column (kept for time splits)")
    p.add_argument("--delimiter", default=None, help="field separator (default: detected)")


def _column(value):
    return int(value) if isinstance(value, str) and value.isdigit() else value


def read_interactions(args, path):
    from ..data.interactions import Interactions

    return Interactions.from_csv(existing_file(path), user=_column(args.user), item=_column(args.item),
                                 value=_column(args.value), timestamp=_column(args.timestamp),
                                 delimiter=args.delimiter, allow_negative=getattr(args, "feedback", "") == "explicit")


def cmd_train(args) -> int:
    from ..trainers.mf import MatrixFactorization

    if args.metric != "ip":
        raise InputError("MF indexes use --metric ip (recommendations are inner products; similar items use "
                         "cosine on the stored item vectors); drop --metric")
    if args.feedback == "explicit" and args.value is None:
        raise InputError("--feedback explicit needs the rating column: --value COLUMN")
    refuse_existing(get_store(args), args.name, args.force)
    model = MatrixFactorization(feedback=args.feedback, method=args.method, dim=args.dim, reg=args.reg,
                                confidence=renamed_option(args, "confidence", "alpha", default=1.0), epochs=args.epochs,
                                lr=args.lr, batch_size=args.batch_size, cg_steps=args.cg_steps, backend=args.backend,
                                seed=args.seed, device=args.device)
    model.check_params()  # a bad option fails before the CSV is read
    inter = read_interactions(args, args.interactions)
    model.fit(inter, show_progress=not args.no_progress)
    path = save_trained(args, model, metric="ip")
    loss = model.loss_history_[-1] if model.loss_history_ else float("nan")
    out(f"trained {args.feedback} {args.method} on {inter.n_users} users x {inter.n_items} items "
        f"({inter.nnz} interactions), dim {args.dim}, final loss {loss:.5g}")
    out(f"saved to {path}  (try: embedkit recommend {args.name} {inter.user_keys[0]} -k 5)")
    return 0


def cmd_recommend(args) -> int:
    from ..trainers.mf import MatrixFactorization

    check_k(args.k)
    model = MatrixFactorization.from_store(args.name, get_store(args))
    recs = model.recommend_batch(args.users, k=args.k, exclude_seen=not args.include_seen)
    if args.json:
        out(json.dumps({u: [[i, s] for i, s in r] for u, r in zip(args.users, recs)}))
        return 0
    for user, items in zip(args.users, recs):
        out(user)
        for item, score in items:
            out(f"  {item}\t{score:.4f}")
    return 0


def cmd_eval(args) -> int:
    from ..evaluate.ranking import ranking_metrics, rmse
    from ..trainers.mf import MatrixFactorization

    check_k(args.k)
    model = MatrixFactorization.from_store(args.name, get_store(args))
    args.feedback = model.params_["feedback"]
    test = read_interactions(args, args.test)
    scores = ranking_metrics(model, test, k=args.k)
    result = {f"{m}@{args.k}": v for m, v in scores.items()}
    if model.params_["feedback"] == "explicit":
        if args.value is None:
            raise InputError("RMSE needs the rating column of the test file: --value COLUMN")
        result["rmse"] = rmse(model, test)
    if args.json:
        out(json.dumps(result))
    else:
        for key, value in result.items():
            out(f"{key}\t{value:.4f}")
    return 0


def demo(args) -> None:
    """MF on a synthetic catalogue of three genres: train in a few seconds, save "demo-mf",
    print recommendations for one fan of each genre."""
    from ..trainers.mf import MatrixFactorization

    inter = demo_interactions()
    model = MatrixFactorization(dim=16, epochs=10, seed=getattr(args, "seed", 0), device="cpu")
    model.fit(inter, show_progress=not getattr(args, "no_progress", False))
    path = model.to_store("demo-mf", get_store(args), overwrite=True)
    out(f"trained implicit ALS on {inter.n_users} users x {inter.n_items} films ({inter.nnz} plays); saved to {path}")
    for user in ("scifi-fan-0", "drama-fan-0", "comedy-fan-0"):
        seen = ", ".join(item for item, _ in model.history(user)[:3])
        recs = model.recommend(user, k=4)
        out(f"{user} (watched {seen}, ...) -> " + ", ".join(f"{i} ({s:.2f})" for i, s in recs))
    out(f"from the shell: embedkit --store {get_store(args).root} recommend demo-mf scifi-fan-1 -k 5")


def demo_interactions(seed: int = 0):
    """300 users, 120 films in three genres; each user plays mostly films of their genre."""
    import numpy as np

    from ..data.interactions import Interactions

    rng = np.random.default_rng(seed)
    genres = ("scifi", "drama", "comedy")
    users, items = [], []
    for genre in genres:
        for u in range(100):
            own = rng.choice(40, size=12, replace=False)
            other = rng.choice(120, size=2, replace=False)
            users += [f"{genre}-fan-{u}"] * 14
            items += [f"{genre}-film-{i:02d}" for i in own]
            items += [f"{genres[i // 40]}-film-{i % 40:02d}" for i in other]
    return Interactions.from_arrays(users, items)
