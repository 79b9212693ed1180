"""Scaling simulator: memory per node, bytes communicated and expected time per epoch on N nodes.

Four cases, from the constants measured on the development machine (``benchmarks/dist_bench.py``)
and the assumptions listed with every table:

    python benchmarks/scaling_sim.py                          # all four cases, N = 1..64, 25 Gbit/s
    python benchmarks/scaling_sim.py --case word2vec --tokens 5e9 --vocab 3e6 --dim 300
    python benchmarks/scaling_sim.py --gbit 10 100            # one table per network speed
    python benchmarks/scaling_sim.py --gbit 0                 # the loopback constants measured here
    python benchmarks/scaling_sim.py --constants my.json      # constants from dist_bench.py --json
    python benchmarks/scaling_sim.py --show-constants         # every constant and its source

The model (stated in docs/scaling.md):

* compute time per epoch = work / (N x node rate), node rate = cores x efficiency x one-core rate
  (one-core rates measured here with one torch thread, scaled by the cost per token when the
  window, negatives or dimension differ from the measured run);
* ring all-reduce of S bytes on N ranks: each rank sends 2(N-1)/N x S bytes, time
  (N-1) x alpha + 2(N-1)/N x S / beta; ring all-gather of a T-byte result: each rank sends
  (N-1)/N x T, time (N-1) x alpha + (N-1)/N x T / beta. alpha is the per-call latency measured at
  2 processes (2 ring steps of all-reduce), beta the link bandwidth (the measured loopback one, or
  ``--gbit`` x ``--link-efficiency`` / 8 bytes/s);
* no overlap of compute and communication (an upper bound on time).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

# ----------------------------------------------------------------------------- constants
# value, source. "measured" values come from benchmarks/dist_bench.py on the 2-core development
# machine (shared with other jobs; rates are per CPU second of one process); see docs/scaling.md.
DEFAULTS: dict[str, tuple[float, str]] = {
    "allreduce_alpha_s": (607e-6, "measured: gloo all_reduce_sum_, 2 processes, median of payloads <= 16 KB "
                                  "(dist_bench.py collectives)"),
    "allreduce_beta": (1.035e9, "measured: gloo all_reduce_sum_ loopback, slope over payloads 1-256 MB"),
    "allgather_alpha_s": (820e-6, "measured: gloo all_gather_rows, 2 processes, payloads <= 16 KB"),
    "allgather_beta": (0.365e9, "measured: gloo all_gather_rows, result bytes / s over payloads 1-256 MB "
                                "(the link carries half of it at 2 ranks)"),
    "w2v_gensim_words_per_s": (None, "measured: gensim backend, workers=1, dim 100, window 5, negative 5"),
    "w2v_torch_words_per_s": (None, "measured: torch engine on CPU, 1 thread, dim 100, window 5, negative 5"),
    "n2v_walk_steps_per_s": (None, "measured: Node2Vec torch walker, p = q = 1, 1 thread, on a 10k-node graph that fits "
                                   "in cache (a 20M-node graph will walk slower)"),
    "n2v_train_tokens_per_s": (None, "measured: Node2Vec skip-gram on walks, dim 64, window 5, negative 5, 1 thread"),
    "als_s_per_nnz_dim": (None, "measured: implicit ALS (torch, CG 3 steps), seconds per epoch per (nonzero x factor), "
                                "dim 64"),
    "bpr_samples_per_s": (None, "measured: BPR (torch), dim 64, 1 thread"),
    "milvus_insert_rows_per_s": (1106.0, "measured (benchmarks/milvus_bench.py): milvus-lite 2.5.1, "
                                         "VectorIndex(backend='milvus').add in batches of 10,000, dim 64, 100k rows"),
}
# filled from the run recorded in docs/scaling.md (dist_bench.py compute, rates per CPU second)
MEASURED_COMPUTE = {
    "w2v_gensim_words_per_s": 148_985.0,
    "w2v_torch_words_per_s": 22_474.0,
    "n2v_walk_steps_per_s": 44_853_526.0,
    "n2v_train_tokens_per_s": 20_973.0,
    "als_s_per_nnz_dim": 9.66e-9,
    "bpr_samples_per_s": 1_399_106.0,
}
for _k, _v in MEASURED_COMPUTE.items():
    DEFAULTS[_k] = (_v, DEFAULTS[_k][1])

NODES = (1, 2, 4, 8, 16, 32, 64)
# The skip-gram tables model time and bytes, not quality: every one of N ranks trains its replica at
# N x lr (and N x min_lr) so that the average of N replicas moves as far per example as one process
# (committed with the distributed skip-gram family; 2-8 ranks stayed within 0.03 of one process's
# quality, or above it, on small planted data: dist_bench.py compare, docs/scaling.md).
LR_NOTE = ("quality not modelled: each of N ranks trains at N x lr (checked at 2-8 ranks on small data only; at "
           "many ranks N x lr may be too high: pass a lower lr and watch the loss)")
GB = 1e9


def load_constants(path: str | None) -> dict[str, float]:
    """The defaults, overridden by a JSON file: either {name: value} / {name: {"value": v}} or the
    output of ``dist_bench.py --json`` ({"collectives": {...}, "compute": {...}})."""
    out = {k: float(v) for k, (v, _src) in DEFAULTS.items()}
    if not path:
        return out
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if "collectives" in data:
        fits = data["collectives"]["fits"]
        out["allreduce_alpha_s"] = fits["all_reduce"]["alpha_s"]
        out["allreduce_beta"] = fits["all_reduce"]["beta_bytes_per_s"]
        out["allgather_alpha_s"] = fits["all_gather"]["alpha_s"]
        out["allgather_beta"] = fits["all_gather"]["beta_bytes_per_s"]
    comp = data.get("compute", {})
    for key in MEASURED_COMPUTE:
        if key in comp:
            out[key] = float(comp[key])
    if "als_s_per_epoch_nnz_dim_64" in comp:
        out["als_s_per_nnz_dim"] = float(comp["als_s_per_epoch_nnz_dim_64"])
    for key, val in data.items():
        if key in out:
            out[key] = float(val["value"] if isinstance(val, dict) else val)
    return out


# ----------------------------------------------------------------------------- the model
def ring_allreduce_bytes(payload: float, n: int) -> float:
    """Bytes each rank sends in a ring all-reduce of ``payload`` bytes on ``n`` ranks."""
    return 0.0 if n <= 1 else 2.0 * (n - 1) / n * payload


def ring_allreduce_seconds(payload: float, n: int, alpha: float, beta: float) -> float:
    """(n-1) alpha + 2(n-1)/n payload / beta; 0 on one rank."""
    return 0.0 if n <= 1 else (n - 1) * alpha + ring_allreduce_bytes(payload, n) / beta


def ring_allgather_bytes(total: float, n: int) -> float:
    """Bytes each rank sends in a ring all-gather whose result holds ``total`` bytes."""
    return 0.0 if n <= 1 else (n - 1) / n * total


def ring_allgather_seconds(total: float, n: int, alpha: float, beta: float) -> float:
    """(n-1) alpha + (n-1)/n total / beta; 0 on one rank."""
    return 0.0 if n <= 1 else (n - 1) * alpha + ring_allgather_bytes(total, n) / beta


def sgns_cost(window: int, negative: int, dim: int) -> float:
    """Relative cost of one skip-gram token: ~(window + 1) context pairs (reduced windows average
    (window + 1) / 2 a side), each (negative + 1) dot products of length dim."""
    return (window + 1) * (negative + 1) * dim


def net(c: dict, gbit: float, eff: float, kind: str) -> tuple[float, float]:
    """(alpha, link beta) for a collective: the loopback ones measured here (gbit 0), else the
    target network's line rate x efficiency with the measured per-call latency."""
    if kind == "all_reduce":
        alpha, beta = c["allreduce_alpha_s"], c["allreduce_beta"]
    else:  # the fit is on result bytes at 2 ranks, whose link carries half of them
        alpha, beta = c["allgather_alpha_s"], c["allgather_beta"] / 2.0
    if gbit > 0:
        beta = gbit * 1e9 / 8.0 * eff
    return alpha, beta


# ----------------------------------------------------------------------------- cases
def word2vec_rows(a, c, gbit) -> tuple[list[str], list[list], list[str]]:
    rate1 = c[f"w2v_{a.engine}_words_per_s"] * sgns_cost(5, 5, 100) / sgns_cost(a.window, a.negative, a.dim)
    node_rate = rate1 * a.cores * a.efficiency
    table = 2 * a.vocab * a.dim * 4                       # input + output matrices, float32
    syncs = math.ceil(1.0 / a.sync_every)
    alpha, beta = net(c, gbit, a.link_efficiency, "all_reduce")
    rows = []
    for n in a.nodes:
        comp = a.tokens / (n * node_rate)
        per_sync_b = ring_allreduce_bytes(table, n)
        per_sync_t = ring_allreduce_seconds(table, n, alpha, beta)
        mem = table + a.vocab * 100                     # all_reduce in place on the tables; vocabulary ~100 B/word
        total = comp + syncs * per_sync_t
        rows.append([n, mem, per_sync_b, per_sync_b * syncs, per_sync_t, comp, total, a.tokens / total / 1e6])
    head = [("nodes", "n"), ("memory/node GB", "gb"), ("sent/rank per sync GB", "gb"), ("sent/rank per epoch GB", "gb"),
            ("s per sync", "s"), ("compute s/epoch", "s"), ("total s/epoch", "s"), ("M words/s", "f2")]
    notes = [f"corpus {a.tokens:.3g} tokens, vocabulary {a.vocab:.3g}, dim {a.dim}, window {a.window}, negative "
             f"{a.negative}; engine {a.engine} at {rate1:,.0f} words/s per core (scaled from the measured run), "
             f"{a.cores} cores x efficiency {a.efficiency}",
             f"sync_every {a.sync_every}: {syncs} all_reduce of both tables ({_gb(table)} GB) per epoch",
             LR_NOTE]
    return head, rows, notes


def node2vec_rows(a, c, gbit):
    nodes_g = 2 * a.edges / a.degree
    steps = nodes_g * a.walks_per_node * (a.walk_length - 1)
    tokens = nodes_g * a.walks_per_node * a.walk_length
    walk1 = c["n2v_walk_steps_per_s"]
    if a.engine == "gensim":   # Node2Vec's CPU default trains the walks with gensim, as Word2Vec does
        train1 = c["w2v_gensim_words_per_s"] * sgns_cost(5, 5, 100) / sgns_cost(a.n2v_window, a.negative, a.n2v_dim)
    else:
        train1 = c["n2v_train_tokens_per_s"] * sgns_cost(5, 5, 64) / sgns_cost(a.n2v_window, a.negative, a.n2v_dim)
    table = 2 * nodes_g * a.n2v_dim * 4
    graph = (nodes_g + 1) * 8 + 2 * a.edges * 8          # CSR: int64 offsets + both directions of every edge
    syncs = math.ceil(1.0 / a.sync_every)
    alpha, beta = net(c, gbit, a.link_efficiency, "all_reduce")
    rows = []
    for n in a.nodes:
        comp = steps / (n * walk1 * a.cores * a.efficiency) + tokens / (n * train1 * a.cores * a.efficiency)
        per_sync_b = ring_allreduce_bytes(table, n)
        per_sync_t = ring_allreduce_seconds(table, n, alpha, beta)
        mem = graph + table
        rows.append([n, mem, per_sync_b, per_sync_b * syncs, per_sync_t, comp, comp + syncs * per_sync_t])
    head = [("nodes", "n"), ("memory/node GB", "gb"), ("sent/rank per sync GB", "gb"), ("sent/rank per epoch GB", "gb"),
            ("s per sync", "s"), ("compute s/epoch", "s"), ("total s/epoch", "s")]
    notes = [f"{a.edges:.3g} undirected edges, mean degree {a.degree} -> {nodes_g:.3g} nodes; {a.walks_per_node} walks "
             f"x {a.walk_length} nodes per node -> {tokens:.3g} tokens per epoch; dim {a.n2v_dim}, window {a.n2v_window}",
             f"walks {walk1:,.0f} steps/s and training ({a.engine}) {train1:,.0f} tokens/s per core; every rank holds the whole "
             f"graph ({_gb(graph)} GB CSR) and both tables ({_gb(table)} GB)",
             f"sync_every {a.sync_every}: {syncs} all_reduce of both tables per epoch",
             LR_NOTE]
    return head, rows, notes


def als_rows(a, c, gbit):
    factors = (a.users + a.items) * a.mf_dim * 4
    alpha, beta = net(c, gbit, a.link_efficiency, "all_gather")
    ar_alpha, ar_beta = net(c, gbit, a.link_efficiency, "all_reduce")
    bpr_table = a.items * (a.mf_dim + 1) * 4
    bpr_syncs = math.ceil(1.0 / a.bpr_sync_every)
    bpr1 = c["bpr_samples_per_s"] * 64 / a.mf_dim
    rows = []
    for n in a.nodes:
        comp = c["als_s_per_nnz_dim"] * a.interactions * a.mf_dim / (n * a.cores * a.efficiency)
        sent = ring_allgather_bytes(a.users * a.mf_dim * 4, n) + ring_allgather_bytes(a.items * a.mf_dim * 4, n)
        comm = (ring_allgather_seconds(a.users * a.mf_dim * 4, n, alpha, beta)
                + ring_allgather_seconds(a.items * a.mf_dim * 4, n, alpha, beta))
        shard = a.interactions / n * 12 * 2              # (row, col, value) x (CSR + CSC), int32/float32
        mem = factors + shard
        b_comp = a.interactions / (n * bpr1 * a.cores * a.efficiency)
        b_sent = ring_allreduce_bytes(bpr_table, n) * bpr_syncs
        b_comm = ring_allreduce_seconds(bpr_table, n, ar_alpha, ar_beta) * bpr_syncs
        rows.append([n, mem, sent, comm, comp, comp + comm, b_sent, b_comm, b_comp + b_comm])
    head = [("nodes", "n"), ("ALS memory/node GB", "gb"), ("ALS sent/rank per epoch GB", "gb"), ("ALS comm s/epoch", "s"),
            ("ALS compute s/epoch", "s"), ("ALS total s/epoch", "s"), ("BPR sent/rank per epoch GB", "gb"),
            ("BPR comm s/epoch", "s"), ("BPR total s/epoch", "s")]
    notes = [f"{a.interactions:.3g} interactions, {a.users:.3g} users x {a.items:.3g} items, dim {a.mf_dim}",
             f"ALS: {c['als_s_per_nnz_dim'] * 1e9:.1f} ns per (nonzero x factor) per core; every rank holds both factor "
             f"tables ({_gb(factors)} GB) and 1/N of the interactions; per epoch one all_gather of the user factors and "
             "one of the item factors",
             f"BPR: {bpr1:,.0f} samples/s per core (one sample per interaction per epoch); sync_every {a.bpr_sync_every}: "
             f"{bpr_syncs} all_reduce (sum of the ranks' changes) of the item table ({_gb(bpr_table)} GB) per epoch"]
    return head, rows, notes


def milvus_rows(a, c, gbit):
    d, n_vec = a.vec_dim, a.vectors
    raw = 4 * d
    per_vec = {  # bytes of RAM per vector (index + what the search needs in memory), + 8-byte primary key
        "FLAT / IVF_FLAT": raw + 8,
        f"HNSW M={a.hnsw_m}": raw + 2 * a.hnsw_m * 4 + 8,
        "IVF_SQ8": d + 8,
        f"IVF_PQ m={d // 4}": d // 4 + 8,
        "DISKANN (RAM part)": 0.125 * raw + 0.1 * raw + 8,
    }
    disk_diskann = raw + 56 * 4 + 4
    _, beta = net(c, gbit, a.link_efficiency, "all_reduce")
    rows = []
    for name, b in per_vec.items():
        total = b * n_vec
        need = math.ceil(total / (a.node_mem_gb * GB * 0.7))
        rows.append([name, b, total, need, *[total / n for n in a.nodes]])
    push = n_vec * (raw + 8) / beta
    head = [("index", "str"), ("bytes/vector in RAM", "f0"), ("total RAM GB", "gb"),
            (f"query nodes of {a.node_mem_gb:g} GB (70% usable)", "n"), *[(f"GB/node at N={n}", "gb") for n in a.nodes]]
    notes = [f"{n_vec:.3g} vectors of dim {d} (float32 {raw} B each), 8-byte int64 keys; payload columns not counted",
             "HNSW: vectors + 2M int32 links on layer 0 (upper layers add ~1/M more); IVF_PQ: d/4 one-byte codes; "
             "DISKANN: Milvus defaults PQCodeBudgetGBRatio 0.125 and SearchCacheBudgetGBRatio 0.1 of the raw size in RAM, "
             f"the graph (MaxDegree 56) and full vectors on NVMe: {disk_diskann} B/vector = {_gb(disk_diskann * n_vec)} GB disk",
             f"shipping the raw vectors once over one {('measured loopback' if gbit <= 0 else f'{gbit:g} Gbit/s')} link: "
             f"{_s(push)} s; inserting them through one client at the rate measured with milvus-lite "
             f"({c['milvus_insert_rows_per_s']:,.0f} rows/s): {n_vec / c['milvus_insert_rows_per_s'] / 86400:,.1f} days",
             "a search fans out to every query node (each returns its top-k), so adding nodes adds "
             "capacity and throughput (more replicas), not lower latency"]
    return head, rows, notes


CASES = {"word2vec": ("(a) Word2Vec on a 1B-token corpus", word2vec_rows),
         "node2vec": ("(b) Node2Vec on a 100M-edge graph", node2vec_rows),
         "als": ("(c) 1B interactions: implicit ALS and BPR", als_rows),
         "milvus": ("(d) 1B vectors in Milvus", milvus_rows)}


# ----------------------------------------------------------------------------- output
def _gb(x: float) -> str:
    return f"{x / GB:.3g}" if x else "0"


def _s(x: float) -> str:
    if x == 0:
        return "0"
    if x < 1:
        return f"{x:.3f}"
    if x < 100:
        return f"{x:.1f}"
    if x < 3600:
        return f"{x:,.0f}"
    return f"{x:,.0f} ({x / 3600:.1f} h)"


_FORMATS = {"gb": _gb, "s": _s, "n": lambda v: f"{v:,}", "str": str, "f0": lambda v: f"{v:,.0f}",
            "f2": lambda v: f"{v:.2f}"}


def markdown(head: list[tuple[str, str]], rows: list[list]) -> str:
    """A markdown table; ``head`` holds (label, format) with format gb | s | n | str | f0 | f2."""
    out = ["| " + " | ".join(h for h, _f in head) + " |", "|" + "---:|" * len(head)]
    out += ["| " + " | ".join(_FORMATS[f](v) for (_h, f), v in zip(head, r)) + " |" for r in rows]
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Scaling simulator: memory, bytes and time per epoch on N nodes")
    p.add_argument("--case", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--constants", help="JSON of constants (dist_bench.py --json output, or {name: value})")
    p.add_argument("--show-constants", action="store_true", help="print every constant with its source and exit")
    p.add_argument("--nodes", type=int, nargs="+", default=list(NODES))
    p.add_argument("--gbit", type=float, nargs="+", default=[25.0],
                   help="network line rate of the target cluster in Gbit/s (0: the loopback constants measured here)")
    p.add_argument("--link-efficiency", type=float, default=0.8, help="share of the line rate a ring collective gets")
    p.add_argument("--cores", type=int, default=16, help="cores per node")
    p.add_argument("--efficiency", type=float, default=0.75, help="thread scaling efficiency within a node")
    g = p.add_argument_group("word2vec")
    g.add_argument("--tokens", type=float, default=1e9)
    g.add_argument("--vocab", type=float, default=1e6)
    g.add_argument("--dim", type=int, default=100)
    g.add_argument("--window", type=int, default=5)
    g.add_argument("--negative", type=int, default=5)
    g.add_argument("--engine", choices=["gensim", "torch"], default="gensim",
                   help="skip-gram engine of Word2Vec and Node2Vec (CPU default: gensim)")
    g.add_argument("--sync-every", type=float, default=0.25)
    g = p.add_argument_group("node2vec")
    g.add_argument("--edges", type=float, default=1e8)
    g.add_argument("--degree", type=float, default=10.0)
    g.add_argument("--walks-per-node", type=int, default=10)
    g.add_argument("--walk-length", type=int, default=80)
    g.add_argument("--n2v-window", type=int, default=10)
    g.add_argument("--n2v-dim", type=int, default=128)
    g = p.add_argument_group("als / bpr")
    g.add_argument("--interactions", type=float, default=1e9)
    g.add_argument("--users", type=float, default=5e7)
    g.add_argument("--items", type=float, default=5e6)
    g.add_argument("--mf-dim", type=int, default=64)
    g.add_argument("--bpr-sync-every", type=float, default=0.1)
    g = p.add_argument_group("milvus")
    g.add_argument("--vectors", type=float, default=1e9)
    g.add_argument("--vec-dim", type=int, default=128)
    g.add_argument("--hnsw-m", type=int, default=16)
    g.add_argument("--node-mem-gb", type=float, default=128.0)
    return p


def check_args(a) -> None:
    bad = [(name, v) for name, v in (("--nodes", min(a.nodes)), ("--cores", a.cores), ("--dim", a.dim),
                                      ("--mf-dim", a.mf_dim), ("--vec-dim", a.vec_dim)) if v < 1]
    if bad:
        raise SystemExit(f"{bad[0][0]} must be >= 1; got {bad[0][1]}")
    for name, v in (("--sync-every", a.sync_every), ("--bpr-sync-every", a.bpr_sync_every),
                    ("--efficiency", a.efficiency), ("--link-efficiency", a.link_efficiency)):
        if not 0 < v <= 1:
            raise SystemExit(f"{name} must be in (0, 1]; got {v}")


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    check_args(a)
    c = load_constants(a.constants)
    if a.show_constants:
        print("| constant | value | source |\n|---|---:|---|")
        for k, (_v, src) in DEFAULTS.items():
            print(f"| {k} | {c[k]:.4g} | {src if not a.constants else 'from ' + a.constants + ' or: ' + src} |")
        return 0
    for case in a.case:
        title, fn = CASES[case]
        for gbit in (a.gbit if case != "milvus" else a.gbit[:1]):
            head, rows, notes = fn(a, c, gbit)
            link = "loopback constants measured here" if gbit <= 0 else f"{gbit:g} Gbit/s x {a.link_efficiency}"
            print(f"\n### {title} ({link})\n")
            for line in notes:
                print(f"- {line}")
            print()
            print(markdown(head, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
