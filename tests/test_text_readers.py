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


def test_the_cli_side_files_read_a_byte_order_mark(tmp_path):
    from embedkit.cli.encoders import _read_pairs
    from embedkit.cli.index_cmds import read_payload_file
    from embedkit.cli.plot import _label_keys
    from embedkit.cli.plot import read_labels as cli_labels

    csv = tmp_path / "payload.csv"
    csv.write_bytes(BOM + b"key,price\na,1.5\nb,2\n")  # as Excel writes it
    assert read_payload_file(str(csv)) == {"a": {"price": 1.5}, "b": {"price": 2}}
    jsonl = tmp_path / "payload.jsonl"
    jsonl.write_bytes(BOM + b'{"key": "a", "price": 1}\n{"key": "b", "price": 2}\n')
    assert read_payload_file(str(jsonl)) == {"a": {"price": 1}, "b": {"price": 2}}
    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(BOM + b"0 1 1\n1 2 0\n")
    assert _read_pairs(pairs, ["0", "1", "2"]).tolist() == [[0, 1, 1], [1, 2, 0]]
    keys = tmp_path / "keys.txt"
    keys.write_bytes(BOM + b"k1\nk2\n")
    assert _label_keys(f"@{keys}") == ["k1", "k2"]
    labels = tmp_path / "labels.txt"
    labels.write_bytes(BOM + b"a x\na y\n")  # the same key twice: refused by the CLI, with the mark or without
    with pytest.raises(ParseError) as err:
        cli_labels(str(labels))
    assert "labels.txt:2" in one_line(err) and "give each key one label" in str(err.value)
    assert plot_labels(labels) == {"a": "y"}  # the library keeps the last label


@pytest.mark.parametrize("suffix", [".gz", ".bz2"])
def test_compressed_interactions_with_and_without_a_header(tmp_path, suffix):
    import bz2
    import gzip

    opener = gzip.open if suffix == ".gz" else bz2.open
    with opener(tmp_path / f"h.csv{suffix}", "wb") as fh:
        fh.write(BOM + b"user,item,count\nu1,i1,3\nu2,i2,1\nu1,i2,2\n")
    with opener(tmp_path / f"nh.csv{suffix}", "wb") as fh:
        fh.write(b"u1,i1,3\nu2,i2,1\nu1,i2,2\n")
    for inter in (ek.Interactions.from_csv(tmp_path / f"h.csv{suffix}", value="count"),
                  ek.Interactions.from_csv(tmp_path / f"nh.csv{suffix}", delimiter=",")):
        assert (inter.n_users, inter.n_items, inter.nnz) == (2, 2, 3)
