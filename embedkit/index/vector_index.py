"""VectorIndex: a FAISS index with string keys, upsert/remove for every kind, atomic save."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .._validation import check_choice, check_float, check_int
from ..errors import InputError, MissingKeyError
from . import _factory as F
from ._rwlock import RWLock
from ._search import drop_self, fill_missing, rerank

log = logging.getLogger(__name__)
_PROGRESS_CHUNK = 20_000
_swig_ptr = None


def _faiss_search(index, fq: np.ndarray, k: int, params):
    """``index.search(fq, k, params=params)`` minus faiss's Python wrapper (its shape asserts and
    array conversions; our callers already hold (m, dim) float32 queries): the same C++ call
    (``search_c``), a few microseconds less per single-query search."""
    global _swig_ptr
    if _swig_ptr is None:
        from faiss import swig_ptr as _swig_ptr
    if fq.dtype != np.float32 or not fq.flags.c_contiguous:
        fq = np.ascontiguousarray(fq, dtype=np.float32)
    m = fq.shape[0]
    D = np.empty((m, k), dtype=np.float32)
    I = np.empty((m, k), dtype=np.int64)
    index.search_c(m, _swig_ptr(fq), k, _swig_ptr(D), _swig_ptr(I), params)
    return D, I


@dataclass
class SearchResult:
    """Neighbours of m queries: ``keys[i]`` is a list of keys, ``scores[i]`` their scores.

    Scores are similarities for cosine/ip (higher is closer) and Euclidean distances for l2
    (lower is closer).
    """

    keys: list
    scores: np.ndarray

    def __iter__(self):  # for i, (keys, scores) in enumerate(res)
        return iter(zip(self.keys, self.scores))

    def __len__(self) -> int:
        return len(self.keys)


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

    Removing from HNSW (which FAISS cannot do) marks the item as deleted; searches skip it and
    the graph is rebuilt once deleted items reach ``rebuild_fraction`` of the index.
    All methods are safe to call from several threads.
    """

    def __init__(self, dim: int, metric: str = "cosine", kind: str = "flat", *, hnsw_m: int = 32,
                 ef_construction: int = 80, ef_search: int = 64, nlist: int | None = None,
                 nprobe: int | None = None, pq_m: int | None = None, refine: int = 4,
                 rebuild_fraction: float = 0.3):
        owner = "VectorIndex"
        self._dim = check_int(owner, "dim", dim, 1, 65536)
        self._metric = check_choice(owner, "metric", metric, F.METRICS)
        if not isinstance(kind, str) or not kind:
            raise InputError(f"The 'kind' parameter of VectorIndex must be one of {', '.join(F.KINDS)} or a "
                             f"FAISS factory string. Got {kind!r} instead.")
        self._kind = kind.lower() if kind.lower() in F.KINDS else kind
        self._knobs = dict(F.DEFAULT_KNOBS)
        self._knobs.update(hnsw_m=check_int(owner, "hnsw_m", hnsw_m, 2, 512),
                           ef_construction=check_int(owner, "ef_construction", ef_construction, 1, 100000),
                           ef_search=check_int(owner, "ef_search", ef_search, 1, 100000),
                           refine=check_int(owner, "refine", refine, 1, 1000))
        if nlist is not None:
            self._knobs["nlist"] = check_int(owner, "nlist", nlist, 1, 10**7)
        if nprobe is not None:
            self._knobs["nprobe"] = check_int(owner, "nprobe", nprobe, 1, 10**7)
        if pq_m is not None:
            self._knobs["pq_m"] = check_int(owner, "pq_m", pq_m, 1, dim)
        self._rebuild_fraction = check_float(owner, "rebuild_fraction", rebuild_fraction, 0.0, 1.0, low_open=True)
        self._lock = RWLock()
        self.meta: dict = {}
        self._reset_storage()
        self._faiss = None
        self._factory = None
        self._ids_native = False
        if self._kind not in F.KINDS:  # validate a factory string now, not at the first add
            self._factory = F.factory_string(self._kind, self._dim, self._knobs, 0)
            F.build(self._kind, self._factory, self._dim, self._metric, self._knobs)

    # ------------------------------------------------------------------ state
    def _reset_storage(self, capacity: int = 0):
        self._vecs = np.empty((capacity, self._dim), dtype=np.float32)  # by id: vectors as given
        self._id_key = np.empty(capacity, dtype=object)                  # by id: key, None when dead
        self._key_to_id: dict[str, int] = {}
        self._next_id = 0
        self._tombstones: set[int] = set()   # ids still inside FAISS but deleted (HNSW and co.)
        self._search_params = None

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def params(self) -> dict:
        """Build and search knobs (saved with the index)."""
        return dict(self._knobs)

    @property
    def keys(self) -> list[str]:
        """Live keys in id order."""
        with self._lock.read():
            return [self._id_key[i] for i in self._live_ids()]

    def __len__(self) -> int:
        return len(self._key_to_id)

    def __contains__(self, key) -> bool:
        return key in self._key_to_id

    def __repr__(self) -> str:
        return f"VectorIndex(n={len(self)}, dim={self._dim}, metric={self._metric!r}, kind={self._kind!r})"

    def _live_ids(self) -> np.ndarray:
        return np.fromiter(sorted(self._key_to_id.values()), dtype=np.int64, count=len(self._key_to_id))

    # ------------------------------------------------------------ knobs
    @property
    def nprobe(self):
        return self._knobs.get("nprobe")

    @nprobe.setter
    def nprobe(self, value):
        self.set_params(nprobe=value)

    @property
    def ef_search(self):
        return self._knobs.get("ef_search")

    @ef_search.setter
    def ef_search(self, value):
        self.set_params(ef_search=value)

    def set_params(self, **knobs) -> None:
        """Change search knobs: ``nprobe`` (IVF), ``ef_search`` (HNSW), ``refine`` (ivfpq)."""
        allowed = {"nprobe": (1, 10**7), "ef_search": (1, 100000), "refine": (1, 1000)}
        with self._lock.write():
            for name, value in knobs.items():
                if name not in allowed:
                    raise InputError(f"unknown search knob {name!r}; settable: {', '.join(allowed)}")
                self._knobs[name] = check_int("VectorIndex", name, value, *allowed[name])
            if self._faiss is not None:
                F.apply_search_knobs(self._faiss, self._knobs)
            self._search_params = None

    # ----------------------------------------------------------- writing
    def _prepare(self, keys, vectors, what="add") -> tuple[list[str], np.ndarray, np.ndarray]:
        if isinstance(keys, str):
            keys = [keys]
        keys = list(keys)
        for i, k in enumerate(keys):
            if not isinstance(k, str):
                if isinstance(k, np.str_):
                    keys[i] = str(k)
                else:
                    raise InputError(f"{what}: keys must be strings; key #{i} is {type(k).__name__} {k!r}")
        vecs = F.as_query_array(vectors, self._dim, what="vectors")
        if vecs.shape[0] != len(keys):
            raise InputError(f"{what}: {len(keys)} keys but {vecs.shape[0]} vectors; give one vector per key")
        seen = set()
        for k in keys:
            if k in seen:
                raise InputError(f"{what}: key {k!r} appears twice in one call; keys must be unique")
            seen.add(k)
        return keys, vecs, self._for_faiss(vecs, keys)

    def _for_faiss(self, vecs: np.ndarray, keys=None) -> np.ndarray:
        if self._metric != "cosine":
            return vecs
        with np.errstate(over="ignore"):
            norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        big = np.isinf(norms[:, 0])
        if big.any():  # entries above ~1.8e19 overflow float32 squares: take those norms in float64
            norms = norms.astype(np.float64)
            norms[big] = np.linalg.norm(vecs[big].astype(np.float64), axis=1, keepdims=True)
        if (norms == 0).any():
            row = int(np.where(norms[:, 0] == 0)[0][0])
            label = f"key {keys[row]!r}" if keys is not None else f"row {row}"
            raise InputError(f"{label} has an all-zero vector, which has no cosine direction; "
                             "remove it or use metric='ip' or 'l2'")
        return np.ascontiguousarray(vecs / norms, dtype=np.float32)

    def add(self, keys: Sequence[str], vectors, *, show_progress: bool = False) -> None:
        """Add new items; a key already present raises ValueError naming it (use upsert)."""
        keys, vecs, fvecs = self._prepare(keys, vectors, "add")
        with self._lock.write():
            for k in keys:
                if k in self._key_to_id:
                    raise InputError(f"add: key {k!r} is already in the index; use upsert() to replace it")
            self._insert(keys, vecs, fvecs, show_progress=show_progress)

    def upsert(self, keys: Sequence[str], vectors) -> None:
        """Insert new items and replace the vectors of keys already present."""
        keys, vecs, fvecs = self._prepare(keys, vectors, "upsert")
        with self._lock.write():
            old = [self._key_to_id[k] for k in keys if k in self._key_to_id]
            if old:
                self._delete_ids(old)
            self._insert(keys, vecs, fvecs)

    def remove(self, keys: Sequence[str], missing_ok: bool = False) -> int:
        """Remove items by key; returns how many were removed. Unknown keys raise KeyError."""
        if isinstance(keys, str):
            keys = [keys]
        keys = list(keys)
        with self._lock.write():
            ids = []
            for k in keys:
                i = self._key_to_id.get(k)
                if i is None:
                    if not missing_ok:
                        raise MissingKeyError(f"remove: key {k!r} is not in the index")
                    continue
                ids.append(i)
            ids = sorted(set(ids))
            if ids:
                self._delete_ids(ids)
            self._maybe_compact()
            return len(ids)

    def _make_writable(self):
        """A memory-mapped FAISS index is read-only: copy it into memory before the first write."""
        if getattr(self, "_mmapped", False):
            import faiss

            self._faiss = faiss.deserialize_index(faiss.serialize_index(self._faiss))
            F.apply_search_knobs(self._faiss, self._knobs)
            self._search_params = None
            self._mmapped = False

    def _insert(self, keys, vecs, fvecs, show_progress: bool = False):
        self._make_writable()
        if self._faiss is None:
            self._create_faiss(fvecs)
        n = len(keys)
        start = self._next_id
        self._grow(start + n)
        ids = np.arange(start, start + n, dtype=np.int64)
        if show_progress and n > _PROGRESS_CHUNK:  # building a big HNSW graph takes minutes: show it
            from tqdm.auto import tqdm

            with tqdm(total=n, desc=f"indexing ({self._kind})", unit="vec") as bar:
                for lo in range(0, n, _PROGRESS_CHUNK):
                    hi = min(n, lo + _PROGRESS_CHUNK)
                    self._faiss_add(fvecs[lo:hi], ids[lo:hi])
                    bar.update(hi - lo)
        else:
            self._faiss_add(fvecs, ids)
        self._vecs[start:start + n] = vecs
        self._id_key[start:start + n] = keys
        for k, i in zip(keys, range(start, start + n)):
            self._key_to_id[k] = i
        self._next_id = start + n

    def _faiss_add(self, fvecs, ids):
        if self._ids_native:
            self._faiss.add_with_ids(fvecs, ids)
        else:  # FAISS numbers items in add order: position == id
            if len(ids) and self._faiss.ntotal != int(ids[0]):
                raise RuntimeError(f"internal: FAISS holds {self._faiss.ntotal} items, expected {int(ids[0])}")
            self._faiss.add(fvecs)

    def _grow(self, needed: int):
        cap = self._vecs.shape[0]
        if needed <= cap and self._vecs.flags.writeable:
            return
        new_cap = max(needed, int(cap * 1.5) + 16) if needed > cap else cap
        vecs = np.empty((new_cap, self._dim), dtype=np.float32)
        vecs[:self._next_id] = self._vecs[:self._next_id]
        keys = np.empty(new_cap, dtype=object)
        keys[:self._next_id] = self._id_key[:self._next_id]
        self._vecs, self._id_key = vecs, keys

    def _create_faiss(self, first_batch: np.ndarray):
        n = first_batch.shape[0]
        kind = F.resolve_kind(self._kind, n)
        if kind in F.KINDS:
            F.check_training_size(kind, n, self._knobs)
            self._factory = F.factory_string(kind, self._dim, self._knobs, n)
        index, native = F.build(kind, self._factory, self._dim, self._metric, self._knobs)
        if not index.is_trained:
            F.check_training_size(kind, n, self._knobs)
            try:
                index.train(first_batch)
            except RuntimeError as exc:
                msg = str(exc).strip().splitlines()[-1]
                raise InputError(f"training kind={self._factory!r} on {n} vectors failed ({msg}); "
                                 "add more vectors in the first add() or use kind='flat'") from None
        F.apply_search_knobs(index, self._knobs)
        self._kind = kind
        self._faiss, self._ids_native = index, native
        self._hnsw = F.is_hnsw(index)
        self._native_remove = native and not self._hnsw

    def _delete_ids(self, ids):
        self._make_writable()
        ids = np.asarray(ids, dtype=np.int64)
        for i in ids.tolist():
            del self._key_to_id[self._id_key[i]]
            self._id_key[i] = None
        if self._native_remove:
            import faiss

            try:
                self._faiss.remove_ids(faiss.IDSelectorBatch(ids))
                return
            except RuntimeError:  # this FAISS type cannot delete: fall back to tombstones
                self._native_remove = False
        self._tombstones.update(ids.tolist())
        self._search_params = None

    def _maybe_compact(self):
        dead = self._next_id - len(self._key_to_id)
        if self._tombstones and len(self._tombstones) > self._rebuild_fraction * max(1, self._faiss.ntotal):
            self._compact()
        elif dead > 1024 and dead > 0.5 * self._next_id:
            self._compact()

    def _compact(self):
        """Renumber live items 0..n-1 and rebuild the FAISS index without deleted items."""
        live = self._live_ids()
        keys = [self._id_key[i] for i in live]
        vecs = self._vecs[live].copy()
        log.info("rebuilding %s index: %d live items, %d deleted", self._kind, len(keys), self._next_id - len(keys))
        faiss_index = self._faiss
        self._reset_storage(len(keys))
        if self._ids_native and faiss_index is not None:  # IVF: keep the trained quantizer
            faiss_index.reset()
            self._faiss = faiss_index
        else:
            self._faiss = None
            kind = self._kind
            index, native = F.build(kind, self._factory, self._dim, self._metric, self._knobs)
            F.apply_search_knobs(index, self._knobs)
            self._faiss, self._ids_native = index, native
        if keys:
            self._insert(keys, vecs, self._for_faiss(vecs))

    def rebuild(self) -> None:
        """Drop deleted items for good and rebuild the FAISS structure (done automatically)."""
        with self._lock.write():
            if self._faiss is not None:
                self._compact()

    # ------------------------------------------------------------ reading
    def get_vectors(self, keys: Sequence[str]) -> np.ndarray:
        """The stored vectors (as given, before any normalisation) of these keys."""
        if isinstance(keys, str):
            keys = [keys]
        with self._lock.read():
            ids = [self._id_of(k) for k in keys]
            return self._vecs[ids].copy() if ids else np.empty((0, self._dim), np.float32)

    def _id_of(self, key):
        i = self._key_to_id.get(key)
        if i is None:
            raise MissingKeyError(f"key {key!r} is not in the index ({len(self)} items)")
        return i

    def to_embeddings(self):
        """All live items as :class:`~embedkit.Embeddings`."""
        from ..embeddings import Embeddings

        with self._lock.read():
            live = self._live_ids()
            return Embeddings([self._id_key[i] for i in live], self._vecs[live], meta=dict(self.meta))

    def search(self, queries, k: int = 10) -> SearchResult:
        """The k nearest items of each query vector; queries of shape (m, dim) or (dim,)."""
        k = check_int("search", "k", k, 1, None) if not (isinstance(k, int) and k >= 1) else k
        fq = self._one_query(queries)
        if fq is None:  # batches, other dtypes, and anything the general checks must explain
            q = F.as_query_array(queries, self._dim)
            fq = self._for_faiss(q)
        with self._lock.read():
            return self._search(fq, k, exclude=None)

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

    def search_keys(self, keys: Sequence[str], k: int = 10) -> SearchResult:
        """The k nearest neighbours of stored items, each item itself excluded."""
        k = check_int("search_keys", "k", k, 1, None) if not (isinstance(k, int) and k >= 1) else k
        if isinstance(keys, str):
            with self._lock.read():  # one key: no list, no fancy-index copy, no general norm
                i = self._id_of(keys)
                fq = self._one_query(self._vecs[i])
                if fq is None:
                    fq = self._for_faiss(self._vecs[i:i + 1])
                return self._search(fq, k, exclude=np.array([i], dtype=np.int64))
        with self._lock.read():
            ids = np.array([self._id_of(key) for key in keys], dtype=np.int64)
            fq = self._for_faiss(self._vecs[ids]) if len(ids) else np.empty((0, self._dim), np.float32)
            return self._search(fq, k, exclude=ids)

    def _params(self):
        """Search parameters that skip tombstones, or None.

        The selector is cached, but the parameters object is made per search: FAISS's IndexIDMap
        temporarily rewrites ``params.sel`` during a search (a const_cast), so sharing one
        object between concurrent searches crashes. The returned tuple owns the SWIG objects
        FAISS reads with the GIL released; callers hold it until the search returns.
        """
        if not self._tombstones:
            return None
        import faiss

        cached = self._search_params
        if cached is None:
            batch = faiss.IDSelectorBatch(np.fromiter(self._tombstones, dtype=np.int64))
            cached = (faiss.IDSelectorNot(batch), batch)
            self._search_params = cached
        if self._hnsw:
            params = faiss.SearchParametersHNSW(sel=cached[0], efSearch=int(self._knobs["ef_search"]))
        else:
            params = faiss.SearchParameters(sel=cached[0])
        return (params, *cached)

    def _search(self, fq: np.ndarray, k: int, exclude) -> SearchResult:
        m = fq.shape[0]
        n = len(self._key_to_id)
        want = min(k, n - 1) if exclude is not None else min(k, n)
        if m == 0 or want <= 0:
            return SearchResult([[] for _ in range(m)], np.empty((m, 0), dtype=np.float32))
        fetch = want + (1 if exclude is not None else 0)
        if self._kind == "ivfpq":
            fetch = min(n, fetch * int(self._knobs["refine"]))
        held = self._params()
        D, I = _faiss_search(self._faiss, fq, fetch, None if held is None else held[0])
        del held
        if self._kind == "ivfpq":
            D, I = rerank(self, fq, I)
        if exclude is not None:
            D, I = drop_self(D, I, exclude)
        D, I = D[:, :want], I[:, :want]
        # FAISS sorts its answers, so a short row ends in -1: looking at the last column is
        # enough (a scalar test for one query saves a numpy reduction per search)
        if (I[0, -1] < 0) if m == 1 else (I[:, -1] < 0).any():
            D, I = fill_missing(self, fq, D, I, want, exclude)
        keys = self._id_key[I].tolist()
        if self._metric == "l2":
            D = np.sqrt(np.maximum(D, 0))
        return SearchResult(keys, D.astype(np.float32, copy=False))

    # ------------------------------------------------------------ persistence
    def save(self, path, *, meta: dict | None = None, extras: dict | None = None) -> None:
        """Save to a directory atomically (temporary directory, fsync, rename)."""
        from ._persist import save_index

        with self._lock.read():
            save_index(self, path, meta=meta, extras=extras)

    @classmethod
    def load(cls, path, mmap: bool = False, verify: bool = True) -> "VectorIndex":
        """Load a saved directory; refuses damaged, truncated or newer-format stores."""
        from ._persist import load_index

        return load_index(cls, path, mmap=mmap, verify=verify)

    @staticmethod
    def read_manifest(path) -> dict:
        from ._persist import read_manifest

        return read_manifest(path)

    @staticmethod
    def load_extra(path, name: str) -> dict:
        """Arrays saved with ``save(extras={name: {...}})``, checksum-verified."""
        from ._persist import load_extra

        return load_extra(path, name)
