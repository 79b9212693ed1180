"""Graph-embedding evaluation: node classification and link prediction.

Both follow the protocol of the node2vec paper (Grover & Leskovec, KDD 2016) and DeepWalk
(Perozzi et al., KDD 2014): one-vs-rest logistic regression on the vectors of a random half of
the labelled nodes, micro/macro F1 on the rest; and for links, a share of the edges held out,
embeddings learned on the remaining graph, Hadamard-product edge features, ROC-AUC.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .._files import text_lines
from .._knn import unit_rows
from .._validation import check_float, check_seed
from ..errors import InputError, ParseError

__all__ = ["node_classification", "link_prediction", "split_edges", "read_labels"]

log = logging.getLogger(__name__)


def read_labels(path) -> dict[str, list[str]]:
    """Read node labels: ``node<TAB or spaces>label [label ...]`` per line; a node may repeat
    (multi-label). ``#`` lines and blank lines are skipped. Raises ParseError naming the line."""
    out: dict[str, list[str]] = {}
    for lineno, line in text_lines(path, "a labels file of lines 'node label [label ...]'"):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = s.replace(",", " ").split()
        if len(fields) < 2:
            raise ParseError(path, lineno, f"expected 'node label [label ...]', got {s[:80]!r}")
        have = out.setdefault(fields[0], [])
        for label in fields[1:]:
            if label not in have:
                have.append(label)
    if not out:
        raise InputError(f"{path}: no labels found; expected lines 'node label'")
    return out


def _label_lists(labels) -> dict[str, list[str]]:
    if isinstance(labels, (str, Path)):
        return read_labels(labels)
    if not isinstance(labels, Mapping):
        raise InputError("labels must be a mapping node -> label (or list of labels), or a path to a labels file")
    out = {}
    for node, lab in labels.items():
        if isinstance(lab, (list, tuple, set, frozenset, np.ndarray)):
            out[str(node)] = [str(x) for x in lab]
        else:
            out[str(node)] = [str(lab)]
    return out


def node_classification(emb, labels, train_fraction: float = 0.5, seed: int = 0) -> dict:
    """Micro and macro F1 of one-vs-rest logistic regression on node vectors.

    ``labels``: node id -> label, node id -> list of labels (multi-label), or a path read by
    :func:`read_labels`. A random ``train_fraction`` of the labelled nodes that have a vector
    trains the classifier; the rest are predicted. Single-label: the most probable class.
    Multi-label (any node with several labels): each test node gets its top-k classes, k = its
    true number of labels (the DeepWalk/node2vec protocol). Labelled nodes without a vector are
    left out (logged). Returns ``{"micro_f1", "macro_f1"}`` (plus ``n_train``, ``n_test``).

    Raises InputError when fewer than two labelled nodes have vectors or only one class exists.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    check_float("node_classification", "train_fraction", train_fraction, 0, 1, low_open=True, high_open=True)
    check_seed("node_classification", seed)
    lab = _label_lists(labels)
    nodes = [n for n in lab if n in emb]
    missing = len(lab) - len(nodes)
    if missing:
        log.warning("node_classification: %d labelled node(s) have no vector and are left out", missing)
    if len(nodes) < 2:
        raise InputError(f"only {len(nodes)} labelled node(s) have a vector; need at least 2 (check the node ids)")
    mlb = MultiLabelBinarizer()
    Y = mlb.fit_transform([lab[n] for n in nodes])
    if Y.shape[1] < 2:
        raise InputError("the labels hold a single class; node classification needs at least two")
    multi = bool((Y.sum(1) > 1).any())
    X = np.stack([emb[n] for n in nodes]).astype(np.float64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(nodes))
    n_train = min(max(1, int(round(train_fraction * len(nodes)))), len(nodes) - 1)
    tr, te = order[:n_train], order[n_train:]
    clf = OneVsRestClassifier(LogisticRegression(max_iter=1000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # "label not present in all training examples"
        clf.fit(X[tr], Y[tr])
        proba = clf.predict_proba(X[te])
    pred = np.zeros_like(Y[te])
    if multi:
        k = Y[te].sum(1)
        top = np.argsort(-proba, axis=1)
        for i, ki in enumerate(k):
            pred[i, top[i, :ki]] = 1
    else:
        pred[np.arange(len(te)), proba.argmax(1)] = 1
    return {
        "micro_f1": float(f1_score(Y[te], pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(Y[te], pred, average="macro", zero_division=0)),
        "n_train": int(len(tr)),
        "n_test": int(len(te)),
    }


def split_edges(graph, test_fraction: float = 0.1, keep_connected: bool = True, seed: int = 0):
    """Hold out a share of a graph's edges for link prediction.

    Returns ``(train_graph, test_pos, test_neg)``: the residual graph (same nodes), the held-out
    edges and as many node pairs that are not edges of ``graph``, each an int array (m, 2) of
    node rows. With ``keep_connected`` the edges of a random spanning forest are never removed,
    so every connected component stays connected (and no node loses all its edges). Self-loops
    are never held out.

    Raises InputError when too few removable edges exist.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    from ..data.graph import Graph

    check_float("split_edges", "test_fraction", test_fraction, 0, 1, low_open=True, high_open=True)
    check_seed("split_edges", seed)
    rng = np.random.default_rng(seed)
    n = graph.num_nodes
    src, dst, w = graph.to_edge_arrays(unique=True)
    candidates = np.flatnonzero(src != dst)
    if keep_connected:
        # random weights -> a random spanning forest of the undirected skeleton
        r = rng.random(len(src)) + 1e-9
        tree = minimum_spanning_tree(coo_matrix((r, (src, dst)), shape=(n, n)).tocsr()).tocoo()
        in_tree = np.zeros(len(src), dtype=bool)
        key = src * n + dst
        pos = {k: i for i, k in enumerate(key.tolist())}
        for a, b in zip(tree.row.tolist(), tree.col.tolist()):
            i = pos.get(a * n + b)
            if i is None:
                i = pos.get(b * n + a)
            if i is not None:
                in_tree[i] = True
        candidates = candidates[~in_tree[candidates]]
    m = int(round(test_fraction * len(src)))
    if m < 1 or m > len(candidates):
        raise InputError(f"cannot hold out {m} of {len(src)} edges ({len(candidates)} are removable"
                         f"{' without disconnecting the graph' if keep_connected else ''}); lower test_fraction "
                         "or pass keep_connected=False")
    held = rng.choice(candidates, size=m, replace=False)
    keep = np.ones(len(src), dtype=bool)
    keep[held] = False
    train = Graph._from_index_arrays(src[keep], dst[keep], None if w is None else w[keep], graph.nodes, graph.directed)
    test_pos = np.stack([src[held], dst[held]], 1)
    test_neg = _non_edges(graph, m, rng)
    return train, test_pos, test_neg


def _non_edges(graph, m: int, rng) -> np.ndarray:
    n = graph.num_nodes
    rows = graph._rows()
    existing = set((rows * n + graph.indices).tolist())
    if not graph.directed:
        existing |= set((graph.indices * n + rows).tolist())
    if n * (n - 1) - len(existing) < m:
        raise InputError("the graph is too dense to draw enough non-edges; lower test_fraction")
    out, seen = [], set()
    while len(out) < m:
        a = rng.integers(0, n, 2 * m)
        b = rng.integers(0, n, 2 * m)
        for x, y in zip(a.tolist(), b.tolist()):
            k = x * n + y
            if x != y and k not in existing and k not in seen:
                seen.add(k)
                out.append((x, y))
                if len(out) == m:
                    break
    return np.asarray(out, dtype=np.int64)


def _edge_features(emb, graph, pairs: np.ndarray) -> np.ndarray:
    """Hadamard product of the two unit-length end vectors (its sum is their cosine);
    a node without a vector counts as zeros."""
    zero = np.zeros(emb.dim, dtype=np.float32)
    V = np.stack([emb[k] if k in emb else zero for k in graph.nodes]).astype(np.float64)
    V = unit_rows(V)
    return V[pairs[:, 0]] * V[pairs[:, 1]]


def _check_fitted_emb(emb, graph) -> None:
    """What ``fit`` returned: Embeddings holding at least one node of ``graph`` (a node without a
    vector counts as zeros, as documented in :func:`_edge_features`; none at all is a mistake)."""
    if not (hasattr(emb, "keys") and hasattr(emb, "vectors") and hasattr(emb, "dim")):
        raise InputError(f"fit must return Embeddings; got {type(emb).__name__}")
    nodes = list(graph.nodes)
    missing = sum(k not in emb for k in nodes)
    if missing and missing < len(nodes):
        log.warning("link_prediction: %d of %d nodes have no vector from fit and count as zeros", missing, len(nodes))
    if missing == len(nodes):
        sample = ", ".join(repr(k) for k in list(emb.keys)[:3]) or "none"
        raise InputError(f"fit returned embeddings holding none of the graph's nodes (keys like {sample}; "
                         f"nodes like {nodes[0]!r}); fit must embed the graph it is given")


def link_prediction(graph, fit: Callable, test_fraction: float = 0.1, keep_connected: bool = True,
                    seed: int = 0) -> dict:
    """ROC-AUC of predicting held-out edges from embeddings learned without them.

    ``graph``: an ek.Graph (or anything ek.Graph.coerce accepts). ``fit``: a trainer with a
    ``fit(graph)`` method (e.g. ``ek.Node2Vec(...)``) or a callable ``graph -> Embeddings``; it
    sees only the residual graph. Edge features are Hadamard products of the L2-normalised end
    vectors (raw norms grow with degree and drown the signal), standardised; a logistic regression
    is trained on the residual edges against as many random non-edges and scores the held-out
    edges against as many other non-edges. Nodes that ``fit`` gave no vector count as zeros (a
    warning says how many); embeddings holding none of the nodes raise InputError. Returns
    ``{"auc", "n_test"}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..data.graph import Graph

    graph = Graph.coerce(graph)
    train_graph, test_pos, test_neg = split_edges(graph, test_fraction, keep_connected, seed)
    trainer_fit = getattr(fit, "fit", None)
    if trainer_fit is not None:
        emb = trainer_fit(train_graph, show_progress=False)
    elif callable(fit):
        emb = fit(train_graph)
    else:
        raise InputError("fit must be a trainer with .fit(graph) or a callable graph -> Embeddings")
    _check_fitted_emb(emb, graph)
    rng = np.random.default_rng([seed, 1])
    s, d, _ = train_graph.to_edge_arrays(unique=True)
    keep = s != d
    tr_pos = np.stack([s[keep], d[keep]], 1)
    if len(tr_pos) > 20 * len(test_pos):                          # a sample is plenty to fit 'dim' weights
        tr_pos = tr_pos[rng.choice(len(tr_pos), 20 * len(test_pos), replace=False)]
    tr_neg = _non_edges(graph, len(tr_pos), rng)
    X = np.concatenate([_edge_features(emb, graph, tr_pos), _edge_features(emb, graph, tr_neg)])
    y = np.r_[np.ones(len(tr_pos)), np.zeros(len(tr_neg))]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    Xt = np.concatenate([_edge_features(emb, graph, test_pos), _edge_features(emb, graph, test_neg)])
    yt = np.r_[np.ones(len(test_pos)), np.zeros(len(test_neg))]
    return {"auc": float(roc_auc_score(yt, clf.decision_function(Xt))), "n_test": int(len(test_pos))}
