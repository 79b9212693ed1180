"""Shared fixtures: small data sets with a planted answer, one per kind of input.

Each builder returns the data and the group of every key (topic, clique, block, class), so a
test can check that a trainer's nearest neighbours stay inside their group
(``neighbour_purity``). Test modules import them: ``from conftest import two_cliques``.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import embedkit as ek

ANIMALS = ["cat", "dog", "mouse", "horse", "cow", "sheep"]
VEHICLES = ["car", "bus", "train", "truck", "bike", "plane"]


def two_topic_corpus(n_sentences: int = 300, seed: int = 0):
    """Sentences of 8 words drawn from one of two topics; group = topic."""
    rng = np.random.default_rng(seed)
    sents = []
    for _ in range(n_sentences):
        topic = ANIMALS if rng.random() < 0.5 else VEHICLES
        sents.append([str(w) for w in rng.choice(topic, 8)])
    groups = {w: 0 for w in ANIMALS} | {w: 1 for w in VEHICLES}
    return sents, groups


def two_cliques(size: int = 8):
    """Two cliques joined by one edge; group = clique."""
    g = nx.complete_graph(size)
    g.add_edges_from((a + size, b + size) for a, b in nx.complete_graph(size).edges())
    g.add_edge(0, size)
    return g, {str(n): int(n >= size) for n in g.nodes}


def checkerboard(n_users: int = 40, n_items: int = 20):
    """Users of block b interact with (most) items of block b only; group of an item = its block."""
    users, items = [], []
    for u in range(n_users):
        block = u % 2
        for i in range(n_items):
            if i % 2 == block and (u + i) % 5:
                users.append(f"u{u}")
                items.append(f"i{i}")
    return ek.Interactions.from_arrays(users, items), {f"i{i}": i % 2 for i in range(n_items)}


def block_ratings(n_users: int = 40, n_items: int = 20, seed: int = 0):
    """Ratings: users of block b rate items of block b high (4-5) and the others low (1-2)."""
    rng = np.random.default_rng(seed)
    users, items, values = [], [], []
    for u in range(n_users):
        for i in rng.choice(n_items, size=12, replace=False):
            same = (u % 2) == (i % 2)
            users.append(f"u{u}")
            items.append(f"i{i}")
            values.append(float(rng.integers(4, 6) if same else rng.integers(1, 3)))
    return ek.Interactions.from_arrays(users, items, values), {f"i{i}": i % 2 for i in range(n_items)}


def blobs(n: int = 150, dim: int = 8, seed: int = 0):
    """Three Gaussian classes; group of row r = its class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = rng.normal(size=(3, dim)) * 4
    X = (centers[y] + rng.normal(size=(n, dim))).astype(np.float32)
    return X, y


def neighbour_purity(emb, groups, k: int = 3) -> float:
    """Share of each key's ``k`` nearest neighbours (cosine, itself excluded) in the key's group.

    Collapsed or random vectors score about the share of the largest group; a trainer that
    learned the planted structure scores close to 1.
    """
    keys = [k_ for k_ in emb.keys if k_ in groups]
    hits = total = 0
    for key in keys:
        for other, _ in emb.most_similar(key, k=k):
            hits += groups[other] == groups[key]
            total += 1
    return hits / total


@pytest.fixture
def run(capsys):
    """``run(*argv)`` -> (exit code, stdout, stderr) of the ``embedkit`` command line, in process."""
    from embedkit.cli import main

    def _run(*argv):
        code = main([str(a) for a in argv])
        res = capsys.readouterr()
        return code, res.out, res.err
    return _run
