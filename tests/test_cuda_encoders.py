"""SiameseEncoder, AutoEncoder and KNNEstimator on a CUDA device (skipped without one).

Each test trains on the GPU and checks the same planted answers as the CPU tests, that the same seed
gives the same vectors there, and that a model trained on the GPU saves, reloads and scores on the CPU.
"""

import numpy as np
import pytest
import torch
from test_autoencoder import low_rank  # rows on a plane in 10-D, anomalies off it

import embedkit as ek
from embedkit.evaluate.encoders import anomaly_auc, map_at_r, precision_at_1

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def blobs(n_per=40, seed=0, n_classes=6, d=16):
    """Classes apart in the first 4 features; the rest is larger noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (n_classes, 4))
    y = np.repeat(np.arange(n_classes), n_per)
    X = np.hstack([centres[y] + rng.normal(0, 0.5, (len(y), 4)), rng.normal(0, 2.0, (len(y), d - 4))])
    return X.astype(np.float32), y


@pytest.mark.parametrize("variant", ["undercomplete", "denoising", "sparse", "vae", "linear"])
def test_autoencoder_variants_on_cuda(variant, tmp_path):
    X, odd = low_rank(n=400)
    X, test = X[:300], X[300:]
    params = dict(variant=variant, dim=2, hidden=(32,), epochs=40, batch_size=32, device="cuda", seed=1)
    model = ek.AutoEncoder(**params)
    emb = model.fit(X, show_progress=False)
    assert model.device_.type == "cuda"
    assert emb.vectors.shape == (300, 2) and emb.vectors.dtype == np.float32 and np.isfinite(emb.vectors).all()
    assert model.loss_history_[-1] < model.loss_history_[0]
    labels = np.r_[np.zeros(100), np.ones(20)]
    assert anomaly_auc(model.anomaly_scores(np.vstack([test, odd])), labels) > 0.95
    assert anomaly_auc(model.decision_function(np.vstack([test, odd])), labels) > 0.95
    again = ek.AutoEncoder(**params).fit(X, show_progress=False)
    np.testing.assert_allclose(again.vectors, emb.vectors, atol=1e-4)
    # trained on the GPU, read back on the CPU
    back = ek.AutoEncoder.load(model.save(tmp_path / "ae.npz"), device="cpu")
    assert back.device_.type == "cpu"
    np.testing.assert_allclose(back.encode(test), model.encode(test), atol=1e-4)
    np.testing.assert_allclose(back.decision_function(test), model.decision_function(test), rtol=1e-3, atol=1e-4)


def test_autoencoder_default_and_anomaly_api_on_cuda():
    X, odd = low_rank(n=500, seed=2)
    rows = np.vstack([X, odd])
    model = ek.AutoEncoder(epochs=20, contamination=0.05, device="cuda", seed=0)
    flags = model.fit_predict(rows, show_progress=False)
    assert model.device_.type == "cuda" and model.score == "auto"
    assert flags.shape == (len(rows),) and set(np.unique(flags)) <= {0, 1}
    assert flags[-20:].mean() > 0.8 and flags[:-20].mean() < 0.05
    assert np.isfinite(model.threshold_)
    cpu = ek.AutoEncoder(epochs=20, contamination=0.05, device="cpu", seed=0)
    cpu.fit(rows, show_progress=False)
    labels = np.r_[np.zeros(len(X)), np.ones(20)]
    gpu_auc, cpu_auc = anomaly_auc(model.decision_scores_, labels), anomaly_auc(cpu.decision_scores_, labels)
    assert gpu_auc > 0.95 and abs(gpu_auc - cpu_auc) < 0.02
    z = model.encode(X[:3])
    assert model.decode(z).shape == (3, X.shape[1]) and model.interpolate(X[0], X[1], steps=4).shape[0] == 4


def test_autoencoder_custom_modules_on_cuda():
    from torch import nn

    X, _ = low_rank(n=200)
    model = ek.AutoEncoder(encoder=nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 2)),
                           decoder=nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 10)),
                           epochs=10, batch_size=32, device="cuda", seed=0)
    emb = model.fit(X, show_progress=False)
    assert emb.vectors.shape == (200, 2) and np.isfinite(emb.vectors).all()
    assert model.loss_history_[-1] < model.loss_history_[0]


def test_siamese_default_on_cuda(tmp_path):
    X, y = blobs(n_per=30, n_classes=10)
    seen, unseen = y < 7, y >= 7
    params = dict(dim=8, epochs=10, batch_size=64, device="cuda", seed=0)
    model = ek.SiameseEncoder(**params)
    emb = model.fit(X[seen], y[seen], show_progress=False)
    assert model.device_.type == "cuda" and np.isfinite(emb.vectors).all()
    V = model.encode(X[unseen])
    assert map_at_r(V, y[unseen]) > map_at_r(X[unseen], y[unseen])
    again = ek.SiameseEncoder(**params).fit(X[seen], y[seen], show_progress=False)
    np.testing.assert_allclose(again.vectors, emb.vectors, atol=1e-4)
    back = ek.SiameseEncoder.load(model.save(tmp_path / "siamese"), device="cpu")
    np.testing.assert_allclose(back.encode(X[unseen]), V, atol=1e-4)


@pytest.mark.parametrize("loss", ["contrastive", "triplet", "infonce"])
def test_siamese_losses_on_cuda(loss):
    X, y = blobs(n_per=30, n_classes=3, d=6)
    model = ek.SiameseEncoder(loss=loss, dim=4, hidden=(32,), epochs=15, batch_size=32, input_share=0.0,
                              device="cuda", seed=0)
    emb = model.fit(X, y, show_progress=False)
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert precision_at_1(emb, y) > 0.95


@pytest.mark.parametrize("mode", ["contrastive", "predictive"])
def test_siamese_self_supervised_on_cuda(mode):
    X, y = blobs(n_per=40, n_classes=4)
    model = ek.SiameseEncoder(self_supervised=mode, dim=8, epochs=5, batch_size=64, device="cuda", seed=0)
    emb = model.fit(X, show_progress=False)
    assert model.device_.type == "cuda" and np.isfinite(emb.vectors).all() and len(model.loss_history_) == 5
    assert precision_at_1(emb, y) > 0.6  # chance is 0.25; on CPU these settings give 0.71-0.80 over seeds 0-2


def test_knn_estimator_over_a_cuda_encoder():
    X, y = blobs(n_per=40, n_classes=4)
    enc = ek.SiameseEncoder(dim=8, epochs=40, batch_size=64, device="cuda", seed=0)
    enc.fit(X[::2], y[::2], show_progress=False)
    knn = ek.KNNEstimator(encoder=enc, k=5).fit(X[::2], y[::2])
    raw = ek.KNNEstimator(k=5).fit(X[::2], y[::2]).score(X[1::2], y[1::2])  # 0.86; the CPU encoder: 0.93
    assert knn.score(X[1::2], y[1::2]) > raw
    assert knn.predict_proba(X[1::2]).shape == (len(X[1::2]), 4)


def test_auto_device_picks_cuda():
    X, _ = low_rank(n=100)
    model = ek.AutoEncoder(dim=2, epochs=2, device="auto")
    model.fit(X, show_progress=False)
    assert model.device_.type == "cuda"


def test_autoencoder_knn_scores_search_on_cuda(monkeypatch):
    """A CUDA model's k-NN scores are searched on the GPU and equal the CPU index search of the same codes,
    the training rows' own entries left out (also with duplicated rows)."""
    from embedkit.trainers.encoders import _anomaly

    real, on_gpu = _anomaly._device_search, []
    monkeypatch.setattr(_anomaly, "_device_search", lambda *a: on_gpu.append(a[3].type) or real(*a))
    X, odd = low_rank(n=300)
    rows = np.vstack([X, X[:5], odd]).astype(np.float32)  # five exact duplicates
    model = ek.AutoEncoder(dim=2, hidden=(32,), epochs=20, device="cuda")
    model.fit(rows, show_progress=False)
    assert on_gpu == ["cuda", "cuda"]  # the default's two parts, each searched on the GPU
    for codes in (model.embeddings_.vectors, model._train_rows):
        np.testing.assert_allclose(_anomaly.training_knn_distances(codes, 10, None, torch.device("cuda")),
                                   _anomaly.training_knn_distances(codes, 10, None), rtol=1e-4, atol=1e-3)
    on_gpu.clear()
    cpu = _anomaly.knn_distances(model._train_rows, model._train_rows[:50], 10)
    np.testing.assert_allclose(model.anomaly_scores(rows[:50], "input_knn"), cpu, rtol=1e-4, atol=1e-3)
    assert on_gpu == ["cuda"]
