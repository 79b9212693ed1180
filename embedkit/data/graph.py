"""Graph: string node ids over a compressed sparse row (CSR) adjacency, the input of Node2Vec.

Rules every loader follows (they are tested in tests/test_graph.py):

* **Node ids** are strings; each id is mapped once to a row number, in order of first
  appearance (edge lists, arrays) or in the source's node order (networkx, PyG).
* **Undirected graphs** store each edge in both rows. ``"a b"`` and ``"b a"`` are the same edge.
* **Duplicate edges** are merged into one. Their weights are summed in a weighted graph, so an
  undirected weighted edge list that lists both ``"a b 1"`` and ``"b a 1"`` ends up with weight 2.
  An unweighted graph stays unweighted (a duplicate does not count twice).
* **Self-loops** are kept, stored once in the node's row (a walk may stay on the node).
* **Weights** must be finite and > 0; anything else is an error naming the line or position.
* **Dangling nodes** of directed graphs (no out-edges) end the walks that reach them; the walk
  is shorter, never padded.
* **Isolated nodes** (no edge in or out; only networkx, PyG or ``nodes=`` can create them) get
  no walks and therefore no vector: Node2Vec skips them, warns, and lists them in
  ``skipped_nodes_``.
"""

from __future__ import annotations

import gzip
import logging
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .._files import decode_line, not_utf8
from ..errors import InputError, MissingKeyError, ParseError

__all__ = ["Graph"]

log = logging.getLogger(__name__)


class Graph:
    """A directed or undirected, optionally weighted graph in CSR form with string node ids.

    Build one with :meth:`from_edgelist`, :meth:`from_networkx`, :meth:`from_pyg` or
    :meth:`from_arrays`. Row ``i`` of the CSR (``indices[indptr[i]:indptr[i+1]]``, sorted
    ascending) holds the out-neighbours of node ``nodes[i]``; ``weights`` is aligned with
    ``indices`` (float64) or ``None`` for an unweighted graph.
    """

    def __init__(self, indptr, indices, weights, nodes: Sequence[str], directed: bool, *,
                 node_types=None, type_names: Sequence[str] | None = None, edge_types=None,
                 relation_names: Sequence[str] | None = None):
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int64)
        self.weights = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
        self.nodes = list(nodes)
        self.directed = bool(directed)
        if len(self.indptr) != len(self.nodes) + 1 or self.indptr[-1] != len(self.indices):
            raise InputError("inconsistent CSR arrays: indptr must have len(nodes) + 1 entries ending at len(indices)")
        if self.weights is not None and len(self.weights) != len(self.indices):
            raise InputError("inconsistent CSR arrays: weights must be aligned with indices")
        self._node_index: dict[str, int] | None = None
        # heterogeneous graphs: a type id per node (into type_names), a relation id per CSR entry
        self.node_types = None if node_types is None else np.ascontiguousarray(node_types, dtype=np.int64)
        self.type_names = list(type_names or [])
        self.edge_types = None if edge_types is None else np.ascontiguousarray(edge_types, dtype=np.int64)
        self.relation_names = list(relation_names or [])
        if self.node_types is not None and (len(self.node_types) != len(self.nodes) or (
                len(self.node_types) and not 0 <= self.node_types.min() <= self.node_types.max() < len(self.type_names))):
            raise InputError("inconsistent node types: one type id per node, each < len(type_names)")
        if self.edge_types is not None and (len(self.edge_types) != len(self.indices) or (
                len(self.edge_types) and not 0 <= self.edge_types.min() <= self.edge_types.max()
                < len(self.relation_names))):
            raise InputError("inconsistent edge types: one relation id per CSR entry, each < len(relation_names)")

    # ------------------------------------------------------------------ sizes and lookups
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        """Edges as the user sees them: undirected edges count once, self-loops once."""
        if self.directed:
            return int(len(self.indices))
        loops = int(np.count_nonzero(self.indices == self._rows()))
        return (len(self.indices) - loops) // 2 + loops

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    def __len__(self) -> int:
        return self.num_nodes

    def __contains__(self, node) -> bool:
        return str(node) in self.node_index

    def __repr__(self) -> str:
        kind = "directed" if self.directed else "undirected"
        w = "weighted" if self.weighted else "unweighted"
        typed = f", {len(self.type_names)} node types" if self.typed else ""
        return f"Graph({self.num_nodes} nodes, {self.num_edges} edges, {kind}, {w}{typed})"

    @property
    def typed(self) -> bool:
        """Whether the nodes carry types (a heterogeneous graph)."""
        return self.node_types is not None

    def node_type(self, node) -> str:
        """The type of ``node`` (typed graphs). Raises MissingKeyError / InputError."""
        i = self.node_index.get(str(node))
        if i is None:
            raise MissingKeyError(f"node {node!r} is not in the graph")
        if not self.typed:
            raise InputError("this graph has no node types; build it with Graph.from_typed_edgelist, "
                             "from_typed_arrays or from_hetero")
        return self.type_names[int(self.node_types[i])]

    def nodes_of_type(self, node_type: str) -> list[str]:
        """Ids of the nodes of one type, in row order."""
        if not self.typed:
            raise InputError("this graph has no node types")
        if node_type not in self.type_names:
            raise InputError(f"node type {node_type!r} is not in the graph; types: {', '.join(self.type_names)}")
        t = self.type_names.index(node_type)
        return [self.nodes[i] for i in np.flatnonzero(self.node_types == t)]

    @property
    def node_index(self) -> dict[str, int]:
        """Node id -> row number."""
        if self._node_index is None:
            self._node_index = {k: i for i, k in enumerate(self.nodes)}
        return self._node_index

    def degrees(self) -> np.ndarray:
        """Out-degree (number of stored neighbours) of every node."""
        return np.diff(self.indptr)

    def neighbors(self, node) -> list[str]:
        """Out-neighbours of ``node`` (ids), in row order. Raises MissingKeyError for an unknown id."""
        i = self.node_index.get(str(node))
        if i is None:
            raise MissingKeyError(f"node {node!r} is not in the graph")
        return [self.nodes[j] for j in self.indices[self.indptr[i]:self.indptr[i + 1]]]

    def isolated_mask(self) -> np.ndarray:
        """True for nodes with no edge in or out (they get no walks and no vector)."""
        has = self.degrees() > 0
        if self.directed:
            has = has.copy()
            has[self.indices] = True
        return ~has

    def dangling_mask(self) -> np.ndarray:
        """True for nodes without out-edges (in a directed graph, walks that reach them stop)."""
        return self.degrees() == 0

    def _rows(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.degrees())

    def to_edge_arrays(self, unique: bool = True):
        """(src, dst, weight-or-None) row numbers; for an undirected graph each edge once (src <= dst)."""
        src, dst, w = self._rows(), self.indices, self.weights
        if unique and not self.directed:
            keep = src <= dst
            src, dst = src[keep], dst[keep]
            w = None if w is None else w[keep]
        return src, dst, w

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(cls, src, dst, weight=None, *, directed: bool = False, nodes: Iterable | None = None) -> "Graph":
        """Graph from parallel arrays of source ids, target ids and optional positive weights.

        Ids may be strings or integers (turned into strings). ``nodes`` (optional) fixes the full
        node list and its order, isolated nodes included; every id in ``src``/``dst`` must then be
        in it. Raises InputError on length mismatches, unknown ids, or weights that are not > 0.
        """
        src = np.asarray(src)
        dst = np.asarray(dst)
        if src.ndim != 1 or dst.ndim != 1 or len(src) != len(dst):
            raise InputError(f"src and dst must be 1-D arrays of equal length; got shapes {src.shape} and {dst.shape}")
        w = None
        if weight is not None:
            w = _check_weights(weight, len(src))
        if nodes is not None:
            node_list = [str(x) for x in nodes]
            index = {k: i for i, k in enumerate(node_list)}
            if len(index) != len(node_list):
                raise InputError("nodes holds duplicate ids; give each node once")
            try:
                s = np.fromiter((index[str(x)] for x in src.tolist()), dtype=np.int64, count=len(src))
                d = np.fromiter((index[str(x)] for x in dst.tolist()), dtype=np.int64, count=len(dst))
            except KeyError as exc:
                raise InputError(f"edge endpoint {exc.args[0]!r} is not in nodes; add it to nodes or drop the edge") from None
        else:
            if len(src) == 0:
                raise InputError("the graph has no edges; give at least one edge (src, dst)")
            both = np.concatenate([src, dst])
            if both.dtype.kind not in "iuUSO":
                raise InputError(f"node ids must be integers or strings; got dtype {both.dtype}")
            if both.dtype.kind == "O":
                both = np.array([str(x) for x in both.tolist()])
            uniq, first, inverse = np.unique(both, return_index=True, return_inverse=True)
            order = np.argsort(first, kind="stable")           # first-appearance order
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            inverse = rank[inverse.ravel()]
            s, d = inverse[: len(src)], inverse[len(src):]
            node_list = [str(x) for x in uniq[order].tolist()]
            if len(set(node_list)) != len(node_list):
                raise InputError("two different node ids turn into the same string (e.g. 1 and '1'); make ids unique as text")
        return cls._from_index_arrays(s, d, w, node_list, directed)

    @classmethod
    def _from_index_arrays(cls, src, dst, weight, nodes: list[str], directed: bool) -> "Graph":
        """CSR from row-number arrays, applying the symmetrisation and duplicate rules."""
        n = len(nodes)
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        if not directed:
            off = src != dst
            src, dst = np.concatenate([src, dst[off]]), np.concatenate([dst, src[off]])
            if weight is not None:
                weight = np.concatenate([weight, weight[off]])
        key = src * n + dst
        uniq, inverse = np.unique(key, return_inverse=True)
        weights = None
        if weight is not None:
            weights = np.bincount(inverse.ravel(), weights=weight, minlength=len(uniq))
        rows, cols = uniq // max(n, 1), uniq % max(n, 1)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        graph = cls(indptr, cols, weights, nodes, directed)
        if len(uniq) < len(key):
            log.info("merged %d duplicate edge entries", len(key) - len(uniq))
        return graph

    @classmethod
    def from_edgelist(cls, path, directed: bool = False, weighted: bool | None = None) -> "Graph":
        """Read ``src dst [weight]`` lines (whitespace, tab or comma separated; ``.gz`` allowed).

        Blank lines and lines whose first field starts with ``#`` are skipped; a field starting
        with ``#`` starts a trailing comment. ``weighted=None`` takes weights when the first edge
        line has three fields (a later line with three fields is then refused: a weight or a stray
        field, it is not silently dropped); ``weighted=False`` ignores a third field; ``weighted=True``
        requires it.

        Raises ParseError ("path:line: problem") for a line with the wrong number of fields, a
        weight that is not a positive number, or a missing weight; InputError for a file without edges.
        """
        index: dict[str, int] = {}
        src: list[int] = []
        dst: list[int] = []
        wts: list[float] = []
        want_w = weighted
        first_w_line = None
        for lineno, line in _edge_lines(path, "an edge-list file"):
            fields = _fields(line)
            if not fields:
                continue
            nf = len(fields)
            if nf < 2 or nf > 3:
                raise ParseError(path, lineno, f"expected 'src dst [weight]' (2 or 3 fields), "
                                               f"got {nf}: {line.strip()[:80]!r}")
            if want_w is None:
                want_w = nf == 3
                first_w_line = lineno
            if want_w:
                if nf != 3:
                    where = f"line {first_w_line} has one" if first_w_line else "weighted=True was asked for"
                    raise ParseError(path, lineno, f"this edge has no weight but {where}; give every edge "
                                                   "a weight, or pass weighted=False")
                wts.append(_weight(path, lineno, fields[2]))
            elif nf == 3 and weighted is None:
                raise ParseError(path, lineno, f"this line has 3 fields but line {first_w_line} has 2, so the file "
                                               f"was read as unweighted: {line.strip()[:80]!r}; give every edge "
                                               "a weight or none (weighted=False ignores a third field)")
            a, b = fields[0], fields[1]
            ia = index.get(a)
            if ia is None:
                ia = index[a] = len(index)
            ib = index.get(b)
            if ib is None:
                ib = index[b] = len(index)
            src.append(ia)
            dst.append(ib)
        if not src:
            raise InputError(f"{path}: no edges found; expected lines 'src dst [weight]'")
        w = np.asarray(wts, dtype=np.float64) if want_w else None
        return cls._from_index_arrays(np.asarray(src), np.asarray(dst), w, list(index), directed)

    # ------------------------------------------------------------------ heterogeneous graphs
    @classmethod
    def from_typed_arrays(cls, src_type, src, rel, dst_type, dst, weight=None, *, directed: bool = False,
                          nodes: dict | None = None) -> "Graph":
        """Heterogeneous graph from parallel arrays: edge ``i`` joins node ``src[i]`` of type
        ``src_type[i]`` to node ``dst[i]`` of type ``dst_type[i]`` by relation ``rel[i]``.

        Node ids become ``"type:id"`` (ids of different types may coincide, e.g. ``0`` in
        PyG), in order of first appearance; types and relations are named in order of first
        appearance. An undirected graph stores each edge in both rows with the same relation.
        The same pair joined by two relations keeps both entries. ``nodes`` (optional,
        ``{type: ids}``) adds nodes, isolated ones included, before the edges' ones.
        """
        cols = [np.asarray(a).reshape(-1) for a in (src_type, src, rel, dst_type, dst)]
        m = len(cols[0])
        if any(len(c) != m for c in cols):
            raise InputError(f"src_type, src, rel, dst_type and dst must have equal lengths; got {[len(c) for c in cols]}")
        w = None if weight is None else _check_weights(weight, m)
        index: dict[str, int] = {}
        types: dict[str, int] = {}
        node_type: list[int] = []

        def node(t, k) -> int:
            key = f"{t}:{k}"
            i = index.get(key)
            if i is None:
                i = index[key] = len(index)
                node_type.append(types.setdefault(str(t), len(types)))
            return i

        for t, ids in (nodes or {}).items():
            for k in ids:
                node(t, k)
        rels: dict[str, int] = {}
        st, s_, r_, dt, d_ = (c.tolist() for c in cols)
        s_rows = np.fromiter((node(a, b) for a, b in zip(st, s_)), dtype=np.int64, count=m)
        d_rows = np.fromiter((node(a, b) for a, b in zip(dt, d_)), dtype=np.int64, count=m)
        r_ids = np.fromiter((rels.setdefault(str(x), len(rels)) for x in r_), dtype=np.int64, count=m)
        if not index:
            raise InputError("the graph has no nodes; give at least one edge")
        return cls._from_typed_index(s_rows, d_rows, r_ids, w, list(index), np.asarray(node_type), list(types),
                                     list(rels), directed)

    @classmethod
    def _from_typed_index(cls, src, dst, rel, weight, nodes, node_types, type_names, relation_names,
                          directed) -> "Graph":
        n, r = len(nodes), max(len(relation_names), 1)
        if not directed:
            off = src != dst
            src, dst = np.concatenate([src, dst[off]]), np.concatenate([dst, src[off]])
            rel = np.concatenate([rel, rel[off]])
            if weight is not None:
                weight = np.concatenate([weight, weight[off]])
        key = (src * n + dst) * r + rel
        uniq, inverse = np.unique(key, return_inverse=True)
        weights = None
        if weight is not None:
            weights = np.bincount(inverse.ravel(), weights=weight, minlength=len(uniq))
        pair = uniq // r
        rows, cols = pair // max(n, 1), pair % max(n, 1)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return cls(indptr, cols, weights, nodes, directed, node_types=node_types, type_names=type_names,
                   edge_types=uniq % r, relation_names=relation_names)

    @classmethod
    def from_typed_edgelist(cls, path, directed: bool = False, weighted: bool | None = None) -> "Graph":
        """Read a heterogeneous graph: lines ``src_type src relation dst_type dst [weight]``
        (whitespace, tab or comma separated; ``#`` comments; ``.gz`` allowed), e.g.
        ``user u1 bought item i7``. Node ids become ``"type:id"``; see :meth:`from_typed_arrays`.

        Raises ParseError ("path:line: problem") for a line with the wrong number of fields or a
        bad weight, InputError for a file without edges.
        """
        cols: list[list[str]] = [[], [], [], [], []]
        wts: list[float] = []
        want_w = weighted
        first_w_line = None
        for lineno, line in _edge_lines(path, "a typed edge-list file"):
            fields = _fields(line)
            if not fields:
                continue
            nf = len(fields)
            if nf not in (5, 6):
                raise ParseError(path, lineno, f"expected 'src_type src relation dst_type dst [weight]' "
                                               f"(5 or 6 fields), got {nf}: {line.strip()[:80]!r}")
            if want_w is None:
                want_w = nf == 6
                first_w_line = lineno
            if want_w:
                if nf != 6:
                    raise ParseError(path, lineno, "this edge has no weight but earlier ones have; give every "
                                                   "edge a weight, or pass weighted=False")
                wts.append(_weight(path, lineno, fields[5]))
            elif nf == 6 and weighted is None:
                raise ParseError(path, lineno, f"this line has 6 fields but line {first_w_line} has 5, so the file "
                                               f"was read as unweighted: {line.strip()[:80]!r}; give every edge "
                                               "a weight or none (weighted=False ignores a sixth field)")
            for c, f in zip(cols, fields):
                c.append(f)
        if not cols[0]:
            raise InputError(f"{path}: no edges found; expected lines 'src_type src relation dst_type dst [weight]'")
        return cls.from_typed_arrays(*cols, weight=np.asarray(wts) if want_w else None, directed=directed)

    @classmethod
    def from_hetero(cls, data, directed: bool = False) -> "Graph":
        """Heterogeneous graph from a torch_geometric ``HeteroData``: node ``i`` of type ``t``
        becomes ``"t:i"`` (every node of every type, isolated ones included), each edge type
        ``(src_type, relation, dst_type)`` a relation. ``directed=False`` (default) stores each
        edge both ways; a HeteroData that already holds reverse relations then has both."""
        try:
            edge_types = list(data.edge_types)
            node_types = list(data.node_types)
        except AttributeError:
            raise InputError(f"from_hetero expects a torch_geometric HeteroData; got {type(data).__name__}") from None
        nodes = {t: range(int(data[t].num_nodes or 0)) for t in node_types}
        cols: list[list[np.ndarray]] = [[], [], [], [], []]
        for (s, r, d) in edge_types:
            ei = data[(s, r, d)].edge_index.detach().cpu().numpy().astype(np.int64)
            m = ei.shape[1]
            if m and (ei[0].max() >= len(nodes.get(s, ())) or ei[1].max() >= len(nodes.get(d, ()))):
                raise InputError(f"edge type {(s, r, d)} holds node ids beyond the number of {s!r}/{d!r} nodes")
            for c, v in zip(cols, (np.full(m, s, dtype=object), ei[0], np.full(m, f"{s}__{r}__{d}", dtype=object),
                                   np.full(m, d, dtype=object), ei[1])):
                c.append(v)
        if not cols[0] or not sum(len(x) for x in cols[0]):
            raise InputError("the HeteroData has no edges")
        return cls.from_typed_arrays(*(np.concatenate(c) for c in cols), directed=directed, nodes=nodes)

    @classmethod
    def from_networkx(cls, graph, weight: str | None = "weight") -> "Graph":
        """Graph from a networkx (Multi)(Di)Graph; node ids become ``str(node)``.

        The edge attribute ``weight`` is used when at least one edge has it (others count 1);
        pass ``weight=None`` to ignore weights. Parallel edges of a multigraph are merged (weights
        summed). Isolated nodes are kept (they get no vector; see the module notes).
        """
        try:
            import networkx as nx
        except ImportError:  # pragma: no cover - networkx is a dependency
            raise InputError("from_networkx needs networkx installed") from None
        if not isinstance(graph, nx.Graph):
            raise InputError(f"from_networkx expects a networkx graph; got {type(graph).__name__}")
        nodes = list(graph.nodes())
        index = {node: i for i, node in enumerate(nodes)}
        edges = list(graph.edges(data=True))
        src = np.fromiter((index[u] for u, _, _ in edges), dtype=np.int64, count=len(edges))
        dst = np.fromiter((index[v] for _, v, _ in edges), dtype=np.int64, count=len(edges))
        w = None
        if weight is not None and any(weight in d for _, _, d in edges):
            w = _check_weights([d.get(weight, 1.0) for _, _, d in edges], len(edges))
        names = [str(x) for x in nodes]
        if len(set(names)) != len(names):
            raise InputError("two networkx nodes turn into the same string id (e.g. 1 and '1'); relabel them")
        if not edges and not nodes:
            raise InputError("the networkx graph is empty; give a graph with edges")
        return cls._from_index_arrays(src, dst, w, names, graph.is_directed())

    @classmethod
    def from_pyg(cls, data, directed: bool | None = None, num_nodes: int | None = None) -> "Graph":
        """Graph from a torch_geometric ``Data`` (or a ``(2, E)`` ``edge_index`` tensor).

        Node ids are ``"0" .. str(num_nodes - 1)``. ``directed=None`` treats the graph as
        undirected when every edge appears in both directions (PyG's convention). ``edge_weight``
        (or a 1-D ``edge_attr``) becomes the weight; in an undirected graph each edge's weight is
        read once, not summed over its two directions.
        """
        import torch

        weight = None
        if isinstance(data, torch.Tensor) or isinstance(data, np.ndarray):
            edge_index = data
        elif hasattr(data, "edge_index"):
            edge_index = data.edge_index
            if num_nodes is None:
                num_nodes = data.num_nodes
            weight = getattr(data, "edge_weight", None)
            if weight is None:
                attr = getattr(data, "edge_attr", None)
                if attr is not None and (attr.dim() == 1 or (attr.dim() == 2 and attr.shape[1] == 1)):
                    weight = attr.reshape(-1)
        else:
            raise InputError(f"from_pyg expects a torch_geometric Data or an edge_index tensor; got {type(data).__name__}")
        ei = np.asarray(edge_index.detach().cpu().numpy() if isinstance(edge_index, torch.Tensor) else edge_index)
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise InputError(f"edge_index must have shape (2, E); got {ei.shape}")
        ei = ei.astype(np.int64)
        if num_nodes is None:
            num_nodes = int(ei.max()) + 1 if ei.size else 0
        if ei.size and (ei.min() < 0 or ei.max() >= num_nodes):
            raise InputError(f"edge_index holds ids outside [0, {num_nodes}); fix edge_index or num_nodes")
        w = None
        if weight is not None:
            w = _check_weights(weight.detach().cpu().numpy() if isinstance(weight, torch.Tensor) else weight, ei.shape[1])
        src, dst = ei[0], ei[1]
        key, rev = src * num_nodes + dst, dst * num_nodes + src
        symmetric = bool(np.isin(rev, key).all()) if ei.size else True
        if directed is None:
            directed = not symmetric
        if not directed and symmetric:
            keep = src <= dst           # each undirected edge once; its weight read once
            src, dst = src[keep], dst[keep]
            w = None if w is None else w[keep]
            _, first = np.unique(src * num_nodes + dst, return_index=True)   # both copies of a->b
            src, dst = src[first], dst[first]
            w = None if w is None else w[first]
        if num_nodes == 0:
            raise InputError("the PyG graph has no nodes")
        return cls._from_index_arrays(src, dst, w, [str(i) for i in range(num_nodes)], bool(directed))

    @classmethod
    def coerce(cls, data, *, directed: bool = False, weighted: bool | None = None) -> "Graph":
        """A Graph from any accepted input: Graph, networkx graph, PyG Data, edge_index, or an edge-list path."""
        if isinstance(data, Graph):
            return data
        if isinstance(data, (str, Path)):
            return cls.from_edgelist(data, directed=directed, weighted=weighted)
        mod = type(data).__module__ or ""
        if mod.startswith("networkx"):
            return cls.from_networkx(data)
        if type(data).__name__ == "HeteroData":
            return cls.from_hetero(data)
        if mod.startswith("torch_geometric") or hasattr(data, "edge_index") or \
                (mod.startswith("torch") and type(data).__name__ == "Tensor"):   # an edge_index tensor (2, E)
            return cls.from_pyg(data)
        raise InputError(f"expected an ek.Graph, a networkx graph, a torch_geometric Data, an edge_index tensor or an "
                         f"edge-list path; got {type(data).__name__}")


MAX_LINE_BYTES = 1 << 20   # an edge line is a few dozen bytes; a longer line is not an edge list


_EDGE_FIX = "give a text edge list of lines 'src dst [weight]'"


def _edge_lines(path, what: str):
    """``(line number, text)`` of a plain or ``.gz`` UTF-8 edge-list file, reading at most
    MAX_LINE_BYTES per line: a file without line breaks (a 1 GB single line, /dev/zero) gives a
    ParseError naming the file and line instead of filling memory."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file")
    if p.is_dir():
        raise InputError(f"{path}: is a directory, expected {what}")
    opener = gzip.open if p.suffix == ".gz" else open
    lineno = 0
    try:
        with opener(p, "rb") as fh:
            while True:
                raw = fh.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                lineno += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise ParseError(path, lineno, f"line longer than {MAX_LINE_BYTES:,} bytes: not {what} "
                                                   "(expected short lines 'src dst [weight]')")
                if lineno == 1:  # its byte-order mark
                    yield lineno, decode_line(raw, path, lineno, _EDGE_FIX)
                    continue
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise not_utf8(path, lineno, exc, raw, _EDGE_FIX) from None
                yield lineno, text
    except (OSError, EOFError) as exc:
        raise ParseError(path, lineno + 1, f"cannot read the file ({type(exc).__name__}: {exc})") from None


def _fields(line: str) -> list[str]:
    """Whitespace/comma separated fields of a line, a field starting with ``#`` ending it."""
    fields = line.replace(",", " ").split()
    for k, f in enumerate(fields):
        if f.startswith("#"):
            return fields[:k]
    return fields


def _weight(path, lineno: int, text: str) -> float:
    try:
        w = float(text)
    except ValueError:
        raise ParseError(path, lineno, f"weight {text!r} is not a number") from None
    if not (math.isfinite(w) and w > 0):
        raise ParseError(path, lineno, f"weight {text!r} must be a finite number > 0")
    return w


def _check_weights(weight, n: int) -> np.ndarray:
    try:
        w = np.asarray(weight, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise InputError("weights must be numbers") from None
    if len(w) != n:
        raise InputError(f"got {len(w)} weights for {n} edges; give one weight per edge")
    bad = ~(np.isfinite(w) & (w > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"edge #{i} has weight {w[i]!r}; weights must be finite numbers > 0")
    return w
