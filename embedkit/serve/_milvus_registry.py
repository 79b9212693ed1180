"""``embedkit serve --backend milvus --uri URI``: the service over the indexes in Milvus.

The service's routes need an index (search, search_keys, search_examples, payloads, len, in,
get_vectors) and a registry (names, get, upsert, remove, compact). Here the indexes are
:class:`~embedkit.index._milvus.MilvusIndex` objects (one per embedkit collection at the uri)
and writes go straight to Milvus, which makes them durable itself: there is no journal and
nothing to compact. What Milvus cannot do is refused with one line: 3CosMul examples, and the
key listing behind autocomplete and the map page for collections over a million items.
Recommendations (which need the trainer's model from a store) are not served from Milvus.

Each collection is served under the name of the store index it was pushed from (``embedkit index
push`` records it: ``shop-v1`` in collection ``shop_v1`` is ``/indexes/shop-v1``, the FAISS
service's URL), else under its collection name (see ``_milvus_client.served_names``).
"""

from __future__ import annotations

import threading

from ..errors import InputError, MissingKeyError
from ..index._milvus import MilvusIndex, check_uri, client, describe, release
from ..index._milvus_client import served_names
from ..store import check_name
from ._registry import Entry, Registry, check_vectors

__all__ = ["MilvusCatalog", "MilvusRegistry"]


class _NoJournal:
    """Milvus persists writes itself: nothing journalled, nothing to fold."""

    entries = 0
    bytes = 0

    def close(self) -> None:
        pass


class MilvusCatalog:
    """The part of :class:`~embedkit.store.Store` the service uses, over the indexes at a Milvus uri."""

    def __init__(self, uri):
        self.uri = check_uri(uri)
        self.root = self.uri
        client(self.uri)  # the service keeps the client (a local file: its engine) until close()
        self._open = True

    def collections(self) -> dict:
        """{served name: collection}."""
        return served_names(self.uri, _valid_name)

    def names(self) -> list[str]:
        return list(self.collections())

    def collection(self, name: str) -> str:
        have = self.collections()
        if name not in have:
            raise MissingKeyError(f"no index named {name!r} at {self.uri} (indexes: {', '.join(have) or 'none'})")
        return have[name]

    def exists(self, name: str) -> bool:
        check_name(name)
        return name in self.names()

    def info(self, name: str) -> dict:
        return self._describe(self.collection(name))

    def _describe(self, collection: str) -> dict:
        with MilvusIndex.open(self.uri, collection) as index:
            return describe(index)

    def close(self) -> None:
        if self._open:
            self._open = False
            release(self.uri)

    def entries(self) -> list[dict]:
        out = []
        for name, collection in self.collections().items():  # the descriptions read once, not once per index
            try:
                out.append({"name": name, "damaged": False, "error": None, "manifest": self._describe(collection)})
            except Exception as exc:  # one broken collection is listed with its reason
                out.append({"name": name, "damaged": True, "error": str(exc), "manifest": None})
        return out


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except InputError:
        return False
    return True


class MilvusRegistry(Registry):
    """:class:`~embedkit.serve._registry.Registry` over Milvus collections (see the module doc)."""

    def __init__(self, catalog: MilvusCatalog, names=None):
        self.store = catalog
        self.allowed = None if not names else [check_name(n) for n in names]
        self._entries: dict[str, Entry] = {}
        self._guard = threading.Lock()
        self._closed = False

    def get(self, name: str) -> Entry:
        self._check_served(name)
        entry = self._entries.get(name)
        if entry is not None:
            return entry
        with self._guard:
            entry = self._entries.get(name)
            if entry is None:
                index = MilvusIndex.open(self.store.uri, self.store.collection(name))
                entry = Entry(name=name, path=None, index=index, manifest=describe(index), journal=_NoJournal(),
                              model=None, stamp=None, kind=None)
                self._entries[name] = entry
            return entry

    def upsert(self, name: str, keys: list[str], vectors, payload=None) -> int:
        entry = self.get(name)
        with entry.lock:
            vecs = check_vectors(entry.index, keys, vectors)
            try:
                entry.index.upsert(keys, vecs, payload=payload)
            finally:
                entry.version += 1
            return len(entry.index)

    def remove(self, name: str, keys: list[str], missing_ok: bool = False) -> int:
        entry = self.get(name)
        keys = list(dict.fromkeys(keys))
        with entry.lock:
            present = [k for k in keys if k in entry.index]
            if not missing_ok and len(present) != len(keys):
                missing = next(k for k in keys if k not in entry.index)
                raise MissingKeyError(f"key {missing!r} is not in index {name!r}; nothing was removed")
            try:
                removed = entry.index.remove(present, missing_ok=True) if present else 0
            finally:
                entry.version += 1
            return removed

    def compact(self, name: str, entry: Entry | None = None) -> int:
        self.get(name)
        return 0

    def close(self) -> None:
        self._closed = True
        for entry in list(self._entries.values()):
            entry.index.close()
        self._entries.clear()
        self.store.close()


def milvus_app_parts(uri, names):
    """(catalog, registry) for ``create_app(backend="milvus")``; refuses names not at the uri."""
    catalog = MilvusCatalog(uri)
    try:
        have = catalog.names()
        for name in names or []:
            check_name(name)
            if name not in have:
                raise MissingKeyError(f"no index named {name!r} at {catalog.uri} (indexes: {', '.join(have) or 'none'}); "
                                      "copy one there with 'embedkit index push NAME --to URI'")
    except BaseException:
        catalog.close()
        raise
    return catalog, MilvusRegistry(catalog, names)
