"""``embedkit train siamese`` and ``embedkit train autoencoder``: feature tables -> encoder -> index,
and the encoders' part of ``embedkit demo``.

Training saves through :func:`save_trained` (``Trainer.to_store``): the encoder's weights, scaler
and config go beside the index as the extra "model" (plain arrays, no pickle), so
``SiameseEncoder.from_store(name)`` or ``SiameseEncoder.from_arrays(store.load_extra(name, "model"))``
rebuilds it; ``embedkit query NAME KEY`` searches the latent vectors like any other index. The
autoencoder also stores its training rows' reconstruction errors as the extra "anomaly_scores".
"""

from __future__ import annotations

import argparse

import numpy as np

from .._files import text_lines
from ..errors import InputError, ParseError
from .common import add_train_options, existing_file, get_store, out, refuse_existing, save_trained


def _hidden(text: str) -> tuple[int, ...] | str:
    """'256,128' -> (256, 128); '' -> () (a single linear layer); 'auto' -> 'auto' (the model's choice)."""
    if text.strip() == "auto":
        return "auto"
    try:
        widths = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer widths like 256,128; got {text!r}") from None
    if any(w < 1 for w in widths):
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1; got {text!r}")
    return widths


def _share(text: str) -> float | str:
    """'auto' or a float in [0, 1) (the model checks the range)."""
    if text.strip() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number like 0.5; got {text!r}") from None


def _top(text: str) -> int:
    """``--top``: a whole number >= 0 (0 prints no rows)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows >= 0; got {text!r}") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 (0 prints no rows); got {n}")
    return n


def _add_table_options(p: argparse.ArgumentParser, hidden: str, batch_size: int) -> None:
    p.add_argument("features", metavar="FEATURES", help="feature table: .npy, .npz (X, optional y, keys) or CSV")
    p.add_argument("--key-column", default=None,
                   help="CSV column (name or 0-based position) holding row keys (default: row numbers 0..n-1)")
    p.add_argument("--hidden", type=_hidden, default=_hidden(hidden), help=f"hidden layer widths (default: {hidden})")
    p.add_argument("--batch-size", type=int, default=batch_size, help=f"rows per step (default: {batch_size})")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default: 0.001)")
    p.add_argument("--no-standardize", action="store_true", help="feed raw features (default: per-column z-scores)")


def register(groups) -> None:
    """Add ``train siamese`` and ``train autoencoder``."""
    p = groups.train.add_parser(
        "siamese", help="learn a metric space for feature rows from class labels or pairs",
        description="Train a Siamese encoder on a feature table and index the training rows' vectors. "
                    "Labels come from --labels FILE (one per line or .npy), --label-column COL (CSV), "
                    "a 'y' array in an .npz, or --pairs FILE (lines 'i,j,similar' with row numbers or keys).")
    _add_table_options(p, "auto", 256)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--labels", default=None, help="file with one class label per feature row (text or .npy)")
    src.add_argument("--label-column", default=None, help="CSV column (name or 0-based position) holding the class")
    src.add_argument("--pairs", default=None, help="CSV/whitespace file of 'i j similar' rows (0/1 similar)")
    p.add_argument("--loss", default="auto", choices=["auto", "contrastive", "triplet", "infonce"],
                   help="training loss (default: auto = InfoNCE with labels, contrastive with pairs)")
    p.add_argument("--margin", type=float, default=None, help="margin (default: 1.0 contrastive, 0.2 triplet)")
    p.add_argument("--temperature", type=float, default=0.1, help="InfoNCE temperature (default: 0.1)")
    p.add_argument("--miner", default="random", choices=["random", "hard", "semihard"],
                   help="in-batch mining of positives/negatives (default: random)")
    p.add_argument("--input-share", type=_share, default="auto",
                   help="auto (default: with labels a linear map started at PCA; else a PCA skip path beside the "
                        "MLP) or the share of the embedding kept as the input's principal components")
    p.add_argument("--no-early-stopping", action="store_true",
                   help="train all --epochs (default: the epochs are chosen by cross-validation over the classes)")
    p.add_argument("--self-supervised", default="contrastive", choices=["contrastive", "predictive"],
                   help="objective when no labels or pairs are given (default: contrastive, SCARF views)")
    add_train_options(p, epochs=20, dim=32)
    p.set_defaults(func=_train_siamese)

    p = groups.train.add_parser(
        "autoencoder", help="train an autoencoder on a feature table; index its latent codes",
        description="Train an autoencoder (undercomplete, denoising, sparse or VAE) and index the latent "
                    "codes of the training rows (latent means for the VAE). Prints the rows with the "
                    "highest reconstruction error.")
    _add_table_options(p, "128,64", 128)
    p.add_argument("--label-column", default=None, help="CSV column to leave out of the features (e.g. a class)")
    p.add_argument("--variant", default="undercomplete",
                   choices=["undercomplete", "denoising", "sparse", "vae", "linear"],
                   help="autoencoder variant (default: undercomplete; linear = the PCA-equivalent baseline)")
    p.add_argument("--dim", type=int, default=16, help="code size, at most half the features (default: 16)")
    p.add_argument("--loss", default="mse", choices=["mse", "bce"], help="reconstruction loss (default: mse)")
    p.add_argument("--score", default="auto",
                   choices=["auto", "ensemble", "combined", "reconstruction", "knn", "input_knn", "hybrid"],
                   help="anomaly score (default: auto = isolation forest + input-space k-NN distance, with latent "
                        "k-NN and a forest on the reconstruction residuals at a quarter weight each; ensemble = "
                        "latent + input-space k-NN; combined = reconstruction error + latent k-NN; hybrid = "
                        "isolation forests on the inputs and on the inputs beside their residuals + input k-NN)")
    p.add_argument("--n-neighbors", type=int, default=10, help="neighbours of the k-NN scores, latent and input (default: 10)")
    p.add_argument("--contamination", type=float, default=0.1,
                   help="expected share of anomalies; sets the threshold for the 0/1 labels (default: 0.1)")
    p.add_argument("--anomaly", metavar="FILE", default=None,
                   help="write every training row's anomaly score and 0/1 label to FILE (CSV: key,score,anomaly); "
                        "an existing FILE is replaced only with --force")
    p.add_argument("--noise", type=float, default=0.3, help="denoising: Gaussian noise std (default: 0.3)")
    p.add_argument("--sparsity", type=float, default=1e-3, help="sparse: L1 weight on the code (default: 0.001)")
    p.add_argument("--beta", type=float, default=1.0, help="vae: weight of the KL term (default: 1.0)")
    p.add_argument("--patience", type=int, default=None,
                   help="stop when the loss on the 10%% validation split has not improved for this many epochs "
                        "(default: run every epoch; the best epoch's weights are kept either way)")
    p.add_argument("--top", type=_top, default=5, help="how many most anomalous rows to print, 0 for none (default: 5)")
    add_train_options(p, epochs=50)
    p.set_defaults(func=_train_autoencoder)


def _read_table(args):
    from ..data.features import load_features

    path = existing_file(args.features)
    return load_features(path, label_column=getattr(args, "label_column", None), key_column=args.key_column)


def _read_pairs(path, keys: list[str]) -> np.ndarray:
    """Lines 'i j similar' (comma or whitespace separated); i and j are row numbers, or keys when rows have keys."""
    p = existing_file(path)
    by_key = {k: i for i, k in enumerate(keys)}
    rows = []
    for line_no, line in text_lines(p, "a pairs file of lines 'i j similar'"):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = [x.strip() for x in text.replace(",", " ").split()]
        if len(parts) != 3:
            raise ParseError(p, line_no, f"expected 'i j similar', got {len(parts)} fields")
        if parts[2] not in ("0", "1"):
            raise ParseError(p, line_no, f"similar must be 1 or 0, got {parts[2]!r}")
        ends = []
        for tok in parts[:2]:
            if tok not in by_key:
                raise ParseError(p, line_no, f"{tok!r} is not a row of the feature table; use row numbers "
                                             f"0..{len(keys) - 1}, or the keys of --key-column")
            ends.append(by_key[tok])
        rows.append((ends[0], ends[1], int(parts[2])))
    if not rows:
        raise ParseError(p, None, "no pairs found; expected lines 'i j similar'")
    return np.array(rows, dtype=np.int64)


def _train_siamese(args) -> int:
    from ..data.features import load_labels
    from ..trainers.encoders import SiameseEncoder

    refuse_existing(get_store(args), args.name, args.force)  # before anything is read or trained
    table = _read_table(args)
    y = pairs = None
    if args.pairs:
        pairs = _read_pairs(args.pairs, table.keys)
    elif args.labels:
        y = load_labels(existing_file(args.labels), n_rows=len(table.X))
    else:
        y = table.labels
    model = SiameseEncoder(dim=args.dim, loss=args.loss, margin=args.margin, temperature=args.temperature,
                           hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           miner=args.miner, standardize=not args.no_standardize, input_share=args.input_share,
                           early_stopping=not args.no_early_stopping, self_supervised=args.self_supervised,
                           seed=args.seed, device=args.device)
    emb = model.fit(table.X, y=y, pairs=pairs, keys=table.keys, show_progress=not args.no_progress)
    path = save_trained(args, model, meta=_meta(args, table))
    how = args.loss if (y is not None or pairs is not None) else f"self-supervised {args.self_supervised}"
    last = (f"final loss {model.loss_history_[-1]:.4f}" if model.loss_history_
            else "0 epochs chosen: the PCA start is kept")
    out(f"trained SiameseEncoder ({how}) on {len(emb)} rows x {table.X.shape[1]} features; {last}")
    out(f"saved {len(emb)} vectors of dim {emb.dim} as {args.name!r} in {path}")
    return 0


def _train_autoencoder(args) -> int:
    from ..trainers.encoders import AutoEncoder

    refuse_existing(get_store(args), args.name, args.force)  # before anything is read or trained
    if args.anomaly:  # before anything is read, trained or saved; only the process that will write checks
        from pathlib import Path

        from .._io import check_writable
        from ..distributed import is_main

        if is_main():  # (the rank comes from torchrun's environment before the group exists)
            check_writable(args.anomaly, "--anomaly")
            if Path(args.anomaly).exists() and not args.force:  # as 'export --out': never replaced silently
                raise InputError(f"--anomaly {args.anomaly}: the file exists; pass --force to replace it")
    table = _read_table(args)
    model = AutoEncoder(variant=args.variant, dim=args.dim, hidden=args.hidden, loss=args.loss, noise=args.noise,
                        sparsity=args.sparsity, beta=args.beta, patience=args.patience, score=args.score,
                        n_neighbors=args.n_neighbors, contamination=args.contamination, epochs=args.epochs,
                        batch_size=args.batch_size, lr=args.lr, standardize=not args.no_standardize, seed=args.seed,
                        device=args.device)
    emb = model.fit(table.X, keys=table.keys, show_progress=not args.no_progress)
    if args.anomaly:
        from ..distributed import main_writes

        # a distributed run: every rank holds the same model and scores, rank 0 alone writes (and the
        # save_trained inside runs directly there); one process: just writes
        path = main_writes(_save_with_scores, args, model, _meta(args, table), table.keys,
                           what=f"the store entry {args.name!r} and {args.anomaly}")
    else:
        path = save_trained(args, model, meta=_meta(args, table))  # with the extra "anomaly_scores"
    out(f"trained AutoEncoder ({args.variant}) on {len(emb)} rows x {table.X.shape[1]} features; "
        f"final loss {model.loss_history_[-1]:.4f}")
    out(f"saved {len(emb)} vectors of dim {emb.dim} as {args.name!r} in {path}")
    scores = model.decision_scores_
    top = np.argsort(-scores, kind="stable")[:args.top]
    if len(top):
        out(f"highest anomaly scores ({args.score}): " + ", ".join(f"{table.keys[i]} ({scores[i]:.3g})" for i in top))
    out(f"{int(model.labels_.sum())} of {len(scores)} rows above the threshold {model.threshold_:.4g} "
        f"(contamination {args.contamination})")
    if args.anomaly:
        out(f"wrote {len(scores)} anomaly scores to {args.anomaly}")
    return 0


def _save_with_scores(args, model, meta, keys):
    """Save the store entry and write the --anomaly CSV so that a failure leaves both as they were.

    Order: (1) the CSV is written in full and fsynced to a temporary file beside its target, which
    changes nothing visible, so an unwritable path or a full disk fails here, before the entry is
    touched; (2) the entry is saved (itself all or nothing); if that fails, the temporary file is
    dropped and the old CSV stays; (3) only then is the temporary file renamed over the CSV, a rename
    within one directory of a file already on disk, the one step that remains after the entry is
    replaced. The other orders are worse: writing the CSV first and saving second leaves a new CSV
    beside the old entry when the save fails, and saving first leaves a replaced entry when the CSV
    cannot be written (what --anomaly /proc/x.csv did), with no way to put the old entry back."""
    from .._io import commit_staged, discard_staged, stage_bytes

    staged = stage_bytes(args.anomaly, _scores_csv(keys, model.decision_scores_, model.labels_))
    try:
        path = save_trained(args, model, meta=meta)  # with the extra "anomaly_scores"
    except BaseException:
        discard_staged(staged)
        raise
    commit_staged(staged, args.anomaly)
    return path


def _scores_csv(keys, scores, labels) -> bytes:
    """CSV ``key,score,anomaly`` of every training row."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["key", "score", "anomaly"])
    for k, s, lab in zip(keys, scores, labels):
        writer.writerow([k, f"{float(s):.6g}", int(lab)])
    return buf.getvalue().encode()


def _meta(args, table) -> dict:
    return {"source": str(args.features), "n_features": int(table.X.shape[1]),
            "columns": table.columns[:1000], "model_extra": "model"}


# --------------------------------------------------------------------------- demo
def demo(args) -> None:
    """SiameseEncoder on scikit-learn's bundled 8x8 digits (no download): train on two thirds of
    the images, save the index "demo-digits", print neighbours and precision@1 of the held-out
    images against raw pixels; then an AutoEncoder trained on the 0s scores every digit."""
    from sklearn.datasets import load_digits

    from ..evaluate.anomaly import anomaly_auc
    from ..evaluate.encoders import precision_at_1
    from ..trainers.encoders import AutoEncoder, SiameseEncoder

    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    seed = getattr(args, "seed", 0)
    order = np.random.default_rng(seed).permutation(len(X))
    train, held = order[: 2 * len(X) // 3], order[2 * len(X) // 3:]
    keys = [f"img{i}:{d}" for i, d in enumerate(y)]
    quiet = getattr(args, "no_progress", False)

    model = SiameseEncoder(dim=16, hidden=(128,), loss="infonce", epochs=15, batch_size=128, standardize=False,
                           seed=seed, device="cpu")
    emb = model.fit(X[train], y[train], keys=[keys[i] for i in train], show_progress=not quiet)
    run = argparse.Namespace(**{**vars(args), "name": "demo-digits", "force": True})
    path = save_trained(run, model, meta={"source": "sklearn.datasets.load_digits", "rows": "train"},
                        metric="cosine", kind="flat")
    out(f"trained SiameseEncoder (InfoNCE) on {len(emb)} digit images (8x8 pixels); saved to {path}")
    index = emb.to_index(metric="cosine")
    for i in held[:3]:
        found = index.search(model.encode(X[i:i + 1]), k=4).keys[0]
        out(f"held-out {keys[i]} -> nearest training images: {', '.join(found)}")
    raw, learned = precision_at_1(X[held], y[held]), precision_at_1(model.encode(X[held]), y[held])
    out(f"precision@1 among {len(held)} held-out images: raw pixels {raw:.3f}, Siamese vectors {learned:.3f}")

    ae = AutoEncoder(dim=8, hidden=(32,), epochs=30, batch_size=32, standardize=False, seed=seed, device="cpu")
    zeros = train[y[train] == 0]
    ae.fit(X[zeros], show_progress=not quiet)
    auc = anomaly_auc(ae.anomaly_scores(X[held]), y[held] != 0)
    out(f"AutoEncoder trained on {len(zeros)} images of 0: ROC-AUC {auc:.3f} for 'not a 0' among the held-out images")
    out(f"from the shell: embedkit --store {get_store(args).root} query demo-digits {keys[train[0]]} -k 5")
