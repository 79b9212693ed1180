"""`embedkit demo`: the whole story on bundled data, one step per trainer that is installed."""

from __future__ import annotations

import importlib
import os
import time

from .common import add_store_option, get_store, out

# Each area module may define demo(args): train on bundled data, write an index, print neighbours.
_DEMO_AREAS = ("word2vec", "node2vec", "mf", "encoders")


def register(groups) -> None:
    p = groups.top.add_parser("demo", help="train on bundled data, index under the store, print neighbours")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_store_option(p)
    p.set_defaults(func=cmd_demo, force=True, device="cpu", seed=0, metric="cosine", kind="auto")


def gensim_test_data(name: str) -> str:
    """Path of a file shipped inside gensim's test data (installed with gensim)."""
    import gensim

    return os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", name)


def cmd_demo(args) -> int:
    store = get_store(args)
    ran = 0
    for area in _DEMO_AREAS:
        module = importlib.import_module(f"embedkit.cli.{area}")
        demo = getattr(module, "demo", None)
        if demo is None:
            continue
        t0 = time.perf_counter()
        demo(args)
        out(f"[{area} demo done in {time.perf_counter() - t0:.1f}s]\n")
        ran += 1
    if not ran:
        _vectors_demo(args)
    out(f"indexes in {store.root}: {', '.join(store.names())}")
    out(f"query one yourself:  embedkit --store {store.root} query NAME KEY -k 5")
    out(f"serve them over HTTP: embedkit --store {store.root} serve")
    return 0


def _vectors_demo(args) -> None:
    """Index a small word2vec file that ships with gensim and print neighbours."""
    from ..embeddings import Embeddings

    emb = Embeddings.load_word2vec_format(gensim_test_data("crime-and-punishment.vec"))
    index = emb.to_index(metric="cosine")
    path = get_store(args).save("demo-vectors", index, meta={"source": "gensim crime-and-punishment.vec"},
                                overwrite=True)
    out(f"indexed {len(index)} word vectors (dim {index.dim}) into {path}")
    words = [w for w in ("the", "and", "he") if w in index]
    res = index.search_keys(words, k=5)
    for w, ks, ss in zip(words, res.keys, res.scores):
        out(f"{w}: " + ", ".join(f"{k} ({s:.2f})" for k, s in zip(ks, ss)))
