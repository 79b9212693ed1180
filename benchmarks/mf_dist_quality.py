"""The quality figures of tests/test_dist_mf.py: 1 process vs 2 ranks on its planted set (run from the repo root)."""
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, "tests")
import test_dist_mf as t  # noqa: E402

from embedkit.distributed.launch import launch
from embedkit.trainers.mf import HybridMF, MatrixFactorization

tmp = tempfile.mkdtemp()
open(f"{tmp}/s.py", "w").write(t.SCRIPT)
imp, held, ratings, full, test = t._planted()
coo = imp.tocoo()
open(f"{tmp}/plays.csv", "w").write("user,item\n" + "".join(f"u{u},i{i}\n" for u, i in zip(coo.row, coo.col)))
cli = ["train", "mf", f"{tmp}/plays.csv", "--name", "p", "--store", f"{tmp}/store", "--epochs", "1", "--no-progress"]
r = launch([sys.executable, f"{tmp}/s.py", tmp, json.dumps({**t.CONFIGS, "hybrid": t.HYBRID}), json.dumps(cli)], 2,
           env={**os.environ, **t.ENV})
assert r.returncode == 0, r
for name, kw in t.CONFIGS.items():
    m = MatrixFactorization(**{"device": "cpu", **kw})
    m.fit(ratings if kw.get("feedback") == "explicit" else imp, show_progress=False)
    two = t._as_model(dict(np.load(f"{tmp}/{name}_rank0.npz")), m)
    q = t._rmse if kw.get("feedback") == "explicit" else None
    one_q = t._rmse(m, full, test) if q else t._recall(m, imp, held)
    two_q = t._rmse(two, full, test) if q else t._recall(two, imp, held)
    print(f"{name:10s} {'RMSE' if q else 'recall@10'}: 1 process {one_q:.4f}, 2 ranks {two_q:.4f}; "
          f"max |diff| / max |x| of item factors "
          f"{np.abs(two._item_factors - m._item_factors).max() / np.abs(m._item_factors).max():.2e}")
h = HybridMF(device="cpu", **t.HYBRID)
h.fit(imp, show_progress=False)
g = dict(np.load(f"{tmp}/hybrid_rank0.npz"))
a = MatrixFactorization.__new__(MatrixFactorization)
a._user_factors, a._item_factors, a._item_bias = h._U, h._I, h._bias
one = t._recall(a, imp, held)
a._user_factors, a._item_factors, a._item_bias = g["u"], g["i"], g["ib"]
print(f"hybrid     recall@10: 1 process {one:.4f}, 2 ranks {t._recall(a, imp, held):.4f}")
