"""precision_at_1, map_at_r, knn_accuracy and anomaly_auc against values computed by hand."""

import numpy as np
import pytest

import embedkit as ek
from embedkit.errors import InputError
from embedkit.evaluate import anomaly_auc, knn_accuracy, map_at_r, precision_at_1

# 1-D points: class a at 0 and 1.2, class b at 2, 10, 11 (l2 distances, no ties)
POINTS = np.array([[0.0], [1.2], [2.0], [10.0], [11.0]])
LABELS = ["a", "a", "b", "b", "b"]


def test_precision_at_1_by_hand():
    # nearest others: 0->1.2 (a, hit), 1.2->2 (b), 2->1.2 (a), 10->11 (hit), 11->10 (hit)
    assert precision_at_1(POINTS, LABELS, metric="l2") == pytest.approx(3 / 5)


def test_map_at_r_by_hand():
    # R = 1 for class a, 2 for class b
    # 0: [1.2]=a -> 1 ; 1.2: [2]=b -> 0 ; 2: [1.2, 0]=a,a -> 0 ; 10: [11, 2] -> 1 ; 11: [10, 2] -> 1
    assert map_at_r(POINTS, LABELS, metric="l2") == pytest.approx(3 / 5)


def test_map_at_r_partial_credit():
    # query at 0 with R = 4: retrieved a, b, a, a -> (1 + 0 + 2/3 + 3/4) / 4 (Musgrave et al. 2020, fig. 2)
    pts = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [20.0], [50.0], [50.5]])
    lab = ["a", "a", "b", "a", "a", "a", "c", "c"]
    keys = [f"k{i}" for i in range(len(pts))]
    emb = ek.Embeddings(keys, pts)
    # every query, by a direct loop over sorted distances (labels given by key)
    labels = dict(zip(keys, lab))
    per_query = {}
    for q in range(len(pts)):
        order = [j for j in np.argsort(np.abs(pts[:, 0] - pts[q, 0]), kind="stable") if j != q]
        r = lab.count(lab[q]) - 1
        if r == 0:
            continue
        rel = [lab[j] == lab[q] for j in order[:r]]
        per_query[q] = sum(np.cumsum(rel)[i] / (i + 1) for i in range(r) if rel[i]) / r
    assert per_query[0] == pytest.approx((1 + 0 + 2 / 3 + 3 / 4) / 4)
    assert map_at_r(emb, labels, metric="l2") == pytest.approx(np.mean(list(per_query.values())))


def test_metrics_agree_with_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    V = rng.normal(size=(300, 5)).astype(np.float32)
    y = rng.integers(0, 4, 300)
    U = V / np.linalg.norm(V, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    order = np.argsort(-S, axis=1, kind="stable")
    p1 = np.mean(y[order[:, 0]] == y)
    aps = []
    for i in range(300):
        r = int((y == y[i]).sum()) - 1
        rel = y[order[i, :r]] == y[i]
        aps.append(np.sum(np.cumsum(rel) / np.arange(1, r + 1) * rel) / r)
    knn = np.mean([np.bincount(y[order[i, :1]], minlength=4).argmax() == y[i] for i in range(300)])
    assert precision_at_1(V, y) == pytest.approx(p1)
    assert map_at_r(V, y) == pytest.approx(np.mean(aps))
    assert knn_accuracy(V, y, k=1) == pytest.approx(knn)
    assert knn_accuracy(V, y, k=1) == pytest.approx(precision_at_1(V, y))


def test_knn_accuracy_by_hand():
    # k=3: 0 -> a,b,b (wrong); 1.2 -> b,a,b (wrong); 2 -> a,a,b (wrong); 10 -> b,b,a; 11 -> b,b,a
    assert knn_accuracy(POINTS, LABELS, k=3, metric="l2") == pytest.approx(2 / 5)
    # a tie (k=2 with one vote each) goes to the nearer neighbour's class
    assert knn_accuracy(POINTS, LABELS, k=2, metric="l2") == pytest.approx(precision_at_1(POINTS, LABELS, "l2"))


def test_anomaly_auc_by_hand_and_against_sklearn():
    assert anomaly_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert anomaly_auc([1.0, 1.0], [False, True]) == pytest.approx(0.5)  # a tie counts half
    assert anomaly_auc([3, 2, 1], [1, 0, 0]) == pytest.approx(1.0)
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    s, y = rng.normal(size=200).round(1), rng.integers(0, 2, 200)
    assert anomaly_auc(s, y) == pytest.approx(sk.roc_auc_score(y, s))


def test_errors():
    with pytest.raises(InputError, match="single class"):
        anomaly_auc([1, 2], [0, 0])
    with pytest.raises(InputError, match="2 scores but 3 labels"):
        anomaly_auc([1, 2], [0, 1, 1])
    with pytest.raises(InputError, match="0/1 or bool"):
        anomaly_auc([1, 2], ["x", "y"])
    with pytest.raises(InputError, match="NaN"):
        anomaly_auc([np.nan, 2], [0, 1])
    with pytest.raises(InputError, match="4 labels but X has 5 rows"):
        map_at_r(POINTS, LABELS[:4])
    with pytest.raises(InputError, match="every label occurs once"):
        map_at_r(POINTS, list("abcde"))
    with pytest.raises(InputError, match="'metric' parameter"):
        precision_at_1(POINTS, LABELS, metric="manhattan")
    with pytest.raises(InputError, match="Embeddings"):
        precision_at_1(POINTS, {"0": "a"})
