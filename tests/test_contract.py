"""One contract, every trainer: shape, dtype, finiteness, seeds, callbacks, save/load, index round trip."""

import networkx as nx
import numpy as np
import pytest

import embedkit as ek


def two_topic_corpus():
    rng = np.random.default_rng(0)
    animals = ["cat", "dog", "mouse", "horse", "cow", "sheep"]
    vehicles = ["car", "bus", "train", "truck", "bike", "plane"]
    sents = []
    for _ in range(150):
        topic = animals if rng.random() < 0.5 else vehicles
        sents.append([str(w) for w in rng.choice(topic, 8)])
    return sents


def two_cliques():
    g = nx.complete_graph(6)
    g.add_edges_from((a + 6, b + 6) for a, b in nx.complete_graph(6).edges())
    g.add_edge(0, 6)
    return g


def checkerboard():
    users, items = [], []
    for u in range(20):
        block = u % 2
        for i in range(10):
            if (i % 2 == block) and (u + i) % 3:
                users.append(f"u{u}")
                items.append(f"i{i}")
    return ek.Interactions.from_arrays(users, items)


def blobs(n=120, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = rng.normal(size=(3, dim)) * 4
    return (centers[y] + rng.normal(size=(n, dim))).astype(np.float32), y


CASES = {
    "word2vec-torch": (lambda seed: ek.Word2Vec(dim=16, min_count=1, epochs=3, window=3, seed=seed,
                                                 backend="torch", device="cpu"),
                       lambda m, **kw: m.fit(two_topic_corpus(), **kw), 3),
    "word2vec-gensim": (lambda seed: ek.Word2Vec(dim=16, min_count=1, epochs=3, window=3, seed=seed,
                                                  backend="gensim", workers=1),
                        lambda m, **kw: m.fit(two_topic_corpus(), **kw), 3),
    "node2vec": (lambda seed: ek.Node2Vec(dim=16, walk_length=10, walks_per_node=5, window=3, p=0.5, q=2.0,
                                          epochs=2, seed=seed, device="cpu", workers=1),
                 lambda m, **kw: m.fit(two_cliques(), **kw), 2),
    "mf-als": (lambda seed: ek.MatrixFactorization(method="als", dim=4, epochs=3, seed=seed, device="cpu"),
               lambda m, **kw: m.fit(checkerboard(), **kw), 3),
    "mf-bpr": (lambda seed: ek.MatrixFactorization(method="bpr", dim=4, epochs=3, seed=seed, device="cpu"),
               lambda m, **kw: m.fit(checkerboard(), **kw), 3),
    "mf-explicit": (lambda seed: ek.MatrixFactorization(feedback="explicit", method="sgd", dim=4, epochs=3,
                                                        seed=seed, device="cpu"),
                    lambda m, **kw: m.fit(ek.Interactions.from_arrays(
                        [f"u{u}" for u in range(20) for _ in range(3)],
                        [f"i{(u + j) % 10}" for u in range(20) for j in range(3)],
                        [float(1 + (u + j) % 5) for u in range(20) for j in range(3)]), **kw), 3),
    "siamese": (lambda seed: ek.SiameseEncoder(dim=4, hidden=(16,), epochs=3, batch_size=32, seed=seed, device="cpu"),
                lambda m, **kw: m.fit(blobs()[0], y=blobs()[1], **kw), 3),
    "autoencoder": (lambda seed: ek.AutoEncoder(dim=3, hidden=(16,), epochs=3, batch_size=32, seed=seed, device="cpu"),
                    lambda m, **kw: m.fit(blobs()[0], **kw), 3),
    "vae": (lambda seed: ek.AutoEncoder(variant="vae", dim=3, hidden=(16,), epochs=3, batch_size=32, seed=seed,
                                        device="cpu"),
            lambda m, **kw: m.fit(blobs()[0], **kw), 3),
}


@pytest.fixture(scope="module")
def fitted():
    """Each trainer fitted twice with seed 0 and once with seed 1 (shared across the tests below)."""
    out = {}
    for name, (make, fit, epochs) in CASES.items():
        calls = []
        m = make(0)
        emb = fit(m, show_progress=False, callback=lambda e, loss: calls.append((e, loss)))
        again = fit(make(0), show_progress=False)
        other = fit(make(1), show_progress=False)
        out[name] = (m, emb, again, other, calls, epochs)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_trainer_contract(fitted, name, tmp_path):
    model, emb, again, other, calls, epochs = fitted[name]
    assert isinstance(emb, ek.Embeddings) and model.embeddings_ is emb
    assert len(emb) > 0 and emb.vectors.shape == (len(emb), emb.dim)
    assert emb.vectors.dtype == np.float32 and np.isfinite(emb.vectors).all()
    assert all(isinstance(k, str) for k in emb.keys)
    # callback(epoch, loss) once per epoch, finite losses, recorded in loss_history_
    assert len(calls) == epochs and [e for e, _ in calls] == sorted(e for e, _ in calls)
    assert all(np.isfinite(loss) for _, loss in calls)
    assert len(model.loss_history_) == epochs
    # same seed -> same vectors on CPU (gensim with one worker); another seed -> different vectors
    assert again.keys == emb.keys
    np.testing.assert_allclose(again.vectors, emb.vectors, rtol=1e-5, atol=1e-6)
    assert not np.allclose(other.vectors, emb.vectors)
    # save / load round trip
    emb.save(tmp_path / "e.npz")
    back = ek.Embeddings.load(tmp_path / "e.npz")
    assert back.keys == emb.keys and np.array_equal(back.vectors, emb.vectors)
    # into the index: every item is its own top-1 neighbour by vector (exact search)
    idx = emb.to_index(metric="l2", kind="flat")
    res = idx.search(emb.vectors, k=1)
    assert [r[0] for r in res.keys] == emb.keys or np.allclose(res.scores[:, 0], 0, atol=1e-5)
    # parameters are introspectable and repr-able
    assert set(model.get_params()) >= {"dim", "seed", "device"}
    repr(model)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_parameter_is_one_line_value_error(name):
    make, fit, _ = CASES[name]
    model = make(0)
    model.dim = 0
    with pytest.raises(ValueError, match="'dim'") as info:
        fit(model, show_progress=False)
    assert "\n" not in str(info.value)


def test_every_evaluation_name_is_exported():
    import embedkit.evaluate as ev

    for name in ev.__all__:
        assert callable(getattr(ev, name)), name
