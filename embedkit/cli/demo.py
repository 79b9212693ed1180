"""`embedkit demo`: the whole story on bundled data, one step per trainer family."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

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
    root = store.root.resolve()
    flag = "" if store.root == Path("indexes") else f" --store {root}"  # the default store needs no flag
    out(f"indexes in the store {root}: {', '.join(store.names()) or 'none'}")
    out(f"query one yourself:   embedkit{flag} query NAME KEY -k 5")
    out(f"draw a map:           embedkit{flag} plot NAME --out map.png")
    out(f"serve them over HTTP: embedkit{flag} serve")
    return 0
