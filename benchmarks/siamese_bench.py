"""Unseen-class retrieval of SiameseEncoder's default against raw features and PCA, task by task (issue 14).

The protocol of benchmarks/encoders_bench.py section 1 (its tasks, baselines and MAP@R / P@1 code): encoders
and baselines are fit on the training classes only; the rows of the classes never seen in fit are retrieved
by cosine similarity, dim 32. Tasks: the bench's four (digits 0-6 -> 7-9, digits 3-9 -> 0-2, synthetic
seeds 0 and 1) and those added in benchmarks/encoders_design/PROTOCOL.md (siamese14): digits 0-4 -> 5-9,
digits even -> odd, digits 5-9 -> 0-4, make_classification tables (mixed units) rs 0, 1, 2, synthetic seed 2.
Each task is marked with its role in the protocol (design / held out). Rows:

  raw, z-scored raw, PCA 32 raw, PCA 32 z-scored       baselines (fit on the training classes)
  SiameseEncoder()                                    the default (a linear map started at PCA, InfoNCE,
                                                      epochs chosen by class-disjoint cross-validation)
  SiameseEncoder(hidden=(256, 128))                   the previous default (MLP + PCA skip path)

    python benchmarks/siamese_bench.py --threads 1                  # every task, 2 seeds (~10 min on 1 CPU)
    python benchmarks/siamese_bench.py --threads 1 --tasks bench    # the four tasks of encoders_bench.py
    python benchmarks/siamese_bench.py --threads 1 --tasks heldout4 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from encoders_bench import fmt, retrieval_baselines, synthetic_classes  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.evaluate import map_at_r, precision_at_1  # noqa: E402

DIM = 32
BASELINES = ("raw", "z-scored raw", "PCA 32 raw", "PCA 32 z-scored")
MODELS = {"SiameseEncoder()": {}, "SiameseEncoder(hidden=(256, 128)) (previous default)": {"hidden": (256, 128)}}


def mixed_table(seed: int):
    """make_classification, 20 classes, 40 features in mixed units (scales 1..100)."""
    X, y = make_classification(n_samples=3000, n_features=40, n_informative=10, n_redundant=10, n_classes=20,
                               n_clusters_per_class=1, shift=None, scale=None, random_state=seed)
    return X.astype(np.float32), y


def all_tasks():
    """name -> (rows, labels, training mask, role); roles as in PROTOCOL.md (round 4 of siamese14)."""
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    syn = {s: synthetic_classes(s) for s in (0, 1, 2)}
    mix = {s: mixed_table(s) for s in (0, 1, 2)}
    return {
        "digits 0-6 -> 7-9": (X, y, y <= 6, "bench", "design (round 4)"),
        "digits 3-9 -> 0-2": (X, y, y >= 3, "bench", "design"),
        "synthetic seed 0": (*syn[0], syn[0][1] < 14, "bench", "design (round 4)"),
        "synthetic seed 1": (*syn[1], syn[1][1] < 14, "bench", "design"),
        "digits 0-4 -> 5-9": (X, y, y <= 4, "design4", "design (round 4)"),
        "make_classification rs 0": (*mix[0], mix[0][1] < 14, "design4", "design (round 4)"),
        "make_classification rs 1": (*mix[1], mix[1][1] < 14, "design4", "design"),
        "digits even -> odd": (X, y, y % 2 == 0, "heldout4", "held out"),
        "digits 5-9 -> 0-4": (X, y, y >= 5, "heldout4", "held out"),
        "synthetic seed 2": (*syn[2], syn[2][1] < 14, "heldout4", "held out"),
        "make_classification rs 2": (*mix[2], mix[2][1] < 14, "heldout4", "held out"),
    }


def run(args):
    tasks = {k: v for k, v in all_tasks().items()
             if args.tasks == "all" or v[3] == args.tasks or (args.tasks == "design4" and v[4] != "held out")}
    out = {}
    for task, (X, y, tr, _, role) in tasks.items():
        te = ~tr
        res = out.setdefault(task, {"role": role})
        for name, v in retrieval_baselines(X, tr, DIM).items():
            res[name] = {"map_at_r": [map_at_r(v, y[te])], "p_at_1": [precision_at_1(v, y[te])]}
        for name, cfg in MODELS.items():
            maps, p1s, secs, info = [], [], [], []
            for seed in range(args.seeds):
                model = ek.SiameseEncoder(seed=seed, device=args.device, **cfg)
                start = time.perf_counter()
                model.fit(X[tr], y[tr], show_progress=False)
                secs.append(time.perf_counter() - start)
                V = model.encode(X[te])
                maps.append(map_at_r(V, y[te]))
                p1s.append(precision_at_1(V, y[te]))
                info.append(f"{model.epochs_} ep, {model.skip_space_}" if model.pca_start_
                            else f"w={model.input_share_:g}, {model.skip_space_}")
            res[name] = {"map_at_r": maps, "p_at_1": p1s, "fit_s": secs, "chosen": info}
        print(f"\n### {task} ({role}): {int(te.sum())} rows of unseen classes, cosine, dim {DIM}, "
              f"{args.seeds} seed(s)\n")
        print("| vectors | MAP@R | P@1 | fit s | chosen |")
        print("|---|---|---|---|---|")
        for name, r in res.items():
            if name == "role":
                continue
            fit_s = f"{np.mean(r['fit_s']):.1f}" if "fit_s" in r else "-"
            print(f"| {name} | {fmt(r['map_at_r'])} | {fmt(r['p_at_1'])} | {fit_s} | {'; '.join(r.get('chosen', []))} |",
                  flush=True)
    return out


def summary(out):
    ours = next(iter(MODELS))
    print(f"\n### Summary: {ours}, mean MAP@R (P@1) per task against the baselines\n")
    print("| task | role | " + " | ".join((*BASELINES, *MODELS)) + " | MAP@R: wins / losses vs the 4 baselines | "
          "P@1 within 0.02 of raw |")
    print("|---" * (len(BASELINES) + len(MODELS) + 4) + "|")
    for task, res in out.items():
        m = {k: float(np.mean(v["map_at_r"])) for k, v in res.items() if k != "role"}
        p = {k: float(np.mean(v["p_at_1"])) for k, v in res.items() if k != "role"}
        wins = [b for b in BASELINES if m[ours] > m[b]]
        losses = [b for b in BASELINES if m[ours] < m[b]]
        ties = [b for b in BASELINES if m[ours] == m[b]]
        cells = " | ".join(f"{m[k]:.3f} ({p[k]:.3f})" for k in (*BASELINES, *MODELS))
        verdict = f"{len(wins)} / {len(losses)}" + (f" (loses to {', '.join(losses)})" if losses else "") + (
            f" (ties {', '.join(ties)})" if ties else "")
        print(f"| {task} | {res['role']} | {cells} | {verdict} | {'yes' if p[ours] >= p['raw'] - 0.02 else 'NO'} |")
    for role in sorted({r["role"] for r in out.values()}):
        rows = [r for r in out.values() if r["role"] == role]
        means = {k: np.mean([np.mean(r[k]["map_at_r"]) for r in rows]) for k in (*BASELINES, *MODELS)}
        print(f"| mean, {len(rows)} {role} task(s) | | " + " | ".join(f"{means[k]:.3f}" for k in (*BASELINES, *MODELS))
              + " | | |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="all", choices=("all", "bench", "design4", "heldout4"),
                        help="bench = encoders_bench.py's four; design4 = round-4 design tasks; heldout4 = its "
                             "held-out tasks (default: all)")
    parser.add_argument("--seeds", type=int, default=2, help="encoder seeds (default: 2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"SiameseEncoder unseen-class retrieval: torch {torch.__version__}, device {args.device}, "
          f"threads {torch.get_num_threads()}, seeds {args.seeds}")
    start = time.perf_counter()
    out = run(args)
    summary(out)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
