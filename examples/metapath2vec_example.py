"""MetaPath2Vec and new nodes in one minute: a small user-item-tag graph with two planted
communities, typed edges, metapath walks, and nearest neighbours that stay in the community;
then Node2Vec vectors for nodes added after training, without retraining.

    python examples/metapath2vec_example.py
"""

import networkx as nx
import numpy as np

import embedkit as ek
from embedkit.trainers.metapath2vec import MetaPath2Vec


def typed_edges(n_users=40, n_items=20, n_tags=6, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):                      # users of community c buy items of community c
        c = u % 2
        for i in rng.choice(np.arange(c, n_items, 2), 4, replace=False):
            rows.append(("user", f"u{u}", "bought", "item", f"i{i}"))
    for i in range(n_items):                      # items of community c carry tags of community c
        for t in rng.choice(np.arange(i % 2, n_tags, 2), 2, replace=False):
            rows.append(("item", f"i{i}", "tagged", "tag", f"t{t}"))
    return rows


def main():
    graph = ek.Graph.from_typed_arrays(*zip(*typed_edges()))   # or Graph.from_typed_edgelist(path) / from_hetero
    print(graph, graph.type_names, graph.relation_names)
    model = MetaPath2Vec(metapaths=[["user", "item", "tag", "item", "user"]], dim=16, walk_length=21,
                         walks_per_node=10, window=3, epochs=2, seed=0, device="cpu")
    emb = model.fit(graph, show_progress=False)
    print("user:u0 ->", [k for k, _ in emb.most_similar("user:u0", 5)], "(even ids: u0's community)")

    # Node2Vec: embed nodes added after training (old vectors frozen), instead of retraining
    g = nx.karate_club_graph()
    n2v = ek.Node2Vec(dim=16, walk_length=20, walks_per_node=10, window=5, seed=0, device="cpu", backend="torch")
    n2v.fit(g, show_progress=False)
    g.add_edges_from([("new", 0), ("new", 1), ("new", 2)])
    new = n2v.embed_new_nodes(g)
    print("new ->", [k for k, _ in n2v.embeddings_.most_similar("new", 5)], f"({len(new)} new node)")


if __name__ == "__main__":
    main()
