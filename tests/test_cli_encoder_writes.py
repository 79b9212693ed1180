"""Failed writes lose nothing and say so in one line: ``atomic_write_bytes`` (StoreError naming the target,
the temporary file removed, the previous file intact) and ``embedkit train autoencoder --anomaly FILE``
(the path is checked before training; a failed write of the scores leaves the store entry as it was);
``--top`` range and one-line warnings of the encoder verbs."""

import errno
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import embedkit as ek
from embedkit import _io
from embedkit.cli import main
from embedkit.errors import StoreError


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "X.npy"
    np.save(path, np.random.default_rng(0).normal(size=(40, 5)).astype(np.float32))
    return path


def train(table, tmp_path, *extra):
    return main(["train", "autoencoder", str(table), "--name", "g1", "--dim", "2", "--hidden", "8", "--epochs", "1",
                 "--device", "cpu", "--no-progress", "--store", str(tmp_path / "s"), *extra])


def snapshot(directory: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ atomic_write_bytes
@pytest.mark.parametrize("case", ["under_proc", "parent_is_a_file", "replace_fails", "target_is_a_directory"])
def test_failed_atomic_write_is_one_store_error_naming_the_target(tmp_path, monkeypatch, case):
    target = tmp_path / "m.npz"
    target.write_bytes(b"previous")
    if case == "under_proc":
        target = Path("/proc") / f"embedkit-test-{os.getpid()}.npz"
    elif case == "parent_is_a_file":
        target = tmp_path / "m.npz" / "inner.npz"
    elif case == "replace_fails":
        def refuse(src, dst, *a, **k):
            raise PermissionError(errno.EACCES, "Permission denied", str(src))

        monkeypatch.setattr(os, "replace", refuse)
    else:
        target = tmp_path / "d"
        target.mkdir()
    with pytest.raises(StoreError) as info:
        _io.atomic_write_bytes(target, b"new bytes")
    exc = info.value
    msg = str(exc)
    assert isinstance(exc, OSError) and isinstance(exc.__cause__, OSError), repr(exc)
    assert "\n" not in msg and str(target) in msg and ".tmp-" not in msg, msg
    assert "choose" in msg or "give a file path" in msg, msg
    assert exc.filename == str(target) and exc.errno == exc.__cause__.errno
    monkeypatch.undo()
    assert (tmp_path / "m.npz").read_bytes() == b"previous"  # the previous file is intact
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]  # and no temporary file is left


def test_writers_built_on_atomic_write_report_the_target(tmp_path, capsys):
    emb = ek.Embeddings(["a", "b"], np.eye(2, dtype=np.float32))
    bad = tmp_path / "f.txt"
    bad.write_text("a file")
    with pytest.raises(OSError, match=r"cannot write .*f\.txt/e\.npz: .*choose another path"):
        emb.save(bad / "e.npz")
    store = tmp_path / "s"
    ek.Store(store).save("v", emb.to_index())
    assert main(["export", "v", "--format", "npz", "--out", str(bad / "e.npz"), "--store", str(store)]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert str(bad / "e.npz") in line and ".tmp-" not in line and "Errno" not in line, line


# ------------------------------------------------------------------ --anomaly FILE
@pytest.mark.parametrize("where", ["proc", "directory", "under_a_file"])
def test_bad_anomaly_path_is_refused_before_the_entry_is_replaced(table, tmp_path, capsys, where):
    assert train(table, tmp_path) == 0
    before = snapshot(tmp_path / "s" / "g1")
    capsys.readouterr()
    target = {"proc": "/proc/an.csv", "directory": str(tmp_path / "s"), "under_a_file": str(table / "an.csv")}[where]
    assert train(table, tmp_path, "--force", "--seed", "1", "--anomaly", target) == 1
    cap = capsys.readouterr()
    line = one_error_line(cap.err)
    assert line.startswith(f"error: --anomaly {target}: ") and "Errno" not in line and ".tmp-" not in line, line
    assert "trained" not in cap.out and "saved" not in cap.out  # refused before training
    assert snapshot(tmp_path / "s" / "g1") == before


def test_failed_scores_write_leaves_the_entry_and_the_old_scores(table, tmp_path, capsys, monkeypatch):
    """A full disk while the CSV is written (after the path check passed): the entry is not replaced
    (before: it was saved first, then the CSV write failed)."""
    scores = tmp_path / "scores.csv"
    assert train(table, tmp_path, "--anomaly", str(scores)) == 0
    before, old_csv = snapshot(tmp_path / "s" / "g1"), scores.read_bytes()
    capsys.readouterr()
    real_fsync = os.fsync

    def full_disk(fd):
        if ".scores.csv.tmp-" in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    assert train(table, tmp_path, "--force", "--seed", "1", "--anomaly", str(scores)) == 1
    monkeypatch.undo()
    line = one_error_line(capsys.readouterr().err)
    assert str(scores) in line and "No space left" in line and "free some space" in line, line
    assert snapshot(tmp_path / "s" / "g1") == before and scores.read_bytes() == old_csv
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_failed_entry_save_keeps_the_old_scores_file(table, tmp_path, capsys, monkeypatch):
    """The scores are staged before the save and dropped when it fails: the old CSV stays, no temp file."""
    scores = tmp_path / "scores.csv"
    assert train(table, tmp_path, "--anomaly", str(scores)) == 0
    old_csv = scores.read_bytes()
    capsys.readouterr()

    def fail(*a, **k):
        raise StoreError("the disk went away")

    monkeypatch.setattr(ek.AutoEncoder, "to_store", fail)
    assert train(table, tmp_path, "--force", "--seed", "1", "--anomaly", str(scores)) == 1
    assert one_error_line(capsys.readouterr().err) == "error: the disk went away"
    assert scores.read_bytes() == old_csv
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n or ".check-" in n]


def test_anomaly_file_in_a_new_directory(table, tmp_path):
    scores = tmp_path / "new" / "deeper" / "scores.csv"
    assert train(table, tmp_path, "--anomaly", str(scores)) == 0
    assert scores.read_text().splitlines()[0] == "key,score,anomaly"
    assert sorted(os.listdir(scores.parent)) == ["scores.csv"]


# ------------------------------------------------------------------ --top and warnings
@pytest.mark.parametrize("value", ["-1", "x"])
def test_top_out_of_range_is_a_usage_error(table, tmp_path, capsys, value):
    assert train(table, tmp_path, "--top", value) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--top" in line and ">= 0" in line, line


def test_ignored_patience_warning_is_one_line(table, tmp_path, capsys, monkeypatch):
    def show(message, category, filename, lineno, file=None, line=None):  # Python's own printing, which pytest
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))  # replaces by recording

    monkeypatch.setattr(warnings, "showwarning", show)
    assert train(table, tmp_path, "--patience", "3", "--top", "0") == 0
    cap = capsys.readouterr()
    warned = [line for line in cap.err.splitlines() if line.strip()]
    assert len(warned) == 1 and warned[0].startswith("warning: AutoEncoder: the 'patience' parameter (3) is ignored")
    assert ".py:" not in cap.err and "highest anomaly scores" not in cap.out


def test_a_failed_write_is_still_the_builtin_error_it_was(tmp_path):
    """StoreError keeps the built-in OSError subclass of the cause, so `except FileNotFoundError` still works."""
    atomic_write_bytes = _io.atomic_write_bytes
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(StoreError) as e:
        atomic_write_bytes(blocker / "sub" / "m.npz", b"data")
    assert isinstance(e.value, (FileExistsError, NotADirectoryError)) and "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="cannot write /proc/"):
        atomic_write_bytes("/proc/embedkit-test.npz", b"data")
    with pytest.raises(StoreError, match="choose a shorter file name"):
        atomic_write_bytes(tmp_path / ("a" * 300), b"data")
