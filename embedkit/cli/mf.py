"""CLI verbs for matrix factorisation: ``train mf``, ``tune mf``, ``recommend``, ``cold-start``, ``eval mf`` and the MF demo."""

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
    ignored_option,
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
    _metric_ip_only(train)
    train.add_argument("--reg", type=float, default=None, help="L2 regularisation (default: per method)")
    train.add_argument("--confidence", type=float, default=None,
                       help="implicit ALS confidence weight: c = 1 + confidence*value (default: 1)")
    add_renamed_option(train, "--alpha", "--confidence")
    train.add_argument("--lr", type=float, default=None, help="SGD learning rate for bpr/sgd (default: per method)")
    train.add_argument("--batch-size", type=int, default=None, help="SGD mini-batch for bpr/sgd (default: per method)")
    train.add_argument("--cg-steps", type=int, default=3, help="conjugate-gradient steps per ALS half-epoch (default: 3)")
    train.add_argument("--backend", default="torch", choices=["torch", "implicit", "numba"],
                       help="torch (CPU/CUDA), the optional 'implicit' package on CPU, or compiled numba kernels "
                            "for bpr/sgd on CPU (default: torch)")
    train.add_argument("--sync-every", type=float, default=0.1, metavar="FRACTION",
                       help="distributed bpr/sgd and HybridMF (torchrun, --nproc): sum the ranks' item-table changes every this "
                            "fraction of an epoch, in (0, 1]; ALS exchanges its blocks every half-step (default: 0.1)")
    side = train.add_argument_group(
        "side features (cold start)", "Give --item-features and/or --user-features to train a HybridMF (LightFM-style: "
        "an item's vector is its id embedding plus its features' embeddings; implicit feedback). The id column of a "
        "features CSV is named like the interactions' --item / --user column.")
    side.add_argument("--item-features", metavar="ITEMS.csv", default=None, help="CSV of item features with a header")
    side.add_argument("--user-features", metavar="USERS.csv", default=None, help="CSV of user features with a header")
    for who in ("item", "user"):
        side.add_argument(f"--{who}-categorical", nargs="+", default=[], metavar="COL",
                          help=f"categorical columns of --{who}-features")
        side.add_argument(f"--{who}-tags", nargs="+", default=[], metavar="COL",
                          help=f"multi-valued columns of --{who}-features, values separated by '|'")
        side.add_argument(f"--{who}-numeric", nargs="+", default=[], metavar="COL",
                          help=f"numeric columns of --{who}-features (standardised)")
    side.add_argument("--loss", default=None, choices=["bpr", "warp"],
                      help="HybridMF loss, with --item-features/--user-features (default: bpr)")
    train.set_defaults(func=cmd_train)

    tune_group = groups.top.add_parser("tune", help="choose parameters by cross-validation and save the winner")
    tune = tune_group.add_subparsers(dest="what", metavar="WHAT", parser_class=type(tune_group))
    tune.required = True
    tm = tune.add_parser(
        "mf", help="grid search of matrix-factorisation parameters by k-fold cross-validation",
        description="Cross-validate every combination of --grid on the interactions, refit the best on all of "
                    "them and save it as --name; the manifest meta 'tuned' records the winner and every score.")
    tm.add_argument("interactions", metavar="INTERACTIONS.csv")
    _add_column_options(tm)
    tm.add_argument("--feedback", default="implicit", choices=["implicit", "explicit"])
    tm.add_argument("--method", default="als", choices=["als", "bpr", "sgd"])
    tm.add_argument("--grid", required=True,
                    help='JSON {parameter: [values]}, e.g. \'{"dim": [32, 64], "reg": [0.01, 0.1]}\'')
    tm.add_argument("--folds", type=int, default=3, help="cross-validation folds (default: 3)")
    tm.add_argument("-k", type=int, default=10, help="ranking cut-off (default: 10)")
    tm.add_argument("--tune-metric", default=None, choices=["recall", "ndcg", "map", "coverage", "rmse"],
                    help="what to maximise (rmse: minimise); default ndcg, rmse for explicit feedback")
    add_train_options(tm, epochs=15, dim=64)
    _metric_ip_only(tm)
    tm.add_argument("--json", action="store_true", help="print the result as JSON")
    tm.set_defaults(func=cmd_tune)

    rec = groups.top.add_parser("recommend", help="top-k items for users of a saved MF model")
    rec.add_argument("name", metavar="NAME")
    rec.add_argument("users", metavar="USER", nargs="+")
    rec.add_argument("-k", type=int, default=10, help="items per user (default: 10)")
    rec.add_argument("--include-seen", action="store_true", help="also recommend items the user already has")
    rec.add_argument("--json", action="store_true", help="print JSON {user: [[item, score], ...]}")
    rec.add_argument("--filter", default=None, metavar="JSON",
                     help='only items matching this filter, e.g. \'{"$key": {"$nin": ["i1"]}}\' or \'{"genre": "drama"}\'')
    add_store_option(rec)
    rec.set_defaults(func=cmd_recommend)

    cs = groups.top.add_parser(
        "cold-start", help="add items or users described by features alone to a saved HybridMF",
        description="Give new items (and/or users) to a HybridMF saved by 'embedkit train mf --item-features ...': "
                    "each gets a vector from its features alone, so it is recommended (and recommended to) at once. "
                    "The CSVs have the columns of the training features files, id column included; an id that "
                    "exists is replaced by its features-only vector. The store entry is rewritten.")
    cs.add_argument("name", metavar="NAME")
    cs.add_argument("--items", metavar="ITEMS.csv", default=None, help="CSV of new items' features (header row)")
    cs.add_argument("--users", metavar="USERS.csv", default=None, help="CSV of new users' features (header row)")
    cs.add_argument("--json", action="store_true", help='print JSON {"items": [...], "users": [...]}')
    add_store_option(cs)
    cs.set_defaults(func=cmd_cold_start)

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


def _metric_ip_only(parser) -> None:
    """MF indexes are inner-product: --metric (added by add_train_options) says so in its help and
    defaults to ip; another value is refused by cmd_train/cmd_tune with the reason."""
    for action in parser._actions:
        if "--metric" in action.option_strings:
            action.default = "ip"
            action.help = ("index metric: ip, the only one MF accepts (recommendations rank by inner product; "
                           "a HybridMF saves cosine); default: ip")
    parser.set_defaults(metric="ip")


def _check_metric(args) -> None:
    if args.metric != "ip":
        raise InputError("MF indexes use --metric ip (recommendations are inner products; similar items use "
                         "cosine on the stored item vectors); drop --metric")


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

    _check_metric(args)
    if args.feedback == "explicit" and args.value is None:
        raise InputError("--feedback explicit needs the rating column: --value COLUMN")
    _warn_unused_side_options(args)
    refuse_existing(get_store(args), args.name, args.force)
    if args.item_features or args.user_features:
        return _train_hybrid(args)
    model = MatrixFactorization(feedback=args.feedback, method=args.method, dim=args.dim, reg=args.reg,
                                confidence=renamed_option(args, "confidence", "alpha", default=1.0), epochs=args.epochs,
                                lr=args.lr, batch_size=args.batch_size, cg_steps=args.cg_steps, backend=args.backend,
                                seed=args.seed, device=args.device, sync_every=args.sync_every)
    model.check_params()  # a bad option fails before the CSV is read
    inter = read_interactions(args, args.interactions)
    model.fit(inter, show_progress=not args.no_progress)
    path = save_trained(args, model, metric="ip")
    loss = model.loss_history_[-1] if model.loss_history_ else float("nan")
    capped = " (the default 64, capped for this catalogue; --dim to choose)" if model.dim_ != args.dim else ""
    out(f"trained {args.feedback} {args.method} on {inter.n_users} users x {inter.n_items} items "
        f"({inter.nnz} interactions), dim {model.dim_}{capped}, final loss {loss:.5g}")
    out(f"saved to {path}  (try: embedkit recommend {args.name} {inter.user_keys[0]} -k 5)")
    return 0


def _warn_unused_side_options(args) -> None:
    """One warning line per side-feature option that has no effect: columns of a features file not given,
    and --loss (HybridMF's) when no features file is given (plain MF has --method)."""
    for who in ("item", "user"):
        given = [f"--{who}-{k}" for k in ("categorical", "tags", "numeric") if getattr(args, f"{who}_{k}")]
        if given and getattr(args, f"{who}_features") is None:
            ignored_option(f"{' and '.join(given)} name{'s' if len(given) == 1 else ''} columns of --{who}-features "
                           f"{who.upper()}S.csv, which is not given; ignored")
    if args.loss is not None and not (args.item_features or args.user_features):
        ignored_option(f"--loss {args.loss} is the HybridMF loss, used with --item-features/--user-features only; "
                       "ignored (plain MF chooses its objective with --method)")


def _train_hybrid(args) -> int:
    from ..trainers.mf import Features, HybridMF

    if args.feedback != "implicit":
        raise InputError("side features (--item-features/--user-features) train a HybridMF on implicit feedback; "
                         "drop --feedback explicit")
    kw = {"reg": args.reg} if args.reg is not None else {}
    model = HybridMF(dim=args.dim, loss=args.loss or "bpr", epochs=args.epochs, lr=0.05 if args.lr is None else args.lr,
                     seed=args.seed, device=args.device, sync_every=args.sync_every, **kw)
    model.check_params()
    feats = {}
    for who in ("item", "user"):
        path = getattr(args, f"{who}_features")
        if path is None:
            continue
        cols = {k: getattr(args, f"{who}_{k}") for k in ("categorical", "tags", "numeric")}
        if not any(cols.values()):
            raise InputError(f"--{who}-features needs its columns: --{who}-categorical, --{who}-tags or --{who}-numeric")
        feats[f"{who}_features"] = Features.from_csv(existing_file(path), id=str(getattr(args, who)), **cols)
    inter = read_interactions(args, args.interactions)
    model.fit(inter, show_progress=not args.no_progress, **feats)
    path = save_trained(args, model, metric="cosine")
    out(f"trained HybridMF ({model.loss}) on {inter.n_users} users x {inter.n_items} items ({inter.nnz} interactions) "
        f"with {', '.join(k.replace('_', ' ') for k in feats)}, dim {args.dim}, final loss {model.loss_history_[-1]:.5g}")
    out(f"saved to {path}  (try: embedkit recommend {args.name} {inter.user_keys[0]} -k 5)")
    return 0


def load_recommender(name: str, store):
    """The recommender saved as ``name`` (see :func:`embedkit.trainers.mf.load_recommender`)."""
    from ..trainers.mf import load_recommender as load

    return load(name, store)  # a missing or damaged model file is said as such by the store


def cmd_recommend(args) -> int:
    check_k(args.k)
    flt = parse_filter(args.filter)
    model = load_recommender(args.name, get_store(args))
    for user in args.users:
        if not model.has_user(user):
            raise unknown_user(args.name, user, model)
    recs = model.recommend_batch(args.users, k=args.k, exclude_seen=not args.include_seen, filter=flt)
    if args.json:
        out(json.dumps({u: [[i, s] for i, s in r] for u, r in zip(args.users, recs)}))
        return 0
    for user, items in zip(args.users, recs):
        out(user)
        for item, score in items:
            out(f"  {item}\t{score:.4f}")
    return 0


def unknown_user(name: str, user: str, model):
    """The CLI's MissingKeyError for a user the saved model does not know: a close match, a few
    users it knows, and how a new user gets recommendations from the shell."""
    from ..embeddings import close_matches
    from ..errors import MissingKeyError
    from ..trainers.mf import HybridMF

    keys = list(model._user_keys)
    close = close_matches(user, keys, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
    if isinstance(model, HybridMF):
        how = (f"a new user with features: 'embedkit cold-start {name} --users USERS.csv'; with interactions: add "
               f"them to the training CSV and rerun 'embedkit train mf ... --name {name} --force'")
    else:
        how = (f"a new user: add their interactions to the training CSV and rerun 'embedkit train mf ... --name {name} "
               "--force' (or, in Python, model.fold_in(user, items) without retraining)")
    return MissingKeyError(f"unknown user {user!r} in index {name!r} ({len(keys)} users: {shown}); {hint}{how}")


def cmd_cold_start(args) -> int:
    from ..trainers.mf import HybridMF

    if args.items is None and args.users is None:
        raise InputError("cold-start needs --items ITEMS.csv and/or --users USERS.csv (features of the new ids)")
    paths = {who: existing_file(path) for who, path in (("items", args.items), ("users", args.users)) if path}
    store = get_store(args)
    model = load_recommender(args.name, store)
    if not isinstance(model, HybridMF):
        raise InputError(f"index {args.name!r} holds a {type(model).__name__}: cold start needs a HybridMF, trained with "
                         "'embedkit train mf ... --item-features ITEMS.csv' (or --user-features)")
    manifest = store.info(args.name)
    added = {"items": [], "users": []}
    if "items" in paths:
        added["items"] = model.add_items(paths["items"])
    if "users" in paths:
        added["users"] = model.add_users(paths["users"])
    keep = {k: v for k, v in (manifest.get("meta") or {}).items() if k == "tuned"}
    path = model.to_store(args.name, store, metric=manifest.get("metric"), kind=manifest.get("kind") or "auto",
                          overwrite=True, meta=keep or None)
    if args.json:
        out(json.dumps(added))
        return 0
    for who, keys in added.items():
        if keys:
            shown = ", ".join(keys[:5]) + (f", ... ({len(keys)} in all)" if len(keys) > 5 else "")
            out(f"added {len(keys)} {who} from their features: {shown}")
    out(f"saved to {path}  (try: embedkit recommend {args.name} USER --filter '{{\"$key\": {{\"$in\": [...]}}}}')")
    return 0


def parse_filter(text):
    """The --filter JSON (None when not given); one-line InputError for bad JSON."""
    if text is None:
        return None
    from ..index._filter import parse_filter_text

    value = parse_filter_text(text, "--filter", hint="; e.g. --filter '{\"$key\": {\"$nin\": [\"i1\"]}}'")
    if not isinstance(value, dict):
        raise InputError(f"--filter must be a JSON object, e.g. '{{\"genre\": \"drama\"}}'; got {text!r}")
    return value


def cmd_tune(args) -> int:
    from ..evaluate.selection import grid_search
    from ..trainers.mf import MatrixFactorization

    check_k(args.k)
    _check_metric(args)
    if args.feedback == "explicit" and args.value is None:
        raise InputError("--feedback explicit needs the rating column: --value COLUMN")
    try:
        grid = json.loads(args.grid)
    except ValueError as exc:
        raise InputError(f"--grid: not valid JSON ({exc}); e.g. --grid '{{\"dim\": [32, 64]}}'") from None
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise InputError('--grid must be a JSON object of non-empty lists, e.g. \'{"dim": [32, 64], "reg": [0.01, 0.1]}\'')
    base = MatrixFactorization(feedback=args.feedback, method=args.method, dim=args.dim, epochs=args.epochs,
                               seed=args.seed, device=args.device)
    unknown = sorted(set(grid) - set(base.get_params()))
    if unknown:
        raise InputError(f"--grid names unknown parameters {unknown}; valid: {', '.join(sorted(base.get_params()))}")
    refuse_existing(get_store(args), args.name, args.force)
    inter = read_interactions(args, args.interactions)
    result = grid_search(base, grid, inter, folds=args.folds, k=args.k, metric=args.tune_metric, seed=args.seed)
    path = save_trained(args, result.model, metric="ip", meta={"tuned": result.to_meta()})
    if args.json:
        out(json.dumps({"best": result.params, "metric": result.metric, "score": result.score, "path": str(path),
                        "results": result.to_meta()["results"]}))
        return 0
    out(result.to_markdown())
    out(f"saved the winner, refitted on all {inter.nnz} interactions, to {path} (manifest meta 'tuned')")
    return 0


def cmd_eval(args) -> int:
    from ..evaluate.ranking import ranking_metrics, rmse

    check_k(args.k)
    model = load_recommender(args.name, get_store(args))
    args.feedback = (getattr(model, "params_", None) or {}).get("feedback", "implicit")
    test = read_interactions(args, args.test)
    scores = ranking_metrics(model, test, k=args.k)
    result = {f"{m}@{args.k}": v for m, v in scores.items()}
    if args.feedback == "explicit":
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
