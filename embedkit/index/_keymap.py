"""key -> id without a dict of a million Python strings.

The keys themselves live once, in the Storage's ``id_key`` object array (by id, None when the
item is gone). :class:`KeyMap` finds the id of a key through two int64 arrays (the keys'
Python hashes, sorted, and the ids in the same order: 16 bytes per key instead of a dict entry
and an int object, ~70 bytes), checking ``id_key[id] == key`` so hash collisions and removed
items are never confused with the key. Keys added since the last merge wait in a small dict;
big batches are merged into the arrays at once.
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

_MERGE_MIN = 4096


class KeyMap:
    """Mapping-like key -> id over ``owner.id_key`` (see module doc)."""

    def __init__(self, owner):
        self._owner = owner                       # has .id_key (object array by id)
        self._set(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        self._recent: dict[str, int] = {}
        self._count = 0
        self._stale = 0                           # array entries whose item was removed

    # ----------------------------------------------------------- reading
    def __len__(self) -> int:
        return self._count

    def get(self, key, default=None):
        try:
            i = self._recent.get(key)
        except TypeError:  # unhashable (a list of keys): no such key; callers explain
            return default
        if i is not None:
            return i
        if not isinstance(key, str) or not len(self._hashes):
            return default
        h = hash(key)
        hashes, ids = self._hmv, self._imv  # memoryviews: indexing gives Python ints (no numpy scalars)
        lo = bisect_left(hashes, h)
        id_key = self._owner.id_key
        n = len(hashes)
        while lo < n and hashes[lo] == h:
            i = ids[lo]
            if id_key[i] == key:
                return i
            lo += 1
        return default

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def __getitem__(self, key) -> int:
        i = self.get(key)
        if i is None:
            raise KeyError(key)
        return i

    def find(self, keys) -> np.ndarray:
        """Ids of many keys at once (-1 where absent), vectorised over the hash arrays."""
        keys = list(keys)
        out = np.full(len(keys), -1, dtype=np.int64)
        if not keys:
            return out
        if len(self._hashes):
            h = np.fromiter((hash(k) for k in keys), dtype=np.int64, count=len(keys))
            pos = np.searchsorted(self._hashes, h)
            hit = np.nonzero((pos < len(self._hashes)) & (self._hashes[np.minimum(pos, len(self._hashes) - 1)] == h))[0]
            for j in hit.tolist():  # equal hashes: confirm (or scan a run of collisions)
                out[j] = self.get(keys[j], -1)
        if self._recent:
            get = self._recent.get
            for j, k in enumerate(keys):
                if out[j] < 0:
                    i = get(k)
                    if i is not None:
                        out[j] = i
        return out

    # ----------------------------------------------------------- writing
    def add(self, keys, ids) -> None:
        """Map new keys (absent) to ids; ``owner.id_key[ids]`` must already hold them."""
        n = len(keys)
        self._count += n
        if n < _MERGE_MIN:
            self._recent.update(zip(keys, np.asarray(ids).tolist()))
            if len(self._recent) > max(_MERGE_MIN, len(self._hashes) // 8):
                self._merge()
            return
        self._merge(extra=(keys, np.asarray(ids, dtype=np.int64)))

    def remove(self, key, i: int) -> None:
        """Forget ``key`` (at id i); call before ``owner.id_key[i]`` is cleared or after, either works."""
        self._count -= 1
        if self._recent.pop(key, None) is None:
            self._stale += 1
            if self._stale > max(_MERGE_MIN, len(self._hashes) // 2):
                self._merge(drop_stale=True)

    def _merge(self, extra=None, drop_stale: bool = False) -> None:
        hs, ids = [self._hashes], [self._ids]
        if drop_stale and len(self._ids):
            id_key = self._owner.id_key
            keep = np.fromiter((id_key[i] is not None for i in self._ids.tolist()), dtype=bool, count=len(self._ids))
            hs, ids = [self._hashes[keep]], [self._ids[keep]]
            self._stale = 0
        if self._recent:
            ks = list(self._recent)
            hs.append(np.fromiter((hash(k) for k in ks), dtype=np.int64, count=len(ks)))
            ids.append(np.fromiter(self._recent.values(), dtype=np.int64, count=len(ks)))
            self._recent = {}
        if extra is not None:
            ks, xi = extra
            hs.append(np.fromiter((hash(k) for k in ks), dtype=np.int64, count=len(ks)))
            ids.append(xi)
        h = np.concatenate(hs)
        i = np.concatenate(ids)
        order = np.argsort(h, kind="stable")
        self._set(h[order], i[order])

    def _set(self, hashes, ids) -> None:
        self._hashes, self._ids = hashes, ids
        self._hmv, self._imv = memoryview(hashes), memoryview(ids)

    def rebuild(self, keys, ids) -> None:
        """Start over with exactly these (unique) keys at these ids."""
        self._set(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        self._recent = {}
        self._count = 0
        self._stale = 0
        if len(keys):
            self._count = len(keys)
            self._merge(extra=(keys, np.asarray(ids, dtype=np.int64)))

    def nbytes(self) -> int:
        return self._hashes.nbytes + self._ids.nbytes + 100 * len(self._recent)
