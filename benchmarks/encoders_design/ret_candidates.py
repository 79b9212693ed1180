"""siamese14 design round: the SiameseEncoder default candidates T0-T4 of PROTOCOL.md, on the design or held-out tasks.

    python benchmarks/encoders_design/ret_candidates.py design T0,T1,T2,T3,T4 [--json out.json]
    python benchmarks/encoders_design/ret_candidates.py heldout T2

Candidates are written here as subclasses / wrappers of SiameseEncoder so the losers stay reproducible after
the chosen one is moved into the library. One torch thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from encoders_bench import retrieval_baselines, synthetic_classes  # noqa: E402
from siamese_bench import mixed_table  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.errors import IgnoredParameterWarning  # noqa: E402
from embedkit.evaluate import map_at_r, precision_at_1  # noqa: E402
from embedkit.trainers.encoders import base as _nn  # noqa: E402
from embedkit.trainers.encoders.losses import info_nce_loss  # noqa: E402
from embedkit.trainers.encoders.siamese import _principal_axes  # noqa: E402

DIM = 32
W_GRID = (0.0, 0.25, 0.5, 0.75, 0.9)


def tasks(which: str):
    X, y = load_digits(return_X_y=True)
    X = X.astype(np.float32)
    if which == "design4":  # round 4: every task of round 3
        return {**tasks("design"), **tasks("heldout")}
    if which == "heldout4":
        S2, y2 = synthetic_classes(2)
        M2, m2 = mixed_table(2)
        return {"digits even -> odd": (X, y, y % 2 == 0), "digits 5-9 -> 0-4": (X, y, y >= 5),
                "synthetic seed 2": (S2, y2, y2 < 14), "make_classification rs 2": (M2, m2, m2 < 14)}
    if which == "design":
        S1, y1 = synthetic_classes(1)
        M1, m1 = mixed_table(1)
        return {"digits 3-9 -> 0-2": (X, y, y >= 3), "synthetic seed 1": (S1, y1, y1 < 14),
                "make_classification rs 1": (M1, m1, m1 < 14)}
    S0, y0 = synthetic_classes(0)
    M0, m0 = mixed_table(0)
    return {"digits 0-6 -> 7-9": (X, y, y <= 6), "synthetic seed 0": (S0, y0, y0 < 14),
            "digits 0-4 -> 5-9": (X, y, y <= 4), "make_classification rs 0": (M0, m0, m0 < 14)}


def held_classes(lab, seed):
    """The probe's held-out training classes: the same draw as SiameseEncoder._choose_share."""
    classes = np.unique(lab)
    rng = np.random.default_rng(seed)
    return np.isin(lab, rng.choice(classes, max(2, len(classes) // 3), replace=False))


def scaler_of(arr):
    return _nn.Standardizer.fit(arr, True)


# --------------------------------------------------------------------------- T0 / T1 (concatenated skip path)
def blend_choice(probe, arr, lab, val):
    """Best (w, space) of the concatenated PCA + learned embedding on the held-out classes (T0's inner loop)."""
    k = probe.skip_dims_
    learned = probe.encode(arr[val])[:, k:]
    learned /= np.maximum(np.linalg.norm(learned, axis=1, keepdims=True), 1e-12)
    fit_rows = torch.as_tensor(arr[~val], dtype=torch.float64)
    sc = probe.scaler_
    spaces = {"scaled": (fit_rows - torch.as_tensor(sc.mean, dtype=torch.float64))
              / torch.as_tensor(sc.scale, dtype=torch.float64), "raw": fit_rows}
    best = (-1.0, 0.5, "scaled")
    for space, rows in spaces.items():
        axes = _principal_axes(rows, k).double().numpy()
        centre = rows.mean(dim=0).numpy()
        held_rows = arr[val].astype(np.float64)
        if space == "scaled":
            held_rows = (held_rows - sc.mean) / sc.scale
        p = (held_rows - centre) @ axes.T
        p /= np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        for w in W_GRID:
            s = map_at_r(np.hstack([math.sqrt(w) * p, math.sqrt(1 - w) * learned]).astype(np.float32), lab[val])
            if s > best[0] + 1e-9:
                best = (s, w, space)
    return best


class Preset(ek.SiameseEncoder):
    """SiameseEncoder whose skip weight and space are given (what T1 chose on its probe)."""

    preset = (0.5, "scaled")

    def _choose_share(self, X, y):
        return self.preset


def fit_t0(X, y, seed):
    m = ek.SiameseEncoder(seed=seed, device="cpu")
    m.fit(X, y, show_progress=False)
    return m.encode, {"w": m.input_share_, "space": m.skip_space_}


def fit_t1(X, y, seed, epochs=20):
    arr, lab = np.asarray(X, np.float32), np.asarray(y)
    val = held_classes(lab, seed)
    probe = ek.SiameseEncoder(seed=seed, device="cpu", input_share=0.5, epochs=epochs)
    curve = []
    probe.fit(arr[~val], lab[~val], show_progress=False,
              callback=lambda e, loss: curve.append((e, *blend_choice(probe, arr, lab, val))))
    e, _, w, space = max(curve, key=lambda r: (r[1], -r[0]))
    m = Preset(seed=seed, device="cpu", epochs=e)
    m.preset = (w, space)
    m.fit(arr, lab, show_progress=False)
    return m.encode, {"w": w, "space": space, "epochs": e}


# --------------------------------------------------------------------------- T2 / T3 / T4 (linear-first)
class LinearFirst(nn.Module):
    """A x + r(x): A starts at the principal axes, r (an MLP) starts at zero; an optional linear decoder."""

    def __init__(self, n_features, dim, hidden=(256, 128), residual=True, decoder=False):
        super().__init__()
        self.linear = nn.Linear(n_features, dim, bias=False)
        self.residual = _nn.mlp([n_features, *hidden, dim]) if residual else None
        if residual:
            nn.init.zeros_(self.residual[-1].weight)
            nn.init.zeros_(self.residual[-1].bias)
        self.decoder = nn.Linear(dim, n_features) if decoder else None

    def forward(self, x):
        z = self.linear(x)
        return z + self.residual(x) if self.residual is not None else z


def pca_init(arr, space, dim):
    """The linear map's start on ``arr``'s scaled rows: principal axes of the scaled rows or of the rows in
    their own units, rescaled so the mean squared norm of the output is 1."""
    sc = scaler_of(arr)
    scale = torch.as_tensor(sc.scale, dtype=torch.float64)
    table = torch.as_tensor(sc.transform(arr), dtype=torch.float64)
    x = table * (scale if space == "raw" else 1.0)
    axes = _principal_axes(x, dim).double() * (scale if space == "raw" else 1.0)
    out = table @ axes.T
    return (axes / out.pow(2).sum(1).mean().sqrt()).float()


def pca_map(arr, lab, fit_rows, space, dim):
    sc = scaler_of(arr[fit_rows])
    A = pca_init(arr[fit_rows], space, dim).double().numpy()
    return map_at_r((sc.transform(arr[~fit_rows]).astype(np.float64) @ A.T).astype(np.float32), lab[~fit_rows])


class LinearFirstEncoder(ek.SiameseEncoder):
    """SiameseEncoder(encoder=LinearFirst(...), input_share=0); with a decoder, MSE beside InfoNCE."""

    def _batch_loss(self, table, batch, gen):
        dec = self.model_.decoder
        if dec is None:
            return super()._batch_loss(table, batch, gen)
        _, a, p, labels = batch
        za, zp = self.model_(table[a]), self.model_(table[p])
        loss = info_nce_loss(F.normalize(za, dim=1), F.normalize(zp, dim=1), self.temperature, labels=labels)
        return loss + F.mse_loss(dec(torch.cat([za, zp])), table[torch.cat([a, p])])


def linear_first_model(arr, space, seed, epochs, residual, decoder):
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        module = LinearFirst(arr.shape[1], DIM, residual=residual, decoder=decoder)
    with torch.no_grad():
        module.linear.weight.copy_(pca_init(arr, space, DIM))
    return LinearFirstEncoder(dim=DIM, encoder=module, input_share=0.0, epochs=max(1, epochs), seed=seed, device="cpu")


def fit_linear_first(X, y, seed, residual=True, decoder=False, epochs=20):
    arr, lab = np.asarray(X, np.float32), np.asarray(y)
    val = held_classes(lab, seed)
    space_maps = {s: pca_map(arr, lab, ~val, s, DIM) for s in ("scaled", "raw")}
    space = max(space_maps, key=space_maps.get)
    probe = linear_first_model(arr[~val], space, seed, epochs, residual, decoder)
    curve = [(0, space_maps[space])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredParameterWarning)
        probe.fit(arr[~val], lab[~val], show_progress=False,
                  callback=lambda e, loss: curve.append((e, map_at_r(probe.encode(arr[val]), lab[val]))))
        e = max(curve, key=lambda r: (r[1], -r[0]))[0]
        if e == 0:  # PCA itself
            sc = scaler_of(arr)
            A = pca_init(arr, space, DIM).numpy()
            return (lambda Z: sc.transform(np.asarray(Z, np.float32)) @ A.T), {"space": space, "epochs": 0}
        m = linear_first_model(arr, space, seed, e, residual, decoder)
        m.fit(arr, lab, show_progress=False)
    return m.encode, {"space": space, "epochs": e, "curve": [round(c[1], 3) for c in curve]}


def class_folds(lab, seed, k=3):
    """k masks of the rows whose classes form each fold (classes shuffled with the seed)."""
    classes = np.random.default_rng(seed).permutation(np.unique(lab))
    return [np.isin(lab, part) for part in np.array_split(classes, k)]


def fit_linear_first_cv(X, y, seed, residual=False, epochs=20, k=3):
    """T5: T4 with the space and the epoch chosen by k-fold class-disjoint cross-validation."""
    arr, lab = np.asarray(X, np.float32), np.asarray(y)
    folds = class_folds(lab, seed, k)
    space_maps = {s: np.mean([pca_map(arr, lab, ~val, s, DIM) for val in folds]) for s in ("scaled", "raw")}
    space = max(space_maps, key=space_maps.get)
    curves = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredParameterWarning)
        for val in folds:
            probe = linear_first_model(arr[~val], space, seed, epochs, residual, False)
            curve = [pca_map(arr, lab, ~val, space, DIM)]
            probe.fit(arr[~val], lab[~val], show_progress=False,
                      callback=lambda e, loss, probe=probe, val=val, curve=curve: curve.append(
                          map_at_r(probe.encode(arr[val]), lab[val])))
            curves.append(curve)
        mean = np.mean(curves, axis=0)
        e = int(np.argmax(mean))
        info = {"space": space, "epochs": e, "curve": [round(float(c), 3) for c in mean]}
        if e == 0:
            sc = scaler_of(arr)
            A = pca_init(arr, space, DIM).numpy()
            return (lambda Z: sc.transform(np.asarray(Z, np.float32)) @ A.T), info
        m = linear_first_model(arr, space, seed, e, residual, False)
        m.fit(arr, lab, show_progress=False)
    return m.encode, info


def fit_cv_rules(X, y, seed, epochs=20):
    """Round 4: one set of class-fold probe runs (the library's folds: min(3, classes // 2)), three epoch rules."""
    arr, lab = np.asarray(X, np.float32), np.asarray(y)
    classes = np.unique(lab)
    k = min(3, len(classes) // 2)
    folds = [np.isin(lab, part) for part in np.array_split(np.random.default_rng(seed).permutation(classes), k)]
    start = {s: [pca_map(arr, lab, ~v, s, DIM) for v in folds] for s in ("scaled", "raw")}
    space = max(start, key=lambda s: np.mean(start[s]))
    curves = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", IgnoredParameterWarning)
        for v, first in zip(folds, start[space]):
            probe = linear_first_model(arr[~v], space, seed, epochs, False, False)
            curve = [first]
            probe.fit(arr[~v], lab[~v], show_progress=False,
                      callback=lambda e, loss, p=probe, v=v, c=curve: c.append(map_at_r(p.encode(arr[v]), lab[v])))
            curves.append(curve)
        C = np.array(curves)
        mean = C.mean(axis=0)
        best = int(np.argmax(mean))
        se1 = C[:, best].std(ddof=1) / math.sqrt(k)
        se2 = (C[:, best] - C[:, 0]).std(ddof=1) / math.sqrt(k)
        chosen = {"U0": best, "U1": int(np.argmax(mean >= mean[best] - se1)), "U2": int(np.argmax(mean >= mean[best] - se2))}
        out, fitted = {}, {}
        for name, e in chosen.items():
            if e not in fitted:
                if e == 0:
                    sc = scaler_of(arr)
                    A = pca_init(arr, space, DIM).numpy()
                    fitted[e] = lambda Z, sc=sc, A=A: sc.transform(np.asarray(Z, np.float32)) @ A.T
                else:
                    m = linear_first_model(arr, space, seed, e, False, False)
                    m.fit(arr, lab, show_progress=False)
                    fitted[e] = m.encode
            out[name] = (fitted[e], {"space": space, "epochs": e, "folds": k, "se1": round(se1, 4),
                                     "se2": round(se2, 4), "curve": [round(float(c), 3) for c in mean]})
    return out


CANDIDATES = {
    "T0": fit_t0,
    "T1": fit_t1,
    "T2": lambda X, y, s: fit_linear_first(X, y, s),
    "T3": lambda X, y, s: fit_linear_first(X, y, s, decoder=True),
    "T4": lambda X, y, s: fit_linear_first(X, y, s, residual=False),
    "T5": fit_linear_first_cv,
    "U": fit_cv_rules,  # gives U0, U1, U2
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=("design", "heldout", "design4", "heldout4"))
    parser.add_argument("candidates", help="comma-separated, e.g. T0,T2")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json", default=None)
    parser.add_argument("--no-baselines", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    res = {}
    for task, (A, lab, tr) in tasks(args.which).items():
        te = ~tr
        if not args.no_baselines:
            for b, v in retrieval_baselines(A, tr, DIM).items():
                res.setdefault(b, []).append((task, None, map_at_r(v, lab[te]), precision_at_1(v, lab[te]), 0.0, {}))
                print(f"{task} | {b} | MAP@R {res[b][-1][2]:.3f} | P@1 {res[b][-1][3]:.3f}", flush=True)
        for name in args.candidates.split(","):
            for seed in range(args.seeds):
                t = time.perf_counter()
                got = CANDIDATES[name](A[tr], lab[tr], seed)
                sec = time.perf_counter() - t  # for "U": the three rules together
                for cname, (enc, info) in (got.items() if isinstance(got, dict) else [(name, got)]):
                    V = np.asarray(enc(A[te]), np.float32)
                    r = (task, seed, map_at_r(V, lab[te]), precision_at_1(V, lab[te]), sec, info)
                    res.setdefault(cname, []).append(r)
                    print(f"{task} | {cname} seed {seed} | MAP@R {r[2]:.3f} | P@1 {r[3]:.3f} | {sec:.1f} s | {info}",
                          flush=True)
    print()
    for name, rows in res.items():
        print(f"MEAN {name}: MAP@R {np.mean([r[2] for r in rows]):.4f} P@1 {np.mean([r[3] for r in rows]):.4f} "
              f"fit s {np.mean([r[4] for r in rows]):.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
