"""`embedkit demo`: the whole story on bundled data, one step per trainer family."""

from __future__ import annotations

import importlib
import time

from .common import add_store_option, get_store, out

# Each area module defines demo(args): train on bundled data, write an index, print neighbours.
_DEMO_AREAS = ("word2vec", "node2vec", "mf", "encoders")


def register(groups) -> None:
    p = groups.top.add_parser("demo", help="train on bundled data, index under the store, print neighbours")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_store_option(p)
    p.set_defaults(func=cmd_demo, force=True, device="cpu", seed=0, metric="cosine", kind="auto")


def cmd_demo(args) -> int:
    store = get_store(args)
    for area in _DEMO_AREAS:
        t0 = time.perf_counter()
        importlib.import_module(f"embedkit.cli.{area}").demo(args)
        out(f"[{area} demo done in {time.perf_counter() - t0:.1f}s]\n")
    out(f"indexes in {store.root}: {', '.join(store.names())}")
    out(f"query one yourself:  embedkit --store {store.root} query NAME KEY -k 5")
    out(f"serve them over HTTP: embedkit --store {store.root} serve")
    return 0
