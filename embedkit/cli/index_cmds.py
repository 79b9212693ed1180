"""CLI verbs over saved indexes: index build, index tune, index push (to Milvus), query, list, info."""

from __future__ import annotations

import json
from pathlib import Path

from .._files import text_lines
from .._knn import METRICS
from ..errors import InputError, ParseError, StoreError
from .common import add_store_option, check_k, existing_file, get_store, ignored_option, out, refuse_existing


def register(groups) -> None:
    index = groups.top.add_parser("index", help="build an index from a vectors file").add_subparsers(
        dest="index_command", metavar="ACTION")
    build = index.add_parser("build", help="index a word2vec text/binary file or an .npz of keys + vectors")
    build.add_argument("vectors", metavar="VECTORS", help="word2vec .txt/.vec, word2vec .bin, or .npz (keys, vectors)")
    build.add_argument("--name", required=True, help="name of the index in the store")
    build.add_argument("--metric", default="cosine", choices=list(METRICS))
    build.add_argument("--kind", default="auto", type=kind_argument,
                       help="flat|hnsw|ivf|ivfpq|auto or a FAISS factory string (default: auto)")
    build.add_argument("--binary", action="store_true", help="the word2vec file is binary (default: by extension .bin)")
    build.add_argument("--force", action="store_true", help="replace an existing index of that name")
    build.add_argument("--payload", metavar="FILE",
                       help="item payloads: a .csv (a 'key' column, else the first column, names the item; other "
                            "columns are fields) or a .jsonl (one object per line with a \"key\" field)")
    add_store_option(build)
    build.set_defaults(func=cmd_index_build)

    tune = index.add_parser("tune", help="set ef_search/nprobe to the cheapest value reaching a target recall")
    tune.add_argument("name", metavar="NAME")
    tune.add_argument("--recall", type=float, default=0.95, help="target recall@k against exact search (default: 0.95)")
    tune.add_argument("-k", type=int, default=10, help="k of recall@k (default: 10)")
    tune.add_argument("--sample", type=int, default=200, help="stored items used as queries (default: 200)")
    tune.add_argument("--json", action="store_true", help="print the report as JSON")
    add_store_option(tune)
    tune.set_defaults(func=cmd_index_tune)

    push = index.add_parser("push", help="copy a stored index (vectors, keys, payloads) into Milvus",
                            description="Copy a stored index into a Milvus collection (created when missing). "
                                        "Idempotent: pushing again upserts every item and removes the collection's "
                                        "items that the stored index no longer has.")
    push.add_argument("name", metavar="NAME")
    push.add_argument("--to", required=True, metavar="URI",
                      help="a local file ending in .db (embedded milvus-lite) or http://host:19530 (a Milvus server)")
    push.add_argument("--collection", default=None,
                      help="Milvus collection (default: NAME with characters other than letters, digits and '_' as '_')")
    push.add_argument("--kind", default="auto", choices=["auto", "flat", "ivf", "hnsw", "ivfpq"],
                      help="Milvus index: auto = FLAT on milvus-lite, HNSW on a server (default: auto)")
    push.add_argument("--batch", type=int, default=5000, help="items per request (default: 5000)")
    add_store_option(push)
    push.set_defaults(func=cmd_index_push)

    query = groups.top.add_parser("query", help="nearest neighbours of stored keys")
    query.add_argument("name", metavar="NAME")
    query.add_argument("keys", metavar="KEY", nargs="+")
    query.add_argument("-k", type=int, default=10, help="neighbours per key (default: 10)")
    query.add_argument("--minus", metavar="KEY", nargs="+", default=None,
                       help="analogy: items like the KEYs and unlike these (king woman --minus man)")
    query.add_argument("--mul", action="store_true",
                       help="with --minus: score by 3CosMul instead of 3CosAdd; with several KEYs alone: one "
                            "3CosMul query of them all")
    query.add_argument("--filter", metavar="JSON", default=None,
                       help='only items whose payload matches, e.g. \'{"category": "shoes", "price": {"$lt": 50}}\'')
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


def kind_argument(text: str) -> str:
    """argparse ``type=`` of ``--kind``: a typo ("hnws") is a usage error before any file is read."""
    import argparse

    from ..index._factory import check_kind

    try:
        return check_kind(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def load_vectors_file(path: str, binary: bool = False):
    """Embeddings from a word2vec text/binary file or an .npz written by Embeddings.save."""
    from ..embeddings import Embeddings

    p = existing_file(path)
    if p.suffix == ".npz":
        return Embeddings.load(p)
    return Embeddings.load_word2vec_format(p, binary=binary or p.suffix == ".bin")


def read_payload_file(path: str) -> dict:
    """{key: payload dict} from a .csv or .jsonl file (see ``index build --payload``)."""
    p = existing_file(path)
    rows: dict = {}
    if p.suffix.lower() in (".jsonl", ".ndjson"):
        for line_no, line in text_lines(p, "a .jsonl payload file, one JSON object per line"):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise ParseError(p, line_no, f"not valid JSON ({exc})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
                raise ParseError(p, line_no, 'expected an object with a string "key" field')
            key = obj.pop("key")
            if key in rows:
                raise ParseError(p, line_no, f"key {key!r} appears twice")
            rows[key] = obj
        return rows
    if p.suffix.lower() != ".csv":
        raise InputError(f"{path}: --payload takes a .csv or .jsonl file")
    import csv

    import pandas as pd

    with open(p, encoding="utf-8-sig", newline="") as fh:  # (-sig: a byte-order mark is no part of the first name)
        header = next(csv.reader(fh), None)
    if not header:
        raise InputError(f"{path}: empty CSV file; the first line must name the columns")
    keycol = "key" if "key" in header else header[0]
    try:
        df = pd.read_csv(p, converters={keycol: str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read CSV ({' '.join(str(exc).split())})") from None
    keys = df.pop(keycol).tolist()
    from ..index._payload import from_frame

    for line_no, (key, obj) in enumerate(zip(keys, from_frame(df)), 2):
        if key in rows:
            raise ParseError(p, line_no, f"key {key!r} appears twice")
        rows[key] = obj
    return rows


def cmd_index_build(args) -> int:
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    payload_rows = read_payload_file(args.payload) if args.payload else None
    emb = load_vectors_file(args.vectors, args.binary)
    payload = None
    if payload_rows is not None:
        unknown = [k for k in payload_rows if k not in emb]
        if unknown:
            raise InputError(f"{args.payload}: key {unknown[0]!r} is not in {args.vectors} "
                             f"({len(unknown)} payload keys are not)")
        payload = [payload_rows.get(k) for k in emb.keys]
    from ..index import VectorIndex

    index = VectorIndex(emb.dim, metric=args.metric, kind=args.kind)
    index.add(emb.keys, emb.vectors, payload=payload, show_progress=True)
    path = store.save(args.name, index, meta={"source": str(Path(args.vectors).name), "trainer": None},
                      overwrite=True)
    extra = f", payload fields: {', '.join(index.payload_fields)}" if payload is not None else ""
    out(f"indexed {len(index)} vectors of dim {index.dim} ({index.metric}, {index.kind}) into {path}{extra}")
    return 0


def cmd_index_tune(args) -> int:
    check_k(args.k)
    store = get_store(args)
    index = store.load(args.name)
    report = index.tune(target_recall=args.recall, k=args.k, sample=args.sample)
    if report["knob"] is not None:
        store.save(args.name, index, meta=index.meta, overwrite=True)
    if args.json:
        out(json.dumps(report))
        return 0
    if report["knob"] is None:
        out(f"{args.name}: {report.get('note', 'nothing to tune')}")
        return 0
    tried = " ".join(f"{v}:{r:.3f}" for v, r in report["tried"])
    verdict = "reached" if report["reached"] else "NOT reached (largest value kept)"
    out(f"{args.name}: {report['knob']}={report['value']} gives recall@{report['k']} {report['recall']:.3f} "
        f"(target {args.recall} {verdict}; was {report['previous']})")
    out(f"  tried {tried}")
    return 0 if report["reached"] else 1


def cmd_index_push(args) -> int:
    from ..index._milvus_push import push

    if args.batch < 1:
        raise InputError(f"--batch must be >= 1; got {args.batch}")
    index = get_store(args).load(args.name)
    report = push(index, args.to, collection=args.collection, name=args.name, kind=args.kind, batch=args.batch,
                  show_progress=True)
    out(f"pushed {report['pushed']} items of {args.name!r} to collection {report['collection']!r} at {args.to} "
        f"({report['removed']} stale items removed; {report['count']} items there now)")
    return 0


def cmd_query(args) -> int:
    check_k(args.k)
    index = get_store(args).load(args.name)
    flt = None
    if args.filter is not None:
        from ..index import compile_filter

        flt = compile_filter(args.filter)
    missing = [k for k in args.keys + (args.minus or []) if k not in index]
    if missing:
        from ..embeddings import close_matches

        close = close_matches(missing[0], index.keys)
        hint = "; did you mean " + " or ".join(repr(c) for c in close) + "?" if close else ""
        raise InputError(f"key {missing[0]!r} is not in index {args.name!r} ({len(index)} items){hint}")
    if args.mul and args.minus is None and len(args.keys) == 1:  # 3CosMul of one key ranks as a plain search
        ignored_option("--mul combines several KEYs (3CosMul) or applies with --minus KEY; with one KEY it ranks "
                       "like a plain search: ignored")
        args.mul = False
    if args.minus is not None or args.mul:  # an analogy, or one 3CosMul query of several KEYs
        res = index.search_examples(positive=args.keys, negative=args.minus or [], k=args.k, filter=flt,
                                    method="mul" if args.mul else "add")
        label = " ".join(args.keys) + (" - " + " ".join(args.minus) if args.minus else "")
        queries = [label]
    else:
        res = index.search_keys(args.keys, k=args.k, filter=flt)
        queries = args.keys
    if args.json:
        out(json.dumps({key: [[n, float(s)] for n, s in zip(ks, ss)] for key, ks, ss in zip(queries, res.keys, res.scores)}))
        return 0
    label = "distance" if index.metric == "l2" else "score"
    for key, ks, ss in zip(queries, res.keys, res.scores):
        out(f"{key}")
        for n, s in zip(ks, ss):
            out(f"  {n:<30} {label} {s:.4f}")
    return 0


def cmd_list(args) -> int:
    store = get_store(args)
    store.check_folder()  # a file given as --store: said as such, not as a missing folder
    entries = store.entries()  # one damaged index is listed with its reason, never fails the list
    if not entries:
        where = "" if store.root.is_dir() else " (the folder does not exist)"
        out(f"no indexes in {store.root.resolve()}{where}")
        return 0
    out(f"{'NAME':<24} {'COUNT':>9} {'DIM':>5} {'METRIC':<7} {'KIND':<8} TRAINER")
    for entry in entries:
        name, m = entry["name"], entry["manifest"]
        if entry["damaged"]:
            out(f"{name:<24} damaged: {entry['error']}")
            continue
        trainer = (m.get("meta") or {}).get("trainer") or "-"
        out(f"{name:<24} {m['count']:>9} {m['dim']:>5} {m['metric']:<7} {m['kind']:<8} {trainer}")
    return 0


def cmd_info(args) -> int:
    store = get_store(args)
    try:  # the manifest, after checking the files it lists: there, with their recorded sizes
        m, damaged = store.check(args.name), None
    except StoreError as exc:
        m, damaged = store.info(args.name), " ".join(str(exc).split())
    if args.json:
        out(json.dumps(m if damaged is None else {**m, "damaged": damaged}, indent=1))
    else:
        _print_info(args.name, m)
    if damaged is not None:  # the manifest above, then the reason: one line, and a failing exit status
        raise StoreError(damaged)
    return 0


def _print_info(name: str, m: dict) -> None:
    meta = m.get("meta") or {}
    out(f"name:     {name}")
    out(f"count:    {m['count']}  dim: {m['dim']}  metric: {m['metric']}  kind: {m['kind']}")
    out(f"created:  {m['created']}  format: {m['format_version']}  embedkit {m['embedkit_version']}")
    out(f"knobs:    {json.dumps(m.get('knobs', {}))}")
    if meta.get("trainer"):
        out(f"trainer:  {meta['trainer']} {json.dumps(meta.get('params', {}))}")
    from ..index._persist import meta_losses

    losses = meta_losses(meta)
    if losses:
        out(f"loss:     {' '.join(f'{x:.4g}' for x in losses)}")
    if m.get("extras"):
        out(f"extras:   {', '.join(m['extras'])}")
