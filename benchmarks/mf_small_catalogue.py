# ruff: noqa: E401, E402, E501, E701, E702  (a measurement script kept as it was run)
"""recall@10 of MatrixFactorization() (default dim 64, now capped) vs dim=64 forced past the cap, 3 splits."""
import sys

import numpy as np

import embedkit as ek
from embedkit.evaluate import ranking_metrics

sys.path.insert(0, "tests")
from test_mf15_newcomer import planted


def run(inter, capped):
    rs = []
    for seed in range(3):
        tr, te = inter.split(test_fraction=0.2, seed=seed)
        m = ek.MatrixFactorization(seed=seed, device="cpu")
        if not capped:
            m._fit_dim = lambda d, nu, ni: d  # the old behaviour: train dim 64 as given
        m.fit(tr, show_progress=False)
        rs.append(ranking_metrics(m, te, k=10)["recall"])
    return m.dim_, float(np.mean(rs))

datasets = {"examples/data/interactions.csv (60 users x 36 items)":
            ek.Interactions.from_csv("examples/data/interactions.csv", value="count"),
            "planted 200 users x 47 items, 4 tastes": planted(),
            "planted 500 users x 200 items, 8 tastes": planted(500, 200, 8, 15),
            "planted 2000 users x 600 items, 8 tastes": planted(2000, 600, 8, 20)}
for name, inter in datasets.items():
    d0, before = run(inter, False); d1, after = run(inter, True)
    print(f"| {name} | {d0} | {before:.3f} | {d1} | {after:.3f} |", flush=True)
