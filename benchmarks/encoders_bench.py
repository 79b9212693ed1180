"""Benchmark the feature-table encoders (SiameseEncoder, AutoEncoder) against their anchors.

Sections (markdown tables on stdout; --json FILE also writes every figure):
  1. unseen classes: Siamese encoders trained on digits 0-6, MAP@R / P@1 on digits 7-9 (cosine),
     against raw pixels and PCA at the same dimension (fit on 0-6); mean and std over --seeds.
  2. anomalies: an autoencoder per digit (fit on half of that digit, scoring the rest of it and
     all other digits), ROC-AUC against PCA reconstruction error and IsolationForest.
  3. standardisation: wine (13 features on scales from 0.1 to 1000), 50/50 stratified split,
     MAP@R / P@1 on the held-out half with and without learned standardisation.
  4. epoch time on a synthetic Gaussian mixture (--rows x 64 features, 20 classes).

    python benchmarks/encoders_bench.py --threads 1      # CPU, 5 seeds
    python benchmarks/encoders_bench.py --device cuda --rows 1000000
    python benchmarks/encoders_bench.py --quick          # 1 seed, fewer digits/variants (smoke run)
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from sklearn.datasets import load_digits, load_wine
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from torch import nn

import embedkit as ek
from embedkit._device import resolve_device
from embedkit.evaluate import anomaly_auc, map_at_r, precision_at_1


def cnn(dim: int) -> nn.Module:
    return nn.Sequential(nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5),
                         nn.Linear(64 * 16, dim))


def timed_fit(model, *args, **kwargs):
    start = time.perf_counter()
    model.fit(*args, show_progress=False, **kwargs)
    if str(getattr(model, "device_", "cpu")).startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / model.epochs


def fmt(values) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.3f} ± {v.std():.3f}" if len(v) > 1 else f"{v.mean():.3f}"


# --------------------------------------------------------------------------- 1. unseen classes
def unseen_classes(args, out):
    X, y = load_digits(return_X_y=True)
    seen, unseen = y <= 6, y >= 7
    dim = 32
    rows = {"raw pixels (64-d)": ([X[unseen]], None),
            f"PCA {dim} (fit on 0-6)": ([PCA(dim, random_state=0).fit(X[seen]).transform(X[unseen])], None)}
    configs = {
        "Siamese MLP contrastive": dict(loss="contrastive"),
        "Siamese MLP triplet semihard": dict(loss="triplet", miner="semihard"),
        "Siamese MLP InfoNCE": dict(loss="infonce"),
        "Siamese MLP InfoNCE, raw pixels, 10 ep": dict(loss="infonce", standardize=False, epochs=10),
        "Siamese CNN InfoNCE (dropout)": dict(loss="infonce", encoder="cnn", lr=3e-4, epochs=30, standardize=False),
    }
    if args.quick:
        configs = {k: v for k, v in configs.items() if "InfoNCE" in k}
    for name, cfg in configs.items():
        vecs, times = [], []
        for seed in range(args.seeds):
            kw = dict(cfg)
            if kw.get("encoder") == "cnn":
                torch.manual_seed(seed)  # a module passed in keeps its own initial weights: seed them too
                kw["encoder"] = cnn(dim)
            model = ek.SiameseEncoder(dim=dim, seed=seed, device=args.device, **kw)
            times.append(timed_fit(model, X[seen], y[seen]))
            vecs.append(model.encode(X[unseen]))
        rows[name] = (vecs, float(np.mean(times)))
    raw_map = map_at_r(X[unseen], y[unseen])
    pca_map = map_at_r(rows[f"PCA {dim} (fit on 0-6)"][0][0], y[unseen])
    print(f"\n### 1. Unseen classes: train on digits 0-6, retrieve digits 7-9 ({unseen.sum()} images), cosine, "
          f"dim {dim}, {args.seeds} seed(s)\n")
    print("| vectors | MAP@R | P@1 | MAP@R / raw | MAP@R / PCA | s/epoch |")
    print("|---|---|---|---|---|---|")
    for name, (vecs, sec) in rows.items():
        maps = [map_at_r(v, y[unseen]) for v in vecs]
        p1s = [precision_at_1(v, y[unseen]) for v in vecs]
        out["unseen"][name] = {"map_at_r": maps, "p_at_1": p1s, "s_per_epoch": sec}
        print(f"| {name} | {fmt(maps)} | {fmt(p1s)} | {np.mean(maps) / raw_map:.3f} | {np.mean(maps) / pca_map:.3f} | "
              f"{'-' if sec is None else f'{sec:.3f}'} |")


# --------------------------------------------------------------------------- 2. anomalies
def anomalies(args, out):
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    dim = 16
    variants = ["undercomplete", "denoising", "sparse", "vae"] if not args.quick else ["undercomplete"]
    digits = range(10) if not args.quick else range(3)
    names = ["PCA", "IsolationForest", *[f"AE {v}" for v in variants], "AE undercomplete, standardised"]
    aucs = {n: [] for n in names}
    secs = {n: [] for n in names}
    rng = np.random.default_rng(0)
    for digit in digits:
        rows = rng.permutation(np.nonzero(y == digit)[0])
        train = rows[: len(rows) // 2]
        test = np.setdiff1d(np.arange(len(y)), train)
        lab = y[test] != digit
        pca = PCA(dim, random_state=0).fit(X[train])
        aucs["PCA"].append(anomaly_auc(((pca.inverse_transform(pca.transform(X[test])) - X[test]) ** 2).mean(1), lab))
        forest = IsolationForest(random_state=0).fit(X[train])
        aucs["IsolationForest"].append(anomaly_auc(-forest.score_samples(X[test]), lab))
        for name in names[2:]:
            variant = name.split()[1].rstrip(",")
            model = ek.AutoEncoder(variant=variant, dim=dim, epochs=100, batch_size=16, seed=0, device=args.device,
                                   standardize=name.endswith("standardised"))
            secs[name].append(timed_fit(model, X[train]))
            aucs[name].append(anomaly_auc(model.anomaly_scores(X[test]), lab))
    print(f"\n### 2. Anomalies: fit on half of one digit, score the rest (ROC-AUC of 'another digit'), dim {dim}\n")
    print("| digit | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i, digit in enumerate(digits):
        print(f"| {digit} | " + " | ".join(f"{aucs[n][i]:.3f}" for n in names) + " |")
    print("| **mean** | " + " | ".join(f"**{np.mean(aucs[n]):.3f}**" for n in names) + " |")
    print("| s/epoch | " + " | ".join(f"{np.mean(secs[n]):.4f}" if secs[n] else "-" for n in names) + " |")
    out["anomaly"] = {n: {"auc": aucs[n], "mean": float(np.mean(aucs[n])),
                          "s_per_epoch": float(np.mean(secs[n])) if secs[n] else None} for n in names}


# --------------------------------------------------------------------------- 3. standardisation
def standardisation(args, out):
    X, y = load_wine(return_X_y=True)
    print("\n### 3. Standardisation matters: wine (13 features, scales 0.1-1000), 50/50 stratified split, "
          "MAP@R / P@1 on the held-out half\n")
    print("| vectors | MAP@R | P@1 |")
    print("|---|---|---|")
    res = {"raw features": [], "z-scored features": [], "Siamese, standardize=True": [],
           "Siamese, standardize=False": []}
    for seed in range(args.seeds):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, stratify=y, random_state=seed)
        mu, sd = Xtr.mean(0), Xtr.std(0)
        res["raw features"].append(Xte)
        res["z-scored features"].append((Xte - mu) / sd)
        for flag in (True, False):
            model = ek.SiameseEncoder(dim=8, hidden=(64,), loss="contrastive", epochs=50, batch_size=32,
                                      standardize=flag, seed=seed, device=args.device)
            model.fit(Xtr, ytr, show_progress=False)
            res[f"Siamese, standardize={flag}"].append(model.encode(Xte))
        res.setdefault("_labels", []).append(yte)
    labels = res.pop("_labels")
    for name, vecs in res.items():
        maps = [map_at_r(v, lab) for v, lab in zip(vecs, labels)]
        p1s = [precision_at_1(v, lab) for v, lab in zip(vecs, labels)]
        out["wine"][name] = {"map_at_r": maps, "p_at_1": p1s}
        print(f"| {name} | {fmt(maps)} | {fmt(p1s)} |")


# --------------------------------------------------------------------------- 4. epoch time
def epoch_time(args, out):
    rng = np.random.default_rng(0)
    n, d, k = args.rows, 64, 20
    centres = rng.normal(0, 1, (k, d))
    y = rng.integers(0, k, n)
    X = (centres[y] + rng.normal(0, 1.5, (n, d))).astype(np.float32)
    print(f"\n### 4. Epoch time: synthetic Gaussian mixture, {n} rows x {d} features, {k} classes, "
          f"device {args.device}\n")
    print("| model | batch | s/epoch | rows/s | final loss |")
    print("|---|---|---|---|---|")
    for name, model in [
        ("SiameseEncoder contrastive (MLP 256-128-32)", ek.SiameseEncoder(loss="contrastive", epochs=2, batch_size=1024,
                                                                          device=args.device)),
        ("SiameseEncoder InfoNCE (MLP 256-128-32)", ek.SiameseEncoder(loss="infonce", epochs=2, batch_size=1024,
                                                                      device=args.device)),
        ("AutoEncoder undercomplete (128-64-16)", ek.AutoEncoder(epochs=2, batch_size=1024, device=args.device)),
        ("AutoEncoder vae (128-64-16)", ek.AutoEncoder(variant="vae", epochs=2, batch_size=1024, device=args.device)),
    ]:
        if isinstance(model, ek.SiameseEncoder):
            model.fit(X[:2048], y[:2048], show_progress=False)  # warm-up (kernels, allocator)
            sec = timed_fit(model, X, y)
        else:
            model.fit(X[:2048], show_progress=False)
            sec = timed_fit(model, X)
        out["epoch_time"][name] = {"s_per_epoch": sec, "rows_per_s": n / sec}
        print(f"| {name} | 1024 | {sec:.3f} | {n / sec:,.0f} | {model.loss_history_[-1]:.4f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto (default: cpu)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per Siamese configuration (default: 5)")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the synthetic epoch-time set (default: 20000)")
    parser.add_argument("--quick", action="store_true", help="one seed, fewer configurations (smoke run)")
    parser.add_argument("--sections", default="1234", help="which sections to run (default: 1234)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's choice; 1 is steadier on a shared machine)")
    parser.add_argument("--json", default=None, help="also write all figures to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.seeds = 1
    device = resolve_device(args.device, "encoders_bench")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"embedkit encoders benchmark: torch {torch.__version__}, device {device} ({name}), "
          f"threads {torch.get_num_threads()}, seeds {args.seeds}")
    out = {"device": str(device), "device_name": name, "torch": torch.__version__, "unseen": {}, "anomaly": {},
           "wine": {}, "epoch_time": {}}
    start = time.perf_counter()
    for key, fn in zip("1234", (unseen_classes, anomalies, standardisation, epoch_time)):
        if key in args.sections:
            fn(args, out)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
