"""MetaPath2Vec: node vectors of a heterogeneous graph from metapath-guided walks and skip-gram.

Implements Dong, Chawla & Swami, "metapath2vec: Scalable Representation Learning for
Heterogeneous Networks" (KDD 2017; the metapath2vec variant: one noise distribution over all
nodes, not the type-specific one of metapath2vec++). Walks come from
:class:`~embedkit.trainers.metapath2vec.walks.MetaPathWalker` (torch, CPU or CUDA) and train
the skip-gram engine Word2Vec and Node2Vec share (:mod:`embedkit.trainers.sgns.engine`).
"""

from __future__ import annotations

import json
import logging

import numpy as np

from ..._device import resolve_device
from ..._validation import DEVICE, DIM, EPOCHS, LR, MIN_LR, NEGATIVE, SEED, WINDOW, WORKERS, Constraint, Interval, NoneOk
from ...embeddings import Embeddings
from ...errors import InputError
from ..base import Trainer
from ..sgns.distributed import SYNC_EVERY, SYNC_EVERY_MIN

__all__ = ["MetaPath2Vec"]

log = logging.getLogger(__name__)
_OWNER = "MetaPath2Vec"


class _MetaPaths(Constraint):
    """A non-empty list of metapaths, each a list of >= 2 type names or of (src, rel, dst) triples."""

    def accepts(self, value, params) -> bool:
        if not isinstance(value, (list, tuple)) or not value:
            return False
        for mp in value:
            if not isinstance(mp, (list, tuple)) or len(mp) < 2:
                return False
            for x in mp:
                if isinstance(x, (list, tuple)):
                    if len(x) != 3 or not all(isinstance(y, str) for y in x):
                        return False
                elif not isinstance(x, str):
                    return False
        return True

    def describe(self, params) -> str:
        return ("a non-empty list of metapaths, each a list of node types (['author', 'paper', 'author']) "
                "or of (src_type, relation, dst_type) triples")


def _typed(graph):
    """An ek.Graph with node types: a path is read as a typed edge list, other inputs coerced."""
    from pathlib import Path

    from ...data.graph import Graph

    if isinstance(graph, (str, Path)):
        return Graph.from_typed_edgelist(graph)
    return Graph.coerce(graph)


def _as_lists(metapaths):
    return [[list(x) if isinstance(x, (list, tuple)) else x for x in mp] for mp in metapaths]


class MetaPath2Vec(Trainer):
    """Node vectors of a heterogeneous (typed) graph by metapath2vec (Dong et al. 2017).

    Parameters
    ----------
    metapaths : list, required before fit
        Each metapath a cycle of node types, first == last (``["user", "item", "tag", "item",
        "user"]``), or of ``(src_type, relation, dst_type)`` triples as in PyG. Walks start from
        every node of a metapath's first type and follow it round and round.
    dim : int, default 128
    walk_length : int, default 50          nodes per walk (stops early where the path cannot go on)
    walks_per_node : int, default 10       walks per start node and metapath, per epoch
    window : int, default 5                skip-gram window (the paper: 7)
    epochs : int, default 1                each epoch samples fresh walks
    negative : int, default 5
    sample : float, default 0.0            frequency subsampling threshold (0: none)
    lr, min_lr : float, default 0.025, 0.0001
    seed : int, default 0                  same seed and device -> same walks; CPU: same vectors
    device : str, default "auto"           walks and training: "auto", "cpu", "cuda", "cuda:N"
    workers : int or None, default None    torch CPU threads (None: all cores)
    sync_every : float, default 0.25       distributed fits (torchrun, ``--nproc``): the fraction of an
        epoch between two averages of the ranks' replicas, in [0.001, 1]; ignored in one process

    ``fit(graph)`` takes an ek.Graph with node types (``Graph.from_typed_edgelist``,
    ``from_typed_arrays``, ``from_hetero``) or a PyG ``HeteroData``; returns Embeddings keyed
    ``"type:id"`` for every node the walks visit (others are listed in ``skipped_nodes_``).
    Fitted: ``embeddings_``, ``loss_history_``, ``nodes_``, ``visit_counts_``, ``skipped_nodes_``,
    ``node_types_`` (the type of every node of ``nodes_``). Saves without pickle like Node2Vec.

    Distributed as Node2Vec: each rank walks from every N-th start node of each metapath, visit
    counts are summed, the replicas averaged every ``sync_every`` of an epoch and at its end.
    """

    _parameter_constraints = {
        "metapaths": [_MetaPaths(), NoneOk()],
        "dim": DIM,
        "walk_length": [Interval(int, 2, None)],
        "walks_per_node": [Interval(int, 1, None)],
        "window": WINDOW,
        "epochs": EPOCHS,
        "negative": NEGATIVE,
        "sample": [Interval(float, 0.0, 1.0)],
        "lr": LR,
        "min_lr": MIN_LR,
        "seed": SEED,
        "device": DEVICE,
        "workers": WORKERS,
        "sync_every": [Interval(float, SYNC_EVERY_MIN, 1.0, closed="both")],
    }
    _module_params = ("metapaths",)   # saved in the model's state (nested lists), not with the plain params

    def __init__(self, metapaths=None, dim: int = 128, walk_length: int = 50, walks_per_node: int = 10,
                 window: int = 5, epochs: int = 1, negative: int = 5, sample: float = 0.0, lr: float = 0.025,
                 min_lr: float = 0.0001, seed: int = 0, device="auto", workers: int | None = None,
                 sync_every: float = SYNC_EVERY):
        self.metapaths = metapaths
        self.dim = dim
        self.walk_length = walk_length
        self.walks_per_node = walks_per_node
        self.window = window
        self.epochs = epochs
        self.negative = negative
        self.sample = sample
        self.lr = lr
        self.min_lr = min_lr
        self.seed = seed
        self.device = device
        self.workers = workers
        self.sync_every = sync_every

    def _ignored_params(self) -> dict:
        from ..sgns import single_process

        return single_process()

    def walk_stream(self, graph, device=None):
        """The (tokens, lengths) batch stream fit() trains on (node rows of ``graph``)."""
        from ...distributed import world
        from ..sgns.distributed import rank_seed
        from .walks import MetaPathStream, MetaPathWalker, parse_metapath

        graph = _typed(graph)
        self._validate_params(warn=False)
        if self.metapaths is None:
            raise InputError("MetaPath2Vec needs metapaths, e.g. MetaPath2Vec(metapaths=[['author', 'paper', "
                             "'author']])")
        steps = [parse_metapath(mp, graph) for mp in self.metapaths]
        dev = resolve_device(self.device if device is None else device, _OWNER)
        walker = MetaPathWalker(graph, dev)
        w = world()    # a process group: every world-size-th start node, a seed of the rank's own
        stream = MetaPathStream(walker, steps, walk_length=self.walk_length, walks_per_node=self.walks_per_node,
                                seed=rank_seed(self.seed, w.rank),
                                batch_walkers=(1 << 20) if dev.type == "cuda" else 65536)
        stream.starts = [s[w.rank::w.size] for s in stream.starts]
        return stream

    def fit(self, graph, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Learn one vector per node of the typed ``graph`` (ek.Graph with node types, PyG HeteroData,
        or the path of a typed edge list ``src_type src relation dst_type dst [weight]``)."""
        from ... import distributed as ek_dist
        from ..sgns.distributed import check_graph, check_shards, record_comm, sync_for
        from ..sgns.engine import cpu_threads, train_skipgram

        self._validate_params()
        self._check_callback(_OWNER, callback)
        graph = _typed(graph)
        dev = resolve_device(self.device, _OWNER)
        ek_dist.setup(dev)    # joins the process group under torchrun; nothing in one process
        check_graph(graph)    # distributed: every rank must hold the same graph (one line on every rank)
        show_progress = show_progress and ek_dist.is_main()
        mark = ek_dist.comm_mark()
        with cpu_threads(self.workers, dev):
            stream = self.walk_stream(graph, dev)
            every = ek_dist.per_rank(stream.walks_per_epoch)   # every rank's walks, in one collective
            walks = int(every.sum())
            if walks == 0:
                raise InputError("no node of a metapath's first type has an edge: nothing to walk from")
            check_shards(stream.walks_per_epoch, "walks", every)    # distributed: every rank has walks
            from ..sgns.progress import bar

            with bar("metapath2vec: walks (visit counts)", total=stream.walks_per_epoch, unit="walk",
                     show_progress=show_progress) as pb:
                counts = stream.counts(on_batch=pb.update)
            local = int(counts.sum())
            counts = ek_dist.sum_over_ranks(counts)
            if int(counts.sum()) <= walks:
                raise InputError("the walks never get past their start node: no node of a metapath's first type "
                                 "has a neighbour of the next type; check the metapaths against the graph's types")
            log.info("metapath2vec: %d walks per epoch, device %s", stream.walks_per_epoch, dev)
            check_shards(local, "walk steps")    # walks stuck at their start are dropped: walks > 0, steps 0
            sync = sync_for(self.sync_every)
            vectors, losses, output = train_skipgram(
                stream, counts, mode="skipgram", dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=self.epochs, lr=self.lr, min_lr=self.min_lr, seed=self.seed,
                device=dev, total_words=local, show_progress=show_progress, callback=callback,
                desc="metapath2vec", return_output=True, sync=sync)
        record_comm(self, mark, sync)
        types = [graph.type_names[int(t)] for t in graph.node_types]
        self._set_fitted(list(graph.nodes), types, counts, vectors, output, losses)
        self.graph_ = graph
        return self.embeddings_

    def _set_fitted(self, nodes, types, counts, vectors, output, losses) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        keep = np.flatnonzero(counts > 0)
        self.nodes_ = list(nodes)
        self.node_types_ = list(types)
        self.visit_counts_ = counts
        self.skipped_nodes_ = [nodes[i] for i in np.flatnonzero(counts == 0)]
        self.loss_history_ = [float(x) for x in losses]
        self._output = np.ascontiguousarray(np.asarray(output, dtype=np.float32)[keep])
        self.embeddings_ = Embeddings([nodes[i] for i in keep], np.asarray(vectors, dtype=np.float32)[keep],
                                      meta={"trainer": _OWNER})

    # ------------------------------------------------------------------ persistence
    def _state_arrays(self) -> dict:
        return {"nodes": np.asarray(self.nodes_, dtype=str), "node_types": np.asarray(self.node_types_, dtype=str),
                "visit_counts": self.visit_counts_, "vectors": self.embeddings_.vectors, "output": self._output}

    def _state_config(self) -> dict:
        return {"metapaths": json.dumps(_as_lists(self.metapaths)), "num_nodes": len(self.nodes_)}

    def _load_state(self, arrays: dict, config: dict) -> None:
        nodes = [str(k) for k in np.asarray(arrays["nodes"]).tolist()]
        types = [str(k) for k in np.asarray(arrays["node_types"]).tolist()]
        counts = np.asarray(arrays["visit_counts"], dtype=np.int64)
        vectors = np.asarray(arrays["vectors"], dtype=np.float32)
        output = np.asarray(arrays["output"], dtype=np.float32)
        visited = counts > 0
        if not (len(types) == len(nodes) and counts.shape == (len(nodes),) and vectors.ndim == 2
                and len(vectors) == int(visited.sum()) and output.shape == vectors.shape):
            raise ValueError(f"{len(nodes)} nodes, {len(types)} types, {counts.shape} counts, input {vectors.shape} "
                             f"and output {output.shape} vectors do not match")
        if self.metapaths is None:
            self.metapaths = json.loads(config["metapaths"])
        rows = np.zeros((len(nodes), vectors.shape[1]), dtype=np.float32)
        out = np.zeros_like(rows)
        rows[visited], out[visited] = vectors, output
        self._set_fitted(nodes, types, counts, rows, out, self.loss_history_)
