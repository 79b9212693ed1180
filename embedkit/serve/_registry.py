"""The indexes a running service holds: loading, journalled writes, compaction, reloading.

Reads go straight to the shared :class:`VectorIndex` (it is thread-safe). Writes to one index
are serialised by that index's lock: validate, append the write to the journal and fsync it,
apply it, reply. A background thread compacts a journal into a full atomic save once it holds
``compact_every`` writes or ``compact_bytes`` bytes, and at shutdown.

Other processes may replace or delete a served index (``embedkit train ... --force``,
``embedkit index build --force``). Every journal append and every compaction holds the store's
writer lock of that name (:meth:`Store.lock`) and first checks that the directory on disk is
still the copy the service loaded (compare-and-swap on the manifest's identity). So a rebuild
and the service's writes never interleave: a write acknowledged before the rebuild is in the
old copy's journal (replaced with it, as a rebuild intends), a write after it is reloaded onto
the new copy and journalled there, and a compaction never saves over a rebuilt copy: the
service drops its stale copy and reloads the new one on the next request.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .._arrays import as_keys, as_vectors
from ..errors import InputError, MissingKeyError, StoreError
from ..store import Store, check_name
from ..store import journal as J
from ..trainers.mf import MatrixFactorization, load_recommender
from ..trainers.mf.recommend import recommend_users
from ..trainers.mf.store import is_mf, read_model

log = logging.getLogger(__name__)


# Trainers whose store entries the service recommends from through load_recommender (their own
# ranking, as saved: writes to the index through the service do not change it). MatrixFactorization
# entries keep their own path: recommend_users over the index the service holds (writes count).
MODEL_RECOMMENDERS = ("HybridMF", "ItemKNN", "Popularity")


def recommender_kind(manifest: dict) -> str | None:
    """"mf" for a MatrixFactorization entry, "model" for the other recommenders, else None."""
    if is_mf(manifest):
        return "mf"
    return "model" if (manifest.get("meta") or {}).get("trainer") in MODEL_RECOMMENDERS else None


class Conflict(StoreError):
    """The index changed on disk under the service (deleted or replaced by another process)."""


WRITE_LOCK_TIMEOUT = 60.0  # seconds a write or compaction waits for another process's save


def _stamp(path) -> tuple | None:
    try:
        d = os.stat(path)
        st = os.stat(path / "manifest.json")
    except OSError:
        return None
    return (d.st_ino, st.st_ino, st.st_mtime_ns, st.st_size)


def _complete(cache: tuple, keys, prefix: str, limit: int) -> tuple[list[str], tuple]:
    """Keys starting with ``prefix`` (case-insensitive), sorted. ``cache`` is the (lower,
    ordered) pair of an earlier call or (None, None); ``keys()`` gives the keys when it is
    empty. Returns the keys found and the cache."""
    lower, ordered = cache
    if ordered is None:
        ordered = sorted(keys(), key=lambda s: (s.lower(), s))
        lower = [s.lower() for s in ordered]
    p = prefix.lower()
    i = bisect.bisect_left(lower, p)
    out = []
    while i < len(ordered) and len(out) < limit and lower[i].startswith(p):
        out.append(ordered[i])
        i += 1
    return out, (lower, ordered)


@dataclass
class Entry:
    """One loaded index and what the service keeps beside it."""

    name: str
    path: object
    index: object
    manifest: dict
    journal: J.Journal
    model: object | None  # the recommender saved with the index (MF, HybridMF, ItemKNN, Popularity) or None
    stamp: tuple | None
    kind: str | None = None  # recommender_kind(manifest): "mf", "model" or None
    lock: threading.Lock = field(default_factory=threading.Lock)
    version: int = 0
    _keys_cache: tuple = (None, None, None)
    _users_cache: tuple = (None, None)
    compact_pending: bool = False
    map_cache: dict = field(default_factory=dict)  # the page's 2-D map (serve/_map.py), per version

    def complete(self, prefix: str, limit: int) -> list[str]:
        """Keys starting with ``prefix`` (case-insensitive), sorted; cached between writes."""
        version, *cache = self._keys_cache
        out, cache = _complete(tuple(cache) if version == self.version else (None, None),
                               lambda: self.index.keys, prefix, limit)
        self._keys_cache = (self.version, *cache)
        return out

    # ------------------------------------------------------------------ recommendations
    def _user_keys(self) -> list[str]:
        if self.kind == "mf" or hasattr(self.model, "user_embeddings_"):
            return self.model.user_embeddings_.keys
        return self.model._user_keys  # Popularity / ItemKNN keep their users' keys with the seen matrix

    @property
    def n_users(self) -> int:
        return len(self._user_keys()) if self.model is not None else 0

    def complete_users(self, prefix: str, limit: int) -> list[str]:
        """Users starting with ``prefix`` (case-insensitive), sorted."""
        out, self._users_cache = _complete(self._users_cache, self._user_keys, prefix, limit)
        return out

    def history(self, user: str) -> list[tuple[str, float]]:
        """The user's training interactions as (item, value), strongest first (MissingKeyError
        for an unknown user)."""
        return self.model.history(user)

    def recommend(self, user: str, k: int, exclude_seen: bool = True, filter=None) -> list[tuple[str, float]]:
        """Top-``k`` items for ``user``, exact among the items ``filter`` allows. MF: the model's
        own ranking over the index this service holds (items upserted or removed through the
        service count at once). HybridMF / ItemKNN / Popularity: the model's ``recommend_batch``
        (its items as saved, cold-start items included)."""
        if self.kind == "mf":
            return recommend_users(self.model, [user], k=k, exclude_seen=exclude_seen, index=self.index,
                                   filter=filter)[0]
        return self.model.recommend_batch([user], k=k, exclude_seen=exclude_seen, filter=filter)[0]

    def item_payload(self, key: str) -> dict:
        """The payload of a recommended item: the index's, else (HybridMF's item features) the model's."""
        if key in self.index and self.index.payload_fields:
            return self.index.payload(key)
        rows = getattr(self.model, "_payload", None) if self.kind == "model" else None
        code = self.model._item_index.get(key) if rows is not None else None
        return dict(rows[code]) if code is not None else {}

    def model_payload_fields(self) -> dict:
        """Payload fields of the model's items (HybridMF item features) when the index has none."""
        rows = getattr(self.model, "_payload", None) if self.kind == "model" else None
        out: dict = {}
        for row in rows or ():
            for f, v in row.items():
                if f not in out and v is not None:
                    out[f] = ("bool" if isinstance(v, bool) else "int" if isinstance(v, int) else
                              "float" if isinstance(v, float) else "strlist" if isinstance(v, list) else "str")
        return out


class Registry:
    """Loads indexes from a Store on first use and runs their writes and compactions."""

    def __init__(self, store: Store, names=None, *, compact_every: int = 1000, compact_bytes: int = 64 << 20):
        self.store = store
        self.allowed = None if not names else [check_name(n) for n in names]
        self.compact_every = compact_every
        self.compact_bytes = compact_bytes
        self._entries: dict[str, Entry] = {}
        self._load_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._compactor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedkit-compact")
        self._closed = False

    # ------------------------------------------------------------------ lookup
    def names(self) -> list[str]:
        names = self.store.names()
        if self.allowed is not None:
            names = [n for n in self.allowed if n in names]
        return names

    def entries(self) -> list[dict]:
        """:meth:`Store.entries` of the served names: ``{"name", "damaged", "error", "manifest"}``
        each, a damaged index flagged instead of failing the whole listing (for GET /indexes)."""
        out = self.store.entries()
        if self.allowed is not None:
            out = [e for e in out if e["name"] in self.allowed]
        return out

    def peek(self, name: str) -> Entry | None:
        """The entry of ``name`` if it is loaded already (never loads)."""
        return self._entries.get(name)

    def _check_served(self, name: str) -> str:
        check_name(name)
        if self.allowed is not None and name not in self.allowed:
            raise MissingKeyError(f"index {name!r} is not served here (served: {', '.join(self.allowed)})")
        return name

    def get(self, name: str) -> Entry:
        """The loaded entry of ``name``; loads it (replaying its journal) on first use."""
        self._check_served(name)
        entry = self._entries.get(name)
        if entry is not None:
            if _stamp(entry.path) == entry.stamp:
                return entry
            # changed on disk: our own compaction swapping directories (it holds the lock; wait
            # for it), or another process replaced or deleted the index
            with entry.lock:
                now = _stamp(entry.path)
                if now == entry.stamp or self._entries.get(name) is not entry:
                    return self._entries.get(name) or self.get(name)
                if now is None:
                    entry.journal.close()
                    self._entries.pop(name, None)
                    raise MissingKeyError(f"index {name!r} was deleted from the store")
                log.warning("index %r was replaced on disk; reloading it", name)
                self._entries[name] = self._load(name, old=entry)
                return self._entries[name]
        with self._guard:
            lock = self._load_locks.setdefault(name, threading.Lock())
        with lock:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._load(name)
                self._entries[name] = entry
            return entry

    def _load(self, name: str, old: Entry | None = None) -> Entry:
        path = self.store.path(name)
        if not (path / "manifest.json").exists() and not self.store.exists(name):
            have = ", ".join(self.names()) or "none"
            raise MissingKeyError(f"no index named {name!r} in the store (indexes: {have})")
        if old is not None:
            old.journal.close()
        stamp = _stamp(path)
        manifest = self.store.info(name)
        # the journal is read once: replayed into the index, then its entry count and the length of
        # its intact part go to the Journal object (a torn last line is cut before the next append)
        index, entries, intact = self.store.load_journalled(name)
        if entries:
            log.info("index %r: loaded with %d journalled writes", name, len(entries))
        kind = recommender_kind(manifest)
        if kind == "mf":
            model = read_model(MatrixFactorization, name, self.store, manifest=manifest)
        elif kind == "model":
            model = load_recommender(name, self.store)
        else:
            model = None
        entry = Entry(name=name, path=path, index=index, manifest=manifest,
                      journal=J.Journal(path, intact, len(entries)), model=model, stamp=stamp, kind=kind,
                      version=(old.version + 1) if old else 0)
        if entries:
            self._schedule_compaction(entry)
        return entry

    # ------------------------------------------------------------------ writes
    def _check_still_ours(self, entry: Entry) -> None:
        if _stamp(entry.path) != entry.stamp:
            raise Conflict(f"index {entry.name!r} was deleted or replaced on disk while being served; "
                           "retry the write (the service reloads it)")

    def _write(self, name: str, fn):
        """Run ``fn(entry)`` under the entry's lock and the store's writer lock of ``name``, on the
        copy that is on disk now: if another process replaced it, reload and run again (once)."""
        for attempt in (0, 1):
            entry = self.get(name)
            with entry.lock:
                with self.store.lock(name, timeout=WRITE_LOCK_TIMEOUT, what="write"):
                    if _stamp(entry.path) == entry.stamp and self._entries.get(name) is entry:
                        result = fn(entry)
                        break
            if attempt:
                self._check_still_ours(entry)
        self._maybe_compact(entry)
        return result

    def upsert(self, name: str, keys: list[str], vectors, payload=None) -> int:
        """Insert or replace items; durable (journalled and fsynced) when this returns.
        ``payload``: one dict per key, replacing the items' payloads; None keeps existing ones."""
        def write(entry):
            vecs = check_vectors(entry.index, keys, vectors)
            rows = None if payload is None else check_payload(entry.index, keys, payload)
            _append(entry, J.encode_upsert(keys, vecs, payload=rows))
            try:
                entry.index.upsert(keys, vecs, payload=rows)
            finally:
                entry.version += 1
            return len(entry.index)

        return self._write(name, write)

    def remove(self, name: str, keys: list[str], missing_ok: bool = False) -> int:
        """Remove items; returns how many were present. Durable when this returns."""
        keys = list(dict.fromkeys(keys))

        def write(entry):
            present = [k for k in keys if k in entry.index]
            if not missing_ok and len(present) != len(keys):
                missing = next(k for k in keys if k not in entry.index)
                raise MissingKeyError(f"key {missing!r} is not in index {name!r}; nothing was removed")
            if present:
                _append(entry, J.encode_remove(present))
                try:
                    entry.index.remove(present, missing_ok=True)
                finally:
                    entry.version += 1
            return len(present)

        return self._write(name, write)

    # ------------------------------------------------------------------ compaction
    def _maybe_compact(self, entry: Entry) -> None:
        if entry.journal.entries >= self.compact_every or entry.journal.bytes >= self.compact_bytes:
            self._schedule_compaction(entry)

    def _schedule_compaction(self, entry: Entry) -> None:
        if entry.compact_pending or self._closed:
            return
        entry.compact_pending = True
        self._compactor.submit(self._compact_quietly, entry)

    def _compact_quietly(self, entry: Entry) -> None:
        try:
            self.compact(entry.name, entry)
        except Exception:  # the journal still holds every write: nothing is lost, retry later
            log.exception("compacting index %r failed; its journal keeps the writes", entry.name)
        finally:
            entry.compact_pending = False

    def compact(self, name: str, entry: Entry | None = None) -> int:
        """Fold the journal into a full atomic save; returns the number of entries folded."""
        entry = entry or self.get(name)
        with entry.lock:
            if entry.journal.entries == 0 or self._entries.get(name) is not entry:
                return 0
            with self.store.lock(name, timeout=WRITE_LOCK_TIMEOUT, what="compaction"):
                if _stamp(entry.path) != entry.stamp:
                    # replaced or deleted by another process: never save over it; drop our copy
                    # (its journal went with the directory it belonged to) and reload on next use
                    log.warning("index %r changed on disk; not compacting over it, reloading instead", name)
                    entry.journal.close()
                    if self._entries.get(name) is entry:
                        self._entries.pop(name, None)
                    return 0
                folded = entry.journal.entries
                extras = {x: self.store.load_extra(name, x) for x in entry.manifest.get("extras") or []}
                self.store.save(name, entry.index, meta=entry.index.meta, extras=extras, overwrite=True)
                entry.journal.close()
                entry.journal = J.Journal(entry.path)  # the new directory starts with no journal
                entry.stamp = _stamp(entry.path)
                entry.manifest = self.store.info(name)
            log.info("index %r: compacted %d journalled writes into a full save", name, folded)
            return folded

    def close(self) -> None:
        """Finish pending compactions, fold every journal into its index, close files."""
        self._closed = True
        self._compactor.shutdown(wait=True)
        for name, entry in list(self._entries.items()):
            try:
                self.compact(name, entry)
            except Exception:
                log.exception("compacting index %r at shutdown failed; its journal keeps the writes", name)
            entry.journal.close()


def _append(entry: Entry, record: dict) -> None:
    try:
        entry.journal.append(record)
    except OSError as exc:
        raise StoreError(f"the write was not saved, nothing changed: cannot append to {entry.journal.path} "
                         f"({exc})") from None


def check_payload(index, keys: list[str], payload) -> list[dict]:
    """Validate payloads before they are journalled (so a journalled write always applies): one
    dict per key, the index's value types (one-line InputError naming the key and field)."""
    return index._payload_rows(payload, keys, "upsert")


def check_vectors(index, keys: list[str], vectors) -> np.ndarray:
    """Validate an upsert before it is journalled, so a journalled write always applies: the
    package's key and vector rules (:mod:`embedkit._arrays`; keys non-empty here, as URLs name
    them), one vector of the index's dim per key (the key named) and, for cosine, no zero vector."""
    keys = as_keys(keys, what="item keys", allow_empty=False)
    if not keys:
        raise InputError("give at least one item to upsert")
    rows = list(vectors)
    if len(rows) != len(keys):
        raise InputError(f"{len(keys)} keys but {len(rows)} vectors; give one vector per key")
    for k, v in zip(keys, rows):
        if len(v) != index.dim:
            raise InputError(f"the vector of {k!r} has dimension {len(v)} but the index has dim={index.dim}")
    vecs = as_vectors(rows, what="item vectors", dim=index.dim, n=len(keys), dim_of="the index")
    if index.metric == "cosine":
        zero = ~vecs.any(axis=1)
        if zero.any():
            raise InputError(f"the vector of {keys[int(np.argmax(zero))]!r} is all zeros, which has no cosine "
                             "direction")
    return vecs
