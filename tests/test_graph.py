"""ek.Graph: loaders, CSR layout and the documented rules (duplicates, self-loops, isolated nodes)."""

from __future__ import annotations

import gzip
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import torch

import embedkit as ek
from embedkit.errors import InputError, MissingKeyError, ParseError


def _write(tmp_path, text, name="g.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _edges(g):
    """Set of (src, dst, weight) by node id, as stored."""
    out = set()
    for i, node in enumerate(g.nodes):
        for k in range(g.indptr[i], g.indptr[i + 1]):
            out.add((node, g.nodes[g.indices[k]], None if g.weights is None else float(g.weights[k])))
    return out


def test_edgelist_separators_comments_and_string_ids(tmp_path):
    p = _write(tmp_path, "# header\nalice bob\nbob\tcarol\n\ncarol,dave  # trailing\n   # indented comment\nmr#x alice\n")
    g = ek.Graph.from_edgelist(p)
    assert g.nodes == ["alice", "bob", "carol", "dave", "mr#x"]
    assert not g.directed and not g.weighted
    assert g.num_nodes == 5 and g.num_edges == 4
    assert sorted(g.neighbors("alice")) == ["bob", "mr#x"]
    assert g.neighbors("carol") == ["bob", "dave"]          # rows are sorted by node row


def test_csr_rows_sorted_and_symmetric():
    g = ek.Graph.from_arrays([3, 1, 2, 0], [0, 3, 1, 2])
    for i in range(g.num_nodes):
        row = g.indices[g.indptr[i]:g.indptr[i + 1]]
        assert np.all(np.diff(row) > 0)
    e = {(a, b) for a, b, _ in _edges(g)}
    assert all((b, a) in e for a, b in e)
    assert g.indptr.dtype == np.int64 and g.indices.dtype == np.int64


def test_weights_duplicates_summed_and_self_loop_once(tmp_path):
    p = _write(tmp_path, "a b 1.5\nb a 0.5\na c 2\nc c 4\n")
    g = ek.Graph.from_edgelist(p)
    assert g.weighted
    assert _edges(g) == {("a", "b", 2.0), ("b", "a", 2.0), ("a", "c", 2.0), ("c", "a", 2.0), ("c", "c", 4.0)}
    assert g.num_edges == 3                                   # a-b, a-c, c-c


def test_unweighted_duplicates_merge_without_weight():
    g = ek.Graph.from_arrays(["a", "b", "a"], ["b", "a", "b"])
    assert not g.weighted and g.num_edges == 1 and g.neighbors("a") == ["b"]


def test_directed_keeps_direction_and_dangling(tmp_path):
    p = _write(tmp_path, "a b\nb c\na b\n")
    g = ek.Graph.from_edgelist(p, directed=True)
    assert g.directed and g.num_edges == 2
    assert g.neighbors("a") == ["b"] and g.neighbors("c") == []
    assert g.dangling_mask().tolist() == [False, False, True]
    assert not g.isolated_mask().any()                       # c has an in-edge: not isolated


def test_weighted_flag(tmp_path):
    p = _write(tmp_path, "a b 2\nb c 3\n")
    assert ek.Graph.from_edgelist(p).weighted
    assert not ek.Graph.from_edgelist(p, weighted=False).weighted
    q = _write(tmp_path, "a b\n", "u.txt")
    with pytest.raises(ParseError, match=r"u.txt:1: .*weighted=False"):
        ek.Graph.from_edgelist(q, weighted=True)


@pytest.mark.parametrize("text,line,fragment", [
    ("a b\nc\n", 2, "2 or 3 fields"),
    ("a b\nc d e f\n", 2, "got 4"),
    ("a b 1\n# c\nc d x\n", 3, "not a number"),
    ("a b 1\nc d -2\n", 2, "> 0"),
    ("a b 1\nc d nan\n", 2, "> 0"),
    ("a b 1\n\n\nc d\n", 4, "no weight but line 1 has one"),
    ("alice bob\ncarol x y\n", 2, "3 fields but line 1 has 2"),     # a stray field is not dropped silently
    ("# header\nalice bob\ncarol dave 2\n", 3, "give every edge a weight or none"),
])
def test_bad_lines_report_line_number(tmp_path, text, line, fragment):
    p = _write(tmp_path, text)
    with pytest.raises(ParseError) as info:
        ek.Graph.from_edgelist(p)
    assert info.value.line == line
    assert str(info.value).startswith(f"{p}:{line}: ")
    assert fragment in str(info.value)


def test_missing_empty_and_gzip(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ek.Graph.from_edgelist(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="no edges"):
        ek.Graph.from_edgelist(_write(tmp_path, "# only a comment\n"))
    gz = tmp_path / "g.txt.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write("x y\ny z\n")
    assert ek.Graph.from_edgelist(gz).num_edges == 2


def test_from_networkx_keeps_isolated_nodes_and_weights():
    G = nx.Graph()
    G.add_edge(1, 2, weight=3.0)
    G.add_edge(2, 3)
    G.add_node(9)
    g = ek.Graph.from_networkx(G)
    assert g.nodes == ["1", "2", "3", "9"]
    assert g.isolated_mask().tolist() == [False, False, False, True]
    assert ("1", "2", 3.0) in _edges(g) and ("2", "3", 1.0) in _edges(g)
    assert not ek.Graph.from_networkx(G, weight=None).weighted
    D = nx.MultiDiGraph([("a", "b"), ("a", "b"), ("b", "a")])
    gd = ek.Graph.from_networkx(D)
    assert gd.directed and gd.num_edges == 2


def test_from_networkx_rejects_id_collision_and_bad_weight():
    G = nx.Graph([(1, "1")])
    with pytest.raises(InputError, match="same string"):
        ek.Graph.from_networkx(G)
    H = nx.Graph()
    H.add_edge("a", "b", weight=0)
    with pytest.raises(InputError, match="weights must be finite numbers > 0"):
        ek.Graph.from_networkx(H)


def test_from_pyg_undirected_and_directed():
    from torch_geometric.data import Data

    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    data = Data(edge_index=ei, edge_weight=torch.tensor([2.0, 2.0, 5.0, 5.0]), num_nodes=4)
    g = ek.Graph.from_pyg(data)
    assert not g.directed and g.num_nodes == 4 and g.num_edges == 2
    assert ("0", "1", 2.0) in _edges(g) and ("2", "1", 5.0) in _edges(g)   # weights read once
    assert g.isolated_mask().tolist() == [False, False, False, True]
    gd = ek.Graph.from_pyg(torch.tensor([[0, 1], [1, 2]]))
    assert gd.directed and gd.num_edges == 2 and gd.num_nodes == 3
    with pytest.raises(InputError, match="shape"):
        ek.Graph.from_pyg(torch.zeros(3, 3, dtype=torch.long))


def test_from_arrays_nodes_and_errors():
    g = ek.Graph.from_arrays(["a"], ["b"], nodes=["b", "a", "z"])
    assert g.nodes == ["b", "a", "z"] and g.isolated_mask().tolist() == [False, False, True]
    with pytest.raises(InputError, match="not in nodes"):
        ek.Graph.from_arrays(["a"], ["q"], nodes=["a"])
    with pytest.raises(InputError, match="equal length"):
        ek.Graph.from_arrays([1, 2], [3])
    with pytest.raises(InputError, match="one weight per edge"):
        ek.Graph.from_arrays([1, 2], [3, 4], weight=[1.0])
    with pytest.raises(MissingKeyError):
        g.neighbors("nope")


def test_coerce_accepts_every_input(tmp_path):
    p = _write(tmp_path, "a b\n")
    for src in (p, str(p), nx.path_graph(3), ek.Graph.from_edgelist(p)):
        assert isinstance(ek.Graph.coerce(src), ek.Graph)
    with pytest.raises(InputError, match="expected an ek.Graph"):
        ek.Graph.coerce(42)


# ---------------------------------------------------------------- bounded lines (issue 12 item 9)
def test_a_file_without_line_breaks_is_a_one_line_error_not_a_memory_hog(tmp_path, monkeypatch):
    import embedkit.data.graph as graph_mod

    monkeypatch.setattr(graph_mod, "MAX_LINE_BYTES", 1000)
    one_line = tmp_path / "one_line.txt"
    for loader, first in ((ek.Graph.from_edgelist, b"a b\n"), (ek.Graph.from_typed_edgelist, b"u a r i b\n")):
        one_line.write_bytes(first + b"x" * 5000)
        with pytest.raises(ParseError) as info:
            loader(one_line)
        msg = str(info.value)
        assert "one_line.txt:2:" in msg and "longer than 1,000 bytes" in msg and "\n" not in msg


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_dev_zero_is_refused_after_one_bounded_read():
    with pytest.raises(ParseError, match="/dev/zero:1: line longer than"):
        ek.Graph.from_edgelist("/dev/zero")


def test_a_stray_third_field_is_ignored_only_when_asked(tmp_path):
    p = _write(tmp_path, "alice bob\ncarol x y\n")
    g = ek.Graph.from_edgelist(p, weighted=False)
    assert not g.weighted and g.num_edges == 2


def test_a_stray_sixth_field_in_a_typed_edge_list_is_refused(tmp_path):
    p = _write(tmp_path, "user u1 bought item i1\nuser u2 bought item i2 x\n")
    with pytest.raises(ParseError, match=r":2: this line has 6 fields but line 1 has 5"):
        ek.Graph.from_typed_edgelist(p)
    assert not ek.Graph.from_typed_edgelist(p, weighted=False).weighted
