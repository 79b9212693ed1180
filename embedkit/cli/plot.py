"""`embedkit plot`: a 2-D map of a saved index coloured by label, or its training loss."""

from __future__ import annotations

from .._files import text_lines
from .common import add_store_option, existing_file, get_store, out


def register(groups) -> None:
    p = groups.top.add_parser(
        "plot", help="draw a 2-D map of an index (or its training loss) into an image",
        description="Draw a 2-D map of the vectors of a saved index, coloured by label, or with --loss the "
                    "per-epoch training loss saved by the trainer.")
    p.add_argument("name", metavar="NAME", help="index in the store")
    p.add_argument("--out", required=True, help="image to write: .png, .svg or .pdf")
    p.add_argument("--labels", default=None, help="file with 'KEY LABEL' per line (tab, comma or space separated)")
    p.add_argument("--method", default="pca", choices=["pca", "tsne"], help="projection (default: pca)")
    p.add_argument("--loss", action="store_true", help="draw the training loss per epoch instead of the map")
    p.add_argument("--max-points", type=int, default=5000,
                   help="draw a random sample of this many items from larger indexes (default: 5000; the "
                        "--label-keys points are always drawn)")
    p.add_argument("--label-keys", default=None, metavar="KEYS",
                   help="keys to write on the map and draw larger: 'k1,k2,...' or @FILE (one key per line)")
    p.add_argument("--label-top", type=int, default=30, metavar="N",
                   help="without --label-keys, write the first N keys of the index where they do not overlap "
                        "(Word2Vec indexes list words by frequency; default: 30, 0 for none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and of t-SNE (default: 0)")
    p.add_argument("--title", default=None, help="figure title (default: the index name)")
    add_store_option(p)
    p.set_defaults(func=cmd_plot)


def _label_keys(spec: str | None):
    from ..errors import InputError

    if spec is None:
        return None
    if spec.startswith("@"):
        path = existing_file(spec[1:])
        keys = [line.strip() for _, line in text_lines(path, "a text file of keys, one per line")
                if line.strip() and not line.lstrip().startswith("#")]
    else:
        keys = [k.strip() for k in spec.split(",") if k.strip()]
    if not keys:
        raise InputError(f"--label-keys {spec!r}: no keys given; write 'k1,k2' or @FILE with one key per line")
    return keys


def read_labels(path: str) -> dict:
    """The --labels file: :func:`embedkit.plot.read_labels` with ``strict=True`` (a key given two labels,
    as in a corpus or an edge list passed by mistake, is refused with file:line)."""
    from .. import plot

    return plot.read_labels(existing_file(path), strict=True)


def cmd_plot(args) -> int:
    from .. import plot
    from ..errors import InputError
    from .export import require_entry

    store = get_store(args)
    require_entry(store, args.name)
    if args.loss:
        if args.labels:
            raise InputError("--loss draws the loss curve; drop --labels (it colours the map)")
        manifest = store.info(args.name)
        meta = manifest.get("meta") or {}
        from ..index._persist import meta_losses

        history = meta_losses(meta)
        if not history:
            raise InputError(f"index {args.name!r} has no loss history in its manifest (it was not written by a "
                             "trainer, or the trainer saved none); train it with 'embedkit train ...'")
        trainer = meta.get("trainer")
        title = args.title or f"{args.name}: training loss" + (f" ({trainer})" if trainer else "")
        path = plot.plot_loss(history, args.out, title=title)
        epochs = "1 epoch" if len(history) == 1 else f"{len(history)} epochs"
        out(f"wrote the loss of {epochs} to {path}")
        return 0
    labels = read_labels(args.labels) if args.labels else None
    index = store.load(args.name)
    res = plot.plot_map(index.to_embeddings(), args.out, labels=labels, method=args.method,
                        title=args.title or args.name, max_points=args.max_points, seed=args.seed,
                        normalize=index.metric == "cosine", label_keys=_label_keys(args.label_keys),
                        label_top=args.label_top)
    shown = len(res["keys"])
    labelled = sum(lab != plot.UNLABELLED for lab in res["labels"]) if labels else 0
    extra = f", {labelled} labelled" if labels else ""
    extra += f", {len(res['annotated'])} keys written" if res["annotated"] else ""
    if res["explained_variance"]:
        extra += ", axes explain {:.1f}% and {:.1f}% of the variance".format(*(100 * v for v in res["explained_variance"]))
    out(f"wrote a {args.method} map of {shown} items{extra} to {res['path']}")
    return 0
