"""CLI messages (issue 15, item 9): a mistyped --kind, key or index name is one line with the
close match; `list` survives a damaged index; a closed pipe ends quietly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import embedkit as ek
from embedkit.store import Store


@pytest.fixture
def store(tmp_path):
    emb = ek.Embeddings([f"w{i}" for i in range(60)], np.random.default_rng(0).normal(size=(60, 4)))
    s = Store(tmp_path / "st")
    s.save("good", emb.to_index())
    emb.save(tmp_path / "vectors.npz")
    return s


def test_index_build_kind_typo_is_one_line(tmp_path, store, run):
    code, _, err = run("--store", store.root, "index", "build", tmp_path / "nothere.npz", "--name", "x", "--kind", "hnws")
    assert code == 2 and err.count("\n") == 1  # a usage error, before the vectors file is read
    assert "did you mean 'hnsw'?" in err and "flat, hnsw, ivf, ivfpq, auto" in err and ".cpp" not in err
    assert not store.exists("x")
    code, _, err = run("--store", store.root, "index", "build", tmp_path / "vectors.npz", "--name", "x", "--kind", "HNSW8")
    assert code == 0, err  # a FAISS factory string still builds
    code, _, err = run("--store", store.root, "index", "build", tmp_path / "vectors.npz", "--name", "y", "--kind", "IVF2,PQ3")
    assert code == 1 and err.count("\n") == 1 and "subquantizers" in err and ".cpp" not in err  # parses; dim 4 refuses it


def test_unknown_index_names_and_keys_suggest(store, run):
    root = store.root.resolve()
    for argv in (["query", "god", "w1"], ["info", "god"], ["rm", "god"]):
        code, _, err = run("--store", store.root, *argv)
        assert code == 1 and err.count("\n") == 1, err
        assert f"no index named 'god' in the store {root}" in err and "did you mean 'good'?" in err
    code, _, err = run("--store", store.root, "query", "good", "w1x")
    assert code == 1 and err.count("\n") == 1 and "did you mean 'w1'" in err
    code, _, err = run("--store", store.root.parent / "nowhere", "query", "good", "w1")
    assert code == 1 and f"the store folder {(store.root.parent / 'nowhere').resolve()} does not exist" in err


def test_list_shows_a_damaged_index_and_info_on_it_is_one_line(store, run):
    store.save("bad", store.load("good"))
    store.save("newer", store.load("good"))
    (store.root / "bad" / "manifest.json").write_text("{not json", encoding="utf-8")
    m = json.loads((store.root / "newer" / "manifest.json").read_text(encoding="utf-8"))
    m["format_version"] = 99
    (store.root / "newer" / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    code, out, err = run("--store", store.root, "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(lines) == {"bad", "good", "newer"}
    assert "damaged:" in lines["bad"] and "manifest" in lines["bad"]
    assert "damaged:" in lines["newer"] and "version 99" in lines["newer"]
    assert "damaged" not in lines["good"] and " 60 " in lines["good"]
    for name in ("bad", "newer"):
        code, _, err = run("--store", store.root, "info", name)
        assert code == 1 and err.count("\n") == 1 and err.startswith("error: ")


def test_list_of_a_missing_store_folder_says_so(tmp_path, run):
    code, out, _ = run("--store", tmp_path / "nowhere", "list")
    assert code == 0 and f"no indexes in {(tmp_path / 'nowhere').resolve()} (the folder does not exist)" in out


def test_closed_pipe_ends_quietly(store):
    """`embedkit query ... | head -1`: no traceback, no 'Broken pipe' line, no 'Exception ignored'."""
    keys = [f"w{i}" for i in range(60)]
    env = dict(os.environ, EMBEDKIT_STORE=str(store.root), OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.Popen([sys.executable, "-m", "embedkit", "query", "good", *keys, "-k", "59"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()  # the reader goes away with ~200 KB still to write (more than a pipe buffer)
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.strip() == b"w0"
    assert err.count("\n") <= 1 and "Traceback" not in err and "Exception ignored" not in err and "Broken pipe" not in err


def test_list_skips_an_index_deleted_while_listing(store, run, monkeypatch):
    """An index removed between reading the folder and reading its manifest is not 'damaged'."""
    real = Store.names
    monkeypatch.setattr(Store, "names", lambda self: real(self) + ["gone"])
    code, out, err = run("--store", store.root, "list")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["good"]


def test_train_kind_typo_is_refused_before_training(tmp_path, run, monkeypatch):
    monkeypatch.setattr(ek.Node2Vec, "fit", lambda *a, **k: pytest.fail("trained before checking --kind"))
    edges = tmp_path / "edges.txt"
    edges.write_text("a b\nb c\n", encoding="utf-8")
    code, _, err = run("--store", tmp_path / "st", "train", "node2vec", edges, "--name", "g", "--kind", "hnws")
    assert code == 2 and err.count("\n") == 1 and "did you mean 'hnsw'?" in err


def test_warnings_of_any_command_print_on_one_line(tmp_path, run, monkeypatch):
    import warnings

    from embedkit.errors import InputError

    def warn_then_stop(*a, **k):
        warnings.warn("Node2Vec: a warning\nover two lines", UserWarning, stacklevel=2)
        raise InputError("stop here")

    monkeypatch.setattr(ek.Node2Vec, "fit", warn_then_stop)
    edges = tmp_path / "edges.txt"
    edges.write_text("a b\nb c\n", encoding="utf-8")
    with warnings.catch_warnings():  # pytest records warnings; print them as Python does outside pytest
        warnings.simplefilter("always")
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: sys.stderr.write(
            warnings.formatwarning(m, c, f, n, line))
        code, _, err = run("--store", tmp_path / "st", "train", "node2vec", edges, "--name", "g")
    assert code != 0 and err.splitlines()[0] == "warning: Node2Vec: a warning over two lines", err
    assert "UserWarning" not in err and ".py:" not in err


def test_the_warning_format_is_restored_and_kept_under_debug(tmp_path, run, monkeypatch):
    import warnings

    before = warnings.formatwarning
    run("--store", tmp_path / "st", "list")
    assert warnings.formatwarning is before
    from embedkit.cli import _one_line_warnings

    with _one_line_warnings():
        assert warnings.formatwarning("x\ny", DeprecationWarning, "f.py", 1) == "warning: DeprecationWarning: x y\n"
        assert warnings.formatwarning("x", UserWarning, "f.py", 1) == "warning: x\n"
    monkeypatch.setenv("EMBEDKIT_DEBUG", "1")
    with _one_line_warnings():
        assert warnings.formatwarning is before
