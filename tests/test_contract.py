"""One contract, every trainer (see embedkit/trainers/base.py).

Each case trains on data with a planted answer and must find it: every key's nearest neighbours
stay in its topic / clique / block / class. Then: epochs 1..n in callbacks, seeds, parameters
(declared constraints, get_params round trip, one-line errors, ignored-parameter warnings,
aliases), nothing fitted before fit, and the model saved and loaded without pickle (file and store).
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest

import embedkit as ek
from embedkit.trainers import TRAINERS, IgnoredParameterWarning, load_from_store

from conftest import blobs, block_ratings, checkerboard, neighbour_purity, two_cliques, two_topic_corpus


def _corpus(m, **kw):
    sents, groups = two_topic_corpus()
    return m.fit(sents, **kw), groups


def _graph(m, **kw):
    g, groups = two_cliques()
    return m.fit(g, **kw), groups


def _board(m, **kw):
    data, groups = checkerboard()
    return m.fit(data, **kw), groups


def _ratings(m, **kw):
    data, groups = block_ratings()
    return m.fit(data, **kw), groups


def _blobs(m, **kw):
    X, y = blobs()
    emb = m.fit(X, y=y, **kw) if isinstance(m, ek.SiameseEncoder) else m.fit(X, **kw)
    return emb, {k: int(y[i]) for i, k in enumerate(emb.keys)}


# name: (make(seed), fit(model, **kw) -> (Embeddings, groups), epochs, minimum neighbour purity)
# (Word2Vec: sample=0, since with a 12-word vocabulary every word is "frequent" and 1e-3 drops most tokens)
CASES = {
    "word2vec-torch": (lambda s: ek.Word2Vec(dim=16, min_count=1, sample=0.0, epochs=5, window=3, seed=s, backend="torch",
                                             device="cpu"), _corpus, 5, 0.9),
    "word2vec-gensim": (lambda s: ek.Word2Vec(dim=16, min_count=1, sample=0.0, epochs=5, window=3, seed=s, backend="gensim",
                                              workers=1), _corpus, 5, 0.9),
    "word2vec-cbow": (lambda s: ek.Word2Vec(mode="cbow", dim=16, min_count=1, sample=0.0, epochs=5, window=3, seed=s,
                                            backend="torch", device="cpu"), _corpus, 5, 0.9),
    "fasttext-torch": (lambda s: ek.FastText(dim=16, min_count=1, sample=0.0, epochs=5, window=3, bucket=1000, seed=s,
                                             backend="torch", device="cpu"), _corpus, 5, 0.9),
    "fasttext-gensim": (lambda s: ek.FastText(dim=16, min_count=1, sample=0.0, epochs=5, window=3, bucket=1000, seed=s,
                                              backend="gensim", workers=1), _corpus, 5, 0.9),
    "node2vec-torch": (lambda s: ek.Node2Vec(dim=16, walk_length=10, walks_per_node=10, window=3, p=0.5, q=2.0,
                                             epochs=2, seed=s, device="cpu", backend="torch"), _graph, 2, 0.9),
    "node2vec-gensim": (lambda s: ek.Node2Vec(dim=16, walk_length=10, walks_per_node=10, window=3, p=0.5, q=2.0,
                                              epochs=2, seed=s, device="cpu", backend="gensim", workers=1),
                        _graph, 2, 0.9),
    "mf-als": (lambda s: ek.MatrixFactorization(method="als", dim=4, epochs=5, seed=s, device="cpu"), _board, 5, 0.9),
    "mf-bpr": (lambda s: ek.MatrixFactorization(method="bpr", dim=4, epochs=20, seed=s, device="cpu"),
               _board, 20, 0.9),
    "hybrid-bpr": (lambda s: ek.HybridMF(dim=4, epochs=20, seed=s, device="cpu"), _board, 20, 0.9),
    "mf-explicit-sgd": (lambda s: ek.MatrixFactorization(feedback="explicit", method="sgd", dim=4, epochs=30,
                                                         lr=0.02, seed=s, device="cpu"), _ratings, 30, 0.8),
    "mf-explicit-als": (lambda s: ek.MatrixFactorization(feedback="explicit", method="als", dim=4, epochs=5,
                                                         seed=s, device="cpu"), _ratings, 5, 0.8),
    "siamese": (lambda s: ek.SiameseEncoder(dim=4, hidden=(16,), epochs=5, batch_size=32, seed=s, device="cpu"),
                _blobs, 5, 0.95),
    "autoencoder": (lambda s: ek.AutoEncoder(dim=3, hidden=(16,), epochs=20, batch_size=32, seed=s, device="cpu"),
                    _blobs, 20, 0.95),
    "vae": (lambda s: ek.AutoEncoder(variant="vae", dim=3, hidden=(16,), epochs=20, batch_size=32, seed=s,
                                     device="cpu"), _blobs, 20, 0.9),
}

CLASSES = [ek.Word2Vec, ek.FastText, ek.Node2Vec, ek.MetaPath2Vec, ek.MatrixFactorization, ek.HybridMF, ek.SiameseEncoder,
           ek.AutoEncoder]

# a parameter the given settings ignore, set to a non-default value: it must warn once
IGNORED = {
    # gensim reads files in corpus_file mode, which has no batches
    "Word2Vec": lambda: ek.Word2Vec(dim=8, min_count=1, sample=0.0, epochs=1, backend="gensim", workers=1,
                                    batch_words=1000),
    "MatrixFactorization": lambda: ek.MatrixFactorization(method="als", dim=4, epochs=2, lr=0.1, device="cpu"),
    "SiameseEncoder": lambda: ek.SiameseEncoder(dim=4, hidden=(8,), epochs=1, margin=0.5, device="cpu"),
    "AutoEncoder": lambda: ek.AutoEncoder(dim=3, hidden=(8,), epochs=1, noise=0.5, device="cpu"),
}


def _fitted_attributes(model) -> list[str]:
    return [a for a in dir(model) if a.endswith("_") and not a.startswith("_") and hasattr(model, a)]


@pytest.fixture(scope="module")
def fitted():
    """Each case fitted twice with seed 0 and once with seed 1 (shared by the tests below)."""
    out = {}
    for name, (make, fit, epochs, purity) in CASES.items():
        calls = []
        m = make(0)
        assert _fitted_attributes(m) == [], f"{name}: fitted attributes exist before fit"
        with warnings.catch_warnings():
            warnings.simplefilter("error", IgnoredParameterWarning)  # the cases set no ignored parameter
            emb, groups = fit(m, show_progress=False, callback=lambda e, loss: calls.append((e, loss)))
        again, _ = fit(make(0), show_progress=False)
        other, _ = fit(make(1), show_progress=False)
        out[name] = (m, emb, groups, again, other, calls, epochs, purity)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_trainer_finds_the_planted_answer(fitted, name):
    model, emb, groups, *_rest, purity = fitted[name]
    assert isinstance(emb, ek.Embeddings) and model.embeddings_ is emb
    assert emb.vectors.dtype == np.float32 and np.isfinite(emb.vectors).all()
    assert all(isinstance(k, str) for k in emb.keys)
    got = neighbour_purity(emb, groups, k=3)
    assert got >= purity, f"{name}: only {got:.2f} of the top-3 neighbours share the key's group"


@pytest.mark.parametrize("name", list(CASES))
def test_callbacks_seeds_and_history(fitted, name):
    model, emb, _, again, other, calls, epochs, _ = fitted[name]
    assert [e for e, _ in calls] == list(range(1, epochs + 1))
    assert all(np.isfinite(loss) for _, loss in calls)
    assert model.loss_history_ == pytest.approx([loss for _, loss in calls])
    # same seed -> same vectors on CPU (gensim with one worker); another seed -> different vectors
    assert again.keys == emb.keys
    np.testing.assert_allclose(again.vectors, emb.vectors, rtol=1e-5, atol=1e-6)
    assert not np.allclose(other.vectors, emb.vectors)


@pytest.mark.parametrize("name", list(CASES))
def test_model_saves_and_loads_without_pickle(fitted, name, tmp_path):
    model, emb, *_ = fitted[name]
    path = model.save(tmp_path / "model.npz")
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert all(data[k].dtype != object for k in data.files)
    back = type(model).load(path)
    assert back.embeddings_.keys == emb.keys
    np.testing.assert_array_equal(back.embeddings_.vectors, emb.vectors)
    assert back.get_params() == model.get_params()
    assert back.loss_history_ == pytest.approx(model.loss_history_)
    # into the store: an index of the vectors plus the model, with a manifest naming the trainer
    store = ek.Store(tmp_path / "store")
    model.to_store("m", store)
    meta = store.info("m")["meta"]
    assert meta["trainer"] == type(model).__name__
    assert meta["params"] == model.json_params()
    assert meta["loss_history"] == pytest.approx(model.loss_history_)
    for loaded in (type(model).from_store("m", store), load_from_store("m", store)):
        assert type(loaded) is type(model)
        assert loaded.embeddings_.keys == emb.keys
        np.testing.assert_array_equal(loaded.embeddings_.vectors, emb.vectors)
    index = store.load("m")
    first = emb.keys[0]
    assert first in index and len(index) == len(emb)


@pytest.mark.parametrize("name", list(CASES))
def test_get_params_round_trip(fitted, name):
    model = fitted[name][0]
    clone = type(model)(**model.get_params())
    assert clone.get_params() == model.get_params()
    assert _fitted_attributes(clone) == []
    with pytest.raises(ek.NotFittedError):
        clone.save("never.npz")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_parameter_has_a_declared_constraint(cls):
    assert set(cls._parameter_constraints) == set(cls().get_params())
    assert cls.__name__ in TRAINERS


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_fit_takes_progress_and_callback_by_keyword_only(cls):
    params = inspect.signature(cls.fit).parameters
    for name in ("show_progress", "callback"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, f"{cls.__name__}.fit({name}=...)"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_parameter_is_one_line_error_naming_owner_range_and_value(name):
    make, fit, *_ = CASES[name]
    model = make(0)
    model.dim = 0
    with pytest.raises(ValueError) as info:
        fit(model, show_progress=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert f"'dim' parameter of {type(model).__name__}" in msg and "[1, 10000]" in msg and "Got 0" in msg


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_shared_names_share_their_range(cls):
    from embedkit import _validation as V

    shared = {"dim": V.DIM, "epochs": V.EPOCHS, "seed": V.SEED, "device": V.DEVICE,
              "min_lr": V.MIN_LR, "workers": V.WORKERS}
    optional = {"lr": V.LR, "batch_size": V.BATCH_SIZE}  # may also allow None (the method's default)
    for name, constraints in cls._parameter_constraints.items():
        if name in shared:
            assert constraints == shared[name], f"{cls.__name__}.{name}"
        if name in optional:
            assert optional[name][0] in constraints, f"{cls.__name__}.{name}"
            assert all(c is optional[name][0] or isinstance(c, V.NoneOk) for c in constraints), f"{cls.__name__}.{name}"


def test_learning_rate_is_lr_everywhere_and_confidence_is_not_alpha():
    for cls in CLASSES:
        params = cls().get_params()
        assert "alpha" not in params and "min_alpha" not in params, cls.__name__
        assert "lr" in params, cls.__name__
    assert "confidence" in ek.MatrixFactorization().get_params()


@pytest.mark.parametrize("cls, old, new, value", [
    (ek.Word2Vec, "alpha", "lr", 0.05), (ek.Word2Vec, "min_alpha", "min_lr", 0.001),
    (ek.MatrixFactorization, "alpha", "confidence", 2.0)])
def test_old_names_warn_and_set_the_new_one(cls, old, new, value):
    with pytest.warns(FutureWarning, match=f"'{old}' is renamed '{new}'"):
        model = cls(**{old: value})
    assert getattr(model, new) == value and old not in model.get_params()
    with pytest.warns(FutureWarning):
        assert cls().set_params(**{old: value}).get_params()[new] == value


@pytest.mark.parametrize("owner", list(IGNORED))
def test_ignored_parameter_warns_once(owner, tmp_path):
    model = IGNORED[owner]()
    sents, _ = two_topic_corpus()
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    fit = {"Word2Vec": lambda m, **kw: m.fit(corpus_file, **kw), "MatrixFactorization": _board,
           "SiameseEncoder": _blobs, "AutoEncoder": _blobs}[owner]
    with pytest.warns(IgnoredParameterWarning, match=f"{owner}: the '") as record:
        fit(model, show_progress=False)
    assert len([w for w in record if w.category is IgnoredParameterWarning]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredParameterWarning)
        fit(model, show_progress=False)  # once per model, not once per fit


def test_unknown_parameter_in_set_params_names_the_valid_ones():
    with pytest.raises(ValueError, match="Word2Vec has no parameter 'dims'.*valid parameters: .*dim"):
        ek.Word2Vec().set_params(dims=3)


def test_purity_check_fails_on_collapsed_and_random_vectors():
    sents, groups = two_topic_corpus()
    keys = sorted(groups)
    collapsed = ek.Embeddings(keys, np.ones((len(keys), 4), dtype=np.float32))
    noise = ek.Embeddings(keys, np.random.default_rng(0).normal(size=(len(keys), 4)).astype(np.float32))
    assert neighbour_purity(collapsed, groups) < 0.8
    assert neighbour_purity(noise, groups) < 0.8


def test_every_evaluation_name_is_exported():
    import embedkit.evaluate as ev

    for name in ev.__all__:
        assert callable(getattr(ev, name)), name
