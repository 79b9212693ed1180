"""Item 7 of issue 15: save and export like people expect.

model.save(NAME) -> a store entry, model.save(PATH) -> one .npz file (one rule, for every trainer);
load() takes the same argument; `embedkit export NAME --format ... --out FILE` and `embedkit rm NAME`
with messages that show the store's absolute path.
"""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

import embedkit as ek
import embedkit.cli as cli


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(30, 5)).astype(np.float32)
    model = ek.AutoEncoder(dim=3, hidden=(8,), epochs=2, device="cpu")
    model.fit(X, show_progress=False)
    return model


@pytest.fixture
def run(monkeypatch, capsys):
    if "embedkit.cli.export" not in cli._AREAS:  # until the lead registers the module
        monkeypatch.setattr(cli, "_AREAS", (*cli._AREAS, "embedkit.cli.export"))

    def _run(*argv):
        code = cli.main([str(a) for a in argv])
        res = capsys.readouterr()
        return code, res.out, res.err
    return _run


def test_save_with_a_name_writes_a_store_entry(tmp_path, fitted, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBEDKIT_STORE", str(tmp_path / "default"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        where = fitted.save("ae")
    store = ek.Store(tmp_path / "default")
    assert where == store.path("ae") and store.exists("ae")
    meta = store.info("ae")["meta"]
    assert meta["trainer"] == "AutoEncoder" and len(meta["loss_history"]) == 2
    assert not (tmp_path / "ae.npz").exists()
    back = ek.AutoEncoder.load("ae")
    np.testing.assert_allclose(back.embeddings_.vectors, fitted.embeddings_.vectors, atol=1e-6)
    # a second save of the name is refused with the absolute store path, unless overwrite=True
    with pytest.raises(ek.InputError, match=str(tmp_path / "default")):
        fitted.save("ae")
    assert fitted.save("ae", overwrite=True) == where


def test_save_with_a_given_store(tmp_path, fitted):
    store = ek.Store(tmp_path / "s")
    fitted.save("m", store)
    assert ek.AutoEncoder.load("m", store).loss_history_ == fitted.loss_history_
    assert ek.AutoEncoder.load("m", tmp_path / "s").loss_history_ == fitted.loss_history_
    with pytest.raises(ek.InputError, match="not a file path"):
        fitted.save(str(tmp_path / "x.npz"), store)


def test_save_with_a_path_writes_a_file(tmp_path, fitted, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBEDKIT_STORE", str(tmp_path / "default"))
    assert fitted.save("m.npz") == tmp_path.joinpath("m.npz").relative_to(tmp_path)
    assert fitted.save(tmp_path / "p") == tmp_path / "p.npz"
    assert fitted.save(str(tmp_path / "q")) == tmp_path / "q.npz"
    assert not (tmp_path / "default").exists()
    assert ek.AutoEncoder.load(str(tmp_path / "q")).dim == 3  # the parameter
    # a name that is in no store but is a file here loads the file (files saved before keep loading)
    assert ek.AutoEncoder.load("m").dim == 3


def test_load_of_a_missing_name_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EMBEDKIT_STORE", str(tmp_path / "nowhere"))
    with pytest.raises(ek.StoreError) as err:
        ek.AutoEncoder.load("ghost")
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "does not exist" in msg and "ghost.npz" in msg


def test_export_formats(tmp_path, fitted, run):
    store = tmp_path / "s"
    fitted.save("ae", ek.Store(store))
    emb = ek.Store(store).load("ae").to_embeddings()
    code, out, err = run("--store", store, "export", "ae", "--format", "word2vec", "--out", tmp_path / "v.txt")
    assert code == 0, err
    assert f"wrote 30 vectors of dim {emb.dim}" in out
    back = ek.Embeddings.load_word2vec_format(tmp_path / "v.txt")
    assert back.keys == emb.keys
    np.testing.assert_allclose(back.vectors, emb.vectors, atol=1e-5)
    # format from the suffix; --output is PecanPy's spelling
    assert run("--store", store, "export", "ae", "--output", tmp_path / "v.npz")[0] == 0
    np.testing.assert_array_equal(ek.Embeddings.load(tmp_path / "v.npz").vectors, emb.vectors)
    assert run("--store", store, "export", "ae", "--out", tmp_path / "v.csv")[0] == 0
    rows = list(csv.reader(open(tmp_path / "v.csv", encoding="utf-8")))
    assert rows[0] == ["key", *(f"d{j}" for j in range(emb.dim))] and len(rows) == 31
    np.testing.assert_allclose(np.array(rows[1][1:], dtype=np.float32), emb.vectors[0])
    assert run("--store", store, "export", "ae", "--format", "model", "--out", tmp_path / "model.npz")[0] == 0
    assert ek.AutoEncoder.load(tmp_path / "model.npz").loss_history_ == fitted.loss_history_
    # never replaces a file silently; bad folders and suffixes are one line
    code, _, err = run("--store", store, "export", "ae", "--out", tmp_path / "v.csv")
    assert code == 1 and "--force" in err
    assert run("--store", store, "export", "ae", "--out", tmp_path / "v.csv", "--force")[0] == 0
    code, _, err = run("--store", store, "export", "ae", "--out", tmp_path / "no" / "v.csv")
    assert code == 1 and "does not exist" in err
    code, _, err = run("--store", store, "export", "ae", "--out", tmp_path / "v.dat")
    assert code == 1 and "--format" in err and err.count("\n") == 1


def test_rm_and_missing_names(tmp_path, fitted, run):
    store = tmp_path / "s"
    fitted.save("ae", ek.Store(store))
    fitted.save("ae2", ek.Store(store))
    code, _, err = run("--store", store, "rm", "ae", "aee")  # one wrong name: nothing deleted
    assert code == 1 and "'aee'" in err and str(store.resolve()) in err and "did you mean" in err
    assert ek.Store(store).names() == ["ae", "ae2"]
    code, out, err = run("--store", store, "rm", "ae", "ae2")
    assert code == 0, err
    assert f"removed 'ae' from the store {store.resolve()}" in out
    assert ek.Store(store).names() == []
    code, _, err = run("--store", tmp_path / "missing", "export", "x", "--out", tmp_path / "x.csv")
    assert code == 1 and str((tmp_path / "missing").resolve()) in err and "does not exist" in err


def test_demo_ends_with_the_absolute_store_path(tmp_path, run, monkeypatch):
    import embedkit.cli.demo as demo

    monkeypatch.setattr(demo, "_DEMO_AREAS", ())  # the closing lines only: no training here
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EMBEDKIT_STORE", raising=False)
    code, out, _ = run("demo")
    assert code == 0
    assert f"indexes in the store {tmp_path / 'indexes'}: none" in out
    assert "embedkit query NAME KEY" in out and "embedkit plot NAME --out map.png" in out
    code, out, _ = run("--store", "elsewhere", "demo")
    assert f"embedkit --store {tmp_path / 'elsewhere'} query" in out


def test_from_store_and_load_model_say_where_the_store_is(tmp_path):
    missing = tmp_path / "not-here"
    for call in (lambda: ek.AutoEncoder.from_store("x", missing), lambda: ek.load_model("x", missing)):
        with pytest.raises(ek.StoreError, match="no index named 'x'") as err:
            call()
        assert str(missing.resolve()) in str(err.value) and "does not exist" in str(err.value)
