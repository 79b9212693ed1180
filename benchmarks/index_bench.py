"""VectorIndex against raw FAISS (wrapper overhead) and hnswlib (QPS at equal recall).

Sections (all on clustered synthetic data, cosine metric, see benchmarks/_data.py):

  overhead  VectorIndex.search vs the very FAISS structure it wraps, queried directly
            (flat and HNSW; one batch call and one-at-a-time calls). Both sides normalise the
            queries (cosine = normalise + inner product). Target: overhead <= 5%.
  recall    ef_search sweep of VectorIndex(kind="hnsw") and hnswlib (same M, ef_construction,
            threads): recall@10 against exact search and queries/s; QPS at recall 0.90 / 0.95.
  defaults  recall@10 of kinds hnsw, ivf, ivfpq at their default knobs (and a few larger knobs)
            against exact search, at every size of --default-sizes.
  build     build time and memory (RSS growth, peak RSS growth) of VectorIndex flat/hnsw, raw
            FAISS and hnswlib at --sizes, each in a fresh subprocess.
  filtered  payload-filtered search at selectivities --selectivities (0.1%..100%) for flat, hnsw
            (ef_search tuned to recall 0.95 unfiltered first, on 200 held-out queries) and ivf
            (nprobe tuned likewise): recall@10
            against exact search over the matching subset, batch and one-at-a-time queries/s,
            beside unfiltered search and hnswlib's filter callback (same M/ef_construction, ef
            from hnswlib's own 0.95 point) on the same data and the same filters.
  load      save + load time (mmap and in-memory) and RSS after load at --load-sizes, each load
            in a fresh subprocess; payload memory per item.

Timing: time.perf_counter, one warm-up pass, median of --repeats passes, wrapper and anchor
interleaved pass by pass so drift on a shared machine hits both alike.

    python benchmarks/index_bench.py                 # full run (long on 2 cores)
    python benchmarks/index_bench.py --quick         # small sizes, a couple of minutes
    python benchmarks/index_bench.py --sections overhead,recall --n 100000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from _data import clustered, exact_topk, normalised, recall_at_k  # noqa: E402

M, EF_CONSTRUCTION = 32, 80          # VectorIndex defaults, used for every HNSW here
EF_SWEEP = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]


# --------------------------------------------------------------------------- helpers
def timed_interleaved(funcs: dict, repeats: int) -> dict:
    """Warm each function once, then run them in turn ``repeats`` times; median seconds each."""
    for f in funcs.values():
        f()
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            t = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def keys_to_ids(keys_rows) -> np.ndarray:
    return np.array([[int(k) for k in row] for row in keys_rows], dtype=np.int64)


def table(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return str(x)


def build_vector_index(kind, x, keys, metric="cosine", **knobs):
    from embedkit.index import VectorIndex

    idx = VectorIndex(x.shape[1], metric, kind, **knobs)
    t = time.perf_counter()
    idx.add(keys, x)
    return idx, time.perf_counter() - t


def inner_faiss(idx):
    """The FAISS index VectorIndex searches, below its IndexIDMap2 wrapper if any."""
    import faiss

    f = idx._storage.faiss
    if isinstance(faiss.downcast_index(f), (faiss.IndexIDMap, faiss.IndexIDMap2)):
        f = faiss.downcast_index(faiss.downcast_index(f).index)
    return f


# --------------------------------------------------------------------------- overhead
def section_overhead(x, q, keys, args, cache):
    import faiss

    single_n = min(args.single_queries, len(q))
    rows = []
    for kind in ("flat", "hnsw"):
        idx, build_s = build_vector_index(kind, x, keys)
        cache[kind] = (idx, build_s)
        raw = inner_faiss(idx)
        xn = None
        k = args.k

        def ek_batch():
            return idx.search(q, k)

        def raw_batch():
            v = q.copy()
            faiss.normalize_L2(v)
            return raw.search(v, k)

        def ek_single():
            for i in range(single_n):
                idx.search(q[i], k)

        def raw_single():
            for i in range(single_n):
                v = q[i:i + 1].copy()
                faiss.normalize_L2(v)
                raw.search(v, k)

        ids = list(range(0, len(keys), max(1, len(keys) // single_n)))[:single_n]
        sel_keys = [keys[i] for i in ids]
        xn = normalised(x[ids])

        def ek_keys():
            for key in sel_keys:
                idx.search_keys(key, k)

        def raw_keys():
            for j, i in enumerate(ids):
                _, I = raw.search(xn[j:j + 1], k + 1)
                row = I[0]
                row = row[row != i][:k]

        # the answers agree before anything is timed
        D_ek = idx.search(q[:50], k)
        _, I_raw = raw_batch()
        agree = float(np.mean(keys_to_ids(D_ek.keys) == I_raw[:50]))

        t = timed_interleaved({"ek": ek_batch, "raw": raw_batch}, args.repeats)
        rows.append((kind, f"batch ({len(q)} queries/call)", len(q) / t["ek"], len(q) / t["raw"],
                     t["ek"] / t["raw"] - 1, agree))
        t = timed_interleaved({"ek": ek_single, "raw": raw_single}, args.repeats)
        rows.append((kind, "one at a time: search", single_n / t["ek"], single_n / t["raw"],
                     t["ek"] / t["raw"] - 1, None))
        t = timed_interleaved({"ek": ek_keys, "raw": raw_keys}, args.repeats)
        rows.append((kind, "one at a time: search_keys", single_n / t["ek"], single_n / t["raw"],
                     t["ek"] / t["raw"] - 1, None))
        print(f"  [{kind}] built in {build_s:.1f}s; measured", flush=True)
    print(f"\n### Wrapper overhead, {len(x):,} x {x.shape[1]}, cosine, k={args.k}, "
          f"FAISS threads={faiss.omp_get_max_threads()}\n")
    print(table(["kind", "queries", "VectorIndex q/s", "raw FAISS q/s", "overhead (time)", "same ids"],
                [(r[0], r[1], fmt(r[2]), fmt(r[3]), f"{r[4] * 100:+.1f}%", fmt(r[5], 3)) for r in rows]))
    return [dict(kind=r[0], mode=r[1], ek_qps=r[2], raw_qps=r[3], overhead=r[4]) for r in rows]


# --------------------------------------------------------------------------- recall vs hnswlib
def at_recall(points, target):
    """(first ef reaching target, its qps, qps interpolated in log space at exactly target)."""
    prev = None
    for ef, rec, qps in points:
        if rec >= target:
            interp = qps
            if prev is not None and prev[1] < target:
                f = (target - prev[1]) / (rec - prev[1])
                interp = float(np.exp(np.log(prev[2]) + f * (np.log(qps) - np.log(prev[2]))))
            return ef, qps, interp
        prev = (ef, rec, qps)
    return None, None, None


def section_recall(x, q, keys, truth, args, cache):
    import hnswlib

    k = args.k
    if "hnsw" in cache:
        idx, ek_build = cache["hnsw"]
    else:
        idx, ek_build = build_vector_index("hnsw", x, keys)
        cache["hnsw"] = (idx, ek_build)
    threads = os.cpu_count() if args.threads is None else args.threads
    hi = hnswlib.Index(space="cosine", dim=x.shape[1])
    hi.init_index(max_elements=len(x), M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    hi.set_num_threads(threads)
    t = time.perf_counter()
    hi.add_items(x, np.arange(len(x)))
    hl_build = time.perf_counter() - t
    print(f"  HNSW build: VectorIndex {ek_build:.1f}s, hnswlib {hl_build:.1f}s", flush=True)

    single_n = min(args.single_queries, len(q))
    res = []
    for ef in EF_SWEEP:
        idx.ef_search = ef
        hi.set_ef(ef)
        rec_ek = recall_at_k(keys_to_ids(idx.search(q, k).keys), truth, k)
        lab, _ = hi.knn_query(q, k=k)
        rec_hl = recall_at_k(lab, truth, k)

        def ek_b():
            idx.search(q, k)

        def hl_b():
            hi.knn_query(q, k=k)

        def ek_s():
            for i in range(single_n):
                idx.search(q[i], k)

        def hl_s():
            for i in range(single_n):
                hi.knn_query(q[i], k=k)

        tb = timed_interleaved({"ek": ek_b, "hl": hl_b}, args.repeats)
        ts = timed_interleaved({"ek": ek_s, "hl": hl_s}, args.repeats)
        res.append(dict(ef=ef, ek_recall=rec_ek, hl_recall=rec_hl,
                        ek_batch=len(q) / tb["ek"], hl_batch=len(q) / tb["hl"],
                        ek_single=single_n / ts["ek"], hl_single=single_n / ts["hl"]))
        print(f"  ef={ef}: recall {rec_ek:.3f} / {rec_hl:.3f}", flush=True)
        if rec_ek >= args.stop_recall and rec_hl >= args.stop_recall:
            break
    idx.ef_search = 64
    print(f"\n### ef_search sweep, HNSW M={M} ef_construction={EF_CONSTRUCTION}, {len(x):,} x {x.shape[1]}, "
          f"cosine, recall@{k} over {len(q)} queries; batch = one call with {len(q)} queries "
          f"({threads} threads both), single = {single_n} calls of one query\n")
    print(table(["ef_search", "VectorIndex recall", "hnswlib recall", "VectorIndex batch q/s", "hnswlib batch q/s",
                 "VectorIndex single q/s", "hnswlib single q/s"],
                [(r["ef"], f"{r['ek_recall']:.3f}", f"{r['hl_recall']:.3f}", fmt(r["ek_batch"]), fmt(r["hl_batch"]),
                  fmt(r["ek_single"]), fmt(r["hl_single"])) for r in res]))
    summary = []
    for target in (0.90, 0.95):
        for mode in ("batch", "single"):
            e = at_recall([(r["ef"], r["ek_recall"], r[f"ek_{mode}"]) for r in res], target)
            h = at_recall([(r["ef"], r["hl_recall"], r[f"hl_{mode}"]) for r in res], target)
            summary.append((target, mode, e, h))
    print(f"\n### Queries/s at equal recall@{k} (first swept ef reaching it; in brackets: log-interpolated "
          "to exactly the target)\n")
    rows = []
    for target, mode, e, h in summary:
        ratio = (e[1] / h[1]) if (e[1] and h[1]) else None
        iratio = (e[2] / h[2]) if (e[2] and h[2]) else None
        rows.append((f"{target:.2f}", mode, fmt(e[0]), f"{fmt(e[1])} ({fmt(e[2])})", fmt(h[0]),
                     f"{fmt(h[1])} ({fmt(h[2])})", f"{fmt(ratio, 2)} ({fmt(iratio, 2)})"))
    print(table(["recall@10", "queries", "VectorIndex ef", "VectorIndex q/s", "hnswlib ef", "hnswlib q/s",
                 "ratio"], rows))
    return dict(sweep=res, build=dict(ek=ek_build, hnswlib=hl_build),
                at_recall=[dict(target=t, mode=m, ek=e, hnswlib=h) for t, m, e, h in summary])


# --------------------------------------------------------------------------- defaults
KNOB_SWEEP = {
    "hnsw": [dict(ef_search=v) for v in (64, 96, 128, 192, 256)],
    "ivf": [dict(nprobe=None), dict(nprobe="x2"), dict(nprobe="x4")],
    "ivfpq": [dict(), dict(refine=8), dict(refine=16), dict(nprobe="x2", refine=8)],
}


def section_defaults(args, cache):
    k = args.k
    rows = []
    out = []
    for n in args.default_sizes:
        x, q = clustered(n, args.dim, n_queries=args.queries, seed=args.seed)
        keys = [str(i) for i in range(n)]
        truth = exact_topk(normalised(x), normalised(q), k)
        for kind in ("hnsw", "ivf", "ivfpq"):
            if kind == "hnsw" and n == args.n and "hnsw" in cache and args.n_data_seed == args.seed:
                idx, build_s = cache["hnsw"]
            else:
                idx, build_s = build_vector_index(kind, x, keys)
            defaults = idx.params
            for knobs in KNOB_SWEEP[kind]:
                setting = {}
                for name, v in knobs.items():
                    if v is None:
                        continue
                    if isinstance(v, str) and v.startswith("x"):
                        v = int(defaults[name]) * int(v[1:])
                    setting[name] = v
                idx.set_params(**{kk: vv for kk, vv in (setting or {}).items()})
                found = keys_to_ids(idx.search(q, k).keys)
                rec = recall_at_k(found, truth, k)
                t = timed_interleaved({"s": lambda idx=idx: idx.search(q, k)}, max(1, args.repeats // 2))["s"]
                p = idx.params
                shown = {"hnsw": ("ef_search",), "ivf": ("nlist", "nprobe"),
                         "ivfpq": ("nlist", "nprobe", "pq_m", "refine")}[kind]
                label = ", ".join(f"{kk}={p[kk]}" for kk in shown)
                is_default = not setting or all(defaults.get(kk) == vv for kk, vv in setting.items())
                rows.append((f"{n:,}", kind, label + (" (default)" if is_default else ""), f"{rec:.3f}",
                             fmt(len(q) / t), f"{build_s:.1f}"))
                out.append(dict(n=n, kind=kind, knobs=dict(p), default=is_default, recall=rec, qps=len(q) / t,
                                build_s=build_s))
                print(f"  n={n} {kind} {label}: recall {rec:.3f}", flush=True)
                # back to the defaults for the next setting
                idx.set_params(**{kk: defaults[kk] for kk in ("ef_search", "nprobe", "refine") if defaults.get(kk)})
            del idx
    print(f"\n### Recall@{k} at default and larger knobs (cosine, dim {args.dim}, {args.queries} unseen queries, "
          f"exact flat search as truth)\n")
    print(table(["n", "kind", "knobs", f"recall@{k}", "batch q/s", "build s"], rows))
    return out


# --------------------------------------------------------------------------- build / memory
def _rss_kb(field="VmRSS") -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def build_worker(impl, kind, n, dim, seed, metric="cosine", exact_vectors=True):
    """Runs in a fresh process: build one index, print JSON with time and memory."""
    x, _ = clustered(n, dim, seed=seed)
    keys = [str(i) for i in range(n)] if impl == "ek" else None
    import faiss  # noqa: F401  (import cost out of the measurement)

    import embedkit.index  # noqa: F401
    if impl == "hnswlib":
        import hnswlib
    rss0 = _rss_kb()
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak-RSS mark
        peak_ok = True
    except OSError:
        peak_ok = False
    t = time.perf_counter()
    if impl == "ek":
        obj, _ = build_vector_index(kind, x, keys, metric=metric, exact_vectors=exact_vectors)
    elif impl == "faiss":
        xn = x.copy()
        if metric == "cosine":
            faiss.normalize_L2(xn)
        fm = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        if kind == "flat":
            obj = faiss.IndexFlat(dim, fm)
        else:
            obj = faiss.IndexHNSWFlat(dim, M, fm)
            obj.hnsw.efConstruction = EF_CONSTRUCTION
        obj.add(xn)
        del xn
    else:
        obj = hnswlib.Index(space="cosine", dim=dim)
        obj.init_index(max_elements=n, M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
        obj.add_items(x, np.arange(n))
    build_s = time.perf_counter() - t
    rss1 = _rss_kb()
    peak = _rss_kb("VmHWM") if peak_ok else None
    print(json.dumps(dict(impl=impl, kind=kind, n=n, dim=dim, metric=metric, build_s=build_s, rss_growth_mb=(rss1 - rss0) / 1024,
                          peak_growth_mb=(peak - rss0) / 1024 if peak else None,
                          data_mb=x.nbytes / 2**20)))


def section_build(args):
    rows = []
    out = []
    for n in args.sizes:
        for kind in args.build_kinds.split(","):
            impls = ["ek", "faiss"] + (["hnswlib"] if kind == "hnsw" and n <= args.hnswlib_build_max else [])
            impls = [i for i in impls if i in args.build_impls.split(",")]
            dim = args.dim
            if kind == "hnsw" and args.hnsw_large_dim and n > args.hnsw_large_n:
                dim = args.hnsw_large_dim
            if kind == "hnsw" and n > args.hnsw_max_n:
                rows.append((f"{n:,}", kind, dim, "skipped (--hnsw-max-n)", "", "", "", ""))
                continue
            got = {}
            for impl in impls:
                cmd = [sys.executable, __file__, "--_build-worker", impl, kind, str(n), str(dim), str(args.seed),
                       "--build-metric", args.build_metric] + (["--no-exact-vectors"] if args.no_exact_vectors else [])
                r = subprocess.run(cmd, capture_output=True, text=True)
                if r.returncode != 0:
                    print(r.stderr[-2000:], file=sys.stderr)
                    got[impl] = None
                    continue
                got[impl] = json.loads(r.stdout.strip().splitlines()[-1])
                out.append(got[impl])
                g = got[impl]
                print(f"  n={n} {kind} {impl}: {g['build_s']:.1f}s, +{g['rss_growth_mb']:.0f} MB", flush=True)
            for impl in impls:
                g = got.get(impl)
                if not g:
                    continue
                base = got.get("faiss")
                ratio = g["build_s"] / base["build_s"] if base else None
                rows.append((f"{n:,}", kind, dim, {"ek": "VectorIndex", "faiss": "raw FAISS"}.get(impl, impl),
                             f"{g['build_s']:.2f}", fmt(ratio, 2), f"{g['rss_growth_mb']:.0f}",
                             fmt(g["peak_growth_mb"], 0) + f" (data {g['data_mb']:.0f})"))
    lean = ", exact_vectors=False" if args.no_exact_vectors else ""
    print(f"\n### Build time and memory ({args.build_metric}{lean}; HNSW M={M}, ef_construction={EF_CONSTRUCTION}; one build per "
          "row in a fresh process; RSS growth = resident memory after build minus before, data already loaded)\n")
    print(table(["n", "kind", "dim", "impl", "build s", "time vs raw FAISS", "RSS growth MB",
                 "peak RSS growth MB (raw float32 data)"], rows))
    return out


# --------------------------------------------------------------------------- filtered
def _subset_truth(xn, qn, mask, k):
    sub = np.flatnonzero(mask)
    top = exact_topk(xn[sub], qn, min(k, len(sub)))
    return sub[top]


def _recall_rows(found_rows, truth):
    hits = total = 0
    for got, want in zip(found_rows, truth):
        hits += len(set(int(g) for g in got) & set(want.tolist()))
        total += len(want)
    return hits / max(1, total)


def section_filtered(x, q, keys, args, cache):
    import hnswlib

    from embedkit.index import VectorIndex

    k = args.k
    n = len(x)
    rng = np.random.default_rng(args.seed + 1)
    bucket = rng.integers(0, 100_000, n)  # selectivity s: bucket < s * 100000 (independent of the vectors)
    payload = [{"bucket": int(b)} for b in bucket]
    q, q_tune = q[:max(1, len(q) - 200)], q[max(1, len(q) - 200):]  # tune on held-out queries, measure on the rest
    xn, qn = normalised(x), normalised(q)
    single_n = min(args.single_queries, len(q))
    rows, out = [], []
    impls = {}
    for kind in args.filtered_kinds.split(","):
        idx = VectorIndex(x.shape[1], "cosine", kind)
        t = time.perf_counter()
        idx.add(keys, x, payload=payload)
        build = time.perf_counter() - t
        rep = idx.tune(0.95, queries=q_tune, k=k) if kind != "flat" else {"knob": None}
        print(f"  [{kind}] built in {build:.1f}s, tuned {rep.get('knob')}={rep.get('value')} "
              f"(recall {rep.get('recall')})", flush=True)
        impls[kind] = (idx, rep)
    hi = hnswlib.Index(space="cosine", dim=x.shape[1])
    hi.init_index(max_elements=n, M=M, ef_construction=EF_CONSTRUCTION, random_seed=100)
    hi.add_items(x, np.arange(n))
    hl_truth = exact_topk(xn, qn[:200], k)
    hl_ef = None
    for ef in EF_SWEEP:  # hnswlib's own cheapest ef at recall 0.95 unfiltered
        hi.set_ef(ef)
        found, _ = hi.knn_query(q[:200], k=k)
        if recall_at_k(found, hl_truth, k) >= 0.95:
            hl_ef = ef
            break
    hl_ef = hl_ef or EF_SWEEP[-1]
    hi.set_ef(hl_ef)
    # hnswlib calls a Python filter under the GIL: with several threads its batch query deadlocks
    # (seen here), so filtered hnswlib runs on one thread (unfiltered rows use all of them)
    threads = os.cpu_count() if args.threads is None else args.threads
    print(f"  [hnswlib] ef={hl_ef} for recall 0.95 unfiltered", flush=True)
    for sel in args.selectivities:
        mask = bucket < int(round(sel * 100_000))
        flt = None if sel >= 1.0 else {"bucket": {"$lt": int(round(sel * 100_000))}}
        truth = _subset_truth(xn, qn, mask, k)
        for kind, (idx, _rep) in impls.items():
            res = idx.search(q, k, filter=flt)
            rec = _recall_rows(keys_to_ids(res.keys), truth)
            bad = sum(not mask[int(key)] for row in res.keys for key in row)
            short = sum(len(row) < min(k, int(mask.sum())) for row in res.keys)

            def batch():
                idx.search(q, k, filter=flt)

            def single():
                for i in range(single_n):
                    idx.search(q[i], k, filter=flt)

            t = timed_interleaved({"b": batch, "s": single}, args.repeats)
            rows.append((f"{sel * 100:g}%", f"VectorIndex {kind}", f"{rec:.3f}", fmt(len(q) / t["b"]),
                         fmt(single_n / t["s"]), bad, short))
            out.append(dict(selectivity=sel, impl=kind, recall=rec, batch_qps=len(q) / t["b"],
                            single_qps=single_n / t["s"], non_matching=bad, short_rows=short))
        ids_ok = np.flatnonzero(mask)
        allowed = set(ids_ok.tolist()) if sel < 1.0 else None
        fn = None if allowed is None else (lambda i: i in allowed)
        hi.set_num_threads(1 if fn is not None else threads)
        try:
            found, _ = hi.knn_query(q, k=min(k, len(ids_ok)), filter=fn)
            rec = _recall_rows(found, truth)

            def hl_batch():
                hi.knn_query(q, k=min(k, len(ids_ok)), filter=fn)

            def hl_single():
                for i in range(single_n):
                    hi.knn_query(q[i:i + 1], k=min(k, len(ids_ok)), filter=fn)

            t = timed_interleaved({"b": hl_batch, "s": hl_single}, args.repeats)
            rows.append((f"{sel * 100:g}%", f"hnswlib{' filter callback' if fn else ''} (ef={hl_ef}, "
                         f"{1 if fn else threads} thread{'s' if not fn and threads > 1 else ''})", f"{rec:.3f}",
                         fmt(len(q) / t["b"]), fmt(single_n / t["s"]), 0, "-"))
            out.append(dict(selectivity=sel, impl="hnswlib", recall=rec, batch_qps=len(q) / t["b"],
                            single_qps=single_n / t["s"]))
        except RuntimeError as exc:  # hnswlib raises when fewer than k items are reachable
            rows.append((f"{sel * 100:g}%", f"hnswlib filter callback (ef={hl_ef})", f"error: {exc}", "-", "-", "-", "-"))
        print(f"  selectivity {sel:g} measured", flush=True)
    print(f"\n### Filtered search, {n:,} x {x.shape[1]}, cosine, k={k}, {len(q)} queries (batch) / {single_n} "
          f"(one at a time); filter {{'bucket': {{'$lt': s}}}} on a random payload field\n")
    print(table(["selectivity", "impl", "recall@10 (vs exact on matching)", "batch q/s", "single q/s",
                 "non-matching returned", "short rows"], rows))
    return out


# --------------------------------------------------------------------------- load
def load_worker(path, mmap):
    import faiss  # noqa: F401

    from embedkit.index import VectorIndex
    rss0 = _rss_kb()
    t = time.perf_counter()
    idx = VectorIndex.load(path, mmap=mmap == "1")
    load_s = time.perf_counter() - t
    rss1 = _rss_kb()
    t = time.perf_counter()
    idx.search_keys(idx.keys[0] if len(idx) < 200_000 else "0", 10)
    first_s = time.perf_counter() - t
    print(json.dumps(dict(load_s=load_s, rss_growth_mb=(rss1 - rss0) / 1024, first_query_s=first_s)))


def section_load(args):
    import shutil
    import tempfile

    from embedkit.index import VectorIndex

    rows, out = [], []
    tmp = Path(tempfile.mkdtemp(prefix="ek_load_"))
    try:
        for n in args.load_sizes:
            x, _ = clustered(n, args.dim, seed=args.seed)
            keys = [str(i) for i in range(n)]
            for kind in ("flat", "hnsw"):
                if kind == "hnsw" and n > args.hnsw_max_n:
                    continue
                idx = VectorIndex(args.dim, "cosine", kind)
                idx.add(keys, x)
                t = time.perf_counter()
                idx.save(tmp / f"{kind}{n}")
                save_s = time.perf_counter() - t
                del idx
                for mm in ("1", "0"):
                    cmd = [sys.executable, __file__, "--_load-worker", str(tmp / f"{kind}{n}"), mm]
                    r = subprocess.run(cmd, capture_output=True, text=True)
                    if r.returncode:
                        print(r.stderr[-2000:], file=sys.stderr)
                        continue
                    g = json.loads(r.stdout.strip().splitlines()[-1])
                    rows.append((f"{n:,}", kind, "mmap" if mm == "1" else "memory", f"{save_s:.2f}",
                                 f"{g['load_s']:.3f}", f"{g['rss_growth_mb']:.0f}", f"{g['first_query_s'] * 1000:.1f}"))
                    out.append(dict(n=n, kind=kind, mmap=mm == "1", save_s=save_s, **g))
                    print(f"  n={n} {kind} mmap={mm}: load {g['load_s']:.3f}s", flush=True)
                shutil.rmtree(tmp / f"{kind}{n}", ignore_errors=True)
            # payload memory per item: 3 fields (int, str category, list of 2 str)
            rng = np.random.default_rng(0)
            cats = [f"cat{i}" for i in range(100)]
            pay = [{"n": int(i), "cat": cats[i % 100], "tags": [cats[(i * 7) % 100], cats[(i * 13) % 100]]}
                   for i in range(n)]
            idx = VectorIndex(args.dim, "cosine", "flat")
            idx.add(keys, x[:, :args.dim], payload=pay)
            per = idx._storage.payload.nbytes() / n
            rows.append((f"{n:,}", "payload", "int + str + 2-str list", "-", "-", f"{per:.1f} B/item", "-"))
            out.append(dict(n=n, payload_bytes_per_item=per))
            del idx, x, pay, rng
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n### Save and load (cosine, each load in a fresh process; RSS growth after load)\n")
    print(table(["n", "kind", "load", "save s", "load s", "RSS growth MB", "first search_keys ms"], rows))
    return out


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default="overhead,recall,defaults,build,filtered,load")
    p.add_argument("--n", type=int, default=100_000, help="items for overhead and recall sections")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--sizes", default="10000,100000,1000000", help="build/memory sizes")
    p.add_argument("--default-sizes", default="10000,100000", help="sizes of the default-knob recall check")
    p.add_argument("--queries", type=int, default=1000, help="batch queries (also recall queries)")
    p.add_argument("--single-queries", type=int, default=300, help="queries for one-at-a-time timing")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="FAISS/hnswlib threads (default: all cores)")
    p.add_argument("--stop-recall", type=float, default=0.995, help="stop the ef sweep once both reach it")
    p.add_argument("--hnsw-max-n", type=int, default=10**9, help="skip HNSW builds above this size")
    p.add_argument("--hnsw-large-n", type=int, default=10**9)
    p.add_argument("--hnsw-large-dim", type=int, default=None, help="dim for HNSW builds above --hnsw-large-n")
    p.add_argument("--hnswlib-build-max", type=int, default=10**9)
    p.add_argument("--build-kinds", default="flat,hnsw", help="kinds of the build section")
    p.add_argument("--build-impls", default="ek,faiss,hnswlib", help="impls of the build section")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write all figures to this JSON file")
    p.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    p.add_argument("--device", default="cpu", help="only cpu: FAISS here is faiss-cpu")
    p.add_argument("--_build-worker", nargs=5, help=argparse.SUPPRESS)
    p.add_argument("--_load-worker", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--build-metric", default="cosine", choices=["cosine", "ip", "l2"], help="metric of the build section")
    p.add_argument("--no-exact-vectors", action="store_true",
                   help="build section: VectorIndex(exact_vectors=False) (cosine holds one copy)")
    p.add_argument("--selectivities", default="0.001,0.01,0.1,0.5,1.0", help="filtered section")
    p.add_argument("--filtered-kinds", default="flat,hnsw,ivf", help="kinds of the filtered section")
    p.add_argument("--load-sizes", default="100000,1000000", help="sizes of the load section")
    a = p.parse_args(argv)
    if a.quick:
        a.n, a.queries, a.single_queries, a.repeats = 20_000, 300, 100, 3
        a.sizes, a.default_sizes = "5000,20000", "5000,20000"
    if a.quick:
        a.load_sizes = "20000"
    a.sizes = [int(s) for s in str(a.sizes).split(",") if s]
    a.selectivities = [float(s) for s in str(a.selectivities).split(",") if s]
    a.load_sizes = [int(s) for s in str(a.load_sizes).split(",") if s]
    a.default_sizes = [int(s) for s in str(a.default_sizes).split(",") if s]
    a.n_data_seed = a.seed
    return a


def main(argv=None):
    args = parse_args(argv)
    if args._build_worker:
        impl, kind, n, dim, seed = args._build_worker
        build_worker(impl, kind, int(n), int(dim), int(seed), args.build_metric, not args.no_exact_vectors)
        return 0
    if args._load_worker:
        load_worker(*args._load_worker)
        return 0
    if args.device != "cpu":
        print("only --device cpu: the index runs on faiss-cpu", file=sys.stderr)
        return 2
    import faiss

    if args.threads is not None:
        faiss.omp_set_num_threads(args.threads)
    sections = args.sections.split(",")
    print(f"# index_bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.node()}  "
          f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}  faiss {faiss.__version__} "
          f"numpy {np.__version__}  python {platform.python_version()}")
    print("# argv: " + " ".join(sys.argv[1:]), flush=True)
    results = {"args": {k: v for k, v in vars(args).items() if not k.startswith("_")}}
    cache = {}
    if "overhead" in sections or "recall" in sections or "filtered" in sections:
        x, q = clustered(args.n, args.dim, n_queries=args.queries, seed=args.seed)
        keys = [str(i) for i in range(args.n)]
        if "overhead" in sections:
            results["overhead"] = section_overhead(x, q, keys, args, cache)
        if "recall" in sections:
            truth = exact_topk(normalised(x), normalised(q), args.k)
            results["recall"] = section_recall(x, q, keys, truth, args, cache)
        cache.clear()
        if "filtered" in sections:
            results["filtered"] = section_filtered(x, q, keys, args, cache)
        del x, q, keys
    if "defaults" in sections:
        results["defaults"] = section_defaults(args, cache)
    cache.clear()
    if "build" in sections:
        results["build"] = section_build(args)
    if "load" in sections:
        results["load"] = section_load(args)
    print(f"\n# done {time.strftime('%H:%M UTC', time.gmtime())}, load={os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
