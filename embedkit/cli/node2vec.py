"""CLI verbs for node2vec: ``embedkit train node2vec``, ``embedkit eval node2vec`` and the demo step.

    embedkit train node2vec edges.txt --name graph --p 1 --q 0.5 --dim 128
    embedkit query graph NODE -k 10
    embedkit eval node2vec graph --labels labels.tsv
"""

from __future__ import annotations

from ..errors import InputError
from .common import (
    add_store_option,
    add_sync_option,
    add_train_options,
    existing_file,
    get_store,
    out,
    refuse_existing,
    save_trained,
)

DEMO_NAME = "demo-graph"


def register(groups) -> None:
    """Add ``train node2vec`` and ``eval node2vec``."""
    p = groups.train.add_parser(
        "node2vec", help="train node vectors with p/q-biased random walks from an edge list",
        description="Train node2vec on an edge list ('src dst [weight]' per line; whitespace, tab or comma; "
                    "'#' comments; .gz too) and save the node vectors as an index.")
    p.add_argument("edges", metavar="EDGES", help="edge-list file")
    add_train_options(p, epochs=1, dim=128)
    p.add_argument("--p", type=float, default=1.0, help="return parameter: weight w/p back to the previous node (default: 1)")
    p.add_argument("--q", type=float, default=1.0, help="in-out parameter: weight w/q away from it (default: 1)")
    p.add_argument("--walk-length", type=int, default=80, help="nodes per walk (default: 80)")
    p.add_argument("--walks-per-node", type=int, default=10, help="walks started from each node (default: 10)")
    p.add_argument("--window", type=int, default=10, help="skip-gram context window (default: 10)")
    p.add_argument("--negative", type=int, default=5, help="noise nodes per pair (default: 5)")
    p.add_argument("--sample", type=float, default=0.0, help="subsampling threshold, 0 disables (default: 0)")
    p.add_argument("--lr", type=float, default=0.025, help="initial learning rate (default: 0.025)")
    p.add_argument("--min-lr", type=float, default=0.0001, help="final learning rate (default: 0.0001)")
    p.add_argument("--directed", action="store_true", help="read the edges as directed (default: undirected)")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--weighted", dest="weighted", action="store_true", default=None,
                   help="require a third column with the weight (default: weighted if the first edge has one)")
    w.add_argument("--unweighted", dest="weighted", action="store_false", help="ignore a third column")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "gensim"],
                   help="skip-gram trainer; auto: torch on CUDA, else gensim (default: auto)")
    p.add_argument("--workers", type=int, default=None,
                   help="CPU threads: walks and training on CPU (gensim's threads too); ignored on CUDA "
                        "(default: all cores)")
    add_sync_option(p)
    p.set_defaults(func=_train)

    p.add_argument("--update", metavar="NAME", default=None,
                   help="continue training the model saved as NAME on EDGES (the grown graph; new nodes are added; "
                        "walk options are those of NAME; --lr defaults to its lr / 4)")
    p.add_argument("--new-nodes-only", action="store_true",
                   help="with --update: embed only the nodes NAME lacks, old vectors frozen (no retraining)")

    m = groups.train.add_parser(
        "metapath2vec", help="train node vectors of a typed (heterogeneous) graph along metapaths",
        description="Train metapath2vec on a typed edge list (lines 'src_type src relation dst_type dst [weight]') "
                    "and save the vectors (keys 'type:id') as an index.")
    m.add_argument("edges", metavar="EDGES", help="typed edge-list file")
    add_train_options(m, epochs=1, dim=128)
    m.add_argument("--metapath", action="append", required=True, metavar="T1,T2,...,T1",
                   help="node types of one metapath, comma separated, first == last (repeatable)")
    m.add_argument("--walk-length", type=int, default=50, help="nodes per walk (default: 50)")
    m.add_argument("--walks-per-node", type=int, default=10, help="walks per start node (default: 10)")
    m.add_argument("--window", type=int, default=5, help="skip-gram context window (default: 5)")
    m.add_argument("--negative", type=int, default=5, help="noise nodes per pair (default: 5)")
    m.add_argument("--lr", type=float, default=0.025, help="initial learning rate (default: 0.025)")
    m.add_argument("--directed", action="store_true", help="read the edges as directed (default: undirected)")
    m.add_argument("--workers", type=int, default=None, help="CPU threads (default: all cores)")
    add_sync_option(m)
    m.set_defaults(func=_train_metapath2vec)

    e = groups.eval.add_parser(
        "node2vec", help="node-classification F1 of saved node vectors",
        description="One-vs-rest logistic regression on a random share of the labelled nodes; "
                    "micro and macro F1 on the rest.")
    e.add_argument("name", metavar="NAME", help="index name in the store")
    e.add_argument("--labels", required=True, metavar="LABELS",
                   help="file of 'node label [label ...]' lines (tab, space or comma separated; a node may repeat)")
    e.add_argument("--train-fraction", type=float, default=0.5, help="labelled share used for training (default: 0.5)")
    e.add_argument("--seed", type=int, default=0, help="random split seed (default: 0)")
    add_store_option(e)
    e.set_defaults(func=_eval)


def _update(args) -> int:
    from ..data.graph import Graph
    from ..trainers.node2vec import Node2Vec

    path = existing_file(args.edges)
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    trainer = Node2Vec.from_store(args.update, store)
    graph = Graph.from_edgelist(path, directed=args.directed, weighted=args.weighted)
    before = len(trainer.embeddings_)
    if args.new_nodes_only:
        trainer.embed_new_nodes(graph, show_progress=not args.no_progress)
    else:
        trainer.partial_fit(graph, epochs=args.epochs, show_progress=not args.no_progress)
    saved = save_trained(args, trainer, meta={"edges": str(path), "updated_from": args.update})
    how = "embedded new nodes of" if args.new_nodes_only else "continued"
    out(f"node2vec: {how} {args.update!r} on {graph}: {before} -> {len(trainer.embeddings_)} nodes")
    out(f"saved index {args.name!r} to {saved}")
    return 0


def _train_metapath2vec(args) -> int:
    from ..data.graph import Graph
    from ..trainers.metapath2vec import MetaPath2Vec

    path = existing_file(args.edges)
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    metapaths = [[t.strip() for t in m.split(",") if t.strip()] for m in args.metapath]
    trainer = MetaPath2Vec(metapaths=metapaths, dim=args.dim, walk_length=args.walk_length,
                           walks_per_node=args.walks_per_node, window=args.window, epochs=args.epochs,
                           negative=args.negative, lr=args.lr, seed=args.seed, device=args.device, workers=args.workers,
                           sync_every=args.sync_every)
    trainer.check_params()
    graph = Graph.from_typed_edgelist(path, directed=args.directed)
    emb = trainer.fit(graph, show_progress=not args.no_progress)
    saved = save_trained(args, trainer, meta={"edges": str(path), "metapaths": metapaths})
    out(f"trained metapath2vec on {graph}: {len(emb)} nodes x {emb.dim} dims, "
        f"final loss {trainer.loss_history_[-1]:.4f}")
    out(f"saved index {args.name!r} to {saved}")
    return 0


def _train(args) -> int:
    from ..data.graph import Graph
    from ..trainers.node2vec import Node2Vec

    if args.update:
        return _update(args)
    if args.new_nodes_only:  # it would train a new model from scratch instead: refused before any work
        raise InputError("--new-nodes-only works with --update NAME (it embeds the nodes NAME lacks, old vectors "
                         "frozen); add --update NAME, or drop --new-nodes-only to train a new model")
    path = existing_file(args.edges)
    store = get_store(args)
    refuse_existing(store, args.name, args.force)
    trainer = Node2Vec(dim=args.dim, walk_length=args.walk_length, walks_per_node=args.walks_per_node,
                       window=args.window, p=args.p, q=args.q, epochs=args.epochs, negative=args.negative,
                       sample=args.sample, lr=args.lr, min_lr=args.min_lr, seed=args.seed, device=args.device,
                       backend=args.backend, workers=args.workers, sync_every=args.sync_every)
    trainer.check_params()  # fail on bad parameters before reading the graph
    graph = Graph.from_edgelist(path, directed=args.directed, weighted=args.weighted)
    emb = trainer.fit(graph, show_progress=not args.no_progress)
    meta = {"edges": str(path), "graph": {"nodes": graph.num_nodes, "edges": graph.num_edges,
                                          "directed": graph.directed, "weighted": graph.weighted},
            "backend": trainer.backend_, "skipped_nodes": len(trainer.skipped_nodes_)}
    saved = save_trained(args, trainer, meta=meta)
    loss = trainer.loss_history_[-1] if trainer.loss_history_ else float("nan")
    out(f"trained node2vec (p={args.p:g}, q={args.q:g}, {trainer.backend_}) on {graph}: "
        f"{len(emb)} nodes x {emb.dim} dims, final loss {loss:.4f}")
    if trainer.skipped_nodes_:
        out(f"skipped {len(trainer.skipped_nodes_)} node(s) without edges")
    out(f"saved index {args.name!r} to {saved}")
    return 0


def _eval(args) -> int:
    from ..evaluate.graphs import node_classification

    labels = existing_file(args.labels)
    emb = get_store(args).load(args.name).to_embeddings()
    res = node_classification(emb, labels, train_fraction=args.train_fraction, seed=args.seed)
    out(f"micro_f1 {res['micro_f1']:.4f}   macro_f1 {res['macro_f1']:.4f}   "
        f"(trained on {res['n_train']} nodes, tested on {res['n_test']})")
    return 0


def demo(args=None) -> None:
    """Node2vec on Zachary's karate club (networkx, seconds): save 'demo-graph', print neighbours."""
    import networkx as nx

    from ..data.graph import Graph
    from ..evaluate.graphs import node_classification
    from ..trainers.node2vec import Node2Vec

    G = nx.karate_club_graph()
    graph = Graph.from_networkx(G, weight=None)
    trainer = Node2Vec(dim=32, walk_length=40, walks_per_node=20, window=5, p=1.0, q=0.5, epochs=2, seed=0,
                       device="cpu", workers=1)
    emb = trainer.fit(graph, show_progress=not getattr(args, "no_progress", False))
    path = trainer.to_store(DEMO_NAME, get_store(args), metric="cosine", kind="flat", overwrite=True,
                            meta={"source": "networkx karate_club_graph"})
    club = {str(n): G.nodes[n]["club"] for n in G}
    out(f"node2vec on Zachary's karate club ({graph}) -> index {DEMO_NAME!r} in {path}")
    for node in ("0", "33"):
        near = ", ".join(f"{k} [{club[k]}] ({s:.2f})" for k, s in emb.most_similar(node, k=5))
        out(f"node {node} [{club[node]}]: {near}")
    f1 = node_classification(emb, club, train_fraction=0.5, seed=0)
    out(f"club prediction from the vectors (half the members labelled): macro-F1 {f1['macro_f1']:.2f}")
