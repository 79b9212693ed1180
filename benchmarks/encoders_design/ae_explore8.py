"""ae14 round 8, design exploration (PROTOCOL.md): every mean (1-4 terms) and maximum (2-4 terms) of the
robust-scaled terms saved by ``ae_round8.py`` on the three design suites, ranked by the smallest margin over the
suites against IsolationForest and against the classic pair IF+K10 (no autoencoder term); then per-type means.
Usage: python ae_explore8.py [seeds, default 0,1,2]   (after ``python ae_round8.py adbench|sklearn|statsmodels``)"""
# ruff: noqa: E501
import itertools
import os
import sys

import numpy as np

from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ae_round8 import AE_TERMS, TERMS, load_terms  # noqa: E402
from fresh_anomaly import task_type  # noqa: E402

SUITES = ("adbench", "sklearn", "statsmodels")


def scaled_terms(path):
    """{task: ({term: test scores robust-scaled by the training scores}, test labels)}, read and scaled once."""
    out = {}
    for n, (t, y) in load_terms(path).items():
        scaled = {}
        for k, (tr, te) in t.items():
            m, s = _anomaly.robust_scale(tr)
            scaled[k] = (te - m) / s
        out[n] = (scaled, y)
    return out


def main():
    seeds = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "0,1,2").split(",")]
    data = {(s, sd): scaled_terms(f"/tmp/ae14_round8_terms_{s}_{sd}.npz") for s in SUITES for sd in seeds}
    combos = ([(c, "mean") for r in (1, 2, 3, 4) for c in itertools.combinations(TERMS, r)]
              + [(c, "max") for r in (2, 3, 4) for c in itertools.combinations(TERMS, r)])
    res, types = {}, {}
    for c, how in combos:
        per = {}
        for s in SUITES:
            vals = []
            for sd in seeds:
                for n, (t, y) in data[(s, sd)].items():
                    arr = np.array([t[k] for k in c])
                    auc = anomaly_auc(arr.mean(0) if how == "mean" else arr.max(0), y)
                    vals.append(auc)
                    types.setdefault((s, "real" if s == "adbench" else task_type(n), c, how), []).append(auc)
            per[s] = float(np.mean(vals))
        res[(c, how)] = per
    print(f"{len(combos)} combinations, seeds {seeds}")
    for ref_name, ref in (("IsolationForest", res[(("IF",), "mean")]), ("IF+K10 (no autoencoder term)", res[(("IF", "K10"), "mean")])):
        print(f"--- smallest margin over the three suites against {ref_name} {({s: round(v, 4) for s, v in ref.items()})}")
        rows = sorted(((min(per[s] - ref[s] for s in SUITES), key, per) for key, per in res.items()), key=lambda r: -r[0])
        for m, key, per in rows[:10]:
            tag = "AE" if set(key[0]) & set(AE_TERMS) else "--"
            print(tag, f"{m:+.4f}", "+".join(key[0]), key[1], {s: round(v, 4) for s, v in per.items()})
        best_ae = next(r for r in rows if set(r[1][0]) & set(AE_TERMS))
        print("best with an autoencoder term:", f"{best_ae[0]:+.4f}", "+".join(best_ae[1][0]), best_ae[1][1])
    print("--- per anomaly type (mean ROC-AUC over tasks and seeds)")
    show = [(("IF",), "mean"), (("K10",), "mean"), (("K10", "L10"), "mean"), (("REC",), "mean"), (("RIF",), "mean"),
            (("IFR",), "mean"), (("IF", "K10"), "mean"), (("IF", "K10", "RIF"), "mean"), (("IF", "K10", "REC"), "mean")]
    for s in SUITES:
        for t in sorted({k[1] for k in types if k[0] == s}):
            print(s, t.ljust(10), " ".join(f"{'+'.join(c)}={np.mean(types[(s, t, c, how)]):.3f}" for c, how in show))


if __name__ == "__main__":
    main()
