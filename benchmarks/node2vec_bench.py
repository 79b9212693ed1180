"""Node2Vec benchmark: embedkit's torch walker beside PecanPy (SparseOTF and PreComp).

Two parts, same graphs and hyper-parameters on both sides:

1. Walks: steps/s and peak memory on stochastic-block-model (SBM) graphs of about 10k, 100k
   and 1M undirected edges (average degree 10). Each measurement runs in a fresh process:
   ``peak RSS`` is the process maximum, ``walk mem`` its growth from the moment the graph was
   loaded (what the walker itself needs). embedkit streams batches of walks; PecanPy builds
   its whole walk matrix and then (public API) a list of string lists, both timed here:
   ``core`` = its numba walk kernel, compiled beforehand (compilation not timed); ``public`` =
   simulate_walks as users call it (it compiles its kernel on every call and returns strings).
2. End to end: fit time and node-classification F1 (one-vs-rest logistic regression, 50% of
   nodes labelled, mean of 5 splits; mean of ``--fit-seeds`` training seeds) on a labelled SBM
   graph with planted blocks; PecanPy
   side = SparseOTF walks + gensim Word2Vec exactly as PecanPy's ``embed`` calls it
   (gensim defaults: sample=1e-3), so embedkit is run with sample=1e-3 too.

PecanPy pins numpy < 2, so it runs in its own virtual environment:

    python3 -m venv /tmp/venv-pecanpy && /tmp/venv-pecanpy/bin/pip install pecanpy==2.0.9 psutil
    python benchmarks/node2vec_bench.py                         # CPU, all cores
    python benchmarks/node2vec_bench.py --device cuda           # embedkit on the GPU
    python benchmarks/node2vec_bench.py --quick                 # 10k and 100k edges only
    python benchmarks/node2vec_bench.py --graph powerlaw --skip-fit   # hub-heavy graphs

Without the PecanPy environment (``--pecanpy-python``) only embedkit's rows are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PECANPY = "/tmp/venv-pecanpy/bin/python"
PECANPY_PATH = ""  # PYTHONPATH of the PecanPy workers (--pecanpy-path; for PecanPy installed with pip --target)


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Make ru_maxrss-like peaks measurable from now on (Linux: clear_refs 5 resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return _peak_mb()


# ----------------------------------------------------------------------------- data
def make_sbm(path: Path, num_edges: int, blocks: int = 10, degree: float = 10.0, p_in: float = 0.7,
             seed: int = 0) -> dict:
    """Write an undirected SBM edge list ('u v' lines) and its labels; a share ``p_in`` of each
    node's edges stays inside its block. Returns {'nodes', 'edges', 'labels' path}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = max(int(round(2 * num_edges / degree)), blocks * 2)
    block = np.arange(n) % blocks
    src = rng.integers(0, n, num_edges)
    inside = rng.random(num_edges) < p_in
    # a random node of the same block, or of any block
    same = (rng.integers(0, n // blocks, num_edges) * blocks + block[src]) % n
    dst = np.where(inside, same, rng.integers(0, n, num_edges))
    keep = src != dst
    src, dst = src[keep], dst[keep]
    np.savetxt(path, np.stack([src, dst], 1), fmt="%d", delimiter="\t")
    labels = path.with_suffix(".labels.tsv")
    np.savetxt(labels, np.stack([np.arange(n), block], 1), fmt="%d", delimiter="\t")
    return {"nodes": n, "edges": int(keep.sum()), "labels": str(labels)}


def make_powerlaw(path: Path, num_edges: int, degree: float = 10.0, exponent: float = 2.2, seed: int = 0) -> dict:
    """Write an undirected Chung-Lu graph with a power-law degree sequence (exponent ~2.2: a few
    hubs of degree in the thousands, many triangles through them); the hard case for the
    common-neighbour precomputation, whose cost is the sum of squared degrees."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = max(int(round(2 * num_edges / degree)), 20)
    w = np.arange(1, n + 1, dtype=np.float64) ** (-1.0 / (exponent - 1.0))
    w /= w.sum()
    src, dst = rng.choice(n, num_edges, p=w), rng.choice(n, num_edges, p=w)
    keep = src != dst
    np.savetxt(path, np.stack([src[keep], dst[keep]], 1), fmt="%d", delimiter="\t")
    return {"nodes": n, "edges": int(keep.sum())}


# ----------------------------------------------------------------------------- workers (own process)
def worker_ours_walk(a) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    import embedkit as ek
    from embedkit.trainers.node2vec import Node2Vec

    torch.set_num_threads(a.threads)
    graph = ek.Graph.from_edgelist(a.edges)
    cuda = a.device.startswith("cuda")
    base = _rss_mb()
    _reset_peak()
    model = Node2Vec(walk_length=a.walk_length, walks_per_node=a.walks_per_node, p=a.p, q=a.q, seed=0,
                     device=a.device)
    t_pre = time.perf_counter()
    stream = model.walk_stream(graph)      # CSR on the device, reverse edges, common-neighbour weights
    if cuda:
        torch.cuda.synchronize()
    t_pre = time.perf_counter() - t_pre
    # warm-up (allocator, kernels): one small batch
    warm = Node2Vec(walk_length=5, walks_per_node=1, p=a.p, q=a.q, device=a.device, walk_batch_size=1024)
    next(iter(warm.walk_stream(graph).epoch(0)))
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    steps = 0
    for _tokens, lengths in stream.epoch(0):
        steps += int((lengths - 1).sum())
    if cuda:
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = {"seconds": dt, "steps": steps, "peak_mb": _hwm_mb(), "walk_mb": _hwm_mb() - base,
           "preprocess_seconds": t_pre, "common": stream.sampler.common is not None}
    if cuda:
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def worker_pecanpy_walk(a) -> dict:
    import numpy as np
    from pecanpy import pecanpy as pp

    g = getattr(pp, a.mode)(p=a.p, q=a.q, workers=a.threads, verbose=False, random_state=0)
    g.read_edg(a.edges, weighted=False, directed=False)
    base = _rss_mb()
    _reset_peak()
    t_pre = time.perf_counter()
    g._preprocess_transition_probs()           # PreComp: alias tables (numba-compiled; compile included)
    t_pre = time.perf_counter() - t_pre
    # core: PecanPy's simulate_walks without the final conversion to lists of strings, with its
    # numba kernel compiled beforehand on 16 walks (same function objects, so no recompilation)
    from numba_progress import ProgressBar

    has_nbrs, move_forward = g.get_has_nbrs(), g.get_move_forward()
    nodes = np.array(range(g.num_nodes), dtype=np.uint32)
    with ProgressBar(total=16, disable=True) as progress:
        g._random_walks(16, 2, 0, nodes[:16].copy(), has_nbrs, move_forward, progress)
    starts = np.concatenate([nodes] * a.walks_per_node)
    np.random.seed(0)
    np.random.shuffle(starts)
    t0 = time.perf_counter()
    with ProgressBar(total=len(starts), disable=True) as progress:
        mat = g._random_walks(len(starts), a.walk_length - 1, 0, starts, has_nbrs, move_forward, progress)
    core = time.perf_counter() - t0
    steps = int((mat[:, -1].astype(np.int64) - 1).sum())
    del mat
    t0 = time.perf_counter()
    walks = g.simulate_walks(a.walks_per_node, a.walk_length - 1)
    public = time.perf_counter() - t0
    del walks
    return {"seconds": core, "public_seconds": public, "preprocess_seconds": t_pre, "steps": steps,
            "peak_mb": _hwm_mb(), "walk_mb": _hwm_mb() - base}


def worker_ours_fit(a) -> dict:
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    import embedkit as ek

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    graph = ek.Graph.from_edgelist(a.edges)
    model = ek.Node2Vec(dim=a.dim, walk_length=a.walk_length, walks_per_node=a.walks_per_node, window=a.window,
                        p=a.p, q=a.q, sample=1e-3, seed=a.seed, device=a.device, backend=a.backend,
                        workers=a.threads)
    emb = model.fit(graph, show_progress=False)
    dt = time.perf_counter() - t0
    np.save(a.out, emb.vectors)
    Path(a.out + ".keys").write_text("\n".join(emb.keys))
    return {"seconds": dt, "backend": model.backend_, "peak_mb": _peak_mb()}


def worker_pecanpy_fit(a) -> dict:
    import numpy as np
    from pecanpy import pecanpy as pp

    t0 = time.perf_counter()
    g = pp.SparseOTF(p=a.p, q=a.q, workers=a.threads, verbose=False, random_state=a.seed)
    g.read_edg(a.edges, weighted=False, directed=False)
    vectors = g.embed(dim=a.dim, num_walks=a.walks_per_node, walk_length=a.walk_length - 1,
                      window_size=a.window, epochs=1)
    dt = time.perf_counter() - t0
    np.save(a.out, vectors.astype(np.float32))
    Path(a.out + ".keys").write_text("\n".join(g.nodes))
    return {"seconds": dt, "peak_mb": _peak_mb()}


WORKERS = {"ours-walk": worker_ours_walk, "pecanpy-walk": worker_pecanpy_walk,
           "ours-fit": worker_ours_fit, "pecanpy-fit": worker_pecanpy_fit}


# ----------------------------------------------------------------------------- driver
def _run(python: str, role: str, **kw) -> dict:
    cmd = [python, str(Path(__file__).resolve()), "--worker", role]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    # PecanPy's venv sees only --pecanpy-path (default nothing); ours sees the repo before the caller's path
    extra = os.environ.get("PYTHONPATH", "")
    path = PECANPY_PATH if "pecanpy" in role else os.pathsep.join(p for p in (str(ROOT), extra) if p)
    env = dict(os.environ, PYTHONPATH=path)
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(ROOT))
    if res.returncode != 0:
        raise RuntimeError(f"{role} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _f1(vec_path: str, labels: str, seeds=range(5)) -> tuple[float, float]:
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import embedkit as ek
    from embedkit.evaluate import node_classification

    keys = Path(vec_path + ".keys").read_text().split("\n")
    emb = ek.Embeddings(keys, np.load(vec_path))
    res = [node_classification(emb, labels, train_fraction=0.5, seed=s) for s in seeds]
    return float(np.mean([r["micro_f1"] for r in res])), float(np.mean([r["macro_f1"] for r in res]))


def new_nodes(a) -> list[dict]:
    """New nodes without retraining: a planted-block graph (networkx SBM, ``--new-blocks`` blocks
    of ``--new-block-size`` nodes, edge probabilities ``--new-p-in`` / ``--new-p-out``), 10% of its
    nodes held out; Node2Vec is fitted on the rest, then
    the held-out nodes get vectors by ``embed_new_nodes`` (old vectors frozen) or by a full retrain on
    the whole graph. A classifier trained on the old nodes' vectors predicts the new nodes' blocks
    (macro-F1), so the figure says whether the new vectors live in the old space."""
    import networkx as nx
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    import embedkit as ek

    k, size = a.new_blocks, a.new_block_size
    a.seed = a.seed or 0
    g = nx.stochastic_block_model([size] * k, [[a.new_p_in if i == j else a.new_p_out for j in range(k)] for i in range(k)],
                                  seed=a.seed)
    block = {str(n): n // size for n in g.nodes}
    rng = np.random.default_rng(a.seed)
    held = set(rng.choice(g.number_of_nodes(), g.number_of_nodes() // 10, replace=False).tolist())
    old_g = g.subgraph([n for n in g.nodes if n not in held]).copy()
    params = dict(dim=64, walk_length=40, walks_per_node=10, window=5, seed=a.seed, device="cpu", workers=a.threads,
                  backend=a.backend)

    def score(emb, train_keys, test_keys):
        clf = LogisticRegression(max_iter=1000).fit(emb[train_keys], [block[x] for x in train_keys])
        return float(f1_score([block[x] for x in test_keys], clf.predict(emb[test_keys]), average="macro"))

    rows = []
    t0 = time.perf_counter()
    m = ek.Node2Vec(**params)
    m.fit(old_g, show_progress=False)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    new = m.embed_new_nodes(g)
    inc_s = time.perf_counter() - t0
    old_keys = [x for x in m.embeddings_.keys if x not in set(new.keys)]
    rows.append(dict(system="embed_new_nodes", seconds=round(inc_s, 1), fit_old_seconds=round(fit_s, 1),
                     new_nodes=len(new), macro_f1_new=round(score(m.embeddings_, old_keys, new.keys), 4)))
    t0 = time.perf_counter()
    full = ek.Node2Vec(**params).fit(g, show_progress=False)
    rows.append(dict(system="full retrain", seconds=round(time.perf_counter() - t0, 1), new_nodes=len(new),
                     macro_f1_new=round(score(full, old_keys, new.keys), 4)))
    for r in rows:
        print(" | ".join(f"{key} {v}" for key, v in r.items()), flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="embedkit device: cpu or cuda (default: cpu)")
    sys.path.insert(0, str(ROOT))
    from embedkit._device import cpu_count

    ap.add_argument("--threads", type=int, default=cpu_count(), help="CPU threads for both tools")
    ap.add_argument("--pecanpy-python", default=DEFAULT_PECANPY, help="python of the PecanPy venv ('' to skip)")
    ap.add_argument("--pecanpy-path", default="",
                    help="PYTHONPATH for the PecanPy workers, e.g. a pip --target folder (default: none)")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="SBM edge counts for the walk part")
    ap.add_argument("--quick", action="store_true", help="sizes 10k,100k and a smaller end-to-end graph")
    ap.add_argument("--walk-steps", type=float, default=8e6,
                    help="steps to aim for per embedkit walk measurement (walks per node = this / (nodes x 79); "
                         "default 8e6; a GPU walks 8e6 steps in about 0.1-0.3 s, so give it 1e8 for a steady rate). "
                         "PecanPy keeps 8e6 (its walk matrix and lists grow with the steps); rates compare as steps/s")
    ap.add_argument("--max-walks-per-node", type=int, default=10, help="cap on walks per node (default 10)")
    ap.add_argument("--pq", default="1,0.5;0.25,4", help="(p,q) settings for the walk part, ';'-separated")
    ap.add_argument("--modes", default="SparseOTF,PreComp", help="PecanPy modes to run beside ours")
    ap.add_argument("--graph", default="sbm", choices=["sbm", "powerlaw"],
                    help="graphs of the walk part: SBM (default) or power-law Chung-Lu (hubs)")
    ap.add_argument("--fit-edges", type=int, default=20000, help="edges of the labelled SBM for the end-to-end part")
    ap.add_argument("--backend", default="auto", help="embedkit skip-gram backend for the end-to-end part")
    ap.add_argument("--fit-seeds", type=int, default=3, help="end-to-end runs per tool (seeds 0..N-1), averaged")
    ap.add_argument("--skip-fit", action="store_true", help="walk part only")
    ap.add_argument("--json", default=None, help="also write all rows to this JSON file")
    # worker-only arguments
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    for name, typ in (("edges", str), ("mode", str), ("p", float), ("q", float), ("walk-length", int),
                      ("walks-per-node", int), ("dim", int), ("window", int), ("out", str), ("seed", int)):
        ap.add_argument(f"--{name}", type=typ, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--new-nodes", action="store_true",
                    help="only the new-nodes part: embed_new_nodes beside a full retrain on a planted-block graph")
    ap.add_argument("--new-blocks", type=int, default=4, help="blocks of the new-nodes graph (default: 4)")
    ap.add_argument("--new-block-size", type=int, default=250, help="nodes per block (default: 250)")
    ap.add_argument("--new-p-in", type=float, default=0.05, help="edge probability inside a block (default: 0.05)")
    ap.add_argument("--new-p-out", type=float, default=0.01, help="edge probability across blocks (default: 0.01)")
    a = ap.parse_args(argv)
    if a.new_nodes:
        rows = new_nodes(a)
        if a.json:
            Path(a.json).write_text(json.dumps(dict(args=vars(a), rows=rows), indent=1))
        return 0
    if a.worker:
        print(json.dumps(WORKERS[a.worker](a)))
        return 0

    global PECANPY_PATH
    PECANPY_PATH = a.pecanpy_path
    pecan = a.pecanpy_python if a.pecanpy_python and Path(a.pecanpy_python).exists() else None
    sizes = [10_000, 100_000] if a.quick else [int(x) for x in a.sizes.split(",") if x]
    pqs = [tuple(float(v) for v in s.split(",")) for s in a.pq.split(";")]
    rows = []
    print(f"# node2vec bench: device={a.device} threads={a.threads} pecanpy={'yes' if pecan else 'not found'}")
    with tempfile.TemporaryDirectory(prefix="n2v-bench-") as tmp:
        print(f"\n## walks on {a.graph} graphs: walk_length 80 (79 steps), steps/s and memory")
        print(f"{'edges':>9} {'nodes':>8} {'p,q':>9} {'tool':<22} {'Msteps/s':>9} {'ratio':>7} "
              f"{'peak RSS MB':>11} {'walk MB':>8} {'notes'}")
        for m in sizes:
            path = Path(tmp) / f"{a.graph}_{m}.edg"
            info = make_sbm(path, m) if a.graph == "sbm" else make_powerlaw(path, m)
            wpn = max(1, min(a.max_walks_per_node, round(a.walk_steps / (info["nodes"] * 79))))
            pecan_wpn = max(1, min(10, round(8e6 / (info["nodes"] * 79))))  # --walk-steps is for embedkit only
            for p, q in pqs:
                common = dict(edges=path, p=p, q=q, walk_length=80, walks_per_node=wpn, threads=a.threads)
                ours = _run(sys.executable, "ours-walk", device=a.device, **common)
                rate = ours["steps"] / ours["seconds"] / 1e6
                note = (f"wpn={wpn}; prep {ours['preprocess_seconds']:.1f}s"
                        f"{' (common weights)' if ours['common'] else ''}; with prep "
                        f"{ours['steps'] / (ours['seconds'] + ours['preprocess_seconds']) / 1e6:.2f} Msteps/s"
                        + (f"; gpu_peak={ours['gpu_peak_mb']:.0f}MB" if "gpu_peak_mb" in ours else ""))
                print(f"{info['edges']:>9} {info['nodes']:>8} {p:g},{q:g}".ljust(29) +
                      f" {'embedkit ' + a.device:<22} {rate:>9.2f} {'':>7} {ours['peak_mb']:>11.0f} "
                      f"{ours['walk_mb']:>8.0f} {note}", flush=True)
                rows.append(dict(part="walks", edges=info["edges"], nodes=info["nodes"], p=p, q=q,
                                 tool=f"embedkit-{a.device}", msteps_s=rate, **ours))
                if not pecan:
                    continue
                for mode in a.modes.split(","):
                    if mode == "PreComp" and (p, q) != pqs[0]:
                        continue
                    r = _run(pecan, "pecanpy-walk", mode=mode, **{**common, "walks_per_node": pecan_wpn})
                    prate = r["steps"] / r["seconds"] / 1e6
                    note = (f"wpn={pecan_wpn}; public {r['steps'] / r['public_seconds'] / 1e6:.2f} Msteps/s; "
                            f"prep {r['preprocess_seconds']:.1f}s")
                    print(f"{'':>9} {'':>8} {'':>9}  {'PecanPy ' + mode:<22} {prate:>9.2f} {rate / prate:>7.2f} "
                          f"{r['peak_mb']:>11.0f} {r['walk_mb']:>8.0f} {note}", flush=True)
                    rows.append(dict(part="walks", edges=info["edges"], nodes=info["nodes"], p=p, q=q,
                                     tool=f"pecanpy-{mode}", msteps_s=prate, ratio=rate / prate, **r))

        if not a.skip_fit:
            fit_edges = 10_000 if a.quick else a.fit_edges
            path = Path(tmp) / "labelled.edg"
            info = make_sbm(path, fit_edges, blocks=5, degree=10.0, p_in=0.6, seed=1)
            p, q = pqs[0]
            print(f"\n## end to end: labelled SBM, {info['nodes']} nodes, {info['edges']} edges, 5 blocks; "
                  f"dim 128, 10 walks x 80, window 10, p={p:g} q={q:g}, sample 1e-3, 1 epoch")
            print(f"{'tool':<28} {'fit s':>8} {'ratio':>7} {'micro-F1':>9} {'macro-F1':>9} {'peak RSS MB':>11}")
            common = dict(edges=path, p=p, q=q, walk_length=80, walks_per_node=10, dim=128, window=10,
                          threads=a.threads)
            tools = [("ours", sys.executable, "ours-fit", dict(device=a.device, backend=a.backend))]
            if pecan:
                tools.append(("pecan", pecan, "pecanpy-fit", {}))
            summary = {}
            for key, python, role, extra in tools:
                runs = []
                for seed in range(a.fit_seeds):
                    out = str(Path(tmp) / f"{key}{seed}.npy")
                    r = _run(python, role, out=out, seed=seed, **extra, **common)
                    r["micro_f1"], r["macro_f1"] = _f1(out, info["labels"])
                    runs.append(r)
                label = (f"embedkit {a.device} ({runs[0]['backend']})" if key == "ours"
                         else "PecanPy SparseOTF + gensim")
                summary[key] = {m: sum(r[m] for r in runs) / len(runs) for m in ("seconds", "micro_f1", "macro_f1", "peak_mb")}
                summary[key]["label"] = label
                summary[key]["macro_each"] = [round(r["macro_f1"], 4) for r in runs]
                rows.append(dict(part="fit", tool=label, runs=runs, **{k: v for k, v in summary[key].items()}))
            base = summary.get("pecan")
            for key in summary:
                s_ = summary[key]
                ratio = f"{base['seconds'] / s_['seconds']:>7.2f}" if base and key == "ours" else f"{'':>7}"
                print(f"{s_['label']:<28} {s_['seconds']:>8.1f} {ratio} {s_['micro_f1']:>9.4f} {s_['macro_f1']:>9.4f} "
                      f"{s_['peak_mb']:>11.0f}  macro-F1 per seed {s_['macro_each']}")
            if base:
                print(f"macro-F1 difference (embedkit - PecanPy), mean of {a.fit_seeds} seeds: "
                      f"{summary['ours']['macro_f1'] - base['macro_f1']:+.4f}")
    print("\nratio = embedkit speed / PecanPy speed (walks: steps/s; end to end: PecanPy seconds / embedkit seconds)")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
