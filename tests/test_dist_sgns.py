"""The skip-gram family (Word2Vec on both backends, FastText, Node2Vec, MetaPath2Vec) under
torch.distributed: 2 CPU ranks over gloo, each training on its shard, replicas averaged every
``sync_every`` of an epoch. Checked: every rank ends with the very same vectors, the quality on
a planted answer stays within a stated tolerance of one process, the ranks agree on the loss,
the bytes sent match the tables averaged, and a rank given another corpus stops with one line.

One launch runs every trainer (a launch costs seconds); the one-process reference runs the same
script in this process (no process group here, so it takes today's single-process path)."""

from __future__ import annotations

import json
import runpy
import sys
import warnings

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import IgnoredParameterWarning, InputError

# 2 ranks may lose this much neighbour purity against one process on the planted tasks (measured
# at 2 ranks: 1.0 / 1.0 on the word tasks, 0.984 / 0.982 and 0.974 / 0.972 on node2vec torch / gensim,
# 1.0 / 1.0 on metapath2vec; plain averaging without the N x rate loses much more on larger data,
# see docs/word2vec.md "Distributed training")
TOLERANCE = 0.1

SCRIPT = r'''
import json, sys
import numpy as np
import embedkit as ek
from embedkit import distributed as ek_dist

single = "OUT" in globals()    # run in the test's own process: the one-process reference
out = OUT if single else sys.argv[1]
tag = "single" if single else "dist"
rank = ek_dist.world().rank


def purity(keys, vectors, group, k=5):
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    g = np.array([group(x) for x in keys])
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    nn = np.argsort(-sim, axis=1)[:, :k]
    return float((g[nn] == g[:, None]).mean())


rng = np.random.default_rng(0)
sents = []
for i in range(1600):               # 4 topics of 20 words; a sentence stays in one topic, 1 word in 5 is noise
    t = int(rng.integers(4))
    words = [f"t{t}w{j}" if rng.random() < 0.8 else f"t{int(rng.integers(4))}w{j}" for j in rng.integers(0, 20, 10)]
    sents.append(words)
topic = lambda w: w[1]

blocks = np.repeat(np.arange(4), 25)   # a planted partition graph: 4 blocks of 25 nodes
src, dst = [], []
for a in range(100):
    for b in range(a + 1, 100):
        if rng.random() < (0.25 if blocks[a] == blocks[b] else 0.01):
            src.append(f"n{a}"); dst.append(f"n{b}")
graph = ek.Graph.from_arrays(src, dst)
block = lambda n: blocks[int(n[1:])]

rows = []                               # a typed graph: users buy items of their community
for u in range(40):
    c = u % 2
    for i in rng.choice(np.arange(c * 10, c * 10 + 10), 4, replace=False):
        rows.append(("user", f"u{u}", "bought", "item", f"i{i}"))
typed = ek.Graph.from_typed_arrays(*zip(*rows))
community = lambda k: int(k.split(":")[1][1:]) % 2 if k.startswith("user") else int(k.split(":")[1][1:]) // 10

common = dict(dim=16, min_count=1, sample=0.0, epochs=2, seed=0, workers=1, device="cpu")
fits = {
    "w2v_torch": (lambda: ek.Word2Vec(window=3, backend="torch", batch_words=1000, **common), sents, topic),
    "w2v_gensim": (lambda: ek.Word2Vec(window=3, backend="gensim", **common), sents, topic),
    "fasttext": (lambda: ek.FastText(window=3, backend="torch", bucket=2000, min_n=3, max_n=4, batch_words=1000,
                                     **common), sents, topic),
    "n2v_torch": (lambda: ek.Node2Vec(dim=16, walk_length=20, walks_per_node=8, window=4, epochs=2, backend="torch",
                                      device="cpu", workers=1), graph, block),
    "n2v_gensim": (lambda: ek.Node2Vec(dim=16, walk_length=20, walks_per_node=8, window=4, epochs=2,
                                       backend="gensim", device="cpu", workers=1), graph, block),
    "metapath2vec": (lambda: ek.MetaPath2Vec(metapaths=[["user", "item", "user"]], dim=16, walk_length=11,
                                             walks_per_node=8, window=3, epochs=3, device="cpu", workers=1),
                     typed, community),
}
report = {}
import time
for name, (make, data, group) in fits.items():
    t0 = time.perf_counter()
    m = make()
    emb = m.fit(data, show_progress=False)
    np.save(f"{out}/{name}_{tag}_rank{rank}.npy", emb.vectors)
    report[name] = dict(purity=purity(list(emb.keys), emb.vectors, group), loss=m.loss_history_,
                        rows=len(emb), dim=emb.dim, comm_bytes=getattr(m, "comm_bytes_", None),
                        syncs=getattr(m, "comm_syncs_", None), world_size=getattr(m, "world_size_", None),
                        seconds=time.perf_counter() - t0)
if tag == "dist":   # a rank given another corpus: every rank stops with one line naming the vocabulary
    try:
        ek.Word2Vec(min_count=1, epochs=1, backend="torch", device="cpu", workers=1).fit(
            sents[: 200 + 100 * rank], show_progress=False)
        report["mismatch"] = "no error"
    except ek.errors.InputError as exc:
        report["mismatch"] = str(exc)
    from embedkit.cli import main       # the CLI verbs run as ranks of the job (what --nproc N starts)
    corpus = f"{out}/corpus_rank{rank}.txt"
    with open(corpus, "w") as fh:
        fh.write("\n".join(" ".join(s) for s in sents[:400]) + "\n")
    report["cli"] = [main(["train", verb, corpus, "--name", verb, "--store", f"{out}/store", "--epochs", "1",
                           "--dim", "8", "--min-count", "1", "--workers", "1", "--sync-every", "0.5",
                           "--no-progress", *extra])
                     for verb, extra in (("word2vec", ["--backend", "torch"]), ("fasttext", ["--bucket", "500"]))]
with open(f"{out}/report_{tag}_rank{rank}.json", "w") as fh:
    json.dump(report, fh)
'''

NAMES = ["w2v_torch", "w2v_gensim", "fasttext", "n2v_torch", "n2v_gensim", "metapath2vec"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from embedkit.distributed.launch import launch

    out = tmp_path_factory.mktemp("dist_sgns")
    script = out / "fit_all.py"
    script.write_text(SCRIPT)
    result = launch([sys.executable, str(script), str(out)], 2)
    assert result.returncode == 0, result.message
    runpy.run_path(str(script), init_globals={"OUT": str(out)}, run_name="single")
    read = lambda tag, r: json.loads((out / f"report_{tag}_rank{r}.json").read_text())  # noqa: E731
    return out, read("dist", 0), read("dist", 1), read("single", 0)


@pytest.mark.parametrize("name", NAMES)
def test_every_rank_ends_with_the_same_vectors(runs, name):
    out, r0, r1, _ = runs
    a, b = np.load(out / f"{name}_dist_rank0.npy"), np.load(out / f"{name}_dist_rank1.npy")
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and a.std() > 0
    assert r0[name]["loss"] == r1[name]["loss"]          # the job's loss, the same on every rank
    assert r0[name]["world_size"] == 2                   # world_size_ is recorded by the base class


@pytest.mark.parametrize("name", NAMES)
def test_two_ranks_keep_the_quality_of_one_process(runs, name):
    _, r0, _, single = runs
    assert single[name]["purity"] >= 0.8, single[name]     # the planted answer is found in one process
    assert r0[name]["purity"] >= single[name]["purity"] - TOLERANCE, (r0[name], single[name])
    assert r0[name]["loss"][-1] <= single[name]["loss"][-1] * 1.08, (r0[name], single[name])   # measured: <= +4.5%
    assert single[name]["comm_bytes"] is None and single[name]["syncs"] is None   # nothing new in one process


@pytest.mark.parametrize("name", ["w2v_torch", "w2v_gensim", "n2v_torch", "metapath2vec"])
def test_bytes_sent_are_the_averaged_tables(runs, name):
    _, r0, _, _ = runs
    rep = r0[name]
    epochs = 3 if name == "metapath2vec" else 2
    assert rep["syncs"] == 4 * epochs                      # sync_every=0.25: 4 averages per epoch
    tables = 2 * rep["rows"] * rep["dim"] * 4              # input + output table, float32
    assert rep["comm_bytes"] >= (rep["syncs"] + 1) * tables   # the averages + rank 0's broadcast at the start
    assert rep["comm_bytes"] <= (rep["syncs"] + 1) * tables * 1.05 + 4096


def test_ranks_with_different_corpora_stop_with_one_line(runs):
    _, r0, r1, _ = runs
    for rep in (r0, r1):
        assert "disagree on the word2vec vocabulary" in rep["mismatch"] and "\n" not in rep["mismatch"]


def test_cli_train_verbs_run_as_ranks_and_rank_0_writes_the_store(runs):
    out, r0, r1, _ = runs
    assert r0["cli"] == [0, 0] and r1["cli"] == [0, 0]
    w = ek.Word2Vec.from_store("word2vec", out / "store")
    assert w.sync_every == 0.5 and len(w.embeddings_) == 80 and w.loss_history_
    assert ek.FastText.from_store("fasttext", out / "store").sync_every == 0.5
    assert sorted(p.name for p in (out / "store").iterdir() if not p.name.startswith(".")) == ["fasttext", "word2vec"]


def test_sync_every_is_a_parameter_that_one_process_ignores():
    m = ek.Word2Vec()
    assert m.get_params()["sync_every"] == 0.25 and ek.Node2Vec().sync_every == 0.25
    assert type(m)(**m.get_params()).sync_every == 0.25
    with pytest.raises(InputError, match=r"'sync_every' parameter of Word2Vec.*\(0.0, 1.0\]"):
        ek.Word2Vec(sync_every=0.0).check_params()
    with pytest.raises(InputError, match="'sync_every' parameter of Node2Vec"):
        ek.Node2Vec(sync_every=1.5).check_params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # the default never warns in one process
        ek.Word2Vec(min_count=1, epochs=1, backend="torch", device="cpu").fit([["a", "b", "c"]] * 20,
                                                                               show_progress=False)
    with pytest.warns(IgnoredParameterWarning, match="sync_every.*single process"):
        ek.Word2Vec(min_count=1, epochs=1, backend="torch", device="cpu", sync_every=0.5).fit(
            [["a", "b", "c"]] * 20, show_progress=False)


def test_averages_per_epoch_do_not_depend_on_the_shard(monkeypatch):
    """Every rank makes ceil(1 / sync_every) averages per epoch whatever its shard and step sizes, so the
    ranks' collectives pair up."""
    from embedkit.trainers.sgns import distributed as sd

    for fractions in ([0.1, 0.2, 0.9, 1.0], [1.0], [0.6, 0.61, 0.62], []):   # uneven shards, big steps, none
        sync = sd.Sync(0.3, rank=1)                      # ceil(1 / 0.3) = 4 averages
        calls = []
        monkeypatch.setattr(sync, "_average", lambda tables: calls.append(1))
        for f in fractions:
            sync.step(None, f)
        assert len(calls) == min(3, int(max(fractions, default=0) * 4 + 1e-9))   # the 4th waits for the epoch's end
        monkeypatch.setattr("embedkit.distributed.all_reduce_sum_", lambda t: t)
        loss, examples, seen = sync.end_epoch(None, 2.0, 10, 40)
        assert len(calls) == 4 and sync.done == 0 and (loss, examples, seen) == (2.0, 10, 40)
    assert sd.syncs_per_epoch(1.0) == 1 and sd.syncs_per_epoch(0.25) == 4 and sd.syncs_per_epoch(0.3) == 4


def test_continued_training_refuses_a_process_group(monkeypatch):
    m = ek.Word2Vec(min_count=1, epochs=1, backend="torch", device="cpu")
    m.fit([["a", "b", "c"]] * 20, show_progress=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(InputError, match="Word2Vec.partial_fit runs in one process only"):
        m.partial_fit([["a", "b"]] * 5, show_progress=False)


def test_gensim_parts_make_the_same_number_of_averages_on_every_rank(monkeypatch):
    """The gensim hook averages after the parts that pass each 1/n of the rank's words, the n-th at
    the end of the epoch, whatever the parts' sizes (an empty part included)."""
    from embedkit.trainers.sgns.dist_gensim import GensimSync

    for parts in ([250, 250, 250, 250], [1000], [0, 10, 990], [600, 0, 400]):
        sync = GensimSync(None, None, sum(parts), 0.25)
        calls = []
        monkeypatch.setattr(sync, "average", lambda: calls.append(sync.words))
        for _epoch in range(2):
            for words in parts:
                sync(words)
        assert len(calls) == 8 and sync.words == 0 and sync.done == 0, (parts, calls)


def test_replicas_train_at_the_rate_of_one_process_times_the_ranks(monkeypatch):
    from embedkit.trainers.sgns import distributed as sd

    assert sd.replica_rates(0.025, 0.0001) == (0.025, 0.0001)          # one process: unchanged
    monkeypatch.setattr("embedkit.distributed.is_distributed", lambda: True)
    monkeypatch.setattr("embedkit.distributed.world", lambda: ek.distributed.World(1, 4))
    assert sd.replica_rates(0.025, 0.0001) == pytest.approx((0.1, 0.0004))
