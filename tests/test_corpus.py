"""Corpus: streaming from plain/.gz/.bz2 files, re-iteration, errors with file and line."""

import bz2
import gzip

import pytest

import embedkit as ek
from embedkit.data.corpus import Corpus, as_corpus
from embedkit.errors import InputError, ParseError

TEXT = "the cat sat\n\n  a dog   ran  \nthe end\n"
SENTENCES = [["the", "cat", "sat"], ["a", "dog", "ran"], ["the", "end"]]


@pytest.fixture
def files(tmp_path):
    plain = tmp_path / "c.txt"
    plain.write_text(TEXT, encoding="utf-8")
    gz = tmp_path / "c.txt.gz"
    gz.write_bytes(gzip.compress(TEXT.encode()))
    bz = tmp_path / "c.txt.bz2"
    bz.write_bytes(bz2.compress(TEXT.encode()))
    return plain, gz, bz


def test_exported_as_ek_corpus():
    assert ek.Corpus is Corpus


@pytest.mark.parametrize("which", [0, 1, 2])
def test_from_files_reads_plain_and_compressed(files, which):
    corpus = Corpus.from_files(files[which])
    assert list(corpus) == SENTENCES


def test_reiterable_and_multiple_files(files):
    corpus = Corpus.from_files(list(files))
    assert list(corpus) == SENTENCES * 3
    assert list(corpus) == SENTENCES * 3  # a second pass starts again
    assert corpus.is_files and len(corpus.paths) == 3


def test_non_utf8_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nstill fine\ncaf\xe9 latin1\n")
    with pytest.raises(ParseError, match=r"bad\.txt:3: not valid UTF-8"):
        list(Corpus.from_files(bad))


def test_non_utf8_in_gzip_names_line(tmp_path):
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(gzip.compress(b"ok\n\xff\xfe\n"))
    with pytest.raises(ParseError, match=r"bad\.txt\.gz:2:"):
        list(Corpus.from_files(bad))


def test_damaged_gzip_is_a_parse_error(tmp_path):
    bad = tmp_path / "broken.gz"
    bad.write_bytes(b"this is not gzip data")
    with pytest.raises(ParseError, match="broken.gz"):
        list(Corpus.from_files(bad))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        Corpus.from_files(tmp_path / "nope.txt")
    with pytest.raises(InputError, match="is a directory"):
        Corpus.from_files(tmp_path)
    with pytest.raises(InputError, match="empty list"):
        Corpus.from_files([])


def test_as_corpus_accepts_all_forms(files):
    plain = files[0]
    assert list(as_corpus(str(plain))) == SENTENCES
    assert list(as_corpus(plain)) == SENTENCES
    assert list(as_corpus([str(plain), files[1]])) == SENTENCES * 2
    c = Corpus.from_files(plain)
    assert as_corpus(c) is c
    assert list(as_corpus(SENTENCES)) == SENTENCES
    assert list(as_corpus(tuple(map(tuple, SENTENCES)))) == SENTENCES


def test_as_corpus_refuses_generators_with_advice():
    gen = (s for s in SENTENCES)
    with pytest.raises(InputError, match="one-pass generator.*list of token lists"):
        as_corpus(gen)
    with pytest.raises(InputError, match="one-pass iterator"):
        as_corpus(iter(SENTENCES))


def test_as_corpus_flat_word_list_hint():
    with pytest.raises(InputError, match="wrap it in another list"):
        as_corpus(["the", "cat", "sat"])


def test_as_corpus_rejects_other_types():
    with pytest.raises(InputError):
        as_corpus(42)
    with pytest.raises(InputError, match="empty list"):
        as_corpus([])
    with pytest.raises(InputError, match="list of int"):
        as_corpus([1, 2])


def test_bad_sentence_types_raise_while_iterating():
    with pytest.raises(InputError, match="sentence #1"):
        list(Corpus.from_sentences([["a"], "not a list"]))
    with pytest.raises(InputError, match="tokens must be strings"):
        list(Corpus.from_sentences([["a", 3]]))
