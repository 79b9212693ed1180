"""VectorIndex: a FAISS index with string keys, upsert/remove for every kind, atomic save."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .._arrays import as_keys, as_vectors
from .._knn import METRICS
from .._validation import check_choice, check_float, check_int
from ..errors import InputError, MissingKeyError
from . import _factory as F
from ._rwlock import RWLock
from ._search import SearchResult
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
        self._lock = RWLock()
        self.meta: dict = {}
        # everything else (FAISS index, vectors, key maps, tombstones, knobs) lives in one object
        self._storage = Storage(self._dim, self._metric, kind, knobs, rebuild_fraction)

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
            return [st.id_key[i] for i in st.live_ids()]

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
        """Change search knobs: ``nprobe`` (IVF), ``ef_search`` (HNSW), ``refine`` (ivfpq)."""
        allowed = {"nprobe": (1, 10**7), "ef_search": (1, 100000), "refine": (1, 1000)}
        with self._lock.write():
            checked = {}
            for name, value in knobs.items():
                if name not in allowed:
                    raise InputError(f"unknown search knob {name!r}; settable: {', '.join(allowed)}")
                checked[name] = check_int("VectorIndex", name, value, *allowed[name])
            self._storage.set_knobs(checked)

    # ----------------------------------------------------------- writing
    def _prepare(self, keys, vectors, what="add") -> tuple[list[str], np.ndarray, np.ndarray]:
        keys = as_keys(keys, what=f"keys given to {what}()")
        vecs = as_vectors(vectors, what="vectors", dim=self._dim, n=len(keys), allow_1d=True, dim_of="the index")
        return keys, vecs, self._storage.for_faiss(vecs, keys)

    def add(self, keys: Sequence[str], vectors, *, show_progress: bool = False) -> None:
        """Add new items; a key already present raises ValueError naming it (use upsert)."""
        keys, vecs, fvecs = self._prepare(keys, vectors, "add")
        with self._lock.write():
            st = self._storage
            for k in keys:
                if k in st.key_to_id:
                    raise InputError(f"add: key {k!r} is already in the index; use upsert() to replace it")
            st.insert(keys, vecs, fvecs, show_progress=show_progress)

    def upsert(self, keys: Sequence[str], vectors) -> None:
        """Insert new items and replace the vectors of keys already present."""
        keys, vecs, fvecs = self._prepare(keys, vectors, "upsert")
        with self._lock.write():
            st = self._storage
            old = [st.key_to_id[k] for k in keys if k in st.key_to_id]
            if old:
                st.delete_ids(old)
            st.insert(keys, vecs, fvecs)

    def remove(self, keys: Sequence[str], missing_ok: bool = False) -> int:
        """Remove items by key; returns how many were removed. Unknown keys raise KeyError."""
        if isinstance(keys, str):
            keys = [keys]
        keys = list(keys)
        with self._lock.write():
            st = self._storage
            ids = []
            for k in keys:
                i = st.key_to_id.get(k)
                if i is None:
                    if not missing_ok:
                        raise MissingKeyError(f"remove: key {k!r} is not in the index")
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
        if isinstance(keys, str):
            keys = [keys]
        with self._lock.read():
            st = self._storage
            ids = [st.id_of(k) for k in keys]
            return st.vecs[ids].copy() if ids else np.empty((0, self._dim), np.float32)

    def to_embeddings(self):
        """All live items as :class:`~embedkit.Embeddings`."""
        from ..embeddings import Embeddings

        with self._lock.read():
            st = self._storage
            live = st.live_ids()
            return Embeddings([st.id_key[i] for i in live], st.vecs[live], meta=dict(self.meta))

    def search(self, queries, k: int = 10) -> SearchResult:
        """The k nearest items of each query vector; queries of shape (m, dim) or (dim,)."""
        k = check_int("search", "k", k, 1, None) if not (isinstance(k, int) and k >= 1) else k
        fq = self._one_query(queries)
        if fq is None:  # batches, other dtypes, and anything the general checks must explain
            q = as_vectors(queries, what="queries", dim=self._dim, allow_1d=True, dim_of="the index")
            fq = self._storage.for_faiss(q)
        with self._lock.read():
            return self._storage.search(fq, k, None)

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
                st = self._storage
                i = st.id_of(keys)
                fq = self._one_query(st.vecs[i])
                if fq is None:
                    fq = st.for_faiss(st.vecs[i:i + 1])
                return st.search(fq, k, np.array([i], dtype=np.int64))
        with self._lock.read():
            st = self._storage
            ids = np.array([st.id_of(key) for key in keys], dtype=np.int64)
            fq = st.for_faiss(st.vecs[ids]) if len(ids) else np.empty((0, self._dim), np.float32)
            return st.search(fq, k, ids)

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
