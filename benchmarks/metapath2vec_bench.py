"""MetaPath2Vec benchmark: embedkit beside PyG's MetaPath2Vec on a planted user-item-tag graph.

The graph (built inline, seeded): ``--communities`` communities; each user buys ``--buys``
items and each item carries ``--tags-per-item`` tags, a share ``--noise`` of them drawn from
any community instead of the node's own. The known answer is each node's community. Both
systems walk the metapath user-item-tag-item-user with the same walk length, walks per node,
window ("context_size" in PyG), dimension, negatives and epochs; PyG trains with its own loader
and SparseAdam (lr 0.01, as in PyG's example), embedkit with the shared skip-gram engine (SGD,
lr 0.025 -> 0.0001). PyG makes one SparseAdam step per ``--pyg-batch-size`` start nodes, so a
small graph gives it few steps per epoch: ``--pyg-batch-size`` / ``--pyg-epochs`` give it more.
Reported: fit seconds and node-classification micro/macro-F1 of users and items (logistic
regression, half of the nodes train; embedkit.evaluate.node_classification).

    python benchmarks/metapath2vec_bench.py                       # defaults: 4,000 users
    python benchmarks/metapath2vec_bench.py --users 20000 --systems ours
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import embedkit as ek  # noqa: E402
from embedkit.evaluate.graphs import node_classification  # noqa: E402
from embedkit.trainers.metapath2vec import MetaPath2Vec  # noqa: E402

METAPATH = ["user", "item", "tag", "item", "user"]


def planted(a):
    """(src_type, src, rel, dst_type, dst) columns, and the community of every node."""
    rng = np.random.default_rng(a.seed)
    k = a.communities
    n_items, n_tags = a.users // 2, max(k * 4, a.users // 50)
    comm = {"user": rng.integers(0, k, a.users), "item": np.arange(n_items) % k, "tag": np.arange(n_tags) % k}

    def pick(of_comm, pool_comm, size):
        own = rng.random(size) >= a.noise
        out = np.empty(size, dtype=np.int64)
        for j in range(size):
            cand = np.flatnonzero(pool_comm == of_comm) if own[j] else np.arange(len(pool_comm))
            out[j] = rng.choice(cand)
        return out

    u_src, u_dst = [], []
    for u in range(a.users):
        for i in pick(comm["user"][u], comm["item"], a.buys):
            u_src.append(u)
            u_dst.append(i)
    t_src, t_dst = [], []
    for i in range(n_items):
        for t in pick(comm["item"][i], comm["tag"], a.tags_per_item):
            t_src.append(i)
            t_dst.append(t)
    edges = dict(bought=(np.array(u_src), np.array(u_dst)), tagged=(np.array(t_src), np.array(t_dst)))
    labels = {f"{t}:{i}": int(c) for t, cs in comm.items() for i, c in enumerate(cs)}
    return edges, labels, {"user": a.users, "item": n_items, "tag": n_tags}


def run_ours(edges, sizes, a):
    (us, ui), (is_, it) = edges["bought"], edges["tagged"]
    m = len(us) + len(is_)
    g = ek.Graph.from_typed_arrays(
        np.r_[np.full(len(us), "user"), np.full(len(is_), "item")], np.r_[us, is_],
        np.r_[np.full(len(us), "bought"), np.full(len(is_), "tagged")],
        np.r_[np.full(len(us), "item"), np.full(len(is_), "tag")], np.r_[ui, it],
        nodes={t: range(n) for t, n in sizes.items()})
    assert g.num_edges <= m
    t0 = time.perf_counter()
    model = MetaPath2Vec(metapaths=[METAPATH], dim=a.dim, walk_length=a.walk_length, walks_per_node=a.walks_per_node,
                         window=a.window, epochs=a.epochs, negative=a.negative, seed=a.seed, device="cpu",
                         workers=a.workers)
    emb = model.fit(g, show_progress=a.progress)
    return emb, time.perf_counter() - t0


def run_pyg(edges, sizes, a):
    import torch
    from torch_geometric.nn import MetaPath2Vec as PygMetaPath2Vec

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.workers)
    (us, ui), (is_, it) = edges["bought"], edges["tagged"]
    t = lambda x, y: torch.as_tensor(np.stack([x, y]))  # noqa: E731
    edge_index_dict = {("user", "bought", "item"): t(us, ui), ("item", "rev_bought", "user"): t(ui, us),
                       ("item", "tagged", "tag"): t(is_, it), ("tag", "rev_tagged", "item"): t(it, is_)}
    metapath = [("user", "bought", "item"), ("item", "tagged", "tag"), ("tag", "rev_tagged", "item"),
                ("item", "rev_bought", "user")]
    t0 = time.perf_counter()
    model = PygMetaPath2Vec(edge_index_dict, embedding_dim=a.dim, metapath=metapath, walk_length=a.walk_length - 1,
                            context_size=a.window + 1, walks_per_node=a.walks_per_node, num_negative_samples=a.negative,
                            num_nodes_dict=sizes, sparse=True)
    loader = model.loader(batch_size=a.pyg_batch_size, shuffle=True, num_workers=0)
    opt = torch.optim.SparseAdam(list(model.parameters()), lr=0.01)
    model.train()
    for _ in range(a.pyg_epochs or a.epochs):
        for pos, neg in loader:
            opt.zero_grad()
            loss = model.loss(pos, neg)
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t0
    model.eval()
    keys, vecs = [], []
    with torch.no_grad():
        for typ, n in sizes.items():
            keys += [f"{typ}:{i}" for i in range(n)]
            vecs.append(model(typ).numpy())
    return ek.Embeddings(keys, np.concatenate(vecs)), seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=4000)
    p.add_argument("--communities", type=int, default=4)
    p.add_argument("--buys", type=int, default=5)
    p.add_argument("--tags-per-item", type=int, default=3)
    p.add_argument("--noise", type=float, default=0.3, help="share of edges drawn from any community")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--walk-length", type=int, default=41)
    p.add_argument("--walks-per-node", type=int, default=5)
    p.add_argument("--window", type=int, default=5)
    p.add_argument("--negative", type=int, default=5)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--pyg-batch-size", type=int, default=128, help="start nodes per PyG step (PyG's example: 128)")
    p.add_argument("--pyg-epochs", type=int, default=None, help="PyG epochs (default: --epochs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--systems", nargs="+", default=["ours", "pyg"], choices=["ours", "pyg"])
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json")
    a = p.parse_args(argv)
    edges, labels, sizes = planted(a)
    print(f"graph: {sizes} nodes, {sum(len(s) for s, _ in edges.values())} edges, noise {a.noise}")
    rows = []
    for system in a.systems:
        emb, seconds = (run_ours if system == "ours" else run_pyg)(edges, sizes, a)
        row = {"system": system, "seconds": round(seconds, 2)}
        for typ in ("user", "item"):
            lab = {k: v for k, v in labels.items() if k.startswith(typ + ":")}
            res = node_classification(emb, lab, seed=a.seed)
            row[f"{typ}_micro_f1"], row[f"{typ}_macro_f1"] = round(res["micro_f1"], 4), round(res["macro_f1"], 4)
        rows.append(row)
        print(" | ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(dict(args=vars(a), rows=rows), indent=1))


if __name__ == "__main__":
    main()
