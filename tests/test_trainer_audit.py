"""Trainer audit: each bad input or odd setting gets a one-line message naming the cause and the fix.

1. a corpus too small for its subsampling (gensim backend) is blamed on ``sample``, not on ``lr``;
2. the MF dim warning never suggests a dim as large as the one given;
3. a bad item payload is one line naming the row;
4. AutoEncoder warns when it caps an explicit ``dim`` at half the features;
5. SiameseEncoder warns that the self-supervised options are ignored by a fit with labels or pairs;
6. the encoders refuse non-string keys, as ``ek.Embeddings`` does (README: "Keys are strings, always").
"""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest

import embedkit as ek
from embedkit.cli import main
from embedkit.errors import IgnoredParameterWarning, InputError
from embedkit.trainers.sgns import gensim_backend

TINY = [["a", "b", "c"]] * 5    # 15 tokens of 3 words: sample=1e-3 keeps about 6% of them


def _one_line(msg: str) -> str:
    assert "\n" not in msg and "Traceback" not in msg, msg
    return msg


# ------------------------------------------------------------------ 1. subsampling, not the learning rate
@pytest.mark.parametrize("lr", [0.025, 0.0001])
@pytest.mark.parametrize("trainer", [ek.Word2Vec, ek.FastText])
def test_a_tiny_corpus_is_blamed_on_subsampling_not_on_lr(trainer, lr):
    model = trainer(dim=4, epochs=1, min_count=1, lr=lr, backend="gensim", device="cpu", workers=1)
    with pytest.raises(InputError) as err:
        model.fit(TINY, show_progress=False)
    msg = _one_line(str(err.value))
    assert "subsampling (sample=0.001)" in msg and "set sample=0 (--sample 0) or give a larger corpus" in msg
    assert "diverged" not in msg and "lr" not in msg and "learning rate" not in msg
    assert not hasattr(model, "embeddings_")          # nothing fitted, so nothing can be saved
    trainer(dim=4, epochs=1, min_count=1, lr=lr, sample=0.0, backend="gensim", device="cpu",
            workers=1).fit(TINY, show_progress=False)  # the fix the message names works


def test_the_cli_says_to_pass_sample_0(tmp_path, capsys):
    corpus = tmp_path / "t.txt"
    corpus.write_text("a b c\n" * 5)
    base = ["--store", str(tmp_path / "st"), "train", "word2vec", str(corpus), "--name", "t", "--dim", "4",
            "--epochs", "1", "--min-count", "1", "--no-progress"]
    assert main(base) == 1
    err = capsys.readouterr().err.strip()
    assert _one_line(err).startswith("error: epoch 1 formed no training example: subsampling") and "--sample 0" in err
    assert main([*base, "--sample", "0"]) == 0


class _Vocab:
    def __init__(self, vectors):
        self.vectors = vectors

    def __len__(self):
        return len(self.vectors)


class _FakeGensim:
    """A gensim model in iterator mode: ``vectors`` as its input table, ``done`` what train returns."""

    corpus_count, corpus_total_words, alpha, sample = 5, 15, 0.025, 1e-3

    def __init__(self, vectors, done=(15, 15)):
        self.wv = _Vocab(np.asarray(vectors, dtype=np.float32))
        self.syn1neg = np.ones((3, 4), dtype=np.float32)
        self.done = done

    def train(self, *, epochs, callbacks, **_):
        for _ in range(epochs):
            for cb in callbacks:
                cb.on_epoch_end(self)
        return self.done


def _train(model, loss):
    return gensim_backend.train(model, dict(corpus_iterable=[]), epochs=1, lr_schedule="gensim",
                                loss_of=lambda m: loss, units_per_epoch=15, desc="fake", show_progress=False)


def test_the_lr_advice_stays_when_the_vectors_really_diverged():
    with pytest.raises(InputError, match=r"diverged in epoch 1.*lr=0\.025 is too high") as err:
        _train(_FakeGensim(np.full((3, 4), np.nan)), float("nan"))
    _one_line(str(err.value))
    with pytest.raises(InputError, match=r"epoch 1 formed no training example: subsampling \(sample=0\.001\)"):
        _train(_FakeGensim(np.zeros((3, 4))), float("nan"))    # finite vectors: no example, nothing diverged


def test_a_run_that_trained_no_word_is_refused():
    with pytest.raises(InputError, match=r"training formed no example in 1 epoch\(s\): subsampling") as err:
        _train(_FakeGensim(np.zeros((3, 4)), done=(0, 15)), 1.0)   # a finite loss, yet gensim trained 0 words
    _one_line(str(err.value))
    assert _train(_FakeGensim(np.zeros((3, 4))), 1.0)[0] == [1.0]


# ------------------------------------------------------------------ 2. MF dim advice
def _dim_warnings(caplog, dim, shape):
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="embedkit.trainers.mf.model"):
        ek.MatrixFactorization(dim=dim, epochs=1).fit(np.ones(shape), show_progress=False)
    return [r.getMessage() for r in caplog.records if r.name == "embedkit.trainers.mf.model"]


@pytest.mark.parametrize("dim", [2, 4, 8])
def test_mf_never_suggests_a_dim_as_large_as_the_one_given(caplog, dim):
    (msg,) = _dim_warnings(caplog, dim, (1, 5))       # one user
    assert f"dim={dim} exceeds min(n_users, n_items) = 1" in _one_line(msg)
    assert "try dim=" not in msg and "too few for a useful factorisation at any dim" in msg
    assert "give interactions of more users and items" in msg


def test_mf_dim_advice_on_a_catalogue_large_enough_is_unchanged(caplog):
    (msg,) = _dim_warnings(caplog, 30, (20, 40))
    suggested = int(re.search(r"try dim=(\d+)", msg).group(1))
    assert suggested == 4 < 30 and "what the default gives here" in msg
    assert _dim_warnings(caplog, 4, (20, 40)) == []


# ------------------------------------------------------------------ 3. item payloads
@pytest.fixture(scope="module")
def recommenders():
    X = np.ones((5, 3))
    mf = ek.MatrixFactorization(dim=2, epochs=1)
    mf.fit(X, show_progress=False)
    pop = ek.Popularity()
    pop.fit(X)
    return mf, pop


@pytest.mark.parametrize("payload, expected", [
    ([1, 2, 3], "item payload row 0 is int; give one dict per item"),
    ([{"g": "x"}, None, "drama"], "item payload row 2 is str; give one dict per item"),
    ({"0": 1}, "item payload of item '0' is int; give one dict {field: value} per item"),
    (5, "item payload must be a dict {item: {field: value}} or a list of one dict per item; got int"),
    ("drama", "item payload must be a dict {item: {field: value}} or a list of one dict per item; got str"),
])
def test_a_bad_item_payload_is_one_line(recommenders, payload, expected):
    for model in recommenders:
        model.set_item_payload([{"g": "keep"}, {}, {}])
        with pytest.raises(InputError) as err:
            model.set_item_payload(payload)
        assert _one_line(str(err.value)) == expected
        assert model._payload[0] == {"g": "keep"}                # the payloads set before are kept


def test_good_item_payloads_still_work(recommenders):
    mf, pop = recommenders
    for model in (mf, pop):
        model.set_item_payload([{"g": "a"}, None, {"g": "b"}])
        assert model._payload == [{"g": "a"}, {}, {"g": "b"}]
        model.set_item_payload({"2": {"g": "c"}})
        assert model._payload == [{}, {}, {"g": "c"}]
        model.set_item_payload(None)
        assert model._payload is None


# ------------------------------------------------------------------ 4. AutoEncoder dim cap
AE = dict(epochs=2, hidden=(8,), batch_size=16, seed=0, device="cpu")


def _rows(n=64, d=8):
    return np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)


def test_autoencoder_warns_when_it_caps_an_explicit_dim():
    X = _rows()
    with pytest.warns(UserWarning, match=r"AutoEncoder: dim=8 is capped at 4, half of the 8 features") as rec:
        capped = ek.AutoEncoder(dim=8, **AE)
        emb = capped.fit(X, show_progress=False)
    (w,) = [r for r in rec if "capped" in str(r.message)]
    assert w.filename == __file__ and "pass dim=4 or less" in _one_line(str(w.message))
    assert capped.dim_ == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # the default dim and a dim that fits: no warning
        ek.AutoEncoder(**AE).fit(X, show_progress=False)
        same = ek.AutoEncoder(dim=4, **AE).fit(X, show_progress=False)
    np.testing.assert_array_equal(emb.vectors, same.vectors)   # the capped fit is the dim=4 fit


def test_the_cli_warns_about_the_cap(tmp_path):
    path = tmp_path / "f8.csv"
    np.savetxt(path, _rows(), delimiter=",")
    with pytest.warns(UserWarning, match="dim=8 is capped at 4, half of the 8 features"):
        code = main(["--store", str(tmp_path / "st"), "train", "autoencoder", str(path), "--name", "ae", "--dim", "8",
                     "--epochs", "1", "--no-progress"])
    assert code == 0


# ------------------------------------------------------------------ 5. SiameseEncoder self-supervised options
SIAM = dict(dim=4, epochs=1, batch_size=32, seed=0, device="cpu")


def _labelled():
    rng = np.random.default_rng(1)
    return rng.normal(size=(64, 6)).astype(np.float32), np.repeat(np.arange(8), 8)


@pytest.mark.parametrize("given", ["y", "pairs"])
def test_siamese_warns_that_labels_ignore_the_self_supervised_options(given):
    X, y = _labelled()
    data = dict(y=y) if given == "y" else dict(pairs=[(0, 1, 1), (2, 3, 0)] * 8)
    with pytest.warns(IgnoredParameterWarning) as rec:
        emb = ek.SiameseEncoder(self_supervised="predictive", corruption=0.3, **SIAM).fit(X, **data,
                                                                                          show_progress=False)
    texts = [_one_line(str(r.message)) for r in rec]
    what = "labels y" if given == "y" else "pairs"
    assert (f"SiameseEncoder: the 'self_supervised' parameter ('predictive') is ignored when fit is given {what} "
            "(used only by fit(X) without labels or pairs)") in texts
    assert any("'corruption' parameter (0.3)" in t for t in texts)
    assert {r.filename for r in rec} == {__file__}
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredParameterWarning)
        plain = ek.SiameseEncoder(**SIAM).fit(X, **data, show_progress=False)
        ek.SiameseEncoder(self_supervised="predictive", **SIAM).fit(X, show_progress=False)  # used: no warning
    np.testing.assert_array_equal(emb.vectors, plain.vectors)      # ignored indeed: the same vectors


# ------------------------------------------------------------------ 6. string keys
@pytest.mark.parametrize("make", [lambda: ek.AutoEncoder(**AE), lambda: ek.SiameseEncoder(**SIAM)])
def test_encoders_refuse_int_keys_as_embeddings_do(make):
    X = _rows()
    model = make()
    first = model.fit(X, keys=[f"r{i}" for i in range(len(X))], show_progress=False)
    for keys, fix in ((list(range(len(X))), "[str(k) for k in keys]"), (np.arange(len(X)), "[str(k) for k in keys]"),
                      ([b"x"] * len(X), "[k.decode() for k in keys]")):
        with pytest.raises(InputError) as err:
            model.fit(X, keys=keys, show_progress=False)
        msg = _one_line(str(err.value))
        assert msg.startswith(f"{type(model).__name__}.fit: keys must be strings, as ek.Embeddings keys are; "
                              "key #0 is ") and msg.endswith(f"pass {fix}")
        assert model.embeddings_ is first                   # the previous fit is kept
    with pytest.raises(InputError, match="keys must be a sequence of strings, one per row; got int"):
        model.fit(X, keys=5, show_progress=False)
    with pytest.raises(InputError, match="keys must be strings; key #0 is int 0"):
        ek.Embeddings(list(range(3)), np.zeros((3, 2)))     # the rule the encoders now follow
    assert model.fit(X, keys=np.array([f"k{i}" for i in range(len(X))]), show_progress=False).keys[0] == "k0"
