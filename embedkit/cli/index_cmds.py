"""CLI verbs over saved indexes: index build, query, list, info."""

from __future__ import annotations

import json
from pathlib import Path

from .._knn import METRICS
from ..errors import InputError
from .common import add_store_option, check_k, existing_file, get_store, out, refuse_existing


def register(groups) -> None:
    index = groups.top.add_parser("index", help="build an index from a vectors file").add_subparsers(
        dest="index_command", metavar="ACTION")
    build = index.add_parser("build", help="index a word2vec text/binary file or an .npz of keys + vectors")
    build.add_argument("vectors", metavar="VECTORS", help="word2vec .txt/.vec, word2vec .bin, or .npz (keys, vectors)")
    build.add_argument("--name", required=True, help="name of the index in the store")
    build.add_argument("--metric", default="cosine", choices=list(METRICS))
    build.add_argument("--kind", default="auto", help="flat|hnsw|ivf|ivfpq|auto or a FAISS factory string")
    build.add_argument("--binary", action="store_true", help="the word2vec file is binary (default: by extension .bin)")
    build.add_argument("--force", action="store_true", help="replace an existing index of that name")
    add_store_option(build)
    build.set_defaults(func=cmd_index_build)

    query = groups.top.add_parser("query", help="nearest neighbours of stored keys")
    query.add_argument("name", metavar="NAME")
    query.add_argument("keys", metavar="KEY", nargs="+")
    query.add_argument("-k", type=int, default=10, help="neighbours per key (default: 10)")
    query.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_store_option(query)
    query.set_defaults(func=cmd_query)

    lst = groups.top.add_parser("list", help="list saved indexes")
    add_store_option(lst)
    lst.set_defaults(func=cmd_list)

    info = groups.top.add_parser("info", help="show the manifest of a saved index")
    info.add_argument("name", metavar="NAME")
    info.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    add_store_option(info)
    info.set_defaults(func=cmd_info)


def load_vectors_file(path: str, binary: bool = False):
    """Embeddings from a word2vec text/binary file or an .npz written by Embeddings.save."""
    from ..embeddings import Embeddings

    p = existing_file(path)
    if p.suffix == ".npz":
        return Embeddings.load(p)
    return Embeddings.load_word2vec_format(p, binary=binary or p.suffix == ".bin")


def cmd_index_build(args) -> int:
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    emb = load_vectors_file(args.vectors, args.binary)
    index = emb.to_index(metric=args.metric, kind=args.kind, show_progress=True)
    path = store.save(args.name, index, meta={"source": str(Path(args.vectors).name), "trainer": None},
                      overwrite=True)
    out(f"indexed {len(index)} vectors of dim {index.dim} ({index.metric}, {index.kind}) into {path}")
    return 0


def cmd_query(args) -> int:
    check_k(args.k)
    index = get_store(args).load(args.name)
    missing = [k for k in args.keys if k not in index]
    if missing:
        raise InputError(f"key {missing[0]!r} is not in index {args.name!r} ({len(index)} items)")
    res = index.search_keys(args.keys, k=args.k)
    if args.json:
        out(json.dumps({key: [[n, float(s)] for n, s in zip(ks, ss)] for key, ks, ss in zip(args.keys, res.keys, res.scores)}))
        return 0
    label = "distance" if index.metric == "l2" else "score"
    for key, ks, ss in zip(args.keys, res.keys, res.scores):
        out(f"{key}")
        for n, s in zip(ks, ss):
            out(f"  {n:<30} {label} {s:.4f}")
    return 0


def cmd_list(args) -> int:
    store = get_store(args)
    names = store.names()
    if not names:
        out(f"no indexes in {store.root}")
        return 0
    out(f"{'NAME':<24} {'COUNT':>9} {'DIM':>5} {'METRIC':<7} {'KIND':<8} TRAINER")
    for name in names:
        try:
            m = store.info(name)
        except Exception as exc:  # one damaged entry must not hide the others
            out(f"{name:<24} damaged: {exc}")
            continue
        trainer = (m.get("meta") or {}).get("trainer") or "-"
        out(f"{name:<24} {m['count']:>9} {m['dim']:>5} {m['metric']:<7} {m['kind']:<8} {trainer}")
    return 0


def cmd_info(args) -> int:
    m = get_store(args).info(args.name)
    if args.json:
        out(json.dumps(m, indent=1))
        return 0
    meta = m.get("meta") or {}
    out(f"name:     {args.name}")
    out(f"count:    {m['count']}  dim: {m['dim']}  metric: {m['metric']}  kind: {m['kind']}")
    out(f"created:  {m['created']}  format: {m['format_version']}  embedkit {m['embedkit_version']}")
    out(f"knobs:    {json.dumps(m.get('knobs', {}))}")
    if meta.get("trainer"):
        out(f"trainer:  {meta['trainer']} {json.dumps(meta.get('params', {}))}")
    losses = meta.get("loss_history") or []
    if losses:
        out(f"loss:     {' '.join(f'{x:.4g}' for x in losses)}")
    if m.get("extras"):
        out(f"extras:   {', '.join(m['extras'])}")
    return 0
