"""Bad input to KNNEstimator and the anomaly metrics: one-line InputErrors, no silent NaN results."""

from __future__ import annotations

import numpy as np
import pytest

from embedkit.errors import InputError
from embedkit.evaluate.anomaly import anomaly_auc, anomaly_report, average_precision
from embedkit.trainers.encoders.knn import KNNEstimator

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 6)).astype(np.float32)
Y = np.arange(12) % 2
SCORES = RNG.normal(size=20)
LABELS = np.arange(20) % 2


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text and text
    return text


# ------------------------------------------------------------------------------ KNNEstimator
@pytest.mark.parametrize("task", ["classify", "regress", "auto"])
@pytest.mark.parametrize("bad, shown", [(np.nan, "y[3] is NaN"), (np.inf, "y[3] is inf")])
def test_knn_rejects_nan_and_inf_targets(task, bad, shown):
    y = Y.astype(float)
    y[3] = bad
    with pytest.raises(InputError, match=r"KNNEstimator\.fit: " + shown.replace("[", r"\[").replace("]", r"\]")) as e:
        KNNEstimator(None, k=1, task=task).fit(X, y)
    assert "finite target" in one_line(e)


def test_knn_rejects_none_targets_and_names_the_row():
    y = [0, 1, None] + [0] * 9
    with pytest.raises(InputError, match=r"y\[2\] is missing \(None\)") as e:
        KNNEstimator(None, k=1).fit(X, y)
    one_line(e)


def test_knn_rejects_targets_mixing_strings_and_numbers():
    for y in (["a"] + [1] * 11, np.array(["a"] + [1] * 11, dtype=object)):
        with pytest.raises(InputError, match="all strings or all numbers") as e:
            KNNEstimator(None, k=1).fit(X, y)
        assert "y[0] is 'a', y[1] is 1" in one_line(e)


def test_knn_failed_fit_keeps_the_fitted_state():
    knn = KNNEstimator(None, k=1).fit(X, Y)
    with pytest.raises(InputError):
        knn.fit(X[:, :3], [np.nan] * 12)
    assert knn.predict(X[:2]).tolist() == Y[:2].tolist()


def test_knn_score_checks_the_length_of_y():
    knn = KNNEstimator(None, k=1).fit(X, Y)
    with pytest.raises(InputError, match="KNNEstimator.score: X has 12 rows but y has 2 targets") as e:
        knn.score(X, [0, 1])
    one_line(e)
    column = KNNEstimator(None, k=1).fit(X, Y.reshape(-1, 1))  # a column vector is still one target per row
    assert column.score(X, Y.reshape(-1, 1)) == 1.0


@pytest.mark.parametrize("encoder", ["x", b"x", KNNEstimator, 3])
def test_knn_validates_the_encoder_argument(encoder):
    with pytest.raises(InputError, match="'encoder' parameter of KNNEstimator must be None .*encode\\(X\\)") as e:
        KNNEstimator(encoder)
    assert "AutoEncoder" in one_line(e)


def test_knn_predict_names_the_feature_count():
    knn = KNNEstimator(None, k=1).fit(X, Y)
    for call in (knn.predict, knn.predict_proba):
        with pytest.raises(InputError, match="X has 4 features but the model was fitted on 6"):
            call(X[:2, :4])


@pytest.mark.parametrize("y, shown", [(None, "got NoneType None"), (np.c_[Y, Y], r"got shape \(12, 2\)"),
                                      (5, "got int 5")])
def test_knn_says_y_must_be_one_target_per_row(y, shown):
    with pytest.raises(InputError, match=r"y must be a 1-D sequence of targets, one per row of X \(12 rows\); "
                       + shown) as e:
        KNNEstimator(None, k=1).fit(X, y)
    one_line(e)


# ------------------------------------------------------------------------------ anomaly metrics
@pytest.mark.parametrize("threshold", [float("nan"), "0.5", "high", [0.5], True, np.array([0.5, 1.5]),
                                       np.arange(20) * 0.1])
def test_anomaly_report_rejects_bad_thresholds(threshold):
    with pytest.raises(InputError, match="'threshold' parameter of anomaly_report must be None, a number") as e:
        anomaly_report(SCORES, LABELS, threshold=threshold)
    one_line(e)


def test_anomaly_report_takes_any_kind_of_number_as_threshold():
    from decimal import Decimal

    import torch

    flagged = anomaly_report(SCORES, LABELS, threshold=0.5)["flagged"]
    for t in (torch.tensor(0.5), Decimal("0.5"), np.float32(0.5), np.array(0.5)):
        assert anomaly_report(SCORES, LABELS, threshold=t)["flagged"] == flagged
    assert anomaly_report(SCORES, LABELS, threshold=float("inf"))["flagged"] == 0  # a sweep's ends
    assert anomaly_report(SCORES, LABELS, threshold=-float("inf"))["flagged"] == len(SCORES)


def test_knn_takes_any_sortable_class_labels():
    from decimal import Decimal

    for y in ([b"a", b"b"] * 6, np.array([np.bool_(True), np.bool_(False)] * 6, dtype=object),
              [Decimal(1), Decimal(2)] * 6, np.array(["2020-01-01", "2021-01-01"] * 6, dtype="datetime64[D]")):
        knn = KNNEstimator(None, k=1, task="classify").fit(X, y)
        assert list(knn.predict(X[:2])) == list(np.asarray(y)[:2])


def test_anomaly_report_accepts_predicted_labels_as_threshold():
    pred = SCORES > 0.3
    by_labels = anomaly_report(SCORES, LABELS, threshold=pred.astype(int))
    by_float = anomaly_report(SCORES, LABELS, threshold=0.3)
    assert by_labels == by_float == anomaly_report(SCORES, LABELS, threshold=list(pred))
    assert by_labels["flagged"] == int(pred.sum())
    assert anomaly_report(SCORES, LABELS, threshold=np.float32(0.3)) == by_float
    assert anomaly_report(SCORES, LABELS, threshold=np.array(0.3)) == by_float


@pytest.mark.parametrize("fn", [anomaly_auc, average_precision, anomaly_report])
@pytest.mark.parametrize("scores, shown", [(["a"] * 20, "could not convert"), (None, "got NoneType None"),
                                           ("abc", "got str"), (3.0, "got float")])
def test_anomaly_metrics_say_scores_must_be_numbers(fn, scores, shown):
    with pytest.raises(InputError, match=f"{fn.__name__}: scores must be a 1-D sequence of numbers") as e:
        fn(scores, LABELS)
    assert shown in one_line(e)


@pytest.mark.parametrize("fn", [anomaly_auc, average_precision])
def test_anomaly_metrics_name_nan_and_inf_accurately(fn):
    s = SCORES.copy()
    s[2] = np.nan
    with pytest.raises(InputError, match=r"scores\[2\] is NaN;"):
        fn(s, LABELS)
    s[2] = -np.inf
    with pytest.raises(InputError, match=r"scores\[2\] is inf;"):
        fn(s, LABELS)
    s[2] = 1e300  # finite in float64: a valid (if extreme) score
    assert 0.0 <= fn(s, LABELS) <= 1.0


def test_anomaly_metrics_say_labels_must_be_a_sequence():
    with pytest.raises(InputError, match="anomaly_auc: labels must be a 1-D sequence of 0/1 or bool"):
        anomaly_auc(SCORES, None)
