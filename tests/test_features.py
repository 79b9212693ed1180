"""Feature tables: arrays, pandas, .npy/.npz/CSV files, and one-line errors naming file and line."""

import numpy as np
import pytest

from embedkit.data.features import as_labels, as_matrix, as_pairs, load_features, load_labels, row_keys
from embedkit.errors import InputError, ParseError


def test_as_matrix_accepts_arrays_lists_pandas():
    assert as_matrix([[1, 2], [3, 4]]).dtype == np.float32
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [True, False]})
    np.testing.assert_array_equal(as_matrix(df), [[1, 1], [2, 0]])
    with pytest.raises(InputError, match="column 'c' is not numeric"):
        as_matrix(df.assign(c=["x", "y"]))


@pytest.mark.parametrize("value,match", [
    (np.arange(3.0), r"2-D .* got shape \(3,\)"),
    (np.zeros((2, 2, 2)), "Flatten each row"),
    (np.zeros((0, 3)), "empty"),
    ([[1.0, np.nan]], "row 0, column 1 is NaN"),
    ([[1.0, 2.0], [np.inf, 0.0]], "row 1, column 0 is inf"),
    ([["a", "b"]], "numeric"),
])
def test_as_matrix_errors(value, match):
    with pytest.raises(InputError, match=match):
        as_matrix(value)


def test_feature_count_checked():
    with pytest.raises(InputError, match="has 3 features but the model was fitted on 2"):
        as_matrix(np.zeros((1, 3)), n_features=2)


def test_labels():
    assert as_labels(np.array([[1], [2]]), 2).tolist() == [1, 2]
    with pytest.raises(InputError, match="3 labels but X has 2 rows"):
        as_labels([1, 2, 3], 2)
    with pytest.raises(InputError, match=r"y\[1\] is NaN"):
        as_labels([1.0, np.nan], 2)
    with pytest.raises(InputError, match=r"y\[0\] is missing"):
        as_labels(np.array([None, "a"], dtype=object), 2)


def test_pairs():
    np.testing.assert_array_equal(as_pairs([(0, 1, 1), (1, 2, 0)], 3), [[0, 1, 1], [1, 2, 0]])
    with pytest.raises(InputError, match=r"shape \(m, 3\)"):
        as_pairs([(0, 1)], 3)
    with pytest.raises(InputError, match="X has 3 rows"):
        as_pairs([(0, 3, 1)], 3)
    with pytest.raises(InputError, match="similar must be 1"):
        as_pairs([(0, 1, 2)], 3)
    with pytest.raises(InputError, match="whole numbers"):
        as_pairs([(0, 1.5, 1)], 3)


def test_row_keys():
    assert row_keys(None, 2) == ["0", "1"]
    assert row_keys([5, 6], 2) == ["5", "6"]
    with pytest.raises(InputError, match="one key per row"):
        row_keys(["a"], 2)


def test_csv_with_header_label_and_key(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id,x,y,label\na,1,2,cat\nb,3,4,dog\n\n")
    t = load_features(p, label_column="label", key_column="id")
    np.testing.assert_array_equal(t.X, [[1, 2], [3, 4]])
    assert t.labels.tolist() == ["cat", "dog"] and t.keys == ["a", "b"] and t.columns == ["x", "y"]
    # positions work too, and a file without header
    q = tmp_path / "n.csv"
    q.write_text("1,2,0\n3,4,1\n")
    t = load_features(q, label_column=-1)
    assert t.X.shape == (2, 2) and t.labels.tolist() == ["0", "1"] and t.keys == ["0", "1"]


@pytest.mark.parametrize("text,match", [
    ("x,y\n1,2\n3,abc\n", r":3: column 'y': 'abc' is not a number"),
    ("x,y\n1,2\n3\n", r":3: expected 2 comma-separated fields, got 1"),
    ("x,y\n1,2\n,4\n", r":3: column 'x': is empty"),
    ("x,y\n1,inf\n", r":2: column 'y': 'inf' is not finite"),
    ("", "empty"),
])
def test_csv_errors_name_file_and_line(tmp_path, text, match):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ParseError, match=match) as info:
        load_features(p)
    assert str(info.value).startswith(str(p)) and "\n" not in str(info.value)


def test_csv_label_column_errors(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("x,label\n1,a\n2,\n")
    with pytest.raises(ParseError, match=":3: label column 'label' is empty"):
        load_features(p, label_column="label")
    with pytest.raises(InputError, match="'kind' is not in the header"):
        load_features(p, label_column="kind")


def test_npy_and_npz(tmp_path):
    X = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.save(tmp_path / "a.npy", X)
    np.testing.assert_array_equal(load_features(tmp_path / "a.npy").X, X)
    np.savez(tmp_path / "b.npz", X=X, y=np.array([0, 1, 1]), keys=np.array(["p", "q", "r"]))
    t = load_features(tmp_path / "b.npz")
    assert t.labels.tolist() == [0, 1, 1] and t.keys == ["p", "q", "r"]
    np.savez(tmp_path / "c.npz", X=X, y=np.array([0, 1]))
    with pytest.raises(InputError, match="2 labels but X has 3 rows"):
        load_features(tmp_path / "c.npz")
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(InputError, match=r"nan.npy row 0, column 1 is NaN"):
        load_features(tmp_path / "nan.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ParseError, match="without pickle"):
        load_features(tmp_path / "obj.npy")
    with pytest.raises(InputError, match="no such file"):
        load_features(tmp_path / "missing.csv")


def test_label_files(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("a\nb\n\n")
    assert load_labels(p, n_rows=2).tolist() == ["a", "b"]
    with pytest.raises(InputError, match="2 labels but the feature file has 3 rows"):
        load_labels(p, n_rows=3)
    p.write_text("a\n\nb\n")
    with pytest.raises(ParseError, match=":2: blank label"):
        load_labels(p)
    np.save(tmp_path / "l.npy", np.array([1, 2, 3]))
    assert load_labels(tmp_path / "l.npy", n_rows=3).tolist() == [1, 2, 3]
