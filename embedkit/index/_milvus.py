"""``VectorIndex(dim, backend="milvus", uri=...)``: the index in a Milvus collection.

``uri`` is a local file ending in ``.db`` (the embedded engine, milvus-lite: the real Milvus
engine in-process, one process per file) or a server / cluster address (``http://host:19530``;
the same client API). The index lives in Milvus: every write goes there at once, there is
nothing to ``save`` (``save(path)`` copies the collection into an in-memory FAISS index and saves
that); reopen it with ``MilvusIndex.open(uri, collection)`` or ``VectorIndex(dim,
backend="milvus", uri=..., collection=...)`` (which checks the dim and metric).

Collection layout: ``key`` (VARCHAR primary key, at most 65,535 UTF-8 bytes), ``vector``
(FLOAT_VECTOR, stored as given), ``payload`` (JSON) and ``has`` (JSON, the payload's field names
for the filters' absence tests, see :mod:`._milvus_filter`). A side collection ``embedkit_meta``
holds one row per index: dim, metric, kind, knobs, payload field types and ``meta``.

Scores follow the FAISS index: similarities for cosine / ip, Euclidean distances for l2 (Milvus
returns squared ones; we take the root). Kinds: flat -> FLAT, ivf -> IVF_FLAT (milvus-lite
supports these two), hnsw -> HNSW and ivfpq -> IVF_PQ on a server only; "auto" is FLAT on
milvus-lite, HNSW on a server.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Sequence

import numpy as np

from .._arrays import as_keys, as_vectors
from .._knn import METRICS
from .._validation import check_choice, check_int
from ..errors import InputError, MissingKeyError, StoreError
from ._milvus_client import (  # noqa: F401
    MAX_LISTED_KEYS,
    META,
    _call,
    _Closed,
    _json_ready,
    _lookup_keys,
    _pq_m,
    _pymilvus,
    check_uri,
    client,
    collection_name,
    describe,
    is_server,
    list_indexes,
    payload_rows,
    release,
)
from ._milvus_filter import _join, check_text, key_list, literal, to_expression
from ._search import SearchResult

log = logging.getLogger(__name__)

__all__ = ["MilvusIndex", "collection_name", "list_indexes", "describe", "check_uri"]

MAX_KEY_BYTES = 65535      # Milvus's VARCHAR limit
MAX_TOPK = 16384           # Milvus's limit on k (and on queries per request)
DEFAULT_COLLECTION = "embedkit"
FORMAT = 1
_METRIC = {"cosine": "COSINE", "ip": "IP", "l2": "L2"}
_INDEX_TYPE = {"flat": "FLAT", "ivf": "IVF_FLAT", "hnsw": "HNSW", "ivfpq": "IVF_PQ"}
LITE_KINDS = ("flat", "ivf")
_BATCH_BYTES = 8 << 20     # rows per insert request: about this many bytes of vectors
_LOOKUP = 1000             # keys per lookup expression

class MilvusIndex:
    """A VectorIndex whose items live in a Milvus collection (see the module doc); build it
    with ``VectorIndex(dim, metric, kind, backend="milvus", uri=..., collection=...)``."""

    backend = "milvus"

    def __init__(self, dim: int, metric: str = "cosine", kind: str = "flat", *, uri, collection: str | None = None,
                 nlist: int | None = None, nprobe: int | None = None, hnsw_m: int = 32, ef_construction: int = 80,
                 ef_search: int = 64, timeout: float = 30.0, _info: dict | None = None):
        owner = "VectorIndex"
        self._dim = check_int(owner, "dim", dim, 1, 32768)
        self._metric = check_choice(owner, "metric", metric, METRICS)
        self.uri = check_uri(uri)
        self.collection = self._check_collection(DEFAULT_COLLECTION if collection is None else collection)
        self.timeout = timeout
        self._server = is_server(self.uri)
        kind = kind.lower() if isinstance(kind, str) else kind
        if kind == "auto":
            kind = "hnsw" if self._server else "flat"
        if kind not in _INDEX_TYPE:
            raise InputError(f"kind {kind!r} is not available with backend='milvus': use flat or ivf"
                             f"{', hnsw or ivfpq' if self._server else ' (milvus-lite; hnsw and ivfpq need a server uri)'}")
        if kind not in LITE_KINDS and not self._server:
            raise InputError(f"kind={kind!r}: milvus-lite (a local .db uri) supports flat and ivf only; use kind='ivf' "
                             "or a Milvus server uri (http://host:19530)")
        knobs = {"nlist": check_int(owner, "nlist", nlist, 1, 65536) if nlist is not None else 128,
                 "nprobe": check_int(owner, "nprobe", nprobe, 1, 65536) if nprobe is not None else 16,
                 "hnsw_m": check_int(owner, "hnsw_m", hnsw_m, 2, 2048),
                 "ef_construction": check_int(owner, "ef_construction", ef_construction, 1, 100000),
                 "ef_search": check_int(owner, "ef_search", ef_search, 1, 100000)}
        if kind == "ivf" and not self._server and _info is None:
            log.warning("milvus-lite 2.5 does not honour nprobe: its IVF_FLAT recall@10 measured 0.29 on 100k random "
                        "64-d vectors at any nprobe (docs/milvus.md); kind='flat' is exact")
        self._kind = kind
        self._knobs = knobs
        self._lock = threading.RLock()
        self._c = client(self.uri, timeout)  # one user of the shared client until close()
        try:
            self._setup(_info if _info is not None else self._read_info())
        except BaseException:
            self.close()
            raise

    def _setup(self, info) -> None:
        if info is None:
            self._kinds: dict = {}
            self.meta: dict = {}
            self._create()
        else:
            if int(info["dim"]) != self._dim or info["metric"] != self._metric:
                raise InputError(f"collection {self.collection!r} at {self.uri} holds an index of dim={info['dim']}, "
                                 f"metric={info['metric']!r}, not dim={self._dim}, metric={self._metric!r}; open it "
                                 "with MilvusIndex.open(uri, collection), or give another collection=")
            self._kind = info.get("kind", self._kind)
            self._knobs.update(info.get("knobs") or {})
            self._kinds = dict(info.get("payload_kinds") or {})
            self.meta = dict(info.get("meta") or {})

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, uri, collection: str = DEFAULT_COLLECTION, timeout: float = 30.0) -> "MilvusIndex":
        """An existing index in Milvus (MissingKeyError when ``collection`` holds none)."""
        uri = check_uri(uri)
        probe = cls.__new__(cls)
        probe.uri, probe.collection, probe.timeout = uri, cls._check_collection(collection), timeout
        probe._c = client(uri, timeout)
        try:
            info = probe._read_info()
            if info is None:
                have = ", ".join(list_indexes(uri)) or "none"
                raise MissingKeyError(f"no embedkit index in collection {collection!r} at {uri} (indexes: {have})")
            return cls(int(info["dim"]), info["metric"], info.get("kind", "flat"), uri=uri, collection=collection,
                       timeout=timeout, _info=info)
        finally:
            release(uri)

    def close(self) -> None:
        """Stop using Milvus: the last open index of a uri in this process closes its client (a local
        file: stops the embedded engine and unlocks the file). Idempotent; the index refuses calls after."""
        c, self._c = getattr(self, "_c", None), _Closed(self)
        if c is not None and not isinstance(c, _Closed):
            release(self.uri)

    def __enter__(self) -> "MilvusIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _check_collection(name) -> str:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name) or name == META:
            raise InputError(f"collection {name!r} is not a valid Milvus collection name: letters, digits and '_', "
                             f"not starting with a digit, at most 255 characters, not {META!r}")
        return name

    def _read_info(self) -> dict | None:
        names = set(_call(self._c.list_collections, "list collections", timeout=self.timeout))
        if META not in names:
            if self.collection in names:
                raise InputError(f"collection {self.collection!r} at {self.uri} exists but was not written by embedkit; "
                                 "give another collection=")
            return None
        rows = _call(self._c.query, "read the index's description", META, filter=f"key == {literal(self.collection)}",
                     output_fields=["info"], timeout=self.timeout)
        if not rows:
            if self.collection in names:
                raise InputError(f"collection {self.collection!r} at {self.uri} exists but was not written by embedkit; "
                                 "give another collection=")
            return None
        if self.collection not in names:
            return None  # dropped behind our back: start again
        info = rows[0]["info"]
        if int(info.get("format", 1)) > FORMAT:
            raise StoreError(f"collection {self.collection!r} was written by a newer embedkit (format "
                             f"{info.get('format')}); upgrade embedkit")
        return info

    def _info(self) -> dict:
        return {"format": FORMAT, "dim": self._dim, "metric": self._metric, "kind": self._kind, "knobs": self._knobs,
                "payload_kinds": self._kinds, "meta": self.meta}

    def _write_info(self) -> None:
        _call(self._c.upsert, "write the index's description", META,
              [{"key": self.collection, "info": self._info(), "v": [0.0, 0.0]}], timeout=self.timeout)

    def _create(self) -> None:
        pm = _pymilvus()
        c, t = self._c, self.timeout
        if META not in _call(c.list_collections, "list collections", timeout=t):
            s = c.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("key", pm.DataType.VARCHAR, is_primary=True, max_length=255)
            s.add_field("info", pm.DataType.JSON)
            s.add_field("v", pm.DataType.FLOAT_VECTOR, dim=2)
            ip = c.prepare_index_params()
            ip.add_index("v", index_type="FLAT", metric_type="L2")
            _call(c.create_collection, "create the embedkit_meta collection", META, schema=s, index_params=ip,
                  consistency_level="Strong", timeout=t)
        s = c.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("key", pm.DataType.VARCHAR, is_primary=True, max_length=MAX_KEY_BYTES)
        s.add_field("vector", pm.DataType.FLOAT_VECTOR, dim=self._dim)
        s.add_field("payload", pm.DataType.JSON)
        s.add_field("has", pm.DataType.JSON)
        ip = c.prepare_index_params()
        k = self._knobs
        params = {"ivf": {"nlist": k["nlist"]}, "ivfpq": {"nlist": k["nlist"], "m": _pq_m(self._dim), "nbits": 8},
                  "hnsw": {"M": k["hnsw_m"], "efConstruction": k["ef_construction"]}}.get(self._kind, {})
        ip.add_index("vector", index_type=_INDEX_TYPE[self._kind], metric_type=_METRIC[self._metric], params=params)
        _call(c.create_collection, f"create collection {self.collection!r}", self.collection, schema=s, index_params=ip,
              consistency_level="Strong", timeout=t)
        self._write_info()

    def drop(self) -> None:
        """Delete the collection and its description from Milvus."""
        with self._lock:
            _call(self._c.drop_collection, f"drop collection {self.collection!r}", self.collection, timeout=self.timeout)
            _call(self._c.delete, "delete the index's description", META,
                  filter=f"key in {key_list([self.collection])}", timeout=self.timeout)

    def set_meta(self, meta: dict) -> None:
        """Replace ``meta`` (a JSON-able dict: trainer, source...) and store it in Milvus."""
        with self._lock:
            old, self.meta = self.meta, dict(meta)
            try:
                self._write_info()
            except Exception:
                self.meta = old
                raise

    def flush(self) -> None:
        """Ask Milvus to seal and persist what was written (Milvus also does it on its own)."""
        _call(self._c.flush, "flush", self.collection, timeout=self.timeout)

    # ------------------------------------------------------------------ properties
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
        return dict(self._knobs)

    @property
    def payload_fields(self) -> dict:
        return dict(self._kinds)

    def __len__(self) -> int:
        rows = _call(self._c.query, "count", self.collection, filter="", output_fields=["count(*)"], timeout=self.timeout)
        return int(rows[0]["count(*)"])

    def __contains__(self, key) -> bool:
        if not isinstance(key, str) or "\n" in key or "\r" in key:
            return False
        return bool(self._existing([key]))

    def __repr__(self) -> str:
        return (f"VectorIndex(n={len(self)}, dim={self._dim}, metric={self._metric!r}, kind={self._kind!r}, "
                f"backend='milvus', collection={self.collection!r})")

    @property
    def keys(self) -> list[str]:
        """Every key (read from Milvus; refused above a million items)."""
        n = len(self)
        if n > MAX_LISTED_KEYS:
            raise InputError(f"listing the keys of a Milvus collection of {n} items is not supported (over "
                             f"{MAX_LISTED_KEYS}); the service's autocomplete and map page need it")
        it = _call(self._c.query_iterator, "list keys", self.collection, batch_size=5000, filter="",
                   output_fields=["key"], timeout=self.timeout)
        out = []
        try:
            while True:
                batch = _call(it.next, "list keys")
                if not batch:
                    break
                out.extend(r["key"] for r in batch)
        finally:
            it.close()
        return sorted(out)

    # ------------------------------------------------------------------ knobs
    def set_params(self, **knobs) -> None:
        """Search knobs: ``nprobe`` (ivf), ``ef_search`` (hnsw); kept in Milvus with the index."""
        with self._lock:
            for name, value in knobs.items():
                if name not in ("nprobe", "ef_search"):
                    raise InputError(f"unknown search knob {name!r}; settable: nprobe, ef_search")
                self._knobs[name] = check_int("VectorIndex", name, value, 1, 65536)
            self._write_info()

    def tune(self, *args, **kwargs) -> dict:
        """Not available: Milvus tunes nothing for us here (set ``nprobe`` / ``ef_search`` with set_params)."""
        raise InputError("tune() is not available with backend='milvus'; set nprobe or ef_search with set_params()")

    # ------------------------------------------------------------------ checks
    def _check_keys(self, keys, what: str) -> list[str]:
        keys = as_keys(keys, what=f"keys given to {what}()")
        for i, k in enumerate(keys):
            if len(k) * 4 > MAX_KEY_BYTES and len(k.encode("utf-8")) > MAX_KEY_BYTES:
                raise InputError(f"keys given to {what}(): key #{i} is {len(k.encode('utf-8'))} bytes long; Milvus keys "
                                 f"hold at most {MAX_KEY_BYTES} bytes of UTF-8 (shorten or hash it)")
            check_text(k, f"keys given to {what}(): key #{i}")
        return keys

    def _check_vectors(self, vectors, keys, what="vectors") -> np.ndarray:
        vecs = as_vectors(vectors, what=what, dim=self._dim, n=None if keys is None else len(keys), allow_1d=True,
                          dim_of="the index")
        if self._metric == "cosine" and len(vecs):
            zero = ~vecs.any(axis=1)
            if zero.any():
                row = int(np.argmax(zero))
                label = f"key {keys[row]!r}" if keys is not None else f"row {row}"
                raise InputError(f"{label} has an all-zero vector, which has no cosine direction; "
                                 "remove it or use metric='ip' or 'l2'")
        return vecs

    def _payload_rows(self, payload, keys, what) -> tuple[list | None, dict]:
        """Checked payload dicts (or None) and the field kinds once they are written."""
        return payload_rows(self._kinds, payload, keys, what)

    def _existing(self, keys) -> dict:
        """{key: row} of the keys present (row: payload only)."""
        found = {}
        for i in range(0, len(keys), _LOOKUP):
            part = keys[i:i + _LOOKUP]
            rows = _call(self._c.query, "look up keys", self.collection, filter=f"key in {key_list(part)}",
                         output_fields=["key", "payload"], timeout=self.timeout)
            found.update((r["key"], r) for r in rows)
        return found

    # ------------------------------------------------------------------ writing
    def _write(self, method, keys, vecs, rows, kinds, show_progress=False) -> None:
        if kinds != self._kinds:  # field types first: a filter never meets a field it does not know
            old = self._kinds
            self._kinds = kinds
            try:
                self._write_info()
            except Exception:
                self._kinds = old
                raise
        step = max(1, min(10000, _BATCH_BYTES // (4 * self._dim + 64)))
        bar = None
        if show_progress and len(keys) > step:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(keys), desc=f"milvus {method}", unit="vec")
        fn = getattr(self._c, method)
        try:
            for i in range(0, len(keys), step):
                data = [{"key": k, "vector": v, "payload": p, "has": {f: 1 for f in p}}
                        for k, v, p in zip(keys[i:i + step], vecs[i:i + step], rows[i:i + step])]
                try:
                    _call(fn, f"{method} of items {i}..{i + len(data) - 1}", self.collection, data, timeout=self.timeout)
                except StoreError as exc:
                    done = f"; the first {i} of {len(keys)} items were written" if i else "; nothing was written"
                    raise StoreError(f"{exc}{done}") from None
                if bar is not None:
                    bar.update(len(data))
        finally:
            if bar is not None:
                bar.close()

    def add(self, keys: Sequence[str], vectors, payload=None, *, show_progress: bool = False) -> None:
        """Add new items; a key already present raises InputError naming it (use upsert)."""
        keys = self._check_keys(keys, "add")
        vecs = self._check_vectors(vectors, keys)
        with self._lock:
            rows, kinds = self._payload_rows(payload, keys, "add")
            present = self._existing(keys)
            if present:
                k = next(k for k in keys if k in present)
                raise InputError(f"add: key {k!r} is already in the index; use upsert() to replace it")
            self._write("insert", keys, vecs, rows if rows is not None else [{}] * len(keys), kinds, show_progress)

    def upsert(self, keys: Sequence[str], vectors, payload=None, *, show_progress: bool = False) -> None:
        """Insert new items and replace existing ones; ``payload`` None keeps existing payloads."""
        keys = self._check_keys(keys, "upsert")
        vecs = self._check_vectors(vectors, keys)
        with self._lock:
            rows, kinds = self._payload_rows(payload, keys, "upsert")
            if rows is None:
                present = self._existing(keys) if self._kinds else {}
                rows = [dict((present.get(k) or {}).get("payload") or {}) for k in keys]
            self._write("upsert", keys, vecs, rows, kinds, show_progress)

    def payload(self, key: str) -> dict:
        """The payload of one item ({} when it has none)."""
        row = self._rows([key], ["payload"], "")[0]
        return dict(row.get("payload") or {})

    def set_payload(self, keys: Sequence[str], payloads) -> None:
        """Replace the payloads of existing items."""
        keys = self._check_keys(keys, "set_payload")
        with self._lock:
            rows, kinds = self._payload_rows(payloads, keys, "set_payload")
            vecs = self.get_vectors(keys)
            self._write("upsert", keys, vecs, rows, kinds)

    def remove(self, keys: Sequence[str], missing_ok: bool = False) -> int:
        """Remove items by key; returns how many were removed. Unknown keys raise KeyError."""
        keys = list(dict.fromkeys(_lookup_keys(keys)))
        with self._lock:
            ok = [k for k in keys if isinstance(k, str) and "\n" not in k and "\r" not in k]
            present = self._existing(ok)
            if not missing_ok:
                for k in keys:
                    if k not in present:
                        raise self._missing(k, "remove")
            gone = [k for k in keys if k in present]
            for i in range(0, len(gone), _LOOKUP):
                _call(self._c.delete, "delete", self.collection, filter=f"key in {key_list(gone[i:i + _LOOKUP])}",
                      timeout=self.timeout)
            return len(gone)

    # ------------------------------------------------------------------ reading
    def _missing(self, key, what: str = "") -> MissingKeyError:
        from ..embeddings import missing_key_error

        return missing_key_error(key, "the index", len(self), lambda: self.keys, prefix=what)

    def _rows(self, keys, fields, what) -> list[dict]:
        """Rows of these keys in order (MissingKeyError for the first missing one)."""
        keys = _lookup_keys(keys)
        for k in keys:
            if not isinstance(k, str) or "\n" in k or "\r" in k:
                raise self._missing(k, what)
        found = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), _LOOKUP):
            part = uniq[i:i + _LOOKUP]
            rows = _call(self._c.query, "read items", self.collection, filter=f"key in {key_list(part)}",
                         output_fields=["key", *fields], timeout=self.timeout)
            found.update((r["key"], r) for r in rows)
        for k in keys:
            if k not in found:
                raise self._missing(k, what)
        return [found[k] for k in keys]

    def get_vectors(self, keys: Sequence[str]) -> np.ndarray:
        """The stored vectors (as given) of these keys."""
        rows = self._rows(keys, ["vector"], "")
        if not rows:
            return np.empty((0, self._dim), np.float32)
        return np.asarray([r["vector"] for r in rows], dtype=np.float32).reshape(len(rows), self._dim)

    def to_embeddings(self):
        """All items as :class:`~embedkit.Embeddings` (reads the whole collection)."""
        from ..embeddings import Embeddings

        keys = self.keys
        return Embeddings(keys, self.get_vectors(keys), meta=dict(self.meta))

    def to_faiss(self, kind: str = "flat"):
        """A copy of the whole collection (vectors, keys, payloads) as an in-memory FAISS VectorIndex."""
        from .vector_index import VectorIndex

        keys = self.keys
        rows = self._rows(keys, ["vector", "payload"], "to_faiss")
        idx = VectorIndex(self._dim, metric=self._metric, kind=kind)
        if keys:
            vecs = np.asarray([r["vector"] for r in rows], dtype=np.float32)
            payload = [r.get("payload") or {} for r in rows] if self._kinds else None
            idx.add(keys, vecs, payload=payload)
        idx.meta = dict(self.meta)
        return idx

    def save(self, path, *, meta: dict | None = None, extras: dict | None = None) -> None:
        """The index already lives in Milvus; this saves a FAISS flat copy of it to ``path``
        (a directory that ``VectorIndex.load`` reads)."""
        idx = self.to_faiss()
        idx.save(path, meta=meta, extras=extras)

    def _search_params(self) -> dict:
        k = self._knobs
        params = {"ivf": {"nprobe": k["nprobe"]}, "ivfpq": {"nprobe": k["nprobe"]},
                  "hnsw": {"ef": k["ef_search"]}}.get(self._kind, {})
        return {"metric_type": _METRIC[self._metric], "params": params}

    def _expr(self, filter):
        if filter is None:
            return True
        return to_expression(filter, self._kinds, server=self._server)

    def _limit(self, k: int, extra: int) -> int:
        want = k + extra
        if want > MAX_TOPK:
            n = len(self)
            want = min(want, n)
            if want > MAX_TOPK:
                raise InputError(f"k={k} is over Milvus's limit of {MAX_TOPK - extra} results per query")
        return max(want, 1)

    def _run(self, queries: np.ndarray, limit: int, expr):
        expr = "" if expr is True else expr  # True: no filter
        out = []
        data = queries.astype(np.float32)
        for i in range(0, len(data), 1000):
            out.extend(_call(self._c.search, "search", self.collection, data=[list(map(float, q)) for q in data[i:i + 1000]],
                             filter=expr, limit=limit, search_params=self._search_params(), timeout=self.timeout))
        return out

    def _result(self, hits, k: int, exclude=None) -> SearchResult:
        keys_out, scores = [], []
        for j, row in enumerate(hits):
            ks = [h["id"] for h in row]
            ds = [h["distance"] for h in row]
            if exclude is not None:
                if exclude[j] in ks:
                    at = ks.index(exclude[j])
                    del ks[at], ds[at]
            ks, ds = ks[:k], ds[:k]
            s = np.asarray(ds, dtype=np.float32)
            if self._metric == "l2":
                s = np.sqrt(np.maximum(s, 0.0))
            keys_out.append(ks)
            scores.append(s)
        if len({len(s) for s in scores}) <= 1:
            width = len(scores[0]) if scores else 0
            arr = np.stack(scores).astype(np.float32) if scores else np.empty((0, width), np.float32)
            return SearchResult(keys_out, arr.reshape(len(scores), width))
        return SearchResult(keys_out, scores)

    def search(self, queries, k: int = 10, filter=None) -> SearchResult:
        """The k nearest items of each query vector; ``filter`` as in VectorIndex.search (a
        Milvus boolean expression is built from it)."""
        k = check_int("search", "k", k, 1, None)
        expr = self._expr(filter)
        q = self._check_vectors(queries, None, "queries")
        if expr is False or not len(q):
            return SearchResult([[] for _ in range(len(q))], np.empty((len(q), 0), np.float32))
        return self._result(self._run(q, self._limit(k, 0), expr), k)

    def search_keys(self, keys: Sequence[str], k: int = 10, filter=None) -> SearchResult:
        """The k nearest neighbours of stored items, each item itself excluded."""
        k = check_int("search_keys", "k", k, 1, None)
        expr = self._expr(filter)
        keys = _lookup_keys(keys)
        vecs = self.get_vectors(keys)
        if expr is False or not len(keys):
            return SearchResult([[] for _ in keys], np.empty((len(keys), 0), np.float32))
        return self._result(self._run(vecs, self._limit(k, 1), expr), k, exclude=keys)

    def search_examples(self, positive=(), negative=(), k: int = 10, filter=None, method: str = "add") -> SearchResult:
        """Items like the ``positive`` examples and unlike the ``negative`` ones (3CosAdd; keys given are
        never returned). method='mul' (3CosMul scores every item exactly) is not available here."""
        k = check_int("search_examples", "k", k, 1, None)
        method = check_choice("search_examples", "method", method, ("add", "mul"))
        if method == "mul":
            raise InputError("search_examples: method='mul' (3CosMul) scores every item and is not available with "
                             "backend='milvus'; use method='add'")
        parts, used = [], []
        for what, items, sign in (("positive", positive, 1.0), ("negative", negative, -1.0)):
            if isinstance(items, (str, np.ndarray)):
                items = [items]
            for j, item in enumerate(list(items)):
                if isinstance(item, str):
                    v = self.get_vectors([item])
                    used.append(item)
                else:
                    v = as_vectors(item, what=f"{what}[{j}]", dim=self._dim, allow_1d=True, dim_of="the index")
                    if v.shape[0] != 1:
                        raise InputError(f"{what}[{j}] must be one key or one vector; got {v.shape[0]} vectors")
                if self._metric == "cosine":
                    n = np.linalg.norm(v)
                    if n == 0:
                        raise InputError(f"{what}[{j}] has an all-zero vector, which has no cosine direction")
                    v = v / n
                parts.append(sign * v[0])
        if not parts:
            raise InputError("search_examples: give at least one positive or negative example")
        q = np.mean(parts, axis=0, keepdims=True).astype(np.float32)
        if not np.any(q):
            raise InputError("search_examples: the examples cancel out (their mean is the zero vector)")
        expr = self._expr(filter)
        if used:  # the keys given are never returned: and the user's filter with "key not in [...]"
            expr = _join([expr, f"key not in {key_list(sorted(set(used)))}"], "and")
        if expr is False:
            return SearchResult([[]], np.empty((1, 0), np.float32))
        return self._result(self._run(q, self._limit(k, 0), expr), k)
