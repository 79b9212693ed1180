"""ae14: the AutoEncoder default-score candidates of PROTOCOL.md (third round), one AE fit per set and input
transform, all candidates scored from the same fits. Usage: python ae_candidates.py design|heldout|all"""
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
        t0 = time.perf_counter()
        terms = {}  # name -> (train scores, test scores)
        ae = ek.AutoEncoder(seed=0, device="cpu", score="ensemble", epochs=50)  # the default when run (before epochs="auto")
        ae.fit(Xtr, show_progress=False)
        Ztr, Zte = ae._train_rows, ae.scaler_.transform(Xte)
        for tag, ref, q in (("lat_z", ae.embeddings_.vectors, ae.encode(Xte)), ("inp_z", Ztr, Zte)):
            terms[tag] = (_anomaly.knn_distances(ref, ref, 10, exclude_self=True), _anomaly.knn_distances(ref, q, 10))
        t1 = time.perf_counter()
        cop = ae_extras.CopulaScaler.fit(Xtr)
        Ctr, Cte = cop.transform(Xtr), cop.transform(Xte)
        aq = ek.AutoEncoder(seed=0, device="cpu", standardize=False, epochs=50)
        aq.fit(Ctr, show_progress=False)
        t2 = time.perf_counter()
        lat_tr, lat_te = aq.embeddings_.vectors, aq.encode(Cte)
        for tag, ref, q in (("lat_q", lat_tr, lat_te), ("inp_q", Ctr, Cte)):
            terms[tag] = (_anomaly.knn_distances(ref, ref, 10, exclude_self=True), _anomaly.knn_distances(ref, q, 10))
            terms[tag + "K"] = (ae_extras.knn_multi_k(ref, ref, (5, 10, 20), exclude_self=True),
                                ae_extras.knn_multi_k(ref, q, (5, 10, 20)))
        terms["rec_q"] = (aq._train_scores, aq.anomaly_scores(Cte, "reconstruction"))

        def ens(*tags):
            out = 0.0
            for tg in tags:
                m, s = _anomaly.robust_scale(terms[tg][0])
                out = out + (terms[tg][1] - m) / s
            return out / len(tags)

        cand = {"A": ens("lat_z", "inp_z"), "Q": ens("lat_q", "inp_q"), "QZ": ens("lat_q", "inp_q", "inp_z"),
                "QR": ens("lat_q", "inp_q", "rec_q"), "QK": ens("lat_qK", "inp_qK"),
                "diag_inp_q": terms["inp_q"][1], "diag_A_lib": ae.decision_function(Xte)}
        res[name] = {k: anomaly_auc(v, yte) for k, v in cand.items()}
        res[name]["fit_s_z"], res[name]["fit_s_q"] = t1 - t0, t2 - t1
        print(name, {k: round(v, 3) for k, v in res[name].items()}, flush=True)
    means = {k: float(np.mean([r[k] for r in res.values()])) for k in next(iter(res.values()))}
    print("MEAN", {k: round(v, 4) for k, v in means.items()})
    with open(f"/tmp/ae14_cand_{which}.json", "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
