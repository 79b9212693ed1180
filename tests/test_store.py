import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import embedkit as ek
from embedkit.cli import main
from embedkit.store import Store


def small_index(n=5, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    idx = ek.VectorIndex(dim)
    idx.add([f"k{i}" for i in range(n)], rng.normal(size=(n, dim)))
    return idx


def test_store_root_from_env_and_argument(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDKIT_STORE", str(tmp_path / "env"))
    assert Store().root == tmp_path / "env"
    assert Store(tmp_path / "arg").root == tmp_path / "arg"
    monkeypatch.delenv("EMBEDKIT_STORE")
    assert str(Store().root) == "indexes"


def test_store_save_load_list_delete(tmp_path):
    store = Store(tmp_path)
    store.save("one", small_index(), meta={"trainer": "X"})
    store.save("two", small_index(7))
    assert store.names() == ["one", "two"]
    assert len(store.load("two")) == 7
    assert store.info("one")["meta"]["trainer"] == "X"
    with pytest.raises(ValueError, match="already exists"):
        store.save("one", small_index())
    store.save("one", small_index(9), overwrite=True)
    assert store.info("one")["count"] == 9
    store.delete("one")
    assert store.names() == ["two"]
    with pytest.raises(ek.StoreError, match="no index named 'one'.*indexes: two"):
        store.load("one")


@pytest.mark.parametrize("name", ["../x", "a/b", "", ".hidden", "..", "a" * 200, "x\n"])
def test_names_cannot_escape_the_store(tmp_path, name):
    with pytest.raises(ValueError, match="is not allowed"):
        Store(tmp_path).path(name)


KILL_SCRIPT = textwrap.dedent("""
    import sys, numpy as np
    import embedkit as ek
    path, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(n)
    idx = ek.VectorIndex(64, kind="flat")
    idx.add([f"v{n}-{i}" for i in range(n)], rng.normal(size=(n, 64)))
    print("ready", flush=True)
    while True:
        idx.save(path)
""")


def test_killed_during_save_leaves_a_loadable_copy(tmp_path):
    path = tmp_path / "ix"
    small_index().save(path)
    before = set(ek.VectorIndex.load(path).keys)
    script = tmp_path / "saver.py"
    script.write_text(KILL_SCRIPT)
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    for trial, delay in enumerate([0.05, 0.2, 0.4, 0.7, 1.0]):
        proc = subprocess.Popen([sys.executable, str(script), str(path), str(20000 + trial)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        back = ek.VectorIndex.load(path)  # never damaged: the old copy or a complete new one
        keys = set(back.keys)
        assert keys == before or (len(keys) == 20000 + trial or len(keys) in {20000 + t for t in range(trial + 1)})
        before = keys
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".ix")]
    ek.VectorIndex.load(path).save(path)  # the next save cleans up what a crash left
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".ix.old")], leftovers


def test_import_order_torch_and_faiss():
    """torch and faiss each bring OpenMP (FAISS issues #3401, #2499): both orders must work."""
    code = textwrap.dedent("""
        import {first}, {second}
        import numpy as np, torch, faiss
        x = np.random.default_rng(0).normal(size=(2000, 32)).astype('float32')
        idx = faiss.IndexFlatIP(32); idx.add(x)
        D, I = idx.search(x[:100], 5)
        assert (I[:, 0] >= 0).all()
        a = torch.randn(300, 300); (a @ a).sum().item()
        print("ok")
    """)
    for first, second in (("torch", "faiss"), ("faiss", "torch")):
        res = subprocess.run([sys.executable, "-c", code.format(first=first, second=second)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr[-500:]


# ------------------------------------------------------------------- CLI
def run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_index_build_query_list_info(tmp_path, capsys):
    emb = ek.Embeddings(["cat", "dog", "car", "bus"], [[1, 0.1], [0.9, 0.2], [0, 1], [0.1, 0.9]])
    vec = tmp_path / "v.txt"
    emb.save_word2vec_format(vec)
    store = str(tmp_path / "store")
    code, out, err = run(["--store", store, "index", "build", str(vec), "--name", "pets"], capsys)
    assert code == 0, err
    assert "indexed 4 vectors" in out
    code, out, _ = run(["query", "--store", store, "pets", "cat", "-k", "1"], capsys)
    assert code == 0 and out.split() [:2] == ["cat", "dog"]
    code, out, _ = run(["--store", store, "query", "pets", "car", "--json", "-k", "2"], capsys)
    import json

    assert [n for n, _ in json.loads(out)["car"]] == ["bus", "dog"]
    code, out, _ = run(["--store", store, "list"], capsys)
    assert "pets" in out and "4" in out
    code, out, _ = run(["--store", store, "info", "pets"], capsys)
    assert "count:    4" in out
    # an .npz works too, and a binary word2vec file
    emb.save(tmp_path / "v.npz")
    assert run(["--store", store, "index", "build", str(tmp_path / "v.npz"), "--name", "npz", "--metric", "l2",
                "--kind", "flat"], capsys)[0] == 0
    emb.save_word2vec_format(tmp_path / "v.bin", binary=True)
    assert run(["--store", store, "index", "build", str(tmp_path / "v.bin"), "--name", "bin"], capsys)[0] == 0


@pytest.mark.parametrize("args, message", [
    (["query", "nope", "x"], "no index named 'nope'"),
    (["query", "pets", "zebra"], "key 'zebra' is not in index 'pets'"),
    (["query", "pets", "cat", "-k", "0"], "-k must be >= 1"),
    (["index", "build", "missing.txt", "--name", "x"], "missing.txt: no such file"),
    (["index", "build", "bad.txt", "--name", "x"], "bad.txt:2: expected a word and 2 numbers"),
    (["index", "build", "v.txt", "--name", "pets"], "already exists"),
    (["index", "build", "v.txt", "--name", "../escape"], "is not allowed"),
    (["index", "build", "v.txt", "--name", "x", "--metric", "dot"], "invalid choice: 'dot'"),
    (["info", "nope"], "no index named 'nope'"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_bad_input_one_line_nonzero(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    ek.Embeddings(["cat", "dog"], [[1, 0], [0, 1]]).save_word2vec_format(tmp_path / "v.txt")
    (tmp_path / "bad.txt").write_text("2 2\ncat 1\ndog 1 2\n")
    store = str(tmp_path / "store")
    assert main(["--store", store, "index", "build", "v.txt", "--name", "pets"]) == 0
    capsys.readouterr()
    code, out, err = run(["--store", store, *args], capsys)
    assert code != 0
    assert message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_help_everywhere(capsys):
    for args in (["--help"], ["index", "build", "--help"], ["query", "--help"], ["train", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_cli_demo_runs(tmp_path, capsys):
    code, out, err = run(["--store", str(tmp_path), "demo", "--no-progress"], capsys)
    assert code == 0, err
    assert Store(tmp_path).names()


def test_store_load_replays_the_service_journal(tmp_path):
    """Writes the HTTP service journalled (then crashed before compacting) are seen by Store.load."""
    import json

    store = Store(tmp_path)
    store.save("ix", small_index())
    with open(tmp_path / "ix" / "journal.jsonl", "w") as fh:
        fh.write(json.dumps({"op": "upsert", "keys": ["new"], "vectors": [[1.0, 2.0, 3.0]]}) + "\n")
        fh.write(json.dumps({"op": "remove", "keys": ["k0"]}) + "\n")
        fh.write('{"op": "upsert", "keys": ["torn"')  # an append that never finished
    idx = store.load("ix")
    assert "new" in idx and "k0" not in idx and "torn" not in idx


def test_store_save_names_the_store_folder_it_cannot_create(tmp_path, monkeypatch):
    """A store under a read-only folder or under a file: one StoreError line naming the store folder and
    the fix (was the raw "[Errno 30] Read-only file system: 'rodir/sub'" of the lock's mkdir)."""
    import errno
    from pathlib import Path

    from embedkit.errors import StoreError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(StoreError, match=r"afile is a file, not a folder; nothing was saved; pass a writable folder"):
        Store(tmp_path / "afile" / "sub").save("x", small_index())
    real = Path.mkdir

    def read_only(self, *a, **k):
        if str(self).startswith(str(tmp_path / "rodir")):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(StoreError) as info:
        Store(tmp_path / "rodir" / "sub" / "store").save("x", small_index())
    msg = str(info.value)
    assert "\n" not in msg and "Errno" not in msg and f"cannot create the store folder {tmp_path / 'rodir'}" in msg
    assert f"(Read-only file system: {tmp_path / 'rodir'}" in msg and "--store DIR" in msg


def test_store_entries_check_files_and_show_unfinished_folders(tmp_path):
    from embedkit.errors import StoreError

    store = Store(tmp_path)
    store.save("ok", small_index(), extras={"model": {"w": np.ones(3)}})
    store.save("cut", small_index())
    os.truncate(tmp_path / "cut" / "vectors.npy", 5)
    store.save("half", small_index())
    (tmp_path / "half" / "manifest.json").unlink()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("not an index")
    entries = {e["name"]: e for e in store.entries()}
    assert sorted(entries) == ["cut", "half", "ok"]
    assert not entries["ok"]["damaged"] and entries["ok"]["manifest"]["count"] == 5
    assert entries["cut"]["error"].startswith("vectors.npy is truncated or altered (5 bytes")
    assert entries["half"]["error"].startswith("no manifest.json")
    assert store.unfinished("half") and not store.unfinished("notes") and not store.unfinished("ok")
    with pytest.raises(StoreError, match="is incomplete: its folder has no manifest.json"):
        store.load("half")
    store.delete("half")
    assert not (tmp_path / "half").exists() and (tmp_path / "notes" / "todo.txt").exists()
    with pytest.raises(StoreError, match="no index named 'notes'"):
        store.delete("notes")
    (tmp_path / "ok" / "extra.model.npz").unlink()
    with pytest.raises(StoreError, match=r"index 'ok' in the store .*: its model file extra.model.npz is missing; "
                                         "restore it from a backup or retrain"):
        store.load_extra("ok", "model")
    with pytest.raises(StoreError, match="has no extra 'users'"):
        store.load_extra("ok", "users")
