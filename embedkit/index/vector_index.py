"""VectorIndex: a FAISS index with string keys, upsert/remove for every kind, atomic save."""

from __future__ import annotations

import math
import warnings
from typing import Iterable, Sequence

import numpy as np

from .._arrays import as_keys, as_vectors
from .._knn import METRICS
from .._validation import check_choice, check_float, check_int, check_seed, shown
from ..errors import IgnoredParameterWarning, InputError
from . import _factory as F
from ._filter import compile_filter
from ._payload import as_payload_rows
from ._rwlock import RWLock
from ._search import Allowed, SearchResult
from ._storage import State, Storage

__all__ = ["VectorIndex", "SearchResult"]


class VectorIndex:
    """FAISS nearest-neighbour index over string keys.

    Parameters
    ----------
    dim : int
        Vector dimension.
    metric : {"cosine", "ip", "l2"}, default "cosine"
        cosine normalises vectors and searches by inner product (zero vectors are rejected).
    kind : {"flat", "hnsw", "ivf", "ivfpq", "auto"} or a FAISS factory string, default "flat"
        "auto" picks exact search below 50,000 vectors and HNSW above, at the first add().
    hnsw_m, ef_construction, ef_search : HNSW graph degree and build / search beam widths.
    nlist, nprobe : IVF lists (default ~4*sqrt(n) from the first add) and lists probed per query.
    pq_m, refine : PQ sub-quantizers (ivfpq) and the re-ranking factor: ivfpq fetches
        ``refine * k`` candidates and re-ranks them exactly.
    exact_vectors : bool, default True
        False lets a cosine flat/HNSW index hold one copy of the vectors (FAISS's normalised
        ones plus a norm per item, ~half the memory): ``get_vectors`` / ``to_embeddings`` then
        return unit vector x norm, equal to the input up to float32 rounding (1 ulp), not bit
        for bit. Saved with the index. Other metrics and kinds ignore it (ip/l2 flat and HNSW
        always hold one exact copy).

    Removing from HNSW (which FAISS cannot do) marks the item as deleted; searches skip it and
    the graph is rebuilt once deleted items reach ``rebuild_fraction`` of the index (upserts of
    existing keys count as removals too).
    All methods are safe to call from several threads.

    Memory: flat and HNSW indexes with metric "ip" or "l2" hold one copy of the vectors (read
    back from FAISS's storage); cosine, IVF and PQ indexes also keep the vectors as given (FAISS
    holds cosine vectors normalised and PQ codes lossy). Keys are looked up through sorted hash
    arrays, not a dict.

    Items may carry a payload (a dict of str/int/float/bool/list-of-str values, see
    :meth:`add`), and every search takes a ``filter`` over it (see
    :mod:`embedkit.index._filter`): ``{"category": "shoes", "price": {"$lt": 50}}``.

    ``backend="milvus"`` with ``uri=`` (a local ``.db`` file: embedded milvus-lite; or
    ``http://host:19530``) and ``collection=`` returns the same API over a Milvus collection
    (:class:`embedkit.index._milvus.MilvusIndex`, see docs/milvus.md).
    """

    def __new__(cls, *args, backend: str = "faiss", **kwargs):
        if backend == "milvus" and cls is VectorIndex:  # the same API over a Milvus collection (index/_milvus.py)
            from ._milvus import MilvusIndex

            return MilvusIndex(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, dim: int, metric: str = "cosine", kind: str = "flat", *, hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 64, nlist: int | None = None,
                 nprobe: int | None = None, pq_m: int | None = None, refine: int = 4,
                 rebuild_fraction: float = 0.3, exact_vectors: bool = True, backend: str = "faiss",
                 uri=None, collection: str | None = None):
        owner = "VectorIndex"
        check_choice(owner, "backend", backend, ("faiss", "milvus"))
        if uri is not None or collection is not None:
            raise InputError("uri= and collection= belong to backend='milvus'; the FAISS index lives in memory "
                             "(save it with save(path))")
        self._dim = check_int(owner, "dim", dim, 1, 65536)
        self._metric = check_choice(owner, "metric", metric, METRICS)
        if not isinstance(kind, str) or not kind:
            raise InputError(f"The 'kind' parameter of VectorIndex must be one of {', '.join(F.KINDS)} or a "
                             f"FAISS factory string. Got {kind!r} instead.")
        kind = kind.lower() if kind.lower() in F.KINDS else kind
        knobs = dict(F.DEFAULT_KNOBS)
        knobs.update(hnsw_m=check_int(owner, "hnsw_m", hnsw_m, 2, 512),
                     ef_construction=check_int(owner, "ef_construction", ef_construction, 1, 100000),
                     ef_search=check_int(owner, "ef_search", ef_search, 1, 100000),
                     refine=check_int(owner, "refine", refine, 1, 1000))
        if nlist is not None:
            knobs["nlist"] = check_int(owner, "nlist", nlist, 1, 10**7)
        if nprobe is not None:
            knobs["nprobe"] = check_int(owner, "nprobe", nprobe, 1, 10**7)
        if pq_m is not None:
            knobs["pq_m"] = check_int(owner, "pq_m", pq_m, 1, dim)
        rebuild_fraction = check_float(owner, "rebuild_fraction", rebuild_fraction, 0.0, 1.0, low_open=True)
        if not isinstance(exact_vectors, (bool, np.bool_)):
            raise InputError(f"The 'exact_vectors' parameter of VectorIndex must be True or False. "
                             f"Got {exact_vectors!r} instead.")
        knobs["cosine_one_copy"] = None if exact_vectors else 1
        self._lock = RWLock()
        self.meta: dict = {}
        # everything else (FAISS index, vectors, key maps, tombstones, knobs) lives in one object
        self._storage = Storage(self._dim, self._metric, kind, knobs, rebuild_fraction)
        given = {k: v for k, v in (("nprobe", nprobe), ("nlist", nlist), ("pq_m", pq_m)) if v is not None}
        if given:  # the options without a default: warn, and drop them, where the kind has no use for them
            for name in _drop_foreign_knobs(self._storage, given, owner):
                self._storage.knobs[name] = None

    @classmethod
    def _from_state(cls, state: State, meta: dict) -> "VectorIndex":
        """An index around loaded content (used by ``_persist.load_index``)."""
        kind = state.kind
        idx = cls(state.dim, metric=state.metric, kind=kind if kind in F.KINDS else "flat",
                  rebuild_fraction=state.rebuild_fraction)  # validates what the manifest says
        idx._storage = Storage.from_state(state)
        idx.meta = meta
        return idx

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def kind(self) -> str:
        return self._storage.kind

    @property
    def params(self) -> dict:
        """Build and search knobs (saved with the index)."""
        return dict(self._storage.knobs)

    @property
    def keys(self) -> list[str]:
        """Live keys in id order."""
        with self._lock.read():
            st = self._storage
            return st.id_key[st.live_ids()].tolist()

    def __len__(self) -> int:
        return len(self._storage.key_to_id)

    def __contains__(self, key) -> bool:
        return key in self._storage.key_to_id

    def __repr__(self) -> str:
        return f"VectorIndex(n={len(self)}, dim={self._dim}, metric={self._metric!r}, kind={self.kind!r})"

    # ------------------------------------------------------------ knobs
    @property
    def nprobe(self):
        return self._storage.knobs.get("nprobe")

    @nprobe.setter
    def nprobe(self, value):
        self.set_params(nprobe=value)

    @property
    def ef_search(self):
        return self._storage.knobs.get("ef_search")

    @ef_search.setter
    def ef_search(self, value):
        self.set_params(ef_search=value)

    def set_params(self, **knobs) -> None:
        """Change search knobs: ``nprobe`` (IVF), ``ef_search`` (HNSW), ``refine`` (ivfpq). A knob
        the index's kind does not have is left unset, with an IgnoredParameterWarning."""
        allowed = {"nprobe": (1, 10**7), "ef_search": (1, 100000), "refine": (1, 1000)}
        with self._lock.write():
            checked = {}
            for name, value in knobs.items():
                if name not in allowed:
                    raise InputError(f"unknown search knob {name!r}; settable: {', '.join(allowed)}")
                checked[name] = check_int("VectorIndex", name, value, *allowed[name])
            _drop_foreign_knobs(self._storage, checked, "VectorIndex.set_params")
            self._storage.set_knobs(checked)

    # ----------------------------------------------------------- writing
    def _prepare(self, keys, vectors, what="add") -> tuple[list[str], np.ndarray, np.ndarray]:
        keys = as_keys(keys, what=f"keys given to {what}()")
        vecs = as_vectors(vectors, what="vectors", dim=self._dim, n=len(keys), allow_1d=True, dim_of="the index")
        return keys, vecs, self._storage.for_faiss(vecs, keys)

    def _payload_rows(self, payload, keys, what):
        rows = as_payload_rows(payload, len(keys), what=f"payload given to {what}()")
        return None if rows is None else self._storage.payload.check_rows(rows, keys)

    def add(self, keys: Sequence[str], vectors, payload=None, *, show_progress: bool = False) -> None:
        """Add new items; a key already present raises InputError naming it (use upsert).

        ``payload``: one dict per key (or None), or a pandas DataFrame with one row per key;
        values are str, int, float, bool or a list of str (None / NaN = field absent). One
        field holds one type across the index (ints and floats mix into floats).
        """
        keys, vecs, fvecs = self._prepare(keys, vectors, "add")
        with self._lock.write():
            st = self._storage
            rows = self._payload_rows(payload, keys, "add")
            found = st.key_to_id.find(keys)
            if (found >= 0).any():
                k = keys[int(np.argmax(found >= 0))]
                raise InputError(f"add: key {k!r} is already in the index; use upsert() to replace it")
            st.insert(keys, vecs, fvecs, show_progress=show_progress, payload=rows)

    def upsert(self, keys: Sequence[str], vectors, payload=None) -> None:
        """Insert new items and replace the vectors of keys already present.

        ``payload`` as in :meth:`add`: when given, it replaces the payload of existing keys;
        when None, existing keys keep their payload. Replacing HNSW items leaves tombstones,
        rebuilt away at ``rebuild_fraction`` like removals.
        """
        keys, vecs, fvecs = self._prepare(keys, vectors, "upsert")
        with self._lock.write():
            st = self._storage
            rows = self._payload_rows(payload, keys, "upsert")
            found = st.key_to_id.find(keys)
            old = [(j, int(found[j])) for j in np.flatnonzero(found >= 0).tolist()]
            if rows is None and old and st.payload:
                rows = [{} for _ in keys]
                for j, i in old:
                    rows[j] = st.payload.get(i)
            st.insert(keys, vecs, fvecs, payload=rows, replace=[i for _, i in old])  # old ones go once FAISS took these
            st.maybe_compact()

    def payload(self, key: str) -> dict:
        """The payload of one item (a new dict; {} when it has none)."""
        if not _one_key(key):
            raise InputError(f"key must be a string; got {type(key).__name__} (use [idx.payload(k) for k in keys])")
        with self._lock.read():
            st = self._storage
            return st.payload.get(st.id_of(key))

    def set_payload(self, keys: Sequence[str], payloads) -> None:
        """Replace the payloads of existing items (a list of dicts or a DataFrame, one per key)."""
        keys = as_keys(keys, what="keys given to set_payload()")
        with self._lock.write():
            st = self._storage
            rows = self._payload_rows(payloads, keys, "set_payload")
            ids = [st.id_of(k) for k in keys]
            st.set_payload(ids, rows)

    @property
    def payload_fields(self) -> dict:
        """Payload field names and their types ("int", "float", "bool", "str", "strlist")."""
        with self._lock.read():
            return {f: c.kind for f, c in self._storage.payload.cols.items()}

    def remove(self, keys: Sequence[str], missing_ok: bool = False) -> int:
        """Remove items by key; returns how many were removed. Unknown keys raise KeyError."""
        keys = _lookup_keys(keys)
        keys = list(keys)
        with self._lock.write():
            st = self._storage
            ids = []
            for k in keys:
                i = st.key_to_id.get(k)
                if i is None:
                    if not missing_ok:
                        raise st.missing(k, "remove")
                    continue
                ids.append(i)
            ids = sorted(set(ids))
            if ids:
                st.delete_ids(ids)
            st.maybe_compact()
            return len(ids)

    def rebuild(self) -> None:
        """Rebuild the FAISS structure from the stored vectors, dropping deleted items for good.

        Done automatically once tombstones (HNSW) reach ``rebuild_fraction``; call it to drop
        them sooner (HNSW then searches a graph of live items only, without filtering) or after
        many removals. Keys, vectors, knobs and trained quantizers are kept; an HNSW graph is
        built anew, so its approximate answers may differ slightly. A no-op before the first add.
        """
        with self._lock.write():
            if self._storage.faiss is not None:
                self._storage.compact()

    # ------------------------------------------------------------ reading
    def get_vectors(self, keys: Sequence[str]) -> np.ndarray:
        """The stored vectors (as given, before any normalisation) of these keys."""
        keys = _lookup_keys(keys)
        with self._lock.read():
            st = self._storage
            ids = [st.id_of(k) for k in keys]
            return st.given(np.array(ids, dtype=np.int64)) if ids else np.empty((0, self._dim), np.float32)

    def to_embeddings(self):
        """All live items as :class:`~embedkit.Embeddings`."""
        from ..embeddings import Embeddings

        with self._lock.read():
            st = self._storage
            live = st.live_ids()
            return Embeddings(st.id_key[live].tolist(), st.given(live), meta=dict(self.meta))

    def search(self, queries, k: int = 10, filter=None) -> SearchResult:
        """The k nearest items of each query vector; queries of shape (m, dim) or (dim,).

        ``filter``: only items whose payload matches (a dict, see :mod:`embedkit.index._filter`)
        are returned: exactly the top-k among them for flat, and recall@10 >= 0.95 for
        hnsw/ivf/ivfpq at any selectivity (small matching sets are searched exactly). Rows hold
        min(k, matching items) results.
        """
        k = check_int("search", "k", k, 1, None) if not (type(k) is int and k >= 1) else k
        flt = None if filter is None else compile_filter(filter)
        fq = self._one_query(queries)
        if fq is None:  # batches, other dtypes, and anything the general checks must explain
            q = as_vectors(queries, what="queries", dim=self._dim, allow_1d=True, dim_of="the index")
            fq = self._storage.for_faiss(q)
        with self._lock.read():
            st = self._storage
            return st.search(fq, k, None, None if flt is None else st.filter_mask(flt))

    def _one_query(self, x):
        """Fast path for one finite, non-zero float32 vector of length dim: (1, dim) ready for FAISS.

        Bit-identical to the general path (same float32 norm: sqrt of numpy's pairwise sum of
        squares); returns None for anything else so the general path validates and explains.
        """
        if type(x) is not np.ndarray or x.ndim != 1 or x.dtype != np.float32 or x.shape[0] != self._dim:
            return None
        sq = np.add.reduce(x * x)  # NaN or inf anywhere -> not finite; all zeros -> 0
        if not 0.0 < sq < math.inf:
            return None
        if self._metric == "cosine":
            return (x / np.sqrt(sq)).reshape(1, -1)
        return np.ascontiguousarray(x).reshape(1, -1)

    def search_keys(self, keys: Sequence[str], k: int = 10, filter=None) -> SearchResult:
        """The k nearest neighbours of stored items, each item itself excluded; ``filter`` as in
        :meth:`search`."""
        k = check_int("search_keys", "k", k, 1, None) if not (type(k) is int and k >= 1) else k
        flt = None if filter is None else compile_filter(filter)
        if _one_key(keys):
            with self._lock.read():  # one key: no list, no fancy-index copy, no general norm
                st = self._storage
                i = st.id_of(keys)
                fq = st.ready_one(i)
                return st.search(fq, k, np.array([i], dtype=np.int64), None if flt is None else st.filter_mask(flt))
        with self._lock.read():
            st = self._storage
            ids = np.array([st.id_of(key) for key in keys], dtype=np.int64)
            fq = st.ready(ids) if len(ids) else np.empty((0, self._dim), np.float32)
            return st.search(fq, k, ids, None if flt is None else st.filter_mask(flt))

    def search_examples(self, positive=(), negative=(), k: int = 10, filter=None,
                        method: str = "add") -> SearchResult:
        """Items like the ``positive`` examples and unlike the ``negative`` ones (Qdrant's
        "recommend by examples", gensim's ``most_similar(positive=, negative=)``).

        Examples are stored keys or vectors; keys given are never returned. ``method="add"``
        (3CosAdd): the query is the mean of the unit positive vectors minus the unit negative
        ones (cosine; raw vectors for ip/l2), searched like :meth:`search`. ``method="mul"``
        (3CosMul, cosine only): each candidate scores prod((1 + cos(x, p)) / 2) /
        (prod((1 + cos(x, n)) / 2) + 1e-6), exactly over every (matching) item. Returns one row.
        """
        k = check_int("search_examples", "k", k, 1, None)
        method = check_choice("search_examples", "method", method, ("add", "mul"))
        flt = None if filter is None else compile_filter(filter)
        if method == "mul" and self._metric != "cosine":
            raise InputError(f"search_examples: method='mul' (3CosMul) needs metric='cosine'; this index uses "
                             f"{self._metric!r}: use method='add'")
        with self._lock.read():
            st = self._storage
            pos, pos_ids = self._examples(positive, "positive")
            neg, neg_ids = self._examples(negative, "negative")
            if not len(pos) and not len(neg):
                raise InputError("search_examples: give at least one positive or negative example")
            used = np.array(sorted(set(pos_ids + neg_ids)), dtype=np.int64)
            mask = st.alive[:st.next_id].copy() if flt is None else st.filter_mask(flt).mask.copy()
            mask[used] = False
            if method == "mul":
                if not len(pos):
                    raise InputError("search_examples: method='mul' needs at least one positive example")
                return self._cosmul(st, pos, neg, k, mask)
            if self._metric == "cosine":
                pos, neg = st.for_faiss(pos), st.for_faiss(neg)
            q = np.concatenate((pos, -neg)).mean(axis=0, keepdims=True).astype(np.float32)
            if not np.any(q):
                raise InputError("search_examples: the examples cancel out (their mean is the zero vector)")
            return st.search(st.for_faiss(q), k, None, Allowed(mask))

    def _examples(self, items, what):
        """Vectors (as stored) and ids of examples given as keys or vectors."""
        st = self._storage
        if isinstance(items, (str, np.ndarray)):
            items = [items]
        elif not isinstance(items, Iterable):
            raise InputError(f"search_examples: {what} must be a list of keys or vectors; got "
                             f"{type(items).__name__} {shown(items)} (give [] for none)")
        vecs, ids = [], []
        for j, item in enumerate(list(items)):
            if _one_key(item):  # a key (an int says keys are strings)
                i = st.id_of(item)
                ids.append(i)
                vecs.append(st.given(np.array([i]))[0])
            else:
                v = as_vectors(item, what=f"{what}[{j}]", dim=self._dim, allow_1d=True, dim_of="the index")
                if v.shape[0] != 1:
                    raise InputError(f"{what}[{j}] must be one key or one vector; got {v.shape[0]} vectors")
                vecs.append(v[0])
        arr = np.array(vecs, dtype=np.float32).reshape(len(vecs), self._dim)
        if self._metric == "cosine" and len(arr):
            st.for_faiss(arr, [x if isinstance(x, str) else f"{what}[{j}]" for j, x in enumerate(items)])
        return arr, ids

    def _cosmul(self, st, pos, neg, k, mask):
        sub = np.flatnonzero(mask).astype(np.int64)
        want = min(k, len(sub))
        if want == 0:
            return SearchResult([[]], np.empty((1, 0), dtype=np.float32))
        base = st.ready(sub)
        p = ((1 + base @ st.for_faiss(pos).T) / 2).prod(axis=1)
        if len(neg):
            p = p / (((1 + base @ st.for_faiss(neg).T) / 2).prod(axis=1) + 1e-6)
        else:
            p = p / (1 + 1e-6)
        top = np.argsort(-p, kind="stable")[:want]
        return SearchResult([st.id_key[sub[top]].tolist()], p[top][None, :].astype(np.float32))

    # ------------------------------------------------------------ tuning
    def tune(self, target_recall: float = 0.95, queries=None, k: int = 10, *, sample: int = 200,
             seed: int = 0) -> dict:
        """Set ``ef_search`` (HNSW) or ``nprobe`` (IVF) to the cheapest value whose recall@k
        against exact search reaches ``target_recall``; the value is saved with the index.

        ``queries``: (m, dim) query vectors; default ``sample`` stored items (searched as
        neighbours of themselves). Returns a report dict: knob, value, recall, the values
        tried with their recall, and whether the target was reached (if not, the largest
        value tried is kept). Flat indexes are exact: nothing to tune.
        """
        from ._tune import tune

        target_recall = check_float("tune", "target_recall", target_recall, 0.0, 1.0, low_open=True)
        k = check_int("tune", "k", k, 1, None)
        sample = check_int("tune", "sample", sample, 1, None)
        seed = check_seed("tune", seed)
        if queries is not None:
            queries = as_vectors(queries, what="queries", dim=self._dim, allow_1d=True, dim_of="the index")
            if not len(queries):
                raise InputError("tune: queries is empty; give at least one row, or leave queries out to "
                                 "sample the index")
            queries = self._storage.for_faiss(queries)
        with self._lock.write():
            return tune(self._storage, target_recall, queries, k, sample, seed)

    # ------------------------------------------------------------ persistence
    def save(self, path, *, meta: dict | None = None, extras: dict | None = None) -> None:
        """Save to a directory atomically (temporary directory, fsync, rename)."""
        from ._persist import save_index

        meta = dict(self.meta if meta is None else meta)
        with self._lock.read():
            save_index(self._storage.state(), path, meta=meta, extras=extras)
        self.meta = meta

    @classmethod
    def load(cls, path, mmap: bool = False, verify: bool = True) -> "VectorIndex":
        """Load a saved directory; refuses damaged, truncated or newer-format stores."""
        from ._persist import load_index

        return load_index(cls, path, mmap=mmap, verify=verify)

    @staticmethod
    def read_manifest(path) -> dict:
        """The manifest of a saved index directory (format, metric, kind, dim, count, knobs, meta,
        file checksums...) without loading it; see :func:`embedkit.index.read_manifest`."""
        from ._persist import read_manifest

        return read_manifest(path)

    @staticmethod
    def load_extra(path, name: str) -> dict:
        """Arrays saved with ``save(extras={name: {...}})``, checksum-verified."""
        from ._persist import load_extra

        return load_extra(path, name)


def _drop_foreign_knobs(st: Storage, knobs: dict, owner: str) -> list[str]:
    """Remove from ``knobs``, with an IgnoredParameterWarning each, the search knobs an index like ``st`` lacks;
    returns their names."""
    index = st.faiss
    if index is None and st.kind not in F.KINDS:  # a factory string before its first add: an untrained copy
        index = F.build(st.kind, st.factory, st.dim, st.metric, st.knobs)[0]
    dropped = [n for n in knobs if not F.knob_applies(n, st.kind, index)]
    for name in dropped:
        del knobs[name]
        warnings.warn(f"{owner}: {name} has no effect on an index of kind {st.kind!r} (it applies to "
                      f"{F.KNOB_KINDS[name]}); ignored", IgnoredParameterWarning, stacklevel=3)
    return dropped


def _lookup_keys(keys) -> list:
    """The keys of a lookup (remove, get_vectors): one key (a str, or an int that then gets the
    one-line "keys are strings" error) or an iterable of them."""
    if _one_key(keys):
        return [keys]
    return list(keys)


def _one_key(x) -> bool:
    """A str, or a scalar that is no vector or list (an int key: refused with the string rule)."""
    return isinstance(x, (str, bytes)) or not isinstance(x, Iterable)
