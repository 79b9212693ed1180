"""CLI audit: bad input gets one line naming the problem and the fix, and loses nothing.

Deep filters, serve's numeric options, --store paths (missing, a file, read-only), unknown options of a
sub-command, export of keys with whitespace, --anomaly over an existing file, options that do nothing,
damaged store entries (files, manifest, model file) in list / info / rm / export / --update."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import IgnoredParameterWarning, InputError
from embedkit.store import Store

DEEP = '{"a":' * 2000 + "1" + "}" * 2000


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def store(tmp_path):
    emb = ek.Embeddings([f"w{i}" for i in range(60)], np.random.default_rng(0).normal(size=(60, 4)))
    s = Store(tmp_path / "st")
    s.save("good", emb.to_index())
    return s


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(f"w{j}" for j in rng.integers(0, 30, 20)) for _ in range(200)) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def trained(store, corpus, run):
    """A word2vec entry 'tw' with its model beside the vectors (trained in about a second)."""
    code, _, err = run("--store", store.root, "train", "word2vec", corpus, "--name", "tw", "--dim", "4", "--epochs",
                       "1", "--min-count", "1", "--workers", "1", "--no-progress")
    assert code == 0, err
    return store


# ------------------------------------------------------------------ 1. deep filters
def test_deeply_nested_filter_of_query_and_recommend_is_one_line(store, tmp_path, run):
    code, _, err = run("--store", store.root, "query", "good", "w1", "--filter", DEEP)
    assert code == 1 and "filter: nested more than 100 levels deep" in one_line(err) and "Recursion" not in err
    model = ek.MatrixFactorization(method="als", dim=4, epochs=2, seed=0)
    model.fit(ek.Interactions.from_arrays([f"u{i % 5}" for i in range(30)], [f"i{i % 7}" for i in range(30)]),
              show_progress=False)
    model.to_store("mf", store)
    code, _, err = run("--store", store.root, "recommend", "mf", "u1", "--filter", DEEP)
    assert code == 1 and "--filter: nested more than 100 levels deep" in one_line(err)
    code, out, err = run("--store", store.root, "recommend", "mf", "u1", "--filter", '{"$key": {"$nin": ["i1"]}}')
    assert code == 0 and "i1\t" not in out, err


# ------------------------------------------------------------------ 2. serve's numbers
@pytest.mark.parametrize("argv, words", [
    (["--max-body-mb", "nan"], "--max-body-mb must be a finite number > 0 (MiB); got nan"),
    (["--max-body-mb", "inf"], "--max-body-mb must be a finite number > 0 (MiB); got inf"),
    (["--max-body-mb", "0"], "--max-body-mb must be a finite number > 0"),
    (["--header-timeout", "nan"], "--header-timeout must be a finite number of seconds in (0, 3600]; got nan"),
    (["--header-timeout", "inf"], "--header-timeout must be a finite number of seconds"),
])
def test_serve_refuses_numbers_that_are_not_finite(store, run, argv, words):
    code, _, err = run("--store", store.root, "serve", *argv)
    assert code == 1 and words in one_line(err)


# ------------------------------------------------------------------ 3. --store paths
def test_serve_says_the_store_folder_does_not_exist(tmp_path, run, monkeypatch):
    import uvicorn

    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)
    code, out, err = run("--store", tmp_path / "nowhere", "serve", "--port", "0")
    assert code == 0, err
    assert "serving 0 index(es)" in out and "the store folder does not exist yet" in out.splitlines()[0]
    (tmp_path / "afile").write_text("x")
    code, _, err = run("--store", tmp_path / "afile", "serve", "--port", "0")
    assert code == 1 and "is a file, not a folder" in one_line(err)


def test_a_file_given_as_the_store_is_said_to_be_a_file(tmp_path, corpus, run, monkeypatch):
    monkeypatch.setattr(ek.Word2Vec, "fit", lambda *a, **k: pytest.fail("trained into a file"))
    path = tmp_path / "afile"
    path.write_text("not a store")
    code, _, err = run("--store", path, "list")
    assert code == 1 and f"the store path {path} is a file, not a folder" in one_line(err) and "not exist" not in err
    code, _, err = run("--store", path, "query", "x", "y")
    assert code == 1 and "is a file, not a folder" in one_line(err)
    code, _, err = run("--store", path, "train", "word2vec", corpus, "--name", "x")
    assert code == 1 and "is a file, not a folder" in one_line(err) and "Errno" not in err
    code, _, err = run("--store", path / "sub" / "st", "train", "word2vec", corpus, "--name", "x")
    assert code == 1 and f"{path} is a file, not a folder" in one_line(err) and "Errno" not in err
    assert path.read_text() == "not a store"


def test_a_read_only_store_parent_is_named_before_training(tmp_path, corpus, run, monkeypatch):
    """`--store rodir/sub/store train ...` on a read-only file system: the store folder and the fix, before
    any training (was "[Errno 30] Read-only file system: 'rodir/sub'" after it)."""
    rodir = tmp_path / "rodir"
    rodir.mkdir()
    real = os.statvfs

    class ReadOnly:
        def __init__(self, st):
            self.f_flag = st.f_flag | os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda p: ReadOnly(real(p)) if str(p) == str(rodir) else real(p))
    monkeypatch.setattr(ek.Word2Vec, "fit", lambda *a, **k: pytest.fail("trained before the store check"))
    target = rodir / "sub" / "store"
    code, _, err = run("--store", target, "train", "word2vec", corpus, "--name", "x")
    line = one_line(err)
    assert code == 1 and f"cannot create the store folder {target}: {rodir} is on a read-only file system" in line
    assert "--store DIR" in line and "Errno" not in line


# ------------------------------------------------------------------ 4. unknown options
def test_an_unknown_option_points_at_the_sub_command_and_a_close_option(run):
    code, _, err = run("train", "word2vec", "f", "--name", "x", "--dimm", "8")
    assert code == 2 and one_line(err) == ("error: embedkit train word2vec: unrecognized arguments: --dimm 8; did you "
                                           "mean --dim? (see 'embedkit train word2vec --help')")
    code, _, err = run("query", "x", "y", "--jsn")
    assert code == 2 and "embedkit query: unrecognized arguments: --jsn; did you mean --json?" in one_line(err)
    code, _, err = run("index", "build", "v.npz", "--name", "x", "--zzzzzz")
    assert code == 2 and one_line(err) == ("error: embedkit index build: unrecognized arguments: --zzzzzz "
                                           "(see 'embedkit index build --help')")


# ------------------------------------------------------------------ 5. export of keys with whitespace
def test_export_word2vec_of_keys_with_whitespace_names_the_cli_option(tmp_path, run):
    s = Store(tmp_path / "st")
    s.save("ws", ek.Embeddings(["a b", "c"], np.random.default_rng(0).normal(size=(2, 3))).to_index())
    code, _, err = run("--store", s.root, "export", "ws", "--out", tmp_path / "x.txt")
    line = one_line(err)
    assert code == 1 and "key 'a b'" in line and "--format npz" in line and "Embeddings.save" not in line
    assert not (tmp_path / "x.txt").exists()
    code, _, err = run("--store", s.root, "export", "ws", "--out", tmp_path / "x.npz", "--format", "npz")
    assert code == 0, err


# ------------------------------------------------------------------ 6. --anomaly over an existing file
def test_anomaly_never_replaces_a_file_without_force(tmp_path, store, run, monkeypatch):
    table = tmp_path / "X.npy"
    np.save(table, np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32))
    other = tmp_path / "notes.csv"
    other.write_text("precious\n")

    def stop(*a, **k):
        raise InputError("reached training")

    monkeypatch.setattr(ek.AutoEncoder, "fit", stop)
    argv = ("--store", store.root, "train", "autoencoder", table, "--name", "ae", "--dim", "2", "--anomaly", other)
    code, out, err = run(*argv)
    assert code == 1 and one_line(err) == f"error: --anomaly {other}: the file exists; pass --force to replace it"
    assert other.read_text() == "precious\n" and out == ""
    code, _, err = run(*argv, "--force")
    assert code == 1 and "reached training" in err  # --force passes the check


# ------------------------------------------------------------------ 7. options that do nothing
def test_new_nodes_only_without_update_is_refused_before_training(tmp_path, run, monkeypatch):
    monkeypatch.setattr(ek.Node2Vec, "fit", lambda *a, **k: pytest.fail("trained"))
    edges = tmp_path / "edges.txt"
    edges.write_text("a b\nb c\n", encoding="utf-8")
    code, _, err = run("--store", tmp_path / "st", "train", "node2vec", edges, "--name", "g", "--new-nodes-only")
    assert code == 1 and "--new-nodes-only works with --update NAME" in one_line(err)


@pytest.mark.parametrize("extra, words", [
    (["--item-categorical", "genre"], "--item-categorical names columns of --item-features ITEMS.csv, which is not given"),
    (["--user-tags", "a", "--user-numeric", "b"], "--user-tags and --user-numeric name columns of --user-features"),
    (["--loss", "warp"], "--loss warp is the HybridMF loss, used with --item-features/--user-features only; ignored"),
])
def test_mf_side_options_without_features_warn(tmp_path, run, monkeypatch, extra, words):
    def stop(*a, **k):
        raise InputError("reached training")

    monkeypatch.setattr(ek.MatrixFactorization, "fit", stop)
    csv = tmp_path / "i.csv"
    csv.write_text("user,item\nu1,i1\nu2,i2\n", encoding="utf-8")
    with pytest.warns(IgnoredParameterWarning, match=words):
        code, _, err = run("--store", tmp_path / "st", "train", "mf", csv, "--name", "m", *extra)
    assert code == 1 and "reached training" in err


def test_query_mul_of_one_key_without_minus_warns_and_several_keys_stay_one_query(store, run):
    _, plain, _ = run("--store", store.root, "query", "good", "w1")
    with pytest.warns(IgnoredParameterWarning, match="with one KEY it ranks like a plain search"):
        code, out, err = run("--store", store.root, "query", "good", "w1", "--mul")
    assert code == 0 and out == plain, err
    code, out, _ = run("--store", store.root, "query", "good", "w1", "w2", "--mul", "--json")  # one combined query
    assert code == 0 and list(json.loads(out)) == ["w1 w2"]
    code, out, _ = run("--store", store.root, "query", "good", "w1", "--minus", "w2", "--mul")
    assert code == 0 and out.startswith("w1 - w2\n")


def test_export_binary_of_another_format_warns(store, tmp_path, run):
    with pytest.warns(IgnoredParameterWarning, match="--binary applies to --format word2vec only; ignored for --format csv"):
        code, _, err = run("--store", store.root, "export", "good", "--out", tmp_path / "x.csv", "--binary")
    assert code == 0 and (tmp_path / "x.csv").read_text().startswith("key,d0"), err


def test_the_warning_is_one_line_on_stderr(store):
    env = dict(os.environ, EMBEDKIT_STORE=str(store.root), OMP_WAIT_POLICY="PASSIVE")
    env.pop("EMBEDKIT_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "embedkit", "query", "good", "w1", "--mul", "-k", "1"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0 and proc.stderr.startswith("warning: --mul combines several KEYs"), proc.stderr
    assert proc.stderr.count("\n") == 1 and ".py:" not in proc.stderr


def test_fasttext_min_n_above_max_n_is_refused(tmp_path, corpus, run, monkeypatch):
    def stop(*a, **k):
        raise InputError("reached training")

    monkeypatch.setattr(ek.FastText, "fit", stop)
    base = ("--store", tmp_path / "st", "train", "fasttext", corpus, "--name", "ft")
    code, _, err = run(*base, "--min-n", "6", "--max-n", "3")
    line = one_line(err)
    assert code == 1 and "--min-n 6 is greater than --max-n 3" in line and "1 <= --min-n <= --max-n" in line
    for ok in (["--min-n", "3", "--max-n", "3"], ["--max-n", "0"]):  # equal, and 0: n-grams off
        code, _, err = run(*base, *ok)
        assert code == 1 and "reached training" in err


def test_plot_labels_that_are_no_labels_file_name_file_and_line(store, corpus, tmp_path, run):
    code, _, err = run("--store", store.root, "plot", "good", "--labels", corpus, "--out", tmp_path / "m.png")
    line = one_line(err)
    assert code == 1 and line.startswith(f"error: {corpus}:") and "give each key one label" in line
    binary = tmp_path / "v.npy"
    np.save(binary, np.arange(50.0))
    code, _, err = run("--store", store.root, "plot", "good", "--labels", binary, "--out", tmp_path / "m.png")
    assert code == 1 and one_line(err).startswith(f"error: {binary}:1: ") and "not UTF-8 text" in err
    labels = tmp_path / "labels.txt"
    labels.write_text("w1\tleft side\nw2 right\nw1\tleft side\n", encoding="utf-8")
    code, out, err = run("--store", store.root, "plot", "good", "--labels", labels, "--out", tmp_path / "m.png")
    assert code == 0 and "2 labelled" in out, err
    assert not (tmp_path / "m.png").stat().st_size == 0


# ------------------------------------------------------------------ 8. damaged files
@pytest.mark.parametrize("fname", ["index.faiss", "vectors.npy", "keys.json", "ids.npy", "tombstones.npy"])
@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_list_and_info_report_a_damaged_file(store, run, fname, how):
    store.save("bad", store.load("good"))
    path = store.root / "bad" / fname
    assert path.exists()
    if how == "delete":
        path.unlink()
        reason = f"{fname} is missing"
    else:
        os.truncate(path, 10)
        reason = f"{fname} is truncated or altered (10 bytes, the manifest says"
    code, out, err = run("--store", store.root, "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert f"damaged: {reason}" in lines["bad"] and "damaged" not in lines["good"]
    code, out, err = run("--store", store.root, "info", "bad")
    line = one_line(err)
    assert code == 1 and f"index 'bad' in the store {store.root.resolve()} is damaged: {reason}" in line
    assert "restore it from a backup or rebuild it" in line and "count:" in out  # what it was, then the reason
    code, out, _ = run("--store", store.root, "info", "bad", "--json")
    assert code == 1 and reason in json.loads(out)["damaged"]
    code, _, err = run("--store", store.root, "info", "good")
    assert code == 0 and err == ""


# ------------------------------------------------------------------ 9. a folder without a manifest
def test_a_folder_without_manifest_is_listed_and_removable(store, run):
    store.save("half", store.load("good"))
    (store.root / "half" / "manifest.json").unlink()
    code, out, err = run("--store", store.root, "list")
    assert code == 0, err
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "damaged: no manifest.json" in lines["half"] and "embedkit rm half" in lines["half"]
    code, _, err = run("--store", store.root, "query", "half", "w1")
    assert code == 1 and "index 'half'" in one_line(err) and "no manifest.json" in err and "embedkit rm half" in err
    code, out, err = run("--store", store.root, "rm", "half")
    assert code == 0 and "removed 'half'" in out, err
    assert not (store.root / "half").exists() and store.names() == ["good"]


def test_rm_never_removes_a_folder_that_is_no_index(store, tmp_path, run):
    mine = store.root / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "vectors.npy").write_bytes(b"x")
    code, out, _ = run("--store", store.root, "list")
    assert "mine" not in out
    code, _, err = run("--store", store.root, "rm", "mine")
    assert code == 1 and "no index named 'mine'" in one_line(err)
    assert (mine / "notes.txt").read_text() == "keep me"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "vectors.npy").write_bytes(b"x")
    (store.root / "link").symlink_to(outside)
    for name in ("link", "../outside"):
        code, _, err = run("--store", store.root, "rm", name)
        assert code == 1 and err.count("\n") == 1
    assert (outside / "vectors.npy").exists()
    # an empty folder, or one holding only some index-file names (the user's own files), is no index either
    (store.root / "empty").mkdir()
    lookalike = store.root / "lookalike"
    lookalike.mkdir()
    (lookalike / "vectors.npy").write_text("secret")
    (lookalike / "keys.json").write_text("{}")
    code, out, _ = run("--store", store.root, "list")
    assert "empty" not in out and "lookalike" not in out
    for name in ("empty", "lookalike"):
        code, _, err = run("--store", store.root, "rm", name)
        assert code == 1 and f"no index named {name!r}" in one_line(err)
    assert (lookalike / "vectors.npy").read_text() == "secret" and (store.root / "empty").is_dir()


def test_a_broken_link_given_as_the_store_is_said_to_be_one(tmp_path, corpus, run):
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    code, _, err = run("--store", tmp_path / "dangling", "train", "word2vec", corpus, "--name", "w", "--min-count", "1")
    assert code == 1 and "is a broken symbolic link" in one_line(err) and "dangling" in err


# ------------------------------------------------------------------ 10. the model file
@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_a_missing_or_damaged_model_file_is_said_as_such(trained, corpus, tmp_path, run, how):
    model = trained.root / "tw" / "extra.model.npz"
    if how == "delete":
        model.unlink()
        state = "is missing"
    else:
        os.truncate(model, 100)
        state = "is truncated or altered (100 bytes"
    for argv in (["export", "tw", "--format", "model", "--out", tmp_path / "m.npz"],
                 ["train", "word2vec", corpus, "--update", "tw", "--name", "tw2", "--min-count", "1"]):
        code, _, err = run("--store", trained.root, *argv)
        line = one_line(err)
        assert code == 1 and f"its model file extra.model.npz {state}" in line, line
        assert "restore it from a backup or retrain" in line and "vectors only" not in line
    assert not (tmp_path / "m.npz").exists() and not trained.exists("tw2")
    code, _, err = run("--store", trained.root, "export", "good", "--format", "model", "--out", tmp_path / "m.npz")
    assert code == 1 and "holds vectors only" in one_line(err)  # no model listed: still said so
    with pytest.raises(ek.StoreError, match=re.escape(f"its model file extra.model.npz {state}")):  # the library too
        ek.Word2Vec.from_store("tw", trained)
    with pytest.raises(ek.StoreError, match="was not written by Word2Vec"):
        ek.Word2Vec.from_store("good", trained)
