"""Recall tuning: the cheapest ``ef_search`` (HNSW) or ``nprobe`` (IVF) reaching a target recall.

Recall@k is measured against exact search (numpy, :func:`embedkit._knn.knn_search`) on a
sample of queries; candidate values are tried from the cheapest up and the first that reaches
the target is kept in the index's knobs (so it is saved with the index).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .._knn import knn_search
from . import _factory as F

log = logging.getLogger(__name__)

_EF = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048, 4096)
_NPROBE = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096)


def _truth(st, fq, k, exclude):
    live = st.live_ids()
    base = st.ready_all(live)
    ex = None
    if exclude is not None:
        ex = np.searchsorted(live, exclude)[:, None].astype(np.int64)
    _, top = knn_search(base, fq, k, l2=st.metric == "l2", exclude=ex)
    return live[top]


def _recall(st, fq, k, exclude, truth) -> float:
    res = st.search(fq, k, exclude)
    hits = 0
    for got, want in zip(res.keys, st.id_key[truth].tolist()):
        hits += len(set(got) & set(want))
    return hits / max(1, truth.size)


def tune(st, target: float, queries, k: int, sample: int, seed: int) -> dict:
    n = len(st.key_to_id)
    report = {"target_recall": target, "k": k, "kind": st.kind, "knob": None, "value": None,
              "recall": 1.0, "reached": True, "tried": [], "queries": 0, "seconds": 0.0}
    ivf = F.find_ivf(st.faiss) if st.faiss is not None else None
    if st.faiss is None or n < 2 or (not st.hnsw and ivf is None):
        report["note"] = "exact search (or empty index): nothing to tune"
        return report
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    if queries is None:
        live = st.live_ids()
        pick = np.sort(rng.choice(live, size=min(sample, len(live)), replace=False))
        fq = st.ready(pick)
        exclude = pick.astype(np.int64)
        kk = min(k, n - 1)
    else:
        fq, exclude, kk = queries, None, min(k, n)
    truth = _truth(st, fq, kk, exclude)
    if st.hnsw:
        knob, values = "ef_search", [v for v in _EF if v >= kk] or [kk]
    else:
        knob, values = "nprobe", [v for v in _NPROBE if v < ivf.nlist] + [int(ivf.nlist)]
    previous = st.knobs.get(knob)
    best = None
    for v in values:
        st.set_knobs({knob: int(v)})
        r = _recall(st, fq, kk, exclude, truth)
        report["tried"].append([int(v), round(r, 4)])
        if r >= target:
            best = (int(v), r)
            break
    if best is None:
        best = (int(values[-1]), report["tried"][-1][1])
        report["reached"] = False
        log.warning("tune: recall@%d %.3f at %s=%d is below the target %.3f", kk, best[1], knob, best[0], target)
    st.set_knobs({knob: best[0]})
    report.update(knob=knob, value=best[0], recall=round(best[1], 4), previous=previous, queries=int(len(fq)),
                  seconds=round(time.perf_counter() - t0, 3))
    return report
