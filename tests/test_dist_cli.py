"""The train verbs not run as ranks elsewhere (node2vec, metapath2vec, siamese) under a 2-rank job.

word2vec, fasttext, mf and autoencoder run as ranks in test_dist_sgns / test_dist_mf / test_dist_encoders,
and word2vec under --nproc and torchrun in test_distributed. Here one launched job runs the other three
verbs on every rank, as ``embedkit train VERB ... --nproc 2`` would; rank 0 alone writes each entry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from embedkit.distributed.launch import launch
from embedkit.store import Store

DATA = Path(__file__).resolve().parent.parent / "examples" / "data"

SCRIPT = r'''
import json, sys
from embedkit.cli import main
from embedkit import distributed as ek_dist
store, typed, data = sys.argv[1], sys.argv[2], sys.argv[3]
common = ["--store", store, "--no-progress", "--device", "cpu", "--dim", "8"]
codes = [
    main(["train", "node2vec", f"{data}/edges.txt", "--name", "n2v", "--walk-length", "10", "--walks-per-node", "2",
          "--workers", "1", *common]),
    main(["train", "metapath2vec", typed, "--name", "mp", "--metapath", "user,item,user", "--walk-length", "9",
          "--walks-per-node", "2", "--workers", "1", *common]),
    main(["train", "siamese", f"{data}/features.csv", "--key-column", "id", "--label-column", "label", "--name", "sia",
          "--epochs", "3", *common]),
]
with open(f"{store}/../codes_rank{ek_dist.world().rank}.json", "w") as fh:
    json.dump(codes, fh)
'''


def _typed_edges(path: Path) -> None:
    rng = np.random.default_rng(0)
    lines = [f"user u{u} bought item i{(u * 3 + j) % 40 + (0 if u < 20 else 40)}"
             for u in range(40) for j in range(rng.integers(2, 5))]
    path.write_text("\n".join(lines) + "\n")


def test_node2vec_metapath2vec_siamese_train_as_two_ranks(tmp_path):
    typed = tmp_path / "typed.tsv"
    _typed_edges(typed)
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    store = tmp_path / "store"
    res = launch([sys.executable, str(script), str(store), str(typed), str(DATA)], 2, timeout=300)
    assert res.returncode == 0, res
    for rank in (0, 1):
        assert json.loads((tmp_path / f"codes_rank{rank}.json").read_text()) == [0, 0, 0]
    s = Store(store)
    assert sorted(s.names()) == ["mp", "n2v", "sia"]
    for name in ("n2v", "mp", "sia"):
        info = s.info(name)
        assert info["count"] > 0
        assert info["meta"].get("world_size") == 2, (name, info["meta"])
        emb = s.load(name).to_embeddings()
        assert np.isfinite(emb.vectors).all() and emb.dim == 8
    assert not list(store.glob("*.tmp*")), "a rank left a half-written entry"
