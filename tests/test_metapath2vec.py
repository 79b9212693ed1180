"""Heterogeneous graphs (typed edge lists, typed arrays, PyG HeteroData) and MetaPath2Vec on a
planted user-item-tag graph with a known answer: two communities, each user buying items of
its community, each item tagged with tags of its community."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import embedkit as ek
from embedkit.errors import InputError, ParseError
from embedkit.trainers.metapath2vec import MetaPath2Vec, MetaPathWalker, parse_metapath

from conftest import neighbour_purity

UIT = ["user", "item", "tag", "item", "user"]


def planted(n_users=24, n_items=16, n_tags=8, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        c = int(u >= n_users // 2)
        for i in rng.choice(np.arange(c * n_items // 2, (c + 1) * n_items // 2), 4, replace=False):
            rows.append(("user", f"u{u}", "bought", "item", f"i{i}"))
    for i in range(n_items):
        c = int(i >= n_items // 2)
        for t in rng.choice(np.arange(c * n_tags // 2, (c + 1) * n_tags // 2), 2, replace=False):
            rows.append(("item", f"i{i}", "tagged", "tag", f"t{t}"))
    groups = ({f"user:u{u}": int(u >= n_users // 2) for u in range(n_users)}
              | {f"item:i{i}": int(i >= n_items // 2) for i in range(n_items)}
              | {f"tag:t{t}": int(t >= n_tags // 2) for t in range(n_tags)})
    return rows, groups


def _model(metapaths=(UIT,), **kw):
    return MetaPath2Vec(metapaths=[list(m) for m in metapaths], dim=16, walk_length=13, walks_per_node=10, window=3,
                        epochs=3, device="cpu", **kw)


def test_typed_edgelist_gives_typed_nodes_and_relations(tmp_path):
    rows, _ = planted()
    path = tmp_path / "g.tsv"
    path.write_text("# src_type src rel dst_type dst\n" + "\n".join("\t".join(r) for r in rows) + "\n")
    g = ek.Graph.from_typed_edgelist(path)
    assert g.typed and sorted(g.type_names) == ["item", "tag", "user"]
    assert sorted(g.relation_names) == ["bought", "tagged"]
    assert g.node_type("user:u0") == "user" and len(g.nodes_of_type("tag")) == 8
    assert g.num_edges == len(rows)
    emb = MetaPath2Vec(metapaths=[UIT], dim=4, walk_length=5, walks_per_node=1, device="cpu").fit(path, show_progress=False)
    assert set(emb.keys) <= set(g.nodes) and "user:u0" in emb       # a path is read as a typed edge list
    bad = tmp_path / "bad.tsv"
    bad.write_text("user u1 bought item\n")
    with pytest.raises(ParseError, match="bad.tsv:1:.*5 or 6 fields"):
        ek.Graph.from_typed_edgelist(bad)


def test_metapath2vec_finds_the_planted_communities(tmp_path):
    rows, groups = planted()
    g = ek.Graph.from_typed_arrays(*zip(*rows))
    m = _model()
    emb = m.fit(g, show_progress=False)
    assert set(emb.keys) == set(groups)
    assert neighbour_purity(emb, groups) >= 0.95
    loaded = MetaPath2Vec.load(m.save(tmp_path / "mp"))
    assert loaded.metapaths == [UIT]
    np.testing.assert_array_equal(loaded.embeddings_.vectors, emb.vectors)
    again = _model().fit(g, show_progress=False)            # same seed -> same vectors on CPU
    np.testing.assert_array_equal(again.vectors, emb.vectors)


def test_relation_triples_and_walks_follow_the_metapath():
    rows, groups = planted()
    g = ek.Graph.from_typed_arrays(*zip(*rows))
    steps = parse_metapath([("user", "bought", "item"), ("item", "tagged", "tag"), ("tag", "tagged", "item"),
                            ("item", "bought", "user")], g)
    walker = MetaPathWalker(g)
    starts = torch.as_tensor(np.flatnonzero(g.node_types == g.type_names.index("user")))
    walks, lengths = walker.walk(starts, steps, 9, torch.Generator().manual_seed(0))
    assert bool((lengths == 9).all())
    types = g.node_types[walks.numpy()]
    want = [g.type_names.index(t) for t in ["user", "item", "tag", "item", "user", "item", "tag", "item", "user"]]
    assert (types == np.array(want)).all()
    emb = _model([[("user", "bought", "item"), ("item", "tagged", "tag"), ("tag", "tagged", "item"),
                   ("item", "bought", "user")]]).fit(g, show_progress=False)
    assert neighbour_purity(emb, groups) >= 0.95


def test_hetero_data_loads_with_types():
    pyg = pytest.importorskip("torch_geometric.data")
    data = pyg.HeteroData()
    data["user"].num_nodes = 3
    data["item"].num_nodes = 2
    data["user", "bought", "item"].edge_index = torch.tensor([[0, 1, 2], [0, 0, 1]])
    g = ek.Graph.coerce(data)
    assert g.typed and g.num_nodes == 5 and g.num_edges == 3
    assert g.neighbors("item:0") == ["user:0", "user:1"]
    emb = MetaPath2Vec(metapaths=[[("user", "bought", "item"), ("item", "bought", "user")]], dim=4, walk_length=5,
                       walks_per_node=2, device="cpu").fit(data, show_progress=False)
    assert "user:2" in emb


def test_bad_metapaths_are_one_line_errors():
    rows, _ = planted()
    g = ek.Graph.from_typed_arrays(*zip(*rows))
    with pytest.raises(InputError, match="first and last node types"):
        _model([["user", "item"]]).fit(g, show_progress=False)
    with pytest.raises(InputError, match="node type 'venue' is not in the graph"):
        _model([["user", "venue", "user"]]).fit(g, show_progress=False)
    with pytest.raises(InputError, match="the path must close"):
        _model([[("user", "bought", "item"), ("tag", "tagged", "item")]]).fit(g, show_progress=False)
    with pytest.raises(ValueError, match="'metapaths' parameter of MetaPath2Vec"):
        MetaPath2Vec(metapaths="user").fit(g, show_progress=False)
    with pytest.raises(InputError, match="needs metapaths"):
        MetaPath2Vec().fit(g, show_progress=False)
    with pytest.raises(InputError, match="node types"):
        _model().fit(ek.Graph.from_arrays(["a"], ["b"]), show_progress=False)


def test_cli_trains_metapath2vec_from_a_typed_edge_list(tmp_path, capsys):
    from embedkit.cli import main

    rows, groups = planted()
    path = tmp_path / "g.tsv"
    path.write_text("\n".join(" ".join(r) for r in rows) + "\n")
    assert main(["train", "metapath2vec", str(path), "--metapath", "user,item,tag,item,user", "--name", "mp",
                 "--dim", "8", "--walk-length", "9", "--walks-per-node", "2", "--device", "cpu",
                 "--store", str(tmp_path / "s"), "--no-progress"]) == 0
    assert "3 node types" in capsys.readouterr().out
    assert set(MetaPath2Vec.from_store("mp", tmp_path / "s").embeddings_.keys) == set(groups)
