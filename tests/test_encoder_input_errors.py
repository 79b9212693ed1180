"""Bad input to AutoEncoder and SiameseEncoder: one-line errors that name the problem and the fix, and a failed
refit, load or save loses nothing."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import embedkit as ek
from embedkit.errors import InputError, StoreError
from embedkit.trainers.encoders import base

AE = dict(epochs=2, hidden=(8,), dim=2, device="cpu")
SIAM = dict(epochs=1, hidden=(8,), dim=4, device="cpu")


def rows(n=60, d=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


@pytest.fixture(scope="module")
def fitted_ae():
    model = ek.AutoEncoder(**AE)
    model.fit(rows(), show_progress=False)
    return model


@pytest.fixture(scope="module")
def saved_ae(fitted_ae, tmp_path_factory):
    return fitted_ae.save(tmp_path_factory.mktemp("ae") / "ae.npz")


def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# ---------------------------------------------------------------- 1. a failed refit keeps the fitted model
@pytest.mark.parametrize("bad", ["nan", "keys", "shape"])
def test_autoencoder_bad_refit_keeps_the_previous_fit(bad):
    X = rows()
    model = ek.AutoEncoder(**AE)
    model.fit(X, show_progress=False)
    scores, threshold, vectors = model.decision_function(X), model.threshold_, model.embeddings_.vectors.copy()
    args = {"nan": (np.where(np.arange(X.size).reshape(X.shape) == 3, np.nan, X),),
            "keys": (X, ["k"] * len(X)), "shape": (X[0],)}[bad]
    with pytest.raises(InputError) as err:
        model.fit(*args, show_progress=False)
    one_line(err)
    np.testing.assert_array_equal(model.decision_function(X), scores)
    assert model.threshold_ == threshold
    np.testing.assert_array_equal(model.embeddings_.vectors, vectors)
    model.fit(X[:40], show_progress=False)  # a good refit still replaces everything
    assert len(model.embeddings_) == 40 and len(model.decision_scores_) == 40


@pytest.mark.parametrize("bad", [dict(y=np.zeros(5)), dict(pairs=[(0, 99, 1)]), dict(keys=["a"] * 3),
                                 dict(keys=["a"] * 60)])
def test_siamese_bad_refit_keeps_the_previous_fit(bad):
    X, y = rows(), np.repeat(np.arange(4), 15)
    model = ek.SiameseEncoder(**SIAM)
    model.fit(X, y, show_progress=False)
    before = model.encode(X)
    with pytest.raises(InputError) as err:
        model.fit(X, **({"y": y} if "keys" in bad else {}), **bad, show_progress=False)
    one_line(err)
    np.testing.assert_array_equal(model.encode(X), before)
    assert len(model.embeddings_) == 60


class _Stop(Exception):
    pass


def _stop_at_epoch_1(epoch, loss):
    raise _Stop


@pytest.mark.parametrize("make,fit", [
    (lambda: ek.AutoEncoder(**AE), lambda m, X, y, **kw: m.fit(X, **kw)),
    (lambda: ek.SiameseEncoder(**SIAM), lambda m, X, y, **kw: m.fit(X, y, **kw)),
])
def test_an_error_during_training_puts_the_previous_fit_back(make, fit):
    X, y = rows(), np.repeat(np.arange(4), 15)
    model = make()
    fit(model, X, y, show_progress=False)
    before = {k: v for k, v in vars(model).items()}
    encoded = model.encode(X)
    with pytest.raises(_Stop):  # the error itself reaches the caller, and the previous fit is back
        fit(model, X[:40] * 3 + 1, y[:40], show_progress=False, callback=_stop_at_epoch_1)
    assert set(vars(model)) == set(before) and all(vars(model)[k] is v for k, v in before.items())
    np.testing.assert_array_equal(model.encode(X), encoded)
    assert len(model.embeddings_) == 60
    fresh = make()  # a first fit that fails leaves the model unfitted, not half fitted
    with pytest.raises(_Stop):
        fit(fresh, X, y, show_progress=False, callback=_stop_at_epoch_1)
    with pytest.raises(ek.NotFittedError):
        fresh.encode(X)


# ---------------------------------------------------------------- 2. image_shape against the feature count
def test_image_shape_must_match_the_feature_count():
    with pytest.raises(InputError, match=r"image_shape=\(4, 4\).*X has features \(6\)") as err:
        ek.SiameseEncoder(image_shape=(4, 4), **SIAM).fit(rows(), show_progress=False)
    one_line(err)
    with pytest.raises(InputError, match="image_shape"):
        ek.SiameseEncoder(image_shape=(6,), **SIAM).fit(rows(), show_progress=False)


# ---------------------------------------------------------------- 3. no one-row training step
def batchnorm_encoder(width=2):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, width))


def test_batchnorm_encoder_trains_when_the_last_batch_would_hold_one_row():
    model = ek.AutoEncoder(encoder=batchnorm_encoder(), decoder=nn.Linear(2, 6), epochs=1, validation_fraction=0,
                           device="cpu")
    assert model.fit(rows(129), show_progress=False).vectors.shape == (129, 2)  # 128 + 1 rows per epoch
    pairs = [(i, i + 1, i % 2) for i in range(9)]  # 9 pairs, batches of 8: no step of one pair
    siam = ek.SiameseEncoder(encoder=batchnorm_encoder(4), dim=4, epochs=1, batch_size=8, device="cpu")
    assert siam.fit(rows(), pairs=pairs, show_progress=False).vectors.shape == (60, 4)


def test_batchnorm_with_one_row_steps_is_a_clear_error():
    model = ek.AutoEncoder(encoder=batchnorm_encoder(), decoder=nn.Linear(2, 6), epochs=1, batch_size=1,
                           validation_fraction=0, device="cpu")
    with pytest.raises(InputError, match="batch_size >= 2") as err:
        model.fit(rows(10), show_progress=False)
    one_line(err)


def test_chunks_change_only_a_last_chunk_of_one_row():
    gen = lambda: base.make_generator(1, torch.device("cpu"))  # noqa: E731
    for n, size in [(11, 3), (12, 4), (7, 7), (1, 4), (5, 1)]:  # no chunk of one row (or only one chunk, or size 1)
        assert [b.tolist() for b in base.minibatches(n, size, gen(), "cpu", min_rows=2)] == \
            [b.tolist() for b in base.minibatches(n, size, gen(), "cpu")]
    assert base.chunk_bounds(129, 128, min_rows=2) == [(0, 129)]
    assert base.chunk_bounds(9, 4, min_rows=2) == [(0, 4), (4, 9)]


# ---------------------------------------------------------------- 4, 5. custom modules' outputs
class Tuple(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 2, batch_first=True)

    def forward(self, x):
        return self.lstm(x)


class ThreeD(nn.Module):
    def forward(self, x):
        return x[:, :3, None]


def test_encoder_returning_a_tuple():
    with pytest.raises(InputError, match="returns a tuple, not one tensor.*recurrent_autoencoder_example") as err:
        ek.AutoEncoder(encoder=Tuple(), decoder=nn.Linear(2, 6), epochs=1, device="cpu").fit(rows(), show_progress=False)
    one_line(err)
    with pytest.raises(InputError, match="decoder module returns a tuple"):
        ek.AutoEncoder(encoder=nn.Linear(6, 2), decoder=nn.LSTM(2, 6), epochs=1, device="cpu").fit(
            rows(), show_progress=False)


def test_shape_messages_say_what_is_required():
    with pytest.raises(InputError, match=r"shape \(2, 3, 1\).*2-D \(rows, dim\) tensor") as err:
        ek.AutoEncoder(encoder=ThreeD(), decoder=nn.Linear(1, 6), epochs=1, device="cpu").fit(rows(), show_progress=False)
    assert "set dim" not in one_line(err)
    with pytest.raises(InputError, match=r"even width, 2 \* dim .*mean and the log-variance.*returns 3 columns") as err:
        ek.AutoEncoder(variant="vae", encoder=nn.Linear(6, 3), decoder=nn.Linear(1, 6), epochs=1, device="cpu").fit(
            rows(), show_progress=False)
    assert "set dim" not in one_line(err)
    with pytest.raises(InputError, match=r"2-D \(rows, dim\)"):
        ek.SiameseEncoder(encoder=ThreeD(), epochs=1, device="cpu").fit(rows(), show_progress=False)
    with pytest.raises(InputError, match="returns 3 columns but dim=32; end it with a layer of 32 outputs or set dim=3"):
        ek.SiameseEncoder(encoder=nn.Linear(6, 3), epochs=1, device="cpu").fit(rows(), show_progress=False)


# ---------------------------------------------------------------- 6. interpolate's rows
def test_interpolate_checks_its_rows(fitted_ae):
    X = rows()
    with pytest.raises(InputError, match="interpolate: a") as err:
        fitted_ae.interpolate(["a"] * 6, X[0])
    one_line(err)
    with pytest.raises(InputError, match="b must be one row of 6 features"):
        fitted_ae.interpolate(X[0], X[1, :5])
    with pytest.raises(InputError, match="a must be one row"):
        fitted_ae.interpolate(X[:2], X[1])
    assert fitted_ae.interpolate(X[0], X[1:2], steps=3).shape == (3, 6)


# ---------------------------------------------------------------- 7, 8. parameters given to load and set_params
@pytest.mark.parametrize("override, match", [
    (dict(encoder="x", decoder="y"), "'encoder' parameter of AutoEncoder must be a torch.nn.Module or None"),
    (dict(foo=1), "AutoEncoder has no parameter 'foo'; valid parameters: .*contamination"),
    (dict(contamination=5), r"'contamination' parameter of AutoEncoder must be a float in the range \(0.0, 0.5\]"),
    (dict(score="nope"), "'score' parameter of AutoEncoder must be one of 'auto'"),
    (dict(n_neighbors=0), r"'n_neighbors' parameter of AutoEncoder must be an int in the range \[1, 10000\]"),
])
def test_load_checks_its_overrides(saved_ae, override, match):
    with pytest.raises(InputError, match=match) as err:
        ek.AutoEncoder.load(saved_ae, **override)
    one_line(err)


def test_set_params_checks_values_and_changes_nothing_when_bad():
    model = ek.AutoEncoder(**AE)
    for bad in (dict(score="bogus"), dict(n_neighbors=-5), dict(dim=2, contamination=0.9)):
        with pytest.raises(InputError, match="parameter of AutoEncoder must be"):
            model.set_params(**bad)
    assert model.score == "auto" and model.n_neighbors == 10 and model.contamination == 0.1
    with pytest.raises(InputError, match="no parameter 'dims'"):
        ek.SiameseEncoder().set_params(dims=3)
    with pytest.raises(InputError, match="'margin' parameter of SiameseEncoder"):
        ek.SiameseEncoder().set_params(margin=-1)


@pytest.mark.parametrize("change", [dict(n_neighbors=3), dict(score="combined"), dict(contamination=0.25),
                                    dict(score="input_knn", n_neighbors=4)])
def test_scoring_parameters_changed_after_fit_rescore_the_training_rows(saved_ae, change):
    X = rows()
    fresh = ek.AutoEncoder(**{**AE, **change})
    fresh.fit(X, show_progress=False)
    model = ek.AutoEncoder(**AE)
    model.fit(X, show_progress=False)
    model.set_params(**change)
    loaded = ek.AutoEncoder.load(saved_ae, **change)
    for m in (model, loaded):
        np.testing.assert_allclose(m.decision_scores_, fresh.decision_scores_, rtol=1e-5, atol=1e-6)
        assert m.threshold_ == pytest.approx(fresh.threshold_, rel=1e-5)
        np.testing.assert_array_equal(m.labels_, fresh.labels_)
        np.testing.assert_allclose(m.decision_function(X[:5]), fresh.decision_function(X[:5]), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- 9. files that are not a saved model
@pytest.mark.parametrize("cls", [ek.AutoEncoder, ek.SiameseEncoder])
def test_files_that_are_not_a_model(cls, tmp_path):
    npy = tmp_path / "x.npy"
    np.save(npy, rows())
    garbage = tmp_path / "g.npz"
    garbage.write_bytes(b"garbage" * 20)
    listed = tmp_path / "l.npz"
    np.savez(listed, __config__=np.array(json.dumps([1, 2])))
    for path in (npy, garbage, listed):
        with pytest.raises(StoreError, match=f"not a saved {cls.__name__}") as err:
            cls.load(path)
        assert "pickle" not in one_line(err)


# ---------------------------------------------------------------- 10. saving to a directory
def test_save_to_a_directory_is_an_error(fitted_ae, tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    for path in (f"{folder}/", folder, f"{tmp_path}/new/"):
        with pytest.raises(InputError, match="is a directory; give a file name") as err:
            fitted_ae.save(path)
        one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # nothing written
    assert fitted_ae.save(folder / "model.npz").is_file()


@pytest.mark.parametrize("loss, miner, pairs, match", [
    ("contrastive", "hard", [(0, 1, 1), (2, 3, 0)], "miner='hard' needs class labels"),
    ("triplet", "random", [(0, 1, 0), (2, 3, 0)], "needs at least one similar pair"),
])
def test_a_refit_with_pairs_it_cannot_use_keeps_the_fit(loss, miner, pairs, match):
    X = rows()
    model = ek.SiameseEncoder(**SIAM, loss=loss)
    model.fit(X, pairs=[(0, 1, 1), (2, 3, 0), (4, 5, 1)], show_progress=False)
    before = model.encode(X)
    model.set_params(miner=miner)
    with pytest.raises(InputError, match=match) as e:
        model.fit(X, pairs=pairs, show_progress=False)
    one_line(e)
    np.testing.assert_array_equal(model.encode(X), before)


def test_a_new_variant_or_loss_drops_the_fit_and_cannot_be_loaded_over(saved_ae):
    from embedkit.errors import NotFittedError

    model = ek.AutoEncoder(**AE)
    model.fit(rows(), show_progress=False)
    model.set_params(epochs=3)  # applies to the next fit; the fit stays
    assert model.decision_function(rows(5)).shape == (5,)
    model.world_size_ = 2  # as if fitted by a process group
    with pytest.warns(UserWarning, match="fitted with variant='undercomplete', so its fit is dropped"):
        model.set_params(variant="vae")  # the network was trained as undercomplete: its fit no longer applies
    assert not hasattr(model, "world_size_")
    with pytest.raises(NotFittedError):
        model.decision_function(rows(5))
    model.fit(rows(), show_progress=False)
    assert model.variant == "vae" and np.isfinite(model.decision_function(rows(5))).all()
    for override in ({"variant": "vae"}, {"loss": "bce"}):
        with pytest.raises(InputError, match="cannot override the saved") as e:
            ek.AutoEncoder.load(saved_ae, **override)
        one_line(e)


def test_a_failed_refit_keeps_the_world_size_of_the_fit_it_keeps():
    model = ek.AutoEncoder(**AE)
    model.fit(rows(), show_progress=False)
    model.world_size_ = 2  # as if fitted by a process group
    bad = rows()
    bad[3, 1] = np.nan
    with pytest.raises(InputError):
        model.fit(bad, show_progress=False)
    assert model.world_size_ == 2


def test_a_fit_that_fails_after_replacing_the_model_does_not_inherit_the_world_size():
    from embedkit.trainers.mf.baselines import Popularity

    model = Popularity()
    model.fit(np.array([[1.0, 0.0], [1.0, 1.0]]))
    model.world_size_ = 2

    def boom(*_):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        model.fit(np.eye(3, 7), callback=boom)
    assert len(model.embeddings_) == 7 and "world_size_" not in model.__dict__  # the new fit, not the old size


def test_siamese_keeps_the_loss_it_was_trained_with(tmp_path):
    X = rows()
    model = ek.SiameseEncoder(**SIAM, loss="contrastive")
    model.fit(X, pairs=[(0, 1, 1), (2, 3, 0), (4, 5, 1)], show_progress=False)
    model.set_params(loss="triplet")  # applies to the next fit
    assert model.loss_ == "contrastive" and model.margin_ == 1.0
    again = ek.SiameseEncoder.load(model.save(tmp_path / "s.npz"))
    assert again.loss_ == "contrastive"


def test_one_line_values_in_messages():
    from embedkit._validation import shown

    assert "\n" not in shown(np.zeros((4, 4))) and "\n" not in shown(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))
    assert shown(torch.tensor(0.5)) == "0.5" and shown(np.float32(2.0)) == "2.0" and len(shown("x" * 500)) == 60
    assert shown(torch.empty(1, device="meta")[0]).startswith("<")


def test_a_refit_with_custom_modules_that_cannot_run_keeps_the_fit():
    X = rows()
    model = ek.AutoEncoder(encoder=nn.Sequential(nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2)),
                           decoder=nn.Sequential(nn.Linear(2, 6)), epochs=2, device="cpu")
    model.fit(X, show_progress=False)
    before = model.decision_function(X)
    model.set_params(decoder=nn.Sequential(nn.Linear(2, 5)))  # rows of the wrong width
    with pytest.raises(InputError, match="the decoder returns shape") as e:
        model.fit(X, show_progress=False)
    one_line(e)
    np.testing.assert_array_equal(model.decision_function(X), before)
    siamese = ek.SiameseEncoder(encoder=nn.Sequential(nn.Linear(6, 4)), dim=4, epochs=1, device="cpu")
    y = np.arange(len(X)) % 3
    siamese.fit(X, y, show_progress=False)
    codes = siamese.encode(X)
    siamese.set_params(encoder=nn.LSTM(6, 4))  # returns a tuple
    with pytest.raises(InputError, match="not one tensor") as e:
        siamese.fit(X, y, show_progress=False)
    one_line(e)
    np.testing.assert_array_equal(siamese.encode(X), codes)


def test_trying_custom_modules_leaves_the_callers_random_state_alone():
    X = rows()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ek.AutoEncoder(encoder=nn.Sequential(nn.LazyLinear(3)), decoder=nn.Sequential(nn.LazyLinear(6)), epochs=1,
                   device="cpu").fit(X, show_progress=False)
    assert torch.equal(torch.rand(3), expected)
