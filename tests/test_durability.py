"""The store, the journal and the loaders under faults: a full disk, killed writers, damaged
journals and manifests, racing readers and writers, hostile input files (issue 12)."""

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError, ParseError, StoreError
from embedkit.index import _persist
from embedkit.serve._registry import Registry
from embedkit.store import Store
from embedkit.store import journal as J

DIM = 4


def make_index(keys, seed=0, kind="flat"):
    rng = np.random.default_rng(seed)
    idx = ek.VectorIndex(DIM, kind=kind)
    idx.add(list(keys), rng.normal(size=(len(keys), DIM)).astype(np.float32) + 0.1)
    return idx


def one_line(exc) -> str:
    text = str(exc)
    assert "\n" not in text and text
    return text


def run_py(code: str, *args, **kw):
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


# ------------------------------------------------------------------ 1. rebuild vs compaction
def test_rebuild_racing_compaction_is_never_undone(tmp_path, monkeypatch):
    """A --force rebuild landing while the service compacts: the rebuild wins, the service
    reloads it (before: the compaction checked the stamp, then saved over the rebuilt copy)."""
    store = Store(tmp_path)
    store.save("ix", make_index(["a", "b", "c"]))
    reg = Registry(Store(tmp_path), compact_every=10**6)
    reg.upsert("ix", ["w1"], [[1, 2, 3, 4]])
    rebuilt = make_index([f"r{i}" for i in range(7)], seed=5)
    real_save = ek.VectorIndex.save
    done = threading.Event()

    def rebuild():
        Store(tmp_path).save("ix", rebuilt, overwrite=True, meta={"rebuild": True})
        done.set()

    def save_during_rebuild(self, path, **kw):
        if threading.current_thread() is not builder and not done.is_set():
            builder.start()
            done.wait(1.0)  # the rebuild lands now unless the compaction holds the writer lock
        return real_save(self, path, **kw)

    builder = threading.Thread(target=rebuild)
    monkeypatch.setattr(ek.VectorIndex, "save", save_during_rebuild)
    reg.compact("ix")
    builder.join(10)
    monkeypatch.undo()
    on_disk = Store(tmp_path).load("ix")
    assert sorted(on_disk.keys) == [f"r{i}" for i in range(7)]
    assert on_disk.meta == {"rebuild": True}
    # the service serves the rebuilt copy and journals later writes onto it
    reg.upsert("ix", ["w2"], [[4, 3, 2, 1]])
    assert sorted(reg.get("ix").index.keys) == sorted([f"r{i}" for i in range(7)] + ["w2"])
    reg.close()
    assert sorted(Store(tmp_path).load("ix").keys) == sorted([f"r{i}" for i in range(7)] + ["w2"])


def test_compaction_never_saves_over_a_replaced_copy(tmp_path):
    store = Store(tmp_path)
    store.save("ix", make_index(["a", "b"]))
    reg = Registry(Store(tmp_path), compact_every=10**6)
    reg.upsert("ix", ["w"], [[1, 1, 1, 1]])
    stale = reg.peek("ix")
    store.save("ix", make_index(["x", "y", "z"], seed=3), overwrite=True)
    assert reg.compact("ix", stale) == 0  # the background compaction of the copy it loaded
    assert reg.peek("ix") is None  # dropped: the next request loads the new copy
    assert sorted(Store(tmp_path).load("ix").keys) == ["x", "y", "z"]
    reg.close()
    assert sorted(Store(tmp_path).load("ix").keys) == ["x", "y", "z"]


LOCK_HOLDER = """
    import sys, time
    from embedkit.store import Store
    with Store(sys.argv[1]).lock("ix"):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
"""


def test_writer_lock_excludes_other_processes(tmp_path):
    Store(tmp_path).save("ix", make_index(["a"]))
    proc = run_py(LOCK_HOLDER, tmp_path, 3)
    try:
        assert proc.stdout.readline().strip() == b"locked"
        with pytest.raises(StoreError, match="another process is writing this index") as info:
            Store(tmp_path).save("ix", make_index(["b"]), overwrite=True, lock_timeout=0.3)
        one_line(info.value)
        assert Store(tmp_path).load("ix").keys == ["a"]  # readers are never blocked
    finally:
        proc.kill()
        proc.wait()
    Store(tmp_path).save("ix", make_index(["b"]), overwrite=True, lock_timeout=5)  # a dead holder's lock is free
    assert Store(tmp_path).load("ix").keys == ["b"]
    assert not (tmp_path / ".ix.lock").exists()


# ------------------------------------------------------------------ 2. journal damage
def journalled_store(tmp_path, n=4):
    store = Store(tmp_path)
    store.save("ix", make_index(["a", "b"]))
    j = J.Journal(store.path("ix"))
    for i in range(n):
        j.append(J.encode_upsert([f"w{i}"], np.full((1, DIM), i + 1, np.float32)))
    j.close()
    return store, store.path("ix") / J.JOURNAL_FILE


def test_journal_lines_carry_sequence_and_checksum(tmp_path):
    store, jpath = journalled_store(tmp_path, 3)
    lines = jpath.read_bytes().splitlines()
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3]
    assert all(b'"crc":"' in x for x in lines)
    assert sorted(store.load("ix").keys) == ["a", "b", "w0", "w1", "w2"]


@pytest.mark.parametrize("damage, where", [
    (lambda d: d.replace(b"[2.0,2.0", b"[2.0,3.0", 1), ":2:"),               # a changed digit
    (lambda d: d.replace(b"\n", b"", 1), ":1:"),                              # two lines merged
    (lambda d: b"".join(d.splitlines(True)[:1] + d.splitlines(True)[2:]), ":2:"),  # a line lost
    (lambda d: d[:-2] + b"X\n", ":4:"),                                       # garbled last line
    (lambda d: b"".join(d.splitlines(True)[1:]), ":1:"),                      # the first line lost
])
def test_damaged_journal_is_refused_and_kept(tmp_path, damage, where):
    store, jpath = journalled_store(tmp_path)
    data = damage(jpath.read_bytes())
    jpath.write_bytes(data)
    with pytest.raises(StoreError, match="journal entry is damaged") as info:
        store.load("ix")
    assert where in one_line(info.value) and "journal is kept" in str(info.value)
    # the service refuses it too, and never compacts the evidence away
    reg = Registry(Store(tmp_path))
    with pytest.raises(StoreError):
        reg.get("ix")
    reg.close()
    assert jpath.read_bytes() == data


def test_journal_last_line_without_newline_is_applied(tmp_path):
    """A complete, verified last entry that lost only its newline was acknowledged: apply it."""
    store, jpath = journalled_store(tmp_path)
    jpath.write_bytes(jpath.read_bytes()[:-1])
    idx = store.load("ix")
    assert "w3" in idx and idx.get_vectors(["w3"])[0].tolist() == [4.0] * DIM


def test_torn_tail_is_ignored_then_cut_before_the_next_append(tmp_path):
    store, jpath = journalled_store(tmp_path, 2)
    full = jpath.read_bytes()
    line = J.encode_line({"seq": 3, **J.encode_upsert(["torn"], np.ones((1, DIM), np.float32))})
    jpath.write_bytes(full + line[:25])  # an append that never finished (never acknowledged)
    index, entries, intact = store.load_journalled("ix")
    assert "torn" not in index and len(entries) == 2 and intact == len(full)
    j = J.Journal(store.path("ix"), intact, len(entries))
    j.append(J.encode_remove(["w0"]))
    j.close()
    assert jpath.read_bytes().startswith(full) and b"torn" not in jpath.read_bytes()
    assert "w0" not in store.load("ix")


def test_journal_payload_is_replayed_only_when_present(tmp_path, monkeypatch):
    store, jpath = journalled_store(tmp_path, 1)
    seen = []
    real = ek.VectorIndex.upsert

    def upsert(self, keys, vectors, payload=None):
        seen.append(payload)
        return real(self, keys, vectors)

    monkeypatch.setattr(ek.VectorIndex, "upsert", upsert)
    j = J.Journal(store.path("ix"), jpath.stat().st_size, 1)
    j.append(J.encode_upsert(["p"], np.ones((1, DIM), np.float32), payload=[{"colour": "red"}]))
    j.close()
    store.load("ix")
    assert seen == [None, [{"colour": "red"}]]


# ------------------------------------------------------------------ 3. exact aside names, read-only reads
def test_recovery_matches_only_its_own_aside_copies(tmp_path):
    store = Store(tmp_path)
    store.save("a.old-v1", make_index(["v1"]))
    # what a crash of a save of "a.old-v1" leaves: its aside copy (a complete index)
    shutil.copytree(tmp_path / "a.old-v1", tmp_path / ".a.old-v1.old-deadbeef")
    assert store.names() == ["a.old-v1"]
    with pytest.raises(StoreError, match="no index named 'a'"):
        store.info("a")
    assert not (tmp_path / "a").exists()
    store.save("a", make_index(["mine"]))  # a writer of "a" recovers only "a"
    assert (tmp_path / ".a.old-v1.old-deadbeef").is_dir()
    assert store.load("a").keys == ["mine"] and store.load("a.old-v1").keys == ["v1"]


def test_read_only_commands_rename_nothing(tmp_path, capsys):
    from embedkit.cli import main

    store = Store(tmp_path)
    store.save("ix", make_index(["a", "b"]))
    os.replace(tmp_path / "ix", tmp_path / ".ix.old-0123abcd")  # a crash between the two renames
    before = sorted(os.listdir(tmp_path))
    assert store.exists("ix") and store.names() == ["ix"] and store.info("ix")["count"] == 2
    assert sorted(store.load("ix").keys) == ["a", "b"]
    assert main(["--store", str(tmp_path), "info", "ix"]) == 0
    assert main(["--store", str(tmp_path), "list"]) == 0
    assert "ix" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == before  # nothing renamed or deleted
    store.save("other", make_index(["z"]))
    assert sorted(os.listdir(tmp_path)) == before + ["other"]
    store.save("ix", make_index(["c"]), overwrite=True)  # the writer of "ix" recovers it
    assert sorted(os.listdir(tmp_path)) == ["ix", "other"]


# ------------------------------------------------------------------ 5. a full disk during an append
@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_failed_append_leaves_the_journal_as_it_was_and_writable(tmp_path, monkeypatch, failing):
    store, jpath = journalled_store(tmp_path, 2)
    j = J.Journal(store.path("ix"), jpath.stat().st_size, 2)
    j.append(J.encode_remove(["a"]))
    before = jpath.read_bytes()
    real_write, real_fsync, real_close = os.write, os.fsync, os.close
    fd = j._fd

    def enospc(*a):
        raise OSError(errno.ENOSPC, "No space left on device")

    def write_half(f, data):
        if f == fd:
            real_write(f, bytes(data[:10]))  # a torn line reaches the file, then the disk is full
            enospc()
        return real_write(f, data)

    def close(f):
        real_close(f)
        if f == fd:
            raise OSError(errno.EIO, "close failed")  # the handle must be dropped all the same

    monkeypatch.setattr(os, "write", write_half if failing == "write" else real_write)
    monkeypatch.setattr(os, "fsync", (lambda f: enospc() if f == fd else real_fsync(f)) if failing == "fsync"
                        else real_fsync)
    monkeypatch.setattr(os, "close", close)
    with pytest.raises(OSError, match="No space left"):
        j.append(J.encode_upsert(["lost"], np.ones((1, DIM), np.float32)))
    monkeypatch.undo()
    assert jpath.read_bytes() == before  # cut back: no torn line
    j.append(J.encode_upsert(["later"], np.ones((1, DIM), np.float32)))  # and still writable
    j.close()
    idx = store.load("ix")
    assert "later" in idx and "lost" not in idx and "a" not in idx


FULL_DISK = """
    import json, resource, signal, sys
    import numpy as np
    import embedkit as ek
    from embedkit.serve._registry import Registry
    from embedkit.store import Store
    from embedkit.store import journal as J
    root = sys.argv[1]
    reg = Registry(Store(root), compact_every=10**6)
    reg.upsert("ix", ["one"], [[1, 1, 1, 1]])
    jpath = Store(root).path("ix") / J.JOURNAL_FILE
    size = jpath.stat().st_size
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 20, hard))  # the disk is full 20 bytes on
    out = {}
    try:
        reg.upsert("ix", ["lost"], [[1, 2, 1, 1]])
        out["full"] = "acknowledged"
    except Exception as exc:
        out["full"] = type(exc).__name__ + ": " + str(exc)
    out["size_after_failure"] = jpath.stat().st_size - size
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
    out["later"] = []
    for i in range(3):
        try:
            reg.upsert("ix", [f"after{i}"], [[1, 1, 2, 1]])
            out["later"].append("ok")
        except Exception as exc:
            out["later"].append(type(exc).__name__ + ": " + str(exc))
    entries, intact = J.read_journal(jpath.parent)
    out["journal"] = [e["keys"][0] for e in entries]
    out["clean"] = intact == jpath.stat().st_size
    print(json.dumps(out), flush=True)
"""


def test_service_after_a_full_disk_keeps_a_clean_writable_journal(tmp_path):
    """A real short write (RLIMIT_FSIZE: the file cannot grow, as on a full disk): the failed append
    leaves no torn line and the next writes succeed (before: a torn line stayed in the journal and
    every later write failed with "I/O operation on closed file" until a restart)."""
    Store(tmp_path).save("ix", make_index(["a"]))
    proc = run_py(FULL_DISK, tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-1500:]
    res = json.loads(out.decode().strip().splitlines()[-1])
    assert res["full"].startswith("StoreError: the write was not saved"), res
    assert res["size_after_failure"] == 0, res
    assert res["later"] == ["ok"] * 3, res
    assert res["journal"] == ["one", "after0", "after1", "after2"] and res["clean"], res
    idx = Store(tmp_path).load("ix")
    assert {"one", "after0", "after2"} <= set(idx.keys) and "lost" not in idx


# ------------------------------------------------------------------ 9. bounded lines in the loaders
def tiny_limit(monkeypatch, n=64):
    import embedkit._io as io

    monkeypatch.setattr(io, "MAX_LINE_BYTES", n, raising=False)


def test_long_line_is_refused_with_file_and_line(tmp_path, monkeypatch):
    tiny_limit(monkeypatch)
    text = tmp_path / "c.txt"
    text.write_text("a b c\nd e\n" + "x " * 100 + "\nlast\n")
    with pytest.raises(ParseError, match=r"c.txt:3: line longer than 64 bytes") as info:
        list(ek.Corpus.from_files(text))
    one_line(info.value)
    csvf = tmp_path / "r.csv"
    csvf.write_text("user,item\n" + "u1,i1\n" * 3 + "u," + "i" * 200 + "\n")
    with pytest.raises(ParseError, match=r"r.csv:5: line longer"):
        ek.Interactions.from_csv(csvf)
    from embedkit.data.features import load_features, load_labels

    feats = tmp_path / "f.csv"
    feats.write_text("1,2\n3,4\n" + ",".join(["1"] * 100) + "\n")
    with pytest.raises(ParseError, match=r"f.csv:3: line longer"):
        load_features(feats)
    labels = tmp_path / "l.txt"
    labels.write_text("a\n" + "b" * 100 + "\n")
    with pytest.raises(ParseError, match=r"l.txt:2: line longer"):
        load_labels(labels)
    # at the limit everything still loads
    (tmp_path / "ok.txt").write_text("a" * 64 + "\nb c\n")
    assert list(ek.Corpus.from_files(tmp_path / "ok.txt")) == [["a" * 64], ["b", "c"]]


@pytest.mark.parametrize("source", ["/dev/zero", "sparse"])
def test_endless_line_does_not_blow_memory(tmp_path, source):
    """/dev/zero or a 1 GB file of one line: refused after the 64 MiB line limit, memory bounded."""
    from embedkit.data.features import load_features

    if source == "sparse":
        path = tmp_path / "big.csv"
        with open(path, "wb") as fh:
            fh.truncate(1 << 30)  # 1 GB, no newline, no disk used
    else:
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        path = "/dev/zero"
    tracemalloc.start()
    try:
        for load in (lambda: load_features(path), lambda: ek.Interactions.from_csv(path),
                     lambda: list(ek.Corpus.from_files(path))):
            with pytest.raises(ParseError, match=":1: line longer than 67108864 bytes"):
                load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20, peak


# ------------------------------------------------------------------ 10. readers and writers racing
def test_readers_racing_saves_see_old_or_new_never_an_alarm(tmp_path):
    store = Store(tmp_path)
    versions = [make_index([f"v{v}-{i}" for i in range(50 + v)], seed=v) for v in range(2)]
    store.save("ix", versions[0])
    wanted = [sorted(v.keys) for v in versions]
    stop = time.monotonic() + 2.0
    errors, loads = [], [0]

    def saver():
        n = 0
        while time.monotonic() < stop:
            Store(tmp_path).save("ix", versions[n % 2], overwrite=True)
            n += 1

    def reader():
        s = Store(tmp_path)
        while time.monotonic() < stop:
            try:
                assert s.info("ix")["count"] in (50, 51)
                assert sorted(s.load("ix").keys) in wanted
                loads[0] += 1
            except Exception as exc:  # noqa: BLE001 - every failure counts
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=saver)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, (len(errors), loads[0], errors[:3])
    assert loads[0] > 5


def test_concurrent_saves_of_one_name_win_or_get_one_line_errors(tmp_path):
    results = []

    def save(i, overwrite):
        try:
            Store(tmp_path).save("ix", make_index([f"s{i}"]), overwrite=overwrite)
            results.append("ok")
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=save, args=(i, False)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count("ok") == 1
    for exc in results:
        if exc != "ok":
            assert isinstance(exc, InputError) and "already exists" in one_line(exc)
    results.clear()
    threads = [threading.Thread(target=save, args=(i, True)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["ok"] * 6  # one after the other, never a raw OSError
    assert len(Store(tmp_path).load("ix")) == 1
    assert sorted(os.listdir(tmp_path)) == ["ix"]


SAVER = """
    import sys, numpy as np
    import embedkit as ek
    from embedkit.store import Store
    n = int(sys.argv[2])
    idx = ek.VectorIndex(8)
    idx.add([f"p{n}-{i}" for i in range(3000)], np.random.default_rng(n).normal(size=(3000, 8)) + 0.1)
    s = Store(sys.argv[1])
    print("ready", flush=True)
    for _ in range(8):
        s.save("ix", idx, overwrite=True)
"""


def test_saves_from_two_processes_never_fail_or_mix(tmp_path):
    Store(tmp_path).save("ix", make_index(["start"]))
    procs = [run_py(SAVER, tmp_path, n) for n in range(2)]
    for p in procs:
        assert p.stdout.readline().strip() == b"ready"
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()[-800:]
    keys = Store(tmp_path).load("ix").keys
    assert len(keys) == 3000 and len({k.split("-")[0] for k in keys}) == 1
    assert sorted(os.listdir(tmp_path)) == ["ix"]


# ------------------------------------------------------------------ 11. manifest schema, FAISS vs manifest
def rewrite_manifest(path, change):
    m = json.loads((path / "manifest.json").read_text())
    change(m)
    (path / "manifest.json").write_text(json.dumps(m))


def set_files(m, value):
    m["files"] = value


@pytest.mark.parametrize("change, message", [
    (lambda m: set_files(m, {}), "does not name"),
    (lambda m: m["files"].pop("vectors.npy"), "does not name vectors.npy"),
    (lambda m: m["files"].pop("index.faiss"), "names no index.faiss"),
    (lambda m: m["files"].update({"evil.npy": m["files"]["ids.npy"]}), "unexpected files evil.npy"),
    (lambda m: m["files"]["ids.npy"].update(bytes="12"), "checksum entry of ids.npy"),
    (lambda m: m.update(format_version="1"), "format_version is '1'"),
    (lambda m: m.update(format_version=True), "format_version is True"),
    (lambda m: m.update(next_id="x"), "next_id is 'x'"),
    (lambda m: m.update(next_id=1), "next_id is 1"),
    (lambda m: m.update(knobs=[1, 2]), "field 'knobs' is list"),
    (lambda m: m.update(knobs={"bogus": 1}), "unknown knob 'bogus'"),
    (lambda m: m["knobs"].update(ef_search="64"), "knob 'ef_search'"),
    (lambda m: m.update(dim="4"), "dim is '4'"),
    (lambda m: m.update(metric="dot"), "metric 'dot'"),
    (lambda m: m.update(meta=[]), "field 'meta' is list"),
    (lambda m: m.update(rebuild_fraction="0.3"), "rebuild_fraction"),
    (lambda m: m.update(extras="model"), "field 'extras' is str"),
])
def test_manifest_is_validated_against_its_schema(tmp_path, change, message):
    make_index(["a", "b", "c"]).save(tmp_path / "ix")
    rewrite_manifest(tmp_path / "ix", change)
    for read in (ek.VectorIndex.read_manifest, ek.VectorIndex.load):
        with pytest.raises(StoreError, match=message) as info:
            read(tmp_path / "ix")
        one_line(info.value)


def replace_faiss(path, findex):
    import faiss

    faiss.write_index(findex, str(path / "index.faiss"))
    rewrite_manifest(path, lambda m: m["files"].update({"index.faiss": {
        "sha256": _persist._sha256(path / "index.faiss"), "bytes": (path / "index.faiss").stat().st_size}}))


@pytest.mark.parametrize("what", ["dim", "ntotal", "metric"])
def test_faiss_index_is_checked_against_the_manifest(tmp_path, what):
    import faiss

    make_index(["a", "b", "c"]).save(tmp_path / "ix")
    rng = np.random.default_rng(0)
    if what == "dim":  # before: search_c read out of bounds
        bad = faiss.IndexFlatIP(2)
        bad.add(rng.normal(size=(3, 2)).astype(np.float32))
    elif what == "ntotal":
        bad = faiss.IndexFlatIP(DIM)
        bad.add(rng.normal(size=(2, DIM)).astype(np.float32))
    else:
        bad = faiss.IndexFlatL2(DIM)
        bad.add(rng.normal(size=(3, DIM)).astype(np.float32))
    replace_faiss(tmp_path / "ix", bad)
    with pytest.raises(StoreError, match={"dim": "dimension 2", "ntotal": "holds 2 vectors",
                                          "metric": "metric"}[what]) as info:
        ek.VectorIndex.load(tmp_path / "ix")
    one_line(info.value)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_faiss_check_accepts_every_kind_after_removals(tmp_path, kind):
    keys = [f"k{i}" for i in range(400)]
    idx = make_index(keys, kind=kind)
    idx.remove(keys[:50])
    idx.upsert(keys[50:60], np.ones((10, DIM), np.float32))
    idx.save(tmp_path / "ix")
    assert len(ek.VectorIndex.load(tmp_path / "ix")) == 350


def test_one_damaged_index_does_not_hide_the_others(tmp_path, capsys):
    from embedkit.cli import main

    store = Store(tmp_path)
    store.save("good", make_index(["a"]))
    store.save("bad", make_index(["b"]))
    rewrite_manifest(tmp_path / "bad", lambda m: m.update(knobs="oops"))
    assert store.names() == ["bad", "good"]
    entries = {e["name"]: e for e in store.entries()}
    assert entries["good"]["damaged"] is False and entries["good"]["manifest"]["count"] == 1
    assert entries["bad"]["damaged"] is True and "knobs" in one_line(entries["bad"]["error"])
    assert main(["--store", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "damaged" in out


# ------------------------------------------------------------------ 13. leftovers of killed writers
KILLED_SAVER = """
    import sys, numpy as np
    import embedkit as ek
    idx = ek.VectorIndex(64)
    idx.add([f"k{i}" for i in range(20000)], np.random.default_rng(0).normal(size=(20000, 64)))
    print("ready", flush=True)
    while True:
        idx.save(sys.argv[1])
"""

LIVE_TMP = """
    import os, sys, time
    from embedkit._io import name_lock
    with name_lock(sys.argv[1] + "/ix"):
        os.mkdir(sys.argv[1] + "/.ix.tmp-abcdef12")
        print("writing", flush=True)
        time.sleep(float(sys.argv[2]))
"""


def test_tmp_leftovers_of_killed_writers_are_removed_but_never_a_live_ones(tmp_path):
    import signal

    make_index(["a"]).save(tmp_path / "ix")
    left = set()
    proc = run_py(KILLED_SAVER, tmp_path / "ix")
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (tmp_path / ".ix.tmp-0badc0de").mkdir()  # what a writer killed inside its save leaves, for sure
    (tmp_path / ".ix.tmp-0badc0de" / "vectors.npy").write_bytes(b"half")
    left |= {n for n in os.listdir(tmp_path) if n.startswith(".ix.tmp-")}
    (tmp_path / ".ix.tmp-keepme").mkdir()  # not a name a writer makes: never touched
    assert ek.VectorIndex.load(tmp_path / "ix")  # loading is read-only
    make_index(["b"]).save(tmp_path / "ix")
    assert sorted(os.listdir(tmp_path)) == [".ix.tmp-keepme", "ix"], left
    # a live writer's temporary copy is never removed: its lock keeps the next writer out
    proc = run_py(LIVE_TMP, tmp_path, 1.5)
    try:
        assert proc.stdout.readline().strip() == b"writing"
        with pytest.raises(StoreError, match="another process is writing"):
            _persist.save_index(make_index(["c"])._storage.state(), tmp_path / "ix", meta={}, lock_timeout=0.3)
        assert (tmp_path / ".ix.tmp-abcdef12").is_dir()
    finally:
        proc.wait(30)
    make_index(["c"]).save(tmp_path / "ix")  # the writer is gone: its leftover goes
    assert not (tmp_path / ".ix.tmp-abcdef12").exists()


def test_stale_tmp_files_of_dead_writers_are_removed(tmp_path):
    from embedkit._io import atomic_write_bytes

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f".v.npz.tmp-{dead.pid}").write_bytes(b"half")  # a writer killed mid-write
    (tmp_path / f".v.npz.tmp-{os.getppid()}").write_bytes(b"live")  # a live process's: kept
    (tmp_path / ".v.npz.tmp-notapid").write_bytes(b"other")  # not a name the writer makes: kept
    atomic_write_bytes(tmp_path / "v.npz", b"new")
    assert sorted(os.listdir(tmp_path)) == sorted([f".v.npz.tmp-{os.getppid()}", ".v.npz.tmp-notapid", "v.npz"])


def test_verified_entry_that_cannot_apply_is_refused_not_skipped(tmp_path):
    store, jpath = journalled_store(tmp_path, 2)
    j = J.Journal(store.path("ix"), jpath.stat().st_size, 2)
    j.append(J.encode_upsert(["wrongdim"], np.ones((1, DIM + 1), np.float32)))  # not from this index
    j.close()
    data = jpath.read_bytes()
    with pytest.raises(StoreError, match="entry 3 cannot be applied") as info:
        store.load("ix")
    assert "journal is kept" in one_line(info.value)
    assert jpath.read_bytes() == data


def test_service_replays_each_journalled_write_once(tmp_path, monkeypatch):
    """Item 8: loading an index with a journal applies each entry exactly once (the service used
    to replay it twice; fixed in 282052c, guarded here at the registry level)."""
    store, jpath = journalled_store(tmp_path, 5)
    calls = []
    real = ek.VectorIndex.upsert
    monkeypatch.setattr(ek.VectorIndex, "upsert", lambda self, *a, **kw: (calls.append(1), real(self, *a, **kw))[1])
    reg = Registry(Store(tmp_path), compact_every=10**6)
    assert len(reg.get("ix").index) == 2 + 5
    assert len(calls) == 5 and reg.get("ix").journal.entries == 5
    reg.close()


def test_registry_lists_damaged_indexes_beside_the_others(tmp_path):
    store = Store(tmp_path)
    store.save("good", make_index(["a"]))
    store.save("bad", make_index(["b"]))
    rewrite_manifest(tmp_path / "bad", lambda m: m.update(format_version="one"))
    listed = {e["name"]: e for e in Registry(store).entries()}
    assert listed["good"]["damaged"] is False and listed["bad"]["damaged"] is True
    assert list(Registry(store, ["good"]).entries()[0]) == ["name", "damaged", "error", "manifest"]
