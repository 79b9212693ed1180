"""1 vs N processes for the skip-gram family on a planted-answer corpus / graph.

    EMBEDKIT_NUM_THREADS=1 nice -n 10 python benchmarks/sgns_dist_bench.py TRAINER OUT.json [--sync-every F]        # 1 process
    python -c "from embedkit.distributed.launch import launch; import sys; \
               launch([sys.executable, 'benchmarks/sgns_dist_bench.py', TRAINER, OUT, ...], 2)"

TRAINER: w2v_torch | w2v_gensim | n2v_torch | n2v_gensim.
Corpus: 450,000 tokens, 500 topics x 20 words + 500 function words (Zipf); a sentence of 15 tokens:
50% words of its topic, 20% words of any topic, 30% function words. Quality: purity@10, the share of
each topic word's 10 nearest neighbours (cosine) that are words of its topic (words seen >= 20 times).
Graph: planted partition, 8,000 nodes in 16 blocks, mean degree ~12 (10 inside, 2 across); purity@10 by block.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import embedkit as ek
from embedkit import distributed as ek_dist

DATA = Path(os.environ.get("EMBEDKIT_BENCH_DATA", tempfile.gettempdir())) / "embedkit-sgns-dist"


def corpus_file():
    path = DATA / "zipf_corpus.txt"
    if path.is_file():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    topics, per, fn = 500, 20, 500
    zf = 1.0 / np.arange(1, fn + 1) ** 1.1
    zf /= zf.sum()
    n_sent = 450_000 // 15
    t = rng.integers(topics, size=n_sent)[:, None]
    kind = rng.random((n_sent, 15))
    own = t * per + rng.integers(0, per, (n_sent, 15))
    other = rng.integers(0, topics * per, (n_sent, 15))
    fw = rng.choice(fn, (n_sent, 15), p=zf)
    words = np.where(kind < 0.5, own, other)
    lines = [" ".join(f"f{b}" if k >= 0.7 else f"t{a // per}_{a % per}" for k, a, b in zip(kr, wr, fr))
             for kr, wr, fr in zip(kind, words, fw)]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(path)
    return path


def graph():
    path = DATA / "sbm_edges.txt"
    if not path.is_file():
        DATA.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        n, blocks = 8_000, 16
        size = n // blocks
        b = np.arange(n) // size
        m_in, m_out = n * 5, n * 1
        a1 = rng.integers(0, n, m_in)
        a2 = b[a1] * size + rng.integers(0, size, m_in)
        c1 = rng.integers(0, n, m_out)
        c2 = rng.integers(0, n, m_out)
        src = np.concatenate([a1, c1])
        dst = np.concatenate([a2, c2])
        keep = src != dst
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(f"{s} {d}" for s, d in zip(src[keep], dst[keep])) + "\n")
        tmp.rename(path)
    return path


def purity(emb, group, min_keys=None, k=10):
    keys = [x for x in emb.keys if group(x) is not None and (min_keys is None or x in min_keys)]
    pos = {x: i for i, x in enumerate(emb.keys)}
    idx = [pos[x] for x in keys]
    v = emb.vectors[idx]
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    g = np.array([group(x) for x in keys])
    hits = 0
    for a in range(0, len(v), 2000):
        s = v[a:a + 2000] @ v.T
        s[np.arange(s.shape[0]), np.arange(a, a + s.shape[0])] = -np.inf
        nn = np.argpartition(-s, k, axis=1)[:, :k]
        hits += (g[nn] == g[a:a + 2000, None]).sum()
    return float(hits / (len(v) * k))


def main():
    trainer, out = sys.argv[1], sys.argv[2]
    sync_every = float(sys.argv[sys.argv.index("--sync-every") + 1]) if "--sync-every" in sys.argv else 0.25
    lr = float(sys.argv[sys.argv.index("--lr") + 1]) if "--lr" in sys.argv else 0.025
    if trainer.startswith("w2v"):
        data = str(corpus_file())
        m = ek.Word2Vec(lr=lr, dim=64, window=5, min_count=5, epochs=3, backend=trainer.split("_")[1], device="cpu",
                        workers=1, seed=0, sync_every=sync_every)
        group = lambda w: w.split("_")[0] if w.startswith("t") else None  # noqa: E731
    else:
        data = ek.Graph.from_edgelist(str(graph()))
        m = ek.Node2Vec(lr=lr, dim=64, walk_length=40, walks_per_node=4, window=5, epochs=1, backend=trainer.split("_")[1],
                        device="cpu", workers=1, seed=0, sync_every=sync_every)
        group = lambda n: int(n) // 500  # noqa: E731
    t0, c0 = time.perf_counter(), time.process_time()
    emb = m.fit(data, show_progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    import torch
    cpus = torch.zeros(ek_dist.world().size, dtype=torch.float64)
    cpus[ek_dist.world().rank] = cpu
    if ek_dist.is_distributed():
        torch.distributed.all_reduce(cpus)    # not counted in comm_bytes_ (measured after fit)
    if trainer.startswith("w2v"):
        counts = dict(zip(m.embeddings_.keys, m.vocab_counts_))
        keep = {k for k, c in counts.items() if c >= 20}
    else:
        keep = None
    w = ek_dist.world()
    res = dict(trainer=trainer, world_size=w.size, sync_every=sync_every, lr=lr, fit_seconds=wall,
               cpu_seconds_per_rank=cpus.tolist(),
               train_seconds=m.train_seconds_ if hasattr(m, "train_seconds_") else None,
               purity10=purity(emb, group, keep), loss=m.loss_history_, rows=len(emb), dim=emb.dim,
               comm_bytes=getattr(m, "comm_bytes_", 0), comm_seconds=getattr(m, "comm_seconds_", 0.0),
               syncs=getattr(m, "comm_syncs_", 0))
    if res["syncs"]:
        res["bytes_per_sync"] = 2 * res["rows"] * res["dim"] * 4
        res["seconds_per_sync"] = res["comm_seconds"] / res["syncs"]
    if ek_dist.is_main():
        Path(out).write_text(json.dumps(res, indent=1))
        print(json.dumps(res))


if __name__ == "__main__":
    main()
