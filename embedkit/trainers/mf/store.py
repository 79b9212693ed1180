"""How a MatrixFactorization model lives in the store (indexes/<name>/).

    index     metric "ip": one vector per item, the item factors followed by the item bias
              when the model has biases (BPR, explicit), so an inner product with the query
              [user factors, 1] ranks items exactly as the model scores them. Any index kind
              works (flat by default; hnsw/ivf for large catalogues).
    extras    "items":  keys (str), vectors (item factors, float32), bias (when present)
              "users":  keys (str), vectors (user factors, float32), bias (explicit only)
              "seen":   indptr (int64, users + 1), indices (int32 item rows of "items"),
                        values (float32): the training interactions, for exclude_seen
    meta      {"trainer": "MatrixFactorization", "params": constructor parameters,
               "resolved": parameters with method defaults filled in, "loss_history": [...],
               "mf": {"format": 1, "global_mean": float, "n_users", "n_items", "nnz",
                      "query": "user factors" or "user factors + [1]"}}

similar_items uses cosine on the "items" vectors; recommend searches the index by inner product.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ...errors import StoreError

MF_FORMAT = 1


def _store(store):
    from ...store import Store

    if store is None or not hasattr(store, "save"):
        return Store(store)
    return store


def save_model(model, name: str, store=None, *, kind: str = "flat", overwrite: bool = False):
    from ...index import VectorIndex

    store = _store(store)
    vecs = model._item_vectors_for_index()
    index = VectorIndex(vecs.shape[1], metric="ip", kind=kind)
    index.add(model._item_keys, vecs)
    seen = _seen_with_changes(model)
    items = {"keys": np.array(model._item_keys, dtype=str), "vectors": model._item_factors}
    users = {"keys": np.array(model._user_keys, dtype=str), "vectors": model._user_factors}
    if model._item_bias is not None:
        items["bias"] = model._item_bias
    if model._user_bias is not None:
        users["bias"] = model._user_bias
    extras = {"items": items, "users": users,
              "seen": {"indptr": seen.indptr.astype(np.int64), "indices": seen.indices.astype(np.int32),
                       "values": seen.data.astype(np.float32)}}
    meta = {"trainer": "MatrixFactorization", "params": model.json_params(),
            "resolved": {k: v for k, v in model.params_.items() if k != "device"},
            "loss_history": [float(x) for x in model.loss_history_],
            "mf": {"format": MF_FORMAT, "global_mean": model.global_mean_, "n_users": len(model._user_keys),
                   "n_items": len(model._item_keys), "nnz": int(seen.nnz),
                   "query": "user factors + [1]" if model._item_bias is not None else "user factors"}}
    return store.save(name, index, meta=meta, extras=extras, overwrite=overwrite)


def _seen_with_changes(model) -> sp.csr_matrix:
    """Training interactions with folded-in users' items substituted (rows = all users)."""
    n_users, n_items = len(model._user_keys), len(model._item_keys)
    base = model._seen
    if base.shape[0] < n_users:
        base = sp.vstack([base, sp.csr_matrix((n_users - base.shape[0], n_items), dtype=np.float32)]).tocsr()
    if not model._seen_changed:
        return base
    lil = base.tolil()
    for u, codes in model._seen_changed.items():
        lil.rows[u] = list(np.asarray(codes, dtype=np.int64))
        lil.data[u] = [1.0] * len(codes)
    out = lil.tocsr()
    out.sort_indices()
    return out


def is_mf_index(meta: dict) -> bool:
    return isinstance(meta, dict) and meta.get("trainer") == "MatrixFactorization" and "mf" in meta


def load_model(cls, name: str, store=None, *, mmap: bool = False):
    store = _store(store)
    index = store.load(name, mmap=mmap)
    meta = index.meta
    if not is_mf_index(meta):
        raise StoreError(f"index {name!r} was not written by MatrixFactorization (trainer: "
                         f"{meta.get('trainer', 'unknown')}); train one with 'embedkit train mf'")
    if meta["mf"].get("format", 0) > MF_FORMAT:
        raise StoreError(f"index {name!r} holds a newer MF format ({meta['mf']['format']}); upgrade embedkit")
    items = store.load_extra(name, "items")
    users = store.load_extra(name, "users")
    seen = store.load_extra(name, "seen")
    params = dict(meta.get("params", {}))
    known = set(cls().get_params())
    model = cls(**{k: v for k, v in params.items() if k in known})
    model.params_ = dict(meta["resolved"], device="cpu")
    model.loss_history_ = list(meta.get("loss_history", []))
    n_users, n_items = len(users["keys"]), len(items["keys"])
    csr = sp.csr_matrix((seen["values"], seen["indices"], seen["indptr"]), shape=(n_users, n_items))
    model._set_state([str(k) for k in users["keys"].tolist()], [str(k) for k in items["keys"].tolist()], csr,
                     users["vectors"], items["vectors"], users.get("bias"), items.get("bias"),
                     meta["mf"].get("global_mean", 0.0))
    if len(index) == n_items:
        model._index = index  # answer recommend() with the stored index (any kind)
    return model
