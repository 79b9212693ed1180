"""MatrixFactorization under torch.distributed: 2 CPU ranks over gloo against one process.

ALS (implicit and explicit) must give the factors of one process to within float rounding (the
same solves, in blocks); BPR and explicit SGD (data parallel, item-table changes summed every
``sync_every`` of an epoch) must end identical on every rank, with quality within a stated
tolerance of one process. One launch fits every method (a launch costs seconds).
"""

from __future__ import annotations

import contextlib
import json
import sys
import textwrap

import numpy as np
import pytest

from embedkit.distributed.launch import launch
from embedkit.trainers.mf import HybridMF, MatrixFactorization

DATA = textwrap.dedent('''
    import numpy as np
    import scipy.sparse as sp

    def planted(seed=0):
        """Implicit: 480 users in 6 groups, 12 of their group's 240 items each (plus 2 random);
        2 more of the group's items per user held out. Ratings: rank-3 + noise, 8% observed."""
        rng = np.random.default_rng(seed)
        nu, ni, g = 480, 240, 6
        ug, ig = rng.integers(0, g, nu), np.arange(ni) % g
        pop = rng.random(ni) ** 3 + 0.05            # popular items inside each group
        rows, cols, held = [], [], []
        for u in range(nu):
            pool = np.flatnonzero(ig == ug[u])
            picked = rng.choice(pool, 14, replace=False, p=pop[pool] / pop[pool].sum())
            items = np.unique(np.r_[picked[:12], rng.choice(ni, 2, replace=False)])
            rows += [u] * len(items)
            cols += list(items)
            held.append(picked[12:])
        imp = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(nu, ni))
        A, B = rng.normal(size=(nu, 3)), rng.normal(size=(ni, 3))
        full = 3 + A @ B.T + 0.3 * rng.normal(size=(nu, ni))
        seen = rng.random((nu, ni)) < 0.08
        train = seen & (rng.random((nu, ni)) < 0.8)
        ratings = sp.csr_matrix(np.where(train, full, 0).astype(np.float32))
        return imp, np.array(held), ratings, full, seen & ~train

    def tiny():
        """One user and three items; three users and one item."""
        return {"1user": sp.csr_matrix(np.array([[1.0, 2.0, 0.0]], np.float32)),
                "1item": sp.csr_matrix(np.array([[1.0], [0.0], [3.0]], np.float32))}

    TINY = {"ials": dict(method="als"), "eals": dict(feedback="explicit", method="als")}
''')

CONFIGS = {
    "ials": dict(method="als", dim=8, epochs=6),
    "eals": dict(feedback="explicit", method="als", dim=4, epochs=6),
    "bpr": dict(method="bpr", dim=8, epochs=30, lr=0.1, sync_every=0.2),
    "sgd": dict(feedback="explicit", method="sgd", dim=4, epochs=25, lr=0.02, sync_every=0.2),
}
HYBRID = dict(dim=8, epochs=10, sync_every=0.2)
# backend="implicit" cannot solve a block of rows: under world size > 1 it trains with the torch ALS
IMPLICIT = dict(CONFIGS["ials"], backend="implicit")
try:  # backend="numba" (optional package): its kernels between the syncs
    import numba  # noqa: F401

    CONFIGS["bpr_numba"] = dict(CONFIGS["bpr"], backend="numba", device="auto")  # numba runs on the CPU
    CONFIGS["sgd_numba"] = dict(CONFIGS["sgd"], backend="numba", device="auto")
except ImportError:
    pass

SCRIPT = DATA + textwrap.dedent('''
    import json, sys
    import numpy as np
    from embedkit import distributed as ek_dist
    from embedkit.trainers.mf import HybridMF, MatrixFactorization

    out, configs = sys.argv[1], json.loads(sys.argv[2])
    hybrid = configs.pop("hybrid")
    imp, held, ratings, full, test = planted()
    comm = {}
    for name, kw in configs.items():
        m = MatrixFactorization(**{"device": "cpu", **kw})
        m.fit(ratings if kw.get("feedback") == "explicit" else imp, show_progress=False)
        rank = ek_dist.world().rank
        arrays = {"u": m._user_factors, "i": m._item_factors}
        if m._item_bias is not None:
            arrays["ib"] = m._item_bias
        if m._user_bias is not None:
            arrays["ub"] = m._user_bias
        np.savez(f"{out}/{name}_rank{rank}.npz", **arrays)   # a test script: every rank writes its own file
        comm[name] = m.comm_bytes_
    for name, mat in tiny().items():  # fewer users (items) than ranks: rank 1's block is empty
        for method, kw in TINY.items():
            m = MatrixFactorization(dim=2, epochs=3, device="cpu", **kw)
            m.fit(mat, show_progress=False)
            np.savez(f"{out}/tiny_{name}_{method}_rank{rank}.npz", u=m._user_factors, i=m._item_factors,
                     loss=np.array(m.loss_history_))
    h = HybridMF(device="cpu", **hybrid)
    h.fit(imp, show_progress=False)
    np.savez(f"{out}/hybrid_rank{rank}.npz", u=h._U, i=h._I, ib=h._bias)
    comm["hybrid"] = h.comm_bytes_
    if ek_dist.is_main():
        with open(f"{out}/comm.json", "w") as fh:
            json.dump(comm, fh)
    # ranks given different data stop with one line on every rank
    try:
        MatrixFactorization(dim=4, epochs=1, device="cpu").fit(imp[:100 + rank], show_progress=False)
        message = ""
    except ek_dist.DistributedError as exc:
        message = str(exc)
    with open(f"{out}/mismatch_rank{rank}.txt", "w") as fh:
        fh.write(message)
    # then the CLI, as each rank of `torchrun -m embedkit train mf ...` runs it
    from embedkit.cli import main

    assert main(json.loads(sys.argv[3])) == 0
''')

ENV = {"EMBEDKIT_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def _planted():
    ns: dict = {}
    exec(DATA, ns)
    return ns["planted"]()


def _recall(m, imp, held) -> float:
    s = m._user_factors @ m._item_factors.T + (0 if m._item_bias is None else m._item_bias)
    s[imp.nonzero()] = -np.inf
    top = np.argsort(-s, 1)[:, :10]
    return float(np.mean([len(set(top[u]) & set(held[u])) / len(held[u]) for u in range(len(held))]))


def _rmse(m, full, test) -> float:
    uu, ii = np.nonzero(test)
    p = m.global_mean_ + m._user_bias[uu] + m._item_bias[ii] + (m._user_factors[uu] * m._item_factors[ii]).sum(1)
    return float(np.sqrt(np.mean((p - full[uu, ii]) ** 2)))


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run every config on 2 ranks once; the per-rank factors and rank 0's comm bytes."""
    import os

    tmp = tmp_path_factory.mktemp("dist_mf")
    script = tmp / "fit_mf.py"
    script.write_text(SCRIPT)
    imp = _planted()[0].tocoo()
    (tmp / "plays.csv").write_text("user,item\n" + "".join(f"u{u},i{i}\n" for u, i in zip(imp.row, imp.col)))
    cli = ["train", "mf", str(tmp / "plays.csv"), "--name", "plays", "--store", str(tmp / "store"),
           "--dim", "8", "--epochs", "4", "--device", "cpu", "--no-progress"]
    configs = {**CONFIGS, "ials_implicit": IMPLICIT, "hybrid": HYBRID}
    res = launch([sys.executable, str(script), str(tmp), json.dumps(configs), json.dumps(cli)], 2,
                 env={**os.environ, **ENV}, timeout=300)
    assert res.returncode == 0, res.message
    fits = {name: [dict(np.load(tmp / f"{name}_rank{r}.npz")) for r in (0, 1)] for name in configs}
    return fits, json.loads((tmp / "comm.json").read_text()), tmp


@pytest.fixture(scope="module")
def one_process():
    imp, held, ratings, full, test = _planted()
    models = {}
    for name, kw in CONFIGS.items():
        m = MatrixFactorization(**{"device": "cpu", **kw})
        with _one_numba_thread():  # as the ranks run (ENV): the same seed gives the same vectors
            m.fit(ratings if kw.get("feedback") == "explicit" else imp, show_progress=False)
        assert not hasattr(m, "comm_bytes_")  # a single process communicates nothing
        models[name] = m
    h = HybridMF(device="cpu", **HYBRID)
    h.fit(imp, show_progress=False)
    assert not hasattr(h, "comm_bytes_")
    models["hybrid"] = h
    return models, (imp, held, ratings, full, test)


@contextlib.contextmanager
def _one_numba_thread():
    try:
        import numba
    except ImportError:
        yield
        return
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(old)


def _as_model(arrays, ref):
    m = MatrixFactorization.__new__(MatrixFactorization)
    m._user_factors, m._item_factors = arrays["u"], arrays["i"]
    m._item_bias, m._user_bias, m.global_mean_ = arrays.get("ib"), arrays.get("ub"), ref.global_mean_
    return m


@pytest.mark.parametrize("name", ["1user", "1item"])
def test_als_with_an_empty_block_on_a_rank_equals_one_process(two_ranks, name):
    # 1 user (or 1 item) on 2 ranks: rank 1 solves an empty block of rows, and the fit is one process's
    ns: dict = {}
    exec(DATA, ns)
    mat = ns["tiny"]()[name]
    for method, kw in ns["TINY"].items():
        one = MatrixFactorization(dim=2, epochs=3, device="cpu", **kw)
        one.fit(mat, show_progress=False)
        for rank in (0, 1):
            got = np.load(two_ranks[2] / f"tiny_{name}_{method}_rank{rank}.npz")
            np.testing.assert_allclose(got["loss"], one.loss_history_, rtol=1e-5, err_msg=method)
            np.testing.assert_allclose(got["u"], one._user_factors, rtol=1e-4, atol=1e-6, err_msg=method)
            np.testing.assert_allclose(got["i"], one._item_factors, rtol=1e-4, atol=1e-6, err_msg=method)


def test_every_rank_ends_with_the_same_model(two_ranks):
    fits = two_ranks[0]
    for name, (r0, r1) in fits.items():
        assert r0.keys() == r1.keys()
        for key in r0:
            np.testing.assert_array_equal(r0[key], r1[key], err_msg=f"{name}: ranks differ in {key}")


@pytest.mark.parametrize("name", ["ials", "eals", "ials_implicit"])
def test_als_equals_one_process(two_ranks, one_process, name):
    fits = two_ranks[0]
    ref = one_process[0][name.replace("_implicit", "")]  # backend="implicit" on 2 ranks: the torch ALS
    for key, want in (("u", ref._user_factors), ("i", ref._item_factors)):
        got = fits[name][0][key]
        assert got.shape == want.shape
        err = float(np.abs(got - want).max() / np.abs(want).max())
        assert err < 1e-4, f"{name} {key}: 2 ranks differ from 1 process by {err:.2e} (relative)"


def test_als_communicates_its_blocks(two_ranks):
    # per epoch: one all_gather of each side's block (float32 rows of this rank's block), plus a few
    # control scalars (the loss, the row counts of all_gather_rows): at most 64 bytes an epoch
    comm = two_ranks[1]
    for name, width in (("ials", CONFIGS["ials"]["dim"]), ("eals", CONFIGS["eals"]["dim"] + 1)):
        epochs = CONFIGS[name]["epochs"]
        blocks = epochs * (480 // 2 + 240 // 2) * width * 4
        assert blocks < comm[name] <= blocks + 64 * epochs, (name, comm[name], blocks)


@pytest.mark.parametrize("name", ["bpr", "bpr_numba"])
def test_bpr_quality_within_tolerance_of_one_process(two_ranks, one_process, name):
    # tolerance: recall@10 within 0.05 of one process (seeds differ per rank, so values do)
    if name not in CONFIGS:
        pytest.skip("needs the optional package numba")
    fits = two_ranks[0]
    ref = one_process[0][name]
    imp, held = one_process[1][:2]
    one, two = _recall(ref, imp, held), _recall(_as_model(fits[name][0], ref), imp, held)
    assert one > 0.2  # random ranking gives about 10 / 240 = 0.04
    assert abs(two - one) < 0.05, (one, two)


@pytest.mark.parametrize("name", ["sgd", "sgd_numba"])
def test_sgd_quality_within_tolerance_of_one_process(two_ranks, one_process, name):
    # tolerance: held-out RMSE within 5% of one process
    if name not in CONFIGS:
        pytest.skip("needs the optional package numba")
    fits = two_ranks[0]
    ref = one_process[0][name]
    _, _, ratings, full, test = one_process[1]
    one = _rmse(ref, full, test)
    assert {"ub", "ib"} <= set(fits[name][0])
    two = _rmse(_as_model(fits[name][0], ref), full, test)
    baseline = float(np.sqrt(np.mean((full[np.nonzero(test)] - ref.global_mean_) ** 2)))
    assert one < 0.9 * baseline
    assert two < one * 1.05, (one, two)


def test_cli_train_mf_on_two_ranks_writes_one_store_entry(two_ranks):
    """`embedkit train mf` run by 2 ranks: rank 0 writes the store entry, whose ALS factors are one process's."""
    import embedkit as ek

    csv, store = two_ranks[2] / "plays.csv", two_ranks[2] / "store"
    assert ek.Store(str(store)).names() == ["plays"]
    saved = MatrixFactorization.from_store("plays", ek.Store(str(store)))
    one = MatrixFactorization(dim=8, epochs=4, device="cpu")
    one.fit(ek.Interactions.from_csv(str(csv)), show_progress=False)
    assert saved.item_embeddings_.keys == one.item_embeddings_.keys
    err = np.abs(saved.item_embeddings_.vectors - one.item_embeddings_.vectors).max()
    assert err < 1e-4 * np.abs(one.item_embeddings_.vectors).max()
    assert [i for i, _ in saved.recommend("u0", k=5)] == [i for i, _ in one.recommend("u0", k=5)]


def test_hybrid_quality_within_tolerance_of_one_process(two_ranks, one_process):
    # HybridMF (no features: ids only) on 2 ranks: recall@10 within 0.05 of one process
    fits = two_ranks[0]
    ref = one_process[0]["hybrid"]
    imp, held = one_process[1][:2]
    as_mf = MatrixFactorization.__new__(MatrixFactorization)
    as_mf._user_factors, as_mf._item_factors, as_mf._item_bias = ref._U, ref._I, ref._bias
    one = _recall(as_mf, imp, held)
    got = fits["hybrid"][0]
    as_mf._user_factors, as_mf._item_factors, as_mf._item_bias = got["u"], got["i"], got["ib"]
    two = _recall(as_mf, imp, held)
    assert one > 0.2
    assert abs(two - one) < 0.05, (one, two)
    assert two_ranks[1]["hybrid"] > 0


def test_ranks_given_different_data_stop_with_one_line(two_ranks):
    for rank in (0, 1):
        message = (two_ranks[2] / f"mismatch_rank{rank}.txt").read_text()
        assert message.startswith("the ranks disagree on the interactions"), message
        assert "\n" not in message
