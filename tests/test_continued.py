"""Continued training (Word2Vec / Node2Vec partial_fit), new nodes without retraining
(Node2Vec.embed_new_nodes), and runs that must stop instead of saving non-finite vectors."""

from __future__ import annotations

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError
from embedkit.trainers.sgns.engine import train_skipgram

from conftest import neighbour_purity, two_cliques


def _topics(groups, n, seed):
    rng = np.random.default_rng(seed)
    return [list(rng.choice(groups[rng.integers(len(groups))], 8)) for _ in range(n)]


A, B, C, D = ([f"{p}{i}" for i in range(6)] for p in "abcd")
OLD = _topics([A, B], 200, 0)
NEW = _topics([C, D], 200, 1) + _topics([A], 20, 2)
G_OLD = {w: 0 for w in A} | {w: 1 for w in B}
G_ALL = G_OLD | {w: 2 for w in C} | {w: 3 for w in D}


def _cos(x, y):
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


@pytest.mark.parametrize("backend", ["torch", "gensim"])
def test_word2vec_partial_fit_grows_the_vocabulary_and_keeps_old_vectors(backend, tmp_path):
    m = ek.Word2Vec(dim=16, min_count=1, sample=0.0, epochs=4, window=3, backend=backend, device="cpu", workers=1)
    old = m.fit(OLD, show_progress=False)
    assert neighbour_purity(old, G_OLD) == 1.0
    path = m.save(tmp_path / "w2v")
    loaded = ek.Word2Vec.load(path)                    # continue from a saved model
    new = loaded.partial_fit(NEW, show_progress=False)
    assert new.keys[:len(old)] == old.keys and set(new.keys) == set(G_ALL)   # old words first, new appended
    assert len(loaded.loss_history_) == 8
    assert loaded.vocab_counts_[new.index_of("a0")] > m.vocab_counts_[old.index_of("a0")]   # counts add up
    assert neighbour_purity(new, G_ALL) == 1.0          # new words found their topics, old ones kept theirs
    drift = np.mean([_cos(old[w], new[w]) for w in G_OLD])
    assert drift > 0.9, drift                           # the default lr (lr / 4) does not wreck old vectors
    again = ek.Word2Vec.load(loaded.save(tmp_path / "w2v2"))
    np.testing.assert_array_equal(again.embeddings_.vectors, new.vectors)


def test_word2vec_partial_fit_needs_a_fitted_model_and_checks_lr():
    with pytest.raises(ek.NotFittedError):
        ek.Word2Vec().partial_fit(OLD)
    m = ek.Word2Vec(dim=8, min_count=1, sample=0.0, epochs=1, backend="torch", device="cpu")
    m.fit(OLD, show_progress=False)
    with pytest.raises(InputError, match="'lr'"):
        m.partial_fit(NEW, lr=0.0, show_progress=False)


def _grown_cliques():
    g, groups = two_cliques()
    g2 = g.copy()
    for j in range(2):
        g2.add_edges_from([(f"n{j}", k) for k in range(3)])          # new nodes joining clique 0
        g2.add_edges_from([(f"m{j}", 8 + k) for k in range(3)])      # ... and clique 1
    return g, g2, groups | {f"n{j}": 0 for j in range(2)} | {f"m{j}": 1 for j in range(2)}


def _new_node_purity(emb, keys, groups, k=3):
    return float(np.mean([np.mean([groups[n] == groups[q] for n, _ in emb.most_similar(q, k)]) for q in keys]))


def test_embed_new_nodes_freezes_old_vectors_and_matches_a_full_retrain():
    g, g2, groups = _grown_cliques()
    make = lambda: ek.Node2Vec(dim=16, walk_length=8, walks_per_node=6, window=3, epochs=2, seed=0,  # noqa: E731
                               device="cpu", backend="torch")
    m = make()
    old = m.fit(g, show_progress=False)
    before = old.vectors.copy()
    new = m.embed_new_nodes(g2, walks_per_node=10)
    assert sorted(new.keys) == ["m0", "m1", "n0", "n1"]
    np.testing.assert_array_equal(m.embeddings_[old.keys], before)       # old vectors frozen
    assert set(m.embeddings_.keys) == set(old.keys) | set(new.keys)
    incremental = _new_node_purity(m.embeddings_, new.keys, groups)
    retrain = _new_node_purity(make().fit(g2, show_progress=False), new.keys, groups)
    assert incremental == 1.0 and retrain == 1.0
    with pytest.raises(InputError, match="no node the model lacks"):
        m.embed_new_nodes(g2)


def test_node2vec_partial_fit_adds_nodes_and_keeps_the_answer(tmp_path):
    g, g2, groups = _grown_cliques()
    m = ek.Node2Vec(dim=16, walk_length=8, walks_per_node=6, window=3, epochs=1, seed=0, device="cpu",
                    backend="torch")
    m.fit(g, show_progress=False)
    loaded = ek.Node2Vec.load(m.save(tmp_path / "n2v"))
    emb = loaded.partial_fit(g2, show_progress=False)
    assert len(emb) == len(groups) and len(loaded.loss_history_) == 2
    assert neighbour_purity(emb, groups) >= 0.9


def test_engine_continues_from_given_tables_and_freezes_rows():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10, 400)
    lengths = np.full(40, 10)
    counts = np.bincount(tokens, minlength=10)
    w_in = rng.normal(size=(10, 4)).astype(np.float32) * 0.1
    w_out = rng.normal(size=(10, 4)).astype(np.float32) * 0.1
    learn = np.arange(10) >= 5
    vin, _, vout = train_skipgram([(tokens, lengths)], counts, dim=4, epochs=1, sample=0.0, show_progress=False,
                                  init=(w_in, w_out), trainable=(learn, learn), return_output=True)
    np.testing.assert_array_equal(vin[:5], w_in[:5])
    np.testing.assert_array_equal(vout[:5], w_out[:5])
    assert not np.allclose(vin[5:], w_in[5:])
    with pytest.raises(InputError, match="init holds"):
        train_skipgram([(tokens, lengths)], counts, dim=4, epochs=1, show_progress=False, init=(w_in[:3], w_out))


def test_non_finite_loss_stops_the_run_with_a_one_line_error():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10, 400)
    counts = np.bincount(tokens, minlength=10)
    w_in = np.zeros((10, 4), dtype=np.float32)
    w_in[3] = np.nan
    with pytest.raises(InputError) as info:
        train_skipgram([(tokens, np.full(40, 10))], counts, dim=4, epochs=3, sample=0.0, show_progress=False,
                       init=(w_in, np.zeros_like(w_in)))
    msg = str(info.value)
    assert "\n" not in msg and "diverged in epoch 1" in msg and "lr" in msg


def test_gensim_backend_stops_on_a_non_finite_loss(monkeypatch, tmp_path):
    import embedkit.trainers.sgns.engine as engine

    monkeypatch.setattr(engine, "evaluate_loss", lambda *a, **k: float("nan"))
    m = ek.Word2Vec(dim=8, min_count=1, sample=0.0, epochs=3, backend="gensim", workers=1)
    with pytest.raises(InputError, match="diverged in epoch 1.*lr"):
        m.fit(OLD, show_progress=False)
    assert not hasattr(m, "embeddings_")                # nothing fitted, so nothing can be saved


@pytest.mark.parametrize("backend", ["torch", "gensim"])
def test_a_corpus_that_forms_no_example_is_refused(backend):
    m = ek.Word2Vec(dim=8, min_count=1, sample=0.0, epochs=1, backend=backend, device="cpu", workers=1)
    with pytest.raises(InputError, match="no training example"):
        m.fit([["a"], ["b"], ["a"]], show_progress=False)



def test_cli_continues_a_saved_word2vec_and_embeds_new_nodes(tmp_path, capsys):
    from embedkit.cli import main

    store = str(tmp_path / "store")
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("\n".join(" ".join(s) for s in OLD) + "\n")
    new.write_text("\n".join(" ".join(s) for s in NEW) + "\n")
    common = ["--store", store, "--no-progress"]
    assert main(["train", "word2vec", str(old), "--name", "w", "--min-count", "1", "--dim", "8", "--epochs", "1",
                 "--workers", "1", *common]) == 0
    assert main(["train", "word2vec", str(new), "--update", "w", "--name", "w2", "--epochs", "1", *common]) == 0
    assert "12 -> 24 words" in capsys.readouterr().out
    g, g2, _ = _grown_cliques()
    for name, graph in (("g", g), ("g2", g2)):
        (tmp_path / f"{name}.txt").write_text("\n".join(f"{a} {b}" for a, b in graph.edges()) + "\n")
    assert main(["train", "node2vec", str(tmp_path / "g.txt"), "--name", "n", "--dim", "8", "--walk-length", "6",
                 "--walks-per-node", "2", "--backend", "torch", "--device", "cpu", *common]) == 0
    assert main(["train", "node2vec", str(tmp_path / "g2.txt"), "--update", "n", "--new-nodes-only", "--name", "n2",
                 *common]) == 0
    assert "16 -> 20 nodes" in capsys.readouterr().out
    assert len(ek.Node2Vec.from_store("n2", store).embeddings_) == 20
