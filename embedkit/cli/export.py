"""`embedkit export` and `embedkit rm`: take a saved index's vectors (or model) out of the store, or delete it.

Formats of ``export NAME --format F --out FILE``:

* ``word2vec``: the word2vec text format (``COUNT DIM`` then ``KEY v1 v2 ...``), read by gensim's
  ``KeyedVectors.load_word2vec_format`` and by ``embedkit index build``; ``--binary`` for the binary one.
* ``npz``: keys and vectors as ``Embeddings.save`` writes them (``ek.Embeddings.load``, ``embedkit index build``).
* ``csv``: a header ``key,d0,d1,...`` and one row per key (keys quoted where they hold commas or quotes).
* ``model``: the trained model that ``model.save(NAME)`` or ``embedkit train`` stored beside the
  vectors, as one ``.npz`` file that ``ek.<Trainer>.load(FILE)`` reads.

The vectors are those the index holds: for an MF index the item factors (what recommend searches).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import InputError
from .common import add_store_option, get_store, ignored_option, out

FORMATS = ("word2vec", "npz", "csv", "model")
_SUFFIX = {"word2vec": (".txt", ".vec", ".bin"), "npz": (".npz",), "csv": (".csv",), "model": (".npz",)}


def register(groups) -> None:
    p = groups.top.add_parser(
        "export", help="write a saved index's vectors (or its model) to a word2vec, npz or csv file",
        description="Write the vectors of a saved index to a file other tools read: word2vec text/binary "
                    "(gensim), npz (embedkit), csv; or with --format model the trained model beside them "
                    "(loaded back with ek.<Trainer>.load(FILE)).")
    p.add_argument("name", metavar="NAME", help="index in the store (see 'embedkit list')")
    p.add_argument("--format", default=None, choices=FORMATS,
                   help="word2vec | npz | csv | model (default: from the --out suffix: .txt/.vec/.bin word2vec, "
                        ".npz npz, .csv csv)")
    p.add_argument("--out", "--output", dest="out", required=True, help="file to write")
    p.add_argument("--binary", action="store_true", help="word2vec binary format (default for a .bin file)")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")
    add_store_option(p)
    p.set_defaults(func=cmd_export)

    rm = groups.top.add_parser("rm", help="delete saved indexes from the store",
                               description="Delete saved indexes (vectors, model and journal) from the store, or the "
                                           "folder of an index whose manifest.json was deleted (listed as damaged).")
    rm.add_argument("names", metavar="NAME", nargs="+", help="index to delete (see 'embedkit list')")
    add_store_option(rm)
    rm.set_defaults(func=cmd_rm)


def require_entry(store, name: str) -> None:
    """InputError naming the store's absolute path (and whether that folder exists) when ``name`` is not in it."""
    from ..store import check_name

    check_name(name)
    if store.exists(name):
        return
    raise InputError(store.missing_message(name))


def _format_of(args) -> str:
    if args.format:
        return args.format
    suffix = Path(args.out).suffix.lower()
    for fmt in ("word2vec", "npz", "csv"):
        if suffix in _SUFFIX[fmt]:
            return fmt
    raise InputError(f"--out {args.out}: cannot tell the format from {suffix or 'no suffix'}; pass --format "
                     f"{'|'.join(FORMATS)}")


def _check_out(path: Path, force: bool) -> Path:
    if path.is_dir():
        raise InputError(f"--out {path}: is a directory; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"--out {path}: the folder {path.parent.resolve()} does not exist")
    if path.exists() and not force:
        raise InputError(f"--out {path}: the file exists; pass --force to replace it")
    return path


def _csv_bytes(emb) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["key", *(f"d{j}" for j in range(emb.dim))])
    for key, row in zip(emb.keys, emb.vectors.tolist()):
        w.writerow([key, *(repr(float(x)) for x in row)])
    return buf.getvalue().encode("utf-8")


def cmd_export(args) -> int:
    import numpy as np

    from .._io import atomic_write_bytes

    fmt = _format_of(args)
    if args.binary and fmt != "word2vec":
        ignored_option(f"--binary applies to --format word2vec only; ignored for --format {fmt}")
    path = _check_out(Path(args.out), args.force)
    store = get_store(args)
    require_entry(store, args.name)
    if fmt == "model":
        info = store.info(args.name)
        if "model" not in (info.get("extras") or []):
            raise InputError(f"index {args.name!r} holds vectors only, no trained model (it was built from a "
                             "vectors file); export its vectors with --format word2vec|npz|csv")
        arrays = store.load_extra(args.name, "model")  # a missing or damaged file: the store's line says so
        trainer = (info.get("meta") or {}).get("trainer") or "the trainer"
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        atomic_write_bytes(path, buf.getvalue())
        out(f"wrote the {trainer} model of {args.name!r} to {path} (load it with ek.{trainer}.load({str(path)!r}))")
        return 0
    emb = store.load(args.name).to_embeddings()
    if fmt == "word2vec":
        bad = next((k for k in emb.keys if not k or any(c.isspace() for c in k)), None)
        if bad is not None:
            raise InputError(f"key {bad!r} of index {args.name!r} is empty or holds whitespace, which the word2vec "
                             "format cannot store; export with --format npz (or --format csv) instead")
        emb.save_word2vec_format(path, binary=args.binary or path.suffix.lower() == ".bin")
    elif fmt == "npz":
        emb.save(path)
    else:
        atomic_write_bytes(path, _csv_bytes(emb))
    out(f"wrote {len(emb)} vectors of dim {emb.dim} from {args.name!r} to {path} ({fmt})")
    return 0


def cmd_rm(args) -> int:
    store = get_store(args)
    for name in args.names:  # check them all first: nothing deleted when one name is wrong
        if not store.unfinished(name):  # an index folder whose manifest was deleted is removed too
            require_entry(store, name)
    for name in dict.fromkeys(args.names):
        store.delete(name)
        out(f"removed {name!r} from the store {store.root.resolve()}")
    return 0
