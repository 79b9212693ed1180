"""Node2vec walks: exact transition law (chi-square), golden walks, determinism, directed ends."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

import embedkit as ek
from embedkit.trainers.node2vec.walks import WalkSampler, WalkStream, random_walks

# A small weighted undirected graph with triangles, a pendant and unequal weights.
EDGES = [("a", "b", 1.0), ("a", "c", 2.0), ("b", "c", 1.0), ("b", "d", 3.0), ("c", "d", 1.0),
         ("c", "e", 0.5), ("d", "e", 2.0), ("e", "f", 1.0), ("a", "a", 1.5)]


def _graph(directed=False, weighted=True):
    s, d, w = zip(*EDGES)
    return ek.Graph.from_arrays(list(s), list(d), list(w) if weighted else None, directed=directed)


def _expected(graph, prev: int, cur: int, p: float, q: float) -> dict[int, float]:
    """Unnormalised node2vec weights of the next step, straight from the paper's formula."""
    nbrs = graph.indices[graph.indptr[cur]:graph.indptr[cur + 1]]
    w = graph.weights[graph.indptr[cur]:graph.indptr[cur + 1]] if graph.weighted else np.ones(len(nbrs))
    prev_nbrs = set(graph.indices[graph.indptr[prev]:graph.indptr[prev + 1]].tolist())
    out = {}
    for x, wx in zip(nbrs.tolist(), w.tolist()):
        if x == prev:
            out[x] = wx / p
        elif x in prev_nbrs:
            out[x] = wx
        else:
            out[x] = wx / q
    return out


def _check_step(graph, sampler, prev, cur, p, q, n=20000, seed=1, method="_second_order"):
    gen = torch.Generator().manual_seed(seed)
    got = getattr(sampler, method)(torch.full((n,), prev), torch.full((n,), cur), gen)
    if isinstance(got, tuple):                       # _exact returns (nodes, CSR positions)
        got, pos = got
        assert torch.equal(sampler.indices[pos], got)
    exp = _expected(graph, prev, cur, p, q)
    counts = Counter(got.tolist())
    assert set(counts) <= set(exp), f"moved to a non-neighbour: {set(counts) - set(exp)}"
    keys = sorted(exp)
    total = sum(exp.values())
    obs = np.array([counts.get(k, 0) for k in keys])
    expected = np.array([exp[k] / total * n for k in keys])
    if len(keys) > 1:
        pval = chisquare(obs, expected).pvalue
        assert pval > 1e-4, (prev, cur, p, q, obs, expected)


@pytest.mark.parametrize("p,q", [(0.25, 4.0), (4.0, 0.25), (2.0, 0.5), (0.5, 1.0)])
@pytest.mark.parametrize("directed", [False, True])
def test_step_distribution_matches_formula(p, q, directed):
    g = _graph(directed=directed)
    sampler = WalkSampler(g, p=p, q=q)
    rows, cols = g._rows(), g.indices
    for prev, cur in zip(rows.tolist(), cols.tolist()):      # every edge prev -> cur
        if g.degrees()[cur] > 0:
            _check_step(g, sampler, prev, cur, p, q, n=6000)


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.5, 2.0), (3.0, 0.3)])
def test_step_distribution_unweighted(p, q):
    g = _graph(weighted=False)
    sampler = WalkSampler(g, p=p, q=q)
    for prev, cur in [(0, 1), (1, 2), (3, 4), (4, 5), (0, 0)]:
        _check_step(g, sampler, prev, cur, p, q)


@pytest.mark.parametrize("method", ["_second_order", "_exact"])
@pytest.mark.parametrize("p,q", [(0.25, 4.0), (2.0, 0.5)])
def test_rejection_only_and_exact_only(method, p, q):
    """Both samplers inside a step (vectorised mixture/rejection, exact draw for stragglers) are exact alone."""
    g = _graph()
    sampler = WalkSampler(g, p=p, q=q, exact_fallback=False)     # no exact fallback inside _second_order
    for prev, cur in [(0, 2), (2, 3), (1, 3), (4, 3), (0, 0)]:
        _check_step(g, sampler, prev, cur, p, q, n=8000, method=method)


@pytest.mark.parametrize("p,q", [(0.25, 4.0), (4.0, 0.25), (1.0, 3.0)])
@pytest.mark.parametrize("directed", [False, True])
def test_step_distribution_without_common_weights(p, q, directed):
    """Graphs too costly for the common-neighbour precomputation take the tested rejection path."""
    g = _graph(directed=directed)
    sampler = WalkSampler(g, p=p, q=q, strategy="rejection")
    assert sampler.common is None
    for prev, cur in zip(g._rows().tolist(), g.indices.tolist()):
        if g.degrees()[cur] > 0:
            _check_step(g, sampler, prev, cur, p, q, n=6000)


@pytest.mark.parametrize("max_rounds", [0, 1])
def test_stragglers_are_drawn_exactly(max_rounds):
    """With (almost) no rounds, the triangle part of the mixture and the rejection path hand
    their walkers to the exact draw, which keeps the law."""
    g = _graph()
    for p, q in [(0.5, 4.0), (0.5, 0.25)]:
        sampler = WalkSampler(g, p=p, q=q, max_rounds=max_rounds)
        for prev, cur in [(0, 2), (2, 3), (1, 3), (0, 0)]:
            _check_step(g, sampler, prev, cur, p, q, n=6000)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_common_weights_match_brute_force(directed, weighted):
    g = _graph(directed=directed, weighted=weighted)
    sampler = WalkSampler(g, p=0.5, q=2.0)
    nbrs = {v: dict(zip(g.indices[g.indptr[v]:g.indptr[v + 1]].tolist(),
                        (g.weights[g.indptr[v]:g.indptr[v + 1]] if g.weighted else np.ones(g.degrees()[v])).tolist()))
            for v in range(g.num_nodes)}
    want = [sum(w for x, w in nbrs[v].items() if x != t and x in nbrs[t])
            for t, v in zip(g._rows().tolist(), g.indices.tolist())]
    assert np.allclose(sampler.common.cpu().numpy(), want)
    # the reverse-edge table: entry of v -> t for every t -> v (-1 when absent)
    rev = sampler.rev.cpu().numpy()
    for e, (t, v) in enumerate(zip(g._rows().tolist(), g.indices.tolist())):
        if t in nbrs[v]:
            assert (g._rows()[rev[e]], g.indices[rev[e]]) == (v, t)
        else:
            assert directed and rev[e] == -1


def test_equal_weights_walk_as_unweighted():
    """A graph whose weights are all equal takes the unweighted path, common weights included."""
    s, d, _ = zip(*EDGES)
    g = ek.Graph.from_arrays(list(s), list(d), [2.5] * len(s))
    sampler = WalkSampler(g, p=0.5, q=2.0)
    assert not sampler.weighted
    assert torch.equal(sampler.common, WalkSampler(_graph(weighted=False), p=0.5, q=2.0).common)
    for prev, cur in [(0, 2), (2, 3), (1, 3), (0, 0)]:
        _check_step(g, sampler, prev, cur, 0.5, 2.0, n=6000)


def test_common_weights_in_blocks():
    """The blockwise product gives the same weights as one block, on a graph with many triangles."""
    import networkx as nx

    g = ek.Graph.from_networkx(nx.powerlaw_cluster_graph(300, 4, 0.5, seed=1))
    whole = WalkSampler(g, p=1.0, q=2.0).common
    assert torch.equal(WalkSampler(g, p=1.0, q=2.0, common_block=50).common, whole)
    assert float(whole.sum()) > 0


def test_strategy_argument():
    """"auto" is the default; "mixture" always precomputes the common weights, "rejection" never;
    the walks of every strategy follow the same law (checked above), and a bad name is one line."""
    g = _graph()
    auto = WalkSampler(g, p=0.5, q=2.0)
    assert auto.strategy == "auto" and auto.common is not None and auto.exact_fallback
    assert torch.equal(WalkSampler(g, p=0.5, q=2.0, strategy="mixture").common, auto.common)
    assert WalkSampler(g, p=0.5, q=2.0, strategy="rejection").common is None
    gen = [torch.Generator().manual_seed(0) for _ in range(2)]
    starts = torch.arange(g.num_nodes).repeat(5)
    assert torch.equal(auto.walk(starts, 8, gen[0])[0],
                       WalkSampler(g, p=0.5, q=2.0, strategy="auto", exact_fallback=True).walk(starts, 8, gen[1])[0])
    with pytest.raises(ek.InputError, match="'strategy' parameter of WalkSampler"):
        WalkSampler(g, p=0.5, q=2.0, strategy="alias")
    with pytest.raises(ek.InputError, match="'max_rounds'"):
        WalkSampler(g, p=0.5, q=2.0, max_rounds=-1)


@pytest.mark.parametrize("p,q", [(0.5, 3.0), (2.0, 0.5)])
@pytest.mark.parametrize("directed", [False, True])
def test_whole_walks_follow_formula(directed, p, q):
    """Second-order transitions counted inside full walks (not only one step) match the formula."""
    g = _graph(directed=directed)
    starts = [n for n in g.nodes if g.degrees()[g.node_index[n]] > 0] * 2000
    walks, lengths = random_walks(g, walk_length=6, p=p, q=q, starts=starts, seed=3)
    seen = defaultdict(Counter)
    for row, n in zip(walks.tolist(), lengths.tolist()):
        for a, b, c in zip(row[:n], row[1:n], row[2:n]):
            seen[(a, b)][c] += 1
    checked = 0
    for (a, b), cnt in seen.items():
        exp = _expected(g, a, b, p, q)
        total, n = sum(exp.values()), sum(cnt.values())
        keys = sorted(exp)
        if len(keys) < 2 or n < 500:
            continue
        obs = [cnt.get(k, 0) for k in keys]
        assert chisquare(obs, [exp[k] / total * n for k in keys]).pvalue > 1e-4, (a, b, obs)
        checked += 1
    assert checked >= 3


def test_first_step_is_first_order_and_weighted():
    g = _graph()
    walks, _ = random_walks(g, walk_length=2, p=0.1, q=10.0, starts=["b"] * 30000, seed=0)
    cnt = Counter(walks[:, 1].tolist())
    nb = g.indices[g.indptr[1]:g.indptr[2]]
    w = g.weights[g.indptr[1]:g.indptr[2]]
    obs = [cnt.get(int(x), 0) for x in nb]
    assert chisquare(obs, w / w.sum() * 30000).pvalue > 1e-4


def test_walks_only_use_edges_and_have_full_length():
    g = _graph(weighted=False)
    walks, lengths = random_walks(g, walk_length=30, p=0.3, q=2.0, seed=5)
    assert walks.shape == (g.num_nodes, 30) and (lengths == 30).all()
    edges = set(zip(g._rows().tolist(), g.indices.tolist()))
    for row in walks.tolist():
        assert all((a, b) in edges for a, b in zip(row, row[1:]))


def test_golden_walks_fixed_seed():
    """Walks on a 5-node graph with a fixed seed never change silently (CPU)."""
    g = ek.Graph.from_arrays(["0", "0", "1", "2", "3"], ["1", "2", "2", "3", "4"])
    walks, _ = random_walks(g, walk_length=6, p=0.5, q=2.0, seed=42)
    names = [[g.nodes[i] for i in row] for row in walks.tolist()]
    assert names == GOLDEN


# Regenerated when the sampler moved to precomputed common-neighbour weights (same law, other draws).
GOLDEN = [["0", "2", "0", "1", "2", "1"], ["1", "2", "1", "2", "1", "2"], ["2", "1", "2", "0", "1", "0"],
          ["3", "4", "3", "4", "3", "4"], ["4", "3", "2", "0", "1", "2"]]


def test_same_seed_same_walks_other_seed_differs():
    g = _graph()
    a, _ = random_walks(g, walk_length=20, p=0.5, q=2.0, seed=7)
    b, _ = random_walks(g, walk_length=20, p=0.5, q=2.0, seed=7)
    c, _ = random_walks(g, walk_length=20, p=0.5, q=2.0, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_directed_walk_stops_at_dangling_node():
    g = ek.Graph.from_arrays(["a", "b", "c"], ["b", "c", "d"], directed=True)   # d has no out-edges
    walks, lengths = random_walks(g, walk_length=10, p=2.0, q=0.5, starts=["a", "c", "d"], seed=0)
    assert lengths.tolist() == [4, 2, 1]
    assert [g.nodes[i] for i in walks[0, :4].tolist()] == ["a", "b", "c", "d"]
    assert (walks[0, 4:] == -1).all() and (walks[2, 1:] == -1).all()


def test_stream_epochs_batches_and_counts():
    g = _graph()
    sampler = WalkSampler(g, p=0.5, q=2.0)
    stream = WalkStream(sampler, np.arange(g.num_nodes), walk_length=5, walks_per_node=3, seed=0, batch_walkers=4)
    first = [t.clone() for t, _ in stream]
    second = [t.clone() for t, _ in stream]
    assert sum(len(t) for t in first) == g.num_nodes * 3 * 5
    assert not all(torch.equal(x, y) for x, y in zip(first, second))     # fresh walks per epoch
    again = [t for t, _ in stream.epoch(0)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    counts = stream.counts(g.num_nodes)
    assert counts.sum() == g.num_nodes * 15
    assert np.array_equal(counts, np.bincount(torch.cat(first).numpy(), minlength=g.num_nodes))
    # every start node appears once per round
    starts = torch.cat([t.view(-1, 5)[:, 0] for t in first])
    assert sorted(Counter(starts.tolist()).values()) == [3] * g.num_nodes


@pytest.mark.parametrize("part_words", [7, 23, 10_000])
def test_walk_parts_hold_the_walks_of_one_file(tmp_path, part_words):
    """write_parts (Node2Vec's gensim input, cut so that progress moves within an epoch) writes the
    same lines as write_text, whole walks only, about part_words steps per part."""
    import io
    from pathlib import Path

    g = _graph()
    stream = WalkStream(WalkSampler(g, p=0.5, q=2.0), np.arange(g.num_nodes), walk_length=5, walks_per_node=3,
                        seed=0, batch_walkers=4)
    whole = io.BytesIO()
    counts, first = stream.write_text(whole, g.num_nodes, 0)
    seen = []
    counts2, first2, parts = stream.write_parts(tmp_path, g.num_nodes, 0, part_words=part_words,
                                                on_batch=seen.append)
    assert b"".join(Path(p).read_bytes() for p, _, _ in parts) == whole.getvalue()
    assert np.array_equal(counts, counts2) and np.array_equal(first[0], first2[0])
    assert sum(seen) == stream.walks_per_epoch and len(seen) > 1          # progress per batch
    for path, words, lines in parts:
        text = Path(path).read_text()
        assert text.endswith("\n") and text.count("\n") == lines
        assert len(text.split()) == words
    assert all(w >= part_words for _, w, _ in parts[:-1])                # only the last part is short
    assert (len(parts) == 1) if part_words >= counts.sum() else (len(parts) > 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_step_distribution():
    g = _graph(directed=True)
    sampler = WalkSampler(g, p=0.5, q=2.0, device="cuda")
    for prev, cur in itertools.islice(zip(g._rows().tolist(), g.indices.tolist()), 6):
        if g.degrees()[cur] > 0:
            gen = torch.Generator(device="cuda").manual_seed(0)
            got = sampler._second_order(torch.full((20000,), prev, device="cuda"),
                                        torch.full((20000,), cur, device="cuda"), gen).cpu()
            exp = _expected(g, prev, cur, 0.5, 2.0)
            keys = sorted(exp)
            if len(keys) > 1:
                cnt = Counter(got.tolist())
                tot = sum(exp.values())
                assert chisquare([cnt.get(k, 0) for k in keys], [exp[k] / tot * 20000 for k in keys]).pvalue > 1e-4


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("p,q", [(0.5, 3.0), (2.0, 0.5)])
def test_cuda_whole_walks_follow_formula(p, q):
    """Full walks on the GPU (mixture and rejection paths, common weights copied to the device)."""
    g = _graph()
    sampler = WalkSampler(g, p=p, q=q, device="cuda")
    assert sampler.common is not None and sampler.common.device.type == "cuda"
    starts = torch.arange(g.num_nodes, device="cuda").repeat(3000)
    gen = torch.Generator(device="cuda").manual_seed(0)
    walks, lengths = sampler.walk(starts, 6, gen)
    seen = defaultdict(Counter)
    for row, n in zip(walks.cpu().tolist(), lengths.cpu().tolist()):
        for a, b, c in zip(row[:n], row[1:n], row[2:n]):
            seen[(a, b)][c] += 1
    checked = 0
    for (a, b), cnt in seen.items():
        exp = _expected(g, a, b, p, q)
        total, n = sum(exp.values()), sum(cnt.values())
        keys = sorted(exp)
        if len(keys) < 2 or n < 500:
            continue
        obs = [cnt.get(k, 0) for k in keys]
        assert chisquare(obs, [exp[k] / total * n for k in keys]).pvalue > 1e-4, (a, b, obs)
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("seed", range(6))
def test_random_small_graphs_every_edge(seed):
    """Random small graphs (directed or not, weighted or not, self-loops, pendant and dangling
    nodes) with random p, q: every step law matches the formula, with and without the
    precomputed common-neighbour weights."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 9))
    m = int(rng.integers(n, 3 * n))
    src, dst = rng.integers(0, n, m), rng.integers(0, n, m)
    directed, weighted = bool(seed % 2), seed % 3 != 0
    w = rng.uniform(0.2, 3.0, m).tolist() if weighted else None
    g = ek.Graph.from_arrays([str(x) for x in src], [str(x) for x in dst], w, directed=directed,
                             nodes=[str(i) for i in range(n)])
    p, q = float(rng.choice([0.25, 0.5, 2.0])), float(rng.choice([0.3, 1.0, 4.0]))
    samplers = [WalkSampler(g, p=p, q=q), WalkSampler(g, p=p, q=q, strategy="rejection")]
    assert samplers[1].common is None
    for sampler in samplers:
        for prev, cur in zip(g._rows().tolist(), g.indices.tolist()):
            if g.degrees()[cur] > 0:
                _check_step(g, sampler, prev, cur, p, q, n=4000, seed=seed)
