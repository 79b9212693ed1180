"""Node2Vec: node embeddings from p/q-biased random walks and skip-gram.

Implements Grover & Leskovec, "node2vec: Scalable Feature Learning for Networks" (KDD 2016).
The walks (embedkit.trainers.node2vec.walks) are sampled in torch, many at once, on CPU or CUDA, and
stream batch by batch into the skip-gram engine that Word2Vec uses
(embedkit.trainers.sgns.engine); no walk is ever turned into Python strings.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..._device import resolve_device
from ..._validation import check_choice, check_float, check_int, check_seed
from ...embeddings import Embeddings
from ...errors import InputError
from ..base import Trainer

__all__ = ["Node2Vec"]

log = logging.getLogger(__name__)

_OWNER = "Node2Vec"
_CPU_WALKERS = 65_536       # walks advanced at once: big enough to amortise torch's per-op cost
_CUDA_WALKERS = 1 << 20
_LOSS_SAMPLE_STEPS = 5000   # walk steps on which the gensim backend evaluates its per-epoch loss


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Node2Vec(Trainer):
    """Node2vec: second-order biased random walks + skip-gram with negative sampling.

    Parameters
    ----------
    dim : int, default 128
        Vector dimension.
    walk_length : int, default 80
        Nodes per walk (the start node included). Walks in a directed graph stop early at a
        node without out-edges.
    walks_per_node : int, default 10
        Walks started from every node with at least one out-edge, per epoch.
    window : int, default 10
        Skip-gram context window (each centre draws its window from 1..window).
    p : float, default 1.0
        Return parameter: the unnormalised weight of stepping back to the previous node is w/p.
    q : float, default 1.0
        In-out parameter: weight w/q for nodes that are not neighbours of the previous node
        (q < 1 explores outward, DFS-like; q > 1 stays local, BFS-like). p = q = 1 is DeepWalk.
    epochs : int, default 1
        Passes of skip-gram training; every epoch samples a fresh set of walks.
    negative : int, default 5
        Noise nodes per positive pair.
    sample : float, default 0.0
        Frequency subsampling threshold. 0 trains on every walk step. PecanPy and the reference
        node2vec code call gensim with its default 1e-3, which on small graphs drops most of each
        walk (every node is "frequent"); pass 1e-3 to reproduce them.
    lr : float, default 0.025
        Initial learning rate, decaying linearly to ``min_lr`` (word2vec's alpha/min_alpha).
    min_lr : float, default 0.0001
    seed : int, default 0
        Same seed, graph and device -> same walks; on CPU also the same vectors.
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
        gensim threads (default: all cores). Exact gensim repeatability needs workers=1.

    Attributes (after fit)
    ----------------------
    embeddings_ : Embeddings keyed by node id. loss_history_ : one mean loss per epoch.
    skipped_nodes_ : ids of nodes no walk visits (isolated nodes; in a directed graph also nodes
    that no walk reached), which therefore get no vector. graph_ : the ek.Graph trained on.
    backend_ : the backend used. visit_counts_ : visits per node (row order of graph_) in epoch 0.

    Raises
    ------
    InputError on a bad parameter (checked in fit) or a graph without edges.
    """

    def __init__(self, dim: int = 128, walk_length: int = 80, walks_per_node: int = 10, window: int = 10,
                 p: float = 1.0, q: float = 1.0, epochs: int = 1, negative: int = 5, sample: float = 0.0,
                 lr: float = 0.025, min_lr: float = 0.0001, seed: int = 0, device="auto",
                 walk_batch_size: int | None = None, backend: str = "auto", workers: int | None = None):
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
        self.loss_history_ = []
        self.skipped_nodes_: list[str] = []

    def _validate(self) -> None:
        check_int(_OWNER, "dim", self.dim, 1)
        check_int(_OWNER, "walk_length", self.walk_length, 2)
        check_int(_OWNER, "walks_per_node", self.walks_per_node, 1)
        check_int(_OWNER, "window", self.window, 1)
        check_float(_OWNER, "p", self.p, 0, None, low_open=True)
        check_float(_OWNER, "q", self.q, 0, None, low_open=True)
        check_int(_OWNER, "epochs", self.epochs, 1)
        check_int(_OWNER, "negative", self.negative, 1)
        check_float(_OWNER, "sample", self.sample, 0, 1)
        check_float(_OWNER, "lr", self.lr, 0, None, low_open=True)
        check_float(_OWNER, "min_lr", self.min_lr, 0, self.lr)
        check_seed(_OWNER, self.seed)
        if self.walk_batch_size is not None:
            check_int(_OWNER, "walk_batch_size", self.walk_batch_size, 1)
        check_choice(_OWNER, "backend", self.backend, ["auto", "torch", "gensim"])
        if self.workers is not None:
            check_int(_OWNER, "workers", self.workers, 1)

    def _resolve_backend(self, dev) -> str:
        if self.backend == "auto":
            return "torch" if dev.type == "cuda" else "gensim"
        if self.backend == "gensim" and dev.type == "cuda" and self.device not in ("auto", None):
            raise InputError(f"backend='gensim' trains on CPU only; use backend='torch' for device={self.device!r}")
        return self.backend

    def walk_stream(self, graph, device=None):
        """The (tokens, lengths) batch stream fit() trains on; for inspection and benchmarks."""
        from ...data.graph import Graph
        from .walks import WalkSampler, WalkStream

        graph = Graph.coerce(graph)
        dev = resolve_device(self.device if device is None else device, _OWNER)
        starts = np.flatnonzero(graph.degrees() > 0)
        steps = len(starts) * self.walks_per_node * (self.walk_length - 1) * self.epochs
        sampler = WalkSampler(graph, p=self.p, q=self.q, device=dev, expected_steps=steps)
        batch = self.walk_batch_size or (_CUDA_WALKERS if dev.type == "cuda" else _CPU_WALKERS)
        return WalkStream(sampler, starts, walk_length=self.walk_length, walks_per_node=self.walks_per_node,
                          seed=self.seed, batch_walkers=batch)

    def fit(self, graph, show_progress: bool = True, callback=None) -> Embeddings:
        """Learn one vector per node of ``graph``.

        ``graph``: an ek.Graph, a networkx graph, a torch_geometric Data, or the path of an
        edge list (read as undirected; build an ek.Graph for other options). Returns Embeddings
        keyed by node id (isolated nodes left out, with a warning; see ``skipped_nodes_``).
        """
        from ...data.graph import Graph
        from ..sgns.engine import train_skipgram

        self._validate()
        self._check_callback(_OWNER, callback)
        graph = Graph.coerce(graph)
        dev = resolve_device(self.device, _OWNER)
        backend = self._resolve_backend(dev)
        if not (graph.degrees() > 0).any():
            raise InputError("the graph has no edges: node2vec needs edges to walk on")
        # gensim trains on CPU; walking there too avoids copying every batch off the GPU
        stream = self.walk_stream(graph, dev if backend == "torch" else "cpu")
        log.info("node2vec: %d walks per epoch, backend %s, device %s", stream.walks_per_epoch, backend, dev)
        if backend == "torch":
            counts = stream.counts(graph.num_nodes)      # visits in epoch 0 (the walks it trains on)
            vectors, losses = train_skipgram(
                stream, counts, mode="skipgram", dim=self.dim, window=self.window, negative=self.negative,
                sample=self.sample, epochs=self.epochs, alpha=self.lr, min_alpha=self.min_lr, seed=self.seed,
                device=dev, total_words=int(counts.sum()), show_progress=show_progress,
                callback=callback, desc="node2vec")
        else:
            vectors, counts, losses = self._fit_gensim(stream, graph.num_nodes, show_progress, callback)
        visited = counts > 0
        skipped = np.flatnonzero(~visited)
        self.skipped_nodes_ = [graph.nodes[i] for i in skipped]
        if len(skipped):
            shown = ", ".join(repr(k) for k in self.skipped_nodes_[:5])
            more = "" if len(skipped) <= 5 else f" and {len(skipped) - 5} more"
            warnings.warn(f"Node2Vec: {len(skipped)} node(s) that no walk visits (isolated) get no vector: "
                          f"{shown}{more} (see skipped_nodes_)", stacklevel=2)
        keep = np.flatnonzero(visited)
        self.graph_ = graph
        self.backend_ = backend
        self.visit_counts_ = counts
        self.loss_history_ = [float(x) for x in losses]
        self.embeddings_ = Embeddings([graph.nodes[i] for i in keep], vectors[keep])
        return self.embeddings_

    def _fit_gensim(self, stream, n: int, show_progress, callback):
        """Train gensim's Word2Vec (corpus_file mode) on epoch 0's walks.

        Returns (vectors in node-row order, visits per node, loss per epoch).
        """
        from gensim.models import Word2Vec as GensimWord2Vec
        from gensim.models.callbacks import CallbackAny2Vec
        from tqdm.auto import tqdm

        from ..sgns.engine import evaluate_loss
        from ..sgns.gensim_backend import train_corpus_file

        model = GensimWord2Vec(vector_size=self.dim, window=self.window, negative=self.negative, hs=0, min_count=1,
                               sample=self.sample, epochs=self.epochs, alpha=self.lr, min_alpha=self.min_lr,
                               seed=self.seed, sg=1, workers=self.workers or _cpu_count())
        losses: list[float] = []
        state = {}

        def _rows():
            return np.fromiter((int(k) for k in model.wv.index_to_key), dtype=np.int64, count=len(model.wv))

        class _EpochEnd(CallbackAny2Vec):
            """Report a real loss per epoch: gensim's own counter is unreliable (gensim #2617, #2735);
            the loss is evaluated on the first walks of the file, as Word2Vec's gensim backend does."""

            def __init__(self):
                self.epoch = 0

            def on_epoch_end(self, m):
                self.epoch += 1
                rows = _rows()
                w_in = np.zeros((n, m.wv.vector_size), dtype=np.float32)
                w_out = np.zeros_like(w_in)
                w_in[rows], w_out[rows] = m.wv.vectors, m.syn1neg
                tokens, lengths = state["sample"]
                loss = evaluate_loss(w_in, w_out, tokens, lengths, state["counts"], window=m.window,
                                     negative=m.negative, sample=m.sample, seed=0)
                losses.append(loss)
                state["bar"].update(int(state["counts"].sum()))
                state["bar"].set_postfix(epoch=self.epoch, loss=f"{loss:.4f}")
                if callback is not None:
                    callback(self.epoch, loss)

        with tempfile.TemporaryDirectory(prefix="embedkit-node2vec-") as tmp:
            path = Path(tmp) / "walks.txt"
            t0 = time.perf_counter()
            with open(path, "wb") as fh:
                counts, (tokens, lengths) = stream.write_text(fh, n, 0)
            log.info("node2vec: walks written for gensim in %.1fs", time.perf_counter() - t0)
            take = int(min(len(lengths), max(1, _LOSS_SAMPLE_STEPS // self.walk_length)))
            state.update(counts=counts, sample=(tokens[: int(lengths[:take].sum())], lengths[:take]))
            state["bar"] = tqdm(total=self.epochs * int(counts.sum()), unit="step", unit_scale=True,
                                desc="node2vec (gensim)", disable=not show_progress, dynamic_ncols=True)
            try:
                model.build_vocab(corpus_file=str(path))
                train_corpus_file(model, str(path), self.epochs, [_EpochEnd()])
            finally:
                state["bar"].close()
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        vectors[_rows()] = model.wv.vectors
        return vectors, counts, losses
