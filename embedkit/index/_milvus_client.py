"""Connecting to Milvus for ``VectorIndex(backend="milvus")``: the uri rules, one shared client
per uri, listing the embedkit indexes at a uri, and small helpers of :mod:`._milvus`."""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import EmbedkitError, InputError, StoreError

META = "embedkit_meta"          # the side collection holding one description row per index
MAX_LISTED_KEYS = 1_000_000  # ``keys`` (autocomplete, the service's map page) reads every key: refused above
_clients: dict = {}
_clients_lock = threading.Lock()


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise InputError("backend='milvus' needs pymilvus: pip install 'embedkit[milvus]'") from None
    return pymilvus


def check_uri(uri) -> str:
    """The uri as given for a server, else the absolute path of a local ``.db`` file whose folder exists."""
    if not isinstance(uri, (str, os.PathLike)) or not os.fspath(uri):
        raise InputError(f"backend='milvus' needs uri=: a local file such as 'vectors.db' (embedded milvus-lite) "
                         f"or 'http://host:19530' (a Milvus server); got {uri!r}")
    s = os.fspath(uri)
    if is_server(s):
        return s
    if "://" in s:
        raise InputError(f"uri {s!r}: give a local file path ending in .db (embedded milvus-lite) or "
                         "http://host:19530 (a Milvus server)")
    p = Path(s).expanduser()
    if p.suffix != ".db":
        raise InputError(f"uri {s!r}: a local Milvus file must end in .db (milvus-lite's rule), e.g. 'vectors.db'")
    if not p.parent.is_dir():
        raise InputError(f"uri {s!r}: the folder {str(p.parent)!r} does not exist; create it first")
    return str(p.resolve())


def client(uri: str, timeout: float = 30.0):
    """One shared MilvusClient per uri in this process (milvus-lite: one engine per file)."""
    pm = _pymilvus()
    if not is_server(uri):
        try:
            with warnings.catch_warnings():  # milvus-lite 2.5 imports pkg_resources, which warns on import
                warnings.simplefilter("ignore", UserWarning)
                import milvus_lite  # noqa: F401
        except ImportError:
            raise InputError("a local Milvus file needs the embedded engine milvus-lite: "
                             "pip install 'embedkit[milvus]'") from None
    with _clients_lock:
        c = _clients.get(uri)
        if c is None:
            try:
                c = pm.MilvusClient(uri, timeout=timeout)
            except Exception as exc:
                raise StoreError(f"cannot open Milvus at {uri} ({_reason(exc)}); check the uri and that the "
                                 "server is running (a local file: that no other process holds it)") from None
            _clients[uri] = c
    return c


def _reason(exc) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:300]


def collection_name(name: str) -> str:
    """A Milvus collection name for an index name (letters, digits and '_', not starting with a digit)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if out and not out[0].isdigit() else "ek_" + out


def list_indexes(uri) -> list[str]:
    """The collections at ``uri`` that hold embedkit indexes (have a row in ``embedkit_meta``)."""
    uri = check_uri(uri)
    c = client(uri)
    names = set(_call(c.list_collections, "list collections"))
    if META not in names:
        return []
    rows = _call(c.query, "read index list", META, filter='key != ""', output_fields=["key"], timeout=30)
    return sorted(r["key"] for r in rows if r["key"] in names)


class _QuietMvcc(logging.Filter):
    """pymilvus warns on every key listing that milvus-lite has no MVCC timestamp (harmless there)."""

    def filter(self, record) -> bool:
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.orm.iterator").addFilter(_QuietMvcc())


def _call(fn, what: str, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except EmbedkitError:
        raise
    except Exception as exc:
        raise StoreError(f"Milvus: {what} failed ({_reason(exc)})") from None


def _spec(filter):
    from ._filter import compile_filter

    return compile_filter(filter).spec


def _pq_m(dim: int) -> int:
    for m in (32, 16, 8, 4, 2, 1):
        if dim % m == 0 and m <= dim:
            return m
    return 1


def _json_ready(d: dict) -> dict:
    """Payload values as plain JSON types (numpy scalars and arrays converted; None dropped)."""
    out = {}
    for f, v in d.items():
        if v is None:
            continue
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, (tuple, np.ndarray)):
            v = [str(x) for x in v]
        elif isinstance(v, float) and not math.isfinite(v):
            continue
        out[f] = v
    return out


def _lookup_keys(keys) -> list:
    if isinstance(keys, (str, bytes)) or not isinstance(keys, Iterable):
        return [keys]
    return list(keys)


def describe(index) -> dict:
    """A manifest-like dict of a Milvus index (for the service and ``embedkit info``)."""
    return {"count": len(index), "dim": index.dim, "metric": index.metric, "kind": index.kind,
            "knobs": index.params, "meta": dict(index.meta), "backend": "milvus", "uri": index.uri,
            "collection": index.collection, "created": None, "extras": []}
