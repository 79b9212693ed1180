"""Encoders, issue 14: the PyOD-style anomaly API, latent k-NN scores, custom modules, bce, decode and
interpolate, the linear (PCA) variant, self-supervised Siamese modes, the PCA skip path, KNNEstimator,
average precision and the CLI's --anomaly file."""

import numpy as np
import pytest
import torch
from torch import nn

import embedkit as ek
from embedkit.cli import main
from embedkit.errors import InputError, NotFittedError
from embedkit.evaluate.anomaly import anomaly_report, average_precision
from embedkit.evaluate.encoders import anomaly_auc, map_at_r
from embedkit.trainers.encoders import KNNEstimator

FAST = dict(hidden=(32,), epochs=30, batch_size=32, device="cpu")


def clusters_with_outliers(n=300, d=8, n_out=15, seed=0):
    """Three tight clusters in d-D; outliers scattered far from all of them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, d))
    X = centres[rng.integers(0, 3, n)] + rng.normal(0, 0.5, (n, d))
    out = rng.uniform(-10, 10, (n_out, d))
    return X.astype(np.float32), out.astype(np.float32)


def test_pyod_api_scores_threshold_and_labels(tmp_path):
    X, out = clusters_with_outliers()
    train = np.vstack([X[:250], out[:10]])
    model = ek.AutoEncoder(contamination=0.05, **FAST)
    labels = model.fit_predict(train, show_progress=False)
    assert model.dim_ == 4  # half the features by default
    assert labels.shape == (260,) and set(np.unique(labels)) <= {0, 1}
    assert labels.sum() == pytest.approx(0.05 * 260, abs=2)
    assert labels[-10:].sum() >= 8  # the planted outliers are flagged
    assert model.decision_scores_.shape == (260,)
    assert np.mean(model.decision_scores_ > model.threshold_) == pytest.approx(0.05, abs=0.01)
    test = np.vstack([X[250:], out[10:]])
    truth = np.r_[np.zeros(50), np.ones(5)]
    for method in ("auto", "ensemble", "combined", "reconstruction", "knn", "input_knn", "hybrid"):
        assert anomaly_auc(model.anomaly_scores(test, method=method), truth) > 0.9, method
    assert model.score == "auto"  # the default: forests and input / latent k-NN, robust-scaled, weighted
    np.testing.assert_allclose(model.decision_function(test), model.anomaly_scores(test, method="auto"))
    mr, sr, mk, sk, mi, si = model._score_stats
    knn_z = (model.anomaly_scores(test, method="knn") - mk) / sk
    input_z = (model.anomaly_scores(test, method="input_knn") - mi) / si
    np.testing.assert_allclose(model.anomaly_scores(test, method="ensemble"), 0.5 * (knn_z + input_z), rtol=1e-4,
                               atol=1e-4)
    parts, table = model._hybrid_parts(), model._prepare(test)  # "auto": forests 1, input k-NN 1, the AE's parts 0.25
    rows = table.cpu().numpy()
    (mf, sf), (mrf, srf) = parts["stats"]["forest"], parts["stats"]["residual_forest"]
    forest_z = (-parts["forest"].score_samples(rows) - mf) / sf
    residual_z = (-parts["residual_forest"].score_samples(np.hstack([rows, model._residuals(table)])) - mrf) / srf
    np.testing.assert_allclose(model.decision_function(test), (forest_z + input_z + 0.25 * knn_z + 0.25 * residual_z)
                               / 2.5, rtol=1e-4, atol=1e-4)
    assert (model.predict(test) == (model.decision_function(test) > model.threshold_)).all()
    assert model.predict(test, threshold=1e9).sum() == 0
    with pytest.raises(InputError, match="threshold"):
        model.predict(test, threshold="high")
    back = ek.AutoEncoder.load(model.save(tmp_path / "ae"))
    np.testing.assert_allclose(back.decision_function(test), model.decision_function(test), rtol=1e-4, atol=1e-5)
    assert back.threshold_ == pytest.approx(model.threshold_) and (back.labels_ == model.labels_).all()
    np.testing.assert_allclose(back.anomaly_scores(test, method="input_knn"), model.anomaly_scores(test, method="input_knn"),
                               rtol=1e-4, atol=1e-5)


def test_input_knn_score_is_the_scaled_row_distance():
    X, out = clusters_with_outliers()
    model = ek.AutoEncoder(score="input_knn", n_neighbors=3, **{**FAST, "epochs": 2})
    model.fit(X, show_progress=False)
    Z, Q = ((a - model.scaler_.mean) / model.scaler_.scale for a in (X, out))
    d = np.sqrt(((Q[:, None, :] - Z[None]) ** 2).sum(-1))
    np.testing.assert_allclose(model.decision_function(out), np.sort(d, axis=1)[:, :3].mean(1), rtol=1e-3, atol=1e-3)
    own = np.sqrt(((Z[:, None, :] - Z[None]) ** 2).sum(-1))
    np.fill_diagonal(own, np.inf)  # training rows' scores leave their own row out
    np.testing.assert_allclose(model.decision_scores_, np.sort(own, axis=1)[:, :3].mean(1), rtol=1e-3, atol=1e-3)


def test_score_choice_and_validation_split():
    X, out = clusters_with_outliers()
    model = ek.AutoEncoder(score="knn", n_neighbors=3, **FAST)
    assert model.fit(X, show_progress=False).vectors.shape == (300, 4)
    np.testing.assert_allclose(model.decision_function(out), model.anomaly_scores(out, method="knn"))
    assert 1 <= model.best_epoch_ <= 30  # 30 held-out rows: the best validation epoch's weights are kept
    small = ek.AutoEncoder(**{**FAST, "epochs": 3}).fit(X[:50], show_progress=False)
    assert small.vectors.shape == (50, 4)


def test_linear_variant_matches_pca_subspace():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(400, 3)) @ rng.normal(size=(3, 10)) + 0.05 * rng.normal(size=(400, 10))).astype(np.float32)
    model = ek.AutoEncoder(variant="linear", dim=3, epochs=60, batch_size=32, lr=1e-2, validation_fraction=0.0,
                           device="cpu")
    model.fit(X, show_progress=False)
    Z = (X - X.mean(0)) / X.std(0)
    err_pca = ((Z - Z @ np.linalg.svd(Z, full_matrices=False)[2][:3].T @ np.linalg.svd(Z, full_matrices=False)[2][:3])
               ** 2).mean()
    err_ae = model.anomaly_scores(X).mean()
    assert err_ae < 1.5 * err_pca + 1e-3
    assert len(model.model_) == 1 and isinstance(model.model_[0], nn.Linear)


def test_custom_modules_bce_decode_interpolate_and_reload(tmp_path):
    from sklearn.datasets import load_digits

    X = (load_digits().data[:200] / 16.0).astype(np.float32)

    def modules():
        torch.manual_seed(0)
        enc = nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                            nn.Flatten(), nn.Linear(8 * 16, 6))
        dec = nn.Sequential(nn.Linear(6, 8 * 16), nn.ReLU(), nn.Unflatten(1, (8, 4, 4)),
                            nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1), nn.Flatten())
        return enc, dec

    enc, dec = modules()
    model = ek.AutoEncoder(encoder=enc, decoder=dec, loss="bce", epochs=5, batch_size=32, device="cpu")
    emb = model.fit(X, show_progress=False)
    assert model.dim_ == 6 and emb.vectors.shape == (200, 6)
    assert model.loss_history_[-1] < model.loss_history_[0]
    rec = model.reconstruct(X[:5])
    assert rec.shape == (5, 64) and rec.min() >= 0 and rec.max() <= 1.0 + 1e-6  # min-max scaled back
    path = model.save(tmp_path / "conv")
    with pytest.raises(InputError, match="encoder=module"):
        ek.AutoEncoder.load(path)
    back = ek.AutoEncoder.load(path, encoder=modules()[0], decoder=modules()[1])
    np.testing.assert_allclose(back.encode(X[:5]), model.encode(X[:5]), atol=1e-5)
    line = model.interpolate(X[0], X[1], steps=5)
    assert line.shape == (5, 64)
    np.testing.assert_allclose(line[0], model.decode(model.encode(X[:1]))[0], atol=1e-5)
    with pytest.raises(InputError, match="both encoder= and decoder="):
        ek.AutoEncoder(encoder=modules()[0], device="cpu").fit(X, show_progress=False)
    with pytest.raises(InputError, match="decoder returns shape"):
        ek.AutoEncoder(encoder=modules()[0], decoder=nn.Linear(6, 10), epochs=1, device="cpu").fit(
            X, show_progress=False)
    with pytest.raises(InputError, match=r"needs features in \[0, 1\]"):
        ek.AutoEncoder(loss="bce", standardize=False, epochs=1, device="cpu").fit(X * 16, show_progress=False)


def test_recurrent_autoencoder_on_sequences():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 12)
    X = np.stack([np.sin(t * f + p) for f, p in rng.uniform(0.5, 2, (120, 2))]).astype(np.float32)

    class Enc(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(1, 8, batch_first=True)

        def forward(self, x):
            return self.rnn(x.unsqueeze(-1))[1][-1]

    model = ek.AutoEncoder(encoder=Enc(), decoder=nn.Linear(8, 12), epochs=15, batch_size=32, device="cpu")
    model.fit(X, show_progress=False)
    assert model.dim_ == 8 and model.loss_history_[-1] < model.loss_history_[0]


@pytest.mark.parametrize("mode", ["contrastive", "predictive"])
def test_self_supervised_modes_beat_chance_on_unseen_rows(mode):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (4, 10))
    y = rng.integers(0, 4, 400)
    X = (centres[y] + rng.normal(0, 1, (400, 10))).astype(np.float32)
    model = ek.SiameseEncoder(dim=8, hidden=(32,), epochs=15, batch_size=64, self_supervised=mode, input_share=0.0,
                              device="cpu")
    emb = model.fit(X[:300], show_progress=False)
    assert emb.vectors.shape == (300, 8) and np.isfinite(emb.vectors).all()
    assert map_at_r(model.encode(X[300:]), y[300:]) > 0.6  # chance is about 0.25
    again = ek.SiameseEncoder(**model.get_params()).fit(X[:300], show_progress=False)
    np.testing.assert_allclose(again.vectors, emb.vectors, atol=1e-6)


def test_image_views_and_skip_path_round_trip(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:300].astype(np.float32)
    model = ek.SiameseEncoder(dim=8, hidden=(32,), epochs=2, image_shape=(8, 8), input_share=0.75, standardize=False,
                              device="cpu")
    model.fit(X, show_progress=False)
    assert model.skip_dims_ == 6  # round(0.75 * 8) principal axes kept beside 2 learned coordinates
    v = model.encode(X[:10])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    back = ek.SiameseEncoder.load(model.save(tmp_path / "s"))
    np.testing.assert_allclose(back.encode(X[:10]), v, atol=1e-6)
    assert model.input_share_ == 0.75
    sup = ek.SiameseEncoder(dim=8, hidden=(32,), epochs=3, input_share=0.0, device="cpu")
    assert sup.fit(X, y[:300], show_progress=False).vectors.shape == (300, 8) and sup.skip_dims_ == 0


def test_input_share_auto_picks_the_weight_on_held_out_classes():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (6, 4))
    y = rng.integers(0, 6, 300)
    # classes live in 4 features; 8 more features of large noise dominate the principal components
    X = np.hstack([centres[y] + rng.normal(0, 0.5, (300, 4)), rng.normal(0, 6, (300, 8))]).astype(np.float32)
    model = ek.SiameseEncoder(dim=8, hidden=(32,), epochs=10, standardize=False, device="cpu")
    model.fit(X, y, show_progress=False)
    assert model.skip_dims_ == 4 and model.input_share_ <= 0.25  # the noisy PCA part is down-weighted
    assert model.skip_space_ == "scaled"  # standardize=False: one space
    back = ek.SiameseEncoder.from_arrays(model.to_arrays())
    assert back.input_share_ == model.input_share_ and back.skip_space_ == "scaled"
    np.testing.assert_allclose(back.encode(X[:5]), model.encode(X[:5]), atol=1e-6)
    few = ek.SiameseEncoder(dim=8, hidden=(32,), epochs=1, device="cpu")
    few.fit(X[y < 3], y[y < 3], show_progress=False)
    assert few.input_share_ == 0.5  # fewer than 4 classes: nothing to hold out
    unlabelled = ek.SiameseEncoder(dim=8, hidden=(32,), epochs=1, device="cpu")
    unlabelled.fit(X, show_progress=False)
    assert unlabelled.input_share_ == 0.5


def test_knn_estimator_classifies_and_regresses():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (3, 6))
    y = rng.integers(0, 3, 200)
    X = (centres[y] + rng.normal(0, 1, (200, 6))).astype(np.float32)
    enc = ek.SiameseEncoder(dim=4, hidden=(16,), epochs=5, device="cpu")
    enc.fit(X[:150], y[:150], show_progress=False)
    knn = KNNEstimator(enc, k=5).fit(X[:150], y[:150])
    assert knn.task_ == "classify" and knn.score(X[150:], y[150:]) > 0.9
    proba = knn.predict_proba(X[150:])
    assert proba.shape == (50, 3) and np.allclose(proba.sum(1), 1)
    target = X[:, 0] * 2.0 + 0.01 * rng.normal(size=200)
    reg = KNNEstimator(None, k=3, metric="l2", weights="distance").fit(X[:150], target[:150])
    assert reg.task_ == "regress" and reg.score(X[150:], target[150:]) > 0.8
    with pytest.raises(InputError, match="predict_proba"):
        reg.predict_proba(X[:2])
    with pytest.raises(NotFittedError):
        KNNEstimator(k=2).predict(X[:2])
    with pytest.raises(InputError, match="one per row"):
        KNNEstimator(k=2).fit(X[:5], y[:4])


def test_average_precision_matches_sklearn_and_report():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    s = rng.integers(0, 6, 80).astype(float)
    y = rng.integers(0, 2, 80)
    assert average_precision(s, y) == pytest.approx(metrics.average_precision_score(y, s))
    rep = anomaly_report(s, y, threshold=3)
    assert rep["roc_auc"] == pytest.approx(metrics.roc_auc_score(y, s))
    assert rep["flagged"] == int((s > 3).sum()) and 0 <= rep["f1"] <= 1
    with pytest.raises(InputError, match="single class"):
        average_precision(s, np.zeros(80))


def test_cli_anomaly_file(tmp_path, capsys):
    X, out = clusters_with_outliers(n=80, n_out=4)
    path = tmp_path / "t.npy"
    np.save(path, np.vstack([X, out]))
    scores = tmp_path / "scores.csv"
    rc = main(["train", "autoencoder", str(path), "--name", "ae", "--hidden", "16", "--epochs", "5",
               "--device", "cpu", "--no-progress", "--store", str(tmp_path / "s"), "--anomaly", str(scores),
               "--contamination", "0.05"])
    assert rc == 0 and "rows above the threshold" in capsys.readouterr().out
    lines = scores.read_text().splitlines()
    assert lines[0] == "key,score,anomaly" and len(lines) == 85
    assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:]) == pytest.approx(4, abs=1)


def test_model_saved_before_the_input_knn_score_still_loads():
    X, out = clusters_with_outliers()
    model = ek.AutoEncoder(score="combined", **{**FAST, "epochs": 2})
    model.fit(X, show_progress=False)
    arrays = dict(model.to_arrays())
    del arrays["train_rows"]  # what the first format of this model held: 4 score statistics, no scaled rows
    arrays["score_stats"] = arrays["score_stats"][:4]
    old = ek.AutoEncoder.from_arrays(arrays)
    np.testing.assert_allclose(old.decision_function(out), model.decision_function(out), rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match="scaled training rows"):
        old.anomaly_scores(out, method="ensemble")


def correlated_rows_with_broken_dependence(seed=0, n=600, d=8, n_out=20):
    """Rows on a noisy 2-D linear subspace of R^d; anomalies take each column from the normal rows' values
    independently, so every value is ordinary and only the dependence between columns is broken."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) @ rng.normal(size=(2, d)) + 0.1 * rng.normal(size=(n, d))
    out = np.column_stack([rng.choice(X[:, j], n_out) for j in range(d)])
    return X[:500].astype(np.float32), np.vstack([X[500:], out]).astype(np.float32), np.r_[np.zeros(n - 500), np.ones(n_out)]


def test_hybrid_score_is_two_forests_and_input_knn(tmp_path):
    from sklearn.ensemble import IsolationForest

    from embedkit.trainers.encoders._anomaly import knn_distances, robust_scale

    train, test, truth = correlated_rows_with_broken_dependence()
    model = ek.AutoEncoder(score="hybrid", seed=3, **FAST)
    model.fit(train, show_progress=False)
    rows = model.scaler_.transform(train)
    resid = rows - model.scaler_.transform(model.reconstruct(train))
    q = model.scaler_.transform(test)
    q_resid = q - model.scaler_.transform(model.reconstruct(test))
    fx = IsolationForest(random_state=3).fit(rows)
    fr = IsolationForest(random_state=3).fit(np.hstack([rows, resid]))
    parts_train = [-fx.score_samples(rows), None, -fr.score_samples(np.hstack([rows, resid]))]
    parts_test = [-fx.score_samples(q), model.anomaly_scores(test, method="input_knn"),
                  -fr.score_samples(np.hstack([q, q_resid]))]
    _, _, _, _, mi, si = model._score_stats
    scales = [robust_scale(parts_train[0]), (mi, si), robust_scale(parts_train[2])]
    expected = np.mean([(p - m) / s for p, (m, s) in zip(parts_test, scales)], axis=0)
    np.testing.assert_allclose(model.decision_function(test), expected, rtol=1e-3, atol=1e-3)
    own = knn_distances(rows, rows, model.n_neighbors, exclude_self=True)  # a training row is not its own neighbour
    train_expected = np.mean([(p - m) / s for p, (m, s) in zip([parts_train[0], own, parts_train[2]], scales)], axis=0)
    np.testing.assert_allclose(model.decision_scores_, train_expected, rtol=1e-3, atol=1e-3)
    # the planted anomalies break only the dependence between columns: the residual forest sees them, a plain
    # isolation forest on the same rows much less (measured 0.98 against 0.83 on this seed)
    hybrid = anomaly_auc(model.decision_function(test), truth)
    assert hybrid > 0.9 and hybrid > anomaly_auc(-fx.score_samples(q), truth) + 0.05
    path = model.save(tmp_path / "ae")
    assert "train_residuals" in dict(model.to_arrays())
    np.testing.assert_array_equal(ek.AutoEncoder.load(path).decision_function(test), model.decision_function(test))
    # the forests keep the seed of the fit, whatever seed the loaded model is given
    np.testing.assert_array_equal(ek.AutoEncoder.load(path, seed=5).decision_function(test), model.decision_function(test))
    # a refit drops the old forests and residuals: the same as a new model fitted on the new rows
    other, _, _ = correlated_rows_with_broken_dependence(seed=4)
    model.fit(other, show_progress=False)
    fresh = ek.AutoEncoder(score="hybrid", seed=3, **FAST)
    fresh.fit(other, show_progress=False)
    np.testing.assert_array_equal(model.decision_function(test), fresh.decision_function(test))


def test_hybrid_on_demand_and_without_training_rows():
    train, test, _ = correlated_rows_with_broken_dependence(seed=1)
    model = ek.AutoEncoder(**{**FAST, "epochs": 3}, score="ensemble")
    model.fit(train, show_progress=False)
    assert "_hybrid" not in model.__dict__
    first = model.anomaly_scores(test, method="hybrid")  # built on demand for a model fitted with another score
    arrays = dict(model.to_arrays())
    assert "train_residuals" in arrays  # saved once computed, so a loaded model rebuilds the same forests
    np.testing.assert_array_equal(ek.AutoEncoder.from_arrays(arrays).anomaly_scores(test, method="hybrid"), first)
    del arrays["train_residuals"]  # recomputed from the loaded modules
    np.testing.assert_allclose(ek.AutoEncoder.from_arrays(arrays).anomaly_scores(test, method="hybrid"), first,
                               rtol=1e-4, atol=1e-4)
    del arrays["train_rows"]  # no rows, though all six statistics are there
    with pytest.raises(InputError, match="scaled training rows"):
        ek.AutoEncoder.from_arrays(arrays).anomaly_scores(test, method="hybrid")
    arrays["score_stats"] = arrays["score_stats"][:4]  # the first format: no rows, four statistics
    with pytest.raises(InputError, match="scaled training rows"):
        ek.AutoEncoder.from_arrays(arrays).anomaly_scores(test, method="hybrid")


def test_cli_hybrid_score(tmp_path):
    train, _, _ = correlated_rows_with_broken_dependence(seed=2)
    table = tmp_path / "rows.npy"
    np.save(table, train)
    scores = tmp_path / "scores.csv"
    assert main(["train", "autoencoder", str(table), "--name", "h", "--epochs", "2", "--score", "hybrid",
                 "--device", "cpu", "--no-progress", "--store", str(tmp_path / "s"), "--anomaly", str(scores)]) == 0
    lines = scores.read_text().splitlines()
    assert lines[0] == "key,score,anomaly" and len(lines) == 501
    same = ek.AutoEncoder(score="hybrid", epochs=2, device="cpu")  # what the command trained, in Python
    same.fit(train, show_progress=False)
    written = np.array([float(line.split(",")[1]) for line in lines[1:]])
    np.testing.assert_allclose(written, same.decision_scores_, rtol=1e-4, atol=1e-4)
