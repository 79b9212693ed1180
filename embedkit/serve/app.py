"""The HTTP service: FastAPI routes over the indexes of a store, plus the web page at ``/``.

Reads (list, info, neighbours, search, recommendations, autocomplete) are always open; writes
(upsert, remove, compact) are disabled unless a token is configured, and then need
``Authorization: Bearer <token>``, checked before the body is read. Requests naming a host
outside the allow-list (loopback names by default) are refused (421), which stops DNS-rebinding
pages. Every error is ``{"error": "<one line>"}`` with a 4xx/5xx status. Writes are journalled and
fsynced before the reply (see :mod:`embedkit.store.journal`). The limits on work per request and
on connections are in :mod:`embedkit.serve._limits`.
"""

from __future__ import annotations

import hmac
import inspect
import json
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import CONVERTOR_TYPES, Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.routing import Match

from .. import __version__
from .._validation import check_int
from ..errors import InputError, MissingKeyError, StoreError
from ..index._filter import parse_filter_text
from ..store import Store, check_name
from ._docs import install_docs as _install_docs
from ._errors import error as _error
from ._errors import install_error_handlers as _install_error_handlers
from ._limits import LOOPBACK_HOSTS, Guard, TooMuchWork, WorkLimits, check_allowed_hosts
from ._map import MAX_MAP, index_map
from ._registry import Registry, recommender_kind

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")

MAX_K = 1000
MAX_BATCH = 10_000
MAX_KEY_LEN = 1024
MAX_EXAMPLES = 100
MAX_FILTER_PARTS = 256  # operators and fields in one filter: each is one pass over every item


class _KeyConvertor(Convertor):
    """A key in a URL path: any characters, newlines and other control characters included
    (Starlette's ``path`` convertor stops at a newline, so such keys could be written but not read)."""

    regex = "(?s:.+)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


if "ek_key" not in CONVERTOR_TYPES:
    register_url_convertor("ek_key", _KeyConvertor())


def check_token(token) -> None:
    """A write token must be printable ASCII without spaces: HTTP headers carry nothing else
    intact, so any other token could never match."""
    if token is None:
        return
    if not isinstance(token, str):
        raise InputError(f"the write token must be a string; got {type(token).__name__}")
    if not token:
        raise InputError("the write token must not be empty; omit it to disable writes")
    bad = next((c for c in token if not "!" <= c <= "~"), None)
    if bad is not None:
        raise InputError(f"the write token holds {bad!r}, which an HTTP header cannot carry intact, so no request "
                         "could ever match it; use printable ASCII without spaces (e.g. from 'openssl rand -hex 32')")


def check_filter(spec, where: str = "filter"):
    """A filter from a request: a JSON object (or, from a query string, its JSON text) of at most
    MAX_FILTER_PARTS operators and fields. The index checks the rest (one-line errors)."""
    if spec is None:
        return None
    if isinstance(spec, str):  # one parser for every filter text: depth-checked before json.loads
        spec = parse_filter_text(spec, where, hint='; give an object such as {"colour": "red"}')
    if not isinstance(spec, dict):
        raise InputError(f"{where}: must be a JSON object such as {{\"colour\": \"red\"}}; got {type(spec).__name__}")
    parts, stack = 0, [spec]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            parts += len(x)
            stack.extend(v for v in x.values() if isinstance(v, (dict, list)))
        elif isinstance(x, list):
            stack.extend(v for v in x if isinstance(v, (dict, list)))
        if parts > MAX_FILTER_PARTS:
            raise TooMuchWork(413, f"{where} has more than {MAX_FILTER_PARTS} operators and fields; simplify it "
                                   "(a long allow- or deny-list is one $in / $nin)")
    return spec


class SearchBody(BaseModel):
    """Give ``vector`` (one query) or ``vectors`` (several); ``filter`` keeps only items whose
    payload matches (MongoDB-style JSON, e.g. ``{"colour": {"$in": ["red", "blue"]}}``)."""

    model_config = ConfigDict(extra="forbid")
    vector: Optional[list[float]] = None
    vectors: Optional[list[list[float]]] = Field(None, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=MAX_K)
    filter: Optional[dict[str, Any]] = None
    include_payload: bool = False


class ExamplesBody(BaseModel):
    """Items like the ``positive`` examples and unlike the ``negative`` ones (keys or vectors):
    ``{"positive": ["king", "woman"], "negative": ["man"]}`` is king - man + woman."""

    model_config = ConfigDict(extra="forbid")
    positive: list[str | list[float]] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    negative: list[str | list[float]] = Field(default_factory=list, max_length=MAX_EXAMPLES)
    k: int = Field(10, ge=1, le=MAX_K)
    filter: Optional[dict[str, Any]] = None
    method: Literal["add", "mul"] = "add"
    include_payload: bool = False


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=MAX_KEY_LEN)
    vector: list[float]
    payload: Optional[dict[str, Any]] = None


class UpsertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item] = Field(min_length=1, max_length=MAX_BATCH)


class RemoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    missing_ok: bool = False


def create_app(store_root=None, names=None, token: str | None = None, *, max_body_bytes: int = 8 << 20,
               compact_every: int = 1000, compact_bytes: int = 64 << 20, faiss_threads: int | None = 1,
               allowed_hosts=LOOPBACK_HOSTS, limits: WorkLimits | None = None,
               body_timeout: float | None = 30.0, backend: str = "faiss", uri=None) -> FastAPI:
    """The FastAPI application serving the indexes of a store.

    Parameters
    ----------
    store_root : path or None
        Store directory (None: ``$EMBEDKIT_STORE`` or ``./indexes``).
    names : list of str or None
        Serve only these indexes (None: every index in the store, including ones added later).
    token : str or None
        Bearer token for the write endpoints (printable ASCII, no spaces); None disables writes
        (403). A write without it is refused (401) before its body is read.
    max_body_bytes : int, default 8 MiB
        Larger request bodies are refused with 413 before they are read.
    allowed_hosts : list of str, default loopback names
        Host names requests may be addressed to (the ``Host`` header, port ignored); others get
        421, which stops DNS-rebinding pages from reading the indexes. ``["*"]``: no check.
    limits : WorkLimits or None
        Results per search request (queries x k), their size, and concurrent heavy searches
        (413 / 429 beyond them); None: ``WorkLimits()``.
    body_timeout : float or None, default 30
        Seconds a request's body may take to arrive (408 after that); None: no limit.
    backend, uri : "faiss" (default: the store's indexes) or "milvus" with ``uri`` (a local
        ``.db`` file or ``http://host:19530``): serve the embedkit indexes in Milvus instead
        (``store_root`` is then unused; see docs/milvus.md).
    compact_every, compact_bytes : int
        Fold an index's journal into a full save after this many writes or journal bytes.
    faiss_threads : int or None, default 1
        OpenMP threads of one FAISS search in the request threads (None: FAISS's default).
        Requests already run in parallel; splitting one query over threads as well made single
        searches about 7x slower on a busy 2-core machine.

    Raises
    ------
    InputError
        A name in ``names`` is not a valid index name; MissingKeyError when it is not in the store.
    """
    if faiss_threads is not None:
        check_int("create_app", "faiss_threads", faiss_threads, 1, 1024)
    check_token(token)
    hosts = check_allowed_hosts(allowed_hosts)
    limits = WorkLimits() if limits is None else limits
    if not isinstance(limits, WorkLimits):
        raise InputError(f"limits must be a WorkLimits; got {type(limits).__name__}")
    if body_timeout is not None and not (isinstance(body_timeout, (int, float)) and 0 < body_timeout <= 3600):
        raise InputError(f"body_timeout must be a number of seconds in (0, 3600] or None; got {body_timeout!r}")
    if backend not in ("faiss", "milvus") or (backend == "milvus") != (uri is not None):
        raise InputError(f"backend must be 'faiss' (the store's indexes) or 'milvus' with uri= (a Milvus file or "
                         f"server); got backend={backend!r}, uri={uri!r}")
    if backend == "milvus":  # the indexes of a Milvus uri (serve/_milvus_registry.py)
        from ._milvus_registry import milvus_app_parts

        store, registry = milvus_app_parts(uri, names)
    else:
        store = Store(store_root)
        for name in names or []:
            if not store.exists(name):  # (exists() checks the name first)
                have = ", ".join(store.names()) or "none"
                raise MissingKeyError(f"no index named {name!r} in {store.root} (indexes: {have})")
        registry = Registry(store, names, compact_every=compact_every, compact_bytes=compact_bytes)

    @asynccontextmanager
    async def lifespan(app):
        yield
        registry.close()

    app = FastAPI(title="embedkit", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Nearest neighbours and recommendations over the indexes of an embedkit store. "
                              "Write endpoints need `Authorization: Bearer <token>` and are disabled without one.")
    app.state.registry = registry
    app.state.store = store
    app.state.limits = limits
    write_routes: list[APIRoute] = []  # filled once the routes exist, below

    def refusal(authorization: str):
        """None when ``authorization`` (the header's value) allows a write, else (status, message, headers)."""
        if token is None:
            return 403, ("write endpoints are disabled: start the server with --token TOKEN (or $EMBEDKIT_TOKEN) "
                         "to enable them"), ()
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1"), token.encode()):
            return 401, "missing or wrong token: send 'Authorization: Bearer <token>'", (("WWW-Authenticate", "Bearer"),)
        return None

    def write_auth(scope):
        """Refuse an unauthorised write before its body is read (FastAPI parses bodies before dependencies)."""
        if not any(r.matches(scope)[0] is Match.FULL for r in write_routes):
            return None
        header = next((v for n, v in scope.get("headers", []) if n == b"authorization"), b"")
        return refusal(header.decode("latin-1"))

    app.add_middleware(Guard, max_bytes=max_body_bytes, body_timeout=body_timeout, allowed_hosts=hosts,
                       write_auth=write_auth)
    _install_error_handlers(app)

    @app.exception_handler(TooMuchWork)
    async def too_much(request, exc: TooMuchWork):
        return _error(exc.status, str(exc), {"Retry-After": "1"} if exc.status == 429 else None)

    def writer(request: Request) -> None:
        """The same check again inside the route (a write route the guard did not match is still guarded)."""
        refused = refusal(request.headers.get("authorization", ""))
        if refused is not None:
            status, message, headers = refused
            raise HTTPException(status, message, headers=dict(headers) or None)

    omp = threading.local()

    def entry_of(name: str):
        if faiss_threads is not None and not getattr(omp, "set", False):
            import faiss  # OpenMP's thread count is per calling thread: set it in each worker once

            faiss.omp_set_num_threads(faiss_threads)
            omp.set = True
        try:
            check_name(name)
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        return registry.get(name)

    def score_kind(index) -> str:
        return "distance" if index.metric == "l2" else "similarity"

    def payload_fields(index) -> dict:
        return dict(getattr(index, "payload_fields", None) or {})

    def rows_of(index, res, include_payload: bool):
        """Result rows of a SearchResult within the size limit, with payloads when asked."""
        payload_of = index.payload if include_payload and payload_fields(index) else (
            (lambda key: {}) if include_payload else None)
        return limits.results(res.keys, res.scores, payload_of)

    def describe(name: str) -> dict:
        entry = registry.peek(name)
        m = entry.manifest if entry is not None else store.info(name)
        meta = m.get("meta") or {}
        out = {"name": name, "count": len(entry.index) if entry else m["count"], "dim": m["dim"],
               "metric": m["metric"], "kind": m["kind"], "trainer": meta.get("trainer"),
               "recommender": recommender_kind(m) is not None, "created": m.get("created")}
        return out

    # ---------------------------------------------------------------- pages
    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _install_docs(app)

    @app.get("/health", tags=["service"])
    def health():
        return {"status": "ok", "version": __version__, "writes": token is not None}

    # ---------------------------------------------------------------- reads
    @app.get("/indexes", tags=["read"], summary="List the served indexes")
    def list_indexes():
        out = []
        for name in registry.names():
            try:
                out.append(describe(name))
            except StoreError as exc:
                out.append({"name": name, "error": str(exc)})
        return {"indexes": out}

    @app.get("/indexes/{name}", tags=["read"], summary="Manifest of one index")
    def index_info(name: str):
        entry = entry_of(name)
        info = describe(name)
        m = entry.manifest
        info.update(meta=m.get("meta") or {}, knobs=m.get("knobs") or {}, extras=m.get("extras") or [],
                    score=score_kind(entry.index), journal_entries=entry.journal.entries,
                    users=entry.n_users,
                    payload_fields=payload_fields(entry.index) or (entry.model_payload_fields() if entry.model else {}))
        return info

    @app.get("/indexes/{name}/keys", tags=["read"], summary="Keys starting with a prefix (autocomplete)")
    def complete_keys(name: str, prefix: str = Query("", max_length=MAX_KEY_LEN),
                      limit: int = Query(20, ge=1, le=MAX_K)):
        entry = entry_of(name)
        return {"index": name, "prefix": prefix, "keys": entry.complete(prefix, limit)}

    @app.get("/indexes/{name}/map", tags=["read"], summary="2-D map of the index: PCA of a fixed sample")
    def map_of(name: str, n: int = Query(1000, ge=2, le=MAX_MAP, description="items in the sample"),
               include: Optional[str] = Query(None, max_length=1 << 16,
                                              description='keys to place on the map even when not sampled, as a '
                                                          'JSON list, e.g. ["apple", "pear"]')):
        entry = entry_of(name)
        keys = []
        if include is not None:
            try:
                keys = json.loads(include)
            except ValueError as exc:
                raise InputError(f"query parameter 'include': not valid JSON ({exc}); give a list of keys") from None
            except RecursionError:  # thousands of nested lists: not a list of keys either
                raise InputError("query parameter 'include' must be a JSON list of keys, e.g. [\"apple\"]; "
                                 "got deeply nested lists") from None
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                raise InputError("query parameter 'include' must be a JSON list of keys, e.g. [\"apple\"]")
            if len(keys) > MAX_K + 1:
                raise InputError(f"query parameter 'include' holds {len(keys)} keys; give at most {MAX_K + 1}")
        # the version is read first: a map computed during a write is cached under the old version
        out = index_map(entry.index, entry.map_cache, entry.version, n, keys)
        return {"index": name, "n": n, **out}

    @app.get("/indexes/{name}/items/{key:ek_key}", tags=["read"], summary="The stored vector of a key")
    def get_item(name: str, key: str):
        entry = entry_of(name)
        if key not in entry.index:
            raise MissingKeyError(f"key {key!r} is not in index {name!r} ({len(entry.index)} items)")
        index = entry.index
        return {"index": name, "key": key, "vector": index.get_vectors([key])[0].tolist(),
                "payload": index.payload(key) if payload_fields(index) else {}}

    @app.get("/indexes/{name}/neighbors", tags=["read"], summary="Nearest neighbours of a stored key")
    def neighbors(name: str, key: str = Query(..., min_length=1, max_length=MAX_KEY_LEN),
                  k: int = Query(10, ge=1, le=MAX_K),
                  filter: Optional[str] = Query(None, max_length=1 << 16,
                                                description='payload filter as JSON, e.g. {"colour": "red"}'),
                  include_payload: bool = False):
        entry = entry_of(name)
        index = entry.index
        flt = check_filter(filter, "query parameter 'filter'")
        if key not in index:
            raise MissingKeyError(f"key {key!r} is not in index {name!r} ({len(index)} items)")
        res = index.search_keys([key], k=k) if flt is None else index.search_keys([key], k=k, filter=flt)
        return JSONResponse({"index": name, "key": key, "score": score_kind(index),
                             "neighbors": rows_of(index, res, include_payload)[0]})

    @app.post("/indexes/{name}/search", tags=["read"], summary="Nearest neighbours of query vectors")
    def search(name: str, body: SearchBody):
        entry = entry_of(name)
        index = entry.index
        if (body.vector is None) == (body.vectors is None):
            raise InputError("give exactly one of 'vector' (one query) or 'vectors' (a list of queries)")
        queries = [body.vector] if body.vector is not None else body.vectors
        if not queries:
            raise InputError("'vectors' is empty; give at least one query vector")
        for i, q in enumerate(queries):
            if len(q) != index.dim:
                raise InputError(f"query {i} has dimension {len(q)} but index {name!r} has dim={index.dim}")
        flt = check_filter(body.filter)
        with limits.admit(len(queries), body.k):
            res = index.search(queries, k=body.k) if flt is None else index.search(queries, k=body.k, filter=flt)
            results = rows_of(index, res, body.include_payload)
            # serialised inside the slot: for 100k results that is most of the work
            return JSONResponse({"index": name, "score": score_kind(index),
                                 **({"neighbors": results[0]} if body.vector is not None else {"results": results})})

    @app.post("/indexes/{name}/examples", tags=["read"],
              summary="Items like the positive examples and unlike the negative ones (king - man + woman)")
    def examples(name: str, body: ExamplesBody):
        entry = entry_of(name)
        index = entry.index
        flt = check_filter(body.filter)
        if not body.positive and not body.negative:
            raise InputError("give at least one example in 'positive' or 'negative' (keys or vectors)")
        for what, items in (("positive", body.positive), ("negative", body.negative)):
            for i, x in enumerate(items):
                if isinstance(x, str) and x not in index:
                    raise MissingKeyError(f"{what}[{i}]: key {x!r} is not in index {name!r} ({len(index)} items)")
                if not isinstance(x, str) and len(x) != index.dim:
                    raise InputError(f"{what}[{i}] has dimension {len(x)} but index {name!r} has dim={index.dim}")
        with limits.admit(1, body.k):
            res = index.search_examples(positive=body.positive, negative=body.negative, k=body.k, filter=flt,
                                        method=body.method)
            rows = rows_of(index, res, body.include_payload)
        return JSONResponse({"index": name, "score": "similarity" if body.method == "mul" else score_kind(index),
                             "method": body.method, "neighbors": rows[0]})

    def recommender_of(name: str):
        entry = entry_of(name)
        if entry.model is None:
            raise InputError(f"index {name!r} holds no user vectors: recommendations need an index written by "
                             "'embedkit train mf' (MatrixFactorization, HybridMF) or a Popularity / ItemKNN "
                             "model's to_store")
        return entry

    @app.get("/indexes/{name}/users", tags=["recommend"], summary="Users starting with a prefix (autocomplete)")
    def complete_users(name: str, prefix: str = Query("", max_length=MAX_KEY_LEN),
                       limit: int = Query(20, ge=1, le=MAX_K)):
        entry = recommender_of(name)
        return {"index": name, "prefix": prefix, "users": entry.complete_users(prefix, limit)}

    @app.get("/indexes/{name}/recommend", tags=["recommend"],
             summary="Top items for a user (MatrixFactorization, HybridMF, ItemKNN or Popularity index)")
    def recommend(name: str, user: str = Query(..., min_length=1, max_length=MAX_KEY_LEN),
                  k: int = Query(10, ge=1, le=MAX_K), exclude_seen: bool = True,
                  filter: Optional[str] = Query(None, max_length=1 << 16,
                                                description='item filter as JSON, e.g. {"$key": {"$nin": ["a"]}}'),
                  include_payload: bool = False):
        entry = recommender_of(name)
        flt = check_filter(filter, "query parameter 'filter'")
        with limits.admit(1, k):
            recs = entry.recommend(user, k, exclude_seen=exclude_seen, filter=flt)
        rows = [{"key": key, "score": s} for key, s in recs]
        if include_payload:
            for row in rows:
                row["payload"] = entry.item_payload(row["key"])
        return {"index": name, "user": user, "trainer": (entry.manifest.get("meta") or {}).get("trainer"),
                "exclude_seen": exclude_seen, "filter": flt,
                "history": [{"key": key, "value": v} for key, v in entry.history(user)],
                "recommendations": rows}

    # ---------------------------------------------------------------- writes
    @app.post("/indexes/{name}/items", tags=["write"], dependencies=[Depends(writer)],
              summary="Insert or replace items (durable when acknowledged)")
    def upsert(name: str, body: UpsertBody):
        entry_of(name)
        keys = [it.key for it in body.items]
        vectors = [it.vector for it in body.items]
        with_payload = [it.payload is not None for it in body.items]
        if not any(with_payload):
            count = registry.upsert(name, keys, vectors)
        elif not all(with_payload):
            i = with_payload.index(not with_payload[0])
            raise InputError(f"items 0 and {i} differ: give 'payload' on every item of a request or on none "
                             "(an item's payload replaces its old one; without payloads, old payloads are kept)")
        elif "payload" not in inspect.signature(registry.upsert).parameters:
            raise HTTPException(501, "this build's registry cannot journal payloads yet; upsert without 'payload'")
        else:
            count = registry.upsert(name, keys, vectors, payload=[it.payload for it in body.items])
        return {"index": name, "upserted": len(keys), "count": count, "durable": True}

    @app.post("/indexes/{name}/remove", tags=["write"], dependencies=[Depends(writer)],
              summary="Remove items by key (durable when acknowledged)")
    def remove(name: str, body: RemoveBody):
        entry_of(name)
        removed = registry.remove(name, body.keys, missing_ok=body.missing_ok)
        return {"index": name, "removed": removed, "count": len(registry.get(name).index), "durable": True}

    @app.delete("/indexes/{name}/items/{key:ek_key}", tags=["write"], dependencies=[Depends(writer)],
                summary="Remove one item")
    def delete_item(name: str, key: str):
        entry_of(name)
        registry.remove(name, [key])
        return {"index": name, "removed": 1, "count": len(registry.get(name).index), "durable": True}

    @app.post("/indexes/{name}/compact", tags=["write"], dependencies=[Depends(writer)],
              summary="Fold the write journal into a full save now")
    def compact(name: str):
        entry_of(name)
        return {"index": name, "folded": registry.compact(name)}

    write_routes.extend(r for r in app.routes if isinstance(r, APIRoute) and "write" in r.tags)
    return app
