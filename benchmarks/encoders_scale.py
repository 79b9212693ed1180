"""How the encoders' default fits grow with the rows: the parts that are not epochs (validation, k-NN scores).

The labelled ``SiameseEncoder()`` scores held-out folds by MAP@R (at most ``SCORED_ROWS`` rows per fold) and the
default ``AutoEncoder()`` scores every training row by k-NN distance (against at most ``KNN_REFERENCE_ROWS``
reference rows); both used to compare all rows with all rows. Each row of the table is one fit of 1 epoch (the
Siamese one with early_stopping=False) on a Gaussian mixture of 64 features and 20 classes, so the seconds are
mostly those parts; "score 1000" times decision_function / encode of 1,000 new rows.

    python benchmarks/encoders_scale.py                         # 20k, 40k, 80k, 200k rows, CPU
    python benchmarks/encoders_scale.py --rows 1000000 --device cuda
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import embedkit as ek


def data(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (20, 64))
    y = rng.integers(0, 20, n)
    return (centres[y] + rng.normal(0, 1.5, (n, 64))).astype(np.float32), y


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[20000, 40000, 80000, 200000])
    ap.add_argument("--models", nargs="+", default=["autoencoder", "siamese"], choices=["autoencoder", "siamese"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")
    print(f"torch {torch.__version__}, device {a.device}, threads {torch.get_num_threads()}\n")
    print("| rows | model | fit s (1 epoch) | score 1000 s |")
    print("|---:|---|---:|---:|")
    for n in a.rows:
        X, y = data(n)
        for name in a.models:
            if name == "autoencoder":
                model, args, score = ek.AutoEncoder(epochs=1, device=a.device), (X,), "decision_function"
            else:
                model = ek.SiameseEncoder(epochs=1, early_stopping=False, device=a.device)
                args, score = (X, y), "encode"
            t0 = time.perf_counter()
            model.fit(*args, show_progress=False)
            fit_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            getattr(model, score)(X[:1000])
            print(f"| {n:,} | {name} | {fit_s:.2f} | {time.perf_counter() - t0:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
