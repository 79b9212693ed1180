"""MatrixFactorization: user and item vectors from interactions, recommendations through the index.

    model = ek.MatrixFactorization(feedback="implicit", method="als", dim=64)
    items = model.fit(ek.Interactions.from_csv("plays.csv"))      # item Embeddings
    model.recommend("alice", k=10)                                 # [(item, score), ...]
    model.fold_in("newcomer", ["item1", "item7"])                  # no retraining
    model.to_store("plays", ek.Store())                            # for the CLI and the service
    model.save("plays.npz"); ek.MatrixFactorization.load("plays.npz")  # one model file

Algorithms (private modules): implicit ALS, Hu, Koren and Volinsky, "Collaborative Filtering
for Implicit Feedback Datasets" (ICDM 2008), solved by conjugate gradient (als.py); BPR,
Rendle et al., "BPR: Bayesian Personalized Ranking from Implicit Feedback" (UAI 2009) (bpr.py);
biased MF for ratings, Koren, Bell and Volinsky, "Matrix Factorization Techniques for
Recommender Systems" (IEEE Computer 2009), by ALS (weighted-lambda, Zhou et al. 2008) or SGD
(sgd.py). The training loop is fit.py; the saved layout store.py; the recommender recommend.py.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ..._validation import BATCH_SIZE, DEVICE, DIM, EPOCHS, LR, SEED, Interval, NoneOk, Options, check_int
from ...embeddings import Embeddings
from ...errors import InputError, MissingKeyError
from ..base import Trainer
from .fit import train_factors
from .predict import PredictFoldIn
from .recommend import recommend_users
from .store import read_model, read_state, state_arrays, state_config, store_meta

log = logging.getLogger(__name__)

__all__ = ["MatrixFactorization"]

# methods per feedback, and the method-specific defaults used when a parameter is None
_METHODS = {"implicit": ("als", "bpr"), "explicit": ("als", "sgd")}
_DEFAULTS = {
    ("implicit", "als"): {"reg": 0.01, "lr": None, "batch_size": None},
    ("implicit", "bpr"): {"reg": 0.01, "lr": 0.05, "batch_size": "auto"},
    # 0.1, not 0.05: 5-fold RMSE 0.918 vs 0.964 on ML-100k-shaped ratings (benchmarks/mf_bench.py --cv)
    ("explicit", "als"): {"reg": 0.1, "lr": None, "batch_size": None},
    ("explicit", "sgd"): {"reg": 0.02, "lr": 0.005, "batch_size": "auto"},
}


_DEFAULT_DIM = 64


def default_dim_cap(n_users: int, n_items: int) -> int:
    """The most dimensions the default ``dim`` gives on ``n_users x n_items`` interactions:
    ``max(4, min(n_users, n_items) // 8)``. On planted catalogues of 36, 47 and 200 items,
    dim 64 scored recall@10 0.45 / 0.46 / 0.52 against 0.86 / 0.86 / 0.68 with the cap
    (benchmarks/RESULTS.md, "MF default dim")."""
    return max(4, min(int(n_users), int(n_items)) // 8)


class MatrixFactorization(PredictFoldIn, Trainer):
    """Matrix factorisation of a user x item matrix into ``dim``-dimensional vectors.

    Parameters
    ----------
    feedback : {"implicit", "explicit"}, default "implicit"
        implicit: counts/clicks (methods "als", "bpr"); explicit: ratings (methods "als", "sgd").
    method : {"als", "bpr", "sgd"}, default "als"
    dim : int in [1, 10000], default 64
        On a small catalogue the default is capped at ``max(4, min(n_users, n_items) // 8)``
        (logged; 64 dimensions on 47 items overfit: recall@10 0.46 against 0.86); an explicit
        dim other than 64 is kept. The dimension trained is the fitted attribute ``dim_``.
    reg : float >= 0 or None, default None
        L2 regularisation. None: 0.01 (implicit ALS, BPR), 0.1 (explicit ALS, scaled by each
        row's count: weighted-lambda), 0.02 (explicit SGD).
    confidence : float >= 0, default 1.0
        Implicit ALS confidence weight: c = 1 + confidence * value (Hu et al.'s alpha; the
        parameter was called ``alpha`` before, which still works with a FutureWarning).
        Used by implicit ALS only.
    epochs : int in [1, 100000], default 15
    lr : float in (0, 10] or None, default None
        SGD step for BPR (None: 0.05) and explicit SGD (None: 0.005); unused by ALS.
    batch_size : int >= 1 or None, default None
        Samples per SGD step for BPR and explicit SGD: None means 1024 on the CPU and 8192 on
        CUDA (same recall/RMSE on the benchmark data, far fewer kernel launches); unused by ALS
        and by backend="implicit".
    cg_steps : int in [1, 1000], default 3
        Conjugate-gradient steps per ALS half-epoch (warm-started, as in implicit); torch ALS only.
    backend : {"torch", "implicit", "numba"}, default "torch"
        "implicit" runs implicit ALS/BPR with the package ``implicit`` (CPU; optional, must
        be installed) and keeps everything else (index, fold-in, store) the same. "numba"
        runs BPR and explicit SGD as compiled per-sample loops on the CPU (optional package
        numba; see :mod:`embedkit.trainers.mf.numba_backend`): implicit's and Surprise's speed.
    seed : int, default 0
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    sync_every : float in (0, 1], default 0.1
        Under torch.distributed (torchrun, ``embedkit train mf --nproc N``), BPR and explicit
        SGD sum the ranks' item-table changes every ``sync_every`` of an epoch; ALS exchanges
        its solved blocks every half-step and ignores it. Unused in a single process. The
        bytes one rank sent into collectives during a distributed fit are ``comm_bytes_``.

    Every parameter is checked by ``fit``; one that the chosen method ignores (``lr`` with ALS,
    ``cg_steps`` with BPR...) warns once (IgnoredParameterWarning) when set.
    Raises InputError for bad parameters or data, MissingKeyError for unknown users/items,
    NotFittedError when a method needs fit() first.
    """

    _parameter_constraints = {
        "feedback": [Options("implicit", "explicit")],
        "method": [Options("als", "bpr", "sgd")],
        "dim": DIM,
        "reg": [Interval(float, 0.0, None), NoneOk()],
        "confidence": [Interval(float, 0.0, None)],
        "epochs": EPOCHS,
        "lr": LR + [NoneOk()],
        "batch_size": BATCH_SIZE + [NoneOk()],
        "cg_steps": [Interval(int, 1, 1000)],
        "backend": [Options("torch", "implicit", "numba")],
        "seed": SEED,
        "device": DEVICE,
        "sync_every": [Interval(float, 0.0, 1.0, closed="right")],
    }
    _param_aliases = {"alpha": "confidence"}

    def __init__(self, feedback: str = "implicit", method: str = "als", dim: int = _DEFAULT_DIM, reg: float | None = None,
                 confidence: float = 1.0, epochs: int = 15, lr: float | None = None, batch_size: int | None = None,
                 cg_steps: int = 3, backend: str = "torch", seed: int = 0, device: str = "auto", *,
                 sync_every: float = 0.1, alpha: float | None = None):
        self.feedback = feedback
        self.method = method
        self.dim = dim
        self.reg = reg
        self.confidence = confidence
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.cg_steps = cg_steps
        self.backend = backend
        self.seed = seed
        self.device = device
        self.sync_every = sync_every
        self._take_aliases(alpha=alpha)

    # ---------------------------------------------------------------- params
    def _ignored_params(self) -> dict:
        if self.method not in _METHODS.get(self.feedback, ()):
            return {}  # fit raises for this combination
        out = {}
        if self.method == "als":
            out["lr"] = out["batch_size"] = "with method='als' (used by 'bpr' and 'sgd')"
            out["sync_every"] = "with method='als' (distributed ALS exchanges its solved blocks every half-step)"
        else:
            out["cg_steps"] = f"with method={self.method!r} (used by ALS only)"
        if self.feedback == "explicit":
            out["confidence"] = "with feedback='explicit' (used by implicit ALS only)"
        elif self.method == "bpr":
            out["confidence"] = "with method='bpr' (used by implicit ALS only)"
        if self.backend == "numba":
            out["batch_size"] = "with backend='numba' (per-sample SGD, no mini-batches)"
            out["device"] = "with backend='numba' (CPU kernels)"
        if self.backend == "implicit":
            if self.method == "als":
                out["cg_steps"] = "with backend='implicit' (the implicit package uses its own CG steps)"
            else:
                out["batch_size"] = "with backend='implicit' (implicit's BPR has no mini-batches)"
        return out

    def _resolve(self, params: dict) -> dict:
        """Validated parameters with the method's defaults filled in (the fit-time checks)."""
        feedback, method = params["feedback"], params["method"]
        if method not in _METHODS[feedback]:
            raise InputError(f"The 'method' parameter of MatrixFactorization must be one of "
                             f"{list(_METHODS[feedback])} for feedback={feedback!r}. Got {method!r} instead.")
        if params["backend"] == "implicit" and feedback != "implicit":
            raise InputError("backend='implicit' serves feedback='implicit' only; use backend='torch' for ratings")
        if params["backend"] == "numba" and method not in ("bpr", "sgd"):
            raise InputError(f"backend='numba' serves method='bpr' and method='sgd'; got method={method!r}: "
                             "use backend='torch' (or 'implicit') for ALS")
        defaults = _DEFAULTS[(feedback, method)]
        p = dict(params, dim=int(params["dim"]), epochs=int(params["epochs"]), cg_steps=int(params["cg_steps"]),
                 seed=int(params["seed"]), confidence=float(params["confidence"]),
                 sync_every=float(params.get("sync_every", 0.1)))
        p["reg"] = defaults["reg"] if params["reg"] is None else float(params["reg"])
        lr, bs = defaults["lr"], defaults["batch_size"]
        p["lr"] = lr if params["lr"] is None or lr is None else float(params["lr"])
        p["batch_size"] = bs if params["batch_size"] is None or bs is None else int(params["batch_size"])
        return p

    # ------------------------------------------------------------------- fit
    def fit(self, interactions, *, show_progress: bool = True, callback=None) -> Embeddings:
        """Train on ``interactions`` (an :class:`~embedkit.Interactions` or a scipy/numpy users x
        items matrix); returns the item Embeddings. ``callback(epoch, loss)`` fires after every
        epoch, epochs counted from 1."""
        from ... import distributed as ek_dist
        from ...data.interactions import Interactions

        params = self._resolve(self._validate_params())
        self._check_callback("MatrixFactorization", callback)
        if not isinstance(interactions, Interactions):
            if sp.issparse(interactions) or isinstance(interactions, np.ndarray):
                interactions = Interactions.from_sparse(interactions, allow_negative=True)
            else:
                raise InputError("fit() takes an ek.Interactions or a users x items matrix (scipy sparse or numpy); "
                                 f"got {type(interactions).__name__}")
        if interactions.nnz == 0:
            raise InputError("fit() got no interactions; give at least one (user, item) pair")
        if params["feedback"] == "implicit" and (interactions.values < 0).any():
            raise InputError("implicit feedback needs values >= 0 (counts, clicks); use feedback='explicit' "
                             "for signed ratings")
        params["dim"] = self._fit_dim(params["dim"], interactions.n_users, interactions.n_items)
        state = train_factors(params, interactions.matrix, show_progress, callback)
        self.params_ = params
        self.loss_history_ = state.pop("loss_history")
        # distributed fits: what this rank sent into collectives (the figures of an earlier fit are dropped)
        ek_dist.set_comm(self, state.pop("comm", None))
        self._set_state(interactions.user_keys, interactions.item_keys, interactions.matrix, **state)
        if params["feedback"] == "explicit":  # predict() clips to it, as Surprise clips to its rating scale
            self._rating_range = (float(interactions.values.min()), float(interactions.values.max()))
        return self.embeddings_

    def _fit_dim(self, dim: int, n_users: int, n_items: int) -> int:
        """The dimension fit trains with (``dim_``): the default ``dim`` capped at
        ``default_dim_cap(n_users, n_items)`` on a small catalogue, with a log line; an explicit
        ``dim`` is kept, with a warning when it exceeds ``min(n_users, n_items)``."""
        small = min(n_users, n_items)
        if dim == _DEFAULT_DIM:
            cap = default_dim_cap(n_users, n_items)
            if cap < dim:
                log.info("dim %d instead of the default %d: %d users x %d items is a small catalogue (the default is "
                         "capped at max(4, min(n_users, n_items) // 8)); pass another dim, e.g. dim=%d, to choose it",
                         cap, dim, n_users, n_items, min(2 * cap, dim - 1))
                return cap
        elif dim > small:
            cap = default_dim_cap(n_users, n_items)
            if cap <= small:     # the suggestion (below dim: cap <= small < dim) must not exceed min(n_users, n_items)
                log.warning("dim=%d exceeds min(n_users, n_items) = %d of these interactions: the vectors overfit and "
                            "scores shrink towards 0; try dim=%d (what the default gives here)", dim, small, cap)
            else:   # fewer than 4 users or items (the default's floor): no dim is useful
                log.warning("dim=%d exceeds min(n_users, n_items) = %d of these interactions (%d user(s) x %d item(s)): "
                            "they are too few for a useful factorisation at any dim; give interactions of more users "
                            "and items (dim=%d needs at least %d of each)", dim, small, n_users, n_items, dim, dim)
        return dim

    def _set_state(self, user_keys, item_keys, seen, user_factors, item_factors,
                   user_bias=None, item_bias=None, global_mean=0.0):
        self._user_keys = list(user_keys)
        self._user_index = {k: i for i, k in enumerate(self._user_keys)}
        self._item_keys = list(item_keys)
        self._item_index = {k: i for i, k in enumerate(self._item_keys)}
        self._seen = seen.tocsr()
        self._seen_changed: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # fold-in: user row -> (codes, values)
        self._user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self._item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self._user_bias = None if user_bias is None else np.asarray(user_bias, dtype=np.float32)
        self._item_bias = None if item_bias is None else np.asarray(item_bias, dtype=np.float32)
        self.global_mean_ = float(global_mean)
        self.dim_ = int(self._item_factors.shape[1])  # the dimension trained (the default dim is capped: _fit_dim)
        self.item_embeddings_ = Embeddings(self._item_keys, self._item_factors)
        self.embeddings_ = self.item_embeddings_
        self._user_emb = None  # built on first access (fold-in appends users)
        self._index = None
        self._payload = None  # item payloads for filters (set_item_payload)
        self._rating_range = None  # (lowest, highest) training rating of explicit feedback: predict() clips to it

    # -------------------------------------------------------------- accessors
    @property
    def user_embeddings_(self) -> Embeddings:
        """User vectors as Embeddings; includes folded-in users. NotFittedError before fit."""
        self._check_fitted()
        if self._user_emb is None:
            self._user_emb = Embeddings(self._user_keys, self._user_factors)
        return self._user_emb

    def has_user(self, user) -> bool:
        """Whether ``user`` is known (trained or folded in)."""
        self._check_fitted()
        return isinstance(user, str) and user in self._user_index

    def has_item(self, item) -> bool:
        """Whether ``item`` is one of the model's items."""
        self._check_fitted()
        return isinstance(item, str) and item in self._item_index

    def _user_code(self, user) -> int:
        self._check_fitted()
        try:
            return self._user_index[user]
        except (KeyError, TypeError):
            raise MissingKeyError(f"unknown user {user!r}; fold them in first with model.fold_in(user, items)") \
                from None

    def _user_codes(self, users) -> np.ndarray:
        if isinstance(users, str):
            users = [users]
        return np.array([self._user_code(u) for u in users], dtype=np.int64)

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

    def _seen_row(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        if u in self._seen_changed:
            return self._seen_changed[u]
        if u >= self._seen.shape[0]:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        lo, hi = self._seen.indptr[u], self._seen.indptr[u + 1]
        return self._seen.indices[lo:hi], self._seen.data[lo:hi]

    def seen_items(self, user) -> np.ndarray:
        """Item rows (of ``item_embeddings_``) the user interacted with: training data or their
        latest fold-in."""
        return self._seen_row(self._user_code(user))[0]

    def history(self, user) -> list[tuple[str, float]]:
        """The user's interactions (training data or latest fold-in) as (item, value), strongest first."""
        codes, values = self._seen_row(self._user_code(user))
        order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")
        return [(self._item_keys[int(codes[i])], float(values[i])) for i in order]

    # The query side of the index: what recommend() (embedkit/trainers/mf/recommend.py, also
    # used by the HTTP service) needs from the model, besides seen_items() and item_embeddings_.
    def query_vectors(self, users) -> np.ndarray:
        """One query row per user (a str or a sequence of known users) for the inner-product
        index ``index_``: the user factors, plus a last column of 1 when the items carry a bias
        (float32, ``len(users) x index_.dim``). MissingKeyError for an unknown user."""
        codes = self._user_codes(users)
        vec = self._user_factors[codes]
        if self._item_bias is not None:  # item vectors carry their bias as a last column
            vec = np.hstack([vec, np.ones((len(vec), 1), dtype=np.float32)])
        return vec

    def score_offsets(self, users) -> np.ndarray:
        """What recommend() adds to each user's index scores (float64, one per user): global mean
        + user bias for explicit feedback, so scores are predicted ratings; else 0."""
        codes = self._user_codes(users)
        if self._user_bias is None:
            return np.zeros(len(codes), dtype=np.float64)
        return self.global_mean_ + self._user_bias[codes].astype(np.float64)

    def _query_dim(self) -> int:
        return self._item_factors.shape[1] + (self._item_bias is not None)

    def _index_content(self):
        """Item keys, item factors (plus the item bias as last column when the model has
        biases) and metric "ip": the index that recommend() and the service search."""
        vecs = self._item_factors
        if self._item_bias is not None:
            vecs = np.hstack([vecs, self._item_bias[:, None]])
        return list(self._item_keys), vecs, "ip"

    @property
    def index_(self):
        """The inner-product VectorIndex that answers recommend() (item factors, plus the
        item bias as a last column when the model has biases)."""
        self._check_fitted()
        if self._index is None:
            from ...index import VectorIndex

            keys, vecs, metric = self._index_content()
            self._index = VectorIndex(vecs.shape[1], metric=metric, kind="flat")
            self._index.add(keys, vecs, payload=self.item_payload_)
        return self._index

    def use_index(self, index) -> None:
        """Make recommend() search ``index`` (it becomes ``index_``) instead of the flat index
        built from the item factors: e.g. a store entry's index of another kind, or one holding
        items upserted or removed through the HTTP service (``from_store`` does this).
        ``index`` must be an inner-product VectorIndex of dim ``query_vectors(...).shape[1]``
        whose vectors are item factors (plus the item bias as a last column when the model has
        biases). Raises InputError otherwise."""
        self._check_fitted()
        dim, metric = getattr(index, "dim", None), getattr(index, "metric", None)
        if metric != "ip" or dim != self._query_dim():
            raise InputError(f"use_index() needs an inner-product index of dim {self._query_dim()} for this model "
                             f"(item factors{' + bias' if self._item_bias is not None else ''}); got metric "
                             f"{metric!r}, dim {dim!r}: build it from model.index_ or model.to_store")
        self._index = index

    # -------------------------------------------------------------- queries
    def recommend(self, user, k: int = 10, exclude_seen: bool = True, filter=None) -> list[tuple[str, float]]:
        """Top-``k`` items for a known (or folded-in) user, best first, as (item, score).

        Scores are inner products (plus biases); for explicit feedback they are predicted ratings.
        ``filter`` (the index filter language, see ``VectorIndex.search``) keeps only matching
        items: ``{"$key": {"$in": [...]}}`` (allow-list), ``{"$key": {"$nin": [...]}}`` (deny-list)
        or payload fields (``set_item_payload``), e.g. ``{"genre": "drama", "price": {"$lt": 20}}``;
        the result is exactly the top-k among the allowed unseen items.
        """
        return self.recommend_batch([user], k=k, exclude_seen=exclude_seen, filter=filter)[0]

    def recommend_batch(self, users, k: int = 10, exclude_seen: bool = True,
                        filter=None) -> list[list[tuple[str, float]]]:
        """recommend() for many users in one index search (``users``: a list of user keys)."""
        from ._topk import as_user_list

        return recommend_users(self, as_user_list(users), k=k, exclude_seen=exclude_seen, filter=filter)

    def set_item_payload(self, payload) -> None:
        """Item payloads for payload filters in recommend/similar_items: a dict {item: {field:
        value}} or one dict per item in the order of ``item_embeddings_.keys`` (None clears).
        Values are str, int, float, bool or lists of str. Saved with the model and in the store's index."""
        from .baselines import _payload_rows

        self._check_fitted()
        self._payload = _payload_rows(payload, self._item_keys)
        self._index = None

    @property
    def item_payload_(self) -> list | None:
        """One payload dict per item (``set_item_payload``), or None."""
        self._check_fitted()
        return self.__dict__.get("_payload")

    def similar_items(self, item, k: int = 10, filter=None) -> list[tuple[str, float]]:
        """The ``k`` items whose factors are closest by cosine (the item itself excluded), best
        first; ``filter`` as in :meth:`recommend`."""
        self._item_codes([item])
        k = check_int("MatrixFactorization.similar_items", "k", k, 1)
        if filter is None:
            return self.item_embeddings_.most_similar(item, k=k)
        from ._topk import allowed_mask, similar_rows

        return similar_rows(self._item_factors, self._item_index[item], self._item_keys, k,
                            allowed_mask(filter, self._item_keys, self.item_payload_))

    def similar_users(self, user, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` users whose factors are closest to ``user``'s by cosine (the user excluded)."""
        code = self._user_code(user)
        k = check_int("MatrixFactorization.similar_users", "k", k, 1)
        return self.user_embeddings_.most_similar(self._user_keys[code], k=k)

    @classmethod
    def from_factors(cls, interactions, user_factors, item_factors, *, item_bias=None, user_bias=None,
                     global_mean: float = 0.0, **params) -> "MatrixFactorization":
        """A fitted model from factors learned elsewhere (rows in the order of
        ``interactions.user_keys`` / ``item_keys``; the interactions are the seen items).
        ``params`` are constructor parameters (feedback, method, reg, confidence...) used by fold_in."""
        model = cls(**params)
        model.params_ = model._resolve(model._validate_params())
        n_u, n_i = interactions.n_users, interactions.n_items
        uf, itf = np.asarray(user_factors), np.asarray(item_factors)
        if uf.ndim != 2 or itf.ndim != 2 or uf.shape[0] != n_u or itf.shape[0] != n_i or uf.shape[1] != itf.shape[1]:
            raise InputError(f"factors must be ({n_u}, dim) and ({n_i}, dim) for these interactions; "
                             f"got {uf.shape} and {itf.shape}")
        if not (np.isfinite(uf).all() and np.isfinite(itf).all()):
            raise InputError("factors hold NaN or inf; every value must be finite")
        model.loss_history_ = []
        model._set_state(interactions.user_keys, interactions.item_keys, interactions.matrix, uf, itf,
                         user_bias, item_bias, global_mean)
        return model

    # ----------------------------------------------------------- persistence
    def seen_matrix(self) -> sp.csr_matrix:
        """users x items CSR of every user's interactions (training data, folded-in users'
        latest items substituted); rows in the order of ``user_embeddings_``. The fold-ins are
        merged in once: later calls (``to_store`` asks twice) return the same matrix."""
        self._check_fitted()
        if not self._seen_changed:
            return self._seen
        n_users, n_items = len(self._user_keys), len(self._item_keys)
        base = self._seen
        if base.shape[0] < n_users:  # folded-in users are new rows (fold_in always records them)
            base = sp.vstack([base, sp.csr_matrix((n_users - base.shape[0], n_items), dtype=np.float32)]).tocsr()
        lil = base.tolil()
        for u, (codes, vals) in self._seen_changed.items():
            lil.rows[u] = [int(c) for c in codes]
            lil.data[u] = [float(v) for v in vals]
        out = lil.tocsr().astype(np.float32)
        out.sort_indices()
        self._seen, self._seen_changed = out, {}
        return out

    def _state_arrays(self) -> dict:
        out = state_arrays(self._user_keys, self._item_keys, self._user_factors, self._item_factors,
                           self.seen_matrix(), self._user_bias, self._item_bias)
        if self.item_payload_ is not None:
            import json

            out["item_payload"] = np.array(json.dumps(self.item_payload_))
        return out

    def _state_config(self) -> dict:
        out = state_config(self.params_, self.global_mean_)
        if self.rating_range_ is not None:
            out["rating_range"] = [float(x) for x in self.rating_range_]
        return out

    def _load_state(self, arrays: dict, config: dict) -> None:
        state, resolved = read_state(arrays, config)
        self.params_ = resolved or self._resolve(self.get_params())
        self._set_state(**state)
        rng = config.get("rating_range")
        if isinstance(rng, list) and len(rng) == 2 and all(isinstance(x, (int, float)) for x in rng) and rng[0] <= rng[1]:
            self._rating_range = (float(rng[0]), float(rng[1]))
        if "item_payload" in arrays:
            import json

            self._payload = json.loads(str(np.asarray(arrays["item_payload"])))

    def _store_meta(self) -> dict:
        return store_meta(self.global_mean_, len(self._user_keys), len(self._item_keys), self.seen_matrix().nnz,
                          self._item_bias is not None)

    def to_store(self, name: str, store=None, *, metric: str | None = None, kind: str = "flat",
                 overwrite: bool = False, meta: dict | None = None, show_progress: bool = False):
        """Write the model into a :class:`~embedkit.Store` as ``name``: the inner-product index
        of the items that the HTTP service and ``embedkit recommend`` search, and the model
        beside it (see :mod:`embedkit.trainers.mf.store`). Returns the directory."""
        if metric not in (None, "ip"):
            raise InputError(f"an MF index must use metric 'ip' (recommendations are inner products); got "
                             f"{metric!r}: drop the metric")
        return super().to_store(name, store, metric="ip", kind=kind, overwrite=overwrite, meta=meta,
                                show_progress=show_progress)

    def _index_payload(self):
        return self.item_payload_

    def save(self, path=None, store=None, *, kind: str = "flat", overwrite: bool = False, name=None):
        """Save the fitted model by the rule every trainer keeps (:meth:`Trainer.save`): a plain
        name (``"plays"``) writes a store entry (what ``embedkit recommend`` and the HTTP service
        read; ``store`` None: ``$EMBEDKIT_STORE`` or ``./indexes``), a path (``"plays.npz"``, a
        ``pathlib.Path``, anything with ``/``) one ``.npz`` file. ``name=`` is the old keyword of
        ``path``.
        """
        if name is not None:
            if path is not None:
                raise InputError("save() got both path and name (its old name); pass only the path")
            path = name
        if path is None:
            raise InputError("save() needs a name or a path: model.save('plays') for the store, model.save('plays.npz')")
        return Trainer.save(self, path, store, overwrite=overwrite, kind=kind)

    @classmethod
    def from_store(cls, name: str, store=None, *, mmap: bool = False, **params) -> "MatrixFactorization":
        """A fitted model loaded from the store (recommend, similar_items, predict, fold_in work);
        recommend() searches the stored index, with the writes the HTTP service journalled."""
        return read_model(cls, name, store, with_index=True, mmap=mmap, **params)

