"""SiameseEncoder: known answers on planted clusters, determinism, save/load, errors, CLI, demo."""

import argparse
import json
import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

import embedkit as ek
from embedkit.cli import main
from embedkit.errors import IgnoredParameterWarning, InputError, NotFittedError, StoreError
from embedkit.evaluate.encoders import map_at_r, precision_at_1


def noisy_blobs(n_per=30, seed=0, n_classes=3, d=6):
    """Classes separated only in the first two features; the other features are large noise.

    Not conftest's ``blobs`` (classes apart in every feature, always three): here the raw
    features are dominated by noise, so a test can require the encoder to beat them
    (``test_learns_beyond_raw_features``), and two-class sets are needed too.
    """
    rng = np.random.default_rng(seed)
    centres = np.array([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])[:n_classes]
    X, y = [], []
    for c in range(n_classes):
        signal = centres[c] + rng.normal(0, 0.6, (n_per, 2))
        noise = rng.normal(0, 3.0, (n_per, d - 2))
        X.append(np.hstack([signal, noise]))
        y += [c] * n_per
    return np.vstack(X).astype(np.float32), np.array(y)


# input_share=0: these tests check the metric losses themselves (no PCA skip path beside them)
FAST = dict(dim=4, hidden=(32,), epochs=15, batch_size=32, input_share=0.0, device="cpu")


@pytest.mark.parametrize("loss,miner", [("contrastive", "random"), ("contrastive", "hard"),
                                        ("triplet", "semihard"), ("triplet", "hard"), ("infonce", "random")])
def test_separates_planted_classes_and_generalises(loss, miner):
    X, y = noisy_blobs()
    model = ek.SiameseEncoder(loss=loss, miner=miner, **FAST)
    emb = model.fit(X, y, show_progress=False)
    assert emb.vectors.shape == (len(X), 4) and emb.vectors.dtype == np.float32
    assert np.isfinite(emb.vectors).all()
    assert np.allclose(np.linalg.norm(emb.vectors, axis=1), 1.0, atol=1e-5)
    assert len(model.loss_history_) == FAST["epochs"]
    assert model.loss_history_[-1] < model.loss_history_[0]
    assert precision_at_1(emb, y) == 1.0
    # rows never seen in fit land with their class
    X_new, y_new = noisy_blobs(seed=1)
    assert map_at_r(model.encode(X_new), y_new) > 0.9


def test_learns_beyond_raw_features():
    # raw features are dominated by noise columns; the encoder must pick out the signal columns
    X, y = noisy_blobs(n_per=80, d=12)
    X_new, y_new = noisy_blobs(n_per=40, d=12, seed=3)
    raw = map_at_r(X_new, y_new)
    model = ek.SiameseEncoder(loss="contrastive", **FAST)
    model.fit(X, y, show_progress=False)
    assert map_at_r(model.encode(X_new), y_new) > raw + 0.2


def test_explicit_pairs():
    X, y = noisy_blobs(n_per=20, n_classes=2)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(X), 400), rng.integers(0, len(X), 400)
    pairs = np.stack([i, j, (y[i] == y[j]).astype(int)], axis=1)
    for loss in ("contrastive", "triplet", "infonce"):
        emb = ek.SiameseEncoder(loss=loss, **FAST).fit(X, pairs=pairs, show_progress=False)
        assert precision_at_1(emb, y) > 0.95, loss


def test_same_seed_same_vectors_and_keys():
    X, y = noisy_blobs(n_per=10)
    a = ek.SiameseEncoder(**FAST, seed=3).fit(X, y, keys=[f"r{i}" for i in range(len(X))], show_progress=False)
    b = ek.SiameseEncoder(**FAST, seed=3).fit(X, y, keys=[f"r{i}" for i in range(len(X))], show_progress=False)
    c = ek.SiameseEncoder(**FAST, seed=4).fit(X, y, show_progress=False)
    assert a.keys[:2] == ["r0", "r1"] and c.keys[:2] == ["0", "1"]
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert not np.allclose(a.vectors, c.vectors)


def test_pandas_input_uses_index_as_keys():
    pd = pytest.importorskip("pandas")
    X, y = noisy_blobs(n_per=8)
    df = pd.DataFrame(X, index=[f"item{i}" for i in range(len(X))])
    emb = ek.SiameseEncoder(**{**FAST, "epochs": 1}).fit(df, pd.Series(y), show_progress=False)
    assert emb.keys[0] == "item0"


def test_standardisation_learned_and_stored(tmp_path):
    X, y = noisy_blobs(n_per=10)
    X = X * np.array([1, 1, 1000, 1000, 1000, 1000], dtype=np.float32) + 50
    model = ek.SiameseEncoder(**{**FAST, "epochs": 2})
    model.fit(X, y, show_progress=False)
    np.testing.assert_allclose(model.scaler_.mean, X.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(model.scaler_.scale, X.std(axis=0), rtol=1e-4)
    loaded = ek.SiameseEncoder.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(loaded.scaler_.scale, model.scaler_.scale)
    raw = ek.SiameseEncoder(**{**FAST, "epochs": 1}, standardize=False)
    raw.fit(X, y, show_progress=False)
    assert (raw.scaler_.mean == 0).all() and (raw.scaler_.scale == 1).all()


def test_save_load_round_trip(tmp_path):
    X, y = noisy_blobs(n_per=10)
    model = ek.SiameseEncoder(loss="triplet", **FAST)
    model.fit(X, y, show_progress=False)
    path = model.save(tmp_path / "siamese.npz")
    loaded = ek.SiameseEncoder.load(path)
    np.testing.assert_allclose(loaded.encode(X), model.encode(X), atol=1e-6)
    assert loaded.loss == "triplet" and loaded.hidden == (32,) and loaded.loss_history_ == model.loss_history_
    assert loaded.get_params() == model.get_params()
    assert loaded.embeddings_.keys == model.embeddings_.keys
    np.testing.assert_array_equal(loaded.embeddings_.vectors, model.embeddings_.vectors)
    assert ek.SiameseEncoder.load(path, device="cpu", hidden=(32,)).margin_ == 0.2
    auto = ek.SiameseEncoder(**{**FAST, "epochs": 2})
    auto.fit(X, y, show_progress=False)
    assert ek.SiameseEncoder.load(auto.save(tmp_path / "auto")).loss_ == "infonce"  # the resolved loss is saved
    with np.load(path, allow_pickle=False) as data:  # plain arrays, readable without pickle
        assert "__config__" in data.files
    with pytest.raises(StoreError, match="AutoEncoder"):
        ek.AutoEncoder.load(path)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(StoreError):
        ek.SiameseEncoder.load(tmp_path / "junk.npz")


def make_cnn():
    # a small CNN on 4x4 "images" as a one-liner: any torch module mapping (batch, 16) -> (batch, dim)
    return nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64, 4))


def test_custom_encoder_trains_copy_and_reloads(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (20, 16)), rng.normal(3, 1, (20, 16))]).astype(np.float32)
    y = np.repeat([0, 1], 20)
    enc = make_cnn()
    before = [p.detach().clone() for p in enc.parameters()]
    model = ek.SiameseEncoder(encoder=enc, **{k: v for k, v in FAST.items() if k != "hidden"})
    emb = model.fit(X, y, show_progress=False)
    assert precision_at_1(emb, y) == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, enc.parameters()))  # the module passed in is untouched
    path = model.save(tmp_path / "cnn")
    with pytest.raises(InputError, match="encoder=module"):
        ek.SiameseEncoder.load(path)
    loaded = ek.SiameseEncoder.load(path, encoder=make_cnn())
    np.testing.assert_allclose(loaded.encode(X), model.encode(X), atol=1e-6)


def test_custom_encoder_wrong_output():
    X, y = noisy_blobs(n_per=5)
    with pytest.raises(InputError, match="dim=8"):
        ek.SiameseEncoder(encoder=nn.Linear(6, 3), dim=8, device="cpu").fit(X, y, show_progress=False)
    with pytest.raises(InputError, match="fails on input"):
        ek.SiameseEncoder(encoder=nn.Linear(5, 8), dim=8, device="cpu").fit(X, y, show_progress=False)


def test_callback_and_progress():
    X, y = noisy_blobs(n_per=5)
    seen = []
    ek.SiameseEncoder(**{**FAST, "epochs": 3}).fit(X, y, show_progress=False,
                                                  callback=lambda e, loss: seen.append((e, loss)))
    assert [e for e, _ in seen] == [1, 2, 3] and all(np.isfinite(l) for _, l in seen)


@pytest.mark.parametrize("kwargs,match", [
    (dict(loss="cosface"), "'loss' parameter"), (dict(dim=0), "'dim' parameter"),
    (dict(margin=-1.0), "'margin' parameter"), (dict(miner="hardest"), "'miner' parameter"),
    (dict(hidden=(0,)), "'hidden' parameter"), (dict(hidden=True), "'hidden' parameter"),
    (dict(encoder="mlp"), "'encoder' parameter"), (dict(device="tpu"), "'device' parameter"),
    (dict(batch_size=0), "'batch_size' parameter"), (dict(temperature=0.0), "'temperature' parameter"),
    (dict(weight_decay=-1e-4), "'weight_decay' parameter"), (dict(normalize=1), "'normalize' parameter"),
    (dict(lr=float("inf")), "'lr' parameter"), (dict(seed=-1), "'seed' parameter"),
    (dict(batch_size=3), r"batch_size >= 4 \(got 3\)"),  # label mode: 2 anchors and their positives
])
def test_bad_parameters(kwargs, match):
    X, y = noisy_blobs(n_per=5)
    with pytest.raises(InputError, match=match):
        ek.SiameseEncoder(**{**dict(device="cpu", epochs=1), **kwargs}).fit(X, y, show_progress=False)


def test_bad_inputs():
    X, y = noisy_blobs(n_per=5)
    m = ek.SiameseEncoder(device="cpu", epochs=1)
    with pytest.raises(InputError, match="at most one of y"):
        m.fit(X, y, pairs=[(0, 1, 1)], show_progress=False)
    with pytest.raises(InputError, match="14 labels but X has 15 rows"):
        m.fit(X, y[:-1], show_progress=False)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="row 3, column 2 is NaN"):
        m.fit(bad, y, show_progress=False)
    with pytest.raises(InputError, match="single class"):
        m.fit(X, np.zeros(len(X)), show_progress=False)
    with pytest.raises(InputError, match="X has 15 rows"):
        m.fit(X, pairs=[(0, 15, 1)], show_progress=False)
    with pytest.raises(InputError, match="needs class labels"):
        ek.SiameseEncoder(device="cpu", miner="hard").fit(X, pairs=[(0, 1, 1)], show_progress=False)
    with pytest.raises(NotFittedError):
        ek.SiameseEncoder().encode(X)
    m.fit(X, y, show_progress=False)
    with pytest.raises(InputError, match="fitted on 6"):
        m.encode(X[:, :5])


def test_invalid_parameter_message_names_owner_parameter_range_and_value():
    X, y = noisy_blobs(n_per=5)
    with pytest.raises(InputError) as info:
        ek.SiameseEncoder(dim=0, device="cpu").fit(X, y, show_progress=False)
    assert str(info.value) == ("The 'dim' parameter of SiameseEncoder must be an int in the range [1, 10000]. "
                               "Got 0 instead.")
    with pytest.raises(InputError, match=r"'margin' parameter of SiameseEncoder must be a float in the range "
                                         r"\(0\.0, inf\) or None\. Got -1"):
        ek.SiameseEncoder(margin=-1, device="cpu").fit(X, y, show_progress=False)


@pytest.mark.parametrize("kwargs,ignored", [
    (dict(loss="infonce", margin=0.5), "margin"), (dict(loss="infonce", miner="hard"), "miner"),
    (dict(loss="triplet", temperature=0.5), "temperature"),
    (dict(encoder=nn.Linear(6, 4), hidden=(8,)), "hidden"),
    (dict(early_stopping=False), "early_stopping"),  # FAST's MLP: only the PCA-started linear map uses it
])
def test_ignored_parameters_warn_once(kwargs, ignored):
    X, y = noisy_blobs(n_per=5)
    model = ek.SiameseEncoder(**{**FAST, "epochs": 1, **kwargs})
    with pytest.warns(IgnoredParameterWarning, match=f"'{ignored}' parameter") as record:
        model.fit(X, y, show_progress=False)
    assert sum(issubclass(w.category, IgnoredParameterWarning) for w in record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", IgnoredParameterWarning)
        model.fit(X, y, show_progress=False)  # once per model, not once per fit
        ek.SiameseEncoder(**{**FAST, "epochs": 1}).fit(X, y, show_progress=False)  # defaults: silent


def test_nothing_fitted_before_fit_and_after_a_failed_fit():
    X, y = noisy_blobs(n_per=5)
    model = ek.SiameseEncoder(**{**FAST, "epochs": 1})
    for name in ("model_", "scaler_", "n_features_", "device_", "embeddings_", "loss_history_", "margin_"):
        assert not hasattr(model, name), name
    with pytest.raises(NotFittedError, match="not fitted yet"):
        _ = model.scaler_
    with pytest.raises(NotFittedError):
        model.save("never.npz")
    model.fit(X, y, show_progress=False)
    assert model.n_features_ == 6 and model.loss_ == "infonce" and model.margin_ is None  # loss='auto' + labels
    before = model.encode(X)
    with pytest.raises(InputError, match="single class"):
        model.fit(X, np.zeros(len(X)), show_progress=False)
    # a refit with bad labels fails before anything is forgotten: the previous fit is kept
    np.testing.assert_array_equal(model.encode(X), before)
    fresh = ek.SiameseEncoder(**{**FAST, "epochs": 1})
    with pytest.raises(InputError, match="single class"):
        fresh.fit(X, np.zeros(len(X)), show_progress=False)
    assert not hasattr(fresh, "model_") and not hasattr(fresh, "embeddings_")


def test_pairs_batch_size_minimum():
    X, y = noisy_blobs(n_per=6, n_classes=2)
    pairs = [(0, 1, 1), (6, 7, 1), (0, 6, 0), (2, 3, 1)]
    model = ek.SiameseEncoder(**{**FAST, "epochs": 2, "batch_size": 1})
    emb = model.fit(X, pairs=pairs, show_progress=False)
    assert np.isfinite(emb.vectors).all()
    assert model.loss_ == "contrastive" and model.margin_ == 1.0  # loss='auto' with pairs: the dissimilar ones count
    with pytest.raises(InputError, match=r"batch_size >= 2 \(got 1\)"):
        ek.SiameseEncoder(**{**FAST, "loss": "infonce", "batch_size": 1}).fit(X, pairs=pairs, show_progress=False)


def test_reads_a_model_saved_in_the_first_format(tmp_path):
    X, y = noisy_blobs(n_per=10)
    model = ek.SiameseEncoder(loss="triplet", **FAST)
    model.fit(X, y, show_progress=False)
    # the layout "embedkit.encoder/1" wrote: config at the top level, scaler, one array per state tensor
    params = {k: v for k, v in model.json_params().items() if k != "encoder"}
    config = {"format": "embedkit.encoder/1", "class": "SiameseEncoder", "params": params, "n_features": 6,
              "modules_required": [], "loss_history": model.loss_history_}
    arrays = {"__config__": np.array(json.dumps(config)), "scaler.mean": model.scaler_.mean,
              "scaler.scale": model.scaler_.scale}
    for name, tensor in model.model_.state_dict().items():
        arrays[f"state:encoder.{name}"] = tensor.numpy()
    np.savez(tmp_path / "old.npz", **arrays)
    old = ek.SiameseEncoder.load(tmp_path / "old.npz")
    np.testing.assert_allclose(old.encode(X), model.encode(X), atol=1e-6)
    assert old.loss == "triplet" and old.loss_history_ == model.loss_history_
    with pytest.raises(NotFittedError, match="encode"):  # the old format had no training vectors
        _ = old.embeddings_
    again = ek.SiameseEncoder.from_arrays(old.to_arrays())  # re-saved in today's format
    np.testing.assert_allclose(again.encode(X), model.encode(X), atol=1e-6)
    config["modules_required"] = ["encoder"]
    arrays["__config__"] = np.array(json.dumps(config))
    with pytest.raises(InputError, match="encoder=module"):
        ek.SiameseEncoder.from_arrays(arrays)


def test_cli_train_and_query(tmp_path, capsys):
    X, y = noisy_blobs(n_per=10)
    lines = ["key," + ",".join(f"f{i}" for i in range(X.shape[1])) + ",label"]
    lines += [f"row{i}," + ",".join(f"{v:.4f}" for v in X[i]) + f",c{y[i]}" for i in range(len(X))]
    csv = tmp_path / "feat.csv"
    csv.write_text("\n".join(lines) + "\n")
    store = str(tmp_path / "store")
    rc = main(["train", "siamese", str(csv), "--label-column", "label", "--key-column", "key", "--name", "sia",
               "--dim", "4", "--hidden", "16", "--epochs", "5", "--loss", "triplet", "--device", "cpu",
               "--no-progress", "--store", store])
    assert rc == 0, capsys.readouterr().err
    assert "saved 30 vectors of dim 4" in capsys.readouterr().out
    assert main(["query", "sia", "row0", "-k", "3", "--store", store]) == 0
    assert "row" in capsys.readouterr().out
    # the stored extra rebuilds the encoder
    s = ek.Store(store)
    model = ek.SiameseEncoder.from_arrays(s.load_extra("sia", "model"), device="cpu")
    assert ek.SiameseEncoder.from_store("sia", s).embeddings_.keys == [f"row{i}" for i in range(30)]
    assert s.info("sia")["meta"]["trainer"] == "SiameseEncoder" and s.info("sia")["meta"]["n_features"] == 6
    written = np.array([[float(f"{v:.4f}") for v in row] for row in X[:3]], dtype=np.float32)
    np.testing.assert_allclose(model.encode(written), s.load("sia").get_vectors(["row0", "row1", "row2"]), atol=1e-5)
    # labels from a file with the wrong count: one line, exit 1
    (tmp_path / "labels.txt").write_text("a\nb\n")
    npy = tmp_path / "feat.npy"
    np.save(npy, X)
    rc = main(["train", "siamese", str(npy), "--labels", str(tmp_path / "labels.txt"), "--name", "x",
               "--device", "cpu", "--no-progress", "--store", store])
    err = capsys.readouterr().err
    assert rc == 1 and "2 labels but the feature file has 30 rows" in err and len(err.strip().splitlines()) == 1
    # no labels: self-supervised (SCARF views)
    rc = main(["train", "siamese", str(npy), "--name", "x", "--device", "cpu", "--store", store, "--no-progress"])
    assert rc == 0 and "self-supervised contrastive" in capsys.readouterr().out


def test_cli_pairs_file(tmp_path, capsys):
    X, y = noisy_blobs(n_per=6, n_classes=2)
    np.save(tmp_path / "x.npy", X)
    lines = [f"{i} {j} {int(y[i] == y[j])}" for i in range(len(X)) for j in range(i + 1, len(X))]
    (tmp_path / "pairs.txt").write_text("# i j similar\n" + "\n".join(lines) + "\n")
    base = ["train", "siamese", str(tmp_path / "x.npy"), "--name", "p", "--dim", "4", "--hidden", "8",
            "--epochs", "2", "--device", "cpu", "--no-progress", "--store", str(tmp_path / "s")]
    assert main(base + ["--pairs", str(tmp_path / "pairs.txt")]) == 0, capsys.readouterr().err
    (tmp_path / "bad.txt").write_text("0 1 1\n0 99 0\n")
    assert main(base + ["--force", "--pairs", str(tmp_path / "bad.txt")]) == 1
    assert "bad.txt:2: '99' is not a row of the feature table" in capsys.readouterr().err


def test_demo_trains_saves_and_reports(tmp_path, capsys):
    from embedkit.cli import encoders

    store = tmp_path / "store"
    encoders.demo(argparse.Namespace(store=str(store), no_progress=True, force=True, device="cpu", seed=0,
                                     metric="cosine", kind="auto"))
    text = capsys.readouterr().out
    assert "precision@1 among 599 held-out images: raw pixels" in text and "ROC-AUC" in text
    first = [line for line in text.splitlines() if line.startswith("held-out img")][0]
    digit = first.split(" ")[1].split(":")[1]
    assert first.split("-> nearest training images: ")[1].split(", ")[0].endswith(":" + digit)
    model = ek.SiameseEncoder.from_store("demo-digits", ek.Store(store))
    assert len(model.embeddings_) == 1198 and model.embeddings_.dim == 16
    raw, learned = [float(x) for x in text.split("raw pixels ")[1].split("\n")[0].split(", Siamese vectors ")]
    assert learned > 0.95 and raw > 0.95


# ---------------------------------------------------------------- the default: a linear map started at PCA
def shared_subspace(n_classes=10, n_per=40, d=24, k=4, seed=0):
    """Every class apart in one shared 4-d subspace; 20 nuisance dimensions of larger variance, rotated.

    Raw features and PCA are dominated by the nuisance, so neither retrieves the classes; what is
    learned on some classes (the shared subspace) carries over to classes never seen in fit.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (n_classes, k))
    y = np.repeat(np.arange(n_classes), n_per)
    signal = centres[y] + rng.normal(0, 0.4, (len(y), k))
    nuisance = rng.normal(0, 1.0, (len(y), d - k)) * np.linspace(3.0, 1.0, d - k)
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0]
    return (np.hstack([signal, nuisance]) @ rotation.T).astype(np.float32), y


DEFAULT_FAST = dict(dim=8, epochs=15, batch_size=64, lr=0.01, device="cpu")  # defaults otherwise


def test_default_beats_raw_and_pca_on_unseen_classes():
    X, y = shared_subspace()
    seen, unseen = y < 7, y >= 7
    model = ek.SiameseEncoder(**DEFAULT_FAST)
    model.fit(X[seen], y[seen], show_progress=False)
    assert model.hidden_ == () and model.pca_start_ and model.loss_ == "infonce" and model.input_share_ == 0.0
    curve = model.validation_curve_  # mean MAP@R of the probes' unseen classes, from epoch 0 (the PCA)
    assert len(curve) == 16 and 0 < model.epochs_ <= 15 and len(model.loss_history_) == model.epochs_
    assert model.epochs_ == int(np.argmax(curve)) and curve[model.epochs_] > curve[0] + 0.3
    V, u = model.encode(X[unseen]), y[unseen]
    pca = PCA(8, random_state=0).fit(X[seen]).transform(X[unseen])
    assert map_at_r(V, u) > max(map_at_r(X[unseen], u), map_at_r(pca, u)) + 0.3
    assert precision_at_1(V, u) >= precision_at_1(X[unseen], u) - 0.02


def test_default_starts_at_pca():
    # a vanishing learning rate leaves the start: the vectors are the PCA's (same cosine geometry)
    X, y = shared_subspace(n_per=15)
    model = ek.SiameseEncoder(dim=6, epochs=1, lr=1e-12, early_stopping=False, device="cpu")
    model.fit(X, y, show_progress=False)
    assert model.epochs_ == 1 and len(model.loss_history_) == 1 and model.validation_curve_ == []
    Z = X - X.mean(0) if model.skip_space_ == "raw" else (X - X.mean(0)) / X.std(0)
    P = PCA(6, random_state=0).fit_transform(Z)
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    V = model.encode(X)
    np.testing.assert_allclose(V @ V.T, P @ P.T, atol=1e-4)


def test_early_stopping_keeps_the_pca_when_training_cannot_help():
    # far-apart clusters: the PCA already retrieves every held-out class perfectly, so 0 epochs are chosen
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 12)
    X = (rng.normal(0, 10, (8, 6))[y] + rng.normal(0, 0.05, (96, 6))).astype(np.float32)
    model = ek.SiameseEncoder(dim=6, epochs=3, batch_size=32, device="cpu")
    model.fit(X, y, show_progress=False)
    assert model.validation_curve_[0] == 1.0 and model.epochs_ == 0 and model.loss_history_ == []
    assert precision_at_1(model.encode(X), y) == 1.0


def test_default_modes_and_fallbacks():
    X, y = noisy_blobs(n_per=10)  # 3 classes: too few for class folds, so no early stopping
    model = ek.SiameseEncoder(dim=4, epochs=3, device="cpu")
    model.fit(X, y, show_progress=False)
    assert model.pca_start_ and model.epochs_ == 3 and model.validation_curve_ == [] and model.skip_space_ == "scaled"
    ssl = ek.SiameseEncoder(dim=4, epochs=1, device="cpu")
    ssl.fit(X, show_progress=False)  # self-supervised: the MLP beside a PCA skip path, as before
    assert ssl.hidden_ == (256, 128) and not ssl.pca_start_ and ssl.skip_dims_ == 2
    pairs = [(0, 1, 1), (10, 11, 1), (0, 10, 0)]
    paired = ek.SiameseEncoder(dim=4, epochs=1, device="cpu")
    paired.fit(X, pairs=pairs, show_progress=False)
    assert paired.hidden_ == (256, 128) and not paired.pca_start_


def test_default_same_seed_and_save_load_round_trip(tmp_path):
    X, y = shared_subspace(n_per=15)
    model = ek.SiameseEncoder(**{**DEFAULT_FAST, "epochs": 3})
    emb = model.fit(X, y, show_progress=False)
    again = ek.SiameseEncoder(**{**DEFAULT_FAST, "epochs": 3}).fit(X, y, show_progress=False)
    np.testing.assert_array_equal(emb.vectors, again.vectors)
    back = ek.SiameseEncoder.load(model.save(tmp_path / "default"))
    np.testing.assert_allclose(back.encode(X), model.encode(X), atol=1e-6)
    assert back.get_params() == model.get_params() and back.hidden_ == () and back.pca_start_
    assert back.epochs_ == model.epochs_ and back.validation_curve_ == pytest.approx(model.validation_curve_)


def test_reads_a_model_saved_before_the_pca_start(tmp_path):
    # the previous version's files: no 'hidden' / 'pca_start' / 'epochs' in the state, no 'early_stopping' param
    X, y = noisy_blobs(n_per=10)
    model = ek.SiameseEncoder(**{**FAST, "input_share": 0.5})  # an MLP beside a PCA skip path
    model.fit(X, y, show_progress=False)
    arrays = model.to_arrays()
    config = json.loads(str(arrays["__config__"]))
    for key in ("hidden", "pca_start", "epochs", "validation_curve"):
        del config["state"][key]
    del config["params"]["early_stopping"]
    arrays["__config__"] = np.array(json.dumps(config))
    old = ek.SiameseEncoder.from_arrays(arrays)
    np.testing.assert_allclose(old.encode(X), model.encode(X), atol=1e-6)
    assert old.hidden_ == (32,) and not old.pca_start_ and old.skip_dims_ == 2 and old.epochs_ == 15


def test_early_stopping_folds_skip_single_row_classes_and_fallbacks_warn(caplog):
    # 4 classes of 12 rows and 3 classes of one row: the folds hold the 4 classes, the single rows train
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 12)
    X = (rng.normal(0, 3, (4, 6))[y] + rng.normal(size=(48, 6))).astype(np.float32)
    Xs = np.vstack([X, X[:3] + 0.5]).astype(np.float32)
    ys = np.concatenate([y.astype(str), ["a", "b", "c"]])
    model = ek.SiameseEncoder(dim=4, epochs=2, batch_size=32, device="cpu")
    with caplog.at_level("WARNING", logger="embedkit.trainers.encoders.siamese"):
        model.fit(Xs, ys, show_progress=False)
    assert len(model.validation_curve_) == 3 and model.epochs_ <= 2 and not caplog.records
    # 2 classes of several rows and 4 single rows: no class folds, and the fallback is logged with its reason
    Xs = np.vstack([X[:24], X[:4] + 0.5]).astype(np.float32)
    ys = np.concatenate([y[:24].astype(str), ["a", "b", "c", "d"]])
    model = ek.SiameseEncoder(dim=4, epochs=2, batch_size=32, device="cpu")
    with caplog.at_level("WARNING", logger="embedkit.trainers.encoders.siamese"):
        model.fit(Xs, ys, show_progress=False)
    assert model.validation_curve_ == [] and model.epochs_ == 2
    assert any("only 2 classes have 2 rows or more" in r.getMessage() and "early stopping is off" in r.getMessage()
               for r in caplog.records)


def test_bad_keys_and_labels_fail_before_the_cross_validation_probes(monkeypatch):
    X, y = noisy_blobs(n_per=10)

    def no_probe(*args, **kwargs):
        raise AssertionError("the cross-validation probes ran before the inputs were checked")

    monkeypatch.setattr(ek.SiameseEncoder, "_plan", no_probe)
    monkeypatch.setattr(ek.SiameseEncoder, "_choose_share", no_probe)
    with pytest.raises(InputError, match="keys"):
        ek.SiameseEncoder(device="cpu").fit(X, y, keys=["a", "b"], show_progress=False)
    with pytest.raises(InputError, match="y"):
        ek.SiameseEncoder(device="cpu").fit(X, y[:5], show_progress=False)
    with pytest.raises(InputError, match="device"):
        ek.SiameseEncoder(device="tpu").fit(X, y, show_progress=False)


def test_validation_scores_a_sample_of_large_held_out_folds(monkeypatch):
    """Exact MAP@R is quadratic in the rows it scores: the default's validation scores at most SCORED_ROWS
    held-out rows per fold, as whole classes drawn at random, so a large table trains without an all-pairs
    search and every scored row keeps its class partners."""
    import embedkit.evaluate.encoders as ev
    from embedkit.evaluate.encoders import scored_sample
    from embedkit.trainers.encoders import siamese

    X, y = shared_subspace(n_per=40)  # 400 rows, 10 classes of 40: folds of 120-160 rows
    real, scored = ev.map_at_r, []
    monkeypatch.setattr(ev, "map_at_r", lambda V, labels, **kw: scored.append(np.asarray(labels))
                        or real(V, labels, **kw))
    model = ek.SiameseEncoder(**{**DEFAULT_FAST, "epochs": 3})
    model.fit(X, y, show_progress=False)
    assert scored and max(map(len, scored)) > 100  # below the cap every held-out row is scored
    scored.clear()
    monkeypatch.setattr(siamese, "SCORED_ROWS", 90)
    sampled = ek.SiameseEncoder(**{**DEFAULT_FAST, "epochs": 3})
    sampled.fit(X, y, show_progress=False)
    assert scored and max(map(len, scored)) <= 90 and len(sampled.validation_curve_) == 4
    for lab in scored:  # 3-4 classes of 40 per fold: each keeps the same share (22 or 30 rows)
        assert len(set(np.unique(lab, return_counts=True)[1])) == 1 and len(np.unique(lab)) >= 3
    assert 0 <= sampled.epochs_ <= 3 and np.isfinite(sampled.encode(X)).all()
    rows = scored_sample(y >= 5, y, 90, seed=0)  # 5 classes of 40 under a cap of 90: 18 rows of each
    assert len(rows) == 90 and np.all(np.diff(rows) > 0) and set(np.unique(y[rows], return_counts=True)[1]) == {18}
    np.testing.assert_array_equal(rows, scored_sample(y >= 5, y, 90, seed=0))
    assert len(scored_sample(y == 3, y, 90, seed=0)) == 40  # below the cap: all rows
    big = scored_sample(y == 3, y, 30, seed=0)  # one class above the cap: a uniform sample of its rows
    assert len(big) == 30 and np.all(y[big] == 3) and np.all(np.diff(big) > 0)
    pairs = np.repeat(np.arange(100), 2)  # 100 classes of 2 rows: 2 rows each of 15 classes
    rows = scored_sample(np.ones(200, bool), pairs, 30, seed=1)
    assert len(rows) == 30 and set(np.unique(pairs[rows], return_counts=True)[1]) == {2}
