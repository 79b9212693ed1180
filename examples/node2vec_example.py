"""Node2Vec on networkx's bundled graphs: neighbours, a saved index, club prediction, link prediction.

1. Les Miserables co-appearance graph (weighted): q < 1 walks outward (communities), q > 1
   stays local (structural roles); print each one's neighbours of Valjean.
2. Index the vectors with FAISS and query it.
3. Zachary's karate club: predict each member's club from the vectors (half labelled).
4. Link prediction: hold out 20% of the Les Miserables edges, train on the rest, ROC-AUC.

Runs on CPU in well under a minute:  python examples/node2vec_example.py
"""

import networkx as nx

import embedkit as ek
from embedkit.evaluate import link_prediction, node_classification

# 1. weighted graph from networkx; node ids become strings
graph = ek.Graph.from_networkx(nx.les_miserables_graph())
print(graph)
for q in (0.5, 2.0):
    model = ek.Node2Vec(dim=32, walk_length=40, walks_per_node=10, window=5, p=1.0, q=q, epochs=2, seed=0, workers=1)
    emb = model.fit(graph, show_progress=False)
    near = ", ".join(k for k, _ in emb.most_similar("Valjean", k=6))
    print(f"q={q}: Valjean ~ {near}")

# 2. FAISS index over the vectors (cosine)
index = emb.to_index(metric="cosine")
print("index neighbours of Javert:", index.search_keys(["Javert"], k=5).keys[0])

# 3. node classification on the karate club (labels: the club each member joined)
karate = nx.karate_club_graph()
clubs = {str(n): karate.nodes[n]["club"] for n in karate}
model = ek.Node2Vec(dim=32, walk_length=40, walks_per_node=20, window=5, q=0.5, epochs=2, seed=0, workers=1)
emb = model.fit(karate, show_progress=False)
scores = node_classification(emb, clubs, train_fraction=0.5, seed=0)
print(f"karate club membership: micro-F1 {scores['micro_f1']:.2f}, macro-F1 {scores['macro_f1']:.2f}")

# 4. link prediction: the trainer only sees the residual graph (kept connected)
model = ek.Node2Vec(dim=32, walk_length=40, walks_per_node=10, window=5, q=0.5, epochs=2, seed=0, workers=1)
auc = link_prediction(graph, model, test_fraction=0.2, keep_connected=True, seed=0)["auc"]
print(f"Les Miserables link prediction ROC-AUC: {auc:.2f} (0.5 = chance)")
