"""Metapath-constrained random walks (Dong, Chawla & Swami, "metapath2vec: Scalable
Representation Learning for Heterogeneous Networks", KDD 2017), vectorised in torch.

A metapath is a cycle of node types, e.g. ``["author", "paper", "venue", "paper", "author"]``
(first type == last type), or of relation triples ``[("author", "writes", "paper"),
("paper", "written_by", "author")]`` as in PyG. A walk from a node of the first type moves,
at step ``t``, to a neighbour of the next type (and, with triples, along that relation),
drawn uniformly (in proportion to the edge weights in a weighted graph); it stops early at a
node without such a neighbour. Every walker advances at once: per step, the neighbours of the
wanted class form one contiguous slice of a per-row class-sorted copy of the CSR, found by two
``searchsorted`` calls.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError

__all__ = ["MetaPathWalker", "parse_metapath"]


def parse_metapath(metapath, graph) -> list[tuple[int, int | None, int]]:
    """``[(from type id, relation id or None, to type id), ...]`` of one metapath on ``graph``.

    Raises InputError naming the metapath when it is too short, does not close into a cycle,
    does not chain, or names a type or relation the graph lacks.
    """
    if not graph.typed:
        raise InputError("MetaPath2Vec needs a graph with node types: build it with Graph.from_typed_edgelist, "
                         "Graph.from_typed_arrays or Graph.from_hetero")
    items = list(metapath) if isinstance(metapath, (list, tuple)) else None
    if not items or len(items) < 2:
        raise InputError(f"metapath {metapath!r}: give at least two node types, e.g. ['author', 'paper', 'author']")
    types, rels = graph.type_names, graph.relation_names

    def type_id(name):
        if str(name) not in types:
            raise InputError(f"metapath {metapath!r}: node type {name!r} is not in the graph; types: {', '.join(types)}")
        return types.index(str(name))

    if all(isinstance(x, (list, tuple)) for x in items):
        steps = []
        for k, triple in enumerate(items):
            if len(triple) != 3:
                raise InputError(f"metapath {metapath!r}: step {k} must be (src_type, relation, dst_type)")
            s, r, d = (str(x) for x in triple)
            # from_hetero names relations src__rel__dst; an undirected graph walks them both ways
            named = [f"{s}__{r}__{d}"] + ([] if graph.directed else [f"{d}__{r}__{s}"])
            rel = next((x for x in named if x in rels), r)
            if rel not in rels:
                raise InputError(f"metapath {metapath!r}: relation {r!r} is not in the graph; "
                                 f"relations: {', '.join(rels)}")
            steps.append((type_id(s), rels.index(rel), type_id(d)))
        for k in range(len(steps)):
            if steps[k][2] != steps[(k + 1) % len(steps)][0]:
                raise InputError(f"metapath {metapath!r}: step {k} ends at {types[steps[k][2]]!r} but the next "
                                 f"step starts at {types[steps[(k + 1) % len(steps)][0]]!r} (the path must close)")
        return steps
    if any(isinstance(x, (list, tuple)) for x in items):
        raise InputError(f"metapath {metapath!r}: give either node types or (src, relation, dst) triples, not both")
    ids = [type_id(x) for x in items]
    if ids[0] != ids[-1]:
        raise InputError(f"metapath {metapath!r}: the first and last node types must be the same so that walks "
                         f"can repeat it (e.g. {list(items) + [items[0]]!r})")
    return [(ids[k], None, ids[k + 1]) for k in range(len(ids) - 1)]


class MetaPathWalker:
    """The typed graph's CSR sorted by neighbour class on ``device``, and metapath walks over it."""

    def __init__(self, graph, device="cpu"):
        if not graph.typed:
            raise InputError("MetaPathWalker needs a graph with node types")
        dev = torch.device(device)
        self.device = dev
        self.graph = graph
        self.num_nodes = n = graph.num_nodes
        self.num_types = t = max(len(graph.type_names), 1)
        self.num_rels = r = max(len(graph.relation_names), 1)
        rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(graph.indptr))
        dst_type = graph.node_types[graph.indices]
        rel = graph.edge_types if graph.edge_types is not None else np.zeros(len(rows), dtype=np.int64)
        self.node_types = torch.as_tensor(graph.node_types, dtype=torch.int64).to(dev)
        self._tables = {}
        for kind, cls, ncls in (("type", dst_type, t), ("rel", rel * t + dst_type, r * t)):
            key = rows * ncls + cls
            order = np.argsort(key, kind="stable")
            cum = None
            if graph.weights is not None:
                cum = np.zeros(len(order) + 1)
                np.cumsum(graph.weights[order], out=cum[1:])
                cum = torch.as_tensor(cum).to(dev)
            self._tables[kind] = (torch.as_tensor(key[order]).to(dev), torch.as_tensor(graph.indices[order]).to(dev),
                                  cum, ncls)

    def _step(self, cur, rel, to_type, gen):
        """One step of every walker in ``cur`` to a neighbour of type ``to_type`` (along ``rel``
        when not None). Returns (next nodes, found)."""
        kind = "type" if rel is None else "rel"
        keys, targets, cum, ncls = self._tables[kind]
        cls = to_type if rel is None else rel * self.num_types + to_type
        k = cur * ncls + cls
        lo = torch.searchsorted(keys, k)
        hi = torch.searchsorted(keys, k, right=True)
        found = hi > lo
        if cum is None:
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=torch.float64)
            pos = lo + (u * (hi - lo)).long()
        else:
            u = torch.rand(cur.shape[0], generator=gen, device=self.device, dtype=torch.float64)
            a, b = cum.index_select(0, lo), cum.index_select(0, hi)
            pos = torch.searchsorted(cum, a + u * (b - a), right=True) - 1
            pos = torch.maximum(pos, lo)
        pos = torch.minimum(pos, (hi - 1).clamp(min=0)).clamp(max=max(targets.shape[0] - 1, 0))
        return targets.index_select(0, pos), found

    def walk(self, starts, steps, walk_length: int, gen):
        """Walks from ``starts`` (rows of nodes of the metapath's first type) along ``steps``
        (:func:`parse_metapath`) repeated. Returns ``(walks (B, walk_length) with -1 after a
        walk's end, lengths)``."""
        starts = torch.as_tensor(starts, dtype=torch.int64).to(self.device)
        b = starts.shape[0]
        walks = torch.full((walk_length, b), -1, dtype=torch.int64, device=self.device)
        if b == 0:
            return walks.t(), torch.zeros(0, dtype=torch.int64, device=self.device)
        walks[0] = starts
        alive = torch.arange(b, device=self.device)
        cur = starts
        for t in range(1, walk_length):
            _, rel, to_type = steps[(t - 1) % len(steps)]
            nxt, found = self._step(cur, rel, to_type, gen)
            if not bool(found.all()):
                keep = torch.nonzero(found).squeeze(1)
                alive, nxt = alive.index_select(0, keep), nxt.index_select(0, keep)
            if alive.shape[0] == 0:
                break
            walks[t].index_copy_(0, alive, nxt)
            cur = nxt
        lengths = (walks >= 0).sum(0)
        return walks.t().contiguous(), lengths


class MetaPathStream:
    """Re-iterable stream of ``(tokens, lengths)`` walk batches for the skip-gram engine: each
    iteration is one epoch of fresh walks, ``walks_per_node`` from every node of each metapath's
    first type (that has an edge), in batches of ``batch_walkers``; same seed -> same walks."""

    def __init__(self, walker, metapaths, *, walk_length: int, walks_per_node: int, seed: int,
                 batch_walkers: int = 65536):
        self.walker = walker
        self.metapaths = metapaths
        self.walk_length = int(walk_length)
        self.walks_per_node = int(walks_per_node)
        self.seed = int(seed)
        self.batch_walkers = int(batch_walkers)
        deg = walker.graph.degrees()
        types = walker.graph.node_types
        self.starts = [np.flatnonzero((types == steps[0][0]) & (deg > 0)) for steps in metapaths]
        self.epochs_started = 0

    @property
    def walks_per_epoch(self) -> int:
        return sum(len(s) for s in self.starts) * self.walks_per_node

    def epoch(self, e: int):
        from ..node2vec.walk_stream import _seed_for

        gen = torch.Generator(device=self.walker.device)
        rng = np.random.default_rng([self.seed, e])
        for m, (steps, starts) in enumerate(zip(self.metapaths, self.starts)):
            if not len(starts):
                continue
            every = rng.permutation(np.tile(starts, self.walks_per_node))
            for c, a in enumerate(range(0, len(every), self.batch_walkers)):
                gen.manual_seed(_seed_for(self.seed, e, m, c))
                walks, lengths = self.walker.walk(every[a:a + self.batch_walkers], steps, self.walk_length, gen)
                keep = lengths > 1
                walks, lengths = walks[keep], lengths[keep]
                yield walks[walks >= 0], lengths

    def __iter__(self):
        e = self.epochs_started
        self.epochs_started += 1
        return self.epoch(e)

    def counts(self, on_batch=None) -> np.ndarray:
        """Visits per node in epoch 0's walks (the walks the first epoch trains on); ``on_batch(walks)``
        runs after each batch (progress)."""
        total = torch.zeros(self.walker.num_nodes, dtype=torch.int64, device=self.walker.device)
        for tokens, lengths in self.epoch(0):
            total += torch.bincount(tokens, minlength=self.walker.num_nodes)
            if on_batch is not None:
                on_batch(len(lengths))
        return total.cpu().numpy()
