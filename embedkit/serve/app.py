"""The HTTP service: FastAPI routes over the indexes of a store, plus the web page at ``/``.

Reads (list, info, neighbours, search, recommendations, autocomplete) are always open; writes
(upsert, remove, compact) are disabled unless a token is configured, and then need
``Authorization: Bearer <token>``. Every error is ``{"error": "<one line>"}`` with a 4xx/5xx
status. Writes are journalled and fsynced before the reply (see :mod:`embedkit.store.journal`).
"""

from __future__ import annotations

import hmac
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Optional

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from .. import __version__
from .._validation import check_int
from ..errors import InputError, MissingKeyError, StoreError
from ..store import Store, check_name
from ..trainers.mf.store import is_mf
from ._limits import BodyLimit
from ._registry import Conflict, Registry

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")

MAX_K = 1000
MAX_BATCH = 10_000
MAX_KEY_LEN = 1024


class SearchBody(BaseModel):
    """Give ``vector`` (one query) or ``vectors`` (several)."""

    model_config = ConfigDict(extra="forbid")
    vector: Optional[list[float]] = None
    vectors: Optional[list[list[float]]] = Field(None, max_length=MAX_BATCH)
    k: int = Field(10, ge=1, le=MAX_K)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(min_length=1, max_length=MAX_KEY_LEN)
    vector: list[float]


class UpsertBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Item] = Field(min_length=1, max_length=MAX_BATCH)


class RemoveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(min_length=1, max_length=MAX_BATCH)
    missing_ok: bool = False


def _install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files shipped in the swagger-ui-bundle package: works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="embedkit API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")


def _error(status: int, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str]:
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        return 400, f"malformed JSON body: {ctx.get('error', first.get('msg', 'cannot parse'))}"
    loc = [str(x) for x in first.get("loc", ())]
    where = ""
    if loc and loc[0] in ("query", "path"):
        where = f"{loc[0]} parameter '{'.'.join(loc[1:])}'"
    elif loc and loc[0] == "body":
        where = f"body field '{'.'.join(loc[1:])}'" if len(loc) > 1 else "body"
    msg = first.get("msg", "invalid request")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return 422, f"{where}: {msg}{more}" if where else f"{msg}{more}"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        if exc.status_code in (404, 405) and exc.detail in ("Not Found", "Method Not Allowed"):
            return _error(exc.status_code, f"no such endpoint: {request.method} {request.url.path} "
                                           "(the endpoints are listed at /docs)", getattr(exc, "headers", None))
        return _error(exc.status_code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, exc: RequestValidationError):
        return _error(*_validation_message(exc))

    @app.exception_handler(MissingKeyError)
    async def missing(request, exc):
        return _error(404, str(exc))

    @app.exception_handler(InputError)
    async def bad_input(request, exc):
        return _error(422, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(request, exc):
        return _error(409, str(exc))

    @app.exception_handler(StoreError)
    async def store_error(request, exc):
        log.error("store error: %s", exc)
        return _error(500, f"store error: {exc}")

    @app.exception_handler(Exception)
    async def internal(request, exc):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")


def create_app(store_root=None, names=None, token: str | None = None, *, max_body_bytes: int = 8 << 20,
               compact_every: int = 1000, compact_bytes: int = 64 << 20, faiss_threads: int | None = 1) -> FastAPI:
    """The FastAPI application serving the indexes of a store.

    Parameters
    ----------
    store_root : path or None
        Store directory (None: ``$EMBEDKIT_STORE`` or ``./indexes``).
    names : list of str or None
        Serve only these indexes (None: every index in the store, including ones added later).
    token : str or None
        Bearer token for the write endpoints; None disables writes (403).
    max_body_bytes : int, default 8 MiB
        Larger request bodies are refused with 413 before they are read.
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
    if token is not None and not token:
        raise InputError("the write token must not be empty; omit it to disable writes")
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

    app = FastAPI(title="embedkit", version=__version__, lifespan=lifespan, docs_url=None,
                  description="Nearest neighbours and recommendations over the indexes of an embedkit store. "
                              "Write endpoints need `Authorization: Bearer <token>` and are disabled without one.")
    app.state.registry = registry
    app.state.store = store
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    _install_error_handlers(app)

    def writer(request: Request) -> None:
        if token is None:
            raise HTTPException(403, "write endpoints are disabled: start the server with --token TOKEN "
                                     "(or $EMBEDKIT_TOKEN) to enable them")
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(401, "missing or wrong token: send 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})

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

    def describe(name: str) -> dict:
        entry = registry.peek(name)
        m = entry.manifest if entry is not None else store.info(name)
        meta = m.get("meta") or {}
        out = {"name": name, "count": len(entry.index) if entry else m["count"], "dim": m["dim"],
               "metric": m["metric"], "kind": m["kind"], "trainer": meta.get("trainer"),
               "recommender": is_mf(m), "created": m.get("created")}
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
                    users=entry.n_users)
        return info

    @app.get("/indexes/{name}/keys", tags=["read"], summary="Keys starting with a prefix (autocomplete)")
    def complete_keys(name: str, prefix: str = Query("", max_length=MAX_KEY_LEN),
                      limit: int = Query(20, ge=1, le=MAX_K)):
        entry = entry_of(name)
        return {"index": name, "prefix": prefix, "keys": entry.complete(prefix, limit)}

    @app.get("/indexes/{name}/items/{key:path}", tags=["read"], summary="The stored vector of a key")
    def get_item(name: str, key: str):
        entry = entry_of(name)
        if key not in entry.index:
            raise MissingKeyError(f"key {key!r} is not in index {name!r} ({len(entry.index)} items)")
        return {"index": name, "key": key, "vector": entry.index.get_vectors([key])[0].tolist()}

    @app.get("/indexes/{name}/neighbors", tags=["read"], summary="Nearest neighbours of a stored key")
    def neighbors(name: str, key: str = Query(..., min_length=1, max_length=MAX_KEY_LEN),
                  k: int = Query(10, ge=1, le=MAX_K)):
        entry = entry_of(name)
        index = entry.index
        if key not in index:
            raise MissingKeyError(f"key {key!r} is not in index {name!r} ({len(index)} items)")
        res = index.search_keys([key], k=k)
        return {"index": name, "key": key, "score": score_kind(index),
                "neighbors": [{"key": n, "score": float(s)} for n, s in zip(res.keys[0], res.scores[0])]}

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
        res = index.search(queries, k=body.k)
        results = [[{"key": n, "score": float(s)} for n, s in zip(ks, ss)] for ks, ss in zip(res.keys, res.scores)]
        return {"index": name, "score": score_kind(index),
                **({"neighbors": results[0]} if body.vector is not None else {"results": results})}

    def recommender_of(name: str):
        entry = entry_of(name)
        if entry.model is None:
            raise InputError(f"index {name!r} holds no user vectors: recommendations need an index written by "
                             "'embedkit train mf'")
        return entry

    @app.get("/indexes/{name}/users", tags=["recommend"], summary="Users starting with a prefix (autocomplete)")
    def complete_users(name: str, prefix: str = Query("", max_length=MAX_KEY_LEN),
                       limit: int = Query(20, ge=1, le=MAX_K)):
        entry = recommender_of(name)
        return {"index": name, "prefix": prefix, "users": entry.complete_users(prefix, limit)}

    @app.get("/indexes/{name}/recommend", tags=["recommend"], summary="Top items for a user of an MF index")
    def recommend(name: str, user: str = Query(..., min_length=1, max_length=MAX_KEY_LEN),
                  k: int = Query(10, ge=1, le=MAX_K), exclude_seen: bool = True):
        entry = recommender_of(name)
        recs = entry.recommend(user, k, exclude_seen=exclude_seen)
        return {"index": name, "user": user, "exclude_seen": exclude_seen,
                "history": [{"key": key, "value": v} for key, v in entry.history(user)],
                "recommendations": [{"key": key, "score": s} for key, s in recs]}

    # ---------------------------------------------------------------- writes
    @app.post("/indexes/{name}/items", tags=["write"], dependencies=[Depends(writer)],
              summary="Insert or replace items (durable when acknowledged)")
    def upsert(name: str, body: UpsertBody):
        entry_of(name)
        keys = [it.key for it in body.items]
        vectors = [it.vector for it in body.items]
        count = registry.upsert(name, keys, vectors)
        return {"index": name, "upserted": len(keys), "count": count, "durable": True}

    @app.post("/indexes/{name}/remove", tags=["write"], dependencies=[Depends(writer)],
              summary="Remove items by key (durable when acknowledged)")
    def remove(name: str, body: RemoveBody):
        entry_of(name)
        removed = registry.remove(name, body.keys, missing_ok=body.missing_ok)
        return {"index": name, "removed": removed, "count": len(registry.get(name).index), "durable": True}

    @app.delete("/indexes/{name}/items/{key:path}", tags=["write"], dependencies=[Depends(writer)],
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

    return app
