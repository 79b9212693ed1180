"""ae14 round 6, explorations recorded after the decision (PROTOCOL.md; they chose nothing).

Usage: python ae_explore6.py variants   # AutoEncoder() architectures, score "ensemble", 18 ADBench sets, AE seed 0
       python ae_explore6.py combos     # averages / maxima of up to 3 robust-scaled terms on both suites, AE seed 0
"""
# ruff: noqa: E501
import itertools
import os
import sys

import numpy as np
import torch
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestNeighbors

import embedkit as ek
from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ae_round6 import design_sets, heldout_sets  # noqa: E402

torch.set_num_threads(1)
VARIANTS = {"default": {}, "denoising": {"variant": "denoising"}, "vae": {"variant": "vae"}, "sparse": {"variant": "sparse"},
            "dim8": {"dim": 8}, "dim32": {"dim": 32}, "ep100": {"epochs": 100}, "wide": {"hidden": (256, 128)}}


def variants():
    res = {c: [] for c in VARIANTS}
    for name, X, y in design_sets():
        Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
        for c, kw in VARIANTS.items():
            ae = ek.AutoEncoder(seed=0, device="cpu", **kw)
            ae.fit(Xtr, show_progress=False)
            res[c].append(anomaly_auc(ae.decision_function(Xte), yte))
        print(name, {c: round(v[-1], 3) for c, v in res.items()}, flush=True)
    print("MEAN", {c: round(float(np.mean(v)), 4) for c, v in res.items()})


def knn(tr, te, k, agg, exclude_self=False):
    k = min(k, len(tr) - exclude_self)
    d, _ = NearestNeighbors(n_neighbors=k + exclude_self).fit(tr).kneighbors(te)
    d = d[:, 1:] if exclude_self else d
    return d.mean(1) if agg == "mean" else d[:, -1]


def terms_of(X, y):
    """Every term's robust-scaled test scores (scaled by its training scores), and the test labels."""
    Xtr, Xte, _, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
    ae = ek.AutoEncoder(seed=0, device="cpu")
    ae.fit(Xtr, show_progress=False)
    Ztr, Zte = ae.embeddings_.vectors, ae.encode(Xte)
    Str, Ste = ae._train_rows, ae.scaler_.transform(Xte)
    raw = {"recon": (ae.anomaly_scores(Xtr, "reconstruction"), ae.anomaly_scores(Xte, "reconstruction"))}
    for k in (5, 10, 20, 30, 50):
        for agg, tag in (("mean", ""), ("max", "max")):
            raw[f"lat{tag}{k}"] = (knn(Ztr, Ztr, k, agg, True), knn(Ztr, Zte, k, agg))
            raw[f"z{tag}{k}"] = (knn(Str, Str, k, agg, True), knn(Str, Ste, k, agg))
    iso = IsolationForest(random_state=0).fit(Ztr)
    raw["IFlat"] = (-iso.score_samples(Ztr), -iso.score_samples(Zte))
    forest = IsolationForest(random_state=0).fit(Xtr)
    out = {}
    for k, (tr, te) in raw.items():
        m, s = _anomaly.robust_scale(tr)
        out[k] = (te - m) / s
    return out, yte, -forest.score_samples(Xte)


def combos():
    suites = {}
    for label, gen in (("adbench", design_sets()), ("fresh", heldout_sets())):
        suites[label] = [terms_of(X, y) for _, X, y in gen]
        print(label, "scored", flush=True)
    forest = {s: float(np.mean([anomaly_auc(f, yte) for _, yte, f in v])) for s, v in suites.items()}
    print("IsolationForest", {s: round(v, 4) for s, v in forest.items()})
    names = list(suites["adbench"][0][0])
    rows = []
    for r in (1, 2, 3):
        for combo in itertools.combinations(names, r):
            for agg in (("mean",) if r == 1 else ("mean", "max")):
                means = {}
                for s, v in suites.items():
                    means[s] = float(np.mean([anomaly_auc((np.mean if agg == "mean" else np.max)([t[c] for c in combo], axis=0), yte)
                                              for t, yte, _ in v]))
                margin = min(means[s] - forest[s] for s in suites)
                ae_term = any(c == "recon" or c.startswith("lat") or c == "IFlat" for c in combo)
                rows.append((margin, means, combo, agg, ae_term))
    rows.sort(key=lambda t: -t[0])
    print(f"{len(rows)} combinations; best 15 by the smaller margin over IsolationForest on the two suites:")
    for margin, means, combo, agg, ae_term in rows[:15]:
        print(round(margin, 4), {s: round(v, 4) for s, v in means.items()}, combo, agg, "AE term" if ae_term else "no AE term")
    best_ae = next(t for t in rows if t[4])
    print("best with an AE term:", round(best_ae[0], 4), {s: round(v, 4) for s, v in best_ae[1].items()}, best_ae[2], best_ae[3])


if __name__ == "__main__":
    {"variants": variants, "combos": combos}[sys.argv[1]]()
