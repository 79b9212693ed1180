"""FastText (subword vectors): both backends find the planted topics, unknown and misspelled
words get vectors from their character n-grams, the model saves and loads without pickle
(file and store), and word-similarity evaluation can include OOV pairs."""

from __future__ import annotations

import numpy as np
import pytest

from embedkit.errors import InputError, MissingKeyError
from embedkit.evaluate.words import similarity_report
from embedkit.trainers.fasttext import FastText, FastTextEmbeddings, ngram_hashes

from conftest import neighbour_purity, two_topic_corpus


def _make(backend, **kw):
    params = dict(dim=16, min_count=1, sample=0.0, epochs=5, window=3, bucket=2000, backend=backend, device="cpu",
                  workers=1)
    return FastText(**{**params, **kw})


@pytest.fixture(scope="module", params=["torch", "gensim"])
def fitted(request):
    sents, groups = two_topic_corpus()
    m = _make(request.param)
    return m, m.fit(sents, show_progress=False), groups


def test_finds_the_topics_and_answers_unknown_words(fitted):
    m, emb, groups = fitted
    assert isinstance(emb, FastTextEmbeddings) and neighbour_purity(emb, groups) == 1.0
    assert "horses" not in emb and emb.has_vector("horses")
    # a misspelling shares most n-grams with its word: closer to it than to the other topic
    assert emb.similarity("horses", "horse") > emb.similarity("horses", "truck") + 0.2
    assert emb["horses"].shape == (16,) and emb[["cat", "horses"]].shape == (2, 16)
    assert [k for k, _ in emb.most_similar("horses", 3)] != []
    assert len(m.loss_history_) == 5 and m.loss_history_[-1] < m.loss_history_[0]


def test_known_word_vector_is_the_mean_of_its_rows(fitted):
    m, emb, _ = fitted
    rows = ngram_hashes("cat", 3, 6, 2000)
    i = emb.index_of("cat")
    np.testing.assert_allclose(emb["cat"], (m._word_rows[i] + emb.ngrams[rows].sum(0)) / (len(rows) + 1), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(emb.vector("zzcat"), emb.ngrams[ngram_hashes("zzcat", 3, 6, 2000)].mean(0), rtol=1e-5)


def test_saves_and_loads_without_pickle(fitted, tmp_path):
    m, emb, _ = fitted
    loaded = FastText.load(m.save(tmp_path / "ft"))
    np.testing.assert_array_equal(loaded.embeddings_["horses"], emb["horses"])
    with np.load(tmp_path / "ft.npz", allow_pickle=False) as data:
        assert "ngrams" in data.files
    emb.save(tmp_path / "e.npz")
    np.testing.assert_array_equal(FastTextEmbeddings.load(tmp_path / "e.npz")["horses"], emb["horses"])
    m.to_store("ft", tmp_path / "store")
    back = FastText.from_store("ft", tmp_path / "store")
    np.testing.assert_array_equal(back.embeddings_["horses"], emb["horses"])


def test_similarity_report_includes_oov_pairs(fitted, tmp_path):
    _, emb, _ = fitted
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("cat dog 9\ncats dogs 8.5\ncat truck 1\ncats trucks 1.5\nhorse bus 2\n")
    with_oov = similarity_report(emb, pairs)
    assert with_oov["covered"] == 5 and with_oov["oov_answered"] == 2 and with_oov["oov_pairs"] == []
    without = similarity_report(emb, pairs, oov=False)
    assert without["covered"] == 3 and len(without["oov_pairs"]) == 2
    plain = np.asarray(emb.vectors)
    from embedkit import Embeddings
    with pytest.raises(InputError, match="oov=True"):
        similarity_report(Embeddings(emb.keys, plain), pairs, oov=True)


def test_no_ngrams_means_no_vector_for_unknown_words():
    sents, _ = two_topic_corpus(60)
    emb = _make("torch", min_n=3, max_n=2, epochs=1).fit(sents, show_progress=False)
    assert emb.bucket == 0 and not emb.has_vector("horses")
    with pytest.raises(MissingKeyError, match="no character n-grams"):
        emb["horses"]


def test_torch_backend_is_skipgram_only():
    sents, _ = two_topic_corpus(30)
    with pytest.raises(InputError, match="skip-gram only"):
        _make("torch", mode="cbow").fit(sents, show_progress=False)
    with pytest.raises(ValueError, match="'bucket' parameter of FastText"):
        _make("torch", bucket=0).fit(sents, show_progress=False)
