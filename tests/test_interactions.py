"""ek.Interactions: reading, validation with line numbers, duplicates, splits."""

import numpy as np
import pytest
import scipy.sparse as sp

import embedkit as ek
from embedkit.errors import InputError, MissingKeyError, ParseError


def write(tmp_path, text, name="data.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def pairs(inter):
    return {(inter.user_keys[u], inter.item_keys[i]): float(v)
            for u, i, v in zip(inter.users, inter.items, inter.values)}


# ------------------------------------------------------------------ from_csv
def test_csv_with_header_values_and_duplicates_summed(tmp_path):
    p = write(tmp_path, "user,item,rating\nalice,x,2\nbob,y,1.5\nalice,x,3\n")
    inter = ek.Interactions.from_csv(p, value="rating")
    assert inter.user_keys == ["alice", "bob"] and inter.item_keys == ["x", "y"]
    assert pairs(inter) == {("alice", "x"): 5.0, ("bob", "y"): 1.5}
    assert inter.matrix.shape == (2, 2) and inter.matrix.dtype == np.float32
    assert inter.timestamps is None


def test_csv_without_value_counts_rows(tmp_path):
    p = write(tmp_path, "user,item\n1,10\n1,10\n2,10\n")
    inter = ek.Interactions.from_csv(p)
    assert pairs(inter) == {("1", "10"): 2.0, ("2", "10"): 1.0}  # ids stay strings


def test_headerless_whitespace_file_reads_first_two_columns(tmp_path):
    p = write(tmp_path, "u1 i1\nu1   i2\n\nu2 i1\n", name="plays.txt")
    inter = ek.Interactions.from_csv(p)
    assert pairs(inter) == {("u1", "i1"): 1.0, ("u1", "i2"): 1.0, ("u2", "i1"): 1.0}


@pytest.mark.parametrize("sep", ["\t", ";", "|"])
def test_delimiter_is_detected(tmp_path, sep):
    p = write(tmp_path, sep.join(["user", "item", "v"]) + "\n" + sep.join(["a", "b", "4"]) + "\n")
    assert pairs(ek.Interactions.from_csv(p, value="v")) == {("a", "b"): 4.0}


def test_positions_and_header_detection(tmp_path):
    with_header = write(tmp_path, "uid,iid,score\na,b,3\n", "h.csv")
    without = write(tmp_path, "a,b,3\n", "n.csv")
    for p in (with_header, without):
        assert pairs(ek.Interactions.from_csv(p, user=0, item=1, value=2)) == {("a", "b"): 3.0}


def test_unknown_column_name_is_a_parse_error(tmp_path):
    p = write(tmp_path, "uid,iid\na,b\n")
    with pytest.raises(ParseError, match=r"data.csv:1: .*'user_id'"):
        ek.Interactions.from_csv(p, user="user_id", item="iid")


def test_timestamps_numeric_and_iso_latest_kept_for_duplicates(tmp_path):
    p = write(tmp_path, "user,item,ts\na,x,100\na,x,300\nb,y,200\n")
    inter = ek.Interactions.from_csv(p, timestamp="ts")
    ts = {(inter.user_keys[u], inter.item_keys[i]): t for u, i, t in zip(inter.users, inter.items, inter.timestamps)}
    assert ts == {("a", "x"): 300.0, ("b", "y"): 200.0}
    p2 = write(tmp_path, "user,item,when\na,x,2020-01-01T00:00:00\nb,y,2020-01-02\n", "iso.csv")
    inter2 = ek.Interactions.from_csv(p2, timestamp="when")
    assert inter2.timestamps[1] - inter2.timestamps[0] == pytest.approx(86400.0)
    assert inter2.timestamps[0] == pytest.approx(1577836800.0)


@pytest.mark.parametrize("row, line, message", [
    ("b,y,nan", 3, "NaN"),
    ("b,y,-1", 3, "negative"),
    ("b,y,lots", 3, "not a number"),
    ("b,y", 3, "missing"),
    (",y,1", 3, "missing user"),
    ("b,y,1,9", 3, "fields"),
])
def test_bad_rows_name_file_and_line(tmp_path, row, line, message):
    p = write(tmp_path, f"user,item,rating\na,x,5\n{row}\nc,z,1\n")
    with pytest.raises(ParseError, match=message) as err:
        ek.Interactions.from_csv(p, value="rating")
    assert err.value.line == line and str(err.value).startswith(f"{p}:{line}:")


def test_line_numbers_count_blank_lines(tmp_path):
    p = write(tmp_path, "user,item,rating\na,x,5\n\nb,y,bad\n")
    with pytest.raises(ParseError) as err:
        ek.Interactions.from_csv(p, value="rating")
    assert err.value.line == 4


def test_negative_allowed_for_signed_ratings(tmp_path):
    p = write(tmp_path, "user,item,rating\na,x,-2\n")
    assert pairs(ek.Interactions.from_csv(p, value="rating", allow_negative=True)) == {("a", "x"): -2.0}


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        ek.Interactions.from_csv(tmp_path / "nope.csv")
    with pytest.raises(ParseError, match="empty"):
        ek.Interactions.from_csv(write(tmp_path, ""))


# ------------------------------------------------------------ other sources
def test_from_arrays_checks_and_converts_ids():
    inter = ek.Interactions.from_arrays([1, 1, 2], [10, 11, 10], values=[1.0, 2.0, 3.0])
    assert inter.user_keys == ["1", "2"] and inter.item_keys == ["10", "11"]
    assert inter.items_of("1") == ["10", "11"]
    with pytest.raises(InputError, match="entries"):
        ek.Interactions.from_arrays(["a", "b"], ["x"])
    with pytest.raises(InputError, match="NaN"):
        ek.Interactions.from_arrays(["a"], ["x"], values=[float("nan")])
    with pytest.raises(InputError, match="negative"):
        ek.Interactions.from_arrays(["a"], ["x"], values=[-1.0])
    with pytest.raises(MissingKeyError):
        inter.items_of("nobody")


def test_from_sparse_and_dataframe_agree():
    import pandas as pd

    m = sp.csr_matrix(np.array([[0, 2, 0], [1, 0, 0]], dtype=np.float32))
    a = ek.Interactions.from_sparse(m, user_keys=["u", "v"], item_keys=["x", "y", "z"])
    assert pairs(a) == {("u", "y"): 2.0, ("v", "x"): 1.0}
    assert a.n_items == 3  # an item nobody touched keeps its column
    df = pd.DataFrame({"user": ["u", "v"], "item": ["y", "x"], "value": [2.0, 1.0]})
    b = ek.Interactions.from_dataframe(df, value="value")
    assert pairs(b) == pairs(a)
    with pytest.raises(InputError, match="no value column"):
        ek.Interactions.from_dataframe(df, value="rating")
    assert pairs(ek.Interactions.from_sparse(np.eye(2))) == {("0", "0"): 1.0, ("1", "1"): 1.0}


# ---------------------------------------------------------------------- splits
def grid(n_users=30, n_items=40, seed=0, with_time=True):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.3)
    ts = rng.random(len(u)) * 1000 if with_time else None
    return ek.Interactions.from_arrays([f"u{x}" for x in u], [f"i{x}" for x in i], timestamps=ts)


def test_split_is_a_partition_per_user_and_keeps_vocab():
    inter = grid()
    train, test = inter.split(test_fraction=0.25, seed=3)
    assert train.user_keys == inter.user_keys and test.item_keys == inter.item_keys
    assert set(pairs(train)) | set(pairs(test)) == set(pairs(inter))
    assert not set(pairs(train)) & set(pairs(test))
    counts = np.bincount(inter.users, minlength=inter.n_users)
    held = np.bincount(test.users, minlength=inter.n_users)
    assert np.all(np.abs(held - 0.25 * counts) <= 1)
    assert np.all(np.bincount(train.users, minlength=inter.n_users) >= np.minimum(counts, 1))
    again = inter.split(test_fraction=0.25, seed=3)[1]
    assert pairs(again) == pairs(test)
    assert pairs(inter.split(test_fraction=0.25, seed=4)[1]) != pairs(test)


def test_leave_n_out_random_and_latest():
    inter = grid()
    train, test = inter.leave_n_out(n=2, seed=0)
    assert np.all(np.bincount(test.users, minlength=inter.n_users)[np.bincount(inter.users) >= 3] == 2)
    train, test = inter.leave_n_out(n=1, by_time=True)
    for u in range(inter.n_users):
        t_test = test.timestamps[test.users == u]
        t_train = train.timestamps[train.users == u]
        if len(t_test):
            assert t_test.min() >= t_train.max()


def test_split_by_time_and_missing_timestamps():
    inter = grid()
    train, test = inter.split_by_time(test_fraction=0.2)
    assert test.timestamps.min() >= train.timestamps.max()
    assert abs(test.nnz - 0.2 * inter.nnz) <= 2
    train, test = inter.split_by_time(cutoff=500.0)
    assert test.timestamps.min() >= 500.0 > train.timestamps.max()
    with pytest.raises(InputError, match="timestamps"):
        grid(with_time=False).split_by_time()
    with pytest.raises(InputError, match="test_fraction"):
        inter.split(test_fraction=1.5)
