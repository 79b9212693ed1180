"""Word2Vec (gensim and torch backends) and the shared skip-gram engine."""

import math
import warnings

import numpy as np
import pytest

import embedkit as ek
from embedkit.cli import main
from embedkit.errors import InputError, ParseError
from embedkit.trainers.sgns.engine import _sg_step, evaluate_loss, train_skipgram

from conftest import ANIMALS, VEHICLES, neighbour_purity, two_topic_corpus


def write(path, sentences):
    path.write_text("\n".join(" ".join(s) for s in sentences) + "\n", encoding="utf-8")
    return path


SMALL = dict(dim=16, window=3, min_count=1, sample=0.0, epochs=5, seed=1, device="cpu", workers=1)


@pytest.mark.parametrize("backend", ["gensim", "torch"])
@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_two_topics_neighbours_stay_in_topic(tmp_path, backend, mode):
    sents, groups = two_topic_corpus()
    path = write(tmp_path / "c.txt", sents)
    model = ek.Word2Vec(mode=mode, backend=backend, **SMALL)
    epochs_seen = []
    emb = model.fit(path, show_progress=False, callback=lambda e, loss: epochs_seen.append((e, loss)))
    assert sorted(emb.keys) == sorted(groups)
    assert emb.vectors.dtype == np.float32 and np.isfinite(emb.vectors).all()
    assert neighbour_purity(emb, groups) >= 0.9
    assert model.backend_ == backend
    assert [e for e, _ in epochs_seen] == [1, 2, 3, 4, 5]
    assert model.loss_history_ == [loss for _, loss in epochs_seen]
    assert all(math.isfinite(x) and x > 0 for x in model.loss_history_)
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert model.embeddings_ is emb


def test_list_of_token_lists_and_corpus_object(tmp_path):
    sents = two_topic_corpus()[0]
    a = ek.Word2Vec(backend="torch", **SMALL).fit(sents, show_progress=False)
    b = ek.Word2Vec(backend="torch", **SMALL).fit(ek.Corpus.from_files(write(tmp_path / "c.txt", sents)),
                                                  show_progress=False)
    assert a.keys == b.keys
    np.testing.assert_array_equal(a.vectors, b.vectors)


@pytest.mark.parametrize("backend", ["gensim", "torch"])
def test_same_seed_same_vectors(tmp_path, backend):
    path = write(tmp_path / "c.txt", two_topic_corpus(200)[0])
    runs = [ek.Word2Vec(backend=backend, **SMALL).fit(path, show_progress=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].vectors, runs[1].vectors)
    other = ek.Word2Vec(backend=backend, **{**SMALL, "seed": 2}).fit(path, show_progress=False)
    assert not np.array_equal(runs[0].vectors, other.vectors)


def test_vocabulary_order_min_count_and_max_vocab():
    sents = [["x", "y", "y", "z", "z", "z", "rare"]] * 3
    emb = ek.Word2Vec(backend="torch", **{**SMALL, "min_count": 4, "epochs": 1}).fit(sents, show_progress=False)
    assert emb.keys == ["z", "y"]  # by count, "x" (3) and "rare" (3) below min_count
    emb = ek.Word2Vec(backend="gensim", **{**SMALL, "min_count": 1, "epochs": 1, "max_vocab": 2}).fit(
        sents, show_progress=False)
    assert emb.keys == ["z", "y"]


@pytest.mark.parametrize("backend", ["gensim", "torch"])
def test_empty_corpus_and_min_count_errors(tmp_path, backend):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n")
    with pytest.raises(InputError, match="empty"):
        ek.Word2Vec(backend=backend, **SMALL).fit(empty, show_progress=False)
    rare = write(tmp_path / "rare.txt", [["a", "b", "c"]])
    with pytest.raises(InputError, match="min_count=5"):
        ek.Word2Vec(backend=backend, **{**SMALL, "min_count": 5}).fit(rare, show_progress=False)


@pytest.mark.parametrize("backend", ["gensim", "torch"])
def test_non_utf8_file_names_line(tmp_path, backend):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"a b c\na b c\nd \xff e\n")
    with pytest.raises(ParseError, match=r"bad\.txt:3"):
        ek.Word2Vec(backend=backend, **SMALL).fit(bad, show_progress=False)


def test_compressed_and_several_files_match_plain(tmp_path):
    import gzip

    sents = two_topic_corpus(100)[0]
    plain = write(tmp_path / "c.txt", sents)
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    half = len(sents) // 2
    p1, p2 = write(tmp_path / "p1.txt", sents[:half]), write(tmp_path / "p2.txt", sents[half:])
    ref = ek.Word2Vec(backend="gensim", **SMALL).fit(plain, show_progress=False)
    for source in (gz, [p1, p2]):
        emb = ek.Word2Vec(backend="gensim", **SMALL).fit(source, show_progress=False)
        assert emb.keys == ref.keys
        np.testing.assert_allclose(emb.vectors, ref.vectors, atol=1e-6)


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ek.Word2Vec(**SMALL).fit(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="generator"):
        ek.Word2Vec(**SMALL).fit(s for s in two_topic_corpus(5)[0])
    for bad in [dict(window=0), dict(mode="sg"), dict(dim=0), dict(sample=-1.0), dict(backend="tf"),
                dict(epochs=0), dict(lr=0.0), dict(min_lr=0.5), dict(negative=0), dict(workers=0),
                dict(dim=10_001), dict(device="tpu"), dict(max_vocab=0), dict(batch_words=10)]:
        with pytest.raises(InputError, match="parameter of Word2Vec"):
            ek.Word2Vec(**{**SMALL, **bad}).fit(two_topic_corpus(5)[0])
    with pytest.raises(InputError, match="CPU only"):
        ek.Word2Vec(backend="gensim", device="cuda").fit(two_topic_corpus(5)[0])
    with pytest.raises(InputError, match="callable"):
        ek.Word2Vec(**SMALL).fit(two_topic_corpus(5)[0], callback=3)


def test_fit_takes_corpus_by_keyword():
    sents = two_topic_corpus(100)[0]
    a = ek.Word2Vec(backend="torch", **SMALL).fit(corpus=sents, show_progress=False)
    b = ek.Word2Vec(backend="torch", **SMALL).fit(sents, show_progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_window_and_negative_share_the_node2vec_range():
    from embedkit._validation import NEGATIVE, WINDOW

    for cls in (ek.Word2Vec, ek.Node2Vec):
        assert cls._parameter_constraints["window"] is WINDOW and cls._parameter_constraints["negative"] is NEGATIVE
    for name in ("window", "negative"):
        with pytest.raises(InputError, match=rf"The '{name}' parameter of Word2Vec must be an int in the range "
                                             rf"\[1, 1000\]\. Got 1001 instead\."):
            ek.Word2Vec(**{**SMALL, name: 1001}).fit(two_topic_corpus(5)[0], show_progress=False)


@pytest.mark.parametrize("workers", [1, 2, None])
def test_torch_on_cpu_trains_on_workers_threads_and_restores_them(workers):
    import torch

    from embedkit._device import cpu_count
    from embedkit.trainers import IgnoredParameterWarning

    before = torch.get_num_threads()
    torch.set_num_threads(3)                  # the count that fit must restore
    seen = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", IgnoredParameterWarning)      # used on CPU: no warning
            ek.Word2Vec(backend="torch", **{**SMALL, "epochs": 2, "workers": workers}).fit(
                two_topic_corpus(50)[0], show_progress=False,
                callback=lambda e, loss: seen.append(torch.get_num_threads()))
        assert seen == [workers or cpu_count()] * 2
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_word2vec_format_round_trip_through_gensim(tmp_path):
    from gensim.models import KeyedVectors

    emb = ek.Word2Vec(backend="torch", **SMALL).fit(two_topic_corpus(100)[0], show_progress=False)
    for binary in (False, True):
        path = tmp_path / f"v.{int(binary)}"
        emb.save_word2vec_format(path, binary=binary)
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
        assert list(kv.index_to_key) == emb.keys
        np.testing.assert_allclose(kv.vectors, emb.vectors, rtol=1e-6)
        back = ek.Embeddings.load_word2vec_format(path, binary=binary)
        np.testing.assert_allclose(back.vectors, emb.vectors, rtol=1e-6)


def test_params_are_recorded():
    model = ek.Word2Vec(mode="cbow", dim=7)
    params = model.get_params()
    assert params["mode"] == "cbow" and params["dim"] == 7 and params["backend"] == "auto"
    assert set(ek.Word2Vec._parameter_constraints) == set(params)
    assert "alpha" not in params and params["lr"] == 0.025 and params["min_lr"] == 0.0001
    # nothing fitted exists before fit
    assert not [k for k in vars(model) if k.endswith("_")]
    assert not hasattr(model, "embeddings_") and not hasattr(model, "loss_history_")


@pytest.mark.parametrize("backend", ["gensim", "torch"])
def test_alpha_alias_warns_and_trains_as_lr(backend):
    sents = two_topic_corpus(100)[0]
    with pytest.warns(FutureWarning, match="'alpha' is renamed 'lr'"):
        old = ek.Word2Vec(backend=backend, alpha=0.05, **SMALL)
    with pytest.warns(FutureWarning, match="'min_alpha' is renamed 'min_lr'"):
        ek.Word2Vec(min_alpha=0.001)
    assert old.lr == 0.05 and "alpha" not in old.get_params()
    new = ek.Word2Vec(backend=backend, lr=0.05, **SMALL)
    a, b = old.fit(sents, show_progress=False), new.fit(sents, show_progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    default = ek.Word2Vec(backend=backend, **SMALL).fit(sents, show_progress=False)
    assert not np.array_equal(a.vectors, default.vectors)      # the alias did change the rate


def test_ignored_parameters_warn(tmp_path):
    from embedkit.trainers import IgnoredParameterWarning

    path = write(tmp_path / "c.txt", two_topic_corpus(50)[0])
    params = {**SMALL, "epochs": 1}
    with pytest.warns(IgnoredParameterWarning, match="'batch_words' parameter.*ignored by the gensim backend on files"):
        ek.Word2Vec(backend="gensim", batch_words=1000, **params).fit(path, show_progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredParameterWarning)
        # used: gensim's job size for token lists, torch's step
        ek.Word2Vec(backend="gensim", batch_words=1000, **params).fit(two_topic_corpus(50)[0], show_progress=False)
        ek.Word2Vec(backend="torch", batch_words=1000, **params).fit(path, show_progress=False)


@pytest.mark.parametrize("backend", ["gensim", "torch"])
def test_save_load_and_store_round_trip(tmp_path, backend):
    model = ek.Word2Vec(backend=backend, **{**SMALL, "epochs": 2})
    emb = model.fit(two_topic_corpus(100)[0], show_progress=False)
    path = model.save(tmp_path / "w2v.npz")
    back = ek.Word2Vec.load(path)
    assert back.embeddings_.keys == emb.keys
    np.testing.assert_array_equal(back.embeddings_.vectors, emb.vectors)
    np.testing.assert_array_equal(back.vocab_counts_, model.vocab_counts_)
    np.testing.assert_array_equal(back._output, model._output)
    assert back._output.shape == emb.vectors.shape and np.abs(back._output).sum() > 0   # trained output weights
    assert back.loss_history_ == model.loss_history_ and back.backend_ == backend
    assert back.get_params() == model.get_params()
    assert back.embeddings_.most_similar("cat", k=3) == emb.most_similar("cat", k=3)
    # the store: an index of the vectors plus the model
    store = ek.Store(tmp_path / "store")
    model.to_store("w", store)
    again = ek.Word2Vec.from_store("w", store)
    np.testing.assert_array_equal(again.embeddings_.vectors, emb.vectors)
    assert store.load("w").search_keys(["cat"], k=1).keys[0][0] != "cat"   # neighbours exclude the query
    with pytest.raises(ek.StoreError, match="not written by Node2Vec"):
        ek.Node2Vec.from_store("w", store)


def test_load_foreign_or_damaged_file_is_store_error(tmp_path):
    model = ek.Word2Vec(backend="torch", **{**SMALL, "epochs": 1})
    model.fit(two_topic_corpus(50)[0], show_progress=False)
    path = model.save(tmp_path / "m.npz")
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ek.StoreError, match="not a saved Word2Vec .not an .npz model file"):
        ek.Word2Vec.load(garbage)
    np.save(tmp_path / "array.npy", np.arange(3))  # an array file, not a model: the same one line
    with pytest.raises(ek.StoreError, match="load the file that Word2Vec.save wrote"):
        ek.Word2Vec.load(tmp_path / "array.npy")
    with pytest.raises(ek.StoreError, match="holds a Word2Vec, not a Node2Vec"):
        ek.Node2Vec.load(path)
    arrays = dict(np.load(path))
    del arrays["output"]
    np.savez(tmp_path / "cut.npz", **arrays)
    with pytest.raises(ek.StoreError, match="incomplete or damaged"):
        ek.Word2Vec.load(tmp_path / "cut.npz")
    arrays = dict(np.load(path))
    arrays["counts"] = arrays["counts"][:-1]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(ek.StoreError, match="do not match"):
        ek.Word2Vec.load(tmp_path / "short.npz")
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    with pytest.raises(ek.StoreError, match="not a saved embedkit model"):
        ek.Word2Vec.load(tmp_path / "other.npz")


# ---------------------------------------------------------------- the engine

def test_engine_single_pair_matches_hand_computed_sgd():
    import torch

    rng = np.random.default_rng(0)
    w_in = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float32)
    w_out = torch.tensor(rng.normal(size=(4, 3)), dtype=torch.float32)
    v0, u0 = w_in.clone(), w_out.clone()
    inp, out, noise = torch.tensor([0]), torch.tensor([1]), torch.tensor([[2, 3]])
    lr = 0.1
    loss, n = _sg_step(w_in, w_out, inp, out, noise, lr, None)
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    v = v0[0].numpy()
    grad_v = np.zeros(3)
    expect_loss = 0.0
    for row, label in [(1, 1.0), (2, 0.0), (3, 0.0)]:
        u = u0[row].numpy()
        s = float(u @ v)
        expect_loss -= math.log(sig(s) if label else 1 - sig(s))
        g = (label - sig(s)) * lr
        grad_v += g * u
        np.testing.assert_allclose(w_out[row].numpy(), u + g * v, rtol=1e-5)
    np.testing.assert_allclose(w_in[0].numpy(), v + grad_v, rtol=1e-5)
    assert n == 1 and float(loss) == pytest.approx(expect_loss, rel=1e-5)


def test_engine_loss_of_zero_output_vectors_is_log2_per_term():
    rng = np.random.default_rng(0)
    counts = np.ones(5000)
    tokens = rng.integers(0, 5000, 3000)
    lengths = np.full(300, 10)
    loss = evaluate_loss(rng.normal(size=(5000, 8)), np.zeros((5000, 8)), tokens, lengths, counts,
                         negative=5, sample=0.0)
    assert loss == pytest.approx(6 * math.log(2), rel=1e-3)


def test_engine_interface_numpy_and_torch_inputs_and_errors():
    import torch

    sents = two_topic_corpus(100)[0]
    vocab = ANIMALS + VEHICLES
    ids = np.array([vocab.index(w) for s in sents for w in s])
    lengths = np.array([len(s) for s in sents])
    counts = np.bincount(ids, minlength=len(vocab))
    kw = dict(dim=8, epochs=2, sample=0.0, show_progress=False, batch_words=10_000)
    a, la = train_skipgram([(ids, lengths)], counts, **kw)
    b, lb, out = train_skipgram([(torch.tensor(ids), torch.tensor(lengths))], counts, return_output=True, **kw)
    assert a.shape == (len(vocab), 8) and a.dtype == np.float32 and len(la) == 2
    np.testing.assert_array_equal(a, b)
    assert la == lb
    assert out.shape == (len(vocab), 8) and out.dtype == np.float32 and np.abs(out).sum() > 0   # starts at zero
    assert evaluate_loss(a, out, ids, lengths, counts, sample=0.0) < 6 * math.log(2)    # trained pair beats zero
    with pytest.raises(InputError, match="token ids"):
        train_skipgram([(ids + 100, lengths)], counts, **kw)
    with pytest.raises(InputError, match="lengths sum"):
        train_skipgram([(ids, lengths[:-1])], counts, **kw)
    with pytest.raises(InputError, match="all zero"):
        train_skipgram([(ids, lengths)], np.zeros(len(vocab)), **kw)


def test_engine_long_sentence_is_split_and_trains():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 50, 25_000)  # one sentence longer than MAX_SENTENCE_LEN
    vecs, losses = train_skipgram([(ids, np.array([ids.size]))], np.bincount(ids, minlength=50),
                                  dim=4, epochs=1, show_progress=False, batch_words=8192)
    assert np.isfinite(vecs).all() and math.isfinite(losses[0])


# ---------------------------------------------------------------- CLI

def test_cli_train_query_eval(tmp_path, capsys):
    path = write(tmp_path / "c.txt", two_topic_corpus()[0])
    store = str(tmp_path / "store")
    rc = main(["train", "word2vec", str(path), "--name", "w", "--store", store, "--dim", "16", "--window", "3",
               "--min-count", "1", "--sample", "0", "--backend", "gensim", "--workers", "1", "--no-progress"])
    assert rc == 0
    assert "saved index 'w'" in capsys.readouterr().out
    assert main(["query", "w", "cat", "-k", "3", "--store", store]) == 0
    shown = capsys.readouterr().out
    assert any(w in shown for w in ANIMALS if w != "cat") and not any(w in shown for w in VEHICLES)
    assert main(["eval", "word2vec", "w", "--store", store, "--no-analogy"]) == 0
    assert "spearman" in capsys.readouterr().out
    # existing name without --force, bad parameter, missing file: exit 1 with one line
    assert main(["train", "word2vec", str(path), "--name", "w", "--store", store]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["train", "word2vec", str(path), "--name", "x", "--window", "0", "--store", store]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: The 'window' parameter") and err.count("\n") == 1
    assert main(["train", "word2vec", str(tmp_path / "nope.txt"), "--name", "x", "--store", store]) == 1
    assert "no such file" in capsys.readouterr().err
    # the saved model loads back; --lr, and --alpha as its deprecated old name
    model = ek.Word2Vec.from_store("w", store)
    assert model.embeddings_.keys == ek.Store(store).load("w").to_embeddings().keys
    common = [str(path), "--store", store, "--dim", "8", "--min-count", "1", "--epochs", "1", "--backend", "torch",
              "--device", "cpu", "--no-progress"]
    assert main(["train", "word2vec", *common, "--name", "lr", "--lr", "0.05", "--min-lr", "0.001"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["train", "word2vec", *common, "--name", "alpha", "--alpha", "0.05", "--min-alpha", "0.001"]) == 0
    assert "--alpha is renamed --lr" in capsys.readouterr().err
    a, b = (ek.Word2Vec.from_store(n, store) for n in ("lr", "alpha"))
    assert a.lr == b.lr == 0.05 and a.min_lr == b.min_lr == 0.001
    np.testing.assert_array_equal(a.embeddings_.vectors, b.embeddings_.vectors)
    assert main(["train", "word2vec", *common, "--name", "both", "--alpha", "0.05", "--lr", "0.05"]) == 1
    assert "give only --lr" in capsys.readouterr().err


def test_demo_writes_demo_words(tmp_path, capsys):
    from types import SimpleNamespace

    from embedkit.cli.word2vec import demo

    demo(SimpleNamespace(store=str(tmp_path), no_progress=True))
    shown = capsys.readouterr().out
    assert "demo-words" in shown and "government" in shown
    assert ek.Store(tmp_path).exists("demo-words")
    assert main(["--store", str(tmp_path), "query", "demo-words", "police", "-k", "3"]) == 0
    assert "police" not in capsys.readouterr().out.splitlines()[-1]
    assert ek.Word2Vec.from_store("demo-words", tmp_path).embeddings_.dim == 50


class _RecordingModel:
    """Stands in for a gensim Word2Vec: records what train_corpus_file asks for."""

    def __init__(self, workers, alpha=0.025, min_alpha=0.0001):
        self.workers, self.alpha, self.min_alpha = workers, alpha, min_alpha
        self.corpus_count, self.corpus_total_words = 10, 100
        self.calls = []

    def train(self, **kw):
        self.calls.append(kw)


@pytest.mark.parametrize("workers", [1, 2, 4])
@pytest.mark.parametrize("epochs", [1, 3])
def test_corpus_file_learning_rate_reaches_min_alpha_with_any_worker_count(workers, epochs):
    """gensim's corpus_file threads each walk 1/workers of the asked alpha range per epoch;
    the ranges asked for make that share the wanted linear schedule, epoch after epoch."""
    from embedkit.trainers.sgns.gensim_backend import train_corpus_file

    m = _RecordingModel(workers)
    train_corpus_file(m, "walks.txt", epochs, callbacks=[])
    assert len(m.calls) == epochs and all(c["epochs"] == 1 for c in m.calls)
    reached = m.alpha
    for e, c in enumerate(m.calls):
        assert c["start_alpha"] == pytest.approx(reached)            # continuous across epochs
        # what each thread reaches after its 1/workers of the epoch (gensim 4.4's get_next_alpha)
        reached = c["start_alpha"] - (c["start_alpha"] - c["end_alpha"]) / workers
        assert reached == pytest.approx(0.025 - (0.025 - 0.0001) * (e + 1) / epochs)
    assert reached == pytest.approx(0.0001)
    assert (m.alpha, m.min_alpha) == (0.025, 0.0001)


def test_installed_gensim_still_decays_corpus_file_alpha_per_thread():
    """Canary for the workaround above: the shipped source still computes each thread's
    progress from its own word count over the whole epoch's."""
    import pathlib

    import gensim.models

    from embedkit.trainers.sgns.gensim_backend import gensim_alpha_per_thread

    pyx = pathlib.Path(gensim.models.__file__).parent / "word2vec_corpusfile.pyx"
    if not pyx.exists():
        pytest.skip("gensim's .pyx source is not installed")
    src = pyx.read_text()
    per_thread = ("total_words > expected_words / c.workers" in src
                  and "epoch_progress = (<REAL_t> total_words) / expected_words" in src)
    assert per_thread == gensim_alpha_per_thread(), "gensim changed its corpus_file alpha schedule"
