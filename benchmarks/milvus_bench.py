"""VectorIndex on embedded Milvus (milvus-lite, the real engine) against the FAISS backend.

Insert rate, single and batched query latency, recall@10 against exact search, and the memory
of the milvus process per vector, for N random unit vectors of dimension D (cosine).

    EMBEDKIT_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/milvus_bench.py --n 100000 --dim 64

Prints one JSON line per configuration (and writes them to --out when given).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def rss_of_milvus(db: str) -> int | None:
    """Resident bytes of the milvus-lite process serving ``db`` (from /proc), or None."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = (Path("/proc") / pid / "cmdline").read_bytes().split(b"\0")
            if any(b"milvus_lite" in c for c in cmd) and any(db.encode() in c for c in cmd):
                for line in (Path("/proc") / pid / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            continue
    return None


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def measure(idx, X, Q, truth, k, batch):
    keys = [f"item-{i}" for i in range(len(X))]
    t = time.perf_counter()
    for i in range(0, len(X), batch):
        idx.add(keys[i:i + batch], X[i:i + batch])
    insert_s = time.perf_counter() - t
    if hasattr(idx, "flush"):
        idx.flush()
    idx.search(Q[:1], k=k)  # warm up (loads / seals on Milvus)
    t = time.perf_counter()
    found = []
    for q in Q:
        found.append(idx.search(q, k=k).keys[0])
    single_ms = (time.perf_counter() - t) / len(Q) * 1000
    t = time.perf_counter()
    res = idx.search(Q, k=k)
    batch_ms = (time.perf_counter() - t) / len(Q) * 1000
    ids = {f"item-{i}": i for i in range(len(X))}
    recall = np.mean([len({ids[x] for x in row} & set(t_row.tolist())) / k for row, t_row in zip(res.keys, truth)])
    same = np.mean([a == b for a, b in zip(found, res.keys)])
    return {"insert_rows_per_s": round(len(X) / insert_s, 1), "insert_s": round(insert_s, 2),
            "single_query_ms": round(single_ms, 3), "batched_query_ms": round(batch_ms, 3),
            f"recall@{k}": round(float(recall), 4), "single_equals_batched": float(same)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--batch", type=int, default=10_000, help="items per add() call")
    ap.add_argument("--skip", default="", help="comma-separated configs to skip: milvus_flat,milvus_ivf,faiss_flat,faiss_hnsw")
    ap.add_argument("--nlist", type=int, default=1024, help="milvus_ivf: IVF lists (default: 1024)")
    ap.add_argument("--nprobe", type=int, default=32, help="milvus_ivf: lists probed per query (default: 32)")
    ap.add_argument("--sweep-nprobe", default="", help="milvus_ivf: also report recall@k at these nprobe values, e.g. 1,8,64")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import embedkit as ek

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    Q = rng.standard_normal((args.queries, args.dim)).astype(np.float32)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    truth = np.argsort(-(Qn @ Xn.T), axis=1)[:, :args.k]
    skip = set(filter(None, args.skip.split(",")))
    lines = []
    tmp = Path(tempfile.mkdtemp(prefix="milvus_bench_"))
    for name, make in (
        ("faiss_flat", lambda: ek.VectorIndex(args.dim, "cosine", "flat")),
        ("faiss_hnsw", lambda: ek.VectorIndex(args.dim, "cosine", "hnsw")),
        ("milvus_flat", lambda: ek.VectorIndex(args.dim, "cosine", "flat", backend="milvus", uri=str(tmp / "flat.db"))),
        ("milvus_ivf", lambda: ek.VectorIndex(args.dim, "cosine", "ivf", backend="milvus", uri=str(tmp / "ivf.db"),
                                              nlist=args.nlist, nprobe=args.nprobe)),
    ):
        if name in skip:
            continue
        idx = make()
        db = getattr(idx, "uri", None)
        rss0 = rss_of_milvus(db) if db else None
        row = {"config": name, "n": args.n, "dim": args.dim, **measure(idx, X, Q, truth, args.k, args.batch)}
        if db:
            rss1 = rss_of_milvus(db)
            if rss0 is not None and rss1 is not None:
                row["milvus_rss_mb"] = round(rss1 / 2**20, 1)
                row["rss_bytes_per_vector"] = round((rss1 - rss0) / args.n, 1)
            p = Path(db)
            row["disk_bytes_per_vector"] = round((p.stat().st_size if p.is_file() else dir_bytes(p)) / args.n, 1)
            row["raw_vector_bytes"] = 4 * args.dim
        if name == "milvus_ivf" and args.sweep_nprobe:
            ids = {f"item-{i}": i for i in range(args.n)}
            row["recall_by_nprobe"] = {}
            for nprobe in map(int, args.sweep_nprobe.split(",")):
                idx.set_params(nprobe=nprobe)
                res = idx.search(Q, k=args.k)
                row["recall_by_nprobe"][nprobe] = round(float(np.mean(
                    [len({ids[x] for x in r} & set(t.tolist())) / args.k for r, t in zip(res.keys, truth)])), 4)
        print(json.dumps(row), flush=True)
        lines.append(row)
        if db:
            idx.drop()
    if args.out:
        Path(args.out).write_text("\n".join(json.dumps(r) for r in lines) + "\n")


if __name__ == "__main__":
    main()
