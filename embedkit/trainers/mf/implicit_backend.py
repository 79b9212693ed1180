"""Optional CPU backend: train with the ``implicit`` package (benfred/implicit) when installed.

The factors it learns are converted to the same state the torch backend produces, so the
index, fold-in, store and CLI behave identically. implicit takes confidences directly; we pass
c = 1 + confidence * value with its own alpha=1 so the model is Hu et al.'s, as in the torch backend.
"""

from __future__ import annotations

import numpy as np

from ...errors import InputError


def train_implicit(params: dict, csr, show_progress: bool, callback) -> dict:
    try:
        import implicit  # noqa: F401
    except ImportError:
        raise InputError("backend='implicit' needs the package 'implicit' (pip install implicit); "
                         "or use backend='torch'") from None
    if params["device"] not in ("auto", "cpu"):
        raise InputError("backend='implicit' runs on the CPU here; use backend='torch' for device='cuda'")
    import warnings

    from threadpoolctl import threadpool_limits

    history: list[float] = []

    def cb(iteration, elapsed, *stats):
        # ALS passes its training loss; BPR passes (correct, skipped) sample counts, which we
        # report as the fraction of sampled pairs still ordered wrongly
        if params["method"] == "als":
            loss = float(stats[0]) if stats and stats[0] is not None else float("nan")
        else:
            correct, skipped = stats[:2]
            loss = 1.0 - float(correct) / max(float(data.nnz - skipped), 1.0)
        history.append(loss)
        if callback is not None:  # implicit counts iterations from 0; epochs count from 1
            callback(len(history), loss)

    data = csr.astype(np.float32).tocsr()
    seed = params["seed"]
    if params["method"] == "als":
        from implicit.cpu.als import AlternatingLeastSquares

        model = AlternatingLeastSquares(factors=params["dim"], regularization=params["reg"], alpha=1.0,
                                        iterations=params["epochs"], calculate_training_loss=True,
                                        random_state=seed)
        data.data = 1.0 + params["confidence"] * data.data
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit's advice: BLAS threads fight its OpenMP ones (limited here, so silence its check)
            warnings.filterwarnings("ignore", message=".*threadpool.*", category=RuntimeWarning)
            model.fit(data, show_progress=show_progress, callback=cb)
        return {"user_factors": np.asarray(model.user_factors, dtype=np.float32),
                "item_factors": np.asarray(model.item_factors, dtype=np.float32), "loss_history": history}
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=params["dim"], learning_rate=params["lr"],
                                        regularization=params["reg"], iterations=params["epochs"],
                                        random_state=seed)
    data.data[:] = 1.0
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*threadpool.*", category=RuntimeWarning)
        model.fit(data, show_progress=show_progress, callback=cb)
    uf, itf = np.asarray(model.user_factors), np.asarray(model.item_factors)
    # implicit keeps the item bias as an extra factor and a constant 1 in the user vector
    return {"user_factors": uf[:, :-1].astype(np.float32), "item_factors": itf[:, :-1].astype(np.float32),
            "item_bias": itf[:, -1].astype(np.float32), "loss_history": history}
