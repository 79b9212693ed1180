"""backend="numba": the compiled per-sample BPR and explicit-SGD kernels (optional package)."""

from __future__ import annotations

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError

from conftest import block_ratings, checkerboard

numba = pytest.importorskip("numba")


@pytest.fixture()
def one_thread():
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


def test_numba_bpr_finds_the_blocks_and_repeats_with_one_thread(one_thread):
    board, groups = checkerboard()
    vecs = []
    for _ in range(2):
        m = ek.MatrixFactorization(method="bpr", backend="numba", dim=4, epochs=40, lr=0.05, seed=1)
        m.fit(board, show_progress=False)
        vecs.append(m.item_embeddings_.vectors)
        for user in ("u0", "u1", "u20"):
            recs = m.recommend(user, k=2)  # each user has two unseen items left in their block
            seen_block = {groups[i] for i in board.items_of(user)}
            assert all(groups[k] in seen_block for k, _ in recs)
    np.testing.assert_array_equal(*vecs)
    assert m.loss_history_[-1] < m.loss_history_[0]


def test_numba_sgd_matches_torch_quality(one_thread):
    data, _ = block_ratings()
    train, test = data.split(test_fraction=0.2, seed=0)
    from embedkit.evaluate.ranking import rmse

    errs = {}
    for backend in ("numba", "torch"):
        m = ek.MatrixFactorization(feedback="explicit", method="sgd", backend=backend, dim=4, epochs=30, lr=0.02,
                                   batch_size=1 if backend == "torch" else None, seed=0)
        m.fit(train, show_progress=False)
        errs[backend] = rmse(m, test)
    assert errs["numba"] < 0.5 * float(np.std(test.values))
    assert abs(errs["numba"] - errs["torch"]) < 0.1


def test_numba_backend_errors():
    board, _ = checkerboard()
    with pytest.raises(InputError, match="backend='numba' serves"):
        ek.MatrixFactorization(method="als", backend="numba").fit(board)
    with pytest.raises(InputError, match="diverged"):
        data, _ = block_ratings()
        ek.MatrixFactorization(feedback="explicit", method="sgd", backend="numba", lr=10.0, epochs=20).fit(
            data, show_progress=False)
