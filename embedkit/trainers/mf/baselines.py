"""Baseline recommenders with MatrixFactorization's ``recommend`` API: what a model has to beat.

    from embedkit.trainers.mf import ItemKNN, Popularity
    from embedkit.evaluate import compare
    pop, knn = Popularity(), ItemKNN(similarity="bm25")   # most-interacted items; item-item neighbours
    pop.fit(train); knn.fit(train)                        # fit returns the item Embeddings
    knn.recommend("alice", k=10, filter={"$key": {"$nin": ["item-3"]}})
    knn.similar_users("alice", k=5)                       # cosine of the users' interaction rows
    table = compare({"pop": pop, "knn": knn, "als": als}, test)   # str(table): one row per model

Popularity ranks items by how many users interacted with them. ItemKNN is the item-based
collaborative filter of Sarwar et al. (WWW 2001) as implicit's ``CosineRecommender`` /
``BM25Recommender`` do it: item columns of the users x items matrix (BM25-weighted, Robertson's
K1/B, for "bm25"), cosine similarity between items, the ``neighbors`` most similar items kept per
item, and a user's score of an item = sum over their items of value x similarity. Recommendations
are the exact top-k among the allowed items (``filter``), seen items excluded.

``embeddings_`` (what ``fit`` returns, ``to_store`` indexes, ``similar_items`` searches): for
Popularity a 1-d vector per item (log(1 + users)); for ItemKNN the weighted, unit-length item
columns, projected to at most 256 dimensions by a fixed Gaussian projection when there are more
users (Johnson-Lindenstrauss: cosines kept to about +-0.1) so memory stays items x 256.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import scipy.sparse as sp

from ..._validation import SEED, Bool, Interval, Options, check_bool, check_int
from ...embeddings import Embeddings
from ...errors import InputError, MissingKeyError
from ..base import Trainer
from ._topk import allowed_mask, as_user_list, similar_rows, top_k

__all__ = ["ItemKNN", "Popularity", "as_interactions"]

_MAX_DIM = 256


def as_interactions(data, what: str):
    """An Interactions from an Interactions or a users x items matrix (one-line error otherwise)."""
    from ...data.interactions import Interactions

    if isinstance(data, Interactions):
        out = data
    elif sp.issparse(data) or isinstance(data, np.ndarray):
        out = Interactions.from_sparse(data)
    else:
        raise InputError(f"{what}.fit() takes an ek.Interactions or a users x items matrix (scipy sparse or numpy); "
                         f"got {type(data).__name__}")
    if out.nnz == 0:
        raise InputError(f"{what}.fit() got no interactions; give at least one (user, item) pair")
    return out


class _Recommender(Trainer):
    """What the baselines share: keys, the seen matrix, recommend/recommend_batch/similar_items,
    item payloads for filters, persistence of keys and seen matrix."""

    def _set_base(self, user_keys, item_keys, seen) -> None:
        self._user_keys = list(user_keys)
        self._user_index = {k: i for i, k in enumerate(self._user_keys)}
        self._item_keys = list(item_keys)
        self._item_index = {k: i for i, k in enumerate(self._item_keys)}
        self._seen = sp.csr_matrix(seen, dtype=np.float32)
        self._seen.sort_indices()
        self.__dict__.setdefault("_payload", None)

    def has_user(self, user) -> bool:
        self._check_fitted()
        return isinstance(user, str) and user in self._user_index

    def has_item(self, item) -> bool:
        self._check_fitted()
        return isinstance(item, str) and item in self._item_index

    def _user_codes(self, users) -> np.ndarray:
        self._check_fitted()
        out = []
        for u in users:
            code = self._user_index.get(u) if isinstance(u, str) else None
            if code is None:
                raise MissingKeyError(f"unknown user {u!r}; {type(self).__name__} knows the {len(self._user_keys)} "
                                      "users of its training interactions")
            out.append(code)
        return np.array(out, dtype=np.int64)

    def _check_item(self, item) -> None:
        self._check_fitted()
        if not isinstance(item, str) or item not in self._item_index:
            raise MissingKeyError(f"unknown item {item!r}; items come from the training interactions "
                                  f"({len(self._item_keys)} items)")

    def seen_items(self, user) -> np.ndarray:
        u = int(self._user_codes([user])[0])
        return self._seen.indices[self._seen.indptr[u]:self._seen.indptr[u + 1]]

    def history(self, user) -> list[tuple[str, float]]:
        """The user's training interactions as (item, value), strongest first (as
        :meth:`MatrixFactorization.history`)."""
        u = int(self._user_codes([user])[0])
        lo, hi = self._seen.indptr[u], self._seen.indptr[u + 1]
        codes, values = self._seen.indices[lo:hi], self._seen.data[lo:hi]
        order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
        return [(self._item_keys[int(codes[i])], float(values[i])) for i in order]

    def set_item_payload(self, payload) -> None:
        """Item payloads for payload filters: a dict {item: {field: value}} or one dict per item
        in the order of ``embeddings_.keys`` (None clears them)."""
        self._check_fitted()
        self._payload = _payload_rows(payload, self._item_keys)

    def _scores(self, codes: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def recommend(self, user, k: int = 10, exclude_seen: bool = True, filter=None) -> list[tuple[str, float]]:
        """Top-``k`` (item, score) for a known user, best first; ``filter`` as in
        ``VectorIndex.search`` (``$key`` allow/deny lists, payload fields)."""
        return self.recommend_batch([user], k=k, exclude_seen=exclude_seen, filter=filter)[0]

    def recommend_batch(self, users, k: int = 10, exclude_seen: bool = True,
                        filter=None) -> list[list[tuple[str, float]]]:
        """recommend() for many users: exact top-k among the allowed unseen items."""
        users = as_user_list(users)
        exclude_seen = check_bool(f"{type(self).__name__}.recommend", "exclude_seen", exclude_seen)
        codes = self._user_codes(users)
        allowed = allowed_mask(filter, self._item_keys, self._payload)
        out = []
        for start in range(0, len(codes), 1024):
            part = codes[start:start + 1024]
            scores = self._scores(part)
            exclude = [self._seen.indices[self._seen.indptr[u]:self._seen.indptr[u + 1]] if exclude_seen
                       else () for u in part]
            out.extend(top_k(scores, self._item_keys, k, exclude, allowed))
        return out

    def similar_items(self, item, k: int = 10, filter=None) -> list[tuple[str, float]]:
        """The ``k`` items most similar to ``item`` (cosine of ``embeddings_``), itself excluded."""
        self._check_item(item)
        k = check_int(f"{type(self).__name__}.similar_items", "k", k, 1)
        return similar_rows(self.embeddings_.vectors, self._item_index[item], self._item_keys, k,
                            allowed_mask(filter, self._item_keys, self._payload))

    def similar_users(self, user, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` users whose interaction rows (the training values) are closest to ``user``'s
        by cosine, best first (the user excluded; users sharing no item are left out)."""
        u = int(self._user_codes([user])[0])
        k = check_int(f"{type(self).__name__}.similar_users", "k", k, 1)
        rows = self._seen.astype(np.float64)
        norms = np.sqrt(np.asarray(rows.multiply(rows).sum(1)).ravel())
        sims = np.asarray((rows @ rows[u].T).todense()).ravel() / np.maximum(norms * norms[u], 1e-12)
        sims[sims <= 0] = -np.inf  # nothing in common
        return top_k(sims[None, :], self._user_keys, k, [[u]], None)[0]

    def _base_arrays(self) -> dict:
        out = {"user_keys": np.array(self._user_keys, dtype=str), "item_keys": np.array(self._item_keys, dtype=str),
               "seen_indptr": self._seen.indptr.astype(np.int64), "seen_indices": self._seen.indices.astype(np.int32),
               "seen_values": self._seen.data.astype(np.float32)}
        if self._payload is not None:
            import json

            out["item_payload"] = np.array(json.dumps(self._payload))
        return out

    def _load_base(self, arrays: dict) -> None:
        users = [str(k) for k in arrays["user_keys"].tolist()]
        items = [str(k) for k in arrays["item_keys"].tolist()]
        seen = sp.csr_matrix((arrays["seen_values"], arrays["seen_indices"], arrays["seen_indptr"]),
                             shape=(len(users), len(items)))
        self._set_base(users, items, seen)
        if "item_payload" in arrays:
            import json

            self._payload = json.loads(str(arrays["item_payload"]))


def _payload_rows(payload, keys):
    """``payload`` (None, a dict {item: {field: value}} or one dict per item in key order) as a
    list of one dict per key, or None; InputError (one line) for anything else."""
    if payload is None:
        return None
    if isinstance(payload, dict):
        known = set(keys)
        unknown = [k for k in payload if k not in known]
        if unknown:
            raise InputError(f"item payload names {len(unknown)} unknown items, e.g. {unknown[0]!r}; "
                             "give payloads for the model's items")
        for k, r in payload.items():
            if r is not None and not isinstance(r, Mapping):
                raise InputError(f"item payload of item {k!r} is {type(r).__name__}; give one dict "
                                 "{field: value} per item")
        return [dict(payload.get(k) or {}) for k in keys]
    if isinstance(payload, (str, bytes, Mapping)) or hasattr(payload, "itertuples") \
            or not isinstance(payload, Iterable):
        raise InputError(f"item payload must be a dict {{item: {{field: value}}}} or a list of one dict per item; "
                         f"got {type(payload).__name__}")
    rows = list(payload)
    if len(rows) != len(keys):
        raise InputError(f"item payload has {len(rows)} rows for {len(keys)} items; give one dict per item")
    for i, r in enumerate(rows):
        if r is not None and not isinstance(r, Mapping):
            raise InputError(f"item payload row {i} is {type(r).__name__}; give one dict per item")
    return [dict(r or {}) for r in rows]


class Popularity(_Recommender):
    """Items ranked by the number of users who interacted with them (the same list for everyone,
    minus each user's seen items). Scores are those user counts.

    Parameters
    ----------
    seed : int, default 0
        Unused by the ranking (kept for the trainer contract's same-seed promise).
    """

    _parameter_constraints = {"seed": SEED}

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, interactions, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Count each item's users; returns 1-d item Embeddings (log(1 + users))."""
        self._validate_params()
        self._check_callback("Popularity", callback)
        inter = as_interactions(interactions, "Popularity")
        self._set_base(inter.user_keys, inter.item_keys, inter.matrix)
        self._set_counts(np.diff(self._seen.tocsc().indptr).astype(np.float64))
        self.loss_history_ = []
        if callback is not None:
            callback(1, 0.0)
        return self.embeddings_

    def _set_counts(self, counts) -> None:
        self._counts = np.asarray(counts, dtype=np.float64)
        self.embeddings_ = Embeddings(self._item_keys, np.log1p(self._counts)[:, None].astype(np.float32))

    def _scores(self, codes):
        return np.broadcast_to(self._counts, (len(codes), len(self._counts)))

    def _state_arrays(self) -> dict:
        return {**self._base_arrays(), "counts": self._counts}

    def _load_state(self, arrays, config) -> None:
        self._load_base(arrays)
        self._set_counts(arrays["counts"])


class ItemKNN(_Recommender):
    """Item-item nearest-neighbour recommender (cosine or BM25-weighted cosine).

    Parameters
    ----------
    similarity : {"cosine", "bm25"}, default "cosine"
    neighbors : int in [1, 100000], default 100
        Most similar items kept per item (implicit's K).
    k1 : float > 0, default 1.2
        BM25 term-frequency saturation (bm25 only).
    b : float in [0, 1], default 0.75
        BM25 length normalisation (bm25 only).
    binary : bool, default False
        True: every interaction counts 1 (values ignored).
    seed : int, default 0
        Seed of the projection behind ``embeddings_`` when there are more than 256 users.
    """

    _parameter_constraints = {
        "similarity": [Options("cosine", "bm25")],
        "neighbors": [Interval(int, 1, 100_000)],
        "k1": [Interval(float, 0.0, None, closed="neither")],
        "b": [Interval(float, 0.0, 1.0)],
        "binary": [Bool()],
        "seed": SEED,
    }

    def __init__(self, similarity: str = "cosine", neighbors: int = 100, k1: float = 1.2, b: float = 0.75,
                 binary: bool = False, seed: int = 0):
        self.similarity = similarity
        self.neighbors = neighbors
        self.k1 = k1
        self.b = b
        self.binary = binary
        self.seed = seed

    def _ignored_params(self) -> dict:
        if self.similarity == "cosine":
            why = "with similarity='cosine' (BM25 weighting only)"
            return {"k1": why, "b": why}
        return {}

    def fit(self, interactions, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Weight the item columns, compute item-item cosines, keep ``neighbors`` per item."""
        self._validate_params()
        self._check_callback("ItemKNN", callback)
        inter = as_interactions(interactions, "ItemKNN")
        self._set_base(inter.user_keys, inter.item_keys, inter.matrix)
        X = self._seen.astype(np.float64)
        if self.binary:
            X.data[:] = 1.0
        if self.similarity == "bm25":
            X = bm25_weight(X, float(self.k1), float(self.b))
        cols = X.tocsc()
        norms = np.sqrt(np.asarray(cols.multiply(cols).sum(0)).ravel())
        unit = (cols @ sp.diags(1.0 / np.maximum(norms, 1e-12))).tocsc()
        sim = (unit.T @ unit).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self._sim = _keep_top(sim, int(self.neighbors)).astype(np.float32)
        self._set_embeddings(unit)
        self.loss_history_ = []
        if callback is not None:
            callback(1, 0.0)
        return self.embeddings_

    def _set_embeddings(self, unit) -> None:
        n_users = unit.shape[0]
        if n_users <= _MAX_DIM:
            vecs = unit.T.toarray()
        else:
            rng = np.random.default_rng(int(self.seed))
            proj = rng.standard_normal((n_users, _MAX_DIM)) / np.sqrt(_MAX_DIM)
            vecs = np.asarray(unit.T @ proj)
        self.embeddings_ = Embeddings(self._item_keys, vecs.astype(np.float32))

    def _scores(self, codes):
        rows = self._seen[codes]
        if self.binary:
            rows = rows.copy()
            rows.data[:] = 1.0
        return np.asarray((rows @ self._sim).todense())

    def similar_items(self, item, k: int = 10, filter=None) -> list[tuple[str, float]]:
        """The ``k`` items most similar to ``item`` by the (exact, kept) item-item similarity."""
        self._check_item(item)
        k = check_int(f"{type(self).__name__}.similar_items", "k", k, 1)
        i = self._item_index[item]
        row = np.asarray(self._sim[i].todense()).astype(np.float64)
        row[row == 0] = -np.inf  # only kept neighbours
        return top_k(row, self._item_keys, k, [[i]], allowed_mask(filter, self._item_keys, self._payload))[0]

    def _state_arrays(self) -> dict:
        s = self._sim
        return {**self._base_arrays(), "sim_indptr": s.indptr.astype(np.int64), "sim_indices": s.indices.astype(np.int32),
                "sim_values": s.data.astype(np.float32), "item_vectors": self.embeddings_.vectors}

    def _load_state(self, arrays, config) -> None:
        self._load_base(arrays)
        n = len(self._item_keys)
        self._sim = sp.csr_matrix((arrays["sim_values"], arrays["sim_indices"], arrays["sim_indptr"]), shape=(n, n))
        self.embeddings_ = Embeddings(self._item_keys, np.asarray(arrays["item_vectors"], dtype=np.float32))


def bm25_weight(X, k1: float = 1.2, b: float = 0.75):
    """BM25 weights of a users x items matrix (each item column a "document" of its users):
    idf(user) x value (k1 + 1) / (value + k1 (1 - b + b len(item) / mean len)), as implicit's
    ``bm25_weight`` applies it to the items' columns."""
    X = sp.coo_matrix(X, dtype=np.float64)
    n_items = X.shape[1]
    users_df = np.bincount(X.row, minlength=X.shape[0])  # items per user
    idf = np.log(n_items) - np.log1p(users_df)
    length = np.bincount(X.col, weights=X.data, minlength=n_items)
    norm = (1.0 - b) + b * length / max(length.mean(), 1e-12)
    data = X.data * (k1 + 1.0) / (k1 * norm[X.col] + X.data) * idf[X.row]
    return sp.csr_matrix((data, (X.row, X.col)), shape=X.shape)


def _keep_top(sim: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Each row's ``n`` largest entries (ties by column)."""
    indptr, indices, data = sim.indptr, sim.indices, sim.data
    keep = np.zeros(len(data), dtype=bool)
    for r in range(sim.shape[0]):
        lo, hi = indptr[r], indptr[r + 1]
        if hi - lo <= n:
            keep[lo:hi] = True
        else:
            seg = data[lo:hi]
            top = np.lexsort((indices[lo:hi], -seg))[:n]
            keep[lo + top] = True
    out = sp.csr_matrix((data * keep, indices, indptr), shape=sim.shape)
    out.eliminate_zeros()
    return out
