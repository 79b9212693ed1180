"""Every text reader outside embedkit.data reads a UTF-8 byte-order mark transparently and names
file and line, with the fix, for bytes that are not UTF-8: edge lists, node labels (evaluation and
plots) and word-pair files."""

from __future__ import annotations

import pytest

import embedkit as ek
from embedkit.errors import InputError, ParseError
from embedkit.evaluate.graphs import read_labels as node_labels
from embedkit.plot import read_labels as plot_labels

BOM = b"\xef\xbb\xbf"


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_an_edge_list_with_a_byte_order_mark(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_bytes(BOM + b"a b\nb c\n")
    g = ek.Graph.from_edgelist(path)
    assert sorted(g.nodes) == ["a", "b", "c"]  # not '\ufeffa'


def test_an_edge_list_that_is_not_utf8(tmp_path):
    path = tmp_path / "edges.txt"
    path.write_bytes(b"a b\nb \xe9t\xe9\n")
    with pytest.raises(ParseError) as err:
        ek.Graph.from_edgelist(path)
    text = one_line(err)
    assert "edges.txt:2" in text and "iconv" in text


@pytest.mark.parametrize("read", [node_labels, plot_labels])
def test_labels_files(tmp_path, read):
    path = tmp_path / "labels.txt"
    path.write_bytes(BOM + b"a x\nb y\n")
    labels = read(path)
    assert set(labels) == {"a", "b"}
    path.write_bytes(b"a x\nb \xff\n")
    with pytest.raises(ParseError) as err:
        read(path)
    assert "labels.txt:2" in one_line(err) and "iconv" in str(err.value)
    with pytest.raises(InputError) as err:
        read(tmp_path / "missing.txt")
    assert "no such file" in one_line(err)
    with pytest.raises(InputError) as err:
        read(tmp_path)
    assert "is a directory" in one_line(err)


def test_word_pairs_file(tmp_path):
    emb = ek.Embeddings(["cat", "dog", "car"], [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    path = tmp_path / "pairs.txt"
    path.write_bytes(BOM + b"cat dog 9\ncat car 1\ndog car 2\n")
    report = ek.evaluate.similarity_report(emb, path)
    assert report["covered"] == 3
    path.write_bytes(b"cat dog 9\ncat \xe9 1\n")
    with pytest.raises(ParseError) as err:
        ek.evaluate.similarity_report(emb, path)
    assert "pairs.txt:2" in one_line(err) and "iconv" in str(err.value)


def test_a_pipe_as_a_corpus_is_read_once_and_trained_on(tmp_path):
    import gc
    import os
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    text = "a b c d\nb c d e\n" * 50

    def write():
        with open(fifo, "w", encoding="utf-8") as fh:
            fh.write(text)

    writer = threading.Thread(target=write)
    writer.start()
    corpus = ek.Corpus.from_files(fifo)  # copied once: training reads a corpus several times
    writer.join(timeout=10)
    first, second = list(corpus), list(corpus)
    assert first == second and len(first) == 100 and first[0] == ["a", "b", "c", "d"]
    copy = corpus.paths[0]
    assert copy.is_file() and copy != fifo
    model = ek.Word2Vec(dim=4, epochs=1, min_count=1, sample=0, seed=0)
    model.fit(corpus, show_progress=False)
    assert len(model.embeddings_) == 5
    del corpus
    gc.collect()
    assert not copy.parent.exists()  # the copy goes with the corpus
