"""ae14 fourth round (PROTOCOL.md): subsampled nearest-neighbour ensembles in place of A's k-NN terms, scored
from one AutoEncoder() fit per set. Usage: python ae_round4.py design|heldout|all"""
# ruff: noqa: E501
import glob
import json
import os
import sys
import time

import ae_extras  # this folder
import numpy as np
import torch
from sklearn.model_selection import train_test_split

import embedkit as ek
from embedkit.evaluate import anomaly_auc
from embedkit.trainers.encoders import _anomaly

torch.set_num_threads(1)
AD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data", "adbench")


def main():
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(AD + "/*.npz"))
    design = names[::3]
    which = sys.argv[1]
    sets = design if which == "design" else names if which == "all" else [n for n in names if n not in design]
    res = {}
    for name in sets:
        with np.load(f"{AD}/{name}.npz", allow_pickle=False) as d:
            X, y = d["X"].astype(np.float32), d["y"].astype(int)
        if len(X) > 5000:
            X, _, y, _ = train_test_split(X, y, train_size=5000, stratify=y, random_state=0)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, stratify=y, random_state=0)
        ae = ek.AutoEncoder(seed=0, device="cpu", score="ensemble", epochs=50)  # the default when run (before epochs="auto")
        ae.fit(Xtr, show_progress=False)
        spaces = {"lat": (ae.embeddings_.vectors, ae.encode(Xte)), "inp": (ae._train_rows, ae.scaler_.transform(Xte))}
        cand, secs = {"A": ae.decision_function(Xte)}, {}
        for tag, kind in (("S256", 256), ("S32", 32), ("VS", "variable")):
            t = time.perf_counter()
            out = 0.0
            for ref, q in spaces.values():
                sizes = ae_extras.subsample_sizes(kind, len(ref), 0)
                tr = ae_extras.subsampled_nn(ref, ref, sizes, 0, exclude_self=True)
                m, s = _anomaly.robust_scale(tr)
                out = out + (ae_extras.subsampled_nn(ref, q, sizes, 0) - m) / s
            cand[tag] = out / 2
            secs[tag] = time.perf_counter() - t
        res[name] = {k: anomaly_auc(v, yte) for k, v in cand.items()}
        res[name].update({f"s_{k}": v for k, v in secs.items()})
        print(name, {k: round(v, 3) for k, v in res[name].items()}, flush=True)
    means = {k: float(np.mean([r[k] for r in res.values()])) for k in next(iter(res.values()))}
    print("MEAN", {k: round(v, 4) for k, v in means.items()})
    with open(f"/tmp/ae14_round4_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
