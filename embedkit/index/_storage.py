"""Storage: everything a VectorIndex holds besides its lock and ``meta``.

One object owns the FAISS index, the vectors by id (as given, before normalisation: our own
copy for cosine, IVF and PQ; read back from FAISS's flat storage for flat/HNSW with ip/l2), the
id <-> key maps (an object array of keys by id and a :class:`~embedkit.index._keymap.KeyMap`),
the live mask, the tombstones (ids deleted but still inside FAISS), the payload columns and the
build/search knobs, and is the only code that changes them. :class:`~embedkit.index.VectorIndex`
validates input, takes its read/write lock and calls these methods; ``_persist`` saves
:meth:`Storage.state` and loads through :meth:`Storage.from_state`; ``_search`` reads vectors
through :meth:`ready` / :meth:`given`, ``metric``, :meth:`live_ids` and :meth:`for_faiss`.
Storage itself takes no lock: callers hold the VectorIndex lock (read for reading methods,
write for the others).

Ids are never reused: an item gets ``next_id`` when inserted; removal frees its key and, where
FAISS cannot delete (HNSW), leaves a tombstone; compaction renumbers live items 0..n-1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..embeddings import missing_key_error
from ..errors import InputError
from . import _factory as F
from ._keymap import KeyMap
from ._payload import Columns
from ._search import (
    Allowed,
    SearchResult,
    drop_self,
    faiss_search,
    fill_missing,
    filtered_search,
    rerank,
    search_skipping_tombstones,
)

log = logging.getLogger(__name__)
_PROGRESS_CHUNK = 20_000


@dataclass
class State:
    """What a saved index holds (see ``_persist`` for the files): the live items in id order
    with their ids, plus the facts needed to rebuild a Storage around a FAISS index."""

    dim: int
    metric: str
    kind: str
    factory: str | None
    knobs: dict
    rebuild_fraction: float
    next_id: int
    ids: np.ndarray            # int64 ids of the live items, ascending
    keys: list                 # their keys
    vectors: np.ndarray        # (len(ids), dim) float32, as given
    tombstones: np.ndarray     # int64 ids deleted but still inside FAISS
    faiss: object = None       # the FAISS index, None before the first add
    mmapped: bool = False      # FAISS index memory-mapped read-only (copied on the first write)
    payload: dict | None = None  # per-item payload columns as named numpy arrays (no objects), aligned with ids


class Storage:
    """FAISS index + vectors + key maps + tombstones + knobs of one VectorIndex (see module doc)."""

    def __init__(self, dim: int, metric: str, kind: str, knobs: dict, rebuild_fraction: float):
        self.dim = dim
        self.metric = metric
        self.kind = kind                  # our kind, or a FAISS factory string; "auto" until the first add
        self.knobs = knobs
        self.rebuild_fraction = rebuild_fraction
        self.faiss = None
        self.factory: str | None = None  # FAISS factory string
        self.ids_native = False          # add_with_ids (IVF, id maps) vs FAISS numbering items itself
        self.hnsw = False                # the FAISS index contains HNSW (searches need efSearch params)
        self.native_remove = False       # remove_ids works (else tombstones)
        self.params_refused = False      # FAISS refuses search parameters (tombstone selector): search_live
        self.mmapped = False
        self.copy = True                 # keep our own copy of the vectors (else read them from FAISS)
        self.xb_ok = False               # FAISS holds the FAISS-ready vectors in a flat storage we can read
        self.reset()
        if kind not in F.KINDS:  # validate a factory string now, not at the first add
            self.factory = self._factory_string(kind, 0)
            F.build(kind, self.factory, dim, metric, knobs)

    def reset(self, capacity: int = 0) -> None:
        # by id: vectors as given, kept where FAISS cannot give them back as given (IVF, PQ,
        # factory strings; cosine unless knob cosine_one_copy: FAISS holds them unit length);
        # flat and HNSW read them from FAISS's own storage (one copy in memory), with the norms
        # of cosine vectors in ``norms`` when cosine_one_copy is set
        self.vecs = np.empty((capacity if self.copy else 0, self.dim), dtype=np.float32)
        self.norms = np.empty(capacity if (not self.copy and self.metric == "cosine") else 0, dtype=np.float32)
        self._xb_cache = None
        self._live_cache = None
        self.id_key = np.empty(capacity, dtype=object)                 # by id: key, None when dead
        self.key_to_id = KeyMap(self)                                   # key -> id (hash arrays)
        self.alive = np.zeros(capacity, dtype=bool)                     # by id: live item
        self.next_id = 0
        self.tombstones: set[int] = set()
        self.search_params = None  # cached IDSelector for the tombstones
        self.payload = Columns(capacity)                                # by id: payload columns
        self.version = getattr(self, "version", 0) + 1  # bumped by every write (caches check it); never goes back
        self._mask_cache = None

    def _factory_string(self, kind: str, n_train: int) -> str:
        factory, filled = F.factory_string(kind, self.dim, self.knobs, n_train)
        self.knobs.update(filled)
        return factory

    # ------------------------------------------------------------ reading
    def live_ids(self) -> np.ndarray:
        cache = self._live_cache
        if cache is not None and cache[0] == self.version:
            return cache[1]
        live = np.flatnonzero(self.alive[:self.next_id]).astype(np.int64, copy=False)
        live.flags.writeable = False
        self._live_cache = (self.version, live)
        return live

    # ------------------------------------------------------------ vectors
    def _xb(self) -> np.ndarray:
        """FAISS's flat storage as an (ntotal, dim) float32 view (valid until the next write)."""
        cache = self._xb_cache
        nt = int(self.faiss.ntotal)
        if cache is not None and cache[0] == self.version and cache[1] is self.faiss and cache[2] == nt:
            return cache[3]
        import faiss

        flat = F.flat_storage(self.faiss)
        view = (faiss.rev_swig_ptr(flat.get_xb(), nt * self.dim).reshape(nt, self.dim) if nt
                else np.empty((0, self.dim), dtype=np.float32))
        self._xb_cache = (self.version, self.faiss, nt, view)
        return view

    def _pos(self, ids):
        """Positions in FAISS's storage of ids: the id itself (HNSW) or its rank among live ids
        (flat: FAISS removes in place and keeps the order)."""
        if not self.ids_native:
            return ids
        return np.searchsorted(self.live_ids(), ids)

    def ready(self, ids) -> np.ndarray:
        """Vectors of ids as FAISS holds them (unit length for cosine), a new (len, dim) array:
        read from FAISS's flat storage where there is one (no normalising), else from our copy."""
        if self.xb_ok:
            return self._xb()[self._pos(ids)]
        return self.for_faiss(self.vecs[ids])

    def ready_all(self, live) -> np.ndarray:
        """:meth:`ready` of every live id (``live`` = :meth:`live_ids`); a view when FAISS holds
        exactly the live items."""
        if self.xb_ok and len(live) == self.faiss.ntotal:
            return self._xb()
        return self.ready(live)

    def ready_one(self, i: int) -> np.ndarray:
        """(1, dim) FAISS-ready vector of id ``i`` (a view into FAISS's storage when possible)."""
        if self.copy:
            x = self.vecs[i]
            if self.metric != "cosine":
                return x.reshape(1, -1)
            sq = np.add.reduce(x * x)  # as VectorIndex._one_query: bit-identical to for_faiss
            if 0.0 < sq < np.inf:
                return (x / np.sqrt(sq)).reshape(1, -1)
            return self.for_faiss(self.vecs[i:i + 1])
        p = int(self._pos(i))
        return self._xb()[p:p + 1]

    def given(self, ids) -> np.ndarray:
        """Vectors of ids as given (cosine: FAISS's unit vector times the stored norm, equal to the
        input up to float32 rounding), a new (len, dim) array."""
        if self.copy:
            return self.vecs[ids]
        x = self._xb()[self._pos(ids)]
        if self.metric == "cosine":
            x *= self.norms[ids][:, None]
        return x

    def rows_of(self, keys) -> list[int]:
        """Ids of those keys that are present (for the filter's ``$key``)."""
        get = self.key_to_id.get
        return [i for i in (get(k) for k in keys if isinstance(k, str)) if i is not None]

    def filter_mask(self, flt) -> Allowed:
        """The live items matching a compiled filter (an :class:`~embedkit.index._search.Allowed`
        over a bool mask by id); the last one is cached until the next write (repeated single
        queries with one filter)."""
        cache = self._mask_cache
        if cache is not None and cache[0] == flt.key and cache[1] == self.version:
            return cache[2]
        mask = flt.mask(self.payload, self.next_id, self.rows_of)
        mask &= self.alive[:self.next_id]
        mask.flags.writeable = False
        allowed = Allowed(mask)
        self._mask_cache = (flt.key, self.version, allowed)
        return allowed

    def id_of(self, key) -> int:
        i = self.key_to_id.get(key)
        if i is None:
            raise self.missing(key)
        return i

    def missing(self, key, what: str = ""):
        """MissingKeyError for ``key``: close matches among the live keys (worked out only when
        the message is read), or the rule that keys are strings for an int."""
        return missing_key_error(key, "the index", len(self.key_to_id), self.live_keys, prefix=what)

    def live_keys(self) -> list:
        return self.id_key[self.live_ids()].tolist()

    def for_faiss(self, vecs: np.ndarray, keys=None) -> np.ndarray:
        """Vectors as FAISS stores them: unit length for cosine (zero vectors refused), else as given."""
        if self.metric != "cosine":
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

    def _params(self):
        """Search parameters that skip tombstones, or None.

        The selector is cached, but the parameters object is made per search: FAISS's IndexIDMap
        temporarily rewrites ``params.sel`` during a search (a const_cast), so sharing one
        object between concurrent searches crashes. The returned tuple owns the SWIG objects
        FAISS reads with the GIL released; callers hold it until the search returns.
        """
        if not self.tombstones:
            return None
        import faiss

        cached = self.search_params
        if cached is None:
            batch = faiss.IDSelectorBatch(np.fromiter(self.tombstones, dtype=np.int64))
            cached = (faiss.IDSelectorNot(batch), batch)
            self.search_params = cached
        if self.hnsw:
            params = faiss.SearchParametersHNSW(sel=cached[0], efSearch=int(self.knobs["ef_search"]))
        else:
            params = faiss.SearchParameters(sel=cached[0])
        return (params, *cached)

    def search(self, fq: np.ndarray, k: int, exclude, mask=None) -> SearchResult:
        """k nearest live items of FAISS-ready queries ``fq``; ``exclude``: each query's own id or None;
        ``mask``: the items allowed (an Allowed from :meth:`filter_mask`), or None for all."""
        if mask is not None:
            D, I = filtered_search(self, fq, k, exclude, mask)
            return SearchResult(self.id_key[I].tolist(), D)
        m = fq.shape[0]
        n = len(self.key_to_id)
        want = min(k, n - 1) if exclude is not None else min(k, n)
        if m == 0 or want <= 0:
            return SearchResult([[] for _ in range(m)], np.empty((m, 0), dtype=np.float32))
        fetch = want + (1 if exclude is not None else 0)
        if self.kind == "ivfpq":
            fetch = min(n, fetch * int(self.knobs["refine"]))
        D, I = search_skipping_tombstones(self, fq, fetch)
        if self.kind == "ivfpq":
            D, I = rerank(self, fq, I)
        if exclude is not None:
            D, I = drop_self(D, I, exclude)
        D, I = D[:, :want], I[:, :want]
        if self.metric == "l2":  # FAISS and rerank give squared distances; we report distances
            D = np.sqrt(np.maximum(D, 0))
        # FAISS sorts its answers, so a short row ends in -1: looking at the last column is
        # enough (a scalar test for one query saves a numpy reduction per search)
        if (I[0, -1] < 0) if m == 1 else (I[:, -1] < 0).any():
            D, I = fill_missing(self, fq, D, I, want, exclude)  # whole rows, scores as reported
        keys = self.id_key[I].tolist()
        return SearchResult(keys, D.astype(np.float32, copy=False))

    # ------------------------------------------------------------ writing
    def set_knobs(self, knobs: dict) -> None:
        self.knobs.update(knobs)
        if self.faiss is not None:
            F.apply_search_knobs(self.faiss, self.knobs)
        self.search_params = None

    def set_payload(self, ids, rows) -> None:
        """Replace the payload of live ids with checked dicts (fields not named become absent)."""
        self.version += 1
        self.payload.grow(self.id_key.shape[0])
        self.payload.write(ids, rows, replace=True)

    def _make_writable(self):
        """A memory-mapped FAISS index is read-only: copy it into memory before the first write."""
        if self.mmapped:
            import faiss

            self.faiss = faiss.deserialize_index(faiss.serialize_index(self.faiss))
            F.apply_search_knobs(self.faiss, self.knobs)
            self.search_params = None
            self.mmapped = False

    def insert(self, keys, vecs, fvecs, show_progress: bool = False, payload=None, norms=None, replace=None):
        """Add new keys (not present) with their vectors as given and as FAISS stores them;
        ``payload``: checked dicts (one per key) or None; ``norms``: the norms of ``vecs``
        (cosine; computed when None); ``replace``: ids of the items they replace (upsert), deleted
        once FAISS holds the new vectors. When FAISS refuses the vectors nothing changes (InputError)."""
        self._make_writable()
        self.version += 1
        first = self.faiss is None
        if first:
            self._create_faiss(fvecs)
        n = len(keys)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        if not self.ids_native and n and self.faiss.ntotal != int(ids[0]):
            raise RuntimeError(f"internal: FAISS holds {self.faiss.ntotal} items, expected {int(ids[0])}")
        doing = f"add {n} vectors of dim={self.dim}"
        try:
            self._faiss_add(fvecs, ids, show_progress)
            if first and n and self.kind not in F.KINDS:  # a factory string FAISS cannot search (PQ4x1 at
                doing = f"search vectors of dim={self.dim}"  # dim 8): said now, not at every search
                faiss_search(self.faiss, fvecs[:1], 1, None)
        except (RuntimeError, MemoryError) as exc:
            if first:
                self._drop_faiss()
            elif F.builds_once(self.faiss) and self.compact(extra=(keys, vecs, fvecs, payload, replace)):
                return  # NSG refuses a second add: rebuilt with the new items (other kinds: the error stands)
            raise F.faiss_error(self.kind, doing, exc, "nothing was added; use another kind, e.g. 'hnsw'") from None
        if replace is not None and len(replace):
            self.delete_ids(replace)
        self._record(keys, vecs, ids, payload, norms)

    def _record(self, keys, vecs, ids, payload=None, norms=None):
        """Our side of an insert: FAISS already holds the vectors under ``ids`` (next_id onwards)."""
        n = len(keys)
        start = self.next_id
        self._grow(start + n)
        if self.copy:
            self.vecs[start:start + n] = vecs
        elif self.metric == "cosine":
            self.norms[start:start + n] = np.linalg.norm(vecs, axis=1) if norms is None else norms
        self.version += 1  # FAISS's storage moved: views of it are stale
        self.id_key[start:start + n] = keys
        self.alive[start:start + n] = True
        self.key_to_id.add(keys, ids)
        self.next_id = start + n
        if payload is not None:
            self.payload.write(ids, payload, replace=False)

    def _faiss_add(self, fvecs, ids, show_progress: bool = False):
        # FAISS numbers items in add order where it has no add_with_ids: position == id
        add = self.faiss.add_with_ids if self.ids_native else (lambda x, _: self.faiss.add(x))
        # a factory string is added in one call: a refusal after some chunks could not be undone
        if show_progress and len(ids) > _PROGRESS_CHUNK and self.kind in F.KINDS:  # big HNSW builds take minutes
            from tqdm.auto import tqdm

            with tqdm(total=len(ids), desc=f"indexing ({self.kind})", unit="vec") as bar:
                for lo in range(0, len(ids), _PROGRESS_CHUNK):
                    hi = min(len(ids), lo + _PROGRESS_CHUNK)
                    add(fvecs[lo:hi], ids[lo:hi])
                    bar.update(hi - lo)
        else:
            add(fvecs, ids)

    def _drop_faiss(self) -> None:
        """Back to no FAISS index, after FAISS refused the first add: the next add starts afresh."""
        self.faiss, self.copy, self.xb_ok = None, True, False
        self.ids_native = self.hnsw = self.native_remove = False
        self.reset()

    def _grow(self, needed: int):
        cap = self.id_key.shape[0]
        if needed <= cap and (not self.copy or self.vecs.flags.writeable):
            return
        new_cap = max(needed, int(cap * 1.5) + 16) if needed > cap else cap
        if self.copy:
            vecs = np.empty((new_cap, self.dim), dtype=np.float32)
            vecs[:self.next_id] = self.vecs[:self.next_id]
        else:
            vecs = self.vecs
            if self.metric == "cosine":
                norms = np.empty(new_cap, dtype=np.float32)
                norms[:self.next_id] = self.norms[:self.next_id]
                self.norms = norms
        keys = np.empty(new_cap, dtype=object)
        keys[:self.next_id] = self.id_key[:self.next_id]
        alive = np.zeros(new_cap, dtype=bool)
        alive[:self.next_id] = self.alive[:self.next_id]
        self.vecs, self.id_key, self.alive = vecs, keys, alive
        self.payload.grow(new_cap)

    def _set_faiss(self, index, native: bool) -> None:
        # one copy in memory where FAISS holds the vectors exactly as given (flat and HNSW with
        # ip/l2); cosine keeps its own copy (FAISS holds unit vectors, and unit * norm differs from
        # the input in the last bit, while get_vectors / to_embeddings / exports promise the
        # input) unless the index was made with exact_vectors=False (knob cosine_one_copy=1)
        one_copy = (F.flat_storage(index) is not None
                    and (self.metric != "cosine" or bool(self.knobs.get("cosine_one_copy"))))
        if one_copy and self.copy:  # from now on the vectors live in FAISS only
            self.copy = False
            self.vecs = np.empty((0, self.dim), dtype=np.float32)
            if self.metric == "cosine":
                self.norms = np.empty(self.id_key.shape[0], dtype=np.float32)
        elif not one_copy and not self.copy:
            raise RuntimeError("internal: an index without flat storage replaced one with it")
        self._xb_cache = None
        self.xb_ok = F.flat_storage(index) is not None  # FAISS's storage can be read back (flat, HNSW)
        self.faiss, self.ids_native = index, native
        self.params_refused = False  # set by the first search this index refuses parameters for
        self.hnsw = F.is_hnsw(index)
        self.native_remove = native and not self.hnsw

    def _create_faiss(self, first_batch: np.ndarray):
        n = first_batch.shape[0]
        kind = F.resolve_kind(self.kind, n)
        if kind in F.KINDS:
            F.check_training_size(kind, n, self.knobs)
            self.factory = self._factory_string(kind, n)
        index, native = F.build(kind, self.factory, self.dim, self.metric, self.knobs)
        if not index.is_trained:
            F.check_training_size(kind, n, self.knobs)
            try:
                index.train(first_batch)
            except (RuntimeError, MemoryError) as exc:
                raise InputError(f"training kind={self.factory!r} on {n} vectors failed ({F.faiss_reason(exc)}); "
                                 "add more vectors in the first add() or use kind='flat'") from None
        F.apply_search_knobs(index, self.knobs)
        self.kind = kind
        self._set_faiss(index, native)

    def delete_ids(self, ids):
        self._make_writable()
        self.version += 1
        ids = np.asarray(ids, dtype=np.int64)
        for i in ids.tolist():
            self.key_to_id.remove(self.id_key[i], i)
            self.id_key[i] = None
        self.alive[ids] = False
        if self.payload:
            self.payload.clear_rows(ids)
        if self.native_remove:
            import faiss

            try:
                if self.faiss.remove_ids(faiss.IDSelectorBatch(ids)) == len(ids):
                    return
            except RuntimeError:  # this FAISS type cannot delete
                pass
            self.native_remove = False  # tombstones from now on ("IVF8,SQ0" removes nothing; see maybe_compact)
        self.tombstones.update(ids.tolist())
        self.search_params = None

    def maybe_compact(self):
        dead = self.next_id - len(self.key_to_id)
        if self.tombstones and len(self.tombstones) > self.rebuild_fraction * max(1, self.faiss.ntotal):
            self.compact()
        elif self.faiss is not None and self.faiss.ntotal != len(self.key_to_id) + len(self.tombstones):
            self.compact()  # a remove_ids that removed only some
        elif dead > 1024 and dead > 0.5 * self.next_id:
            self.compact()

    def compact(self, extra=None) -> bool:
        """Renumber live items 0..n-1 and rebuild the FAISS index without deleted items.

        HNSW and other self-numbering indexes get a new empty FAISS index; IVF and any index
        whose new copy would need training again (a factory string such as "PCA32,HNSW32")
        keep their trained quantizer or transform and are only emptied.

        ``extra``: ``(keys, vecs, fvecs, payload, replace)`` of an :meth:`insert` that a
        self-numbering FAISS index refused (NSG builds once): the index is rebuilt new with them
        (``replace`` ids left out), or nothing changes when FAISS refuses that too (InputError);
        False when it could only be rebuilt in place (the caller reports its own error).
        """
        live = self.live_ids()
        if extra is not None and extra[4] is not None and len(extra[4]):
            live = np.setdiff1d(live, np.asarray(extra[4], dtype=np.int64))
        keys = self.id_key[live].tolist()
        vecs = self.given(live)
        fvecs = self.ready(live)
        norms = self.norms[live].copy() if (not self.copy and self.metric == "cosine") else None
        payload = self.payload.take(live)
        if extra is not None:
            keys += list(extra[0])
            vecs, fvecs = np.concatenate((vecs, extra[1])), np.concatenate((fvecs, extra[2]))
            if norms is not None:
                norms = np.concatenate((norms, np.linalg.norm(extra[1], axis=1)))
        log.info("rebuilding %s index: %d live items, %d deleted", self.kind, len(keys), self.next_id - len(live))
        fresh = None
        if not self.ids_native or extra is not None:
            fresh, native = F.build(self.kind, self.factory, self.dim, self.metric, self.knobs)
            if not fresh.is_trained:  # keep the trained transform / quantizer
                fresh = F.emptied_copy(self.faiss) if extra is not None else None
        ids = np.arange(len(keys), dtype=np.int64)
        if fresh is None:
            if extra is not None:
                return False
            self._make_writable()  # a memory-mapped index is copied before it is emptied
            self.faiss.reset()
            if len(keys):
                self._faiss_add(fvecs, ids)
        else:
            try:
                if len(keys):
                    fresh.add_with_ids(fvecs, ids) if native else fresh.add(fvecs)
            except RuntimeError as exc:
                fix = "nothing was added; use another kind, e.g. 'hnsw'" if extra is not None else "use another kind"
                raise F.faiss_error(self.kind, f"rebuild with {len(keys)} vectors of dim={self.dim}", exc, fix) from None
            F.apply_search_knobs(fresh, self.knobs)
            self._set_faiss(fresh, native)
            self.mmapped = False  # the new index lives in memory
        self.reset(len(keys))
        self._record(keys, vecs, ids, norms=norms)
        payload.grow(self.id_key.shape[0])
        self.payload = payload
        if extra is not None and extra[3] is not None:
            self.payload.write(ids[len(live):], extra[3], replace=False)
        return True

    # ------------------------------------------------------------ persistence
    def state(self) -> State:
        """The live content, for saving (arrays are views or copies; nothing is changed)."""
        live = self.live_ids()
        return State(
            dim=self.dim, metric=self.metric, kind=self.kind, factory=self.factory, knobs=dict(self.knobs),
            rebuild_fraction=self.rebuild_fraction, next_id=int(self.next_id), ids=live,
            keys=self.id_key[live].tolist(),
            vectors=self.given(live) if len(live) else np.empty((0, self.dim), np.float32),
            tombstones=np.fromiter(sorted(self.tombstones), dtype=np.int64), faiss=self.faiss,
            mmapped=self.mmapped, payload=self.payload.encode(live) or None)

    @classmethod
    def from_state(cls, state: State) -> "Storage":
        """A Storage around loaded content (unique keys); ``state.vectors`` may be memory-mapped
        (copied on the first growth)."""
        self = cls(state.dim, state.metric, "flat", dict(state.knobs), state.rebuild_fraction)  # builds nothing
        self.kind, self.factory = state.kind, state.factory
        if state.faiss is not None:
            F.apply_search_knobs(state.faiss, self.knobs)
            self._set_faiss(state.faiss, F.takes_ids(state.faiss))
            self.mmapped = bool(state.mmapped)
        ids, keys, next_id = state.ids, state.keys, int(state.next_id)
        _check_loaded(ids, keys, state.tombstones, next_id)
        dense = len(ids) == next_id and (len(ids) == 0 or (ids == np.arange(len(ids))).all())
        if not self.copy:  # the vectors are read from FAISS: check it holds them where we look
            from ..errors import StoreError

            want = len(ids) if self.ids_native else next_id
            if int(state.faiss.ntotal) != want:
                raise StoreError(f"index.faiss holds {int(state.faiss.ntotal)} vectors but the index lists {want}; "
                                 "the index is damaged, restore or rebuild it")
            self.vecs = np.empty((0, self.dim), dtype=np.float32)
            if self.metric == "cosine":
                self.norms = np.zeros(next_id, dtype=np.float32)
                for lo in range(0, len(ids), 65536):  # chunks: a memory-mapped file is read once, not copied
                    self.norms[ids[lo:lo + 65536]] = np.linalg.norm(state.vectors[lo:lo + 65536], axis=1)
        # rows by id: dense when ids are 0..n-1 (the common case) so vectors can stay memory-mapped
        if dense:
            if self.copy:
                self.vecs = state.vectors
            self.id_key = np.empty(len(keys), dtype=object)
            self.id_key[:] = keys
        else:
            if self.copy:
                self.vecs = np.zeros((next_id, self.dim), dtype=np.float32)
                self.vecs[ids] = state.vectors
            self.id_key = np.empty(next_id, dtype=object)
            self.id_key[ids] = keys
        self.key_to_id = KeyMap(self)
        self.key_to_id.rebuild(keys, ids)
        self.next_id = next_id
        self.alive = np.zeros(len(self.id_key), dtype=bool)
        self.alive[ids] = True
        self.tombstones = set(state.tombstones.tolist())
        payload = Columns.decode(state.payload, len(ids))
        self.payload = payload if len(ids) == next_id else payload.scatter(ids, next_id)
        return self


def _check_loaded(ids, keys, tombstones, next_id) -> None:
    """Refuse loaded id/key arrays that cannot belong together (one-line StoreError)."""
    from ..errors import StoreError

    def bad(what):
        return StoreError(f"{what}; the index is damaged, restore or rebuild it")

    if ids.dtype != np.int64 or ids.ndim != 1 or tombstones.dtype != np.int64 or tombstones.ndim != 1:
        raise bad("ids.npy or tombstones.npy is not a 1-D int64 array")
    if len(ids) and (ids[0] < 0 or ids[-1] >= next_id or (np.diff(ids) <= 0).any()):
        raise bad(f"ids.npy holds ids that are not ascending within 0..next_id-1 ({next_id})")
    if len(tombstones) and (tombstones.min() < 0 or tombstones.max() >= max(next_id, 1)):
        raise bad(f"tombstones.npy holds ids outside 0..next_id-1 ({next_id})")
    for i, k in enumerate(keys):
        if type(k) is not str:
            raise bad(f"keys.json entry {i} is {type(k).__name__}, not a string")
