"""AutoEncoder: planted low-rank data with off-subspace anomalies, every variant, save/load, errors, CLI."""

import warnings

import numpy as np
import pytest

import embedkit as ek
from embedkit.cli import main
from embedkit.errors import IgnoredParameterWarning, InputError, NotFittedError
from embedkit.evaluate.encoders import anomaly_auc

VARIANTS = ["undercomplete", "denoising", "sparse", "vae"]
FAST = dict(dim=2, hidden=(32,), epochs=40, batch_size=32, device="cpu")


def low_rank(n=300, d=10, seed=0):
    """Rows on a 2-D plane in 10-D (plus small noise); anomalies leave the plane."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(d, 2)))[0].T
    normal = rng.normal(size=(n, 2)) @ basis * 3 + rng.normal(0, 0.1, (n, d))
    odd = rng.normal(0, 3, (20, d))
    return normal.astype(np.float32), odd.astype(np.float32)


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_learns_plane_and_flags_anomalies(variant, tmp_path):
    X, odd = low_rank(n=400)
    X, test = X[:300], X[300:]
    model = ek.AutoEncoder(variant=variant, **FAST)
    emb = model.fit(X, show_progress=False)
    assert emb.vectors.shape == (len(X), 2) and emb.vectors.dtype == np.float32
    assert np.isfinite(emb.vectors).all() and emb.keys[:2] == ["0", "1"]
    assert len(model.loss_history_) == FAST["epochs"] and model.loss_history_[-1] < model.loss_history_[0]
    scores = model.anomaly_scores(np.vstack([test, odd]))
    assert scores.shape == (120,) and np.isfinite(scores).all()
    assert anomaly_auc(scores, np.r_[np.zeros(100), np.ones(20)]) > 0.95
    # reconstructions are in the original units and close for rows on the plane
    rec = model.reconstruct(test)
    assert rec.shape == test.shape
    assert np.mean((rec - test) ** 2) < 0.25 * np.mean((test - test.mean(0)) ** 2)
    # round trip without pickle
    loaded = ek.AutoEncoder.load(model.save(tmp_path / "ae.npz"))
    np.testing.assert_allclose(loaded.encode(test), model.encode(test), atol=1e-5)
    np.testing.assert_allclose(loaded.anomaly_scores(test), model.anomaly_scores(test), rtol=1e-5, atol=1e-6)


def test_vae_elbo_and_sample():
    X, odd = low_rank()
    model = ek.AutoEncoder(variant="vae", **FAST)
    model.fit(X, show_progress=False)
    elbo = model.anomaly_scores(np.vstack([X[:100], odd]), method="elbo")
    assert anomaly_auc(elbo, np.r_[np.zeros(100), np.ones(20)]) > 0.95
    s = model.sample(50, seed=1)
    assert s.shape == (50, 10) and np.isfinite(s).all()
    np.testing.assert_array_equal(s, model.sample(50, seed=1))
    # samples lie near the plane: reconstruction error like normal rows, far below the anomalies'
    assert model.anomaly_scores(s).mean() < model.anomaly_scores(odd).mean() / 3


def test_same_seed_same_vectors():
    X, _ = low_rank(n=60)
    a = ek.AutoEncoder(**{**FAST, "epochs": 3}, seed=1).fit(X, show_progress=False)
    b = ek.AutoEncoder(**{**FAST, "epochs": 3}, seed=1).fit(X, show_progress=False)
    c = ek.AutoEncoder(**{**FAST, "epochs": 3}, seed=2).fit(X, show_progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert not np.allclose(a.vectors, c.vectors)


def test_sparse_penalty_shrinks_code():
    X, _ = low_rank(n=200)
    plain = ek.AutoEncoder(variant="sparse", sparsity=0.0, **{**FAST, "dim": 5}).fit(X, show_progress=False)
    sparse = ek.AutoEncoder(variant="sparse", sparsity=1.0, **{**FAST, "dim": 5}).fit(X, show_progress=False)
    assert np.abs(sparse.vectors).mean() < 0.5 * np.abs(plain.vectors).mean()


def test_callback_fires_each_epoch():
    X, _ = low_rank(n=40)
    seen = []
    ek.AutoEncoder(**{**FAST, "epochs": 4}).fit(X, show_progress=False, callback=lambda e, l: seen.append(e))
    assert seen == [1, 2, 3, 4]


@pytest.mark.parametrize("kwargs,match", [
    (dict(variant="contractive"), "'variant' parameter"), (dict(dim=0), "'dim' parameter"),
    (dict(noise=-0.1), "'noise' parameter"), (dict(beta=float("nan")), "'beta' parameter"),
    (dict(hidden="big"), "'hidden' parameter"), (dict(epochs=0), "'epochs' parameter"),
    (dict(lr=0), "'lr' parameter"), (dict(batch_size=0), "'batch_size' parameter"),
    (dict(sparsity=-1.0), "'sparsity' parameter"), (dict(standardize="yes"), "'standardize' parameter"),
    (dict(device="gpu"), "'device' parameter"),
])
def test_bad_parameters(kwargs, match):
    X, _ = low_rank(n=20)
    with pytest.raises(InputError, match=match):
        ek.AutoEncoder(**{**dict(device="cpu", epochs=1), **kwargs}).fit(X, show_progress=False)


def test_invalid_parameter_message_names_owner_parameter_range_and_value():
    X, _ = low_rank(n=20)
    with pytest.raises(InputError) as info:
        ek.AutoEncoder(noise=-0.1, device="cpu").fit(X, show_progress=False)
    assert str(info.value) == ("The 'noise' parameter of AutoEncoder must be a float in the range [0.0, inf). "
                               "Got -0.1 instead.")


@pytest.mark.parametrize("kwargs,ignored", [
    (dict(noise=0.5), "noise"), (dict(variant="vae", sparsity=0.1), "sparsity"),
    (dict(variant="denoising", beta=2.0), "beta"),
])
def test_ignored_parameters_warn_once(kwargs, ignored):
    X, _ = low_rank(n=20)
    model = ek.AutoEncoder(**{**FAST, "epochs": 1, **kwargs})
    with pytest.warns(IgnoredParameterWarning, match=f"'{ignored}' parameter .* is ignored with variant=") as rec:
        model.fit(X, show_progress=False)
    assert sum(issubclass(w.category, IgnoredParameterWarning) for w in rec) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredParameterWarning)
        model.fit(X, show_progress=False)
        ek.AutoEncoder(**{**FAST, "epochs": 1, "variant": "denoising", "noise": 0.5}).fit(X, show_progress=False)


def test_round_trip_keeps_params_vectors_and_training_scores(tmp_path):
    X, _ = low_rank(n=40)
    model = ek.AutoEncoder(**{**FAST, "epochs": 2, "variant": "vae"})
    assert not hasattr(model, "decoder_") and not hasattr(model, "embeddings_")
    emb = model.fit(X, keys=[f"r{i}" for i in range(40)], show_progress=False)
    back = ek.AutoEncoder.from_arrays(model.to_arrays())
    assert back.get_params() == model.get_params() and back.embeddings_.keys == emb.keys
    np.testing.assert_array_equal(back.embeddings_.vectors, emb.vectors)
    np.testing.assert_allclose(back.anomaly_scores(X, method="elbo"), model.anomaly_scores(X, method="elbo"),
                               rtol=1e-5)
    store = ek.Store(tmp_path / "s")
    back.to_store("ae", store)
    stored = store.load_extra("ae", "anomaly_scores")
    assert stored["keys"].tolist() == emb.keys
    np.testing.assert_allclose(stored["scores"], model.anomaly_scores(X), rtol=1e-5)


def test_bad_inputs_and_wrong_variant_calls():
    X, _ = low_rank(n=20)
    model = ek.AutoEncoder(**{**FAST, "epochs": 1})
    with pytest.raises(NotFittedError):
        model.anomaly_scores(X)
    with pytest.raises(InputError, match="2-D"):
        model.fit(X[0], show_progress=False)
    bad = X.copy()
    bad[5, 1] = np.inf
    with pytest.raises(InputError, match="row 5, column 1 is inf"):
        model.fit(bad, show_progress=False)
    model.fit(X, show_progress=False)
    with pytest.raises(InputError, match="fitted on 10"):
        model.reconstruct(X[:, :3])
    with pytest.raises(InputError, match="variant='vae'"):
        model.sample(3)
    with pytest.raises(InputError, match="variant='vae'"):
        model.anomaly_scores(X, method="elbo")
    with pytest.raises(InputError, match="'method' parameter"):
        model.anomaly_scores(X, method="likelihood")


def test_cli_train_autoencoder_and_query(tmp_path, capsys):
    X, odd = low_rank(n=60)
    data = np.vstack([X, odd[:1]])
    path = tmp_path / "rows.npz"
    np.savez(path, X=data, keys=np.array([f"r{i}" for i in range(len(data))]))
    store = str(tmp_path / "store")
    with pytest.warns(IgnoredParameterWarning, match="'patience' parameter .3. is ignored: early stopping is off"):
        rc = main(["train", "autoencoder", str(path), "--name", "ae", "--variant", "denoising", "--dim", "2",
                   "--hidden", "16", "--epochs", "30", "--device", "cpu", "--no-progress", "--store", store, "--top", "1",
                   "--patience", "3"])  # 61 rows: a validation split of 6 rows is too small to watch
    out = capsys.readouterr().out
    assert rc == 0 and "saved 61 vectors of dim 2" in out
    assert "highest anomaly scores (auto): r60" in out  # the planted anomaly
    assert main(["query", "ae", "r0", "-k", "2", "--store", store]) == 0
    s = ek.Store(store)
    model = ek.AutoEncoder.from_arrays(s.load_extra("ae", "model"), device="cpu")
    assert model.variant == "denoising" and model.patience == 3
    np.testing.assert_allclose(model.anomaly_scores(data), s.load_extra("ae", "anomaly_scores")["scores"], rtol=1e-4)
    # a NaN in a CSV: one line naming file and line, exit status 1
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,2\n3,nan\n")
    rc = main(["train", "autoencoder", str(csv), "--name", "bad", "--device", "cpu", "--store", store])
    err = capsys.readouterr().err
    assert rc == 1 and f"{csv}:3:" in err and len(err.strip().splitlines()) == 1



def test_early_stopping_ends_training_when_the_validation_loss_stalls(tmp_path):
    X, _ = low_rank(n=200)
    seen = []
    model = ek.AutoEncoder(dim=2, hidden=(16,), epochs=300, patience=2, batch_size=64, lr=0.05, device="cpu")
    model.fit(X, show_progress=False, callback=lambda e, loss: seen.append(e))
    # stops 2 epochs after the best validation epoch, long before 300; the callback saw every epoch run
    ran = len(model.loss_history_)
    assert ran < 300 and ran - model.best_epoch_ == 2 and seen == list(range(1, ran + 1))
    back = ek.AutoEncoder.load(model.save(tmp_path / "ae.npz"))
    assert back.get_params()["patience"] == 2 and back.best_epoch_ == model.best_epoch_
    assert back.loss_history_ == model.loss_history_
    # without patience every epoch runs (today's behaviour), and the best validation epoch's weights are kept
    plain = ek.AutoEncoder(dim=2, hidden=(16,), epochs=12, batch_size=64, lr=0.05, device="cpu")
    plain.fit(X, show_progress=False)
    assert len(plain.loss_history_) == 12
    # no validation split (under 16 held-out rows): patience has nothing to watch, so every epoch runs
    small = ek.AutoEncoder(dim=2, hidden=(16,), epochs=15, patience=1, batch_size=64, device="cpu")
    with pytest.warns(IgnoredParameterWarning, match=r"'patience' parameter \(1\) is ignored: early stopping is off.* "
                      r"holds 10 \(at least 16 needed"):
        small.fit(X[:100], show_progress=False)
    assert len(small.loss_history_) == 15
    with pytest.raises(ValueError, match="'patience' parameter"):
        ek.AutoEncoder(patience=0, epochs=1, device="cpu").fit(X, show_progress=False)

def test_default_autoencoder_flags_planted_anomalies():
    X, odd = low_rank(n=400, seed=3)
    train = np.vstack([X[:300], odd[:6]])  # a few anomalies in the training rows too (as in ADBench)
    model = ek.AutoEncoder(device="cpu")  # every default: score="auto" (forests + input and latent k-NN), 50 epochs
    model.fit(train, show_progress=False)
    test, labels = np.vstack([X[300:], odd[6:]]), np.r_[np.zeros(100), np.ones(14)]
    assert anomaly_auc(model.decision_function(test), labels) > 0.97
    assert model.predict(test)[100:].mean() > 0.8 and model.predict(test)[:100].mean() < 0.2


def test_patience_without_a_validation_split_is_named_as_ignored():
    X, _ = low_rank(n=60)
    model = ek.AutoEncoder(**{**FAST, "epochs": 3, "patience": 1, "validation_fraction": 0.0})
    with pytest.warns(IgnoredParameterWarning, match=r"'patience' parameter \(1\) is ignored with validation_fraction=0"):
        model.fit(X, show_progress=False)
    assert len(model.loss_history_) == 3
    with warnings.catch_warnings():  # patience with a split, or no patience without one: silent
        warnings.simplefilter("error", IgnoredParameterWarning)
        ek.AutoEncoder(**{**FAST, "epochs": 1, "validation_fraction": 0.0}).fit(X, show_progress=False)
        ek.AutoEncoder(**{**FAST, "epochs": 1, "patience": 1, "validation_fraction": 0.4}).fit(X, show_progress=False)


def test_knn_scores_search_a_sample_of_large_training_sets(monkeypatch, tmp_path):
    """Above KNN_REFERENCE_ROWS training rows the k-NN scores search a fixed uniform sample of them (exact
    search over all pairs grows with rows squared); the sample is saved, and small sets use every row."""
    from embedkit.trainers.encoders import _anomaly

    X, odd = low_rank(n=400)
    rows, labels = np.vstack([X, odd]), np.r_[np.zeros(400), np.ones(20)]
    real, searched = _anomaly.knn_distances, []
    monkeypatch.setattr(_anomaly, "knn_distances",
                        lambda ref, queries, k, exclude_self=False, device=None: searched.append(len(ref))
                        or real(ref, queries, k, exclude_self, device))
    monkeypatch.setattr(_anomaly, "KNN_REFERENCE_ROWS", 100)
    model = ek.AutoEncoder(**FAST)
    model.fit(rows, show_progress=False)
    assert model.score == "auto" and len(model._knn_reference) == 100 and set(searched) == {100}
    assert anomaly_auc(model.decision_scores_, labels) > 0.95
    searched.clear()
    new = model.decision_function(rows[:50])
    assert set(searched) == {100}
    back = ek.AutoEncoder.load(model.save(tmp_path / "ae.npz"))
    np.testing.assert_array_equal(back._knn_reference, model._knn_reference)
    np.testing.assert_allclose(back.decision_function(rows[:50]), new, rtol=1e-5, atol=1e-6)
    model.set_params(n_neighbors=3)  # rescoring the training rows searches the same sample
    assert anomaly_auc(model.decision_scores_, labels) > 0.95 and len(model._knn_reference) == 100
    store = ek.Store(str(tmp_path / "store"))
    model.save("big", store)
    again = ek.AutoEncoder.from_store("big", store)
    np.testing.assert_array_equal(again._knn_reference, model._knn_reference)
    arrays = dict(np.load(tmp_path / "ae.npz", allow_pickle=False))
    arrays["knn_reference"] = np.array([0, 10**6])
    with pytest.raises(ek.StoreError, match="k-NN reference rows are damaged"):
        ek.AutoEncoder.from_arrays(arrays)
    searched.clear()
    model.fit(rows[:80], show_progress=False)  # a refit on fewer rows than the cap drops the sample
    assert "_knn_reference" not in model.__dict__ and set(searched) == {80}


def test_only_the_parts_a_score_needs_are_searched_at_fit(monkeypatch, tmp_path):
    """A fit scores its training rows with the parts of ``score`` alone (the k-NN searches cost rows x reference
    rows); another score's parts are computed when first asked for and give what a fit with that score gives."""
    from embedkit.trainers.encoders import _anomaly

    X, odd = low_rank(n=300)
    rows = np.vstack([X, odd])
    real, searched = _anomaly.knn_distances, []
    monkeypatch.setattr(_anomaly, "knn_distances", lambda ref, queries, k, exclude_self=False, device=None:
                        searched.append(ref.shape[1]) or real(ref, queries, k, exclude_self, device))
    recon, ensemble = (ek.AutoEncoder(**FAST, score=s, seed=3) for s in ("reconstruction", "ensemble"))
    recon.fit(rows, show_progress=False)
    assert searched == [] and np.isnan(recon._score_stats[2:]).all()
    ensemble.fit(rows, show_progress=False)
    assert sorted(searched) == [2, 10]  # the latent codes (dim 2) and the scaled rows (10 features)
    searched.clear()
    back = ek.AutoEncoder.load(recon.save(tmp_path / "recon.npz"))
    for model in (recon, back):  # a score other than the fitted one scales its parts on first use
        np.testing.assert_allclose(model.anomaly_scores(rows[:40], "ensemble"), ensemble.decision_function(rows[:40]),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model._score_stats, ensemble._score_stats, rtol=1e-5)
    fresh = ek.AutoEncoder(**FAST, score="reconstruction", seed=3)
    fresh.fit(rows, show_progress=False)
    arrays = fresh.to_arrays()  # the file gets every scale, so that any score reads back; earlier arrays stay
    assert np.isfinite(arrays["score_stats"]).all()
    handed = fresh.to_arrays()["score_stats"].copy()
    fresh.set_params(n_neighbors=4)
    np.testing.assert_array_equal(arrays["score_stats"], handed)
    recon.set_params(score="ensemble")  # rescoring the training rows: as the ensemble fit scored them
    np.testing.assert_allclose(recon.decision_scores_, ensemble.decision_scores_, rtol=1e-5, atol=1e-6)
    assert recon.threshold_ == pytest.approx(ensemble.threshold_, rel=1e-5)


def test_device_search_matches_the_index_search():
    """The blocked matrix-product search that a CUDA model's k-NN scores use finds what VectorIndex finds
    (run here on the CPU; tests/test_cuda_encoders.py runs it on CUDA), a block at a time."""
    import torch

    from embedkit.trainers.encoders import _anomaly

    rng = np.random.default_rng(0)
    ref, queries = rng.normal(size=(500, 8)), rng.normal(size=(130, 8))
    want_d, want_i = _anomaly._index_search(ref, queries, 7)
    monkey_block = _anomaly.DEVICE_BLOCK
    try:
        _anomaly.DEVICE_BLOCK = 500 * 40  # blocks of 40 queries: 4 blocks, the last one short
        got_d, got_i = _anomaly._device_search(ref, queries, 7, torch.device("cpu"))
    finally:
        _anomaly.DEVICE_BLOCK = monkey_block
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_d, want_d, rtol=1e-4, atol=1e-5)
    assert _anomaly._device_search(ref, queries[:0], 7, torch.device("cpu"))[0].shape == (0, 7)


def test_device_branch_leaves_each_training_row_out(monkeypatch):
    """neighbour_distances' device branch (CUDA's, run here on the CPU) leaves each training row's own entry out as
    the index branch does, also where exact duplicates tie with it."""
    import torch

    from embedkit.trainers.encoders import _anomaly

    rng = np.random.default_rng(1)
    codes = rng.normal(size=(200, 6)).astype(np.float32)
    codes[150:160] = codes[:10]  # ten exact duplicates
    want = _anomaly.neighbour_distances(codes, codes, 5, exclude_self=True)
    monkeypatch.setattr(_anomaly, "_on_device", lambda device: device is not None)
    got = _anomaly.neighbour_distances(codes, codes, 5, exclude_self=True, device=torch.device("cpu"))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-3)
    assert np.all(got[:10, 0] < 2e-3) and np.all(got[150:160, 0] < 2e-3)  # the duplicate, not the row itself, is kept


def test_a_file_without_training_rows_rescales_knn_for_a_new_n_neighbors():
    """A model read from a file without its scaled training rows (written before "input_knn") and given another
    n_neighbors scales its latent k-NN part for that k, as a fit with it would."""
    X, odd = low_rank(n=300)
    rows = np.vstack([X, odd])
    model, three = ek.AutoEncoder(**FAST, score="combined", seed=2), ek.AutoEncoder(**FAST, score="combined", seed=2,
                                                                                    n_neighbors=3)
    model.fit(rows, show_progress=False)
    three.fit(rows, show_progress=False)
    arrays = {k: v for k, v in model.to_arrays().items() if k not in ("train_rows", "train_residuals")}
    back = ek.AutoEncoder.from_arrays(arrays, n_neighbors=3)
    np.testing.assert_allclose(back.anomaly_scores(rows[:30], "combined"), three.decision_function(rows[:30]),
                               rtol=1e-5, atol=1e-6)


def test_rescoring_as_auto_equals_an_auto_fit():
    """set_params(score="auto") on a model fitted with another score builds the forests from the stored training
    rows and gives what an "auto" fit gives; a file without training rows names "auto" in its error."""
    X, odd = low_rank(n=300)
    rows = np.vstack([X, odd])
    other, auto = ek.AutoEncoder(**FAST, score="knn", seed=4), ek.AutoEncoder(**FAST, seed=4)
    other.fit(rows, show_progress=False)
    auto.fit(rows, show_progress=False)
    assert "_hybrid" not in other.__dict__ and "_train_residuals" not in other.__dict__
    other.set_params(score="auto")
    np.testing.assert_allclose(other.decision_scores_, auto.decision_scores_, rtol=1e-5, atol=1e-5)
    assert other.threshold_ == pytest.approx(auto.threshold_, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(other.decision_function(rows[:40]), auto.decision_function(rows[:40]), rtol=1e-5,
                               atol=1e-5)
    arrays = {k: v for k, v in auto.to_arrays().items() if k not in ("train_rows", "train_residuals")}
    with pytest.raises(InputError, match="method='auto' needs"):
        ek.AutoEncoder.from_arrays(arrays).anomaly_scores(rows[:5], method="auto")
