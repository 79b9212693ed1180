"""HybridMF: matrix factorisation with side features, for cold start (LightFM's model; Kula,
"Metadata Embeddings for User and Item Cold-start Recommendations", 2015).

    items = Features.from_csv("items.csv", id="item", categorical=["genre"], tags=["tags"], numeric=["price"])
    model = HybridMF(dim=32, loss="bpr")        # from embedkit.trainers.mf import Features, HybridMF
    model.fit(train, item_features=items)
    model.recommend("alice", k=10, filter={"genre": "drama"})     # item payloads come from the features
    model.add_items({"new-film": {"genre": "drama", "tags": "space|robots"}})   # no interactions needed
    model.similar_items("new-film"); model.recommend("alice")      # the new item takes part at once
    model.add_users({"newcomer": {"country": "fr"}})               # with user_features at fit

An item's vector is the sum of its id embedding and the embeddings of its features (weighted:
1 per category, 1/n per tag of n, the standardised value of a number); a user's likewise; the
score of (user, item) is their inner product plus the item's bias (id bias + feature biases).
A new item or user (``add_items``/``add_users``) gets the feature part alone: that is what
makes cold-start recommendations possible. Without features the model is plain MF with BPR/WARP.

Losses, on mini-batches of (user, positive item) pairs with items drawn uniformly as negatives:
"bpr" (Rendle et al. 2009): -log sigmoid(s+ - s-); "warp" (Weston et al. 2011, as LightFM uses
it): ``n_negatives`` items are drawn per positive, the hardest one gets the hinge
max(0, 1 - s+ + s-), weighted by log(1 + estimated rank), the rank estimated from the share of
sampled negatives that violate the margin (the mini-batch form of WARP's sample-until-violation).
Optimiser: Adagrad on sparse gradients (as LightFM), L2 ``reg`` on the vectors in the batch.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from ..._validation import BATCH_SIZE, DEVICE, DIM, EPOCHS, LR, SEED, Interval, Options
from ...embeddings import Embeddings
from ...errors import InputError
from .baselines import _Recommender, as_interactions
from .features import Features

log = logging.getLogger(__name__)

__all__ = ["HybridMF"]


class HybridMF(_Recommender):
    """Hybrid matrix factorisation: id embeddings plus side-feature embeddings (see the module text).

    Parameters
    ----------
    dim : int in [1, 10000], default 32
    loss : {"bpr", "warp"}, default "bpr"
        (BPR matched or beat WARP on warm and cold items of the benchmark data, in 2/3 of the
        time: benchmarks/mf_bench.py --hybrid)
    epochs : int, default 30
    lr : float in (0, 10], default 0.05
        Adagrad learning rate.
    reg : float >= 0, default 1e-5
        L2 penalty on the user and item vectors of each batch.
    n_negatives : int in [1, 1000], default 10
        Sampled negatives per positive for "warp" (1 is used by "bpr").
    batch_size : int, default 256
    seed : int, default 0
    device : {"auto", "cpu", "cuda", "cuda:N"}, default "auto"
    sync_every : float in (0, 1], default 0.1
        Under torch.distributed (torchrun, ``--nproc N``) each rank trains on the pairs of its
        block of users and the ranks sum their changes to the tables every ``sync_every`` of an
        epoch (see :mod:`embedkit.trainers.mf.distributed`); unused in a single process.
    """

    _parameter_constraints = {
        "dim": DIM, "loss": [Options("bpr", "warp")], "epochs": EPOCHS, "lr": LR,
        "reg": [Interval(float, 0.0, None)], "n_negatives": [Interval(int, 1, 1000)],
        "batch_size": BATCH_SIZE, "seed": SEED, "device": DEVICE,
        "sync_every": [Interval(float, 0.0, 1.0, closed="right")],
    }

    def __init__(self, dim: int = 32, loss: str = "bpr", epochs: int = 30, lr: float = 0.05, reg: float = 1e-5,
                 n_negatives: int = 10, batch_size: int = 256, seed: int = 0, device: str = "auto", *,
                 sync_every: float = 0.1):
        self.dim = dim
        self.loss = loss
        self.epochs = epochs
        self.lr = lr
        self.reg = reg
        self.n_negatives = n_negatives
        self.batch_size = batch_size
        self.seed = seed
        self.device = device
        self.sync_every = sync_every

    def _ignored_params(self) -> dict:
        return {"n_negatives": "with loss='bpr' (one negative per positive)"} if self.loss == "bpr" else {}

    # ------------------------------------------------------------------ fit
    def fit(self, interactions, *, item_features: Features | None = None, user_features: Features | None = None,
            show_progress: bool = True, callback=None) -> Embeddings:
        """Train on ``interactions`` with optional :class:`Features` of the items and users (ids
        without a row get their id embedding only). Returns the item Embeddings."""
        import torch

        from ..._device import resolve_device

        self._validate_params()
        self._check_callback("HybridMF", callback)
        for name, f in (("item_features", item_features), ("user_features", user_features)):
            if f is not None and not isinstance(f, Features):
                raise InputError(f"The '{name}' argument of HybridMF.fit must be a Features table "
                                 f"(Features.from_dataframe / from_csv) or None; got {type(f).__name__}")
        inter = as_interactions(interactions, "HybridMF")
        device = resolve_device(self.device, "HybridMF")
        # nothing is assigned to self until training has succeeded: a failed (re)fit keeps the old model
        n_users, n_items = inter.n_users, inter.n_items
        fi, item_payload = _side(item_features, inter.item_keys)
        fu, _ = _side(user_features, inter.user_keys)
        FI = sp.hstack([sp.identity(n_items, np.float32, format="csr"), fi]).tocsr()
        FU = sp.hstack([sp.identity(n_users, np.float32, format="csr"), fu]).tocsr()
        gen = torch.Generator().manual_seed(int(self.seed))
        d = int(self.dim)
        # LightFM's start: uniform in [-1/(2d), 1/(2d)] ... scaled to dim, zero biases
        # LightFM's start: uniform in [-1/(2d), 1/(2d)], zero biases; tables [rows x d] on the device
        EI = ((torch.rand(FI.shape[1], d, generator=gen) - 0.5) / d).to(device).requires_grad_()
        EU = ((torch.rand(FU.shape[1], d, generator=gen) - 0.5) / d).to(device).requires_grad_()
        BI = torch.zeros(FI.shape[1], 1, device=device).requires_grad_()
        opt = _SparseAdagrad([EI, EU, BI], float(self.lr))
        fi_t, fu_t = _csr_tensors(FI, device), _csr_tensors(FU, device)
        coo = inter.matrix.tocoo()
        pos_u = torch.as_tensor(coo.row.astype(np.int64), device=device)
        pos_i = torch.as_tensor(coo.col.astype(np.int64), device=device)
        dist = _Distributed(self, device, [EI, EU, BI])  # world size 1: does nothing
        pos_u, pos_i = dist.shard(pos_u), dist.shard(pos_i)
        n = len(pos_u)
        n_neg = int(self.n_negatives) if self.loss == "warp" else 1
        reg, bs = float(self.reg), int(self.batch_size)
        dgen = gen if device.type == "cpu" else torch.Generator(device=device).manual_seed(int(self.seed))
        dgen = dist.generator(gen, dgen, device)
        from tqdm.auto import tqdm

        history = []
        for epoch in tqdm(range(1, int(self.epochs) + 1), desc="HybridMF", unit="epoch", disable=not show_progress,
                          leave=False):
            order = torch.randperm(n, generator=dgen, device=device)
            total = 0.0
            for start in range(0, n, bs):
                dist.maybe_sync(start)
                pick = order[start:start + bs]
                u, i = pos_u[pick], pos_i[pick]
                j = torch.randint(0, n_items, (len(pick), n_neg), generator=dgen, device=device)
                uv = _bag(EU, fu_t, u)
                flat_j = j.reshape(-1)
                if n_items <= len(pick) * (n_neg + 1):  # small catalogue: every item's vector once per batch
                    every = torch.arange(n_items, device=device)
                    all_v, all_b = _bag(EI, fi_t, every), _bag(BI, fi_t, every)[:, 0]
                    iv, ib = all_v.index_select(0, i), all_b.index_select(0, i)
                    jv = all_v.index_select(0, flat_j).reshape(len(pick), n_neg, d)
                    jb = all_b.index_select(0, flat_j).reshape(len(pick), n_neg)
                else:
                    iv, ib = _bag(EI, fi_t, i), _bag(BI, fi_t, i)[:, 0]
                    jv = _bag(EI, fi_t, flat_j).reshape(len(pick), n_neg, d)
                    jb = _bag(BI, fi_t, flat_j).reshape(len(pick), n_neg)
                s_pos = (uv * iv).sum(1) + ib
                s_neg = torch.einsum("bd,bnd->bn", uv, jv) + jb
                if self.loss == "bpr":
                    loss = -torch.nn.functional.logsigmoid(s_pos - s_neg[:, 0]).mean()
                else:
                    viol = (s_neg > (s_pos[:, None] - 1.0)).sum(1)
                    hard = s_neg.max(1).values
                    rank = torch.floor((n_items - 1) * viol.double() / n_neg)
                    weight = torch.log1p(rank).float()
                    loss = (weight * torch.relu(1.0 - s_pos + hard)).mean()
                loss = loss + reg * ((uv * uv).sum() + (iv * iv).sum() + (jv * jv).sum()) / len(pick)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(pick)
            value = dist.epoch_end(total, n)
            if not np.isfinite(value):
                raise InputError(f"HybridMF training diverged (epoch {epoch} loss {value}); nothing was kept: "
                                 f"lower lr (now {self.lr}) or raise reg (now {self.reg})")
            history.append(value)
            if callback is not None:
                callback(epoch, value)
        ei = EI.detach().cpu().numpy().astype(np.float64)
        eu = EU.detach().cpu().numpy().astype(np.float64)
        bi = BI.detach().cpu().numpy()[:, 0].astype(np.float64)
        user_vecs, item_vecs, item_bias = np.asarray(FU @ eu), np.asarray(FI @ ei), np.asarray(FI @ bi)
        _check_finite(user_vecs, item_vecs, item_bias, self.lr, self.reg)
        self._set_base(inter.user_keys, inter.item_keys, inter.matrix)
        self._item_feats, self._user_feats = item_features, user_features
        self._item_feat_emb, self._item_feat_bias = ei[n_items:].astype(np.float32), bi[n_items:].astype(np.float32)
        self._user_feat_emb = eu[n_users:].astype(np.float32)
        self.loss_history_ = history
        dist.record(self)
        self._set_vectors(user_vecs, item_vecs, item_bias)
        self._payload = item_payload if item_features is not None else None
        return self.embeddings_

    def _set_vectors(self, user_vectors, item_vectors, item_bias) -> None:
        user_vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)
        item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        item_bias = np.ascontiguousarray(item_bias, dtype=np.float32).reshape(-1)
        _check_finite(user_vectors, item_vectors, item_bias, self.lr, self.reg)
        self._U, self._I, self._bias = user_vectors, item_vectors, item_bias
        self.embeddings_ = Embeddings(self._item_keys, self._I)
        self.item_embeddings_ = self.embeddings_
        self.user_embeddings_ = Embeddings(self._user_keys, self._U)

    # ------------------------------------------------------------------ queries
    def _scores(self, codes):
        return self._U[codes].astype(np.float64) @ self._I.T.astype(np.float64) + self._bias

    def predict(self, users, items) -> np.ndarray:
        """Scores x_u . y_i + b_i of (user, item) pairs: equal-length lists of keys (or one str each;
        one user with many items scores each item for that user, as MatrixFactorization.predict)."""
        from .predict import as_pairs

        self._check_fitted()
        users, items = as_pairs(users, items)
        u = self._user_codes(users)
        i = np.array([self._item_code(x) for x in items], dtype=np.int64)
        return (np.einsum("nd,nd->n", self._U[u], self._I[i]) + self._bias[i]).astype(np.float32)

    def _item_code(self, item) -> int:
        from ...errors import MissingKeyError

        code = self._item_index.get(item) if isinstance(item, str) else None
        if code is None:
            raise MissingKeyError(f"unknown item {item!r}; add it with model.add_items(features)")
        return code

    def similar_users(self, user, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` users closest to ``user`` by cosine of their vectors (the user excluded)."""
        self._user_codes([user])
        return self.user_embeddings_.most_similar(user, k=k)

    # ------------------------------------------------------------------ cold start
    def add_items(self, features) -> list[str]:
        """Add items described by features only (a DataFrame, CSV path or dict {item: {column:
        value}} with the columns of the training item Features): their vectors and biases are the
        sum of their feature embeddings. They are recommended and searched at once. A key that
        exists is replaced by its feature-only vector. Returns the keys."""
        self._check_fitted()
        if self._item_feats is None:
            raise InputError("add_items() needs a model fitted with item_features=Features(...); without features a "
                             "new item has no vector")
        keys, m, payload = self._item_feats.rows(features)
        _check_known(keys, m, "item", self._item_feats)
        vecs = np.asarray(m @ self._item_feat_emb.astype(np.float64), dtype=np.float32)
        bias = np.asarray(m @ self._item_feat_bias.astype(np.float64), dtype=np.float32).reshape(-1)
        I, B = self._I.copy(), self._bias.copy()
        pay = list(self._payload) if self._payload is not None else [{} for _ in self._item_keys]
        item_keys = list(self._item_keys)
        new = []  # rows of the new items, appended in one copy after the loop
        for n, key in enumerate(keys):
            code = self._item_index.get(key)
            if code is None:
                item_keys.append(key)
                new.append(n)
                pay.append(payload[n])
            else:
                I[code], B[code], pay[code] = vecs[n], bias[n], payload[n]
        if new:
            I, B = np.vstack([I, vecs[new]]), np.concatenate([B, bias[new]])
        seen = self._seen.copy()
        seen.resize((seen.shape[0], len(item_keys)))
        self._set_base(self._user_keys, item_keys, seen)
        self._payload = pay
        self._set_vectors(self._U, I, B)
        return keys

    def add_users(self, features) -> list[str]:
        """Add users described by features only (columns of the training user Features); their
        vector is the sum of their feature embeddings and they have seen nothing. Returns the keys."""
        self._check_fitted()
        if self._user_feats is None:
            raise InputError("add_users() needs a model fitted with user_features=Features(...); without features a "
                             "new user has no vector")
        keys, m, _ = self._user_feats.rows(features)
        _check_known(keys, m, "user", self._user_feats)
        vecs = np.asarray(m @ self._user_feat_emb.astype(np.float64), dtype=np.float32)
        U = self._U.copy()
        user_keys = list(self._user_keys)
        seen = self._seen.tolil()
        new = []
        for n, key in enumerate(keys):
            code = self._user_index.get(key)
            if code is None:
                user_keys.append(key)
                new.append(n)
            else:
                U[code] = vecs[n]
        if new:
            U = np.vstack([U, vecs[new]])
        seen.resize((len(user_keys), seen.shape[1]))
        self._set_base(user_keys, self._item_keys, seen.tocsr())
        self._set_vectors(U, self._I, self._bias)
        return keys

    # ------------------------------------------------------------------ persistence
    def _state_arrays(self) -> dict:
        out = {**self._base_arrays(), "user_vectors": self._U, "item_vectors": self._I, "item_bias": self._bias,
               "item_feature_emb": self._item_feat_emb, "item_feature_bias": self._item_feat_bias,
               "user_feature_emb": self._user_feat_emb}
        return out

    def _state_config(self) -> dict:
        return {"item_features": None if self._item_feats is None else self._item_feats.to_json(),
                "user_features": None if self._user_feats is None else self._user_feats.to_json()}

    def _load_state(self, arrays, config) -> None:
        self._load_base(arrays)
        self._item_feats = None if not config.get("item_features") else Features.from_json(config["item_features"])
        self._user_feats = None if not config.get("user_features") else Features.from_json(config["user_features"])
        self._item_feat_emb = np.asarray(arrays["item_feature_emb"], dtype=np.float32)
        self._item_feat_bias = np.asarray(arrays["item_feature_bias"], dtype=np.float32)
        self._user_feat_emb = np.asarray(arrays["user_feature_emb"], dtype=np.float32)
        self._set_vectors(arrays["user_vectors"], arrays["item_vectors"], arrays["item_bias"])


def _check_known(keys, m, who: str, feats: Features) -> None:
    """InputError for a new id none of whose features was seen in training (it would get no vector)."""
    empty = np.flatnonzero(np.diff(m.indptr) == 0)
    if len(empty):
        cols = feats.spec["categorical"] + feats.spec["tags"] + feats.spec["numeric"]
        raise InputError(f"add_{who}s(): {who} {keys[int(empty[0])]!r} ({len(empty)} of {len(keys)} in all) has none of "
                         f"the training features (columns {cols}; unknown categories and tags count for nothing), "
                         "so it would get no vector; give it a known value")


def _check_finite(user_vectors, item_vectors, item_bias, lr, reg) -> None:
    if not (np.isfinite(user_vectors).all() and np.isfinite(item_vectors).all() and np.isfinite(item_bias).all()):
        raise InputError(f"HybridMF training diverged (vectors hold NaN/inf); nothing was kept: lower lr "
                         f"(now {lr}) or raise reg (now {reg})")


def _side(features: Features | None, keys) -> tuple[sp.csr_matrix, list[dict] | None]:
    if features is None:
        return sp.csr_matrix((len(keys), 0), dtype=np.float32), None
    unknown = set(features.keys) - set(keys)
    if unknown and len(unknown) == len(features.keys):
        raise InputError(f"features: none of the {len(features.keys)} ids matches the interactions' ids "
                         f"(e.g. {next(iter(unknown))!r}); use the same ids")
    m, payload = features.aligned(keys)
    return m, payload


def _csr_tensors(m: sp.csr_matrix, device):
    import torch

    return (torch.as_tensor(m.indptr.astype(np.int64), device=device),
            torch.as_tensor(m.indices.astype(np.int64), device=device),
            torch.as_tensor(m.data.astype(np.float32), device=device))


class _SparseAdagrad:
    """Adagrad (Duchi et al. 2011) on the rows a batch touched: the tables' sparse gradients
    (accumulated squared gradients per element, as LightFM). Plain torch, no torch.optim import."""

    def __init__(self, tables, lr: float, eps: float = 1e-10):
        import torch

        self.tables, self.lr, self.eps = tables, lr, eps
        self.acc = [torch.zeros_like(t, requires_grad=False) for t in tables]

    def step(self) -> None:
        import torch

        with torch.no_grad():
            for t, acc in zip(self.tables, self.acc):
                if t.grad is None:
                    continue
                g = t.grad.coalesce()
                idx, val = g.indices()[0], g.values()
                a = acc.index_select(0, idx) + val * val
                acc.index_copy_(0, idx, a)
                t.index_add_(0, idx, -self.lr * val / (a.sqrt() + self.eps))
                t.grad = None


def _bag(table, csr, rows):
    """Weighted sum of ``table`` rows over the feature rows ``rows`` of a CSR (indptr, indices,
    data) tensor triple; the gradient of ``table`` is sparse."""
    import torch

    indptr, indices, data = csr
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    offsets = torch.cumsum(lengths, 0) - lengths
    total = int(lengths.sum())
    pos = torch.repeat_interleave(starts - offsets, lengths, output_size=total) + torch.arange(total, device=rows.device)
    return torch.nn.functional.embedding_bag(indices[pos], table, offsets, mode="sum", sparse=True,
                                             per_sample_weights=data[pos])


class _Distributed:
    """HybridMF's part in a torch.distributed fit (a no-op in a single process): each rank trains on
    the pairs of its block of users and the ranks sum their table changes every ``sync_every`` of an
    epoch, as BPR does in :mod:`.distributed` (Hogwild with a delay)."""

    def __init__(self, model, device, tables):
        from ... import distributed as ek_dist

        self.ek = ek_dist
        self.w = ek_dist.setup(device) if ek_dist.world().size > 1 else ek_dist.world()
        self.active = self.w.size > 1
        if self.active:
            from .distributed import _ItemSync

            self.start = ek_dist.comm_mark()
            self.sync = _ItemSync(tables)
            self.every = float(model.sync_every)

    def shard(self, t):
        """This rank's part of the pairs (in CSR order: a contiguous part is a block of users)."""
        t = t[self.ek.shard_slice(len(t), self.w)] if self.active else t
        self.n = len(t)
        if self.active:  # the epoch's parts (the same count on every rank); done: the syncs made this epoch
            from .distributed import _segments

            self.bounds, self.done = _segments(self.n, self.every), 0
        return t

    def generator(self, gen, dgen, device):
        if not self.active:
            return dgen
        from .distributed import _rank_generator

        return _rank_generator(gen, self.w, device)

    def maybe_sync(self, start: int) -> None:
        """Before the batch starting at ``start``: the syncs whose part of the epoch has been trained."""
        if not self.active:
            return
        while self.done + 1 < len(self.bounds) - 1 and start >= self.bounds[self.done + 1]:
            self._sync()

    def _sync(self) -> None:
        import torch

        with torch.no_grad():
            self.sync()
        self.done += 1

    def epoch_end(self, total: float, n: int) -> float:
        """The rest of the epoch's syncs (every rank makes the same number) and the loss over all pairs."""
        if not self.active:
            return total / max(n, 1)
        while self.done < len(self.bounds) - 1:
            self._sync()
        self.done = 0
        loss, pairs = self.ek.sum_over_ranks(np.array([total, float(n)], dtype=np.float64))
        return float(loss) / max(float(pairs), 1.0)

    def record(self, model) -> None:
        """Drop the figures of an earlier fit; distributed: what this rank sent into collectives during the fit."""
        self.ek.record_comm(model, self.start if self.active else None)
