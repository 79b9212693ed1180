"""Progress bars of the word2vec family (issue 15 item 4): every phase is a labelled bar, the
training bar moves within an epoch and shows the loss; show_progress=False draws nothing.

The bars are captured by replacing tqdm.auto.tqdm (the trainers import it when they run) with a
subclass that records its updates and writes to a buffer. No timings are checked."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest
import tqdm.auto
import tqdm.std

import embedkit as ek
from embedkit.trainers.sgns import gensim_backend
from embedkit.trainers.sgns.progress import gensim_log_progress

from conftest import two_cliques, two_topic_corpus


class _Rec(tqdm.std.tqdm):
    made: list = []

    def __init__(self, *args, **kw):
        self.buffer = kw.setdefault("file", io.StringIO())
        self.positions: list[float] = []
        self.postfixes: list[str] = []
        super().__init__(*args, **kw)
        _Rec.made.append(self)

    def update(self, n=1):
        out = super().update(n)
        if n:
            self.positions.append(self.n)
        return out

    def set_postfix(self, ordered_dict=None, refresh=True, **kw):
        super().set_postfix(ordered_dict, refresh=refresh, **kw)
        self.postfixes.append(self.postfix or "")

    @property
    def written(self) -> str:
        return self.buffer.getvalue()


@pytest.fixture
def bars(monkeypatch):
    _Rec.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", _Rec)
    return _Rec.made


def _bar(bars, suffix):
    found = [b for b in bars if b.desc.endswith(suffix)]
    assert found, f"no bar labelled '...{suffix}' among {[b.desc for b in bars]}"
    return found[-1]


def _moves_within_epochs(b, epochs: int):
    """The training bar stopped strictly inside the first epoch, updated more than once per epoch,
    ended at its total and shows the loss."""
    per_epoch = b.total / epochs
    assert len(b.positions) > epochs, b.positions
    assert any(0 < p < per_epoch for p in b.positions), (b.positions, per_epoch)
    assert b.n == b.total
    assert "loss=" in b.postfixes[-1]


def test_word2vec_torch_labels_phases_and_moves_within_epochs(bars):
    sents, _ = two_topic_corpus(200)
    ek.Word2Vec(dim=8, min_count=1, epochs=2, backend="torch", device="cpu", batch_words=100).fit(sents)
    assert _bar(bars, "word2vec skipgram: vocabulary").n == 200
    assert _bar(bars, "word2vec skipgram: encoding").n == 200
    _moves_within_epochs(_bar(bars, "word2vec skipgram: training"), 2)


def test_node2vec_gensim_walks_and_training_move_within_an_epoch(bars, monkeypatch):
    monkeypatch.setattr(gensim_backend, "_PART_WORDS", 500)   # several train calls (parts) per epoch
    g, _ = two_cliques()
    model = ek.Node2Vec(dim=8, walks_per_node=10, walk_length=20, epochs=2, backend="gensim", workers=1)
    model.fit(g)
    walks = _bar(bars, "node2vec (gensim): walks")
    assert walks.n == walks.total == 160
    assert _bar(bars, "node2vec (gensim): vocabulary").n == 160
    train = _bar(bars, "node2vec (gensim): training")
    _moves_within_epochs(train, 2)
    assert train.total == 2 * int(model.visit_counts_.sum())
    assert len(model.loss_history_) == 2     # one loss per epoch, not per part


def test_node2vec_parts_give_the_vocabulary_of_one_file(monkeypatch):
    """Cutting the walks into parts changes neither the vocabulary order nor the visit counts."""
    g, _ = two_cliques()
    kw = dict(dim=8, walks_per_node=5, walk_length=20, epochs=1, backend="gensim", workers=1, seed=3)
    whole = ek.Node2Vec(**kw)
    whole.fit(g, show_progress=False)
    monkeypatch.setattr(gensim_backend, "_PART_WORDS", 300)
    cut = ek.Node2Vec(**kw)
    cut.fit(g, show_progress=False)
    np.testing.assert_array_equal(whole.visit_counts_, cut.visit_counts_)
    assert whole.embeddings_.keys == cut.embeddings_.keys
    assert np.isfinite(cut.embeddings_.vectors).all()


def test_node2vec_torch_labels_walks_and_training(bars):
    g, _ = two_cliques()
    ek.Node2Vec(dim=8, walks_per_node=10, walk_length=20, epochs=2, backend="torch", device="cpu").fit(g)
    assert _bar(bars, "node2vec: walks (visit counts)").n == 160
    _moves_within_epochs(_bar(bars, "node2vec: training"), 2)


def test_metapath2vec_labels_walks_and_training(bars):
    from test_metapath2vec import UIT, planted

    rows, _ = planted()
    graph = ek.Graph.from_typed_arrays(*[list(c) for c in zip(*rows)])
    model = ek.MetaPath2Vec(metapaths=[UIT], dim=8, walk_length=13, walks_per_node=10, window=3, epochs=2,
                            device="cpu")
    model.fit(graph)
    walks = _bar(bars, "metapath2vec: walks (visit counts)")
    assert walks.n == walks.total > 0
    _moves_within_epochs(_bar(bars, "metapath2vec: training"), 2)


def test_fasttext_torch_and_gensim_label_their_phases(bars):
    sents, _ = two_topic_corpus(200)
    ek.FastText(dim=8, min_count=1, epochs=2, backend="torch", device="cpu", batch_words=100).fit(sents)
    _moves_within_epochs(_bar(bars, "fasttext skipgram: training"), 2)
    ek.FastText(dim=8, min_count=1, epochs=2, backend="gensim", workers=1).fit(sents)
    assert _bar(bars, "fasttext skipgram (gensim): vocabulary").n == 200
    train = _bar(bars, "fasttext skipgram (gensim): training")
    assert train.n == train.total and "loss=" in train.postfixes[-1]


def test_word2vec_gensim_files_label_vocabulary_and_training(bars, tmp_path):
    sents, _ = two_topic_corpus(300)
    path = tmp_path / "c.txt"
    path.write_text("\n".join(" ".join(s) for s in sents) + "\n", encoding="utf-8")
    ek.Word2Vec(dim=8, min_count=1, epochs=2, backend="gensim", workers=1).fit(str(path))
    assert _bar(bars, "word2vec skipgram (gensim): vocabulary").n == 300
    train = _bar(bars, "word2vec skipgram (gensim): training")
    assert train.n == train.total and "loss=" in train.postfixes[-1]


def test_gensim_vocabulary_scan_moves_before_it_ends(bars):
    """The vocabulary bar moves during the scan (gensim reports every 1,000 sentences here)."""
    sents = [["a", "b"], ["b", "c"]] * 1_500     # gensim reports every 1,000 sentences
    model = gensim_backend.build_model(sg=True, dim=4, window=2, negative=2, min_count=1, sample=0, epochs=1,
                                       lr=0.025, min_lr=1e-4, seed=0, workers=1)
    gensim_backend.build_vocab(model, dict(corpus_iterable=sents), desc="t")
    vocab = _bar(bars, "t: vocabulary")
    assert any(0 < p < 3_000 for p in vocab.positions), vocab.positions
    assert vocab.n == 3_000


class _FakeGensim:
    """Stands in for a gensim model in iterator mode: logs gensim's own progress lines (the
    format of gensim 4.4's _log_progress) and calls the epoch-end callbacks."""

    corpus_count, corpus_total_words, alpha = 10, 1000, 0.025

    def train(self, *, epochs, callbacks, **_):
        log = logging.getLogger("gensim.models.word2vec")
        for e in range(epochs):
            for pct in (25.0, 50.0, 75.0):
                log.info("EPOCH %i - PROGRESS: at %.2f%% examples, %.0f words/s, in_qsize %i, out_qsize %i",
                         e, pct, 1e5, 0, 0)
            for cb in callbacks:
                cb.on_epoch_end(self)


def test_gensim_iterator_progress_lines_move_the_bar_within_epochs(bars, caplog):
    logger = logging.getLogger("gensim.models.word2vec")
    level = logger.level
    with caplog.at_level(logging.WARNING):
        losses, _ = gensim_backend.train(_FakeGensim(), dict(corpus_iterable=[]), epochs=2, lr_schedule="gensim",
                                         loss_of=lambda m: 1.5, units_per_epoch=1000, desc="fake")
    train = _bar(bars, "fake: training")
    assert train.positions == [250, 500, 750, 1000, 1250, 1500, 1750, 2000]
    assert losses == [1.5, 1.5] and "loss=1.5000" in train.postfixes[-1]
    # gensim's INFO lines were only lowered to reach our filter: none reached the user's handlers
    assert not [r for r in caplog.records if r.name == "gensim.models.word2vec"]
    assert logger.level == level and not logger.filters


def test_gensim_log_progress_keeps_records_the_user_asked_for():
    logger = logging.getLogger("gensim.models.word2vec")
    seen, passed = [], []

    class _H(logging.Handler):
        def emit(self, record):
            passed.append(record.getMessage())

    h = _H()
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        with gensim_log_progress(lambda msg, args: seen.append(args)):
            logger.info("EPOCH %i - PROGRESS: at %.2f%% words, %.0f words/s, in_qsize %i, out_qsize %i", 0, 10.0, 1, 0, 0)
        assert seen == [(0, 10.0, 1, 0, 0)] and len(passed) == 1   # the user's INFO handler still gets it
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)


@pytest.mark.parametrize("backend", ["torch", "gensim"])
def test_show_progress_false_draws_nothing(bars, backend):
    sents, _ = two_topic_corpus(100)
    ek.Word2Vec(dim=8, min_count=1, epochs=1, backend=backend, device="cpu", workers=1).fit(sents, show_progress=False)
    g, _ = two_cliques()
    ek.Node2Vec(dim=8, walks_per_node=2, walk_length=10, epochs=1, backend=backend, device="cpu",
                workers=1).fit(g, show_progress=False)
    assert bars and all(b.disable for b in bars)
    assert all(b.written == "" for b in bars)
