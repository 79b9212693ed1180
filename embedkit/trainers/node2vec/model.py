"""Node2Vec: node embeddings from p/q-biased random walks and skip-gram.

Implements Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks" (KDD 2016).
The walks (embedkit.trainers.node2vec.walks) are sampled in torch, many at once, on CPU or CUDA, and
stream batch by batch into the skip-gram engine that Word2Vec uses
(embedkit.trainers.sgns.engine); no walk is ever turned into Python strings.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from ..._device import resolve_device
from ..._validation import (
    DEVICE,
    DIM,
    EPOCHS,
    LR,
    MIN_LR,
    NEGATIVE,
    SEED,
    WINDOW,
    WORKERS,
    Interval,
    NoneOk,
    Options,
    validate_params,
)
from ...embeddings import Embeddings
from ...errors import InputError
from ..base import Trainer
from ..sgns import choose_backend, ignored_by, single_process
from ..sgns.distributed import SYNC_EVERY, SYNC_EVERY_MIN

__all__ = ["Node2Vec"]

log = logging.getLogger(__name__)

_OWNER = "Node2Vec"
_CPU_WALKERS = 65_536       # walks advanced at once: big enough to amortise torch's per-op cost
_CUDA_WALKERS = 1 << 20


class _Mapped:
    """A walk stream whose tokens (graph rows) are mapped to model rows by ``lut``."""

    def __init__(self, stream, lut):
        self.stream, self.lut = stream, lut

    def __iter__(self):
        for tokens, lengths in self.stream:
            yield self.lut.index_select(0, tokens), lengths


class Node2Vec(Trainer):
    """Node2vec: second-order biased random walks + skip-gram with negative sampling.

    Parameters
    ----------
    dim : int, default 128
        Vector dimension (1..10,000).
    walk_length : int, default 80
        Nodes per walk (the start node included). Walks in a directed graph stop early at a
        node without out-edges.
    walks_per_node : int, default 10
        Walks started from every node with at least one out-edge, per epoch.
    window : int, default 10
        Skip-gram context window, 1..1,000 (each centre draws its window from 1..window).
    p : float, default 1.0
        Return parameter: the unnormalised weight of stepping back to the previous node is w/p.
    q : float, default 1.0
        In-out parameter: weight w/q for nodes that are not neighbours of the previous node
        (q < 1 explores outward, DFS-like; q > 1 stays local, BFS-like). p = q = 1 is DeepWalk.
    epochs : int, default 1
        Passes of skip-gram training; every epoch samples a fresh set of walks.
    negative : int, default 5
        Noise nodes per positive pair (1..1,000).
    sample : float, default 0.0
        Frequency subsampling threshold. 0 trains on every walk step. PecanPy and the reference
        node2vec code call gensim with its default 1e-3, which on small graphs drops most of each
        walk (every node is "frequent"); pass 1e-3 to reproduce them.
    lr : float, default 0.025
        Initial learning rate, decaying linearly to ``min_lr`` (word2vec's alpha/min_alpha).
    min_lr : float, default 0.0001
    seed : int, default 0
        Same seed, graph and device -> same walks; on CPU also the same vectors (torch backend:
        for the same ``workers``; gensim: with ``workers=1``).
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
        Where walks and training run.
    walk_batch_size : int or None, default None
        Walks advanced at once (65,536 on CPU, 1,048,576 on CUDA); memory grows with
        walk_batch_size * walk_length. Walks depend on it for a given seed.
    backend : {"auto", "torch", "gensim"}, default "auto"
        Skip-gram trainer. "torch": embedkit's engine (the one Word2Vec uses), batches of walks
        go straight from the walker to it as tensors, every epoch on fresh walks. "gensim":
        walks are written (batch by batch, as numbers) to a temporary file that gensim trains on
        with ``workers`` threads, all epochs on the same walks (PecanPy's setup); CPU only.
        "auto": torch on CUDA, gensim on CPU (several times faster there).
    workers : int or None, default None
        CPU threads (None: all cores), as for Word2Vec: the torch threads that sample the walks
        on CPU and, with the torch backend on CPU, train (set during fit, restored after); with
        the gensim backend also gensim's threads. Ignored (with a warning) by the torch backend
        on CUDA. Exact gensim repeatability needs workers=1.
    sync_every : float, default 0.25
        Distributed fits only (torchrun, ``--nproc``): the fraction of an epoch between two
        averages of the ranks' replicas, in [0.001, 1]; ignored in one process.

    Attributes (after fit)
    ----------------------
    embeddings_ : Embeddings keyed by node id. loss_history_ : one mean loss per epoch.
    skipped_nodes_ : ids of nodes no walk visits (isolated nodes; in a directed graph also nodes
    that no walk reached), which therefore get no vector. graph_ : the ek.Graph trained on (not
    saved: absent after ``load``). backend_ : the backend used. visit_counts_ : visits per node
    in epoch 0, in the order of ``nodes_``. nodes_ : every node of the graph, in row order.

    The fitted model saves without pickle (``save`` / ``load``, ``to_store`` / ``from_store``):
    node keys, input vectors and output (negative-sampling) weights of the visited nodes, visit
    counts and skipped nodes; not the graph.

    Growing graphs: ``partial_fit(grown_graph)`` keeps training a fitted or loaded model on
    walks over the grown graph (new nodes added); ``embed_new_nodes(grown_graph)`` gives vectors
    to the new nodes only, with every old vector frozen (both on the torch engine). Both run in
    one process only (InputError under a process group).

    Distributed (under ``torchrun`` or ``embedkit train node2vec --nproc N``; both backends):
    every rank holds the whole graph and walks from every N-th start node (its own random
    stream); visit counts are summed over the ranks, each replica trains at N x ``lr`` and they
    are averaged (``all_reduce``) every ``sync_every`` of an epoch and at its end, so every rank
    ends with the same vectors.
    Also set then: ``comm_bytes_`` (bytes this rank sent), ``comm_seconds_``, ``comm_syncs_``.

    Raises
    ------
    InputError on a bad parameter (checked in fit) or a graph without edges.
    """

    _parameter_constraints = {
        "dim": DIM,
        "walk_length": [Interval(int, 2, None)],
        "walks_per_node": [Interval(int, 1, None)],
        "window": WINDOW,
        "p": [Interval(float, 0, None, closed="right")],
        "q": [Interval(float, 0, None, closed="right")],
        "epochs": EPOCHS,
        "negative": NEGATIVE,
        "sample": [Interval(float, 0.0, 1.0)],
        "lr": LR,
        "min_lr": MIN_LR,
        "seed": SEED,
        "device": DEVICE,
        "walk_batch_size": [Interval(int, 1, None), NoneOk()],
        "backend": [Options("auto", "torch", "gensim")],
        "workers": WORKERS,
        "sync_every": [Interval(float, SYNC_EVERY_MIN, 1.0, closed="both")],
    }

    def __init__(self, dim: int = 128, walk_length: int = 80, walks_per_node: int = 10, window: int = 10,
                 p: float = 1.0, q: float = 1.0, epochs: int = 1, negative: int = 5, sample: float = 0.0,
                 lr: float = 0.025, min_lr: float = 0.0001, seed: int = 0, device="auto",
                 walk_batch_size: int | None = None, backend: str = "auto", workers: int | None = None,
                 sync_every: float = SYNC_EVERY):
        self.dim = dim
        self.walk_length = walk_length
        self.walks_per_node = walks_per_node
        self.window = window
        self.p = p
        self.q = q
        self.epochs = epochs
        self.negative = negative
        self.sample = sample
        self.lr = lr
        self.min_lr = min_lr
        self.seed = seed
        self.device = device
        self.walk_batch_size = walk_batch_size
        self.backend = backend
        self.workers = workers
        self.sync_every = sync_every

    def _resolve_backend(self):
        """("gensim" | "torch", torch.device): auto is torch on CUDA, else gensim (CPU only)."""
        return choose_backend(self.backend, self.device, _OWNER)

    def _ignored_params(self) -> dict:
        try:
            return {**ignored_by(*self._resolve_backend()), **single_process()}
        except InputError:
            return {}  # fit raises on the device

    def walk_stream(self, graph, device=None):
        """The (tokens, lengths) batch stream fit() trains on; for inspection and benchmarks."""
        from ...data.graph import Graph

        validate_params(_OWNER, self.get_params(), self._parameter_constraints)
        return self._walk_stream(Graph.coerce(graph), resolve_device(self.device if device is None else device, _OWNER))

    def _walk_stream(self, graph, dev):
        """Walks from every node with out-edges; under a process group from every world-size-th
        of them, from rank ``r``'s ``r``-th on, with a seed of the rank's own."""
        from ...distributed import world
        from ..sgns.distributed import rank_seed
        from .walks import WalkSampler, WalkStream

        w = world()
        starts = np.flatnonzero(graph.degrees() > 0)[w.rank::w.size]
        steps = len(starts) * self.walks_per_node * (self.walk_length - 1) * self.epochs
        sampler = WalkSampler(graph, p=self.p, q=self.q, device=dev, expected_steps=steps)
        batch = self.walk_batch_size or (_CUDA_WALKERS if dev.type == "cuda" else _CPU_WALKERS)
        return WalkStream(sampler, starts, walk_length=self.walk_length, walks_per_node=self.walks_per_node,
                          seed=rank_seed(self.seed, w.rank), batch_walkers=batch)

    def fit(self, graph, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Learn one vector per node of ``graph``.

        ``graph``: an ek.Graph, a networkx graph, a torch_geometric Data, or the path of an
        edge list (read as undirected; build an ek.Graph for other options). Returns Embeddings
        keyed by node id (isolated nodes left out, with a warning; see ``skipped_nodes_``).
        """
        from ... import distributed as ek_dist
        from ...data.graph import Graph
        from ..sgns.distributed import check_graph, check_shards, record_comm, sync_for
        from ..sgns.engine import cpu_threads, train_skipgram

        params = self._validate_params(warn=False)
        self._check_callback(_OWNER, callback)
        graph = Graph.coerce(graph)
        backend, dev = self._resolve_backend()     # gensim: walks on the CPU too (no copies off the GPU)
        ek_dist.setup(dev)    # joins the process group under torchrun; nothing in one process
        check_graph(graph)    # distributed: every rank must hold the same graph (one line on every rank)
        self._warn_ignored(params, {**ignored_by(backend, dev), **single_process()})
        if not (graph.degrees() > 0).any():
            raise InputError("the graph has no edges: node2vec needs edges to walk on")
        show_progress = show_progress and ek_dist.is_main()
        mark = ek_dist.comm_mark()
        with cpu_threads(self.workers, dev):    # on CPU: `workers` torch threads, restored after
            stream = self._walk_stream(graph, dev)
            log.info("node2vec: %d walks per epoch, backend %s, device %s", stream.walks_per_epoch, backend, dev)
            check_shards(stream.walks_per_epoch, "walks")    # distributed: every rank has walks
            if backend == "torch":
                from ..sgns.progress import bar

                with bar("node2vec: walks (visit counts)", total=stream.walks_per_epoch, unit="walk",
                         show_progress=show_progress) as pb:
                    counts = stream.counts(graph.num_nodes, on_batch=pb.update)  # visits in epoch 0 (trained on)
                local = int(counts.sum())      # this rank's walk steps (all of them in one process)
                counts = ek_dist.sum_over_ranks(counts)    # distributed: every rank's visits
                sync = sync_for(self.sync_every)
                vectors, losses, output = train_skipgram(
                    stream, counts, mode="skipgram", dim=self.dim, window=self.window, negative=self.negative,
                    sample=self.sample, epochs=self.epochs, lr=self.lr, min_lr=self.min_lr, seed=self.seed,
                    device=dev, total_words=local, show_progress=show_progress,
                    callback=callback, desc="node2vec", return_output=True, sync=sync)
            else:
                from ..sgns.gensim_backend import fit_walks

                res = fit_walks(stream, graph.num_nodes, dim=self.dim, window=self.window, negative=self.negative,
                                sample=self.sample, epochs=self.epochs, lr=self.lr, min_lr=self.min_lr,
                                seed=self.seed, workers=self.workers, walk_length=self.walk_length,
                                show_progress=show_progress, callback=callback, sync_every=self.sync_every)
                vectors, output, counts, losses = res["vectors"], res["output"], res["counts"], res["losses"]
                sync = res["sync"]
        record_comm(self, mark, sync)
        self._set_fitted(list(graph.nodes), counts, vectors, output, losses, backend)
        if self.skipped_nodes_:
            n = len(self.skipped_nodes_)
            shown = ", ".join(repr(k) for k in self.skipped_nodes_[:5])
            more = "" if n <= 5 else f" and {n - 5} more"
            warnings.warn(f"Node2Vec: {n} node(s) that no walk visits (isolated) get no vector: "
                          f"{shown}{more} (see skipped_nodes_)", stacklevel=2)
        self.graph_ = graph
        return self.embeddings_

    # ------------------------------------------------------------------ continued training, new nodes
    def _tables(self):
        """(input, output) tables over ``nodes_`` (zero rows for skipped nodes)."""
        rows = np.zeros((len(self.nodes_), self.embeddings_.dim), dtype=np.float32)
        out = np.zeros_like(rows)
        visited = self.visit_counts_ > 0
        rows[visited], out[visited] = self.embeddings_.vectors, self._output
        return rows, out

    def _grown(self, graph, dev, *, starts=None, walks_per_node=None, epochs, lr, frozen_old: bool,
               show_progress, callback, desc):
        """Train the engine on walks over ``graph`` with the model's nodes plus ``graph``'s new ones.

        Returns (all node keys, model-row visit counts of these walks, input, output, losses,
        the model rows of the new nodes). ``starts``: graph rows to start walks from (default:
        every node with out-edges). ``frozen_old``: old rows do not move (only new rows learn).
        """
        import torch

        from ..sgns.engine import cpu_threads, train_skipgram
        from .walks import WalkSampler, WalkStream

        old = list(self.nodes_)
        index = {k: i for i, k in enumerate(old)}
        skipped = set(self.skipped_nodes_)
        new = [k for k in graph.nodes if k not in index]
        keys = old + new
        index.update({k: len(old) + i for i, k in enumerate(new)})
        lut = torch.as_tensor(np.fromiter((index[k] for k in graph.nodes), dtype=np.int64, count=graph.num_nodes))
        if starts is None:
            starts = np.flatnonzero(graph.degrees() > 0)
        wpn = self.walks_per_node if walks_per_node is None else walks_per_node
        fresh_rows = [index[k] for k in new] + [index[k] for k in skipped if k in graph.node_index]
        with cpu_threads(self.workers, dev):
            steps = len(starts) * wpn * (self.walk_length - 1) * epochs
            sampler = WalkSampler(graph, p=self.p, q=self.q, device=dev, expected_steps=steps)
            batch = self.walk_batch_size or (_CUDA_WALKERS if dev.type == "cuda" else _CPU_WALKERS)
            stream = WalkStream(sampler, np.asarray(starts, dtype=np.int64), walk_length=self.walk_length,
                                walks_per_node=wpn, seed=self.seed + 7919 * (1 + len(self.loss_history_)),
                                batch_walkers=batch)
            lut = lut.to(dev)
            mapped = _Mapped(stream, lut)
            counts = np.zeros(len(keys), dtype=np.int64)
            from ..sgns.progress import bar

            with bar(f"{desc}: walks (visit counts)", total=stream.walks_per_epoch, unit="walk",
                     show_progress=show_progress) as pb:
                np.add.at(counts, lut.cpu().numpy(), stream.counts(graph.num_nodes, on_batch=pb.update))
            if not counts.sum():
                raise InputError("the walks visit no node: give edges that touch the nodes to embed")
            w_in, w_out = self._tables()
            gen = np.random.default_rng([self.seed, len(keys)])
            w_in = np.concatenate([w_in, np.zeros((len(new), w_in.shape[1]), dtype=np.float32)])
            w_out = np.concatenate([w_out, np.zeros((len(new), w_in.shape[1]), dtype=np.float32)])
            w_in[fresh_rows] = (gen.random((len(fresh_rows), w_in.shape[1]), dtype=np.float32) * 2 - 1) / w_in.shape[1]
            noise_counts = np.concatenate([self.visit_counts_, np.zeros(len(new), dtype=np.int64)]) + counts
            trainable = None
            if frozen_old:
                learn = np.zeros(len(keys), dtype=bool)
                learn[fresh_rows] = True
                trainable = (learn, learn)
            vectors, losses, output = train_skipgram(
                mapped, noise_counts, mode="skipgram", dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=epochs, lr=lr, min_lr=min(self.min_lr, lr), seed=self.seed + len(keys),
                device=dev, total_words=int(counts.sum()), show_progress=show_progress, callback=callback,
                desc=desc, return_output=True, init=(w_in, w_out), trainable=trainable)
        visits = np.concatenate([self.visit_counts_, np.zeros(len(new), dtype=np.int64)]) + counts
        return keys, visits, vectors, output, losses, fresh_rows

    def _resolve_update(self, graph, lr, epochs, owner):
        from ..._validation import check_float, check_int
        from ...data.graph import Graph
        from ..sgns.distributed import refuse

        self._check_fitted()
        refuse(_OWNER, owner.split(".")[-1])
        params = self._validate_params(warn=False)
        graph = Graph.coerce(graph)
        if not (graph.degrees() > 0).any():
            raise InputError("the graph has no edges: node2vec needs edges to walk on")
        lr = self.lr / 4 if lr is None else check_float(owner, "lr", lr, 0.0, 10.0, low_open=True)
        epochs = epochs if epochs is None else check_int(owner, "epochs", epochs, 1)
        dev = resolve_device(self.device, owner)
        self._warn_ignored(params, ignored_by("torch", dev))
        return graph, lr, epochs, dev

    def partial_fit(self, graph, *, lr: float | None = None, epochs: int | None = None,
                    show_progress: bool = True, callback=None) -> Embeddings:
        """Continue training a fitted (or loaded) model on walks over ``graph`` (the grown graph,
        or only its new part); returns the new Embeddings.

        Nodes of ``graph`` the model does not know are added (input vectors drawn as at the start
        of a fit, output weights zero); every node's vector starts from where it is. The rate
        decays from ``lr`` (default: the model's ``lr / 4``, which keeps old vectors from
        drifting) to ``min_lr`` over ``epochs`` (default: the model's). Runs on the torch engine
        (CPU or CUDA, whatever ``backend``) since gensim cannot continue from node rows.
        ``loss_history_`` gains one entry per epoch; ``graph_`` becomes ``graph``.
        """
        graph, lr, epochs, dev = self._resolve_update(graph, lr, epochs, "Node2Vec.partial_fit")
        self._check_callback(_OWNER, callback)
        keys, visits, vectors, output, losses, _ = self._grown(
            graph, dev, epochs=epochs or self.epochs, lr=lr, frozen_old=False, show_progress=show_progress,
            callback=callback, desc="node2vec (update)")
        self._set_fitted(keys, visits, vectors, output, self._loss_history() + list(losses), "torch")
        self.graph_ = graph
        return self.embeddings_

    def embed_new_nodes(self, graph, *, walks_per_node: int | None = None, epochs: int | None = None,
                        lr: float | None = None, show_progress: bool = False) -> Embeddings:
        """Vectors for nodes added after training, without retraining the others.

        ``graph``: the grown graph (or at least the new nodes' edges and their neighbours' edges).
        Its nodes that the model has no vector for are the new ones: walks start from them only
        (``walks_per_node`` each, default 4x the model's), and skip-gram runs over these walks for
        ``epochs`` (default 5) with every old input and output vector frozen, so only the new rows
        learn, against the old vectors of the nodes they walk past. The model gains the new nodes
        (``embeddings_``, ``nodes_``, ``visit_counts_``); returns the Embeddings of the new nodes.
        Raises InputError when ``graph`` holds no new node.
        """
        from ..._validation import check_int

        graph, lr, epochs, dev = self._resolve_update(graph, self.lr if lr is None else lr, epochs,
                                                      "Node2Vec.embed_new_nodes")
        have = set(self.embeddings_.keys)
        new_rows = np.fromiter((i for i, k in enumerate(graph.nodes) if k not in have), dtype=np.int64)
        if not len(new_rows):
            raise InputError("the graph holds no node the model lacks a vector for: nothing to embed "
                             "(use partial_fit to keep training the old nodes)")
        starts = new_rows[graph.degrees()[new_rows] > 0]
        if not graph.directed:
            lonely = len(new_rows) - len(starts)
            if lonely:
                log.warning("Node2Vec.embed_new_nodes: %d new node(s) without edges get no vector", lonely)
        if not len(starts):
            raise InputError("no new node has an edge: give the edges that join the new nodes to the graph")
        wpn = 4 * self.walks_per_node if walks_per_node is None else check_int(
            "Node2Vec.embed_new_nodes", "walks_per_node", walks_per_node, 1)
        keys, visits, vectors, output, losses, fresh = self._grown(
            graph, dev, starts=starts, walks_per_node=wpn, epochs=epochs or 5, lr=lr, frozen_old=True,
            show_progress=show_progress, callback=None, desc="node2vec (new nodes)")
        backend = self.backend_
        self._set_fitted(keys, visits, vectors, output, self.loss_history_, backend)
        fresh = [keys[i] for i in sorted(fresh) if visits[i] > 0]
        return Embeddings(fresh, self.embeddings_[fresh] if fresh else np.zeros((0, self.dim), np.float32))

    def _set_fitted(self, nodes, counts, vectors, output, losses, backend) -> None:
        """Fitted attributes from all nodes (row order), visits per node and node-row vectors."""
        counts = np.asarray(counts, dtype=np.int64)
        visited = counts > 0
        keep = np.flatnonzero(visited)
        self.nodes_ = nodes
        self.skipped_nodes_ = [nodes[i] for i in np.flatnonzero(~visited)]
        self.backend_ = backend
        self.visit_counts_ = counts
        self.loss_history_ = [float(x) for x in losses]
        self._output = np.ascontiguousarray(np.asarray(output, dtype=np.float32)[keep])
        self.embeddings_ = Embeddings([nodes[i] for i in keep], np.asarray(vectors, dtype=np.float32)[keep])

    # ------------------------------------------------------------------ model persistence
    def _state_arrays(self) -> dict:
        """All node keys (row order) with their visit counts; input vectors and output
        (negative-sampling) weights of the visited nodes; the skipped nodes. Not the graph."""
        return {"nodes": np.asarray(self.nodes_, dtype=str), "visit_counts": self.visit_counts_,
                "vectors": self.embeddings_.vectors, "output": self._output,
                "skipped_nodes": np.asarray(self.skipped_nodes_, dtype=str)}

    def _state_config(self) -> dict:
        return {"backend": self.backend_, "num_nodes": len(self.nodes_), "visited": len(self.embeddings_)}

    def _load_state(self, arrays: dict, config: dict) -> None:
        nodes = [str(k) for k in np.asarray(arrays["nodes"]).tolist()]
        counts = np.asarray(arrays["visit_counts"], dtype=np.int64)
        vectors = np.asarray(arrays["vectors"], dtype=np.float32)
        output = np.asarray(arrays["output"], dtype=np.float32)
        skipped = [str(k) for k in np.asarray(arrays["skipped_nodes"]).tolist()]
        visited = int((counts > 0).sum())
        if not (counts.shape == (len(nodes),) and vectors.ndim == 2 and len(vectors) == visited
                and output.shape == vectors.shape and len(skipped) == len(nodes) - visited):
            raise ValueError(f"{len(nodes)} nodes, {counts.shape} visit counts, {len(skipped)} skipped nodes, "
                             f"input {vectors.shape} and output {output.shape} vectors do not match")
        rows = np.zeros((len(nodes), vectors.shape[1]), dtype=np.float32)
        out_rows = np.zeros_like(rows)
        rows[counts > 0], out_rows[counts > 0] = vectors, output
        self._set_fitted(nodes, counts, rows, out_rows, self.loss_history_, str(config["backend"]))
        if self.skipped_nodes_ != skipped:
            raise ValueError("the skipped nodes do not match the visit counts")
