"""Node2Vec end to end: known answers on tiny graphs, inputs, determinism, evaluation, CLI."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch

import embedkit as ek
from embedkit.cli import main
from embedkit.errors import InputError
from embedkit.evaluate import link_prediction, node_classification
from embedkit.evaluate.graphs import read_labels, split_edges

from conftest import neighbour_purity, two_cliques

SMALL = dict(dim=16, walk_length=20, walks_per_node=10, window=4, seed=0, device="cpu")


@pytest.mark.parametrize("backend", ["torch", "gensim"])
@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0)])
def test_two_cliques_neighbours_stay_inside(backend, p, q):
    G, groups = two_cliques(8)                   # two 8-cliques joined by one bridge edge
    g = ek.Graph.from_networkx(G)
    model = ek.Node2Vec(p=p, q=q, backend=backend, workers=1 if backend == "gensim" else None, **SMALL)
    emb = model.fit(g, show_progress=False)
    assert len(emb) == 16 and emb.dim == 16 and emb.vectors.dtype == np.float32
    assert np.isfinite(emb.vectors).all()
    assert neighbour_purity(emb, groups, k=6) == 1.0     # every node's 6 nearest: its own clique
    assert model.backend_ == backend and len(model.loss_history_) == 1


def test_disconnected_graph_and_isolated_node_is_skipped_with_warning():
    G = nx.Graph()
    G.add_edges_from(nx.complete_graph(6).edges())
    G.add_edges_from((u + 10, v + 10) for u, v in nx.complete_graph(6).edges())
    G.add_node(99)
    model = ek.Node2Vec(backend="torch", **SMALL)
    with pytest.warns(UserWarning, match="1 node.*'99'"):
        emb = model.fit(G, show_progress=False)
    assert "99" not in emb and model.skipped_nodes_ == ["99"] and len(emb) == 12
    for node, side in (("0", range(6)), ("12", range(10, 16))):
        top = {k for k, _ in emb.most_similar(node, k=5)}
        assert top == {str(i) for i in side} - {node}


def test_directed_graph_with_dangling_node():
    g = ek.Graph.from_arrays(["a", "b", "c", "a", "c"], ["b", "c", "a", "d", "d"], directed=True)
    emb = ek.Node2Vec(backend="torch", p=0.5, q=2.0, **SMALL).fit(g, show_progress=False)
    assert set(emb.keys) == {"a", "b", "c", "d"}


@pytest.mark.parametrize("workers", [1, 2])
def test_torch_backend_same_seed_same_vectors_other_seed_differs(workers):
    g = nx.karate_club_graph()
    params = dict(SMALL, walks_per_node=3, backend="torch", workers=workers)
    a = ek.Node2Vec(**params).fit(g, show_progress=False)
    b = ek.Node2Vec(**params).fit(g, show_progress=False)
    c = ek.Node2Vec(**dict(params, seed=1)).fit(g, show_progress=False)
    assert a.keys == b.keys and np.array_equal(a.vectors, b.vectors)
    assert not np.allclose(a.vectors, c.vectors)


def test_fit_takes_graph_by_keyword():
    params = dict(SMALL, walks_per_node=2, backend="torch", workers=1)
    a = ek.Node2Vec(**params).fit(graph=nx.karate_club_graph(), show_progress=False)
    b = ek.Node2Vec(**params).fit(nx.karate_club_graph(), show_progress=False)
    assert a.keys == b.keys and np.array_equal(a.vectors, b.vectors)


@pytest.mark.parametrize("backend", ["torch", "gensim"])
def test_callback_every_epoch_and_loss_history(backend):
    seen = []
    model = ek.Node2Vec(backend=backend, workers=1 if backend == "gensim" else None,
                        **dict(SMALL, epochs=3, walks_per_node=2))
    model.fit(nx.path_graph(12), show_progress=False, callback=lambda e, loss: seen.append((e, loss)))
    assert [e for e, _ in seen] == [1, 2, 3]
    assert len(model.loss_history_) == 3 and all(np.isfinite(x) for x in model.loss_history_)


def test_accepts_every_graph_input(tmp_path):
    from torch_geometric.data import Data

    p = tmp_path / "e.txt"
    p.write_text("x y\ny z\nz x\n")
    model = ek.Node2Vec(**dict(SMALL, walks_per_node=1))
    assert set(model.fit(p, show_progress=False).keys) == {"x", "y", "z"}
    assert set(model.fit(str(p), show_progress=False).keys) == {"x", "y", "z"}
    data = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), num_nodes=3)
    assert set(model.fit(data, show_progress=False).keys) == {"0", "1", "2"}
    with pytest.raises(InputError, match="expected an ek.Graph"):
        model.fit([1, 2, 3])


@pytest.mark.parametrize("param,value,fragment", [
    ("p", 0.0, "'p' parameter of Node2Vec must be a float in the range (0, inf)"),
    ("q", -1.0, "'q' parameter"),
    ("walk_length", 1, "'walk_length' parameter of Node2Vec must be an int in the range [2, inf)"),
    ("window", 0, "The 'window' parameter of Node2Vec must be an int in the range [1, 1000]. Got 0 instead."),
    ("negative", 1001, "The 'negative' parameter of Node2Vec must be an int in the range [1, 1000]. Got 1001"),
    ("backend", "numba", "'backend' parameter of Node2Vec must be one of"),
    ("device", "tpu", "'device' parameter of Node2Vec"),
    ("dim", 10_001, "'dim' parameter of Node2Vec must be an int in the range [1, 10000]"),
    ("workers", 0, "'workers' parameter of Node2Vec"),
    ("min_lr", 0.5, "'min_lr' parameter of Node2Vec must be a float in the range [0.0, lr=0.025]"),
    ("walk_batch_size", 0, "'walk_batch_size'"),
])
def test_bad_parameters(param, value, fragment):
    with pytest.raises(InputError) as info:
        ek.Node2Vec(**{param: value}).fit(nx.path_graph(3), show_progress=False)
    assert fragment in str(info.value)


def test_params_constraints_and_nothing_fitted_before_fit():
    model = ek.Node2Vec()
    assert set(ek.Node2Vec._parameter_constraints) == set(model.get_params())
    assert not [k for k in vars(model) if k.endswith("_")]
    assert not hasattr(model, "skipped_nodes_") and not hasattr(model, "loss_history_")
    with pytest.raises(InputError, match="'p' parameter"):
        ek.Node2Vec(p=0.0).walk_stream(nx.path_graph(3))          # the public walk stream checks too


@pytest.mark.parametrize("backend", ["torch", "gensim"])
@pytest.mark.parametrize("workers", [1, 2, None])
def test_workers_are_the_torch_threads_on_cpu_and_restored(backend, workers):
    """As for Word2Vec: on CPU, walks and training run with ``workers`` torch threads (gensim:
    also ``workers`` gensim threads), nothing is ignored, and fit restores the thread count."""
    import warnings

    from embedkit._device import cpu_count
    from embedkit.trainers import IgnoredParameterWarning

    before = torch.get_num_threads()
    torch.set_num_threads(3)                  # the count that fit must restore
    seen = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", IgnoredParameterWarning)
            ek.Node2Vec(backend=backend, workers=workers, **dict(SMALL, walks_per_node=1, epochs=2)).fit(
                nx.path_graph(6), show_progress=False, callback=lambda e, loss: seen.append(torch.get_num_threads()))
        assert seen == [workers or cpu_count()] * 2
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_workers_ignored_by_torch_backend_on_cuda_warns():
    from embedkit.trainers import IgnoredParameterWarning

    with pytest.warns(IgnoredParameterWarning,
                      match="'workers' parameter \\(2\\) is ignored by the torch backend on CUDA"):
        ek.Node2Vec(backend="torch", workers=2, **dict(SMALL, device="cuda", walks_per_node=1)).fit(
            nx.path_graph(6), show_progress=False)


@pytest.mark.parametrize("backend", ["torch", "gensim"])
def test_save_load_and_store_round_trip(tmp_path, backend):
    G = nx.karate_club_graph()
    G.add_node(99)                                            # isolated: skipped, no vector
    model = ek.Node2Vec(backend=backend, workers=1 if backend == "gensim" else None,
                        **dict(SMALL, walks_per_node=3, epochs=2))
    with pytest.warns(UserWarning, match="'99'"):
        emb = model.fit(G, show_progress=False)
    back = ek.Node2Vec.load(model.save(tmp_path / "n2v"))     # ".npz" added
    assert back.embeddings_.keys == emb.keys and "99" not in back.embeddings_
    np.testing.assert_array_equal(back.embeddings_.vectors, emb.vectors)
    np.testing.assert_array_equal(back.visit_counts_, model.visit_counts_)
    np.testing.assert_array_equal(back._output, model._output)
    assert back._output.shape == emb.vectors.shape and np.abs(back._output).sum() > 0
    assert back.skipped_nodes_ == ["99"] and back.nodes_ == model.nodes_ and back.backend_ == backend
    assert back.loss_history_ == model.loss_history_ and len(back.loss_history_) == 2
    assert not hasattr(back, "graph_")                        # the graph is not saved
    store = ek.Store(tmp_path / "store")
    model.to_store("g", store)
    again = ek.Node2Vec.from_store("g", store)
    np.testing.assert_array_equal(again.embeddings_.vectors, emb.vectors)
    assert again.get_params() == model.get_params()
    assert len(store.load("g")) == len(emb) == 34


def test_damaged_model_file_is_store_error(tmp_path):
    model = ek.Node2Vec(backend="torch", **dict(SMALL, walks_per_node=1))
    model.fit(nx.path_graph(6), show_progress=False)
    path = model.save(tmp_path / "m.npz")
    arrays = dict(np.load(path))
    arrays["vectors"] = arrays["vectors"][:-1]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ek.StoreError, match="do not match"):
        ek.Node2Vec.load(tmp_path / "cut.npz")
    with pytest.raises(ek.StoreError, match="holds a Node2Vec, not a Word2Vec"):
        ek.Word2Vec.load(path)
    with pytest.raises(ek.StoreError, match="no such file"):
        ek.Node2Vec.load(tmp_path / "missing.npz")


def test_graph_without_edges():
    G = nx.Graph()
    G.add_nodes_from([1, 2])
    with pytest.raises(InputError, match="no edges"):
        ek.Node2Vec(**SMALL).fit(G, show_progress=False)


def test_node_classification_on_planted_blocks_and_multilabel():
    G = nx.stochastic_block_model([30, 30, 30], [[0.4, 0.01, 0.01], [0.01, 0.4, 0.01], [0.01, 0.01, 0.4]], seed=1)
    emb = ek.Node2Vec(**dict(SMALL, walks_per_node=5)).fit(G, show_progress=False)
    labels = {str(n): G.nodes[n]["block"] for n in G}
    res = node_classification(emb, labels, train_fraction=0.5, seed=0)
    assert res["macro_f1"] > 0.9 and res["micro_f1"] > 0.9
    shuffled = dict(zip(labels, np.random.default_rng(0).permutation(list(labels.values())).tolist()))
    assert node_classification(emb, shuffled)["macro_f1"] < 0.6          # the test can fail
    multi = {k: [v, "even" if int(k) % 2 == 0 else "odd"] for k, v in labels.items()}
    res = node_classification(emb, multi)
    assert 0.0 <= res["macro_f1"] <= 1.0 and res["micro_f1"] > 0.5


def test_split_edges_keeps_components_connected():
    G = nx.connected_watts_strogatz_graph(60, 6, 0.1, seed=0)
    g = ek.Graph.from_networkx(G)
    train, pos, neg = split_edges(g, test_fraction=0.3, keep_connected=True, seed=0)
    H = nx.Graph()
    H.add_nodes_from(range(g.num_nodes))
    s, d, _ = train.to_edge_arrays()
    H.add_edges_from(zip(s.tolist(), d.tolist()))
    assert nx.is_connected(H)
    assert len(pos) == len(neg) == round(0.3 * g.num_edges)
    assert train.num_edges == g.num_edges - len(pos)
    assert not any(H.has_edge(a, b) for a, b in pos.tolist())
    assert not any(G.has_edge(a, b) for a, b in neg.tolist())
    with pytest.raises(InputError, match="removable"):
        split_edges(ek.Graph.from_networkx(nx.path_graph(10)), 0.5, keep_connected=True)


def test_link_prediction_beats_chance_on_communities():
    G = nx.stochastic_block_model([40, 40], [[0.3, 0.01], [0.01, 0.3]], seed=2)
    res = link_prediction(G, ek.Node2Vec(**dict(SMALL, walks_per_node=5)), test_fraction=0.2, seed=0)
    assert res["auc"] > 0.65
    rng = np.random.default_rng(0)

    def noise(graph):
        return ek.Embeddings(graph.nodes, rng.normal(size=(graph.num_nodes, 8)))

    assert link_prediction(G, noise, test_fraction=0.2)["auc"] < 0.65


def test_read_labels(tmp_path):
    p = tmp_path / "labels.tsv"
    p.write_text("# node label\na\tx\nb y z\na w\n")
    assert read_labels(p) == {"a": ["x", "w"], "b": ["y", "z"]}
    p.write_text("a x\nlonely\n")
    with pytest.raises(ek.ParseError, match=r"labels.tsv:2: "):
        read_labels(p)


def test_cli_train_query_eval_and_errors(tmp_path, capsys):
    G, groups = two_cliques(8)
    edges = tmp_path / "edges.txt"
    edges.write_text("\n".join(f"{a} {b}" for a, b in G.edges()) + "\n")
    labels = tmp_path / "labels.tsv"
    labels.write_text("".join(f"{node}\t{group}\n" for node, group in groups.items()))
    store = str(tmp_path / "store")
    args = ["--store", store, "train", "node2vec", str(edges), "--name", "g", "--dim", "16", "--walk-length", "20",
            "--walks-per-node", "10", "--window", "4", "--p", "0.5", "--q", "2", "--no-progress", "--device", "cpu"]
    assert main(args) == 0
    assert "saved index 'g'" in capsys.readouterr().out
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err
    idx = ek.Store(store).load("g")
    assert len(idx) == 16 and idx.meta["params"]["q"] == 2.0
    assert ek.Node2Vec.from_store("g", store).embeddings_.dim == 16
    assert main(["--store", store, "eval", "node2vec", "g", "--labels", str(labels)]) == 0
    assert "macro_f1 1.0000" in capsys.readouterr().out
    bad = tmp_path / "bad.txt"
    bad.write_text("a b\nc\n")
    assert main(["--store", store, "train", "node2vec", str(bad), "--name", "h", "--no-progress"]) == 1
    assert f"{bad}:2:" in capsys.readouterr().err
    assert main(["--store", store, "train", "node2vec", str(edges), "--name", "h", "--p", "0"]) == 1
    assert "'p' parameter" in capsys.readouterr().err


def test_demo_writes_demo_graph(tmp_path, capsys):
    import argparse

    from embedkit.cli.node2vec import demo

    demo(argparse.Namespace(store=str(tmp_path), no_progress=True))
    text = capsys.readouterr().out
    assert "node 0 [Mr. Hi]" in text and "node 33 [Officer]" in text
    assert ek.Store(str(tmp_path)).exists("demo-graph")
    assert main(["--store", str(tmp_path), "query", "demo-graph", "0", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (0.25, 4.0)])
def test_cuda_fit_two_cliques_and_same_seed(p, q):
    """The auto backend on CUDA walks and trains on the GPU; same seed -> same walks there."""
    G, groups = two_cliques(8)
    g = ek.Graph.from_networkx(G)
    params = dict(SMALL, device="cuda", p=p, q=q)
    model = ek.Node2Vec(**params)
    emb = model.fit(g, show_progress=False)
    assert model.backend_ == "torch" and np.isfinite(emb.vectors).all()
    assert neighbour_purity(emb, groups, k=6) == 1.0
    a = [t.cpu() for t, _ in ek.Node2Vec(**params).walk_stream(g).epoch(0)]
    b = [t.cpu() for t, _ in ek.Node2Vec(**params).walk_stream(g).epoch(0)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("source", ["networkx", "pyg"])
def test_integer_node_ids_become_string_keys_with_a_one_line_hint(source):
    """networkx graphs with int nodes and PyG graphs are keyed "0", "1", ...; an int lookup says so."""
    from embedkit.errors import MissingKeyError

    g, _ = two_cliques()
    if source == "pyg":
        edges = torch.tensor(list(g.edges()), dtype=torch.long).T
        g = torch.cat([edges, edges.flip(0)], dim=1)
    emb = ek.Node2Vec(dim=8, walks_per_node=2, walk_length=10, epochs=1, workers=1).fit(g, show_progress=False)
    assert emb["0"].shape == (8,)
    assert emb.most_similar("0", k=3)
    for lookup in (lambda: emb[0], lambda: emb.most_similar(0)):
        with pytest.raises(MissingKeyError) as info:
            lookup()
        msg = str(info.value)
        assert "\n" not in msg and "'0'" in msg and "string" in msg
