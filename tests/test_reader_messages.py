"""Reader messages: bad input files and options get one line naming the file (and line) or the
option and the fix, never a traceback or numpy's talk of pickles: a bad --delimiter, a header
without rows, bytes that are not UTF-8, a UTF-8 byte-order mark (read transparently), a file
that is not an .npz / .npy where one is expected, an .npz without an 'X' array, a .npy given
where keys are needed, and ids or values in Interactions.from_arrays that are missing or not
numbers."""

from __future__ import annotations

import numpy as np
import pytest

import embedkit as ek
from embedkit.cli import main
from embedkit.data.features import load_features, load_labels
from embedkit.errors import InputError, ParseError, StoreError

BOM = b"\xef\xbb\xbf"


def one_line(err) -> str:
    text = str(err.value) if hasattr(err, "value") else str(err)
    assert "\n" not in text and "Traceback" not in text and "pickle" not in text, text
    return text


@pytest.fixture
def run(capsys, tmp_path):
    def _run(*argv):
        code = main(["--store", str(tmp_path / "store"), *[str(a) for a in argv]])
        res = capsys.readouterr()
        return code, res.out, res.err
    return _run


def cli_error(run, *argv) -> str:
    code, _, err = run(*argv)
    assert code != 0 and err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "pickle" not in err, err
    return err


@pytest.fixture
def ratings(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user,item,count\nu1,i1,3\nu2,i2,1\nu1,i2,2\n")
    return p


# ---------------------------------------------------------------- 1. --delimiter
@pytest.mark.parametrize("bad", ["ab", "", 1])
def test_a_delimiter_that_is_not_one_character_is_one_line(ratings, bad):
    with pytest.raises(InputError) as err:
        ek.Interactions.from_csv(ratings, value="count", delimiter=bad)
    assert one_line(err) == (f"delimiter {bad!r}: give one character (e.g. ',', ';' or a tab), "
                             "or leave it out to detect it")


def test_a_delimiter_on_the_command_line(ratings, run):
    err = cli_error(run, "train", "mf", ratings, "--name", "x", "--value", "count", "--delimiter", "ab")
    assert "delimiter 'ab': give one character" in err
    for quote in ('"', "\n"):
        with pytest.raises(InputError, match="cannot separate fields") as e:
            ek.Interactions.from_csv(ratings, delimiter=quote)
        one_line(e)


def test_a_tab_typed_as_backslash_t_is_a_tab(tmp_path):
    p = tmp_path / "r.tsv"
    p.write_text("user\titem\tcount\nu1\ti1\t3\nu2\ti2\t1\n")
    inter = ek.Interactions.from_csv(p, value="count", delimiter="\\t")
    assert inter.user_keys == ["u1", "u2"] and inter.values.tolist() == [3.0, 1.0]


# ---------------------------------------------------------------- 2. a header and no rows
def test_a_header_without_rows(tmp_path, run):
    p = tmp_path / "h.csv"
    p.write_text("user,item,count\n")
    with pytest.raises(ParseError) as err:
        ek.Interactions.from_csv(p, value="count")
    assert one_line(err).startswith(f"{p}: a header but no data rows; add one 'user,item[,value]' row")
    p.write_text("user,item,count\n\n\n")
    with pytest.raises(ParseError, match="a header but no data rows"):
        ek.Interactions.from_csv(p, value="count")
    p.write_text("user,item,count\n")
    assert "h.csv: a header but no data rows" in cli_error(run, "train", "mf", p, "--name", "x", "--value", "count")


# ---------------------------------------------------------------- 3. bytes that are not UTF-8
def test_an_interactions_file_that_is_not_utf8_names_file_and_line(tmp_path, run):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"user,item,count\nu1,i1,3\nu2,caf\xe9,1\n")
    with pytest.raises(ParseError) as err:
        ek.Interactions.from_csv(p, value="count")
    text = one_line(err)
    assert text.startswith(f"{p}:3: not valid UTF-8") and "iconv -f latin1 -t utf-8" in text
    p.write_bytes(b"\xffuser,item\nu1,i1\n")  # on the header line, which is read first
    with pytest.raises(ParseError, match=r"latin\.csv:1: not valid UTF-8") as err:
        ek.Interactions.from_csv(p)
    one_line(err)
    p.write_bytes(b"u1 caf\xe9\nu2 i2\n")  # whitespace-separated, headerless
    with pytest.raises(ParseError, match=r"latin\.csv:1: not valid UTF-8"):
        ek.Interactions.from_csv(p)
    p.write_bytes(b"user,item\nu1,caf\xe9\n")
    assert "latin.csv:2: not valid UTF-8" in cli_error(run, "train", "mf", p, "--name", "x")


def test_utf16_and_binary_files_are_named_as_such(tmp_path):
    p = tmp_path / "u16.csv"
    p.write_bytes("user,item\nu1,i1\n".encode("utf-16"))
    with pytest.raises(ParseError) as err:
        ek.Interactions.from_csv(p)
    assert one_line(err) == f"{p}:1: UTF-16 text, not UTF-8; convert the file (e.g. iconv -f utf-16 -t utf-8)"
    npy = tmp_path / "v.npy"
    np.save(npy, np.ones((3, 4), dtype=np.float32))
    with pytest.raises(ParseError, match=r"v\.npy:1: a NumPy \.npy array \(binary\), not UTF-8 text; give a "
                                         "delimited text file") as err:
        ek.Interactions.from_csv(npy)
    one_line(err)


def test_other_text_readers_name_the_line_that_is_not_utf8(tmp_path):
    feats = tmp_path / "f.csv"
    feats.write_bytes(b"id,a,b\nk1,1,2\nk\xe92,3,4\n")
    with pytest.raises(ParseError, match=r"f\.csv:3: not valid UTF-8 .*iconv") as err:
        load_features(feats, key_column="id")
    one_line(err)
    labels = tmp_path / "labels.txt"
    labels.write_bytes(b"a\nb\xe9\n")
    with pytest.raises(ParseError, match=r"labels\.txt:2: not valid UTF-8 .*iconv") as err:
        load_labels(labels)
    one_line(err)
    vecs = tmp_path / "v.txt"
    vecs.write_bytes(b"2 2\na 1 2\n\xe9 3 4\n")
    with pytest.raises(ParseError, match=r"v\.txt:3: not valid UTF-8 .*iconv.* binary=True") as err:
        ek.Embeddings.load_word2vec_format(vecs)
    one_line(err)
    corpus = tmp_path / "c.txt"
    corpus.write_bytes(b"\x00\x01\xff binary\n")
    with pytest.raises(ParseError, match=r"c\.txt:1: a binary file, not UTF-8 text") as err:
        list(ek.Corpus.from_files(corpus))
    one_line(err)


# ---------------------------------------------------------------- 4. a UTF-8 byte-order mark
def test_a_byte_order_mark_is_read_transparently(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes(BOM + b"user,item,count\nu1,i1,3\nu2,i2,1\n")
    inter = ek.Interactions.from_csv(p, value="count")
    assert inter.user_keys == ["u1", "u2"] and inter.values.tolist() == [3.0, 1.0]
    p.write_bytes(BOM + b"customer,product\nc1,p1\n")  # header detection sees the names without the mark
    assert ek.Interactions.from_csv(p, user="customer", item="product").user_keys == ["c1"]
    p.write_bytes(BOM + b"u1,i1\nu2,i2\n")  # headerless: the first id is plain
    assert ek.Interactions.from_csv(p).user_keys == ["u1", "u2"]
    f = tmp_path / "f.csv"
    f.write_bytes(BOM + b"id,a,b\nk1,1,2\nk2,3,4\n")
    table = load_features(f, key_column="id")
    assert table.keys == ["k1", "k2"] and table.columns == ["a", "b"]
    lab = tmp_path / "labels.txt"
    lab.write_bytes(BOM + b"a\nb\n")
    assert load_labels(lab).tolist() == ["a", "b"]
    c = tmp_path / "c.txt"
    c.write_bytes(BOM + b"hello world\nthe cat\n")
    assert list(ek.Corpus.from_files(c))[0] == ["hello", "world"]
    v = tmp_path / "v.txt"
    v.write_bytes(BOM + b"2 2\na 1 2\nb 3 4\n")
    assert ek.Embeddings.load_word2vec_format(v).keys == ["a", "b"]


# ---------------------------------------------------------------- 5. not an .npz / .npy
def test_a_file_that_is_not_an_npz_for_embeddings(tmp_path, run):
    txt = tmp_path / "corpus.txt"
    txt.write_text("hello world\n")
    with pytest.raises(StoreError) as err:
        ek.Embeddings.load(txt)
    assert one_line(err) == (f"{txt}: cannot read embeddings: not an .npz archive (a text file, not a zip file); "
                             "give a file written by Embeddings.save / np.savez")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x01\x02\x03\x00junk")
    with pytest.raises(StoreError, match=r"not an \.npz archive \(not a zip file\); give a file written by "
                                         r"Embeddings\.save / np\.savez") as err:
        ek.Embeddings.load(junk)
    one_line(err)
    w2v = tmp_path / "w2v.npz"
    w2v.write_text("1 2\na 1 2\n")
    with pytest.raises(StoreError, match="looks like word2vec text: read it with Embeddings.load_word2vec_format"):
        ek.Embeddings.load(w2v)
    npy = tmp_path / "v.npy"
    np.save(npy, np.ones((2, 3)))
    with pytest.raises(StoreError, match=r"a \.npy array .*Embeddings\(keys, vectors\)\.save"):
        ek.Embeddings.load(npy)
    assert "junk.npz: cannot read embeddings: not an .npz archive (not a zip file)" in cli_error(
        run, "index", "build", junk, "--name", "x")


def test_a_file_that_is_not_a_numpy_file_for_features(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_text("a,b\n1,2\n")
    with pytest.raises(ParseError) as err:
        load_features(junk)
    assert one_line(err) == (f"{junk}: not an .npz archive (a text file, not a zip file); save the feature rows "
                             "with np.savez(path, X=rows), or give a .npy or a CSV file; if it is CSV text, "
                             "name it .csv")
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ParseError, match=r"bad\.npy: not a \.npy array file \(no NUMPY header\)") as err:
        load_features(bad)
    one_line(err)
    swapped = tmp_path / "swapped.npz"
    np.save(tmp_path / "swapped.npy", np.ones((2, 2)))
    (tmp_path / "swapped.npy").rename(swapped)
    with pytest.raises(ParseError, match=r"a \.npy array .*not an \.npz archive; rename it to \.npy"):
        load_features(swapped)
    with pytest.raises(ParseError, match=r"bad\.npy: not a \.npy array file") as err:
        load_labels(bad)
    one_line(err)


# ---------------------------------------------------------------- 6. an .npz without X, a 1-D .npy
def test_an_npz_without_an_X_array(tmp_path, run):
    p = tmp_path / "Xnoarr.npz"
    np.savez(p, foo=np.ones(3))
    with pytest.raises(ParseError) as err:
        load_features(p)
    text = one_line(err)
    assert text.startswith(f"{p}: has no 'X' array (arrays: foo (3,)); save the feature rows")
    assert "X=rows" in text and "'features'" in text and "reshape" not in text
    np.savez(p, a=np.ones((2, 2)), b=np.ones(2))
    with pytest.raises(ParseError, match=r"has no 'X' array \(arrays: a \(2, 2\), b \(2,\)\)"):
        load_features(p)
    assert "Xnoarr.npz: has no 'X' array" in cli_error(run, "train", "siamese", p, "--name", "x")
    lone = tmp_path / "lone.npz"
    np.savez(lone, np.arange(6.0).reshape(3, 2))  # a lone 2-D array is still read as X
    assert load_features(lone).X.shape == (3, 2)


def test_a_one_dimensional_feature_file(tmp_path):
    p = tmp_path / "one.npy"
    np.save(p, np.ones(3))
    with pytest.raises(ParseError) as err:
        load_features(p)
    assert one_line(err) == (f"{p}: holds a 1-D array of shape (3,); a feature file holds a 2-D array, one row "
                             "per example and one column per feature (shape (n_rows, n_features))")
    z = tmp_path / "x.npz"
    np.savez(z, X=np.ones(3))
    with pytest.raises(ParseError, match=r"x\.npz: 'X' is a 1-D array of shape \(3,\); a feature file"):
        load_features(z)


# ---------------------------------------------------------------- 7. a .npy where keys are needed
def test_index_build_of_a_npy_file(tmp_path, run):
    p = tmp_path / "vectors.npy"
    np.save(p, np.ones((3, 4), dtype=np.float32))
    err = cli_error(run, "index", "build", p, "--name", "x")
    assert "vectors.npy: a NumPy .npy array (vectors without keys), which is not accepted here" in err
    assert "an .npz of keys and vectors written by Embeddings.save, or a word2vec text or binary file" in err
    assert "NUMPY" not in err and "COUNT DIM" not in err
    txt = tmp_path / "corpus.txt"
    txt.write_text("hello world\n")
    with pytest.raises(ParseError, match=r"got 'hello world'; give a word2vec text or binary file") as e:
        ek.Embeddings.load_word2vec_format(txt)
    one_line(e)


# ---------------------------------------------------------------- 8. Interactions.from_arrays
def test_from_arrays_names_a_value_that_is_not_a_number():
    with pytest.raises(InputError) as err:
        ek.Interactions.from_arrays(["u1", "u2"], ["i1", "i2"], ["5", "x"])
    assert one_line(err).startswith("row 1: value 'x' is not a number; give numbers (int, float, or strings")
    inter = ek.Interactions.from_arrays(["u1", "u2"], ["i1", "i2"], ["5", "2.5"])  # numeric strings still work
    assert inter.values.tolist() == [5.0, 2.5]
    with pytest.raises(InputError, match=r"row 0: value \[1\] is not a number"):
        ek.Interactions.from_arrays(["u1", "u2"], ["i1", "i2"], [[1], 2])


@pytest.mark.parametrize("missing, shown", [(None, "None"), (float("nan"), "NaN")])
def test_from_arrays_refuses_missing_ids(missing, shown):
    with pytest.raises(InputError) as err:
        ek.Interactions.from_arrays([missing, "u"], ["i1", "i2"])
    assert one_line(err) == (f"users row 0 is {shown}, not an id; every row needs an id: fill it in or "
                             "drop that row")
    with pytest.raises(InputError, match=f"items row 1 is {shown}, not an id"):
        ek.Interactions.from_arrays(["u1", "u2"], ["i1", missing])
    with pytest.raises(InputError, match=r"items row 1 is NaN, not an id \(2 rows in all\)"):
        ek.Interactions.from_arrays(["u1", "u2", "u3"], [1.0, np.nan, np.nan])
    assert ek.Interactions.from_arrays(["None", "nan"], ["i1", "i2"]).user_keys == ["None", "nan"]  # strings are ids


def test_from_arrays_reads_iso_dates_and_names_a_bad_timestamp():
    inter = ek.Interactions.from_arrays(["u1", "u2"], ["i1", "i2"], timestamps=["1970-01-02", "1970-01-03"])
    assert inter.timestamps.tolist() == [86400.0, 172800.0]
    with pytest.raises(InputError, match="row 1: timestamp 'soon' is neither a number nor an ISO date") as err:
        ek.Interactions.from_arrays(["u1", "u2"], ["i1", "i2"], timestamps=["1970-01-02", "soon"])
    one_line(err)


def test_a_directory_given_for_vectors(tmp_path):
    with pytest.raises(StoreError, match="is a directory; give the .npz file written by Embeddings.save") as err:
        ek.Embeddings.load(tmp_path)
    one_line(err)
    with pytest.raises(InputError, match="is a directory; give a word2vec text or binary file") as err:
        ek.Embeddings.load_word2vec_format(tmp_path)
    one_line(err)
