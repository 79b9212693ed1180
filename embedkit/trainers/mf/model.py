"""MatrixFactorization: user and item vectors from interactions, recommendations through the index.

    model = ek.MatrixFactorization(feedback="implicit", method="als", dim=64)
    items = model.fit(ek.Interactions.from_csv("plays.csv"))      # item Embeddings
    model.recommend("alice", k=10)                                 # [(item, score), ...]
    model.fold_in("newcomer", ["item1", "item7"])                  # no retraining
    model.save("plays", store=ek.Store())                          # for the CLI and the service

Algorithms (private modules): implicit ALS, Hu, Koren and Volinsky, "Collaborative Filtering
for Implicit Feedback Datasets" (ICDM 2008), solved by conjugate gradient (_als.py); BPR,
Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback" (UAI 2009) (_sgd.py);
biased MF for ratings, Koren, Bell and Volinsky, "Matrix Factorization Techniques for
Recommender Systems" (IEEE Computer 2009), by ALS (weighted-lambda, Zhou et al. 2008) or SGD.
"""

from __future__ import annotations

import logging

import numpy as np

from ..._validation import check_choice, check_float, check_int, check_seed
from ...embeddings import Embeddings
from ...errors import InputError, MissingKeyError
from ..base import Trainer
from . import fit as _mf_fit
from .store import load_model, save_model

log = logging.getLogger(__name__)

__all__ = ["MatrixFactorization"]

# method-specific defaults used when a parameter is None
_DEFAULTS = {
    ("implicit", "als"): {"reg": 0.01, "lr": None, "batch_size": None},
    ("implicit", "bpr"): {"reg": 0.01, "lr": 0.05, "batch_size": "auto"},
    ("explicit", "als"): {"reg": 0.05, "lr": None, "batch_size": None},
    ("explicit", "sgd"): {"reg": 0.02, "lr": 0.005, "batch_size": "auto"},
}


class MatrixFactorization(Trainer):
    """Matrix factorisation of a user x item matrix into ``dim``-dimensional vectors.

    Parameters
    ----------
    feedback : {"implicit", "explicit"}, default "implicit"
        implicit: counts/clicks (methods "als", "bpr"); explicit: ratings (methods "als", "sgd").
    method : {"als", "bpr", "sgd"}, default "als"
    dim : int, default 64
    reg : float or None, default None
        L2 regularisation. None: 0.01 (implicit ALS, BPR), 0.05 (explicit ALS, scaled by each
        row's count), 0.02 (explicit SGD).
    alpha : float, default 1.0
        Implicit ALS confidence c = 1 + alpha * value (Hu et al.).
    epochs : int, default 15
    lr : float or None, default None
        SGD step for BPR (0.05) and explicit SGD (0.005); unused by ALS.
    batch_size : int or None, default None
        Samples per SGD step for BPR and explicit SGD: None means 1024 on the CPU and 8192 on
        CUDA (same recall/RMSE on the benchmark data, far fewer kernel launches); unused by ALS.
    cg_steps : int, default 3
        Conjugate-gradient steps per ALS half-epoch (warm-started, as in implicit).
    backend : {"torch", "implicit"}, default "torch"
        "implicit" runs implicit ALS/BPR with the package ``implicit`` (CPU; optional, must
        be installed) and keeps everything else (index, fold-in, store) the same.
    seed : int, default 0
    device : {"auto", "cpu", "cuda"}, default "auto"

    Raises InputError for bad parameters or data, MissingKeyError for unknown users/items,
    NotFittedError when a method needs fit() first.
    """

    def __init__(self, feedback: str = "implicit", method: str = "als", dim: int = 64, reg: float | None = None,
                 alpha: float = 1.0, epochs: int = 15, lr: float | None = None, batch_size: int | None = None,
                 cg_steps: int = 3, backend: str = "torch", seed: int = 0, device: str = "auto"):
        self.feedback = feedback
        self.method = method
        self.dim = dim
        self.reg = reg
        self.alpha = alpha
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.cg_steps = cg_steps
        self.backend = backend
        self.seed = seed
        self.device = device
        self.loss_history_ = []
        self.item_embeddings_ = None
        self._user_factors = None
        self._user_emb = None

    # ---------------------------------------------------------------- params
    def _resolved(self) -> dict:
        """Validated parameters with method defaults filled in."""
        own = "MatrixFactorization"
        feedback = check_choice(own, "feedback", self.feedback, ["implicit", "explicit"])
        allowed = ["als", "bpr"] if feedback == "implicit" else ["als", "sgd"]
        if self.method not in allowed:
            raise InputError(f"The 'method' parameter of {own} must be one of {allowed} for feedback="
                             f"{feedback!r}. Got {self.method!r} instead.")
        defaults = _DEFAULTS[(feedback, self.method)]
        p = {"feedback": feedback, "method": self.method,
             "dim": check_int(own, "dim", self.dim, 1, 4096),
             "epochs": check_int(own, "epochs", self.epochs, 1),
             "alpha": check_float(own, "alpha", self.alpha, 0.0),
             "cg_steps": check_int(own, "cg_steps", self.cg_steps, 1, 1000),
             "backend": check_choice(own, "backend", self.backend, ["torch", "implicit"]),
             "seed": check_seed(own, self.seed), "device": self.device}
        p["reg"] = defaults["reg"] if self.reg is None else check_float(own, "reg", self.reg, 0.0)
        lr, bs = defaults["lr"], defaults["batch_size"]
        p["lr"] = lr if self.lr is None or lr is None else check_float(own, "lr", self.lr, 0.0, low_open=True)
        p["batch_size"] = bs if self.batch_size is None or bs is None else \
            check_int(own, "batch_size", self.batch_size, 1)
        if p["backend"] == "implicit" and feedback != "implicit":
            raise InputError("backend='implicit' serves feedback='implicit' only; use backend='torch' for ratings")
        return p

    # ------------------------------------------------------------------- fit
    def fit(self, interactions, show_progress: bool = True, callback=None) -> Embeddings:
        """Train on ``interactions`` (an :class:`~embedkit.Interactions` or a scipy users x items
        matrix); returns the item Embeddings. callback(epoch, loss) fires after every epoch."""
        from ...data.interactions import Interactions

        params = self._resolved()
        self._check_callback("MatrixFactorization", callback)
        if not isinstance(interactions, Interactions):
            try:
                import scipy.sparse as sp

                if sp.issparse(interactions) or isinstance(interactions, np.ndarray):
                    interactions = Interactions.from_sparse(interactions, allow_negative=True)
                else:
                    raise TypeError
            except TypeError:
                raise InputError("fit() takes an ek.Interactions or a users x items matrix (scipy sparse or numpy); "
                                 f"got {type(interactions).__name__}") from None
        if interactions.nnz == 0:
            raise InputError("fit() got no interactions; give at least one (user, item) pair")
        if params["feedback"] == "implicit" and (interactions.values < 0).any():
            raise InputError("implicit feedback needs values >= 0 (counts, clicks); use feedback='explicit' "
                             "for signed ratings")
        state = _mf_fit.train(params, interactions.matrix, show_progress, callback)
        self.params_ = params
        self.loss_history_ = state.pop("loss_history")
        self._set_state(interactions.user_keys, interactions.item_keys, interactions.matrix, **state)
        return self.embeddings_

    def _set_state(self, user_keys, item_keys, seen, user_factors, item_factors,
                   user_bias=None, item_bias=None, global_mean=0.0):
        self._user_keys = list(user_keys)
        self._user_index = {k: i for i, k in enumerate(self._user_keys)}
        self._item_keys = list(item_keys)
        self._item_index = {k: i for i, k in enumerate(self._item_keys)}
        self._seen = seen.tocsr()
        self._seen_changed: dict[int, np.ndarray] = {}
        self._user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self._item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self._user_bias = None if user_bias is None else np.asarray(user_bias, dtype=np.float32)
        self._item_bias = None if item_bias is None else np.asarray(item_bias, dtype=np.float32)
        self.global_mean_ = float(global_mean)
        self.item_embeddings_ = Embeddings(self._item_keys, self._item_factors)
        self.embeddings_ = self.item_embeddings_
        self._user_emb = None  # built on first access (fold-in appends users)
        self._index = None
        self._cos_index = None

    # -------------------------------------------------------------- accessors
    @property
    def user_embeddings_(self):
        """User vectors as Embeddings (None before fit); includes folded-in users."""
        if getattr(self, "_user_factors", None) is None:
            return None
        if self._user_emb is None:
            self._user_emb = Embeddings(self._user_keys, self._user_factors)
        return self._user_emb

    def _user_code(self, user) -> int:
        self._check_fitted()
        try:
            return self._user_index[user]
        except (KeyError, TypeError):
            raise MissingKeyError(f"unknown user {user!r}; fold them in first with model.fold_in(user, items)") \
                from None

    def _item_codes(self, items) -> np.ndarray:
        self._check_fitted()
        if isinstance(items, str):
            items = [items]
        out = np.empty(len(items), dtype=np.int64)
        for n, it in enumerate(items):
            code = self._item_index.get(it) if isinstance(it, str) else None
            if code is None:
                raise MissingKeyError(f"unknown item {it!r}; items come from the training interactions "
                                      f"({len(self._item_keys)} items)")
            out[n] = code
        return out

    def seen_items(self, user) -> np.ndarray:
        """Item codes the user interacted with (training data or their latest fold-in)."""
        u = self._user_code(user)
        if u in self._seen_changed:
            return self._seen_changed[u]
        if u >= self._seen.shape[0]:
            return np.zeros(0, dtype=np.int64)
        return self._seen.indices[self._seen.indptr[u]:self._seen.indptr[u + 1]]

    def _query_vectors(self, codes) -> np.ndarray:
        vec = self._user_factors[codes]
        if self._item_bias is not None:  # item vectors carry their bias as a last column
            vec = np.hstack([vec, np.ones((len(vec), 1), dtype=np.float32)])
        return vec

    def _item_vectors_for_index(self) -> np.ndarray:
        if self._item_bias is None:
            return self._item_factors
        return np.hstack([self._item_factors, self._item_bias[:, None]])

    @property
    def index_(self):
        """The inner-product VectorIndex that answers recommend() (item factors, plus the
        item bias as a last column when the model has biases)."""
        self._check_fitted()
        if self._index is None:
            from ...index import VectorIndex

            vecs = self._item_vectors_for_index()
            self._index = VectorIndex(vecs.shape[1], metric="ip", kind="flat")
            self._index.add(self._item_keys, vecs)
        return self._index

    # -------------------------------------------------------------- queries
    def recommend(self, user, k: int = 10, exclude_seen: bool = True) -> list[tuple[str, float]]:
        """Top-``k`` items for a known (or folded-in) user, best first, as (item, score).

        Scores are inner products (plus biases); for explicit feedback they are predicted ratings.
        """
        return self.recommend_batch([user], k=k, exclude_seen=exclude_seen)[0]

    def recommend_batch(self, users, k: int = 10, exclude_seen: bool = True) -> list[list[tuple[str, float]]]:
        """recommend() for many users in one index search."""
        k = check_int("MatrixFactorization.recommend", "k", k, 1)
        if isinstance(users, str):
            users = [users]
        codes = np.array([self._user_code(u) for u in users], dtype=np.int64)
        seen = [set(self.seen_items(u).tolist()) if exclude_seen else set() for u in users]
        n_items = len(self._item_keys)
        shift = np.zeros(len(codes), dtype=np.float64)
        if self._user_bias is not None:  # explicit: report predicted ratings
            shift = self.global_mean_ + self._user_bias[codes].astype(np.float64)
        # over-fetch by each user's seen count; users grouped by that size (powers of two)
        # so one heavy user does not make every query of the batch fetch thousands
        fetch = np.minimum(n_items, k + np.array([len(x) for x in seen], dtype=np.int64))
        bucket = np.ceil(np.log2(np.maximum(fetch, 1))).astype(np.int64)
        out: list = [None] * len(codes)
        for b in np.unique(bucket):
            rows = np.flatnonzero(bucket == b)
            res = self.index_.search(self._query_vectors(codes[rows]), k=int(min(n_items, 2 ** b)))
            for row, keys, scores in zip(rows, res.keys, res.scores):
                picked = []
                for key, score in zip(keys, scores):
                    if seen[row] and self._item_index[key] in seen[row]:
                        continue
                    picked.append((key, float(score + shift[row])))
                    if len(picked) == k:
                        break
                out[row] = picked
        return out

    def similar_items(self, item, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` items whose factors are closest by cosine (the item itself excluded)."""
        self._item_codes([item])
        k = check_int("MatrixFactorization.similar_items", "k", k, 1)
        if self._cos_index is None:
            self._cos_index = self.item_embeddings_.to_index(metric="cosine", kind="flat")
        res = self._cos_index.search_keys([item], k=k)
        return [(key, float(s)) for key, s in zip(res.keys[0], res.scores[0])]

    def predict(self, users, items) -> np.ndarray:
        """Scores of (user, item) pairs: predicted ratings for explicit feedback, else x_u . y_i
        (+ item bias for BPR). ``users`` and ``items`` are equal-length sequences (or one str)."""
        if isinstance(users, str):
            users = [users]
        if isinstance(items, str):
            items = [items]
        users, items = list(users), list(items)
        if len(users) == 1 and len(items) > 1:
            users = users * len(items)
        if len(users) != len(items):
            raise InputError(f"predict() got {len(users)} users and {len(items)} items; give one user per item")
        u = np.array([self._user_code(x) for x in users], dtype=np.int64)
        i = self._item_codes(items)
        score = np.einsum("nd,nd->n", self._user_factors[u], self._item_factors[i]).astype(np.float64)
        if self._item_bias is not None:
            score += self._item_bias[i]
        if self._user_bias is not None:
            score += self._user_bias[u] + self.global_mean_
        return score.astype(np.float32)

    # --------------------------------------------------------------- fold-in
    def fold_in(self, user: str, items, values=None) -> np.ndarray:
        """Compute (or recompute) a user's vector from their items with the item factors fixed.

        A new user is added; a known user is replaced (their seen items become ``items``).
        ``values`` are counts (implicit) or ratings (explicit; required). Returns the vector.
        Implicit and explicit ALS solve the user's least-squares problem exactly, which is the
        user step of one more ALS epoch; BPR minimises the user's BPR loss by Newton's method.
        """
        self._check_fitted()
        if not isinstance(user, str) or not user:
            raise InputError(f"fold_in() needs a non-empty string user id; got {user!r}")
        codes = self._item_codes(list(items))
        vals = _fold_in_values(self.params_["feedback"], values, len(codes))
        if len(np.unique(codes)) != len(codes):  # duplicates summed, as in Interactions
            uniq, inv = np.unique(codes, return_inverse=True)
            vals = np.bincount(inv, weights=vals).astype(np.float64)
            codes = uniq
        vec, bias = _mf_fit.fold_in(self.params_, self._fold_state(), codes, vals)
        u = self._user_index.get(user)
        if u is None:
            u = len(self._user_keys)
            self._user_keys.append(user)
            self._user_index[user] = u
            self._user_factors = np.vstack([self._user_factors, vec[None, :]])
            if self._user_bias is not None:
                self._user_bias = np.append(self._user_bias, np.float32(bias))
        else:
            self._user_factors[u] = vec
            if self._user_bias is not None:
                self._user_bias[u] = bias
        self._seen_changed[u] = np.sort(codes)
        self._user_emb = None
        return vec.copy()

    def _fold_state(self) -> dict:
        if getattr(self, "_gram", None) is None or self._gram[0] is not self._item_factors:
            self._gram = (self._item_factors, self._item_factors.T.astype(np.float64) @ self._item_factors)
        return {"item_factors": self._item_factors, "item_bias": self._item_bias, "gram": self._gram[1],
                "global_mean": self.global_mean_}

    @classmethod
    def from_factors(cls, interactions, user_factors, item_factors, *, item_bias=None, user_bias=None,
                     global_mean: float = 0.0, **params) -> "MatrixFactorization":
        """A fitted model from factors learned elsewhere (rows in the order of
        ``interactions.user_keys`` / ``item_keys``; the interactions are the seen items).
        ``params`` are constructor parameters (feedback, method, reg, alpha...) used by fold_in."""
        model = cls(**params)
        model.params_ = model._resolved()
        n_u, n_i = interactions.n_users, interactions.n_items
        uf, itf = np.asarray(user_factors), np.asarray(item_factors)
        if uf.ndim != 2 or itf.ndim != 2 or uf.shape[0] != n_u or itf.shape[0] != n_i or uf.shape[1] != itf.shape[1]:
            raise InputError(f"factors must be ({n_u}, dim) and ({n_i}, dim) for these interactions; "
                             f"got {uf.shape} and {itf.shape}")
        model._set_state(interactions.user_keys, interactions.item_keys, interactions.matrix, uf, itf,
                         user_bias, item_bias, global_mean)
        return model

    # ----------------------------------------------------------------- store
    def save(self, name: str, store=None, *, kind: str = "flat", overwrite: bool = False):
        """Write the model into a :class:`~embedkit.Store` (default: ./indexes or $EMBEDKIT_STORE).

        The index holds the item vectors for inner-product search (item bias as last column when
        the model has biases); extras hold users, seen items and biases; the manifest's meta holds
        the parameters. Returns the directory. Load with :meth:`from_store`.
        """
        self._check_fitted()
        return save_model(self, name, store, kind=kind, overwrite=overwrite)

    @classmethod
    def from_store(cls, name: str, store=None, mmap: bool = False) -> "MatrixFactorization":
        """A fitted model loaded from the store (recommend, similar_items, predict, fold_in work)."""
        return load_model(cls, name, store, mmap=mmap)


def _fold_in_values(feedback: str, values, n: int) -> np.ndarray:
    if values is None:
        if feedback == "explicit":
            raise InputError("fold_in() for explicit feedback needs the user's ratings: values=[...]")
        return np.ones(n, dtype=np.float64)
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(vals) != n:
        raise InputError(f"fold_in() got {n} items but {len(vals)} values; give one value per item")
    if not np.isfinite(vals).all():
        raise InputError("fold_in() values hold NaN or inf")
    if feedback == "implicit" and (vals < 0).any():
        raise InputError("fold_in() values must be >= 0 for implicit feedback")
    return vals
