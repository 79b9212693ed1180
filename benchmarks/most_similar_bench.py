"""Exact neighbours of one stored key: ``Embeddings.most_similar`` beside gensim's ``KeyedVectors.most_similar``.

Both search all n vectors exactly by cosine (the key itself excluded) and return the top k.
Prints microseconds per call (median of rounds) and the ratio against gensim, and checks that
both return the same neighbours.

    python benchmarks/most_similar_bench.py --sizes 2000,100000 --dim 64 --calls 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _data import clustered

import embedkit as ek


def per_call(fn, keys, rounds: int) -> float:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        for key in keys:
            fn(key)
        out.append((time.perf_counter() - t) / len(keys))
    return float(np.median(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="2000,100000")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()

    from gensim.models import KeyedVectors

    print("| n | embedkit us/call | gensim us/call | embedkit / gensim | same neighbours |")
    print("|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",") if s):
        x, _ = clustered(n, args.dim, seed=0)
        keys = [f"k{i}" for i in range(n)]
        emb = ek.Embeddings(keys, x)
        kv = KeyedVectors(args.dim)
        kv.add_vectors(keys, x)
        kv.fill_norms()
        probe = keys[: args.calls]
        same = np.mean([[k for k, _ in emb.most_similar(q, k=args.k)] == [k for k, _ in kv.most_similar(q, topn=args.k)]
                        for q in probe[:50]])
        ours = per_call(lambda q: emb.most_similar(q, k=args.k), probe, args.rounds)
        theirs = per_call(lambda q: kv.most_similar(q, topn=args.k), probe, args.rounds)
        print(f"| {n:,} | {ours * 1e6:,.0f} | {theirs * 1e6:,.0f} | {ours / theirs:.2f} | {same:.2f} |")


if __name__ == "__main__":
    main()
