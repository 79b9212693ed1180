"""How a MatrixFactorization model is saved: the one writer of its arrays and the one reader.

A model file (``model.save("m.npz")``) and a store entry (``model.to_store(name)``) hold the
same arrays, written by :func:`state_arrays` / :func:`state_config` and read by :func:`read_state`
(plain arrays in and out: the model hands over its state and sets itself from what comes back):

    user_keys, item_keys         str arrays
    user_factors, item_factors   float32 (users x dim, items x dim)
    user_bias, item_bias         float32, when the model has biases (item: BPR, explicit; user: explicit)
    seen_indptr, seen_indices,   CSR (int64, int32, float32) of every user's interactions, folded-in
    seen_values                  users' latest items substituted: what exclude_seen leaves out
    config "state"               {"format": 2, "resolved": parameters with method defaults filled in,
                                  "global_mean": float}

In a store (``indexes/<name>/``, written by :meth:`Trainer.to_store`):

    index     metric "ip": one vector per item, the item factors followed by the item bias when
              the model has biases, so an inner product with the query [user factors, 1] ranks
              items exactly as the model scores them. Any index kind works (flat by default).
    extras    "model": the arrays above (with the JSON config)
    meta      {"trainer": "MatrixFactorization", "params": ..., "loss_history": [...],
               "mf": {"format": 2, "global_mean", "n_users", "n_items", "nnz",
                      "query": "user factors" or "user factors + [1]"}}

:func:`read_model` is the one reader of a store entry: ``MatrixFactorization.from_store`` and
the HTTP service (:mod:`embedkit.serve`) both load through it, passing the class (this module
imports nothing from ``model.py``).

Format 1 (embedkit releases before the ``model`` extra; still read, converted on load by
:func:`format1_arrays` into the arrays above, so everything downstream is the same):

    index     as in format 2
    extras    "items":  keys, vectors (item factors), bias (when present)
              "users":  keys, vectors (user factors), bias (explicit only)
              "seen":   indptr (int64), indices (int32), values (float32)
    meta      {"trainer", "params", "resolved" (with "alpha" for today's "confidence", no "device"),
               "loss_history", "mf": {"format": 1, "global_mean", "n_users", "n_items", "nnz", "query"}}
"""

from __future__ import annotations

import json
import logging

import numpy as np
import scipy.sparse as sp

from ...errors import InputError, StoreError

log = logging.getLogger(__name__)

MF_FORMAT = 2
FORMATS = (1, 2)  # what read_model reads: 1 converted by format1_arrays, 2 as written
TRAINER = "MatrixFactorization"
_RENAMED = {"alpha": "confidence"}  # format-1 parameter names -> today's


# ------------------------------------------------------------------ the model's arrays
def state_arrays(user_keys, item_keys, user_factors, item_factors, seen, user_bias=None, item_bias=None) -> dict:
    """The saved arrays (see the module text) of a model's keys, factors, biases and seen CSR."""
    out = {"user_keys": np.array(user_keys, dtype=str), "item_keys": np.array(item_keys, dtype=str),
           "user_factors": user_factors, "item_factors": item_factors,
           "seen_indptr": seen.indptr.astype(np.int64), "seen_indices": seen.indices.astype(np.int32),
           "seen_values": seen.data.astype(np.float32)}
    if user_bias is not None:
        out["user_bias"] = user_bias
    if item_bias is not None:
        out["item_bias"] = item_bias
    return out


def state_config(resolved: dict, global_mean: float) -> dict:
    """The config "state" of a model: its resolved parameters (JSON values) and global mean."""
    resolved = {k: (v if v is None or isinstance(v, (bool, int, float, str)) else str(v))
                for k, v in resolved.items()}
    return {"format": MF_FORMAT, "resolved": resolved, "global_mean": float(global_mean)}


def read_state(arrays: dict, config: dict) -> tuple[dict, dict | None]:
    """What :func:`state_arrays` and :func:`state_config` wrote, checked: (the model's state as
    user_keys, item_keys, seen (CSR), user_factors, item_factors, user_bias, item_bias,
    global_mean; the resolved parameters, or None when the file has none).
    ValueError when the arrays do not fit together, StoreError for a newer format."""
    if config.get("format", MF_FORMAT) > MF_FORMAT:
        raise StoreError(f"the saved MatrixFactorization has format {config['format']}; upgrade embedkit")
    user_keys = [str(k) for k in arrays["user_keys"].tolist()]
    item_keys = [str(k) for k in arrays["item_keys"].tolist()]
    _check_shapes(arrays, len(user_keys), len(item_keys))
    seen = sp.csr_matrix((arrays["seen_values"], arrays["seen_indices"], arrays["seen_indptr"]),
                         shape=(len(user_keys), len(item_keys)))
    state = {"user_keys": user_keys, "item_keys": item_keys, "seen": seen,
             "user_factors": arrays["user_factors"], "item_factors": arrays["item_factors"],
             "user_bias": arrays.get("user_bias"), "item_bias": arrays.get("item_bias"),
             "global_mean": float(config.get("global_mean", 0.0))}
    resolved = config.get("resolved")
    return state, (dict(resolved) if resolved else None)


def _check_shapes(arrays: dict, n_users: int, n_items: int) -> None:
    """ValueError (the loaders turn it into StoreError) when the arrays do not fit together."""
    uf, itf = np.asarray(arrays["user_factors"]), np.asarray(arrays["item_factors"])
    if uf.ndim != 2 or itf.ndim != 2 or uf.shape[0] != n_users or itf.shape[0] != n_items \
            or uf.shape[1] != itf.shape[1]:
        raise ValueError(f"factors of shape {uf.shape} and {itf.shape} do not match "
                         f"{n_users} users and {n_items} items")
    for name, n in (("user_bias", n_users), ("item_bias", n_items)):
        if name in arrays and np.shape(arrays[name]) != (n,):
            raise ValueError(f"{name} of shape {np.shape(arrays[name])} does not match {n} keys")
    indptr, indices = np.asarray(arrays["seen_indptr"]), np.asarray(arrays["seen_indices"])
    if indptr.shape != (n_users + 1,) or (indices.size and (indices.min() < 0 or indices.max() >= n_items)):
        raise ValueError(f"the seen matrix does not match {n_users} users and {n_items} items")


def _renamed(params: dict) -> dict:
    out = dict(params)
    for old, new in _RENAMED.items():
        if old in out:
            value = out.pop(old)
            out.setdefault(new, value)
    return out


def format1_arrays(store, name: str, meta: dict, cls_name: str = TRAINER) -> dict:
    """The ``to_arrays()`` form (format 2) of a format-1 store entry: its extras "users",
    "items" and "seen" and its meta, with old parameter names mapped to today's."""
    from ...index._persist import meta_losses
    from ..base import _CONFIG, MODEL_FORMAT

    users, items, seen = (store.load_extra(name, extra) for extra in ("users", "items", "seen"))
    arrays = {"user_keys": users["keys"], "item_keys": items["keys"],
              "user_factors": users["vectors"], "item_factors": items["vectors"],
              "seen_indptr": seen["indptr"], "seen_indices": seen["indices"],
              "seen_values": seen["values"] if "values" in seen else np.ones(len(seen["indices"]), np.float32)}
    if "bias" in users:
        arrays["user_bias"] = users["bias"]
    if "bias" in items:
        arrays["item_bias"] = items["bias"]
    params = _renamed(meta.get("params") or {})
    state = {"format": MF_FORMAT, "global_mean": float(meta["mf"].get("global_mean", 0.0))}
    if meta.get("resolved"):
        # format 1 left the device out of the resolved parameters and loaded on the CPU
        state["resolved"] = {"device": "cpu", **_renamed(meta["resolved"])}
    config = {"format": MODEL_FORMAT, "class": cls_name, "params": params,
              "loss_history": meta_losses(meta), "state": state}
    arrays[_CONFIG] = np.array(json.dumps(config))
    return arrays


def store_meta(global_mean: float, n_users: int, n_items: int, nnz: int, item_bias: bool) -> dict:
    """The manifest's "mf" facts of a model (``item_bias``: whether its items carry a bias)."""
    return {"mf": {"format": MF_FORMAT, "global_mean": float(global_mean), "n_users": int(n_users),
                   "n_items": int(n_items), "nnz": int(nnz),
                   "query": "user factors + [1]" if item_bias else "user factors"}}


# ------------------------------------------------------------------ the one reader
def is_mf(manifest: dict) -> bool:
    """Whether a store manifest describes an index written by MatrixFactorization."""
    meta = manifest.get("meta") or {}
    return meta.get("trainer") == TRAINER and "mf" in meta


def read_model(cls, name: str, store=None, *, manifest: dict | None = None, with_index: bool = False,
               mmap: bool = False, **params):
    """The model of class ``cls`` (MatrixFactorization, passed by the caller) saved as ``name``.

    ``with_index``: also load the stored index (with the service's journalled writes) and let
    recommend() search it (``model.use_index``), as the service does (items it upserted or
    removed count); the service itself passes False (it holds the index already) and its
    ``manifest``. Raises StoreError when ``name`` was not written by MatrixFactorization.
    """
    from ...store import Store

    store = store if isinstance(store, Store) else Store(store)
    manifest = store.info(name) if manifest is None else manifest
    meta = manifest.get("meta") or {}
    if not is_mf(manifest):
        raise StoreError(f"index {name!r} was not written by MatrixFactorization (trainer: "
                         f"{meta.get('trainer', 'unknown')}); train one with 'embedkit train mf'")
    fmt, extras = meta["mf"].get("format"), set(manifest.get("extras") or [])
    if isinstance(fmt, int) and fmt > MF_FORMAT:
        raise StoreError(f"index {name!r} holds MF format {fmt}, newer than this embedkit reads "
                         f"({', '.join(map(str, FORMATS))}); upgrade embedkit")
    if fmt == MF_FORMAT and "model" in extras:
        arrays = store.load_extra(name, "model")
    elif fmt == 1 and {"users", "items", "seen"} <= extras:
        try:
            arrays = format1_arrays(store, name, meta, cls.__name__)
        except (KeyError, ValueError, TypeError) as exc:
            raise StoreError(f"index {name!r} holds a damaged MF format-1 model ({type(exc).__name__}: {exc}); "
                             "retrain it with 'embedkit train mf --force' (or model.to_store)") from None
    else:
        raise StoreError(f"index {name!r} holds an incomplete or unknown MF model (format {fmt!r}, extras: "
                         f"{', '.join(sorted(extras)) or 'none'}); retrain it with 'embedkit train mf --force' "
                         "(or model.to_store)")
    model = cls.from_arrays(arrays, source=f"{store.root}/{name}", **params)
    if with_index:
        index = store.load(name, mmap=mmap)
        try:
            model.use_index(index)  # recommend() searches the stored index (any kind), as the service does
        except InputError as exc:
            log.warning("index %r: recommending from the model's own item vectors, not the stored index (%s)",
                        name, exc)
    return model
