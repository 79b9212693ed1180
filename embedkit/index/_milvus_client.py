"""Connecting to Milvus for ``VectorIndex(backend="milvus")``: the uri rules, one shared client
per uri (counted users; the last ``release`` closes it, stops a local file's embedded engine and
drops embedkit's lock on the file), listing the embedkit indexes at a uri, and small helpers of
:mod:`._milvus`."""

from __future__ import annotations

import logging
import math
import os
import re
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import EmbedkitError, InputError, StoreError
from ._milvus_filter import check_text
from ._payload import Column, Columns, _fast_kind, _kind_of, as_payload_rows

META = "embedkit_meta"          # the side collection holding one description row per index
MAX_LISTED_KEYS = 1_000_000  # ``keys`` (autocomplete, the service's map page) reads every key: refused above
_clients: dict = {}  # uri -> [MilvusClient, lock fd or None, users]
_clients_lock = threading.Lock()
log = logging.getLogger(__name__)


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://"))


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise InputError("backend='milvus' needs pymilvus: pip install 'embedkit[milvus]'") from None
    # pymilvus attaches its own stderr handlers (settings.init_log) and logs every failure there; embedkit
    # reports each failure as one StoreError / InputError line instead
    for name in ("pymilvus", "pymilvus.milvus_client"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
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


class _QuietLite(logging.Filter):
    """milvus-lite logs a refused open ("opened by another program") on the root logger."""

    def filter(self, record) -> bool:
        return "milvus_lite" not in (record.pathname or "")


def _lock_file(uri: str):
    """An exclusive lock on ``<file>.embedkit.lock`` (never deleted), held while this process uses the
    file: milvus-lite deletes its own lock file after a refused open, so a second try would succeed and
    two engines would write one file. None where fcntl is missing."""
    try:
        import fcntl
    except ImportError:  # not POSIX: milvus-lite has no wheels there either
        return None
    path = uri + ".embedkit.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot open Milvus at {uri}: cannot create its lock file {path} ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise StoreError(f"cannot open Milvus at {uri}: the file is held by another process (an embedded "
                         "milvus-lite engine serves one process at a time); close it there, or use a Milvus "
                         "server uri (http://host:19530) to share it") from None
    return fd


def client(uri: str, timeout: float = 30.0):
    """The shared MilvusClient of ``uri`` in this process (milvus-lite: one engine per file), counting
    one more user: each call is paired with one :func:`release`."""
    pm = _pymilvus()
    local = not is_server(uri)
    if local:
        try:
            with warnings.catch_warnings():  # milvus-lite 2.5 imports pkg_resources, which warns on import
                warnings.simplefilter("ignore", UserWarning)
                import milvus_lite  # noqa: F401
        except ImportError:
            raise InputError("a local Milvus file needs the embedded engine milvus-lite: "
                             "pip install 'embedkit[milvus]'") from None
    with _clients_lock:
        slot = _clients.get(uri)
        if slot is None:
            fd = _lock_file(uri) if local else None
            quiet = _QuietLite()
            logging.getLogger().addFilter(quiet)
            try:
                c = pm.MilvusClient(uri, timeout=timeout)
            except Exception as exc:
                if fd is not None:
                    os.close(fd)
                raise StoreError(f"cannot open Milvus at {uri} ({_reason(exc)}); check the uri and that the "
                                 "server is running (a local file: that no other process holds it)") from None
            finally:
                logging.getLogger().removeFilter(quiet)
            slot = _clients[uri] = [c, fd, 0]
        slot[2] += 1
        return slot[0]


def release(uri: str) -> None:
    """One user of ``uri``'s client is done; the last one closes it (a local file: stops its engine
    and unlocks the file)."""
    with _clients_lock:
        slot = _clients.get(uri)
        if slot is None:
            return
        slot[2] -= 1
        if slot[2] > 0:
            return
        del _clients[uri]
        c, fd, _ = slot
        try:
            c.close()
            if fd is not None:
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        except Exception as exc:  # closing is best effort: the engine stops when its lock is released
            log.debug("closing Milvus at %s: %s", uri, _reason(exc))
        finally:
            if fd is not None:
                os.close(fd)


def open_clients() -> dict:
    """{uri: users} of the clients open in this process (for tests and diagnostics)."""
    with _clients_lock:
        return {u: slot[2] for u, slot in _clients.items()}


@contextmanager
def connected(uri: str, timeout: float = 30.0):
    """``client(uri)`` for the length of a ``with`` block."""
    c = client(uri, timeout)
    try:
        yield c
    finally:
        release(uri)


def _reason(exc) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(msg).split())[:300]


def collection_name(name: str) -> str:
    """A Milvus collection name for an index name (letters, digits and '_', not starting with a digit)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if out and not out[0].isdigit() else "ek_" + out


def _described(uri) -> dict:
    """{collection: info} of the embedkit indexes at ``uri`` (the rows of ``embedkit_meta`` whose collection exists)."""
    with connected(check_uri(uri)) as c:
        names = set(_call(c.list_collections, "list collections"))
        if META not in names:
            return {}
        rows = _call(c.query, "read index list", META, filter='key != ""', output_fields=["key", "info"], timeout=30)
    return {r["key"]: r.get("info") or {} for r in rows if r["key"] in names}


def list_indexes(uri) -> list[str]:
    """The collections at ``uri`` that hold embedkit indexes (have a row in ``embedkit_meta``)."""
    return sorted(_described(uri))


def source_index(info: dict):
    """The store index a collection was pushed from (``embedkit index push`` records it), or None."""
    src = (info.get("meta") or {}).get("source_index")
    return src if isinstance(src, str) and src else None


def served_names(uri, valid=lambda name: True) -> dict:
    """{name: collection} for serving the indexes at ``uri`` under the names they have in the store:
    a collection's recorded source index where ``valid`` and unambiguous, else the collection name.
    Two collections pushed from one index: the one named after it (``collection_name``) keeps it."""
    infos = _described(uri)
    claims: dict = {}
    for col, info in sorted(infos.items()):
        src = source_index(info)
        if src is not None and valid(src):
            claims.setdefault(src, []).append(col)
    out = {}
    for src, cols in claims.items():
        owner = cols[0] if len(cols) == 1 else next((c for c in cols if c == collection_name(src)), None)
        if owner is not None and (src not in infos or src == owner):  # never hide another collection's name
            out[src] = owner
    named = set(out.values())
    out.update((col, col) for col in infos if col not in named)
    return dict(sorted(out.items()))


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


class _Closed:
    """The client of a closed index: every call is refused with one line."""

    def __init__(self, index):
        self._what = f"the Milvus index {index.collection!r} at {index.uri}"

    def __getattr__(self, name):
        raise InputError(f"{self._what} was closed; open it again (MilvusIndex.open or VectorIndex(..., backend='milvus'))")


def payload_rows(kinds0: dict, payload, keys, what) -> tuple[list | None, dict]:
    """Checked payload dicts (or None) and the field kinds (``kinds0``: the index's) once they are written."""
    rows = as_payload_rows(payload, len(keys), what=f"payload given to {what}()")
    if rows is None:
        return None, kinds0
    table = Columns(0)
    for f, k in kinds0.items():
        table.cols[f] = Column(k, 0)
    rows = table.check_rows(rows, keys)
    kinds = dict(kinds0)
    for i, d in enumerate(rows):
        for f, v in d.items():
            if v is None:
                continue
            check_text(f, "payload field name")
            k = _fast_kind(v) or _kind_of(v, f, f"of key {keys[i]!r}")
            have = kinds.get(f)
            kinds[f] = k if have is None else ("float" if have != k else have)
    return [_json_ready(d) for d in rows], kinds
