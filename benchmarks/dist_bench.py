"""Distributed benchmark: collective constants, single-process compute constants, 1 vs N processes.

Three parts (each alone; results as markdown tables on stdout, constants as JSON with ``--json``):

    python benchmarks/dist_bench.py collectives [--nproc 2] [--max-mb 256]   # gloo all_reduce / all_gather
    python benchmarks/dist_bench.py compute                                  # one process, one thread
    python benchmarks/dist_bench.py compare [--nproc 2] [--gpus]             # 1 vs N processes

``collectives`` launches ``--nproc`` local ranks (embedkit.distributed.launch) and times
``all_reduce_sum_`` and ``all_gather_rows`` (the wrappers the trainers call, with their
bookkeeping) on float32 tensors from 1 KB to ``--max-mb`` MB; it fits ``t = alpha + bytes / beta``
(least squares on the median times) and reports the bytes that ``comm_stats()`` counted.

``compute`` measures what one process does per second with today's trainers (Word2Vec torch
engine and gensim backend on a synthetic Zipf corpus; Node2Vec walk steps and training pairs;
implicit ALS seconds per epoch per (nonzero x factor); BPR samples/s; an encoder's rows/s).

``compare`` runs Word2Vec, Node2Vec and ALS in 1 process and in ``--nproc`` processes (the same
data and options) and reports fit seconds, a quality figure and the bytes each rank sent into
collectives. ``--gpus`` runs one process per visible GPU (device cuda) instead.

Run it under ``nice -n 10`` with ``EMBEDKIT_NUM_THREADS=1`` on a shared machine. ``--json FILE``
writes the measured constants in the format ``benchmarks/scaling_sim.py --constants FILE`` reads.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- collectives (rank side)
def _collectives_worker(out_path: str, max_mb: float, reps: int) -> None:
    import torch

    from embedkit import distributed as ek_dist

    torch.set_num_threads(1)
    w = ek_dist.setup()
    sizes, b = [], 1024
    while b <= max_mb * 2**20:
        sizes.append(b)
        b *= 4
    rows = []
    for op in ("all_reduce", "all_gather"):
        for nbytes in sizes:
            n = nbytes // 4
            if op == "all_reduce":
                t = torch.ones(n, dtype=torch.float32)
                fn = ek_dist.all_reduce_sum_
            else:  # each rank contributes nbytes / size; the result holds nbytes on every rank
                t = torch.ones((max(1, n // (w.size * 16)), 16), dtype=torch.float32)
                fn = ek_dist.all_gather_rows
            k = reps if nbytes <= 2**22 else max(3, reps // 4)
            fn(t)  # warm-up (connections, buffers)
            ek_dist.barrier()
            ek_dist.reset_comm_stats()
            times = []
            for _ in range(k):
                ek_dist.barrier()
                t0 = time.perf_counter()
                fn(t)
                times.append(time.perf_counter() - t0)
            st = ek_dist.comm_stats()
            rows.append(dict(op=op, bytes=nbytes, counted_bytes_per_call=st["bytes"] / k, calls=st["calls"],
                             median_s=statistics.median(times), min_s=min(times)))
            del t
    if w.main:
        with open(out_path, "w", encoding="utf-8") as fh:
            json.dump(dict(world_size=w.size, rows=rows), fh)


def fit_alpha_beta(rows: list[dict], key: str = "median_s", small: int = 16 * 1024,
                   large: int = 2**20) -> tuple[float, float]:
    """The alpha-beta model ``t = alpha + bytes / beta`` from timed rows: alpha = the mean time of the
    payloads up to ``small`` bytes (pure latency), beta = least squares slope of ``t - alpha`` against
    bytes over the payloads from ``large`` bytes up (what big tables see). Returns (seconds, bytes/s)."""
    lat = [r[key] for r in rows if r["bytes"] <= small]
    alpha = sum(lat) / len(lat) if lat else 0.0
    big = [r for r in rows if r["bytes"] >= large] or rows
    sxx = sum(r["bytes"] ** 2 for r in big)
    sxy = sum(r["bytes"] * (r[key] - alpha) for r in big)
    return float(alpha), float(sxx / sxy) if sxy > 0 else float("inf")


def run_collectives(a) -> dict:
    from embedkit.distributed.launch import launch

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "coll.json")
        env = dict(os.environ, EMBEDKIT_NUM_THREADS="1", OMP_NUM_THREADS="1")
        cmd = [sys.executable, str(Path(__file__).resolve()), "_collectives", out, str(a.max_mb), str(a.reps)]
        res = launch(cmd, a.nproc, env=env)
        if res.returncode != 0:
            raise SystemExit(f"collectives run failed (rank {res.failed_rank}): {res.message}")
        data = json.load(open(out, encoding="utf-8"))
    print(f"\n### gloo collectives, {a.nproc} processes on this machine ({platform.processor() or platform.machine()})\n")
    print("| op | payload bytes | bytes counted by comm_stats per call | median s | min s | GB/s (payload / median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in data["rows"]:
        print(f"| {r['op']} | {r['bytes']:,} | {r['counted_bytes_per_call']:,.0f} | {r['median_s']:.6f} | "
              f"{r['min_s']:.6f} | {r['bytes'] / r['median_s'] / 1e9:.3f} |")
    fits = {}
    for op in ("all_reduce", "all_gather"):
        rows = [r for r in data["rows"] if r["op"] == op]
        alpha, beta = fit_alpha_beta(rows)
        fits[op] = dict(alpha_s=alpha, beta_bytes_per_s=beta)
        print(f"\n{op}: t = alpha + bytes / beta with alpha = {alpha * 1e6:.1f} us, beta = {beta / 1e9:.3f} GB/s "
              f"(median times: alpha from payloads <= 16 KB, beta from payloads >= 1 MB; world size {data['world_size']})")
    return dict(collectives=dict(world_size=data["world_size"], fits=fits, rows=data["rows"]))


# ----------------------------------------------------------------------------- data
def topic_corpus(path: str, n_tokens: int, vocab: int = 20_000, topics: int = 50, length: int = 20,
                 own: float = 0.7, seed: int = 0) -> list[int]:
    """Write a synthetic corpus with a planted answer: every word belongs to one of ``topics``
    topics; a sentence picks a topic and draws each word from that topic's words with probability
    ``own`` (Zipf-weighted), else from the whole vocabulary (Zipf, exponent 1). Returns the topic of
    each word id (word ``w<id>``, id 0 the most frequent)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    topic = rng.integers(0, topics, vocab)
    pop = 1.0 / np.arange(1, vocab + 1)
    glob = np.cumsum(pop) / pop.sum()
    members = [np.flatnonzero(topic == t) for t in range(topics)]
    cdfs = [np.cumsum(pop[m]) / pop[m].sum() for m in members]
    n_sent = max(1, n_tokens // length)
    sent_topic = rng.integers(0, topics, n_sent)
    with open(path, "w", encoding="utf-8") as fh:
        for t in range(topics):
            rows = np.flatnonzero(sent_topic == t)
            if not len(rows):
                continue
            u = rng.random((len(rows), length))
            mine = rng.random((len(rows), length)) < own
            ids = np.where(mine, members[t][np.minimum(np.searchsorted(cdfs[t], u), len(members[t]) - 1)],
                           np.minimum(np.searchsorted(glob, u), vocab - 1))
            fh.writelines(" ".join(f"w{i}" for i in r) + "\n" for r in ids)
    return topic.tolist()


def neighbour_purity(emb, label_of: dict, top: int = 500, k: int = 10) -> float:
    """Mean share of the ``k`` nearest neighbours (cosine) that carry the same label, over the ``top``
    first keys of ``emb`` that have a label: how well the planted structure is recovered."""
    import numpy as np

    keys = [key for key in emb.keys if key in label_of][:top]
    allk = [key for key in emb.keys if key in label_of]
    v = np.asarray(emb[allk], dtype=np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    lab = np.array([label_of[key] for key in allk])
    sims = v[: len(keys)] @ v.T
    np.fill_diagonal(sims[:, : len(keys)], -np.inf)
    nn = np.argpartition(-sims, k, axis=1)[:, :k]
    return float((lab[nn] == lab[: len(keys), None]).mean())


def sbm_graph(path: str, num_edges: int, blocks: int = 10, degree: float = 10.0, p_in: float = 0.7,
              seed: int = 0) -> dict:
    """An undirected stochastic-block-model edge list (as benchmarks/node2vec_bench.py writes it);
    returns {'nodes', 'edges', 'block' (node id -> block)}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = max(int(round(2 * num_edges / degree)), blocks * 2)
    block = np.arange(n) % blocks
    src = rng.integers(0, n, num_edges)
    inside = rng.random(num_edges) < p_in
    same = (rng.integers(0, n // blocks, num_edges) * blocks + block[src]) % n
    dst = np.where(inside, same, rng.integers(0, n, num_edges))
    keep = src != dst
    np.savetxt(path, np.stack([src[keep], dst[keep]], 1), fmt="%d", delimiter="\t")
    return {"nodes": n, "edges": int(keep.sum()), "block": block.tolist()}


def implicit_arrays(n_users: int, n_items: int, per_user: int, seed: int = 0):
    """The long-tailed implicit interactions of benchmarks/mf_bench.py, as a train/test split."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from mf_bench import implicit_data

    inter = implicit_data(n_users, n_items, per_user, seed=seed)
    return inter.split(test_fraction=0.2, seed=0)


# ----------------------------------------------------------------------------- compute constants
def _timed(fn):
    """(result, CPU seconds of this process): on a shared machine the CPU time, not the wall time, is
    what one dedicated core would need (one torch thread; gensim with workers=1)."""
    t0 = time.process_time()
    out = fn()
    return out, time.process_time() - t0


def run_compute(a) -> dict:
    import numpy as np

    os.environ.setdefault("EMBEDKIT_NUM_THREADS", "1")
    import torch

    import embedkit as ek

    torch.set_num_threads(1)
    out, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        topic_corpus(corpus, a.w2v_tokens)
        for backend in ("torch", "gensim"):
            m = ek.Word2Vec(dim=100, window=5, negative=5, min_count=5, epochs=1, seed=0, backend=backend,
                            device="cpu", workers=1)
            _, cpu = _timed(lambda m=m: m.fit(corpus, show_progress=False))
            rate = a.w2v_tokens / cpu
            out[f"w2v_{backend}_words_per_s"] = rate
            rows.append((f"Word2Vec skip-gram ({backend}), dim 100, window 5, negative 5", f"{rate:,.0f} words/s",
                         f"{a.w2v_tokens:,} tokens, vocab {len(m.embeddings_):,} (wall-clock rate of the training "
                         f"phase: {m.words_per_second_:,.0f} words/s)"))
        edges = os.path.join(tmp, "g.tsv")
        info = sbm_graph(edges, a.n2v_edges)
        graph = ek.Graph.from_edgelist(edges)
        wl, wpn = 40, 2
        model = ek.Node2Vec(dim=64, walk_length=wl, walks_per_node=wpn, window=5, epochs=1, seed=0, device="cpu",
                            backend="torch", workers=1)
        stream = model.walk_stream(graph)
        _, walk_s = _timed(lambda: stream.counts(graph.num_nodes))
        steps = stream.walks_per_epoch * (wl - 1)
        _, fit_s = _timed(lambda: model.fit(graph, show_progress=False))
        tokens = int(model.visit_counts_.sum())
        train_s = max(fit_s - 2 * walk_s, 1e-9)   # the fit walks twice: visit counts, then the epoch's walks
        out["n2v_walk_steps_per_s"] = steps / walk_s
        out["n2v_train_tokens_per_s"] = tokens / train_s
        out["n2v_fit_seconds_per_step"] = fit_s / steps
        rows.append(("Node2Vec walks (p = q = 1, torch walker)", f"{steps / walk_s:,.0f} steps/s",
                     f"SBM {info['nodes']:,} nodes, {info['edges']:,} edges, {wpn} walks x {wl} nodes"))
        rows.append(("Node2Vec skip-gram on the walks (dim 64, window 5)", f"{tokens / train_s:,.0f} tokens/s",
                     f"fit {fit_s:.1f} s minus two walk passes of {walk_s:.1f} s"))
        train, _ = implicit_arrays(*a.mf_size)
        nnz = train.nnz
        for dim in (32, 64):
            m = ek.MatrixFactorization(method="als", dim=dim, epochs=a.mf_epochs, seed=0, device="cpu")
            _, s = _timed(lambda m=m: m.fit(train, show_progress=False))
            per = s / a.mf_epochs
            out[f"als_s_per_epoch_nnz_dim_{dim}"] = per / (nnz * dim)
            rows.append((f"implicit ALS (torch, CG), dim {dim}", f"{per:.3f} s/epoch = {per / (nnz * dim) * 1e9:.2f} "
                         "ns per (nonzero x factor)", f"{a.mf_size[0]:,} users x {a.mf_size[1]:,} items, {nnz:,} nonzeros"))
        m = ek.MatrixFactorization(method="bpr", dim=64, epochs=a.mf_epochs, seed=0, device="cpu")
        _, s = _timed(lambda: m.fit(train, show_progress=False))
        out["bpr_samples_per_s"] = nnz * a.mf_epochs / s
        rows.append(("BPR (torch), dim 64", f"{nnz * a.mf_epochs / s:,.0f} samples/s", f"{nnz:,} samples per epoch"))
        x = np.random.default_rng(0).standard_normal((a.enc_rows, 32)).astype(np.float32)
        enc = ek.AutoEncoder(dim=16, hidden=(128, 64), epochs=3, batch_size=256, seed=0, device="cpu")
        _, s = _timed(lambda: enc.fit(x, show_progress=False))
        out["encoder_rows_per_s"] = a.enc_rows * 3 / s
        rows.append(("AutoEncoder 32 -> (128, 64) -> 16, batch 256", f"{a.enc_rows * 3 / s:,.0f} rows/s (fit incl. scoring)",
                     f"{a.enc_rows:,} rows x 3 epochs"))
    print(f"\n### single-process compute constants (1 torch thread, {platform.machine()}; rates per CPU second)\n")
    print("| what | rate | on |\n|---|---:|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    return {"compute": out}


# ----------------------------------------------------------------------------- 1 vs N processes
def _compare_worker(spec_path: str) -> None:
    """One rank of a ``compare`` job: fit, then rank 0 writes the result JSON (and vectors)."""
    import numpy as np

    spec = json.load(open(spec_path, encoding="utf-8"))
    import torch

    import embedkit as ek
    from embedkit import distributed as ek_dist

    torch.set_num_threads(1)
    device = spec.get("device", "cpu")
    kind, extra = spec["kind"], spec.get("extra", {})
    ek_dist.reset_comm_stats()
    t0, c0 = time.perf_counter(), time.process_time()
    if kind == "word2vec":
        model = ek.Word2Vec(dim=spec["dim"], epochs=spec["epochs"], min_count=5, seed=0, backend=spec["backend"],
                            device=device, workers=1, **extra)
        emb = model.fit(spec["data"], show_progress=False)
    elif kind == "node2vec":
        model = ek.Node2Vec(dim=spec["dim"], walk_length=spec["walk_length"], walks_per_node=spec["walks_per_node"],
                            window=5, epochs=spec["epochs"], seed=0, device=device, backend=spec["backend"], workers=1,
                            **extra)
        emb = model.fit(ek.Graph.from_edgelist(spec["data"]), show_progress=False)
    else:
        train, test = implicit_arrays(*spec["size"])
        model = ek.MatrixFactorization(method=spec["method"], dim=spec["dim"], epochs=spec["epochs"], seed=0,
                                       device=device, **extra)
        emb = model.fit(train, show_progress=False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = ek_dist.comm_stats()
    if not ek_dist.is_main():
        return
    result = dict(seconds=seconds, cpu=cpu, comm=stats, world=ek_dist.world().size)
    if kind == "word2vec":
        topic = spec["labels"]
        result["quality"] = neighbour_purity(emb, {f"w{i}": t for i, t in enumerate(topic)})
    elif kind == "node2vec":
        block = spec["labels"]
        result["quality"] = neighbour_purity(emb, {str(i): b for i, b in enumerate(block)})
    else:
        from embedkit.evaluate.ranking import ranking_metrics

        result["quality"] = float(ranking_metrics(model, test, k=10)["recall"])
        np.save(spec["out"] + ".items.npy", np.asarray(emb.vectors, dtype=np.float32))
    with open(spec["out"], "w", encoding="utf-8") as fh:
        json.dump(result, fh)


def _run_case(spec: dict, nproc: int, tmp: str, env: dict) -> dict:
    from embedkit.distributed.launch import launch

    spec = dict(spec, out=os.path.join(tmp, f"{spec['name']}-{nproc}.json"))
    path = spec["out"] + ".spec"
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(spec, fh)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_compare", path]
    t0 = time.perf_counter()
    if nproc == 1:
        rc = subprocess.run(cmd, env=env).returncode
        msg = ""
    else:
        res = launch(cmd, nproc, env=env)
        rc, msg = res.returncode, f"rank {res.failed_rank}: {res.message}"
    wall = time.perf_counter() - t0
    if rc != 0:
        return dict(error=f"exit {rc} {msg}".strip(), wall=wall)
    result = json.load(open(spec["out"], encoding="utf-8"))
    result["wall"] = wall
    return result


def run_compare(a) -> dict:
    import numpy as np

    env = dict(os.environ, EMBEDKIT_NUM_THREADS="1", OMP_NUM_THREADS="1")
    device, nproc = "cpu", a.nproc
    if a.gpus:
        import torch

        if not torch.cuda.is_available() or torch.cuda.device_count() < 1:
            raise SystemExit("--gpus: no CUDA device is visible here; run without --gpus (CPU processes)")
        nproc, device = torch.cuda.device_count(), "cuda"
        a.w2v_backends = a.n2v_backends = ["torch"]          # gensim trains on the CPU only
    extra = json.loads(a.extra) if a.extra else {}
    results, consts = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        if "word2vec" in a.cases:
            corpus = os.path.join(tmp, "corpus.txt")
            topic = topic_corpus(corpus, a.w2v_tokens)
            for backend in a.w2v_backends:
                cases.append(dict(name=f"word2vec-{backend}", kind="word2vec", backend=backend, data=corpus, dim=64,
                                  epochs=a.epochs, labels=topic, extra=extra.get("word2vec", {})))
        if "node2vec" in a.cases:
            edges = os.path.join(tmp, "g.tsv")
            info = sbm_graph(edges, a.n2v_edges)
            for backend in a.n2v_backends:
                cases.append(dict(name=f"node2vec-{backend}", kind="node2vec", backend=backend, data=edges, dim=64,
                                  epochs=a.epochs, walk_length=40, walks_per_node=4, labels=info["block"],
                                  extra=extra.get("node2vec", {})))
        if "als" in a.cases:
            cases.append(dict(name="als", kind="mf", method="als", size=list(a.mf_size), dim=64, epochs=a.mf_epochs,
                              extra=extra.get("als", {})))
        for case in cases:
            case["device"] = device
            one = _run_case(case, 1, tmp, env)
            many = _run_case(case, nproc, tmp, env)
            row = dict(name=case["name"], one=one, many=many)
            if case["kind"] == "mf" and "error" not in one and "error" not in many:
                x = np.load(os.path.join(tmp, "als-1.json.items.npy"))
                y = np.load(os.path.join(tmp, f"als-{nproc}.json.items.npy"))
                row["max_abs_diff"] = float(np.abs(x - y).max()) if x.shape == y.shape else float("nan")
            results.append(row)
            if "error" not in many and many["comm"]["calls"]:
                consts[f"{case['name']}_bytes_per_rank"] = many["comm"]["bytes"]
                consts[f"{case['name']}_comm_calls"] = many["comm"]["calls"]
                consts[f"{case['name']}_comm_seconds"] = many["comm"]["seconds"]
    print(f"\n### 1 vs {nproc} processes ({device}, 1 thread per process)\n")
    print(f"| trainer | fit s (1 proc) | fit s ({nproc} procs) | speed-up | CPU s rank 0 (1 / {nproc}) | quality (1) | "
          f"quality ({nproc}) | bytes sent per rank | collective calls | s in collectives | wall s incl. start (1 / N) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        one, many = r["one"], r["many"]
        if "error" in one or "error" in many:
            print(f"| {r['name']} | {one.get('error', '')} | {many.get('error', '')} | | | | | | | | |")
            continue
        c = many["comm"]
        q = f"{many['quality']:.4f}" + (f" (max abs diff of item factors {r['max_abs_diff']:.2e})"
                                         if "max_abs_diff" in r else "")
        print(f"| {r['name']} | {one['seconds']:.2f} | {many['seconds']:.2f} | {one['seconds'] / many['seconds']:.2f} | "
              f"{one['cpu']:.2f} / {many['cpu']:.2f} | {one['quality']:.4f} | {q} | {c['bytes']:,} | {c['calls']} | "
              f"{c['seconds']:.2f} | {one['wall']:.1f} / {many['wall']:.1f} |")
    return {"compare": dict(nproc=nproc, device=device, results=results, constants=consts)}


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "_compare":
        _compare_worker(argv[1])
        return 0
    if argv and argv[0] == "_collectives":
        _collectives_worker(argv[1], float(argv[2]), int(argv[3]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="part", required=True)
    c = sub.add_parser("collectives", help="gloo all_reduce / all_gather latency and bandwidth")
    c.add_argument("--nproc", type=int, default=2)
    c.add_argument("--max-mb", type=float, default=256.0)
    c.add_argument("--reps", type=int, default=20)
    m = sub.add_parser("compute", help="single-process compute constants (one thread)")
    m.add_argument("--w2v-tokens", type=int, default=1_000_000)
    m.add_argument("--n2v-edges", type=int, default=50_000)
    m.add_argument("--mf-size", type=int, nargs=3, default=(10_000, 5_000, 20), metavar=("USERS", "ITEMS", "PER_USER"))
    m.add_argument("--mf-epochs", type=int, default=3)
    m.add_argument("--enc-rows", type=int, default=20_000)
    p = sub.add_parser("compare", help="1 vs N processes: time, quality, bytes communicated")
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--gpus", action="store_true", help="one process per visible GPU, device cuda")
    p.add_argument("--cases", nargs="+", default=["word2vec", "node2vec", "als"], choices=["word2vec", "node2vec", "als"])
    p.add_argument("--w2v-backends", nargs="+", default=["torch", "gensim"], choices=["torch", "gensim"])
    p.add_argument("--w2v-tokens", type=int, default=300_000)
    p.add_argument("--n2v-backends", nargs="+", default=["torch", "gensim"], choices=["torch", "gensim"])
    p.add_argument("--n2v-edges", type=int, default=20_000)
    p.add_argument("--mf-size", type=int, nargs=3, default=(10_000, 5_000, 20), metavar=("USERS", "ITEMS", "PER_USER"))
    p.add_argument("--epochs", type=int, default=2, help="Word2Vec / Node2Vec epochs")
    p.add_argument("--mf-epochs", type=int, default=5)
    p.add_argument("--extra", help='JSON of extra trainer options per case, e.g. \'{"word2vec": {"sync_every": 0.25}}\'')
    for p in sub.choices.values():
        p.add_argument("--json", help="write the measured constants to this JSON file")
    a = ap.parse_args(argv)
    result = {"collectives": run_collectives, "compute": run_compute, "compare": run_compare}[a.part](a)
    if a.json:
        old = json.load(open(a.json, encoding="utf-8")) if os.path.exists(a.json) else {}
        old.update(result)
        with open(a.json, "w", encoding="utf-8") as fh:
            json.dump(old, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
