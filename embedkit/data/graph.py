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

    def __init__(self, indptr, indices, weights, nodes: Sequence[str], directed: bool):
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
        return f"Graph({self.num_nodes} nodes, {self.num_edges} edges, {kind}, {w})"

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
        line has three fields; ``weighted=False`` ignores a third field; ``weighted=True`` requires it.

        Raises ParseError ("path:line: problem") for a line with the wrong number of fields, a
        weight that is not a positive number, or a missing weight; InputError for a file without edges.
        """
        p = Path(path)
        if not p.exists():
            raise InputError(f"{path}: no such file")
        if p.is_dir():
            raise InputError(f"{path}: is a directory, expected an edge-list file")
        index: dict[str, int] = {}
        src: list[int] = []
        dst: list[int] = []
        wts: list[float] = []
        want_w = weighted
        first_w_line = None
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rt", encoding="utf-8", errors="strict") as fh:
            lineno = 0
            try:
                for lineno, line in enumerate(fh, 1):
                    fields = line.replace(",", " ").split()
                    for k, f in enumerate(fields):
                        if f.startswith("#"):
                            del fields[k:]
                            break
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
                        try:
                            w = float(fields[2])
                        except ValueError:
                            raise ParseError(path, lineno, f"weight {fields[2]!r} is not a number") from None
                        if not (math.isfinite(w) and w > 0):
                            raise ParseError(path, lineno, f"weight {fields[2]!r} must be a finite number > 0")
                        wts.append(w)
                    a, b = fields[0], fields[1]
                    ia = index.get(a)
                    if ia is None:
                        ia = index[a] = len(index)
                    ib = index.get(b)
                    if ib is None:
                        ib = index[b] = len(index)
                    src.append(ia)
                    dst.append(ib)
            except UnicodeDecodeError:
                raise ParseError(path, lineno + 1, "is not UTF-8 text") from None
        if not src:
            raise InputError(f"{path}: no edges found; expected lines 'src dst [weight]'")
        w = np.asarray(wts, dtype=np.float64) if want_w else None
        return cls._from_index_arrays(np.asarray(src), np.asarray(dst), w, list(index), directed)

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
        if mod.startswith("torch_geometric") or hasattr(data, "edge_index"):
            return cls.from_pyg(data)
        raise InputError(f"expected an ek.Graph, a networkx graph, a torch_geometric Data or an edge-list path; "
                         f"got {type(data).__name__}")


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
