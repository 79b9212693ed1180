"""siamese14 self-supervised round (PROTOCOL.md): V0-V2 on the design or held-out tasks of siamese_bench.py.

    python benchmarks/encoders_design/ret_ssl.py design V0,V1,V2
    python benchmarks/encoders_design/ret_ssl.py heldout V1
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from siamese_bench import all_tasks  # noqa: E402

import embedkit as ek  # noqa: E402
from embedkit.evaluate import map_at_r, precision_at_1  # noqa: E402

CANDIDATES = {"V0": {}, "V1": {"hidden": ()}, "V2": {"hidden": (), "self_supervised": "predictive"}}
DESIGN = ("digits 3-9 -> 0-2", "synthetic seed 1", "make_classification rs 1")
HELDOUT = ("digits even -> odd", "digits 5-9 -> 0-4", "synthetic seed 2", "make_classification rs 2")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=("design", "heldout"))
    parser.add_argument("candidates")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tasks = all_tasks()
    res = {}
    for task in DESIGN if args.which == "design" else HELDOUT:
        X, y, tr, _, _ = tasks[task]
        for name in args.candidates.split(","):
            for seed in (0, 1):
                model = ek.SiameseEncoder(seed=seed, device="cpu", **CANDIDATES[name])
                start = time.perf_counter()
                model.fit(X[tr], show_progress=False)
                sec = time.perf_counter() - start
                V = model.encode(X[~tr])
                r = (map_at_r(V, y[~tr]), precision_at_1(V, y[~tr]), sec)
                res.setdefault(name, []).append(r)
                print(f"{task} | {name} seed {seed} | MAP@R {r[0]:.3f} | P@1 {r[1]:.3f} | {sec:.1f} s", flush=True)
    for name, rows in res.items():
        print(f"MEAN {name}: MAP@R {np.mean([r[0] for r in rows]):.4f} P@1 {np.mean([r[1] for r in rows]):.4f} "
              f"fit s {np.mean([r[2] for r in rows]):.1f}")


if __name__ == "__main__":
    main()
