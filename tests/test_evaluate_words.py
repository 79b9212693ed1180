"""Word similarity / analogy evaluation on vectors with a planted answer."""

import math

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError, ParseError
from embedkit.evaluate import bundled_eval_path, word_analogy, word_similarity
from embedkit.evaluate.words import analogy_report, similarity_report


def _angles_emb():
    # unit vectors at growing angles from "a": cos(a, w_i) decreases with i
    keys = ["a", "b", "c", "d", "e", "Big"]
    angles = [0.0, 0.2, 0.5, 0.9, 1.4, 0.1]
    vecs = [[math.cos(t), math.sin(t)] for t in angles]
    return ek.Embeddings(keys, vecs)


def test_similarity_planted_ranking(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("# comment\na\tb\t9.0\na\tc\t7.5\na\td\t3.0\na\te\t1.0\n")
    assert word_similarity(_angles_emb(), f) == pytest.approx(1.0)
    f.write_text("a b 1.0\na c 7.5\na d 3.0\na e 9.0\n")  # reversed ranking, spaces as separator
    assert word_similarity(_angles_emb(), f) == pytest.approx(-0.8)


def test_similarity_skips_oov_and_reports_coverage(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("a\tb\t9\na\tzebra\t5\na\tc\t7\nA\tBIG\t9.5\n")
    rep = similarity_report(_angles_emb(), f)
    assert rep["pairs"] == 4 and rep["covered"] == 3
    assert rep["coverage"] == pytest.approx(0.75)
    assert rep["oov_pairs"] == [("a", "zebra")]
    assert rep["spearman"] == pytest.approx(1.0)  # case-insensitive: A/BIG found


def test_similarity_bad_lines(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("a\tb\t9\nonly-one-word\n")
    with pytest.raises(ParseError, match="pairs.tsv:2"):
        word_similarity(_angles_emb(), f)
    f.write_text("a\tb\t9\na\tc\tmany\n")
    with pytest.raises(ParseError, match="not a number"):
        word_similarity(_angles_emb(), f)
    with pytest.raises(InputError, match="no such file"):
        word_similarity(_angles_emb(), tmp_path / "missing.tsv")


def test_similarity_no_coverage_is_nan(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("x\ty\t1\n")
    assert math.isnan(word_similarity(_angles_emb(), f))


def _analogy_emb():
    # king - man + woman = queen exactly; paris - france + italy = rome exactly
    rng = np.random.default_rng(0)
    base = {w: rng.normal(size=8) for w in ["man", "king", "france", "paris", "italy", "noise1", "noise2"]}
    base["woman"] = base["man"] + rng.normal(size=8)
    base["queen"] = base["king"] - base["man"] + base["woman"]
    base["rome"] = base["paris"] - base["france"] + base["italy"]
    keys = list(base)
    return ek.Embeddings(keys, np.array([base[k] for k in keys]))


def test_analogy_planted(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text(": family\nman king woman queen\n: capitals\nfrance paris italy rome\nfrance paris spain madrid\n")
    rep = analogy_report(_analogy_emb(), f)
    assert rep["questions"] == 3 and rep["covered"] == 2
    assert rep["accuracy"] == 1.0 and rep["correct"] == 2
    assert set(rep["sections"]) == {"family", "capitals"}
    assert word_analogy(_analogy_emb(), f) == 1.0


def test_analogy_wrong_answer_counts(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("man king woman noise1\n")
    assert word_analogy(_analogy_emb(), f) == 0.0


def test_analogy_restrict_vocab_limits_candidates(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("man king woman queen\n")
    # queen is the 9th key: outside the first 5 the question is not covered
    rep = analogy_report(_analogy_emb(), f, restrict_vocab=5)
    assert rep["covered"] == 0 and math.isnan(rep["accuracy"])


def test_analogy_bad_line(tmp_path):
    f = tmp_path / "q.txt"
    f.write_text("man king woman\n")
    with pytest.raises(ParseError, match="q.txt:1: expected four words"):
        word_analogy(_analogy_emb(), f)


def test_bundled_sets_found_and_parse():
    for name in ["wordsim353", "simlex999", "questions-words"]:
        assert bundled_eval_path(name).is_file()
    assert bundled_eval_path("wordsim353.tsv") == bundled_eval_path("ws353")
    with pytest.raises(InputError, match="unknown evaluation set"):
        bundled_eval_path("imaginary")
    # default sets run end to end (tiny vocabulary: low coverage, finite or NaN result)
    emb = ek.Embeddings(["tiger", "cat", "king", "queen"], np.eye(4))
    rep = similarity_report(emb)
    assert rep["pairs"] == 353 and rep["covered"] >= 1
    assert analogy_report(emb)["questions"] == 19544
