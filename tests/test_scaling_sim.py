"""benchmarks/scaling_sim.py: the simulator runs, and its arithmetic matches hand-checked cases."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim():
    spec = importlib.util.spec_from_file_location("scaling_sim", ROOT / "benchmarks" / "scaling_sim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ring_collectives_by_hand(sim):
    # all-reduce of 100 bytes on 4 ranks: 2 * 3/4 * 100 = 150 bytes sent per rank, 3 latencies
    assert sim.ring_allreduce_bytes(100, 4) == pytest.approx(150)
    assert sim.ring_allreduce_seconds(100, 4, alpha=1e-3, beta=100) == pytest.approx(3e-3 + 1.5)
    # all-gather of a 100-byte result on 4 ranks: each rank forwards 3 of the 4 quarters (3 ring steps)
    assert sim.ring_allgather_bytes(100, 4) == pytest.approx(75)
    assert sim.ring_allgather_seconds(100, 4, alpha=1e-3, beta=100) == pytest.approx(3e-3 + 0.75)
    # at 2 ranks the all-reduce sends exactly its payload (what comm_stats counts)
    assert sim.ring_allreduce_bytes(12345, 2) == pytest.approx(12345)
    for fn in (sim.ring_allreduce_seconds, sim.ring_allgather_seconds):
        assert fn(1e9, 1, alpha=1.0, beta=1.0) == 0.0


def _args(sim, *extra):
    return sim.build_parser().parse_args(["--cores", "1", "--efficiency", "1", "--nodes", "1", "2", "4", *extra])


def test_word2vec_table_by_hand(sim, tmp_path):
    consts = tmp_path / "c.json"
    consts.write_text(json.dumps({"w2v_gensim_words_per_s": 1e5, "allreduce_alpha_s": 0.0, "allreduce_beta": 1e8}))
    c = sim.load_constants(str(consts))
    a = _args(sim, "--tokens", "1e6", "--vocab", "1000", "--dim", "100", "--sync-every", "0.5")
    _head, rows, _notes = sim.word2vec_rows(a, c, gbit=0)
    table = 2 * 1000 * 100 * 4                     # input + output float32 = 800,000 bytes
    n1, n2, n4 = rows
    assert n1[5] == pytest.approx(10.0)            # 1e6 tokens at 1e5 words/s
    assert n1[2] == 0 and n1[4] == 0               # nothing sent on one node
    assert n2[2] == pytest.approx(table)           # 2 ranks: the payload
    assert n2[3] == pytest.approx(2 * table)       # sync_every 0.5: 2 syncs per epoch
    assert n2[4] == pytest.approx(table / 1e8)     # alpha 0, beta 1e8
    assert n2[6] == pytest.approx(5.0 + 2 * table / 1e8)
    assert n4[2] == pytest.approx(1.5 * table)
    assert n4[5] == pytest.approx(2.5)


def test_cost_scaling_and_bandwidth(sim):
    c = sim.load_constants(None)
    # a window of 11 and dim 200 cost (12 * 6 * 200) / (6 * 6 * 100) = 4x the measured token
    assert sim.sgns_cost(11, 5, 200) / sim.sgns_cost(5, 5, 100) == pytest.approx(4.0)
    alpha, beta = sim.net(c, 10.0, 0.8, "all_reduce")
    assert beta == pytest.approx(1e9)              # 10 Gbit/s x 0.8 = 1 GB/s
    assert alpha == c["allreduce_alpha_s"]
    _a, beta_ag = sim.net(c, 0.0, 0.8, "all_gather")
    assert beta_ag == pytest.approx(c["allgather_beta"] / 2)


def test_als_and_milvus_by_hand(sim, tmp_path):
    consts = tmp_path / "c.json"
    consts.write_text(json.dumps({"als_s_per_nnz_dim": {"value": 1e-9}, "allgather_alpha_s": 0.0,
                                  "allgather_beta": 2e8, "bpr_samples_per_s": 1e6,
                                  "allreduce_alpha_s": 0.0, "allreduce_beta": 1e8}))
    c = sim.load_constants(str(consts))
    a = _args(sim, "--interactions", "1e8", "--users", "1e6", "--items", "1e5", "--mf-dim", "64",
              "--bpr-sync-every", "0.5")
    _h, rows, _n = sim.als_rows(a, c, gbit=0)
    n2 = rows[1]
    assert n2[4] == pytest.approx(1e-9 * 1e8 * 64 / 2)                  # compute
    gathered = (1e6 + 1e5) * 64 * 4
    assert n2[2] == pytest.approx(gathered / 2)                          # each rank sends its half
    assert n2[3] == pytest.approx(gathered / 2 / 1e8)                    # link beta = fitted 2e8 / 2
    assert n2[6] == pytest.approx(2 * 1e5 * 65 * 4)                      # BPR: 2 all_reduce of items x (dim + 1)
    m = _args(sim, "--vectors", "1e6", "--vec-dim", "128", "--hnsw-m", "16", "--node-mem-gb", "1")
    _h, rows, _n = sim.milvus_rows(m, c, gbit=25)
    by = {r[0]: r for r in rows}
    assert by["FLAT / IVF_FLAT"][1] == 128 * 4 + 8
    assert by["HNSW M=16"][1] == 128 * 4 + 2 * 16 * 4 + 8
    assert by["IVF_PQ m=32"][1] == 32 + 8
    assert by["HNSW M=16"][3] == 1                                       # 0.648 GB fits 0.7 GB usable
    assert by["FLAT / IVF_FLAT"][5] == pytest.approx(520e6 / 2)          # GB/node at N=2


def test_cli_prints_every_case(sim, capsys):
    assert sim.main(["--nodes", "1", "2", "64", "--gbit", "0", "100"]) == 0
    out = capsys.readouterr().out
    for title in ("(a) Word2Vec", "(b) Node2Vec", "(c) 1B interactions", "(d) 1B vectors in Milvus"):
        assert title in out
    assert out.count("| nodes |") == 6                                  # 3 training cases x 2 networks
    assert out.count("each of N ranks trains at N x lr") == 4           # skip-gram cases say what the lr does
    assert sim.main(["--show-constants"]) == 0
    assert "measured" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--sync-every must be in"):
        sim.main(["--sync-every", "0"])
