"""embedkit.distributed: sharding, counted collectives, rank-0 writes, --nproc and torchrun (issue 17, item 1).

Runs real jobs of 2 CPU processes over gloo (each launch ~3-5 s: two torch imports); the trainers' own
distributed behaviour is tested beside each trainer.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import embedkit.distributed as ek_dist
from embedkit.distributed import World, shard, shard_slice
from embedkit.distributed.cli import run_local, strip_nproc
from embedkit.distributed.launch import launch

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "data" / "corpus.txt"
W2V = ["--dim", "8", "--epochs", "1", "--min-count", "2", "--no-progress", "--backend", "gensim", "--workers", "1"]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(EMBEDKIT_NUM_THREADS="1", EMBEDKIT_DIST_TIMEOUT="60", PYTHONPATH=str(ROOT), **extra)
    return env


@pytest.fixture
def job_env(monkeypatch):
    """launch() passes this process's environment on: one torch thread per rank, short collective timeout."""
    for k, v in _env().items():
        monkeypatch.setenv(k, v)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT", "EMBEDKIT_ERROR_FILE"):
        monkeypatch.delenv(k, raising=False)


# ---------------------------------------------------------------------------------------------- no processes
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_shard_slices_cover_every_item_once(size):
    for n in range(0, 13):
        parts = [list(range(n))[shard_slice(n, World(r, size))] for r in range(size)]
        assert sum(parts, []) == list(range(n))  # in order, no gap, no overlap
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert [shard(list(range(n)), World(r, size)) for r in range(size)] == parts


def test_single_process_is_todays_code_path():
    import torch

    t = torch.arange(4.0)
    ek_dist.reset_comm_stats()
    assert ek_dist.world() == World(0, 1, 0) and ek_dist.is_main() and not ek_dist.is_distributed()
    assert ek_dist.setup() == World(0, 1, 0) and not ek_dist.is_distributed()  # no group created
    assert ek_dist.all_reduce_mean_(t) is t and ek_dist.all_gather_rows(t) is t and ek_dist.broadcast_(t) is t
    assert torch.equal(t, torch.arange(4.0))
    assert ek_dist.main_writes(lambda x: x + 1, 1) == 2
    assert ek_dist.comm_stats() == {"bytes": 0, "calls": 0, "seconds": 0.0}
    assert shard([1, 2, 3]) == [1, 2, 3]


def test_strip_nproc_and_its_validation(capsys):
    from embedkit.cli import main

    assert strip_nproc(["train", "w", "--nproc", "2", "x", "--nproc=3", "--name", "n"]) == ["train", "w", "x", "--name", "n"]
    for bad, why in (("0", "must be >= 1"), ("two", "whole number"), ("100000", "more than 4 processes per CPU core")):
        assert main(["train", "word2vec", str(CORPUS), "--name", "x", "--nproc", bad]) == 2
        err = capsys.readouterr().err
        assert why in err and err.count("\n") == 1, err


def test_nproc_inside_a_torchrun_job_that_disagrees_is_refused(monkeypatch, capsys):
    from embedkit.cli import main

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert main(["train", "word2vec", str(CORPUS), "--name", "x", "--nproc", "2"]) == 1
    assert capsys.readouterr().err == ("error: rank 2: --nproc 2 inside a job of 4 ranks: leave --nproc out under "
                                       "torchrun (its --nproc-per-node says how many)\n")


def test_the_culprit_is_the_first_rank_failing_for_its_own_reason():
    from embedkit.distributed.launch import _culprit

    peer = {"message": "error: rank 0: a collective failed (Connection closed by peer)", "secondary": True, "time": 1.0}
    own = {"message": "error: rank 2: corpus2.txt: no such file", "secondary": False, "time": 2.0}
    assert _culprit([0, 2], [peer, None, own]) == 2  # seen first, but only because rank 2 had stopped
    assert _culprit([1, 0], [None, None, None]) == 1  # no records: the first exit seen
    same = [{"message": "error: bad option", "secondary": False, "time": 3.0},
            {"message": "error: rank 1: bad option", "secondary": False, "time": 2.0}]
    assert _culprit([1, 0], same) == 0  # every rank refusing the same input: reported as rank 0's


def test_error_lines_name_the_rank(monkeypatch, tmp_path, capsys):
    from embedkit.distributed.cli import error_line, report_error

    assert error_line("bad  input") == "error: bad input"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert error_line("bad input") == "error: rank 1: bad input"
    assert error_line("rank 1: a collective failed") == "error: rank 1: a collective failed"
    monkeypatch.setenv("EMBEDKIT_ERROR_FILE", str(tmp_path / "e.json"))
    report_error("error: rank 1: bad input", ek_dist.PeerError("x"))
    rec = json.loads((tmp_path / "e.json").read_text())
    assert rec["message"] == "error: rank 1: bad input" and rec["secondary"] and rec["rank"] == 1
    assert capsys.readouterr().err == ""  # the launcher prints it, once


# ---------------------------------------------------------------------------------------------- 2 processes
_TINY = '''
import json, os, sys, time
import numpy as np
import torch
import embedkit as ek
import embedkit.distributed as d
from embedkit.trainers.base import Trainer

out = sys.argv[1]


class Tiny(Trainer):
    def __init__(self, dim=3):
        self.dim = dim

    def fit(self, keys):
        d.setup()
        v = torch.arange(len(keys) * self.dim, dtype=torch.float32).reshape(len(keys), self.dim) + 1.0
        self.embeddings_ = ek.Embeddings(keys, d.broadcast_(v).numpy())
        return self.embeddings_

    def _state_arrays(self):
        return {"vectors": self.embeddings_.vectors, "keys": np.array(self.embeddings_.keys)}

    def _load_state(self, arrays, config):
        self.embeddings_ = ek.Embeddings([str(k) for k in arrays["keys"]], arrays["vectors"])
'''

_SCRIPT = _TINY + '''

w = d.setup()
r = w.rank
res = {"world": [w.rank, w.size]}
d.reset_comm_stats()
m = d.all_reduce_mean_(torch.full((3,), float(r + 1)))
s = d.all_reduce_sum_(torch.full((2,), r + 1, dtype=torch.int64))
b = d.broadcast_(torch.full((4,), float(r)), src=1)
g = d.all_gather_rows(torch.full((2 + r, 2), float(r)))
res.update(mean=m.tolist(), sum=s.tolist(), bcast=b.tolist(), gather=g.tolist(), stats=d.comm_stats())
try:
    d.same_on_all_ranks(np.array([1.0, r]), "the vocabulary")
except d.DistributedError as exc:
    res["differ"] = str(exc)

model = Tiny()
model.fit(["a", "b", "c"])
store = ek.Store(os.path.join(out, "store"))
res["world_size_"] = model.world_size_
res["to_store"] = None if model.to_store("t", store) is None else "path"
back = Tiny.from_store("t", store)  # every rank reads what rank 0 wrote: the write finished before to_store returned
res["loaded"] = back.embeddings_.vectors.tolist() == model.embeddings_.vectors.tolist()
res["meta_world_size"] = store.info("t")["meta"].get("world_size")
res["save_file"] = None if model.save(os.path.join(out, "file.npz")) is None else "path"  # every rank: one path
try:
    model.save("t", store)  # exists and no overwrite: rank 0's write fails, every rank hears it
except ek.errors.InputError as exc:
    res["failed_write"] = [type(exc).__name__, str(exc)]
with open(os.path.join(out, f"rank{r}.json"), "w") as fh:
    json.dump(res, fh)
'''


def test_collectives_and_rank0_writes_across_two_ranks(tmp_path, job_env, monkeypatch):
    from embedkit.distributed import launch as launch_mod

    script = tmp_path / "job.py"
    script.write_text(_SCRIPT)
    with socket.socket() as busy:  # the first port launch() picks is taken: rank 0 cannot listen, the job starts again
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        ports = iter([busy.getsockname()[1], launch_mod.free_port()])
        monkeypatch.setattr(launch_mod, "free_port", lambda: next(ports))
        result = launch([sys.executable, str(script), str(tmp_path)], 2, timeout=120)
    assert result.returncode == 0, result.message
    assert next(ports, None) is None  # the second port was used
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world"] == [0, 2] and r1["world"] == [1, 2]
    for r in (r0, r1):
        assert r["mean"] == [1.5] * 3 and r["sum"] == [3, 3] and r["bcast"] == [1.0] * 4
        assert r["gather"] == [[0.0, 0.0]] * 2 + [[1.0, 1.0]] * 3  # rank order, uneven row counts
        assert r["differ"].startswith("the ranks disagree on the vocabulary")
        assert r["loaded"] and r["meta_world_size"] == 2 and r["world_size_"] == 2
    # bytes this rank sent: mean 3 x 4, sum 2 x 8, broadcast 4 x 4, gather: its row count (8) + padded 3 x 2 x 4
    assert r0["stats"]["bytes"] == 12 + 16 + 16 + 8 + 24 and r0["stats"]["calls"] == 5
    assert r1["stats"]["bytes"] == r0["stats"]["bytes"]
    assert (r0["to_store"], r1["to_store"]) == ("path", None)
    assert (r0["save_file"], r1["save_file"]) == ("path", None)
    assert (tmp_path / "file.npz").is_file()
    assert r0["failed_write"][0] == "InputError" and "already exists" in r0["failed_write"][1]
    assert r1["failed_write"][0] == "PeerError"
    assert r1["failed_write"][1] == "rank 0 could not write the store entry 't': " + r0["failed_write"][1]


# rank 0 alone saves (the torchrun idiom), then every rank saves while rank 0's write takes longer than
# EMBEDKIT_DIST_TIMEOUT (2 s): neither needs a collective, so neither times out
_RANK0_SCRIPT = _TINY + '''
os.environ["EMBEDKIT_DIST_TIMEOUT"] = "2"  # set after the imports: the ranks reach setup() together
w = d.setup()
r = w.rank
model = Tiny()
model.fit(["a", "b", "c"])
store = ek.Store(os.path.join(out, "store"))
res = {}
if r == 0:
    res["idiom"] = [str(model.save(os.path.join(out, "idiom.npz"))), str(model.to_store("idiom", store))]
plain = Tiny._save_file


def slow(self, path):
    time.sleep(5)
    return plain(self, path)


Tiny._save_file = slow
res["slow"] = model.save(os.path.join(out, "slow.npz")) is not None
res["slow_loaded"] = Tiny.load(os.path.join(out, "slow.npz")).embeddings_.vectors.tolist() == \
    model.embeddings_.vectors.tolist()  # rank 1 returned after the write was complete
res["after"] = d.all_reduce_sum_(torch.ones(1)).tolist()  # the group is still there
with open(os.path.join(out, f"rank{r}.json"), "w") as fh:
    json.dump(res, fh)
'''


def test_rank0_alone_saves_and_a_slow_write_outlasts_the_collective_timeout(tmp_path, job_env):
    script = tmp_path / "job.py"
    script.write_text(_RANK0_SCRIPT)
    result = launch([sys.executable, str(script), str(tmp_path)], 2, timeout=120)
    assert result.returncode == 0, result.message
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["idiom"] == [str(tmp_path / "idiom.npz"), str(tmp_path / "store" / "idiom")] and "idiom" not in r1
    assert (tmp_path / "idiom.npz").is_file() and ek_dist_store_names(tmp_path / "store") == ["idiom"]
    assert (r0["slow"], r1["slow"]) == (True, False)
    assert r0["slow_loaded"] and r1["slow_loaded"]
    assert r0["after"] == r1["after"] == [2.0]


def ek_dist_store_names(path: Path) -> list[str]:
    import embedkit as ek

    return ek.Store(str(path)).names()


class _Plain:
    """A fitted trainer without a process group (its fit never calls setup)."""

    @staticmethod
    def make():
        import numpy as np

        import embedkit as ek
        from embedkit.trainers.base import Trainer

        class Plain(Trainer):
            def fit(self, keys):
                self.embeddings_ = ek.Embeddings(keys, np.eye(len(keys), dtype=np.float32))
                return self.embeddings_

            def _state_arrays(self):
                return {"vectors": self.embeddings_.vectors, "keys": np.array(self.embeddings_.keys)}

            def _load_state(self, arrays, config):
                self.embeddings_ = ek.Embeddings([str(k) for k in arrays["keys"]], arrays["vectors"])

        return Plain


def test_a_refit_in_one_process_forgets_the_distributed_world_size(tmp_path):
    import embedkit as ek

    model = _Plain.make()()
    model.fit(["a", "b"])
    model.world_size_ = 2  # as a distributed fit leaves it
    model.fit(["a", "b", "c"])  # refit in one process
    assert not hasattr(model, "world_size_")
    model.to_store("again", ek.Store(str(tmp_path)))
    assert "world_size" not in ek.Store(str(tmp_path)).info("again")["meta"]


def test_a_process_that_only_names_a_rank_in_its_env_works_as_one_process(tmp_path, monkeypatch, capsys):
    """WORLD_SIZE=2 RANK=1 but no process group (a command started from a torchrun rank): it prints and writes."""
    import embedkit as ek
    from embedkit.cli import main

    for k, v in dict(WORLD_SIZE="2", RANK="1", LOCAL_RANK="1", EMBEDKIT_ERROR_FILE=str(tmp_path / "err.json")).items():
        monkeypatch.setenv(k, v)
    model = _Plain.make()()
    model.fit(["a", "b"])
    assert model.save(str(tmp_path / "m.npz")) == tmp_path / "m.npz" and (tmp_path / "m.npz").is_file()
    assert model.to_store("e", ek.Store(str(tmp_path / "store"))) is not None
    assert main(["--store", str(tmp_path / "store"), "list"]) == 0
    assert "e" in capsys.readouterr().out.split()
    assert main(["--store", str(tmp_path / "store"), "query", "nope", "a"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "rank 1" not in err and not (tmp_path / "err.json").exists()


def _entry(store: Path, name: str):
    manifest = json.loads((store / name / "manifest.json").read_text())
    return sorted(p.name for p in (store / name).iterdir()), manifest


def test_cli_nproc_2_writes_the_same_layout_as_one_process(tmp_path, job_env, capsys):
    from embedkit.cli import main

    store = tmp_path / "store"
    args = ["--store", str(store), "train", "word2vec", str(CORPUS), *W2V]
    assert main([*args, "--name", "one"]) == 0  # one process: today's code path, in this process
    one_out = capsys.readouterr().out
    two = subprocess.run([sys.executable, "-m", "embedkit", *args, "--name", "two", "--nproc", "2"], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert two.returncode == 0, two.stderr
    # rank 1 prints nothing: the job's stdout is one run's
    assert len(two.stdout.splitlines()) == len(one_out.splitlines()) and two.stdout.count("saved index") == 1
    files1, m1 = _entry(store, "one")
    files2, m2 = _entry(store, "two")
    assert files1 == files2 and sorted(m1) == sorted(m2)
    assert sorted(m2["meta"]) == sorted([*m1["meta"], "world_size"]) and m2["meta"]["world_size"] == 2
    assert "world_size" not in m1["meta"] and m1["count"] == m2["count"]
    assert sorted(p.name for p in store.iterdir() if not p.name.startswith(".")) == ["one", "two"]


def test_torchrun_runs_the_same_command(tmp_path):
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "embedkit", "--store", str(store), "train", "word2vec", str(CORPUS), "--name", "tr", *W2V]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("saved index 'tr'") == 1
    _, manifest = _entry(store, "tr")
    assert manifest["meta"]["world_size"] == 2 and manifest["meta"]["trainer"] == "Word2Vec"


def test_a_failing_rank_stops_the_job_with_one_line_and_no_store_entry(tmp_path, job_env, capsys):
    (tmp_path / "corpus0.txt").write_text(CORPUS.read_text())  # rank 1 is given corpus1.txt, which does not exist
    wrapper = tmp_path / "rank_cli.py"  # `python -m embedkit ARGS` with {RANK} in ARGS replaced by this rank's
    wrapper.write_text(textwrap.dedent('''
        import os, sys
        from embedkit.cli import main
        sys.exit(main([a.replace("{RANK}", os.environ["RANK"]) for a in sys.argv[1:]]))
    '''))
    store = tmp_path / "store"
    argv = ["--store", str(store), "train", "word2vec", str(tmp_path / "corpus{RANK}.txt"), "--name", "bad", *W2V]
    code = run_local(argv, 2, cmd=[sys.executable, str(wrapper), *argv], timeout=120)
    err = capsys.readouterr().err
    assert code == 1
    assert err == f"error: rank 1 failed: {tmp_path / 'corpus1.txt'}: no such file\n"
    assert not store.exists() or not [p for p in store.rglob("*") if not p.name.endswith(".lock")]


def test_gpu_ranks_are_one_per_gpu(monkeypatch):
    import argparse

    import torch

    from embedkit.distributed.cli import _device_for

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    env = World(1, 2, 1)
    with pytest.raises(ek_dist.DistributedError, match=r"2 ranks on this machine but 1 CUDA device\(s\)"):
        _device_for(argparse.Namespace(device="auto"), env)
    with pytest.raises(ek_dist.DistributedError, match="every rank on one GPU; pass --device cuda"):
        _device_for(argparse.Namespace(device="cuda:0"), env)
    assert _device_for(argparse.Namespace(device="cpu"), env) is None
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert _device_for(argparse.Namespace(device="cuda"), World(0, 2, 0)) == torch.device("cuda")
